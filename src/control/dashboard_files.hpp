// The dashboard's files, embedded in the binary at build time: dashboard/ is turned into a
// generated source by cmake/embed_dashboard.cmake. Kept apart from dashboard.hpp so that
// the generated source compiles without Beast.
#pragma once

#include <span>
#include <string_view>

namespace im::control {

struct DashboardFile {
    std::string_view name;     // e.g. "app.js"
    std::string_view content;  // the file's bytes
};

// Every embedded file (defined in the generated source).
std::span<const DashboardFile> dashboard_files();

}  // namespace im::control
