#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "http/message.hpp"
#include "upstream/balancer.hpp"
#include "upstream/headers.hpp"

using namespace im;
using upstream::Candidate;

TEST(Balancer, RoundRobinSkipsUnusable) {
    std::vector<Candidate> c{{true, 0}, {false, 0}, {true, 0}};
    std::size_t cursor = 0;
    std::vector<int> picks;
    for (int i = 0; i < 6; ++i) picks.push_back(upstream::pick_target(config::Balance::round_robin, c, cursor));
    EXPECT_EQ(picks, (std::vector<int>{0, 2, 2, 0, 2, 2}));
}

TEST(Balancer, RoundRobinSpreadsEvenly) {
    std::vector<Candidate> c(3, Candidate{true, 0});
    std::size_t cursor = 0;
    int counts[3] = {};
    for (int i = 0; i < 300; ++i) ++counts[upstream::pick_target(config::Balance::round_robin, c, cursor)];
    EXPECT_EQ(counts[0], 100);
    EXPECT_EQ(counts[1], 100);
    EXPECT_EQ(counts[2], 100);
}

TEST(Balancer, LeastOutstandingPrefersIdle) {
    std::vector<Candidate> c{{true, 5}, {true, 1}, {true, 3}};
    std::size_t cursor = 0;
    for (int i = 0; i < 5; ++i)
        EXPECT_EQ(upstream::pick_target(config::Balance::least_outstanding, c, cursor), 1);
}

TEST(Balancer, LeastOutstandingBreaksTiesByRotation) {
    std::vector<Candidate> c{{true, 0}, {true, 0}};
    std::size_t cursor = 0;
    EXPECT_EQ(upstream::pick_target(config::Balance::least_outstanding, c, cursor), 0);
    EXPECT_EQ(upstream::pick_target(config::Balance::least_outstanding, c, cursor), 1);
}

TEST(Balancer, NoneUsable) {
    std::vector<Candidate> c{{false, 0}, {false, 0}};
    std::size_t cursor = 0;
    EXPECT_EQ(upstream::pick_target(config::Balance::round_robin, c, cursor), -1);
    EXPECT_EQ(upstream::pick_target(config::Balance::least_outstanding, {}, cursor), -1);
}

namespace {
// Requests are views into their head: keep every head alive for the test run.
http::Request parse(const std::string& head) {
    static std::deque<std::string> heads;
    heads.push_back(head);
    http::Request r;
    EXPECT_EQ(http::parse_request(heads.back(), {}, r), 0);
    return r;
}
}  // namespace

TEST(UpstreamHeaders, RequestIsReframedAndAnnotated) {
    std::string head =
        "POST /p?q=1 HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Secret\r\n"
        "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n"
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nVia: 1.1 cdn\r\nAccept: x\r\n\r\n";
    auto req = parse(head);
    std::string out;
    upstream::build_request_head(out, req, {"192.0.2.7", "http", "127.0.0.1:9000"});
    EXPECT_EQ(out,
              "POST /p?q=1 HTTP/1.1\r\nHost: shop.example\r\nAccept: x\r\n"
              "X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
              "X-Forwarded-Host: shop.example\r\nVia: 1.1 cdn, 1.1 intermission\r\n"
              "Transfer-Encoding: chunked\r\n\r\n");
}

TEST(UpstreamHeaders, FieldsWeSetOurselvesAreNeverPassedOn) {
    auto req = parse(
        "PUT /u HTTP/1.1\r\nHost: a\r\nEXPECT: 100-continue\r\ncontent-length: 2\r\n"
        "x-forwarded-host: evil\r\nX-FORWARDED-PROTO: https\r\nvia: 1.1 x\r\nExpects: "
        "kept\r\n\r\n");
    std::string out;
    upstream::build_request_head(out, req, {"192.0.2.7", "http", ""});
    EXPECT_EQ(out,
              "PUT /u HTTP/1.1\r\nHost: a\r\nExpects: kept\r\nX-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\nX-Forwarded-Host: a\r\nVia: 1.1 x, 1.1 intermission\r\n"
              "Content-Length: 2\r\n\r\n");

    http::Response res;
    ASSERT_TRUE(http::parse_response(
        "HTTP/1.1 200 OK\r\nVIA: 1.1 app\r\nContent-Length: 0\r\nVia-Other: kept\r\n"
        "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
        {}, res));
    std::vector<http::Header> fields;
    std::string storage;
    upstream::response_fields(res, true, "Tue, 02 Jan 2024 00:00:00 GMT", fields, storage);
    std::string seen;
    for (const auto& f : fields) seen.append(f.name).append("=").append(f.value).append(";");
    EXPECT_EQ(seen,
              "Via-Other=kept;Date=Mon, 01 Jan 2024 00:00:00 GMT;via=1.1 app, 1.1 intermission;"
              "content-length=0;");
}

