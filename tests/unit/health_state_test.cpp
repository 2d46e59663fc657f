#include <gtest/gtest.h>

#include "health/state.hpp"

using im::health::TargetHealth;

TEST(HealthState, StartsHealthyAndFallsAfterThreshold) {
    TargetHealth h(2, 3);
    EXPECT_TRUE(h.healthy());
    EXPECT_FALSE(h.record_check(false));
    EXPECT_FALSE(h.record_check(false));
    EXPECT_TRUE(h.record_check(false));  // third failure in a row flips
    EXPECT_FALSE(h.healthy());
}

TEST(HealthState, SuccessResetsFailureRun) {
    TargetHealth h(2, 2);
    h.record_check(false);
    h.record_check(true);
    EXPECT_FALSE(h.record_check(false));
    EXPECT_TRUE(h.healthy());
}

TEST(HealthState, RecoversOnlyAfterHealthyThreshold) {
    TargetHealth h(3, 1);
    EXPECT_TRUE(h.record_check(false));
    EXPECT_FALSE(h.record_check(true));
    EXPECT_FALSE(h.record_check(true));
    EXPECT_FALSE(h.healthy());
    EXPECT_TRUE(h.record_check(true));
    EXPECT_TRUE(h.healthy());
}

TEST(HealthState, PassiveFailureIsImmediate) {
    TargetHealth h(2, 5);
    EXPECT_TRUE(h.record_passive_failure());
    EXPECT_FALSE(h.healthy());
    EXPECT_FALSE(h.record_passive_failure());  // already down: no new transition
    EXPECT_FALSE(h.record_check(true));
    EXPECT_TRUE(h.record_check(true));
}

TEST(HealthState, ForceHealthyAfterCooldown) {
    TargetHealth h(2, 2);
    h.record_passive_failure();
    EXPECT_TRUE(h.force_healthy());
    EXPECT_TRUE(h.healthy());
    EXPECT_FALSE(h.force_healthy());
}
