#include "pages/watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

namespace im::pages {
namespace fs = std::filesystem;

namespace {

// IN_CLOSE_WRITE rather than IN_MODIFY: a file is reported once its writer is done with it,
// not at every write() of a half-copied file.
constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                IN_ONLYDIR;

bool is_hidden(std::string_view name) {
    return !name.empty() && name.front() == '.';
}

}  // namespace

std::unique_ptr<Watcher> Watcher::create(const fs::path& root, std::string& error) {
    int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        error = "page store watch on '" + root.string() +
                "': inotify_init1: " + std::generic_category().message(errno);
        return nullptr;
    }
    std::unique_ptr<Watcher> watcher(new Watcher(fd));
    watcher->root_ = root;
    if (!watcher->add_tree(root, &error)) return nullptr;
    return watcher;
}

Watcher::~Watcher() {
    if (fd_ >= 0) ::close(fd_);
}

bool Watcher::add_tree(const fs::path& dir, std::string* error) {
    int wd = ::inotify_add_watch(fd_, dir.c_str(), kMask);
    if (wd < 0) {
        // Subdirectories can vanish between listing and watching; only the root is fatal.
        if (error) {
            *error = "page store watch on '" + dir.string() +
                     "': inotify_add_watch: " + std::generic_category().message(errno);
        }
        return false;
    }
    dirs_[wd] = dir;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        std::error_code type_ec;
        // symlink_status: the store does not follow directory links, so neither do watches.
        if (!is_hidden(name) && it->symlink_status(type_ec).type() == fs::file_type::directory) {
            add_tree(it->path(), nullptr);
        }
    }
    return true;
}

void Watcher::remove_tree(const fs::path& dir) {
    for (auto it = dirs_.begin(); it != dirs_.end();) {
        auto [d, p] = std::mismatch(dir.begin(), dir.end(), it->second.begin(), it->second.end());
        if (d == dir.end()) {
            ::inotify_rm_watch(fd_, it->first);
            it = dirs_.erase(it);
        } else {
            ++it;
        }
    }
}

bool Watcher::handle(int wd, std::uint32_t mask, std::string_view name) {
    if (mask & IN_Q_OVERFLOW) {
        // Events were lost, maybe about new directories: start the watch set over.
        for (const auto& [watch, dir] : dirs_) ::inotify_rm_watch(fd_, watch);
        dirs_.clear();
        add_tree(root_, nullptr);
        return true;
    }
    if (mask & IN_IGNORED) {
        dirs_.erase(wd);
        return false;
    }
    auto it = dirs_.find(wd);
    if (it == dirs_.end()) return false;
    if (mask & (IN_DELETE_SELF | IN_MOVE_SELF)) return true;
    if (is_hidden(name)) return false;
    if (mask & IN_ISDIR) {
        fs::path child = it->second / std::string(name);
        if (mask & (IN_CREATE | IN_MOVED_TO)) add_tree(child, nullptr);
        if (mask & IN_MOVED_FROM) remove_tree(child);
    }
    return true;
}

bool Watcher::drain() {
    alignas(inotify_event) char buffer[16 * 1024];
    bool changed = false;
    for (;;) {
        ssize_t n = ::read(fd_, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;  // EAGAIN: nothing more pending
        for (ssize_t offset = 0; offset < n;) {
            const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
            std::string_view name = event->len ? std::string_view(event->name) : std::string_view{};
            changed |= handle(event->wd, event->mask, name);
            offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
        }
    }
    return changed;
}

}  // namespace im::pages
