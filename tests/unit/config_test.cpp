#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.hpp"
#include "config/glob.hpp"
#include "config/values.hpp"

namespace im::config {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp folder, removed with everything in it.
class TempDir {
  public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() /
                ("im-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }
    fs::path mkdir(const std::string& rel) const {
        fs::create_directories(path_ / rel);
        return path_ / rel;
    }
    fs::path write(const std::string& rel, const std::string& text) const {
        fs::create_directories((path_ / rel).parent_path());
        std::ofstream(path_ / rel) << text;
        return path_ / rel;
    }

  private:
    fs::path path_;
};

std::string all_errors(const LoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += "  " + e.text() + "\n";
    return out;
}

// Expects exactly one error, at line:column, whose message contains `part`.
void expect_one_error(const LoadResult& r, int line, int column, const std::string& part) {
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_FALSE(r.config.has_value());
    const auto& e = r.errors.front();
    EXPECT_EQ(e.file, "site.yaml");
    EXPECT_EQ(e.line, line) << e.text();
    EXPECT_EQ(e.column, column) << e.text();
    EXPECT_NE(e.message.find(part), std::string::npos) << e.text();
}

LoadResult load(const std::string& yaml, const fs::path& base = fs::temp_directory_path()) {
    return load_config_text(yaml, "site.yaml", base);
}

// The smallest valid config; tests append to or change it. Lines:
// 1 server: / 2 listen / 3 target_groups: / 4 app: / 5 targets / 6 sites: / 7 - name /
// 8 hosts / 9 default_action
const std::string kMinimal = R"(server:
  listen: ["127.0.0.1:8080"]
target_groups:
  app:
    targets: ["127.0.0.1:9000"]
sites:
  - name: www
    hosts: [www.example.com]
    default_action: {forward: app}
)";

// ---- values ----------------------------------------------------------------------------------

TEST(ValuesDuration, AcceptsUnitsCompoundsAndFractions) {
    EXPECT_EQ(parse_duration("250ms").value, Duration(250));
    EXPECT_EQ(parse_duration("2s").value, Duration(2000));
    EXPECT_EQ(parse_duration("1m").value, Duration(60000));
    EXPECT_EQ(parse_duration("1h").value, Duration(3600000));
    EXPECT_EQ(parse_duration("1m30s").value, Duration(90000));
    EXPECT_EQ(parse_duration("1h2m3s4ms").value, Duration(3723004));
    EXPECT_EQ(parse_duration("1.5s").value, Duration(1500));
    EXPECT_EQ(parse_duration("0.25m").value, Duration(15000));
    EXPECT_EQ(parse_duration("0s").value, Duration(0));
    EXPECT_EQ(parse_duration("1.0004s").value, Duration(1000));  // rounded to the millisecond
}

TEST(ValuesDuration, RejectsBadText) {
    for (const char* bad : {"", "10", "0", "-1s", "+1s", "10 sec", "10 s", "10sec", "1d", "s",
                            "1.s", ".5s", "1s30m", "1s1s", "1m 30s", "1e3s", "1S", " 1s"}) {
        auto d = parse_duration(bad);
        EXPECT_FALSE(d) << "'" << bad << "'";
        EXPECT_FALSE(d.expected.empty());
    }
    EXPECT_NE(parse_duration("10 sec").expected.find("ms, s, m, h"), std::string::npos);
    EXPECT_FALSE(parse_duration("100000000h"));  // beyond ten years
}

TEST(ValuesDuration, FormatsBackToParsableText) {
    EXPECT_EQ(format_duration(Duration(0)), "0s");
    EXPECT_EQ(format_duration(Duration(250)), "250ms");
    EXPECT_EQ(format_duration(Duration(90000)), "1m30s");
    EXPECT_EQ(format_duration(Duration(3600000)), "1h");
    for (long long ms : {1LL, 999LL, 1500LL, 3723004LL})
        EXPECT_EQ(parse_duration(format_duration(Duration(ms))).value, Duration(ms));
}

TEST(ValuesSize, AcceptsBytesAndUnits) {
    EXPECT_EQ(parse_size("0").value, 0u);
    EXPECT_EQ(parse_size("16384").value, 16384u);
    EXPECT_EQ(parse_size("512B").value, 512u);
    EXPECT_EQ(parse_size("10KB").value, 10000u);
    EXPECT_EQ(parse_size("16KiB").value, 16384u);
    EXPECT_EQ(parse_size("1MiB").value, 1048576u);
    EXPECT_EQ(parse_size("1MB").value, 1000000u);
    EXPECT_EQ(parse_size("1GiB").value, 1073741824u);
    EXPECT_EQ(parse_size("2TiB").value, 2ULL << 40);
}

TEST(ValuesSize, RejectsBadText) {
    for (const char* bad : {"", "KiB", "-1", "1.5MiB", "16 KiB", "16kib", "16kb", "16XB", "0x10",
                            "18446744073709551616", "17179869184GiB"})
        EXPECT_FALSE(parse_size(bad)) << "'" << bad << "'";
    EXPECT_EQ(parse_size("18446744073709551615").value, 18446744073709551615ULL);
}

TEST(ValuesInteger, ChecksRangeAndSyntax) {
    EXPECT_EQ(parse_integer("0", 0, 10).value, 0);
    EXPECT_EQ(parse_integer("10", 0, 10).value, 10);
    EXPECT_FALSE(parse_integer("11", 0, 10));
    EXPECT_FALSE(parse_integer("-1", 0, 10));
    EXPECT_FALSE(parse_integer("1.0", 0, 10));
    EXPECT_FALSE(parse_integer("", 0, 10));
    EXPECT_FALSE(parse_integer("two", 0, 10));
    EXPECT_EQ(parse_integer("x", 0, 10).expected, "expected an integer from 0 to 10");
}

TEST(ValuesAddress, ParsesHostsAndPorts) {
    EXPECT_EQ(parse_address("127.0.0.1:8080").value, (Address{"127.0.0.1", 8080}));
    EXPECT_EQ(parse_address("app2.internal:9000").value, (Address{"app2.internal", 9000}));
    EXPECT_EQ(parse_address("localhost:1").value, (Address{"localhost", 1}));
    EXPECT_EQ(parse_address("[::1]:8080").value, (Address{"::1", 8080}));
    EXPECT_EQ(parse_address("[::]:65535").value, (Address{"::", 65535}));
    for (std::string text : {"127.0.0.1:8080", "app2.internal:9000", "localhost:1", "[::1]:8080",
                             "[::]:65535", "a-rather-long-host-name.example.internal:443"}) {
        EXPECT_EQ(parse_address(text).value->text(), text);
    }
    EXPECT_EQ(parse_address("[::1]:8080").value->text(), "[::1]:8080");
    EXPECT_EQ(parse_address("app:80").value->text(), "app:80");
}

TEST(ValuesAddress, RejectsBadAddresses) {
    for (const char* bad :
         {"", "127.0.0.1", ":8080", "127.0.0.1:", "127.0.0.1:0", "host:65536", "host:http",
          "host:-1", "::1:8080", "[::1]", "[::1]8080", "[::1:8080", "[nothost]:80", "999.1.1.1:80",
          "1.2.3:80", "bad host:80", "-bad.example:80", "a..b:80"})
        EXPECT_FALSE(parse_address(bad)) << "'" << bad << "'";
    EXPECT_NE(parse_address("::1:8080").expected.find("brackets"), std::string::npos);
}

TEST(ValuesHostPattern, LowercasesAndAllowsOnlyLeadingWildcard) {
    EXPECT_EQ(parse_host_pattern("WWW.Example.COM").value, "www.example.com");
    EXPECT_EQ(parse_host_pattern("*.Example.com").value, "*.example.com");
    EXPECT_EQ(parse_host_pattern("localhost").value, "localhost");
    EXPECT_EQ(parse_host_pattern("[::1]").value, "[::1]");
    for (const char* bad : {"", "*", "*.", "www.*.com", "w*w.example.com", "example.com:8080",
                            "**.example.com", "exa mple.com", ".example.com", "example.com."})
        EXPECT_FALSE(parse_host_pattern(bad)) << "'" << bad << "'";
}

TEST(ValuesStatusRange, ParsesSinglesAndRanges) {
    EXPECT_EQ(parse_status_range("200").value, (StatusRange{200, 200}));
    EXPECT_EQ(parse_status_range("200-399").value, (StatusRange{200, 399}));
    EXPECT_EQ(parse_status_range("100-599").value, (StatusRange{100, 599}));
    for (const char* bad :
         {"", "99", "600", "200-", "-200", "399-200", "2xx", "200-300-400", "200-600"})
        EXPECT_FALSE(parse_status_range(bad)) << "'" << bad << "'";
}

TEST(ValuesName, IpAddressesAndNames) {
    EXPECT_TRUE(is_ip_address("10.1.2.3"));
    EXPECT_TRUE(is_ip_address("::1"));
    EXPECT_FALSE(is_ip_address("[::1]"));
    EXPECT_FALSE(is_ip_address("localhost"));
    EXPECT_TRUE(is_valid_name("www"));
    EXPECT_TRUE(is_valid_name("A-b_c.9"));
    EXPECT_FALSE(is_valid_name(""));
    EXPECT_FALSE(is_valid_name("a b"));
    EXPECT_FALSE(is_valid_name("a/b"));
}

// ---- globs -----------------------------------------------------------------------------------

TEST(GlobMatch, StarCrossesSlashes) {
    EXPECT_TRUE(glob_match("/static/*", "/static/a/b/c.css"));
    EXPECT_TRUE(glob_match("/static/*", "/static/"));
    EXPECT_FALSE(glob_match("/static/*", "/static"));
    EXPECT_TRUE(glob_match("/*.css", "/a/b.css"));
    EXPECT_TRUE(glob_match("/*/x/*.png", "/a/b/x/y/z.png"));
    EXPECT_FALSE(glob_match("/*/x/*.png", "/a/b/x/y/z.jpg"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("**", "/anything"));
}

TEST(GlobMatch, QuestionMarkIsExactlyOneCharacter) {
    EXPECT_TRUE(glob_match("/img/?.png", "/img/a.png"));
    EXPECT_FALSE(glob_match("/img/?.png", "/img/.png"));
    EXPECT_FALSE(glob_match("/img/?.png", "/img/ab.png"));
    EXPECT_TRUE(glob_match("/?", "//"));
    EXPECT_FALSE(glob_match("?", ""));
}

TEST(GlobMatch, LiteralTextMatchesWholeString) {
    EXPECT_TRUE(glob_match("/robots.txt", "/robots.txt"));
    EXPECT_FALSE(glob_match("/robots.txt", "/robots.txt2"));
    EXPECT_FALSE(glob_match("/robots.txt", "/robots.tx"));
    EXPECT_FALSE(glob_match("/Robots.txt", "/robots.txt"));
    EXPECT_TRUE(glob_match("", ""));
    EXPECT_FALSE(glob_match("", "/"));
    EXPECT_FALSE(glob_match("/", ""));
}

TEST(GlobMatch, BacktracksWithoutBlowingUp) {
    EXPECT_TRUE(glob_match("/a*b*c", "/aXbYbZc"));
    EXPECT_FALSE(glob_match("/a*b*c", "/aXbYbZ"));
    EXPECT_TRUE(glob_match("*a*a*a*a*a*a*b", std::string(40, 'a') + "b"));
    EXPECT_FALSE(glob_match("*a*a*a*a*a*a*b", std::string(10000, 'a')));
}

TEST(GlobError, RequiresLeadingSlashAndText) {
    EXPECT_FALSE(glob_error("/static/*"));
    EXPECT_FALSE(glob_error("/"));
    EXPECT_TRUE(glob_error(""));
    EXPECT_TRUE(glob_error("static/*"));
    EXPECT_TRUE(glob_error("*"));
}

// ---- a complete, valid file ------------------------------------------------------------------

const std::string kFull = R"(server:
  workers: 2
  listen: ["127.0.0.1:8080", "[::1]:8443"]
  limits: {max_header_bytes: 32KiB, max_headers: 50, max_body_bytes: 10MB}
  timeouts: {header: 5s, body: 30s, send: 1m30s, keepalive: 1.5s}
  drain_timeout: 20s
  access_log: logs/access.log
  log_level: debug

target_groups:
  app:
    targets: ["127.0.0.1:9000", "app2.internal:9000"]
    balance: least_outstanding
    retries: 3
    health:
      path: /healthz
      expect: [200, "300-302"]
      interval: 5s
      timeout: 500ms
      healthy_threshold: 3
      unhealthy_threshold: 4
      host: app.internal
      passive_cooldown: 30s
    pool: {max_idle: 8, max_connections: 100, idle_timeout: 30s}
    timeouts: {connect: 1s, response_header: 15s, idle: 45s, tunnel: 2h}
  api:
    targets: ["10.0.0.5:7000"]

sites:
  - name: www
    hosts: ["WWW.Example.com", "*.example.com"]
    default: true
    pages:
      root: pages/www
      index: home.html
      cache_control: "no-cache"
      cache_control_paths:
        - {path: "/static/*", value: "public, max-age=86400"}
      compress: false
      watch: false
    rules:
      - match: {path: ["/static/*", "/robots.txt"]}
        store: {}
      - match: {path: "/api/*"}
        forward: api
      - forward: app
    default_action: {forward: app}
  - name: blog
    hosts: [blog.example.org]
    pages: {root: pages/blog}
)";

TEST(ConfigLoad, FullConfigParsesIntoTypedValues) {
    TempDir dir;
    dir.mkdir("pages/www");
    dir.mkdir("pages/blog");
    auto r = load_config_text(kFull, "full.yaml", dir.path());
    ASSERT_TRUE(r.errors.empty()) << all_errors(r);
    ASSERT_TRUE(r.config.has_value());
    const Config& c = *r.config;
    EXPECT_EQ(c.source, fs::path("full.yaml"));
    EXPECT_EQ(c.server.workers, 2u);
    ASSERT_EQ(c.server.listen.size(), 2u);
    EXPECT_EQ(c.server.listen[0], (Address{"127.0.0.1", 8080}));
    EXPECT_EQ(c.server.listen[1], (Address{"::1", 8443}));
    EXPECT_EQ(c.server.limits.max_header_bytes, 32u * 1024);
    EXPECT_EQ(c.server.limits.max_headers, 50u);
    EXPECT_EQ(c.server.limits.max_body_bytes, 10000000u);
    EXPECT_EQ(c.server.timeouts.header, 5s);
    EXPECT_EQ(c.server.timeouts.send, 90s);
    EXPECT_EQ(c.server.timeouts.keepalive, 1500ms);
    EXPECT_EQ(c.server.drain_timeout, 20s);
    EXPECT_EQ(c.server.access_log, (dir.path() / "logs/access.log").string());
    EXPECT_EQ(c.server.log_level, "debug");

    ASSERT_EQ(c.target_groups.size(), 2u);
    const TargetGroup* app = c.find_group("app");
    ASSERT_NE(app, nullptr);
    EXPECT_EQ(app->targets[1], (Address{"app2.internal", 9000}));
    EXPECT_EQ(app->balance, Balance::least_outstanding);
    EXPECT_EQ(app->retries, 3);
    EXPECT_TRUE(app->health.enabled);
    EXPECT_EQ(app->health.path, "/healthz");
    EXPECT_EQ(app->health.expect, (std::vector<StatusRange>{{200, 200}, {300, 302}}));
    EXPECT_EQ(app->health.interval, 5s);
    EXPECT_EQ(app->health.timeout, 500ms);
    EXPECT_EQ(app->health.healthy_threshold, 3);
    EXPECT_EQ(app->health.unhealthy_threshold, 4);
    EXPECT_EQ(app->health.host, "app.internal");
    EXPECT_EQ(app->health.passive_cooldown, 30s);
    EXPECT_EQ(app->pool.max_idle, 8u);
    EXPECT_EQ(app->pool.max_connections, 100u);
    EXPECT_EQ(app->pool.idle_timeout, 30s);
    EXPECT_EQ(app->timeouts.connect, 1s);
    EXPECT_EQ(app->timeouts.response_header, 15s);
    EXPECT_EQ(app->timeouts.idle, 45s);
    EXPECT_EQ(app->timeouts.tunnel, 2h);

    const TargetGroup* api = c.find_group("api");  // all defaults
    ASSERT_NE(api, nullptr);
    EXPECT_EQ(api->balance, Balance::round_robin);
    EXPECT_EQ(api->retries, 1);
    EXPECT_FALSE(api->health.enabled);
    EXPECT_EQ(api->health.expect, (std::vector<StatusRange>{{200, 399}}));
    EXPECT_EQ(api->pool.max_idle, 64u);
    EXPECT_EQ(api->timeouts.connect, 2s);
    EXPECT_EQ(api->timeouts.tunnel, 1h);
}

TEST(ConfigLoad, FullConfigSites) {
    TempDir dir;
    dir.mkdir("pages/www");
    dir.mkdir("pages/blog");
    auto r = load_config_text(kFull, "full.yaml", dir.path());
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    ASSERT_EQ(r.config->sites.size(), 2u);
    const Site& www = r.config->sites[0];
    EXPECT_EQ(www.name, "www");
    EXPECT_EQ(www.hosts, (std::vector<std::string>{"www.example.com", "*.example.com"}));
    EXPECT_TRUE(www.default_site);
    ASSERT_TRUE(www.pages.has_value());
    EXPECT_EQ(www.pages->root, dir.path() / "pages/www");
    EXPECT_EQ(www.pages->index, "home.html");
    EXPECT_EQ(www.pages->cache_control, "no-cache");
    ASSERT_EQ(www.pages->cache_control_paths.size(), 1u);
    EXPECT_EQ(www.pages->cache_control_paths[0].path, "/static/*");
    EXPECT_EQ(www.pages->cache_control_paths[0].value, "public, max-age=86400");
    EXPECT_FALSE(www.pages->compress);
    EXPECT_FALSE(www.pages->watch);
    ASSERT_EQ(www.rules.size(), 3u);
    EXPECT_EQ(www.rules[0].match.paths, (std::vector<std::string>{"/static/*", "/robots.txt"}));
    EXPECT_EQ(www.rules[0].action, (Action::of(Action::Kind::store, "")));
    EXPECT_EQ(www.rules[1].match.paths, (std::vector<std::string>{"/api/*"}));
    EXPECT_EQ(www.rules[1].action, (Action::of(Action::Kind::forward, "api")));
    EXPECT_TRUE(www.rules[2].match.paths.empty());
    EXPECT_EQ(www.default_action, (Action::of(Action::Kind::forward, "app")));

    const Site& blog = r.config->sites[1];
    EXPECT_FALSE(blog.default_site);
    EXPECT_EQ(blog.pages->index, "index.html");
    EXPECT_EQ(blog.pages->cache_control, "public, max-age=300");
    EXPECT_TRUE(blog.pages->compress);
    EXPECT_TRUE(blog.pages->watch);
    // Without a default_action a site with pages serves them.
    EXPECT_EQ(blog.default_action, (Action::of(Action::Kind::store, "")));
}

TEST(ConfigLoad, MinimalConfigGetsDefaults) {
    auto r = load(kMinimal);
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const Server& s = r.config->server;
    EXPECT_EQ(s.workers, 0u);
    EXPECT_EQ(s.limits.max_header_bytes, 16u * 1024);
    EXPECT_EQ(s.limits.max_headers, 100u);
    EXPECT_EQ(s.limits.max_body_bytes, 0u);
    EXPECT_EQ(s.timeouts.header, 10s);
    EXPECT_EQ(s.timeouts.keepalive, 60s);
    EXPECT_EQ(s.drain_timeout, 10s);
    EXPECT_EQ(s.access_log, "stderr");
    EXPECT_EQ(s.log_level, "info");
    EXPECT_TRUE(s.http2.enabled);
    EXPECT_FALSE(s.http2.cleartext);
    EXPECT_EQ(s.http2.max_concurrent_streams, 128u);
    EXPECT_EQ(s.http2.initial_window_size, 256u * 1024);
    EXPECT_EQ(s.http2.max_frame_size, 16u * 1024);
    EXPECT_FALSE(r.config->sites[0].pages.has_value());
    EXPECT_FALSE(r.config->sites[0].default_site);
}

TEST(ConfigLoad, WorkersAutoAndSpecialLogs) {
    auto r = load("server:\n  workers: auto\n  access_log: off\n  listen: [\"0.0.0.0:80\"]\n" +
                  kMinimal.substr(kMinimal.find("target_groups")));
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->server.workers, 0u);
    EXPECT_EQ(r.config->server.access_log, "off");
}

