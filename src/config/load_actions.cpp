// Rule actions (forward, store, page, fixed, redirect): exactly one per rule
// or default_action, each with its own options.
#include <algorithm>
#include <system_error>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

constexpr std::string_view kActionNames[] = {"forward", "store", "page", "fixed", "redirect"};

// Reports a group that is not defined; false then.
bool known_group(Reader& r, const Entry& entry, const ActionScope& scope, const std::string& name) {
    const auto& groups = scope.groups;
    if (std::any_of(groups.begin(), groups.end(), [&](const auto& g) { return g.name == name; }))
        return true;
    std::vector<std::string> names;
    for (const auto& g : groups) names.push_back(g.name);
    r.error(entry, "unknown target group '" + name + "' for " + in_quotes(entry.path) +
                       (names.empty() ? " (no target_groups are defined)"
                                      : " (defined groups: " + join(names) + ")"));
    return false;
}

constexpr unsigned kMaxWeight = 1000;

// forward: [{group: app, weight: 90}, {group: canary, weight: 10}]
void read_weighted(Reader& r, const Entry& entry, const ActionScope& scope, Action& action) {
    auto list = r.items(entry);
    if (!list) return;
    if (list->empty())
        r.error(entry, "expected at least one target group for " + in_quotes(entry.path) +
                           ", e.g. [{group: app, weight: 90}, {group: canary, weight: 10}]");
    std::vector<int> lines;
    for (const auto& item : *list) {
        WeightedGroup w;
        std::optional<Entry> group;
        const bool is_map = r.fields(
            item, {
                      {"group", [&](const Entry& e) { group = e; }},
                      {"weight", [&](const Entry& e) { r.integer(e, w.weight, 1, kMaxWeight); }},
                  });
        if (!is_map) continue;
        if (!group) {
            r.error(item, "missing required key 'group' in " + in_quotes(item.path) +
                              " (expected {group: <target group>, weight: <1-1000>})");
            continue;
        }
        auto name = r.scalar(*group, "a target group name");
        if (!name || !known_group(r, *group, scope, *name)) continue;
        w.group = *name;
        const auto dup = std::find_if(action.weighted.begin(), action.weighted.end(),
                                      [&](const WeightedGroup& x) { return x.group == w.group; });
        if (dup != action.weighted.end()) {
            r.error(*group, "target group '" + w.group + "' is listed twice in " +
                                in_quotes(entry.path) + " (first at line " +
                                std::to_string(lines[dup - action.weighted.begin()]) + ")");
            continue;
        }
        action.weighted.push_back(std::move(w));
        lines.push_back(Reader::line(*group));
    }
}

void read_forward(Reader& r, const Entry& entry, const ActionScope& scope, Action& action) {
    if (entry.value.IsSequence()) {
        read_weighted(r, entry, scope, action);
        return;
    }
    auto name = r.scalar(entry, "a target group name or a list of {group, weight}");
    if (!name) return;
    action.target_group = *name;
    known_group(r, entry, scope, *name);
}

void read_store(Reader& r, const Entry& entry, const ActionScope& scope,
                const std::string& context) {
    if (!entry.value.IsNull() && !entry.value.IsMap())
        r.error(entry, "expected {} for " + in_quotes(entry.path) +
                           " (store takes no options), got " + describe(entry.value));
    else
        r.fields(entry, {});
    need_pages(r, entry, scope, context);
}

void read_status(Reader& r, const Entry& entry, int& status, int min, int max) {
    r.integer(entry, status, min, max);
}

void read_page(Reader& r, const Entry& entry, const ActionScope& scope, const std::string& context,
               Action& action) {
    bool have_file = false;
    bool is_map = r.fields(entry, {
        {"file", [&](const Entry& e) { have_file = true; read_page_file(r, e, scope, action.file); }},
        {"status", [&](const Entry& e) { read_status(r, e, action.status, 200, 599); }},
        {"retry_after", [&](const Entry& e) { r.duration(e, action.retry_after.emplace(), true); }},
    });
    if (is_map && !have_file)
        r.error_at_key(entry, "missing required key 'file' in " + in_quotes(entry.path) +
                                  " (expected a page store file, e.g. /maintenance.html)");
    need_pages(r, entry, scope, context);
}

void read_fixed(Reader& r, const Entry& entry, Action& action) {
    r.fields(entry, {
        {"status", [&](const Entry& e) { read_status(r, e, action.status, 200, 599); }},
        {"content_type", [&](const Entry& e) { r.text(e, action.content_type); }},
        {"body", [&](const Entry& e) { r.text(e, action.body, true); }},
        {"retry_after", [&](const Entry& e) { r.duration(e, action.retry_after.emplace(), true); }},
    });
}

