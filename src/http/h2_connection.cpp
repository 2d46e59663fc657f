// An HTTP/2 connection: a reader feeding nghttp2, a writer sending what
// nghttp2 has queued, and one exchange (the HTTP/1.1 pipeline) per stream.
// nghttp2 enforces the protocol (framing, flow control, header validity,
// stream limits) and answers violations with RST_STREAM or GOAWAY itself.
#include "http/h2.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "http/client.hpp"
#include "http/h2_stream.hpp"
#include "http/session.hpp"
#include "server/worker.hpp"

namespace im::http {

namespace asio = boost::asio;

namespace h2 {

namespace {

constexpr std::size_t kSendBatch = 64 * 1024;  // frames gathered into one socket write
constexpr std::size_t kIdleStreams =
    16;  // closed streams a connection keeps for reuse: a burst, as kIdleClients
// Clients of streams that are done (about 9 KiB each): enough for a burst of
// streams, such as a page's assets, without an allocation per stream.
constexpr std::size_t kIdleClients = 16;
constexpr std::size_t kStreamHead = 4096;        // a stream client's room for its head, at least

Connection& of(void* user_data) { return *static_cast<Connection*>(user_data); }

Stream* stream_of(nghttp2_session* session, std::int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
}

int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        of(user_data).begin_stream(frame->hd.stream_id);
    return 0;
}

int on_header(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
              std::size_t name_len, const std::uint8_t* value, std::size_t value_len, std::uint8_t,
              void*) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (auto* s = stream_of(session, frame->hd.stream_id))
        s->head.add({reinterpret_cast<const char*>(name), name_len},
                    {reinterpret_cast<const char*>(value), value_len});
    return 0;  // trailers are dropped: the pipeline has no use for them
}

int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto* s = stream_of(session, frame->hd.stream_id);
    if (!s) return 0;
    bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        of(user_data).headers_done(*s, end_stream);
    else if (end_stream && (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS))
        s->request_ended();
    return 0;
}

int on_data_chunk(nghttp2_session* session, std::uint8_t, std::int32_t id, const std::uint8_t* data,
                  std::size_t len, void*) {
    if (auto* s = stream_of(session, id)) s->received({reinterpret_cast<const char*>(data), len});
    else nghttp2_session_consume(session, id, len);  // nobody reads it: keep the window open
    return 0;
}

// An answer that ended before its request did (a 413, a page that did not need
// the body): what the client still sends is read off and dropped (see Stream::discard).
int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    bool ends = (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
                (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    auto* s = ends ? stream_of(session, frame->hd.stream_id) : nullptr;
    if (s && !s->request_done()) s->discard();
    return 0;
}

int on_send_data(nghttp2_session*, nghttp2_frame*, const std::uint8_t* frame_head, std::size_t length,
                 nghttp2_data_source* source, void* user_data) {
    static_cast<Stream*>(source->ptr)->send_frame(frame_head, length, of(user_data).send_batch());
    return 0;
}

int on_stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t, void* user_data) {
    // The stream's user data is still there in this callback; streams that never
    // began (refused, or only PRIORITY) have none.
    if (auto* s = stream_of(session, id)) of(user_data).stream_closed(*s);
    return 0;
}

nghttp2_session_callbacks* callbacks() {
    static nghttp2_session_callbacks* made = [] {
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
        nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
        return cb;
    }();
    return made;
}

const config::Server& server_config(const Client& c) { return c.worker.snapshot()->config->server; }

}  // namespace

Connection::Connection(Client& client)
    : client_(client), send_wanted_(client.worker.io.get_executor()), settled_(client.worker.io.get_executor()) {
    const auto& server = server_config(client);
    const auto& h2 = server.http2;
    nghttp2_option* option = nullptr;
    nghttp2_option_new(&option);
    // Windows open again only as the pipeline reads: uploads cannot pile up in memory.
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_session_server_new2(&session_, callbacks(), this, option);
    nghttp2_option_del(option);
    std::uint32_t header_list =
        static_cast<std::uint32_t>(h2.max_header_list_size ? h2.max_header_list_size : server.limits.max_header_bytes);
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_window_size},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, h2.max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, header_list},
        // Answers are sent as they are ready; no dependency tree (RFC 7540 §5.3) to keep up
        // per stream, nor closed streams retained for it. RFC 9218 urgencies still apply.
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    // The connection window covers a few streams' windows, so one upload does not stall the rest.
    std::int64_t window = std::min<std::int64_t>(std::int64_t{h2.initial_window_size} * 4, (1u << 31) - 1);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, static_cast<std::int32_t>(window));
}

