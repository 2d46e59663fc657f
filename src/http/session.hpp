// The client connection loop: read a head, decide, execute, repeat.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace im::server {
class Worker;
}

namespace im::http {

// `https`: the connection came to a TLS listener; the handshake comes first.
boost::asio::awaitable<void> serve_client(server::Worker& worker, boost::asio::ip::tcp::socket socket,
                                          bool https);

struct Client;

// Serves the one request of an HTTP/2 stream, whose head is in c.in (as
// HTTP/1.1) and whose body and answer go through c.pipe. A `refuse_status`
// answers at once (431: the header list was too large).
boost::asio::awaitable<void> serve_stream(Client& c, int refuse_status);

}  // namespace im::http
