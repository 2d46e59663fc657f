// HTTP/1.1 message heads as parsed from the wire. Views point into the
// connection's read buffer and are valid until that buffer is compacted.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace im::http {

struct Header {
    std::string_view name;
    std::string_view value;
};

// ASCII case-insensitive equality (header names, tokens). Inline: most calls
// hold a field name against names of another length, which the size settles.
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x == y) continue;
        // Equal but for case: letters that differ only in the 0x20 bit.
        char lx = static_cast<char>(x | 0x20);
        if (lx != static_cast<char>(y | 0x20) || lx < 'a' || lx > 'z') return false;
    }
    return true;
}

// Fields about one connection only, never passed on by a proxy nor sent in
// HTTP/2 (RFC 9110 §7.6.1, RFC 9113 §8.2.2): Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade.
bool is_connection_field(std::string_view name);

// Finds a header by case-insensitive name; the first one wins.
std::string_view find_header(const std::vector<Header>& headers, std::string_view name);

struct Request {
    std::string_view method;
    std::string_view target;  // as received, e.g. "/a/b?x=1"
    std::string_view path;    // target without the query
    std::string_view query;   // after '?', without it
    int minor_version = 1;    // HTTP/1.minor
    std::vector<Header> headers;
    std::string_view host;  // without the port, as sent (not lowercased)
    // Absolute-form targets ("GET http://a.example/x"): the target's authority,
    // which replaces the Host header (RFC 9112 §3.2.2).
    std::string_view authority;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = true;
    bool upgrade = false;  // "Connection: upgrade" with an Upgrade header
    bool expect_continue = false;

    bool has_body() const { return chunked || (content_length && *content_length > 0); }
    bool idempotent() const;
    void clear();
};

struct Response {
    int status = 0;
    std::string_view reason;
    int minor_version = 1;
    std::vector<Header> headers;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = true;  // the upstream lets us reuse the connection

    void clear();
};

struct Limits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_headers = 100;
};

// Where the head ends in `data`: the offset just past the blank line, 0 when
// more bytes are needed, or -1 when the bytes cannot be a valid head (a bare
// LF or CR as line ending).
long find_head_end(std::string_view data);

// Parses a request head (request line + headers + blank line). Returns 0 on
// success, else the status to answer with (400, 431, 501, 505); every error
// closes the connection since the framing of what follows is unknown.
int parse_request(std::string_view head, const Limits& limits, Request& out);

// Parses an upstream's response head. Returns false when it is not valid
// HTTP/1.x (the caller answers 502).
bool parse_response(std::string_view head, const Limits& limits, Response& out);

// How the body of an upstream response is delimited (RFC 9112 §6.3).
enum class BodyFraming { none, length, chunked, until_close };
BodyFraming response_framing(const Response& r, std::string_view request_method);

}  // namespace im::http
