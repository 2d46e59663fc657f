// Config loader: rule conditions, weighted forwards, maintenance (windows, bypass), custom error
// responses and outage pages; parse_cidr, parse_timestamp and Cidr::contains.
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "config/config.hpp"
#include "config/values.hpp"

namespace im::config {
namespace {

namespace fs = std::filesystem;

class TempDir {
  public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = fs::temp_directory_path() / ("im-config-rules-test-" + std::to_string(::getpid()) +
                                             "-" + std::to_string(counter++));
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
    fs::path write(const std::string& rel, const std::string& text) const {
        fs::create_directories((path_ / rel).parent_path());
        std::ofstream(path_ / rel, std::ios::binary) << text;
        return path_ / rel;
    }
    // A page store "p" with the pages the tests refer to.
    void pages() const {
        write("p/maintenance.html", "<h1>down</h1>");
        write("p/errors/5xx.html", "<h1>oops</h1>");
        write("p/errors/404.html", "<h1>not here</h1>");
        write("p/outage.html", "<h1>outage</h1>");
    }

  private:
    fs::path path_;
};

std::string all_errors(const LoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += "  " + e.text() + "\n";
    return out;
}

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

// Lines: 1 server / 2 listen / 3 target_groups / 4 app / 5 targets / 6 canary / 7 targets /
// 8 sites / 9 - name / 10 hosts / 11 default_action. Tests append from line 12.
const std::string kBase = R"(server:
  listen: ["127.0.0.1:8080"]
target_groups:
  app:
    targets: ["127.0.0.1:9000"]
  canary:
    targets: ["127.0.0.1:9001"]
sites:
  - name: www
    hosts: [www.example.com]
    default_action: {forward: app}
)";

// kBase with a page store at line 12; tests append from line 13.
const std::string kWithPages = kBase + "    pages: {root: p}\n";

std::array<std::uint8_t, 16> ip(const char* text) {
    auto bytes = parse_ip_bytes(text);
    EXPECT_TRUE(bytes.has_value()) << text;
    return bytes.value_or(std::array<std::uint8_t, 16>{});
}

// ---- parse_cidr ------------------------------------------------------------------------------

TEST(ValuesCidr, Ipv4NetworksAreStoredMapped) {
    auto c = parse_cidr("10.0.0.0/8");
    ASSERT_TRUE(c) << c.expected;
    const std::array<std::uint8_t, 16> mapped{0, 0, 0,    0,    0,  0, 0, 0,
                                              0, 0, 0xff, 0xff, 10, 0, 0, 0};
    EXPECT_EQ(c.value->bytes, mapped);
    EXPECT_EQ(c.value->prefix, 104);
    EXPECT_EQ(c.value->text, "10.0.0.0/8");
    EXPECT_EQ(parse_cidr("0.0.0.0/0").value->prefix, 96);
    EXPECT_EQ(parse_cidr("10.1.2.3/32").value->prefix, 128);
}

TEST(ValuesCidr, SingleAddressesAreFullLength) {
    auto v4 = parse_cidr("192.168.1.5");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4.value->prefix, 128);
    EXPECT_EQ(v4.value->bytes, ip("192.168.1.5"));
    EXPECT_EQ(v4.value->text, "192.168.1.5");
    auto v6 = parse_cidr("2001:db8::1");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6.value->prefix, 128);
    EXPECT_EQ(v6.value->bytes[0], 0x20);
    EXPECT_EQ(v6.value->bytes[15], 1);
}

TEST(ValuesCidr, Ipv6Networks) {
    auto c = parse_cidr("2001:db8::/32");
    ASSERT_TRUE(c);
    EXPECT_EQ(c.value->prefix, 32);
    EXPECT_EQ(c.value->bytes[1], 0x01);
    EXPECT_EQ(c.value->bytes[3], 0xb8);
    EXPECT_EQ(parse_cidr("::/0").value->prefix, 0);
    EXPECT_EQ(parse_cidr("::1/128").value->prefix, 128);
    // An IPv4-mapped IPv6 network counts its prefix over 128 bits.
    EXPECT_EQ(parse_cidr("::ffff:10.0.0.0/104").value, parse_cidr("::ffff:10.0.0.0/104").value);
    EXPECT_EQ(parse_cidr("::ffff:10.0.0.0/104").value->bytes,
              parse_cidr("10.0.0.0/8").value->bytes);
}

TEST(ValuesCidr, HostBitsAreKeptAsWritten) {
    auto c = parse_cidr("10.1.2.3/8");
    ASSERT_TRUE(c);
    EXPECT_EQ(c.value->bytes, ip("10.1.2.3"));
    EXPECT_EQ(c.value->prefix, 104);
    EXPECT_TRUE(c.value->contains(ip("10.200.0.1")));
}

TEST(ValuesCidr, RejectsBadText) {
    for (const char* bad : {"",
                            "/8",
                            "10.0.0.0/",
                            "10.0.0.0/33",
                            "10.0.0.0/-1",
                            "10.0.0.0/+8",
                            "10.0.0.0/8/9",
                            "10.0.0.0/8a",
                            "10.0.0.0/ 8",
                            "10.0.0.0/0008",
                            "10.0.0/8",
                            "10.0.0.256",
                            "10.0.0.0.0",
                            " 10.0.0.0/8",
                            "10.0.0.0/8 ",
                            "host/8",
                            "localhost",
                            "2001:db8::/129",
                            "2001:db8:::/32",
                            "[::1]/128",
                            "[::1]",
                            "fe80::1%eth0",
                            "10.0.0.0/128"})
        EXPECT_FALSE(parse_cidr(bad)) << "'" << bad << "'";
    EXPECT_EQ(parse_cidr("10.0.0.0/33").expected,
              "expected a prefix length from 0 to 32 after '/' for an IPv4 network");
    EXPECT_EQ(parse_cidr("2001:db8::/129").expected,
              "expected a prefix length from 0 to 128 after '/' for an IPv6 network");
    EXPECT_NE(parse_cidr("nope").expected.find("e.g. 10.0.0.0/8"), std::string::npos);
    EXPECT_NE(parse_cidr("[::1]/128").expected.find("without brackets"), std::string::npos);
}

// ---- Cidr::contains --------------------------------------------------------------------------

