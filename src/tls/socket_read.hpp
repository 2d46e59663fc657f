// Reads from a plain TCP socket that know when they emptied it.
//
// asio 1.81 tries every read on the spot before it waits for epoll, and it
// counts a socket as emptied only at end of stream. On a keep-alive
// connection the next request (or the target's answer) is never there yet
// when we ask, so every request paid a recv that failed with EAGAIN: one
// syscall in four on the page, two more on the proxy (nginx and HAProxy ask
// epoll instead). The kernel can say how many bytes stay queued after a read
// (TCP_INQ, Linux 4.18): a read that left nothing tells asio the socket is
// exhausted, and asio then waits for the next epoll event before it reads
// again. A FIN counts as queued (tcp_inq_hint), so an end of stream that came
// with the last bytes is still read at once instead of waiting for an edge
// that will not come.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>
#include <memory>
#include <utility>

// The operation below plugs into asio's epoll reactor the way its own socket
// reads do; that interface is asio's detail, as of Debian 12's Boost.
static_assert(BOOST_VERSION == 108100,
              "socket_read.hpp follows asio 1.81's epoll reactor: check it against this Boost");
#if !defined(BOOST_ASIO_HAS_EPOLL) || defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#error "socket_read.hpp needs asio's epoll reactor"
#endif

namespace im::tls {

// Asks the kernel to report, with every read, the bytes left queued. Without it
// reads still work, only never as "emptied" (asio's own behaviour).
void report_queued_bytes(boost::asio::ip::tcp::socket& socket);

namespace detail {

namespace ad = boost::asio::detail;

// One recvmsg: done, done_and_exhausted when the kernel says nothing is left
// (and no FIN waits), not_done when there was nothing to read yet.
ad::reactor_op::status receive(int fd, boost::asio::mutable_buffer buffer,
                               boost::system::error_code& ec, std::size_t& bytes);

ad::reactor& reactor_of(boost::asio::ip::tcp::socket& socket);

// The socket's descriptor, state and reactor registration: asio keeps them in
// a protected member; a pointer to member formed here reaches it lawfully.
struct SocketInternals : boost::asio::ip::tcp::socket {
    static auto& of(boost::asio::ip::tcp::socket& socket) {
        return (socket.*(&SocketInternals::impl_)).get_implementation();
    }
};

template <class Handler, class IoExecutor>
class ReceiveOp : public ad::reactor_op {
  public:
    BOOST_ASIO_DEFINE_HANDLER_PTR(ReceiveOp);

    ReceiveOp(int fd, boost::asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
        : reactor_op(boost::system::error_code(), &ReceiveOp::do_perform, &ReceiveOp::do_complete),
          fd_(fd),
          buffer_(buffer),
          handler_(std::move(handler)),
          work_(handler_, io_ex) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<ReceiveOp*>(base);
        return receive(o->fd_, o->buffer_, o->ec_, o->bytes_transferred_);
    }

    static void do_complete(void* owner, ad::operation* base, const boost::system::error_code&,
                            std::size_t) {
        auto* o = static_cast<ReceiveOp*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
        // The handler may own the operation's memory: free it from a copy.
        ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                             o->bytes_transferred_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            ad::fenced_block b(ad::fenced_block::half);
            w.complete(handler, handler.handler_);
        }
    }

  private:
    int fd_;
    boost::asio::mutable_buffer buffer_;
    Handler handler_;
    ad::handler_work<Handler, IoExecutor> work_;
};

template <class Handler>
void start_receive(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                   Handler& handler) {
    // A read that can be cancelled on its own (one side of a tunnel) and an empty
    // buffer take asio's path, which knows both.
    if (boost::asio::get_associated_cancellation_slot(handler).is_connected() ||
        buffer.size() == 0) {
        socket.async_read_some(buffer, std::move(handler));
        return;
    }
    auto& impl = SocketInternals::of(socket);
    auto& reactor = reactor_of(socket);
    using Op = ReceiveOp<Handler, boost::asio::ip::tcp::socket::executor_type>;
    bool continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
    p.p = new (p.v) Op(impl.socket_, buffer, handler, socket.get_executor());
    if ((impl.state_ & ad::socket_ops::non_blocking) ||
        ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_))
        reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, continuation,
                         true);
    else
        reactor.post_immediate_completion(p.p, continuation);
    p.v = p.p = nullptr;
}

}  // namespace detail

// As socket.async_read_some(buffer, token).
template <class Token>
auto async_read_socket(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                       Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [](auto handler, boost::asio::ip::tcp::socket* s, boost::asio::mutable_buffer b) {
            detail::start_receive(*s, b, handler);
        },
        token, &socket, buffer);
}

}  // namespace im::tls
