// Prometheus metrics (docs/metrics.md).
//
// The request path never locks and never contends: every worker has its own counters, on
// cache lines no other worker writes, and counting is a relaxed load and store. The scrape
// (GET /metrics, on the control thread) sums them over the workers.
//
// Counters are keyed by name (site, target group) and live as long as the process, so they
// stay monotonic across reloads: the control thread makes them when a config is adopted,
// before the snapshot that points at them is published, and never frees them.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/decide.hpp"
#include "core/snapshot.hpp"
#include "observe/alerts.hpp"

namespace im::upstream {
struct ForwardResult;
}

namespace im::observe {

// What was done with a request: the `action` label of intermission_requests_total.
enum class RequestAction : std::uint8_t {
    forward,
    store,
    page,
    fixed,
    redirect,
    maintenance,
    outage,
    bypass,     // the bypass URL granted the cookie
    not_found,  // a private page asked for by path
    no_site,    // no site for this Host and no default site
    refused,    // a bad request (400, 413, 431): never reached a site
};
inline constexpr std::size_t kRequestActions = 11;
std::string_view action_name(RequestAction action);
RequestAction action_of(core::Decision::Kind kind);

// Why a forwarded request got no response: the `reason` label. The client's own failures
// (a bad body, going away) are not the upstream's and are not counted.
enum class UpstreamFailure : std::uint8_t { no_target, connect, tls, reset, timeout, bad_response };
inline constexpr std::size_t kUpstreamFailures = 6;
std::string_view failure_name(UpstreamFailure failure);

// 1xx .. 5xx; anything outside counts as 5xx.
inline constexpr std::size_t kStatusClasses = 5;
inline std::size_t status_class(int status) {
    int c = status / 100;
    return c >= 1 && c <= 5 ? static_cast<std::size_t>(c - 1) : kStatusClasses - 1;
}

// Upper bounds (seconds) of the upstream response time buckets; +Inf follows the last.
inline constexpr std::array<double, 13> kLatencyBounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                       0.25,  0.5,    1,     2.5,  5,     10};
inline constexpr std::size_t kLatencyBuckets = kLatencyBounds.size() + 1;
// The bucket a time falls in: the first whose bound is >= seconds; the last is +Inf.
inline std::size_t latency_bucket(double seconds) {
    std::size_t i = 0;
    while (i < kLatencyBounds.size() && seconds > kLatencyBounds[i]) ++i;
    return i;
}

// A counter only one thread writes (its worker): a relaxed load and store, no
// read-modify-write, no lock. The control thread reads it while it is written.
class Counter {
  public:
    void add(std::uint64_t n) {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

  private:
    std::atomic<std::uint64_t> value_{0};
};

// One worker's counters for one site (alignas: no cache line shared with another worker).
struct alignas(64) SiteCounters {
    Counter requests[kRequestActions][kStatusClasses];
    Counter request_bytes;   // head + body, as far as known (Content-Length)
    Counter response_bytes;  // body bytes sent, as in the access log
    void count(RequestAction action, int status, std::uint64_t bytes_in, std::uint64_t bytes_out) {
        requests[static_cast<std::size_t>(action)][status_class(status)].add(1);
        request_bytes.add(bytes_in);
        response_bytes.add(bytes_out);
    }
};

// One worker's counters for one target group.
struct alignas(64) GroupCounters {
    Counter latency[kLatencyBuckets];  // per bucket, not cumulative: the scrape adds up
    Counter latency_sum_us;
    Counter failures[kUpstreamFailures];
    void observe_latency(double seconds) {
        latency[latency_bucket(seconds)].add(1);
        latency_sum_us.add(seconds > 0 ? static_cast<std::uint64_t>(seconds * 1e6 + 0.5) : 0);
    }
    void count_failure(UpstreamFailure f) { failures[static_cast<std::size_t>(f)].add(1); }
};

// Where each worker finds its counters, in the snapshot: two indexes, no lookup.
struct MetricsView {
    std::vector<std::vector<SiteCounters*>> sites;    // [worker][site]; last: requests with no site
    std::vector<std::vector<GroupCounters*>> groups;  // [worker][group]
    // site < 0: a request that reached no site (refused, no_site).
    SiteCounters& site(unsigned worker, int site) const {
        const auto& row = sites[worker];
        return *row[site < 0 ? row.size() - 1 : static_cast<std::size_t>(site)];
    }
    GroupCounters& group(unsigned worker, int group) const {
        return *groups[worker][static_cast<std::size_t>(group)];
    }
    // A forwarded request: its site's counters, its group's response time or failure.
    void count_forward(unsigned worker, const core::Decision& d, const upstream::ForwardResult& r,
                       std::uint64_t bytes_in, std::uint64_t bytes_out) const;
};

// The version intermission_build_info reports (the same as `intermission --version`).
inline constexpr std::string_view kBuildVersion = "0.1.0";

// Text exposition format 0.0.4 (metric_text.cpp); pure.
struct Label {
    std::string_view name;
    std::string_view value;
};
std::string escape_label_value(std::string_view value);  // \\, \" and \n
std::string escape_help(std::string_view text);          // \\ and \n
std::string format_value(double value);                  // shortest form; +Inf, -Inf, NaN

class TextExposition {
  public:
    // Starts a family: its HELP and TYPE lines; the samples that follow belong to it.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value);
    void sample(std::string_view name, std::initializer_list<Label> labels, double value);
    // A histogram's samples from per-bucket counts (one per bound, then +Inf): the _bucket
    // lines cumulative with `le` last, then _sum and _count.
    void histogram(std::string_view name, std::initializer_list<Label> labels,
                   std::span<const double> bounds, std::span<const std::uint64_t> counts,
                   double sum);
    const std::string& text() const { return out_; }
    std::string take() { return std::move(out_); }

