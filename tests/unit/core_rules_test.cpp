// decide() over listener rule conditions, weighted forwards, maintenance,
// bypass and failover, with time and randomness pinned.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <deque>
#include <string>

#include "core/bypass.hpp"
#include "core/decide.hpp"

using namespace im;
using core::Decision;

namespace {

config::Cidr cidr(const std::string& ip, int prefix) {
    config::Cidr c;
    c.bytes = {};
    unsigned char v4[4];
    if (inet_pton(AF_INET, ip.c_str(), v4) == 1) {
        c.bytes[10] = c.bytes[11] = 0xff;
        for (int i = 0; i < 4; ++i) c.bytes[12 + i] = v4[i];
        c.prefix = 96 + prefix;
    } else {
        inet_pton(AF_INET6, ip.c_str(), c.bytes.data());
        c.prefix = prefix;
    }
    c.text = ip;
    return c;
}

std::array<std::uint8_t, 16> address(const std::string& ip) { return cidr(ip, 32).bytes; }

config::Action forward(const std::string& group) { return config::Action::of(config::Action::Kind::forward, group); }

struct World {
    config::Config config;
    std::shared_ptr<core::HealthView> health;
    std::shared_ptr<const core::Snapshot> snapshot;
    core::Visitor visitor;
    std::deque<std::string> heads;

    World() {
        for (const char* name : {"app", "canary", "api"}) {
            config::TargetGroup g;
            g.name = name;
            g.targets = {{"127.0.0.1", 9000}, {"127.0.0.1", 9001}};
            config.target_groups.push_back(g);
        }
        config::Site site;
        site.name = "www";
        site.default_site = true;
        site.default_action = forward("app");
        config.sites.push_back(site);
        visitor.address = address("203.0.113.9");
        visitor.now = 1'700'000'000;
    }
    config::Site& site() { return config.sites[0]; }
    config::Rule& add_rule(config::Action action) {
        config::Rule r;
        r.action = std::move(action);
        site().rules.push_back(r);
        return site().rules.back();
    }
    void build() {
        auto c = std::make_shared<const config::Config>(config);
        auto h = health ? health : std::const_pointer_cast<core::HealthView>(core::all_healthy(*c));
        health = h;
        snapshot = core::build_snapshot(c, std::make_shared<core::Endpoints>(), {}, h, 1);
    }
    void set_runtime(const core::MaintenanceState& state) {
        auto rt = std::make_shared<core::RuntimeState>();
        rt->maintenance["www"] = state;
        snapshot = core::with_runtime(*snapshot, rt, 2);
    }
    Decision decide(const std::string& target, const std::string& headers = "",
                    const std::string& method = "GET") {
        auto& head = heads.emplace_back(method + " " + target +
                                        " HTTP/1.1\r\nHost: www.example.com\r\n" + headers + "\r\n");
        http::Request r;
        EXPECT_EQ(http::parse_request(head, {}, r), 0);
        visitor.path = r.path;
        return core::decide(r, visitor, *snapshot);
    }
    std::string group(const Decision& d) {
        return d.group < 0 ? "-" : snapshot->config->target_groups[static_cast<std::size_t>(d.group)].name;
    }
};

}  // namespace

TEST(CoreRules, EachConditionAndTheirCombination) {
    World w;
    w.add_rule(forward("api")).match.methods = {"POST", "PUT"};
    auto& host = w.add_rule(forward("canary")).match;
    host.hosts = {"*.example.com"};
    host.headers = {{"X-Canary", {"yes", "1*"}}};
    w.add_rule(forward("api")).match.query = {{"v", {"2*"}}};
    w.add_rule(forward("canary")).match.query = {{"debug", {}}};
    w.add_rule(forward("api")).match.sources = {cidr("10.0.0.0", 8)};
    w.build();
    EXPECT_EQ(w.group(w.decide("/", "", "POST")), "api");
    EXPECT_EQ(w.group(w.decide("/", "X-Canary: yes\r\n")), "canary");
    EXPECT_EQ(w.group(w.decide("/", "X-Canary: 12\r\n")), "canary");
    EXPECT_EQ(w.group(w.decide("/", "X-Canary: no\r\n")), "app");
    EXPECT_EQ(w.group(w.decide("/?a=1&v=2.1")), "api");
    EXPECT_EQ(w.group(w.decide("/?v=1")), "app");
    EXPECT_EQ(w.group(w.decide("/?debug")), "canary");
    EXPECT_EQ(w.group(w.decide("/")), "app");
    w.visitor.address = address("10.1.2.3");
    EXPECT_EQ(w.group(w.decide("/")), "api");
}

