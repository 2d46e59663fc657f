// HTTP/2 <-> HTTP/1.1 translation of request heads and answers.
#include <gtest/gtest.h>

#include "http/h2_messages.hpp"
#include "http/message.hpp"

using im::http::h2::RequestHead;
using im::http::h2::ResponseTranslator;

namespace {

RequestHead get(std::string_view path) {
    RequestHead h(16 * 1024, 100);
    h.add(":method", "GET");
    h.add(":scheme", "https");
    h.add(":authority", "shop.example:8443");
    h.add(":path", path);
    return h;
}

std::string finish(RequestHead& h, bool has_body) {
    std::string head = "left over from the stream before";
    h.finish(has_body, head);
    return head;
}

std::string field(const ResponseTranslator::Head& h, std::string_view name) {
    for (const auto& f : h.fields)
        if (f.name == name) return std::string(f.value);
    return "<none>";
}

}  // namespace

TEST(H2RequestHead, PseudoFieldsBecomeTheRequestLineAndHost) {
    auto h = get("/a/b?x=1");
    h.add("accept", "text/html");
    std::string head = finish(h, false);
    EXPECT_EQ(head, "GET /a/b?x=1 HTTP/1.1\r\nhost: shop.example:8443\r\naccept: text/html\r\n\r\n");
    im::http::Request r;
    ASSERT_EQ(im::http::parse_request(head, {16 * 1024, 100}, r), 0);
    EXPECT_EQ(r.host, "shop.example");
    EXPECT_EQ(r.path, "/a/b");
    EXPECT_FALSE(r.has_body());
}

TEST(H2RequestHead, CookiesSplitByHttp2AreJoinedIntoOneField) {
    auto h = get("/");
    h.add("cookie", "a=1");
    h.add("cookie", "b=2");
    std::string head = finish(h, false);
    EXPECT_NE(head.find("cookie: a=1; b=2\r\n"), std::string::npos) << head;
}

TEST(H2RequestHead, AHostFieldStandsInForAMissingAuthority) {
    RequestHead h(16 * 1024, 100);
    h.add(":method", "GET");
    h.add(":path", "/");
    h.add("host", "other.example");
    std::string head = finish(h, false);
    EXPECT_EQ(head.rfind("GET / HTTP/1.1\r\nhost: other.example\r\n", 0), 0u) << head;
    EXPECT_EQ(head.find("host:", 20), std::string::npos) << "one host field only: " << head;
}

TEST(H2RequestHead, ABodyWithoutContentLengthIsFramedChunked) {
    auto h = get("/upload");
    std::string head = finish(h, true);
    EXPECT_TRUE(h.chunked());
    EXPECT_NE(head.find("transfer-encoding: chunked\r\n"), std::string::npos);
    im::http::Request r;
    ASSERT_EQ(im::http::parse_request(head, {16 * 1024, 100}, r), 0);
    EXPECT_TRUE(r.chunked);
}

TEST(H2RequestHead, ABodyWithContentLengthKeepsIt) {
    auto h = get("/upload");
    h.add("content-length", "5");
    std::string head = finish(h, true);
    EXPECT_FALSE(h.chunked());
    EXPECT_EQ(head.find("transfer-encoding"), std::string::npos);
    EXPECT_NE(head.find("content-length: 5\r\n"), std::string::npos);
}

TEST(H2RequestHead, TeIsDropped) {
    auto h = get("/");
    h.add("te", "trailers");
    EXPECT_EQ(finish(h, false).find("te:"), std::string::npos);
}

TEST(H2RequestHead, TooManyBytesOrFieldsMarkItTooLarge) {
    RequestHead small(200, 100);
    small.add(":method", "GET");
    small.add(":path", "/");
    EXPECT_FALSE(small.too_large());
    small.add("x-big", std::string(200, 'a'));
    EXPECT_TRUE(small.too_large());

    RequestHead few(16 * 1024, 3);
    few.add(":method", "GET");
    few.add(":path", "/");
    few.add("a", "1");
    EXPECT_FALSE(few.too_large());
    few.add("b", "2");
    EXPECT_TRUE(few.too_large());
}

