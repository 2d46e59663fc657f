#include <gtest/gtest.h>

#include <string>

#include "http/chunked.hpp"

using im::http::ChunkedDecoder;

namespace {

// Feeds `in` in pieces of `step` bytes; returns the decoded body, or "<fail>".
std::string decode(const std::string& in, std::size_t step = 1 << 20, std::size_t* left = nullptr) {
    ChunkedDecoder d;
    std::string out;
    std::size_t pos = 0;
    while (pos < in.size() && !d.done() && !d.failed()) {
        std::string_view piece = std::string_view(in).substr(pos, step);
        while (!piece.empty() && !d.done() && !d.failed()) {
            auto s = d.feed(piece);
            if (s.consumed == 0) break;
            out.append(s.data);
            piece.remove_prefix(s.consumed);
            pos += s.consumed;
        }
    }
    if (left) *left = in.size() - pos;
    if (d.failed()) return "<fail>";
    if (!d.done()) return "<incomplete>";
    return out;
}

}  // namespace

TEST(HttpChunked, DecodesWholeAndByteByByte) {
    std::string body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    EXPECT_EQ(decode(body), "hello, world");
    EXPECT_EQ(decode(body, 1), "hello, world");
    EXPECT_EQ(decode(body, 3), "hello, world");
}

TEST(HttpChunked, TrailersAreSkippedAndLeftoverKept) {
    std::size_t left = 0;
    EXPECT_EQ(decode("3\r\nabc\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nGET /next", 1 << 20, &left), "abc");
    EXPECT_EQ(left, 9u);
}

TEST(HttpChunked, UppercaseHex) { EXPECT_EQ(decode("A\r\n0123456789\r\n0\r\n\r\n"), "0123456789"); }

TEST(HttpChunked, InvalidSizesFail) {
    EXPECT_EQ(decode("g\r\nabc\r\n0\r\n\r\n"), "<fail>");
    EXPECT_EQ(decode("\r\nabc\r\n0\r\n\r\n"), "<fail>");
    EXPECT_EQ(decode("-1\r\nabc\r\n0\r\n\r\n"), "<fail>");
    EXPECT_EQ(decode("0x3\r\nabc\r\n0\r\n\r\n"), "<fail>");
    EXPECT_EQ(decode("ffffffffffffffffff\r\n"), "<fail>");  // would overflow
    EXPECT_EQ(decode("3\nabc\r\n0\r\n\r\n"), "<fail>");        // bare LF
    EXPECT_EQ(decode("3\r\nabcd\r\n0\r\n\r\n"), "<fail>");     // data longer than size
    EXPECT_EQ(decode("3\r\nabc\r\n0\r\nBad\n\r\n"), "<fail>");
}

TEST(HttpChunked, IncompleteIsNotDone) { EXPECT_EQ(decode("5\r\nhel"), "<incomplete>"); }

TEST(HttpChunked, AppendChunkHeader) {
    std::string out;
    im::http::append_chunk_header(out, 0);
    im::http::append_chunk_header(out, 255);
    im::http::append_chunk_header(out, 65536);
    EXPECT_EQ(out, "0\r\nff\r\n10000\r\n");
}
