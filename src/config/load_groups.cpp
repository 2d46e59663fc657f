// The `target_groups` section: upstream targets, balancing, health checks, pools, timeouts.
#include <algorithm>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

void read_targets(Reader& r, const Entry& entry, TargetGroup& group) {
    auto list = r.items(entry);
    if (!list) return;
    if (list->empty())
        r.error(entry, "expected at least one target for " + in_quotes(entry.path) +
                           ", e.g. [\"127.0.0.1:9000\"]");
    std::vector<int> lines;
    for (const auto& item : *list) {
        // "https://host:port": TLS to that target (verified as the group's `tls` says).
        auto address = r.address(item, true);
        if (!address) continue;
        const auto dup = std::find(group.targets.begin(), group.targets.end(), *address);
        if (dup != group.targets.end()) {
            r.error(item, "duplicate target '" + address->text() + "' in target group '" +
                              group.name + "' (first defined at line " +
                              std::to_string(lines[dup - group.targets.begin()]) + ")");
            continue;
        }
        group.targets.push_back(*address);
        group.target_positions.push_back(Reader::position(item));
        lines.push_back(Reader::line(item));
    }
}

void read_balance(Reader& r, const Entry& entry, Balance& balance) {
    auto s = r.scalar(entry, "a balancing method");
    if (!s) return;
    if (*s == "round_robin")
        balance = Balance::round_robin;
    else if (*s == "least_outstanding")
        balance = Balance::least_outstanding;
    else
        r.error(entry, "bad balancing method '" + *s + "' for " + in_quotes(entry.path) +
                           " (expected one of: round_robin, least_outstanding)");
}

void read_expect(Reader& r, const Entry& entry, std::vector<StatusRange>& expect) {
    auto list = r.scalars(entry, true, "a status or a status range (e.g. 200 or \"200-399\")");
    if (!list) return;
    if (list->empty()) {
        r.error(entry, "expected at least one status for " + in_quotes(entry.path));
        return;
    }
    std::vector<StatusRange> ranges;
    for (const auto& item : *list) {
        auto range = parse_status_range(item.value.Scalar());
        if (range)
            ranges.push_back(*range.value);
        else
            r.error(item, "bad status range '" + item.value.Scalar() + "' for " +
                              in_quotes(item.path) + " (" + range.expected + ")");
    }
    if (ranges.size() == list->size()) expect = std::move(ranges);
}

void read_path(Reader& r, const Entry& entry, std::string& path) {
    auto s = r.scalar(entry, "a request path");
    if (!s) return;
    if (s->empty() || s->front() != '/')
        r.error(entry, "bad path '" + *s + "' for " + in_quotes(entry.path) +
                           " (expected a path starting with '/', e.g. /healthz)");
    else
        path = *s;
}

void check_health_timeout(Reader& r, const HealthCheck& h, const std::optional<Entry>& interval,
                          const std::optional<Entry>& timeout) {
    if (h.timeout <= h.interval) return;
    const Entry& at = timeout ? *timeout : *interval;
    r.error(at, "health check timeout " + format_duration(h.timeout) + " for " +
                    in_quotes(at.path) + " must not exceed the interval " +
                    format_duration(h.interval) + " (a check must finish before the next starts)");
}

void read_health(Reader& r, const Entry& entry, HealthCheck& h) {
    h.enabled = true;
    std::optional<Entry> interval, timeout;
    r.fields(entry, {
                        {"path", [&](const Entry& e) { read_path(r, e, h.path); }},
                        {"expect", [&](const Entry& e) { read_expect(r, e, h.expect); }},
                        {"interval",
                         [&](const Entry& e) {
                             interval = e;
                             r.duration(e, h.interval);
                         }},
                        {"timeout",
                         [&](const Entry& e) {
                             timeout = e;
                             r.duration(e, h.timeout);
                         }},
                        {"healthy_threshold",
                         [&](const Entry& e) { r.integer(e, h.healthy_threshold, 1, 100); }},
                        {"unhealthy_threshold",
                         [&](const Entry& e) { r.integer(e, h.unhealthy_threshold, 1, 100); }},
                        {"host", [&](const Entry& e) { r.text(e, h.host); }},
                        {"passive_cooldown",
                         [&](const Entry& e) { r.duration(e, h.passive_cooldown, true); }},
                    });
    if (interval || timeout) check_health_timeout(r, h, interval, timeout);
}