TEST(UpstreamHeaders, Http10WithoutHostGetsTargetAddress) {
    auto req = parse("GET /abs HTTP/1.0\r\nContent-Length: 3\r\n\r\n");
    std::string out;
    upstream::build_request_head(out, req, {"192.0.2.7", "http", "127.0.0.1:9000"});
    EXPECT_EQ(out,
              "GET /abs HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nX-Forwarded-For: 192.0.2.7\r\n"
              "X-Forwarded-Proto: http\r\nX-Forwarded-Host: 127.0.0.1:9000\r\n"
              "Via: 1.0 intermission\r\nContent-Length: 3\r\n\r\n");
}

TEST(UpstreamHeaders, AbsoluteFormAuthorityReplacesHost) {
    auto req = parse("GET http://shop.example:8080/p?q HTTP/1.1\r\nHost: other.test\r\n\r\n");
    EXPECT_EQ(req.host, "shop.example");
    std::string out;
    upstream::build_request_head(out, req, {"192.0.2.7", "http", "127.0.0.1:9000"});
    EXPECT_EQ(out.substr(0, out.find("X-Forwarded-For")),
              "GET /p?q HTTP/1.1\r\nHost: shop.example:8080\r\n");
}

TEST(UpstreamHeaders, UpgradeIsForwarded) {
    auto req = parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    std::string out;
    upstream::build_request_head(out, req, {"1.2.3.4", "http", ""});
    EXPECT_NE(out.find("Connection: upgrade\r\nUpgrade: websocket\r\n"), std::string::npos);
}

TEST(UpstreamHeaders, ResponseDropsHopByHopAndSetsFraming) {
    http::Response res;
    ASSERT_TRUE(http::parse_response(
        "HTTP/1.1 200 Fine\r\nConnection: X-Internal\r\nX-Internal: 1\r\nTransfer-Encoding: chunked\r\n"
        "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\nSet-Cookie: a=1\r\n\r\n",
        {}, res));
    std::string out;
    upstream::ResponseFraming f;
    f.chunked = true;
    upstream::build_response_head(out, res, f, "Tue, 02 Jan 2024 00:00:00 GMT", false);
    EXPECT_EQ(out,
              "HTTP/1.1 200 Fine\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nSet-Cookie: a=1\r\n"
              "Via: 1.1 intermission\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST(UpstreamHeaders, HopByHop) {
    EXPECT_TRUE(upstream::is_hop_by_hop("Keep-Alive", ""));
    EXPECT_TRUE(upstream::is_hop_by_hop("x-foo", "close, X-Foo"));
    EXPECT_FALSE(upstream::is_hop_by_hop("x-foo", "close"));
    EXPECT_FALSE(upstream::is_hop_by_hop("Content-Type", ""));
    for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                             "transfer-encoding", "UPGRADE"})
        EXPECT_TRUE(upstream::is_hop_by_hop(name, "")) << name;
    // Same lengths as hop-by-hop names, other names.
    for (const char* name : {"tx", "Trailes", "upgrades", "Connectio", "keep_alive",
                             "proxy-connectiom", "transfer-encodinG2", "X-Trailer"})
        EXPECT_FALSE(upstream::is_hop_by_hop(name, "")) << name;
    // Connection items: trimmed, any case, only whole items.
    EXPECT_TRUE(upstream::is_hop_by_hop("X-Secret", "keep-alive,\t x-secret "));
    EXPECT_FALSE(upstream::is_hop_by_hop("X-Secret-Longer", "x-secret"));
    EXPECT_FALSE(upstream::is_hop_by_hop("X-Sec", "x-secret"));
}
