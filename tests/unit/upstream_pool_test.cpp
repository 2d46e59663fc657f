// TargetPool and Pools (upstream/pool.hpp) with real loopback TCP connections:
// which idle connection is taken, which are dropped (closed by the target,
// written to by it, over max_idle, idle too long), and which targets' idle
// connections a health or drain verdict closes.
#include "upstream/pool.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using im::upstream::Connection;
using im::upstream::Pools;
using im::upstream::TargetPool;

// One listening "target"; each connect() gives our end (a pooled Connection)
// and the target's end of a fresh connection.
struct Target {
    asio::io_context io;
    tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
    std::vector<std::unique_ptr<tcp::socket>> ends;  // the target's side, kept open

    std::unique_ptr<Connection> connect() {
        auto c = std::make_unique<Connection>(io);
        c->socket.connect(acceptor.local_endpoint());
        ends.push_back(std::make_unique<tcp::socket>(acceptor.accept()));
        return c;
    }
    tcp::socket& end(std::size_t i) { return *ends[i]; }
};

// Loopback delivers at once, except when the kernel defers it to ksoftirqd
// on a busy machine: wait until what the target did is visible on our side.
void wait_until_readable(Connection& c) {
    pollfd p{c.socket.native_handle(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1);
}

const auto t0 = im::upstream::Clock::time_point{} + std::chrono::hours(1);

TEST(TargetPool, TakesTheMostRecentlyReturnedFirst) {
    Target target;
    TargetPool pool;
    auto a = target.connect();
    auto b = target.connect();
    Connection* b_ptr = b.get();
    pool.give_back(std::move(a), t0, 8);
    pool.give_back(std::move(b), t0, 8);
    EXPECT_EQ(pool.take(false).get(), b_ptr);
    EXPECT_EQ(pool.idle_count(), 1u);
}

TEST(TargetPool, KeepsNoMoreThanMaxIdle) {
    Target target;
    TargetPool pool;
    for (int i = 0; i < 3; ++i) pool.give_back(target.connect(), t0, 2);
    EXPECT_EQ(pool.idle_count(), 2u);
}

TEST(TargetPool, ClosesConnectionsIdleForTheIdleTimeout) {
    Target target;
    TargetPool pool;
    pool.give_back(target.connect(), t0, 8);
    pool.give_back(target.connect(), t0 + std::chrono::seconds(5), 8);
    pool.close_idle(t0 + std::chrono::seconds(10), std::chrono::seconds(10));
    EXPECT_EQ(pool.idle_count(), 1u);  // the older one; the newer has 5 s to go
}

TEST(TargetPool, CheckedTakeSkipsAConnectionTheTargetClosed) {
    Target target;
    TargetPool pool;
    auto kept = target.connect();
    Connection* kept_ptr = kept.get();
    auto closed = target.connect();
    target.end(1).close();  // FIN on our side
    wait_until_readable(*closed);
    pool.give_back(std::move(kept), t0, 8);
    pool.give_back(std::move(closed), t0, 8);  // the most recent one: taken first
    EXPECT_EQ(pool.take(true).get(), kept_ptr);
    EXPECT_EQ(pool.idle_count(), 0u);
}

TEST(TargetPool, CheckedTakeSkipsAConnectionTheTargetWroteTo) {
    Target target;
    TargetPool pool;
    auto c = target.connect();
    asio::write(target.end(0), asio::buffer("HTTP/1.1 408 Request Timeout\r\n\r\n"));
    wait_until_readable(*c);
    pool.give_back(std::move(c), t0, 8);
    EXPECT_EQ(pool.take(true), nullptr);
}

TEST(TargetPool, UncheckedTakeLeavesTheCheckToTheRequest) {
    Target target;
    TargetPool pool;
    pool.give_back(target.connect(), t0, 8);
    target.end(0).close();
    EXPECT_NE(pool.take(false), nullptr);  // a GET finds out by itself and is retried
}

TEST(TargetPool, CheckedTakeKeepsAQuietOpenConnection) {
    Target target;
    TargetPool pool;
    pool.give_back(target.connect(), t0, 8);
    EXPECT_NE(pool.take(true), nullptr);
}

std::shared_ptr<const im::config::Config> two_groups() {
    auto config = std::make_shared<im::config::Config>();
    for (int g = 0; g < 2; ++g) {
        auto& group = config->target_groups.emplace_back();
        group.targets.resize(2);
        group.targets[0].port = 1000;
        group.targets[1].port = 1001;
    }
    return config;
}

TEST(Pools, ClosesTheIdleConnectionsOfFlaggedTargetsOnly) {
    Target target;
    Pools pools;
    pools.adopt(two_groups());
    auto& table = *pools.table();
    for (int g = 0; g < 2; ++g)
        for (std::size_t t = 0; t < 2; ++t) table.at(g, t).give_back(target.connect(), t0, 8);
    // As a health view: [group][target] = healthy; the unhealthy ones lose their idle connections.
    pools.close_idle_where({{1, 0}, {1, 1}}, 0);
    EXPECT_EQ(table.at(0, 0).idle_count(), 1u);
    EXPECT_EQ(table.at(0, 1).idle_count(), 0u);
    EXPECT_EQ(table.at(1, 0).idle_count(), 1u);
    EXPECT_EQ(table.at(1, 1).idle_count(), 1u);
    // As drained flags: [group][target] = drained.
    pools.close_idle_where({{0, 0}, {1, 0}}, 1);
    EXPECT_EQ(table.at(0, 0).idle_count(), 1u);
    EXPECT_EQ(table.at(1, 0).idle_count(), 0u);
    EXPECT_EQ(table.at(1, 1).idle_count(), 1u);
}

}  // namespace
