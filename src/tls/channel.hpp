// The bytes of one connection, in the clear or through TLS: the request
// phases read and write through a Channel and never care which. Timeouts
// still close the TCP socket underneath, which fails a TLS operation too.
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <iterator>
#include <span>
#include <tuple>
#include <type_traits>

#include <sys/socket.h>
#include <sys/uio.h>

#include "tls/socket_read.hpp"
#include "tls/stream.hpp"

namespace im::tls {

// The bytes of one exchange that is not a connection of its own: an HTTP/2
// stream, which the request phases see as one HTTP/1.1 request and answer.
class Pipe {
public:
    virtual boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer) = 0;
    virtual boost::asio::awaitable<IoResult> write(Pieces buffers) = 0;

protected:
    ~Pipe() = default;
};

constexpr std::size_t kPieces = 8;  // the most pieces a write takes without the event loop

// Writes to a plain socket what it takes at once, without the event loop: asio
// posts the completion of even a write that finished on the spot, and nearly
// every answer is such a write. Returns the bytes written; `ec` is
// would_block when the socket took nothing and the rest must wait.
template <class Buffers>
std::size_t write_at_once(boost::asio::ip::tcp::socket& socket, const Buffers& buffers,
                          boost::system::error_code& ec) {
    // A watchdog may have closed the socket: its number may be another connection's now.
    if (!socket.is_open()) {
        ec = boost::asio::error::bad_descriptor;
        return 0;
    }
    iovec pieces[kPieces];
    int count = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
         ++it) {
        boost::asio::const_buffer b(*it);
        if (b.size() == 0) continue;
        if (count == static_cast<int>(kPieces)) break;
        pieces[count++] = {const_cast<void*>(b.data()), b.size()};
    }
    if (count == 0) return 0;
    constexpr int kFlags = MSG_DONTWAIT | MSG_NOSIGNAL;
    ssize_t n = 0;
    if (count == 1) {
        n = ::send(socket.native_handle(), pieces[0].iov_base, pieces[0].iov_len, kFlags);  // no iovec to import
    } else {
        msghdr message{};
        message.msg_iov = pieces;
        message.msg_iovlen = static_cast<std::size_t>(count);
        n = ::sendmsg(socket.native_handle(), &message, kFlags);
    }
    if (n >= 0) return static_cast<std::size_t>(n);
    ec = errno == EAGAIN || errno == EWOULDBLOCK
             ? boost::system::error_code(boost::asio::error::would_block)
             : boost::system::error_code(errno, boost::system::system_category());
    return 0;
}

namespace detail {

// A plain socket's write: what it takes at once, then the rest through the event loop.
template <class Buffers>
boost::asio::awaitable<IoResult> write_socket(boost::asio::ip::tcp::socket& socket,
                                              Buffers buffers) {
    constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
    auto begin = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    // Our writes are a few pieces (head, body, chunk framing).
    if (static_cast<std::size_t>(std::distance(begin, end)) > kPieces)
        co_return co_await boost::asio::async_write(socket, buffers, nothrow);
    boost::system::error_code ec;
    std::size_t done = write_at_once(socket, buffers, ec);
    if (ec && ec != boost::asio::error::would_block) co_return IoResult{ec, done};
    // The socket is full: the rest waits for room, as asio's composed write does.
    std::array<boost::asio::const_buffer, kPieces> rest;
    std::size_t count = 0, skip = done;
    for (auto it = begin; it != end; ++it) {
        boost::asio::const_buffer b(*it);
        if (skip >= b.size()) {
            skip -= b.size();
            continue;
        }
        rest[count++] = b + skip;
        skip = 0;
    }
    if (count == 0) co_return IoResult{boost::system::error_code{}, done};
    auto [wec, n] = co_await boost::asio::async_write(
        socket, std::span<const boost::asio::const_buffer>(rest.data(), count), nothrow);
    co_return IoResult{wec, done + n};
}

}  // namespace detail

// Not coroutines themselves: each hands out the awaitable of the operation that
// does the work (a TLS stream's, a pipe's, the socket's). A coroutine frame of
// their own, per read and per write, was a tenth of the frames of a proxied request.
struct Channel {
    boost::asio::ip::tcp::socket* socket;
    TlsStream* tls;  // null: plain TCP
    Pipe* pipe = nullptr;  // set: neither (an HTTP/2 stream)

    template <class Buffers>
    boost::asio::awaitable<IoResult> read_some(const Buffers& buffers) const {
        constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
        if (pipe) return pipe->read_some(*boost::asio::buffer_sequence_begin(buffers));
        if (tls) return tls->read_some(*boost::asio::buffer_sequence_begin(buffers));
        if constexpr (std::is_convertible_v<Buffers, boost::asio::mutable_buffer>)
            return async_read_socket(*socket, buffers, nothrow);
        else
            return socket->async_read_some(buffers, nothrow);
    }

    template <class Buffers>
    boost::asio::awaitable<IoResult> write(const Buffers& buffers) const {
        if (!pipe && !tls) return detail::write_socket(*socket, buffers);
        Pieces parts(buffers);
        if (pipe) return pipe->write(parts);
        if (parts.size() == 1) return tls->write(parts[0]);
        return tls->write(parts);
    }
};

}  // namespace im::tls