TEST(ValuesCidrContains, Ipv4) {
    auto net = *parse_cidr("10.0.0.0/8").value;
    EXPECT_TRUE(net.contains(ip("10.0.0.0")));
    EXPECT_TRUE(net.contains(ip("10.255.255.255")));
    EXPECT_FALSE(net.contains(ip("11.0.0.0")));
    EXPECT_FALSE(net.contains(ip("9.255.255.255")));
    auto odd = *parse_cidr("192.168.16.0/20").value;  // not on a byte boundary
    EXPECT_TRUE(odd.contains(ip("192.168.31.255")));
    EXPECT_FALSE(odd.contains(ip("192.168.32.0")));
    EXPECT_FALSE(odd.contains(ip("192.168.15.255")));
    auto last = *parse_cidr("10.0.0.8/29").value;
    EXPECT_TRUE(last.contains(ip("10.0.0.15")));
    EXPECT_FALSE(last.contains(ip("10.0.0.16")));
}

TEST(ValuesCidrContains, SingleAddress) {
    auto one = *parse_cidr("192.168.1.5/32").value;
    EXPECT_TRUE(one.contains(ip("192.168.1.5")));
    EXPECT_FALSE(one.contains(ip("192.168.1.4")));
    EXPECT_FALSE(one.contains(ip("192.168.1.6")));
    auto v6 = *parse_cidr("2001:db8::1").value;
    EXPECT_TRUE(v6.contains(ip("2001:db8::1")));
    EXPECT_FALSE(v6.contains(ip("2001:db8::2")));
}

TEST(ValuesCidrContains, ZeroPrefix) {
    auto all_v4 = *parse_cidr("0.0.0.0/0").value;
    EXPECT_TRUE(all_v4.contains(ip("1.2.3.4")));
    EXPECT_TRUE(all_v4.contains(ip("255.255.255.255")));
    EXPECT_FALSE(all_v4.contains(ip("2001:db8::1")));  // /0 of IPv4 is every IPv4 address only
    auto all = *parse_cidr("::/0").value;
    EXPECT_TRUE(all.contains(ip("2001:db8::1")));
    EXPECT_TRUE(all.contains(ip("1.2.3.4")));
}

TEST(ValuesCidrContains, Ipv6) {
    auto net = *parse_cidr("2001:db8::/32").value;
    EXPECT_TRUE(net.contains(ip("2001:db8::1")));
    EXPECT_TRUE(net.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    EXPECT_FALSE(net.contains(ip("2001:db9::1")));
    EXPECT_FALSE(net.contains(ip("10.0.0.1")));
    auto odd = *parse_cidr("fe80::/10").value;
    EXPECT_TRUE(odd.contains(ip("febf::1")));
    EXPECT_FALSE(odd.contains(ip("fec0::1")));
}

TEST(ValuesCidrContains, MappedAddressesMatchIpv4Networks) {
    auto net = *parse_cidr("10.0.0.0/8").value;
    EXPECT_TRUE(net.contains(ip("::ffff:10.1.2.3")));  // a v4 client on a dual-stack socket
    EXPECT_FALSE(net.contains(ip("::ffff:11.1.2.3")));
    EXPECT_FALSE(net.contains(ip("::10.1.2.3")));  // IPv4-compatible is not IPv4-mapped
    auto mapped = *parse_cidr("::ffff:0.0.0.0/96").value;
    EXPECT_TRUE(mapped.contains(ip("8.8.8.8")));
    EXPECT_FALSE(mapped.contains(ip("2001:db8::1")));
}

TEST(ValuesIpBytes, ParsesBothFamilies) {
    EXPECT_EQ(parse_ip_bytes("1.2.3.4").value()[12], 1);
    EXPECT_EQ(parse_ip_bytes("1.2.3.4").value()[10], 0xff);
    EXPECT_EQ(parse_ip_bytes("::1").value()[15], 1);
    EXPECT_FALSE(parse_ip_bytes(""));
    EXPECT_FALSE(parse_ip_bytes("1.2.3"));
    EXPECT_FALSE(parse_ip_bytes("[::1]"));
    EXPECT_FALSE(parse_ip_bytes("example.com"));
}

// ---- parse_timestamp -------------------------------------------------------------------------

TEST(ValuesTimestamp, ParsesUtcAndOffsets) {
    EXPECT_EQ(parse_timestamp("1970-01-01T00:00:00Z").value, 0);
    EXPECT_EQ(parse_timestamp("2026-11-24T03:00:00Z").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-24t03:00:00z").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-24T05:00:00+02:00").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-23T21:30:00-05:30").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-24T03:00:00+00:00").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-24T03:00:00-00:00").value, 1795489200);
    EXPECT_EQ(parse_timestamp("2026-11-24T03:00:00.999Z").value, 1795489200);  // fraction dropped
    EXPECT_EQ(parse_timestamp("2024-02-29T12:00:00Z").value, 1709208000);      // leap day
    EXPECT_EQ(parse_timestamp("2000-02-29T00:00:00Z").value, 951782400);       // 400-year leap
    EXPECT_EQ(parse_timestamp("1969-12-31T23:59:59Z").value, -1);
    EXPECT_EQ(parse_timestamp("9999-12-31T23:59:59Z").value, 253402300799);
}

TEST(ValuesTimestamp, RejectsBadText) {
    for (const char* bad : {"",
                            "garbage",
                            "2026-11-24",
                            "2026-11-24T03:00Z",
                            "2026-11-24T03:00:00",
                            "2026-11-24 03:00:00Z",
                            "2026-13-01T00:00:00Z",
                            "2026-00-01T00:00:00Z",
                            "2026-11-31T00:00:00Z",
                            "2026-11-00T00:00:00Z",
                            "2023-02-29T00:00:00Z",
                            "1900-02-29T00:00:00Z",
                            "2026-11-24T24:00:00Z",
                            "2026-11-24T23:60:00Z",
                            "2026-11-24T23:59:60Z",
                            "2026-1-24T03:00:00Z",
                            "26-11-24T03:00:00Z",
                            "2026-11-24T03:00:00.Z",
                            "2026-11-24T03:00:00+0200",
                            "2026-11-24T03:00:00+02",
                            "2026-11-24T03:00:00+24:00",
                            "2026-11-24T03:00:00+02:60",
                            "2026-11-24T03:00:00ZZ",
                            "2026-11-24T03:00:00Z ",
                            " 2026-11-24T03:00:00Z",
                            "2026/11/24T03:00:00Z",
                            "+2026-11-24T03:00:00Z",
                            "2026-11-24T03:00:00UTC",
                            "1795489200"})
        EXPECT_FALSE(parse_timestamp(bad)) << "'" << bad << "'";
    EXPECT_NE(parse_timestamp("2026-13-01T00:00:00Z").expected.find("month 01-12"),
              std::string::npos);
    EXPECT_NE(parse_timestamp("2026-11-24T24:00:00Z").expected.find("hours 00-23"),
              std::string::npos);
    EXPECT_NE(parse_timestamp("tomorrow").expected.find("RFC 3339"), std::string::npos);
}

