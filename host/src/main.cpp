// taskmill-host: parse the options, then be a supervisor, a worker or a checker.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string_view>

#include <taskmill/host/options.hpp>
#include <taskmill/host/supervisor.hpp>
#include <taskmill/host/worker.hpp>

namespace {

// --check keeps 2 for "refused": a usage error there is 1.
bool asks_for_check(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view a(argv[i]);
        if (a == "--check" || a.rfind("--check=", 0) == 0) return true;
    }
    return false;
}

// The supervisor hands its [plugin.NAME] sections to workers and checks in a file.
int supervise(taskmill::host::options& o) {
    if (auto ok = taskmill::host::save_plugin_configs(o); !ok) {
        std::fprintf(stderr, "taskmill-host: %s\n", ok.error().message.c_str());
        return 2;
    }
    int rc = taskmill::host::run_supervisor(o);
    std::error_code ec;
    if (!o.plugin_config_file.empty()) std::filesystem::remove(o.plugin_config_file, ec);
    std::filesystem::remove(o.run_dir, ec);  // only if empty
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace taskmill::host;
    auto parsed = parse_options(argc, argv);
    if (!parsed) {
        std::fprintf(stderr, "taskmill-host: %s\n", parsed.error().message.c_str());
        return asks_for_check(argc, argv) ? 1 : 2;
    }
    options& o = *parsed;
    switch (o.run_mode) {
        case mode::help: std::cout << o.help_text; return 0;
        case mode::print_config: std::cout << o.config_text; return 0;
        case mode::check: return run_check(o);
        case mode::worker: return run_worker(o);
        case mode::supervisor: return supervise(o);
    }
    return 2;
}
