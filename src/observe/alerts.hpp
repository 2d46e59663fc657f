// Alerts: when a site goes down or recovers, when maintenance is switched on or off and when
// a scheduled window starts or ends, a webhook POST and an e-mail go to the configured
// destinations (docs/alerts.md).
//
// The control thread notices the transitions (Alerts::observe, after each publication) and
// only enqueues; one delivery thread damps flapping, sends with libcurl and retries with
// backoff. The request path never sees any of it.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "core/snapshot.hpp"

namespace im::observe {

enum class AlertEvent {
    site_down,        // a group the site forwards to has no target that takes traffic
    site_recovered,   // every group it forwards to has one again
    maintenance_on,   // the effective maintenance state changed (API switch, reload)
    maintenance_off,  //
    window_start,     // a scheduled maintenance window began
    window_end,       // ... or ended (or was removed while it ran)
};
std::string_view event_name(AlertEvent event);  // "site.down", ...

struct Alert {
    AlertEvent event = AlertEvent::site_down;
    std::string site;
    std::int64_t time = 0;  // UTC seconds
    std::string reason;     // why, in the operator's or the health checker's words
    std::string message;    // one line: "www is down: visitors get the outage page"
    boost::json::object details;
};

// Payloads (alert_payload.cpp); pure.
// {"event", "site", "time", "reason", "message", "details"}.
std::string alert_json(const Alert& alert);
// {"text": "..."}: what Slack's incoming webhooks (and compatible chats) show.
std::string slack_json(const Alert& alert);
std::string webhook_body(const Alert& alert, config::AlertWebhook::Format format);
std::string email_subject(const Alert& alert);  // "[intermission] www is down: ..."
std::string email_text(const Alert& alert);     // the plain-text body, CRLF line ends
// The whole RFC 5322 message (headers and body) as handed to the SMTP server.
std::string email_message(const Alert& alert, const config::AlertEmail& mail,
                          const std::string& message_id);

// Sending (alert_send.cpp): one blocking attempt with libcurl, within the destination's
// timeout; `abort` cuts it short (shutdown). An empty result means delivered, otherwise
// curl's error or the HTTP status, never a secret.
std::string post_webhook(const config::AlertWebhook& hook, const std::string& body,
                         const std::atomic<bool>& abort);
std::string send_mail(const config::AlertEmail& mail, const std::string& message,
                      const std::atomic<bool>& abort);
// "webhook http://hooks.example.com" (no path: it often holds the hook's secret),
// "e-mail via smtp://127.0.0.1:25 to ops@example.com".
std::string webhook_label(const config::AlertWebhook& hook);
std::string email_label(const config::AlertEmail& mail);

// Damping (alert_damper.cpp): per site and topic (health, maintenance), an alert within
// min_interval of the previous one sent is held back; when the interval ends the latest held
// alert is sent, unless it says what was last sent. Window alerts are never held: they are
// planned, and at most two a window. Pure: time comes in.
class Damper {
  public:
    using Time = std::chrono::steady_clock::time_point;
    explicit Damper(config::Duration min_interval = {}) : interval_(min_interval) {}
    void set_interval(config::Duration d) { interval_ = d; }
    // The alert when it may go now; otherwise it is held (replacing an earlier held one).
    std::optional<Alert> offer(Alert alert, Time now);
    // Held alerts whose interval ended by `now` and that change what was last sent.
    std::vector<Alert> release(Time now);
    std::optional<Time> next_release() const;
    std::uint64_t held_back() const { return dropped_; }  // alerts never sent on their own

