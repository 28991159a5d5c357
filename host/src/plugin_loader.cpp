// Plugin loading: ELF checks, private copy, dlopen, validation, init().
#include <taskmill/host/plugin_loader.hpp>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>

#include <spdlog/spdlog.h>

#include "loader/elf_check.hpp"
#include "loader/init_api.hpp"

namespace taskmill::host {
namespace fs = std::filesystem;

struct plugin_set::library {
    void* handle = nullptr;
    fs::path copy;
    const tm_plugin* desc = nullptr;
    void* state = nullptr;
    bool initialised = false;
    library() = default;
    library(const library&) = delete;
    library& operator=(const library&) = delete;
    ~library() {
        if (handle != nullptr) ::dlclose(handle);
    }
};

namespace {

bool is_elf(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

std::string last_dl_error(const char* fallback) {
    const char* e = ::dlerror();
    return e != nullptr ? std::string(e) : std::string(fallback);
}

template <typename T, typename F> constexpr bool has_field(const T* s, F T::*field, std::size_t offset) {
    (void)field;
    return s != nullptr && s->struct_size >= offset + sizeof(F);
}
#define TASKMILL_HAS(ptr, type, field) has_field<type>(ptr, &type::field, offsetof(type, field))

result<void> validate_handler(const tm_handler* h, uint32_t index) {
    std::string where = "handler #" + std::to_string(index);
    if (h == nullptr) return fail(errc::invalid_argument, where + " is NULL");
    if (!TASKMILL_HAS(h, tm_handler, execute)) {
        return fail(errc::invalid_argument, where + " struct_size " + std::to_string(h->struct_size) +
                                                " is too small (need at least the name and execute fields)");
    }
    if (h->name == nullptr) return fail(errc::invalid_argument, where + " has a NULL name");
    if (!valid_handler_name(h->name)) {
        return fail(errc::invalid_argument,
                    where + " has a malformed name '" + std::string(h->name) + "' (want ns.name, [a-z0-9_-] segments)");
    }
    where = "handler " + std::string(h->name);
    if (h->execute == nullptr) return fail(errc::invalid_argument, where + " has a NULL execute function");
    constexpr uint32_t known_flags = TM_HANDLER_SERIAL | TM_HANDLER_IDEMPOTENT;
    if ((h->flags & ~known_flags) != 0) {
        return fail(
            errc::invalid_argument, where + " sets unknown flags 0x" + [&] {
                char buf[16];
                std::snprintf(buf, sizeof buf, "%x", h->flags & ~known_flags);
                return std::string(buf);
            }());
    }
    return {};
}

loaded_handler describe(const tm_plugin* p, const tm_handler* h, const semver& v) {
    loaded_handler out;
    out.name = h->name;
    out.handler = h;
    out.plugin = p;
    out.plugin_name = p->name;
    out.version = p->version;
    out.parsed_version = v;
    out.flags = h->flags;
    if (TASKMILL_HAS(h, tm_handler, default_queue) && h->default_queue != nullptr) out.default_queue = h->default_queue;
    if (TASKMILL_HAS(h, tm_handler, default_timeout_ms)) out.default_timeout_ms = h->default_timeout_ms;
    if (TASKMILL_HAS(h, tm_handler, default_retries)) out.default_retries = h->default_retries;
    return out;
}

}  // namespace

result<semver> parse_semver(std::string_view text) {
    semver v;
    uint32_t* parts[3] = {&v.major, &v.minor, &v.patch};
    std::size_t i = 0;
    std::size_t pos = 0;
    if (text.empty()) return fail(errc::invalid_argument, "empty version");
    while (pos <= text.size() && i < 3) {
        auto dot = text.find('.', pos);
        auto part = text.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
        if (part.empty() || part.size() > 9 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return fail(errc::invalid_argument, "malformed version '" + std::string(text) +
                                                    "' (want X, X.Y or X.Y.Z: numbers only, no suffix)");
        }
        *parts[i++] = static_cast<uint32_t>(std::stoul(std::string(part)));
        if (dot == std::string_view::npos) return v;
        pos = dot + 1;
    }
    return fail(errc::invalid_argument,
                "malformed version '" + std::string(text) + "' (want X, X.Y or X.Y.Z: numbers only, no suffix)");
}

bool valid_handler_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '.' || name.back() == '.') return false;
    std::size_t dots = 0;
    char prev = '\0';
    for (char c : name) {
        if (c == '.') {
            if (prev == '.') return false;
            ++dots;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
            return false;
        }
        prev = c;
    }
    return dots >= 1;
}

