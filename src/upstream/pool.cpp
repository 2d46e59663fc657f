#include "upstream/pool.hpp"

namespace im::upstream {

std::unique_ptr<Connection> TargetPool::take() {
    while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (c->socket.is_open()) return c;
    }
    return nullptr;
}

void TargetPool::give_back(std::unique_ptr<Connection> c, Clock::time_point now,
                           std::size_t max_idle) {
    if (!c->socket.is_open() || idle_.size() >= max_idle) return;
    c->idle_since = now;
    idle_.push_back(std::move(c));
}

void TargetPool::close_idle(Clock::time_point now, config::Duration idle_timeout) {
    std::erase_if(idle_, [&](const auto& c) {
        return !c->socket.is_open() || now - c->idle_since >= idle_timeout;
    });
}

void TargetPool::close_all() { idle_.clear(); }

void Pools::adopt(const std::shared_ptr<const config::Config>& next) {
    if (config_ == next) return;
    const config::Config& config = *next;
    bool same_shape = config_ != nullptr && config_->target_groups.size() == config.target_groups.size();
    for (std::size_t g = 0; same_shape && g < config.target_groups.size(); ++g)
        same_shape = config_->target_groups[g].targets == config.target_groups[g].targets;
    config_ = next;
    if (same_shape) return;  // a reload that kept the targets keeps the warm connections
    pools_.clear();
    cursors_.assign(config.target_groups.size(), 0);
    for (const auto& g : config.target_groups) {
        auto& group = pools_.emplace_back();
        for (std::size_t t = 0; t < g.targets.size(); ++t)
            group.push_back(std::make_shared<TargetPool>());
    }
}

void Pools::close_idle(Clock::time_point now) {
    if (config_ == nullptr) return;
    for (std::size_t g = 0; g < pools_.size(); ++g)
        for (auto& p : pools_[g]) p->close_idle(now, config_->target_groups[g].pool.idle_timeout);
}

void Pools::close_all() {
    for (auto& group : pools_)
        for (auto& p : group) p->close_all();
}

}  // namespace im::upstream

namespace im::upstream {

void Pools::forget_local_failures() {
    for (auto& group : pools_)
        for (auto& p : group) p->down_until = {};
}

}  // namespace im::upstream
