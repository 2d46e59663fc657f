// One HTTP exchange with the admin API, over TCP or its Unix socket, and what its answer means.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cctype>

#include "control/cli.hpp"

namespace im::control::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
using local = asio::local::stream_protocol;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr std::uint64_t kMaxAnswer = 64 << 20;  // a full audit page is far below this

struct Outcome {
    Reply reply;
    boost::system::error_code error;
    bool connected = false;
};

using Request = http::request<http::string_body>;

// Writes the request and reads the answer on a connected stream.
template <class Stream>
asio::awaitable<void> ask_on(Stream& stream, const Request& req, std::chrono::seconds timeout,
                             Outcome& out) {
    out.connected = true;
    stream.expires_after(timeout);
    auto [wec, written] = co_await http::async_write(stream, req, nothrow);
    if (wec) {
        out.error = wec;
        co_return;
    }
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswer);
    auto [aec, read] = co_await http::async_read(stream, buffer, parser, nothrow);
    if (aec) {
        out.error = aec;
        co_return;
    }
    auto& res = parser.get();
    out.reply =
        Reply{static_cast<int>(res.result_int()), std::string(res.reason()), std::move(res.body())};
}

asio::awaitable<void> talk_tcp(const Endpoint& api, const Request& req,
                               std::chrono::seconds timeout, Outcome& out) {
    auto executor = co_await asio::this_coro::executor;
    tcp::resolver resolver(executor);
    auto [rec, found] =
        co_await resolver.async_resolve(api.host, std::to_string(api.port), nothrow);
    if (rec) {
        out.error = rec;
        co_return;
    }
    beast::tcp_stream stream(executor);
    stream.expires_after(kConnectTimeout);
    auto [cec, peer] = co_await stream.async_connect(found, nothrow);
    if (cec) {
        out.error = cec;
        co_return;
    }
    co_await ask_on(stream, req, timeout, out);
}

asio::awaitable<void> talk_unix(const Endpoint& api, const Request& req,
                                std::chrono::seconds timeout, Outcome& out) {
    beast::basic_stream<local> stream(co_await asio::this_coro::executor);
    stream.expires_after(kConnectTimeout);
    auto [cec] = co_await stream.async_connect(local::endpoint(api.unix_socket), nothrow);
    if (cec) {
        out.error = cec;
        co_return;
    }
    co_await ask_on(stream, req, timeout, out);
}

Failure unreachable(const Endpoint& api, const Outcome& out, std::chrono::seconds timeout) {
    bool timed_out = out.error == beast::error::timeout;
    auto seconds = [](std::chrono::seconds s) { return std::to_string(s.count()) + "s"; };
    if (!out.connected) {
        std::string why =
            timed_out ? "no connection within " + seconds(kConnectTimeout) : out.error.message();
        return Failure{kUnreachable, "cannot reach the admin API at " + api.text() + ": " + why};
    }
    std::string why = timed_out ? " within " + seconds(timeout) : ": " + out.error.message();
    return Failure{kUnreachable, "the admin API at " + api.text() + " did not answer" + why};
}

}  // namespace

Reply exchange(const Endpoint& api, std::string_view method, const std::string& target,
               const std::optional<json::value>& body, std::chrono::seconds timeout) {
    Request req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, api.unix_socket.empty() ? api.text() : "localhost");
    req.set(http::field::authorization, "Bearer " + api.token);
    req.set(http::field::accept, "application/json");
    req.set(http::field::user_agent, "intermission-cli");
    if (body) {
        req.set(http::field::content_type, "application/json");
        req.body() = json::serialize(*body);
    }
    req.keep_alive(false);
    req.prepare_payload();
    asio::io_context io;
    Outcome out;
    if (api.unix_socket.empty())
        asio::co_spawn(io, talk_tcp(api, req, timeout, out), asio::detached);
    else
        asio::co_spawn(io, talk_unix(api, req, timeout, out), asio::detached);
    io.run();
    if (out.error) throw unreachable(api, out, timeout);
    return out.reply;
}

namespace {

// One line whatever the server put in it: a message must not forge more output lines.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return out;
}

std::string api_error(const json::value& answer, const Reply& reply) {
    if (const auto* o = answer.if_object())
        if (auto it = o->find("error"); it != o->end() && it->value().is_string())
            return one_line(it->value().as_string());
    return reply.reason.empty() ? "no error message" : one_line(reply.reason);
}

std::vector<std::string> api_error_details(const json::value& answer) {
    std::vector<std::string> out;
    if (const auto* o = answer.if_object())
        if (auto it = o->find("errors"); it != o->end() && it->value().is_array())
            for (const auto& e : it->value().as_array())
                if (e.is_string()) out.push_back(one_line(e.as_string()));
    return out;
}

}  // namespace

json::value accepted(const Reply& reply) {
    boost::system::error_code ec;
    auto answer = json::parse(reply.body, ec);
    std::string status =
        std::to_string(reply.status) + (reply.reason.empty() ? "" : " " + reply.reason);
    if (reply.status == 401)
        throw Failure{kUnauthorized,
                      "the admin API refused the token (401): " + api_error(answer, reply)};
    if (reply.status < 200 || reply.status >= 300)
        throw Failure{kRefused, status + ": " + api_error(answer, reply),
                      api_error_details(answer)};
    if (ec || !answer.is_object())
        throw Failure{kRefused, "the admin API answered " + status + " without a JSON object"};
    return answer;
}

std::string path_segment(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

}  // namespace im::control::cli
