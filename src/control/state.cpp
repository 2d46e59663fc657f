#include "control/state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace im::control {

namespace json = boost::json;

namespace {

json::object window_to_json(const config::Window& w) {
    return {{"start", w.start}, {"end", w.end}, {"reason", w.reason}};
}

json::object maintenance_to_json(const core::MaintenanceState& m) {
    json::object o{{"on", m.on},         {"reason", m.reason},         {"message", m.message},
                   {"who", m.who},       {"started_at", m.started_at}};
    if (m.until) o["until"] = *m.until;
    json::array windows;
    for (const auto& w : m.windows) windows.push_back(window_to_json(w));
    o["windows"] = std::move(windows);
    return o;
}

core::MaintenanceState maintenance_from_json(const json::object& o) {
    core::MaintenanceState m;
    m.on = o.at("on").as_bool();
    m.reason = json::value_to<std::string>(o.at("reason"));
    m.message = json::value_to<std::string>(o.at("message"));
    m.who = json::value_to<std::string>(o.at("who"));
    m.started_at = o.at("started_at").to_number<std::int64_t>();
    if (auto it = o.find("until"); it != o.end()) m.until = it->value().to_number<std::int64_t>();
    for (const auto& w : o.at("windows").as_array()) {
        const auto& wo = w.as_object();
        m.windows.push_back({wo.at("start").to_number<std::int64_t>(),
                             wo.at("end").to_number<std::int64_t>(),
                             json::value_to<std::string>(wo.at("reason"))});
    }
    return m;
}

core::DrainState drain_from_json(const json::object& o) {
    return {json::value_to<std::string>(o.at("reason")), json::value_to<std::string>(o.at("who")),
            o.at("since").to_number<std::int64_t>()};
}

bool write_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

std::string os_error(const std::string& what, const std::filesystem::path& p) {
    return what + " " + p.string() + ": " + std::strerror(errno);
}

}  // namespace

std::string state_to_json(const core::RuntimeState& state) {
    json::object sites;
    for (const auto& [name, m] : state.maintenance) sites[name] = maintenance_to_json(m);
    json::object drains;
    for (const auto& [target, d] : state.drained)
        drains[target] = json::object{{"reason", d.reason}, {"who", d.who}, {"since", d.since}};
    json::object root{{"version", 1}, {"maintenance", std::move(sites)}, {"drained", std::move(drains)}};
    return json::serialize(root) + "\n";
}

StateLoad load_state(const std::filesystem::path& file) {
    StateLoad out;
    std::ifstream in(file);
    if (!in) {
        if (!std::filesystem::exists(file)) out.state.emplace();  // first start
        else out.error = "cannot read the state file " + file.string() + ": " + std::strerror(errno);
        return out;
    }
    std::stringstream text;
    text << in.rdbuf();
    try {
        auto root = json::parse(text.str()).as_object();
        if (root.at("version").to_number<int>() != 1) throw std::runtime_error("unknown version");
        core::RuntimeState state;
        for (const auto& [name, m] : root.at("maintenance").as_object())
            state.maintenance.emplace(std::string(name), maintenance_from_json(m.as_object()));
        for (const auto& [target, d] : root.at("drained").as_object())
            state.drained.emplace(std::string(target), drain_from_json(d.as_object()));
        out.state = std::move(state);
    } catch (const std::exception& e) {
        out.error = "the state file " + file.string() + " is corrupt (" + e.what() +
                    "); fix or remove it, or start with --fresh-state to discard it";
    }
    return out;
}

std::string save_state(const std::filesystem::path& file, const core::RuntimeState& state) {
    auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
    auto tmp = file;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return os_error("cannot create", tmp);
    bool ok = write_all(fd, state_to_json(state)) && ::fsync(fd) == 0;
    std::string error = ok ? "" : os_error("cannot write", tmp);
    ::close(fd);
    if (!ok) return error;
    if (::rename(tmp.c_str(), file.c_str()) != 0) return os_error("cannot rename into", file);
    // The rename itself is durable only once the folder is synced.
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return os_error("cannot open folder", dir);
    bool synced = ::fsync(dfd) == 0;
    ::close(dfd);
    return synced ? "" : os_error("cannot sync folder", dir);
}

}  // namespace im::control
