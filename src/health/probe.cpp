#include "health/probe.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/message.hpp"
#include "tls/upstream.hpp"

namespace im::health {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

asio::awaitable<ProbeResult> exchange(tcp::socket& socket, const tcp::endpoint& target,
                                      const std::string& request, const config::Address& address,
                                      const config::TargetGroup& group, asio::ssl::context* tls_context) {
    const auto& check = group.health;
    ProbeResult r;
    auto [cec] = co_await socket.async_connect(target, nothrow);
    if (cec) {
        r.error = "connect: " + cec.message();
        co_return r;
    }
    std::unique_ptr<tls::TlsStream> tls;
    if (address.tls && tls_context) {
        tls = std::make_unique<tls::TlsStream>(socket, *tls_context);
        r.error = co_await tls::client_handshake(*tls, group.tls, address);
        if (!r.error.empty()) co_return r;
    }
    tls::Channel channel{&socket, tls.get()};
    auto [wec, wn] = co_await channel.write(asio::buffer(request));
    if (wec) {
        r.error = "send: " + wec.message();
        co_return r;
    }
    std::string head;
    char buf[4096];
    while (http::find_head_end(head) == 0 && head.size() < 64 * 1024) {
        auto [ec, n] = co_await channel.read_some(asio::buffer(buf));
        if (ec || n == 0) break;
        head.append(buf, n);
    }
    http::Response res;
    long end = http::find_head_end(head);
    if (end <= 0 || !http::parse_response(head.substr(0, static_cast<std::size_t>(end)),
                                          http::Limits{64 * 1024, 256}, res)) {
        r.error = head.empty() ? "no response" : "not an HTTP response";
        co_return r;
    }
    r.status = res.status;
    for (const auto& range : check.expect)
        if (range.contains(res.status)) r.ok = true;
    if (!r.ok) r.error = "status " + std::to_string(res.status);
    co_return r;
}

}  // namespace

asio::awaitable<ProbeResult> probe(const tcp::endpoint& target, const config::Address& address,
                                   const config::TargetGroup& group, asio::ssl::context* tls_context) {
    const auto& check = group.health;
    const std::string target_text = address.text();
    auto executor = co_await asio::this_coro::executor;
    tcp::socket socket(executor);
    asio::steady_timer timer(executor, check.timeout);
    const std::string& host = check.host.empty() ? target_text : check.host;
    std::string request = "GET " + check.path + " HTTP/1.1\r\nHost: " + host +
                          "\r\nUser-Agent: intermission-health-check\r\nConnection: close\r\n\r\n";
    auto start = std::chrono::steady_clock::now();
    auto outcome = co_await (exchange(socket, target, request, address, group, tls_context) ||
                             timer.async_wait(nothrow));
    ProbeResult r;
    if (outcome.index() == 0) r = std::get<0>(std::move(outcome));
    else r.error = "timed out after " + std::to_string(check.timeout.count()) + "ms";
    r.latency = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    co_return r;
}

}  // namespace im::health