TEST(ValuesTimestamp, FormatsBack) {
    EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_timestamp(1795489200), "2026-11-24T03:00:00Z");
    EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59Z");
    for (std::int64_t t :
         {std::int64_t{1709208000}, std::int64_t{253402300799}, std::int64_t{12345}})
        EXPECT_EQ(parse_timestamp(format_timestamp(t)).value, t);
}

TEST(ValuesGatewayFailure, NamesRoundTrip) {
    for (auto f : {GatewayFailure::connect_failed, GatewayFailure::reset, GatewayFailure::timeout,
                   GatewayFailure::no_healthy_target, GatewayFailure::bad_response})
        EXPECT_EQ(parse_gateway_failure(gateway_failure_name(f)), f);
    EXPECT_EQ(parse_gateway_failure("timeout"), GatewayFailure::timeout);
    EXPECT_FALSE(parse_gateway_failure("Timeout"));
    EXPECT_FALSE(parse_gateway_failure("refused"));
    EXPECT_FALSE(parse_gateway_failure(""));
}

// ---- a complete, valid site ------------------------------------------------------------------

const std::string kFullSite = kBase + R"(    pages: {root: p}
    rules:
      - match:
          path: ["/api/*"]
          host: ["API.example.com", "*.api.example.com"]
          method: [get, HEAD]
          header: {name: X-Canary, value: ["1", "yes"]}
          query: {key: version, value: "2*"}
          source: ["10.0.0.0/8", "192.168.1.5", "2001:db8::/32"]
        forward: [{group: app, weight: 90}, {group: canary, weight: 10}]
      - match:
          host: internal.example.com
          method: post
          header:
            - {name: X-A, value: a}
            - {name: X-B, value: ["b*", "c?"]}
          query:
            - {key: debug}
            - {key: v, value: [1, 2]}
          source: 127.0.0.1
        forward: app
    maintenance:
      enabled: true
      reason: "database upgrade"
      message: "We are upgrading our database."
      until: "2026-11-24T03:00:00Z"
      page: /maintenance.html
      status: 502
      retry_after: 2m
      allow: ["/assets/*", "/robots.txt"]
      windows:
        - {start: "2026-11-24T02:00:00Z", end: "2026-11-24T03:00:00Z", reason: weekly}
        - start: 2026-12-01T05:00:00+02:00
          end: 2026-12-01T04:00:00Z
      bypass:
        header: {name: X-Maintenance-Bypass, value: "s3cret"}
        sources: ["10.0.0.0/8", "::1"]
        cookie: {secret_file: secrets/cookie-key, path: /.op/bypass, ttl: 30m, name: op_bypass}
    errors:
      - match: [500, "502-504", connect_failed, reset, timeout, no_healthy_target, bad_response]
        page: /errors/5xx.html
        status: 503
        retry_after: 30s
      - match: 404
        page: /errors/404.html
    outage: {page: /outage.html, status: 500, retry_after: 45s}
)";

TEST(ConfigRules, FullSiteParsesIntoTypedValues) {
    TempDir dir;
    dir.pages();
    dir.write("secrets/cookie-key", "0123456789abcdef0123456789abcdef\n");
    auto r = load(kFullSite, dir.path());
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const Site& site = r.config->sites[0];
    ASSERT_EQ(site.rules.size(), 2u);

    const Match& m = site.rules[0].match;
    EXPECT_EQ(m.paths, (std::vector<std::string>{"/api/*"}));
    EXPECT_EQ(m.hosts, (std::vector<std::string>{"api.example.com", "*.api.example.com"}));
    EXPECT_EQ(m.methods, (std::vector<std::string>{"GET", "HEAD"}));
    ASSERT_EQ(m.headers.size(), 1u);
    EXPECT_EQ(m.headers[0].name, "X-Canary");
    EXPECT_EQ(m.headers[0].values, (std::vector<std::string>{"1", "yes"}));
    ASSERT_EQ(m.query.size(), 1u);
    EXPECT_EQ(m.query[0].key, "version");
    EXPECT_EQ(m.query[0].values, (std::vector<std::string>{"2*"}));
    ASSERT_EQ(m.sources.size(), 3u);
    EXPECT_EQ(m.sources[0], *parse_cidr("10.0.0.0/8").value);
    EXPECT_EQ(m.sources[1].prefix, 128);
    EXPECT_EQ(m.sources[1].text, "192.168.1.5");
    EXPECT_EQ(m.sources[2].prefix, 32);

    const Action& weighted = site.rules[0].action;
    EXPECT_EQ(weighted.kind, Action::Kind::forward);
    EXPECT_TRUE(weighted.target_group.empty());
    ASSERT_EQ(weighted.weighted.size(), 2u);
    EXPECT_EQ(weighted.weighted[0], (WeightedGroup{"app", 90}));
    EXPECT_EQ(weighted.weighted[1], (WeightedGroup{"canary", 10}));

    const Match& m2 = site.rules[1].match;
    EXPECT_TRUE(m2.paths.empty());
    EXPECT_EQ(m2.hosts, (std::vector<std::string>{"internal.example.com"}));
    EXPECT_EQ(m2.methods, (std::vector<std::string>{"POST"}));
    ASSERT_EQ(m2.headers.size(), 2u);
    EXPECT_EQ(m2.headers[0], (HeaderMatch{"X-A", {"a"}}));
    EXPECT_EQ(m2.headers[1], (HeaderMatch{"X-B", {"b*", "c?"}}));
    ASSERT_EQ(m2.query.size(), 2u);
    EXPECT_EQ(m2.query[0], (QueryMatch{"debug", {}}));  // present with any value
    EXPECT_EQ(m2.query[1], (QueryMatch{"v", {"1", "2"}}));
    ASSERT_EQ(m2.sources.size(), 1u);
    EXPECT_TRUE(m2.sources[0].contains(ip("127.0.0.1")));
    EXPECT_FALSE(m2.sources[0].contains(ip("127.0.0.2")));
    EXPECT_EQ(site.rules[1].action, Action::of(Action::Kind::forward, "app"));  // plain string

    const Maintenance& mt = site.maintenance;
    EXPECT_TRUE(mt.enabled);
    EXPECT_EQ(mt.reason, "database upgrade");
    EXPECT_EQ(mt.message, "We are upgrading our database.");
    EXPECT_EQ(mt.until, std::optional<std::int64_t>(1795489200));
    EXPECT_EQ(mt.page, "/maintenance.html");
    EXPECT_EQ(mt.status, 502);
    EXPECT_EQ(mt.retry_after, 2min);
    EXPECT_EQ(mt.allow, (std::vector<std::string>{"/assets/*", "/robots.txt"}));
    ASSERT_EQ(mt.windows.size(), 2u);
    EXPECT_EQ(mt.windows[0], (Window{1795485600, 1795489200, "weekly"}));
    EXPECT_EQ(mt.windows[1].start, parse_timestamp("2026-12-01T03:00:00Z").value);
    EXPECT_EQ(mt.windows[1].end, parse_timestamp("2026-12-01T04:00:00Z").value);
    EXPECT_EQ(mt.windows[1].reason, "");

    const Bypass& b = mt.bypass;
    EXPECT_EQ(b.header_name, "X-Maintenance-Bypass");
    EXPECT_EQ(b.header_value, "s3cret");
    ASSERT_EQ(b.sources.size(), 2u);
    EXPECT_EQ(b.sources[0].text, "10.0.0.0/8");
    EXPECT_TRUE(b.sources[1].contains(ip("::1")));
    EXPECT_EQ(b.cookie_secret, "0123456789abcdef0123456789abcdef");  // newline trimmed
    EXPECT_EQ(b.cookie_path, "/.op/bypass");
    EXPECT_EQ(b.cookie_name, "op_bypass");
    EXPECT_EQ(b.cookie_ttl, 30min);

    ASSERT_EQ(site.errors.size(), 2u);
    const ErrorPage& e0 = site.errors[0];
    EXPECT_EQ(e0.statuses, (std::vector<StatusRange>{{500, 500}, {502, 504}}));
    EXPECT_EQ(e0.failures,
              (std::vector<GatewayFailure>{
                  GatewayFailure::connect_failed, GatewayFailure::reset, GatewayFailure::timeout,
                  GatewayFailure::no_healthy_target, GatewayFailure::bad_response}));
    EXPECT_EQ(e0.page, "/errors/5xx.html");
    EXPECT_EQ(e0.status, std::optional<int>(503));
    EXPECT_EQ(e0.retry_after, std::optional<Duration>(30s));
    const ErrorPage& e1 = site.errors[1];
    EXPECT_EQ(e1.statuses, (std::vector<StatusRange>{{404, 404}}));
    EXPECT_TRUE(e1.failures.empty());
    EXPECT_EQ(e1.page, "/errors/404.html");
    EXPECT_FALSE(e1.status.has_value());
    EXPECT_FALSE(e1.retry_after.has_value());

    EXPECT_EQ(site.outage.page, "/outage.html");
    EXPECT_EQ(site.outage.status, 500);
    EXPECT_EQ(site.outage.retry_after, 45s);
}