TEST(ConfigLoad, Http2Settings) {
    auto with = [](const std::string& http2) {
        return load("server:\n  listen: [\"0.0.0.0:80\"]\n  http2: " + http2 + "\n" +
                    kMinimal.substr(kMinimal.find("target_groups")));
    };
    auto r = with("{enabled: false, cleartext: true, max_concurrent_streams: 10, initial_window_size: 1MiB, "
                  "max_frame_size: 64KiB, max_header_list_size: 32KiB}");
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const auto& h2 = r.config->server.http2;
    EXPECT_FALSE(h2.enabled);
    EXPECT_TRUE(h2.cleartext);
    EXPECT_EQ(h2.max_concurrent_streams, 10u);
    EXPECT_EQ(h2.initial_window_size, 1024u * 1024);
    EXPECT_EQ(h2.max_frame_size, 64u * 1024);
    EXPECT_EQ(h2.max_header_list_size, 32u * 1024);
    // The protocol's bounds (RFC 9113 §6.5.2) are config errors at the value.
    expect_one_error(with("{max_frame_size: 1000}"), 3, 27, "expected from 16384 to 16777215 bytes");
    expect_one_error(with("{initial_window_size: 2GiB}"), 3, 32, "expected from 1 to 2147483647 bytes");
    expect_one_error(with("{max_concurrent_streams: 0}"), 3, 35, "max_concurrent_streams");
    expect_one_error(with("{h2c: true}"), 3, 11, "unknown key 'h2c'");
}

