// taskmill: parse, run one command, map the outcome to an exit code.
#include <iostream>

#include "cli.hpp"

int main(int argc, char** argv) {
    using namespace taskmill::cli;
    std::vector<std::string> argv_list(argv + 1, argv + argc);
    try {
        std::vector<std::string> rest;
        auto globals = parse_globals(argv_list, rest);
        return run_command(globals, rest);
    } catch (const usage_error& e) {
        std::cerr << "taskmill: " << e.what() << "\n(see `taskmill --help`)\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "taskmill: " << e.what() << "\n";
        return exit_usage;
    }
}
