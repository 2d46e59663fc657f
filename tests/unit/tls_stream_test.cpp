// TlsStream (tls/stream.hpp) on real loopback TCP connections, a server and a
// client stream in one io_context: what is written arrives whole and in order
// (records gathered for one send, or sent one by one, or held up by a peer
// that does not read), a write of two records leaves in one TCP segment, and reads
// smaller than a record get the rest of it from OpenSSL, not from the silent socket.
#include "tls/stream.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using im::tls::TlsStream;

// The start of the kernel's struct tcp_info (linux/tcp.h, fields only ever
// appended) up to tcpi_data_segs_out, which glibc's netinet/tcp.h lacks; the
// two headers cannot both be included.
struct KernelTcpInfo {
    std::uint8_t flags[8];
    std::uint32_t rto_to_total_retrans[24];
    std::uint64_t pacing_rate_to_bytes_received[4];
    std::uint32_t segs_out, segs_in, notsent_bytes, min_rtt, data_segs_in, data_segs_out;
};
static_assert(offsetof(KernelTcpInfo, data_segs_out) == 156);

// A throwaway self-signed P-256 certificate, made in memory.
struct SelfSigned {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    SelfSigned() {
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), -60);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("test"), -1, -1,
                                   0);
        X509_set_issuer_name(cert, name);
        X509_set_pubkey(cert, key);
        X509_sign(cert, key, EVP_sha256());
    }
    ~SelfSigned() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
};

asio::awaitable<void> handshake(TlsStream& s, TlsStream::Role role, int& done) {
    auto ec = co_await s.handshake(role);
    EXPECT_FALSE(ec) << ec.message();
    ++done;
}

// No coroutine of these tests may end by an exception unseen.
void rethrow(std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
}

// A connected TLS pair on 127.0.0.1, handshaken.
struct Pair {
    SelfSigned identity;
    asio::io_context io;
    asio::ssl::context server_context{asio::ssl::context::tls_server};
    asio::ssl::context client_context{asio::ssl::context::tls_client};
    tcp::socket server_socket{io};
    tcp::socket client_socket{io};
    std::unique_ptr<TlsStream> server, client;

    Pair() {
        SSL_CTX_use_certificate(server_context.native_handle(), identity.cert);
        SSL_CTX_use_PrivateKey(server_context.native_handle(), identity.key);
        tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
        client_socket.connect(acceptor.local_endpoint());
        acceptor.accept(server_socket);
        for (auto* s : {&server_socket, &client_socket}) s->set_option(tcp::no_delay(true));
        server = std::make_unique<TlsStream>(server_socket, server_context);
        client = std::make_unique<TlsStream>(client_socket, client_context);
        int done = 0;
        asio::co_spawn(io, handshake(*server, TlsStream::Role::server, done), rethrow);
        asio::co_spawn(io, handshake(*client, TlsStream::Role::client, done), rethrow);
        io.run();
        io.restart();
        EXPECT_EQ(done, 2);
    }

    // Data segments the server's socket has sent so far (TCP_INFO).
    unsigned segments_out() {
        KernelTcpInfo info{};
        socklen_t size = sizeof info;
        getsockopt(server_socket.native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size);
        EXPECT_GE(size, sizeof info) << "kernel without tcpi_data_segs_out (4.6+)";
        return info.data_segs_out;
    }
};

asio::awaitable<void> read_exactly(TlsStream& s, std::size_t n, std::string& got,
                                   std::size_t buffer_size = 64 * 1024) {
    std::vector<char> buf(buffer_size);
    while (got.size() < n) {
        auto [ec, k] = co_await s.read_some(asio::buffer(buf));
        if (ec) {
            ADD_FAILURE() << "read after " << got.size() << " bytes: " << ec.message();
            co_return;
        }
        got.append(buf.data(), k);
    }
}

// Writes `bytes` in pieces of `piece` (the whole at once by default), then sets `written`.
// (Coroutines here are functions, not lambdas: a lambda's captures would die with it
// before co_spawn runs the body.)
asio::awaitable<void> write_all(TlsStream& s, const std::string& bytes, bool& written,
                                std::size_t piece = std::string::npos) {
    for (std::size_t at = 0; at < bytes.size();) {
        auto n = std::min(piece, bytes.size() - at);
        auto [ec, k] = co_await s.write(asio::buffer(bytes.data() + at, n));
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(k, n);
        if (ec) co_return;
        at += n;
    }
    written = true;
}

std::string pattern(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
    return s;
}

asio::awaitable<void> write_each(TlsStream& s, const std::string& bytes, const std::vector<std::size_t>& sizes) {
    std::size_t at = 0;
    for (auto n : sizes) {
        auto [ec, k] = co_await s.write(asio::buffer(bytes.data() + at, n));
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(k, n);
        at += n;
    }
}

