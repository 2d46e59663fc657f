#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "core/decide.hpp"

using namespace im;
using core::Decision;

namespace {

config::Action forward(const std::string& group) {
    config::Action a;
    a.kind = config::Action::Kind::forward;
    a.target_group = group;
    return a;
}

config::Action store() {
    config::Action a;
    a.kind = config::Action::Kind::store;
    return a;
}

config::Rule rule(std::vector<std::string> paths, config::Action action) {
    config::Rule r;
    r.match.paths = std::move(paths);
    r.action = std::move(action);
    return r;
}

std::shared_ptr<const config::Config> sample_config() {
    auto c = std::make_shared<config::Config>();
    for (const char* name : {"app", "api"}) {
        config::TargetGroup g;
        g.name = name;
        g.targets.push_back({"127.0.0.1", 9000});
        c->target_groups.push_back(g);
    }
    config::Site www;
    www.name = "www";
    www.hosts = {"www.example.com", "*.example.com"};
    www.rules.push_back(rule({"/static/*", "/robots.txt"}, store()));
    www.rules.push_back(rule({"/api/*"}, forward("api")));
    www.default_action = forward("app");
    c->sites.push_back(www);
    config::Site shop;
    shop.name = "shop";
    shop.hosts = {"shop.example.com", "*.shop.example.com"};
    shop.default_action = forward("api");
    c->sites.push_back(shop);
    config::Site fallback;
    fallback.name = "fallback";
    fallback.default_site = true;
    fallback.default_action = store();
    c->sites.push_back(fallback);
    return c;
}

struct Fixture {
    std::shared_ptr<const config::Config> config = sample_config();
    std::shared_ptr<const core::Snapshot> snapshot = core::build_snapshot(
        config, std::make_shared<core::Endpoints>(), {}, core::all_healthy(*config), 1);

    core::Visitor visitor;

    Decision decide(const std::string& host, const std::string& target,
                    const std::string& headers = "", const std::string& method = "GET") {
        static std::deque<std::string> heads;
        auto& head = heads.emplace_back(method + " " + target + " HTTP/1.1\r\nHost: " + host +
                                        "\r\n" + headers + "\r\n");
        http::Request r;
        EXPECT_EQ(http::parse_request(head, {}, r), 0);
        visitor.path = r.path;
        return core::decide(r, visitor, *snapshot);
    }
    std::string site(const Decision& d) {
        return d.site < 0 ? "-" : snapshot->sites[static_cast<std::size_t>(d.site)].config->name;
    }
};

}  // namespace

TEST(CoreDecide, HostSelectsSite) {
    Fixture f;
    EXPECT_EQ(f.site(f.decide("www.example.com", "/")), "www");
    EXPECT_EQ(f.site(f.decide("WWW.Example.COM:8080", "/")), "www");  // case and port ignored
    EXPECT_EQ(f.site(f.decide("www.example.com.", "/")), "www");      // trailing dot
    EXPECT_EQ(f.site(f.decide("blog.example.com", "/")), "www");       // wildcard
    EXPECT_EQ(f.site(f.decide("a.shop.example.com", "/")), "shop");    // longest wildcard wins
    EXPECT_EQ(f.site(f.decide("shop.example.com", "/")), "shop");
    EXPECT_EQ(f.site(f.decide("example.com", "/")), "fallback");       // "*.x" does not match "x"
    EXPECT_EQ(f.site(f.decide("other.org", "/")), "fallback");
}

TEST(CoreDecide, RulesInOrderThenDefault) {
    Fixture f;
    auto d = f.decide("www.example.com", "/static/css/a.css");
    EXPECT_EQ(d.kind, Decision::Kind::store);
    d = f.decide("www.example.com", "/robots.txt");
    EXPECT_EQ(d.kind, Decision::Kind::store);
    d = f.decide("www.example.com", "/api/v1/items?x=1");
    EXPECT_EQ(d.kind, Decision::Kind::forward);
    EXPECT_EQ(d.group, 1);
    d = f.decide("www.example.com", "/index.html");
    EXPECT_EQ(d.kind, Decision::Kind::forward);
    EXPECT_EQ(d.group, 0);
}

TEST(CoreDecide, NoSiteWithoutDefault) {
    auto c = std::make_shared<config::Config>(*sample_config());
    c->sites.pop_back();
    auto snap = core::build_snapshot(c, std::make_shared<core::Endpoints>(), {}, core::all_healthy(*c), 1);
    std::string head = "GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n";
    http::Request r;
    ASSERT_EQ(http::parse_request(head, {}, r), 0);
    core::Visitor v;
    v.path = r.path;
    EXPECT_EQ(core::decide(r, v, *snap).kind, Decision::Kind::no_site);
}