TEST(ConfigRules, DefaultsWithoutTheNewSections) {
    auto r = load(kBase);
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const Site& site = r.config->sites[0];
    const Maintenance& m = site.maintenance;
    EXPECT_FALSE(m.enabled);
    EXPECT_EQ(m.reason, "");
    EXPECT_EQ(m.message, "This site is down for maintenance. Please try again later.");
    EXPECT_FALSE(m.until.has_value());
    EXPECT_EQ(m.page, "/maintenance.html");
    EXPECT_EQ(m.status, 503);
    EXPECT_EQ(m.retry_after, 5min);
    EXPECT_TRUE(m.allow.empty());
    EXPECT_TRUE(m.windows.empty());
    EXPECT_TRUE(m.bypass.header_name.empty());
    EXPECT_TRUE(m.bypass.header_value.empty());
    EXPECT_TRUE(m.bypass.sources.empty());
    EXPECT_TRUE(m.bypass.cookie_secret.empty());
    EXPECT_EQ(m.bypass.cookie_path, "/.intermission/bypass");
    EXPECT_EQ(m.bypass.cookie_name, "intermission_bypass");
    EXPECT_EQ(m.bypass.cookie_ttl, 1h);
    EXPECT_TRUE(site.errors.empty());
    EXPECT_EQ(site.outage.page, "");
    EXPECT_EQ(site.outage.status, 503);
    EXPECT_EQ(site.outage.retry_after, 30s);
    EXPECT_EQ(site.default_action, Action::of(Action::Kind::forward, "app"));
}

TEST(ConfigRules, DefaultMaintenancePageNeedNotExist) {
    TempDir dir;
    dir.write("p/index.html", "hi");  // no maintenance.html
    auto r = load(kWithPages + "    maintenance: {enabled: false, reason: later}\n", dir.path());
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->sites[0].maintenance.page, "/maintenance.html");
    EXPECT_EQ(r.config->sites[0].maintenance.reason, "later");
}

TEST(ConfigRules, MaintenanceWithoutPageOnASiteWithoutPages) {
    auto r = load(kBase +
                  "    maintenance:\n      enabled: true\n      status: 200\n"
                  "      retry_after: 0s\n    outage: {status: 503}\n");
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_TRUE(r.config->sites[0].maintenance.enabled);
    EXPECT_EQ(r.config->sites[0].maintenance.status, 200);
    EXPECT_EQ(r.config->sites[0].maintenance.retry_after, 0s);
}

TEST(ConfigRules, EmptySectionsAreAllowed) {
    auto r = load(kBase + "    maintenance:\n    errors:\n    outage:\n");
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_TRUE(r.config->sites[0].errors.empty());
}

TEST(ConfigRules, WeightedForwardInDefaultActionAndDefaultWeight) {
    auto yaml = kBase;
    yaml.replace(yaml.find("{forward: app}"), 14,
                 "{forward: [{group: app}, {group: canary, weight: 1000}]}");
    auto r = load(yaml);
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const Action& a = r.config->sites[0].default_action;
    EXPECT_EQ(a.kind, Action::Kind::forward);
    EXPECT_TRUE(a.target_group.empty());
    EXPECT_EQ(a.weighted, (std::vector<WeightedGroup>{{"app", 1}, {"canary", 1000}}));
}

TEST(ConfigRules, MethodsAreDeduplicatedAndIpv6HostGlob) {
    auto r = load(kBase +
                  "    rules:\n      - match: {method: [get, GET], host: \"[::1]\"}\n"
                  "        forward: app\n");
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->sites[0].rules[0].match.methods, (std::vector<std::string>{"GET"}));
    EXPECT_EQ(r.config->sites[0].rules[0].match.hosts, (std::vector<std::string>{"[::1]"}));
}