result<void> validate_descriptor(const tm_plugin* p) {
    if (p == nullptr) return fail(errc::invalid_argument, "entry point returned a NULL descriptor");
    if (!TASKMILL_HAS(p, tm_plugin, handlers)) {
        return fail(errc::invalid_argument,
                    "descriptor struct_size " + std::to_string(p->struct_size) + " is too small (need at least " +
                        std::to_string(offsetof(tm_plugin, handlers) + sizeof(p->handlers)) + ")");
    }
    uint32_t major = p->abi_version >> 16;
    uint32_t minor = p->abi_version & 0xFFFFu;
    if (major != TM_ABI_MAJOR || minor > TM_ABI_MINOR) {
        return fail(errc::unsupported, "ABI " + std::to_string(major) + "." + std::to_string(minor) +
                                           " is not supported (host ABI " + std::to_string(TM_ABI_MAJOR) + "." +
                                           std::to_string(TM_ABI_MINOR) + ": major must match, minor <= host)");
    }
    if (p->name == nullptr || *p->name == '\0') return fail(errc::invalid_argument, "plugin name is NULL or empty");
    if (p->version == nullptr || *p->version == '\0')
        return fail(errc::invalid_argument, "plugin version is NULL or empty");
    if (auto v = parse_semver(p->version); !v) return fail(errc::invalid_argument, "plugin " + v.error().message);
    if (p->handler_count == 0 || p->handlers == nullptr)
        return fail(errc::invalid_argument, "plugin declares no handlers");
    if (p->handler_count > 4096) return fail(errc::invalid_argument, "plugin declares too many handlers");
    for (uint32_t i = 0; i < p->handler_count; ++i) {
        if (auto ok = validate_handler(p->handlers[i], i); !ok) return ok;
        for (uint32_t j = 0; j < i; ++j) {
            if (std::string_view(p->handlers[j]->name) == p->handlers[i]->name) {
                return fail(errc::invalid_argument,
                            "handler " + std::string(p->handlers[i]->name) + " is declared twice");
            }
        }
    }
    return {};
}

const char* to_string(load_stage stage) {
    switch (stage) {
        case load_stage::opening: return "opening";
        case load_stage::entry_point: return "entry point";
        case load_stage::init: return "init";
    }
    return "?";
}

plugin_set::plugin_set(fs::path run_dir, load_settings settings)
    : run_dir_(std::move(run_dir)), settings_(std::move(settings)) {}

plugin_set::~plugin_set() {
    for (auto& l : libraries_) {
        if (l->initialised && TASKMILL_HAS(l->desc, tm_plugin, shutdown) && l->desc->shutdown != nullptr) {
            l->desc->shutdown(l->state);
        }
        std::error_code ec;
        fs::remove(l->copy, ec);
    }
}

result<void> plugin_set::check_duplicates(const plugin_info& candidate) const {
    // Several versions of one plugin may be loaded side by side; the same
    // handler from another plugin, or the same plugin version twice, is a
    // duplicate.
    for (const auto& p : plugins_) {
        for (const auto& h : p->handlers) {
            for (const auto& c : candidate.handlers) {
                if (h.name != c.name) continue;
                if (p->name != candidate.name) {
                    return fail(errc::conflict, "handler " + c.name + " is already provided by plugin " + p->name +
                                                    " (" + p->source.string() + ")");
                }
                if (p->version == candidate.version) {
                    return fail(errc::conflict, "plugin " + p->name + " " + p->version + " is already loaded from " +
                                                    p->source.string());
                }
            }
        }
    }
    return {};
}

void plugin_set::enter(load_stage stage) const {
    if (settings_.on_stage) settings_.on_stage(stage);
}

namespace {

// The export rules, judged on the file before it is mapped.
result<std::vector<std::string>> check_file(const fs::path& so) {
    auto elf = detail::inspect_elf(so);
    if (!elf) return fail(elf.error().code, elf.error().message);
    if (!elf->gnu_unique.empty()) {
        return fail(errc::invalid_argument,
                    "exports STB_GNU_UNIQUE symbols, which pin the library in memory and bind across plugins: " +
                        detail::describe_exports(elf->gnu_unique) +
                        " (build with -fno-gnu-unique, see docs/PLUGINS.md)");
    }
    std::vector<std::string> warnings;
    if (!elf->others.empty()) {
        warnings.push_back("exports " + detail::describe_exports(elf->others) +
                           " besides the entry point " TM_PLUGIN_ENTRY_SYMBOL " (build with -fvisibility=hidden)");
    }
    return warnings;
}

const std::string empty_config_map(1, '\x80');  // msgpack: a map of 0 entries

}  // namespace

result<void> plugin_set::run_init(library& lib, const plugin_info& info) {
    if (!TASKMILL_HAS(lib.desc, tm_plugin, init) || lib.desc->init == nullptr) return {};
    enter(load_stage::init);
    auto it = settings_.configs.find(info.name);
    const std::string& config = it != settings_.configs.end() ? it->second : empty_config_map;
    detail::init_call call;
    call.plugin = info.name;
    call.log = settings_.log != nullptr ? settings_.log : spdlog::default_logger_raw();
    tm_bytes bytes{reinterpret_cast<const uint8_t*>(config.data()), config.size()};
    tm_status st = lib.desc->init(&detail::init_host_api(), detail::as_ctx(call), bytes, &lib.state);
    if (st == TM_OK) {
        lib.initialised = true;
        return {};
    }
    std::string why = "init() failed with status " + std::to_string(st);
    if (!call.error.empty()) why += ": " + call.error;
    return fail(errc::internal, why);
}