TEST(ConfigLoad, HealthSectionPresenceEnablesChecks) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    health: {}\n");
    auto r = load(yaml);
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_TRUE(r.config->target_groups[0].health.enabled);
    EXPECT_EQ(r.config->target_groups[0].health.path, "/");
}

TEST(ConfigLoad, FileRelativePathsAndSource) {
    TempDir dir;
    dir.mkdir("conf/pages");
    const std::string yaml =
        "server: {listen: [\"127.0.0.1:8080\"]}\n"
        "sites:\n  - {name: s, default: true, pages: {root: pages}}\n";
    auto file = dir.write("conf/site.yaml", yaml);
    auto r = load_config_file(file);
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->source, file);
    EXPECT_EQ(r.config->sites[0].pages->root, dir.path() / "conf/pages");
    EXPECT_TRUE(r.config->target_groups.empty());
}

// ---- errors ----------------------------------------------------------------------------------

TEST(ConfigErrors, TextFormat) {
    EXPECT_EQ((ConfigError{"a.yaml", 3, 7, "boom"}).text(), "a.yaml:3:7: boom");
    EXPECT_EQ((ConfigError{"a.yaml", 0, 0, "boom"}).text(), "a.yaml: boom");
}

TEST(ConfigErrors, MissingFileNamesFileAndReason) {
    TempDir dir;
    auto r = load_config_file(dir.path() / "nope.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_FALSE(r.config.has_value());
    EXPECT_EQ(r.errors[0].file, (dir.path() / "nope.yaml").string());
    EXPECT_EQ(r.errors[0].line, 0);
    EXPECT_NE(r.errors[0].message.find("No such file or directory"), std::string::npos);
    EXPECT_NE(r.errors[0].text().find("nope.yaml: "), std::string::npos);
}

TEST(ConfigErrors, DirectoryInsteadOfFile) {
    TempDir dir;
    auto r = load_config_file(dir.path());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("Is a directory"), std::string::npos);
}

