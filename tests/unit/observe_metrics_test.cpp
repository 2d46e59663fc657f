// Metrics: the text exposition (escaping, values, family layout, histogram cumulation), the
// buckets and status classes requests fall in, counters that outlive reloads, and failover
// transitions counted from published snapshots.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "observe/metrics.hpp"
#include "upstream/forward.hpp"

using namespace im;
using observe::Label;
using observe::RequestAction;
using observe::TextExposition;

namespace {

config::Action forward(const std::string& group) {
    config::Action a;
    a.kind = config::Action::Kind::forward;
    a.target_group = group;
    return a;
}

std::shared_ptr<const config::Config> two_sites(std::vector<std::string> sites = {"www", "shop"}) {
    auto c = std::make_shared<config::Config>();
    config::TargetGroup g;
    g.name = "app";
    g.targets.push_back({"127.0.0.1", 9000});
    g.targets.push_back({"127.0.0.1", 9001});
    c->target_groups.push_back(g);
    for (const auto& name : sites) {
        config::Site s;
        s.name = name;
        s.hosts = {name + ".example.com"};
        s.default_action = forward("app");
        c->sites.push_back(s);
    }
    return c;
}

std::shared_ptr<const core::Snapshot> snapshot_of(std::shared_ptr<const config::Config> c,
                                                  observe::Metrics& metrics) {
    auto s = std::const_pointer_cast<core::Snapshot>(
        core::build_snapshot(c, std::make_shared<core::Endpoints>(), {}, core::all_healthy(*c), 1));
    s->metrics = metrics.attach(*c);
    return s;
}

// The value of the one sample line that starts with `series` (name and labels), or -1.
double value_of(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    return -1;
}

double requests(const std::string& text, const std::string& site, const std::string& action,
                const std::string& code) {
    return value_of(text, "intermission_requests_total{site=\"" + site + "\",action=\"" + action +
                              "\",code=\"" + code + "\"}");
}

// The family a sample belongs to: its name without a histogram suffix when the family is one.
std::string family_of(const std::string& sample, const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (sample.size() > s.size() && sample.ends_with(s)) {
            auto base = sample.substr(0, sample.size() - s.size());
            if (auto it = types.find(base); it != types.end() && it->second == "histogram")
                return base;
        }
    }
    return sample;
}

// Every sample follows the HELP and TYPE of its family, and a family's samples are together.
void expect_well_formed(const std::string& text) {
    std::istringstream in(text);
    std::map<std::string, std::string> types;
    std::set<std::string> helped, done;
    std::string current;
    for (std::string line; std::getline(in, line);) {
        ASSERT_FALSE(line.empty());
        std::istringstream words(line);
        std::string first, name, type;
        words >> first;
        if (first == "#") {
            words >> type >> name;  // "HELP name" or "TYPE name"
            if (type == "HELP") {
                EXPECT_TRUE(helped.insert(name).second) << "two HELP lines for " << name;
                if (!current.empty()) done.insert(current);
                current = name;
            } else {
                ASSERT_EQ(type, "TYPE");
                EXPECT_EQ(name, current) << "TYPE without its HELP first";
                words >> types[name];
            }
            continue;
        }
        auto sample = first.substr(0, first.find('{'));
        auto family = family_of(sample, types);
        EXPECT_EQ(family, current) << line;
        EXPECT_FALSE(done.contains(family)) << "family split: " << line;
    }
}

}  // namespace

