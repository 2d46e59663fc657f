// The pieces of RFC 9110 conditional requests the page store needs: HTTP dates and entity tags.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace im::pages {

// IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::time_t t);

// Parses an HTTP-date: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must
// still accept (RFC 9110 §5.6.7). nullopt for anything else.
std::optional<std::time_t> parse_http_date(std::string_view text);

// If-None-Match evaluation with the weak comparison RFC 9110 §13.1.2 requires: true when the
// list is "*" or names `etag` with or without a W/ prefix. A malformed list matches nothing.
bool if_none_match_matches(std::string_view if_none_match, std::string_view etag);

}  // namespace im::pages
