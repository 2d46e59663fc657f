// Streaming a response from a target to the client, re-framed by us, with
// bounded buffers: a 1 GiB body passes through 64 KiB at a time.
#include "upstream/relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/chunked.hpp"
#include "server/worker.hpp"
#include "upstream/headers.hpp"

namespace im::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
// A body up to this size is sent from the head's buffer (copied): about what the
// kernel's own work for a gathered write of two pieces costs.
constexpr std::size_t kJoinedBody = 4096;
// Beyond this the head's buffer is not kept for the connection's next answer.
constexpr std::size_t kKeptHead = 16 * 1024;

struct Relay {
    http::Client& c;
    Connection& conn;
    server::Guard& ug;
    const config::TargetGroup& g;
    ForwardResult& r;

    config::Duration send_timeout() const {
        return c.worker.snapshot()->config->server.timeouts.send;
    }

    template <typename Buffers>
    asio::awaitable<bool> to_client(const Buffers& buffers) {
        c.guard.arm(send_timeout());
        auto [ec, n] = co_await c.channel().write(buffers);
        c.guard.disarm();
        if (ec) {
            r.failure = Failure::client_gone;
            r.client_keep_alive = false;
        }
        co_return !ec;
    }

    // Reads more from the target into conn.in (emptied first). False at
    // end of stream or on error (recorded unless eof_ok).
    asio::awaitable<bool> from_target(bool eof_ok) {
        conn.in.consume(conn.in.size());
        ug.arm(g.timeouts.idle);
        auto [ec, n] = co_await conn.channel().read_some(conn.in.free_space());
        if (ec || n == 0) {
            bool eof = ec == asio::error::eof || n == 0;
            if (!(eof && eof_ok)) {
                r.failure = ug.expired() ? Failure::timeout : Failure::reset;
                r.client_keep_alive = false;  // the client's framing is broken now
            }
            co_return false;
        }
        conn.in.commit(n);
        co_return true;
    }

    asio::awaitable<bool> length_body(std::string& head, std::uint64_t remaining) {
        auto first = conn.in.view().substr(0, static_cast<std::size_t>(
                                                    std::min<std::uint64_t>(remaining, conn.in.size())));
        if (!head.empty() && first.size() <= kJoinedBody) {
            // A small body goes in the head's buffer: one plain send, not a gathered sendmsg
            // (or, over TLS, not a second copy into one record).
            head.append(first);
            if (!co_await to_client(asio::buffer(head))) co_return false;
        } else {
            std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(first)};
            if (!co_await to_client(parts)) co_return false;
        }
        remaining -= first.size();
        r.body_bytes += first.size();
        bool extra = conn.in.size() > first.size();
        while (remaining > 0) {
            if (!co_await from_target(false)) co_return false;
            auto piece = conn.in.view().substr(
                0, static_cast<std::size_t>(std::min<std::uint64_t>(remaining, conn.in.size())));
            extra = conn.in.size() > piece.size();
            if (!co_await to_client(asio::buffer(piece))) co_return false;
            remaining -= piece.size();
            r.body_bytes += piece.size();
        }
        conn.in.consume(conn.in.size());
        co_return !extra;  // bytes past the body: the target is out of step, do not reuse
    }

    // Chunked from the target: decoded and re-encoded (or sent raw to an
    // HTTP/1.0 client), so nothing the target framed oddly reaches the client.
    asio::awaitable<bool> chunked_body(std::string& head, bool client_chunked) {
        http::ChunkedDecoder decoder;
        std::string out = std::move(head);
        bool head_sent = out.empty();  // an HTTP/2 stream has its head already
        while (true) {
            auto pending = conn.in.view();
            while (!pending.empty() && !decoder.done()) {
                auto step = decoder.feed(pending);
                if (decoder.failed() || step.consumed == 0) {
                    r.failure = Failure::bad_response;
                    // Nothing sent yet: the client can still get a clean error answer.
                    r.response_started = head_sent;
                    r.client_keep_alive = !head_sent;
                    if (!head_sent) r.status = 0;  // the caller picks the error status
                    co_return false;
                }
                pending.remove_prefix(step.consumed);
                if (step.data.empty()) continue;
                if (client_chunked) http::append_chunk_header(out, step.data.size());
                out.append(step.data);
                if (client_chunked) out.append("\r\n");
                r.body_bytes += step.data.size();
            }
            if (decoder.done()) {
                if (client_chunked) out.append(http::kLastChunk);
                bool extra = !pending.empty();
                conn.in.consume(conn.in.size());
                co_return co_await to_client(asio::buffer(out)) && !extra;
            }
            if (!out.empty() && !co_await to_client(asio::buffer(out))) co_return false;
            head_sent = true;
            out.clear();
            if (!co_await from_target(false)) co_return false;
        }
    }

    // No length: the body ends when the target closes.
    asio::awaitable<bool> until_close_body(std::string& head, bool client_chunked) {
        std::string frame = std::move(head);
        while (true) {
            auto data = conn.in.view();
            if (client_chunked && !data.empty()) http::append_chunk_header(frame, data.size());
            std::array<asio::const_buffer, 3> parts{
                asio::buffer(frame), asio::buffer(data),
                asio::buffer("\r\n", client_chunked && !data.empty() ? 2 : 0)};
            if (!co_await to_client(parts)) co_return false;
            r.body_bytes += data.size();
            frame.clear();
            if (!co_await from_target(true)) break;
        }
        if (r.failure != Failure::none) co_return false;
        if (client_chunked) co_await to_client(asio::buffer(http::kLastChunk));
        co_return false;  // the target closed: never reusable
    }
};

