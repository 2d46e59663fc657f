// The bytes of one connection, in the clear or through TLS: the request
// phases read and write through a Channel and never care which. Timeouts
// still close the TCP socket underneath, which fails a TLS operation too.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/small_vector.hpp>
#include <span>
#include <tuple>

#include "tls/stream.hpp"

namespace im::tls {

// The bytes of one exchange that is not a connection of its own: an HTTP/2
// stream, which the request phases see as one HTTP/1.1 request and answer.
class Pipe {
public:
    virtual boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer) = 0;
    virtual boost::asio::awaitable<IoResult> write(std::span<const boost::asio::const_buffer> buffers) = 0;

protected:
    ~Pipe() = default;
};

struct Channel {
    boost::asio::ip::tcp::socket* socket;
    TlsStream* tls;  // null: plain TCP
    Pipe* pipe = nullptr;  // set: neither (an HTTP/2 stream)

    template <class Buffers>
    boost::asio::awaitable<IoResult> read_some(const Buffers& buffers) const {
        constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
        if (pipe) co_return co_await pipe->read_some(*boost::asio::buffer_sequence_begin(buffers));
        if (tls) co_return co_await tls->read_some(*boost::asio::buffer_sequence_begin(buffers));
        co_return co_await socket->async_read_some(buffers, nothrow);
    }

    template <class Buffers>
    boost::asio::awaitable<IoResult> write(const Buffers& buffers) const {
        constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
        if (pipe || tls) {
            boost::container::small_vector<boost::asio::const_buffer, 4> parts(
                boost::asio::buffer_sequence_begin(buffers), boost::asio::buffer_sequence_end(buffers));
            if (pipe) co_return co_await pipe->write(parts);
            if (parts.size() == 1) co_return co_await tls->write(parts.front());
            co_return co_await tls->write(std::span<const boost::asio::const_buffer>(parts));
        }
        co_return co_await boost::asio::async_write(*socket, buffers, nothrow);
    }
};

}  // namespace im::tls
