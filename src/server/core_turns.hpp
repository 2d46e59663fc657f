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
// threads did not have. Taking turns bounds that wait by about one turn.
#pragma once

#include <chrono>

namespace im::server {

class CoreTurns {
public:
    using Clock = std::chrono::steady_clock;
    // Short against the 4 ms tick. At 64 connections 250 µs gave a lower p99
    // than 1 ms in 3 of 4 and 5 of 5 interleaved rounds at the same CPU per
    // request; saturated (256 connections) about 10 % higher (bench/ab.sh,
    // docs/benchmarks.md). A worker with its core to itself yields into
    // nothing: at most 4,000 cheap syscalls a second.
    static constexpr std::chrono::microseconds turn{250};

    // Called between batches of work with the thread's context-switch count so
    // far (voluntary and involuntary) and the time. True when the thread has
    // run for a whole turn with no switch: it should yield its core now.
    bool turn_is_over(long switches, Clock::time_point now);

private:
    long switches_ = -1;
    Clock::time_point running_since_{};
};

// The calling thread's context switches so far (getrusage RUSAGE_THREAD).
long thread_context_switches();

}  // namespace im::server