TEST(ConfigRules, BypassValueFromAFileIsTrimmed) {
    TempDir dir;
    dir.write("secrets/header", "  tok en \r\n\n");
    dir.write("secrets/header2", "abc\t\n");
    auto r = load(kBase +
                      "    maintenance:\n      bypass:\n"
                      "        header: {name: X-Op, value_file: secrets/header2}\n"
                      "        cookie: {secret: \"0123456789abcdef\"}\n",
                  dir.path());
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->sites[0].maintenance.bypass.header_value, "abc");
    EXPECT_EQ(r.config->sites[0].maintenance.bypass.cookie_secret, "0123456789abcdef");
    // Leading whitespace is kept, and then refused: HTTP would strip it.
    auto bad = load(kBase +
                        "    maintenance:\n      bypass:\n"
                        "        header: {name: X-Op, value_file: secrets/header}\n",
                    dir.path());
    expect_one_error(bad, 14, 42,
                     "the value in " + (dir.path() / "secrets/header").string() +
                         " starts or ends with whitespace");
    EXPECT_EQ(bad.errors[0].message.find("tok en"), std::string::npos);
}

TEST(ConfigRules, BypassCookieSecretFileAbsolutePath) {
    TempDir dir;
    auto key = dir.write("k", std::string(32, 'k'));
    auto r = load(kBase + "    maintenance: {bypass: {cookie: {secret_file: \"" + key.string() +
                  "\"}}}\n");
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    EXPECT_EQ(r.config->sites[0].maintenance.bypass.cookie_secret, std::string(32, 'k'));
}

// ---- rule condition errors -------------------------------------------------------------------

std::string rule(const std::string& match) {
    return kBase + "    rules:\n      - match: " + match + "\n        forward: app\n";
}

TEST(ConfigRulesErrors, BadSourceCidr) {
    expect_one_error(load(rule("{source: [\"10.0.0.0/8\", \"10.0.0.0/33\"]}")), 13, 40,
                     "bad network '10.0.0.0/33' for 'sites[0].rules[0].match.source[1]' "
                     "(expected a prefix length from 0 to 32");
}

TEST(ConfigRulesErrors, BadSourceAddress) {
    expect_one_error(load(rule("{source: 10.0.0.256}")), 13, 25,
                     "bad network '10.0.0.256' for 'sites[0].rules[0].match.source' (expected an "
                     "IP address or a network address/prefix");
}

TEST(ConfigRulesErrors, EmptySourceList) {
    expect_one_error(load(rule("{source: []}")), 13, 25,
                     "expected at least one address or network for "
                     "'sites[0].rules[0].match.source'");
}

TEST(ConfigRulesErrors, HostGlobWithPort) {
    expect_one_error(load(rule("{host: [a.example.com, \"b.example.com:8080\"]}")), 13, 39,
                     "bad host glob 'b.example.com:8080' for 'sites[0].rules[0].match.host[1]' "
                     "(expected a host without a port");
}

TEST(ConfigRulesErrors, HostGlobWithBadCharacters) {
    expect_one_error(load(rule("{host: \"a b.example.com\"}")), 13, 23,
                     "bad host glob 'a b.example.com'");
    expect_one_error(load(rule("{host: \"\"}")), 13, 23, "a host glob cannot be empty");
    expect_one_error(load(rule("{host: \"/x\"}")), 13, 23, "bad host glob '/x'");
}

TEST(ConfigRulesErrors, BadMethod) {
    expect_one_error(load(rule("{method: [GET, \"GE T\"]}")), 13, 31,
                     "bad method 'GE T' for 'sites[0].rules[0].match.method[1]' (expected an "
                     "HTTP method name");
}

TEST(ConfigRulesErrors, MethodMapInsteadOfString) {
    expect_one_error(load(rule("{method: {a: b}}")), 13, 25,
                     "expected method or a list of them for 'sites[0].rules[0].match.method', "
                     "got a map");
}

TEST(ConfigRulesErrors, HeaderWithoutValue) {
    expect_one_error(load(rule("{header: {name: X-A}}")), 13, 17,
                     "missing required key 'value' in 'sites[0].rules[0].match.header'");
}

TEST(ConfigRulesErrors, HeaderListItemWithoutName) {
    expect_one_error(load(rule("{header: [{name: X-A, value: a}, {value: b}]}")), 13, 49,
                     "missing required key 'name' in 'sites[0].rules[0].match.header[1]'");
}

TEST(ConfigRulesErrors, BadHeaderName) {
    expect_one_error(load(rule("{header: {name: \"X A\", value: a}}")), 13, 32,
                     "bad header name 'X A' for 'sites[0].rules[0].match.header.name'");
}

TEST(ConfigRulesErrors, HeaderAsString) {
    expect_one_error(load(rule("{header: X-A}")), 13, 25,
                     "expected a map for 'sites[0].rules[0].match.header', got 'X-A'");
}

TEST(ConfigRulesErrors, HeaderUnknownKey) {
    expect_one_error(load(rule("{header: {name: X-A, value: a, vale: b}}")), 13, 47,
                     "unknown key 'vale' in 'sites[0].rules[0].match.header' (expected one of: "
                     "name, value)");
}

TEST(ConfigRulesErrors, QueryWithoutKey) {
    expect_one_error(load(rule("{query: {value: \"2*\"}}")), 13, 17,
                     "missing required key 'key' in 'sites[0].rules[0].match.query'");
}

TEST(ConfigRulesErrors, BadQueryKeyAndValue) {
    expect_one_error(load(rule("{query: {key: \"a=b\"}}")), 13, 30,
                     "bad query key 'a=b' for 'sites[0].rules[0].match.query.key'");
    expect_one_error(load(rule("{query: {key: a, value: \"x&y\"}}")), 13, 40,
                     "bad query value glob 'x&y' for 'sites[0].rules[0].match.query.value'");
}

TEST(ConfigRulesErrors, UnknownMatchKey) {
    expect_one_error(load(rule("{hots: a.example.com}")), 13, 17,
                     "unknown key 'hots' in 'sites[0].rules[0].match' (expected one of: path, "
                     "host, method, header, query, source)");
}

// ---- weighted forward errors -----------------------------------------------------------------

std::string forward(const std::string& list) {
    return kBase + "    rules:\n      - forward: " + list + "\n";
}

TEST(ConfigRulesErrors, WeightedUnknownGroup) {
    expect_one_error(load(forward("[{group: app, weight: 9}, {group: canery, weight: 1}]")), 13, 52,
                     "unknown target group 'canery' for 'sites[0].rules[0].forward[1].group' "
                     "(defined groups: app, canary)");
}

TEST(ConfigRulesErrors, WeightOutOfRange) {
    expect_one_error(load(forward("[{group: app, weight: 0}]")), 13, 40,
                     "bad integer '0' for 'sites[0].rules[0].forward[0].weight' (expected an "
                     "integer from 1 to 1000)");
    expect_one_error(load(forward("[{group: app, weight: 1001}]")), 13, 40,
                     "expected an integer from 1 to 1000");
}

TEST(ConfigRulesErrors, WeightedItemWithoutGroup) {
    expect_one_error(load(forward("[{weight: 5}]")), 13, 19,
                     "missing required key 'group' in 'sites[0].rules[0].forward[0]'");
}

