// The child side of `taskmill-host --check`: it loads the file with the
// workers' own code and reports over a pipe, one "KIND TEXT" line each:
//   stage STAGE     a stage starts ("while loading (constructor)", "in init()", ...)
//   line TEXT       a line of the report for stdout
//   refused REASON  the loader refused the file
//   done            accepted, and shutdown() returned
// The parent (check.cpp) judges what it heard and how the child ended.
#pragma once

#include <taskmill/host/options.hpp>

namespace taskmill::host::detail {

// Loads o.check_file, writes the messages to `fd` and ends the process
// with _exit(0) (so no plugin destructor or stdio buffer runs twice).
[[noreturn]] void run_check_child(const options& o, int fd);

}  // namespace taskmill::host::detail
