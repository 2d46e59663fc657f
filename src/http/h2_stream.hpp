// One HTTP/2 connection (nghttp2 session) and its streams. Each stream is
// served by the HTTP/1.1 request pipeline through a tls::Pipe: the pipeline
// reads the request head and body from it and writes its answer into it.
// Everything runs on the worker's thread; nghttp2 is never entered twice.
#pragma once

#include <nghttp2/nghttp2.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http/h2_messages.hpp"
#include "http/respond.hpp"
#include "http/session.hpp"
#include "server/watchdog.hpp"
#include "tls/channel.hpp"

namespace im::http {
struct Client;
}
namespace im::core {
struct Snapshot;
}

namespace im::http::h2 {

// Wakes the coroutines waiting on this thread; a notify() before the wait is kept.
class Wakeup {
public:
    explicit Wakeup(const boost::asio::any_io_executor& ex)
        : timer_(ex, boost::asio::steady_timer::time_point::max()) {}
    void notify() {
        pending_ = true;
        // Most notifications find nobody waiting: no trip through the reactor's timer queue then.
        if (waiting_) timer_.cancel();
    }
    void reset() { pending_ = false; }  // nobody waits: a stream taken up again
    boost::asio::awaitable<void> wait();

private:
    boost::asio::steady_timer timer_;
    bool pending_ = false;
    int waiting_ = 0;  // coroutines in wait(): a stream's reader and writer may both be
};

class Connection;

class Stream final : public tls::Pipe, public server::Closable, public ReplySink {
public:
    Stream(Connection& connection, const boost::asio::any_io_executor& ex, std::int32_t id,
           std::size_t max_header_bytes, std::size_t max_fields);
    // The same object for a new stream of the connection, its buffers kept (but
    // not a download's worth of them). Only when nothing refers to it any more.
    void reuse(std::int32_t id, std::size_t max_header_bytes, std::size_t max_fields);

    // What the request pipeline sees.
    boost::asio::awaitable<tls::IoResult> read_some(boost::asio::mutable_buffer buffer) override;
    boost::asio::awaitable<tls::IoResult> write(tls::Pieces buffers) override;
    // Takes answer bytes for nghttp2 without waiting (write() waits while too much is
    // queued). False when they are not a valid answer: the stream is reset.
    bool deliver(std::string_view bytes);
    // A whole answer of the gateway's own, submitted as it is (no HTTP/1.1 in between).
    void reply(const Reply& reply, Stamp stamp) override;
    // A forwarded answer's head, submitted as fields; write() then takes its body as is.
    void relay_head(int status, std::span<const Header> fields, Stamp stamp, bool has_body) override;
    void relay_done() override;
    void finish();  // the pipeline is done: end the stream (or reset a cut-short answer)

    // The stream client's deadline (body or send timeout): give up the stream.
    void on_timeout() override { reset(NGHTTP2_CANCEL); }
    void on_drain() override {}

    // From the connection, as nghttp2 reports frames.
    void received(std::string_view data);  // request body bytes
    void request_ended();
    // The answer is complete but the request is not: drop the rest as it comes. Not a
    // RST_STREAM NO_ERROR at once (RFC 9113 §8.1), which some clients (curl 7.88) take
    // for a failed request; only past kDiscardLimit bytes is the stream reset.
    void discard();
    void closed();  // nghttp2 closed the stream, or the connection ends
    // The data source of the answer's DATA frames: provide() says how much the next
    // frame carries (no copy), send_frame() appends that frame to the send batch.
    ssize_t provide(std::size_t length, std::uint32_t* flags);
    void send_frame(const std::uint8_t* frame_head, std::size_t length, std::string& out);