TEST(MetricText, EscapesLabelValuesAndHelp) {
    EXPECT_EQ(observe::escape_label_value("plain"), "plain");
    EXPECT_EQ(observe::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    EXPECT_EQ(observe::escape_help("one \\ two\nthree \"quoted\""),
              "one \\\\ two\\nthree \"quoted\"");
}

TEST(MetricText, FormatsValues) {
    EXPECT_EQ(observe::format_value(0.001), "0.001");
    EXPECT_EQ(observe::format_value(0.0025), "0.0025");
    EXPECT_EQ(observe::format_value(1), "1");
    EXPECT_EQ(observe::format_value(2.5), "2.5");
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(observe::format_value(inf), "+Inf");
    EXPECT_EQ(observe::format_value(-inf), "-Inf");
    EXPECT_EQ(observe::format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricText, FamilyThenSamples) {
    TextExposition out;
    out.family("x_total", "counter", "Things.\nMore");
    out.sample("x_total", {{"site", "www"}, {"code", "2xx"}}, std::uint64_t{3});
    out.sample("x_total", {{"site", "a\"b"}}, std::uint64_t{0});
    out.family("y", "gauge", "A gauge.");
    out.sample("y", {}, 1.5);
    EXPECT_EQ(out.text(),
              "# HELP x_total Things.\\nMore\n"
              "# TYPE x_total counter\n"
              "x_total{site=\"www\",code=\"2xx\"} 3\n"
              "x_total{site=\"a\\\"b\"} 0\n"
              "# HELP y A gauge.\n"
              "# TYPE y gauge\n"
              "y 1.5\n");
    expect_well_formed(out.text());
}

TEST(MetricText, HistogramBucketsAreCumulative) {
    TextExposition out;
    const double bounds[] = {0.1, 1};
    const std::uint64_t counts[] = {2, 3, 1};  // <= 0.1, <= 1, above
    out.family("t_seconds", "histogram", "Times.");
    out.histogram("t_seconds", {{"group", "app"}}, bounds, counts, 4.25);
    EXPECT_EQ(out.text(),
              "# HELP t_seconds Times.\n"
              "# TYPE t_seconds histogram\n"
              "t_seconds_bucket{group=\"app\",le=\"0.1\"} 2\n"
              "t_seconds_bucket{group=\"app\",le=\"1\"} 5\n"
              "t_seconds_bucket{group=\"app\",le=\"+Inf\"} 6\n"
              "t_seconds_sum{group=\"app\"} 4.25\n"
              "t_seconds_count{group=\"app\"} 6\n");
    expect_well_formed(out.text());
}

TEST(MetricCounters, BucketsIncludeTheirBound) {
    EXPECT_EQ(observe::latency_bucket(0), 0u);
    EXPECT_EQ(observe::latency_bucket(0.001), 0u);  // le="0.001" counts 0.001
    EXPECT_EQ(observe::latency_bucket(0.0011), 1u);
    EXPECT_EQ(observe::latency_bucket(0.3), 8u);  // le="0.5"
    EXPECT_EQ(observe::latency_bucket(10), 12u);
    EXPECT_EQ(observe::latency_bucket(11), 13u);  // +Inf
}

TEST(MetricCounters, StatusClasses) {
    EXPECT_EQ(observe::status_class(101), 0u);
    EXPECT_EQ(observe::status_class(200), 1u);
    EXPECT_EQ(observe::status_class(304), 2u);
    EXPECT_EQ(observe::status_class(404), 3u);
    EXPECT_EQ(observe::status_class(503), 4u);
    EXPECT_EQ(observe::status_class(0), 4u);  // no status is a failure
    EXPECT_EQ(observe::status_class(999), 4u);
}

TEST(MetricCounters, ActionsNamedAfterDecisions) {
    using Kind = core::Decision::Kind;
    EXPECT_EQ(observe::action_name(observe::action_of(Kind::bypass_grant)), "bypass");
    EXPECT_EQ(observe::action_name(observe::action_of(Kind::not_found)), "not_found");
    EXPECT_EQ(observe::action_name(observe::action_of(Kind::no_site)), "no_site");
    EXPECT_EQ(observe::action_name(RequestAction::refused), "refused");
}

TEST(MetricRegistry, SumsWorkersAndLayoutIsWellFormed) {
    observe::Metrics metrics(2);
    auto s = snapshot_of(two_sites(), metrics);
    const auto& view = *s->metrics;
    view.site(0, 0).count(RequestAction::forward, 200, 100, 1000);
    view.site(1, 0).count(RequestAction::forward, 204, 50, 0);
    view.site(1, 1).count(RequestAction::maintenance, 503, 10, 20);
    view.site(0, -1).count(RequestAction::refused, 400, 7, 0);
    upstream::ForwardResult r;
    r.status = 200;
    r.upstream_ms = 3;  // 0.003 s: the 0.005 bucket
    core::Decision d;
    d.site = 0;
    d.group = 0;
    view.count_forward(1, d, r, 0, 0);
    r.upstream_ms = -1;
    r.status = 502;  // as the session answered the failure
    r.failure = upstream::Failure::connect;
    view.count_forward(0, d, r, 0, 0);
    r.failure = upstream::Failure::client_gone;  // the client's doing: no upstream failure
    view.count_forward(0, d, r, 0, 0);

    observe::GatewayFacts facts{s.get(), 0, 3, 1, nullptr, {1, 2}};
    auto text = metrics.exposition(facts);
    expect_well_formed(text);
    EXPECT_EQ(requests(text, "www", "forward", "2xx"), 3);
    EXPECT_EQ(requests(text, "www", "forward", "5xx"), 2);
    EXPECT_EQ(requests(text, "shop", "maintenance", "5xx"), 1);
    EXPECT_EQ(requests(text, "-", "refused", "4xx"), 1);
    EXPECT_EQ(requests(text, "shop", "forward", "2xx"), -1);
    EXPECT_EQ(value_of(text, "intermission_request_bytes_total{site=\"www\"}"), 150);
    EXPECT_EQ(value_of(text, "intermission_response_bytes_total{site=\"www\"}"), 1000);
    EXPECT_EQ(
        value_of(text,
                 "intermission_upstream_response_seconds_bucket{group=\"app\",le=\"0.0025\"}"),
        0);
    EXPECT_EQ(
        value_of(text, "intermission_upstream_response_seconds_bucket{group=\"app\",le=\"0.005\"}"),
        1);
    EXPECT_EQ(
        value_of(text, "intermission_upstream_response_seconds_bucket{group=\"app\",le=\"+Inf\"}"),
        1);
    EXPECT_EQ(value_of(text, "intermission_upstream_response_seconds_count{group=\"app\"}"), 1);
    EXPECT_DOUBLE_EQ(value_of(text, "intermission_upstream_response_seconds_sum{group=\"app\"}"),
                     0.003);
    EXPECT_EQ(
        value_of(text, "intermission_upstream_failures_total{group=\"app\",reason=\"connect\"}"),
        1);
    EXPECT_EQ(text.find("reason=\"client_gone\""), std::string::npos);
    EXPECT_EQ(
        value_of(text, "intermission_target_healthy{group=\"app\",target=\"127.0.0.1:9001\"}"), 1);
    EXPECT_EQ(
        value_of(text, "intermission_target_drained{group=\"app\",target=\"127.0.0.1:9000\"}"), 0);
    EXPECT_EQ(value_of(text, "intermission_client_connections"), 3);
    EXPECT_EQ(value_of(text, "intermission_worker_client_connections{worker=\"0\"}"), 1);
    EXPECT_EQ(value_of(text, "intermission_worker_client_connections{worker=\"1\"}"), 2);
    EXPECT_EQ(value_of(text, "intermission_build_info{version=\"0.1.0\"}"), 1);
}

TEST(MetricRegistry, CountersOutliveAReload) {
    observe::Metrics metrics(1);
    auto before = snapshot_of(two_sites({"www", "shop"}), metrics);
    before->metrics->site(0, 1).count(RequestAction::store, 200, 1, 1);  // shop
    // The reload reorders the sites and removes www: shop keeps its counters.
    auto after = snapshot_of(two_sites({"blog", "shop"}), metrics);
    EXPECT_EQ(&after->metrics->site(0, 1), &before->metrics->site(0, 1));
    after->metrics->site(0, 1).count(RequestAction::store, 200, 1, 1);
    metrics.count_reload(true);
    metrics.count_reload(false);
    auto text = metrics.exposition({after.get(), 0, 0, 2, nullptr, {}});
    EXPECT_EQ(requests(text, "shop", "store", "2xx"), 2);
    EXPECT_EQ(value_of(text, "intermission_request_bytes_total{site=\"www\"}"), 0);  // kept
    EXPECT_EQ(value_of(text, "intermission_request_bytes_total{site=\"blog\"}"), 0);
    EXPECT_EQ(value_of(text, "intermission_maintenance_active{site=\"www\"}"),
              -1);  // gauges: now only
    EXPECT_EQ(value_of(text, "intermission_reloads_total{result=\"ok\"}"), 1);
    EXPECT_EQ(value_of(text, "intermission_reloads_total{result=\"refused\"}"), 1);
    EXPECT_EQ(value_of(text, "intermission_config_generation"), 2);
}

TEST(MetricRegistry, CountsFailoverTransitions) {
    observe::Metrics metrics(1);
    auto up = snapshot_of(two_sites({"www"}), metrics);
    metrics.observe(*up, 0);  // start: how it is, not a transition
    auto none = std::make_shared<core::HealthView>();
    none->healthy = {{0, 0}};
    auto down = core::with_health(*up, none, 2);
    metrics.observe(*down, 0);
    metrics.observe(*down, 0);  // another publication, still down: no new transition
    auto text = metrics.exposition({down.get(), 0, 0, 1, nullptr, {}});
    EXPECT_EQ(value_of(text, "intermission_site_outage{site=\"www\"}"), 1);
    EXPECT_EQ(value_of(text, "intermission_failover_transitions_total{site=\"www\",to=\"outage\"}"),
              1);
    EXPECT_EQ(
        value_of(text, "intermission_failover_transitions_total{site=\"www\",to=\"recovered\"}"),
        0);
    auto one = std::make_shared<core::HealthView>();
    one->healthy = {{0, 1}};
    metrics.observe(*core::with_health(*up, one, 3), 0);
    text = metrics.exposition({up.get(), 0, 0, 1, nullptr, {}});
    EXPECT_EQ(value_of(text, "intermission_site_outage{site=\"www\"}"), 0);
    EXPECT_EQ(
        value_of(text, "intermission_failover_transitions_total{site=\"www\",to=\"recovered\"}"),
        1);
}

TEST(MetricRegistry, ASiteAddedInOutageIsNotATransition) {
    observe::Metrics metrics(1);
    auto c = two_sites({"www"});
    auto s = snapshot_of(c, metrics);
    metrics.observe(*s, 0);
    auto none = std::make_shared<core::HealthView>();
    none->healthy = {{0, 0}};
    auto grown = snapshot_of(two_sites({"www", "shop"}), metrics);
    metrics.observe(*core::with_health(*grown, none, 2), 0);
    auto text = metrics.exposition({grown.get(), 0, 0, 1, nullptr, {}});
    EXPECT_EQ(value_of(text, "intermission_failover_transitions_total{site=\"www\",to=\"outage\"}"),
              1);
    EXPECT_EQ(
        value_of(text, "intermission_failover_transitions_total{site=\"shop\",to=\"outage\"}"), 0);
}
