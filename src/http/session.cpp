// The request lifecycle for one client connection, as named phases:
// read head -> parse -> decide -> execute (store | forward | error) -> log.
#include "http/session.hpp"

#include <algorithm>
#include <ctime>

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "core/decide.hpp"
#include "pages/path.hpp"
#include "http/answers.hpp"
#include "http/client.hpp"
#include "http/h2.hpp"
#include "http/request_body.hpp"
#include "observe/metrics.hpp"
#include "server/worker.hpp"
#include "tls/certificates.hpp"
#include "upstream/forward.hpp"

namespace im::http {

namespace asio = boost::asio;
using asio::ip::tcp;
using server::Clock;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kFlushAt = 64 * 1024;  // pipelined answers batch up to this

// The accept loop counted the connection in; it counts out when its session ends.
struct ClientCount {
    explicit ClientCount(server::Worker& w) : worker(w) {}
    ~ClientCount() { --worker.clients; }
    server::Worker& worker;
};

const config::Server& server_config(const Client& c) {
    return c.worker.snapshot()->config->server;
}

// The hot callers check c.out themselves first: a coroutine's frame is an allocation even
// when there is nothing to write.
asio::awaitable<bool> flush(Client& c) {
    if (c.out.empty()) co_return true;
    c.guard.arm(server_config(c).timeouts.send);
    auto [ec, n] = co_await c.channel().write(asio::buffer(c.out));
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
        if (!c.out.empty() && !co_await flush(c)) co_return 0;  // after a forward it is empty
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
        auto [ec, n] = co_await c.channel().read_some(c.in.free_space());
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
    // The bypass URL carries a secret token: its query never reaches the log.
    r.target = c.redact_query ? c.request.path : c.request.target;
    r.minor_version = c.request.minor_version;
    r.http2 = c.http2;
    r.status = status;
    r.bytes_sent = bytes;
    r.upstream = upstream;
    r.upstream_ms = upstream_ms;
    r.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    log.add(r);
}

// Metrics: a few relaxed stores into this worker's own counters; no lock, no lookup.
void count_request(Client& c, const core::Snapshot& s, int site, observe::RequestAction action,
                   int status, std::uint64_t bytes_in, std::uint64_t bytes_out) {
    if (const auto* m = s.metrics.get())
        m->site(c.worker.index(), site).count(action, status, bytes_in, bytes_out);
}

// A request's bytes as far as known: its head and the body its Content-Length announces.
std::uint64_t request_bytes(const Client& c, long head) {
    return static_cast<std::uint64_t>(head) + c.request.content_length.value_or(0);
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

std::string_view failure_text(upstream::Failure f) {
    switch (f) {
    case upstream::Failure::no_target: return "no healthy target";
    case upstream::Failure::connect: return "connect failed";
    case upstream::Failure::tls: return "TLS to the target failed";
    case upstream::Failure::reset: return "connection reset before a response";
    case upstream::Failure::timeout: return "timed out";
    case upstream::Failure::bad_response: return "invalid HTTP response";
    default: return "failed";
    }
}

config::GatewayFailure gateway_failure(upstream::Failure f) {
    switch (f) {
    case upstream::Failure::connect: return config::GatewayFailure::connect_failed;
    case upstream::Failure::tls: return config::GatewayFailure::connect_failed;  // no usable connection
    case upstream::Failure::timeout: return config::GatewayFailure::timeout;
    case upstream::Failure::no_target: return config::GatewayFailure::no_healthy_target;
    case upstream::Failure::bad_response: return config::GatewayFailure::bad_response;
    default: return config::GatewayFailure::reset;
    }
}

// Visitors never see a raw failure: the site's error page for this failure,
// else its outage page, with the failure's status.
int answer_failure(Client& c, const core::SiteView& site, upstream::Failure f, int status,
                   bool close, std::uint64_t& bytes) {
    if (f == upstream::Failure::request_body || f == upstream::Failure::client_gone) {
        c.answer_error(status, true);  // the client's fault
        return status;
    }
    auto gf = gateway_failure(f);
    for (const auto& e : site.errors) {
        const auto& fs = e.config->failures;
        if (std::find(fs.begin(), fs.end(), gf) != fs.end())
            return answer_with_page(c, e.page.get(), e.config->status.value_or(status), close, bytes);
    }
    if (f == upstream::Failure::no_target) status = site.config->outage.status;
    return answer_with_page(c, site.outage_page.get(), status, close, bytes);
}

// What rules see of the request besides its head. False: a path that cannot
// be decoded safely (400).
bool visitor_of(Client& c, core::Visitor& v) {
    v.address = c.address;
    v.now = std::time(nullptr);
    v.roll = c.worker.roll();
    std::string_view path = c.request.path;
    bool plain = path.find('%') == std::string_view::npos && path.find("//") == std::string_view::npos &&
                 path.find("/.") == std::string_view::npos && path.find('\\') == std::string_view::npos;
    if (plain) {
        v.path = path;
        return true;
    }
    auto normalized = pages::normalize_path(path);
    if (!normalized) return false;
    c.normalized = std::move(*normalized);
    v.path = c.normalized;
    return true;
}

asio::awaitable<bool> serve_forward(Client& c, const core::Snapshot& snapshot,
                                    const core::Decision& d, bool close, Clock::time_point start,
                                    std::uint64_t bytes_in) {
    if (!c.out.empty() && !co_await flush(c)) co_return false;
    const auto& site = snapshot.sites[static_cast<std::size_t>(d.site)];
    auto r = co_await upstream::forward(c, snapshot, d.group, &site);
    std::uint64_t bytes = r.body_bytes;
    if (r.mapped_error) {
        // The application answered, but with a status the site maps to a page.
        int status = r.mapped_error->config->status.value_or(r.status);
        r.status = answer_with_page(c, r.mapped_error->page.get(), status, close, bytes);
    } else if (r.failure != upstream::Failure::none && !r.response_started) {
        if (r.failure != upstream::Failure::client_gone && r.failure != upstream::Failure::request_body)
            spdlog::warn("site '{}': {} {}: target {}: {}{}{}", site.config->name, c.request.method,
                         c.request.path, r.target.empty() ? "-" : r.target, failure_text(r.failure),
                         r.failure_detail.empty() ? "" : ": ", r.failure_detail);
        bool body_unread = c.request.has_body() && !r.request_body_done;
        r.client_keep_alive = r.client_keep_alive && !body_unread;
        int status = r.status > 0 ? r.status : failure_status(r.failure);
        r.status = answer_failure(c, site, r.failure, status, close || !r.client_keep_alive, bytes);
    }
    log_access(c, site.config->name, r.status, bytes, r.target, r.upstream_ms, start);
    if (const auto* m = snapshot.metrics.get())
        m->count_forward(c.worker.index(), d, r, bytes_in, bytes);
    co_return r.client_keep_alive && !close;
}

int answer_locally(Client& c, const core::Snapshot& snapshot, const core::Decision& d, bool close,
                   std::uint64_t& bytes) {
    using Kind = core::Decision::Kind;
    if (d.kind == Kind::no_site) {
        c.answer_error(404, close);  // no site for this Host
        return 404;
    }
    const auto& site = snapshot.sites[static_cast<std::size_t>(d.site)];
    switch (d.kind) {
    case Kind::store: return answer_store(c, site, close, bytes);
    case Kind::page: return answer_page(c, *d.action, close, bytes);
    case Kind::fixed: return answer_fixed(c, *d.action, close, bytes);
    case Kind::redirect: return answer_redirect(c, *d.action, close);
    case Kind::maintenance:
        return answer_maintenance(c, site, snapshot.maintenance[static_cast<std::size_t>(d.site)],
                                  d.retry_after, close, bytes);
    case Kind::outage:  // no healthy target: an error page for no_healthy_target wins over the outage page
        return answer_failure(c, site, upstream::Failure::no_target, site.config->outage.status, close, bytes);
    case Kind::bypass_grant:
        return answer_bypass_grant(c, site.config->maintenance.bypass, std::time(nullptr), close);
    case Kind::not_found:
    case Kind::forward:
    case Kind::no_site: break;
    }
    c.answer_error(404, close);
    return 404;
}

// The TLS handshake, bounded by the header timeout like a request head.
asio::awaitable<bool> tls_handshake(Client& c, const tls::CertificateStore& certificates) {
    c.tls = std::make_unique<tls::TlsStream>(c.socket, certificates.handshake_context());
    c.guard.arm(server_config(c).timeouts.header);
    auto ec = co_await c.tls->handshake(tls::TlsStream::Role::server);
    c.guard.disarm();
    if (!ec) co_return true;
    // Scanners and old clients fail handshakes all day: worth a debug line, not a warning.
    spdlog::debug("TLS handshake with {} failed: {}", c.peer,
                  c.guard.expired() ? std::string("timed out") : ec.message());
    boost::system::error_code ignored;
    c.socket.close(ignored);
    co_return false;
}

// Plain HTTP on a gateway with `tls.redirect_http`: every request is sent to HTTPS.
bool redirects_to_https(const Client& c) {
    const auto& tls = c.worker.snapshot()->config->tls;
    return tls.enabled && tls.redirect_http;
}

void restore_carry(Client& c) {
    if (c.carry.empty()) return;
    c.in.append(c.carry);
    c.carry.clear();
}

// A decision the gateway answers itself, with its log line and count.
void answer_decision(Client& c, const core::Snapshot& snapshot, const Started& st) {
    const auto& d = st.decision;
    std::uint64_t bytes = 0;
    int status = answer_locally(c, snapshot, d, st.close, bytes);
    c.redact_query =
        d.site >= 0 && st.visitor.path == snapshot.sites[d.site].config->maintenance.bypass.cookie_path;
    std::string_view site_name = d.site >= 0 ? std::string_view(snapshot.sites[d.site].config->name) : "-";
    log_access(c, site_name, status, bytes, {}, -1, st.start);
    count_request(c, snapshot, d.site, observe::action_of(d.kind), status, request_bytes(c, st.end), bytes);
}

}  // namespace

// The part of a request that needs no waiting. Answered at once: a refusal,
// the HTTPS redirect, or a local answer to a request without a body. Else
// the decision waits for the application or for the body to be read off.
Started start_request(Client& c, long end) {
    Started st;
    st.end = end;
    // Timing is only for the access log: no clock read per request without it.
    st.start = c.worker.access_log.enabled() ? Clock::now() : Clock::time_point{};
    auto answered = [&st](bool keep) {
        st.answered = true;
        st.keep = keep;
        return st;
    };
    c.redact_query = false;
    c.head_request = false;
    c.answers_from_current = false;
    const auto& server = server_config(c);
    c.connection_headers = c.secure ? std::string_view(c.worker.snapshot()->https_headers) : std::string_view();
    Limits limits{server.limits.max_header_bytes, server.limits.max_headers};
    int bad = parse_request(c.in.view().substr(0, static_cast<std::size_t>(end)), limits, c.request);
    if (!bad && !visitor_of(c, st.visitor)) bad = 400;
    if (bad) {
        c.answer_error(bad, true);
        log_access(c, "-", bad, 0, {}, -1, st.start);  // operators must see refused requests too
        count_request(c, *c.worker.snapshot(), -1, observe::RequestAction::refused, bad, end, 0);
        return answered(false);
    }
    c.in.consume(static_cast<std::size_t>(end));
    c.head_request = c.request.method == "HEAD";
    if (!c.secure && redirects_to_https(c)) {
        int status = answer_https_redirect(c);
        log_access(c, "-", status, 0, {}, -1, st.start);
        count_request(c, *c.worker.snapshot(), -1, observe::RequestAction::redirect, status,
                      request_bytes(c, end), 0);
        return answered(false);
    }
    if (server.limits.max_body_bytes && c.request.content_length &&
        *c.request.content_length > server.limits.max_body_bytes) {
        c.answer_error(413, true);
        count_request(c, *c.worker.snapshot(), -1, observe::RequestAction::refused, 413, end, 0);
        return answered(false);
    }
    const core::Snapshot& current = *c.worker.snapshot();
    st.decision = core::decide(c.request, st.visitor, current);
    st.close = !c.request.keep_alive || c.worker.draining();
    // A request that awaits pins its snapshot: the worker may be handed a new
    // one meanwhile. Answers made at once need no pin (and no atomic count).
    if (st.decision.kind == core::Decision::Kind::forward || c.request.has_body()) {
        st.pinned = c.worker.snapshot();
        return st;
    }
    c.answers_from_current = true;
    answer_decision(c, current, st);
    c.answers_from_current = false;
    restore_carry(c);
    return answered(!st.close);
}

asio::awaitable<bool> finish_request(Client& c, Started& st) {
    const core::Snapshot& snapshot = *st.pinned;
    if (st.decision.kind == core::Decision::Kind::forward) {
        bool keep = co_await serve_forward(c, snapshot, st.decision, st.close, st.start,
                                           request_bytes(c, st.end));
        restore_carry(c);
        co_return keep;
    }
    // The answer does not use the body; read it off so the next request parses.
    RequestBody body(c, server_config(c).limits.max_body_bytes);
    if (!co_await body.discard()) {
        if (body.error_status()) c.answer_error(body.error_status(), true);
        co_return false;
    }
    answer_decision(c, snapshot, st);
    restore_carry(c);
    co_return !st.close;
}

namespace {

// Serves one request whose head is in c.in[0, end). Returns whether the
// connection stays open for another.
asio::awaitable<bool> serve_request(Client& c, long end) {
    auto st = start_request(c, end);
    bool keep = st.answered ? st.keep : co_await finish_request(c, st);
    if (keep && c.out.size() >= kFlushAt && !co_await flush(c)) co_return false;
    co_return keep;
}

// Closing with unread input makes the kernel send a reset, which can destroy
// an error answer still in flight; read off what the client sends first.
asio::awaitable<void> linger_close(Client& c) {
    boost::system::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_send, ignored);
    c.guard.arm(std::chrono::seconds(2));
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        auto [ec, n] = co_await c.channel().read_some(asio::buffer(sink));
        if (ec || n == 0) break;
    }
    c.socket.close(ignored);
}

