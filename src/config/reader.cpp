#include "config/reader.hpp"

#include <algorithm>
#include <utility>

#include "config/glob.hpp"
#include "config/values.hpp"

namespace im::config::detail {

std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "'" + node.Scalar() + "'";
        default:
            return "nothing";
    }
}

std::string in_quotes(std::string_view path) {
    return "'" + std::string(path) + "'";
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
}

void Reader::error(const YAML::Mark& mark, std::string message) {
    ConfigError e;
    e.file = file_;
    if (mark.line >= 0) {
        e.line = mark.line + 1;
        e.column = mark.column + 1;
    }
    e.message = std::move(message);
    errors_.push_back(std::move(e));
}

void Reader::error(const Entry& entry, std::string message) {
    error(mark(entry), std::move(message));
}

void Reader::error_at_key(const Entry& entry, std::string message) {
    error(key_mark(entry), std::move(message));
}

YAML::Mark Reader::mark(const Entry& entry) {
    const bool empty_value = !entry.value.IsDefined() || entry.value.IsNull();
    if (empty_value && entry.key.IsDefined() && entry.key.Mark().line >= 0) return entry.key.Mark();
    return entry.value.Mark();
}

YAML::Mark Reader::key_mark(const Entry& entry) {
    if (entry.key.IsDefined() && entry.key.Mark().line >= 0) return entry.key.Mark();
    return mark(entry);
}

bool Reader::fields(const Entry& entry, const std::vector<Field>& fields,
                    const std::string& context) {
    const std::string where = context.empty() ? in_quotes(entry.path) : context;
    // "in 'server'", "in target group 'app'", but "at the top level".
    const std::string in = entry.path.empty() ? " at " : " in ";
    if (entry.value.IsNull()) return true;
    if (!entry.value.IsMap()) {
        error(entry, "expected a map for " + where + ", got " + describe(entry.value));
        return false;
    }
    std::vector<std::string> allowed;
    for (const auto& f : fields) allowed.emplace_back(f.key);
    std::vector<std::pair<std::string, int>> seen;  // key, 1-based line
    for (const auto& kv : entry.value) {
        Entry child{kv.first, kv.second, {}};
        if (!kv.first.IsScalar()) {
            error(kv.first.Mark(),
                  "expected a key name" + in + where + ", got " + describe(kv.first));
            continue;
        }
        const std::string key = kv.first.Scalar();
        child.path = entry.path.empty() ? key : entry.path + "." + key;
        const auto dup =
            std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key; });
        if (dup != seen.end()) {
            error_at_key(child, "duplicate key '" + key + "'" + in + where +
                                    " (first defined at line " + std::to_string(dup->second) + ")");
            continue;
        }
        seen.emplace_back(key, line(child));
        const auto field = std::find_if(fields.begin(), fields.end(),
                                        [&](const Field& f) { return f.key == key; });
        if (field == fields.end()) {
            error_at_key(child,
                         "unknown key '" + key + "'" + in + where +
                             (allowed.empty() ? " (expected no keys)"
                                              : " (expected one of: " + join(allowed) + ")"));
            continue;
        }
        field->read(child);
    }
    return true;
}

std::optional<std::vector<Entry>> Reader::items(const Entry& entry) {
    if (!entry.value.IsSequence()) {
        error(entry,
              "expected a list for " + in_quotes(entry.path) + ", got " + describe(entry.value));
        return std::nullopt;
    }
    std::vector<Entry> out;
    for (std::size_t i = 0; i < entry.value.size(); ++i)
        out.push_back({YAML::Node(), entry.value[i], entry.path + "[" + std::to_string(i) + "]"});
    return out;
}

std::optional<std::vector<Entry>> Reader::scalars(const Entry& entry, bool allow_single,
                                                  std::string_view what) {
    if (allow_single && entry.value.IsScalar()) return std::vector<Entry>{entry};
    if (!entry.value.IsSequence()) {
        const std::string expected = allow_single ? std::string(what) + " or a list of them"
                                                  : "a list (each " + std::string(what) + ")";
        error(entry, "expected " + expected + " for " + in_quotes(entry.path) + ", got " +
                         describe(entry.value));
        return std::nullopt;
    }
    auto list = items(entry);
    std::vector<Entry> out;
    for (auto& item : *list) {
        if (item.value.IsScalar())
            out.push_back(std::move(item));
        else
            error(item, "expected " + std::string(what) + " for " + in_quotes(item.path) +
                            ", got " + describe(item.value));
    }
    return out;
}

std::optional<std::string> Reader::scalar(const Entry& entry, std::string_view what) {
    if (entry.value.IsScalar()) return entry.value.Scalar();
    error(entry, "expected " + std::string(what) + " for " + in_quotes(entry.path) + ", got " +
                     describe(entry.value));
    return std::nullopt;
}

void Reader::bad_value(const Entry& entry, std::string_view noun, const std::string& text,
                       const std::string& expected) {
    error(entry, "bad " + std::string(noun) + " '" + text + "' for " + in_quotes(entry.path) +
                     " (" + expected + ")");
}

