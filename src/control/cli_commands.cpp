// What each admin command asks of the API, and how its answer is shown. Input is checked
// here, before any connection, so a bad value is exit 2 whether or not the API is reachable.
#include <boost/json.hpp>
#include <ctime>
#include <iostream>

#include "config/values.hpp"
#include "control/cli.hpp"

namespace im::control::cli {

namespace json = boost::json;

namespace {

std::int64_t now() {
    return std::time(nullptr);
}

// Site and group names follow the config's rule, so a typo with a '/' or a space is a usage
// error here rather than a confusing 404 for another path.
std::string name_segment(const std::string& name, const char* what) {
    if (!config::is_valid_name(name))
        throw Failure{kUsage, std::string("bad ") + what + " name '" + name +
                                  "': expected letters, digits, '_', '.' and '-'"};
    return path_segment(name);
}

std::string maintenance_path(const Inputs& in) {
    return "/v1/sites/" + name_segment(in.site, "site") + "/maintenance";
}

// The target as the config writes it, e.g. "[::1]:8080" (the API compares the text).
std::string drain_path(const Inputs& in) {
    auto target = config::parse_address(in.target);
    if (!target)
        throw Failure{kUsage, "bad target '" + in.target +
                                  "': expected host:port as written in the config, e.g. "
                                  "10.0.0.5:8080"};
    return "/v1/targets/" + name_segment(in.group, "target group") + "/" +
           path_segment(target.value->text()) + "/drain";
}

Reply ask(const Inputs& in, std::string_view method, const std::string& target,
          std::optional<json::value> body = std::nullopt,
          std::chrono::seconds timeout = std::chrono::seconds(5)) {
    return exchange(find_endpoint(in.connection), method, target, body, timeout);
}

// --json: the API's answer as it came, for scripts; else `print` for people.
template <typename Print>
int show(const Inputs& in, const Reply& reply, Print print) {
    auto answer = accepted(reply);
    if (in.connection.json) {
        std::string_view body = reply.body;
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.remove_suffix(1);
        std::cout << body << "\n";
    } else {
        print(std::cout, answer.as_object());
    }
    return kDone;
}

int show_maintenance(const Inputs& in, const Reply& reply) {
    return show(in, reply, [](std::ostream& out, const json::object& state) {
        print_maintenance(out, state, now());
    });
}

void add_text(json::object& body, const char* key, const std::string& value) {
    if (!value.empty()) body[key] = value;
}

}  // namespace

std::string absolute_time(std::string_view text, std::string_view flag, std::int64_t now) {
    if (text == "now") return config::format_timestamp(now);
    if (auto t = config::parse_timestamp(text)) return config::format_timestamp(*t.value);
    if (auto d = config::parse_duration(text); d && d.value->count() > 0)
        return config::format_timestamp(now + (d.value->count() + 999) / 1000);
    throw Failure{kUsage, "bad " + std::string(flag) + " '" + std::string(text) +
                              "': expected an RFC 3339 time like 2026-11-24T03:00:00Z, or a "
                              "duration from now like 30m, 2h, 90s"};
}

int maintenance_on(const Inputs& in) {
    json::object body{{"on", true}};
    add_text(body, "reason", in.reason);
    add_text(body, "message", in.message);
    if (!in.until.empty()) body["until"] = absolute_time(in.until, "--until", now());
    return show_maintenance(in, ask(in, "PUT", maintenance_path(in), json::value(body)));
}

int maintenance_off(const Inputs& in) {
    json::object body{{"on", false}};
    add_text(body, "reason", in.reason);
    return show_maintenance(in, ask(in, "PUT", maintenance_path(in), json::value(body)));
}

int maintenance_clear(const Inputs& in) {
    return show_maintenance(in, ask(in, "DELETE", maintenance_path(in)));
}

int maintenance_status(const Inputs& in) {
    if (in.site.empty()) return show(in, ask(in, "GET", "/v1/sites"), print_maintenance_table);
    return show_maintenance(in, ask(in, "GET", maintenance_path(in)));
}

int maintenance_schedule(const Inputs& in) {
    auto path = maintenance_path(in) + "/windows";
    if (in.list) return show(in, ask(in, "GET", path), print_windows);
    if (in.clear) return show(in, ask(in, "DELETE", path), print_windows);
    if (in.start.empty() || in.end.empty())
        throw Failure{kUsage,
                      "maintenance schedule needs --start and --end (or --list, or --clear)"};
    auto t = now();
    auto start = absolute_time(in.start, "--start", t);
    auto end = absolute_time(in.end, "--end", t);
    if (*config::parse_timestamp(end).value <= *config::parse_timestamp(start).value)
        throw Failure{kUsage, "--end (" + end + ") must be after --start (" + start + ")"};
    json::object body{{"start", start}, {"end", end}};
    add_text(body, "reason", in.reason);
    return show(in, ask(in, "POST", path, json::value(body)), print_windows);
}

int sites(const Inputs& in) {
    return show(in, ask(in, "GET", "/v1/sites"), print_sites);
}

int targets(const Inputs& in) {
    return show(in, ask(in, "GET", "/v1/targets"),
                [](std::ostream& out, const json::object& a) { print_targets(out, a, now()); });
}

int drain(const Inputs& in) {
    json::object body;
    add_text(body, "reason", in.reason);
    return show(in, ask(in, "PUT", drain_path(in), json::value(body)),
                [&](std::ostream& out, const json::object& t) { print_target(out, in.group, t); });
}

int undrain(const Inputs& in) {
    return show(in, ask(in, "DELETE", drain_path(in)),
                [&](std::ostream& out, const json::object& t) { print_target(out, in.group, t); });
}

int reload(const Inputs& in) {
    // A reload reads the config and the page stores: give it longer than a switch.
    return show(in, ask(in, "POST", "/v1/reload", std::nullopt, std::chrono::seconds(30)),
                print_reload);
}

int audit(const Inputs& in) {
    auto query =
        "/v1/audit?offset=" + std::to_string(in.offset) + "&limit=" + std::to_string(in.limit);
    return show(in, ask(in, "GET", query), print_audit);
}

}  // namespace im::control::cli