TEST(TlsStream, WritesOfEverySizeArriveWholeAndInOrder) {
    Pair p;
    std::vector<std::size_t> sizes = {1, 100, 16383, 16384, 16385, 32768, 40000, 100000, 5, 1 << 20};
    std::string sent;
    for (std::size_t i = 0; i < sizes.size(); ++i) sent += pattern(sizes[i], static_cast<char>('a' + i));
    std::string got;
    asio::co_spawn(p.io, read_exactly(*p.client, sent.size(), got), rethrow);
    asio::co_spawn(p.io, write_each(*p.server, sent, sizes), rethrow);
    p.io.run();
    EXPECT_EQ(got.size(), sent.size());
    EXPECT_TRUE(got == sent);
}

TEST(TlsStream, TwoRecordsLeaveInOneSegment) {
    Pair p;
    std::string body = pattern(27000, 'x');  // a batch of ten 2.7 KB HTTP/2 answers
    std::string got;
    bool written = false;
    unsigned before = p.segments_out();
    asio::co_spawn(p.io, read_exactly(*p.client, body.size(), got), rethrow);
    asio::co_spawn(p.io, write_all(*p.server, body, written), rethrow);
    p.io.run();
    EXPECT_TRUE(written);
    EXPECT_TRUE(got == body);
    EXPECT_EQ(p.segments_out() - before, 1u);
}

asio::awaitable<void> read_late(asio::io_context& io, TlsStream& s, std::size_t n, std::string& got,
                                const bool& written) {
    asio::steady_timer late(io, std::chrono::milliseconds(200));
    co_await late.async_wait(asio::use_awaitable);
    EXPECT_FALSE(written);  // held up by the full socket, not failed
    co_await read_exactly(s, n, got);
}

TEST(TlsStream, AWriteToAPeerThatReadsLateCompletesWhenItReads) {
    Pair p;
    std::string body = pattern(32 << 20, 'q');  // far more than the kernel's buffers hold
    std::string got;
    bool written = false;
    asio::co_spawn(p.io, read_late(p.io, *p.client, body.size(), got, written), rethrow);
    asio::co_spawn(p.io, write_all(*p.server, body, written), rethrow);
    p.io.run();
    EXPECT_TRUE(written);
    EXPECT_TRUE(got == body);
}

// Closes the socket when `timer` expires, unless cancelled first: a read that waits for bytes
// that will never come ends with an error instead of hanging the test.
asio::awaitable<void> deadline(asio::steady_timer& timer, tcp::socket& socket) {
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec) socket.close();
}

asio::awaitable<void> read_then_cancel(TlsStream& s, std::size_t n, std::string& got,
                                       std::size_t buffer_size, asio::steady_timer& timer) {
    co_await read_exactly(s, n, got, buffer_size);
    timer.cancel();
}

TEST(TlsStream, ReadsSmallerThanARecordTakeTheRestFromOpenSSLNotTheSocket) {
    // One full record, then silence: after the first small read the socket has nothing
    // more, and the rest of the record waits inside OpenSSL.
    Pair p;
    std::string body = pattern(16384, 'r');
    std::string got;
    bool written = false;
    asio::steady_timer timer(p.io, std::chrono::seconds(5));
    asio::co_spawn(p.io, deadline(timer, p.client_socket), rethrow);
    asio::co_spawn(p.io, read_then_cancel(*p.client, body.size(), got, 1000, timer), rethrow);
    asio::co_spawn(p.io, write_all(*p.server, body, written), rethrow);
    p.io.run();
    EXPECT_TRUE(written);
    EXPECT_EQ(got.size(), body.size());
    EXPECT_TRUE(got == body);
}

TEST(TlsStream, BothDirectionsAtOnceStayIntact) {
    // The server reads while a large write of its own is held up: what OpenSSL
    // writes meanwhile must not overtake the records gathered before it.
    Pair p;
    std::string down = pattern(4 << 20, 'd'), up = pattern(3 << 20, 'u');
    std::string got_down, got_up;
    bool down_written = false, up_written = false;
    asio::co_spawn(p.io, read_exactly(*p.client, down.size(), got_down), rethrow);
    asio::co_spawn(p.io, read_exactly(*p.server, up.size(), got_up), rethrow);
    asio::co_spawn(p.io, write_all(*p.server, down, down_written, 100000), rethrow);
    asio::co_spawn(p.io, write_all(*p.client, up, up_written, 100000), rethrow);
    p.io.run();
    EXPECT_TRUE(down_written && up_written);
    EXPECT_TRUE(got_down == down);
    EXPECT_TRUE(got_up == up);
}

}  // namespace
