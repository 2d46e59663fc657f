#include "tls/stream.hpp"

#include "tls/socket_read.hpp"

#include <openssl/err.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <climits>
#include <cstring>
#include <sys/socket.h>
#include <stdexcept>

namespace im::tls {

namespace asio = boost::asio;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kInput = 16 * 1024 + 512;  // a whole TLS record and its header
constexpr std::size_t kRecord = 16 * 1024;       // the most plaintext one TLS record carries
// Records gathered for one send: two, as a batch of HTTP/2 answers often is.
// A connection whose client does not read holds at most this much beyond the kernel's buffer.
constexpr std::size_t kGathered = 2 * kRecord;

int chunk(std::size_t size) { return static_cast<int>(std::min<std::size_t>(size, INT_MAX)); }

// A source/sink BIO type of ours, ready for use on creation; its data is the TlsStream.
BIO_METHOD* new_method(const char* name, long (*control)(BIO*, int, long, void*)) {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
    BIO_meth_set_ctrl(m, control);
    BIO_meth_set_create(m, [](BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    });
    return m;
}

}  // namespace

// OpenSSL's read side: hands out the bytes in TlsStream::in_, or asks to be
// called again (SSL_ERROR_WANT_READ) when there are none.
struct InputBio {
    static int read(BIO* bio, char* out, int size) {
        auto& s = *static_cast<TlsStream*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        std::size_t n = std::min(static_cast<std::size_t>(size), s.end_ - s.begin_);
        if (n == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }
        std::memcpy(out, s.in_.get() + s.begin_, n);
        s.begin_ += n;
        if (s.begin_ == s.end_) s.begin_ = s.end_ = 0;
        return static_cast<int>(n);
    }
    static long control(BIO* bio, int command, long, void*) {
        auto& s = *static_cast<TlsStream*>(BIO_get_data(bio));
        switch (command) {
        case BIO_CTRL_PENDING: return static_cast<long>(s.end_ - s.begin_);
        case BIO_CTRL_FLUSH: return 1;
        default: return 0;
        }
    }
    static BIO_METHOD* method() {
        static BIO_METHOD* made = [] {
            BIO_METHOD* m = new_method("intermission input", control);
            BIO_meth_set_read(m, read);
            return m;
        }();
        return made;
    }
};

