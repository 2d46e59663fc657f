// Answers the gateway makes itself, executing a Decision that is not a
// forward. Each appends a complete response to client.out and returns the
// status sent; `bytes` gets the body bytes sent.
#pragma once

#include <cstdint>

#include "core/snapshot.hpp"
#include "http/client.hpp"

namespace im::http {

int answer_store(Client& c, const core::SiteView& site, bool close, std::uint64_t& bytes);
int answer_page(Client& c, const core::Action& action, bool close, std::uint64_t& bytes);
int answer_fixed(Client& c, const core::Action& action, bool close, std::uint64_t& bytes);
int answer_redirect(Client& c, const core::Action& action, bool close);

// "{host}", "{path}", "{query}" filled from the request; "?{query}" vanishes
// when the query is empty.
std::string expand_location(std::string_view location, const Request& request);

}  // namespace im::http
