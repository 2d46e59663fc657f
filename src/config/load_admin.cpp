// The `admin` section: the admin API's listener, its bearer tokens (read
// from files so that secrets stay out of the YAML) and the state files.
#include <fstream>
#include <sstream>

#include "config/reader.hpp"

namespace im::config::detail {
namespace {

void read_token(Reader& r, const Entry& item, std::vector<AdminToken>& tokens) {
    AdminToken token;
    std::string file;
    bool is_map = r.fields(item, {
        {"name", [&](const Entry& e) { r.text(e, token.name); }},
        {"file", [&](const Entry& e) { r.text(e, file); }},
    });
    if (!is_map) return;
    if (token.name.empty() || file.empty()) {
        r.error(item, "expected {name: <who>, file: <path of the token>} for " + in_quotes(item.path));
        return;
    }
    auto path = r.resolve(file);
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    token.value = content.str();
    while (!token.value.empty() && std::isspace(static_cast<unsigned char>(token.value.back())))
        token.value.pop_back();
    if (!in)
        r.error(item, "cannot read the token file " + path.string() + " for " + in_quotes(item.path));
    else if (token.value.size() < 16)
        r.error(item, "the token in " + path.string() + " is shorter than 16 characters (for " +
                          in_quotes(item.path) + ")");
    else
        tokens.push_back(std::move(token));
}

// "host:port", or "unix:/path" for a Unix socket (reachable only through the file system).
void read_listen(Reader& r, const Entry& e, Admin& admin) {
    if (e.value.IsScalar() && e.value.Scalar().starts_with("unix:")) {
        auto path = e.value.Scalar().substr(5);
        if (path.empty()) r.error(e, "expected unix:<path of the socket> for " + in_quotes(e.path));
        else admin.unix_socket = r.resolve(path);
        return;
    }
    if (auto a = r.address(e)) admin.listen = *a;
}

}  // namespace

void read_admin(Reader& r, const Entry& entry, Admin& admin) {
    admin.enabled = true;
    r.fields(entry, {
        {"listen", [&](const Entry& e) { read_listen(r, e, admin); }},
        {"tokens", [&](const Entry& e) {
             if (auto list = r.items(e))
                 for (const auto& item : *list) read_token(r, item, admin.tokens);
         }},
        {"state_file", [&](const Entry& e) {
             std::string f;
             r.text(e, f);
             if (!f.empty()) admin.state_file = r.resolve(f);
         }},
        {"audit_log", [&](const Entry& e) {
             std::string f;
             r.text(e, f);
             if (!f.empty()) admin.audit_log = r.resolve(f);
         }},
    });
}

}  // namespace im::config::detail
