// Executes a Forward decision: pick a healthy target, reuse or open a
// connection, send the re-framed request, stream the response back.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "core/snapshot.hpp"
#include "http/client.hpp"

namespace im::upstream {

enum class Failure { none, no_target, connect, tls, reset, timeout, bad_response, request_body, client_gone };

struct ForwardResult {
    Failure failure = Failure::none;
    bool response_started = false;    // a response head went to the client
    bool request_body_done = false;   // the whole request body was read from the client
    bool client_keep_alive = true;    // the client connection can serve another request
    int status = 0;
    std::uint64_t body_bytes = 0;     // response body bytes sent to the client
    std::string target;               // the last target tried, "host:port"
    std::string failure_detail;       // why connecting failed (a TLS verification error, ...)
    double upstream_ms = -1;          // request start to response head
    // The target answered with a status the site maps to an error page: the
    // response was not relayed; the caller answers with this page.
    const core::CompiledError* mapped_error = nullptr;
};

boost::asio::awaitable<ForwardResult> forward(http::Client& client, const core::Snapshot& snapshot,
                                              int group, const core::SiteView* site);

}  // namespace im::upstream
