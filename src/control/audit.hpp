// The audit log: one JSON line per change (who, from where, what, before,
// after, why), appended and synced before the change is acknowledged.
#pragma once

#include <boost/json/value.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace im::control {

struct AuditEntry {
    std::string token;   // the admin token's name, never its value
    std::string client;  // the API client's address
    std::string action;  // "maintenance.on", "maintenance.off", ...
    std::string target;  // site or target
    boost::json::value before;
    boost::json::value after;
    std::string reason;
};

class AuditLog {
public:
    explicit AuditLog(std::filesystem::path file) : file_(std::move(file)) {}
    std::string append(const AuditEntry& entry);  // error message, or empty
    // Newest first: `limit` entries after skipping `offset`.
    std::vector<boost::json::value> read(std::size_t offset, std::size_t limit) const;

private:
    std::filesystem::path file_;
};

}  // namespace im::control
