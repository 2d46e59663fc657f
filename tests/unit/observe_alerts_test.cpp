// The pure parts of alerts: damping, transitions between site states, window boundaries,
// payload text, and the `alerts` config section.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "config/values.hpp"
#include "observe/alerts.hpp"

using namespace im;
using namespace std::chrono_literals;
using observe::Alert;
using observe::AlertEvent;
using observe::Damper;

namespace {

Alert alert(AlertEvent e, const std::string& site = "www") {
    Alert a;
    a.event = e;
    a.site = site;
    a.time = 1795921200;  // 2026-11-29T03:00:00Z
    a.message = site + " is down: visitors get the outage page";
    a.reason = "target group 'app': no target takes traffic (127.0.0.1:9000: connection refused)";
    return a;
}

const Damper::Time t0 = Damper::Time{} + 1h;

}  // namespace

TEST(AlertDamper, FirstAlertGoesAtOnce) {
    Damper d(60s);
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
    EXPECT_FALSE(d.next_release());
}

TEST(AlertDamper, FlapsWithinTheIntervalAreHeldAndTheLastStateSent) {
    Damper d(60s);
    ASSERT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_recovered), t0 + 5s));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_down), t0 + 10s));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_recovered), t0 + 15s));
    ASSERT_EQ(d.next_release(), t0 + 60s);
    EXPECT_TRUE(d.release(t0 + 59s).empty());
    auto out = d.release(t0 + 60s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].event, AlertEvent::site_recovered);
    EXPECT_EQ(out[0].details.at("held_back").as_int64(), 2);
    EXPECT_EQ(d.held_back(), 2u);  // the two replaced ones
    EXPECT_FALSE(d.next_release());
}

TEST(AlertDamper, AFlapBackToWhatWasSentSendsNothing) {
    Damper d(60s);
    ASSERT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_recovered), t0 + 1s));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_down), t0 + 2s));
    EXPECT_TRUE(d.release(t0 + 60s).empty());
    EXPECT_EQ(d.held_back(), 2u);
    // After the interval a change goes at once again.
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_recovered), t0 + 61s));
}

TEST(AlertDamper, AfterTheIntervalAlertsGoAtOnce) {
    Damper d(60s);
    ASSERT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_recovered), t0 + 60s));
    EXPECT_FALSE(d.offer(alert(AlertEvent::site_down), t0 + 61s));
    auto out = d.release(t0 + 120s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].event, AlertEvent::site_down);
    EXPECT_FALSE(out[0].details.contains("held_back"));  // held alone, nothing was replaced
}

TEST(AlertDamper, SitesAndTopicsAreDampedApart) {
    Damper d(60s);
    ASSERT_TRUE(d.offer(alert(AlertEvent::site_down, "www"), t0));
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_down, "shop"), t0 + 1s));
    EXPECT_TRUE(d.offer(alert(AlertEvent::maintenance_on, "www"), t0 + 2s));
    // Windows are planned: never held.
    EXPECT_TRUE(d.offer(alert(AlertEvent::window_start), t0 + 3s));
    EXPECT_TRUE(d.offer(alert(AlertEvent::window_end), t0 + 4s));
}

TEST(AlertDamper, ZeroIntervalDampsNothing) {
    Damper d(0s);
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_recovered), t0));
    EXPECT_TRUE(d.offer(alert(AlertEvent::site_down), t0));
}

TEST(AlertWindows, NextBoundaryIsTheFirstStartOrEndAfter) {
    std::vector<config::Window> w{{100, 200, "a"}, {150, 160, "b"}, {300, 400, ""}};
    EXPECT_EQ(observe::next_window_boundary(w, 0), 100);
    EXPECT_EQ(observe::next_window_boundary(w, 100), 150);  // strictly after
    EXPECT_EQ(observe::next_window_boundary(w, 155), 160);
    EXPECT_EQ(observe::next_window_boundary(w, 160), 200);
    EXPECT_EQ(observe::next_window_boundary(w, 250), 300);
    EXPECT_EQ(observe::next_window_boundary(w, 399), 400);
    EXPECT_FALSE(observe::next_window_boundary(w, 400));
    EXPECT_FALSE(observe::next_window_boundary({}, 0));
}

