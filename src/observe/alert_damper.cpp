// Flap damping: a target that comes and goes every few seconds must not send an e-mail each
// time, and the last word must always reach the operator. Per site and topic, the first alert
// goes at once; alerts within min_interval of it are held, each replacing the previous one;
// when the interval ends the held one goes, unless it says what was last sent.
#include <spdlog/spdlog.h>

#include "observe/alerts.hpp"

namespace im::observe {

namespace {

// Alerts of one topic replace each other; nullopt: never held (windows are planned).
std::optional<std::string_view> topic_of(AlertEvent event) {
    switch (event) {
        case AlertEvent::site_down:
        case AlertEvent::site_recovered:
            return "health";
        case AlertEvent::maintenance_on:
        case AlertEvent::maintenance_off:
            return "maintenance";
        default:
            return std::nullopt;
    }
}

}  // namespace

std::optional<Alert> Damper::offer(Alert alert, Time now) {
    auto topic = topic_of(alert.event);
    if (!topic) return alert;
    auto [it, first] = topics_.try_emplace(alert.site + "/" + std::string(*topic));
    Topic& t = it->second;
    if (!first && (t.held || now - t.last_sent < interval_)) {
        if (t.held) ++dropped_;  // replaced before it was sent
        t.held = std::move(alert);
        ++t.held_count;
        return std::nullopt;
    }
    t.last_sent = now;
    t.last_event = alert.event;
    return alert;
}

std::vector<Alert> Damper::release(Time now) {
    std::vector<Alert> out;
    for (auto& [key, t] : topics_) {
        if (!t.held || now - t.last_sent < interval_) continue;
        if (t.held->event == t.last_event) {
            // It flapped and came back: the operator already has the current state.
            spdlog::info(
                "alerts: site '{}': {} alert(s) held back by min_interval; the state is "
                "again {} as last sent",
                t.held->site, t.held_count, event_name(t.last_event));
            ++dropped_;
        } else {
            if (t.held_count > 1) t.held->details["held_back"] = t.held_count - 1;
            t.last_sent = now;
            t.last_event = t.held->event;
            out.push_back(std::move(*t.held));
        }
        t.held.reset();
        t.held_count = 0;
    }
    return out;
}

std::optional<Damper::Time> Damper::next_release() const {
    std::optional<Time> next;
    for (const auto& [key, t] : topics_) {
        if (!t.held) continue;
        auto at = t.last_sent + interval_;
        if (!next || at < *next) next = at;
    }
    return next;
}

}  // namespace im::observe
