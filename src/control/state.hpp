// Durable runtime state (maintenance switched through the API, its
// windows): written atomically (temp file, fsync, rename, fsync of the
// folder) so a crash at any instant leaves the old or the new file, never a
// torn one; read back at start.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "core/snapshot.hpp"

namespace im::control {

struct StateLoad {
    std::optional<core::RuntimeState> state;  // empty when the file is unusable
    std::string error;                        // why, naming the file
};

// A missing file is an empty state; a corrupt one is an error (never a
// silent reset: the operator decides, with --fresh-state).
StateLoad load_state(const std::filesystem::path& file);

// Returns an error message, or empty on success (the state is durable).
std::string save_state(const std::filesystem::path& file, const core::RuntimeState& state);

std::string state_to_json(const core::RuntimeState& state);

}  // namespace im::control
