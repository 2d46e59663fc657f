// The routing decision: a pure function of the request and the snapshot.
// I/O code executes the Decision; it never decides.
#pragma once

#include "core/snapshot.hpp"
#include "http/message.hpp"

namespace im::core {

struct Decision {
    enum class Kind { forward, store, page, fixed, redirect, no_site };
    Kind kind = Kind::no_site;
    int site = -1;
    int group = -1;                     // forward
    const Action* action = nullptr;     // the rule's action, inside the snapshot
};

Decision decide(const http::Request& request, const Snapshot& snapshot);

}  // namespace im::core
