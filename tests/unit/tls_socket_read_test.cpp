// Reads that know when they emptied the socket (tls/socket_read.hpp), on real
// loopback TCP connections: the kernel's TCP_INQ answer decides whether asio
// waits for epoll before the next read, so these check that contract, and that
// nothing that arrives afterwards (bytes or an end of stream) is missed.
#include "tls/socket_read.hpp"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Status = asio::detail::reactor_op::status;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// A connected pair on 127.0.0.1: `server` reads, `client` writes.
struct Connection {
    asio::io_context io;
    tcp::socket server{io};
    tcp::socket client{io};

    explicit Connection(bool report) {
        tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
        client.connect(acceptor.local_endpoint());
        acceptor.accept(server);
        server.non_blocking(true);
        if (report) im::tls::report_queued_bytes(server);
    }
    void send(const std::string& bytes) { asio::write(client, asio::buffer(bytes)); }
    Status receive(std::string& got, boost::system::error_code& ec) {
        char buf[64];
        std::size_t n = 0;
        Status s = im::tls::detail::receive(static_cast<int>(server.native_handle()),
                                            asio::buffer(buf), ec, n);
        got.assign(buf, n);
        return s;
    }
};

TEST(SocketRead, AReadThatLeavesNothingSaysSo) {
    Connection c(true);
    c.send("abc");
    std::string got;
    boost::system::error_code ec;
    EXPECT_EQ(c.receive(got, ec), Status::done_and_exhausted);
    EXPECT_FALSE(ec);
    EXPECT_EQ(got, "abc");
    EXPECT_EQ(c.receive(got, ec), Status::not_done);  // nothing yet: wait for epoll
}

TEST(SocketRead, AReadThatLeavesBytesDoesNotSayEmptied) {
    Connection c(true);
    c.send(std::string(100, 'x'));  // more than the 64-byte buffer
    std::string got;
    boost::system::error_code ec;
    EXPECT_EQ(c.receive(got, ec), Status::done);
    EXPECT_EQ(got.size(), 64u);
    EXPECT_EQ(c.receive(got, ec), Status::done_and_exhausted);
    EXPECT_EQ(got.size(), 36u);
}

TEST(SocketRead, AnEndOfStreamBehindTheLastBytesCountsAsQueued) {
    Connection c(true);
    c.send("bye");
    c.client.shutdown(tcp::socket::shutdown_send);
    std::string got;
    boost::system::error_code ec;
    // The FIN came with the bytes: no epoll edge will follow, so the next read must go at once.
    EXPECT_EQ(c.receive(got, ec), Status::done);
    EXPECT_EQ(got, "bye");
    EXPECT_EQ(c.receive(got, ec), Status::done);
    EXPECT_EQ(ec, asio::error::eof);
}

TEST(SocketRead, WithoutTheReportNoReadSaysEmptied) {
    Connection c(false);
    c.send("abc");
    std::string got;
    boost::system::error_code ec;
    EXPECT_EQ(c.receive(got, ec), Status::done);  // as asio's own reads: correct, one recv more
    EXPECT_EQ(got, "abc");
}

// Through the event loop: a read after an emptying one waits for epoll and
// still gets what comes later, bytes first, then the end of stream.
TEST(SocketRead, TheEventLoopDeliversWhatComesAfterAnEmptyingRead) {
    Connection c(true);
    std::string seen;
    bool ended = false;
    asio::co_spawn(
        c.io,
        [&]() -> asio::awaitable<void> {
            char buf[64];
            while (true) {
                auto [ec, n] =
                    co_await im::tls::async_read_socket(c.server, asio::buffer(buf), nothrow);
                if (ec) {
                    ended = ec == asio::error::eof;
                    co_return;
                }
                seen.append(buf, n);
            }
        },
        asio::detached);
    asio::co_spawn(
        c.io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer pause(c.io);
            for (const char* part : {"one ", "two ", "three"}) {
                pause.expires_after(std::chrono::milliseconds(20));
                co_await pause.async_wait(nothrow);
                c.send(part);
            }
            c.send(" and out");
            c.client.shutdown(tcp::socket::shutdown_send);  // FIN right behind the last bytes
        },
        asio::detached);
    c.io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(seen, "one two three and out");
    EXPECT_TRUE(ended) << "the end of stream behind the last bytes was not seen";
}

TEST(SocketRead, AClosedSocketFailsTheRead) {
    Connection c(true);
    c.server.close();
    boost::system::error_code got;
    asio::co_spawn(
        c.io,
        [&]() -> asio::awaitable<void> {
            char buf[8];
            auto [ec, n] =
                co_await im::tls::async_read_socket(c.server, asio::buffer(buf), nothrow);
            got = ec;
        },
        asio::detached);
    c.io.run_for(std::chrono::seconds(2));
    EXPECT_EQ(got, asio::error::bad_descriptor);
}

}  // namespace
