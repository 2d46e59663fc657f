#include "server/core_turns.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>

namespace im::server {

CoreTurns::Next CoreTurns::after_batch(long switches, Clock::time_point now) {
    if (switches != switches_) {  // it slept or was preempted: a new turn began
        switches_ = switches;
        running_since_ = looked_at_ = now;
        return Next::run_on;
    }
    if (now - running_since_ >= turn) {
        yielded(now);
        return Next::yield;
    }
    // At most one look a worker turn: a look reads /proc (about 4 µs).
    if (now - looked_at_ < worker_turn) return Next::run_on;
    looked_at_ = now;
    return Next::yield_if_a_worker_waits;
}

long thread_context_switches() {
    rusage usage{};
    if (::getrusage(RUSAGE_THREAD, &usage) != 0) return 0;
    return usage.ru_nvcsw + usage.ru_nivcsw;
}

std::optional<TaskState> parse_task_stat(std::string_view stat) {
    // "tid (comm) S ppid ...": comm may hold spaces and ')', so fields are
    // counted from the last ')'. The state is field 3, the cpu field 39.
    auto close = stat.rfind(')');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = stat.substr(close + 1);
    TaskState out{};
    int field = 2;
    while (!rest.empty()) {
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        auto end = rest.find(' ');
        std::string_view value = rest.substr(0, end);
        rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
        if (value.empty()) break;
        ++field;
        if (field == 3) {
            if (value.size() != 1) return std::nullopt;
            out.state = value.front();
        } else if (field == 39) {
            auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out.cpu);
            if (ec != std::errc{} || p != value.data() + value.size()) return std::nullopt;
            return out;
        }
    }
    return std::nullopt;
}

WorkerPresence::~WorkerPresence() {
    if (int fd = stat_fd.load(); fd >= 0) ::close(fd);
}

void WorkerPresence::publish_thread() {
    // No /proc: nobody sees this worker wait, and turns for everyone still hold.
    stat_fd.store(::open("/proc/thread-self/stat", O_RDONLY | O_CLOEXEC), std::memory_order_release);
}

bool SiblingWorker::waits_on(int cpu, CoreTurns::Clock::time_point now) const {
    auto last = CoreTurns::Clock::time_point(
        CoreTurns::Clock::duration(presence_.last_batch.load(std::memory_order_relaxed)));
    if (now - last < CoreTurns::worker_turn) return false;
    int fd = presence_.stat_fd.load(std::memory_order_acquire);
    if (fd < 0) return false;
    char buffer[1024];
    ssize_t n = ::pread(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    auto state = parse_task_stat({buffer, static_cast<std::size_t>(n)});
    return state && state->state == 'R' && state->cpu == cpu;
}

}  // namespace im::server
