// Finding the admin API and the token: flags, then the environment, then the gateway's config.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"
#include "config/values.hpp"
#include "control/cli.hpp"

namespace im::control::cli {

namespace fs = std::filesystem;

namespace {

std::string from_env(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

// The token file's content without the trailing newline editors add; nullopt when unreadable.
std::optional<std::string> read_secret(const fs::path& file) {
    std::ifstream in(file);
    if (!in) return std::nullopt;
    std::stringstream content;
    content << in.rdbuf();
    std::string value = content.str();
    while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
        value.pop_back();
    return value;
}

std::string token_from_file(const std::string& file, const std::string& from) {
    auto value = read_secret(file);
    if (!value)
        throw Failure{kUsage, "cannot read the token file " + file + " (" + from +
                                  "): " + std::strerror(errno)};
    if (value->empty())
        throw Failure{kUsage, "the token file " + file + " (" + from + ") is empty"};
    return *value;
}

// "host:port", "http://host:port" or "unix:/path" (the gateway's admin.listen syntax).
Endpoint admin_address(std::string text, const std::string& from) {
    if (text.starts_with("unix:") && text.size() > 5) return Endpoint{"", 0, text.substr(5), ""};
    if (text.starts_with("https://"))
        throw Failure{kUsage, "the admin API speaks plain HTTP: give " + from + " as host:port"};
    if (text.starts_with("http://")) text.erase(0, 7);
    if (text.ends_with("/")) text.pop_back();
    auto address = config::parse_address(text);
    if (!address)
        throw Failure{kUsage, "bad " + from + " '" + text +
                                  "': expected host:port, http://host:port or unix:/path, e.g. "
                                  "127.0.0.1:9901"};
    return Endpoint{address.value->host, address.value->port, "", ""};
}

// A config with a mistake elsewhere (often the very edit about to be reloaded) must not hide
// where the admin API is: read the admin section alone, as the loader would.
std::optional<config::Admin> admin_section_only(const fs::path& path) {
    try {
        auto node = YAML::LoadFile(path.string())["admin"];
        if (!node.IsMap()) return std::nullopt;
        config::Admin admin;
        admin.enabled = true;
        if (node["listen"]) {
            auto text = node["listen"].as<std::string>();
            auto listen = config::parse_address(text);
            if (text.starts_with("unix:") && text.size() > 5)
                admin.unix_socket = (path.parent_path() / text.substr(5)).lexically_normal();
            else if (listen)
                admin.listen = *listen.value;
            else
                return std::nullopt;
        }
        for (const auto& t : node["tokens"]) {
            auto value = read_secret(path.parent_path() / t["file"].as<std::string>());
            if (!value || value->empty()) return std::nullopt;
            admin.tokens.push_back({t["name"].as<std::string>(), *value});
        }
        return admin;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// The admin section of the gateway's config; nullopt when no config was named and
// intermission.yaml is not here.
std::optional<config::Admin> config_admin(const ConnectionFlags& flags) {
    fs::path path = flags.config.empty() ? "intermission.yaml" : flags.config;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        if (flags.config.empty()) return std::nullopt;
        throw Failure{kUsage, "cannot read the config " + path.string() + ": no such file"};
    }
    auto loaded = config::load_config_file(path);
    std::optional<config::Admin> admin;
    if (loaded.config)
        admin = loaded.config->admin;
    else
        admin = admin_section_only(path);
    if (!admin && !loaded.errors.empty())
        throw Failure{kUsage, "cannot find the admin API in " + path.string() + ": " +
                                  loaded.errors.front().text()};
    if (!admin || !admin->enabled)
        throw Failure{kUsage,
                      path.string() + " has no admin section: that gateway runs no admin API"};
    return admin;
}

std::string config_token(const config::Admin& admin, const std::string& name) {
    for (const auto& t : admin.tokens)
        if (name.empty() || t.name == name) return t.value;
    if (!name.empty()) throw Failure{kUsage, "the config has no admin token named '" + name + "'"};
    throw Failure{kUsage, "the config's admin section has no tokens"};
}

std::string find_token(const ConnectionFlags& flags, const std::optional<config::Admin>& admin) {
    if (!flags.token.empty()) return flags.token;
    if (!flags.token_file.empty()) return token_from_file(flags.token_file, "--token-file");
    if (auto t = from_env("INTERMISSION_TOKEN"); !t.empty()) return t;
    if (auto f = from_env("INTERMISSION_TOKEN_FILE"); !f.empty())
        return token_from_file(f, "INTERMISSION_TOKEN_FILE");
    if (admin) return config_token(*admin, flags.token_name);
    throw Failure{kUsage,
                  "no admin token: give --token-file FILE, set INTERMISSION_TOKEN_FILE or "
                  "INTERMISSION_TOKEN, or point -c at the gateway's config"};
}

bool needs_config(const ConnectionFlags& flags) {
    bool address = !flags.admin.empty() || !from_env("INTERMISSION_ADMIN").empty();
    bool token = !flags.token.empty() || !flags.token_file.empty() ||
                 !from_env("INTERMISSION_TOKEN").empty() ||
                 !from_env("INTERMISSION_TOKEN_FILE").empty();
    return !address || !token;
}

}  // namespace

std::string Endpoint::text() const {
    return unix_socket.empty() ? config::Address{host, port}.text() : "unix:" + unix_socket;
}

Endpoint find_endpoint(const ConnectionFlags& flags) {
    std::optional<config::Admin> admin;
    if (needs_config(flags)) admin = config_admin(flags);
    Endpoint api{"127.0.0.1", 9901, "", ""};  // the admin section's default
    if (!flags.admin.empty())
        api = admin_address(flags.admin, "--admin");
    else if (auto env = from_env("INTERMISSION_ADMIN"); !env.empty())
        api = admin_address(env, "INTERMISSION_ADMIN");
    else if (admin)
        api = Endpoint{admin->listen.host, admin->listen.port, admin->unix_socket.string(), ""};
    api.token = find_token(flags, admin);
    for (unsigned char c : api.token)  // it goes into a header line
        if (c < 0x20 || c == 0x7f)
            throw Failure{kUsage, "the admin token contains control characters"};
    return api;
}

}  // namespace im::control::cli
