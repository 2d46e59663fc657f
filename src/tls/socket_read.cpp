#include "tls/socket_read.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

namespace im::tls {

void report_queued_bytes(boost::asio::ip::tcp::socket& socket) {
    int on = 1;
    // Failure leaves reads as asio's: correct, one recv more per wait.
    (void)::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_INQ, &on, sizeof on);
}

namespace detail {

ad::reactor_op::status receive(int fd, boost::asio::mutable_buffer buffer,
                               boost::system::error_code& ec, std::size_t& bytes) {
    iovec piece{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr message{};
    message.msg_iov = &piece;
    message.msg_iovlen = 1;
    while (true) {
        message.msg_control = control;
        message.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd, &message, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return ad::reactor_op::not_done;
            ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
            bytes = 0;
            return ad::reactor_op::done;
        }
        if (n == 0) {
            ec = boost::asio::error::eof;
            bytes = 0;
            return ad::reactor_op::done;
        }
        ec = {};
        bytes = static_cast<std::size_t>(n);
        for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
            if (c->cmsg_level != IPPROTO_TCP || c->cmsg_type != TCP_CM_INQ) continue;
            int queued = 0;
            std::memcpy(&queued, CMSG_DATA(c), sizeof queued);
            if (queued == 0) return ad::reactor_op::done_and_exhausted;
        }
        return ad::reactor_op::done;
    }
}

namespace {

// Counts event loops shut down: a context remembered by address may have been
// destroyed and another made at the same address (tests make one per case).
std::atomic<std::uint64_t> contexts_ended{0};

struct ContextEnd : boost::asio::execution_context::service {
    using key_type = ContextEnd;
    static inline boost::asio::execution_context::id id;
    explicit ContextEnd(boost::asio::execution_context& ctx) : service(ctx) {}
    void shutdown() override { contexts_ended.fetch_add(1, std::memory_order_release); }
};

}  // namespace

ad::reactor& reactor_of(boost::asio::ip::tcp::socket& socket) {
    // One event loop per thread: remember its reactor rather than look it up
    // in the service registry (a mutex) on every read.
    thread_local boost::asio::execution_context* context = nullptr;
    thread_local ad::reactor* reactor = nullptr;
    thread_local std::uint64_t ended = 0;
    auto& ctx = boost::asio::query(socket.get_executor(), boost::asio::execution::context);
    std::uint64_t now_ended = contexts_ended.load(std::memory_order_acquire);
    if (&ctx != context || now_ended != ended) {
        boost::asio::use_service<ContextEnd>(ctx);  // so that its end is counted
        reactor = &boost::asio::use_service<ad::reactor>(ctx);
        context = &ctx;
        ended = now_ended;
    }
    return *reactor;
}

}  // namespace detail
}  // namespace im::tls
