#include "server/core_turns.hpp"

#include <sys/resource.h>

namespace im::server {

bool CoreTurns::turn_is_over(long switches, Clock::time_point now) {
    if (switches != switches_) {  // it slept or was preempted: a new turn began
        switches_ = switches;
        running_since_ = now;
        return false;
    }
    if (now - running_since_ < turn) return false;
    running_since_ = now;
    return true;
}

long thread_context_switches() {
    rusage usage{};
    if (::getrusage(RUSAGE_THREAD, &usage) != 0) return 0;
    return usage.ru_nvcsw + usage.ru_nivcsw;
}

}  // namespace im::server
