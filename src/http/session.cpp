// The request lifecycle for one client connection, as named phases:
// read head -> parse -> decide -> execute (store | forward | error) -> log.
#include "http/session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "core/decide.hpp"
#include "http/answers.hpp"
#include "http/client.hpp"
#include "http/request_body.hpp"
#include "server/worker.hpp"
#include "upstream/forward.hpp"

namespace im::http {

namespace asio = boost::asio;
using asio::ip::tcp;
using server::Clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kFlushAt = 64 * 1024;  // pipelined answers batch up to this

struct ClientCount {
    explicit ClientCount(server::Worker& w) : worker(w) { ++worker.clients; }
    ~ClientCount() { --worker.clients; }
    server::Worker& worker;
};

const config::Server& server_config(const Client& c) {
    return c.worker.snapshot()->config->server;
}

asio::awaitable<bool> flush(Client& c) {
    if (c.out.empty()) co_return true;
    c.guard.arm(server_config(c).timeouts.send);
    auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(c.out), nothrow);
    c.guard.disarm();
    c.out.clear();
    co_return !ec;
}

// Reads until a whole head is buffered. Returns its length, -1 for a
// malformed head, -431 for an oversized one, 0 when the client went away
// or timed out (with *timed_out set when it timed out mid-head).
asio::awaitable<long> read_head(Client& c, bool& timed_out) {
    bool header_clock_started = false;
    while (true) {
        long end = find_head_end(c.in.view());
        if (end != 0) {
            c.guard.disarm();
            c.guard.set_idle(false);
            co_return end;
        }
        const auto& server = server_config(c);
        if (c.in.size() >= server.limits.max_header_bytes) co_return -431;
        if (!co_await flush(c)) co_return 0;
        if (c.in.empty()) {
            if (c.worker.draining()) co_return 0;
            c.guard.arm(server.timeouts.keepalive);
            c.guard.set_idle(true);
            header_clock_started = false;
        } else if (!header_clock_started) {
            // One deadline for the whole head: trickling bytes does not extend it.
            c.guard.arm(server.timeouts.header);
            c.guard.set_idle(false);
            header_clock_started = true;
        }
        if (c.in.full()) c.in.compact();
        auto [ec, n] = co_await c.socket.async_read_some(c.in.free_space(), nothrow);
        if (ec || n == 0) {
            timed_out = c.guard.expired() && !c.in.empty();
            co_return 0;
        }
        c.in.commit(n);
    }
}

void log_access(Client& c, std::string_view site, int status, std::uint64_t bytes,
                std::string_view upstream, double upstream_ms, Clock::time_point start) {
    auto& log = c.worker.access_log;
    if (!log.enabled()) return;
    observe::AccessRecord r;
    r.client = c.peer;
    r.site = site;
    r.method = c.request.method;
    r.target = c.request.target;
    r.minor_version = c.request.minor_version;
    r.status = status;
    r.bytes_sent = bytes;
    r.upstream = upstream;
    r.upstream_ms = upstream_ms;
    r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    log.add(r);
}

// The one place that turns a failure to reach the application into a status.
int failure_status(upstream::Failure f) {
    switch (f) {
    case upstream::Failure::no_target: return 503;
    case upstream::Failure::timeout: return 504;
    case upstream::Failure::request_body: return 400;
    default: return 502;
    }
}

