// A strict HTTP/1.1 head parser (RFC 9112). Strict on purpose: anything a
// front proxy and the application could read differently (the root of
// request smuggling) is refused rather than guessed at.
#include <array>
#include <cctype>
#include <cstring>

#include "http/message.hpp"

namespace im::http {
namespace {

constexpr std::array<bool, 256> make_tchar_table() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr auto kTchar = make_tchar_table();

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (!kTchar[c]) return false;
    return true;
}

// field-value: visible chars, SP, HTAB and obs-text; never CTLs (NUL, CR, LF ...).
bool is_field_value_bytes(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto c = static_cast<unsigned char>(p[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

// The same, eight bytes at a time: every field of every head passes here, a
// byte at a time it was the parser's largest cost. A word is looked at byte
// by byte only when it may hold a control character (or a tab).
bool is_field_value(std::string_view s) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t x;
        std::memcpy(&x, p, 8);
        // A byte below 0x20 (bytes of 0x80 and up never count), or one equal to 0x7f.
        std::uint64_t below = (x - kOnes * 0x20) & ~x & kHighs;
        std::uint64_t del = x ^ (kOnes * 0x7f);
        del = (del - kOnes) & ~del & kHighs;
        if ((below | del) != 0 && !is_field_value_bytes(p, 8)) return false;
    }
    return is_field_value_bytes(p, n);
}

bool is_target(std::string_view s) {
    if (s.empty()) return false;
    for (unsigned char c : s)
        if (c <= 0x20 || c >= 0x7f) return false;
    return true;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(token) for each comma-separated element, trimmed; empty elements skipped.
template <typename F>
void for_each_element(std::string_view list, F&& f) {
    while (!list.empty()) {
        auto comma = list.find(',');
        auto item = trim_ows(list.substr(0, comma));
        if (!item.empty()) f(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

bool parse_u64(std::string_view s, std::uint64_t& out) {
    if (s.empty() || s.size() > 18) return false;  // 18 digits cannot overflow
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = v;
    return true;
}

// "HTTP/1.1" -> 1, "HTTP/1.0" -> 0; -2 when well-formed but another major
// version (505); -1 when not a version at all.
int parse_version(std::string_view v) {
    if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || v[6] != '.') return -1;
    if (v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9') return -1;
    if (v[5] != '1') return -2;
    return v[7] - '0';
}

// Splits the head into lines (without CRLF) and calls f(line); stops at the
// blank line. Bare CR/LF were refused before: by find_head_end in an HTTP/1.1
// head, by nghttp2 in the fields of an HTTP/2 stream (see start_stream).
template <typename F>
bool for_each_line(std::string_view head, F&& f) {
    while (!head.empty()) {
        auto eol = head.find("\r\n");
        if (eol == std::string_view::npos) return false;
        if (eol == 0) return true;
        if (!f(head.substr(0, eol))) return false;
        head.remove_prefix(eol + 2);
    }
    return false;
}

// Parses "name: value" into h. A name with whitespace before the colon, a
// folded line (obs-fold) or control characters are refused (RFC 9112 §5).
bool parse_header_line(std::string_view line, Header& h) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    h.name = line.substr(0, colon);
    if (!is_token(h.name)) return false;
    h.value = trim_ows(line.substr(colon + 1));
    return is_field_value(h.value);
}

// Collects the framing-relevant header fields while parsing.
struct Framing {
    std::optional<std::uint64_t> content_length;
    bool content_length_conflict = false;
    bool bad_content_length = false;
    int transfer_encoding_fields = 0;
    int transfer_encodings = 0;  // elements seen across all Transfer-Encoding fields
    bool last_is_chunked = false;
    bool chunked_twice = false;
    bool te_garbage = false;
    bool connection_close = false, connection_keep_alive = false, connection_upgrade = false;

    void content_length_field(std::string_view v) {
        for_each_element(v, [&](std::string_view item) {
            std::uint64_t n = 0;
            if (!parse_u64(item, n)) {
                bad_content_length = true;
            } else if (content_length && *content_length != n) {
                content_length_conflict = true;
            } else {
                content_length = n;
            }
        });
        if (trim_ows(v).empty()) bad_content_length = true;
    }
    void transfer_encoding_field(std::string_view v) {
        ++transfer_encoding_fields;
        if (trim_ows(v).empty()) te_garbage = true;
        for_each_element(v, [&](std::string_view item) {
            ++transfer_encodings;
            if (!is_token(item)) te_garbage = true;  // parameters, quotes, odd bytes
            // chunked must be applied once and last (RFC 9112 §6.1)
            if (last_is_chunked) chunked_twice = true;
            last_is_chunked = iequals(item, "chunked");
        });
    }
    void connection_field(std::string_view v) {
        for_each_element(v, [&](std::string_view item) {
            if (iequals(item, "close")) connection_close = true;
            else if (iequals(item, "keep-alive")) connection_keep_alive = true;
            else if (iequals(item, "upgrade")) connection_upgrade = true;
        });
    }
    bool has_te() const { return transfer_encoding_fields > 0; }

    // 0 when the message framing is sound, else the status to answer.
    int verdict(int minor_version) const {
        if (bad_content_length || content_length_conflict) return 400;
        if (!has_te()) return 0;
        if (content_length) return 400;  // both: smuggling vector, RFC 9112 §6.3 (3)
        if (minor_version == 0) return 400;
        if (te_garbage || chunked_twice) return 400;
        if (!last_is_chunked) return 400;  // length unknowable for a request
        if (transfer_encodings > 1) return 501;  // a coding we do not implement
        return 0;
    }
};

// Every field of every head passes here: the length picks the name worth comparing.
void observe_field(Framing& f, const Header& h) {
    switch (h.name.size()) {
        case 10:
            if (iequals(h.name, "connection")) f.connection_field(h.value);
            break;
        case 14:
            if (iequals(h.name, "content-length")) f.content_length_field(h.value);
            break;
        case 17:
            if (iequals(h.name, "transfer-encoding")) f.transfer_encoding_field(h.value);
            break;
        default:
            break;
    }
}

bool is_reg_name_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '%' || c == '~';
}

bool valid_port(std::string_view p) {
    if (p.empty() || p.size() > 5) return false;
    for (char c : p)
        if (c < '0' || c > '9') return false;
    return true;
}

// Host = uri-host [ ":" port ] (RFC 9110 §7.2): a name or IPv4 address, or an
// IPv6 literal in brackets. Anything else could route differently here and
// at the application.
bool valid_host(std::string_view h) {
    if (h.empty()) return true;  // "Host:" empty is allowed for some targets
    std::string_view name = h;
    if (h.front() == '[') {
        auto close = h.find(']');
        if (close == std::string_view::npos) return false;
        for (unsigned char c : h.substr(1, close - 1))
            if (!std::isxdigit(c) && c != ':' && c != '.') return false;
        auto rest = h.substr(close + 1);
        return rest.empty() || (rest.front() == ':' && valid_port(rest.substr(1)));
    }
    auto colon = h.find(':');
    if (colon != std::string_view::npos) {
        if (!valid_port(h.substr(colon + 1))) return false;
        name = h.substr(0, colon);
    }
    if (name.empty()) return false;
    for (unsigned char c : name)
        if (!is_reg_name_char(c)) return false;
    return true;
}

std::string_view strip_port(std::string_view host) {
    if (!host.empty() && host.front() == '[') {
        auto close = host.find(']');
        return close == std::string_view::npos ? host : host.substr(0, close + 1);
    }
    auto colon = host.rfind(':');
    return colon == std::string_view::npos ? host : host.substr(0, colon);
}

// Splits an origin-form or absolute-form target into path and query.
bool split_target(Request& r) {
    std::string_view t = r.target;
    if (t.size() > 7 && (t.substr(0, 7) == "http://" || t.substr(0, 8) == "https://")) {
        auto scheme_end = t.find("://") + 3;
        auto slash = t.find_first_of("/?", scheme_end);
        r.authority = t.substr(scheme_end, slash == std::string_view::npos ? t.npos : slash - scheme_end);
        if (r.authority.empty() || r.authority.find('@') != std::string_view::npos) return false;
        t = slash == std::string_view::npos ? std::string_view("/") : t.substr(slash);
        if (!t.empty() && t.front() == '?') return false;
    } else if (t == "*") {
        r.path = t;
        return r.method == "OPTIONS";
    } else if (t.front() != '/') {
        return false;
    }
    auto q = t.find('?');
    r.path = t.substr(0, q);
    r.query = q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
    return true;
}

int parse_request_line(std::string_view line, Request& r) {
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return 400;
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return 400;
    r.method = line.substr(0, sp1);
    r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    auto version = line.substr(sp2 + 1);
    if (!is_token(r.method) || !is_target(r.target)) return 400;
    int minor = parse_version(version);
    if (minor == -2) return 505;
    if (minor < 0) return 400;
    r.minor_version = minor;
    return split_target(r) ? 0 : 400;
}

}  // namespace

// Checked for every field of every forwarded request and answer: the length
// picks the names worth comparing.
bool is_connection_field(std::string_view name) {
    switch (name.size()) {
        case 7:
            return iequals(name, "upgrade");
        case 10:
            return iequals(name, "connection") || iequals(name, "keep-alive");
        case 16:
            return iequals(name, "proxy-connection");
        case 17:
            return iequals(name, "transfer-encoding");
        default:
            return false;
    }
}

std::string_view find_header(const std::vector<Header>& headers, std::string_view name) {
    for (const auto& h : headers)
        if (iequals(h.name, name)) return h.value;
    return {};
}

bool Request::idempotent() const {
    return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
           method == "DELETE" || method == "TRACE";
}

void Request::clear() {
    auto keep = std::move(headers);
    keep.clear();
    *this = Request{};
    headers = std::move(keep);
}

void Response::clear() {
    auto keep = std::move(headers);
    keep.clear();
    *this = Response{};
    headers = std::move(keep);
}

long find_head_end(std::string_view data) {
    std::size_t pos = 0;
    // A server SHOULD ignore empty lines before the request line (RFC 9112 §2.2).
    while (data.size() >= pos + 2 && data[pos] == '\r' && data[pos + 1] == '\n') pos += 2;
    while (true) {
        const void* p = std::memchr(data.data() + pos, '\n', data.size() - pos);
        if (p == nullptr) break;
        std::size_t nl = static_cast<const char*>(p) - data.data();
        if (nl == 0 || data[nl - 1] != '\r') return -1;
        if (nl + 2 < data.size() && data[nl + 1] == '\r' && data[nl + 2] == '\n')
            return static_cast<long>(nl + 3);
        if (nl + 2 == data.size() && data[nl + 1] == '\r') return 0;  // need the final LF
        pos = nl + 1;
    }
    return 0;
}

int parse_request(std::string_view head, const Limits& limits, Request& r) {
    r.clear();
    while (head.size() >= 2 && head[0] == '\r' && head[1] == '\n') head.remove_prefix(2);
    if (head.size() > limits.max_header_bytes) return 431;
    Framing framing;
    int status = 0;
    bool first = true;
    int host_fields = 0;
    bool ok = for_each_line(head, [&](std::string_view line) {
        if (first) {
            first = false;
            status = parse_request_line(line, r);
            return status == 0;
        }
        Header h;
        if (!parse_header_line(line, h)) return (status = 400, false);
        if (r.headers.size() >= limits.max_headers) return (status = 431, false);
        r.headers.push_back(h);
        observe_field(framing, h);
        if (iequals(h.name, "host")) {
            ++host_fields;
            r.host = strip_port(h.value);
            if (!valid_host(h.value)) return (status = 400, false);
        } else if (iequals(h.name, "expect")) {
            r.expect_continue = iequals(h.value, "100-continue");
        }
        return true;
    });
    if (!ok) return status ? status : 400;
    if (r.minor_version == 1 && host_fields != 1) return 400;  // RFC 9112 §3.2
    if (host_fields > 1) return 400;
    if (int v = framing.verdict(r.minor_version)) return v;
    if (!r.authority.empty()) {
        if (!valid_host(r.authority)) return 400;
        r.host = strip_port(r.authority);
    }
    r.content_length = framing.content_length;
    r.chunked = framing.has_te();
    r.keep_alive = r.minor_version == 1 ? !framing.connection_close
                                        : framing.connection_keep_alive && !framing.connection_close;
    r.upgrade = framing.connection_upgrade && !find_header(r.headers, "upgrade").empty();
    return 0;
}

bool parse_response(std::string_view head, const Limits& limits, Response& r) {
    r.clear();
    if (head.size() > limits.max_header_bytes) return false;
    Framing framing;
    bool first = true;
    bool ok = for_each_line(head, [&](std::string_view line) {
        if (first) {
            first = false;
            // "HTTP/1.1 200 OK" (the reason may be empty)
            if (line.size() < 12 || line[8] != ' ' || (line.size() > 12 && line[12] != ' '))
                return false;
            int minor = parse_version(line.substr(0, 8));
            if (minor < 0) return false;
            r.minor_version = minor;
            int s = 0;
            for (int i = 9; i < 12; ++i) {
                if (line[i] < '0' || line[i] > '9') return false;
                s = s * 10 + (line[i] - '0');
            }
            if (s < 100) return false;
            r.status = s;
            r.reason = line.size() > 13 ? line.substr(13) : std::string_view();
            return is_field_value(r.reason);
        }
        Header h;
        if (!parse_header_line(line, h) || r.headers.size() >= limits.max_headers) return false;
        r.headers.push_back(h);
        observe_field(framing, h);
        return true;
    });
    if (!ok || first) return false;
    if (framing.bad_content_length || framing.content_length_conflict) return false;
    // An upstream sending both could be desynchronised from us: refuse it.
    if (framing.has_te() && framing.content_length) return false;
    if (framing.has_te() && (framing.te_garbage || framing.chunked_twice)) return false;
    r.content_length = framing.content_length;
    r.chunked = framing.has_te() && framing.last_is_chunked;
    // Another coding last means the body ends at connection close.
    if (framing.has_te() && !framing.last_is_chunked) r.keep_alive = false;
    else
        r.keep_alive = r.minor_version == 1 ? !framing.connection_close
                                            : framing.connection_keep_alive;
    return true;
}

BodyFraming response_framing(const Response& r, std::string_view request_method) {
    if (request_method == "HEAD" || (r.status >= 100 && r.status < 200) || r.status == 204 ||
        r.status == 304)
        return BodyFraming::none;
    if (r.chunked) return BodyFraming::chunked;
    if (r.content_length) return BodyFraming::length;
    return BodyFraming::until_close;
}

}  // namespace im::http