void set_peer(Client& c) {
    boost::system::error_code ec;
    auto ep = c.socket.remote_endpoint(ec);
    c.peer = ec ? std::string("-") : ep.address().to_string();
    if (!ec) {
        auto a = ep.address();
        c.address = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes()
                              : a.to_v6().to_bytes();
    }
}

// A refused head: the answer, the log line and the count, before the connection closes.
void refuse(Client& c, int status, std::uint64_t bytes_in) {
    c.answer_error(status, true);
    c.request.clear();  // nothing of it was parsed: logged without method and target
    log_access(c, "-", status, 0, {}, -1, Clock::now());
    count_request(c, *c.worker.snapshot(), -1, observe::RequestAction::refused, status, bytes_in, 0);
}

// ALPN chose HTTP/2 during the handshake.
bool negotiated_h2(const Client& c) {
    const unsigned char* protocol = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(c.tls->native_handle(), &protocol, &length);
    return length == 2 && protocol[0] == 'h' && protocol[1] == '2';
}

// A plain connection that opens with the HTTP/2 preface, where h2c is on.
bool opens_h2c(const Client& c) {
    return c.worker.snapshot()->config->server.http2.cleartext && c.in.view().starts_with(kH2PrefaceStart);
}

}  // namespace

Client::Client(server::Worker& w, tcp::socket s, std::size_t buffer_bytes)
    : worker(w), socket(std::move(s)), guard(w.watchdog, socket), in(buffer_bytes) {}

