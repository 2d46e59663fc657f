// The routing decision: a pure function of the request, what is known about
// the visitor, and the snapshot. I/O code executes the Decision; it never
// decides. Time and randomness come in as inputs, so tests pin them.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "core/snapshot.hpp"
#include "http/message.hpp"

namespace im::core {

struct Visitor {
    std::array<std::uint8_t, 16> address{};  // client IP, IPv4 as IPv4-mapped IPv6
    std::int64_t now = 0;                    // UTC seconds
    std::uint32_t roll = 0;                  // uniform random, for weighted forwards
    std::string_view path;                   // the normalized path rules match on
};

struct Decision {
    enum class Kind {
        forward,       // to `group`
        store,         // the request path from the site's page store
        page,          // action->page
        fixed,         // action->config body
        redirect,      // action->config location
        maintenance,   // the site's maintenance answer
        outage,        // no healthy target: the site's outage page
        bypass_grant,  // a valid bypass token: set the cookie
        not_found,     // a private page asked for by path
        no_site        // no site for this Host and no default site
    };
    Kind kind = Kind::no_site;
    int site = -1;
    int group = -1;                  // forward
    const Action* action = nullptr;  // page, fixed, redirect, forward
    std::int64_t retry_after = -1;   // maintenance: seconds; -1 when not set
    bool bypassed = false;           // maintenance is on but this visitor may pass
};

Decision decide(const http::Request& request, const Visitor& visitor, const Snapshot& snapshot);

// Is maintenance on for site `index` at `now`; sets `until` to its end when known.
bool maintenance_active(const Snapshot& snapshot, std::size_t index, std::int64_t now,
                        std::optional<std::int64_t>& until);

// Does this request pass the site's maintenance bypass (header, source, cookie)?
bool bypasses(const config::Bypass& bypass, const std::string& site, const http::Request& request,
              const Visitor& visitor);

// Which header names a request has, as a 64-bit filter, found once per decide()
// by the first header condition that asks: most header conditions then skip the
// scan of the request's headers (match.cpp).
struct HeaderNames {
    std::uint64_t bits = 0;
    bool known = false;
};

// Do the conditions hold for this request?
bool matches(const config::Match& match, const http::Request& request, const Visitor& visitor);
bool matches(const config::Match& match, const http::Request& request, const Visitor& visitor,
             HeaderNames& names);

}  // namespace im::core
