// decide() over listener rule conditions, weighted forwards, maintenance,
// bypass and failover, with time and randomness pinned.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <deque>
#include <string>

#include <filesystem>
#include <fstream>

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
    core::StoreMap stores;

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
        snapshot = core::build_snapshot(c, std::make_shared<core::Endpoints>(), stores, h, 1);
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
    // A page store for the site with these files (path -> content).
    void add_store(const std::vector<std::pair<std::string, std::string>>& files) {
        auto root = std::filesystem::temp_directory_path() /
                    ("decide-store-" + std::to_string(::getpid()) + "-" + std::to_string(stores.size()));
        std::filesystem::remove_all(root);
        for (const auto& [path, content] : files) {
            std::filesystem::create_directories((root / path.substr(1)).parent_path());
            std::ofstream(root / path.substr(1)) << content;
        }
        pages::StoreOptions options;
        options.root = root;
        auto loaded = pages::Store::load(options);
        std::filesystem::remove_all(root);
        ASSERT_TRUE(loaded.store);
        stores["www"] = loaded.store;
        site().pages.emplace();
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

// decide() skips header scans for names the request does not have (a 64-bit filter of
// the request's header names): any case of the name still matches, and a rule list of
// many header conditions, some sharing the filter's bit, still finds the right one.
TEST(CoreRules, HeaderConditionsOverManyRulesAndAnyCase) {
    World w;
    for (int i = 0; i < 100; ++i)
        w.add_rule(forward("api")).match.headers = {{"X-Rule-" + std::to_string(i), {"on"}}};
    w.add_rule(forward("canary")).match.headers = {{"x-canary", {"yes"}}};
    w.build();
    EXPECT_EQ(w.group(w.decide("/", "X-CANARY: yes\r\n")), "canary");
    EXPECT_EQ(w.group(w.decide("/", "x-rule-57: on\r\n")), "api");
    EXPECT_EQ(w.group(w.decide("/", "X-Rule-7: on\r\n")), "api");
    EXPECT_EQ(w.group(w.decide("/", "X-Rule-7: off\r\nX-Canary: yes\r\n")), "canary");
    EXPECT_EQ(w.group(w.decide("/", "X-Other: on\r\n")), "app");
    EXPECT_EQ(w.group(w.decide("/")), "app");
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

TEST(CoreRules, PageFixedAndRedirectActions) {
    World w;
    config::Action page = config::Action::of(config::Action::Kind::page);
    page.file = "/sorry.html";
    page.status = 410;
    w.add_rule(page).match.paths = {"/gone/*"};
    config::Action fixed = config::Action::of(config::Action::Kind::fixed);
    fixed.status = 418;
    fixed.body = "teapot";
    w.add_rule(fixed).match.paths = {"/tea"};
    config::Action redirect = config::Action::of(config::Action::Kind::redirect);
    redirect.status = 301;
    redirect.location = "https://{host}{path}";
    w.add_rule(redirect).match.paths = {"/old"};
    w.add_store({{"/sorry.html", "<p>gone</p>"}});
    w.build();

    auto d = w.decide("/gone/x");
    ASSERT_EQ(d.kind, Decision::Kind::page);
    ASSERT_NE(d.action->page, nullptr);
    EXPECT_EQ(d.action->page->status, 410);
    EXPECT_EQ(d.action->page->file->path, "/sorry.html");
    d = w.decide("/tea");
    ASSERT_EQ(d.kind, Decision::Kind::fixed);
    EXPECT_EQ(d.action->config->status, 418);
    EXPECT_EQ(d.action->config->body, "teapot");
    d = w.decide("/old");
    ASSERT_EQ(d.kind, Decision::Kind::redirect);
    EXPECT_EQ(d.action->config->location, "https://{host}{path}");
    EXPECT_EQ(w.decide("/other").kind, Decision::Kind::forward);
}

TEST(CoreMaintenance, RobotsTxtIsServedWhenTheStoreHasIt) {
    World w;
    w.site().maintenance.enabled = true;
    w.add_store({{"/robots.txt", "User-agent: *\n"}, {"/maintenance.html", "<p>soon</p>"}});
    w.build();
    EXPECT_EQ(w.decide("/robots.txt").kind, Decision::Kind::store);
    EXPECT_EQ(w.decide("/robots.txt?x=1").kind, Decision::Kind::store);
    EXPECT_EQ(w.decide("/").kind, Decision::Kind::maintenance);

    World without;
    without.site().maintenance.enabled = true;
    without.add_store({{"/maintenance.html", "<p>soon</p>"}});
    without.build();
    EXPECT_EQ(without.decide("/robots.txt").kind, Decision::Kind::maintenance);
}

TEST(CoreRules, PrivatePagesAreNotServedByPath) {
    World w;
    w.site().default_action = config::Action::of(config::Action::Kind::store);
    w.site().outage.page = "/outage.html";
    config::ErrorPage e;
    e.statuses = {{500, 599}};
    e.page = "/errors/5xx.html";
    w.site().errors.push_back(e);
    w.add_store({{"/maintenance.html", "m"}, {"/outage.html", "o"}, {"/errors/5xx.html", "e"}, {"/index.html", "i"}});
    w.build();
    EXPECT_EQ(w.decide("/maintenance.html").kind, Decision::Kind::not_found);
    EXPECT_EQ(w.decide("/outage.html").kind, Decision::Kind::not_found);
    EXPECT_EQ(w.decide("/errors/5xx.html").kind, Decision::Kind::not_found);
    EXPECT_EQ(w.decide("/index.html").kind, Decision::Kind::store);
}
