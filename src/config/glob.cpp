#include "config/glob.hpp"

namespace im::config {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    std::size_t p = 0;
    std::size_t t = 0;
    // Position just after the last '*' seen and the text position it currently absorbs up to.
    // Only the last star needs to be retried: an earlier star can never need to absorb more
    // than the later one could, so greedy backtracking to the latest star is complete.
    std::size_t star_p = std::string_view::npos;
    std::size_t star_t = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star_p = ++p;
            star_t = t;
        } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
            ++p;
            ++t;
        } else if (star_p != std::string_view::npos) {
            p = star_p;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

std::optional<std::string> glob_error(std::string_view pattern) {
    if (pattern.empty()) return "a glob cannot be empty; expected e.g. /static/*";
    if (pattern.front() != '/') return "a glob must start with '/', e.g. /static/*";
    return std::nullopt;
}

}  // namespace im::config