namespace {

// A site forwarding to `app` (two targets) and `api` (one).
struct Farm {
    std::shared_ptr<config::Config> config = std::make_shared<config::Config>();
    Farm() {
        for (auto [name, n] : {std::pair{"app", 2}, {"api", 1}}) {
            config::TargetGroup g;
            g.name = name;
            for (int i = 0; i < n; ++i)
                g.targets.push_back({"127.0.0.1", static_cast<std::uint16_t>(9000 + i)});
            config->target_groups.push_back(g);
        }
        config::Site www;
        www.name = "www";
        www.default_site = true;
        www.default_action = config::Action::of(config::Action::Kind::forward, "app");
        www.maintenance.reason = "upgrade";
        www.maintenance.windows.push_back({1000, 2000, "weekly"});
        config->sites.push_back(www);
    }
    std::shared_ptr<const core::Snapshot> snapshot(std::vector<std::vector<std::uint8_t>> healthy) {
        auto view = std::make_shared<core::HealthView>();
        view->healthy = std::move(healthy);
        auto s = core::build_snapshot(config, std::make_shared<core::Endpoints>(), {}, view, 1);
        return core::with_runtime(*s, std::make_shared<core::RuntimeState>(), 2);
    }
};

}  // namespace

TEST(AlertWatch, EveryTargetDownIsAnOutageWithEachError) {
    Farm f;
    observe::TargetErrors errors{{core::drain_key("app", "127.0.0.1:9000"), "connection refused"},
                                 {core::drain_key("app", "127.0.0.1:9001"), "HTTP 503"}};
    auto up = observe::site_facts(*f.snapshot({{1, 1}, {1}}), 0, 0, errors);
    auto half = observe::site_facts(*f.snapshot({{0, 1}, {1}}), 0, 0, errors);
    auto down = observe::site_facts(*f.snapshot({{0, 0}, {1}}), 0, 0, errors);
    EXPECT_FALSE(up.outage);
    EXPECT_FALSE(half.outage);
    ASSERT_TRUE(down.outage);
    EXPECT_EQ(down.outage_reason,
              "target group 'app': no target takes traffic (127.0.0.1:9000: connection refused; "
              "127.0.0.1:9001: HTTP 503)");
    EXPECT_TRUE(observe::transitions("www", up, half, 0).empty());
    auto alerts = observe::transitions("www", half, down, 5);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::site_down);
    EXPECT_EQ(alerts[0].message, "www is down: visitors get the outage page");
    const auto& groups = alerts[0].details.at("groups").as_array();
    ASSERT_EQ(groups.size(), 1u);  // only the group the site forwards to
    EXPECT_EQ(groups[0].at("targets").as_array()[0].at("last_error"), "connection refused");
    alerts = observe::transitions("www", down, half, 9);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::site_recovered);
    EXPECT_EQ(alerts[0].reason, "target group 'app': 1 target(s) take traffic");
}

TEST(AlertWatch, WindowsStartAndEndWithoutASeparateMaintenanceAlert) {
    Farm f;
    auto s = f.snapshot({{1, 1}, {1}});
    auto before = observe::site_facts(*s, 0, 999, {});
    auto during = observe::site_facts(*s, 0, 1000, {});
    auto after = observe::site_facts(*s, 0, 2000, {});
    EXPECT_FALSE(before.maintenance);
    EXPECT_TRUE(during.maintenance);
    auto alerts = observe::transitions("www", before, during, 1000);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::window_start);
    EXPECT_EQ(alerts[0].reason, "weekly");
    EXPECT_EQ(alerts[0].details.at("end"), "1970-01-01T00:33:20Z");
    alerts = observe::transitions("www", during, after, 2000);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::window_end);
    EXPECT_FALSE(alerts[0].details.contains("removed_early"));
}

TEST(AlertWatch, MaintenanceSwitchedThroughTheApi) {
    Farm f;
    auto off = observe::site_facts(*f.snapshot({{1, 1}, {1}}), 0, 5, {});
    auto runtime = std::make_shared<core::RuntimeState>();
    runtime->maintenance["www"] = core::MaintenanceState{true, "deploy 42", "", "ops", 5, {}, {}};
    auto base = f.snapshot({{1, 1}, {1}});
    auto on = observe::site_facts(*core::with_runtime(*base, runtime, 3), 0, 5, {});
    auto alerts = observe::transitions("www", off, on, 5);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::maintenance_on);
    EXPECT_EQ(alerts[0].reason, "deploy 42");
    EXPECT_EQ(alerts[0].details.at("who"), "ops");
    EXPECT_EQ(alerts[0].details.at("source"), "api");
    alerts = observe::transitions("www", on, off, 6);
    ASSERT_EQ(alerts.size(), 1u);
    EXPECT_EQ(alerts[0].event, AlertEvent::maintenance_off);
    EXPECT_EQ(alerts[0].message, "www is out of maintenance: visitors get the site again");
}

