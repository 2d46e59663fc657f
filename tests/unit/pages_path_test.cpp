// Request path normalization, MIME types, HTTP dates, entity tags and coding negotiation.
#include <gtest/gtest.h>

#include <string>

#include "pages/compress.hpp"
#include "pages/conditional.hpp"
#include "pages/mime.hpp"
#include "pages/path.hpp"

namespace im::pages {
namespace {

TEST(PagesPath, NormalizesHarmlessForms) {
    EXPECT_EQ(normalize_path("/"), "/");
    EXPECT_EQ(normalize_path("/css/site.css"), "/css/site.css");
    EXPECT_EQ(normalize_path("//css///site.css"), "/css/site.css");
    EXPECT_EQ(normalize_path("/./css/./site.css"), "/css/site.css");
    EXPECT_EQ(normalize_path("/docs/"), "/docs/");
    EXPECT_EQ(normalize_path("/docs/."), "/docs/");
    EXPECT_EQ(normalize_path("/docs//"), "/docs/");
    EXPECT_EQ(normalize_path("/with%20space.html"), "/with space.html");
    EXPECT_EQ(normalize_path("/%63ss/%2e/x"), "/css/x");
    EXPECT_EQ(normalize_path("/a%25b"), "/a%b");
}

TEST(PagesPath, RejectsTraversalAndSmuggling) {
    const std::string raw_nul("/a\0b", 4);
    for (std::string_view bad : {std::string_view("/../etc/passwd"),
                                 std::string_view("/a/../../etc/passwd"),
                                 std::string_view("/a/.."),
                                 std::string_view("/%2e%2e/x"),
                                 std::string_view("/%2E%2E/x"),
                                 std::string_view("/.%2e/x"),
                                 std::string_view("/%2e./x"),
                                 std::string_view("/a/%2f"),
                                 std::string_view("/a%2Fb"),
                                 std::string_view("/a\\b"),
                                 std::string_view("/a%5cb"),
                                 std::string_view("/a%5Cb"),
                                 std::string_view("/a%00"),
                                 std::string_view(raw_nul),
                                 std::string_view("/a%"),
                                 std::string_view("/a%2"),
                                 std::string_view("/a%zz"),
                                 std::string_view("a/b"),
                                 std::string_view(""),
                                 std::string_view("*"),
                                 std::string_view("http://host/x")}) {
        EXPECT_EQ(normalize_path(bad), std::nullopt) << bad;
        EXPECT_FALSE(is_normalized(bad)) << bad;
    }
}

TEST(PagesPath, IsNormalizedAgreesWithNormalize) {
    for (std::string_view p :
         {"/", "/a", "/a/", "/a/b.css", "/a.b/c..d", "/...", "/.well-known/x"}) {
        EXPECT_TRUE(is_normalized(p)) << p;
        EXPECT_EQ(normalize_path(p), std::string(p)) << p;
    }
    for (std::string_view p : {"//", "/a//b", "/./a", "/a/.", "/a%20b", "/a/../b"}) {
        EXPECT_FALSE(is_normalized(p)) << p;
    }
}

TEST(PagesPath, EncodesForLocation) {
    EXPECT_EQ(encode_path("/docs/a b\r\n"), "/docs/a%20b%0D%0A");
    EXPECT_EQ(encode_path("/100%"), "/100%25");
    EXPECT_EQ(encode_query("?a=1&b=%20 x"), "?a=1&b=%20%20x");
}

TEST(PagesMime, KnownExtensions) {
    EXPECT_EQ(mime_type("/index.html"), "text/html; charset=utf-8");
    EXPECT_EQ(mime_type("/a.htm"), "text/html; charset=utf-8");
    EXPECT_EQ(mime_type("/css/site.css"), "text/css; charset=utf-8");
    EXPECT_EQ(mime_type("/app.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(mime_type("/app.mjs"), "text/javascript; charset=utf-8");
    EXPECT_EQ(mime_type("/logo.svg"), "image/svg+xml; charset=utf-8");
    EXPECT_EQ(mime_type("/robots.txt"), "text/plain; charset=utf-8");
    EXPECT_EQ(mime_type("/a.json"), "application/json; charset=utf-8");
    EXPECT_EQ(mime_type("/a.xml"), "application/xml; charset=utf-8");
    EXPECT_EQ(mime_type("/app.js.map"), "application/json; charset=utf-8");
    EXPECT_EQ(mime_type("/site.webmanifest"), "application/manifest+json");
    EXPECT_EQ(mime_type("/a.png"), "image/png");
    EXPECT_EQ(mime_type("/a.jpg"), "image/jpeg");
    EXPECT_EQ(mime_type("/a.jpeg"), "image/jpeg");
    EXPECT_EQ(mime_type("/a.gif"), "image/gif");
    EXPECT_EQ(mime_type("/a.webp"), "image/webp");
    EXPECT_EQ(mime_type("/favicon.ico"), "image/x-icon");
    EXPECT_EQ(mime_type("/f.woff"), "font/woff");
    EXPECT_EQ(mime_type("/f.woff2"), "font/woff2");
    EXPECT_EQ(mime_type("/f.ttf"), "font/ttf");
    EXPECT_EQ(mime_type("/f.otf"), "font/otf");
    EXPECT_EQ(mime_type("/doc.pdf"), "application/pdf");
    EXPECT_EQ(mime_type("/INDEX.HTML"), "text/html; charset=utf-8");
}

TEST(PagesMime, UnknownIsOctetStream) {
    EXPECT_EQ(mime_type("/LICENSE"), "application/octet-stream");
    EXPECT_EQ(mime_type("/a.unknown"), "application/octet-stream");
    EXPECT_EQ(mime_type("/dir.html/file"), "application/octet-stream");
    EXPECT_EQ(mime_type("/"), "application/octet-stream");
}

TEST(PagesMime, Compressibility) {
    EXPECT_TRUE(is_compressible("/a.html"));
    EXPECT_TRUE(is_compressible("/favicon.ico"));
    EXPECT_TRUE(is_compressible("/site.webmanifest"));
    EXPECT_FALSE(is_compressible("/a.png"));
    EXPECT_FALSE(is_compressible("/f.woff2"));
    EXPECT_FALSE(is_compressible("/LICENSE"));
}

TEST(PagesDate, FormatsImfFixdate) {
    EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(format_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

TEST(PagesDate, ParsesAllThreeForms) {
    EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
    EXPECT_EQ(parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"), 1709251199);
    EXPECT_EQ(parse_http_date(format_http_date(1700000000)), 1700000000);
}

TEST(PagesDate, RejectsGarbage) {
    for (std::string_view bad :
         {"", "yesterday", "Sun, 06 Nov 1994 08:49:37", "Sun, 6 Nov 1994 08:49:37 GMT",
          "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT x", "1700000000"}) {
        EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
    }
}

TEST(PagesEtag, IfNoneMatchWeakComparison) {
    const std::string etag = "\"0123456789abcdef\"";
    EXPECT_TRUE(if_none_match_matches("\"0123456789abcdef\"", etag));
    EXPECT_TRUE(if_none_match_matches("W/\"0123456789abcdef\"", etag));
    EXPECT_TRUE(if_none_match_matches("\"x\", \"0123456789abcdef\"", etag));
    EXPECT_TRUE(if_none_match_matches("\"x\",W/\"0123456789abcdef\" ,\"y\"", etag));
    EXPECT_TRUE(if_none_match_matches("\"a,b\", \"0123456789abcdef\"", etag));
    EXPECT_TRUE(if_none_match_matches("*", etag));
    EXPECT_TRUE(if_none_match_matches(" * ", etag));
    EXPECT_FALSE(if_none_match_matches("\"0123456789abcdee\"", etag));
    EXPECT_FALSE(if_none_match_matches("\"0123456789abcdef-br\"", etag));
    EXPECT_FALSE(if_none_match_matches("0123456789abcdef", etag));
    EXPECT_FALSE(if_none_match_matches("\"0123456789abcdef", etag));
    EXPECT_FALSE(if_none_match_matches("w/\"0123456789abcdef\"", etag));
}

TEST(PagesEncoding, ChoosesByAcceptEncoding) {
    EXPECT_EQ(choose_encoding("", true, true), Encoding::identity);
    EXPECT_EQ(choose_encoding("gzip, deflate, br", true, true), Encoding::brotli);
    EXPECT_EQ(choose_encoding("gzip, deflate, br", true, false), Encoding::gzip);
    EXPECT_EQ(choose_encoding("gzip, deflate, br", false, false), Encoding::identity);
    EXPECT_EQ(choose_encoding("gzip", true, true), Encoding::gzip);
    EXPECT_EQ(choose_encoding("x-gzip", true, true), Encoding::gzip);
    EXPECT_EQ(choose_encoding("br;q=0, gzip", true, true), Encoding::gzip);
    EXPECT_EQ(choose_encoding("br; q=0.0, gzip;q=0.000", true, true), Encoding::identity);
    EXPECT_EQ(choose_encoding("*", true, true), Encoding::brotli);
    EXPECT_EQ(choose_encoding("*;q=0.5, br;q=0", true, true), Encoding::gzip);
    EXPECT_EQ(choose_encoding("*;q=0", true, true), Encoding::identity);
    EXPECT_EQ(choose_encoding("identity", true, true), Encoding::identity);
    EXPECT_EQ(choose_encoding("deflate", true, true), Encoding::identity);
    EXPECT_EQ(choose_encoding("br;q=0.5, gzip;q=0.8", true, true), Encoding::gzip);
    EXPECT_EQ(choose_encoding("BR, GZIP", true, true), Encoding::brotli);
}

}  // namespace
}  // namespace im::pages
