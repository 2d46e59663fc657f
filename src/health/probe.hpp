// One active health check: connect, GET the check path, compare the status.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>

#include "config/config.hpp"

namespace im::health {

struct ProbeResult {
    bool ok = false;
    int status = 0;           // 0 when no status line came back
    std::string error;        // why it failed, for the log
    std::chrono::microseconds latency{0};
};

boost::asio::awaitable<ProbeResult> probe(const boost::asio::ip::tcp::endpoint& target,
                                          const std::string& target_text,
                                          const config::HealthCheck& check);

}  // namespace im::health
