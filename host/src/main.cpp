// taskmill-host: parse the options, then be a supervisor, a worker or a checker.
#include <cstdio>
#include <iostream>

#include <taskmill/host/options.hpp>
#include <taskmill/host/supervisor.hpp>
#include <taskmill/host/worker.hpp>

int main(int argc, char** argv) {
    using namespace taskmill::host;
    auto parsed = parse_options(argc, argv);
    if (!parsed) {
        std::fprintf(stderr, "taskmill-host: %s\n", parsed.error().message.c_str());
        return 2;
    }
    const options& o = *parsed;
    switch (o.run_mode) {
        case mode::help: std::cout << o.help_text; return 0;
        case mode::print_config: std::cout << o.config_text; return 0;
        case mode::check: return run_check(o);
        case mode::worker: return run_worker(o);
        case mode::supervisor: return run_supervisor(o);
    }
    return 2;
}
