// The admin API's answers as people read them: aligned tables and short blocks.
// Scripts use --json instead, so this output may change between versions.
#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "config/values.hpp"
#include "control/cli.hpp"

namespace im::control::cli {

namespace json = boost::json;

namespace {

using Row = std::vector<std::string>;

// Names and reasons come from other operators' input: keep them on one line.
std::string printable(std::string_view text) {
    std::string out(text);
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return out;
}

const json::value* field(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() || it->value().is_null() ? nullptr : &it->value();
}

// A field as a table cell: strings as they are, booleans as yes/no, `none` when absent.
std::string text(const json::object& o, std::string_view key, std::string_view none = "-") {
    const auto* v = field(o, key);
    if (!v) return std::string(none);
    if (v->is_string())
        return v->as_string().empty() ? std::string(none) : printable(v->as_string());
    if (v->is_bool()) return v->as_bool() ? "yes" : "no";
    if (v->is_double()) return fmt::format("{:.1f}", v->as_double());
    return json::serialize(*v);
}

bool is_true(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    return v && v->is_bool() && v->as_bool();
}

const json::object* object(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    return v ? v->if_object() : nullptr;
}

const json::array& array(const json::object& o, std::string_view key) {
    static const json::array kNone;
    const auto* v = field(o, key);
    return v && v->is_array() ? v->as_array() : kNone;
}

void print_table(std::ostream& out, const std::vector<Row>& rows) {
    std::vector<std::size_t> width;
    for (const auto& row : rows)
        for (std::size_t i = 0; i < row.size(); ++i) {
            width.resize(std::max(width.size(), row.size()));
            width[i] = std::max(width[i], row[i].size());
        }
    for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i)
            out << (i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i]);
        out << "\n";
    }
}

std::string on_off(bool on) {
    return on ? "on" : "off";
}

// "2026-11-24T03:00:00Z (in 29m59s)"
std::string when(const std::string& timestamp, std::int64_t now) {
    auto t = config::parse_timestamp(timestamp);
    if (!t) return timestamp;
    if (*t.value <= now) return timestamp + " (passed)";
    return timestamp + " (in " + config::format_duration(std::chrono::seconds(*t.value - now)) +
           ")";
}

std::string ago(const std::string& timestamp, std::int64_t now) {
    auto t = config::parse_timestamp(timestamp);
    if (!t) return timestamp;
    return config::format_duration(
               std::chrono::seconds(std::max<std::int64_t>(0, now - *t.value))) +
           " ago";
}

void line(std::ostream& out, std::string_view label, const std::string& value) {
    if (value.empty() || value == "-") return;
    out << fmt::format("  {:<10} {}\n", std::string(label) + ":", value);
}

std::string declared(const json::object* config) {
    if (!config) return "-";
    std::string out = on_off(is_true(*config, "enabled"));
    if (field(*config, "until")) out += ", until " + text(*config, "until");
    return out;
}

std::string override_of(const json::object* runtime) {
    if (!runtime) return "none";
    return on_off(is_true(*runtime, "on")) + ", set by " + text(*runtime, "who");
}

std::vector<Row> window_rows(const json::object& state) {
    std::vector<Row> rows;
    for (const char* origin : {"config", "runtime"}) {
        const auto* part = object(state, origin);
        if (!part) continue;
        for (const auto& w : array(*part, "windows"))
            if (const auto* o = w.if_object())
                rows.push_back({text(*o, "start"), "to", text(*o, "end"),
                                origin == std::string_view("config") ? "config" : "api",
                                text(*o, "reason", "")});
    }
    return rows;
}

void print_window_lines(std::ostream& out, const json::object& state, bool say_none) {
    auto rows = window_rows(state);
    if (rows.empty() && say_none) out << "  no maintenance windows\n";
    for (auto& row : rows) row.insert(row.begin(), "  window:  ");
    print_table(out, rows);
}

}  // namespace

void print_maintenance(std::ostream& out, const json::object& state, std::int64_t now) {
    const auto* config = object(state, "config");
    const auto* runtime = object(state, "runtime");
    bool api = text(state, "source") == "api";
    std::string site = text(state, "site");
    out << "site " << site << ": maintenance " << on_off(is_true(state, "on")) << "\n";
    const std::string clear = "`intermission maintenance clear " + site + "`";
    line(out, "source",
         api ? "api (the runtime override wins over the config until " + clear + ")"
             : "config (no runtime override)");
    line(out, "config", declared(config));
    line(out, "runtime", override_of(runtime));
    if (const auto* decides = api && runtime ? runtime : config)
        line(out, "reason", text(*decides, "reason"));
    // Visitors read the override's message, else the config's (as http/answers.cpp does).
    std::string message = api && runtime ? text(*runtime, "message") : "-";
    if (message == "-" && config) message = text(*config, "message");
    line(out, "message", message);
    if (field(state, "until")) line(out, "until", when(text(state, "until"), now));
    if (runtime && field(*runtime, "started_at"))
        line(out, "who", text(*runtime, "who") + ", since " + text(*runtime, "started_at"));
    print_window_lines(out, state, false);
}

void print_windows(std::ostream& out, const json::object& state) {
    out << "site " << text(state, "site") << ": maintenance " << on_off(is_true(state, "on"))
        << " (source: " << text(state, "source") << ")\n";
    print_window_lines(out, state, true);
}

