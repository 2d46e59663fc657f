// One active health check: connect, GET the check path, compare the status.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <string>

#include "config/config.hpp"

namespace im::health {

struct ProbeResult {
    bool ok = false;
    int status = 0;           // 0 when no status line came back
    std::string error;        // why it failed, for the log
    std::chrono::microseconds latency{0};
};

// For an https:// target `tls_context` is the group's client context: the
// check handshakes and verifies exactly as forwarding does.
boost::asio::awaitable<ProbeResult> probe(const boost::asio::ip::tcp::endpoint& target,
                                          const config::Address& address, const config::TargetGroup& group,
                                          boost::asio::ssl::context* tls_context);

}  // namespace im::health
