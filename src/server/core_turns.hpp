// When a worker gives up its core of its own accord.
//
// Linux lets a running thread keep its core until it sleeps or the scheduler's
// tick preempts it (4 ms at HZ=250), even after another thread on that core has
// woken: the woken one may not preempt before the running one has used its
// slice, and nothing looks again before the tick. A worker whose connections
// keep it busy (the clients it answers fastest send again fastest) then holds
// the core for the whole tick, and everything the thread beside it serves (the
// other worker's connections, a backend on the same machine) waits those 4 ms.
// On two cores with two workers and wrk, 10-20 % of requests did: perf sched
// timehist showed worker runs of 3 ms and more without a sleep, which HAProxy's
// threads did not have. Taking turns bounds that wait.
//
// Yielding has a price when the machine is saturated: every yield puts the
// worker behind whatever else is queued (a load generator, another program)
// for a whole slice. So a turn is short only for the one waiter whose wait is
// certainly ours to end, another worker of this process queued on this core;
// anyone else gets the core after a longer turn.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace im::server {

class CoreTurns {
public:
    using Clock = std::chrono::steady_clock;
    // Against another worker's queued connections. At 64 connections 250 µs
    // gave a lower p99 than 1 ms in 3 of 4 and 5 of 5 interleaved rounds
    // (bench/ab.sh, docs/benchmarks.md).
    static constexpr std::chrono::microseconds worker_turn{250};
    // Against anyone: short against the tick, long enough that a saturated
    // worker does not hand most of its core to the threads it serves (250 µs
    // for everyone cost about 10 % of p99 at 256 connections).
    static constexpr std::chrono::microseconds turn{1000};

    enum class Next {
        run_on,
        yield_if_a_worker_waits,  // look whether another worker waits for this core
        yield,
    };
    // Called between batches of work with the thread's context-switch count so
    // far (voluntary and involuntary) and the time.
    Next after_batch(long switches, Clock::time_point now);
    // The thread yielded: its next turn starts whole.
    void yielded(Clock::time_point now) { running_since_ = looked_at_ = now; }

private:
    long switches_ = -1;
    Clock::time_point running_since_{};
    Clock::time_point looked_at_{};  // the last look for a waiting worker
};

// The calling thread's context switches so far (getrusage RUSAGE_THREAD).
long thread_context_switches();

// What a worker shows the others so that they can tell whether it waits.
struct WorkerPresence {
    WorkerPresence() = default;
    WorkerPresence(const WorkerPresence&) = delete;
    WorkerPresence& operator=(const WorkerPresence&) = delete;
    ~WorkerPresence();
    // On the worker's own thread, when it starts: opens that thread's /proc stat,
    // so that the descriptor is there from the start, not opened under load.
    void publish_thread();

    // When it last finished a batch (steady clock, ns): a worker that did so
    // within a worker turn is running, and reading its state can be skipped.
    alignas(64) std::atomic<std::int64_t> last_batch{0};
    std::atomic<int> stat_fd{-1};  // its thread's /proc stat; -1 until it runs
};

// A thread's scheduler state from /proc/<pid>/task/<tid>/stat.
struct TaskState {
    char state;  // 'R' running or queued to run, 'S' sleeping, ...
    int cpu;     // the core it runs on or is queued on
};
std::optional<TaskState> parse_task_stat(std::string_view stat);

// Another worker of this process, seen from the calling thread.
class SiblingWorker {
public:
    explicit SiblingWorker(const WorkerPresence& presence) : presence_(presence) {}

    // True when it has not finished a batch for a worker turn and is queued to
    // run on `cpu`, the calling thread's core: it waits for this thread.
    bool waits_on(int cpu, CoreTurns::Clock::time_point now) const;

private:
    const WorkerPresence& presence_;
};

}  // namespace im::server
