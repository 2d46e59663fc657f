#include "http/respond.hpp"

#include <cstdint>

namespace im::http {

std::string_view reason_phrase(int status) {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

void format_http_date(std::time_t t, char* buf) {
    static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::snprintf(buf, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday], tm.tm_mday,
                  kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void DateCache::refresh(std::time_t now) {
    if (now == second_) return;
    second_ = now;
    format_http_date(now, buf_);
}

void append_decimal(std::string& out, std::uint64_t n) {
    char buf[24];
    int i = 24;
    do {
        buf[--i] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n);
    out.append(buf + i, static_cast<std::size_t>(24 - i));
}

void append_status_line(std::string& out, int status) {
    out.append("HTTP/1.1 ");
    append_decimal(out, static_cast<std::uint64_t>(status));
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append("\r\n");
}

void append_reply(std::string& out, const Reply& reply, Stamp stamp) {
    append_status_line(out, reply.status);
    out.append("Date: ").append(stamp.date).append("\r\n");
    out.append(stamp.extra);
    out.append(reply.headers);
    out.append(reply.extra_headers);
    if (reply.status != 304 && reply.status != 204) {
        out.append("Content-Length: ");
        append_decimal(out, reply.body.size());
        out.append("\r\n");
    }
    if (reply.close) out.append("Connection: close\r\n");
    out.append("\r\n");
    if (!reply.head_only && reply.status != 304 && reply.status != 204) out.append(reply.body);
}

ErrorText::ErrorText(int status, std::string_view extra_headers)
    : headers("Content-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n") {
    body.reserve(48);
    append_decimal(body, static_cast<std::uint64_t>(status));
    body.push_back(' ');
    body.append(reason_phrase(status));
    body.push_back('\n');
    headers.append(extra_headers);
}

void append_error(std::string& out, int status, bool close, Stamp stamp,
                  std::string_view extra_headers) {
    ErrorText e(status, extra_headers);
    append_reply(out, Reply{status, e.headers, e.body, false, close}, stamp);
}

}  // namespace im::http
