// Timeouts for every socket of a worker, checked by one coarse periodic tick
// instead of a timer per operation: arming a deadline is a store, not a
// syscall, which keeps the request path cheap. Precision is one tick.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>

namespace im::server {

using Clock = std::chrono::steady_clock;

class Watchdog;

// What a deadline ends when it is not a socket (an HTTP/2 stream), or a
// connection that shuts down in its own way (an HTTP/2 connection's GOAWAY).
class Closable {
public:
    virtual void on_timeout() = 0;  // the deadline passed
    virtual void on_drain() = 0;    // shutdown: an idle connection goes now
    virtual void on_reload() {}     // the config changed under a long-lived connection

protected:
    ~Closable() = default;
};

// A socket under watch. Linked into its worker's Watchdog for its lifetime;
// when its deadline passes the socket is closed, which fails the pending
// operation, and `expired` tells the owner it was a timeout.
class Guard {
public:
    Guard(Watchdog& dog, boost::asio::ip::tcp::socket& socket);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

    void arm(std::chrono::milliseconds timeout);
    void disarm() { deadline_ = Clock::time_point::max(); }
    bool expired() const { return expired_; }
    void reset() { expired_ = false; }
    void retarget(boost::asio::ip::tcp::socket& socket) { socket_ = &socket; }
    void retarget(Closable& target) { target_ = &target; }
    void clear_target() { target_ = nullptr; }  // the target is gone: back to the socket
    // An idle connection (between requests) may be closed at once on shutdown.
    void set_idle(bool idle) { idle_ = idle; }

private:
    friend class Watchdog;
    Watchdog& dog_;
    boost::asio::ip::tcp::socket* socket_;
    Closable* target_ = nullptr;  // when set, a timeout or drain goes to it instead of the socket
    void close();
    Clock::time_point deadline_ = Clock::time_point::max();
    bool expired_ = false;
    bool idle_ = false;
    Guard* prev_ = nullptr;
    Guard* next_ = nullptr;
};

class Watchdog {
public:
    static constexpr std::chrono::milliseconds kTick{100};  // how often tick() runs
    Clock::time_point now() const { return now_; }
    void tick(Clock::time_point now);  // closes the sockets whose deadline passed
    std::size_t size() const { return size_; }
    void close_idle();  // graceful shutdown: idle keep-alive connections go now
    void reloaded();    // tells long-lived connections (HTTP/2) that the config changed

private:
    friend class Guard;
    void link(Guard& g);
    void unlink(Guard& g);
    Clock::time_point now_ = Clock::now();
    Guard* head_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace im::server