// OpenSSL's write side: straight to the socket, as its socket BIO does, except
// while write() gathers the records of a large write (or bytes gathered are
// still unsent: the order must hold), when they go to TlsStream::out_ for one
// send. A write of two records was two sends, two TCP segments and two
// wakeups of the client: a batch of HTTP/2 answers is usually that.
struct OutputBio {
    static int write(BIO* bio, const char* data, int size) {
        auto& s = *static_cast<TlsStream*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (s.gathering_ || s.unsent() > 0) {
            s.out_.append(data, static_cast<std::size_t>(size));
            return size;
        }
        ssize_t n = ::send(s.socket_.native_handle(), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<int>(n);
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
        return -1;
    }
    static long control(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }
    static BIO_METHOD* method() {
        static BIO_METHOD* made = [] {
            BIO_METHOD* m = new_method("intermission output", control);
            BIO_meth_set_write(m, write);
            return m;
        }();
        return made;
    }
};

TlsStream::TlsStream(asio::ip::tcp::socket& socket, asio::ssl::context& context)
    : socket_(socket), ssl_(SSL_new(context.native_handle())), in_(std::make_unique_for_overwrite<char[]>(kInput)) {
    if (!ssl_) throw std::runtime_error("SSL_new failed");
    // As asio's own stream: a write may end after a record, and its retry may
    // come from another address; idle connections give their buffers back.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                           SSL_MODE_RELEASE_BUFFERS);
    boost::system::error_code ignored;
    socket_.native_non_blocking(true, ignored);
    BIO* input = BIO_new(InputBio::method());
    BIO_set_data(input, this);
    BIO* output = BIO_new(OutputBio::method());
    BIO_set_data(output, this);
    SSL_set_bio(ssl_, input, output);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

asio::awaitable<TlsStream::Step> TlsStream::receive(boost::system::error_code& ec) {
    auto [rec, n] =
        co_await async_read_socket(socket_, asio::buffer(in_.get() + end_, kInput - end_), nothrow);
    end_ += n;
    if (!rec) co_return Step::again;
    // The connection ended without close_notify (that one would have ended SSL_read).
    ec = rec == asio::error::eof ? boost::system::error_code(asio::ssl::error::stream_truncated)
                                 : rec;
    co_return Step::failed;
}

bool TlsStream::nothing_to_read() const {
    return begin_ == end_ && SSL_has_pending(ssl_) == 0 && SSL_get_shutdown(ssl_) == 0 &&
           SSL_is_init_finished(ssl_) == 1;
}

asio::awaitable<TlsStream::Step> TlsStream::settle(int result, boost::system::error_code& ec) {
    int error = SSL_get_error(ssl_, result);
    // Asks for bytes only when it has taken all there were.
    if (error == SSL_ERROR_WANT_READ) co_return co_await receive(ec);
    if (error == SSL_ERROR_WANT_WRITE) {
        auto [wec] = co_await socket_.async_wait(asio::socket_base::wait_write, nothrow);
        ec = wec;
        co_return wec ? Step::failed : Step::again;
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
        ec = asio::error::eof;
    } else if (error == SSL_ERROR_SYSCALL && errno != 0) {
        ec = boost::system::error_code(errno, boost::system::system_category());
    } else {
        unsigned long reason = ERR_get_error();
        bool truncated = reason == 0 || ERR_GET_REASON(reason) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
        ec = truncated ? boost::system::error_code(asio::ssl::error::stream_truncated)
                       : boost::system::error_code(static_cast<int>(reason), asio::error::get_ssl_category());
    }
    ERR_clear_error();
    co_return Step::failed;
}

// Before each OpenSSL call, so that SSL_get_error sees only that call's errors.
// OpenSSL 3's ERR_clear_error frees the file and function name of all 16 queue
// slots even when the queue is empty: 32 calls to free, 1.4 % of the CPU of a
// TLS page request (perf). The queue is nearly always empty.
namespace {
void clear_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
}
}  // namespace

// Every call checks that the socket is still open: a watchdog may have closed
// it meanwhile, and its descriptor number may already belong to another connection.
asio::awaitable<boost::system::error_code> TlsStream::handshake(Role role) {
    if (role == Role::server) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
    boost::system::error_code ec;
    while (socket_.is_open()) {
        clear_errors();
        errno = 0;
        int n = SSL_do_handshake(ssl_);
        if (n == 1) co_return ec;
        if (co_await settle(n, ec) == Step::failed) co_return ec;
    }
    co_return asio::error::bad_descriptor;
}

asio::awaitable<IoResult> TlsStream::read_some(asio::mutable_buffer buffer) {
    boost::system::error_code ec;
    while (socket_.is_open()) {
        // An SSL_read with no bytes to work on could only ask for more: the socket first.
        // That call, SSL_get_error and the error queue checks around them were 1,400
        // instructions, 3 % of a proxied HTTP/1.1 request over TLS (callgrind).
        if (nothing_to_read()) {
            if (co_await receive(ec) == Step::failed) co_return IoResult{ec, 0};
            continue;
        }
        clear_errors();
        errno = 0;
        int n = SSL_read(ssl_, buffer.data(), chunk(buffer.size()));
        if (n > 0) co_return IoResult{ec, static_cast<std::size_t>(n)};
        if (co_await settle(n, ec) == Step::failed) co_return IoResult{ec, 0};
    }
    co_return IoResult{asio::error::bad_descriptor, 0};
}

asio::awaitable<IoResult> TlsStream::write(asio::const_buffer buffer) {
    boost::system::error_code ec;
    const char* data = static_cast<const char*>(buffer.data());
    std::size_t left = buffer.size();
    while (left > 0) {
        if (!socket_.is_open()) co_return IoResult{asio::error::bad_descriptor, buffer.size() - left};
        clear_errors();
        errno = 0;
        // One record per call (partial writes): gathered while more than one is left.
        gathering_ = left > kRecord;
        int n = SSL_write(ssl_, data, chunk(left));
        gathering_ = false;
        if (n > 0) {
            data += n;
            left -= static_cast<std::size_t>(n);
            if (left > 0 && unsent() < kGathered) continue;
        }
        if (unsent() > 0) {
            if ((ec = co_await send_gathered())) co_return IoResult{ec, buffer.size() - left};
        }
        if (n <= 0 && co_await settle(n, ec) == Step::failed) co_return IoResult{ec, buffer.size() - left};
    }
    co_return IoResult{ec, buffer.size()};
}

asio::awaitable<boost::system::error_code> TlsStream::send_gathered() {
    while (unsent() > 0) {
        if (!socket_.is_open()) co_return asio::error::bad_descriptor;
        ssize_t n = ::send(socket_.native_handle(), out_.data() + sent_, unsent(), MSG_NOSIGNAL);
        if (n > 0) {
            sent_ += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_write, nothrow);
            if (ec) co_return ec;
        } else if (n < 0 && errno != EINTR) {
            co_return boost::system::error_code(errno, boost::system::system_category());
        }
    }
    out_.clear();
    sent_ = 0;
    if (out_.capacity() > kGathered + kInput) out_ = std::string();  // a reader's bytes came too
    co_return boost::system::error_code{};
}

asio::awaitable<IoResult> TlsStream::write(Pieces buffers) {
    std::size_t total = 0;
    std::size_t i = 0, offset = 0;  // the next byte: buffers[i], at offset
    auto rest = [&] { return buffers[i].size() - offset; };
    auto at = [&] { return static_cast<const char*>(buffers[i].data()) + offset; };
    while (i < buffers.size()) {
        if (rest() == 0) {
            ++i;
            offset = 0;
            continue;
        }
        if (rest() >= kRecord) {  // big enough to go as it is
            auto [ec, n] = co_await write(asio::buffer(at(), rest()));
            total += n;
            if (ec) co_return IoResult{ec, total};
            ++i;
            offset = 0;
            continue;
        }
        gathered_.clear();
        while (i < buffers.size() && gathered_.size() < kRecord) {
            std::size_t n = std::min(rest(), kRecord - gathered_.size());
            gathered_.append(at(), n);
            offset += n;
            if (rest() == 0) {
                ++i;
                offset = 0;
            }
        }
        auto [ec, n] = co_await write(asio::buffer(gathered_));
        total += n;
        if (ec) co_return IoResult{ec, total};
    }
    if (gathered_.capacity() > kRecord) gathered_ = std::string();
    co_return IoResult{boost::system::error_code{}, total};
}

}  // namespace im::tls