TEST(AlertPayload, JsonHasEveryField) {
    auto a = alert(AlertEvent::site_down);
    a.details = boost::json::object{{"maintenance", false}};
    auto v = boost::json::parse(observe::alert_json(a)).as_object();
    EXPECT_EQ(v.at("event"), "site.down");
    EXPECT_EQ(v.at("site"), "www");
    EXPECT_EQ(v.at("time"), "2026-11-29T03:00:00Z");
    EXPECT_EQ(v.at("reason").as_string(), a.reason);
    EXPECT_EQ(v.at("message").as_string(), a.message);
    EXPECT_EQ(v.at("details").at("maintenance"), false);
}

TEST(AlertPayload, SlackTextEscapesMarkup) {
    auto a = alert(AlertEvent::maintenance_on);
    a.message = "www is in maintenance";
    a.reason = "db <upgrade> & more";
    auto v = boost::json::parse(observe::slack_json(a)).as_object();
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v.at("text"),
              "[intermission] www is in maintenance\nReason: db &lt;upgrade&gt; &amp; more\n"
              "maintenance.on at 2026-11-29T03:00:00Z");
}

TEST(AlertPayload, EmailHasHeadersAndPlainTextBody) {
    auto a = alert(AlertEvent::site_down);
    a.details = boost::json::object{
        {"groups", boost::json::array{boost::json::object{{"name", "app"}, {"serving", 0}}}}};
    config::AlertEmail mail;
    mail.from = "intermission@example.com";
    mail.to = {"ops@example.com", "oncall@example.com"};
    auto m = observe::email_message(a, mail, "1.2.3@example.com");
    EXPECT_NE(m.find("From: intermission@example.com\r\n"), std::string::npos);
    EXPECT_NE(m.find("To: ops@example.com, oncall@example.com\r\n"), std::string::npos);
    EXPECT_NE(m.find("Subject: [intermission] www is down: visitors get the outage page\r\n"),
              std::string::npos);
    EXPECT_NE(m.find("Date: Sun, 29 Nov 2026 03:00:00 +0000\r\n"), std::string::npos);
    EXPECT_NE(m.find("Message-ID: <1.2.3@example.com>\r\n"), std::string::npos);
    auto body = m.substr(m.find("\r\n\r\n") + 4);
    EXPECT_EQ(body.substr(0, body.find("\r\n")), a.message);
    EXPECT_NE(body.find("Reason: " + a.reason + "\r\n"), std::string::npos);
    EXPECT_NE(body.find("  groups:\r\n    - name: app\r\n      serving: 0\r\n"), std::string::npos);
    EXPECT_EQ(body.find("\n\n"), std::string::npos);  // every line ends in CRLF
}

TEST(AlertPayload, HeaderInjectionIsDefused) {
    auto a = alert(AlertEvent::maintenance_on);
    a.message = "www\r\nBcc: someone@evil.example";
    EXPECT_EQ(observe::email_subject(a), "[intermission] www  Bcc: someone@evil.example");
}

