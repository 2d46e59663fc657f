#include "server/worker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/session.hpp"

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

void Worker::listen(const std::vector<config::Address>& addresses) {
    for (const auto& a : addresses) {
        auto acceptor = std::make_unique<tcp::acceptor>(io);
        auto ep = to_endpoint(a);
        boost::system::error_code ec;
        acceptor->open(ep.protocol(), ec);
        if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        // Every worker binds the same address; the kernel spreads connections.
        int one = 1;
        if (!ec && ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one,
                                sizeof one) != 0)
            ec.assign(errno, boost::system::system_category());
        if (!ec) acceptor->bind(ep, ec);
        if (!ec) acceptor->listen(4096, ec);
        if (ec) throw std::runtime_error("cannot listen on " + a.text() + ": " + ec.message());
        acceptors_.push_back(std::move(acceptor));
    }
}

void Worker::run() {
    for (auto& a : acceptors_) asio::co_spawn(io, accept_loop(*a), asio::detached);
    asio::co_spawn(io, tick_loop(), asio::detached);
    io.run();
}

void Worker::publish(std::shared_ptr<const core::Snapshot> snapshot) {
    pools.adopt(snapshot->config);
    if (snapshot_ && snapshot_->health != snapshot->health) pools.forget_local_failures();
    snapshot_ = std::move(snapshot);
}

void Worker::begin_drain() {
    draining_ = true;
    for (auto& a : acceptors_) {
        boost::system::error_code ignored;
        a->close(ignored);
    }
    pools.close_all();
    watchdog.close_idle();
}

void Worker::stop() {
    running_ = false;
    access_log.flush();
    io.stop();
}

asio::awaitable<void> Worker::accept_loop(tcp::acceptor& acceptor) {
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
        asio::co_spawn(io, http::serve_client(*this, std::move(socket)), asio::detached);
    }
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
