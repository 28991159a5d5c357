// `taskmill keygen` and the CLI's CURVE options (--server-key, --key-file).
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <zmq.h>
#include <boost/program_options.hpp>

#include <taskmill/protocol/curve_keys.hpp>

#include "cli.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode) {
    std::filesystem::remove(path);  // a fresh inode gets `mode`, whatever was there
    auto old = ::umask(0777 & ~mode);
    std::ofstream out(path, std::ios::trunc);
    out << text;
    out.close();
    ::umask(old);
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
    ::chmod(path.c_str(), mode);
}

}  // namespace

// keygen PREFIX [--force]: PREFIX.key (0600, both halves), PREFIX.pub.
int run_keygen(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc("keygen options");
    bool force = false;
    std::string prefix;
    desc.add_options()("force", po::bool_switch(&force), "overwrite existing files")(
        "prefix", po::value(&prefix), "writes PREFIX.key and PREFIX.pub");
    po::positional_options_description pos;
    pos.add("prefix", 1);
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + 1, args.end());
        po::store(po::command_line_parser(rest).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(std::string("keygen: ") + e.what());
    }
    if (prefix.empty()) {
        throw usage_error("keygen: missing PREFIX (writes PREFIX.key and PREFIX.pub)");
    }
    auto key_path = prefix + ".key";
    auto pub_path = prefix + ".pub";
    if (!force && (std::filesystem::exists(key_path) || std::filesystem::exists(pub_path))) {
        std::cerr << "taskmill: keygen: " << key_path << " or " << pub_path << " exists (use --force)\n";
        return exit_usage;
    }
    char pub[41] = {};
    char sec[41] = {};
    if (zmq_curve_keypair(pub, sec) != 0) {
        std::cerr << "taskmill: keygen: this libzmq has no CURVE support\n";
        return exit_usage;
    }
    write_file(key_path,
               std::string("# taskmill CURVE key pair: keep this file secret\npublic-key = ") + pub +
                   "\nsecret-key = " + sec + "\n",
               0600);
    write_file(pub_path, std::string(pub) + "\n", 0644);
    if (g.json) {
        std::cout << nlohmann::json{{"public_key", pub}, {"key_file", key_path}, {"public_file", pub_path}}.dump()
                  << "\n";
    } else {
        std::cout << "wrote " << key_path << " (secret, mode 0600) and " << pub_path << "\npublic key: " << pub << "\n";
    }
    return exit_ok;
}

void apply_curve(const global_options& g, client::client_options& o) {
    auto server = g.server_key;
    auto key_file = g.key_file;
    if (server.empty()) {
        if (const char* env = std::getenv("TASKMILL_SERVER_KEY"); env != nullptr) server = env;
    }
    if (key_file.empty()) {
        if (const char* env = std::getenv("TASKMILL_KEY_FILE"); env != nullptr) key_file = env;
    }
    if (server.empty() && key_file.empty()) {
        return;
    }
    if (server.empty() || key_file.empty()) {
        throw usage_error("CURVE needs both --server-key and --key-file");
    }
    auto s = curve::load_public_key(server);
    if (!s) {
        throw usage_error("--server-key: " + s.error().message);
    }
    auto kp = curve::load_key_pair(key_file);
    if (!kp) {
        throw usage_error("--key-file: " + kp.error().message);
    }
    o.curve_server_key = *s;
    o.curve_public_key = kp->public_key;
    o.curve_secret_key = kp->secret_key;
}

}  // namespace taskmill::cli
