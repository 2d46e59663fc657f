// Per-worker keep-alive connections to targets. Each worker owns its pools,
// so taking and returning a connection needs no lock.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "http/buffer.hpp"
#include "http/message.hpp"
#include "tls/channel.hpp"
#include "server/watchdog.hpp"

namespace im::upstream {

using server::Clock;

struct Connection {
    explicit Connection(boost::asio::io_context& io) : socket(io), in(kBufferBytes) {}
    static constexpr std::size_t kBufferBytes = 64 * 1024;
    boost::asio::ip::tcp::socket socket;
    std::unique_ptr<tls::TlsStream> tls;  // an https:// target
    tls::Channel channel() { return {&socket, tls.get()}; }
    http::InputBuffer in;  // response heads are views into it
    // The request head last sent on it and the parsed head of its answer, kept
    // with the connection so that their buffers serve the next request too.
    std::string request_head;
    http::Response response;
    std::string response_head;  // the answer's head as relayed to an HTTP/1.1 client
    Clock::time_point idle_since{};
    std::uint64_t requests = 0;  // served on this connection; >0 means reused
};

class TargetPool {
public:
    // The most recently used idle connection. With `check_open` (a request that
    // cannot be retried once sent) one the target has closed or written to
    // meanwhile is dropped instead: a syscall, which retryable requests skip.
    std::unique_ptr<Connection> take(bool check_open);
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

// The pools of one worker for one config, indexed [group][target] like it.
// A request holds the table it started with, so a reload that reshapes the
// groups never makes its indexes point at another target.
struct PoolTable {
    std::shared_ptr<const config::Config> config;
    std::vector<std::vector<std::shared_ptr<TargetPool>>> pools;
    std::vector<std::size_t> cursors;  // each group's round-robin position
    TargetPool& at(int group, std::size_t target) {
        return *pools[static_cast<std::size_t>(group)][target];
    }
};

// All pools of one worker.
class Pools {
public:
    // Starts a new table when the config's groups or targets changed; a
    // reload that kept them keeps the warm connections.
    void adopt(const std::shared_ptr<const config::Config>& config);
    const std::shared_ptr<PoolTable>& table() const { return table_; }
    void close_idle(Clock::time_point now);
    void close_all();
    // Idle connections to the targets whose [group][target] flag equals `flag`
    // are closed.
    void close_idle_where(const std::vector<std::vector<std::uint8_t>>& flags, std::uint8_t flag);
    // A new health verdict replaces what this worker guessed from its own failures.
    void forget_local_failures();

private:
    std::shared_ptr<PoolTable> table_;
};

}  // namespace im::upstream
