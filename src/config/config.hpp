// The typed configuration: what the YAML file says, after validation.
// Every field has the default a user would expect from a serious proxy;
// docs/configuration.md documents each key.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace im::config {

using Duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// "host:port" of a listener or a target. host is a literal IP or a name.
// Where a value was written (1-based), for errors found after loading (a
// name that does not resolve, a certificate that does not load).
struct Position {
    int line = 0;  // 0: unknown
    int column = 0;
    bool operator==(const Position&) const = default;
};

struct Address {
    std::string host;
    std::uint16_t port = 0;
    bool tls = false;  // a target written https://host:port (text() leaves the scheme out)
    // "host:port", an IPv6 host in brackets: the text parses back.
    std::string text() const;
    bool operator==(const Address&) const = default;
};

struct Limits {
    std::size_t max_header_bytes = 16 * 1024;  // request line + headers; beyond: 431
    std::size_t max_headers = 100;             // header fields; beyond: 431
    std::uint64_t max_body_bytes = 0;          // 0 = unlimited; beyond: 413
};

struct ClientTimeouts {
    Duration header = 10s;     // from the first byte to the end of the request head
    Duration body = 30s;       // between two reads of a request body
    Duration send = 30s;       // between two writes of a response
    Duration keepalive = 60s;  // idle time between two requests
};

// HTTP/2 on client connections (upstreams stay HTTP/1.1).
struct Http2 {
    bool enabled = true;     // HTTPS listeners offer ALPN h2 before http/1.1
    bool cleartext = false;  // plain listeners also take h2c with prior knowledge
    std::uint32_t max_concurrent_streams = 128;
    std::uint32_t initial_window_size = 256 * 1024;  // per stream: what a client may send unread
    std::uint32_t max_frame_size = 16 * 1024;
    std::size_t max_header_list_size = 0;  // 0 = limits.max_header_bytes
};

struct Server {
    unsigned workers = 0;  // event loops; 0 = one per core
    std::vector<Address> listen;
    Limits limits;
    Http2 http2;
    ClientTimeouts timeouts;
    Duration drain_timeout = 10s;      // on SIGTERM, how long in-flight requests may finish
    std::string access_log = "stderr";  // a file path, "stderr", "stdout" or "off"
    std::string log_level = "info";     // error log level: debug, info, warn, error
};

// An inclusive range of HTTP statuses, e.g. 200-399 or just 200.
struct StatusRange {
    int low = 200;
    int high = 200;
    bool contains(int status) const { return status >= low && status <= high; }
    bool operator==(const StatusRange&) const = default;
};

struct HealthCheck {
    bool enabled = false;  // true when the group has a `health:` section
    std::string path = "/";
    std::vector<StatusRange> expect{{200, 399}};
    Duration interval = 2s;
    Duration timeout = 1s;
    int healthy_threshold = 2;
    int unhealthy_threshold = 2;
    std::string host;  // Host header to send; empty = the target's address
    // Without active checks a passively failed target is tried again after this.
    Duration passive_cooldown = 10s;
};

enum class Balance { round_robin, least_outstanding };

struct Pool {
    std::size_t max_idle = 64;         // idle keep-alive connections per target, per worker
    std::size_t max_connections = 0;   // per target, per worker; 0 = unlimited
    Duration idle_timeout = 60s;       // an idle pooled connection is closed after this
};

struct UpstreamTimeouts {
    Duration connect = 2s;
    Duration response_header = 30s;  // from the end of the request to the response head
    Duration idle = 60s;             // between two reads/writes while streaming
    Duration tunnel = 1h;            // idle time of an upgraded (WebSocket) connection
};

// TLS to the targets written https://: how they are verified.
struct UpstreamTls {
    std::filesystem::path ca_file;       // empty: the system's trust store
    bool verify = true;                  // false only for tests and labs
    std::string server_name;             // SNI and the name verified; empty: the target's host
    int min_version = 0x0303;            // TLS 1.2
    std::filesystem::path client_cert;   // optional client certificate (mutual TLS)
    std::filesystem::path client_key;
    Position position;
    bool operator==(const UpstreamTls&) const = default;
};

struct TargetGroup {
    std::string name;
    std::vector<Address> targets;
    std::vector<Position> target_positions;  // where each target is written
    UpstreamTls tls;
    Balance balance = Balance::round_robin;
    HealthCheck health;
    Pool pool;
    UpstreamTimeouts timeouts;
    int retries = 1;  // extra targets tried for an idempotent request that failed to connect
};

// A Cache-Control value for the page store paths matching a glob.
struct CacheControlRule {
    std::string path;  // glob, e.g. "/static/*"
    std::string value;
};