namespace {

config::LoadResult load(const std::string& alerts) {
    // One folder per process: ctest runs tests in parallel, and a shared file could be read
    // while another test rewrites it.
    const auto dir = std::filesystem::temp_directory_path() /
                     ("intermission-alerts-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "smtp-password") << "s3cret\n";
    const std::string yaml =
        "server: {listen: [\"127.0.0.1:8080\"]}\n"
        "target_groups: {app: {targets: [\"127.0.0.1:9000\"]}}\n"
        "sites: [{name: www, default: true, default_action: {forward: app}}]\n" +
        alerts;
    return config::load_config_text(yaml, "a.yaml", dir);
}

std::string first_error(const config::LoadResult& r) {
    return r.errors.empty() ? "" : r.errors.front().text();
}

}  // namespace

TEST(AlertConfig, ReadsEveryKey) {
    auto r = load(
        "alerts:\n"
        "  min_interval: 30s\n"
        "  retries: 5\n"
        "  backoff: 250ms\n"
        "  webhooks:\n"
        "    - {url: \"http://127.0.0.1:9000/hook\", format: slack, timeout: 2s}\n"
        "    - url: \"https://hooks.example.com/x\"\n"
        "  email:\n"
        "    server: \"smtp://127.0.0.1:2525\"\n"
        "    starttls: true\n"
        "    username: alerts\n"
        "    password_file: smtp-password\n"
        "    from: \"intermission@example.com\"\n"
        "    to: [\"ops@example.com\", \"dev@example.com\"]\n"
        "    timeout: 3s\n");
    ASSERT_TRUE(r.config) << first_error(r);
    const auto& a = r.config->alerts;
    EXPECT_TRUE(a.enabled);
    EXPECT_EQ(a.min_interval, 30s);
    EXPECT_EQ(a.retries, 5);
    EXPECT_EQ(a.backoff, 250ms);
    ASSERT_EQ(a.webhooks.size(), 2u);
    EXPECT_EQ(a.webhooks[0].format, config::AlertWebhook::Format::slack);
    EXPECT_EQ(a.webhooks[0].timeout, 2s);
    EXPECT_EQ(a.webhooks[1].format, config::AlertWebhook::Format::json);
    ASSERT_TRUE(a.email);
    EXPECT_TRUE(a.email->starttls);
    EXPECT_EQ(a.email->password, "s3cret");
    EXPECT_EQ(a.email->to.size(), 2u);
    EXPECT_EQ(a.email->timeout, 3s);
}

TEST(AlertConfig, NoSectionMeansNoAlerts) {
    auto r = load("");
    ASSERT_TRUE(r.config) << first_error(r);
    EXPECT_FALSE(r.config->alerts.enabled);
}

TEST(AlertConfig, BadInputIsReportedWithItsPosition) {
    const std::pair<std::string, std::string> cases[] = {
        {"alerts:\n  retry: 3\n  webhooks: [{url: \"http://a/\"}]\n",
         "a.yaml:5:3: unknown key 'retry' in 'alerts'"},
        {"alerts:\n  webhooks: [{url: \"ftp://a/\"}]\n", "a.yaml:5:20: bad URL 'ftp://a/'"},
        {"alerts:\n  webhooks: [{url: \"not a url\"}]\n", "a.yaml:5:20: bad URL 'not a url'"},
        {"alerts:\n  backoff: 1 s\n  webhooks: [{url: \"http://a/\"}]\n",
         "a.yaml:5:12: bad duration '1 s'"},
        {"alerts:\n  webhooks: []\n", "a.yaml:5:13: expected at least one webhook"},
        {"alerts:\n  min_interval: 1m\n", "a.yaml:4:1: expected 'webhooks' or 'email'"},
        {"alerts:\n  webhooks: [{url: \"http://a/\", format: xml}]\n", "bad format 'xml'"},
        {"alerts:\n  email: {server: \"smtp://a:25\", from: \"x@example.com\", to: []}\n",
         "a.yaml:5:61: expected at least one recipient"},
        {"alerts:\n  email: {server: \"smtp://a:25\", from: \"x@example.com\"}\n",
         "missing required key 'to'"},
        {"alerts:\n  email: {server: \"smtp://a:25\", from: \"nobody\", to: [a@b.c]}\n",
         "bad e-mail address 'nobody'"},
        {"alerts:\n  email: {server: \"http://a:25\", from: \"x@b.c\", to: [a@b.c]}\n",
         "bad URL 'http://a:25'"},
        {"alerts:\n  email: {server: \"smtp://a\", from: \"x@b.c\", to: [a@b.c], username: u}\n",
         "'username' in 'alerts.email' needs 'password_file'"},
        {"alerts:\n  email: {server: \"smtp://a\", from: \"x@b.c\", to: [a@b.c], username: u,"
         " password_file: absent}\n",
         "cannot read the password file 'absent'"},
        {"alerts:\n  email: {server: \"smtps://a\", from: \"x@b.c\", to: [a@b.c], starttls: "
         "true}\n",
         "'starttls' in 'alerts.email' needs an smtp:// server"},
        {"alerts:\n  retries: 101\n  webhooks: [{url: \"http://a/\"}]\n", "bad integer '101'"},
    };
    for (const auto& [yaml, expected] : cases) {
        auto r = load(yaml);
        EXPECT_FALSE(r.config) << yaml;
        EXPECT_NE(first_error(r).find(expected), std::string::npos)
            << yaml << "\nexpected: " << expected << "\ngot: " << first_error(r);
    }
}

TEST(AlertConfig, ThePasswordNeverAppearsInErrors) {
    auto r = load(
        "alerts:\n  email: {server: \"smtp://a\", from: \"x@b.c\", to: [], username: u,"
        " password_file: smtp-password}\n");
    ASSERT_FALSE(r.config);
    for (const auto& e : r.errors) EXPECT_EQ(e.text().find("s3cret"), std::string::npos);
}
