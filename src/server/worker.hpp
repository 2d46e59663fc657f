// One event loop on one thread, with its own listeners (SO_REUSEPORT),
// upstream pools and timers: workers share nothing but the immutable
// snapshot they are handed, and new connections, which go to the worker
// with the fewest.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "core/snapshot.hpp"
#include "http/respond.hpp"
#include "observe/access_log.hpp"
#include "server/core_turns.hpp"
#include "server/watchdog.hpp"
#include "upstream/pool.hpp"

namespace im::server {

// What workers tell the control thread (called on the worker's thread; the
// implementation posts to the control loop).
struct WorkerEvents {
    // `config_epoch` says which config the indexes belong to (a reload may reorder).
    std::function<void(std::uint64_t config_epoch, int group, std::size_t target, std::string_view why)>
        target_failed;
};

// An address to listen on and whether it speaks HTTPS.
struct Listen {
    config::Address address;
    bool https = false;
    bool operator==(const Listen&) const = default;
};
// Every address of `config` (server.listen, then tls.listen).
std::vector<Listen> listen_addresses(const config::Config& config);

// A listening socket bound to `address` with SO_REUSEPORT (every worker has
// its own; the kernel spreads connections). Throws with the address.
int open_listener(const config::Address& address);

class Worker {
public:
    Worker(unsigned index, int access_log_fd, WorkerEvents events);

    // Takes a listening socket (from open_listener) for `address`; before
    // run(), or through post() on the worker's thread.
    void add_listener(const Listen& listen, int fd);
    void run();  // on the worker's own thread, until stopped
    // The following are called through post() on the worker's thread.
    void remove_listener(const Listen& listen);  // connections it accepted go on
    void publish(std::shared_ptr<const core::Snapshot> snapshot);
    void begin_drain();  // stop accepting; finish in-flight requests; close idle
    void stop();

    // One thread runs it: no locking for socket operations; posts from the
    // control thread (snapshots, drain) stay thread-safe.
    boost::asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    const std::shared_ptr<const core::Snapshot>& snapshot() const { return snapshot_; }
    unsigned index() const { return index_; }
    bool draining() const { return draining_; }

    Watchdog watchdog;
    http::DateCache date;
    upstream::Pools pools;
    observe::AccessLog access_log;
    WorkerEvents events;
    std::uint32_t roll();  // a cheap random number (xorshift), for weighted forwards
    // Open client connections, counted from their accept (read by the control
    // loop and by the other workers' accept loops).
    std::atomic<std::size_t> clients{0};
    WorkerPresence presence;  // for the other workers' turns (server/core_turns.hpp)
    // All workers, this one included, to share new connections with (before run()).
    void set_workers(std::vector<Worker*> all) { workers_ = std::move(all); }

private:
    boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, bool https);
    boost::asio::awaitable<void> tick_loop();
    void run_taking_turns();
    Worker& least_busy();
    void hand_over(Worker& to, boost::asio::ip::tcp::socket socket, bool https);
    void take_over(int fd, boost::asio::ip::tcp protocol, bool https);  // on this worker's thread

    unsigned index_;
    std::shared_ptr<const core::Snapshot> snapshot_;
    struct Listener {
        Listen listen;
        std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    };
    std::vector<Listener> listeners_;
    bool running_loop_ = false;
    bool draining_ = false;
    std::uint32_t random_state_;
    bool running_ = true;
    std::vector<Worker*> workers_;
};

}  // namespace im::server
