// Re-framing heads between client and target: hop-by-hop fields removed
// (RFC 9110 §7.6.1), forwarding fields added, body framing rewritten by us.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"
#include "http/respond.hpp"

namespace im::upstream {

struct ForwardContext {
    std::string_view client_ip;
    std::string_view proto = "http";
    std::string_view fallback_host;  // for HTTP/1.0 requests without Host
    bool http2 = false;              // the client spoke HTTP/2 (Via says "2")
};

// The request head to send to a target.
void build_request_head(std::string& out, const http::Request& req, const ForwardContext& ctx);

struct ResponseFraming {
    bool chunked = false;       // we send Transfer-Encoding: chunked
    bool length = false;        // we send the upstream's Content-Length
    bool close = false;         // we close the client connection after the body
};

// The response head to send to the client; `framing` says how the body goes.
void build_response_head(std::string& out, const http::Response& res, const ResponseFraming& framing,
                         http::Stamp stamp, bool upgrade);

// The same head as fields, for an HTTP/2 client: no status line, framing or
// connection fields; a content-length when the target announced one and the
// body is sent (`length`). Made values (Via, the length) are kept in
// `storage`, which the fields view.
void response_fields(const http::Response& res, bool length, http::Stamp stamp,
                     std::vector<http::Header>& fields, std::string& storage);

// True for fields that must not be forwarded: hop-by-hop ones and those the
// Connection header names.
bool is_hop_by_hop(std::string_view name, std::string_view connection_value);

}  // namespace im::upstream
