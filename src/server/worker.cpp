#include "server/worker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "http/session.hpp"
#include "server/core_turns.hpp"
#include "tls/socket_read.hpp"

namespace im::server {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

tcp::endpoint to_endpoint(const config::Address& a) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(a.host, ec);
    if (ec) throw std::runtime_error("listen address " + a.text() + ": not an IP address");
    return {ip, a.port};
}
}  // namespace

int open_listener(const config::Address& a) {
    auto ep = to_endpoint(a);
    auto fail = [&](const char* what) -> int {
        throw std::runtime_error("cannot listen on " + a.text() + ": " + what + ": " + std::strerror(errno));
    };
    int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return fail("socket");
    int one = 1;
    bool ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
              ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
    const char* step = "setsockopt";
    if (ok) {
        step = "bind";
        ok = ::bind(fd, ep.data(), static_cast<socklen_t>(ep.size())) == 0;
    }
    if (ok) {
        step = "listen";
        ok = ::listen(fd, 4096) == 0;
    }
    if (!ok) {
        int saved = errno;
        ::close(fd);
        errno = saved;
        return fail(step);
    }
    return fd;
}

Worker::Worker(unsigned index, int access_log_fd, WorkerEvents ev)
    : access_log(access_log_fd), events(std::move(ev)), index_(index),
      random_state_(static_cast<std::uint32_t>(Clock::now().time_since_epoch().count()) | 1u) {}

std::uint32_t Worker::roll() {
    std::uint32_t x = random_state_;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return random_state_ = x;
}

std::vector<Listen> listen_addresses(const config::Config& config) {
    std::vector<Listen> out;
    for (const auto& a : config.server.listen) out.push_back({a, false});
    if (config.tls.enabled)
        for (const auto& a : config.tls.listen) out.push_back({a, true});
    return out;
}

void Worker::add_listener(const Listen& listen, int fd) {
    const auto& address = listen.address;
    auto acceptor = std::make_unique<tcp::acceptor>(io);
    auto ep = to_endpoint(address);
    boost::system::error_code ec;
    acceptor->assign(ep.protocol(), fd, ec);
    if (ec) {
        ::close(fd);
        throw std::runtime_error("cannot listen on " + address.text() + ": " + ec.message());
    }
    if (running_loop_) asio::co_spawn(io, accept_loop(*acceptor, listen.https), asio::detached);
    listeners_.push_back({listen, std::move(acceptor)});
}

void Worker::remove_listener(const Listen& listen) {
    std::erase_if(listeners_, [&](Listener& l) {
        if (!(l.listen == listen)) return false;
        boost::system::error_code ignored;
        l.acceptor->close(ignored);
        // The accept loop still refers to the acceptor until it sees the close.
        asio::post(io, [a = std::shared_ptr<tcp::acceptor>(std::move(l.acceptor))] {});
        return true;
    });
}

void Worker::run() {
    running_loop_ = true;
    for (auto& l : listeners_) asio::co_spawn(io, accept_loop(*l.acceptor, l.listen.https), asio::detached);
    asio::co_spawn(io, tick_loop(), asio::detached);
    run_taking_turns();
}

// io.run(), except that a worker busy for a whole turn yields its core to the
// threads waiting on it (server/core_turns.hpp says why).
void Worker::run_taking_turns() {
    // Handlers between two looks at the clock: a few microseconds each, so a
    // batch is well inside a turn (64 let a 250 µs turn run long).
    constexpr int batch = 16;
    presence.publish_thread();
    std::vector<SiblingWorker> siblings;
    for (Worker* w : workers_)
        if (w != this) siblings.emplace_back(w->presence);
    auto a_worker_waits = [&](CoreTurns::Clock::time_point now) {
        int cpu = ::sched_getcpu();
        for (const auto& s : siblings)
            if (s.waits_on(cpu, now)) return true;
        return false;
    };
    CoreTurns turns;
    for (;;) {
        for (int i = 0; i < batch && io.run_one(); ++i) {
        }
        if (io.stopped()) return;
        auto now = CoreTurns::Clock::now();
        presence.last_batch.store(now.time_since_epoch().count(), std::memory_order_relaxed);
        switch (turns.after_batch(thread_context_switches(), now)) {
            case CoreTurns::Next::run_on:
                break;
            case CoreTurns::Next::yield_if_a_worker_waits:
                if (!a_worker_waits(now)) break;
                turns.yielded(now);
                ::sched_yield();
                break;
            case CoreTurns::Next::yield:
                ::sched_yield();
                break;
        }
    }
}