Connection::~Connection() { nghttp2_session_del(session_); }

void Connection::begin_stream(std::int32_t id) {
    const auto& server = server_config(client_);
    std::size_t header_list = server.http2.max_header_list_size ? server.http2.max_header_list_size
                                                                : server.limits.max_header_bytes;
    std::shared_ptr<Stream> s;
    if (idle_streams_.empty()) {
        s = std::make_shared<Stream>(*this, client_.worker.io.get_executor(), id, header_list,
                                     server.limits.max_headers);
    } else {
        s = std::move(idle_streams_.back());
        idle_streams_.pop_back();
        s->reuse(id, header_list, server.limits.max_headers);
    }
    nghttp2_session_set_stream_user_data(session_, id, s.get());
    s->slot = streams_.size();
    streams_.push_back(std::move(s));
    client_.guard.disarm();  // streams have deadlines of their own
}

void Connection::headers_done(Stream& s, bool end_stream) {
    s.head.finish(!end_stream, s.head_text);
    if (end_stream) s.request_ended();
    to_start_.push_back(streams_[s.slot]);
}

void Connection::stream_closed(Stream& s) {
    s.closed();
    // Out of the open streams in O(1): the last one takes its slot.
    std::shared_ptr<Stream> closed = std::move(streams_[s.slot]);
    if (s.slot + 1 != streams_.size()) {
        streams_[s.slot] = std::move(streams_.back());
        streams_[s.slot]->slot = s.slot;
    }
    streams_.pop_back();
    // A stream that no exchange holds any more serves the next one: no allocation
    // per request for the stream and its buffers.
    if (closed.use_count() == 1 && idle_streams_.size() < kIdleStreams) idle_streams_.push_back(std::move(closed));
    if (streams_.empty()) arm_idle();
}

const core::Snapshot* Connection::pin_current() {
    const auto& current = client_.worker.snapshot();
    for (auto& p : pins_) {
        if (p.snapshot == current) {
            ++p.streams;
            return current.get();
        }
    }
    pins_.push_back({current, 1});
    return current.get();
}

void Connection::unpin(const core::Snapshot* snapshot) {
    for (auto it = pins_.begin(); it != pins_.end(); ++it) {
        if (it->snapshot.get() != snapshot) continue;
        // The last stream let it go: a quiet connection keeps no snapshot alive
        // (after a reload, not the old page store).
        if (--it->streams == 0) pins_.erase(it);
        return;
    }
}

void Connection::arm_idle() {
    const auto& t = server_config(client_).timeouts;
    // Until the first frame, the preface is a request head that must come in time.
    client_.guard.arm(saw_frame_ ? t.keepalive : t.header);
}

void Connection::on_timeout() {
    boost::system::error_code ignored;
    client_.socket.close(ignored);
}

void Connection::go_away() {
    if (going_away_) return;
    going_away_ = true;
    // Streams up to the last one begun still finish; the client retries later ones elsewhere.
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    want_send();
}

// Outside nghttp2's callbacks, so that an answer may be submitted at once.
void Connection::start_exchanges() {
    for (auto& s : to_start_) {
        auto c = client_for(*s);
        auto st = start_stream(*c, s->head.too_large() ? 431 : 0);
        if (st.answered) {
            // No coroutine for an answer that is ready: the common case of a page. It
            // went to the stream by reply(), unless written as bytes.
            bool valid = c->out.empty() || s->deliver(c->out);
            c->out.clear();
            if (valid) s->finish();
            keep_client(std::move(c));
            continue;
        }
        ++exchanges_;
        asio::co_spawn(client_.worker.io, exchange(std::move(c), std::move(s), std::move(st)),
                       [this](std::exception_ptr) {
                           --exchanges_;
                           settled_.notify();
                       });
    }
    to_start_.clear();
}

// A stream's view of the connection's client, with the stream's head in `in`.
std::unique_ptr<Client> Connection::client_for(Stream& s) {
    std::unique_ptr<Client> c;
    if (!idle_clients_.empty()) {
        c = std::move(idle_clients_.back());
        idle_clients_.pop_back();
    }
    if (!c || c->in.capacity() < s.head_text.size()) {
        // The head is all c.in ever holds: request bodies are read into RequestBody's own
        // buffer. A larger head later gets a client of its own.
        std::size_t room = std::max(s.head_text.size() + 64, kStreamHead);
        c = std::make_unique<Client>(client_.worker, asio::ip::tcp::socket(client_.worker.io), room);
        c->secure = client_.secure;
        c->http2 = true;
        c->peer = client_.peer;
        c->address = client_.address;
        c->out.reserve(4096);  // a page and its head in one allocation
        c->request.headers.reserve(16);
    }
    c->pipe = &s;
    c->sink = &s;
    c->guard.retarget(s);
    c->in.consume(c->in.size());
    c->in.append(s.head_text);
    s.head_text.clear();
    return c;
}

