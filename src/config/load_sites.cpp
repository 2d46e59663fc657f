// The `sites` section: hosts, page stores, rules and their actions, and the checks across
// sites (unique names and hosts, one default site).
#include <algorithm>
#include <system_error>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

// What is already taken by earlier sites, with the line where it was taken.
struct Claims {
    std::vector<std::pair<std::string, int>> names;
    struct Host {
        std::string host;
        std::string site_label;
        std::size_t site_index;
        int line;
    };
    std::vector<Host> hosts;
    std::optional<std::pair<std::string, int>> default_site;
};

// What the rules of one site may refer to.
struct SiteScope {
    const std::vector<TargetGroup>& groups;
    std::string label;  // "site 'www'"
    std::size_t index = 0;
    bool has_pages = false;
};

// The keys of one site, read in a fixed order whatever their order in the file.
struct SiteKeys {
    std::optional<Entry> name, hosts, default_site, pages, rules, default_action, maintenance,
        errors, outage;
};

const char* const kNameExpected = "expected letters, digits, '_', '.' or '-'";

void read_root(Reader& r, const Entry& entry, std::filesystem::path& root) {
    std::string text;
    r.text(entry, text);
    if (text.empty()) return;
    const auto path = r.resolve(text);
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    const std::string what = "page store root '" + text + "' for " + in_quotes(entry.path);
    if (status.type() == std::filesystem::file_type::not_found)
        r.error(entry, what + " does not exist (looked for " + path.string() + ")");
    else if (ec)
        r.error(entry, what + " cannot be read (" + path.string() + ": " + ec.message() + ")");
    else if (!std::filesystem::is_directory(status))
        r.error(entry, what + " is not a directory (" + path.string() + ")");
    else
        root = path;
}

void read_index(Reader& r, const Entry& entry, std::string& index) {
    std::string text;
    r.text(entry, text);
    if (text.find('/') != std::string::npos)
        r.error(entry, "bad index file name '" + text + "' for " + in_quotes(entry.path) +
                           " (expected a file name without '/', e.g. index.html)");
    else if (!text.empty())
        index = text;
}

void read_cache_control_paths(Reader& r, const Entry& entry, std::vector<CacheControlRule>& out) {
    auto list = r.items(entry);
    if (!list) return;
    for (const auto& item : *list) {
        CacheControlRule rule;
        bool have_path = false, have_value = false;
        const bool is_map = r.fields(item, {
                                               {"path",
                                                [&](const Entry& e) {
                                                    have_path = true;
                                                    r.path_glob(e, rule.path);
                                                }},
                                               {"value",
                                                [&](const Entry& e) {
                                                    have_value = true;
                                                    r.text(e, rule.value, true);
                                                }},
                                           });
        if (is_map && (!have_path || !have_value))
            r.error(item, "missing required key '" + std::string(have_path ? "value" : "path") +
                              "' in " + in_quotes(item.path) +
                              " (expected {path: <glob>, value: <Cache-Control>})");
        out.push_back(std::move(rule));
    }
}

void read_pages(Reader& r, const Entry& entry, PageStore& pages) {
    bool have_root = false;
    const bool is_map = r.fields(
        entry,
        {
            {"root",
             [&](const Entry& e) {
                 have_root = true;
                 pages.root_position = Reader::position(e);
                 read_root(r, e, pages.root);
             }},
            {"index", [&](const Entry& e) { read_index(r, e, pages.index); }},
            {"cache_control", [&](const Entry& e) { r.text(e, pages.cache_control, true); }},
            {"cache_control_paths",
             [&](const Entry& e) { read_cache_control_paths(r, e, pages.cache_control_paths); }},
            {"compress", [&](const Entry& e) { r.boolean(e, pages.compress); }},
            {"watch", [&](const Entry& e) { r.boolean(e, pages.watch); }},
        });
    if (is_map && !have_root)
        r.error_at_key(entry, "missing required key 'root' in " + in_quotes(entry.path) +
                                  " (expected the folder of the site's pages)");
}

