// Notices changes under a page store root so the owner can reload it without a restart.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace im::pages {

// inotify on the root and every (non-hidden) subdirectory, including ones created later.
// Nonblocking and thread-free: the owner polls fd() in its event loop and calls drain() when
// it is readable, then reloads the store if drain() says so (a burst of events from one
// deployment typically arrives in a few reads; debouncing is the owner's business).
class Watcher {
  public:
    // nullptr with `error` set (naming the path) when inotify or the initial watches fail.
    static std::unique_ptr<Watcher> create(const std::filesystem::path& root, std::string& error);

    ~Watcher();
    Watcher(const Watcher&) = delete;
    Watcher& operator=(const Watcher&) = delete;

    int fd() const { return fd_; }

    // Reads every pending event; true if any could change what the store serves (a file
    // written, created, deleted, renamed; a directory added or removed; a queue overflow).
    // Events about hidden names only (editor swap files...) do not count.
    bool drain();

  private:
    explicit Watcher(int fd) : fd_(fd) {}
    // Watches `dir` and its subdirectories; false with `error` set if the top one fails.
    bool add_tree(const std::filesystem::path& dir, std::string* error);
    void remove_tree(const std::filesystem::path& dir);
    bool handle(int wd, std::uint32_t mask, std::string_view name);

    int fd_ = -1;
    std::filesystem::path root_;
    std::unordered_map<int, std::filesystem::path> dirs_;  // watch descriptor -> directory
};

}  // namespace im::pages
