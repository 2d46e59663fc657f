// Load-time compression of page store files and content-coding negotiation.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace im::pages {

enum class Encoding { identity, gzip, brotli };

// gzip-wrapped deflate at level 9. nullopt only if zlib fails (out of memory).
std::optional<std::string> gzip_compress(std::string_view data);

// Brotli at quality 11; `text` selects Brotli's UTF-8 text mode.
std::optional<std::string> brotli_compress(std::string_view data, bool text);

// Picks the coding to send from an Accept-Encoding value (empty = header absent -> identity).
// A coding is acceptable when named, or covered by "*", with q > 0. Among the available and
// acceptable compressed variants the higher q wins; on a tie br beats gzip. Identity is the
// fallback even if the client refused it: a body it may not like beats no body at all.
Encoding choose_encoding(std::string_view accept_encoding, bool have_gzip, bool have_brotli);

}  // namespace im::pages
