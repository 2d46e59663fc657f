// Path globs used by rules and page-store cache behaviours, e.g. "/static/*" or "/img/?.png".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace im::config {

// Whole-string match of `text` against `pattern`: '*' matches any run of characters (including
// '/' and the empty run), '?' exactly one character, everything else itself (case-sensitive).
// Called on every request path: no recursion, no allocation, O(len(pattern) * len(text)) worst
// case and linear for the usual single trailing '*'.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;

// Why `pattern` is not a usable path glob (empty, or not starting with '/'), or nullopt.
std::optional<std::string> glob_error(std::string_view pattern);

}  // namespace im::config
