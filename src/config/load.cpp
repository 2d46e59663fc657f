// Entry points of the config loader: file and text handling, the top level and the `server`
// section. Target groups and sites are in load_groups.cpp and load_sites.cpp.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "config/config.hpp"
#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config {

using detail::Entry;
using detail::Reader;

std::string where(const std::filesystem::path& source, Position p) {
    if (p.line <= 0) return source.string() + ": ";
    return source.string() + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": ";
}

std::string ConfigError::text() const {
    std::string out = file;
    if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
    return out + (out.empty() ? "" : ": ") + message;
}

namespace detail {
namespace {

void read_workers(Reader& reader, const Entry& entry, unsigned& workers) {
    if (entry.value.IsScalar() && entry.value.Scalar() == "auto") {
        workers = 0;
        return;
    }
    auto s = reader.scalar(entry, "an integer or \"auto\"");
    if (!s) return;
    if (auto n = parse_integer(*s, 0, 256))
        workers = static_cast<unsigned>(*n.value);
    else
        reader.error(entry, "bad value '" + *s +
                                "' for 'server.workers' (expected \"auto\" or an " +
                                "integer from 0 to 256; 0 and auto mean one per core)");
}

void read_listen(Reader& reader, const Entry& entry, std::vector<Address>& listen) {
    auto list = reader.items(entry);
    if (!list) return;
    if (list->empty())
        reader.error(entry,
                     "expected at least one address for 'server.listen', e.g. "
                     "[\"0.0.0.0:8080\"]");
    std::vector<int> lines;
    for (const auto& item : *list) {
        auto address = reader.address(item);
        if (!address) continue;
        if (!is_ip_address(address->host)) {
            // Listening needs a local address; resolving a name here would hide which one.
            reader.error(item, "bad listen address '" + address->text() + "' for " +
                                   detail::in_quotes(item.path) +
                                   " (expected an IP address and a port, e.g. 0.0.0.0:8080, "
                                   "127.0.0.1:8080 or [::]:8080)");
            continue;
        }
        const auto dup = std::find(listen.begin(), listen.end(), *address);
        if (dup != listen.end()) {
            reader.error(item, "duplicate listen address '" + address->text() +
                                   "' (first defined at line " +
                                   std::to_string(lines[dup - listen.begin()]) + ")");
            continue;
        }
        listen.push_back(*address);
        lines.push_back(Reader::line(item));
    }
}

void read_limits(Reader& r, const Entry& entry, Limits& limits) {
    r.fields(
        entry,
        {
            {"max_header_bytes", [&](const Entry& e) { r.size(e, limits.max_header_bytes, 1); }},
            {"max_headers", [&](const Entry& e) { r.integer(e, limits.max_headers, 1, 100000); }},
            {"max_body_bytes", [&](const Entry& e) { r.size(e, limits.max_body_bytes); }},
        });
}

void read_http2(Reader& r, const Entry& entry, Http2& h2) {
    r.fields(
        entry,
        {
            {"enabled", [&](const Entry& e) { r.boolean(e, h2.enabled); }},
            {"cleartext", [&](const Entry& e) { r.boolean(e, h2.cleartext); }},
            {"max_concurrent_streams",
             [&](const Entry& e) { r.integer(e, h2.max_concurrent_streams, 1, 100000); }},
            // The bounds are the protocol's (RFC 9113 §6.5.2).
            {"initial_window_size",
             [&](const Entry& e) { r.size(e, h2.initial_window_size, 1, (1u << 31) - 1); }},
            {"max_frame_size",
             [&](const Entry& e) { r.size(e, h2.max_frame_size, 16384, (1u << 24) - 1); }},
            {"max_header_list_size",
             [&](const Entry& e) { r.size(e, h2.max_header_list_size, 0, 1u << 24); }},
        });
}

void read_client_timeouts(Reader& r, const Entry& entry, ClientTimeouts& t) {
    r.fields(entry, {
                        {"header", [&](const Entry& e) { r.duration(e, t.header); }},
                        {"body", [&](const Entry& e) { r.duration(e, t.body); }},
                        {"send", [&](const Entry& e) { r.duration(e, t.send); }},
                        {"keepalive", [&](const Entry& e) { r.duration(e, t.keepalive); }},
                    });
}

void read_access_log(Reader& reader, const Entry& entry, std::string& access_log) {
    std::string value;
    reader.text(entry, value);
    if (value.empty()) return;
    if (value == "stderr" || value == "stdout" || value == "off")
        access_log = value;
    else
        access_log = reader.resolve(value).string();
}

void read_log_level(Reader& reader, const Entry& entry, std::string& level) {
    auto s = reader.scalar(entry, "a log level");
    if (!s) return;
    if (*s == "debug" || *s == "info" || *s == "warn" || *s == "error")
        level = *s;
    else
        reader.error(entry, "bad log level '" + *s +
                                "' for 'server.log_level' (expected one of: debug, info, warn, "
                                "error)");
}

}  // namespace

void read_server(Reader& r, const Entry& entry, Server& server) {
    bool have_listen = false;
    const bool is_map = r.fields(
        entry,
        {
            {"workers", [&](const Entry& e) { read_workers(r, e, server.workers); }},
            {"listen",
             [&](const Entry& e) {
                 have_listen = true;
                 read_listen(r, e, server.listen);
             }},
            {"limits", [&](const Entry& e) { read_limits(r, e, server.limits); }},
            {"http2", [&](const Entry& e) { read_http2(r, e, server.http2); }},
            {"timeouts", [&](const Entry& e) { read_client_timeouts(r, e, server.timeouts); }},
            {"drain_timeout", [&](const Entry& e) { r.duration(e, server.drain_timeout, true); }},
            {"access_log", [&](const Entry& e) { read_access_log(r, e, server.access_log); }},
            {"log_level", [&](const Entry& e) { read_log_level(r, e, server.log_level); }},
        });
    if (is_map && !have_listen)
        r.error_at_key(entry,
                       "missing required key 'listen' in 'server' (expected a list of "
                       "addresses to listen on, e.g. [\"0.0.0.0:8080\"])");
}

// The `alerts` section (load_alerts.cpp).
void read_alerts(Reader& reader, const Entry& entry, Alerts& alerts);

}  // namespace detail

