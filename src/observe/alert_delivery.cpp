// The delivery thread: takes alerts from the control thread, damps them, makes one job per
// destination and sends it, retrying with exponential backoff. A destination that is down
// or slow only delays other alerts, never a request.
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "config/values.hpp"
#include "observe/alerts.hpp"

namespace im::observe {

namespace {

using Clock = std::chrono::steady_clock;

// Far more than any real burst (every site flipping at once); beyond it the control thread
// drops rather than waits.
constexpr std::size_t kMaxQueued = 1000;

std::string label_of(const AlertDelivery::Destination& d) {
    if (const auto* hook = std::get_if<config::AlertWebhook>(&d)) return webhook_label(*hook);
    return email_label(std::get<config::AlertEmail>(d));
}

std::string what_of(const Alert& a) {
    return "alert " + std::string(event_name(a.event)) + " for site '" + a.site + "'";
}

// "<seconds>.<counter>.<random>@<the sender's domain>": unique, and the same on every attempt.
std::string make_message_id(const config::AlertEmail& mail, std::int64_t time) {
    static std::atomic<std::uint64_t> counter{0};
    static const std::uint64_t salt = std::random_device{}();
    const auto domain = mail.from.substr(mail.from.rfind('@') + 1);
    return std::to_string(time) + "." + std::to_string(++counter) + "." + std::to_string(salt) +
           "@" + domain;
}

std::string attempt_once(const AlertDelivery::Job& job, const std::atomic<bool>& abort) {
    if (const auto* hook = std::get_if<config::AlertWebhook>(&job.destination))
        return post_webhook(*hook, webhook_body(job.alert, hook->format), abort);
    const auto& mail = std::get<config::AlertEmail>(job.destination);
    return send_mail(mail, email_message(job.alert, mail, job.message_id), abort);
}

}  // namespace

void AlertDelivery::configure(const config::Alerts& alerts) {
    std::lock_guard lock(mutex_);
    config_ = alerts;
    if (!alerts.enabled || thread_.joinable() || stopping_) return;
    // Once, before any transfer, while no other thread uses libcurl.
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (init != CURLE_OK) {
        spdlog::error("alerts: cannot initialize libcurl ({}): no alerts will be sent",
                      curl_easy_strerror(init));
        return;
    }
    thread_ = std::thread([this] { run(); });
}

void AlertDelivery::submit(std::vector<Alert> alerts) {
    if (alerts.empty()) return;
    {
        std::lock_guard lock(mutex_);
        if (!config_.enabled || stopping_ || !thread_.joinable()) return;
        for (auto& a : alerts) {
            spdlog::info("{}: {}{}", what_of(a), a.message,
                         a.reason.empty() ? "" : " (" + a.reason + ")");
            if (incoming_.size() >= kMaxQueued) {
                counters_.dropped.fetch_add(1, std::memory_order_relaxed);
                spdlog::error("{}: not sent, {} alerts are waiting already", what_of(a),
                              kMaxQueued);
                continue;
            }
            incoming_.push_back(std::move(a));
        }
    }
    wake_.notify_one();
}

void AlertDelivery::stop() {
    {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    abort_ = true;
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// Under the lock: new alerts through the damper, and held ones whose interval ended, become
// one job per destination of the config now.
void AlertDelivery::take_incoming(std::unique_lock<std::mutex>&) {
    damper_.set_interval(config_.min_interval);
    const auto now = Clock::now();
    std::vector<Alert> ready = damper_.release(now);
    for (auto& a : incoming_)
        if (auto go = damper_.offer(std::move(a), now)) ready.push_back(std::move(*go));
    incoming_.clear();
    counters_.damped.store(damper_.held_back(), std::memory_order_relaxed);
    for (const auto& a : ready) add_jobs(a, now);
}

// One job per destination of the config now.
void AlertDelivery::add_jobs(const Alert& alert, Clock::time_point now) {
    auto add = [&](Destination d) {
        Job job;
        job.alert = alert;
        job.destination = std::move(d);
        job.label = label_of(job.destination);
        if (const auto* mail = std::get_if<config::AlertEmail>(&job.destination))
            job.message_id = make_message_id(*mail, alert.time);
        job.retries = config_.retries;
        job.backoff = config_.backoff;
        job.seq = ++next_seq_;
        job.due = now;
        jobs_.push_back(std::move(job));
    };
    for (const auto& hook : config_.webhooks) add(hook);
    if (config_.email) add(*config_.email);
}

// The earliest due job that no older job of its site and destination waits before: while
// "www is down" is retried, "www has recovered" must not overtake it.
std::vector<AlertDelivery::Job>::iterator AlertDelivery::next_job() {
    auto next = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
        const bool blocked = std::any_of(jobs_.begin(), jobs_.end(), [&](const Job& o) {
            return o.seq < it->seq && o.alert.site == it->alert.site && o.label == it->label;
        });
        if (!blocked && (next == jobs_.end() || it->due < next->due)) next = it;
    }
    return next;
}

void AlertDelivery::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        take_incoming(lock);
        const auto now = Clock::now();
        auto due = next_job();
        if (due != jobs_.end() && due->due <= now) {
            Job job = std::move(*due);
            jobs_.erase(due);
            deliver(std::move(job), lock);
            continue;
        }
        std::optional<Clock::time_point> wake = damper_.next_release();
        if (due != jobs_.end() && (!wake || due->due < *wake)) wake = due->due;
        auto woken = [this] { return stopping_ || !incoming_.empty(); };
        if (wake)
            wake_.wait_until(lock, *wake, woken);
        else
            wake_.wait(lock, woken);
    }
    abandon_pending();
}

