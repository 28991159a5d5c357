// taskmill/config/loader.hpp -- one configuration loader for every binary.
//
// A program declares its options once (name, typed target, help); the
// loader then reads flags (--name VALUE, --name=VALUE), the environment
// (TASKMILL_NAME, '-' as '_') and an INI file (key = value, '#' starts a
// comment anywhere on a line), with precedence flag > environment > file >
// default, and writes each winning value into its target. Every value is
// checked (type, range, allowed names), including values that lose to a
// higher source; errors say where the value came from: "FILE:LINE",
// "TASKMILL_X" or "--x". Sections named PREFIX.NAME ([schedule.nightly])
// go, key by key with their lines, to a reader the program registers.
// help() and print_config() are generated from the same declarations.
// Errors are thrown as config::error (startup failures, caught in main).
// A loader and its targets belong to one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskmill::config {

// A bad flag, variable, file or value; what() starts with where it was.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// How one option's text becomes its target, and back.
struct value {
    // Stores the text in the target; on a bad value returns why (without
    // the location, which the loader adds).
    std::function<std::optional<std::string>(std::string_view)> parse;
    // The target's current value as text, one entry per line to print.
    std::function<std::vector<std::string>()> show;
    bool takes_argument = true;  // false: a bare --flag (sets true)
    bool repeatable = false;     // one value per occurrence (a list)
    std::string argument = "ARG";
};

// Typed values. Each keeps a reference to its target, which must outlive
// the loader's use of it.
value text(std::string& target);
value boolean(bool& target);      // true/false, yes/no, on/off, 1/0
value switch_flag(bool& target);  // a bare --flag; true/false in a file
value choice(std::string& target, std::vector<std::string> allowed);
value list(std::vector<std::string>& target);
value real(double& target, double min, double max);
// Whole numbers within [min, max]; anything else (a sign on an unsigned
// value, a fraction, trailing text) is refused.
value number(int64_t& target, int64_t min = std::numeric_limits<int64_t>::min(),
             int64_t max = std::numeric_limits<int64_t>::max());
value number(int32_t& target, int32_t min = std::numeric_limits<int32_t>::min(),
             int32_t max = std::numeric_limits<int32_t>::max());
value number(uint64_t& target, uint64_t min = 0, uint64_t max = std::numeric_limits<uint64_t>::max());
value number(uint32_t& target, uint32_t min = 0, uint32_t max = std::numeric_limits<uint32_t>::max());

// Where a value may be given.
enum class scope {
    anywhere,  // flag, environment, file
    flag_or_environment,
    flag_only,
};

// Where the winning value of an option came from.
enum class source { none, file, environment, flag };

struct option {
    std::string name;  // "data-dir": --data-dir, data-dir = ..., TASKMILL_DATA_DIR
    value v;
    std::string help;
    scope where = scope::anywhere;
    std::string env;           // the variable's name; empty = none
    char short_name = 0;       // 'h' for -h
    bool hidden = false;       // left out of help and print-config
    bool secret = false;       // print_config shows "(secret)" after the last ':'
    std::string default_text;  // the target's value when declared, for help
};

// One key of a PREFIX.NAME section, with its "FILE:LINE".
struct entry {
    std::string key;
    std::string value;  // trimmed; quotes kept
    std::string where;
};

struct section {
    std::string name;   // "nightly" for [schedule.nightly]
    std::string where;  // "FILE:LINE" of the header
    std::vector<entry> entries;
};

// TASKMILL_* variables of this process, by name.
std::map<std::string, std::string> process_environment();

class loader {
public:
    explicit loader(std::string program);

    // Declares an option, in the order help and print_config list them. The
    // environment name defaults to TASKMILL_<NAME>, none for flag_only.
    // The reference returned (to adjust env, short_name, hidden, secret or
    // show) is valid until the next add().
    option& add(std::string name, value v, std::string help, scope where = scope::anywhere);

    // Sections [PREFIX.NAME] of the file are handed to `read` in file order;
    // it throws config::error (or std::runtime_error, location added) on a
    // bad one. Several prefixes may be declared, each with its reader. Any
    // other section is an error.
    void sections(std::string prefix, std::function<void(const section&)> read);

    // The option whose value names the INI file ("config").
    void file_option(std::string name);

    // Reads argv (argv[0] is the program), `env` and the file, and stores
    // every winning value. Throws config::error on the first problem.
    void load(int argc, const char* const* argv, const std::map<std::string, std::string>& env);

    // Whether an option was given anywhere (not left at its default).
    bool given(std::string_view name) const;
    source origin(std::string_view name) const;

    // The usage text, generated from the options.
    std::string help(std::string_view usage) const;

    // The effective configuration as an INI file that loads back to it:
    // "name = value" per option (one line per value of a list), each value
    // not at its default preceded by "# from WHERE".
    std::string print_config() const;

private:
    struct given_value {
        std::string text;
        std::string where;  // "--x", "TASKMILL_X" or "FILE:LINE"
        source from = source::none;
    };
    option* find(std::string_view name);
    const option* find(std::string_view name) const;
    void read_flags(int argc, const char* const* argv);
    void read_environment(const std::map<std::string, std::string>& env);
    void read_file(const std::string& path);
    void apply();
    void give(const option& o, given_value g);

    std::string program_;
    std::vector<option> options_;
    std::string file_option_;
    struct section_kind {
        std::string prefix;
        std::function<void(const section&)> read;
    };
    // The kind of a section header, or nullptr if no declared prefix starts it.
    const section_kind* kind_of(std::string_view header) const;
    std::vector<section_kind> section_kinds_;
    std::vector<std::pair<const section_kind*, section>> sections_;       // in file order
    std::map<std::string, std::vector<given_value>, std::less<>> given_;  // option -> values, every source
    std::map<std::string, given_value, std::less<>> winner_;              // option -> first winning value
};

}  // namespace taskmill::config