TEST(CoreRules, AllConditionsOfARuleMustHold) {
    World w;
    auto& m = w.add_rule(forward("api")).match;
    m.paths = {"/api/*"};
    m.methods = {"GET"};
    w.build();
    EXPECT_EQ(w.group(w.decide("/api/x")), "api");
    EXPECT_EQ(w.group(w.decide("/api/x", "", "DELETE")), "app");
    EXPECT_EQ(w.group(w.decide("/other")), "app");
}

TEST(CoreRules, WeightedForwardFollowsTheRoll) {
    World w;
    auto& a = w.site().default_action;
    a.target_group.clear();
    a.weighted = {{"app", 90}, {"canary", 10}};
    w.build();
    int canary = 0;
    for (std::uint32_t roll = 0; roll < 1000; ++roll) {
        w.visitor.roll = roll;
        canary += w.group(w.decide("/")) == "canary";
    }
    EXPECT_EQ(canary, 100);
}

TEST(CoreRules, NoHealthyTargetMeansOutage) {
    World w;
    w.health = std::const_pointer_cast<core::HealthView>(
        core::all_healthy(config::Config(w.config)));
    w.health->healthy[0] = {0, 0};
    w.build();
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::outage);
    w.health->healthy[0] = {0, 1};
    w.build();
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::forward);
}

TEST(CoreMaintenance, ConfigSwitchAndRetryAfter) {
    World w;
    w.site().maintenance.enabled = true;
    w.site().maintenance.retry_after = std::chrono::minutes(2);
    w.build();
    auto d = w.decide("/");
    EXPECT_EQ(d.kind, Decision::Kind::maintenance);
    EXPECT_EQ(d.retry_after, 120);
    w.site().maintenance.until = w.visitor.now + 45;
    w.build();
    EXPECT_EQ(w.decide("/").retry_after, 45);
}

TEST(CoreMaintenance, RuntimeStateOverridesConfig) {
    World w;
    w.site().maintenance.enabled = true;
    w.build();
    core::MaintenanceState off;
    off.on = false;
    w.set_runtime(off);
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::forward);
    core::MaintenanceState on;
    on.on = true;
    on.until = w.visitor.now + 600;
    w.set_runtime(on);
    auto d = w.decide("/");
    EXPECT_EQ(d.kind, Decision::Kind::maintenance);
    EXPECT_EQ(d.retry_after, 600);
}

TEST(CoreMaintenance, WindowsStartAndEndAtTheirInstants) {
    World w;
    w.site().maintenance.windows = {{w.visitor.now + 10, w.visitor.now + 70, "deploy"}};
    w.build();
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::forward);
    w.visitor.now += 10;
    auto d = w.decide("/");
    EXPECT_EQ(d.kind, Decision::Kind::maintenance);
    EXPECT_EQ(d.retry_after, 60);  // counts down to the window's end
    w.visitor.now += 59;
    EXPECT_EQ(w.decide("/").retry_after, 1);
    w.visitor.now += 1;
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::forward);
}

TEST(CoreMaintenance, AllowedPathsGoToTheStore) {
    World w;
    w.site().maintenance.enabled = true;
    w.site().maintenance.allow = {"/assets/*", "/robots.txt"};
    w.site().pages.emplace();
    w.build();
    // without a loaded store there is nothing to serve them from
    EXPECT_EQ(w.decide("/assets/site.css").kind, Decision::Kind::maintenance);
}

