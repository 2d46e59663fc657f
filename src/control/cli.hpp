// The commands that drive a running gateway through its admin API:
// `intermission maintenance|sites|targets|drain|undrain|reload|audit`.
// cli.cpp registers them, cli_commands.cpp says what each one asks of the API,
// cli_endpoint.cpp finds the API and the token, cli_http.cpp talks HTTP to it, and
// cli_print.cpp formats the answers for people. docs/cli.md is the user's guide.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace CLI {
class App;
class ParseError;
}  // namespace CLI

namespace im::control::cli {

// What the exit code tells a script.
enum Exit : int {
    kDone = 0,          // the API did it (or answered the question)
    kRefused = 1,       // the API answered with an error (4xx other than 401, or 5xx)
    kUsage = 2,         // bad usage or a bad value, found before asking the API
    kUnreachable = 3,   // no connection to the admin API, or no answer in time
    kUnauthorized = 4,  // the API refused the token (401)
};

// Ends a command: its exit code and the one line printed on stderr. `details`
// are printed first, one per line (e.g. a reload's file:line:column errors).
struct Failure {
    Failure(int code, std::string message, std::vector<std::string> details = {})
        : code(code), message(std::move(message)), details(std::move(details)) {}
    int code;
    std::string message;
    std::vector<std::string> details;
};

// Where the admin API is and how to prove who we are, as the user gave it.
struct ConnectionFlags {
    std::string admin;       // --admin host:port or http://host:port
    std::string token;       // --token
    std::string token_file;  // --token-file
    std::string token_name;  // --token-name: which of the config's tokens
    std::string config;      // -c/--config; empty: intermission.yaml when it exists
    bool json = false;       // --json: print the API's answer as it came
};

struct Endpoint {
    std::string host;  // an IP literal (IPv6 without brackets) or a name
    std::uint16_t port = 0;
    std::string unix_socket;   // set for "unix:/path": connect there instead of host:port
    std::string token;         // a secret: never printed, not even in errors
    std::string text() const;  // "host:port" or "unix:/path", for messages and the Host header
};

// Flags first, then INTERMISSION_ADMIN / INTERMISSION_TOKEN / INTERMISSION_TOKEN_FILE,
// then the config's admin section. Throws Failure{kUsage} when no token can be found.
Endpoint find_endpoint(const ConnectionFlags& flags);

struct Reply {
    int status = 0;
    std::string reason;  // "Not Found"
    std::string body;
};

// One HTTP exchange. Throws Failure{kUnreachable} when the API cannot be reached or does not
// answer within `timeout`.
Reply exchange(const Endpoint& api, std::string_view method, const std::string& target,
               const std::optional<boost::json::value>& body,
               std::chrono::seconds timeout = std::chrono::seconds(5));

// The JSON of a successful answer; throws Failure{kUnauthorized} on 401 and Failure{kRefused}
// on any other error status, with the API's own message.
boost::json::value accepted(const Reply& reply);

// A path segment with everything but letters, digits, "-._~" and ":" percent-encoded.
std::string path_segment(std::string_view text);

// The time a flag names: RFC 3339 ("2026-11-24T03:00:00Z"), "now", or a duration from `now`
// ("30m", "2h", "90s", "1h30m"), as RFC 3339 UTC. Throws Failure{kUsage} naming `flag`.
std::string absolute_time(std::string_view text, std::string_view flag, std::int64_t now);

// What each command prints for people (cli_print.cpp).
void print_maintenance(std::ostream& out, const boost::json::object& state, std::int64_t now);
void print_maintenance_table(std::ostream& out, const boost::json::object& sites);
void print_windows(std::ostream& out, const boost::json::object& state);
void print_sites(std::ostream& out, const boost::json::object& sites);
void print_targets(std::ostream& out, const boost::json::object& targets, std::int64_t now);
void print_target(std::ostream& out, const std::string& group, const boost::json::object& target);
void print_reload(std::ostream& out, const boost::json::object& answer);
void print_audit(std::ostream& out, const boost::json::object& audit);

// Everything the user typed for the admin commands (CLI11 writes into it).
struct Inputs {
    ConnectionFlags connection;
    std::string site, group, target;
    std::string reason, message, until, start, end;
    bool list = false, clear = false;
    std::size_t limit = 50, offset = 0;
};

using Command = std::function<int(const Inputs&)>;

// The commands of cli_commands.cpp; each returns an Exit or throws a Failure.
int maintenance_on(const Inputs& in);
int maintenance_off(const Inputs& in);
int maintenance_clear(const Inputs& in);
int maintenance_status(const Inputs& in);
int maintenance_schedule(const Inputs& in);
int sites(const Inputs& in);
int targets(const Inputs& in);
int drain(const Inputs& in);
int undrain(const Inputs& in);
int reload(const Inputs& in);
int audit(const Inputs& in);

// Registers the admin commands on the program's CLI11 app; after parsing, run() executes the
// one the user picked.
class AdminCommands {
  public:
    explicit AdminCommands(CLI::App& app);
    AdminCommands(const AdminCommands&) = delete;
    AdminCommands& operator=(const AdminCommands&) = delete;

    // The exit code of the chosen admin command; nullopt when the user chose another command.
    std::optional<int> run() const;
    // A usage error in an admin command is one line on stderr and exit 2; others keep
    // CLI11's own report. --help and --version print and give 0.
    int parse_error(CLI::App& app, const CLI::ParseError& error) const;

  private:
    void add_maintenance(CLI::App& app);
    void add_schedule(CLI::App* maintenance);
    void add_gateway(CLI::App& app);
    CLI::App* add(CLI::App* parent, const char* name, const char* what, Command command);

    Inputs inputs_;
    std::vector<CLI::App*> groups_;  // "maintenance" and the leaves, to recognise their errors
    std::vector<std::pair<CLI::App*, Command>> leaves_;
};

}  // namespace im::control::cli
