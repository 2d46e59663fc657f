#include "core/snapshot.hpp"

#include <algorithm>

#include "config/glob.hpp"

namespace im::core {
namespace {

constexpr std::size_t kMaxHost = 256;

// Lowercases into buf; returns false when the name is too long to be a host.
bool lowercase(std::string_view in, char* buf, std::string_view& out) {
    if (in.size() > kMaxHost) return false;
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    std::size_t n = in.size();
    if (n > 0 && buf[n - 1] == '.') --n;  // "example.com." is example.com
    out = std::string_view(buf, n);
    return true;
}

std::string retry_after_line(const std::optional<config::Duration>& d) {
    if (!d) return {};
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
    return "Retry-After: " + std::to_string(seconds) + "\r\n";
}

// A page answered with an error status must not be cached anywhere: once
// the app is back, visitors must not keep seeing it.
std::shared_ptr<const CompiledPage> compile_file(const std::string& path, int status,
                                                 const std::string& extra,
                                                 const pages::Store* store,
                                                 bool never_cache = false) {
    const pages::File* file = store && !path.empty() ? store->find(path) : nullptr;
    if (!file) return nullptr;
    auto page = std::make_shared<CompiledPage>();
    page->file = file;
    page->status = status;
    const bool cacheable = !never_cache && status >= 200 && status < 300;
    const std::string cache =
        "Cache-Control: " + (cacheable ? file->cache_control : std::string("no-store")) + "\r\n";
    const bool varies = !file->gzip.empty() || !file->brotli.empty();
    const std::string* etags[3] = {&file->etag, &file->etag_gzip, &file->etag_brotli};
    const char* codings[3] = {nullptr, "gzip", "br"};
    for (int i = 0; i < 3; ++i) {
        std::string& h = page->headers[i];
        h = "Content-Type: " + file->mime + "\r\nETag: " + *etags[i] + "\r\n" + cache + extra;
        if (varies) h += "Vary: Accept-Encoding\r\n";
        if (codings[i]) h += std::string("Content-Encoding: ") + codings[i] + "\r\n";
    }
    return page;
}

std::shared_ptr<const CompiledPage> compile_page(const config::Action& a, const pages::Store* store) {
    return compile_file(a.file, a.status, retry_after_line(a.retry_after), store);
}

int group_index(const config::Config& config, const std::string& name) {
    for (std::size_t i = 0; i < config.target_groups.size(); ++i)
        if (config.target_groups[i].name == name) return static_cast<int>(i);
    return -1;
}

Action compile_action(const config::Action& a, const config::Config& config,
                      const pages::Store* store) {
    Action out;
    out.config = &a;
    switch (a.kind) {
    case config::Action::Kind::forward:
        out.kind = Action::Kind::forward;
        out.group = group_index(config, a.target_group);
        for (const auto& w : a.weighted) {
            out.total_weight += w.weight;
            out.weighted.emplace_back(group_index(config, w.group), out.total_weight);
        }
        if (out.group < 0 && !out.weighted.empty()) out.group = out.weighted.front().first;
        break;
    case config::Action::Kind::store: out.kind = Action::Kind::store; break;
    case config::Action::Kind::page:
        out.kind = Action::Kind::page;
        out.page = compile_page(a, store);
        break;
    case config::Action::Kind::fixed:
        out.kind = Action::Kind::fixed;
        out.fixed_headers = "Content-Type: " + a.content_type + "\r\n" + retry_after_line(a.retry_after);
        break;
    case config::Action::Kind::redirect: out.kind = Action::Kind::redirect; break;
    }
    return out;
}

CompiledRule compile_rule(const config::Rule& rule, const config::Config& config,
                          const pages::Store* store) {
    CompiledRule out;
    out.match = &rule.match;
    out.action = compile_action(rule.action, config, store);
    for (const auto& glob : rule.match.paths)
        out.path_prefixes.push_back(glob.substr(0, glob.find_first_of("*?")));
    return out;
}

void index_rules(SiteView& view) {
    for (std::size_t i = 0; i < view.rules.size(); ++i) {
        const auto& prefixes = view.rules[i].path_prefixes;
        bool anywhere = prefixes.empty() || std::any_of(prefixes.begin(), prefixes.end(),
                                                        [](const std::string& p) { return p.size() < 2; });
        auto index = static_cast<std::uint16_t>(i);
        if (anywhere) {
            for (auto& bucket : view.rule_buckets) bucket.push_back(index);
            continue;
        }
        for (const auto& p : prefixes) {
            auto& bucket = view.rule_buckets[static_cast<unsigned char>(p[1])];
            if (bucket.empty() || bucket.back() != index) bucket.push_back(index);
        }
    }
}

// Files that maintenance, outage and error pages use are not addressable by
// path unless a rule serves them (the private bucket of the cloud recipe).
std::vector<std::string> private_pages(const config::Site& site) {
    std::vector<std::string> files{site.maintenance.page};
    for (const auto* f : {&site.maintenance.json_page, &site.maintenance.text_page})
        if (!f->empty()) files.push_back(*f);
    if (!site.outage.page.empty()) files.push_back(site.outage.page);
    for (const auto& e : site.errors) files.push_back(e.page);
    std::erase_if(files, [&](const std::string& f) {
        return std::any_of(site.maintenance.allow.begin(), site.maintenance.allow.end(),
                           [&](const std::string& g) { return config::glob_match(g, f); });
    });
    return files;
}

SiteView compile_site(const config::Site& site, const config::Config& config,
                      std::shared_ptr<const pages::Store> store) {
    SiteView view;
    view.config = &site;
    view.store = std::move(store);
    const pages::Store* st = view.store.get();
    for (const auto& rule : site.rules)
        view.rules.push_back(compile_rule(rule, config, st));
    view.default_action = compile_action(site.default_action, config, st);
    index_rules(view);
    const auto& m = site.maintenance;
    // Retry-After of maintenance depends on the time; it is added per request.
    // Whatever its status, a maintenance answer must not outlive the maintenance in a cache.
    view.maintenance_page = compile_file(m.page, m.status, "", st, true);
    view.maintenance_json = compile_file(m.json_page, m.status, "", st, true);
    view.maintenance_text = compile_file(m.text_page, m.status, "", st, true);
    view.serves_robots = st && st->find("/robots.txt") != nullptr;
    const auto& o = site.outage;
    view.outage_page = compile_file(o.page.empty() ? m.page : o.page, o.status,
                                    retry_after_line(o.retry_after), st, true);
    for (const auto& e : site.errors)
        view.errors.push_back(CompiledError{&e, compile_file(e.page, e.status.value_or(0),
                                                             retry_after_line(e.retry_after), st)});
    view.private_pages = private_pages(site);
    return view;
}

std::shared_ptr<const pages::Store> store_of(const StoreMap& stores, const std::string& site) {
    auto it = stores.find(site);
    return it == stores.end() ? nullptr : it->second;
}

}  // namespace

bool CompiledRule::could_match(std::string_view path) const {
    if (path_prefixes.empty()) return true;
    for (const auto& p : path_prefixes)
        if (path.starts_with(p)) return true;
    return false;
}

void HostIndex::add(std::string_view pattern, int site) {
    char buf[kMaxHost];
    std::string_view lower;
    if (!lowercase(pattern, buf, lower)) return;
    if (lower.substr(0, 2) == "*.") {
        wildcards_.emplace_back(std::string(lower.substr(1)), site);
        std::stable_sort(wildcards_.begin(), wildcards_.end(),
                         [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    } else {
        exact_.emplace(std::string(lower), site);
    }
}

int HostIndex::find(std::string_view host) const {
    char buf[kMaxHost];
    std::string_view lower;
    if (!host.empty() && lowercase(host, buf, lower)) {
        if (auto it = exact_.find(lower); it != exact_.end()) return it->second;
        for (const auto& [suffix, site] : wildcards_)
            if (lower.size() > suffix.size() && lower.ends_with(suffix)) return site;
    }
    return default_site_;
}

std::shared_ptr<const Snapshot> build_snapshot(std::shared_ptr<const config::Config> config,
                                               std::shared_ptr<const Endpoints> endpoints,
                                               const StoreMap& stores,
                                               std::shared_ptr<const HealthView> health,
                                               std::uint64_t generation) {
    auto s = std::make_shared<Snapshot>();
    s->generation = generation;
    s->health = std::move(health);
    s->endpoints = std::move(endpoints);
    for (std::size_t i = 0; i < config->sites.size(); ++i) {
        const auto& site = config->sites[i];
        s->sites.push_back(compile_site(site, *config, store_of(stores, site.name)));
        for (const auto& host : site.hosts) s->hosts.add(host, static_cast<int>(i));
        if (site.default_site) s->hosts.set_default(static_cast<int>(i));
    }
    s->runtime = std::make_shared<RuntimeState>();
    s->maintenance.assign(s->sites.size(), nullptr);
    if (!config->tls.hsts.empty()) s->https_headers = "Strict-Transport-Security: " + config->tls.hsts + "\r\n";
    auto none = std::make_shared<TargetFlags>();
    for (const auto& g : config->target_groups) none->emplace_back(g.targets.size(), 0);
    s->drained = std::move(none);
    s->load = carry_load(*config, nullptr, nullptr);
    s->config = std::move(config);
    return s;
}

std::string drain_key(std::string_view group, std::string_view target) {
    std::string key(group);
    key += '/';
    key += target;
    return key;
}

std::shared_ptr<const TargetLoad> carry_load(const config::Config& config,
                                             const config::Config* old_config,
                                             const TargetLoad* old) {
    auto load = std::make_shared<TargetLoad>();
    for (const auto& g : config.target_groups) {
        auto& counters = load->emplace_back();
        const config::TargetGroup* before = old_config ? old_config->find_group(g.name) : nullptr;
        for (const auto& t : g.targets) {
            std::shared_ptr<InFlight> kept;
            for (std::size_t i = 0; before && old && i < before->targets.size(); ++i)
                if (before->targets[i] == t)
                    kept = (*old)[static_cast<std::size_t>(before - old_config->target_groups.data())][i];
            counters.push_back(kept ? kept : std::make_shared<InFlight>());
        }
    }
    return load;
}

std::shared_ptr<const Snapshot> with_runtime(const Snapshot& s,
                                             std::shared_ptr<const RuntimeState> runtime,
                                             std::uint64_t generation) {
    auto copy = std::make_shared<Snapshot>(s);
    copy->runtime = std::move(runtime);
    copy->generation = generation;
    for (std::size_t i = 0; i < copy->sites.size(); ++i) {
        auto it = copy->runtime->maintenance.find(copy->sites[i].config->name);
        copy->maintenance[i] = it == copy->runtime->maintenance.end() ? nullptr : &it->second;
    }
    auto drained = std::make_shared<TargetFlags>();
    for (const auto& g : copy->config->target_groups) {
        auto& flags = drained->emplace_back();
        for (const auto& t : g.targets)
            flags.push_back(copy->runtime->drained.contains(drain_key(g.name, t.text())) ? 1 : 0);
    }
    copy->drained = std::move(drained);
    return copy;
}

std::shared_ptr<const Snapshot> with_health(const Snapshot& s,
                                            std::shared_ptr<const HealthView> health,
                                            std::uint64_t generation) {
    auto copy = std::make_shared<Snapshot>(s);
    copy->health = std::move(health);
    copy->generation = generation;
    return copy;
}

std::shared_ptr<const Snapshot> with_store(const Snapshot& s, const std::string& site,
                                           std::shared_ptr<const pages::Store> store,
                                           std::uint64_t generation) {
    auto copy = std::make_shared<Snapshot>(s);
    // Page actions point into the store's files: recompile the site with it.
    for (auto& view : copy->sites)
        if (view.config->name == site) view = compile_site(*view.config, *copy->config, store);
    copy->generation = generation;
    return copy;
}

std::vector<std::size_t> forwarded_groups(const config::Config& config, const config::Site& site) {
    std::vector<std::string> names;
    auto add = [&](const config::Action& a) {
        if (a.kind != config::Action::Kind::forward) return;
        if (!a.target_group.empty()) names.push_back(a.target_group);
        for (const auto& w : a.weighted) names.push_back(w.group);
    };
    add(site.default_action);
    for (const auto& r : site.rules) add(r.action);
    std::vector<std::size_t> out;
    for (std::size_t g = 0; g < config.target_groups.size(); ++g)
        if (std::find(names.begin(), names.end(), config.target_groups[g].name) != names.end())
            out.push_back(g);
    return out;
}

std::shared_ptr<const HealthView> all_healthy(const config::Config& config) {
    auto h = std::make_shared<HealthView>();
    for (const auto& g : config.target_groups) h->healthy.emplace_back(g.targets.size(), 1);
    return h;
}

}  // namespace im::core
