#include "server/watchdog.hpp"

namespace im::server {

Guard::Guard(Watchdog& dog, boost::asio::ip::tcp::socket& socket) : dog_(dog), socket_(&socket) {
    dog_.link(*this);
}

Guard::~Guard() { dog_.unlink(*this); }

void Guard::arm(std::chrono::milliseconds timeout) {
    // now() is the last tick's time: add a tick so a timeout never fires early.
    deadline_ = dog_.now() + timeout + Watchdog::kTick;
    expired_ = false;
}

void Guard::close() {
    boost::system::error_code ignored;
    socket_->close(ignored);
}

void Watchdog::link(Guard& g) {
    g.next_ = head_;
    if (head_) head_->prev_ = &g;
    head_ = &g;
    ++size_;
}

void Watchdog::unlink(Guard& g) {
    if (g.prev_) g.prev_->next_ = g.next_;
    else head_ = g.next_;
    if (g.next_) g.next_->prev_ = g.prev_;
    g.prev_ = g.next_ = nullptr;
    --size_;
}

void Watchdog::tick(Clock::time_point now) {
    now_ = now;
    for (Guard* g = head_; g != nullptr; g = g->next_) {
        if (g->deadline_ <= now && !g->expired_) {
            g->expired_ = true;
            g->deadline_ = Clock::time_point::max();
            if (g->target_) g->target_->on_timeout();
            else g->close();
        }
    }
}

}  // namespace im::server

namespace im::server {

void Watchdog::close_idle() {
    for (Guard* g = head_; g != nullptr; g = g->next_) {
        if (!g->idle_) continue;
        if (g->target_) g->target_->on_drain();
        else g->close();
    }
}

void Watchdog::reloaded() {
    for (Guard* g = head_; g != nullptr; g = g->next_)
        if (g->target_) g->target_->on_reload();
}

}  // namespace im::server