TEST(ConfigRulesErrors, WeightedGroupTwice) {
    expect_one_error(load(forward("[{group: app}, {group: app}]")), 13, 41,
                     "target group 'app' is listed twice in 'sites[0].rules[0].forward' (first "
                     "at line 13)");
}

TEST(ConfigRulesErrors, WeightedEmptyList) {
    expect_one_error(load(forward("[]")), 13, 18,
                     "expected at least one target group for 'sites[0].rules[0].forward'");
}

TEST(ConfigRulesErrors, WeightedItemNotAMap) {
    expect_one_error(load(forward("[app]")), 13, 19,
                     "expected a map for 'sites[0].rules[0].forward[0]', got 'app'");
}

// ---- maintenance errors ----------------------------------------------------------------------

TEST(ConfigMaintenanceErrors, BadUntilTimestamp) {
    expect_one_error(load(kBase + "    maintenance:\n      until: \"2026-13-01T00:00:00Z\"\n"), 13,
                     14,
                     "bad timestamp '2026-13-01T00:00:00Z' for 'sites[0].maintenance.until' "
                     "(expected a date that exists");
}

TEST(ConfigMaintenanceErrors, GarbageTimestamp) {
    expect_one_error(load(kBase + "    maintenance: {until: tomorrow}\n"), 12, 26,
                     "bad timestamp 'tomorrow' for 'sites[0].maintenance.until' (expected an RFC "
                     "3339 timestamp");
}

TEST(ConfigMaintenanceErrors, WindowEndBeforeStart) {
    auto yaml = kBase +
                "    maintenance:\n      windows:\n"
                "        - start: \"2026-11-24T03:00:00Z\"\n"
                "          end: \"2026-11-24T02:00:00Z\"\n";
    expect_one_error(load(yaml), 15, 16,
                     "window end 2026-11-24T02:00:00Z for 'sites[0].maintenance.windows[0].end' "
                     "is not after its start 2026-11-24T03:00:00Z");
}

TEST(ConfigMaintenanceErrors, WindowEndEqualToStartAfterOffsets) {
    auto yaml = kBase +
                "    maintenance:\n      windows:\n"
                "        - {start: \"2026-11-24T03:00:00Z\", end: \"2026-11-24T05:00:00+02:00\"}\n";
    expect_one_error(load(yaml), 14, 48, "is not after its start");
}

TEST(ConfigMaintenanceErrors, WindowMissingEnd) {
    auto yaml =
        kBase + "    maintenance:\n      windows:\n        - {start: \"2026-11-24T03:00:00Z\"}\n";
    expect_one_error(load(yaml), 14, 11,
                     "missing required key 'end' in 'sites[0].maintenance.windows[0]'");
}

TEST(ConfigMaintenanceErrors, WindowBadStart) {
    auto yaml = kBase +
                "    maintenance:\n      windows:\n"
                "        - {start: \"2026-02-30T03:00:00Z\", end: \"2026-11-24T03:00:00Z\"}\n";
    expect_one_error(load(yaml), 14, 19,
                     "bad timestamp '2026-02-30T03:00:00Z' for "
                     "'sites[0].maintenance.windows[0].start'");
}

TEST(ConfigMaintenanceErrors, WindowsNotAList) {
    expect_one_error(load(kBase + "    maintenance: {windows: {start: x}}\n"), 12, 28,
                     "expected a list for 'sites[0].maintenance.windows', got a map");
}

TEST(ConfigMaintenanceErrors, StatusOutOfRange) {
    expect_one_error(load(kBase + "    maintenance: {status: 600}\n"), 12, 27,
                     "bad integer '600' for 'sites[0].maintenance.status' (expected an integer "
                     "from 200 to 599)");
}

TEST(ConfigMaintenanceErrors, BadAllowGlob) {
    expect_one_error(load(kBase + "    maintenance: {allow: [/ok, \"assets/*\"]}\n"), 12, 32,
                     "bad path glob 'assets/*' for 'sites[0].maintenance.allow[1]'");
}

TEST(ConfigMaintenanceErrors, EmptyMessage) {
    expect_one_error(load(kBase + "    maintenance: {message: \"\"}\n"), 12, 28,
                     "expected a non-empty string for 'sites[0].maintenance.message'");
}

TEST(ConfigMaintenanceErrors, UnknownKey) {
    expect_one_error(load(kBase + "    maintenance: {enabeld: true}\n"), 12, 19,
                     "unknown key 'enabeld' in 'sites[0].maintenance' (expected one of: enabled, "
                     "reason, message, until, page, json_page, text_page, status, retry_after, allow, windows, "
                     "bypass)");
}

TEST(ConfigMaintenanceErrors, ExplicitPageMissingFromStore) {
    TempDir dir;
    dir.pages();
    auto r = load(kWithPages + "    maintenance: {page: /down.html}\n", dir.path());
    expect_one_error(r, 13, 25,
                     "page file '/down.html' for 'sites[0].maintenance.page' is not in the page "
                     "store");
    EXPECT_NE(r.errors[0].message.find((dir.path() / "p/down.html").string()), std::string::npos);
}

TEST(ConfigMaintenanceErrors, ExplicitDefaultPageMustExistToo) {
    TempDir dir;
    dir.write("p/index.html", "hi");
    expect_one_error(load(kWithPages + "    maintenance: {page: /maintenance.html}\n", dir.path()),
                     13, 25, "is not in the page store");
}

TEST(ConfigMaintenanceErrors, PageWithoutPageStore) {
    expect_one_error(load(kBase + "    maintenance: {page: /maintenance.html}\n"), 12, 19,
                     "'page' in maintenance of site 'www' needs a page store, but site 'www' has "
                     "no 'pages' section");
}

TEST(ConfigMaintenanceErrors, BadPagePath) {
    TempDir dir;
    dir.pages();
    expect_one_error(load(kWithPages + "    maintenance: {page: maintenance.html}\n", dir.path()),
                     13, 25, "bad page file 'maintenance.html'");
}

// ---- bypass errors ---------------------------------------------------------------------------

std::string bypass(const std::string& body) {
    return kBase + "    maintenance:\n      bypass:\n" + body;
}

TEST(ConfigBypassErrors, ValueAndValueFile) {
    expect_one_error(
        load(bypass("        header: {name: X-Op, value: abc, value_file: f}\n")), 14, 42,
        "'value' and 'value_file' in 'sites[0].maintenance.bypass.header' exclude each other");
}

TEST(ConfigBypassErrors, NeitherValueNorValueFile) {
    expect_one_error(load(bypass("        header: {name: X-Op}\n")), 14, 9,
                     "missing 'value' or 'value_file' in 'sites[0].maintenance.bypass.header'");
}