    std::int32_t id() const { return id_; }
    std::size_t slot = 0;  // where the connection keeps it among its open streams
    bool request_done() const { return request_done_; }
    RequestHead head;
    std::string head_text;  // the head as HTTP/1.1, once the header block is complete

private:
    void reset(std::uint32_t code);
    bool take(std::string_view bytes);
    void resume_data();      // the answer's DATA had run dry: more may go now
    bool body_ended() const;  // all of the answer's body is in response_ (or it has none)
    void submit(const ResponseTranslator::Head& h);
    // The answer's body bytes not yet taken by nghttp2: a stored body in place, else response_.
    std::string_view body() const { return pinned_ ? stored_ : std::string_view(response_); }
    std::size_t buffered() const { return body().size() - sent_; }
    void unpin();

    Connection& connection_;
    std::int32_t id_;
    std::string request_;  // request body bytes the pipeline has not read yet
    std::size_t read_ = 0;
    std::size_t unconsumed_ = 0;  // received but not yet given back to the client's window
    bool request_done_ = false;
    bool discarding_ = false;
    std::size_t discarded_ = 0;
    bool answering_ = false;  // the first answer bytes came: translator_ is set up
    bool whole_ = false;      // the answer came by reply(): its body is all in response_
    bool relaying_ = false;   // the answer came by relay_head(): write() takes bare body bytes
    bool relayed_ = false;    // and its body came whole (relay_done())
    ResponseTranslator translator_;
    ResponseTranslator::Head reply_head_;  // reply()'s, reused
    std::string reply_names_;
    std::vector<ResponseTranslator::Head> heads_;  // reused by write()
    std::string response_;  // body bytes not yet taken by nghttp2
    // A stored body (Reply::stored) is sent from the snapshot it lives in, which
    // the connection keeps while this stream still has bytes of it to send.
    const core::Snapshot* pinned_ = nullptr;
    std::string_view stored_;
    std::size_t sent_ = 0;
    bool data_deferred_ = false;
    bool finished_ = false;
    bool closed_ = false;
    Wakeup changed_;  // request bytes came, answer bytes left, or the stream closed
};

class Connection final : public server::Closable {
public:
    explicit Connection(Client& client);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    boost::asio::awaitable<void> run();

    // The client's idle deadline (or the preface's) passed.
    void on_timeout() override;
    void on_drain() override { go_away(); }
    void on_reload() override { go_away(); }

    nghttp2_session* session() const { return session_; }
    // Keeps the worker's current snapshot for a stream sending a body that lives in
    // it; unpin() lets it go. Counted here, on the worker's thread: no atomic per stream.
    const core::Snapshot* pin_current();
    void unpin(const core::Snapshot* snapshot);
    std::string& send_batch() { return send_batch_; }
    void want_send() { send_wanted_.notify(); }

    // nghttp2 callbacks.
    void begin_stream(std::int32_t id);
    void headers_done(Stream& s, bool end_stream);
    void stream_closed(Stream& s);

private:
    void go_away();
    void start_exchanges();
    boost::asio::awaitable<void> write_loop();
    boost::asio::awaitable<void> exchange(std::unique_ptr<Client> c, std::shared_ptr<Stream> s, Started st);
    std::unique_ptr<Client> client_for(Stream& s);
    void keep_client(std::unique_ptr<Client> c);
    void arm_idle();

    Client& client_;
    nghttp2_session* session_ = nullptr;
    std::vector<std::shared_ptr<Stream>> streams_;  // the open ones, each at its Stream::slot
    std::vector<std::shared_ptr<Stream>> to_start_;  // complete heads, started after nghttp2 returns
    // Clients of streams that are done, kept for the next ones with their buffers.
    std::vector<std::unique_ptr<Client>> idle_clients_;
    std::vector<std::shared_ptr<Stream>> idle_streams_;  // closed streams, kept for new ones
    struct Pin {
        std::shared_ptr<const core::Snapshot> snapshot;
        int streams = 0;
    };
    std::vector<Pin> pins_;  // snapshots streams send stored bodies from (one, but for a swap)
    std::string send_batch_;  // frames for the next socket write
    Wakeup send_wanted_;
    Wakeup settled_;  // the writer or an exchange ended
    int exchanges_ = 0;
    bool writer_done_ = false;
    bool reading_done_ = false;
    bool going_away_ = false;
    bool saw_frame_ = false;
};

}  // namespace im::http::h2
