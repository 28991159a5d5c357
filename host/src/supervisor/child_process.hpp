// Private to the supervisor: starting children and describing their end.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace taskmill::host::detail {

// fork + exec of `args`; the child dies with the supervisor (SIGTERM) and
// starts with no signal blocked. stdout goes to `out_path` and stderr to
// `err_path` (each inherited if empty). -1 if fork failed.
pid_t spawn_process(std::vector<std::string> args, const std::string& out_path = {}, const std::string& err_path = {});

// "exited with status N" or "killed by signal S (Name)".
std::string describe_exit(int status);

// The whole file, without trailing newlines ("" if unreadable).
std::string read_all(const std::string& path);

}  // namespace taskmill::host::detail
