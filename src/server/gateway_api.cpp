// The gateway's side of the admin API: reads of the live state and the
// maintenance switch, which is made durable and audited before it is
// acknowledged, then published to every worker.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <ctime>

#include "config/values.hpp"
#include "control/state.hpp"
#include "core/bypass.hpp"
#include "core/decide.hpp"
#include "server/gateway.hpp"

namespace im::server {

namespace json = boost::json;
using control::ApiAnswer;

namespace {

json::value timestamp(std::optional<std::int64_t> t) {
    if (!t) return nullptr;
    return json::value(config::format_timestamp(*t));
}

json::array windows_json(const std::vector<config::Window>& windows) {
    json::array out;
    for (const auto& w : windows)
        out.push_back(json::object{{"start", config::format_timestamp(w.start)},
                                   {"end", config::format_timestamp(w.end)},
                                   {"reason", w.reason}});
    return out;
}

// "until" as RFC 3339 text or UTC seconds.
std::optional<std::int64_t> parse_until(const json::value& v, std::string& error) {
    if (v.is_int64()) return v.as_int64();
    if (v.is_string()) {
        auto t = config::parse_timestamp(std::string(v.as_string()));
        if (t) return *t.value;
        error = "bad 'until': " + t.expected;
        return std::nullopt;
    }
    error = "bad 'until': expected an RFC 3339 time like 2026-11-24T03:00:00Z";
    return std::nullopt;
}

std::string string_field(const json::object& o, const char* key, std::string& error) {
    auto it = o.find(key);
    if (it == o.end() || it->value().is_null()) return {};
    if (!it->value().is_string()) {
        error = std::string("bad '") + key + "': expected a string";
        return {};
    }
    return std::string(it->value().as_string());
}

}  // namespace

const config::Site* Gateway::find_site(const std::string& name) const {
    for (const auto& s : config_->sites)
        if (s.name == name) return &s;
    return nullptr;
}

json::value Gateway::maintenance_json(std::size_t index) const {
    const auto& site = config_->sites[index];
    const auto& m = site.maintenance;
    std::int64_t now = std::time(nullptr);
    std::optional<std::int64_t> until;
    bool on = core::maintenance_active(*current_, index, now, until);
    json::object out{{"site", site.name}, {"on", on}};
    json::object declared{{"enabled", m.enabled}, {"reason", m.reason}, {"message", m.message},
                          {"until", timestamp(m.until)}, {"windows", windows_json(m.windows)}};
    // Maintenance switched on by the config: who is the config file, since when it was loaded.
    declared["who"] = m.enabled ? json::value("config " + config_->source.string()) : json::value(nullptr);
    declared["started_at"] = m.enabled ? timestamp(config_since_) : json::value(nullptr);
    json::value runtime = nullptr;
    if (auto it = runtime_.maintenance.find(site.name); it != runtime_.maintenance.end()) {
        const auto& r = it->second;
        runtime = json::object{{"on", r.on},
                               {"reason", r.reason},
                               {"message", r.message},
                               {"who", r.who},
                               {"started_at", timestamp(r.started_at ? std::optional(r.started_at) : std::nullopt)},
                               {"until", timestamp(r.until)},
                               {"windows", windows_json(r.windows)}};
    }
    // Which one decides now: runtime state set through the API wins over the
    // config until an operator clears it (DELETE), so a reload never undoes it.
    out["source"] = runtime.is_null() ? "config" : "api";
    out["until"] = timestamp(until);
    out["config"] = std::move(declared);
    out["runtime"] = std::move(runtime);
    return out;
}

// The target groups a site forwards to, each with how many targets take traffic now.
json::array Gateway::site_groups_json(const config::Site& site) const {
    json::array out;
    for (std::size_t g : core::forwarded_groups(*config_, site)) {
        const auto& group = config_->target_groups[g];
        std::size_t healthy = 0, serving = 0;
        for (std::size_t t = 0; t < group.targets.size(); ++t) {
            bool up = health_[g][t].healthy();
            healthy += up;
            serving += up && !current_->is_drained(static_cast<int>(g), t);
        }
        out.push_back(json::object{{"name", group.name}, {"targets", group.targets.size()},
                                   {"healthy", healthy}, {"serving", serving}});
    }
    return out;
}

ApiAnswer Gateway::sites() {
    static constexpr const char* kActions[] = {"forward", "store", "page", "fixed", "redirect"};
    json::array list;
    for (std::size_t i = 0; i < config_->sites.size(); ++i) {
        const auto& s = config_->sites[i];
        json::array hosts;
        for (const auto& h : s.hosts) hosts.push_back(json::value(h));
        auto groups = site_groups_json(s);
        // Outage: a group the site forwards to has no target to take a request.
        bool outage = std::any_of(groups.begin(), groups.end(),
                                  [](const json::value& g) { return g.at("serving").as_uint64() == 0; });
        list.push_back(json::object{{"name", s.name}, {"hosts", std::move(hosts)},
                                    {"default", s.default_site}, {"pages", s.pages.has_value()},
                                    {"rules", s.rules.size()},
                                    {"default_action", kActions[static_cast<int>(s.default_action.kind)]},
                                    {"target_groups", std::move(groups)}, {"outage", outage},
                                    {"maintenance", maintenance_json(i)}});
    }
    return ApiAnswer{200, json::object{{"sites", std::move(list)}, {"generation", generation_}}};
}

ApiAnswer Gateway::site(const std::string& name) {
    for (std::size_t i = 0; i < config_->sites.size(); ++i) {
        if (config_->sites[i].name != name) continue;
        auto all = sites();
        return ApiAnswer{200, all.body.as_object()["sites"].as_array()[i]};
    }
    return ApiAnswer::error(404, "no site named '" + name + "'");
}

ApiAnswer Gateway::maintenance(const std::string& name) {
    for (std::size_t i = 0; i < config_->sites.size(); ++i)
        if (config_->sites[i].name == name) return ApiAnswer{200, maintenance_json(i)};
    return ApiAnswer::error(404, "no site named '" + name + "'");
}

ApiAnswer Gateway::set_maintenance(const std::string& name, const json::value* body,
                                   const control::Caller& caller) {
    const config::Site* site = find_site(name);
    if (!site) return ApiAnswer::error(404, "no site named '" + name + "'");
    core::RuntimeState next = runtime_;
    std::string action = "maintenance.clear";
    std::string reason;
    if (body) {
        const auto& o = body->as_object();
        auto on = o.find("on");
        if (on == o.end() || !on->value().is_bool())
            return ApiAnswer::error(400, "missing 'on': expected true or false");
        std::string error;
        core::MaintenanceState state;
        state.on = on->value().as_bool();
        state.reason = string_field(o, "reason", error);
        state.message = string_field(o, "message", error);
        if (auto u = o.find("until"); u != o.end() && !u->value().is_null())
            state.until = parse_until(u->value(), error);
        if (!error.empty()) return ApiAnswer::error(400, error);
        for (const auto& [key, value] : o)
            if (key != "on" && key != "reason" && key != "message" && key != "until")
                return ApiAnswer::error(400, "unknown field '" + std::string(key) +
                                                 "' (expected on, reason, message, until)");
        state.who = caller.token;
        auto old = runtime_.maintenance.find(name);
        bool was_on = old != runtime_.maintenance.end() && old->second.on;
        state.started_at = state.on ? (was_on ? old->second.started_at : std::time(nullptr)) : 0;
        if (old != runtime_.maintenance.end()) state.windows = old->second.windows;
        reason = state.reason;
        action = state.on ? "maintenance.on" : "maintenance.off";
        next.maintenance[name] = std::move(state);
    } else {
        next.maintenance.erase(name);
    }
    return commit_runtime(std::move(next), name, action, reason, caller);
}

std::string Gateway::commit_state(core::RuntimeState next, const std::string& target,
                                  const std::string& action, const control::Caller& caller) {
    // Durable first: an acknowledged change survives a crash.
    if (auto err = control::save_state(state_file_, next); !err.empty()) {
        spdlog::error("'{}': {} not applied: {}", target, action, err);
        return "the change was not applied: " + err;
    }
    runtime_ = std::move(next);
    publish(core::with_runtime(*current_, std::make_shared<core::RuntimeState>(runtime_), ++generation_));
    spdlog::info("'{}': {} by '{}' from {}", target, action, caller.token, caller.client);
    alerts_.observe(current_);  // maintenance, windows or drains may have changed what visitors get
    return {};
}

ApiAnswer Gateway::commit_runtime(core::RuntimeState next, const std::string& name,
                                  const std::string& action, const std::string& reason,
                                  const control::Caller& caller) {
    auto before = maintenance(name).body;
    if (auto err = commit_state(std::move(next), name, action, caller); !err.empty())
        return ApiAnswer::error(500, err);
    auto after = maintenance(name).body;
    if (auto err = audit_.append({caller.token, caller.client, action, name, before, after, reason}); !err.empty())
        spdlog::error("{}", err);
    auto answer = after.as_object();
    answer["generation"] = generation_;
    return ApiAnswer{200, std::move(answer)};
}

ApiAnswer Gateway::add_window(const std::string& name, const json::value& body,
                              const control::Caller& caller) {
    if (!find_site(name)) return ApiAnswer::error(404, "no site named '" + name + "'");
    const auto& o = body.as_object();
    std::string error;
    config::Window w;
    for (const char* key : {"start", "end"}) {
        auto it = o.find(key);
        if (it == o.end()) return ApiAnswer::error(400, std::string("missing '") + key + "': expected an RFC 3339 time");
        auto t = parse_until(it->value(), error);
        if (!t) return ApiAnswer::error(400, std::string("bad '") + key + "'" + error.substr(error.find(':')));
        (std::string_view(key) == "start" ? w.start : w.end) = *t;
    }
    w.reason = string_field(o, "reason", error);
    if (!error.empty()) return ApiAnswer::error(400, error);
    if (w.end <= w.start) return ApiAnswer::error(400, "the window's end must be after its start");
    if (w.end <= std::time(nullptr)) return ApiAnswer::error(400, "the window has already ended");
    for (const auto& [key, value] : o)
        if (key != "start" && key != "end" && key != "reason")
            return ApiAnswer::error(400, "unknown field '" + std::string(key) + "' (expected start, end, reason)");
    core::RuntimeState next = runtime_;
    auto [it, inserted] = next.maintenance.try_emplace(name);
    if (inserted) {
        // A schedule alone does not switch maintenance on now: keep the config's switch.
        const auto* site = find_site(name);
        it->second.on = site->maintenance.enabled;
        it->second.until = site->maintenance.until;
    }
    it->second.windows.push_back(w);
    return commit_runtime(std::move(next), name, "maintenance.schedule", w.reason, caller);
}

ApiAnswer Gateway::remove_windows(const std::string& name, const control::Caller& caller) {
    if (!find_site(name)) return ApiAnswer::error(404, "no site named '" + name + "'");
    core::RuntimeState next = runtime_;
    if (auto it = next.maintenance.find(name); it != next.maintenance.end()) it->second.windows.clear();
    return commit_runtime(std::move(next), name, "maintenance.unschedule", "", caller);
}

json::value Gateway::target_json(std::size_t g, std::size_t t) const {
    const auto& group = config_->target_groups[g];
    const auto& h = health_[g][t];
    const auto& info = target_info_[g][t];
    const auto address = group.targets[t].text();
    json::value drain = nullptr;
    if (auto it = runtime_.drained.find(core::drain_key(group.name, address)); it != runtime_.drained.end())
        drain = json::object{{"reason", it->second.reason}, {"who", it->second.who},
                             {"since", config::format_timestamp(it->second.since)}};
    return json::object{
        {"group", group.name},
        {"address", address},
        {"state", h.healthy() ? "healthy" : "unhealthy"},
        {"drained", !drain.is_null()},
        {"drain", std::move(drain)},
        {"in_flight", (*current_->load)[g][t]->requests.load(std::memory_order_relaxed)},
        {"last_check", timestamp(info.last_check ? std::optional(info.last_check) : std::nullopt)},
        {"latency_ms", info.latency_us < 0 ? json::value(nullptr) : json::value(info.latency_us / 1000.0)},
        {"consecutive_failures", h.consecutive_failures()},
        {"consecutive_successes", h.consecutive_successes()},
        {"last_error", info.last_error}};
}

ApiAnswer Gateway::targets() {
    json::array groups;
    for (std::size_t g = 0; g < config_->target_groups.size(); ++g) {
        const auto& group = config_->target_groups[g];
        json::array list;
        for (std::size_t t = 0; t < group.targets.size(); ++t) list.push_back(target_json(g, t));
        groups.push_back(json::object{{"name", group.name},
                                      {"health_checks", group.health.enabled},
                                      {"targets", std::move(list)}});
    }
    return ApiAnswer{200, json::object{{"target_groups", std::move(groups)}}};
}

ApiAnswer Gateway::set_drain(const std::string& group_name, const std::string& target,
                             bool drain, const json::value* body, const control::Caller& caller) {
    std::optional<std::pair<std::size_t, std::size_t>> where;
    for (std::size_t g = 0; g < config_->target_groups.size(); ++g) {
        const auto& group = config_->target_groups[g];
        if (group.name != group_name) continue;
        for (std::size_t t = 0; t < group.targets.size(); ++t)
            if (group.targets[t].text() == target) where = std::pair{g, t};
        if (!where)
            return ApiAnswer::error(404, "target group '" + group_name + "' has no target '" + target + "'");
    }
    if (!where) return ApiAnswer::error(404, "no target group named '" + group_name + "'");
    std::string reason, error;
    if (body) {
        const auto& o = body->as_object();
        reason = string_field(o, "reason", error);
        for (const auto& [key, value] : o)
            if (key != "reason") error = "unknown field '" + std::string(key) + "' (expected reason)";
        if (!error.empty()) return ApiAnswer::error(400, error);
    }
    const auto key = core::drain_key(group_name, target);
    auto before = target_json(where->first, where->second);
    core::RuntimeState next = runtime_;
    if (drain) next.drained[key] = core::DrainState{reason, caller.token, std::time(nullptr)};
    else next.drained.erase(key);
    const std::string action = drain ? "target.drain" : "target.undrain";
    if (auto err = commit_state(std::move(next), key, action, caller); !err.empty())
        return ApiAnswer::error(500, err);
    auto after = target_json(where->first, where->second);
    if (auto err = audit_.append({caller.token, caller.client, action, key, before, after, reason}); !err.empty())
        spdlog::error("{}", err);
    auto answer = after.as_object();
    answer["generation"] = generation_;
    return ApiAnswer{200, std::move(answer)};
}

ApiAnswer Gateway::audit(std::size_t offset, std::size_t limit) {
    json::array entries;
    for (auto& e : audit_.read(offset, limit)) entries.push_back(std::move(e));
    return ApiAnswer{200, json::object{{"entries", std::move(entries)}, {"offset", offset}, {"limit", limit}}};
}

}  // namespace im::server

