#include "upstream/pool.hpp"

#include <sys/socket.h>

#include <cerrno>

namespace im::upstream {

namespace {

// Nothing to read and not closed: an idle HTTP/1.1 connection the target still
// keeps. A FIN, a reset or unasked-for bytes (a 408 before closing, a TLS
// close_notify) all mean it cannot carry another request.
bool target_keeps_open(Connection& c) {
    char byte;
    ssize_t n = ::recv(c.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::unique_ptr<Connection> TargetPool::take(bool check_open) {
    while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (c->socket.is_open() && (!check_open || target_keeps_open(*c))) return c;
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
    if (table_ && table_->config == next) return;
    const config::Config& config = *next;
    const config::Config* before = table_ ? table_->config.get() : nullptr;
    bool same_shape = before != nullptr && before->target_groups.size() == config.target_groups.size();
    for (std::size_t g = 0; same_shape && g < config.target_groups.size(); ++g)
        same_shape = before->target_groups[g].targets == config.target_groups[g].targets;
    if (same_shape) {
        table_->config = next;
        return;
    }
    auto table = std::make_shared<PoolTable>();
    table->config = next;
    table->cursors.assign(config.target_groups.size(), 0);
    for (const auto& g : config.target_groups) {
        auto& group = table->pools.emplace_back();
        for (std::size_t t = 0; t < g.targets.size(); ++t)
            group.push_back(std::make_shared<TargetPool>());
    }
    table_ = std::move(table);
}

void Pools::close_idle(Clock::time_point now) {
    if (!table_) return;
    for (std::size_t g = 0; g < table_->pools.size(); ++g)
        for (auto& p : table_->pools[g]) p->close_idle(now, table_->config->target_groups[g].pool.idle_timeout);
}

void Pools::close_all() {
    if (!table_) return;
    for (auto& group : table_->pools)
        for (auto& p : group) p->close_all();
}

void Pools::close_idle_where(const std::vector<std::vector<std::uint8_t>>& flags, std::uint8_t flag) {
    if (!table_) return;
    for (std::size_t g = 0; g < table_->pools.size() && g < flags.size(); ++g)
        for (std::size_t t = 0; t < table_->pools[g].size() && t < flags[g].size(); ++t)
            if (flags[g][t] == flag) table_->pools[g][t]->close_all();
}

void Pools::forget_local_failures() {
    if (!table_) return;
    for (auto& group : table_->pools)
        for (auto& p : group) p->down_until = {};
}

}  // namespace im::upstream
