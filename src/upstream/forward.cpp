// The forward phase: choose a target, get a connection, send the request,
// read the response head; retry where that is safe; then relay.
#include "upstream/forward.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/container/small_vector.hpp>
#include <optional>
#include <span>
#include <utility>

#include "http/chunked.hpp"
#include "http/request_body.hpp"
#include "server/worker.hpp"
#include "upstream/balancer.hpp"
#include "upstream/headers.hpp"
#include "upstream/relay.hpp"
#include "tls/socket_read.hpp"
#include "tls/upstream.hpp"

namespace im::upstream {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
// How long a worker skips a target that just failed, before the health
// checker's verdict (published to every worker) takes over.
constexpr auto kLocalDownTime = std::chrono::seconds(1);

// Counts a request against its target while it is in flight: in this
// worker's pool (balancing, connection limit) and over all workers (drains).
struct InFlight {
    InFlight(TargetPool& p, core::InFlight& all) : pool(p), everywhere(all) {
        ++pool.open;
        ++pool.outstanding;
        everywhere.requests.fetch_add(1, std::memory_order_relaxed);
    }
    ~InFlight() {
        --pool.open;
        --pool.outstanding;
        everywhere.requests.fetch_sub(1, std::memory_order_relaxed);
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;
    TargetPool& pool;
    core::InFlight& everywhere;
};

int choose_target(http::Client& c, const core::Snapshot& s, PoolTable& pools, int group,
                  std::span<const char> tried) {
    const auto& g = s.config->target_groups[static_cast<std::size_t>(group)];
    thread_local std::vector<Candidate> candidates;
    candidates.assign(g.targets.size(), Candidate{});
    auto now = c.worker.watchdog.now();
    for (std::size_t t = 0; t < g.targets.size(); ++t) {
        const auto& pool = pools.at(group, t);
        bool under_limit = g.pool.max_connections == 0 || pool.open < g.pool.max_connections;
        candidates[t].usable = !tried[t] && s.health->is_healthy(group, t) && !s.is_drained(group, t) &&
                               pool.down_until <= now && under_limit;
        candidates[t].outstanding = pool.outstanding;
    }
    return pick_target(g.balance, candidates, pools.cursors[static_cast<std::size_t>(group)]);
}

void target_failed(http::Client& c, const core::Snapshot& s, int group, std::size_t target,
                   TargetPool& pool, std::string_view why) {
    pool.down_until = c.worker.watchdog.now() + kLocalDownTime;
    pool.close_all();
    if (c.worker.events.target_failed) c.worker.events.target_failed(s.config_epoch, group, target, why);
}

Failure io_failure(const server::Guard& guard) {
    return guard.expired() ? Failure::timeout : Failure::reset;
}

asio::awaitable<Failure> send_body(http::Client& c, Connection& conn, server::Guard& ug,
                                   http::RequestBody& body, const config::TargetGroup& g) {
    const bool chunked = c.request.chunked;
    std::string frame;
    while (!body.done()) {
        auto piece = co_await body.next();
        if (body.failed()) co_return body.client_gone() ? Failure::client_gone : Failure::request_body;
        if (piece.empty()) break;
        frame.clear();
        if (chunked) http::append_chunk_header(frame, piece.size());
        std::array<asio::const_buffer, 3> parts{asio::buffer(frame), asio::buffer(piece),
                                                asio::buffer(chunked ? "\r\n" : "", chunked ? 2 : 0)};
        ug.arm(g.timeouts.idle);
        auto [ec, n] = co_await conn.channel().write(parts);
        if (ec) co_return io_failure(ug);
    }
    if (chunked) {
        ug.arm(g.timeouts.idle);
        auto [ec, n] = co_await conn.channel().write(asio::buffer(http::kLastChunk));
        if (ec) co_return io_failure(ug);
    }
    co_return Failure::none;
}

// Reads the final response head into conn.in, skipping 1xx interim answers
// (except 101). Sets head_len on success.
asio::awaitable<Failure> read_response_head(http::Client& c, Connection& conn, server::Guard& ug,
                                            const config::TargetGroup& g, http::Response& res,
                                            std::size_t& head_len) {
    const auto& limits = c.worker.snapshot()->config->server.limits;
    http::Limits lim{std::max<std::size_t>(limits.max_header_bytes, 32 * 1024), 256};
    ug.arm(g.timeouts.response_header);
    bool any_byte = !conn.in.empty();
    while (true) {
        long end = http::find_head_end(conn.in.view());
        if (end < 0) co_return Failure::bad_response;
        if (end > 0) {
            if (!http::parse_response(conn.in.view().substr(0, static_cast<std::size_t>(end)), lim, res))
                co_return Failure::bad_response;
            if (res.status >= 100 && res.status < 200 && res.status != 101) {
                conn.in.consume(static_cast<std::size_t>(end));
                continue;
            }
            head_len = static_cast<std::size_t>(end);
            co_return Failure::none;
        }
        if (conn.in.full()) co_return Failure::bad_response;
        auto [ec, n] = co_await conn.channel().read_some(conn.in.free_space());
        if (ec || n == 0) {
            if (ug.expired()) co_return Failure::timeout;
            co_return any_byte ? Failure::bad_response : Failure::reset;
        }
        any_byte = true;
        conn.in.commit(n);
    }
}

// Connects (and for an https:// target, handshakes) within the connect timeout.
asio::awaitable<std::unique_ptr<Connection>> connect(http::Client& c, const core::Snapshot& s, int group,
                                                     std::size_t target, Failure& failure,
                                                     std::string& why) {
    const auto& g = s.config->target_groups[static_cast<std::size_t>(group)];
    const auto& address = g.targets[target];
    auto conn = std::make_unique<Connection>(c.worker.io);
    server::Guard guard(c.worker.watchdog, conn->socket);
    guard.arm(g.timeouts.connect);
    auto [ec] = co_await conn->socket.async_connect((*s.endpoints)[static_cast<std::size_t>(group)][target], nothrow);
    if (ec) {
        failure = guard.expired() ? Failure::timeout : Failure::connect;
        why = failure == Failure::timeout ? "connect timeout" : "connect failed";
        co_return nullptr;
    }
    conn->socket.set_option(tcp::no_delay(true), ec);
    tls::report_queued_bytes(conn->socket);
    if (address.tls) {
        conn->tls = std::make_unique<tls::TlsStream>(conn->socket, *s.tls->upstream[static_cast<std::size_t>(group)]);
        why = co_await tls::client_handshake(*conn->tls, g.tls, address);
        if (!why.empty()) {
            failure = guard.expired() ? Failure::timeout : Failure::tls;
            if (guard.expired()) why = "TLS handshake timed out";
            co_return nullptr;
        }
    }
    co_return conn;
}

}  // namespace

const core::CompiledError* mapped_error(const core::SiteView* site, int status) {
    if (site == nullptr || status == 101) return nullptr;
    for (const auto& e : site->errors)
        for (const auto& range : e.config->statuses)
            if (range.contains(status)) return &e;
    return nullptr;
}

asio::awaitable<ForwardResult> forward(http::Client& c, const core::Snapshot& snapshot, int group,
                                       const core::SiteView* site) {
    ForwardResult r;
    const auto& g = snapshot.config->target_groups[static_cast<std::size_t>(group)];
    std::optional<http::RequestBody> body;
    if (c.request.has_body()) body.emplace(c, snapshot.config->server.limits.max_body_bytes);
    boost::container::small_vector<char, 8> tried(g.targets.size(), 0);
    int attempts_left = 1 + g.retries;
    bool stale_retry_used = false;
    Failure last = Failure::no_target;
    auto started = server::Clock::now();
    // The table of the config this request started with: its indexes stay valid across a reload.
    const std::shared_ptr<PoolTable> pools = c.worker.pools.table();
    int stale_target = -1;  // retried at once on a new connection, outside the rotation
    while (true) {
        int t = stale_target >= 0 ? std::exchange(stale_target, -1)
                                  : choose_target(c, snapshot, *pools, group, tried);
        if (t < 0) {
            r.failure = last;
            co_return r;
        }
        auto target = static_cast<std::size_t>(t);
        tried[target] = 1;
        r.target = g.targets[target].text();
        TargetPool* pool = &pools->at(group, target);
        InFlight flight(*pool, *(*snapshot.load)[static_cast<std::size_t>(group)][target]);
        // An idempotent request without a body is retried if the connection proves stale;
        // any other must not be sent on one.
        auto conn = pool->take(body.has_value() || !c.request.idempotent());
        const bool reused = conn != nullptr;
        if (!conn) {
            std::string why;
            conn = co_await connect(c, snapshot, group, target, last, why);
            if (!conn) {
                if (last == Failure::tls) r.failure_detail = why;  // the others say it in their name
                target_failed(c, snapshot, group, target, *pool, why);
                if (--attempts_left > 0) continue;  // nothing was sent: any method may retry
                r.failure = last;
                co_return r;
            }
        }
        server::Guard ug(c.worker.watchdog, conn->socket);
        std::string& head = conn->request_head;
        head.clear();
        build_request_head(head, c.request, ForwardContext{c.peer, c.secure ? "https" : "http", r.target, c.http2});
        ug.arm(g.timeouts.idle);
        auto [ec, n] = co_await conn->channel().write(asio::buffer(head));
        Failure f = ec ? io_failure(ug) : Failure::none;
        const bool body_started = body && !ec;
        if (f == Failure::none && body) f = co_await send_body(c, *conn, ug, *body, g);
        http::Response& res = conn->response;
        std::size_t head_len = 0;
        if (f == Failure::none) f = co_await read_response_head(c, *conn, ug, g, res, head_len);
        if (f == Failure::client_gone || f == Failure::request_body) {
            r.failure = f;
            r.client_keep_alive = false;
            if (f == Failure::request_body) r.status = body->error_status();
            co_return r;
        }
        // A kept-alive connection the target had closed, or had ended with a 408 of its own
        // (some servers announce their keep-alive timeout so before they close; browsers
        // too take that 408 for a closed connection): what came answers no request of ours,
        // and it is not the target's fault. The same target answers on a new connection,
        // so the rotation stays even.
        if (reused && !body_started && !stale_retry_used &&
            (f == Failure::reset || (f == Failure::none && res.status == 408))) {
            boost::system::error_code ignored;
            conn->socket.close(ignored);
            last = Failure::reset;
            stale_retry_used = true;
            pool->close_all();
            stale_target = t;
            continue;
        }
        if (f != Failure::none) {
            boost::system::error_code ignored;
            conn->socket.close(ignored);
            last = f;
            // Only a reset on a new connection is the target's fault for sure; one on a
            // kept-alive connection may be a race with its keep-alive timeout.
            if (f == Failure::reset && !reused)
                target_failed(c, snapshot, group, target, *pool, "connection reset");
            bool retryable = f == Failure::reset && !body_started && c.request.idempotent();
            if (retryable && --attempts_left > 0) continue;
            r.failure = f;
            r.request_body_done = !body || body->done();
            co_return r;
        }
        r.upstream_ms = std::chrono::duration<double, std::milli>(server::Clock::now() - started).count();
        r.request_body_done = !body || body->done();
        conn->requests++;
        if ((r.mapped_error = mapped_error(site, res.status))) {
            r.status = res.status;
            co_return r;  // the connection closes with `conn`: its body is not wanted
        }
        bool reusable = co_await relay_response(c, *conn, ug, res, head_len, g, r);
        if (reusable && r.request_body_done)
            pool->give_back(std::move(conn), c.worker.watchdog.now(), g.pool.max_idle);
        co_return r;
    }
}

}  // namespace im::upstream
