// What a site looks like to an operator (in outage? in maintenance? which windows run?) and
// which alerts take it from one look to the next. Pure functions of the snapshot and time.
#include <algorithm>

#include "config/values.hpp"
#include "core/decide.hpp"
#include "observe/alerts.hpp"

namespace im::observe {

namespace json = boost::json;

namespace {


// One group's targets with their state; `why` gets what keeps each one out of traffic.
json::object group_facts(const core::Snapshot& s, std::size_t g, const TargetErrors& errors,
                         std::string& why) {
    const auto& group = s.config->target_groups[g];
    json::array targets;
    std::size_t serving = 0;
    for (std::size_t t = 0; t < group.targets.size(); ++t) {
        const auto address = group.targets[t].text();
        const bool healthy = s.health->is_healthy(static_cast<int>(g), t);
        const bool drained = s.is_drained(static_cast<int>(g), t);
        std::string error;
        if (auto it = errors.find(core::drain_key(group.name, address));
            !healthy && it != errors.end())
            error = it->second;
        serving += healthy && !drained;
        std::string state = drained ? "drained" : (error.empty() ? "unhealthy" : error);
        if (!healthy || drained) why += (why.empty() ? "" : "; ") + address + ": " + state;
        targets.push_back(json::object{{"address", address},
                                       {"healthy", healthy},
                                       {"drained", drained},
                                       {"last_error", error}});
    }
    return json::object{
        {"name", group.name}, {"serving", serving}, {"targets", std::move(targets)}};
}

json::object maintenance_facts(const core::Snapshot& s, std::size_t index,
                               const std::optional<std::int64_t>& until) {
    const auto& m = s.sites[index].config->maintenance;
    const core::MaintenanceState* api = s.maintenance[index];
    json::object out{{"source", api ? "api" : "config"},
                     {"reason", api ? api->reason : m.reason},
                     {"message", api && !api->message.empty() ? api->message : m.message},
                     {"until", until ? json::value(config::format_timestamp(*until)) : nullptr}};
    if (api) out["who"] = api->who;
    return out;
}

void add_running(const std::vector<config::Window>& windows, const char* source, std::int64_t now,
                 SiteFacts& facts) {
    for (const auto& w : windows) {
        if (now < w.start || now >= w.end) continue;
        facts.windows.push_back(w);
        facts.window_sources.emplace_back(source);
    }
}

json::object window_details(const config::Window& w, const std::string& source) {
    return json::object{{"start", config::format_timestamp(w.start)},
                        {"end", config::format_timestamp(w.end)},
                        {"reason", w.reason},
                        {"source", source}};
}

bool has_window(const SiteFacts& f, const config::Window& w, const std::string& source) {
    for (std::size_t i = 0; i < f.windows.size(); ++i)
        if (f.windows[i] == w && f.window_sources[i] == source) return true;
    return false;
}

Alert start_alert(AlertEvent event, const std::string& site, std::int64_t now) {
    Alert a;
    a.event = event;
    a.site = site;
    a.time = now;
    return a;
}

Alert health_alert(const std::string& site, const SiteFacts& before, const SiteFacts& after,
                   std::int64_t now) {
    Alert a =
        start_alert(after.outage ? AlertEvent::site_down : AlertEvent::site_recovered, site, now);
    a.details = json::object{{"groups", after.groups}, {"maintenance", after.maintenance}};
    if (after.outage) {
        a.reason = after.outage_reason;
        a.message = after.maintenance
                        ? site + " is down (maintenance is on: visitors get the maintenance page)"
                        : site + " is down: visitors get the outage page";
        return a;
    }
    for (const auto& g : before.groups) {
        if (g.at("serving").as_uint64() != 0) continue;
        for (const auto& now_g : after.groups)
            if (now_g.at("name") == g.at("name"))
                a.reason += std::string(a.reason.empty() ? "" : "; ") + "target group '" +
                            std::string(g.at("name").as_string()) +
                            "': " + std::to_string(now_g.at("serving").as_uint64()) +
                            " target(s) take traffic";
    }
    a.message = site + " has recovered: visitors get the site again";
    return a;
}

Alert maintenance_alert(const std::string& site, const SiteFacts& after, std::int64_t now) {
    Alert a = start_alert(
        after.maintenance ? AlertEvent::maintenance_on : AlertEvent::maintenance_off, site, now);
    a.details = after.maintenance_details;
    a.reason = std::string(after.maintenance_details.at("reason").as_string());
    if (after.maintenance)
        a.message = site + " is in maintenance: visitors get the maintenance page";
    else if (after.outage)
        a.message = site + " is out of maintenance, but down: visitors get the outage page";
    else
        a.message = site + " is out of maintenance: visitors get the site again";
    return a;
}

Alert window_alert(const std::string& site, bool start, const config::Window& w,
                   const std::string& source, const SiteFacts& after, std::int64_t now) {
    Alert a = start_alert(start ? AlertEvent::window_start : AlertEvent::window_end, site, now);
    a.reason = w.reason.empty() ? "scheduled maintenance" : w.reason;
    a.details = window_details(w, source);
    if (start) {
        a.message = site + ": scheduled maintenance started until " +
                    config::format_timestamp(w.end) + ": visitors get the maintenance page";
    } else {
        if (now < w.end) a.details["removed_early"] = true;
        a.message =
            site + ": scheduled maintenance ended" +
            (after.maintenance ? " (maintenance stays on)" : ": visitors get the site again");
    }
    return a;
}

}  // namespace

SiteFacts site_facts(const core::Snapshot& s, std::size_t index, std::int64_t now,
                     const TargetErrors& errors) {
    SiteFacts f;
    const auto& site = *s.sites[index].config;
    for (auto g : core::forwarded_groups(*s.config, site)) {
        std::string why;
        auto group = group_facts(s, g, errors, why);
        if (group.at("serving").as_uint64() == 0) {
            f.outage = true;
            f.outage_reason += std::string(f.outage_reason.empty() ? "" : "; ") + "target group '" +
                               s.config->target_groups[g].name + "': no target takes traffic (" +
                               why + ")";
        }
        f.groups.push_back(std::move(group));
    }
    std::optional<std::int64_t> until;
    f.maintenance = core::maintenance_active(s, index, now, until);
    f.maintenance_details = maintenance_facts(s, index, until);
    add_running(site.maintenance.windows, "config", now, f);
    if (const auto* api = s.maintenance[index]) add_running(api->windows, "api", now, f);
    return f;
}

std::vector<Alert> transitions(const std::string& site, const SiteFacts& before,
                               const SiteFacts& after, std::int64_t now) {
    std::vector<Alert> out;
    if (before.outage != after.outage) out.push_back(health_alert(site, before, after, now));
    bool window_changed = false;
    for (std::size_t i = 0; i < before.windows.size(); ++i) {
        if (has_window(after, before.windows[i], before.window_sources[i])) continue;
        out.push_back(
            window_alert(site, false, before.windows[i], before.window_sources[i], after, now));
        window_changed = true;
    }
    for (std::size_t i = 0; i < after.windows.size(); ++i) {
        if (has_window(before, after.windows[i], after.window_sources[i])) continue;
        out.push_back(
            window_alert(site, true, after.windows[i], after.window_sources[i], after, now));
        window_changed = true;
    }
    // A window that starts or ends says it already; the switch itself is news otherwise.
    if (before.maintenance != after.maintenance && !window_changed)
        out.push_back(maintenance_alert(site, after, now));
    return out;
}

std::optional<std::int64_t> next_window_boundary(const std::vector<config::Window>& windows,
                                                 std::int64_t after) {
    std::optional<std::int64_t> next;
    for (const auto& w : windows)
        for (auto t : {w.start, w.end})
            if (t > after && (!next || t < *next)) next = t;
    return next;
}

}  // namespace im::observe
