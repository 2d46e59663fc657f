// Rule conditions: AND across conditions, OR across the values of one.
#include <algorithm>

#include "config/glob.hpp"
#include "core/bypass.hpp"
#include "core/decide.hpp"

namespace im::core {

namespace {

constexpr std::size_t kMaxHost = 256;

template <typename T, typename F>
bool any_of(const std::vector<T>& values, F&& f) {
    return std::any_of(values.begin(), values.end(), std::forward<F>(f));
}

bool host_matches(const std::vector<std::string>& globs, std::string_view host) {
    char buf[kMaxHost];
    if (host.size() > kMaxHost) return false;
    for (std::size_t i = 0; i < host.size(); ++i)
        buf[i] = (host[i] >= 'A' && host[i] <= 'Z') ? static_cast<char>(host[i] + 32) : host[i];
    std::string_view lower(buf, host.size());
    return any_of(globs, [&](const std::string& g) { return config::glob_match(g, lower); });
}

// A header name's bit in HeaderNames: its length and first letter (case
// folded), which tell most names apart; a shared bit only costs the scan.
std::uint64_t name_bit(std::string_view name) {
    unsigned first = name.empty() ? 0u : static_cast<unsigned char>(name[0]) | 0x20u;
    return std::uint64_t{1} << ((name.size() * 7 + first) & 63);
}

std::uint64_t header_names(const http::Request& request, HeaderNames& names) {
    if (!names.known) {
        for (const auto& h : request.headers) names.bits |= name_bit(h.name);
        names.known = true;
    }
    return names.bits;
}

bool header_matches(const config::HeaderMatch& m, const http::Request& request, HeaderNames& names) {
    if (!(header_names(request, names) & name_bit(m.name))) return false;  // no such header
    for (const auto& h : request.headers) {
        if (!http::iequals(h.name, m.name)) continue;
        if (any_of(m.values, [&](const std::string& g) { return config::glob_match(g, h.value); }))
            return true;
    }
    return false;
}

bool query_matches(const config::QueryMatch& m, std::string_view query) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        auto eq = pair.find('=');
        if (pair.substr(0, eq) == m.key) {
            if (m.values.empty()) return true;
            auto value = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
            if (any_of(m.values, [&](const std::string& g) { return config::glob_match(g, value); }))
                return true;
        }
        if (amp == std::string_view::npos) break;
        query.remove_prefix(amp + 1);
    }
    return false;
}

}  // namespace

bool matches(const config::Match& m, const http::Request& request, const Visitor& visitor) {
    HeaderNames names;
    return matches(m, request, visitor, names);
}

bool matches(const config::Match& m, const http::Request& request, const Visitor& visitor,
             HeaderNames& names) {
    if (!m.paths.empty() &&
        !any_of(m.paths, [&](const std::string& g) { return config::glob_match(g, visitor.path); }))
        return false;
    if (!m.hosts.empty() && !host_matches(m.hosts, request.host)) return false;
    if (!m.methods.empty() &&
        !any_of(m.methods, [&](const std::string& x) { return x == request.method; }))
        return false;
    for (const auto& h : m.headers)
        if (!header_matches(h, request, names)) return false;
    for (const auto& q : m.query)
        if (!query_matches(q, request.query)) return false;
    if (!m.sources.empty() &&
        !any_of(m.sources, [&](const config::Cidr& c) { return c.contains(visitor.address); }))
        return false;
    return true;
}

bool bypasses(const config::Bypass& bypass, const std::string& site, const http::Request& request,
              const Visitor& visitor) {
    if (!bypass.header_name.empty()) {
        // A wrong value is treated as absent; compared in constant time.
        auto value = http::find_header(request.headers, bypass.header_name);
        if (!value.empty() && secret_equals(value, bypass.header_value)) return true;
    }
    if (any_of(bypass.sources, [&](const config::Cidr& c) { return c.contains(visitor.address); }))
        return true;
    if (!bypass.cookie_secret.empty()) {
        for (const auto& h : request.headers) {
            if (!http::iequals(h.name, "cookie")) continue;
            auto token = cookie_value(h.value, bypass.cookie_name);
            if (!token.empty() && verify_bypass_token(bypass.cookie_secret, site, token, visitor.now))
                return true;
        }
    }
    return false;
}

}  // namespace im::core