// A stream's client once its stream is done, for the next stream.
void Connection::keep_client(std::unique_ptr<Client> c) {
    if (idle_clients_.size() >= kIdleClients) return;
    c->guard.disarm();
    c->guard.clear_target();
    c->pipe = nullptr;
    c->sink = nullptr;
    c->out.clear();
    c->carry.clear();
    idle_clients_.push_back(std::move(c));
}

asio::awaitable<void> Connection::exchange(std::unique_ptr<Client> c, std::shared_ptr<Stream> s, Started st) {
    co_await finish_stream(*c, std::move(st));
    s->finish();
    keep_client(std::move(c));
}

asio::awaitable<void> Connection::write_loop() {
    server::Guard guard(client_.worker.watchdog, client_.socket);
    std::string& out = send_batch_;  // DATA frames are appended to it by on_send_data
    while (true) {
        out.clear();
        while (out.size() < kSendBatch) {
            const std::uint8_t* data = nullptr;
            ssize_t n = nghttp2_session_mem_send(session_, &data);
            if (n < 0) spdlog::debug("HTTP/2 with {}: {}", client_.peer, nghttp2_strerror(static_cast<int>(n)));
            if (n <= 0) break;
            out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
        }
        if (!out.empty()) {
            guard.arm(server_config(client_).timeouts.send);
            auto [ec, n] = co_await client_.channel().write(asio::buffer(out));
            guard.disarm();
            if (ec) {
                boost::system::error_code ignored;
                client_.socket.close(ignored);  // the reader stops too
                co_return;
            }
            continue;
        }
        // Both done (GOAWAY sent and its streams over, or a protocol error): hang up.
        if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
        if (reading_done_) break;
        co_await send_wanted_.wait();
    }
    // Closing with unread input would make the kernel send a reset, which can destroy
    // the GOAWAY still in flight: stop sending, let the reader take in what the client
    // still sends until it closes, for two seconds at most.
    boost::system::error_code ignored;
    client_.socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    client_.guard.arm(std::chrono::seconds(2));
}

asio::awaitable<void> Connection::run() {
    client_.guard.retarget(*this);
    client_.guard.set_idle(true);  // a drain sends GOAWAY (see on_drain)
    asio::co_spawn(client_.worker.io, write_loop(), [this](std::exception_ptr) {
        writer_done_ = true;
        settled_.notify();
    });
    if (client_.worker.draining()) go_away();
    std::string_view early = client_.in.view();  // the h2c preface, read before we knew
    bool alive = true;
    if (!early.empty()) {
        alive = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(early.data()),
                                         early.size()) >= 0;
        saw_frame_ = true;
    }
    client_.in.consume(client_.in.size());
    start_exchanges();
    want_send();
    arm_idle();
    while (alive) {
        auto [ec, n] = co_await client_.channel().read_some(client_.in.free_space());
        if (ec || n == 0) break;
        if (writer_done_) continue;  // lingering (see write_loop): read off, do not process
        client_.in.commit(n);
        bool preface = !saw_frame_;
        saw_frame_ = true;
        auto rv = nghttp2_session_mem_recv(
            session_, reinterpret_cast<const std::uint8_t*>(client_.in.view().data()), n);
        client_.in.consume(n);
        if (preface && streams_.empty()) arm_idle();  // from the preface's deadline to keepalive
        if (rv < 0) {
            // Not HTTP/2 at all (a bad preface) or flooding: say so once and hang up.
            spdlog::debug("HTTP/2 with {}: {}", client_.peer, nghttp2_strerror(static_cast<int>(rv)));
            nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
            alive = false;
        }
        start_exchanges();
        want_send();
    }
    reading_done_ = true;
    want_send();
    while (!writer_done_) co_await settled_.wait();
    boost::system::error_code ignored;
    client_.socket.close(ignored);
    for (auto& s : streams_) {
        s->closed();
        nghttp2_session_set_stream_user_data(session_, s->id(), nullptr);
    }
    streams_.clear();
    while (exchanges_ > 0) co_await settled_.wait();
}

}  // namespace h2

asio::awaitable<void> serve_http2(Client& c) {
    h2::Connection connection(c);
    co_await connection.run();
}

}  // namespace im::http