TEST(CoreMaintenance, BypassByHeaderSourceAndCookie) {
    World w;
    auto& m = w.site().maintenance;
    m.enabled = true;
    m.bypass.header_name = "X-Bypass";
    m.bypass.header_value = "open-sesame";
    m.bypass.sources = {cidr("192.0.2.0", 24)};
    m.bypass.cookie_secret = "0123456789abcdef0123456789abcdef";
    w.build();
    EXPECT_EQ(w.decide("/", "X-Bypass: open-sesame\r\n").kind, Decision::Kind::forward);
    EXPECT_TRUE(w.decide("/", "X-Bypass: open-sesame\r\n").bypassed);
    EXPECT_EQ(w.decide("/", "X-Bypass: open-sesamE\r\n").kind, Decision::Kind::maintenance);
    EXPECT_EQ(w.decide("/", "X-Bypass: \r\n").kind, Decision::Kind::maintenance);

    auto token = core::make_bypass_token(m.bypass.cookie_secret, "www", w.visitor.now + 60);
    EXPECT_EQ(w.decide("/", "Cookie: a=b; intermission_bypass=" + token + "\r\n").kind,
              Decision::Kind::forward);
    auto expired = core::make_bypass_token(m.bypass.cookie_secret, "www", w.visitor.now - 1);
    EXPECT_EQ(w.decide("/", "Cookie: intermission_bypass=" + expired + "\r\n").kind,
              Decision::Kind::maintenance);
    auto other_site = core::make_bypass_token(m.bypass.cookie_secret, "shop", w.visitor.now + 60);
    EXPECT_EQ(w.decide("/", "Cookie: intermission_bypass=" + other_site + "\r\n").kind,
              Decision::Kind::maintenance);
    auto forged = core::make_bypass_token("another-secret-of-32-bytes-long!", "www", w.visitor.now + 60);
    EXPECT_EQ(w.decide("/", "Cookie: intermission_bypass=" + forged + "\r\n").kind,
              Decision::Kind::maintenance);

    EXPECT_EQ(w.decide("/.intermission/bypass?token=" + token).kind, Decision::Kind::bypass_grant);
    EXPECT_EQ(w.decide("/.intermission/bypass?token=" + forged).kind, Decision::Kind::maintenance);

    w.visitor.address = address("192.0.2.77");
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::forward);
}

TEST(CoreBypass, TokenAndSecretHelpers) {
    EXPECT_TRUE(core::secret_equals("abc", "abc"));
    EXPECT_FALSE(core::secret_equals("abc", "abd"));
    EXPECT_FALSE(core::secret_equals("abc", "abcd"));
    EXPECT_EQ(core::cookie_value("a=1; b = 2 ;c=3", "b"), "2");
    EXPECT_EQ(core::cookie_value("a=1", "b"), "");
    EXPECT_EQ(core::query_value("x=1&token=abc&y", "token"), "abc");
    EXPECT_FALSE(core::verify_bypass_token("k", "www", "garbage", 0));
    EXPECT_FALSE(core::verify_bypass_token("k", "www", "12x.ab", 0));
    EXPECT_FALSE(core::verify_bypass_token("", "www", core::make_bypass_token("", "www", 100), 0));
}

TEST(CoreRules, RuleIndexKeepsPriorityOrder) {
    World w;
    w.add_rule(forward("canary")).match.paths = {"/a*"};   // indexed under 'a'
    w.add_rule(forward("api")).match.paths = {"/*"};        // could match anything
    w.add_rule(forward("canary")).match.paths = {"/b/*"};  // after the catch-all: never wins
    w.add_rule(forward("app")).match.methods = {"POST"};
    w.build();
    EXPECT_EQ(w.group(w.decide("/apple")), "canary");
    EXPECT_EQ(w.group(w.decide("/b/x")), "api");
    EXPECT_EQ(w.group(w.decide("/")), "api");
    for (int i = 0; i < 50; ++i) w.add_rule(forward("canary")).match.paths = {"/z" + std::to_string(i) + "/*"};
    w.site().rules.erase(w.site().rules.begin() + 1);  // drop the catch-all
    w.build();
    EXPECT_EQ(w.group(w.decide("/z42/x")), "canary");
    EXPECT_EQ(w.group(w.decide("/b/x")), "canary");
    EXPECT_EQ(w.group(w.decide("/q", "", "POST")), "app");
    EXPECT_EQ(w.group(w.decide("/q")), "app");  // default
}
