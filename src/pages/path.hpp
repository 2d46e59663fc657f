// Request path decoding for the page store: the single gate between a URL and a file name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace im::pages {

// Percent-decodes and normalizes a request path (no query). Returns nullopt (-> 400) for:
// NUL bytes (raw or %00), backslashes (raw or %5c), an encoded slash (%2f), any ".." segment
// (raw or encoded), invalid percent escapes, a path not starting with "/". Merges "//" and
// drops "." segments; a trailing "/" (or a trailing "." segment) is kept as a trailing "/".
std::optional<std::string> normalize_path(std::string_view raw_path);

// True when normalize_path(path) would return path unchanged, so the request path can be used
// as is without allocating.
bool is_normalized(std::string_view path);

// Percent-encodes what may not appear raw in a Location header (controls, space, non-ASCII,
// quotes...), so a decoded path can be sent back safely.
std::string encode_path(std::string_view path);

// A raw query (still percent-encoded, with its leading '?') made safe to echo in a Location
// header: bytes outside visible ASCII are percent-encoded, everything else is kept.
std::string encode_query(std::string_view query);

}  // namespace im::pages