  private:
    struct Topic {
        Time last_sent{};
        AlertEvent last_event{};
        std::optional<Alert> held;
        int held_count = 0;
    };
    config::Duration interval_;
    std::map<std::string, Topic> topics_;  // by "site/topic"
    std::uint64_t dropped_ = 0;
};

// What a site looks like now, as far as alerts care (alert_watch.cpp).
struct SiteFacts {
    bool outage = false;                  // a group it forwards to has no target that takes traffic
    bool maintenance = false;             // effective maintenance (config, API or a window)
    std::vector<config::Window> windows;  // the windows running now
    std::vector<std::string> window_sources;  // "config" or "api", one per window
    boost::json::array groups;                // for site.down details
    boost::json::object maintenance_details;
    std::string outage_reason;  // "target group 'app': no target takes traffic (...)"
};

// The last error of each target that went down, by core::drain_key(group, address).
using TargetErrors = std::map<std::string, std::string>;

SiteFacts site_facts(const core::Snapshot& snapshot, std::size_t site, std::int64_t now,
                     const TargetErrors& errors);
// The alerts that take `site` from `before` to `after`; pure.
std::vector<Alert> transitions(const std::string& site, const SiteFacts& before,
                               const SiteFacts& after, std::int64_t now);
// The first window start or end strictly after `after`; nullopt when none is left.
std::optional<std::int64_t> next_window_boundary(const std::vector<config::Window>& windows,
                                                 std::int64_t after);

// Delivery counters, for /metrics.
struct AlertCounters {
    std::atomic<std::uint64_t> sent{0};     // deliveries that succeeded
    std::atomic<std::uint64_t> failed{0};   // deliveries given up after every retry
    std::atomic<std::uint64_t> retried{0};  // attempts after a failed one
    std::atomic<std::uint64_t> damped{0};   // alerts held back by min_interval, never sent
    std::atomic<std::uint64_t> dropped{0};  // alerts refused because the queue was full
};

// The delivery thread (alert_delivery.cpp).
class AlertDelivery {
  public:
    AlertDelivery() = default;
    ~AlertDelivery() { stop(); }
    AlertDelivery(const AlertDelivery&) = delete;
    AlertDelivery& operator=(const AlertDelivery&) = delete;
    // New destinations and damping; the thread starts the first time alerts are enabled.
    // Deliveries already queued keep the destination they were made for.
    void configure(const config::Alerts& alerts);
    // Never blocks on delivery: a short lock to enqueue.
    void submit(std::vector<Alert> alerts);
    // Pending retries and held alerts are abandoned, with a log line each.
    void stop();
    const AlertCounters& counters() const { return counters_; }

    using Destination = std::variant<config::AlertWebhook, config::AlertEmail>;
    struct Job {
        Alert alert;
        Destination destination;
        std::string label;       // the destination in log lines, without secrets
        std::string message_id;  // the same on every attempt, so a mail client can tell repeats
        int retries = 0;         // from the config the job was made under
        config::Duration backoff{};
        int attempt = 0;        // attempts made
        std::uint64_t seq = 0;  // creation order: a site's alerts reach a destination in it
        std::chrono::steady_clock::time_point due;
    };

  private:
    void run();
    void take_incoming(std::unique_lock<std::mutex>& lock);
    void deliver(Job job, std::unique_lock<std::mutex>& lock);
    void add_jobs(const Alert& alert, std::chrono::steady_clock::time_point now);
    std::vector<Job>::iterator next_job();
    void abandon_pending();

    std::mutex mutex_;
    std::condition_variable wake_;
    config::Alerts config_;           // guarded by mutex_
    std::deque<Alert> incoming_;      // guarded by mutex_
    bool stopping_ = false;           // guarded by mutex_
    std::atomic<bool> abort_{false};  // read by libcurl's progress callback to cut a transfer
    std::thread thread_;
    Damper damper_;          // delivery thread only
    std::vector<Job> jobs_;  // delivery thread only
    std::uint64_t next_seq_ = 0;
    AlertCounters counters_;
};

// The control thread's side (alerts.cpp): remembers what each site looked like, turns
// changes into alerts, and keeps a timer on the next window boundary.
class Alerts {
  public:
    explicit Alerts(boost::asio::io_context& control) : timer_(control) {}
    // A new config (start or reload): destinations follow it; the first call only records.
    void adopt(const std::shared_ptr<const core::Snapshot>& snapshot);
    // A target's health flipped (`why`: its error when it went down), then `snapshot` was
    // published.
    void target_flipped(const std::shared_ptr<const core::Snapshot>& snapshot,
                        const std::string& group, const std::string& target, bool healthy,
                        const std::string& why);
    // Anything else was published (maintenance, windows, drains): alert on what changed.
    void observe(const std::shared_ptr<const core::Snapshot>& snapshot);
    void stop();
    const AlertCounters& counters() const { return delivery_.counters(); }

  private:
    void arm_timer();

    boost::asio::steady_timer timer_;
    std::shared_ptr<const core::Snapshot> snapshot_;
    std::map<std::string, SiteFacts> seen_;  // by site name
    TargetErrors errors_;
    bool enabled_ = false;
    AlertDelivery delivery_;
};

}  // namespace im::observe