TEST(ConfigErrors, YamlSyntaxErrorHasPosition) {
    expect_one_error(load("server:\n  listen: [\"127.0.0.1:8080\"\nsites: []\n"), 3, 1,
                     "YAML syntax error");
}

TEST(ConfigErrors, EmptyDocument) {
    auto r = load("# nothing\n");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 0);
    EXPECT_NE(r.errors[0].message.find("empty"), std::string::npos);
}

TEST(ConfigErrors, TopLevelMustBeAMap) {
    expect_one_error(load("- a\n- b\n"), 1, 1, "expected a map for the top level, got a list");
}

TEST(ConfigErrors, UnknownTopLevelKey) {
    expect_one_error(load(kMinimal + "sitez: []\n"), 10, 1,
                     "unknown key 'sitez' at the top level (expected one of: server, "
                     "admin, alerts, tls, target_groups, sites)");
}

TEST(ConfigErrors, UnknownKeyInTargetGroup) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    tiemouts: {connect: 1s}\n");
    expect_one_error(load(yaml), 6, 5,
                     "unknown key 'tiemouts' in target group 'app' (expected one of: targets, "
                     "balance, retries, health, pool, timeouts, tls)");
}

TEST(ConfigErrors, UnknownKeyInNestedSection) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  timeouts: {header: 1s, bdy: 2s}\n");
    expect_one_error(load(yaml), 3, 26,
                     "unknown key 'bdy' in 'server.timeouts' (expected one of: header, body, "
                     "send, keepalive)");
}

