// Per-worker keep-alive connections to targets. Each worker owns its pools,
// so taking and returning a connection needs no lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <vector>

#include "config/config.hpp"
#include "http/buffer.hpp"
#include "server/watchdog.hpp"

namespace im::upstream {

using server::Clock;

struct Connection {
    explicit Connection(boost::asio::io_context& io) : socket(io), in(kBufferBytes) {}
    static constexpr std::size_t kBufferBytes = 64 * 1024;
    boost::asio::ip::tcp::socket socket;
    http::InputBuffer in;  // response heads are views into it
    Clock::time_point idle_since{};
    std::uint64_t requests = 0;  // served on this connection; >0 means reused
};

class TargetPool {
public:
    std::unique_ptr<Connection> take();
    void give_back(std::unique_ptr<Connection> c, Clock::time_point now, std::size_t max_idle);
    void close_idle(Clock::time_point now, config::Duration idle_timeout);
    void close_all();
    std::size_t idle_count() const { return idle_.size(); }

    std::size_t open = 0;         // connections checked out right now
    std::size_t outstanding = 0;  // requests in flight (least-outstanding balancing)
    Clock::time_point down_until{};  // passively failed: skipped by this worker until then

private:
    std::vector<std::unique_ptr<Connection>> idle_;  // most recently used last
};

// All pools of one worker, indexed [group][target] like the config.
class Pools {
public:
    // Rebuilds the pools when the config (its groups or targets) changed.
    void adopt(const std::shared_ptr<const config::Config>& config);
    // Shared so that a request in flight keeps its pool alive across a reload
    // that rebuilds the pools.
    const std::shared_ptr<TargetPool>& at(int group, std::size_t target) {
        return pools_[static_cast<std::size_t>(group)][target];
    }
    std::size_t& cursor(int group) { return cursors_[static_cast<std::size_t>(group)]; }
    void close_idle(Clock::time_point now);
    void close_all();
    // A new health verdict replaces what this worker guessed from its own failures.
    void forget_local_failures();

private:
    std::shared_ptr<const config::Config> config_;
    std::vector<std::vector<std::shared_ptr<TargetPool>>> pools_;
    std::vector<std::size_t> cursors_;
};

}  // namespace im::upstream
