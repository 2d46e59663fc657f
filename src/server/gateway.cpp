#include "server/gateway.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <initializer_list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "health/probe.hpp"
#include "tls/certificates.hpp"
#include "pages/watch.hpp"

namespace im::server {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// `serve` blocks SIGHUP, SIGTERM and SIGINT before any thread starts (src/main.cpp), so
// none can kill the process with its default action while it starts. Each is unblocked
// here, on the control thread, once the signal_set that handles it exists: asio's sigaction
// handler is in place, and a signal that was pending is delivered at once (the signal_set
// counts it until the next async_wait). The worker threads keep them blocked.
void set_signal_mask(int how, std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : signals) sigaddset(&set, sig);
    if (int err = pthread_sigmask(how, &set, nullptr); err != 0)
        spdlog::error("pthread_sigmask: {}", std::strerror(err));
}

pages::StoreOptions store_options(const config::PageStore& p) {
    pages::StoreOptions o;
    o.root = p.root;
    o.index = p.index;
    o.cache_control = p.cache_control;
    for (const auto& rule : p.cache_control_paths) o.cache_control_paths.emplace_back(rule.path, rule.value);
    o.compress = p.compress;
    return o;
}

// Opens the access log once; workers share the descriptor (O_APPEND).
int open_access_log(const std::string& where) {
    if (where == "off") return -1;
    if (where == "stderr") return STDERR_FILENO;
    if (where == "stdout") return STDOUT_FILENO;
    int fd = ::open(where.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open access log " + where + ": " + std::strerror(errno));
    return fd;
}

// Fixed at start (a reload cannot change it): metrics keep a counter set per worker.
unsigned worker_count(const config::Config& config) {
    unsigned n = config.server.workers;
    return n != 0 ? n : std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

Loaded load_dependencies(const config::Config& config) {
    Loaded out;
    for (const auto& site : config.sites) {
        if (!site.pages) continue;
        auto result = pages::Store::load(store_options(*site.pages));
        for (const auto& w : result.warnings) spdlog::warn("site '{}': {}", site.name, w);
        for (const auto& e : result.errors)
            out.errors.push_back(config::where(config.source, site.pages->root_position) + "site '" + site.name +
                                 "': " + e);
        if (result.store) out.stores.emplace(site.name, result.store);
    }
    auto endpoints = std::make_shared<core::Endpoints>();
    asio::io_context io;
    tcp::resolver resolver(io);
    for (const auto& group : config.target_groups) {
        auto& resolved = endpoints->emplace_back();
        for (std::size_t t = 0; t < group.targets.size(); ++t) {
            const auto& target = group.targets[t];
            boost::system::error_code ec;
            auto results = resolver.resolve(target.host, std::to_string(target.port), ec);
            if (ec || results.empty()) {
                auto at = t < group.target_positions.size() ? group.target_positions[t] : config::Position{};
                out.errors.push_back(config::where(config.source, at) + "target group '" + group.name +
                                     "': cannot resolve '" + target.text() + "': " + ec.message());
                resolved.emplace_back();
            } else {
                resolved.push_back(results.begin()->endpoint());
            }
        }
    }
    out.endpoints = std::move(endpoints);
    out.tls = load_tls(config, out.errors);
    return out;
}

std::shared_ptr<const core::TlsView> load_tls(const config::Config& config, std::vector<std::string>& errors) {
    auto view = std::make_shared<core::TlsView>();
    if (config.tls.enabled) {
        auto loaded = tls::CertificateStore::load(config.tls, config.source, config.server.http2.enabled);
        errors.insert(errors.end(), loaded.errors.begin(), loaded.errors.end());
        view->certificates = std::move(loaded.store);
    }
    for (const auto& g : config.target_groups) {
        auto& context = view->upstream.emplace_back();
        if (std::none_of(g.targets.begin(), g.targets.end(), [](const config::Address& a) { return a.tls; })) continue;
        auto made = tls::make_upstream_context(g.tls);
        if (!made.context)
            errors.push_back(config::where(config.source, g.tls.position) + "target group '" + g.name + "': " +
                             made.error);
        context = std::move(made.context);
    }
    return view;
}

Gateway::Gateway(std::shared_ptr<const config::Config> config, Loaded loaded,
                 core::RuntimeState runtime)
    : config_(std::move(config)), stores_(std::move(loaded.stores)),
      endpoints_(std::move(loaded.endpoints)), tls_(std::move(loaded.tls)), runtime_(std::move(runtime)),
      audit_(config_->admin.audit_log), state_file_(config_->admin.state_file),
      metrics_(worker_count(*config_)) {
    for (const auto& g : config_->target_groups) {
        health_.emplace_back(g.targets.size(), health::TargetHealth(g.health.healthy_threshold,
                                                                    g.health.unhealthy_threshold));
        target_info_.emplace_back(g.targets.size());
    }
    access_log_fd_ = open_access_log(config_->server.access_log);
    auto snapshot = core::build_snapshot(config_, endpoints_, stores_, core::all_healthy(*config_),
                                         ++generation_);
    std::const_pointer_cast<core::Snapshot>(snapshot)->config_epoch = config_epoch_;
    std::const_pointer_cast<core::Snapshot>(snapshot)->tls = tls_;
    std::const_pointer_cast<core::Snapshot>(snapshot)->metrics = metrics_.attach(*config_);
    current_ = core::with_runtime(*snapshot, std::make_shared<core::RuntimeState>(runtime_),
                                  ++generation_);
    alerts_.adopt(current_);
    metrics_.observe(*current_, std::time(nullptr));  // how sites start: not a transition
}

Gateway::~Gateway() {
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    if (access_log_fd_ > STDERR_FILENO) ::close(access_log_fd_);
}

void Gateway::start_workers() {
    const unsigned n = worker_count(*config_);
    for (unsigned i = 0; i < n; ++i) {
        WorkerEvents events;
        events.target_failed = [this](std::uint64_t epoch, int group, std::size_t target,
                                      std::string_view why) {
            asio::post(control_, [this, epoch, group, target, why = std::string(why)] {
                on_target_failed(epoch, group, target, why);
            });
        };
        auto w = std::make_unique<Worker>(i, access_log_fd_, std::move(events));
        for (const auto& l : listen_addresses(*config_)) w->add_listener(l, open_listener(l.address));
        w->publish(current_);
        workers_.push_back(std::move(w));
    }
    std::vector<Worker*> all;
    for (auto& w : workers_) all.push_back(w.get());
    for (auto& w : workers_) w->set_workers(all);
    for (auto& w : workers_) threads_.emplace_back([w = w.get()] { w->run(); });
}

void Gateway::publish(std::shared_ptr<const core::Snapshot> snapshot) {
    current_ = std::move(snapshot);
    for (auto& w : workers_)
        asio::post(w->io, [w = w.get(), s = current_] { w->publish(s); });
    metrics_.observe(*current_, std::time(nullptr));  // every change passes here: failovers too
}

std::string Gateway::metrics() {
    observe::GatewayFacts facts;
    facts.snapshot = current_.get();
    facts.now = std::time(nullptr);
    for (const auto& w : workers_) {
        facts.worker_clients.push_back(w->clients.load(std::memory_order_relaxed));
        facts.client_connections += facts.worker_clients.back();
    }
    facts.config_generation = config_epoch_;
    facts.alerts = &alerts_.counters();
    return metrics_.exposition(facts);
}

void Gateway::publish_health() {
    auto view = std::make_shared<core::HealthView>();
    for (const auto& group : health_) {
        auto& flags = view->healthy.emplace_back();
        for (const auto& t : group) flags.push_back(t.healthy() ? 1 : 0);
    }
    publish(core::with_health(*current_, std::move(view), ++generation_));
}

void Gateway::set_health(int group, std::size_t target, bool healthy, const std::string& why) {
    const auto& g = config_->target_groups[static_cast<std::size_t>(group)];
    if (healthy) spdlog::info("target group '{}': target {} is healthy again", g.name, g.targets[target].text());
    else spdlog::warn("target group '{}': target {} is down: {}", g.name, g.targets[target].text(), why);
    publish_health();
    alerts_.target_flipped(current_, g.name, g.targets[target].text(), healthy, why);
}

void Gateway::on_target_failed(std::uint64_t epoch, int group, std::size_t target,
                               const std::string& why) {
    if (epoch != config_epoch_) return;  // seen under a config since replaced: indexes differ
    auto& state = health_[static_cast<std::size_t>(group)][target];
    if (!state.record_passive_failure()) return;
    set_health(group, target, false, why + " (seen on live traffic)");
    if (!config_->target_groups[static_cast<std::size_t>(group)].health.enabled)
        asio::co_spawn(control_, passive_recovery(epoch, group, target), asio::detached);
}

asio::awaitable<void> Gateway::passive_recovery(std::uint64_t epoch, int group, std::size_t target) {
    const auto& g = config_->target_groups[static_cast<std::size_t>(group)];
    asio::steady_timer timer(control_, g.health.passive_cooldown);
    co_await timer.async_wait(nothrow);
    if (stopping_ || epoch != config_epoch_) co_return;
    if (health_[static_cast<std::size_t>(group)][target].force_healthy())
        set_health(group, target, true, "passive cooldown over");
}

asio::awaitable<void> Gateway::check_target(std::shared_ptr<const config::Config> config,
                                            std::shared_ptr<const core::Endpoints> endpoints,
                                            std::shared_ptr<const core::TlsView> tls,
                                            std::uint64_t epoch, int group, std::size_t target) {
    const auto& g = config->target_groups[static_cast<std::size_t>(group)];
    const auto& endpoint = (*endpoints)[static_cast<std::size_t>(group)][target];
    const auto text = g.targets[target].text();
    asio::steady_timer timer(control_);
    while (!stopping_ && epoch == config_epoch_) {
        auto result = co_await health::probe(endpoint, g.targets[target], g, tls->upstream[static_cast<std::size_t>(group)].get());
        if (stopping_ || epoch != config_epoch_) co_return;  // a reload replaced this check
        auto& info = target_info_[static_cast<std::size_t>(group)][target];
        info.last_check = std::time(nullptr);
        info.latency_us = result.latency.count();
        info.last_error = result.error;
        auto& state = health_[static_cast<std::size_t>(group)][target];
        if (state.record_check(result.ok)) set_health(group, target, state.healthy(), result.error);
        timer.expires_after(g.health.interval);
        co_await timer.async_wait(nothrow);
    }
}

asio::awaitable<void> Gateway::watch_pages(std::shared_ptr<const config::Config> config,
                                           std::uint64_t epoch, std::size_t index,
                                           std::shared_ptr<pages::Watcher> watcher) {
    const config::Site* conf = &config->sites[index];
    const std::string& site = conf->name;
    auto fd = std::make_shared<asio::posix::stream_descriptor>(control_, ::dup(watcher->fd()));
    page_watches_.push_back(fd);  // a reload closes it, which ends this loop
    asio::steady_timer settle(control_);
    while (!stopping_ && epoch == config_epoch_) {
        auto [ec] = co_await fd->async_wait(asio::posix::stream_descriptor::wait_read, nothrow);
        if (ec || epoch != config_epoch_) co_return;
        if (!watcher->drain()) continue;
        // A deploy writes many files: wait for the burst to end, then load once.
        settle.expires_after(std::chrono::milliseconds(150));
        co_await settle.async_wait(nothrow);
        if (epoch != config_epoch_) co_return;
        watcher->drain();
        auto result = pages::Store::load(store_options(*conf->pages));
        if (!result.store) {
            for (const auto& e : result.errors)
                spdlog::error("site '{}': page store not reloaded, still serving the previous one: {}", site, e);
            continue;
        }
        stores_[site] = result.store;
        spdlog::info("site '{}': page store reloaded ({} files)", site, result.store->file_count());
        publish(core::with_store(*current_, site, result.store, ++generation_));
    }
}

asio::awaitable<void> Gateway::handle_reload_signals() {
    asio::signal_set signals(control_, SIGHUP);
    if (stopping_) co_return;  // an early SIGTERM got here first: drain_and_stop blocked it
    set_signal_mask(SIG_UNBLOCK, {SIGHUP});  // armed: an early SIGHUP is a reload now
    while (!stopping_) {
        auto [ec, sig] = co_await signals.async_wait(nothrow);
        if (ec || stopping_) co_return;
        spdlog::info("SIGHUP: reloading {}", config_->source.string());
        reload(control::Caller{"signal", "SIGHUP"});
    }
}

asio::awaitable<void> Gateway::handle_signals() {
    asio::signal_set signals(control_, SIGTERM, SIGINT);
    set_signal_mask(SIG_UNBLOCK, {SIGTERM, SIGINT});  // armed: an early SIGTERM drains now
    auto [ec, sig] = co_await signals.async_wait(nothrow);
    if (ec) co_return;
    spdlog::info("signal {}: draining (up to {} ms), then exiting", sig,
                 config_->server.drain_timeout.count());
    co_await drain_and_stop();
}

asio::awaitable<void> Gateway::drain_and_stop() {
    stopping_ = true;
    // Blocked again for the rest of the process's life: the signal_sets end with the drain
    // (asio then restores the default actions), so a second SIGTERM or a SIGHUP while
    // draining or exiting stays pending and is dropped at exit, instead of killing the process.
    set_signal_mask(SIG_BLOCK, {SIGHUP, SIGTERM, SIGINT});
    for (auto& w : workers_) asio::post(w->io, [w = w.get()] { w->begin_drain(); });
    auto deadline = Clock::now() + config_->server.drain_timeout;
    asio::steady_timer timer(control_);
    while (Clock::now() < deadline) {
        std::size_t open = 0;
        for (auto& w : workers_) open += w->clients.load();
        if (open == 0) break;
        timer.expires_after(std::chrono::milliseconds(20));
        co_await timer.async_wait(nothrow);
    }
    for (auto& w : workers_) asio::post(w->io, [w = w.get()] { w->stop(); });
    control_.stop();
}

void Gateway::start_background_work() {
    for (std::size_t g = 0; g < config_->target_groups.size(); ++g) {
        if (!config_->target_groups[g].health.enabled) continue;
        for (std::size_t t = 0; t < config_->target_groups[g].targets.size(); ++t)
            asio::co_spawn(control_, check_target(config_, endpoints_, tls_, config_epoch_, static_cast<int>(g), t),
                           asio::detached);
    }
    for (std::size_t i = 0; i < config_->sites.size(); ++i) {
        const auto& site = config_->sites[i];
        if (!site.pages || !site.pages->watch) continue;
        // Watched now, not when the loop first runs: a change made as soon as the
        // gateway answers must not be missed.
        std::string error;
        std::shared_ptr<pages::Watcher> watcher = pages::Watcher::create(site.pages->root, error);
        if (!watcher) {
            spdlog::warn("site '{}': not watching the page store for changes: {}", site.name, error);
            continue;
        }
        asio::co_spawn(control_, watch_pages(config_, config_epoch_, i, std::move(watcher)), asio::detached);
    }
    if (config_->tls.enabled && config_->tls.session_tickets)
        asio::co_spawn(control_, rotate_ticket_keys(config_, config_epoch_), asio::detached);
    if (config_->tls.enabled && config_->tls.watch)
        asio::co_spawn(control_, watch_certificates(config_, config_epoch_), asio::detached);
}

asio::awaitable<void> Gateway::rotate_ticket_keys(std::shared_ptr<const config::Config> config,
                                                  std::uint64_t epoch) {
    asio::steady_timer timer(control_);
    while (!stopping_ && epoch == config_epoch_) {
        timer.expires_after(config->tls.ticket_key_rotation);
        co_await timer.async_wait(nothrow);
        if (stopping_ || epoch != config_epoch_) co_return;
        tls::rotate_ticket_keys();
        spdlog::debug("TLS session ticket keys rotated");
    }
}

namespace {
// What a certificate file looks like on disk; a change of either means a new file
// (renewal tools replace files or swap symlinks).
std::vector<std::pair<std::filesystem::file_time_type, std::uintmax_t>> stat_certificates(const config::Tls& tls) {
    std::vector<std::pair<std::filesystem::file_time_type, std::uintmax_t>> out;
    for (const auto& c : tls.certificates)
        for (const auto* f : {&c.cert, &c.key}) {
            std::error_code ec;
            out.emplace_back(std::filesystem::last_write_time(*f, ec), std::filesystem::file_size(*f, ec));
        }
    return out;
}
}  // namespace

// Polled rather than watched: renewals often swap a symlink or a folder, which
// a watch on the old files would miss.
asio::awaitable<void> Gateway::watch_certificates(std::shared_ptr<const config::Config> config,
                                                  std::uint64_t epoch) {
    asio::steady_timer timer(control_);
    auto seen = stat_certificates(config->tls);
    while (!stopping_ && epoch == config_epoch_) {
        timer.expires_after(std::chrono::seconds(2));
        co_await timer.async_wait(nothrow);
        if (stopping_ || epoch != config_epoch_) co_return;
        auto now = stat_certificates(config->tls);
        if (now == seen) continue;
        seen = std::move(now);
        std::vector<std::string> errors;
        auto view = load_tls(*config_, errors);
        if (!errors.empty()) {
            for (const auto& e : errors) spdlog::error("certificates not reloaded, the previous ones keep serving: {}", e);
            continue;
        }
        tls_ = std::move(view);
        auto next = std::make_shared<core::Snapshot>(*current_);
        next->tls = tls_;
        next->generation = ++generation_;
        publish(std::move(next));
        spdlog::info("certificates reloaded ({} files changed on disk)", config->tls.certificates.size());
    }
}

int Gateway::run() {
    // Everything that can fail to bind comes before the worker threads start.
    if (config_->admin.enabled) control::start_admin(control_, *this);
    start_background_work();  // before listening: page watches are in place when clients come
    start_workers();
    asio::co_spawn(control_, handle_signals(), asio::detached);
    asio::co_spawn(control_, handle_reload_signals(), asio::detached);
    for (const auto& l : listen_addresses(*config_))
        spdlog::info("listening on {}://{}", l.https ? "https" : "http", l.address.text());
    control_.run();
    for (auto& t : threads_) t.join();
    threads_.clear();
    alerts_.stop();  // pending retries are abandoned (and logged), not waited for
    spdlog::info("stopped");
    return 0;
}

}  // namespace im::server