struct PageStore {
    std::filesystem::path root;
    Position root_position;
    std::string index = "index.html";
    std::string cache_control = "public, max-age=300";
    std::vector<CacheControlRule> cache_control_paths;  // first match wins
    bool compress = true;  // build gzip and brotli variants at load time
    bool watch = true;     // pick up changed files without a restart (inotify)
};

// An IP network ("10.0.0.0/8", "2001:db8::/32") or one address.
struct Cidr {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d)
    int prefix = 128;                      // over the 16 bytes: IPv4 /8 is 96 + 8
    std::string text;                      // as written, for messages
    bool contains(const std::array<std::uint8_t, 16>& address) const;
    bool operator==(const Cidr&) const = default;
};

struct WeightedGroup {
    std::string group;
    unsigned weight = 1;
    bool operator==(const WeightedGroup&) const = default;
};

// What a rule does with a request.
struct Action {
    enum class Kind { forward, store, page, fixed, redirect };
    Kind kind = Kind::forward;
    std::string target_group;  // forward to one group
    std::vector<WeightedGroup> weighted;  // forward split by weight (canaries); then target_group is empty
    std::string file;          // page: a file of the site's page store, e.g. "/maintenance.html"
    int status = 200;          // page, fixed, redirect
    std::optional<Duration> retry_after;  // page, fixed: a Retry-After header
    std::string content_type = "text/plain; charset=utf-8";  // fixed
    std::string body;                                         // fixed
    std::string location;  // redirect: template with {host}, {path}, {query}
    bool operator==(const Action&) const = default;
    static Action of(Kind kind, std::string group = {}) {
        Action a;
        a.kind = kind;
        a.target_group = std::move(group);
        return a;
    }
};

struct HeaderMatch {
    std::string name;                 // case-insensitive
    std::vector<std::string> values;  // globs, any may match
    bool operator==(const HeaderMatch&) const = default;
};

struct QueryMatch {
    std::string key;
    std::vector<std::string> values;  // globs, any may match; empty = the key is present
    bool operator==(const QueryMatch&) const = default;
};

// Conditions of a rule: every condition present must match (AND); within
// one condition any of its values may (OR). No condition: matches all.
struct Match {
    std::vector<std::string> paths;    // globs on the normalized path
    std::vector<std::string> hosts;    // globs on the lowercased Host without port
    std::vector<std::string> methods;  // exact, uppercase
    std::vector<HeaderMatch> headers;
    std::vector<QueryMatch> query;
    std::vector<Cidr> sources;         // the client address
    bool operator==(const Match&) const = default;
};

struct Rule {
    Match match;
    Action action;
};

// A planned maintenance window, as UTC seconds since the epoch.
struct Window {
    std::int64_t start = 0;
    std::int64_t end = 0;
    std::string reason;
    bool operator==(const Window&) const = default;
};

// Who still sees the real site while visitors get the maintenance page.
struct Bypass {
    std::string header_name;   // empty = no header bypass
    std::string header_value;  // the secret; from `value` or `value_file`
    std::vector<Cidr> sources;
    std::string cookie_secret;  // HMAC key; empty = no cookie bypass
    std::string cookie_path = "/.intermission/bypass";  // visiting it with ?token= sets the cookie
    std::string cookie_name = "intermission_bypass";
    Duration cookie_ttl = std::chrono::hours(1);
};

struct Maintenance {
    bool enabled = false;  // on at start-up (runtime state set through the API wins)
    std::string reason;
    std::string message = "This site is down for maintenance. Please try again later.";
    std::optional<std::int64_t> until;  // expected end, UTC seconds; drives Retry-After
    std::string page = "/maintenance.html";  // page store file for browsers
    std::string json_page;  // page store file for Accept: application/json; empty: a generated body
    std::string text_page;  // page store file for other clients; empty: the message as text
    int status = 503;
    Duration retry_after = std::chrono::minutes(5);  // when no end is known
    std::vector<std::string> allow;  // path globs answered as usual (the page's assets, robots.txt)
    std::vector<Window> windows;
    Bypass bypass;
};

// Failures to reach the application, besides upstream statuses.
enum class GatewayFailure { connect_failed, reset, timeout, no_healthy_target, bad_response };

// The CDN's custom error response: which upstream statuses or gateway
// failures get which page, with which status.
struct ErrorPage {
    std::vector<StatusRange> statuses;
    std::vector<GatewayFailure> failures;
    std::string page;                     // page store file
    std::optional<int> status;            // response code override; default: the original
    std::optional<Duration> retry_after;
    bool operator==(const ErrorPage&) const = default;
};

// What visitors get when no target of the group is healthy.
struct Outage {
    std::string page;  // page store file; default: the maintenance page
    int status = 503;
    Duration retry_after = std::chrono::seconds(30);
};