TEST(ConfigErrors, BadDurationNamesPathAndExpectation) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  timeouts:\n    header: 10 sec\n");
    expect_one_error(load(yaml), 4, 13,
                     "bad duration '10 sec' for 'server.timeouts.header' (expected a number "
                     "with a unit: ms, s, m, h, e.g. 250ms or 2s)");
}

TEST(ConfigErrors, BareNumberDuration) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  drain_timeout: 30\n");
    expect_one_error(load(yaml), 3, 18, "bad duration '30' for 'server.drain_timeout'");
}

TEST(ConfigErrors, EmptyValueIsReportedAtItsKey) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  drain_timeout:\n");
    expect_one_error(load(yaml), 3, 3,
                     "expected a duration (e.g. 250ms or 2s) for 'server.drain_timeout', got "
                     "nothing");
}

TEST(ConfigErrors, ZeroDurationWhereAboveZeroIsNeeded) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    timeouts: {connect: 0s}\n");
    expect_one_error(load(yaml), 6, 25, "expected a duration above 0");
}

TEST(ConfigErrors, BadSize) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  limits: {max_body_bytes: 10XB}\n");
    expect_one_error(load(yaml), 3, 28, "bad size '10XB' for 'server.limits.max_body_bytes'");
}

TEST(ConfigErrors, MapWhereListExpected) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[\"127.0.0.1:8080\"]"), 18, "{a: 1}");
    expect_one_error(load(yaml), 2, 11, "expected a list for 'server.listen', got a map");
}

