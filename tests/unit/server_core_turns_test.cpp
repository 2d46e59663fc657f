#include <gtest/gtest.h>

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/core_turns.hpp"

using im::server::CoreTurns;
using im::server::parse_task_stat;
using im::server::SiblingWorker;
using im::server::WorkerPresence;
using Next = CoreTurns::Next;
using namespace std::chrono_literals;

namespace {
const CoreTurns::Clock::time_point t0{};
constexpr auto worker_turn = CoreTurns::worker_turn;
constexpr auto turn = CoreTurns::turn;
}  // namespace

TEST(CoreTurns, AWaitingWorkerIsLookedForAfterAWorkerTurn) {
    CoreTurns turns;
    EXPECT_EQ(turns.after_batch(7, t0), Next::run_on);  // first look: the turn starts
    EXPECT_EQ(turns.after_batch(7, t0 + worker_turn - 1us), Next::run_on);
    EXPECT_EQ(turns.after_batch(7, t0 + worker_turn), Next::yield_if_a_worker_waits);
    // Nobody waited: the next look is a worker turn later, not at every batch.
    EXPECT_EQ(turns.after_batch(7, t0 + worker_turn + 1us), Next::run_on);
    EXPECT_EQ(turns.after_batch(7, t0 + 2 * worker_turn), Next::yield_if_a_worker_waits);
}

TEST(CoreTurns, ATurnEndsForAnyoneAfterTheLongTurn) {
    CoreTurns turns;
    turns.after_batch(7, t0);
    EXPECT_NE(turns.after_batch(7, t0 + turn - 1us), Next::yield);
    EXPECT_EQ(turns.after_batch(7, t0 + turn), Next::yield);
}

TEST(CoreTurns, ASwitchStartsANewTurn) {
    CoreTurns turns;
    turns.after_batch(7, t0);
    // It slept (or was preempted) just before the turn would have ended.
    EXPECT_EQ(turns.after_batch(8, t0 + turn - 10us), Next::run_on);
    EXPECT_EQ(turns.after_batch(8, t0 + turn + 10us), Next::run_on);
    EXPECT_EQ(turns.after_batch(8, t0 + 2 * turn - 10us), Next::yield);
}

TEST(CoreTurns, AfterYieldingTheNextTurnIsWholeEvenWithoutASwitch) {
    // sched_yield with nobody waiting returns at once and counts no switch.
    CoreTurns turns;
    turns.after_batch(3, t0);
    ASSERT_EQ(turns.after_batch(3, t0 + turn), Next::yield);
    EXPECT_EQ(turns.after_batch(3, t0 + turn + worker_turn - 1us), Next::run_on);
    EXPECT_NE(turns.after_batch(3, t0 + 2 * turn - 1us), Next::yield);
    EXPECT_EQ(turns.after_batch(3, t0 + 2 * turn), Next::yield);
}

TEST(CoreTurns, AYieldToAWaitingWorkerStartsAWholeTurn) {
    CoreTurns turns;
    turns.after_batch(3, t0);
    ASSERT_EQ(turns.after_batch(3, t0 + worker_turn), Next::yield_if_a_worker_waits);
    turns.yielded(t0 + worker_turn);
    EXPECT_EQ(turns.after_batch(3, t0 + 2 * worker_turn - 1us), Next::run_on);
    EXPECT_NE(turns.after_batch(3, t0 + turn + worker_turn - 1us), Next::yield);
    EXPECT_EQ(turns.after_batch(3, t0 + turn + worker_turn), Next::yield);
}

TEST(CoreTurns, ThreadContextSwitchesCountsThisThreadsSleeps) {
    long before = im::server::thread_context_switches();
    std::this_thread::sleep_for(2ms);  // a sleep is a voluntary switch
    EXPECT_GT(im::server::thread_context_switches(), before);
}