void read_pool(Reader& r, const Entry& entry, Pool& pool) {
    r.fields(entry,
             {
                 {"max_idle", [&](const Entry& e) { r.integer(e, pool.max_idle, 0, 1000000); }},
                 {"max_connections",
                  [&](const Entry& e) { r.integer(e, pool.max_connections, 0, 1000000); }},
                 {"idle_timeout", [&](const Entry& e) { r.duration(e, pool.idle_timeout); }},
             });
}

void read_upstream_timeouts(Reader& r, const Entry& entry, UpstreamTimeouts& t) {
    r.fields(entry,
             {
                 {"connect", [&](const Entry& e) { r.duration(e, t.connect); }},
                 {"response_header", [&](const Entry& e) { r.duration(e, t.response_header); }},
                 {"idle", [&](const Entry& e) { r.duration(e, t.idle); }},
                 {"tunnel", [&](const Entry& e) { r.duration(e, t.tunnel); }},
             });
}

void read_group(Reader& r, const Entry& entry, TargetGroup& g) {
    bool have_targets = false;
    const std::string context = "target group '" + g.name + "'";
    const bool is_map = r.fields(
        entry,
        {
            {"targets",
             [&](const Entry& e) {
                 have_targets = true;
                 read_targets(r, e, g);
             }},
            {"balance", [&](const Entry& e) { read_balance(r, e, g.balance); }},
            {"retries", [&](const Entry& e) { r.integer(e, g.retries, 0, 10); }},
            {"health", [&](const Entry& e) { read_health(r, e, g.health); }},
            {"pool", [&](const Entry& e) { read_pool(r, e, g.pool); }},
            {"timeouts", [&](const Entry& e) { read_upstream_timeouts(r, e, g.timeouts); }},
            {"tls", [&](const Entry& e) { read_upstream_tls(r, e, g.tls); }},
        },
        context);
    if (is_map && !have_targets)
        r.error_at_key(entry, "missing required key 'targets' in " + context +
                                  " (expected a list of host:port, e.g. [\"127.0.0.1:9000\"])");
}

}  // namespace

void read_target_groups(Reader& r, const Entry& entry, std::vector<TargetGroup>& groups) {
    if (entry.value.IsNull()) return;
    if (!entry.value.IsMap()) {
        r.error(entry, "expected a map of group name to target group for 'target_groups', got " +
                           describe(entry.value));
        return;
    }
    std::vector<int> lines;
    for (const auto& kv : entry.value) {
        const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : "";
        Entry group{kv.first, kv.second, "target_groups." + name};
        const auto dup = std::find_if(groups.begin(), groups.end(),
                                      [&](const TargetGroup& g) { return g.name == name; });
        if (!kv.first.IsScalar()) {
            r.error_at_key(group, "expected a target group name, got " + describe(kv.first));
        } else if (!is_valid_name(name)) {
            r.error_at_key(group, "bad target group name '" + name +
                                      "' (expected letters, digits, '_', '.' or '-')");
        } else if (dup != groups.end()) {
            r.error_at_key(group, "duplicate target group '" + name + "' (first defined at line " +
                                      std::to_string(lines[dup - groups.begin()]) + ")");
        } else {
            groups.emplace_back().name = name;
            lines.push_back(Reader::line(group));
            read_group(r, group, groups.back());
        }
    }
}

}  // namespace im::config::detail
