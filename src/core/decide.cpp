#include "core/decide.hpp"

#include "config/glob.hpp"

namespace im::core {
namespace {

bool rule_matches(const CompiledRule& rule, const http::Request& request) {
    if (rule.paths.empty()) return true;
    for (const auto& glob : rule.paths)
        if (config::glob_match(glob, request.path)) return true;
    return false;
}

Decision to_decision(const Action& action, int site) {
    Decision d;
    d.site = site;
    d.action = &action;
    d.group = action.group;
    switch (action.kind) {
    case Action::Kind::forward: d.kind = Decision::Kind::forward; break;
    case Action::Kind::store: d.kind = Decision::Kind::store; break;
    case Action::Kind::page: d.kind = Decision::Kind::page; break;
    case Action::Kind::fixed: d.kind = Decision::Kind::fixed; break;
    case Action::Kind::redirect: d.kind = Decision::Kind::redirect; break;
    }
    return d;
}

}  // namespace

Decision decide(const http::Request& request, const Snapshot& snapshot) {
    int site = snapshot.hosts.find(request.host);
    if (site < 0) return Decision{};
    const SiteView& view = snapshot.sites[static_cast<std::size_t>(site)];
    for (const auto& rule : view.rules)
        if (rule_matches(rule, request)) return to_decision(rule.action, site);
    return to_decision(view.default_action, site);
}

}  // namespace im::core
