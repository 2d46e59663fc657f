#include <gtest/gtest.h>

#include <deque>
#include <string>

using namespace std::string_literals;

#include "http/message.hpp"

using namespace im::http;

namespace {

// Requests are views into their head: keep every head alive for the test run.
int parse(const std::string& text, Request& r, Limits limits = {}) {
    static std::deque<std::string> heads;
    const std::string& head = heads.emplace_back(text);
    long end = find_head_end(head);
    if (end <= 0) return end == 0 ? -1 : 400;
    return parse_request(std::string_view(head).substr(0, static_cast<std::size_t>(end)), limits, r);
}

int status_of(const std::string& head) {
    Request r;
    return parse(head, r);
}

}  // namespace

TEST(HttpParser, SimpleGet) {
    Request r;
    ASSERT_EQ(parse("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: Example.com:8080\r\nAccept: */*\r\n\r\n", r), 0);
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/a/b?x=1&y=2");
    EXPECT_EQ(r.path, "/a/b");
    EXPECT_EQ(r.query, "x=1&y=2");
    EXPECT_EQ(r.host, "Example.com");
    EXPECT_EQ(r.minor_version, 1);
    EXPECT_TRUE(r.keep_alive);
    EXPECT_FALSE(r.has_body());
    EXPECT_EQ(find_header(r.headers, "accept"), "*/*");
}

