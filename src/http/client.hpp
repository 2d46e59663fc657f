// A client connection as the request phases see it.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <array>
#include <memory>
#include <cstdint>
#include <string>

#include "http/buffer.hpp"
#include "tls/channel.hpp"
#include "http/message.hpp"
#include "http/respond.hpp"
#include "server/watchdog.hpp"

namespace im::server {
class Worker;
}

namespace im::http {

struct Client {
    Client(server::Worker& w, boost::asio::ip::tcp::socket s, std::size_t buffer_bytes);

    server::Worker& worker;
    boost::asio::ip::tcp::socket socket;
    std::unique_ptr<tls::TlsStream> tls;  // set on an HTTPS listener, after the handshake
    tls::Pipe* pipe = nullptr;            // set for an HTTP/2 stream (no socket of its own)
    bool secure = false;                  // came over TLS (X-Forwarded-Proto, HSTS, redirects)
    bool http2 = false;                   // an HTTP/2 stream (for the access log)
    tls::Channel channel() { return {&socket, tls.get(), pipe}; }
    Stamp stamp() const;  // Date and connection_headers, for every answer
    // The gateway's own answers: into `out` as HTTP/1.1, or to the sink when set.
    void answer(const Reply& reply);
    void answer_error(int status, bool close, std::string_view extra_headers = {});
    ReplySink* sink = nullptr;  // an HTTP/2 stream answered at once
    // Header lines every answer on this connection carries (HSTS on HTTPS).
    std::string_view connection_headers;
    server::Guard guard;
    InputBuffer in;
    std::string out;    // responses waiting to be written (pipelined answers batch here)
    Request request;    // the request in progress; views into `in`
    // The request in progress is a HEAD (parsed, not stale): its answers have no body.
    bool head_request = false;
    // Answering at once from the worker's current snapshot (not one pinned across a
    // wait): a stored body stays valid as long as a sink keeps that snapshot.
    bool answers_from_current = false;
    std::string peer;   // client IP as text, for logs and X-Forwarded-For
    std::array<std::uint8_t, 16> address{};  // client IP, IPv4-mapped, for source conditions
    std::string normalized;  // the request path, decoded, when it needed decoding
    bool redact_query = false;  // the request's query is a secret: log the path only
    std::string carry;  // bytes read past a request body: the next request's start
};

}  // namespace im::http
