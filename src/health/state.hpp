// The health state machine of one target: it flips only after N results in
// a row (thresholds), except that a passive failure (connect refused, reset
// seen on live traffic) takes the target down at once.
#pragma once

#include <chrono>

namespace im::health {

class TargetHealth {
public:
    TargetHealth(int healthy_threshold, int unhealthy_threshold)
        : healthy_threshold_(healthy_threshold), unhealthy_threshold_(unhealthy_threshold) {}

    // Each returns true when the state changed.
    bool record_check(bool ok);
    bool record_passive_failure();
    bool force_healthy();  // passive cooldown over (groups without active checks)

    // A reload may change the thresholds; the target keeps its state and streak.
    void set_thresholds(int healthy_threshold, int unhealthy_threshold) {
        healthy_threshold_ = healthy_threshold;
        unhealthy_threshold_ = unhealthy_threshold;
    }

    bool healthy() const { return healthy_; }
    int consecutive_successes() const { return successes_; }
    int consecutive_failures() const { return failures_; }

private:
    int healthy_threshold_;
    int unhealthy_threshold_;
    bool healthy_ = true;  // a target is trusted until checks or traffic say otherwise
    int successes_ = 0;
    int failures_ = 0;
};

}  // namespace im::health