TEST(ConfigBypassErrors, HeaderWithoutName) {
    expect_one_error(load(bypass("        header: {value: abc}\n")), 14, 9,
                     "missing required key 'name' in 'sites[0].maintenance.bypass.header'");
}

TEST(ConfigBypassErrors, MissingValueFile) {
    TempDir dir;
    auto r = load(bypass("        header: {name: X-Op, value_file: secrets/nope}\n"), dir.path());
    expect_one_error(r, 14, 42,
                     "cannot read the secret file 'secrets/nope' for "
                     "'sites[0].maintenance.bypass.header.value_file' (looked for " +
                         (dir.path() / "secrets/nope").string());
}

TEST(ConfigBypassErrors, EmptyValueFile) {
    TempDir dir;
    dir.write("secrets/empty", " \n\n");
    expect_one_error(
        load(bypass("        header: {name: X-Op, value_file: secrets/empty}\n"), dir.path()), 14,
        42,
        "the secret file 'secrets/empty' for "
        "'sites[0].maintenance.bypass.header.value_file' is empty");
}

TEST(ConfigBypassErrors, ValueFileIsADirectory) {
    TempDir dir;
    dir.write("secrets/x", "y");
    expect_one_error(
        load(bypass("        header: {name: X-Op, value_file: secrets}\n"), dir.path()), 14, 42,
        "is not a regular file");
}

TEST(ConfigBypassErrors, EmptyInlineValue) {
    expect_one_error(load(bypass("        header: {name: X-Op, value: \"\"}\n")), 14, 37,
                     "the value of 'sites[0].maintenance.bypass.header.value' is empty");
}

TEST(ConfigBypassErrors, InlineValueWithSpacesDoesNotLeak) {
    auto r = load(bypass("        header: {name: X-Op, value: \" hunter2\"}\n"));
    expect_one_error(r, 14, 37,
                     "the value of 'sites[0].maintenance.bypass.header.value' starts or ends "
                     "with whitespace");
    EXPECT_EQ(r.errors[0].message.find("hunter2"), std::string::npos);
}

TEST(ConfigBypassErrors, ValueWithControlCharacterDoesNotLeak) {
    TempDir dir;
    dir.write("s", "hun\x01ter2\n");
    auto r = load(bypass("        header: {name: X-Op, value_file: s}\n"), dir.path());
    expect_one_error(r, 14, 42,
                     "the value in " + (dir.path() / "s").string() + " contains a control");
    EXPECT_EQ(r.errors[0].message.find("hun"), std::string::npos);
}

TEST(ConfigBypassErrors, BadHeaderName) {
    expect_one_error(load(bypass("        header: {name: \"X Op\", value: abc}\n")), 14, 24,
                     "bad header name 'X Op' for 'sites[0].maintenance.bypass.header.name'");
}

TEST(ConfigBypassErrors, BadSources) {
    expect_one_error(load(bypass("        sources: [\"10.0.0.0/8\", \"10.0.0.0/x\"]\n")), 14, 33,
                     "bad network '10.0.0.0/x' for 'sites[0].maintenance.bypass.sources[1]'");
}

TEST(ConfigBypassErrors, CookieSecretTooShortDoesNotLeak) {
    auto r = load(bypass("        cookie: {secret: short-secret}\n"));
    expect_one_error(r, 14, 26,
                     "the secret of 'sites[0].maintenance.bypass.cookie.secret' is shorter than "
                     "16 bytes");
    EXPECT_EQ(r.errors[0].message.find("short-secret"), std::string::npos);
}

TEST(ConfigBypassErrors, CookieSecretFileTooShort) {
    TempDir dir;
    auto key = dir.write("secrets/cookie-key", "tiny\n");
    auto r = load(bypass("        cookie: {secret_file: secrets/cookie-key}\n"), dir.path());
    expect_one_error(r, 14, 31, "the secret in " + key.string() + " is shorter than 16 bytes");
    EXPECT_EQ(r.errors[0].message.find("tiny"), std::string::npos);
}

TEST(ConfigBypassErrors, CookieSecretAndSecretFile) {
    expect_one_error(load(bypass("        cookie:\n          secret_file: k\n"
                                 "          secret: \"0123456789abcdef\"\n")),
                     16, 11,
                     "'secret' and 'secret_file' in 'sites[0].maintenance.bypass.cookie' exclude "
                     "each other");
}

TEST(ConfigBypassErrors, CookieWithoutSecret) {
    expect_one_error(load(bypass("        cookie: {ttl: 1h}\n")), 14, 9,
                     "missing 'secret' or 'secret_file' in 'sites[0].maintenance.bypass.cookie'");
}

TEST(ConfigBypassErrors, CookiePathMustStartWithSlash) {
    expect_one_error(
        load(bypass("        cookie: {secret: \"0123456789abcdef\", path: bypass}\n")), 14, 52,
        "bad bypass path 'bypass' for 'sites[0].maintenance.bypass.cookie.path' (expected a "
        "path starting with '/'");
}

TEST(ConfigBypassErrors, CookieBadNameAndTtl) {
    expect_one_error(
        load(bypass("        cookie: {secret: \"0123456789abcdef\", name: \"a;b\"}\n")), 14, 52,
        "bad cookie name 'a;b'");
    expect_one_error(load(bypass("        cookie: {secret: \"0123456789abcdef\", ttl: 0s}\n")), 14,
                     51, "expected a duration above 0");
}

// ---- custom error responses and outage -------------------------------------------------------

TEST(ConfigErrorPagesErrors, UnknownFailureName) {
    TempDir dir;
    dir.pages();
    auto yaml =
        kWithPages + "    errors:\n      - match: [500, refused]\n        page: /errors/5xx.html\n";
    expect_one_error(load(yaml, dir.path()), 14, 22,
                     "unknown gateway failure 'refused' for 'sites[0].errors[0].match[1]' "
                     "(expected a status, a range like \"502-504\", or one of: connect_failed, "
                     "reset, timeout, no_healthy_target, bad_response)");
}

TEST(ConfigErrorPagesErrors, BadStatusRange) {
    TempDir dir;
    dir.pages();
    auto yaml = kWithPages +
                "    errors:\n      - match: [\"504-502\", 600]\n        page: /errors/5xx.html\n";
    auto r = load(yaml, dir.path());
    ASSERT_EQ(r.errors.size(), 2u) << all_errors(r);
    EXPECT_EQ(r.errors[0].line, 14);
    EXPECT_EQ(r.errors[0].column, 17);
    EXPECT_NE(r.errors[0].message.find("bad status range '504-502' for "
                                       "'sites[0].errors[0].match[0]'"),
              std::string::npos);
    EXPECT_EQ(r.errors[1].column, 28);
    EXPECT_NE(r.errors[1].message.find("bad status range '600'"), std::string::npos);
}

