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

}  // namespace im::http
