// Content types for the page store, chosen by file extension.
#pragma once

#include <string_view>

namespace im::pages {

// "text/html; charset=utf-8" etc. by extension (case-insensitive), "application/octet-stream"
// when unknown.
std::string_view mime_type(std::string_view path);

// Whether files with this extension are worth compressing: text formats and .ico (which is
// usually uncompressed bitmaps); images, fonts and archives are compressed already.
bool is_compressible(std::string_view path);

// Whether the extension denotes a text format (for Brotli's text mode).
bool is_text(std::string_view path);

}  // namespace im::pages