TEST(H2Response, ALengthDelimitedAnswerInPieces) {
    ResponseTranslator t("GET");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nConn", heads, body));
    EXPECT_TRUE(heads.empty());
    ASSERT_TRUE(t.feed("ection: close\r\nContent-Length: 10\r\nRetry-After: 120\r\n\r\nhello", heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(heads[0].status, 503);
    EXPECT_TRUE(heads[0].has_body);
    EXPECT_EQ(field(heads[0], "content-type"), "text/html");
    EXPECT_EQ(field(heads[0], "retry-after"), "120");
    EXPECT_EQ(field(heads[0], "connection"), "<none>");
    EXPECT_FALSE(t.complete());
    ASSERT_TRUE(t.feed("world", heads, body));
    EXPECT_EQ(body, "helloworld");
    EXPECT_TRUE(t.complete());
}

TEST(H2Response, AChunkedAnswerLosesItsFraming) {
    ResponseTranslator t("GET");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n"
                       "5\r\nhello\r\n",
                       heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(field(heads[0], "transfer-encoding"), "<none>");
    EXPECT_EQ(field(heads[0], "keep-alive"), "<none>");
    ASSERT_TRUE(t.feed("6\r\n world\r\n0\r\n\r\n", heads, body));
    EXPECT_EQ(body, "hello world");
    EXPECT_TRUE(t.complete());
}

TEST(H2Response, HeadAnswersAndNotModifiedHaveNoBody) {
    ResponseTranslator head("HEAD");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(head.feed("HTTP/1.1 200 OK\r\nContent-Length: 2600\r\n\r\n", heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_FALSE(heads[0].has_body);
    EXPECT_EQ(field(heads[0], "content-length"), "2600");
    EXPECT_TRUE(head.complete());

    ResponseTranslator cached("GET");
    heads.clear();
    ASSERT_TRUE(cached.feed("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_FALSE(heads[0].has_body);
    EXPECT_TRUE(cached.complete());
}

TEST(H2Response, InterimAnswersComeBeforeTheFinalOne) {
    ResponseTranslator t("POST");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", heads,
                       body));
    ASSERT_EQ(heads.size(), 2u);
    EXPECT_EQ(heads[0].status, 100);
    EXPECT_FALSE(heads[0].final);
    EXPECT_EQ(heads[1].status, 201);
    EXPECT_EQ(body, "ok");
    EXPECT_TRUE(t.complete());
}

TEST(H2Response, AnAnswerWithoutLengthEndsWithTheStream) {
    ResponseTranslator t("GET");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nstream of bytes", heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_TRUE(heads[0].has_body);
    EXPECT_TRUE(t.open_ended());
    EXPECT_FALSE(t.complete());
    EXPECT_EQ(body, "stream of bytes");
}

TEST(H2Response, GarbageIsRefused) {
    ResponseTranslator t("GET");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    EXPECT_FALSE(t.feed("NOT HTTP AT ALL\r\n\r\n", heads, body));

    ResponseTranslator chunks("GET");
    EXPECT_FALSE(chunks.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", heads, body));
}

TEST(H2Response, HeadsThatComeInPiecesKeepTheirFields) {
    ResponseTranslator t("POST");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 100 Cont", heads, body));
    EXPECT_TRUE(heads.empty());
    // The interim head completes from the pending bytes, the final one from these.
    ASSERT_TRUE(t.feed("inue\r\nX-Early: 1\r\n\r\nHTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok", heads,
                       body));
    ASSERT_EQ(heads.size(), 2u);
    EXPECT_EQ(heads[0].status, 100);
    EXPECT_EQ(field(heads[0], "x-early"), "1");
    EXPECT_EQ(heads[1].status, 200);
    EXPECT_EQ(field(heads[1], "x-final"), "yes");
    EXPECT_EQ(field(heads[1], "content-length"), "2");
    EXPECT_EQ(body, "ok");
}

TEST(H2RequestHead, ResetForgetsTheLastStream) {
    RequestHead h = get("/first");
    h.add("cookie", "a=1");
    h.add("content-length", "3");
    h.reset(16 * 1024, 100);
    h.add(":method", "GET");
    h.add(":authority", "b.example");
    h.add(":path", "/second");
    EXPECT_EQ(finish(h, true), "GET /second HTTP/1.1\r\nhost: b.example\r\ntransfer-encoding: chunked\r\n\r\n");
    EXPECT_TRUE(h.chunked());
}

TEST(H2ResponseTranslator, ResetServesTheNextAnswer) {
    ResponseTranslator t("HEAD");
    std::vector<ResponseTranslator::Head> heads;
    std::string body;
    ASSERT_TRUE(t.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", heads, body));
    EXPECT_TRUE(t.complete());  // HEAD: no body follows
    t.reset("GET");
    heads.clear();
    ASSERT_TRUE(t.feed("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", heads, body));
    ASSERT_EQ(heads.size(), 1u);
    EXPECT_EQ(heads[0].status, 404);
    EXPECT_TRUE(heads[0].has_body);
    EXPECT_EQ(body, "no");
    EXPECT_TRUE(t.complete());
}

// The gateway's own header lines as HTTP/2 fields (Stream::reply): names lowercased into
// `names`, values as they are, connection-specific fields and lines without a colon left out.
TEST(H2AddFields, LinesBecomeLowercaseFieldsWithoutConnectionSpecificOnes) {
    std::string_view lines =
        "Content-Type: text/html; charset=utf-8\r\nConnection: close\r\nETag:\"abc\"\r\n"
        "Keep-Alive: timeout=5\r\nno colon here\r\nTransfer-Encoding: chunked\r\nX-MiXeD-Case:  two spaces\r\n"
        "Retry-After: 120";  // the last line may come without its CRLF
    std::vector<ResponseTranslator::Field> fields;
    std::string names;
    names.reserve(lines.size());
    const char* before = names.data();
    im::http::h2::add_fields(lines, fields, names);
    ASSERT_EQ(fields.size(), 4u);
    EXPECT_EQ(fields[0].name, "content-type");
    EXPECT_EQ(fields[0].value, "text/html; charset=utf-8");
    EXPECT_EQ(fields[1].name, "etag");
    EXPECT_EQ(fields[1].value, "\"abc\"");
    EXPECT_EQ(fields[2].name, "x-mixed-case");
    EXPECT_EQ(fields[2].value, "two spaces");
    EXPECT_EQ(fields[3].name, "retry-after");
    EXPECT_EQ(fields[3].value, "120");
    EXPECT_EQ(names.data(), before);  // the views into it stay valid
}

TEST(H2AddFields, ParsedHeadersBecomeLowercaseFieldsToo) {
    std::vector<im::http::Header> headers = {
        {"Server", "app"}, {"Upgrade", "h2c"}, {"SET-COOKIE", "a=1"}, {"set-cookie", "b=2"}, {"Proxy-Connection", "x"}};
    std::vector<ResponseTranslator::Field> fields;
    std::string names;
    names.reserve(64);
    im::http::h2::add_fields(headers, fields, names);
    ASSERT_EQ(fields.size(), 3u);
    EXPECT_EQ(fields[0].name, "server");
    EXPECT_EQ(fields[1].name, "set-cookie");
    EXPECT_EQ(fields[1].value, "a=1");
    EXPECT_EQ(fields[2].name, "set-cookie");
    EXPECT_EQ(fields[2].value, "b=2");
}