Stamp Client::stamp() const { return {worker.date.value(), connection_headers}; }

void Client::answer(const Reply& reply) {
    if (sink) sink->reply(reply, stamp());
    else append_reply(out, reply, stamp());
}

void Client::answer_error(int status, bool close, std::string_view extra_headers) {
    ErrorText e(status, extra_headers);
    answer(Reply{status, e.headers, e.body, head_request, close});
}

Started start_stream(Client& c, int refuse_status) {
    c.head_request = false;  // stream clients are reused: not the last stream's HEAD
    // h2::RequestHead wrote the head, ending in its blank line: all of c.in is the head,
    // no need to look for its end. What is wrong in it, parse_request finds.
    if (!refuse_status) return start_request(c, static_cast<long>(c.in.size()));
    refuse(c, refuse_status, 0);
    Started st;
    st.answered = true;
    return st;
}

asio::awaitable<void> finish_stream(Client& c, Started st) {
    if (!st.answered) co_await finish_request(c, st);
    if (!c.out.empty()) co_await flush(c);  // a forwarded answer went to the stream already
}

asio::awaitable<void> serve_client(server::Worker& worker, tcp::socket socket, bool https) {
    ClientCount count(worker);
    const auto& limits = worker.snapshot()->config->server.limits;
    Client c(worker, std::move(socket), limits.max_header_bytes + 16 * 1024);
    set_peer(c);
    // The callbacks of a handshake refer to the store it started with: keep it alive.
    std::shared_ptr<const tls::CertificateStore> certificates;
    if (https) {
        certificates = worker.snapshot()->tls->certificates;
        if (!certificates || !co_await tls_handshake(c, *certificates)) co_return;
        c.secure = true;
        if (negotiated_h2(c)) {
            co_await serve_http2(c);
            co_return;
        }
    }
    for (bool first = true;; first = false) {
        c.head_request = false;  // a refusal before the next head is parsed has its body
        bool timed_out = false;
        long end = co_await read_head(c, timed_out);
        if (end == 0) {
            if (timed_out) c.answer_error(408, true);
            break;
        }
        if (first && !https && opens_h2c(c)) {
            co_await serve_http2(c);
            co_return;
        }
        if (end < 0) {
            refuse(c, end == -431 ? 431 : 400, c.in.size());
            break;
        }
        if (!co_await serve_request(c, end)) break;
    }
    if (c.socket.is_open() && co_await flush(c)) co_await linger_close(c);
}

}  // namespace im::http
