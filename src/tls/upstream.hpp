// TLS to a target written https://: SNI, the name the certificate must
// carry, the handshake. Shared by forwarding and the health checks, so a
// target that fails verification fails both the same way.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <string>

#include "config/config.hpp"
#include "tls/channel.hpp"

namespace im::tls {

// Handshakes as a client to `target` over `stream`; empty on success, else
// why it failed (the verification error when the certificate was refused).
boost::asio::awaitable<std::string> client_handshake(TlsStream& stream, const config::UpstreamTls& tls,
                                                     const config::Address& target);

}  // namespace im::tls