struct Site {
    std::string name;
    std::vector<std::string> hosts;  // exact names and "*.example.com" wildcards
    bool default_site = false;       // answers requests whose Host matches no site
    std::optional<PageStore> pages;
    std::vector<Rule> rules;  // in priority order, first match wins
    Action default_action;    // when no rule matches
    Maintenance maintenance;
    std::vector<ErrorPage> errors;  // first match wins
    Outage outage;
};

struct AdminToken {
    std::string name;   // who, in the audit log
    std::string value;  // the secret, read from its file; never logged
};

// A certificate for HTTPS (PEM: the certificate, then its chain; the key).
struct Certificate {
    std::filesystem::path cert;
    std::filesystem::path key;
    std::vector<std::string> names;  // names it serves; empty: its own DNS names
    bool is_default = false;         // served to clients that send no or an unknown name
    Position position;
    bool operator==(const Certificate&) const = default;
};

// HTTPS listeners and how they talk TLS.
struct Tls {
    bool enabled = false;  // the config has a `tls` section
    std::vector<Address> listen;
    std::vector<Certificate> certificates;
    bool reject_unknown_names = false;  // unknown SNI: alert instead of the default certificate
    int min_version = 0x0303;           // TLS 1.2; 0x0304 for 1.3 only
    std::string ciphers;                // TLS 1.2 suites (OpenSSL syntax); empty: a modern default
    bool session_tickets = true;
    Duration ticket_key_rotation = std::chrono::hours(12);
    bool redirect_http = false;      // plain listeners answer with a redirect to HTTPS
    std::uint16_t redirect_port = 0;  // 0: the first tls.listen port
    std::string hsts;                // Strict-Transport-Security value on HTTPS answers; empty: none
    bool watch = true;               // reload the certificates when their files change
};

// The admin API listener and where runtime state is kept.
struct Admin {
    bool enabled = false;  // true when the config has an `admin` section
    Address listen{"127.0.0.1", 9901};
    std::filesystem::path unix_socket;  // set for listen: "unix:/path": listen there instead
    std::vector<AdminToken> tokens;  // empty: the API answers only /healthz
    std::filesystem::path state_file;  // default: intermission.state.json beside the config
    std::filesystem::path audit_log;   // default: intermission.audit.jsonl beside the config
};

// A webhook that alerts are POSTed to (docs/alerts.md).
struct AlertWebhook {
    enum class Format { json, slack };  // slack: {"text": "..."}
    std::string url;                    // http:// or https://; may hold a secret, never logged whole
    Format format = Format::json;
    Duration timeout = 5s;
    std::filesystem::path ca_file;  // empty: the system's trust store
};

// The SMTP server alerts are mailed through.
struct AlertEmail {
    std::string server;     // smtp://host:port, or smtps:// for TLS from the first byte
    bool starttls = false;  // smtp:// only: refuse to send unless STARTTLS succeeds
    std::string username;   // empty: no AUTH
    std::string password;   // read from password_file; never logged
    std::string from;
    std::vector<std::string> to;
    Duration timeout = 10s;
    std::filesystem::path ca_file;
};

// Alerts on health, maintenance and window transitions.
struct Alerts {
    bool enabled = false;         // the config has an `alerts` section
    Duration min_interval = 60s;  // per site and topic; later alerts are held, the last one sent
    int retries = 3;              // delivery attempts after the first
    Duration backoff = 1s;        // before the first retry; doubles each retry
    std::vector<AlertWebhook> webhooks;
    std::optional<AlertEmail> email;
};

struct Config {
    std::filesystem::path source;  // the file it was loaded from
    Server server;
    Tls tls;
    Admin admin;
    Alerts alerts;
    std::vector<TargetGroup> target_groups;
    std::vector<Site> sites;

    const TargetGroup* find_group(const std::string& name) const {
        for (const auto& g : target_groups)
            if (g.name == name) return &g;
        return nullptr;
    }
};

// One problem found while loading: where it is and what was expected.
struct ConfigError {
    std::string file;
    int line = 0;    // 1-based; 0 when the problem has no single place
    int column = 0;  // 1-based
    std::string message;
    std::string text() const;  // "file:line:column: message"
};

struct LoadResult {
    std::optional<Config> config;     // set when there were no errors
    std::vector<ConfigError> errors;  // every problem found, in file order
};

LoadResult load_config_file(const std::filesystem::path& file);

// "file:line:column: " for a value written at `p` in `source` ("file: " when unknown).
std::string where(const std::filesystem::path& source, Position p);
LoadResult load_config_text(const std::string& yaml, const std::string& file_name,
                            const std::filesystem::path& base_dir);

}  // namespace im::config
