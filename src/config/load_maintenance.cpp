// A site's `maintenance` (with scheduled windows and operator bypass), `errors` (custom error
// responses) and `outage` (what visitors get when no target is healthy).
//
// Bypass secrets are never copied into a message: errors about them name the key or the file.
#include <algorithm>
#include <fstream>
#include <iterator>
#include <system_error>

#include "config/reader.hpp"
#include "config/values.hpp"

namespace im::config::detail {
namespace {

constexpr std::size_t kMinCookieSecret = 16;
constexpr std::uintmax_t kMaxSecretFile = 64 * 1024;

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_token_char);
}

// Where a secret came from, for messages: "the value of 'x.value'" or "the value in <file>".
struct SecretSource {
    std::string noun;  // "value", "secret"
    std::string where;
};

// The content of a secret file (relative to the config's folder), trailing whitespace trimmed;
// nullopt after an error that names the file.
std::optional<std::string> read_secret_file(Reader& r, const Entry& entry, SecretSource& source) {
    std::string name;
    r.text(entry, name);
    if (name.empty()) return std::nullopt;
    const auto path = r.resolve(name);
    const std::string what = "secret file '" + name + "' for " + in_quotes(entry.path);
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
        r.error(entry, "cannot read the " + what + " (looked for " + path.string() + ": " +
                           (ec ? ec.message() : "no such file") + ")");
        return std::nullopt;
    }
    if (!std::filesystem::is_regular_file(status)) {
        r.error(entry, "the " + what + " is not a regular file (" + path.string() + ")");
        return std::nullopt;
    }
    const auto size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxSecretFile) {
        r.error(entry, "the " + what + " is larger than 64KiB (" + path.string() + ")");
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) {
        r.error(entry, "cannot read the " + what + " (" + path.string() + ")");
        return std::nullopt;
    }
    while (!content.empty() && is_space(content.back())) content.pop_back();
    source.where = "in " + path.string();
    if (content.empty()) {
        r.error(entry, "the " + what + " is empty (" + path.string() + ")");
        return std::nullopt;
    }
    return content;
}

// A header bypass value must be something a client can send: no control characters, no
// surrounding whitespace (HTTP parsers strip it).
bool check_header_secret(Reader& r, const Entry& entry, const std::string& value,
                         const SecretSource& source) {
    const std::string what = "the " + source.noun + " " + source.where;
    if (value.empty()) {
        r.error(entry, what + " is empty (expected a non-empty secret)");
        return false;
    }
    if (std::any_of(value.begin(), value.end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return (u < 0x20 && c != '\t') || u == 0x7f;
        })) {
        r.error(entry, what +
                           " contains a control character or a line break (expected a "
                           "header value a client can send)");
        return false;
    }
    if (is_space(value.front()) || is_space(value.back())) {
        r.error(entry, what +
                           " starts or ends with whitespace, which HTTP strips from header "
                           "values (expected a secret without surrounding spaces)");
        return false;
    }
    return true;
}

// `inline_key` (e.g. value) or `file_key` (e.g. value_file): exactly one. `check` validates
// the secret wherever it came from.
struct SecretKeys {
    std::optional<Entry> inline_entry;
    std::optional<Entry> file_entry;
};

template <typename Check>
std::optional<std::string> read_secret(Reader& r, const Entry& owner, const SecretKeys& keys,
                                       std::string_view inline_key, std::string_view file_key,
                                       std::string_view noun, Check&& check) {
    if (keys.inline_entry && keys.file_entry) {
        const Entry& second = Reader::line(*keys.inline_entry) <= Reader::line(*keys.file_entry)
                                  ? *keys.file_entry
                                  : *keys.inline_entry;
        r.error_at_key(second, "'" + std::string(inline_key) + "' and '" + std::string(file_key) +
                                   "' in " + in_quotes(owner.path) +
                                   " exclude each other (expected exactly one)");
        return std::nullopt;
    }
    SecretSource source{std::string(noun), {}};
    std::optional<std::string> secret;
    const Entry* at = nullptr;
    if (keys.inline_entry) {
        at = &*keys.inline_entry;
        source.where = "of " + in_quotes(at->path);
        if (auto s = r.scalar(*at, "a string")) secret = *s;
    } else if (keys.file_entry) {
        at = &*keys.file_entry;
        secret = read_secret_file(r, *at, source);
    } else {
        r.error_at_key(owner, "missing '" + std::string(inline_key) + "' or '" +
                                  std::string(file_key) + "' in " + in_quotes(owner.path) +
                                  " (expected exactly one: the secret, or a file holding it)");
        return std::nullopt;
    }
    if (!secret || !check(*at, *secret, source)) return std::nullopt;
    return secret;
}