TEST(ConfigErrorPagesErrors, PageMissingFromStore) {
    TempDir dir;
    dir.pages();
    auto yaml = kWithPages + "    errors:\n      - match: 502\n        page: /errors/502.html\n";
    expect_one_error(load(yaml, dir.path()), 15, 15,
                     "page file '/errors/502.html' for 'sites[0].errors[0].page' is not in the "
                     "page store");
}

TEST(ConfigErrorPagesErrors, SiteWithoutPages) {
    auto yaml = kBase + "    errors:\n      - match: 502\n        page: /errors/502.html\n";
    expect_one_error(load(yaml), 14, 9,
                     "'page' in error response 1 of site 'www' needs a page store, but site "
                     "'www' has no 'pages' section");
}

TEST(ConfigErrorPagesErrors, MissingPageOrMatch) {
    TempDir dir;
    dir.pages();
    expect_one_error(load(kWithPages + "    errors:\n      - {match: 502}\n", dir.path()), 14, 9,
                     "missing required key 'page' in error response 1 of site 'www'");
    expect_one_error(
        load(kWithPages + "    errors:\n      - {page: /errors/5xx.html}\n", dir.path()), 14, 9,
        "missing required key 'match' in error response 1 of site 'www'");
}

TEST(ConfigErrorPagesErrors, EmptyMatchAndBadStatus) {
    TempDir dir;
    dir.pages();
    expect_one_error(
        load(kWithPages + "    errors:\n      - {match: [], page: /errors/5xx.html}\n", dir.path()),
        14, 17, "expected at least one status or failure for 'sites[0].errors[0].match'");
    expect_one_error(load(kWithPages + "    errors:\n      - {match: 502, page: /errors/5xx.html, "
                                       "status: 199}\n",
                          dir.path()),
                     14, 54, "bad integer '199' for 'sites[0].errors[0].status'");
}

TEST(ConfigErrorPagesErrors, UnknownKeyNamesTheEntry) {
    TempDir dir;
    dir.pages();
    expect_one_error(
        load(kWithPages + "    errors:\n      - {match: 502, page: /errors/5xx.html, code: 503}\n",
             dir.path()),
        14, 46,
        "unknown key 'code' in error response 1 of site 'www' (expected one of: match, page, "
        "status, retry_after)");
}

TEST(ConfigErrorPagesErrors, ErrorsNotAList) {
    expect_one_error(load(kBase + "    errors: {match: 502}\n"), 12, 13,
                     "expected a list for 'sites[0].errors', got a map");
}

TEST(ConfigOutageErrors, PageMissingFromStore) {
    TempDir dir;
    dir.pages();
    expect_one_error(load(kWithPages + "    outage: {page: /gone.html}\n", dir.path()), 13, 20,
                     "page file '/gone.html' for 'sites[0].outage.page' is not in the page store");
}

TEST(ConfigOutageErrors, PageWithoutStoreAndBadValues) {
    expect_one_error(load(kBase + "    outage: {page: /outage.html}\n"), 12, 14,
                     "'page' in outage of site 'www' needs a page store");
    expect_one_error(load(kBase + "    outage: {status: 100}\n"), 12, 22,
                     "bad integer '100' for 'sites[0].outage.status' (expected an integer from "
                     "200 to 599)");
    expect_one_error(load(kBase + "    outage: {retry_after: 30}\n"), 12, 27,
                     "bad duration '30' for 'sites[0].outage.retry_after'");
}

TEST(ConfigRulesErrors, UnknownSiteKeyListsNewKeys) {
    expect_one_error(load(kBase + "    maintenace: {}\n"), 12, 5,
                     "unknown key 'maintenace' in site 'www' (expected one of: name, hosts, "
                     "default, pages, rules, default_action, maintenance, errors, outage)");
}

TEST(ConfigRulesErrors, SeveralErrorsInFileOrder) {
    TempDir dir;
    dir.pages();
    auto yaml = kWithPages + R"(    rules:
      - match: {source: "1.2.3.4/40", method: "G T"}
        forward: [{group: nope}]
    maintenance:
      until: yesterday
      windows:
        - {start: "2026-11-24T03:00:00Z", end: "2026-11-24T01:00:00Z"}
      bypass: {cookie: {secret: abc}}
    errors:
      - {match: [oops], page: /none.html}
    outage: {page: /none.html}
)";
    auto r = load(yaml, dir.path());
    std::vector<std::pair<int, int>> where;
    for (const auto& e : r.errors) where.emplace_back(e.line, e.column);
    const std::vector<std::pair<int, int>> expected{
        {14, 25}, {14, 47}, {15, 27}, {17, 14}, {19, 48}, {20, 33}, {22, 18}, {22, 31}, {23, 20}};
    EXPECT_EQ(where, expected) << all_errors(r);
}

// ---- the documentation's example -------------------------------------------------------------

TEST(ConfigDocs, TopExampleLoads) {
    // INTERMISSION_TEST_DATA is <repo>/tests/unit/data, which need not exist.
    const auto doc_path =
        (fs::path(INTERMISSION_TEST_DATA) / "../../../docs/configuration.md").lexically_normal();
    std::ifstream in(doc_path);
    ASSERT_TRUE(in) << doc_path << " not found";
    const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto begin = doc.find("```yaml\n");
    ASSERT_NE(begin, std::string::npos);
    const auto end = doc.find("```\n", begin + 8);
    ASSERT_NE(end, std::string::npos);
    const std::string yaml = doc.substr(begin + 8, end - begin - 8);
    TempDir dir;
    dir.write("pages/www/maintenance.html", "down");
    dir.write("pages/www/errors/5xx.html", "oops");
    dir.write("pages/docs/index.html", "docs");
    dir.write("secrets/bypass-header", "s3cret-value\n");
    dir.write("secrets/cookie-key", "0123456789abcdef0123456789abcdef\n");
    auto r = load(yaml, dir.path());
    ASSERT_TRUE(r.config.has_value()) << all_errors(r);
    const Site& www = r.config->sites[0];
    EXPECT_EQ(www.rules[1].action.weighted.size(), 2u);
    EXPECT_EQ(www.maintenance.bypass.header_value, "s3cret-value");
    EXPECT_EQ(www.maintenance.windows.size(), 1u);
    EXPECT_EQ(www.errors.size(), 1u);
    EXPECT_EQ(www.outage.page, "/maintenance.html");
}

}  // namespace
}  // namespace im::config
