// HTTP/2 on a client connection: after ALPN chose "h2", or when a plain
// connection opens with the prior-knowledge preface (h2c).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string_view>

namespace im::http {

struct Client;

// Serves the connection until it closes; bytes already read are in c.in.
boost::asio::awaitable<void> serve_http2(Client& c);

// The start of the HTTP/2 connection preface (RFC 9113 §3.4), up to its first blank line.
inline constexpr std::string_view kH2PrefaceStart = "PRI * HTTP/2.0\r\n\r\n";

}  // namespace im::http