void read_bypass_header(Reader& r, const Entry& entry, Bypass& bypass) {
    std::optional<Entry> name;
    SecretKeys keys;
    const bool is_map =
        r.fields(entry, {
                            {"name", [&](const Entry& e) { name = e; }},
                            {"value", [&](const Entry& e) { keys.inline_entry = e; }},
                            {"value_file", [&](const Entry& e) { keys.file_entry = e; }},
                        });
    if (!is_map) return;
    std::string header;
    if (!name) {
        r.error_at_key(entry, "missing required key 'name' in " + in_quotes(entry.path) +
                                  " (expected {name: <header>, value: <secret>} or "
                                  "{name: <header>, value_file: <file>})");
    } else if (auto s = r.scalar(*name, "a header name")) {
        if (is_token(*s))
            header = *s;
        else
            r.error(*name, "bad header name '" + *s + "' for " + in_quotes(name->path) +
                               " (expected a header field name, e.g. X-Maintenance-Bypass)");
    }
    auto value = read_secret(r, entry, keys, "value", "value_file", "value",
                             [&](const Entry& at, const std::string& v, const SecretSource& src) {
                                 return check_header_secret(r, at, v, src);
                             });
    if (header.empty() || !value) return;
    bypass.header_name = header;
    bypass.header_value = *value;
}

void read_cookie_path(Reader& r, const Entry& entry, std::string& out) {
    auto s = r.scalar(entry, "a URL path");
    if (!s) return;
    const bool bad =
        s->empty() || s->front() != '/' || std::any_of(s->begin(), s->end(), [](char c) {
            const auto u = static_cast<unsigned char>(c);
            return u <= 0x20 || u == 0x7f || c == '?' || c == '#';
        });
    if (bad)
        r.error(entry, "bad bypass path '" + *s + "' for " + in_quotes(entry.path) +
                           " (expected a path starting with '/', without spaces, '?' or '#', "
                           "e.g. /.intermission/bypass)");
    else
        out = *s;
}

void read_cookie_name(Reader& r, const Entry& entry, std::string& out) {
    auto s = r.scalar(entry, "a cookie name");
    if (!s) return;
    if (is_token(*s))
        out = *s;
    else
        r.error(entry, "bad cookie name '" + *s + "' for " + in_quotes(entry.path) +
                           " (expected letters, digits and !#$%&'*+-.^_`|~, e.g. "
                           "intermission_bypass)");
}

void read_bypass_cookie(Reader& r, const Entry& entry, Bypass& bypass) {
    SecretKeys keys;
    const bool is_map = r.fields(
        entry, {
                   {"secret", [&](const Entry& e) { keys.inline_entry = e; }},
                   {"secret_file", [&](const Entry& e) { keys.file_entry = e; }},
                   {"path", [&](const Entry& e) { read_cookie_path(r, e, bypass.cookie_path); }},
                   {"name", [&](const Entry& e) { read_cookie_name(r, e, bypass.cookie_name); }},
                   {"ttl", [&](const Entry& e) { r.duration(e, bypass.cookie_ttl); }},
               });
    if (!is_map) return;
    auto secret =
        read_secret(r, entry, keys, "secret", "secret_file", "secret",
                    [&](const Entry& at, const std::string& s, const SecretSource& src) {
                        if (s.size() >= kMinCookieSecret) return true;
                        r.error(at, "the secret " + src.where + " is shorter than 16 bytes " +
                                        "(expected at least 16 random bytes, e.g. the output of "
                                        "'openssl rand -hex 32')");
                        return false;
                    });
    if (secret) bypass.cookie_secret = *secret;
}

void read_bypass(Reader& r, const Entry& entry, Bypass& bypass) {
    r.fields(entry, {
                        {"header", [&](const Entry& e) { read_bypass_header(r, e, bypass); }},
                        {"sources", [&](const Entry& e) { r.cidrs(e, bypass.sources); }},
                        {"cookie", [&](const Entry& e) { read_bypass_cookie(r, e, bypass); }},
                    });
}

void read_windows(Reader& r, const Entry& entry, std::vector<Window>& windows) {
    if (entry.value.IsNull()) return;
    auto list = r.items(entry);
    if (!list) return;
    for (const auto& item : *list) {
        Window w;
        std::optional<Entry> start_key, end_key;
        std::optional<std::int64_t> start, end;
        const bool is_map =
            r.fields(item, {
                               {"start",
                                [&](const Entry& e) {
                                    start_key = e;
                                    start = r.timestamp(e);
                                }},
                               {"end",
                                [&](const Entry& e) {
                                    end_key = e;
                                    end = r.timestamp(e);
                                }},
                               {"reason", [&](const Entry& e) { r.text(e, w.reason, true); }},
                           });
        if (!is_map) continue;
        if (!start_key || !end_key) {
            r.error(item, "missing required key '" + std::string(start_key ? "end" : "start") +
                              "' in " + in_quotes(item.path) +
                              " (expected {start: <timestamp>, end: <timestamp>}, e.g. "
                              "2026-11-24T02:00:00Z)");
            continue;
        }
        if (!start || !end) continue;
        if (*end <= *start) {
            r.error(*end_key, "window end " + end_key->value.Scalar() + " for " +
                                  in_quotes(end_key->path) + " is not after its start " +
                                  start_key->value.Scalar() + " (expected end > start)");
            continue;
        }
        w.start = *start;
        w.end = *end;
        windows.push_back(std::move(w));
    }
}