namespace {

// Two sockets of one process on one address split its traffic (SO_REUSEPORT): never both.
void read_https(Reader& r, const Entry& entry, Config& config) {
    detail::read_tls(r, entry, config.tls);
    for (const auto& a : config.tls.listen)
        if (std::find(config.server.listen.begin(), config.server.listen.end(), a) != config.server.listen.end())
            r.error_at_key(entry, "the address " + a.text() + " is in both 'server.listen' and 'tls.listen'");
}

const char* const kTopExpected = "expected a map with the keys server, target_groups, sites";

void read_config(Reader& r, const YAML::Node& root, Config& config) {
    const Entry top{YAML::Node(), root, ""};
    std::optional<Entry> server, groups, sites, tls;
    const bool is_map = r.fields(top,
                                 {
                                     {"server", [&](const Entry& e) { server = e; }},
                                     {"admin", [&](const Entry& e) { detail::read_admin(r, e, config.admin); }},
                                     {"alerts", [&](const Entry& e) { detail::read_alerts(r, e, config.alerts); }},
                                     {"tls", [&](const Entry& e) { tls = e; }},
                                     {"target_groups", [&](const Entry& e) { groups = e; }},
                                     {"sites", [&](const Entry& e) { sites = e; }},
                                 },
                                 "the top level");
    if (!is_map) return;
    if (server)
        detail::read_server(r, *server, config.server);
    else
        r.error(top,
                "missing required key 'server' at the top level (expected a map with at "
                "least 'listen')");
    if (tls) read_https(r, *tls, config);
    if (groups) detail::read_target_groups(r, *groups, config.target_groups);
    if (sites)
        detail::read_sites(r, *sites, config.target_groups, config.sites);
    else
        r.error(top, "missing required key 'sites' at the top level (expected a list of sites)");
}

// The only document of the stream, or nullopt after reporting why there is none.
std::optional<YAML::Node> parse_yaml(Reader& reader, const std::string& yaml) {
    std::vector<YAML::Node> docs;
    try {
        docs = YAML::LoadAll(yaml);
    } catch (const YAML::Exception& e) {
        reader.error(e.mark, "YAML syntax error: " + e.msg);
        return std::nullopt;
    }
    if (docs.empty() || docs.front().IsNull()) {
        reader.error(YAML::Mark::null_mark(),
                     std::string("the config is empty (") + kTopExpected + ")");
        return std::nullopt;
    }
    if (docs.size() > 1) {
        reader.error(docs[1].Mark(), "expected a single YAML document, found " +
                                         std::to_string(docs.size()) + " (remove the '---')");
        return std::nullopt;
    }
    return docs.front();
}

}  // namespace

LoadResult load_config_text(const std::string& yaml, const std::string& file_name,
                            const std::filesystem::path& base_dir) {
    Reader reader(file_name, base_dir);
    LoadResult result;
    Config config;
    config.source = file_name;
    if (auto root = parse_yaml(reader, yaml)) read_config(reader, *root, config);
    // Runtime state lives beside the config unless said otherwise.
    if (config.admin.state_file.empty()) config.admin.state_file = base_dir / "intermission.state.json";
    if (config.admin.audit_log.empty()) config.admin.audit_log = base_dir / "intermission.audit.jsonl";
    result.errors = reader.take_errors();
    // Checks that need the whole file (unknown groups, duplicates) are reported after the
    // section they are found in; users read errors top to bottom.
    std::stable_sort(result.errors.begin(), result.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                         return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                     });
    if (result.errors.empty()) result.config = std::move(config);
    return result;
}

LoadResult load_config_file(const std::filesystem::path& file) {
    const std::string name = file.string();
    auto fail = [&](int err) {
        LoadResult result;
        result.errors.push_back(
            {name, 0, 0, std::string("cannot read the config file: ") + std::strerror(err)});
        return result;
    };
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(name.c_str(), "rb"), std::fclose);
    if (!f) return fail(errno);
    std::string yaml;
    char buf[16384];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) yaml.append(buf, n);
    if (std::ferror(f.get())) return fail(errno);
    std::error_code ec;
    auto base = std::filesystem::absolute(file, ec).parent_path();
    if (ec) base = file.parent_path();
    return load_config_text(yaml, name, base);
}

}  // namespace im::config