// Only {host}, {path} and {query} may appear in braces.
std::optional<std::string> location_error(std::string_view t) {
    for (std::size_t i = 0; i < t.size(); ++i) {
        if (t[i] == '}') return "a '}' without '{'";
        if (t[i] != '{') continue;
        auto close = t.find('}', i);
        if (close == std::string_view::npos) return "a '{' without '}'";
        auto name = t.substr(i + 1, close - i - 1);
        if (name != "host" && name != "path" && name != "query")
            return "unknown variable {" + std::string(name) + "} (expected {host}, {path} or {query})";
        i = close;
    }
    return std::nullopt;
}

void read_redirect(Reader& r, const Entry& entry, Action& action) {
    action.status = 302;
    bool have_location = false;
    bool is_map = r.fields(entry, {
        {"location", [&](const Entry& e) {
             have_location = true;
             r.text(e, action.location);
             if (auto why = location_error(action.location))
                 r.error(e, "bad redirect location '" + action.location + "' for " +
                                in_quotes(e.path) + " (" + *why + ")");
         }},
        {"status", [&](const Entry& e) {
             read_status(r, e, action.status, 300, 399);
             static constexpr int kRedirects[] = {301, 302, 303, 307, 308};
             if (std::find(std::begin(kRedirects), std::end(kRedirects), action.status) ==
                 std::end(kRedirects))
                 r.error(e, "bad redirect status " + std::to_string(action.status) + " for " +
                                in_quotes(e.path) + " (expected 301, 302, 303, 307 or 308)");
         }},
    });
    if (is_map && !have_location)
        r.error_at_key(entry, "missing required key 'location' in " + in_quotes(entry.path) +
                                  " (expected e.g. https://{host}{path})");
}

Action::Kind kind_of(std::string_view name) {
    if (name == "store") return Action::Kind::store;
    if (name == "page") return Action::Kind::page;
    if (name == "fixed") return Action::Kind::fixed;
    if (name == "redirect") return Action::Kind::redirect;
    return Action::Kind::forward;
}

}  // namespace

void need_pages(Reader& r, const Entry& entry, const ActionScope& scope,
                const std::string& context) {
    if (!scope.pages_root)
        r.error_at_key(entry, "'" + entry.key.Scalar() + "' in " + context +
                                  " needs a page store, but " + scope.label +
                                  " has no 'pages' section");
}

// The page file must exist in the store: a typo here would otherwise show
// up only when the site is down, which is the worst time to find it.
void read_page_file(Reader& r, const Entry& entry, const ActionScope& scope, std::string& file) {
    r.text(entry, file);
    if (file.empty()) return;
    if (file.front() != '/' || file.find("..") != std::string::npos) {
        r.error(entry, "bad page file '" + file + "' for " + in_quotes(entry.path) +
                           " (expected a path in the page store starting with '/', e.g. "
                           "/maintenance.html)");
        return;
    }
    if (!scope.pages_root || scope.pages_root->empty()) return;
    std::error_code ec;
    auto path = *scope.pages_root / file.substr(1);
    if (!std::filesystem::is_regular_file(path, ec))
        r.error(entry, "page file '" + file + "' for " + in_quotes(entry.path) +
                           " is not in the page store (looked for " + path.string() + ")");
}

void add_action_fields(std::vector<Field>& fields, std::vector<Entry>& found) {
    for (auto name : kActionNames)
        fields.push_back({name, [&found](const Entry& e) { found.push_back(e); }});
}

std::optional<Action> read_action(Reader& r, const Entry& owner, const std::vector<Entry>& found,
                                  const ActionScope& scope, const std::string& context) {
    std::vector<std::string> names(std::begin(kActionNames), std::end(kActionNames));
    if (found.empty()) {
        r.error(owner, context + " has no action (expected one of: " + join(names) + ")");
        return std::nullopt;
    }
    if (found.size() > 1) {
        r.error_at_key(found[1], context + " has both '" + found[0].key.Scalar() + "' and '" +
                                     found[1].key.Scalar() + "' (expected exactly one action)");
        return std::nullopt;
    }
    const Entry& e = found.front();
    Action action;
    action.kind = kind_of(e.key.Scalar());
    switch (action.kind) {
    case Action::Kind::forward: read_forward(r, e, scope, action); break;
    case Action::Kind::store: read_store(r, e, scope, context); break;
    case Action::Kind::page: read_page(r, e, scope, context, action); break;
    case Action::Kind::fixed: read_fixed(r, e, action); break;
    case Action::Kind::redirect: read_redirect(r, e, action); break;
    }
    return action;
}

}  // namespace im::config::detail
