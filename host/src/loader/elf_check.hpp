// Reading a plugin file's ELF headers before it is mapped: a truncated or
// foreign file is refused with its own reason (instead of a SIGBUS when a
// page past the end of the file is touched), and the dynamic symbol table
// tells which symbols the library exports.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <taskmill/protocol/result.hpp>

namespace taskmill::host::detail {

struct elf_exports {
    // Defined, visible symbols other than the entry point, in table order.
    std::vector<std::string> others;
    std::vector<std::string> gnu_unique;  // STB_GNU_UNIQUE ones (refused)
};

// Checks that `so` is a shared object for this machine whose loadable and
// dynamic segments lie within the file, and lists its exports. Refusals
// say what is wrong ("truncated or corrupt ELF file: segment 2 ends at
// byte N, the file has M bytes").
result<elf_exports> inspect_elf(const std::filesystem::path& so);

// "3 symbols (a, b, c)": for a message; `shown` names at most.
std::string describe_exports(const std::vector<std::string>& names, std::size_t shown = 5);

}  // namespace taskmill::host::detail
