// Hot reload (SIGHUP or POST /v1/reload): the config file is read and
// validated again; on any error nothing changes and the errors are the
// answer. On success the new config is swapped in as one snapshot: targets
// that stay keep their health, runtime state (maintenance, drains) is kept,
// listeners added or removed open or close, and connections stay up.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <unistd.h>

#include "server/gateway.hpp"

namespace im::server {

namespace asio = boost::asio;
namespace json = boost::json;
using control::ApiAnswer;

namespace {

bool has_listen(const std::vector<Listen>& list, const Listen& l) {
    return std::find(list.begin(), list.end(), l) != list.end();
}

// What a reload cannot change in a running process: said in the answer, never silently ignored.
std::vector<std::string> restart_notes(const config::Config& before, const config::Config& after) {
    std::vector<std::string> notes;
    auto note = [&](bool changed, const char* what) {
        if (changed) notes.push_back(std::string(what) + " changed: takes effect at the next restart");
    };
    note(before.server.workers != after.server.workers, "server.workers");
    note(before.server.access_log != after.server.access_log, "server.access_log");
    note(before.admin.enabled != after.admin.enabled, "the admin section (added or removed)");
    note(!(before.admin.listen == after.admin.listen) || before.admin.unix_socket != after.admin.unix_socket,
         "admin.listen");
    note(before.admin.state_file != after.admin.state_file, "admin.state_file");
    note(before.admin.audit_log != after.admin.audit_log, "admin.audit_log");
    return notes;
}

// A listening socket per worker for every address the new config adds.
// Throws (closing what it opened) when one cannot be opened.
std::vector<std::vector<int>> open_added_listeners(const config::Config& before,
                                                   const config::Config& after, std::size_t workers) {
    std::vector<std::vector<int>> opened(workers);
    const auto old = listen_addresses(before);
    try {
        for (const auto& l : listen_addresses(after)) {
            if (has_listen(old, l)) continue;
            for (auto& fds : opened) fds.push_back(open_listener(l.address));
        }
    } catch (...) {
        for (auto& fds : opened)
            for (int fd : fds) ::close(fd);
        throw;
    }
    return opened;
}

// Where a target of the new config was in the old one, by group name and address.
std::optional<std::pair<std::size_t, std::size_t>> find_target(const config::Config& config,
                                                               const std::string& group,
                                                               const config::Address& target) {
    for (std::size_t g = 0; g < config.target_groups.size(); ++g) {
        if (config.target_groups[g].name != group) continue;
        const auto& targets = config.target_groups[g].targets;
        for (std::size_t t = 0; t < targets.size(); ++t)
            if (targets[t] == target) return std::pair{g, t};
    }
    return std::nullopt;
}

json::array text_array(const std::vector<std::string>& lines) {
    json::array out;
    for (const auto& l : lines) out.push_back(json::value(l));
    return out;
}

}  // namespace

ApiAnswer Gateway::reload(const control::Caller& caller) {
    if (stopping_) return ApiAnswer::error(503, "shutting down: not reloading");
    const auto& file = config_->source;
    auto result = config::load_config_file(file);
    std::vector<std::string> errors;
    for (const auto& e : result.errors) errors.push_back(e.text());
    Loaded loaded;
    if (result.config) {
        loaded = load_dependencies(*result.config);
        errors.insert(errors.end(), loaded.errors.begin(), loaded.errors.end());
    }
    std::vector<std::vector<int>> listeners;
    if (errors.empty()) {
        try {
            listeners = open_added_listeners(*config_, *result.config, workers_.size());
        } catch (const std::exception& e) {
            errors.push_back(file.string() + ": " + e.what());
        }
    }
    if (!errors.empty()) {
        for (const auto& e : errors) spdlog::error("reload refused, still serving the previous config: {}", e);
        metrics_.count_reload(false);
        audit_.append({caller.token, caller.client, "reload.refused", file.string(), generation_,
                       text_array(errors), ""});
        return ApiAnswer{400, json::object{{"error", "the config has errors; still serving the previous one"},
                                           {"errors", text_array(errors)}}};
    }
    auto next = std::make_shared<const config::Config>(std::move(*result.config));
    auto notes = restart_notes(*config_, *next);
    auto before = config_;
    const auto old_generation = generation_;
    adopt_config(next, std::move(loaded));
    swap_listeners(*before, *next, std::move(listeners));
    metrics_.count_reload(true);
    for (const auto& n : notes) spdlog::warn("reload: {}", n);
    spdlog::info("reloaded {} by '{}' from {}: {} sites, {} target groups, generation {}", file.string(),
                 caller.token, caller.client, next->sites.size(), next->target_groups.size(), generation_);
    if (auto err = audit_.append({caller.token, caller.client, "reload", file.string(), old_generation,
                                  generation_, ""});
        !err.empty())
        spdlog::error("{}", err);
    return ApiAnswer{200, json::object{{"generation", generation_},
                                       {"sites", next->sites.size()},
                                       {"target_groups", next->target_groups.size()},
                                       {"notes", text_array(notes)}}};
}

void Gateway::adopt_config(std::shared_ptr<const config::Config> next, Loaded loaded) {
    std::vector<std::vector<health::TargetHealth>> health;
    std::vector<std::vector<TargetInfo>> info;
    for (const auto& g : next->target_groups) {
        auto& states = health.emplace_back();
        auto& infos = info.emplace_back();
        for (const auto& t : g.targets) {
            auto old = find_target(*config_, g.name, t);
            states.push_back(old ? health_[old->first][old->second]
                                 : health::TargetHealth(g.health.healthy_threshold, g.health.unhealthy_threshold));
            states.back().set_thresholds(g.health.healthy_threshold, g.health.unhealthy_threshold);
            infos.push_back(old ? target_info_[old->first][old->second] : TargetInfo{});
        }
    }
    auto load = core::carry_load(*next, config_.get(), current_->load.get());
    health_ = std::move(health);
    target_info_ = std::move(info);
    stores_ = std::move(loaded.stores);
    endpoints_ = std::move(loaded.endpoints);
    tls_ = std::move(loaded.tls);
    config_ = std::move(next);
    ++config_epoch_;  // old checks and watchers see it and stop
    config_since_ = std::time(nullptr);
    for (auto& fd : page_watches_) {
        boost::system::error_code ignored;
        fd->close(ignored);
    }
    page_watches_.clear();
    if (spdlog::get_level() != spdlog::level::from_str(config_->server.log_level))
        spdlog::set_level(spdlog::level::from_str(config_->server.log_level));

    auto view = std::make_shared<core::HealthView>();
    for (const auto& group : health_) {
        auto& flags = view->healthy.emplace_back();
        for (const auto& t : group) flags.push_back(t.healthy() ? 1 : 0);
    }
    auto built = std::const_pointer_cast<core::Snapshot>(
        core::build_snapshot(config_, endpoints_, stores_, std::move(view), ++generation_));
    built->config_epoch = config_epoch_;
    built->tls = tls_;
    built->load = std::move(load);
    built->metrics = metrics_.attach(*config_);  // before publication: workers count at once
    publish(core::with_runtime(*built, std::make_shared<core::RuntimeState>(runtime_), ++generation_));
    alerts_.adopt(current_);  // destinations follow the new config
    start_background_work();
}

void Gateway::swap_listeners(const config::Config& before, const config::Config& after,
                             std::vector<std::vector<int>> opened) {
    std::vector<Listen> added, removed;
    const auto old = listen_addresses(before), now = listen_addresses(after);
    for (const auto& l : now)
        if (!has_listen(old, l)) added.push_back(l);
    for (const auto& l : old)
        if (!has_listen(now, l)) removed.push_back(l);
    for (const auto& l : added) spdlog::info("listening on {}://{}", l.https ? "https" : "http", l.address.text());
    for (const auto& l : removed)
        spdlog::info("no longer listening on {}://{}", l.https ? "https" : "http", l.address.text());
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        asio::post(workers_[i]->io, [w = workers_[i].get(), added, removed, fds = std::move(opened[i])] {
            for (const auto& a : removed) w->remove_listener(a);
            for (std::size_t k = 0; k < added.size(); ++k) {
                try {
                    w->add_listener(added[k], fds[k]);
                } catch (const std::exception& e) {
                    spdlog::error("worker {}: {}", w->index(), e.what());
                }
            }
        });
    }
}

}  // namespace im::server