TEST(ConfigErrors, StringWhereIntegerExpected) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    retries: many\n");
    expect_one_error(load(yaml), 6, 14,
                     "bad integer 'many' for 'target_groups.app.retries' (expected an integer "
                     "from 0 to 10)");
}

TEST(ConfigErrors, ListWhereStringExpected) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    balance: [round_robin]\n");
    expect_one_error(load(yaml), 6, 14,
                     "expected a balancing method for 'target_groups.app.balance', got a list");
}

TEST(ConfigErrors, WorkersOutOfRange) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  workers: 300\n");
    expect_one_error(load(yaml), 3, 12, "bad value '300' for 'server.workers'");
}

TEST(ConfigErrors, BadAddress) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("127.0.0.1:9000"), 14, "127.0.0.1:0");
    expect_one_error(load(yaml), 5, 15,
                     "bad address '127.0.0.1:0' for 'target_groups.app.targets[0]' (expected "
                     "host:port with a port from 1 to 65535");
}

TEST(ConfigErrors, ListenNeedsAnIpAddress) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("127.0.0.1:8080"), 14, "localhost:8080");
    expect_one_error(load(yaml), 2, 12,
                     "bad listen address 'localhost:8080' for 'server.listen[0]' (expected an IP "
                     "address");
}

TEST(ConfigErrors, DuplicateListenAddress) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[\"127.0.0.1:8080\"]"), 18, "[\"127.0.0.1:8080\", \"127.0.0.1:8080\"]");
    expect_one_error(load(yaml), 2, 30,
                     "duplicate listen address '127.0.0.1:8080' (first defined at line 2)");
}

TEST(ConfigErrors, DuplicateTargetInGroup) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("\"127.0.0.1:9000\"]"), 17,
                 "\"127.0.0.1:9000\",\n              \"127.0.0.1:9000\"]");
    expect_one_error(load(yaml), 6, 15,
                     "duplicate target '127.0.0.1:9000' in target group 'app' (first defined at "
                     "line 5)");
}

