// The loader of taskmill/config/loader.hpp: flags, environment, file.
#include <taskmill/config/loader.hpp>

#include <algorithm>
#include <sstream>

#include "ini.hpp"

extern char** environ;

namespace taskmill::config {
namespace {

std::string env_name(std::string_view option) {
    std::string out = "TASKMILL_";
    for (char c : option) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
    return out;
}

// A secret "NAME:ROLE:SECRET" as "NAME:ROLE:(secret)".
std::string hide_secret(const std::string& s) { return s.substr(0, s.rfind(':') + 1) + "(secret)"; }

// Boost's INI dialect, which the shipped files are written in: '#' starts
// a comment anywhere on a line.
std::string without_comment(const std::string& v) { return detail::trim(std::string_view(v).substr(0, v.find('#'))); }

}  // namespace

std::map<std::string, std::string> process_environment() {
    std::map<std::string, std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq != std::string_view::npos && kv.rfind("TASKMILL_", 0) == 0) {
            out.emplace(kv.substr(0, eq), kv.substr(eq + 1));
        }
    }
    return out;
}

loader::loader(std::string program) : program_(std::move(program)) {}

option& loader::add(std::string name, value v, std::string help, scope where) {
    option o;
    o.env = where == scope::flag_only ? std::string() : env_name(name);
    o.name = std::move(name);
    o.default_text = v.show ? joined(v.show()) : std::string();
    o.v = std::move(v);
    o.help = std::move(help);
    o.where = where;
    options_.push_back(std::move(o));
    return options_.back();
}

void loader::sections(std::string prefix, std::function<void(const section&)> read) {
    section_kinds_.push_back({std::move(prefix), std::move(read)});
}

void loader::file_option(std::string name) { file_option_ = std::move(name); }

option* loader::find(std::string_view name) {
    auto it = std::find_if(options_.begin(), options_.end(), [&](const option& o) { return o.name == name; });
    return it == options_.end() ? nullptr : &*it;
}

const option* loader::find(std::string_view name) const { return const_cast<loader*>(this)->find(name); }

void loader::give(const option& o, given_value g) { given_[o.name].push_back(std::move(g)); }

void loader::load(int argc, const char* const* argv, const std::map<std::string, std::string>& env) {
    read_flags(argc, argv);
    read_environment(env);
    if (!file_option_.empty() && given(file_option_)) {
        // The file's own name comes from a flag or the environment, never a file.
        auto& names = given_[file_option_];
        auto best =
            std::max_element(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.from < b.from; });
        read_file(best->text);
    }
    apply();
}

void loader::read_flags(int argc, const char* const* argv) {
    for (int i = 1; i < argc; ++i) {
        std::string_view arg(argv[i]);
        const option* o = nullptr;
        std::optional<std::string> text;
        if (arg.size() == 2 && arg[0] == '-' && arg[1] != '-') {
            auto it =
                std::find_if(options_.begin(), options_.end(), [&](const option& x) { return x.short_name == arg[1]; });
            o = it == options_.end() ? nullptr : &*it;
        } else if (arg.rfind("--", 0) == 0) {
            auto name = arg.substr(2);
            auto eq = name.find('=');
            if (eq != std::string_view::npos) {
                text = std::string(name.substr(eq + 1));
                name = name.substr(0, eq);
            }
            o = find(name);
        } else {
            throw error("unexpected argument '" + std::string(arg) + "' (options start with --; see --help)");
        }
        if (o == nullptr) throw error("unknown option " + std::string(arg) + " (see --help)");
        if (!text) {
            if (!o->v.takes_argument) {
                text = "true";
            } else if (i + 1 < argc) {
                text = argv[++i];
            } else {
                throw error("--" + o->name + " needs a value");
            }
        }
        give(*o, {*text, "--" + o->name, source::flag});
    }
}

void loader::read_environment(const std::map<std::string, std::string>& env) {
    for (const auto& o : options_) {
        if (o.env.empty()) continue;
        if (auto it = env.find(o.env); it != env.end()) give(o, {it->second, o.env, source::environment});
    }
}

const loader::section_kind* loader::kind_of(std::string_view header) const {
    for (const auto& k : section_kinds_) {
        if (!k.prefix.empty() && header.rfind(k.prefix, 0) == 0) {
            return &k;
        }
    }
    return nullptr;
}