  private:
    void start_sample(std::string_view name, std::initializer_list<Label> labels,
                      const Label* extra = nullptr);
    std::string out_;
};

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// What the scrape reads from the gateway, on the control thread.
struct GatewayFacts {
    const core::Snapshot* snapshot = nullptr;  // the one in force
    std::int64_t now = 0;                      // UTC seconds, for maintenance windows
    std::uint64_t client_connections = 0;      // summed over the workers
    std::uint64_t config_generation = 0;       // 1 at start, +1 for each config a reload adopts
    const AlertCounters* alerts = nullptr;
    std::vector<std::uint64_t> worker_clients;  // client_connections per worker (index order)
};

// The registry, on the control thread.
class Metrics {
  public:
    explicit Metrics(std::size_t workers);
    // Counters for every site and group of `config` (reusing those of names seen before),
    // to be put in the snapshot before it is published.
    std::shared_ptr<const MetricsView> attach(const config::Config& config);
    // After each publication: counts sites going into and out of outage. A site seen for the
    // first time (start, or added by a reload) starts from how it is.
    void observe(const core::Snapshot& snapshot, std::int64_t now);
    void count_reload(bool ok) { ++(ok ? reloads_ok_ : reloads_refused_); }
    // The text exposition (format 0.0.4).
    std::string exposition(const GatewayFacts& facts) const;

  private:
    struct Failover {
        std::uint64_t last_seen = 0;  // the observation that last saw the site; 0: never
        bool outage = false;
        std::uint64_t to_outage = 0;
        std::uint64_t recovered = 0;
    };
    void write_requests(TextExposition& out) const;
    void write_upstreams(TextExposition& out) const;
    void write_sites(TextExposition& out, const GatewayFacts& facts) const;
    void write_targets(TextExposition& out, const core::Snapshot& s) const;
    void write_process(TextExposition& out, const GatewayFacts& facts) const;

    std::size_t workers_;
    // By name, [worker]. Never freed: a site a reload removes keeps its last values (and is
    // still exported), and one that comes back goes on from them.
    std::map<std::string, std::unique_ptr<SiteCounters[]>> sites_;
    std::unique_ptr<SiteCounters[]> unsited_;  // requests that reached no site: site="-"
    std::map<std::string, std::unique_ptr<GroupCounters[]>> groups_;
    std::map<std::string, Failover> failover_;
    std::uint64_t observations_ = 0;
    std::uint64_t reloads_ok_ = 0;
    std::uint64_t reloads_refused_ = 0;
};

}  // namespace im::observe