TEST(HttpParser, FindHeadEnd) {
    EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n"), 0);
    EXPECT_EQ(find_head_end("GET / HTTP/1.1\r\nHost: a\r\n\r"), 0);
    std::string full = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
    EXPECT_EQ(find_head_end(full), static_cast<long>(full.size() - 4));
    EXPECT_EQ(find_head_end("GET / HTTP/1.1\nHost: a\n\n"), -1);  // bare LF
    EXPECT_GT(find_head_end("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);  // leading empty lines
}

TEST(HttpParser, KeepAliveRules) {
    Request r;
    ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", r), 0);
    EXPECT_FALSE(r.keep_alive);
    ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", r), 0);
    EXPECT_FALSE(r.keep_alive);
    ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", r), 0);
    EXPECT_TRUE(r.keep_alive);
}

TEST(HttpParser, BodyFraming) {
    Request r;
    ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", r), 0);
    EXPECT_EQ(r.content_length.value(), 12u);
    ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", r), 0);
    EXPECT_TRUE(r.chunked);
    // identical repeated lengths are one length (RFC 9112 §6.3)
    ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", r), 0);
    ASSERT_EQ(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", r), 0);
    EXPECT_EQ(r.content_length.value(), 5u);
}

TEST(HttpParser, SmugglingVectorsAreRefused) {
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    // obs-fold hides a second value
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n chunked\r\n\r\n"), 400);
}

TEST(HttpParser, MalformedHeadsAreRefused) {
    EXPECT_EQ(status_of("GET /\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTX/1.1\r\nHost: a\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);                     // no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);  // two Hosts
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n"), 400);  // space before colon
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n: empty\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\0x\r\n\r\n"s), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX\0A: 1\r\n\r\n"s), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rx\r\n\r\n"), 400);  // bare CR
}

// Field values are checked eight bytes at a time: a control character is
// found wherever it stands, in a whole word or in the tail after the words.
TEST(HttpParser, ControlCharactersAnywhereInAValueAreRefused) {
    const std::string value = "abcdefghijklmnopqrstu";  // 21 bytes: two words and a tail of 5
    for (char bad : {'\x00', '\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f'}) {
        for (std::size_t at = 0; at < value.size(); ++at) {
            std::string v = value;
            v[at] = bad;
            SCOPED_TRACE(testing::Message() << "byte " << int(bad) << " at " << at);
            EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nX-A: " + v + "\r\n\r\n"), 400);
        }
    }
    for (char fine : {'\t', ' ', '~', '\x80', '\xff'}) {
        for (std::size_t at = 1; at + 1 < value.size(); ++at) {  // OWS at the ends is trimmed
            std::string v = value;
            v[at] = fine;
            SCOPED_TRACE(testing::Message()
                         << "byte " << int(static_cast<unsigned char>(fine)) << " at " << at);
            Request r;
            ASSERT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: " + v + "\r\n\r\n", r), 0);
            EXPECT_EQ(find_header(r.headers, "x-a"), v);
        }
    }
}

TEST(HttpParser, IequalsIgnoresTheCaseOfLettersOnly) {
    EXPECT_TRUE(iequals("Content-Length", "content-length"));
    EXPECT_TRUE(iequals("TRANSFER-ENCODING", "transfer-encoding"));
    EXPECT_TRUE(iequals("", ""));
    EXPECT_FALSE(iequals("content-length", "content-lengt"));
    EXPECT_FALSE(iequals("te", "tE "));
    // Pairs that differ only in the 0x20 bit but are not letters.
    EXPECT_FALSE(iequals("@", "`"));
    EXPECT_FALSE(iequals("[", "{"));
    EXPECT_FALSE(iequals("^", "~"));
    EXPECT_FALSE(iequals("\x10", "0"));
    EXPECT_FALSE(iequals("a\x0d", "a-"));
    EXPECT_FALSE(iequals("\xc1", "\xe1"));
}

TEST(HttpParser, Limits) {
    Limits small{64, 3};
    Request r;
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", r, small), 431);
    EXPECT_EQ(parse("GET /" + std::string(100, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", r, small), 431);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n", r, small), 0);
}

TEST(HttpParser, AbsoluteFormAndAsterisk) {
    Request r;
    ASSERT_EQ(parse("GET http://example.com/p/q?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", r), 0);
    EXPECT_EQ(r.path, "/p/q");
    EXPECT_EQ(r.query, "z=1");
    ASSERT_EQ(parse("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", r), 0);
    EXPECT_EQ(status_of("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

TEST(HttpParser, UpgradeAndExpect) {
    Request r;
    ASSERT_EQ(parse("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", r), 0);
    EXPECT_TRUE(r.upgrade);
    ASSERT_EQ(parse("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", r), 0);
    EXPECT_TRUE(r.expect_continue);
    EXPECT_TRUE(r.idempotent());
    ASSERT_EQ(parse("POST /x HTTP/1.1\r\nHost: a\r\n\r\n", r), 0);
    EXPECT_FALSE(r.idempotent());
}

TEST(HttpResponseParser, StatusAndFraming) {
    Response r;
    std::string head = "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n";
    ASSERT_TRUE(parse_response(head, {}, r));
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.reason, "Not Found");
    EXPECT_EQ(response_framing(r, "GET"), BodyFraming::length);
    EXPECT_EQ(response_framing(r, "HEAD"), BodyFraming::none);
    ASSERT_TRUE(parse_response("HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n", {}, r));
    EXPECT_EQ(response_framing(r, "GET"), BodyFraming::chunked);
    ASSERT_TRUE(parse_response("HTTP/1.0 200 OK\r\n\r\n", {}, r));
    EXPECT_EQ(response_framing(r, "GET"), BodyFraming::until_close);
    EXPECT_FALSE(r.keep_alive);
    ASSERT_TRUE(parse_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", {}, r));
    EXPECT_EQ(response_framing(r, "GET"), BodyFraming::none);
}

TEST(HttpResponseParser, RefusesGarbageAndAmbiguity) {
    Response r;
    EXPECT_FALSE(parse_response("this is not http\r\n\r\n", {}, r));
    EXPECT_FALSE(parse_response("HTTP/1.1 20 OK\r\n\r\n", {}, r));
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", {}, r));
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", {}, r));
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", {}, r));
}

TEST(HttpParser, HostSyntax) {
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a:b:c\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a:\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: :80\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n"), 0);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"), 0);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 0);
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
}
