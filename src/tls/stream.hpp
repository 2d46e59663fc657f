// A TLS connection on its TCP socket. OpenSSL writes straight to the socket
// (a BIO of ours; the records of a large write are gathered for one send) and
// reads what asio read into one buffer (another BIO of ours).
// boost::asio::ssl::stream goes through a memory BIO pair and two 17 KiB
// buffers instead: two more copies of every byte and a state machine per
// operation, a fifth of the CPU of an HTTP/2 page request by the profile.
// Reads go through async_read_socket (socket_read.hpp): after a read that
// emptied the socket, the next one waits for epoll without a syscall.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>

namespace im::tls {

using IoResult = std::tuple<boost::system::error_code, std::size_t>;
// The buffers of one write, by value: the coroutine that writes them keeps
// its own list, so a caller may hand the write on without a frame of its own
// to keep the list in (the bytes must live until the write ends, as ever).
// A buffer or a std::array of a few: our writes are a head, a body and chunk
// framing; a longer list does not compile.
class Pieces {
public:
    static constexpr std::size_t kMost = 8;

    template <class Buffers>
    explicit Pieces(const Buffers& buffers) {
        if constexpr (std::is_convertible_v<Buffers, boost::asio::const_buffer>) {
            items_[count_++] = boost::asio::const_buffer(buffers);
        } else {
            static_assert(std::tuple_size<Buffers>::value <= kMost,
                          "more pieces than one write takes");
            for (const auto& b : buffers) items_[count_++] = boost::asio::const_buffer(b);
        }
    }
    const boost::asio::const_buffer* begin() const { return items_.data(); }
    const boost::asio::const_buffer* end() const { return items_.data() + count_; }
    std::size_t size() const { return count_; }
    const boost::asio::const_buffer& operator[](std::size_t i) const { return items_[i]; }

private:
    std::array<boost::asio::const_buffer, kMost> items_;
    std::size_t count_ = 0;
};

class TlsStream {
public:
    enum class Role { client, server };

    TlsStream(boost::asio::ip::tcp::socket& socket, boost::asio::ssl::context& context);
    ~TlsStream();
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;

    SSL* native_handle() { return ssl_; }

    boost::asio::awaitable<boost::system::error_code> handshake(Role role);
    // Errors as boost::asio::ssl::stream gives them: eof after the peer's
    // close_notify, ssl::error::stream_truncated when the TCP connection ended
    // without one, the OpenSSL reason otherwise.
    boost::asio::awaitable<IoResult> read_some(boost::asio::mutable_buffer buffer);
    // All of `buffer`, or an error.
    boost::asio::awaitable<IoResult> write(boost::asio::const_buffer buffer);
    // All of `buffers`, pieces smaller than a record gathered into one (a head and the
    // start of its body: one record and one socket write, not two).
    boost::asio::awaitable<IoResult> write(Pieces buffers);

  private:
    friend struct InputBio;
    friend struct OutputBio;
    enum class Step { done, again, failed };
    // After an OpenSSL call returned `result`: wait for the socket when it asks
    // for that, else the error.
    boost::asio::awaitable<Step> settle(int result, boost::system::error_code& ec);
    // Reads what the socket has into in_, waiting for it if need be.
    boost::asio::awaitable<Step> receive(boost::system::error_code& ec);
    // Whether OpenSSL has nothing to read a record from (no bytes of ours left, none of
    // its own buffered) and nothing to report without reading (a close_notify, an
    // unfinished handshake).
    bool nothing_to_read() const;

    boost::asio::ip::tcp::socket& socket_;
    SSL* ssl_;
    // Bytes read from the socket that OpenSSL has not taken yet: in_[begin_, end_).
    std::unique_ptr<char[]> in_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    // Sends out_[sent_, end), waiting for the socket as needed.
    boost::asio::awaitable<boost::system::error_code> send_gathered();
    std::size_t unsent() const { return out_.size() - sent_; }

    std::string gathered_;  // write()'s record of small pieces
    // Records of one large write, for one send: out_[sent_, end) is not sent yet.
    std::string out_;
    std::size_t sent_ = 0;
    bool gathering_ = false;
};

}  // namespace im::tls
