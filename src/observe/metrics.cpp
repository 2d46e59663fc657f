// The metrics registry (counters by name, made on the control thread) and the scrape: every
// family summed over the workers, gauges read from the snapshot in force.
#include "observe/metrics.hpp"

#include <optional>

#include "upstream/forward.hpp"

namespace im::observe {

namespace {

constexpr std::string_view kCodes[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

template <class Counters>
std::unique_ptr<Counters[]>& counters_for(
    std::map<std::string, std::unique_ptr<Counters[]>>& by_name, const std::string& name,
    std::size_t workers) {
    auto& slot = by_name[name];
    if (!slot) slot = std::make_unique<Counters[]>(workers);
    return slot;
}

// One counter of a site, summed over the workers.
template <class Read>
std::uint64_t sum(const SiteCounters* per_worker, std::size_t workers, Read read) {
    std::uint64_t total = 0;
    for (std::size_t w = 0; w < workers; ++w) total += read(per_worker[w]).value();
    return total;
}

// The upstream's failures only: a bad body or a client gone is the client's doing.
std::optional<UpstreamFailure> upstream_failure(upstream::Failure f) {
    switch (f) {
        case upstream::Failure::no_target:
            return UpstreamFailure::no_target;
        case upstream::Failure::connect:
            return UpstreamFailure::connect;
        case upstream::Failure::tls:
            return UpstreamFailure::tls;
        case upstream::Failure::reset:
            return UpstreamFailure::reset;
        case upstream::Failure::timeout:
            return UpstreamFailure::timeout;
        case upstream::Failure::bad_response:
            return UpstreamFailure::bad_response;
        default:
            return std::nullopt;
    }
}

}  // namespace

void MetricsView::count_forward(unsigned worker, const core::Decision& d,
                                const upstream::ForwardResult& r, std::uint64_t bytes_in,
                                std::uint64_t bytes_out) const {
    site(worker, d.site).count(RequestAction::forward, r.status, bytes_in, bytes_out);
    auto& g = group(worker, d.group);
    // A response head came back (whatever happened after): its time; else why not.
    if (r.upstream_ms >= 0)
        g.observe_latency(r.upstream_ms / 1000);
    else if (auto reason = upstream_failure(r.failure))
        g.count_failure(*reason);
}

std::string_view action_name(RequestAction action) {
    static constexpr std::string_view kNames[kRequestActions] = {
        "forward", "store",  "page",      "fixed",   "redirect", "maintenance",
        "outage",  "bypass", "not_found", "no_site", "refused"};
    return kNames[static_cast<std::size_t>(action)];
}

RequestAction action_of(core::Decision::Kind kind) {
    using Kind = core::Decision::Kind;
    switch (kind) {
        case Kind::forward:
            return RequestAction::forward;
        case Kind::store:
            return RequestAction::store;
        case Kind::page:
            return RequestAction::page;
        case Kind::fixed:
            return RequestAction::fixed;
        case Kind::redirect:
            return RequestAction::redirect;
        case Kind::maintenance:
            return RequestAction::maintenance;
        case Kind::outage:
            return RequestAction::outage;
        case Kind::bypass_grant:
            return RequestAction::bypass;
        case Kind::not_found:
            return RequestAction::not_found;
        case Kind::no_site:
            return RequestAction::no_site;
    }
    return RequestAction::no_site;
}

std::string_view failure_name(UpstreamFailure failure) {
    static constexpr std::string_view kNames[kUpstreamFailures] = {
        "no_target", "connect", "tls", "reset", "timeout", "bad_response"};
    return kNames[static_cast<std::size_t>(failure)];
}

Metrics::Metrics(std::size_t workers)
    : workers_(workers), unsited_(std::make_unique<SiteCounters[]>(workers)) {}

std::shared_ptr<const MetricsView> Metrics::attach(const config::Config& config) {
    auto view = std::make_shared<MetricsView>();
    view->sites.resize(workers_);
    view->groups.resize(workers_);
    for (const auto& site : config.sites) {
        auto& counters = counters_for(sites_, site.name, workers_);
        for (std::size_t w = 0; w < workers_; ++w) view->sites[w].push_back(&counters[w]);
    }
    for (std::size_t w = 0; w < workers_; ++w) view->sites[w].push_back(&unsited_[w]);
    for (const auto& group : config.target_groups) {
        auto& counters = counters_for(groups_, group.name, workers_);
        for (std::size_t w = 0; w < workers_; ++w) view->groups[w].push_back(&counters[w]);
    }
    return view;
}

void Metrics::observe(const core::Snapshot& snapshot, std::int64_t now) {
    ++observations_;
    for (std::size_t i = 0; i < snapshot.sites.size(); ++i) {
        // How alerts see a site: the same definition of outage, not a second one.
        const bool outage = site_facts(snapshot, i, now, {}).outage;
        auto& f = failover_[snapshot.sites[i].config->name];
        const bool continuing = f.last_seen != 0 && f.last_seen + 1 == observations_;
        if (continuing && f.outage != outage) ++(outage ? f.to_outage : f.recovered);
        f.outage = outage;
        f.last_seen = observations_;
    }
}

std::string Metrics::exposition(const GatewayFacts& facts) const {
    TextExposition out;
    write_requests(out);
    write_upstreams(out);
    if (facts.snapshot) {
        write_targets(out, *facts.snapshot);
        write_sites(out, facts);
    }
    write_process(out, facts);
    return out.take();
}

void Metrics::write_requests(TextExposition& out) const {
    // Every site name ever configured (its counters outlive a reload), then "-".
    std::vector<std::pair<std::string_view, const SiteCounters*>> sites;
    for (const auto& [name, counters] : sites_) sites.emplace_back(name, counters.get());
    sites.emplace_back("-", unsited_.get());
    const char* requests = "intermission_requests_total";
    out.family(requests, "counter",
               "Requests answered, by site, what was done with them (action) and status class "
               "(code). Only combinations that happened are listed.");
    for (auto [site, c] : sites)
        for (std::size_t a = 0; a < kRequestActions; ++a)
            for (std::size_t k = 0; k < kStatusClasses; ++k) {
                auto n = sum(c, workers_, [&](const SiteCounters& s) -> const Counter& {
                    return s.requests[a][k];
                });
                auto action = action_name(static_cast<RequestAction>(a));
                if (n)
                    out.sample(requests, {{"site", site}, {"action", action}, {"code", kCodes[k]}},
                               n);
            }
    out.family("intermission_request_bytes_total", "counter",
               "Bytes received from clients: request heads and bodies (as far as their "
               "Content-Length tells).");
    for (auto [site, c] : sites)
        out.sample("intermission_request_bytes_total", {{"site", site}},
                   sum(c, workers_,
                       [](const SiteCounters& s) -> const Counter& { return s.request_bytes; }));
    out.family("intermission_response_bytes_total", "counter",
               "Response body bytes sent to clients (as the access log counts them).");
    for (auto [site, c] : sites)
        out.sample("intermission_response_bytes_total", {{"site", site}},
                   sum(c, workers_,
                       [](const SiteCounters& s) -> const Counter& { return s.response_bytes; }));
}

void Metrics::write_upstreams(TextExposition& out) const {
    out.family("intermission_upstream_response_seconds", "histogram",
               "Time from the start of a forwarded request to the response head, by target group "
               "(retries included).");
    for (const auto& [group, c] : groups_) {
        std::array<std::uint64_t, kLatencyBuckets> counts{};
        std::uint64_t sum_us = 0;
        for (std::size_t w = 0; w < workers_; ++w) {
            for (std::size_t b = 0; b < kLatencyBuckets; ++b) counts[b] += c[w].latency[b].value();
            sum_us += c[w].latency_sum_us.value();
        }
        out.histogram("intermission_upstream_response_seconds", {{"group", group}}, kLatencyBounds,
                      counts, static_cast<double>(sum_us) / 1e6);
    }
    const char* failures = "intermission_upstream_failures_total";
    out.family(failures, "counter",
               "Forwarded requests that got no response from the target group, by reason "
               "(after retries). Only reasons that happened are listed.");
    for (const auto& [group, c] : groups_)
        for (std::size_t f = 0; f < kUpstreamFailures; ++f) {
            std::uint64_t n = 0;
            for (std::size_t w = 0; w < workers_; ++w) n += c[w].failures[f].value();
            auto reason = failure_name(static_cast<UpstreamFailure>(f));
            if (n) out.sample(failures, {{"group", group}, {"reason", reason}}, n);
        }
}

void Metrics::write_targets(TextExposition& out, const core::Snapshot& s) const {
    const auto& groups = s.config->target_groups;
    auto each_target = [&](const char* name, const char* help, auto value) {
        out.family(name, "gauge", help);
        for (std::size_t g = 0; g < groups.size(); ++g)
            for (std::size_t t = 0; t < groups[g].targets.size(); ++t) {
                const auto target = groups[g].targets[t].text();
                out.sample(name, {{"group", groups[g].name}, {"target", target}},
                           value(static_cast<int>(g), t));
            }
    };
    each_target("intermission_target_healthy", "1 while the health checks say the target is up.",
                [&](int g, std::size_t t) -> std::uint64_t { return s.health->is_healthy(g, t); });
    each_target("intermission_target_drained", "1 while the target is drained through the API.",
                [&](int g, std::size_t t) -> std::uint64_t { return s.is_drained(g, t); });
    each_target("intermission_target_in_flight", "Requests in flight to the target, all workers.",
                [&](int g, std::size_t t) -> std::uint64_t {
                    auto n = (*s.load)[static_cast<std::size_t>(g)][t]->requests.load(
                        std::memory_order_relaxed);
                    return n > 0 ? static_cast<std::uint64_t>(n) : 0;
                });
}

void Metrics::write_sites(TextExposition& out, const GatewayFacts& facts) const {
    const auto& s = *facts.snapshot;
    std::vector<SiteFacts> sites;
    for (std::size_t i = 0; i < s.sites.size(); ++i)
        sites.push_back(site_facts(s, i, facts.now, {}));
    out.family("intermission_maintenance_active", "gauge",
               "1 while the site is in maintenance (config, API switch or a scheduled window).");
    for (std::size_t i = 0; i < sites.size(); ++i)
        out.sample("intermission_maintenance_active", {{"site", s.sites[i].config->name}},
                   std::uint64_t{sites[i].maintenance});
    out.family("intermission_site_outage", "gauge",
               "1 while a target group the site forwards to has no target that takes traffic.");
    for (std::size_t i = 0; i < sites.size(); ++i)
        out.sample("intermission_site_outage", {{"site", s.sites[i].config->name}},
                   std::uint64_t{sites[i].outage});
    const char* transitions = "intermission_failover_transitions_total";
    out.family(transitions, "counter",
               "Times the site went into outage (to=\"outage\") or came back (to=\"recovered\").");
    for (const auto& [site, f] : failover_) {
        out.sample(transitions, {{"site", site}, {"to", "outage"}}, f.to_outage);
        out.sample(transitions, {{"site", site}, {"to", "recovered"}}, f.recovered);
    }
}

void Metrics::write_process(TextExposition& out, const GatewayFacts& facts) const {
    out.family("intermission_client_connections", "gauge", "Open client connections, all workers.");
    out.sample("intermission_client_connections", {}, facts.client_connections);
    out.family("intermission_worker_client_connections", "gauge",
               "Open client connections of one worker (new ones go to the worker with the fewest).");
    for (std::size_t w = 0; w < facts.worker_clients.size(); ++w)
        out.sample("intermission_worker_client_connections", {{"worker", std::to_string(w)}},
                   facts.worker_clients[w]);
    out.family("intermission_config_generation", "gauge",
               "The config in force: 1 at start, one more for each reload that was adopted.");
    out.sample("intermission_config_generation", {}, facts.config_generation);
    out.family("intermission_snapshot_generation", "gauge",
               "The snapshot in force (the admin API's `generation`): one more for each change.");
    out.sample("intermission_snapshot_generation", {},
               facts.snapshot ? facts.snapshot->generation : std::uint64_t{0});
    out.family("intermission_reloads_total", "counter",
               "Config reloads (SIGHUP or POST /v1/reload): adopted (ok) or refused for errors.");
    out.sample("intermission_reloads_total", {{"result", "ok"}}, reloads_ok_);
    out.sample("intermission_reloads_total", {{"result", "refused"}}, reloads_refused_);
    if (facts.alerts) {
        const auto& a = *facts.alerts;
        const char* alerts = "intermission_alerts_total";
        out.family(alerts, "counter",
                   "Alert deliveries: sent, failed after every retry, retried attempts; alerts "
                   "damped by min_interval or dropped because the queue was full.");
        out.sample(alerts, {{"result", "sent"}}, a.sent.load(std::memory_order_relaxed));
        out.sample(alerts, {{"result", "failed"}}, a.failed.load(std::memory_order_relaxed));
        out.sample(alerts, {{"result", "retried"}}, a.retried.load(std::memory_order_relaxed));
        out.sample(alerts, {{"result", "damped"}}, a.damped.load(std::memory_order_relaxed));
        out.sample(alerts, {{"result", "dropped"}}, a.dropped.load(std::memory_order_relaxed));
    }
    out.family("intermission_build_info", "gauge", "Always 1; the labels say which build runs.");
    out.sample("intermission_build_info", {{"version", kBuildVersion}}, std::uint64_t{1});
}

}  // namespace im::observe
