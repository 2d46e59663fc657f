// intermission: wiring only. Subcommands parse their flags and call into the modules.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include "config/config.hpp"
#include "control/cli.hpp"
#include "control/state.hpp"
#include "observe/metrics.hpp"
#include "server/gateway.hpp"

// jemalloc's settings, read when it starts (MALLOC_CONF in the environment
// still has the last word; without jemalloc nothing reads the symbol). An
// HTTP/2 connection frees the coroutine frames and state of a batch of streams
// at once and allocates them again for the next batch: with jemalloc's
// default per-thread caches (as few as 20 entries a size, trimmed every 64 KiB
// allocated) most of those went back to the arena and came out again, the
// slow path, about 150 instructions an allocation. At least 256 entries a
// size and a trim every 16 MiB: 4 % fewer instructions a proxied stream
// (callgrind), 2 MB more peak memory; bench/ab.sh, TLS HTTP/2 proxy: lower
// CPU a request in 6 rounds of 6.
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "tcache_nslots_small_min:256,tcache_gc_incr_bytes:16777216";
}

namespace {


// Loads and validates; prints every problem as file:line:column. nullopt on error.
std::optional<im::config::Config> load_or_report(const std::string& path, im::server::Loaded* deps) {
    auto result = im::config::load_config_file(path);
    for (const auto& e : result.errors) std::cerr << e.text() << "\n";
    if (!result.config) return std::nullopt;
    auto loaded = im::server::load_dependencies(*result.config);
    for (const auto& e : loaded.errors) std::cerr << e << "\n";  // each starts with file:line:column
    if (!loaded.errors.empty()) return std::nullopt;
    if (deps) *deps = std::move(loaded);
    return result.config;
}

void set_log_level(const std::string& level) {
    spdlog::set_default_logger(spdlog::stderr_color_mt("intermission"));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    spdlog::set_level(spdlog::level::from_str(level));
}

// Every client and upstream connection is a descriptor; the default soft
// limit (1024) would cap a gateway far below what the machine can serve. So the
// soft limit goes up to the hard one (as nginx's worker_rlimit_nofile); said at
// debug level, and a failure is only a warning: the gateway serves what it can.
void raise_descriptor_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        spdlog::warn("cannot read the open-file limit (RLIMIT_NOFILE): {}", std::strerror(errno));
        return;
    }
    if (lim.rlim_cur >= lim.rlim_max) {
        spdlog::debug("open-file limit (RLIMIT_NOFILE): {}, already the hard limit", lim.rlim_cur);
        return;
    }
    const rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        spdlog::warn("cannot raise the open-file limit (RLIMIT_NOFILE) from {} to {}: {}", before,
                     lim.rlim_max, std::strerror(errno));
        return;
    }
    spdlog::debug("open-file limit (RLIMIT_NOFILE) raised from {} to {}", before, lim.rlim_cur);
}

// SIGHUP, SIGTERM and SIGINT are blocked from the first instruction of `serve`, before
// any thread exists, so every thread inherits the blocked mask: one that comes while the
// gateway starts waits, pending, instead of killing it with the default action. The
// control thread unblocks each once its asio::signal_set is armed (Gateway::handle_signals,
// handle_reload_signals): a signal that came early is delivered then, a SIGHUP becoming a
// reload and a SIGTERM a drain. Worker threads keep them blocked and never take them.
// Not for `check` and the CLI commands: there the default dispositions stay.
void block_control_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&set, sig);
    if (int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
        std::cerr << "intermission: cannot block SIGHUP/SIGTERM/SIGINT: " << std::strerror(err) << "\n";
}

int serve(const std::string& path, bool fresh_state) {
    block_control_signals();  // first: no thread may start with them unblocked
    std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error code, not a death
    im::server::Loaded deps;
    auto config = load_or_report(path, &deps);
    if (!config) {
        std::cerr << "intermission: not starting: " << path << " has errors\n";
        return 2;
    }
    set_log_level(config->server.log_level);
    raise_descriptor_limit();  // once logging is set up: it says what it did
    im::core::RuntimeState runtime;
    if (!fresh_state) {
        auto state = im::control::load_state(config->admin.state_file);
        if (!state.state) {
            spdlog::critical("not starting: {}", state.error);
            return 2;
        }
        runtime = std::move(*state.state);
    }
    try {
        im::server::Gateway gateway(std::make_shared<const im::config::Config>(std::move(*config)),
                                    std::move(deps), std::move(runtime));
        return gateway.run();
    } catch (const std::exception& e) {
        spdlog::critical("not starting: {}", e.what());
        return 1;
    }
}

int check(const std::string& path) {
    auto config = load_or_report(path, nullptr);
    if (!config) return 2;
    std::cout << path << ": OK (" << config->sites.size() << " sites, "
              << config->target_groups.size() << " target groups)\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"intermission: an edge proxy that keeps a website answering when the app is down"};
    app.set_version_flag("--version", std::string(im::observe::kBuildVersion));
    app.require_subcommand(1);
    std::string config_path = "intermission.yaml";

    auto* serve_cmd = app.add_subcommand("serve", "Serve traffic with the given config");
    serve_cmd->add_option("-c,--config", config_path, "Config file (YAML)")->capture_default_str();
    bool fresh_state = false;
    serve_cmd->add_flag("--fresh-state", fresh_state,
                        "Start with no runtime state, ignoring (and later replacing) the state file");
    auto* check_cmd = app.add_subcommand("check", "Validate a config file and exit (0 = valid)");
    check_cmd->add_option("-c,--config", config_path, "Config file (YAML)")->capture_default_str();

    // maintenance, sites, targets, drain, undrain, reload, audit: clients of the admin API.
    im::control::cli::AdminCommands admin_commands(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return admin_commands.parse_error(app, e);
    }
    if (*serve_cmd) return serve(config_path, fresh_state);
    if (*check_cmd) return check(config_path);
    if (auto code = admin_commands.run()) return *code;
    return 1;
}
