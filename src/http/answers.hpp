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

namespace im::http {

enum class Variant { html, json, text };
// Which variant of a gateway-made page the client wants, by its Accept header:
// JSON when it prefers application/json, HTML when it accepts text/html,
// plain text otherwise (curl's */*).
Variant negotiate(std::string_view accept);

// The site's maintenance answer (503 by default) with Retry-After.
int answer_maintenance(Client& c, const core::SiteView& site, const core::MaintenanceState* state,
                       std::int64_t retry_after, bool close, std::uint64_t& bytes);
// A compiled page with `status` (the page's own when 0); a plain answer when
// the page is missing, so a visitor never gets an empty reply.
int answer_with_page(Client& c, const core::CompiledPage* page, int status, bool close,
                     std::uint64_t& bytes);
// The bypass URL with a valid token: set the cookie and go to the site.
int answer_bypass_grant(Client& c, const config::Bypass& bypass, std::int64_t now, bool close);
// The same host, path and query over HTTPS (`tls.redirect_http`); the connection closes.
int answer_https_redirect(Client& c);

}  // namespace im::http
