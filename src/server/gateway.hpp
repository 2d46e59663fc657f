// The process: a control loop (signals, health checks, page-store watching,
// snapshot publication) and the workers it feeds.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/admin.hpp"
#include "control/audit.hpp"
#include "core/snapshot.hpp"
#include "health/state.hpp"
#include "observe/alerts.hpp"
#include "observe/metrics.hpp"
#include "server/worker.hpp"

namespace im::pages {
class Watcher;
}

namespace im::server {

// Loads what a config refers to (page stores, target addresses). Errors
// name the site or target; empty errors means everything loaded.
struct Loaded {
    core::StoreMap stores;
    std::shared_ptr<const core::Endpoints> endpoints;
    std::shared_ptr<const core::TlsView> tls = std::make_shared<core::TlsView>();
    std::vector<std::string> errors;
};
Loaded load_dependencies(const config::Config& config);
// The certificates and upstream TLS contexts of `config`; problems name the file.
std::shared_ptr<const core::TlsView> load_tls(const config::Config& config, std::vector<std::string>& errors);

// What the health checker last saw of a target, for the admin API.
struct TargetInfo {
    std::int64_t last_check = 0;  // UTC seconds; 0 = never
    std::int64_t latency_us = -1;
    std::string last_error;
};

class Gateway : public control::Operations {
public:
    Gateway(std::shared_ptr<const config::Config> config, Loaded loaded, core::RuntimeState runtime);
    ~Gateway() override;
    // Serves until SIGTERM/SIGINT and a graceful drain; returns the exit code.
    int run();

    // The admin API's operations (on the control thread).
    control::ApiAnswer sites() override;
    control::ApiAnswer site(const std::string& name) override;
    control::ApiAnswer maintenance(const std::string& site) override;
    control::ApiAnswer set_maintenance(const std::string& site, const boost::json::value* body,
                                       const control::Caller& caller) override;
    control::ApiAnswer add_window(const std::string& site, const boost::json::value& body,
                                  const control::Caller& caller) override;
    control::ApiAnswer remove_windows(const std::string& site, const control::Caller& caller) override;
    control::ApiAnswer targets() override;
    control::ApiAnswer set_drain(const std::string& group, const std::string& target, bool drain,
                                 const boost::json::value* body, const control::Caller& caller) override;
    control::ApiAnswer reload(const control::Caller& caller) override;
    control::ApiAnswer issue_bypass(const std::string& site, const boost::json::value* body,
                                    const control::Caller& caller) override;
    control::ApiAnswer audit(std::size_t offset, std::size_t limit) override;
    std::string metrics() override;
    const config::Admin& admin() const override { return config_->admin; }
    // Alert deliveries sent, failed, retried (for /metrics; atomics, any thread may read).
    const observe::AlertCounters& alert_counters() const { return alerts_.counters(); }

private:
    boost::json::value maintenance_json(std::size_t site_index) const;
    const config::Site* find_site(const std::string& name) const;
    // Makes `next` durable, publishes it, audits the change; the API's answer.
    control::ApiAnswer commit_runtime(core::RuntimeState next, const std::string& site,
                                      const std::string& action, const std::string& reason,
                                      const control::Caller& caller);
    // Makes `next` durable, then publishes it; an error message, or empty.
    std::string commit_state(core::RuntimeState next, const std::string& target,
                             const std::string& action, const control::Caller& caller);
    boost::json::value target_json(std::size_t group, std::size_t target) const;
    boost::json::array site_groups_json(const config::Site& site) const;
    void start_workers();
    // Health checks and page watchers for the current config; each stops by
    // itself once the config epoch moves on (a reload starts new ones).
    void start_background_work();
    // Swaps in a validated config with what it loaded, keeping the health
    // of targets that stay; publishes the new snapshot.
    void adopt_config(std::shared_ptr<const config::Config> next, Loaded loaded);
    void swap_listeners(const config::Config& before, const config::Config& after,
                        std::vector<std::vector<int>> opened);
    void publish(std::shared_ptr<const core::Snapshot> snapshot);
    void publish_health();
    void on_target_failed(std::uint64_t epoch, int group, std::size_t target, const std::string& why);
    void set_health(int group, std::size_t target, bool healthy, const std::string& why);
    boost::asio::awaitable<void> check_target(std::shared_ptr<const config::Config> config,
                                              std::shared_ptr<const core::Endpoints> endpoints,
                                              std::shared_ptr<const core::TlsView> tls,
                                              std::uint64_t epoch, int group, std::size_t target);
    boost::asio::awaitable<void> passive_recovery(std::uint64_t epoch, int group, std::size_t target);
    boost::asio::awaitable<void> watch_pages(std::shared_ptr<const config::Config> config,
                                             std::uint64_t epoch, std::size_t site,
                                             std::shared_ptr<pages::Watcher> watcher);
    boost::asio::awaitable<void> rotate_ticket_keys(std::shared_ptr<const config::Config> config,
                                                    std::uint64_t epoch);
    boost::asio::awaitable<void> watch_certificates(std::shared_ptr<const config::Config> config,
                                                    std::uint64_t epoch);
    boost::asio::awaitable<void> handle_signals();
    boost::asio::awaitable<void> handle_reload_signals();
    boost::asio::awaitable<void> drain_and_stop();

    boost::asio::io_context control_{1};
    std::shared_ptr<const config::Config> config_;
    core::StoreMap stores_;
    std::shared_ptr<const core::Endpoints> endpoints_;
    std::shared_ptr<const core::TlsView> tls_;
    std::vector<std::vector<health::TargetHealth>> health_;
    std::vector<std::vector<TargetInfo>> target_info_;
    core::RuntimeState runtime_;
    control::AuditLog audit_;
    std::shared_ptr<const core::Snapshot> current_;
    observe::Alerts alerts_{control_};  // told after each publication; sends on its own thread
    std::uint64_t generation_ = 0;
    std::uint64_t config_epoch_ = 1;
    std::int64_t config_since_ = std::time(nullptr);  // when the config in force was loaded
    std::filesystem::path state_file_;  // fixed at start: a reload does not move the state
    observe::Metrics metrics_;  // counters by name: they outlive reloads
    std::vector<std::shared_ptr<boost::asio::posix::stream_descriptor>> page_watches_;
    int access_log_fd_ = -1;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
    bool stopping_ = false;
};

}  // namespace im::server