namespace im::server {

// An operator's preview of the real site during maintenance: a signed token
// for the site's bypass URL, valid for `ttl` (default: the cookie's ttl, at most 24 h).
ApiAnswer Gateway::issue_bypass(const std::string& name, const json::value* body,
                                const control::Caller& caller) {
    const config::Site* site = find_site(name);
    if (!site) return ApiAnswer::error(404, "no site named '" + name + "'");
    const auto& bypass = site->maintenance.bypass;
    if (bypass.cookie_secret.empty())
        return ApiAnswer::error(409, "site '" + name + "' has no bypass cookie (set maintenance.bypass.cookie.secret_file)");
    auto ttl = std::chrono::duration_cast<std::chrono::seconds>(bypass.cookie_ttl);
    if (body) {
        const auto& o = body->as_object();
        for (const auto& [key, value] : o) {
            if (key != "ttl") return ApiAnswer::error(400, "unknown field '" + std::string(key) + "' (expected ttl)");
            auto d = value.is_string() ? config::parse_duration(std::string(value.as_string()))
                                       : config::Parsed<config::Duration>{};
            if (!d || *d.value <= config::Duration::zero() || *d.value > std::chrono::hours(24))
                return ApiAnswer::error(400, "bad 'ttl': expected a duration up to 24h, e.g. \"30m\"");
            ttl = std::chrono::duration_cast<std::chrono::seconds>(*d.value);
        }
    }
    const std::int64_t expires = std::time(nullptr) + ttl.count();
    const auto token = core::make_bypass_token(bypass.cookie_secret, name, expires);
    // The token is a secret: the audit log records that one was issued, and until when.
    json::object record{{"expires", config::format_timestamp(expires)}};
    if (auto err = audit_.append({caller.token, caller.client, "bypass.issue", name, nullptr, record, ""}); !err.empty())
        spdlog::error("{}", err);
    spdlog::info("site '{}': bypass token issued to '{}' from {}, valid until {}", name, caller.token,
                 caller.client, config::format_timestamp(expires));
    return ApiAnswer{200, json::object{{"site", name},
                                       {"token", token},
                                       {"path", bypass.cookie_path + "?token=" + token},
                                       {"expires", config::format_timestamp(expires)}}};
}

}  // namespace im::server
