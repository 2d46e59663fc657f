#include "control/admin.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <optional>

#include "control/dashboard.hpp"
#include "core/bypass.hpp"
#include "observe/metrics.hpp"

namespace im::control {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
namespace local = asio::local;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Which configured token this request carries, compared in constant time.
const config::AdminToken* authenticate(const Request& req, const config::Admin& admin) {
    auto header = req[http::field::authorization];
    constexpr std::string_view kBearer = "Bearer ";
    if (header.size() <= kBearer.size() || header.substr(0, kBearer.size()) != kBearer) return nullptr;
    std::string_view presented(header.data() + kBearer.size(), header.size() - kBearer.size());
    const config::AdminToken* found = nullptr;
    for (const auto& t : admin.tokens)  // no early exit: time does not reveal which matched
        if (core::secret_equals(presented, t.value)) found = &t;
    return found;
}

std::size_t query_number(std::string_view target, std::string_view key, std::size_t fallback) {
    auto q = target.find('?');
    if (q == std::string_view::npos) return fallback;
    auto v = core::query_value(target.substr(q + 1), key);
    if (v.empty()) return fallback;
    try {
        return std::stoul(std::string(v));
    } catch (...) {
        return fallback;
    }
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A path segment with %XX decoded (a target such as "[::1]:80" arrives encoded).
std::string decode_segment(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        int hi = 0, lo = 0;
        if (s[i] == '%' && i + 2 < s.size() && (hi = hex_digit(s[i + 1])) >= 0 &&
            (lo = hex_digit(s[i + 2])) >= 0) {
            out += static_cast<char>(hi * 16 + lo);
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::vector<std::string> split_path(std::string_view target) {
    target = target.substr(0, target.find('?'));
    std::vector<std::string> parts;
    while (!target.empty()) {
        auto slash = target.find('/');
        if (slash != 0) parts.push_back(decode_segment(target.substr(0, slash)));
        if (slash == std::string_view::npos) break;
        target.remove_prefix(slash + 1);
    }
    return parts;
}

// The body as a JSON object; an empty body is `empty_ok` (null), anything else an error.
std::optional<json::value> object_body(const Request& req, bool empty_ok) {
    if (empty_ok && req.body().find_first_not_of(" \t\r\n") == std::string::npos) return json::value(nullptr);
    boost::system::error_code ec;
    auto body = json::parse(req.body(), ec);
    if (ec || !body.is_object()) return std::nullopt;
    return body;
}

ApiAnswer route_targets(const Request& req, const std::vector<std::string>& parts, Operations& ops,
                        const Caller& caller) {
    auto method = req.method();
    if (parts.size() == 2 && method == http::verb::get) return ops.targets();
    if (parts.size() != 5 || parts[4] != "drain") return ApiAnswer::error(404, "no such endpoint");
    if (method == http::verb::delete_) return ops.set_drain(parts[2], parts[3], false, nullptr, caller);
    if (method != http::verb::put && method != http::verb::post)
        return ApiAnswer::error(405, "use PUT or DELETE on this endpoint");
    auto body = object_body(req, true);
    if (!body) return ApiAnswer::error(400, "expected no body or a JSON object, e.g. {\"reason\": \"deploy\"}");
    return ops.set_drain(parts[2], parts[3], true, body->is_null() ? nullptr : &*body, caller);
}

ApiAnswer route(const Request& req, Operations& ops, const Caller& caller) {
    auto parts = split_path(req.target());
    auto method = req.method();
    if (parts.size() < 2 || parts[0] != "v1") return ApiAnswer::error(404, "no such endpoint");
    if (parts[1] == "sites" && parts.size() == 2 && method == http::verb::get) return ops.sites();
    if (parts[1] == "sites" && parts.size() == 3 && method == http::verb::get)
        return ops.site(std::string(parts[2]));
    if (parts[1] == "targets") return route_targets(req, parts, ops, caller);
    if (parts[1] == "sites" && parts.size() == 4 && parts[3] == "bypass") {
        if (method != http::verb::post) return ApiAnswer::error(405, "use POST on this endpoint");
        auto body = object_body(req, true);
        if (!body) return ApiAnswer::error(400, "expected no body or a JSON object, e.g. {\"ttl\": \"30m\"}");
        return ops.issue_bypass(parts[2], body->is_null() ? nullptr : &*body, caller);
    }
    if (parts[1] == "reload" && parts.size() == 2) {
        if (method != http::verb::post) return ApiAnswer::error(405, "use POST on this endpoint");
        return ops.reload(caller);
    }
    if (parts[1] == "sites" && parts.size() == 4 && parts[3] == "maintenance") {
        std::string site(parts[2]);
        if (method == http::verb::get) return ops.maintenance(site);
        if (method == http::verb::delete_) return ops.set_maintenance(site, nullptr, caller);
        if (method == http::verb::put || method == http::verb::post) {
            boost::system::error_code ec;
            auto body = json::parse(req.body(), ec);
            if (ec || !body.is_object())
                return ApiAnswer::error(400, "expected a JSON object body, e.g. {\"on\": true, \"reason\": \"deploy\"}");
            return ops.set_maintenance(site, &body, caller);
        }
        return ApiAnswer::error(405, "use GET, PUT or DELETE on this endpoint");
    }
    if (parts[1] == "sites" && parts.size() == 5 && parts[3] == "maintenance" && parts[4] == "windows") {
        std::string site(parts[2]);
        if (method == http::verb::get) return ops.maintenance(site);
        if (method == http::verb::delete_) return ops.remove_windows(site, caller);
        if (method == http::verb::post) {
            boost::system::error_code ec;
            auto body = json::parse(req.body(), ec);
            if (ec || !body.is_object())
                return ApiAnswer::error(400, "expected a JSON object body, e.g. {\"start\": \"2026-11-24T02:00:00Z\", \"end\": \"2026-11-24T03:00:00Z\"}");
            return ops.add_window(site, body, caller);
        }
        return ApiAnswer::error(405, "use GET, POST or DELETE on this endpoint");
    }
    if (parts[1] == "audit" && parts.size() == 2 && method == http::verb::get)
        return ops.audit(query_number(req.target(), "offset", 0),
                         std::min<std::size_t>(query_number(req.target(), "limit", 50), 1000));
    return ApiAnswer::error(404, "no such endpoint: " + std::string(req.method_string()) + " " +
                                     std::string(req.target()));
}

bool is_metrics(const Request& req) {
    auto parts = split_path(req.target());
    return parts.size() == 1 && parts[0] == "metrics";
}

// GET /metrics for Prometheus: the one answer that is text, not JSON.
Response metrics_response(const Request& req, Operations& ops) {
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, std::string(observe::kContentType));
    res.set(http::field::cache_control, "no-store");
    res.body() = ops.metrics();
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

Response handle(const Request& req, Operations& ops, const std::string& client) {
    // The page and its files need no token: it asks for one and sends it with every call.
    if (auto page = dashboard_response(req)) return std::move(*page);
    ApiAnswer answer;
    if (req.target() == "/healthz") {
        answer.body = json::object{{"status", "ok"}};
    } else if (const auto* token = authenticate(req, ops.admin())) {
        if (is_metrics(req) && req.method() == http::verb::get) return metrics_response(req, ops);
        answer = is_metrics(req) ? ApiAnswer::error(405, "use GET on this endpoint")
                                 : route(req, ops, Caller{token->name, client});
    } else {
        answer = ApiAnswer::error(401, "missing or wrong admin token (send Authorization: Bearer <token>)");
    }
    Response res{static_cast<http::status>(answer.status), req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = json::serialize(answer.body) + "\n";
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

std::string client_name(const tcp::socket& s) {
    boost::system::error_code ec;
    auto peer = s.remote_endpoint(ec);
    return ec ? "-" : peer.address().to_string();
}

std::string client_name(const local::stream_protocol::socket&) { return "unix"; }

template <class Protocol>
asio::awaitable<void> serve(typename Protocol::socket socket, Operations& ops) {
    std::string client = client_name(socket);
    beast::basic_stream<Protocol> stream(std::move(socket));
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    while (true) {
        Request req;
        http::request_parser<http::string_body> parser;
        parser.body_limit(1 << 20);
        stream.expires_after(std::chrono::seconds(30));
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, nothrow);
        if (rec) break;
        auto res = handle(parser.get(), ops, client);
        auto [wec, wn] = co_await http::async_write(stream, res, nothrow);
        if (wec || !res.keep_alive()) break;
    }
    stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
}

template <class Protocol>
asio::awaitable<void> accept_loop(typename Protocol::acceptor acceptor, Operations& ops) {
    while (acceptor.is_open()) {
        auto [ec, socket] = co_await acceptor.async_accept(nothrow);
        if (ec) break;
        asio::co_spawn(acceptor.get_executor(), serve<Protocol>(std::move(socket), ops), asio::detached);
    }
}

// A Unix socket: only who can open the file reaches the API (the token is still required).
void start_unix(asio::io_context& io, const std::filesystem::path& path, Operations& ops) {
    std::error_code fs_ec;
    if (std::filesystem::is_socket(path, fs_ec)) std::filesystem::remove(path, fs_ec);  // left by a crash
    boost::system::error_code ec;
    local::stream_protocol::acceptor acceptor(io);
    local::stream_protocol::endpoint ep(path.string());
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec && ::chmod(path.c_str(), 0600) != 0) ec.assign(errno, boost::system::system_category());
    if (!ec) acceptor.listen(64, ec);
    if (ec) throw std::runtime_error("cannot listen on the admin socket " + path.string() + ": " + ec.message());
    spdlog::info("admin API on unix:{}", path.string());
    asio::co_spawn(io, accept_loop<local::stream_protocol>(std::move(acceptor), ops), asio::detached);
}

}  // namespace

ApiAnswer ApiAnswer::error(int status, std::string message) {
    return ApiAnswer{status, json::object{{"error", std::move(message)}}};
}

void start_admin(asio::io_context& io, Operations& ops) {
    const config::Admin& admin = ops.admin();
    if (!admin.unix_socket.empty()) return start_unix(io, admin.unix_socket, ops);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(admin.listen.host, ec);
    if (ec) throw std::runtime_error("admin listen address " + admin.listen.text() + ": not an IP address");
    tcp::endpoint ep(address, admin.listen.port);
    tcp::acceptor acceptor(io);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(64, ec);
    if (ec) throw std::runtime_error("cannot listen on the admin address " + admin.listen.text() + ": " + ec.message());
    spdlog::info("admin API on http://{}", admin.listen.text());
    asio::co_spawn(io, accept_loop<tcp>(std::move(acceptor), ops), asio::detached);
}

}  // namespace im::control
