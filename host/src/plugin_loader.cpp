// Plugin loading: private copy, dlopen through Boost.DLL, validation.
#include <taskmill/host/plugin_loader.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include <boost/dll/shared_library.hpp>

namespace taskmill::host {
namespace fs = std::filesystem;

struct plugin_set::library {
    boost::dll::shared_library lib;
    fs::path copy;
    const tm_plugin* desc = nullptr;
    void* state = nullptr;
    bool initialised = false;
};

namespace {

// The table a plugin's init() sees: logging only (the rest is for execute()).
void init_log(tm_ctx* /*ctx*/, int32_t level, tm_str message) {
    std::fprintf(stderr, "plugin init log level=%d %.*s\n", level, static_cast<int>(message.size), message.data);
}
int32_t init_log_enabled(tm_ctx* /*ctx*/, int32_t level) { return level >= TM_LOG_INFO ? 1 : 0; }
int32_t init_set_error(tm_ctx* /*ctx*/, const tm_error* /*error*/) { return 0; }

const tm_host_api init_api = [] {
    tm_host_api api{};
    api.struct_size = sizeof(tm_host_api);
    api.abi_version = (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | TM_ABI_MINOR;
    api.log_enabled = &init_log_enabled;
    api.log = &init_log;
    api.set_error = &init_set_error;
    return api;
}();

bool is_elf(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    char magic[4] = {};
    return in.read(magic, 4) && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
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
    auto end = text.find_first_of("-+");
    if (end != std::string_view::npos) text = text.substr(0, end);
    if (text.empty()) return fail(errc::invalid_argument, "empty version");
    while (pos <= text.size() && i < 3) {
        auto dot = text.find('.', pos);
        auto part = text.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
        if (part.empty() || part.size() > 9 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return fail(errc::invalid_argument, "malformed version '" + std::string(text) + "'");
        }
        *parts[i++] = static_cast<uint32_t>(std::stoul(std::string(part)));
        if (dot == std::string_view::npos) return v;
        pos = dot + 1;
    }
    return fail(errc::invalid_argument, "malformed version '" + std::string(text) + "'");
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

plugin_set::plugin_set(fs::path run_dir) : run_dir_(std::move(run_dir)) {}

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

result<const plugin_info*> plugin_set::load(const fs::path& so) {
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
    boost::dll::fs::error_code ec;
    lib->lib.load(copy, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) return refuse(errc::invalid_argument, "cannot load the library: " + ec.message());
    if (!lib->lib.has(TM_PLUGIN_ENTRY_SYMBOL)) {
        return refuse(errc::invalid_argument, "no entry point " TM_PLUGIN_ENTRY_SYMBOL " (not a taskmill plugin?)");
    }
    auto entry = lib->lib.get<const tm_plugin*()>(TM_PLUGIN_ENTRY_SYMBOL);
    const tm_plugin* desc = entry();
    if (auto ok = validate_descriptor(desc); !ok) return refuse(ok.error().code, ok.error().message);
    auto info = std::make_unique<plugin_info>();
    info->name = desc->name;
    info->version = desc->version;
    info->abi_version = desc->abi_version;
    info->source = so;
    info->copy = copy;
    semver v = parse_semver(desc->version).value();
    for (uint32_t i = 0; i < desc->handler_count; ++i) info->handlers.push_back(describe(desc, desc->handlers[i], v));
    if (auto ok = check_duplicates(*info); !ok) return refuse(ok.error().code, ok.error().message);
    if (TASKMILL_HAS(desc, tm_plugin, init) && desc->init != nullptr) {
        tm_status st = desc->init(&init_api, nullptr, tm_bytes{nullptr, 0}, &lib->state);
        if (st != TM_OK) return refuse(errc::internal, "init() returned status " + std::to_string(st));
        lib->initialised = true;
    }
    lib->desc = desc;
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
    bool exact = false;
    if (at != std::string_view::npos) {
        auto ver = spec.substr(at + 1);
        auto v = parse_semver(ver);
        if (!v) return nullptr;
        want = *v;
        exact = ver.find('.') != std::string_view::npos;
    }
    const loaded_handler* best = nullptr;
    for (const auto& p : plugins_) {
        for (const auto& h : p->handlers) {
            if (h.name != name) continue;
            if (want && (exact ? h.parsed_version != *want : h.parsed_version.major != want->major)) continue;
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
