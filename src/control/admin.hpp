// The admin API: JSON over HTTP on its own listener, bearer-token auth.
// Handlers only adapt HTTP to the operations the gateway offers.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/snapshot.hpp"

namespace im::control {

struct Caller {
    std::string token;   // the token's name
    std::string client;  // the client's address
};

// An answer to an API call: status and JSON body.
struct ApiAnswer {
    int status = 200;
    boost::json::value body;
    static ApiAnswer error(int status, std::string message);
};

// What the admin API can ask of the gateway (implemented by the Gateway on
// the control thread).
class Operations {
public:
    virtual ~Operations() = default;
    virtual ApiAnswer sites() = 0;
    virtual ApiAnswer site(const std::string& name) = 0;
    virtual ApiAnswer maintenance(const std::string& site) = 0;
    // body: {"on": bool, "reason", "message", "until": RFC 3339 or seconds} or null to clear
    virtual ApiAnswer set_maintenance(const std::string& site, const boost::json::value* body,
                                      const Caller& caller) = 0;
    // body: {"start": RFC 3339, "end": RFC 3339, "reason": "..."}
    virtual ApiAnswer add_window(const std::string& site, const boost::json::value& body,
                                 const Caller& caller) = 0;
    virtual ApiAnswer remove_windows(const std::string& site, const Caller& caller) = 0;
    virtual ApiAnswer targets() = 0;
    // drain: no new requests to the target, those in flight finish; body: {"reason": "..."} or null
    virtual ApiAnswer set_drain(const std::string& group, const std::string& target, bool drain,
                                const boost::json::value* body, const Caller& caller) = 0;
    // A signed bypass token for the site's preview cookie; body {"ttl": "30m"} or null.
    virtual ApiAnswer issue_bypass(const std::string& site, const boost::json::value* body,
                                   const Caller& caller) = 0;
    // Re-reads the config file; on errors nothing changes and they are in the answer.
    virtual ApiAnswer reload(const Caller& caller) = 0;
    virtual ApiAnswer audit(std::size_t offset, std::size_t limit) = 0;
    // The Prometheus text exposition of GET /metrics (docs/metrics.md).
    virtual std::string metrics() = 0;
    // The admin section in force (its tokens change with a reload).
    virtual const config::Admin& admin() const = 0;
};

// Serves the admin API until the io_context stops. Throws with the address
// when it cannot listen.
void start_admin(boost::asio::io_context& io, Operations& ops);

}  // namespace im::control