asio::awaitable<void> pump(tls::Channel from, tls::Channel to, server::Guard& from_guard,
                           server::Guard& to_guard, config::Duration idle) {
    std::array<char, 16 * 1024> buf;
    while (true) {
        from_guard.arm(idle);
        auto [ec, n] = co_await from.read_some(asio::buffer(buf));
        if (ec || n == 0) co_return;
        to_guard.arm(idle);
        auto [wec, wn] = co_await to.write(asio::buffer(buf.data(), n));
        if (wec) co_return;
    }
}

// An upgraded connection (WebSocket): bytes both ways until either side closes.
asio::awaitable<void> tunnel(http::Client& c, Connection& conn, server::Guard& ug,
                             config::Duration idle) {
    if (!c.in.empty()) {
        ug.arm(idle);
        auto [ec, n] = co_await conn.channel().write(asio::buffer(c.in.view()));
        c.in.consume(c.in.size());
        if (ec) co_return;
    }
    co_await (pump(c.channel(), conn.channel(), c.guard, ug, idle) ||
              pump(conn.channel(), c.channel(), ug, c.guard, idle));
}

}  // namespace

asio::awaitable<bool> relay_response(http::Client& c, Connection& conn, server::Guard& ug,
                                     const http::Response& res, std::size_t head_len,
                                     const config::TargetGroup& g, ForwardResult& r) {
    const auto kind = http::response_framing(res, c.request.method);
    const bool upgrade = res.status == 101 && c.request.upgrade;
    const bool client11 = c.request.minor_version == 1;
    ResponseFraming framing;
    framing.length = kind == http::BodyFraming::length ||
                     (kind == http::BodyFraming::none && res.content_length);
    bool stream_unframed = kind == http::BodyFraming::chunked || kind == http::BodyFraming::until_close;
    framing.chunked = stream_unframed && client11;
    framing.close = (stream_unframed && !client11) || !c.request.keep_alive || c.worker.draining();
    r.client_keep_alive = !framing.close && !upgrade;
    r.status = res.status;
    const bool target_keep_alive = res.keep_alive;
    const auto content_length = res.content_length.value_or(0);
    std::string& head = conn.response_head;  // its buffer serves the connection's next answers too
    head.clear();
    if (head.capacity() > kKeptHead) head.shrink_to_fit();
    // An HTTP/2 stream takes the head as fields, and the body bare.
    http::ReplySink* fields_sink = upgrade ? nullptr : c.sink;
    if (fields_sink) {
        thread_local std::vector<http::Header> fields;
        thread_local std::string storage;
        response_fields(res, framing.length, c.stamp(), fields, storage);
        bool has_body = kind != http::BodyFraming::none && !(kind == http::BodyFraming::length && content_length == 0);
        fields_sink->relay_head(res.status, fields, c.stamp(), has_body);
    } else {
        head.reserve(head_len + 128 +
                     std::min<std::size_t>(conn.in.size() - head_len, kJoinedBody));
        build_response_head(head, res, framing, c.stamp(), upgrade);
    }
    conn.in.consume(head_len);  // `res` views die here
    r.response_started = true;
    const bool client_chunked = client11 && !fields_sink;

    Relay relay{c, conn, ug, g, r};
    if (upgrade) {
        std::array<asio::const_buffer, 2> parts{asio::buffer(head), asio::buffer(conn.in.view())};
        if (co_await relay.to_client(parts)) {
            conn.in.consume(conn.in.size());
            co_await tunnel(c, conn, ug, g.timeouts.tunnel);
        }
        r.client_keep_alive = false;
        co_return false;
    }
    bool complete = false;
    switch (kind) {
    case http::BodyFraming::none:
        complete = (head.empty() || co_await relay.to_client(asio::buffer(head))) && conn.in.empty();
        break;
    case http::BodyFraming::length:
        complete = co_await relay.length_body(head, content_length);
        break;
    case http::BodyFraming::chunked:
        complete = co_await relay.chunked_body(head, client_chunked);
        break;
    case http::BodyFraming::until_close:
        complete = co_await relay.until_close_body(head, client_chunked);
        break;
    }
    // The body came whole (for one that runs until the target closes: it did so cleanly).
    if (fields_sink && r.failure == Failure::none) fields_sink->relay_done();
    co_return complete && target_keep_alive && r.failure == Failure::none;
}

}  // namespace im::upstream
