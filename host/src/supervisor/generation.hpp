// Private to the supervisor: a generation, the plugin set one round of
// workers loads. Its folder, <run-dir>/generation-N/, holds hard links to
// the judged copies of the accepted files (never to the originals, which
// may be overwritten in place), and workers get it as --plugins.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "../plugin_watch.hpp"

namespace taskmill::host::detail {

struct generation {
    uint32_t number = 0;
    std::filesystem::path dir;
    std::map<std::string, plugin_watch::stamp> files;  // accepted file -> stamp of the version held
    bool proven = false;                               // one of its workers got ready
    int failed_starts = 0;                             // in a row, since its last worker got ready
    std::string culprit;                               // the plugin its last failed worker was loading
};

// One file of a generation to build: its stamp and the file to link or copy.
struct generation_source {
    plugin_watch::stamp when{};
    std::filesystem::path from;
};
using generation_sources = std::map<std::string, generation_source>;

// The sources that make up `g` again (links to its own folder).
generation_sources sources_of(const generation& g);

// Creates <run_dir>/generation-<number>/ holding `sources` (hard links,
// copies where a link is impossible). Empty string, or what failed.
std::string build_generation(generation& g, const std::string& run_dir, uint32_t number,
                             const generation_sources& sources);

void remove_generation(const generation& g);

// Files of `to` that are new or different from `from`.
std::vector<std::string> differing_files(const generation& from, const generation& to);

}  // namespace taskmill::host::detail
