// taskmill/host/plugin_loader.hpp -- loads handler plugins and resolves
// handler names to them.
//
// Each .so is first checked without being mapped (its ELF headers: a
// truncated file or a library exporting STB_GNU_UNIQUE symbols is refused),
// then copied to a private run folder under a unique name, and that copy is
// loaded (dlopen, RTLD_NOW | RTLD_LOCAL), so a later write to the original
// can never touch mapped code. A library is validated before any of its
// handlers is used; a refused one is reported with the reason and nothing
// of it is kept. Workers and `taskmill-host --check` judge a file by this
// same code. Libraries are never unloaded while the process
// lives (see docs/PLUGINS.md, "6. Reloading": a new generation of workers
// loads the new set). Not thread-safe while
// loading; after loading, resolve() and the handler pointers may be used
// from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/plugin.h>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

namespace spdlog {
class logger;
}

namespace taskmill::host {

struct semver {
    uint32_t major = 0;
    uint32_t minor = 0;
    uint32_t patch = 0;
    friend auto operator<=>(const semver&, const semver&) = default;
};
// Parses "X", "X.Y" or "X.Y.Z": numbers only, no "-rc1" or "+build" suffix.
result<semver> parse_semver(std::string_view text);

// One validated handler of a loaded plugin. The pointers live as long as
// the plugin_set (the library stays mapped).
struct loaded_handler {
    std::string name;
    const tm_handler* handler = nullptr;
    const tm_plugin* plugin = nullptr;
    void* plugin_state = nullptr;  // what the plugin's init() stored
    std::string plugin_name;
    std::string version;
    semver parsed_version;
    // Defaults, read only if the plugin's struct has them.
    std::string default_queue;
    int64_t default_timeout_ms = 0;
    int32_t default_retries = -1;
    uint32_t flags = 0;
};

struct plugin_info {
    std::string name;
    std::string version;
    uint32_t abi_version = 0;
    std::filesystem::path source;  // the file that was asked for
    std::filesystem::path copy;    // the private copy actually loaded
    std::vector<loaded_handler> handlers;
    // Accepted, but worth a line in the log (e.g. exports besides the entry point).
    std::vector<std::string> warnings;
};

// What a load is doing, for a caller that must tell where a crash happened.
enum class load_stage {
    opening,      // ELF checks, copy, dlopen: the library's constructors run
    entry_point,  // the entry point returns the descriptor
    init,         // the plugin's init()
};
const char* to_string(load_stage stage);

struct load_settings {
    // Plugin name -> the msgpack map its init() receives; a plugin not
    // named gets an empty map.
    std::map<std::string, std::string> configs;
    // Where init()'s log lines go (tagged plugin=NAME); nullptr = spdlog's
    // default logger.
    spdlog::logger* log = nullptr;
    // Called as each stage starts.
    std::function<void(load_stage)> on_stage;
};

// Checks a descriptor against the ABI rules (sizes, versions, names, flags,
// execute pointers). Returns the reason on refusal. Pure: used by the loader
// and by tests on hand-made descriptors.
result<void> validate_descriptor(const tm_plugin* p);

// Checks the handler name syntax: [a-z0-9_-]+ segments joined by '.', at
// least two segments.
bool valid_handler_name(std::string_view name);

class plugin_set {
public:
    // `run_dir` receives the private copies; it is created if needed.
    explicit plugin_set(std::filesystem::path run_dir, load_settings settings = {});
    ~plugin_set();
    plugin_set(const plugin_set&) = delete;
    plugin_set& operator=(const plugin_set&) = delete;

    void set_settings(load_settings settings) { settings_ = std::move(settings); }

    // Checks, copies, loads, validates and initialises one library. On
    // refusal nothing is kept and the error says why (not a library, a
    // truncated file, dlerror()'s text, no entry point, ABI, init() failed
    // with its message, ...).
    result<const plugin_info*> load(const std::filesystem::path& so);

    // Loads every *.so in `dir` (sorted by name); returns the refusals as
    // "file: reason" lines. The good plugins stay loaded.
    std::vector<std::string> load_dir(const std::filesystem::path& dir);

    // "name", "name@X", "name@X.Y" or "name@X.Y.Z" -> the handler of the
    // newest loaded version whose leading numbers match. nullptr if none.
    const loaded_handler* resolve(std::string_view spec) const;

    const std::vector<std::unique_ptr<plugin_info>>& plugins() const { return plugins_; }
    std::vector<protocol::handler_info> handler_infos() const;

private:
    struct library;
    result<void> check_duplicates(const plugin_info& candidate) const;
    void enter(load_stage stage) const;
    result<void> run_init(library& lib, const plugin_info& info);

    std::filesystem::path run_dir_;
    load_settings settings_;
    uint64_t counter_ = 0;
    std::vector<std::unique_ptr<plugin_info>> plugins_;
    std::vector<std::unique_ptr<library>> libraries_;
};

}  // namespace taskmill::host
