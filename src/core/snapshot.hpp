// The immutable view every worker decides from: compiled config, the page
// stores and the health of every target. A change (reload, health flip,
// page edit) builds a new Snapshot; workers swap their pointer between two
// requests, so a request never sees half a change and never takes a lock.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "pages/store.hpp"

namespace boost::asio::ssl {
class context;
}
namespace im::tls {
class CertificateStore;
}
namespace im::observe {
struct MetricsView;
}

namespace im::core {

// A page action's answer, prebuilt per content coding when the snapshot is
// built, so serving it is a copy of bytes.
struct CompiledPage {
    const pages::File* file = nullptr;  // owned by the site's store (kept alive by SiteView)
    int status = 200;
    std::string headers[3];  // identity, gzip, brotli: Content-Type ... Retry-After lines
};

struct Action {
    enum class Kind { forward, store, page, fixed, redirect };
    Kind kind = Kind::forward;
    int group = -1;                              // forward: index into config->target_groups
    std::vector<std::pair<int, unsigned>> weighted;  // weighted forward: (group, cumulative weight)
    unsigned total_weight = 0;
    const config::Action* config = nullptr;      // the declared action (status, body, location)
    std::shared_ptr<const CompiledPage> page;    // page
    std::string fixed_headers;                   // fixed: Content-Type (+ Retry-After)
};

struct CompiledRule {
    const config::Match* match = nullptr;
    Action action;
    // The literal start of each path glob ("/api/" for "/api/*"): a rule whose
    // prefixes all miss is skipped without running the globs, so a long rule
    // list costs little per request.
    std::vector<std::string> path_prefixes;
    bool could_match(std::string_view path) const;
};

// A custom error response, compiled: which statuses/failures get which page.
struct CompiledError {
    const config::ErrorPage* config = nullptr;
    std::shared_ptr<const CompiledPage> page;  // null when the file left the store
};

struct SiteView {
    const config::Site* config = nullptr;
    std::shared_ptr<const pages::Store> store;  // null when the site has no page store
    std::vector<CompiledRule> rules;
    // Rule indexes by the path's second byte (the first after '/'), in
    // priority order: a request only looks at rules that could match it.
    std::array<std::vector<std::uint16_t>, 256> rule_buckets;
    Action default_action;
    std::shared_ptr<const CompiledPage> maintenance_page;  // null: no such file
    std::shared_ptr<const CompiledPage> maintenance_json;  // null: the generated JSON body
    std::shared_ptr<const CompiledPage> maintenance_text;  // null: the message as text
    bool serves_robots = false;  // the store has /robots.txt: crawlers get it even in maintenance
    std::shared_ptr<const CompiledPage> outage_page;       // outage page, else the maintenance page
    std::vector<CompiledError> errors;
    std::vector<std::string> private_pages;  // answered only through their action, never by path
};

// Maintenance switched through the API: overrides the config's `enabled`
// until an operator clears it (so a reload never undoes a toggle).
struct MaintenanceState {
    bool on = false;
    std::string reason;
    std::string message;  // empty: the config's message
    std::string who;
    std::int64_t started_at = 0;
    std::optional<std::int64_t> until;
    std::vector<config::Window> windows;  // scheduled through the API
};

// A drain set through the API: the target gets no new requests until undrained.
struct DrainState {
    std::string reason;
    std::string who;
    std::int64_t since = 0;  // UTC seconds
};

// Runtime state by site name; a site without an entry follows its config.
struct RuntimeState {
    std::unordered_map<std::string, MaintenanceState> maintenance;
    std::unordered_map<std::string, DrainState> drained;  // by drain_key(group, target)
};

// How a drained target is named in the runtime state: by names, not
// indexes, so a drain outlives a reload that reorders the config.
std::string drain_key(std::string_view group, std::string_view target);

struct StringHash {
    using is_transparent = void;  // lets find() take a string_view without allocating
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Host header -> site, without allocating on the request path.
class HostIndex {
public:
    void add(std::string_view pattern, int site);
    void set_default(int site) { default_site_ = site; }
    int find(std::string_view host) const;  // -1 when no site and no default

private:
    std::unordered_map<std::string, int, StringHash, std::equal_to<>> exact_;
    std::vector<std::pair<std::string, int>> wildcards_;  // ".example.com", longest first
    int default_site_ = -1;
};

// Health of every target: [group][target], as the health checker last saw it.
struct HealthView {
    std::vector<std::vector<std::uint8_t>> healthy;
    bool is_healthy(int group, std::size_t target) const {
        return healthy[static_cast<std::size_t>(group)][target] != 0;
    }
};

// Resolved addresses of every target: [group][target].
using Endpoints = std::vector<std::vector<boost::asio::ip::tcp::endpoint>>;

// A flag per target: [group][target].
using TargetFlags = std::vector<std::vector<std::uint8_t>>;

// Requests in flight to one target, summed over the workers: what a drain
// waits for. Its own cache line, since two workers may count at once.
struct InFlight {
    alignas(64) std::atomic<std::int64_t> requests{0};
};
// [group][target]; a target kept across a reload keeps its counter, so
// requests started before the reload are still counted.
using TargetLoad = std::vector<std::vector<std::shared_ptr<InFlight>>>;

// What TLS needs: the HTTPS certificates and a client context per target
// group with https:// targets.
struct TlsView {
    std::shared_ptr<const tls::CertificateStore> certificates;  // null: no `tls` section
    std::vector<std::shared_ptr<boost::asio::ssl::context>> upstream;  // [group]; null: no https:// target
};

struct Snapshot {
    std::uint64_t generation = 0;
    std::shared_ptr<const TlsView> tls = std::make_shared<TlsView>();  // never null
    std::string https_headers;  // header lines on every HTTPS answer (HSTS)
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const Endpoints> endpoints;
    std::vector<SiteView> sites;
    HostIndex hosts;
    std::shared_ptr<const HealthView> health;
    std::shared_ptr<const RuntimeState> runtime;
    std::shared_ptr<const TargetFlags> drained;  // from runtime: no new requests
    std::shared_ptr<const TargetLoad> load;      // shared with the gateway; never null
    std::uint64_t config_epoch = 0;  // changes with every loaded config (not with toggles)
    // Where each worker counts its requests (observe/metrics.hpp); set by the gateway
    // before publication, null in snapshots built elsewhere (tests, benchmarks).
    std::shared_ptr<const observe::MetricsView> metrics;
    bool is_drained(int group, std::size_t target) const {
        return (*drained)[static_cast<std::size_t>(group)][target] != 0;
    }
    // Per site (same index as `sites`): its runtime maintenance, or null.
    std::vector<const MaintenanceState*> maintenance;
};

// Stores by site name, loaded by the caller (loading does I/O).
using StoreMap = std::unordered_map<std::string, std::shared_ptr<const pages::Store>>;

// Compiles config + stores + health into a snapshot; pure.
std::shared_ptr<const Snapshot> build_snapshot(std::shared_ptr<const config::Config> config,
                                               std::shared_ptr<const Endpoints> endpoints,
                                               const StoreMap& stores,
                                               std::shared_ptr<const HealthView> health,
                                               std::uint64_t generation);

// The same snapshot with other health or stores: cheap, the config is shared.
std::shared_ptr<const Snapshot> with_health(const Snapshot& s,
                                            std::shared_ptr<const HealthView> health,
                                            std::uint64_t generation);
std::shared_ptr<const Snapshot> with_runtime(const Snapshot& s,
                                             std::shared_ptr<const RuntimeState> runtime,
                                             std::uint64_t generation);
std::shared_ptr<const Snapshot> with_store(const Snapshot& s, const std::string& site,
                                           std::shared_ptr<const pages::Store> store,
                                           std::uint64_t generation);

// The target groups (indexes) a site forwards to, by any rule or its default, in config order.
std::vector<std::size_t> forwarded_groups(const config::Config& config, const config::Site& site);

// Every target healthy: the state before the first health check.
std::shared_ptr<const HealthView> all_healthy(const config::Config& config);

// Fresh counters for every target of `config`, reusing those of `old`
// (built for `old_config`) for targets that keep their group and address.
std::shared_ptr<const TargetLoad> carry_load(const config::Config& config,
                                             const config::Config* old_config,
                                             const TargetLoad* old);

}  // namespace im::core
