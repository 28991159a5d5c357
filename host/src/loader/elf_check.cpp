// ELF header, program header and .dynsym checks (see elf_check.hpp). Only
// native files are accepted: 64-bit, this machine's byte order and type.
#include "loader/elf_check.hpp"

#include <elf.h>

#include <array>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>

#include <taskmill/plugin.h>

namespace taskmill::host::detail {
namespace {

#if defined(__x86_64__)
constexpr uint16_t native_machine = EM_X86_64;
#elif defined(__aarch64__)
constexpr uint16_t native_machine = EM_AARCH64;
#else
constexpr uint16_t native_machine = EM_NONE;  // not checked
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char native_data = ELFDATA2LSB;
#else
constexpr unsigned char native_data = ELFDATA2MSB;
#endif

const char* const corrupt = "truncated or corrupt ELF file: ";

// The file's bytes with bounds-checked reads.
class image {
public:
    explicit image(std::string bytes) : bytes_(std::move(bytes)) {}
    uint64_t size() const { return bytes_.size(); }
    bool holds(uint64_t offset, uint64_t length) const { return offset <= size() && length <= size() - offset; }
    template <typename T> std::optional<T> read(uint64_t offset) const {
        if (!holds(offset, sizeof(T))) return std::nullopt;
        T out;
        std::memcpy(&out, bytes_.data() + offset, sizeof(T));
        return out;
    }
    // The NUL-terminated string at `offset` within [begin, begin + length).
    std::optional<std::string> string_at(uint64_t begin, uint64_t length, uint64_t offset) const {
        if (!holds(begin, length) || offset >= length) return std::nullopt;
        const char* p = bytes_.data() + begin + offset;
        const void* nul = std::memchr(p, '\0', length - offset);
        if (nul == nullptr) return std::nullopt;
        return std::string(p, static_cast<const char*>(nul));
    }

private:
    std::string bytes_;
};

result<void> check_header(const image& f, const Elf64_Ehdr& h) {
    if (h.e_ident[EI_CLASS] != ELFCLASS64) {
        return fail(errc::invalid_argument, "not a 64-bit ELF file (this host loads only 64-bit libraries)");
    }
    if (h.e_ident[EI_DATA] != native_data) {
        return fail(errc::invalid_argument, "ELF file of the other byte order than this host");
    }
    if (h.e_type != ET_DYN)
        return fail(errc::invalid_argument,
                    "not a shared library (ELF type " + std::to_string(h.e_type) + ", want ET_DYN)");
    if (native_machine != EM_NONE && h.e_machine != native_machine) {
        return fail(errc::invalid_argument, "ELF file for another machine (e_machine " + std::to_string(h.e_machine) +
                                                ", this host is " + std::to_string(native_machine) + ")");
    }
    if (h.e_phnum == 0 || h.e_phentsize != sizeof(Elf64_Phdr)) {
        return fail(errc::invalid_argument, std::string(corrupt) + "no usable program headers");
    }
    uint64_t end = h.e_phoff + uint64_t{h.e_phnum} * sizeof(Elf64_Phdr);
    if (!f.holds(h.e_phoff, uint64_t{h.e_phnum} * sizeof(Elf64_Phdr))) {
        return fail(errc::invalid_argument, std::string(corrupt) + "the program headers end at byte " +
                                                std::to_string(end) + ", the file has " + std::to_string(f.size()) +
                                                " bytes");
    }
    return {};
}

// Every PT_LOAD and PT_DYNAMIC segment lies within the file: mapping one
// that does not would fault (SIGBUS) when its last pages are touched.
result<void> check_segments(const image& f, const Elf64_Ehdr& h) {
    for (uint16_t i = 0; i < h.e_phnum; ++i) {
        auto ph = f.read<Elf64_Phdr>(h.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
        if (!ph || (ph->p_type != PT_LOAD && ph->p_type != PT_DYNAMIC)) continue;
        if (!f.holds(ph->p_offset, ph->p_filesz)) {
            return fail(errc::invalid_argument, std::string(corrupt) + "segment " + std::to_string(i) +
                                                    " ends at byte " + std::to_string(ph->p_offset + ph->p_filesz) +
                                                    ", the file has " + std::to_string(f.size()) + " bytes");
        }
    }
    return {};
}

std::optional<Elf64_Shdr> section(const image& f, const Elf64_Ehdr& h, uint64_t index) {
    if (index >= h.e_shnum) return std::nullopt;
    return f.read<Elf64_Shdr>(h.e_shoff + index * sizeof(Elf64_Shdr));
}

bool exported(const Elf64_Sym& s) {
    unsigned bind = ELF64_ST_BIND(s.st_info);
    unsigned vis = ELF64_ST_VISIBILITY(s.st_other);
    if (bind != STB_GLOBAL && bind != STB_WEAK && bind != STB_GNU_UNIQUE) return false;
    if (vis != STV_DEFAULT && vis != STV_PROTECTED) return false;
    // Undefined symbols are imports; absolute ones are version names.
    return s.st_shndx != SHN_UNDEF && s.st_shndx != SHN_ABS;
}

// The exports in .dynsym. A file without section headers (stripped of
// them) has nothing to list here; the loader still finds its entry point.
result<elf_exports> read_exports(const image& f, const Elf64_Ehdr& h) {
    elf_exports out;
    if (h.e_shnum == 0) return out;
    if (h.e_shentsize != sizeof(Elf64_Shdr) || !f.holds(h.e_shoff, uint64_t{h.e_shnum} * sizeof(Elf64_Shdr))) {
        return fail(errc::invalid_argument, std::string(corrupt) + "the section headers end at byte " +
                                                std::to_string(h.e_shoff + uint64_t{h.e_shnum} * h.e_shentsize) +
                                                ", the file has " + std::to_string(f.size()) + " bytes");
    }
    for (uint16_t i = 0; i < h.e_shnum; ++i) {
        auto sh = section(f, h, i);
        if (!sh || sh->sh_type != SHT_DYNSYM) continue;
        auto strtab = section(f, h, sh->sh_link);
        if (!strtab || !f.holds(sh->sh_offset, sh->sh_size) || !f.holds(strtab->sh_offset, strtab->sh_size)) {
            return fail(errc::invalid_argument, std::string(corrupt) + "the dynamic symbol table is out of bounds");
        }
        for (uint64_t at = sizeof(Elf64_Sym); at + sizeof(Elf64_Sym) <= sh->sh_size; at += sizeof(Elf64_Sym)) {
            auto sym = f.read<Elf64_Sym>(sh->sh_offset + at);
            if (!sym || !exported(*sym)) continue;
            auto name = f.string_at(strtab->sh_offset, strtab->sh_size, sym->st_name);
            if (!name) return fail(errc::invalid_argument, std::string(corrupt) + "a symbol name is out of bounds");
            if (ELF64_ST_BIND(sym->st_info) == STB_GNU_UNIQUE) out.gnu_unique.push_back(*name);
            else if (*name != TM_PLUGIN_ENTRY_SYMBOL) out.others.push_back(*name);
        }
    }
    return out;
}

}  // namespace

result<elf_exports> inspect_elf(const std::filesystem::path& so) {
    std::ifstream in(so, std::ios::binary);
    if (!in) return fail(errc::unavailable, "cannot read the file");
    image f(std::string(std::istreambuf_iterator<char>(in), {}));
    auto magic = f.read<std::array<char, SELFMAG>>(0);
    if (!magic || std::memcmp(magic->data(), ELFMAG, SELFMAG) != 0) {
        return fail(errc::invalid_argument, "not a shared library (no ELF header)");
    }
    auto h = f.read<Elf64_Ehdr>(0);
    if (!h) return fail(errc::invalid_argument, std::string(corrupt) + "the ELF header is cut short");
    if (auto ok = check_header(f, *h); !ok) return fail(ok.error().code, ok.error().message);
    if (auto ok = check_segments(f, *h); !ok) return fail(ok.error().code, ok.error().message);
    return read_exports(f, *h);
}

std::string describe_exports(const std::vector<std::string>& names, std::size_t shown) {
    std::string out = std::to_string(names.size()) + " symbol" + (names.size() == 1 ? "" : "s") + " (";
    for (std::size_t i = 0; i < names.size() && i < shown; ++i) out += (i == 0 ? "" : ", ") + names[i];
    if (names.size() > shown) out += ", ...";
    return out + ")";
}

}  // namespace taskmill::host::detail