void print_maintenance_table(std::ostream& out, const json::object& answer) {
    std::vector<Row> rows{
        {"SITE", "MAINTENANCE", "SOURCE", "CONFIG", "RUNTIME", "UNTIL", "WHO", "REASON"}};
    for (const auto& s : array(answer, "sites")) {
        const auto* site = s.if_object();
        const auto* m = site ? object(*site, "maintenance") : nullptr;
        if (!m) continue;
        const auto* config = object(*m, "config");
        const auto* runtime = object(*m, "runtime");
        const auto* decides = text(*m, "source") == "api" && runtime ? runtime : config;
        rows.push_back({text(*site, "name"), on_off(is_true(*m, "on")), text(*m, "source"),
                        config ? on_off(is_true(*config, "enabled")) : "-",
                        runtime ? on_off(is_true(*runtime, "on")) : "none", text(*m, "until"),
                        runtime ? text(*runtime, "who") : "-",
                        decides ? text(*decides, "reason") : "-"});
    }
    print_table(out, rows);
}

namespace {

// "app 1/2": per group the site forwards to, targets taking traffic (healthy, not drained).
std::string serving(const json::object& site) {
    std::string out;
    for (const auto& g : array(site, "target_groups"))
        if (const auto* group = g.if_object())
            out += (out.empty() ? "" : ", ") + text(*group, "name") + " " +
                   text(*group, "serving") + "/" + text(*group, "targets");
    return out.empty() ? "-" : out;
}

std::string joined(const json::array& list) {
    std::string out;
    for (const auto& item : list)
        if (item.is_string()) out += (out.empty() ? "" : ",") + printable(item.as_string());
    return out.empty() ? "-" : out;
}

}  // namespace

void print_sites(std::ostream& out, const json::object& answer) {
    std::vector<Row> rows{
        {"SITE", "HOSTS", "DEFAULT", "PAGES", "MAINTENANCE", "SOURCE", "OUTAGE", "SERVING"}};
    for (const auto& s : array(answer, "sites")) {
        const auto* site = s.if_object();
        if (!site) continue;
        const auto* m = object(*site, "maintenance");
        rows.push_back({text(*site, "name"), joined(array(*site, "hosts")), text(*site, "default"),
                        text(*site, "pages"), m ? on_off(is_true(*m, "on")) : "-",
                        m ? text(*m, "source") : "-", text(*site, "outage"), serving(*site)});
    }
    print_table(out, rows);
}

void print_targets(std::ostream& out, const json::object& answer, std::int64_t now) {
    std::vector<Row> rows{{"GROUP", "TARGET", "STATE", "DRAINED", "IN_FLIGHT", "LATENCY",
                           "LAST_CHECK", "FAILURES", "LAST_ERROR"}};
    for (const auto& g : array(answer, "target_groups")) {
        const auto* group = g.if_object();
        if (!group) continue;
        for (const auto& t : array(*group, "targets")) {
            const auto* target = t.if_object();
            if (!target) continue;
            auto latency = text(*target, "latency_ms");
            auto check = text(*target, "last_check");
            rows.push_back({text(*group, "name"), text(*target, "address"), text(*target, "state"),
                            text(*target, "drained"), text(*target, "in_flight"),
                            latency == "-" ? latency : latency + "ms",
                            check == "-" ? check : ago(check, now),
                            text(*target, "consecutive_failures"), text(*target, "last_error")});
        }
    }
    if (rows.size() == 1)
        out << "no target groups\n";
    else
        print_table(out, rows);
}

void print_target(std::ostream& out, const std::string& group, const json::object& target) {
    out << "target " << text(target, "address") << " in group " << printable(group) << ": "
        << (is_true(target, "drained") ? "drained, new requests go to the group's other targets"
                                       : "in service")
        << "\n";
    line(out, "state", text(target, "state"));
    line(out, "in flight", text(target, "in_flight"));
    if (const auto* drain = object(target, "drain")) {
        line(out, "reason", text(*drain, "reason"));
        line(out, "who", text(*drain, "who") + ", since " + text(*drain, "since"));
    }
}

void print_reload(std::ostream& out, const json::object& answer) {
    out << "reloaded the config: ";
    auto count = [&](const char* key, const char* what) {
        auto n = text(answer, key);
        return n + " " + what + (n == "1" ? ", " : "s, ");
    };
    if (field(answer, "sites"))
        out << count("sites", "site") << count("target_groups", "target group");
    out << "generation " << text(answer, "generation") << "\n";
    for (const auto& note : array(answer, "notes"))
        if (note.is_string()) out << "  note: " << printable(note.as_string()) << "\n";
}

void print_audit(std::ostream& out, const json::object& answer) {
    std::vector<Row> rows{{"TIME", "ACTION", "TARGET", "WHO", "CLIENT", "REASON"}};
    for (const auto& e : array(answer, "entries"))
        if (const auto* entry = e.if_object())
            rows.push_back({text(*entry, "time"), text(*entry, "action"), text(*entry, "target"),
                            text(*entry, "token"), text(*entry, "client"), text(*entry, "reason")});
    if (rows.size() == 1)
        out << "no audit entries\n";
    else
        print_table(out, rows);
}

}  // namespace im::control::cli