result<const plugin_info*> plugin_set::load(const fs::path& so) {
    enter(load_stage::opening);
    std::error_code fec;
    if (!fs::is_regular_file(so, fec)) return fail(errc::not_found, "no such file");
    if (!is_elf(so)) return fail(errc::invalid_argument, "not a shared library (no ELF header)");
    fs::create_directories(run_dir_, fec);
    auto copy =
        run_dir_ / (std::to_string(::getpid()) + "-" + std::to_string(++counter_) + "-" + so.filename().string());
    if (!fs::copy_file(so, copy, fs::copy_options::overwrite_existing, fec)) {
        return fail(errc::unavailable, "cannot copy to " + copy.string() + ": " + fec.message());
    }
    auto lib = std::make_unique<library>();
    lib->copy = copy;
    auto refuse = [&](errc code, std::string why) -> result<const plugin_info*> {
        lib.reset();  // unload before the copy goes away
        std::error_code ec;
        fs::remove(copy, ec);
        return fail(code, std::move(why));
    };
    // The private copy is judged, not the original: it cannot change
    // between the check and dlopen.
    auto warnings = check_file(copy);
    if (!warnings) return refuse(warnings.error().code, warnings.error().message);
    // dlerror()'s own text names a missing dependency or an undefined symbol.
    ::dlerror();
    lib->handle = ::dlopen(copy.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib->handle == nullptr) {
        return refuse(errc::invalid_argument, "cannot load the library: " + last_dl_error("dlopen failed"));
    }
    enter(load_stage::entry_point);
    auto entry = reinterpret_cast<tm_plugin_entry_fn>(::dlsym(lib->handle, TM_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) {
        return refuse(errc::invalid_argument, "no entry point " TM_PLUGIN_ENTRY_SYMBOL " (not a taskmill plugin?)");
    }
    const tm_plugin* desc = entry();
    if (auto ok = validate_descriptor(desc); !ok) return refuse(ok.error().code, ok.error().message);
    auto info = std::make_unique<plugin_info>();
    info->name = desc->name;
    info->version = desc->version;
    info->abi_version = desc->abi_version;
    info->source = so;
    info->copy = copy;
    info->warnings = std::move(*warnings);
    semver v = parse_semver(desc->version).value();
    for (uint32_t i = 0; i < desc->handler_count; ++i) info->handlers.push_back(describe(desc, desc->handlers[i], v));
    if (auto ok = check_duplicates(*info); !ok) return refuse(ok.error().code, ok.error().message);
    lib->desc = desc;
    if (auto ok = run_init(*lib, *info); !ok) return refuse(ok.error().code, ok.error().message);
    for (auto& h : info->handlers) h.plugin_state = lib->state;
    libraries_.push_back(std::move(lib));
    plugins_.push_back(std::move(info));
    return plugins_.back().get();
}

std::vector<std::string> plugin_set::load_dir(const fs::path& dir) {
    std::vector<std::string> refusals;
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".so") files.push_back(e.path());
    }
    if (ec) refusals.push_back(dir.string() + ": cannot list the folder: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        if (auto r = load(f); !r) refusals.push_back(f.string() + ": " + r.error().message);
    }
    return refusals;
}

const loaded_handler* plugin_set::resolve(std::string_view spec) const {
    auto at = spec.find('@');
    std::string_view name = spec.substr(0, at);
    std::optional<semver> want;
    std::size_t given = 0;  // how many leading numbers must match: 1, 2 or 3
    if (at != std::string_view::npos) {
        auto ver = spec.substr(at + 1);
        auto v = parse_semver(ver);
        if (!v) return nullptr;
        want = *v;
        given = 1 + static_cast<std::size_t>(std::count(ver.begin(), ver.end(), '.'));
    }
    auto matches = [&](const semver& have) {
        if (!want) return true;
        if (have.major != want->major) return false;
        if (given >= 2 && have.minor != want->minor) return false;
        return given < 3 || have.patch == want->patch;
    };
    const loaded_handler* best = nullptr;
    for (const auto& p : plugins_) {
        for (const auto& h : p->handlers) {
            if (h.name != name) continue;
            if (!matches(h.parsed_version)) continue;
            if (best == nullptr || h.parsed_version > best->parsed_version) best = &h;
        }
    }
    return best;
}

std::vector<protocol::handler_info> plugin_set::handler_infos() const {
    std::vector<protocol::handler_info> out;
    for (const auto& p : plugins_) {
        for (const auto& h : p->handlers) {
            protocol::handler_info hi{h.name, h.version, h.plugin_name};
            hi.default_queue = h.default_queue;
            if (h.default_timeout_ms > 0) hi.default_timeout_ms = h.default_timeout_ms;
            if (h.default_retries >= 0) hi.default_retries = h.default_retries;
            hi.flags = h.flags;
            hi.payload_version = h.handler->payload_version;
            out.push_back(std::move(hi));
        }
    }
    return out;
}

}  // namespace taskmill::host
