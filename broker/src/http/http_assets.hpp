// The dashboard's files (broker/src/http/web/), embedded at build time by
// broker/src/http/web/embed.cmake: the broker serves them with no files on disk.
#pragma once

#include <string_view>
#include <vector>

namespace taskmill::broker::http {

struct asset {
    std::string_view path;          // "/app.js"
    std::string_view content_type;  // "text/javascript; charset=utf-8"
    std::string_view data;
};

const std::vector<asset>& web_assets();

}  // namespace taskmill::broker::http
