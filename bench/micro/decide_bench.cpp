// decide() with 1 rule and with 100 rules: the cost of a long rule list on
// the request path, for three shapes of rule list:
//   other_prefix  path rules starting with another byte than the request's
//                 path (the index skips them all: the best case)
//   same_prefix   path rules sharing the request's first path byte (each one's
//                 glob runs: the worst case for path rules)
//   header        rules with no path, a header condition only (every rule is
//                 considered for every request)
// The request matches none of them. Run: build/release/decide_bench
#include <benchmark/benchmark.h>

#include <string>

#include "core/decide.hpp"

using namespace im;

namespace {

enum Shape { other_prefix, same_prefix, header };

std::shared_ptr<const core::Snapshot> snapshot_with_rules(int n, Shape shape) {
    auto c = std::make_shared<config::Config>();
    config::TargetGroup g;
    g.name = "app";
    g.targets = {{"127.0.0.1", 9000}};
    c->target_groups.push_back(g);
    config::Site site;
    site.name = "www";
    site.default_site = true;
    site.default_action = config::Action::of(config::Action::Kind::forward, "app");
    for (int i = 0; i < n; ++i) {
        config::Rule r;
        const auto id = std::to_string(i);
        if (shape == other_prefix) r.match.paths = {"/section" + id + "/*"};
        if (shape == same_prefix) r.match.paths = {"/catalog-" + id + "/*"};
        if (shape == header) r.match.headers = {config::HeaderMatch{"x-canary", {"group-" + id}}};
        r.match.methods = {"GET"};
        r.action = config::Action::of(config::Action::Kind::forward, "app");
        site.rules.push_back(r);
    }
    c->sites.push_back(site);
    return core::build_snapshot(c, std::make_shared<core::Endpoints>(), {}, core::all_healthy(*c), 1);
}

void decide_with_rules(benchmark::State& state) {
    auto snap = snapshot_with_rules(static_cast<int>(state.range(1)), static_cast<Shape>(state.range(0)));
    std::string head = "GET /catalog/item/42?x=1 HTTP/1.1\r\nHost: www.example.com\r\nAccept: */*\r\n\r\n";
    http::Request r;
    http::parse_request(head, {}, r);
    core::Visitor v;
    v.path = r.path;
    for (auto _ : state) benchmark::DoNotOptimize(core::decide(r, v, *snap));
}

void parse_request_head(benchmark::State& state) {
    std::string head =
        "GET /catalog/item/42?x=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: wrk\r\n"
        "Accept: */*\r\nAccept-Encoding: gzip, br\r\nConnection: keep-alive\r\n\r\n";
    http::Request r;
    for (auto _ : state) benchmark::DoNotOptimize(http::parse_request(head, {}, r));
}

}  // namespace

BENCHMARK(decide_with_rules)
    ->ArgNames({"shape", "rules"})
    ->ArgsProduct({{other_prefix, same_prefix, header}, {1, 100}});
BENCHMARK(parse_request_head);
BENCHMARK_MAIN();
