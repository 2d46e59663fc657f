#include "core/decide.hpp"

#include <algorithm>

#include "config/glob.hpp"
#include "core/bypass.hpp"

namespace im::core {
namespace {

bool group_has_healthy_target(const Snapshot& s, int group) {
    const auto& flags = s.health->healthy[static_cast<std::size_t>(group)];
    return std::any_of(flags.begin(), flags.end(), [](std::uint8_t h) { return h != 0; });
}

int pick_group(const Action& action, std::uint32_t roll) {
    if (action.weighted.empty()) return action.group;
    auto point = roll % action.total_weight;
    for (const auto& [group, upto] : action.weighted)
        if (point < upto) return group;
    return action.weighted.back().first;
}

Decision execute_action(const Action& action, int site, const Visitor& visitor, const Snapshot& s) {
    Decision d;
    d.site = site;
    d.action = &action;
    switch (action.kind) {
    case Action::Kind::forward:
        d.group = pick_group(action, visitor.roll);
        // No healthy target: the outage page at once, not a connect attempt.
        d.kind = group_has_healthy_target(s, d.group) ? Decision::Kind::forward
                                                      : Decision::Kind::outage;
        break;
    case Action::Kind::store: {
        const auto& priv = s.sites[static_cast<std::size_t>(site)].private_pages;
        bool hidden = std::find(priv.begin(), priv.end(), visitor.path) != priv.end();
        d.kind = hidden ? Decision::Kind::not_found : Decision::Kind::store;
        break;
    }
    case Action::Kind::page: d.kind = Decision::Kind::page; break;
    case Action::Kind::fixed: d.kind = Decision::Kind::fixed; break;
    case Action::Kind::redirect: d.kind = Decision::Kind::redirect; break;
    }
    return d;
}

std::int64_t retry_after(const config::Maintenance& m, const std::optional<std::int64_t>& until,
                         std::int64_t now) {
    if (until && *until > now) return *until - now;  // counts down to the announced end
    return std::chrono::duration_cast<std::chrono::seconds>(m.retry_after).count();
}

bool in_window(const std::vector<config::Window>& windows, std::int64_t now,
               std::optional<std::int64_t>& until) {
    for (const auto& w : windows) {
        if (now >= w.start && now < w.end) {
            until = w.end;
            return true;
        }
    }
    return false;
}

// The bypass URL: a valid token sets the cookie; anything else is answered
// like any other request during maintenance (a forged token gets the page).
bool is_grant(const config::Bypass& b, const std::string& site, const http::Request& request,
              const Visitor& visitor) {
    if (b.cookie_secret.empty() || visitor.path != b.cookie_path) return false;
    auto token = query_value(request.query, "token");
    return verify_bypass_token(b.cookie_secret, site, token, visitor.now);
}

}  // namespace

bool maintenance_active(const Snapshot& s, std::size_t index, std::int64_t now,
                        std::optional<std::int64_t>& until) {
    const auto& m = s.sites[index].config->maintenance;
    if (in_window(m.windows, now, until)) return true;
    if (const MaintenanceState* state = s.maintenance[index]) {
        if (in_window(state->windows, now, until)) return true;
        until = state->until;
        return state->on;
    }
    until = m.until;
    return m.enabled;
}

Decision decide(const http::Request& request, const Visitor& visitor, const Snapshot& s) {
    int site = s.hosts.find(request.host);
    if (site < 0) return Decision{};
    const auto index = static_cast<std::size_t>(site);
    const SiteView& view = s.sites[index];
    const auto& m = view.config->maintenance;
    const auto& name = view.config->name;
    if (is_grant(m.bypass, name, request, visitor)) return Decision{Decision::Kind::bypass_grant, site};

    std::optional<std::int64_t> until;
    bool bypassed = false;
    if (maintenance_active(s, index, visitor.now, until)) {
        bool allowed = std::any_of(m.allow.begin(), m.allow.end(), [&](const std::string& g) {
            return config::glob_match(g, visitor.path);
        });
        // Crawlers keep their robots.txt: a 503 for it would read as "crawl everything".
        allowed = allowed || (view.serves_robots && visitor.path == "/robots.txt");
        if (allowed && view.store) return Decision{Decision::Kind::store, site};
        bypassed = bypasses(m.bypass, name, request, visitor);
        if (!bypassed) {
            Decision d{Decision::Kind::maintenance, site};
            d.retry_after = retry_after(m, until, visitor.now);
            return d;
        }
    }
    const Action* action = &view.default_action;
    const auto& path = visitor.path;
    const auto& candidates = view.rule_buckets[path.size() > 1 ? static_cast<unsigned char>(path[1]) : 0];
    HeaderNames names;
    for (auto i : candidates) {
        const auto& rule = view.rules[i];
        if (rule.could_match(path) && matches(*rule.match, request, visitor, names)) {
            action = &rule.action;
            break;
        }
    }
    Decision d = execute_action(*action, site, visitor, s);
    d.bypassed = bypassed;
    return d;
}

}  // namespace im::core
