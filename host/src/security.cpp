// CURVE client setup and plugin-folder strict modes (see security.hpp).
#include "security.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>
#include <taskmill/host/plugin_loader.hpp>
#include <taskmill/protocol/curve_keys.hpp>

namespace taskmill::host {
namespace fs = std::filesystem;

result<void> apply_curve(zmq::socket_t& s, const options& o) {
    if (o.curve_server_key.empty() && o.curve_key_file.empty()) return {};
    if (o.curve_server_key.empty() || o.curve_key_file.empty()) {
        return fail(errc::invalid_argument, "CURVE needs both --curve-server-key and --curve-key-file");
    }
    auto server = curve::load_public_key(o.curve_server_key);
    if (!server) return fail(server.error().code, "--curve-server-key: " + server.error().message);
    auto kp = curve::load_key_pair(o.curve_key_file);
    if (!kp) return fail(kp.error().code, "--curve-key-file: " + kp.error().message);
    s.set(zmq::sockopt::curve_serverkey, *server);
    s.set(zmq::sockopt::curve_publickey, kp->public_key);
    s.set(zmq::sockopt::curve_secretkey, kp->secret_key);
    return {};
}

std::string strict_mode_problem(const fs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};  // the loader reports a missing file itself
    if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
        return "owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " + std::to_string(::geteuid()) +
               ") or root";
    }
    // A sticky world-writable folder (like /tmp) still lets anyone add a file.
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) return "writable by group or others";
    return {};
}

std::vector<std::string> load_plugins_checked(plugin_set& set, const options& o, spdlog::logger& log) {
    set.set_settings({o.plugin_configs, &log, {}});
    if (!o.strict_modes) {
        log.warn("STRICT MODES OFF (--strict-modes=false): plugins in {} are loaded whoever owns or can write them",
                 o.plugins_dir);
        return set.load_dir(o.plugins_dir);
    }
    if (auto why = strict_mode_problem(o.plugins_dir); !why.empty()) {
        return {o.plugins_dir + ": plugins folder refused (strict modes): " + why +
                "; fix the permissions or start with --strict-modes=false"};
    }
    std::vector<std::string> refusals;
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.plugins_dir, ec)) {
        if (e.path().extension() == ".so") files.push_back(e.path());
    }
    if (ec) refusals.push_back(o.plugins_dir + ": cannot list the folder: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
        if (auto why = strict_mode_problem(f); !why.empty()) {
            refusals.push_back(f.string() + ": refused (strict modes): " + why);
        } else if (auto r = set.load(f); !r) {
            refusals.push_back(f.string() + ": " + r.error().message);
        }
    }
    return refusals;
}

}  // namespace taskmill::host
