// Serializing responses the gateway makes itself (pages, errors).
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <span>
#include <string>
#include <string_view>

#include "http/message.hpp"

namespace im::http {

std::string_view reason_phrase(int status);

// The Date header value, formatted once a second rather than per response.
class DateCache {
public:
    DateCache() { refresh(std::time(nullptr)); }
    void refresh(std::time_t now);
    std::string_view value() const { return {buf_, 29}; }

private:
    std::time_t second_ = 0;
    char buf_[32] = {};
};

// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of t into buf (>= 32 bytes).
void format_http_date(std::time_t t, char* buf);

// What every answer on a connection carries besides its own headers: the
// Date, and the connection's header lines (Strict-Transport-Security on HTTPS).
struct Stamp {
    Stamp(std::string_view d, std::string_view lines = {}) : date(d), extra(lines) {}
    Stamp(const char* d) : date(d) {}
    std::string_view date;
    std::string_view extra;  // "Name: value\r\n" lines
};

struct Reply {
    int status = 200;
    std::string_view headers;  // pre-serialized "Name: value\r\n" lines
    std::string_view body;
    bool head_only = false;    // HEAD: send Content-Length but no body
    bool close = false;        // add "Connection: close"
    // The body lives in the worker's current snapshot (a stored page, a fixed
    // action's text): an HTTP/2 stream may send it from there while it keeps
    // that snapshot, without a copy of its own.
    bool stored = false;
    // More header lines, made for this answer (Retry-After), after the prebuilt `headers`.
    std::string_view extra_headers = {};
};

// Appends a complete response (status line, Date, Content-Length, headers, body).
void append_reply(std::string& out, const Reply& reply, Stamp stamp);

// Where the gateway's own answers go instead of HTTP/1.1 bytes: an HTTP/2
// stream answered at once takes them as they are, with nothing to parse back.
class ReplySink {
public:
    virtual void reply(const Reply& reply, Stamp stamp) = 0;
    // A forwarded answer: its head as fields (no HTTP/1.1 framing or connection
    // fields among them), the connection's lines of `stamp` added. The body
    // follows through the stream's write() as bare bytes, and relay_done() says
    // it came whole; an answer cut short without it is reset, never ended.
    virtual void relay_head(int status, std::span<const Header> fields, Stamp stamp, bool has_body) = 0;
    virtual void relay_done() = 0;

protected:
    ~ReplySink() = default;
};

// The body and header lines of a short plain-text error answer ("502 Bad Gateway\n").
struct ErrorText {
    ErrorText(int status, std::string_view extra_headers);
    std::string body;
    std::string headers;
};

// A short plain-text error answer, e.g. "502 Bad Gateway\n".
void append_error(std::string& out, int status, bool close, Stamp stamp,
                  std::string_view extra_headers = {});

void append_status_line(std::string& out, int status);
void append_decimal(std::string& out, std::uint64_t n);

}  // namespace im::http
