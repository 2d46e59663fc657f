// Internal to the config loader: walks the yaml-cpp tree, converts values and collects every
// error with its position, so one run reports all problems of a file.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace im::config::detail {

// A value with what it is called in error messages. `key` is the map key it came from; for the
// document root and list items it is an empty node, and positions fall back to the value.
struct Entry {
    YAML::Node key;
    YAML::Node value;
    std::string path;  // e.g. "server.timeouts.header" or "sites[0].rules[1].match.path"
};

struct Field {
    std::string_view key;
    std::function<void(const Entry&)> read;
};

class Reader {
  public:
    Reader(std::string file, std::filesystem::path base_dir)
        : file_(std::move(file)), base_dir_(std::move(base_dir)) {}

    void error(const YAML::Mark& mark, std::string message);
    // At the value, or at its key when the value is empty (yaml-cpp puts an empty value's mark
    // on the next token, often the next line).
    void error(const Entry& entry, std::string message);
    // At the key, for problems with the entry as a whole (e.g. a missing required key).
    void error_at_key(const Entry& entry, std::string message);
    std::vector<ConfigError> take_errors() { return std::move(errors_); }
    bool has_errors() const { return !errors_.empty(); }

    static YAML::Mark mark(const Entry& entry);
    static YAML::Mark key_mark(const Entry& entry);
    static int line(const Entry& entry) { return key_mark(entry).line + 1; }
    static Position position(const Entry& entry) {
        auto m = mark(entry);
        return m.line < 0 ? Position{} : Position{m.line + 1, m.column + 1};
    }

    // Calls the reader of each key of the map `entry` in file order and reports unknown and
    // duplicate keys. An empty value counts as an empty map. `context` names the map in
    // messages ("target group 'app'"); empty means the quoted path. False when not a map.
    bool fields(const Entry& entry, std::initializer_list<Field> fields,
                const std::string& context = {}) {
        return this->fields(entry, std::vector<Field>(fields), context);
    }
    bool fields(const Entry& entry, const std::vector<Field>& fields,
                const std::string& context = {});
    // The items of a list as entries named "path[i]"; nullopt (reported) when not a list.
    std::optional<std::vector<Entry>> items(const Entry& entry);
    // A list of scalars, or a single scalar when `allow_single`; nullopt (reported) otherwise.
    std::optional<std::vector<Entry>> scalars(const Entry& entry, bool allow_single,
                                              std::string_view what);

    // The scalar text, or nullopt after reporting "expected <what> for '<path>', got ...".
    std::optional<std::string> scalar(const Entry& entry, std::string_view what);
    void text(const Entry& entry, std::string& out, bool allow_empty = false);
    void boolean(const Entry& entry, bool& out);
    // Durations must be above zero unless `allow_zero`.
    void duration(const Entry& entry, Duration& out, bool allow_zero = false);
    // A size from `min` to `max` bytes (0: as much as T holds).
    template <typename T>
    void size(const Entry& entry, T& out, std::uint64_t min = 0, std::uint64_t max = 0);
    template <typename T>
    void integer(const Entry& entry, T& out, std::int64_t min, std::int64_t max);
    // host:port; with `allow_scheme` also http://host:port and https://host:port (tls set).
    std::optional<Address> address(const Entry& entry, bool allow_scheme = false);
    // A path glob starting with '/' (e.g. /static/*); `out` is left alone when it is bad.
    void path_glob(const Entry& entry, std::string& out);
    // One or a list of path globs; at least one.
    void path_globs(const Entry& entry, std::vector<std::string>& out);
    // An IP network or address (see parse_cidr).
    std::optional<Cidr> cidr(const Entry& entry);
    // One or a list of networks; at least one.
    void cidrs(const Entry& entry, std::vector<Cidr>& out);
    // An RFC 3339 timestamp as UTC seconds (see parse_timestamp).
    std::optional<std::int64_t> timestamp(const Entry& entry);

    // A path from the config relative to the config file's folder.
    std::filesystem::path resolve(const std::string& path) const;

  private:
    void bad_value(const Entry& entry, std::string_view noun, const std::string& text,
                   const std::string& expected);
    std::optional<std::uint64_t> size_value(const Entry& entry, std::uint64_t min,
                                            std::uint64_t max);
    std::optional<std::int64_t> integer_value(const Entry& entry, std::int64_t min,
                                              std::int64_t max);

    std::string file_;
    std::filesystem::path base_dir_;
    std::vector<ConfigError> errors_;
};

template <typename T>
void Reader::size(const Entry& entry, T& out, std::uint64_t min, std::uint64_t max) {
    if (max == 0) max = std::numeric_limits<T>::max();
    if (auto v = size_value(entry, min, max)) out = static_cast<T>(*v);
}

template <typename T>
void Reader::integer(const Entry& entry, T& out, std::int64_t min, std::int64_t max) {
    if (auto v = integer_value(entry, min, max)) out = static_cast<T>(*v);
}

// "a map", "a list", "'text'" or "nothing": what was found, for "expected X, got Y".
std::string describe(const YAML::Node& node);
std::string in_quotes(std::string_view path);
std::string join(const std::vector<std::string>& items);

// What the actions of one site may refer to.
struct ActionScope {
    const std::vector<TargetGroup>& groups;
    std::string label;  // "site 'www'"
    std::optional<std::filesystem::path> pages_root;  // set when the site has pages
};
// Reports "'<key>' in <context> needs a page store" when the site has no pages.
void need_pages(Reader& r, const Entry& entry, const ActionScope& scope,
                const std::string& context);
// A page store file ("/maintenance.html") that must exist in the site's store when the site
// has one; `file` is set even when it is missing so later checks see what was written.
void read_page_file(Reader& r, const Entry& entry, const ActionScope& scope, std::string& file);

// A rule's `match` (load_match.cpp).
void read_match(Reader& r, const Entry& entry, Match& match);
// A site's `maintenance`, `errors` and `outage` sections (load_maintenance.cpp).
void read_maintenance(Reader& r, const Entry& entry, const ActionScope& scope,
                      Maintenance& maintenance);
void read_error_pages(Reader& r, const Entry& entry, const ActionScope& scope,
                      std::vector<ErrorPage>& errors);
void read_outage(Reader& r, const Entry& entry, const ActionScope& scope, Outage& outage);

// Adds a field for each action name; each one present is appended to `found`.
void add_action_fields(std::vector<Field>& fields, std::vector<Entry>& found);
// Exactly one action among `found` (reported otherwise), read with its options.
std::optional<Action> read_action(Reader& r, const Entry& owner, const std::vector<Entry>& found,
                                  const ActionScope& scope, const std::string& context);

// The sections, in the order they must be read (sites refer to target groups).
void read_server(Reader& reader, const Entry& entry, Server& server);
void read_admin(Reader& reader, const Entry& entry, Admin& admin);
void read_tls(Reader& reader, const Entry& entry, Tls& tls);
void read_upstream_tls(Reader& reader, const Entry& entry, UpstreamTls& tls);
void read_target_groups(Reader& reader, const Entry& entry, std::vector<TargetGroup>& groups);
void read_sites(Reader& reader, const Entry& entry, const std::vector<TargetGroup>& groups,
                std::vector<Site>& sites);

}  // namespace im::config::detail
