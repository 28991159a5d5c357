#include "generation.hpp"

namespace taskmill::host::detail {
namespace fs = std::filesystem;

generation_sources sources_of(const generation& g) {
    generation_sources out;
    for (const auto& [file, when] : g.files) out[file] = {when, g.dir / file};
    return out;
}

std::string build_generation(generation& g, const std::string& run_dir, uint32_t number,
                             const generation_sources& sources) {
    g = generation{};
    g.number = number;
    g.dir = fs::path(run_dir) / ("generation-" + std::to_string(number));
    std::error_code ec;
    fs::remove_all(g.dir, ec);  // a leftover of an earlier run with this run dir
    fs::create_directories(g.dir, ec);
    if (!ec)
        fs::permissions(g.dir,
                        fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec,
                        ec);
    if (ec) return "cannot create " + g.dir.string() + ": " + ec.message();
    for (const auto& [file, src] : sources) {
        fs::create_hard_link(src.from, g.dir / file, ec);
        if (ec) fs::copy_file(src.from, g.dir / file, fs::copy_options::overwrite_existing, ec);
        if (ec) return "cannot place " + file + " in " + g.dir.string() + ": " + ec.message();
        g.files[file] = src.when;
    }
    return {};
}

void remove_generation(const generation& g) {
    std::error_code ec;
    fs::remove_all(g.dir, ec);
}

std::vector<std::string> differing_files(const generation& from, const generation& to) {
    std::vector<std::string> out;
    for (const auto& [file, when] : to.files) {
        auto it = from.files.find(file);
        if (it == from.files.end() || it->second != when) out.push_back(file);
    }
    return out;
}

}  // namespace taskmill::host::detail
