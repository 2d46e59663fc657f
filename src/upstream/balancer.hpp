// Choosing a target within a group: pure, so it is unit-tested on its own.
#pragma once

#include <cstddef>
#include <span>

#include "config/config.hpp"

namespace im::upstream {

struct Candidate {
    bool usable = false;           // healthy, not tried yet, below its connection limit
    std::size_t outstanding = 0;   // requests in flight from this worker
};

// Index of the chosen candidate, or -1 when none is usable. `cursor` is the
// group's rotating position, advanced on every pick.
int pick_target(config::Balance balance, std::span<const Candidate> candidates,
                std::size_t& cursor);

}  // namespace im::upstream
