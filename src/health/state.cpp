#include "health/state.hpp"

namespace im::health {

bool TargetHealth::record_check(bool ok) {
    if (ok) {
        ++successes_;
        failures_ = 0;
        if (!healthy_ && successes_ >= healthy_threshold_) {
            healthy_ = true;
            return true;
        }
        return false;
    }
    ++failures_;
    successes_ = 0;
    if (healthy_ && failures_ >= unhealthy_threshold_) {
        healthy_ = false;
        return true;
    }
    return false;
}

bool TargetHealth::record_passive_failure() {
    ++failures_;
    successes_ = 0;
    if (!healthy_) return false;
    healthy_ = false;
    return true;
}

bool TargetHealth::force_healthy() {
    successes_ = 0;
    failures_ = 0;
    if (healthy_) return false;
    healthy_ = true;
    return true;
}

}  // namespace im::health