TEST(ConfigErrors, MissingListenAndSites) {
    auto r = load("server: {workers: 1}\n");
    ASSERT_EQ(r.errors.size(), 2u) << all_errors(r);
    EXPECT_EQ(r.errors[0].line, 1);
    EXPECT_EQ(r.errors[0].column, 1);
    EXPECT_NE(r.errors[0].message.find("missing required key 'listen' in 'server'"),
              std::string::npos);
    EXPECT_NE(r.errors[1].message.find("missing required key 'sites'"), std::string::npos);
}

TEST(ConfigErrors, MissingServer) {
    expect_one_error(load(kMinimal.substr(kMinimal.find("target_groups"))), 1, 1,
                     "missing required key 'server'");
}

TEST(ConfigErrors, EmptyListen) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[\"127.0.0.1:8080\"]"), 18, "[]");
    expect_one_error(load(yaml), 2, 11, "expected at least one address for 'server.listen'");
}

TEST(ConfigErrors, DuplicateKeyInMap) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("target_groups"), "  listen: [\"127.0.0.1:8081\"]\n");
    expect_one_error(load(yaml), 3, 3,
                     "duplicate key 'listen' in 'server' (first defined at line 2)");
}

TEST(ConfigErrors, DuplicateTargetGroup) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "  app:\n    targets: [\"127.0.0.1:9001\"]\n");
    expect_one_error(load(yaml), 6, 3, "duplicate target group 'app' (first defined at line 4)");
}

TEST(ConfigErrors, BadTargetGroupName) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "  \"a b\":\n    targets: [\"127.0.0.1:9001\"]\n");
    expect_one_error(load(yaml), 6, 3, "bad target group name 'a b'");
}

TEST(ConfigErrors, UnknownTargetGroup) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("{forward: app}"), 14, "{forward: apx}");
    expect_one_error(load(yaml), 9, 31,
                     "unknown target group 'apx' for 'sites[0].default_action.forward' (defined "
                     "groups: app)");
}

TEST(ConfigErrors, DuplicateSiteName) {
    auto yaml = kMinimal +
                "  - name: www\n    hosts: [other.example.com]\n"
                "    default_action: {forward: app}\n";
    expect_one_error(load(yaml), 10, 11, "duplicate site name 'www' (first defined at line 7)");
}

TEST(ConfigErrors, BadSiteName) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("name: www"), 9, "name: w/w");
    expect_one_error(load(yaml), 7, 11, "bad site name 'w/w'");
}

TEST(ConfigErrors, MissingSiteName) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("- name: www\n    hosts"), 21, "- hosts");
    expect_one_error(load(yaml), 7, 5, "missing required key 'name' in 'sites[0]'");
}

TEST(ConfigErrors, HostClaimedByTwoSites) {
    auto yaml = kMinimal +
                "  - name: other\n    hosts: [a.example.com, WWW.example.com]\n"
                "    default_action: {forward: app}\n";
    expect_one_error(load(yaml), 11, 28,
                     "host 'www.example.com' is already claimed by site 'www' (first at line 8)");
}

TEST(ConfigErrors, HostListedTwiceInOneSite) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[www.example.com]"), 17, "[www.example.com, www.example.com]");
    expect_one_error(load(yaml), 8, 30, "host 'www.example.com' is listed twice in site 'www'");
}

TEST(ConfigErrors, WildcardOnlyLeading) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[www.example.com]"), 17, "[\"www.*.com\"]");
    expect_one_error(load(yaml), 8, 13,
                     "bad host 'www.*.com' for 'sites[0].hosts[0]' (expected a wildcard only "
                     "as a leading '*.'");
}

TEST(ConfigErrors, HostsRequiredUnlessDefault) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[www.example.com]"), 17, "[]");
    expect_one_error(load(yaml), 8, 12, "site 'www' has no hosts");
    yaml.replace(yaml.find("hosts: []"), 9, "default: true");
    auto r = load(yaml);
    EXPECT_TRUE(r.config.has_value()) << all_errors(r);
}

TEST(ConfigErrors, SecondDefaultSite) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("    default_action"), "    default: true\n");
    yaml += "  - name: two\n    default: true\n    default_action: {forward: app}\n";
    expect_one_error(load(yaml), 12, 14,
                     "site 'two' is also marked as the default site, but site 'www' at line 9 "
                     "already is");
}

TEST(ConfigErrors, MissingPageRoot) {
    TempDir dir;
    auto yaml = kMinimal + "    pages:\n      root: pages/missing\n";
    auto r = load(yaml, dir.path());
    expect_one_error(r, 11, 13,
                     "page store root 'pages/missing' for 'sites[0].pages.root' does not exist");
    EXPECT_NE(r.errors[0].message.find((dir.path() / "pages/missing").string()), std::string::npos);
}

TEST(ConfigErrors, PageRootIsAFile) {
    TempDir dir;
    dir.write("file.html", "x");
    auto yaml = kMinimal + "    pages: {root: file.html}\n";
    expect_one_error(load(yaml, dir.path()), 10, 19, "is not a directory");
}

