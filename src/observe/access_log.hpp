// The access log: one line per request. Each worker buffers its own lines
// and flushes them with one write() on an O_APPEND descriptor, so workers
// never contend and lines never interleave.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

namespace im::observe {

struct AccessRecord {
    std::string_view client;  // peer address
    std::string_view site;    // "-" when no site matched
    std::string_view method;
    std::string_view target;
    int minor_version = 1;
    bool http2 = false;  // the request came on an HTTP/2 stream
    int status = 0;
    std::uint64_t bytes_sent = 0;  // response body bytes
    std::string_view upstream;     // target address, "-" when none
    double upstream_ms = -1;       // time to the upstream response head; <0: none
    double total_ms = 0;
};

// Formats one line (with a trailing newline) onto out.
void append_access_line(std::string& out, std::string_view timestamp, const AccessRecord& r);

class AccessLog {
public:
    explicit AccessLog(int fd) : fd_(fd) {}  // fd < 0: logging off
    bool enabled() const { return fd_ >= 0; }
    void add(const AccessRecord& r);
    void flush();
    void set_time(std::time_t now);  // called once per tick

private:
    int fd_;
    std::string buffer_;
    std::time_t second_ = 0;
    char timestamp_[32] = {};
};

}  // namespace im::observe
