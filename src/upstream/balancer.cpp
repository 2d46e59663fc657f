#include "upstream/balancer.hpp"

namespace im::upstream {

int pick_target(config::Balance balance, std::span<const Candidate> candidates,
                std::size_t& cursor) {
    const std::size_t n = candidates.size();
    if (n == 0) return -1;
    const std::size_t start = cursor++ % n;
    int best = -1;
    for (std::size_t k = 0; k < n; ++k) {
        std::size_t i = (start + k) % n;
        if (!candidates[i].usable) continue;
        if (balance == config::Balance::round_robin) return static_cast<int>(i);
        // least outstanding: the rotation start breaks ties fairly
        if (best < 0 || candidates[i].outstanding < candidates[static_cast<std::size_t>(best)].outstanding)
            best = static_cast<int>(i);
    }
    return best;
}

}  // namespace im::upstream