// A page store file given explicitly: the site needs pages, and the file must be in them.
void read_site_page(Reader& r, const Entry& entry, const ActionScope& scope,
                    const std::string& context, std::string& page) {
    need_pages(r, entry, scope, context);
    read_page_file(r, entry, scope, page);
}

std::string failure_names() {
    std::vector<std::string> names;
    for (auto f : {GatewayFailure::connect_failed, GatewayFailure::reset, GatewayFailure::timeout,
                   GatewayFailure::no_healthy_target, GatewayFailure::bad_response})
        names.emplace_back(gateway_failure_name(f));
    return join(names);
}

void read_error_match(Reader& r, const Entry& entry, ErrorPage& page) {
    auto list = r.scalars(entry, true, "a status, a status range or a gateway failure");
    if (!list) return;
    if (list->empty())
        r.error(entry, "expected at least one status or failure for " + in_quotes(entry.path) +
                           ", e.g. [500, \"502-504\", timeout]");
    for (const auto& item : *list) {
        const std::string& text = item.value.Scalar();
        if (auto failure = parse_gateway_failure(text)) {
            page.failures.push_back(*failure);
            continue;
        }
        if (!text.empty() && text.front() >= '0' && text.front() <= '9') {
            auto range = parse_status_range(text);
            if (range)
                page.statuses.push_back(*range.value);
            else
                r.error(item, "bad status range '" + text + "' for " + in_quotes(item.path) + " (" +
                                  range.expected + ")");
            continue;
        }
        r.error(item, "unknown gateway failure '" + text + "' for " + in_quotes(item.path) +
                          " (expected a status, a range like \"502-504\", or one of: " +
                          failure_names() + ")");
    }
}

}  // namespace

void read_maintenance(Reader& r, const Entry& entry, const ActionScope& scope, Maintenance& m) {
    const std::string context = "maintenance of " + scope.label;
    r.fields(entry,
             {
                 {"enabled", [&](const Entry& e) { r.boolean(e, m.enabled); }},
                 {"reason", [&](const Entry& e) { r.text(e, m.reason, true); }},
                 {"message", [&](const Entry& e) { r.text(e, m.message); }},
                 {"until",
                  [&](const Entry& e) {
                      if (auto t = r.timestamp(e)) m.until = *t;
                  }},
                 {"page", [&](const Entry& e) { read_site_page(r, e, scope, context, m.page); }},
                 {"json_page", [&](const Entry& e) { read_site_page(r, e, scope, context, m.json_page); }},
                 {"text_page", [&](const Entry& e) { read_site_page(r, e, scope, context, m.text_page); }},
                 {"status", [&](const Entry& e) { r.integer(e, m.status, 200, 599); }},
                 {"retry_after", [&](const Entry& e) { r.duration(e, m.retry_after, true); }},
                 {"allow", [&](const Entry& e) { r.path_globs(e, m.allow); }},
                 {"windows", [&](const Entry& e) { read_windows(r, e, m.windows); }},
                 {"bypass", [&](const Entry& e) { read_bypass(r, e, m.bypass); }},
             });
}

void read_error_pages(Reader& r, const Entry& entry, const ActionScope& scope,
                      std::vector<ErrorPage>& errors) {
    if (entry.value.IsNull()) return;
    auto list = r.items(entry);
    if (!list) return;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const Entry& item = (*list)[i];
        const std::string context =
            "error response " + std::to_string(i + 1) + " of " + scope.label;
        ErrorPage page;
        bool have_match = false, have_page = false;
        const bool is_map = r.fields(
            item,
            {
                {"match",
                 [&](const Entry& e) {
                     have_match = true;
                     read_error_match(r, e, page);
                 }},
                {"page",
                 [&](const Entry& e) {
                     have_page = true;
                     read_site_page(r, e, scope, context, page.page);
                 }},
                {"status", [&](const Entry& e) { r.integer(e, page.status.emplace(), 200, 599); }},
                {"retry_after",
                 [&](const Entry& e) { r.duration(e, page.retry_after.emplace(), true); }},
            },
            context);
        if (!is_map) continue;
        if (!have_match || !have_page)
            r.error(item, "missing required key '" + std::string(have_match ? "page" : "match") +
                              "' in " + context +
                              " (expected {match: [<status, range or failure>...], page: "
                              "<page store file>})");
        errors.push_back(std::move(page));
    }
}

void read_outage(Reader& r, const Entry& entry, const ActionScope& scope, Outage& outage) {
    const std::string context = "outage of " + scope.label;
    r.fields(
        entry,
        {
            {"page", [&](const Entry& e) { read_site_page(r, e, scope, context, outage.page); }},
            {"status", [&](const Entry& e) { r.integer(e, outage.status, 200, 599); }},
            {"retry_after", [&](const Entry& e) { r.duration(e, outage.retry_after, true); }},
        });
}

}  // namespace im::config::detail