// One attempt, without the lock (the control thread may enqueue meanwhile); then success,
// a retry later, or giving up.
void AlertDelivery::deliver(Job job, std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    ++job.attempt;
    const std::string error = attempt_once(job, abort_);
    const int attempts = job.retries + 1;
    const auto& where = job.label;
    lock.lock();
    if (error.empty()) {
        counters_.sent.fetch_add(1, std::memory_order_relaxed);
        spdlog::info("{} sent to {} (attempt {} of {})", what_of(job.alert), where, job.attempt,
                     attempts);
        return;
    }
    if (stopping_) {
        spdlog::warn("{} to {}: attempt {} cut short by the shutdown: {}", what_of(job.alert),
                     where, job.attempt, error);
        jobs_.push_back(std::move(job));  // reported as abandoned
        return;
    }
    if (job.attempt >= attempts) {
        counters_.failed.fetch_add(1, std::memory_order_relaxed);
        spdlog::error("{} to {} failed (attempt {} of {}): {}; giving up", what_of(job.alert),
                      where, job.attempt, attempts, error);
        return;
    }
    // backoff, 2 x backoff, 4 x backoff, ...
    const auto delay = job.backoff * (std::int64_t{1} << std::min(job.attempt - 1, 20));
    counters_.retried.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn("{} to {} failed (attempt {} of {}): {}; retrying in {}", what_of(job.alert),
                 where, job.attempt, attempts, error, config::format_duration(delay));
    job.due = Clock::now() + delay;
    jobs_.push_back(std::move(job));
}

void AlertDelivery::abandon_pending() {
    for (const auto& job : jobs_)
        spdlog::warn("alerts: shutting down: {} to {} abandoned after {} attempt(s)",
                     what_of(job.alert), job.label, job.attempt);
    for (const auto& a : incoming_) spdlog::warn("alerts: shutting down: {} not sent", what_of(a));
    if (damper_.next_release())
        spdlog::warn("alerts: shutting down: alerts held back by min_interval are not sent");
    jobs_.clear();
    incoming_.clear();
}

}  // namespace im::observe
