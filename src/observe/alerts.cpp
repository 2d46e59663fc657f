// The control thread's side of alerts: after each publication, what each site looks like is
// compared with what it looked like before; changes become alerts for the delivery thread.
// Windows start and end on their own, so a timer is kept on the next boundary.
#include "observe/alerts.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

namespace im::observe {

namespace {

// Boundaries are re-checked at least this often, so a jump of the wall clock (the steady
// timer does not see it) delays an alert by a minute at most.
constexpr auto kLongestWait = std::chrono::minutes(1);

// The timer is armed from this clock, so it must also say whether a boundary has passed:
// time() reads a coarser clock that can still show the previous second.
std::int64_t wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void Alerts::adopt(const std::shared_ptr<const core::Snapshot>& snapshot) {
    const auto& alerts = snapshot->config->alerts;
    if (alerts.enabled || enabled_) delivery_.configure(alerts);
    const bool was_enabled = enabled_;
    enabled_ = alerts.enabled;
    if (!enabled_) {
        seen_.clear();
        timer_.cancel();
        snapshot_ = snapshot;
        return;
    }
    if (!was_enabled) {
        // Start-up, or alerts just configured: how things are now is news to no one.
        snapshot_ = snapshot;
        const std::int64_t now = wall_ms() / 1000;
        for (std::size_t i = 0; i < snapshot->sites.size(); ++i)
            seen_[snapshot->sites[i].config->name] = site_facts(*snapshot, i, now, errors_);
        arm_timer();
        return;
    }
    observe(snapshot);
}

void Alerts::target_flipped(const std::shared_ptr<const core::Snapshot>& snapshot,
                            const std::string& group, const std::string& target, bool healthy,
                            const std::string& why) {
    const auto key = core::drain_key(group, target);
    if (healthy)
        errors_.erase(key);
    else
        errors_[key] = why;
    observe(snapshot);
}

void Alerts::observe(const std::shared_ptr<const core::Snapshot>& snapshot) {
    snapshot_ = snapshot;
    if (!enabled_) return;
    const std::int64_t now = wall_ms() / 1000;
    std::vector<Alert> alerts;
    std::set<std::string> sites;
    for (std::size_t i = 0; i < snapshot->sites.size(); ++i) {
        const auto& name = snapshot->sites[i].config->name;
        sites.insert(name);
        auto facts = site_facts(*snapshot, i, now, errors_);
        // A site a reload added starts from how it is: no alert for being there.
        if (auto it = seen_.find(name); it != seen_.end()) {
            for (auto& a : transitions(name, it->second, facts, now))
                alerts.push_back(std::move(a));
        }
        seen_[name] = std::move(facts);
    }
    std::erase_if(seen_, [&](const auto& kv) { return !sites.contains(kv.first); });
    delivery_.submit(std::move(alerts));
    arm_timer();
}

void Alerts::arm_timer() {
    std::vector<config::Window> windows;
    const auto& s = *snapshot_;
    for (std::size_t i = 0; i < s.sites.size(); ++i) {
        const auto& own = s.sites[i].config->maintenance.windows;
        windows.insert(windows.end(), own.begin(), own.end());
        if (const auto* api = s.maintenance[i])
            windows.insert(windows.end(), api->windows.begin(), api->windows.end());
    }
    const std::int64_t now_ms = wall_ms();
    auto next = next_window_boundary(windows, now_ms / 1000);
    if (!next) {
        timer_.cancel();
        return;
    }
    auto wait = std::chrono::milliseconds(*next * 1000 - now_ms);
    timer_.expires_after(std::min<std::chrono::milliseconds>(wait, kLongestWait));
    timer_.async_wait([this](const boost::system::error_code& ec) {
        // Cancelled: a newer arm_timer() or stop() took over.
        if (!ec && enabled_) observe(snapshot_);
    });
}

void Alerts::stop() {
    enabled_ = false;
    timer_.cancel();
    delivery_.stop();
}

}  // namespace im::observe
