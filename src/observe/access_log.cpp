#include "observe/access_log.hpp"

#include <fmt/format.h>
#include <unistd.h>

namespace im::observe {

namespace {
constexpr std::size_t kFlushAt = 32 * 1024;

// Request targets can carry any visible byte; quotes and backslashes are
// escaped so a line always parses back the same way.
void append_escaped(std::string& out, std::string_view s) {
    for (char c : s) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
}
}  // namespace

void append_access_line(std::string& out, std::string_view timestamp, const AccessRecord& r) {
    out.append(timestamp);
    out.push_back(' ');
    out.append(r.client);
    out.append(" site=");
    out.append(r.site.empty() ? std::string_view("-") : r.site);
    out.append(" \"");
    append_escaped(out, r.method);
    out.push_back(' ');
    append_escaped(out, r.target);
    out.append(r.http2 ? " HTTP/2.0\" " : r.minor_version == 0 ? " HTTP/1.0\" " : " HTTP/1.1\" ");
    fmt::format_to(std::back_inserter(out), "{} {} target={}", r.status, r.bytes_sent,
                   r.upstream.empty() ? std::string_view("-") : r.upstream);
    if (r.upstream_ms >= 0) fmt::format_to(std::back_inserter(out), " upstream_ms={:.3f}", r.upstream_ms);
    fmt::format_to(std::back_inserter(out), " total_ms={:.3f}\n", r.total_ms);
}

void AccessLog::add(const AccessRecord& r) {
    if (fd_ < 0) return;
    append_access_line(buffer_, timestamp_, r);
    if (buffer_.size() >= kFlushAt) flush();
}

void AccessLog::flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
        ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
        if (n <= 0) break;  // a full disk must not stop the gateway: drop the lines
        done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
}

void AccessLog::set_time(std::time_t now) {
    if (now == second_) return;
    second_ = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(timestamp_, sizeof timestamp_, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

}  // namespace im::observe
