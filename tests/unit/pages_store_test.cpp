// Page store loading and answering: the on-disk layout, lookups, conditional requests,
// content negotiation and everything a hostile request path might try.
#include <brotli/decode.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "pages/conditional.hpp"
#include "pages/store.hpp"

namespace im::pages {
namespace {
namespace fs = std::filesystem;

using Kind = Reply::Kind;

fs::path make_temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "pages-test-XXXXXX").string();
    char* dir = ::mkdtemp(tmpl.data());
    if (dir == nullptr) throw std::runtime_error("mkdtemp failed");
    return dir;
}

void write_file(const fs::path& path, std::string_view content) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

void set_mtime(const fs::path& path, std::time_t t) {
    struct timespec times[2] = {{t, 0}, {t, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

std::string big_html() {
    std::string s = "<!doctype html><html><body>\n";
    for (int i = 0; i < 400; ++i) {
        s += "<p>We are down for maintenance, paragraph " + std::to_string(i) + ".</p>\n";
    }
    return s + "</body></html>\n";
}

std::string gunzip(std::string_view in) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

std::string unbrotli(std::string_view in) {
    std::string out(1 << 20, '\0');
    std::size_t size = out.size();
    EXPECT_EQ(BrotliDecoderDecompress(in.size(), reinterpret_cast<const std::uint8_t*>(in.data()),
                                      &size, reinterpret_cast<std::uint8_t*>(out.data())),
              BROTLI_DECODER_RESULT_SUCCESS);
    out.resize(size);
    return out;
}

Conditional get(std::string_view accept_encoding = {}) {
    return {"GET", accept_encoding, {}, {}};
}

// A header's value from pre-serialized "Name: value\r\n" lines; "" when absent.
std::string header(std::string_view headers, std::string_view name) {
    std::string needle = std::string(name) + ": ";
    std::size_t at = 0;
    while (at < headers.size()) {
        std::size_t end = headers.find("\r\n", at);
        std::string_view line = headers.substr(at, end - at);
        if (line.starts_with(needle)) return std::string(line.substr(needle.size()));
        at = end + 2;
    }
    return "";
}

class PagesStore : public ::testing::Test {
  protected:
    static constexpr std::time_t kMtime = 1700000000;  // Tue, 14 Nov 2023 22:13:20 GMT

    void SetUp() override {
        root_ = make_temp_dir();
        outside_ = make_temp_dir();
        write_file(root_ / "index.html", "<h1>home</h1>");
        write_file(root_ / "docs/index.html", "<h1>docs</h1>");
        write_file(root_ / "docs/guide.html", "<h1>guide</h1>");
        write_file(root_ / "css/site.css", "body { color: black; }");
        write_file(root_ / "errors/503.html", "<h1>back soon</h1>");
        write_file(root_ / "img/logo.png",
                   std::string("\x89PNG\r\n\x1a\n", 8) + std::string(600, 'x'));
        write_file(root_ / "big.html", big_html());
        write_file(root_ / "with space.html", "space");
        write_file(root_ / ".hidden.html", "secret");
        write_file(root_ / ".git/config", "secret");
        write_file(outside_ / "passwd", "root:x:0:0");
        fs::create_symlink(outside_ / "passwd", root_ / "passwd");
        fs::create_symlink("../css/site.css", root_ / "docs/site.css");
        for (const auto& entry : fs::recursive_directory_iterator(root_)) {
            if (entry.is_regular_file() && !entry.is_symlink()) set_mtime(entry.path(), kMtime);
        }
        options_.root = root_;
    }

    void TearDown() override {
        fs::remove_all(root_);
        fs::remove_all(outside_);
    }

    std::shared_ptr<const Store> load() {
        auto result = Store::load(options_);
        for (const auto& e : result.errors) ADD_FAILURE() << e;
        return result.store;
    }

    fs::path root_, outside_;
    StoreOptions options_;
};

TEST_F(PagesStore, LoadsRegularFilesAndSkipsHiddenAndEscapingLinks) {
    auto result = Store::load(options_);
    ASSERT_TRUE(result.errors.empty());
    ASSERT_TRUE(result.store);
    const Store& store = *result.store;
    EXPECT_EQ(store.file_count(), 9u);
    EXPECT_NE(store.find("/errors/503.html"), nullptr);
    EXPECT_NE(store.find("/docs/site.css"), nullptr);  // link inside the root is served
    EXPECT_EQ(store.find("/docs/site.css")->identity, "body { color: black; }");
    EXPECT_EQ(store.find("/passwd"), nullptr);
    EXPECT_EQ(store.find("/.hidden.html"), nullptr);
    EXPECT_EQ(store.find("/.git/config"), nullptr);
    EXPECT_EQ(store.find("/docs/"), nullptr);  // find is exact: no index aliasing
    ASSERT_EQ(result.warnings.size(), 1u);
    EXPECT_NE(result.warnings[0].find("passwd"), std::string::npos);
    EXPECT_NE(result.warnings[0].find("outside the root"), std::string::npos);
    EXPECT_EQ(store.answer("/passwd", get()).kind, Kind::not_found);
    EXPECT_EQ(store.answer("/.hidden.html", get()).kind, Kind::not_found);
}

TEST_F(PagesStore, LoadErrorsNameThePath) {
    options_.root = root_ / "missing";
    auto missing = Store::load(options_);
    EXPECT_FALSE(missing.store);
    ASSERT_EQ(missing.errors.size(), 1u);
    EXPECT_NE(missing.errors[0].find("missing"), std::string::npos);
    EXPECT_NE(missing.errors[0].find("does not exist"), std::string::npos);

    options_.root = root_ / "index.html";
    auto file_root = Store::load(options_);
    EXPECT_FALSE(file_root.store);
    ASSERT_EQ(file_root.errors.size(), 1u);
    EXPECT_NE(file_root.errors[0].find("not a directory"), std::string::npos);

    options_.root = root_;
    options_.max_total_bytes = 1000;
    auto too_big = Store::load(options_);
    EXPECT_FALSE(too_big.store);
    ASSERT_EQ(too_big.errors.size(), 1u);
    EXPECT_NE(too_big.errors[0].find("max_total_bytes"), std::string::npos);
    EXPECT_NE(too_big.errors[0].find("big.html"), std::string::npos);
}

TEST_F(PagesStore, UnreadableFileIsAnError) {
    if (::geteuid() == 0) GTEST_SKIP() << "root reads anything";
    fs::permissions(root_ / "css/site.css", fs::perms::none);
    auto result = Store::load(options_);
    EXPECT_FALSE(result.store);
    ASSERT_FALSE(result.errors.empty());
    EXPECT_NE(result.errors[0].find("site.css"), std::string::npos);
}

TEST_F(PagesStore, CountsIdentityBytes) {
    auto store = load();
    ASSERT_TRUE(store);
    std::uint64_t expected = 0;
    for (auto p :
         {"/index.html", "/docs/index.html", "/docs/guide.html", "/css/site.css", "/docs/site.css",
          "/errors/503.html", "/img/logo.png", "/big.html", "/with space.html"}) {
        ASSERT_NE(store->find(p), nullptr) << p;
        expected += store->find(p)->identity.size();
    }
    EXPECT_EQ(store->total_bytes(), expected);
}

TEST_F(PagesStore, ServesWithMimeTypeAndHeaders) {
    auto store = load();
    ASSERT_TRUE(store);
    Reply css = store->answer("/css/site.css", get());
    ASSERT_EQ(css.kind, Kind::ok);
    EXPECT_EQ(css.status, 200);
    EXPECT_EQ(css.body, "body { color: black; }");
    EXPECT_EQ(header(css.headers, "Content-Type"), "text/css; charset=utf-8");
    EXPECT_EQ(header(css.headers, "Last-Modified"), "Tue, 14 Nov 2023 22:13:20 GMT");
    EXPECT_EQ(header(css.headers, "Cache-Control"), "public, max-age=300");
    EXPECT_EQ(header(css.headers, "ETag"), css.file->etag);
    EXPECT_EQ(header(css.headers, "Vary"), "");  // too small to compress: nothing varies
    EXPECT_EQ(header(css.headers, "Content-Encoding"), "");
    EXPECT_EQ(css.file->mtime, kMtime);
    EXPECT_TRUE(css.headers.ends_with("\r\n"));
    EXPECT_EQ(css.headers.find("Content-Length"), std::string_view::npos);
    EXPECT_EQ(css.headers.find("Date:"), std::string_view::npos);

    Reply png = store->answer("/img/logo.png", get("gzip, br"));
    EXPECT_EQ(header(png.headers, "Content-Type"), "image/png");
    EXPECT_TRUE(png.file->gzip.empty());
    EXPECT_TRUE(png.file->brotli.empty());
    EXPECT_EQ(store->answer("/with%20space.html", get()).body, "space");
}

TEST_F(PagesStore, EtagComesFromContentOnly) {
    auto first = load();
    ASSERT_TRUE(first);
    const std::string etag = first->find("/css/site.css")->etag;
    ASSERT_EQ(etag.size(), 18u);
    EXPECT_EQ(etag.front(), '"');
    EXPECT_EQ(etag.back(), '"');
    EXPECT_EQ(etag.find_first_not_of("0123456789abcdef", 1), 17u);

    set_mtime(root_ / "css/site.css", kMtime + 3600);
    auto touched = load();
    EXPECT_EQ(touched->find("/css/site.css")->etag, etag);
    EXPECT_NE(touched->find("/css/site.css")->last_modified,
              first->find("/css/site.css")->last_modified);
    // Same bytes under another name: same tag.
    EXPECT_EQ(touched->find("/docs/site.css")->etag, etag);

    write_file(root_ / "css/site.css", "body { color: red; }");
    auto changed = load();
    EXPECT_NE(changed->find("/css/site.css")->etag, etag);
}

TEST_F(PagesStore, EveryTraversalFormIsABadRequest) {
    auto store = load();
    ASSERT_TRUE(store);
    const std::string raw_nul("/index.html\0", 12);
    for (std::string_view target :
         {std::string_view("/../etc/passwd"), std::string_view("/docs/../../etc/passwd"),
          std::string_view("/%2e%2e/x"), std::string_view("/%2E%2E/etc/passwd"),
          std::string_view("/.%2e/x"), std::string_view("/%2e./x"), std::string_view("/a/%2f"),
          std::string_view("/docs%2findex.html"), std::string_view("/a\\b"),
          std::string_view("/..\\etc\\passwd"), std::string_view("/a%5cb"),
          std::string_view("/a%00"), std::string_view("/index.html%00.png"),
          std::string_view(raw_nul), std::string_view("/bad%zzescape"),
          std::string_view("/../etc/passwd?x=1"), std::string_view("relative"),
          std::string_view("/docs/..")}) {
        Reply reply = store->answer(target, get());
        EXPECT_EQ(reply.kind, Kind::bad_request) << target;
        EXPECT_EQ(reply.status, 400) << target;
        EXPECT_EQ(reply.file, nullptr) << target;
        EXPECT_TRUE(reply.body.empty()) << target;
    }
}

TEST_F(PagesStore, IndexDocumentsAndDirectoryRedirects) {
    auto store = load();
    ASSERT_TRUE(store);
    EXPECT_EQ(store->answer("/", get()).body, "<h1>home</h1>");
    EXPECT_EQ(store->answer("/?utm=1", get()).body, "<h1>home</h1>");
    EXPECT_EQ(store->answer("/docs/", get()).body, "<h1>docs</h1>");
    EXPECT_EQ(store->answer("//docs//", get()).body, "<h1>docs</h1>");
    EXPECT_EQ(store->answer("/docs/index.html", get()).body, "<h1>docs</h1>");
    EXPECT_EQ(store->answer("/docs/guide.html?x", get()).body, "<h1>guide</h1>");

    Reply redirect = store->answer("/docs", get());
    EXPECT_EQ(redirect.kind, Kind::redirect);
    EXPECT_EQ(redirect.status, 301);
    EXPECT_EQ(redirect.location, "/docs/");
    EXPECT_EQ(store->answer("/docs?page=2&x=%20", get()).location, "/docs/?page=2&x=%20");
    EXPECT_EQ(store->answer("/d%6fcs", get()).location, "/docs/");

    // A directory without an index is not browsable.
    EXPECT_EQ(store->answer("/css/", get()).kind, Kind::not_found);
    EXPECT_EQ(store->answer("/css", get()).kind, Kind::not_found);
    EXPECT_EQ(store->answer("/index.html/", get()).kind, Kind::not_found);
    EXPECT_EQ(store->answer("/nope.html", get()).status, 404);
}

TEST_F(PagesStore, CustomIndexName) {
    options_.index = "guide.html";
    auto store = load();
    ASSERT_TRUE(store);
    EXPECT_EQ(store->answer("/docs/", get()).body, "<h1>guide</h1>");
    EXPECT_EQ(store->answer("/", get()).kind, Kind::not_found);
}

TEST_F(PagesStore, IfNoneMatch) {
    auto store = load();
    ASSERT_TRUE(store);
    const File* file = store->find("/css/site.css");
    const std::string etag = file->etag;
    auto with_inm = [&](std::string_view inm) {
        return store->answer("/css/site.css", {"GET", {}, inm, {}});
    };
    Reply exact = with_inm(etag);
    EXPECT_EQ(exact.kind, Kind::not_modified);
    EXPECT_EQ(exact.status, 304);
    EXPECT_EQ(exact.file, file);
    EXPECT_TRUE(exact.body.empty());
    EXPECT_EQ(exact.headers, file->headers_304_identity);
    EXPECT_EQ(header(exact.headers, "ETag"), etag);
    EXPECT_EQ(header(exact.headers, "Cache-Control"), "public, max-age=300");
    EXPECT_EQ(header(exact.headers, "Last-Modified"), file->last_modified);
    EXPECT_EQ(header(exact.headers, "Content-Type"), "");

    EXPECT_EQ(with_inm("\"nope\", " + etag).kind, Kind::not_modified);
    EXPECT_EQ(with_inm("W/" + etag).kind, Kind::not_modified);
    EXPECT_EQ(with_inm("*").kind, Kind::not_modified);
    EXPECT_EQ(with_inm("\"nope\"").kind, Kind::ok);
    // If-None-Match decides alone, even against a matching If-Modified-Since.
    Reply both =
        store->answer("/css/site.css", {"GET", {}, "\"nope\"", "Tue, 14 Nov 2023 22:13:20 GMT"});
    EXPECT_EQ(both.kind, Kind::ok);
}

TEST_F(PagesStore, IfModifiedSince) {
    auto store = load();
    ASSERT_TRUE(store);
    auto with_ims = [&](std::string_view ims) {
        return store->answer("/css/site.css", {"GET", {}, {}, ims}).kind;
    };
    EXPECT_EQ(with_ims("Tue, 14 Nov 2023 22:13:20 GMT"), Kind::not_modified);  // same second
    EXPECT_EQ(with_ims("Wed, 15 Nov 2023 00:00:00 GMT"), Kind::not_modified);  // newer
    EXPECT_EQ(with_ims("Tue, 14 Nov 2023 22:13:19 GMT"), Kind::ok);            // older
    EXPECT_EQ(with_ims("Tuesday, 14-Nov-23 22:13:20 GMT"), Kind::not_modified);
    EXPECT_EQ(with_ims("Tue Nov 14 22:13:20 2023"), Kind::not_modified);
    EXPECT_EQ(with_ims("garbage"), Kind::ok);
    EXPECT_EQ(with_ims("-1"), Kind::ok);
}

TEST_F(PagesStore, AcceptEncodingPicksAVariantThatDecodesToTheOriginal) {
    auto store = load();
    ASSERT_TRUE(store);
    const std::string original = big_html();
    const File* file = store->find("/big.html");
    ASSERT_NE(file, nullptr);
    ASSERT_FALSE(file->gzip.empty());
    ASSERT_FALSE(file->brotli.empty());
    EXPECT_LT(file->gzip.size(), original.size());
    EXPECT_LT(file->brotli.size(), original.size());

    Reply br = store->answer("/big.html", get("gzip, deflate, br"));
    EXPECT_EQ(unbrotli(br.body), original);
    EXPECT_EQ(header(br.headers, "Content-Encoding"), "br");
    EXPECT_EQ(header(br.headers, "Vary"), "Accept-Encoding");
    EXPECT_EQ(header(br.headers, "ETag"), file->etag_brotli);
    EXPECT_TRUE(file->etag_brotli.ends_with("-br\""));

    Reply gz = store->answer("/big.html", get("br;q=0, gzip"));
    EXPECT_EQ(gunzip(gz.body), original);
    EXPECT_EQ(header(gz.headers, "Content-Encoding"), "gzip");
    EXPECT_EQ(header(gz.headers, "Vary"), "Accept-Encoding");
    EXPECT_NE(header(gz.headers, "ETag"), file->etag);

    EXPECT_EQ(store->answer("/big.html", get("gzip")).body, file->gzip);
    EXPECT_EQ(store->answer("/big.html", get("*")).body, file->brotli);

    for (std::string_view ae : {"", "identity", "deflate", "*;q=0"}) {
        Reply plain = store->answer("/big.html", get(ae));
        EXPECT_EQ(plain.body, original) << ae;
        EXPECT_EQ(header(plain.headers, "Content-Encoding"), "") << ae;
        EXPECT_EQ(header(plain.headers, "Vary"), "Accept-Encoding") << ae;
        EXPECT_EQ(header(plain.headers, "ETag"), file->etag) << ae;
    }
}

TEST_F(PagesStore, NotModifiedUsesTheChosenVariant) {
    auto store = load();
    ASSERT_TRUE(store);
    const File* file = store->find("/big.html");
    Reply br = store->answer("/big.html", {"GET", "br", file->etag_brotli, {}});
    EXPECT_EQ(br.kind, Kind::not_modified);
    EXPECT_EQ(br.headers, file->headers_304_brotli);
    EXPECT_EQ(header(br.headers, "Vary"), "Accept-Encoding");
    EXPECT_EQ(header(br.headers, "Content-Encoding"), "");
    // The identity tag does not validate the br representation.
    EXPECT_EQ(store->answer("/big.html", {"GET", "br", file->etag, {}}).kind, Kind::ok);
    EXPECT_EQ(store->answer("/big.html", {"GET", "gzip", file->etag_gzip, {}}).headers,
              file->headers_304_gzip);
}

TEST_F(PagesStore, CompressionCanBeTurnedOff) {
    options_.compress = false;
    auto store = load();
    ASSERT_TRUE(store);
    Reply reply = store->answer("/big.html", get("br, gzip"));
    EXPECT_EQ(reply.body, big_html());
    EXPECT_EQ(header(reply.headers, "Vary"), "");
}

TEST_F(PagesStore, HeadIsAnsweredLikeGet) {
    auto store = load();
    ASSERT_TRUE(store);
    Reply head = store->answer("/big.html", {"HEAD", "gzip", {}, {}});
    Reply get_reply = store->answer("/big.html", {"GET", "gzip", {}, {}});
    EXPECT_EQ(head.kind, Kind::ok);
    EXPECT_EQ(head.body.size(), get_reply.body.size());
    EXPECT_EQ(head.headers, get_reply.headers);
}

TEST_F(PagesStore, OtherMethodsAreNotAllowed) {
    auto store = load();
    ASSERT_TRUE(store);
    for (std::string_view method : {"POST", "PUT", "DELETE", "OPTIONS", "get", ""}) {
        Reply reply = store->answer("/index.html", {method, {}, {}, {}});
        EXPECT_EQ(reply.kind, Kind::method_not_allowed) << method;
        EXPECT_EQ(reply.status, 405) << method;
    }
}

TEST_F(PagesStore, CacheControlPerPath) {
    options_.cache_control_paths = {{"/css/*", "public, max-age=31536000, immutable"},
                                    {"/errors/*", "no-store"},
                                    {"*.css", "never-used: first match wins"}};
    auto store = load();
    ASSERT_TRUE(store);
    auto cache_control = [&](std::string_view target) {
        return header(store->answer(target, get()).headers, "Cache-Control");
    };
    EXPECT_EQ(cache_control("/css/site.css"), "public, max-age=31536000, immutable");
    EXPECT_EQ(cache_control("/docs/site.css"), "never-used: first match wins");
    EXPECT_EQ(cache_control("/errors/503.html"), "no-store");
    EXPECT_EQ(cache_control("/index.html"), "public, max-age=300");
    EXPECT_EQ(header(store->find("/errors/503.html")->headers_304_identity, "Cache-Control"),
              "no-store");
}

}  // namespace
}  // namespace im::pages