TEST(TaskStat, ReadsStateAndCpu) {
    auto s = parse_task_stat(
        "4242 (intermission) R 1 4242 15439 0 -1 4194368 3 0 0 0 0 0 0 0 20 0 2 0 1160496 14184448 "
        "676 18446744073709551615 1 1 1 0 0 0 0 0 0 1 0 0 -1 1 0 0 0 0 0 1 1 1 1 1 1 1 0\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, 'R');
    EXPECT_EQ(s->cpu, 1);
}

TEST(TaskStat, CountsFieldsFromTheLastParenthesis) {
    // A thread may name itself anything, spaces and ')' included.
    auto s = parse_task_stat(
        "7 (a) S b) S 1 7 7 0 -1 4194368 3 0 0 0 0 0 0 0 20 0 2 0 1160496 14184448 676 1 1 1 1 0 0 "
        "0 0 0 0 1 0 0 -1 3 0");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->state, 'S');
    EXPECT_EQ(s->cpu, 3);
}

TEST(TaskStat, RejectsWhatIsNotAStatLine) {
    EXPECT_FALSE(parse_task_stat(""));
    EXPECT_FALSE(parse_task_stat("12 (x) R 1 2 3"));                 // cut short of the cpu
    EXPECT_FALSE(parse_task_stat("no parenthesis R 1 2 3"));
    EXPECT_FALSE(parse_task_stat("1 (x) RS 1 2 3 4 5 6 7 8 9 10"));  // a state is one letter
}

namespace {

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_EQ(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

// Pins the test's thread to one core it may use, and unpins it after.
class OnOneCore {
public:
    OnOneCore() {
        CPU_ZERO(&saved_);
        EXPECT_EQ(pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_), 0);
        while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &saved_)) ++cpu;
        pin_to(cpu);
    }
    ~OnOneCore() { pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_); }
    int cpu = 0;

private:
    cpu_set_t saved_;
};

// A second worker thread on the caller's core: it spins (wants the core) or
// sleeps, and publishes its thread id as a worker does.
struct OtherWorker {
    WorkerPresence presence;
    std::atomic<bool> spin{false}, stop{false};
    std::mutex m;
    std::condition_variable wake;
    std::thread thread;

    explicit OtherWorker(int cpu, bool spinning) {
        spin = spinning;
        thread = std::thread([this, cpu] {
            pin_to(cpu);
            presence.publish_thread();
            std::unique_lock lock(m);
            while (!stop) {
                if (spin) {
                    lock.unlock();
                    while (spin && !stop) {
                    }
                    lock.lock();
                } else {
                    wake.wait(lock);
                }
            }
        });
        while (presence.stat_fd.load() < 0) std::this_thread::yield();
    }
    ~OtherWorker() {
        {
            std::lock_guard lock(m);
            stop = true;
        }
        wake.notify_all();
        thread.join();
    }
};

}  // namespace

TEST(SiblingWorker, AWorkerQueuedOnThisCoreWaits) {
    OnOneCore core;
    OtherWorker other(core.cpu, true);
    SiblingWorker sibling(other.presence);
    // This thread holds core 0, so the spinning one is queued there, not running.
    EXPECT_TRUE(sibling.waits_on(core.cpu, CoreTurns::Clock::now()));
    // Queued on another core it is not ours to let run.
    EXPECT_FALSE(sibling.waits_on(core.cpu + 1, CoreTurns::Clock::now()));
}

TEST(SiblingWorker, ASleepingWorkerDoesNotWait) {
    OnOneCore core;
    OtherWorker other(core.cpu, false);
    std::this_thread::sleep_for(5ms);  // let it reach its wait
    SiblingWorker sibling(other.presence);
    EXPECT_FALSE(sibling.waits_on(core.cpu, CoreTurns::Clock::now()));
}

TEST(SiblingWorker, AWorkerThatJustFinishedABatchIsRunningAndNotReadAbout) {
    OnOneCore core;
    OtherWorker other(core.cpu, true);
    auto now = CoreTurns::Clock::now();
    other.presence.last_batch.store((now - worker_turn / 2).time_since_epoch().count());
    SiblingWorker sibling(other.presence);
    EXPECT_FALSE(sibling.waits_on(core.cpu, now));
}

TEST(SiblingWorker, AWorkerNotYetRunningDoesNotWait) {
    WorkerPresence presence;  // no stat descriptor: its thread has not started
    SiblingWorker sibling(presence);
    EXPECT_FALSE(sibling.waits_on(0, CoreTurns::Clock::now()));
}
