// The `match` of a rule: path, host, method, header, query and source conditions.
#include <algorithm>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// An HTTP token (RFC 9110): method names and header field names.
bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

bool is_control(char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

std::string lower(std::string s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
}

std::string upper(std::string s) {
    for (char& c : s)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return s;
}

// One scalar or a list of them, reported when the list is empty.
std::vector<Entry> one_or_more(Reader& r, const Entry& entry, std::string_view what) {
    auto list = r.scalars(entry, true, what);
    if (!list) return {};
    if (list->empty())
        r.error(entry,
                "expected at least one " + std::string(what) + " for " + in_quotes(entry.path));
    return std::move(*list);
}

// Why a host glob cannot match a Host header (lowercased, without port), or nullopt.
std::optional<std::string> host_glob_error(std::string_view glob) {
    if (glob.empty()) return "a host glob cannot be empty; expected e.g. api.example.com";
    if (glob.front() == '[') {
        if (glob.back() != ']' || !is_ip_address(glob.substr(1, glob.size() - 2)))
            return "expected an IPv6 address in [] without a port, e.g. [::1]";
        return std::nullopt;
    }
    if (glob.find(':') != std::string_view::npos)
        return "expected a host without a port, e.g. api.example.com or *.example.com";
    for (char c : glob)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == '*' || c == '?'))
            return "expected letters, digits, '-', '.', '_' and the wildcards '*' and '?', e.g. "
                   "*.api.example.com";
    return std::nullopt;
}

void read_hosts(Reader& r, const Entry& entry, std::vector<std::string>& hosts) {
    for (const auto& item : one_or_more(r, entry, "host glob")) {
        std::string glob = lower(item.value.Scalar());
        if (auto why = host_glob_error(glob))
            r.error(item, "bad host glob '" + item.value.Scalar() + "' for " +
                              in_quotes(item.path) + " (" + *why + ")");
        else
            hosts.push_back(std::move(glob));
    }
}

void read_methods(Reader& r, const Entry& entry, std::vector<std::string>& methods) {
    for (const auto& item : one_or_more(r, entry, "method")) {
        const std::string& text = item.value.Scalar();
        if (!is_token(text)) {
            r.error(item, "bad method '" + text + "' for " + in_quotes(item.path) +
                              " (expected an HTTP method name, e.g. GET or POST)");
            continue;
        }
        std::string method = upper(text);
        if (std::find(methods.begin(), methods.end(), method) == methods.end())
            methods.push_back(std::move(method));
    }
}

// Value globs of a header or query condition; `forbidden` are characters the value can never
// hold where it is matched.
void read_value_globs(Reader& r, const Entry& entry, std::string_view noun,
                      std::string_view forbidden, std::vector<std::string>& out) {
    for (const auto& item : one_or_more(r, entry, "value glob")) {
        const std::string& glob = item.value.Scalar();
        const bool bad = std::any_of(glob.begin(), glob.end(), [&](char c) {
            return is_control(c) || forbidden.find(c) != std::string_view::npos;
        });
        if (bad)
            r.error(item, "bad " + std::string(noun) + " glob '" + glob + "' for " +
                              in_quotes(item.path) + " (expected text without control characters" +
                              (forbidden.empty() ? std::string()
                                                 : " or any of '" + std::string(forbidden) + "'") +
                              "; '*' matches any run of characters, '?' one)");
        else
            out.push_back(glob);
    }
}

// A map, or a list of maps, each read by `read_one`.
template <typename F>
void each_map(Reader& r, const Entry& entry, F&& read_one) {
    if (!entry.value.IsSequence()) {
        read_one(entry);
        return;
    }
    auto list = r.items(entry);
    if (list && list->empty())
        r.error(entry, "expected at least one condition for " + in_quotes(entry.path));
    for (const auto& item : list.value_or(std::vector<Entry>{})) read_one(item);
}

void read_header(Reader& r, const Entry& entry, std::vector<HeaderMatch>& headers) {
    HeaderMatch m;
    bool have_name = false, have_value = false;
    const bool is_map = r.fields(
        entry, {
                   {"name",
                    [&](const Entry& e) {
                        have_name = true;
                        auto s = r.scalar(e, "a header name");
                        if (!s) return;
                        if (is_token(*s))
                            m.name = *s;
                        else
                            r.error(e, "bad header name '" + *s + "' for " + in_quotes(e.path) +
                                           " (expected a header field name, e.g. X-Canary)");
                    }},
                   {"value",
                    [&](const Entry& e) {
                        have_value = true;
                        read_value_globs(r, e, "header value", "", m.values);
                    }},
               });
    if (!is_map) return;
    if (!have_name || !have_value) {
        r.error_at_key(entry, "missing required key '" + std::string(have_name ? "value" : "name") +
                                  "' in " + in_quotes(entry.path) +
                                  " (expected {name: <header>, value: <glob or list of globs>})");
        return;
    }
    headers.push_back(std::move(m));
}

void read_query(Reader& r, const Entry& entry, std::vector<QueryMatch>& query) {
    QueryMatch m;
    bool have_key = false;
    const bool is_map = r.fields(
        entry,
        {
            {"key",
             [&](const Entry& e) {
                 have_key = true;
                 auto s = r.scalar(e, "a query parameter name");
                 if (!s) return;
                 const bool bad = s->empty() || std::any_of(s->begin(), s->end(), [](char c) {
                                      return is_control(c) || c == ' ' || c == '\t' || c == '&' ||
                                             c == '=' || c == '#';
                                  });
                 if (bad)
                     r.error(e, "bad query key '" + *s + "' for " + in_quotes(e.path) +
                                    " (expected a parameter name without spaces, '&', "
                                    "'=' or '#', e.g. version)");
                 else
                     m.key = *s;
             }},
            {"value",
             [&](const Entry& e) { read_value_globs(r, e, "query value", " &#", m.values); }},
        });
    if (!is_map) return;
    if (!have_key) {
        r.error_at_key(entry, "missing required key 'key' in " + in_quotes(entry.path) +
                                  " (expected {key: <name>, value: <glob or list of globs>}; "
                                  "without value the key only has to be present)");
        return;
    }
    query.push_back(std::move(m));
}

}  // namespace

void read_match(Reader& r, const Entry& entry, Match& match) {
    r.fields(entry, {
                        {"path", [&](const Entry& e) { r.path_globs(e, match.paths); }},
                        {"host", [&](const Entry& e) { read_hosts(r, e, match.hosts); }},
                        {"method", [&](const Entry& e) { read_methods(r, e, match.methods); }},
                        {"header",
                         [&](const Entry& e) {
                             each_map(r, e,
                                      [&](const Entry& m) { read_header(r, m, match.headers); });
                         }},
                        {"query",
                         [&](const Entry& e) {
                             each_map(r, e, [&](const Entry& m) { read_query(r, m, match.query); });
                         }},
                        {"source", [&](const Entry& e) { r.cidrs(e, match.sources); }},
                    });
}

}  // namespace im::config::detail