// Serves one request whose head is in c.in[0, end). Returns whether the
// connection stays open for another.
asio::awaitable<bool> serve_request(Client& c, long end) {
    // Timing is only for the access log: no clock read per request without it.
    auto start = c.worker.access_log.enabled() ? Clock::now() : Clock::time_point{};
    const auto& server = server_config(c);
    Limits limits{server.limits.max_header_bytes, server.limits.max_headers};
    int bad = parse_request(c.in.view().substr(0, static_cast<std::size_t>(end)), limits, c.request);
    if (bad) {
        append_error(c.out, bad, true, c.worker.date.value());
        co_return false;
    }
    c.in.consume(static_cast<std::size_t>(end));
    if (server.limits.max_body_bytes && c.request.content_length &&
        *c.request.content_length > server.limits.max_body_bytes) {
        append_error(c.out, 413, true, c.worker.date.value());
        co_return false;
    }
    // Pinned: the worker may receive a new snapshot while this request awaits.
    std::shared_ptr<const core::Snapshot> snapshot = c.worker.snapshot();
    auto decision = core::decide(c.request, *snapshot);
    std::string_view site_name =
        decision.site >= 0 ? std::string_view(snapshot->sites[decision.site].config->name) : "-";
    bool close = !c.request.keep_alive || c.worker.draining();

    if (decision.kind == core::Decision::Kind::forward) {
        if (!co_await flush(c)) co_return false;
        auto r = co_await upstream::forward(c, *snapshot, decision.group);
        if (r.failure != upstream::Failure::none && !r.response_started) {
            r.status = failure_status(r.failure);
            bool body_unread = c.request.has_body() && !r.request_body_done;
            r.client_keep_alive = r.client_keep_alive && !body_unread;
            append_error(c.out, r.status, close || !r.client_keep_alive, c.worker.date.value());
        }
        log_access(c, site_name, r.status, r.body_bytes, r.target, r.upstream_ms, start);
        if (!c.carry.empty()) {
            c.in.append(c.carry);
            c.carry.clear();
        }
        co_return r.client_keep_alive && !close;
    }

    if (c.request.has_body()) {
        // The answer does not use the body; read it off so the next request parses.
        RequestBody body(c, server.limits.max_body_bytes);
        if (!co_await body.discard()) {
            if (body.error_status()) append_error(c.out, body.error_status(), true, c.worker.date.value());
            co_return false;
        }
    }
    std::uint64_t bytes = 0;
    int status = 404;
    switch (decision.kind) {
    case core::Decision::Kind::store:
        status = answer_store(c, snapshot->sites[decision.site], close, bytes);
        break;
    case core::Decision::Kind::page: status = answer_page(c, *decision.action, close, bytes); break;
    case core::Decision::Kind::fixed: status = answer_fixed(c, *decision.action, close, bytes); break;
    case core::Decision::Kind::redirect: status = answer_redirect(c, *decision.action, close); break;
    case core::Decision::Kind::forward:
    case core::Decision::Kind::no_site:
        append_error(c.out, status, close, c.worker.date.value());  // no site for this Host
        break;
    }
    log_access(c, site_name, status, bytes, {}, -1, start);
    if (!c.carry.empty()) {
        c.in.append(c.carry);
        c.carry.clear();
    }
    if (c.out.size() >= kFlushAt && !co_await flush(c)) co_return false;
    co_return !close;
}

// Closing with unread input makes the kernel send a reset, which can destroy
// an error answer still in flight; read off what the client sends first.
asio::awaitable<void> linger_close(Client& c) {
    boost::system::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    c.guard.arm(std::chrono::seconds(2));
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(sink), nothrow);
        if (ec || n == 0) break;
    }
    c.socket.close(ignored);
}

void set_peer(Client& c) {
    boost::system::error_code ec;
    auto ep = c.socket.remote_endpoint(ec);
    c.peer = ec ? std::string("-") : ep.address().to_string();
}

}  // namespace

Client::Client(server::Worker& w, tcp::socket s, std::size_t buffer_bytes)
    : worker(w), socket(std::move(s)), guard(w.watchdog, socket), in(buffer_bytes) {}

asio::awaitable<void> serve_client(server::Worker& worker, tcp::socket socket) {
    ClientCount count(worker);
    const auto& limits = worker.snapshot()->config->server.limits;
    Client c(worker, std::move(socket), limits.max_header_bytes + 16 * 1024);
    set_peer(c);
    while (true) {
        bool timed_out = false;
        long end = co_await read_head(c, timed_out);
        if (end == 0) {
            if (timed_out) append_error(c.out, 408, true, worker.date.value());
            break;
        }
        if (end < 0) {
            append_error(c.out, end == -431 ? 431 : 400, true, worker.date.value());
            break;
        }
        if (!co_await serve_request(c, end)) break;
    }
    if (c.socket.is_open() && co_await flush(c)) co_await linger_close(c);
}

}  // namespace im::http