TEST(ConfigErrors, PagesNeedARoot) {
    auto yaml = kMinimal + "    pages: {index: a.html}\n";
    expect_one_error(load(yaml), 10, 5, "missing required key 'root' in 'sites[0].pages'");
}

TEST(ConfigErrors, StoreWithoutPages) {
    auto yaml = kMinimal + "    rules:\n      - store: {}\n";
    expect_one_error(load(yaml), 11, 9,
                     "'store' in rule 1 of site 'www' needs a page store, but site 'www' has no "
                     "'pages' section");
}

TEST(ConfigErrors, RuleWithTwoActions) {
    TempDir dir;
    dir.mkdir("p");
    auto yaml = kMinimal +
                "    pages: {root: p}\n    rules:\n      - forward: app\n"
                "        store: {}\n";
    expect_one_error(load(yaml, dir.path()), 13, 9,
                     "rule 1 of site 'www' has both 'forward' and 'store' (expected exactly one "
                     "action)");
}

TEST(ConfigErrors, RuleWithoutAction) {
    auto yaml = kMinimal + "    rules:\n      - match: {path: /x}\n";
    expect_one_error(load(yaml), 11, 9,
                     "rule 1 of site 'www' has no action (expected one of: forward, store, page, fixed, redirect)");
}

TEST(ConfigErrors, DefaultActionWithoutAction) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("{forward: app}"), 14, "{}");
    expect_one_error(load(yaml), 9, 21, "default_action of site 'www' has no action");
}

TEST(ConfigErrors, SiteNeedsDefaultAction) {
    auto yaml = kMinimal.substr(0, kMinimal.find("    default_action"));
    expect_one_error(load(yaml), 7, 5, "site 'www' needs a default_action");
}

TEST(ConfigErrors, GlobMustStartWithSlash) {
    auto yaml = kMinimal +
                "    rules:\n      - match: {path: [/ok, \"static/*\"]}\n"
                "        forward: app\n";
    expect_one_error(load(yaml), 11, 29,
                     "bad path glob 'static/*' for 'sites[0].rules[0].match.path[1]' (a glob "
                     "must start with '/'");
}

TEST(ConfigErrors, EmptyGlob) {
    auto yaml = kMinimal + "    rules:\n      - match: {path: \"\"}\n        forward: app\n";
    expect_one_error(load(yaml), 11, 23, "a glob cannot be empty");
}

TEST(ConfigErrors, HealthTimeoutAboveInterval) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    health: {interval: 1s, timeout: 2s}\n");
    expect_one_error(load(yaml), 6, 37,
                     "health check timeout 2s for 'target_groups.app.health.timeout' must not "
                     "exceed the interval 1s");
}

TEST(ConfigErrors, BadStatusRange) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    health:\n      expect: [200, \"399-200\"]\n");
    expect_one_error(load(yaml), 7, 21, "bad status range '399-200'");
}

TEST(ConfigErrors, HealthPathMustBeAbsolute) {
    auto yaml = kMinimal;
    yaml.insert(yaml.find("sites:"), "    health: {path: healthz}\n");
    expect_one_error(load(yaml), 6, 20, "expected a path starting with '/'");
}

TEST(ConfigErrors, BadBoolean) {
    TempDir dir;
    dir.mkdir("p");
    auto yaml = kMinimal + "    pages: {root: p, watch: maybe}\n";
    expect_one_error(load(yaml, dir.path()), 10, 29,
                     "bad boolean 'maybe' for 'sites[0].pages.watch' (expected true or false)");
}

TEST(ConfigErrors, CollectsAllErrorsInFileOrder) {
    const std::string yaml = R"(server:
  workers: lots
  listen: ["127.0.0.1:99999"]
  timeouts: {header: 1d}
target_groups:
  app:
    targets: ["127.0.0.1:9000"]
    tiemouts: {}
sites:
  - name: www
    hosts: [www.example.com]
    rules:
      - forward: nope
    default_action: {forward: app}
  - name: www
    hosts: [www.example.com]
)";
    auto r = load(yaml);
    EXPECT_FALSE(r.config.has_value());
    std::vector<std::pair<int, int>> where;
    for (const auto& e : r.errors) where.emplace_back(e.line, e.column);
    const std::vector<std::pair<int, int>> expected{{2, 12},  {3, 12}, {4, 22},  {8, 5},
                                                    {13, 18}, {15, 5}, {15, 11}, {16, 13}};
    ASSERT_EQ(where, expected) << all_errors(r);
    EXPECT_NE(r.errors[7].message.find("already claimed by site 'www'"), std::string::npos);
}

TEST(ConfigErrors, HostsOfWrongTypeReportedOnce) {
    auto yaml = kMinimal;
    yaml.replace(yaml.find("[www.example.com]"), 17, "{a: b}");
    expect_one_error(load(yaml), 8, 12,
                     "expected a list (each a host name) for 'sites[0].hosts', got a map");
}

}  // namespace
}  // namespace im::config
