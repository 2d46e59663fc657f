#include "control/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

namespace im::control {

namespace json = boost::json;

std::string AuditLog::append(const AuditEntry& e) {
    char when[32];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json::object line{{"time", when},     {"token", e.token},   {"client", e.client},
                      {"action", e.action}, {"target", e.target}, {"before", e.before},
                      {"after", e.after},   {"reason", e.reason}};
    std::string text = json::serialize(line) + "\n";
    int fd = ::open(file_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return "cannot open the audit log " + file_.string() + ": " + std::strerror(errno);
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    std::string error = ok ? "" : "cannot write the audit log " + file_.string() + ": " + std::strerror(errno);
    ::close(fd);
    return error;
}

std::vector<json::value> AuditLog::read(std::size_t offset, std::size_t limit) const {
    std::vector<std::string> lines;
    std::ifstream in(file_);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) lines.push_back(std::move(line));
    std::vector<json::value> out;
    for (std::size_t i = offset; i < lines.size() && out.size() < limit; ++i) {
        boost::system::error_code ec;
        auto v = json::parse(lines[lines.size() - 1 - i], ec);
        if (!ec) out.push_back(std::move(v));
    }
    return out;
}

}  // namespace im::control
