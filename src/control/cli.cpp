// The admin commands' flags and help, and how a failure becomes one line and an exit code.
#include "control/cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>

namespace im::control::cli {

namespace {

constexpr const char* kFooter =
    "Exit codes: 0 done; 1 the admin API refused (4xx, 5xx); 2 bad usage or a bad value;\n"
    "3 the admin API cannot be reached; 4 the admin API refused the token (401).\n"
    "See docs/cli.md.";

constexpr const char* kTimeHelp =
    "RFC 3339 (2026-11-24T03:00:00Z), 'now', or a duration from now (30m, 2h, 90s, 1h30m)";

void add_connection_flags(CLI::App* cmd, ConnectionFlags& c) {
    const char* group = "Finding the admin API (first found wins: flag, environment, config)";
    cmd->add_option("--admin", c.admin,
                    "host:port or http://host:port (else $INTERMISSION_ADMIN, else the "
                    "config's admin.listen)")
        ->group(group);
    cmd->add_option("--token", c.token,
                    "The admin token; other users see it in ps, prefer --token-file (else "
                    "$INTERMISSION_TOKEN)")
        ->group(group);
    cmd->add_option("--token-file", c.token_file,
                    "File holding the admin token (else $INTERMISSION_TOKEN_FILE)")
        ->group(group);
    cmd->add_option("--token-name", c.token_name,
                    "Which of the config's admin.tokens to use (default: the first)")
        ->group(group);
    cmd->add_option("-c,--config", c.config,
                    "The gateway's config, read for admin.listen and admin.tokens (default: "
                    "intermission.yaml when it exists)")
        ->group(group);
    cmd->add_flag("--json", c.json, "Print the admin API's JSON answer instead of text");
}

// An explicit empty time is a mistake, not "no time": refuse it like any bad time.
std::string not_empty(const std::string& text) {
    return text.empty() ? std::string("expected a time: ") + kTimeHelp : std::string();
}

// CLI11 says only "A subcommand is required": name the commands, and what was typed instead.
std::string missing_command(CLI::App& group) {
    auto all = group.get_subcommands([](CLI::App*) { return true; });
    if (all.empty() || !group.get_subcommands().empty()) return "";
    std::string names;
    for (std::size_t i = 0; i < all.size(); ++i)
        names += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i]->get_name();
    auto typed = group.remaining();
    bool word = !typed.empty() && !typed.front().starts_with("-");
    return group.get_name() + " needs a command: " + names +
           (word ? ", not '" + typed.front() + "'" : "");
}

}  // namespace

AdminCommands::AdminCommands(CLI::App& app) {
    add_maintenance(app);
    add_gateway(app);
}

CLI::App* AdminCommands::add(CLI::App* parent, const char* name, const char* what,
                             Command command) {
    auto* cmd = parent->add_subcommand(name, what);
    cmd->footer(kFooter);
    add_connection_flags(cmd, inputs_.connection);
    groups_.push_back(cmd);
    leaves_.emplace_back(cmd, std::move(command));
    return cmd;
}

void AdminCommands::add_maintenance(CLI::App& app) {
    auto& in = inputs_;
    auto* m = app.add_subcommand("maintenance",
                                 "Switch, show or schedule a site's maintenance (admin API)");
    m->require_subcommand(1);
    m->footer(kFooter);
    groups_.push_back(m);
    const char* site_help = "The site's name in the config";

    auto* on =
        add(m, "on", "Put a site into maintenance now (wins over the config)", maintenance_on);
    on->add_option("SITE", in.site, site_help)->required();
    on->add_option("--reason", in.reason, "Why, for the audit log and the status");
    on->add_option("--message", in.message, "The message visitors see on the maintenance page");
    on->add_option("--until", in.until, std::string("When it is expected to end: ") + kTimeHelp)
        ->check(not_empty);

    auto* off = add(m, "off", "Take a site out of maintenance now, whatever the config says",
                    maintenance_off);
    off->add_option("SITE", in.site, site_help)->required();
    off->add_option("--reason", in.reason, "Why, for the audit log");

    auto* clear =
        add(m, "clear", "Drop the runtime override: the config decides again", maintenance_clear);
    clear->add_option("SITE", in.site, site_help)->required();

    auto* status = add(m, "status", "Show maintenance for one site, or a table of every site",
                       maintenance_status);
    status->add_option("SITE", in.site, site_help);
    add_schedule(m);
}