ActionScope action_scope(const SiteScope& scope, const Site& site) {
    ActionScope a{scope.groups, scope.label, std::nullopt};
    if (site.pages) a.pages_root = site.pages->root;
    return a;
}

void read_rules(Reader& r, const Entry& entry, const SiteScope& scope, Site& site) {
    if (entry.value.IsNull()) return;
    auto list = r.items(entry);
    if (!list) return;
    if (list->size() > 10000) {
        r.error(entry, "too many rules for " + scope.label + " (at most 10000)");
        return;
    }
    for (std::size_t i = 0; i < list->size(); ++i) {
        const Entry& item = (*list)[i];
        const std::string context = "rule " + std::to_string(i + 1) + " of " + scope.label;
        Rule rule;
        std::vector<Entry> actions;
        std::vector<Field> fields{{"match", [&](const Entry& e) { read_match(r, e, rule.match); }}};
        add_action_fields(fields, actions);
        if (!r.fields(item, fields, context)) continue;
        if (auto action = read_action(r, item, actions, action_scope(scope, site), context))
            rule.action = *action;
        site.rules.push_back(std::move(rule));
    }
}

void read_default_action(Reader& r, const SiteKeys& keys, const Entry& item, const SiteScope& scope,
                         Site& site) {
    if (!keys.default_action) {
        if (scope.has_pages)
            site.default_action = Action::of(Action::Kind::store);
        else
            r.error_at_key(item, scope.label +
                                     " needs a default_action (expected {forward: "
                                     "<target group>}, or a 'pages' section to serve)");
        return;
    }
    const std::string context = "default_action of " + scope.label;
    std::vector<Entry> actions;
    std::vector<Field> fields;
    add_action_fields(fields, actions);
    if (!r.fields(*keys.default_action, fields, context)) return;
    if (auto action = read_action(r, *keys.default_action, actions, action_scope(scope, site), context))
        site.default_action = *action;
}

void read_name(Reader& r, const SiteKeys& keys, const Entry& item, Claims& claims, Site& site) {
    if (!keys.name) {
        r.error_at_key(item, "missing required key 'name' in " + in_quotes(item.path) +
                                 " (expected a unique site name, e.g. www)");
        return;
    }
    auto name = r.scalar(*keys.name, "a site name");
    if (!name) return;
    if (!is_valid_name(*name)) {
        r.error(*keys.name, "bad site name '" + *name + "' for " + in_quotes(keys.name->path) +
                                " (" + kNameExpected + ")");
        return;
    }
    site.name = *name;
    const auto dup = std::find_if(claims.names.begin(), claims.names.end(),
                                  [&](const auto& c) { return c.first == *name; });
    if (dup != claims.names.end())
        r.error(*keys.name, "duplicate site name '" + *name + "' (first defined at line " +
                                std::to_string(dup->second) + ")");
    else
        claims.names.emplace_back(*name, Reader::line(*keys.name));
}

void claim_host(Reader& r, const Entry& entry, const std::string& host, const SiteScope& scope,
                Claims& claims) {
    const auto taken = std::find_if(claims.hosts.begin(), claims.hosts.end(),
                                    [&](const auto& c) { return c.host == host; });
    if (taken == claims.hosts.end()) {
        claims.hosts.push_back({host, scope.label, scope.index, Reader::line(entry)});
        return;
    }
    const bool same = taken->site_index == scope.index;
    r.error(entry, "host '" + host + "' is " + (same ? "listed twice in " : "already claimed by ") +
                       taken->site_label + " (first at line " + std::to_string(taken->line) + ")");
}

void read_hosts(Reader& r, const Entry& entry, const SiteScope& scope, Claims& claims, Site& site) {
    auto list = r.scalars(entry, false, "a host name");
    for (const auto& item : list.value_or(std::vector<Entry>{})) {
        auto host = parse_host_pattern(item.value.Scalar());
        if (!host) {
            r.error(item, "bad host '" + item.value.Scalar() + "' for " + in_quotes(item.path) +
                              " (" + host.expected + ")");
            continue;
        }
        claim_host(r, item, *host.value, scope, claims);
        site.hosts.push_back(*host.value);
    }
}

