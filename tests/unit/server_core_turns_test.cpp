#include <gtest/gtest.h>

#include <thread>

#include "server/core_turns.hpp"

using im::server::CoreTurns;
using namespace std::chrono_literals;

namespace {
const CoreTurns::Clock::time_point t0{};
}

TEST(CoreTurns, ATurnEndsAfterRunningWithoutASwitch) {
    CoreTurns turns;
    EXPECT_FALSE(turns.turn_is_over(7, t0));  // first look: the turn starts
    EXPECT_FALSE(turns.turn_is_over(7, t0 + CoreTurns::turn / 2));
    EXPECT_FALSE(turns.turn_is_over(7, t0 + CoreTurns::turn - 1us));
    EXPECT_TRUE(turns.turn_is_over(7, t0 + CoreTurns::turn));
}

TEST(CoreTurns, ASwitchStartsANewTurn) {
    CoreTurns turns;
    turns.turn_is_over(7, t0);
    // It slept (or was preempted) just before the turn would have ended.
    EXPECT_FALSE(turns.turn_is_over(8, t0 + CoreTurns::turn - 10us));
    EXPECT_FALSE(turns.turn_is_over(8, t0 + CoreTurns::turn + 10us));
    EXPECT_TRUE(turns.turn_is_over(8, t0 + 2 * CoreTurns::turn - 10us));
}

TEST(CoreTurns, AfterYieldingTheNextTurnIsWholeEvenWithoutASwitch) {
    // sched_yield with nobody waiting returns at once and counts no switch.
    CoreTurns turns;
    turns.turn_is_over(3, t0);
    ASSERT_TRUE(turns.turn_is_over(3, t0 + CoreTurns::turn));
    EXPECT_FALSE(turns.turn_is_over(3, t0 + CoreTurns::turn + 1us));
    EXPECT_FALSE(turns.turn_is_over(3, t0 + 2 * CoreTurns::turn - 1us));
    EXPECT_TRUE(turns.turn_is_over(3, t0 + 2 * CoreTurns::turn));
}

TEST(CoreTurns, ThreadContextSwitchesCountsThisThreadsSleeps) {
    long before = im::server::thread_context_switches();
    std::this_thread::sleep_for(2ms);  // a sleep is a voluntary switch
    EXPECT_GT(im::server::thread_context_switches(), before);
}