void AdminCommands::add_schedule(CLI::App* maintenance) {
    auto& in = inputs_;
    auto* schedule = add(maintenance, "schedule", "Schedule, list or remove maintenance windows",
                         maintenance_schedule);
    schedule->add_option("SITE", in.site, "The site's name in the config")->required();
    auto* start =
        schedule->add_option("--start", in.start, std::string("Window start: ") + kTimeHelp)
            ->check(not_empty);
    auto* end = schedule->add_option("--end", in.end, std::string("Window end: ") + kTimeHelp)
                    ->check(not_empty);
    schedule->add_option("--reason", in.reason, "Why, shown with the window");
    auto* list = schedule->add_flag("--list", in.list, "List the config's and the API's windows");
    auto* remove =
        schedule->add_flag("--clear", in.clear, "Remove the windows added through the API");
    list->excludes(start)->excludes(end)->excludes(remove);
    remove->excludes(start)->excludes(end);
}

void AdminCommands::add_gateway(CLI::App& app) {
    auto& in = inputs_;
    add(&app, "sites", "List the sites with their hosts and maintenance state (admin API)", sites);
    add(&app, "targets", "List target groups and targets with health, drains, load (admin API)",
        targets);

    auto* drain_cmd = add(&app, "drain",
                          "Stop sending new requests to a target; those in flight finish "
                          "(admin API)",
                          drain);
    drain_cmd->add_option("GROUP", in.group, "The target group's name")->required();
    drain_cmd->add_option("TARGET", in.target, "The target, host:port as in the config")
        ->required();
    drain_cmd->add_option("--reason", in.reason, "Why, for the audit log");

    auto* undrain_cmd =
        add(&app, "undrain", "Send requests to a drained target again (admin API)", undrain);
    undrain_cmd->add_option("GROUP", in.group, "The target group's name")->required();
    undrain_cmd->add_option("TARGET", in.target, "The target, host:port as in the config")
        ->required();

    add(&app, "reload", "Make the running gateway re-read its config (admin API)", reload);

    auto* audit_cmd = add(&app, "audit", "Show the audit log, newest first (admin API)", audit);
    audit_cmd->add_option("--limit", in.limit, "How many entries (1-1000)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    audit_cmd->add_option("--offset", in.offset, "Skip this many of the newest entries")
        ->capture_default_str();
}

std::optional<int> AdminCommands::run() const {
    for (const auto& [cmd, command] : leaves_) {
        if (!cmd->parsed()) continue;
        try {
            return command(inputs_);
        } catch (const Failure& failure) {
            for (const auto& detail : failure.details) std::cerr << detail << "\n";
            std::cerr << "intermission: " << failure.message << "\n";
            return failure.code;
        } catch (const std::exception& e) {  // an answer of an unexpected shape
            std::cerr << "intermission: unexpected answer from the admin API: " << e.what() << "\n";
            return kRefused;
        }
    }
    return std::nullopt;
}

int AdminCommands::parse_error(CLI::App& app, const CLI::ParseError& error) const {
    auto chosen = app.get_subcommands();
    bool mine = std::any_of(chosen.begin(), chosen.end(), [&](CLI::App* cmd) {
        return std::find(groups_.begin(), groups_.end(), cmd) != groups_.end();
    });
    if (error.get_exit_code() == 0 || !mine) return app.exit(error);  // help, version, others
    std::string what = error.what();
    std::replace(what.begin(), what.end(), '\n', ' ');
    for (auto* cmd : chosen)
        if (auto hint = missing_command(*cmd); !hint.empty()) what = hint;
    std::cerr << "intermission: " << what << " (see --help)\n";
    return kUsage;
}

}  // namespace im::control::cli