void Worker::publish(std::shared_ptr<const core::Snapshot> snapshot) {
    pools.adopt(snapshot->config);
    if (snapshot_ && snapshot_->health != snapshot->health) {
        pools.forget_local_failures();
        // A target found down most likely lost the connections it had: reusing
        // one after it recovers would cost a request a failed round trip.
        pools.close_idle_where(snapshot->health->healthy, 0);
    }
    // A drained target gets no new requests: its idle connections have no use.
    if (!snapshot_ || snapshot_->drained != snapshot->drained) pools.close_idle_where(*snapshot->drained, 1);
    bool reloaded = snapshot_ && snapshot_->config != snapshot->config;
    snapshot_ = std::move(snapshot);
    // HTTP/2 connections outlive many requests: GOAWAY makes their clients reconnect to the new config.
    if (reloaded) watchdog.reloaded();
}

void Worker::begin_drain() {
    draining_ = true;
    for (auto& l : listeners_) {
        boost::system::error_code ignored;
        l.acceptor->close(ignored);
    }
    pools.close_all();
    watchdog.close_idle();
}

void Worker::stop() {
    running_ = false;
    access_log.flush();
    io.stop();
}

asio::awaitable<void> Worker::accept_loop(tcp::acceptor& acceptor, bool https) {
    while (acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
            // Out of descriptors or similar: say so, back off briefly, keep serving.
            spdlog::warn("worker {}: accept failed: {}", index_, ec.message());
            asio::steady_timer pause(io, std::chrono::milliseconds(50));
            co_await pause.async_wait(nothrow);
            continue;
        }
        if (draining_ || !snapshot_) continue;
        socket.set_option(tcp::no_delay(true), ec);
        tls::report_queued_bytes(socket);
        Worker& to = least_busy();
        ++to.clients;  // now: the accepts that follow see it before its session starts
        if (&to != this) {
            hand_over(to, std::move(socket), https);
            continue;
        }
        asio::co_spawn(io, http::serve_client(*this, std::move(socket), https), asio::detached);
    }
}

// The kernel spreads connections over the workers' listeners by a hash of their
// addresses: 64 keep-alive benchmark connections came out about 40 to 24, one
// worker 51 % busy and the other 32 %. A worker with two more connections than
// another gives it the new one, as HAProxy balances its threads.
Worker& Worker::least_busy() {
    Worker* best = this;
    std::size_t fewest = clients.load(std::memory_order_relaxed);
    for (Worker* w : workers_) {
        std::size_t open = w->clients.load(std::memory_order_relaxed);
        if (open < fewest) {
            best = w;
            fewest = open;
        }
    }
    bool worth_it = fewest + 1 < clients.load(std::memory_order_relaxed);
    return worth_it ? *best : *this;
}

void Worker::hand_over(Worker& to, tcp::socket socket, bool https) {
    boost::system::error_code ec;
    auto protocol = socket.local_endpoint(ec).protocol();
    int fd = ec ? -1 : socket.release(ec);  // leaves this worker's epoll
    if (ec || fd < 0) {
        --to.clients;
        ++clients;
        asio::co_spawn(io, http::serve_client(*this, std::move(socket), https), asio::detached);
        return;
    }
    asio::post(to.io, [&to, fd, protocol, https] { to.take_over(fd, protocol, https); });
}

void Worker::take_over(int fd, tcp protocol, bool https) {
    tcp::socket socket(io);
    boost::system::error_code ec;
    if (!draining_ && snapshot_) socket.assign(protocol, fd, ec);
    if (!socket.is_open()) {
        ::close(fd);  // shutting down, or the descriptor would not join this worker's epoll
        --clients;
        return;
    }
    asio::co_spawn(io, http::serve_client(*this, std::move(socket), https), asio::detached);
}

asio::awaitable<void> Worker::tick_loop() {
    asio::steady_timer timer(io);
    while (running_) {
        auto now = Clock::now();
        watchdog.tick(now);
        std::time_t wall = std::time(nullptr);
        date.refresh(wall);
        access_log.set_time(wall);
        access_log.flush();
        pools.close_idle(now);
        timer.expires_after(Watchdog::kTick);
        co_await timer.async_wait(nothrow);
    }
}

}  // namespace im::server