void Reader::text(const Entry& entry, std::string& out, bool allow_empty) {
    auto s = scalar(entry, "a string");
    if (!s) return;
    if (s->empty() && !allow_empty)
        error(entry, "expected a non-empty string for " + in_quotes(entry.path));
    else
        out = *s;
}

void Reader::boolean(const Entry& entry, bool& out) {
    auto s = scalar(entry, "true or false");
    if (!s) return;
    if (*s == "true" || *s == "True" || *s == "TRUE")
        out = true;
    else if (*s == "false" || *s == "False" || *s == "FALSE")
        out = false;
    else
        bad_value(entry, "boolean", *s, "expected true or false");
}

void Reader::duration(const Entry& entry, Duration& out, bool allow_zero) {
    auto s = scalar(entry, "a duration (e.g. 250ms or 2s)");
    if (!s) return;
    auto d = parse_duration(*s);
    if (!d)
        bad_value(entry, "duration", *s, d.expected);
    else if (!allow_zero && d.value->count() == 0)
        bad_value(entry, "duration", *s, "expected a duration above 0, e.g. 250ms or 2s");
    else
        out = *d.value;
}

std::optional<std::uint64_t> Reader::size_value(const Entry& entry, std::uint64_t min,
                                                std::uint64_t max) {
    auto s = scalar(entry, "a size (e.g. 16384 or 16KiB)");
    if (!s) return std::nullopt;
    auto n = parse_size(*s);
    if (!n) {
        bad_value(entry, "size", *s, n.expected);
        return std::nullopt;
    }
    if (*n.value < min || *n.value > max) {
        bad_value(entry, "size", *s,
                  "expected from " + std::to_string(min) + " to " + std::to_string(max) + " bytes");
        return std::nullopt;
    }
    return n.value;
}

std::optional<std::int64_t> Reader::integer_value(const Entry& entry, std::int64_t min,
                                                  std::int64_t max) {
    auto s = scalar(entry, "an integer");
    if (!s) return std::nullopt;
    auto n = parse_integer(*s, min, max);
    if (!n) bad_value(entry, "integer", *s, n.expected);
    return n.value;
}

std::optional<Address> Reader::address(const Entry& entry, bool allow_scheme) {
    auto s = scalar(entry, allow_scheme ? "an address host:port or https://host:port" : "an address host:port");
    if (!s) return std::nullopt;
    std::string_view text = *s;
    bool https = allow_scheme && text.starts_with("https://");
    if (allow_scheme && (https || text.starts_with("http://"))) text.remove_prefix(text.find("//") + 2);
    auto a = parse_address(text);
    if (!a) bad_value(entry, "address", *s, a.expected);
    if (a.value) a.value->tls = https;
    return a.value;
}

void Reader::path_glob(const Entry& entry, std::string& out) {
    auto s = scalar(entry, "a path glob (e.g. /static/*)");
    if (!s) return;
    if (auto why = glob_error(*s))
        error(entry, "bad path glob '" + *s + "' for " + in_quotes(entry.path) + " (" + *why + ")");
    else
        out = *s;
}

void Reader::path_globs(const Entry& entry, std::vector<std::string>& out) {
    auto globs = scalars(entry, true, "a path glob (e.g. /static/*)");
    if (!globs) return;
    if (globs->empty()) error(entry, "expected at least one glob for " + in_quotes(entry.path));
    for (const auto& g : *globs) {
        std::string glob;
        path_glob(g, glob);
        if (!glob.empty()) out.push_back(std::move(glob));
    }
}

std::optional<Cidr> Reader::cidr(const Entry& entry) {
    auto s = scalar(entry, "an IP address or network (e.g. 10.0.0.0/8)");
    if (!s) return std::nullopt;
    auto c = parse_cidr(*s);
    if (!c) bad_value(entry, "network", *s, c.expected);
    return c.value;
}

void Reader::cidrs(const Entry& entry, std::vector<Cidr>& out) {
    auto list = scalars(entry, true, "an IP address or network (e.g. 10.0.0.0/8)");
    if (!list) return;
    if (list->empty())
        error(entry, "expected at least one address or network for " + in_quotes(entry.path) +
                         ", e.g. [\"10.0.0.0/8\"]");
    for (const auto& item : *list)
        if (auto c = cidr(item)) out.push_back(std::move(*c));
}

std::optional<std::int64_t> Reader::timestamp(const Entry& entry) {
    auto s = scalar(entry, "a timestamp (e.g. 2026-11-24T03:00:00Z)");
    if (!s) return std::nullopt;
    auto t = parse_timestamp(*s);
    if (!t) bad_value(entry, "timestamp", *s, t.expected);
    return t.value;
}

std::filesystem::path Reader::resolve(const std::string& path) const {
    const std::filesystem::path p(path);
    if (p.is_absolute() || base_dir_.empty()) return p.lexically_normal();
    return (base_dir_ / p).lexically_normal();
}

}  // namespace im::config::detail