void read_default(Reader& r, const Entry& entry, const std::string& label, Claims& claims,
                  Site& site) {
    r.boolean(entry, site.default_site);
    if (!site.default_site) return;
    if (claims.default_site)
        r.error(entry, label + " is also marked as the default site, but " +
                           claims.default_site->first + " at line " +
                           std::to_string(claims.default_site->second) +
                           " already is (at most one site may be the default)");
    else
        claims.default_site.emplace(label, Reader::line(entry));
}

// Judged on what was written, so that a site whose only host is invalid gets one error.
void check_hosts(Reader& r, const SiteKeys& keys, const Entry& item, const std::string& label,
                 const Site& site) {
    const bool none = !keys.hosts || keys.hosts->value.IsNull() ||
                      (keys.hosts->value.IsSequence() && keys.hosts->value.size() == 0);
    if (!none || site.default_site) return;
    const std::string message = label +
                                " has no hosts (expected a list of host names in "
                                "'hosts'; only the default site may have none)";
    if (keys.hosts)
        r.error(*keys.hosts, message);
    else
        r.error_at_key(item, message);
}

std::string site_label(const YAML::Node& node, std::size_t index) {
    if (node.IsMap())
        for (const auto& kv : node)
            if (kv.first.IsScalar() && kv.first.Scalar() == "name" && kv.second.IsScalar())
                return "site '" + kv.second.Scalar() + "'";
    return "site #" + std::to_string(index + 1);
}

void read_site(Reader& r, const Entry& item, SiteScope& scope, Claims& claims, Site& site) {
    const std::string& label = scope.label;
    SiteKeys keys;
    const bool is_map =
        r.fields(item,
                 {
                     {"name", [&](const Entry& e) { keys.name = e; }},
                     {"hosts", [&](const Entry& e) { keys.hosts = e; }},
                     {"default", [&](const Entry& e) { keys.default_site = e; }},
                     {"pages", [&](const Entry& e) { keys.pages = e; }},
                     {"rules", [&](const Entry& e) { keys.rules = e; }},
                     {"default_action", [&](const Entry& e) { keys.default_action = e; }},
                     {"maintenance", [&](const Entry& e) { keys.maintenance = e; }},
                     {"errors", [&](const Entry& e) { keys.errors = e; }},
                     {"outage", [&](const Entry& e) { keys.outage = e; }},
                 },
                 label);
    if (!is_map) return;
    read_name(r, keys, item, claims, site);
    if (keys.hosts) read_hosts(r, *keys.hosts, scope, claims, site);
    if (keys.default_site) read_default(r, *keys.default_site, label, claims, site);
    check_hosts(r, keys, item, label, site);
    if (keys.pages) read_pages(r, *keys.pages, site.pages.emplace());
    scope.has_pages = keys.pages.has_value();
    if (keys.rules) read_rules(r, *keys.rules, scope, site);
    read_default_action(r, keys, item, scope, site);
    const ActionScope pages = action_scope(scope, site);
    if (keys.maintenance) read_maintenance(r, *keys.maintenance, pages, site.maintenance);
    if (keys.errors) read_error_pages(r, *keys.errors, pages, site.errors);
    if (keys.outage) read_outage(r, *keys.outage, pages, site.outage);
}

}  // namespace

void read_sites(Reader& r, const Entry& entry, const std::vector<TargetGroup>& groups,
                std::vector<Site>& sites) {
    auto list = r.items(entry);
    if (!list) return;
    if (list->empty())
        r.error(entry,
                "expected at least one site for 'sites', e.g. [{name: www, hosts: "
                "[www.example.com], default_action: {forward: app}}]");
    Claims claims;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const Entry& item = (*list)[i];
        SiteScope scope{groups, site_label(item.value, i), i};
        read_site(r, item, scope, claims, sites.emplace_back());
    }
}

}  // namespace im::config::detail