void loader::read_file(const std::string& path) {
    std::map<std::string, int> headers;  // section -> line
    for (auto& l : detail::read_ini(path)) {
        auto where = path + ":" + std::to_string(l.number);
        const section_kind* kind = kind_of(l.section);
        const bool custom = kind != nullptr;
        if (l.is_header) {
            if (!custom && !l.section.empty()) {
                std::string known;
                for (const auto& k : section_kinds_) {
                    known += (known.empty() ? "" : ", ") + ("[" + k.prefix + "NAME]");
                }
                throw error(where + ": unknown section [" + l.section + "]" +
                            (known.empty() ? "" : " (only " + known + ")"));
            }
            if (auto [it, fresh] = headers.emplace(l.section, l.number); !fresh) {
                throw error(where + ": [" + l.section + "] already defined at line " + std::to_string(it->second));
            }
            if (custom) sections_.push_back({kind, {l.section.substr(kind->prefix.size()), where, {}}});
            continue;
        }
        if (custom) {
            sections_.back().second.entries.push_back({l.key, l.value, where});
            continue;
        }
        const option* o = find(l.key);
        if (o == nullptr || o->where != scope::anywhere || o->hidden) {
            throw error(where + ": unknown key '" + l.key + "'");
        }
        give(*o, {without_comment(l.value), where, source::file});
    }
}

// Every value is checked, the losing ones too (a bad line in a file is a
// mistake even when a flag overrides it); the winner is parsed last so it
// is the one left in the target. A list takes all values of its best source.
void loader::apply() {
    for (auto& o : options_) {
        auto it = given_.find(o.name);
        if (it == given_.end()) continue;
        auto values = it->second;
        std::stable_sort(values.begin(), values.end(), [](const auto& a, const auto& b) { return a.from < b.from; });
        const source best = values.back().from;
        for (std::size_t i = 0; i < values.size(); ++i) {
            const auto& g = values[i];
            if (!o.v.repeatable && i > 0 && values[i - 1].from == g.from) {
                throw error(g.where + ": " + o.name + " is given more than once");
            }
            if (o.v.repeatable && g.from != best) continue;
            if (auto why = o.v.parse(g.text)) {
                throw error(g.from == source::flag ? g.where + ": " + *why : g.where + ": " + o.name + ": " + *why);
            }
        }
        winner_[o.name] = *std::find_if(values.begin(), values.end(), [&](const auto& g) { return g.from == best; });
    }
    for (const auto& [kind, s] : sections_) {
        try {
            kind->read(s);
        } catch (const error&) {
            throw;
        } catch (const std::exception& e) {
            throw error(s.where + ": " + e.what());
        }
    }
}

bool loader::given(std::string_view name) const { return given_.find(name) != given_.end(); }

source loader::origin(std::string_view name) const {
    auto it = winner_.find(name);
    return it == winner_.end() ? source::none : it->second.from;
}

std::string loader::help(std::string_view usage) const {
    std::ostringstream out;
    out << usage << "\nOptions (each also a key of the --config file and a TASKMILL_<NAME> variable,\n"
        << "unless marked; precedence: flag > environment > file > default):\n";
    for (const auto& o : options_) {
        if (o.hidden) continue;
        out << "  " << (o.short_name != 0 ? std::string("-") + o.short_name + ", " : "") << "--" << o.name;
        if (o.v.takes_argument) out << " " << o.v.argument;
        if (o.v.takes_argument && !o.default_text.empty()) out << " (=" << o.default_text << ")";
        if (o.where == scope::flag_only) out << "  [flag only]";
        if (o.where == scope::flag_or_environment) out << "  [flag or " << o.env << "]";
        if (o.where == scope::anywhere && o.env != env_name(o.name)) out << "  [env " << o.env << "]";
        out << "\n      " << o.help << "\n";
    }
    return out.str();
}

std::string loader::print_config() const {
    std::ostringstream out;
    for (const auto& o : options_) {
        if (o.hidden || o.where != scope::anywhere) continue;
        if (auto it = winner_.find(o.name); it != winner_.end()) out << "# from " << it->second.where << "\n";
        for (const auto& v : o.v.show()) out << o.name << " = " << (o.secret ? hide_secret(v) : v) << "\n";
    }
    return out.str();
}

}  // namespace taskmill::config
