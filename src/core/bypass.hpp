// The maintenance bypass cookie: an operator visits the bypass URL with a
// signed, time-limited token and gets a cookie carrying it, so an ordinary
// browser sees the real site. Token = "<expiry>.<hex HMAC-SHA256(secret,
// site + "\n" + expiry)>": bound to one site, useless after its expiry.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace im::core {

std::string make_bypass_token(std::string_view secret, std::string_view site, std::int64_t expiry);

// True when `token` was signed with `secret` for `site` and has not expired
// at `now`. Compares in constant time.
bool verify_bypass_token(std::string_view secret, std::string_view site, std::string_view token,
                         std::int64_t now);

// Constant-time equality for secrets (the time does not depend on where
// the first difference is).
bool secret_equals(std::string_view a, std::string_view b);

// The value of cookie `name` in a Cookie header, or empty.
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);

// The value of query parameter `key` (not percent-decoded), or empty.
std::string_view query_value(std::string_view query, std::string_view key);

}  // namespace im::core
