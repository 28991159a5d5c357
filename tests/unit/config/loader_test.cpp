// The shared config loader: precedence flag > environment > file > default,
// FILE:LINE in errors, unknown keys and sections, bad values of each type,
// PREFIX.NAME sections, and --print-config output that loads back.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <taskmill/config/loader.hpp>

namespace tc = taskmill::config;
namespace fs = std::filesystem;

namespace {

class temp_file {
public:
    explicit temp_file(const std::string& text)
        : path_(fs::temp_directory_path() /
                ("taskmill-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) + ".ini")) {
        std::ofstream(path_) << text;
    }
    ~temp_file() { fs::remove(path_); }
    std::string path() const { return path_.string(); }

private:
    static inline int counter_ = 0;
    fs::path path_;
};

// One of each kind of option, as the binaries declare them.
struct settings {
    std::string config_file;
    std::string name = "default-name";
    int64_t period_ms = 1000;
    uint32_t count = 4;
    double factor = 2.0;
    bool watch = true;
    bool once = false;
    std::string level = "info";
    std::vector<std::string> keys;
    std::vector<std::pair<std::string, std::string>> section_keys;  // "NAME.key" -> value

    void declare(tc::loader& l) {
        l.add("config", tc::text(config_file), "INI file", tc::scope::flag_only);
        l.add("name", tc::text(name), "a text");
        l.add("period-ms", tc::number(period_ms, int64_t{1}), "a positive integer");
        l.add("count", tc::number(count, uint32_t{1}, uint32_t{100}), "1..100");
        l.add("factor", tc::real(factor, 1.0, 10.0), "1..10");
        l.add("watch", tc::boolean(watch), "a boolean");
        l.add("once", tc::switch_flag(once), "a switch", tc::scope::flag_only);
        l.add("level", tc::choice(level, {"info", "warn"}), "an enum");
        l.add("key", tc::list(keys), "repeatable").secret = true;
        l.add("backend", tc::text(name), "renamed variable").env = "TASKMILL_OTHER_NAME";
        l.file_option("config");
        l.sections("job.", [this](const tc::section& s) {
            for (const auto& e : s.entries) {
                if (e.key != "every") throw tc::error(e.where + ": unknown key '" + e.key + "'");
                section_keys.emplace_back(s.name + "." + e.key, e.value);
            }
        });
    }
};

void load(settings& s, std::vector<std::string> args, const std::map<std::string, std::string>& env = {},
          tc::loader* keep = nullptr) {
    tc::loader own("test");
    auto& l = keep != nullptr ? *keep : own;
    s.declare(l);
    args.insert(args.begin(), "test");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    l.load(static_cast<int>(argv.size()), argv.data(), env);
}

std::string load_error(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    settings s;
    try {
        load(s, std::move(args), env);
    } catch (const tc::error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST(ConfigLoader, DefaultsStayWhenNothingIsGiven) {
    settings s;
    load(s, {});
    EXPECT_EQ(s.name, "default-name");
    EXPECT_EQ(s.period_ms, 1000);
    EXPECT_TRUE(s.watch);
    EXPECT_FALSE(s.once);
}

TEST(ConfigLoader, FlagBeatsEnvironmentBeatsFile) {
    temp_file f("name = from-file\nperiod-ms = 10\ncount = 7\nkey = file-a\nkey = file-b\n");
    settings s;
    tc::loader l("test");
    load(s, {"--config", f.path(), "--name", "from-flag", "--key=flag-a"},
         {{"TASKMILL_NAME", "from-env"}, {"TASKMILL_PERIOD_MS", "20"}, {"TASKMILL_UNRELATED", "x"}}, &l);
    EXPECT_EQ(s.name, "from-flag");
    EXPECT_EQ(s.period_ms, 20);
    EXPECT_EQ(s.count, 7u);
    EXPECT_EQ(s.keys, std::vector<std::string>{"flag-a"});  // a list takes its best source whole
    EXPECT_EQ(l.origin("name"), tc::source::flag);
    EXPECT_EQ(l.origin("period-ms"), tc::source::environment);
    EXPECT_EQ(l.origin("count"), tc::source::file);
    EXPECT_EQ(l.origin("factor"), tc::source::none);
}

TEST(ConfigLoader, AVariableCanBeRenamed) {
    settings s;
    load(s, {}, {{"TASKMILL_OTHER_NAME", "renamed"}, {"TASKMILL_BACKEND", "ignored"}});
    EXPECT_EQ(s.name, "renamed");
}

TEST(ConfigLoader, FileErrorsNameFileAndLine) {
    temp_file unknown("name = a\n\n# comment\nnmae = b\n");
    EXPECT_EQ(load_error({"--config", unknown.path()}), unknown.path() + ":4: unknown key 'nmae'");
    temp_file no_equals("name = a\njust words\n");
    EXPECT_EQ(load_error({"--config", no_equals.path()}), no_equals.path() + ":2: expected 'key = value'");
    temp_file section("name = a\n[server]\nname = b\n");
    EXPECT_NE(load_error({"--config", section.path()}).find(section.path() + ":2: unknown section [server]"),
              std::string::npos);
    temp_file flag_only("once = true\n");  // command-line only options are not keys
    EXPECT_EQ(load_error({"--config", flag_only.path()}), flag_only.path() + ":1: unknown key 'once'");
    temp_file twice("count = 1\ncount = 2\n");
    EXPECT_EQ(load_error({"--config", twice.path()}), twice.path() + ":2: count is given more than once");
    temp_file bad("watch = true\ncount = 0\n");
    EXPECT_EQ(load_error({"--config", bad.path()}), bad.path() + ":2: count: '0' is out of range [1, 100]");
    EXPECT_EQ(load_error({"--config", "/nonexistent/x.ini"}), "cannot read config file /nonexistent/x.ini");
}

TEST(ConfigLoader, ABadValueLosingToAFlagIsStillAnError) {
    temp_file f("count = many\n");
    EXPECT_EQ(load_error({"--config", f.path(), "--count", "3"}), f.path() + ":1: count: 'many' is not a whole number");
}

TEST(ConfigLoader, BadValuesOfEachTypeNameTheSourceAndWhatIsAllowed) {
    EXPECT_EQ(load_error({"--period-ms", "soon"}), "--period-ms: 'soon' is not a whole number");
    EXPECT_EQ(load_error({"--period-ms", "0"}), "--period-ms: '0' is out of range [1, 9223372036854775807]");
    EXPECT_EQ(load_error({"--count", "-1"}), "--count: '-1' is not a whole number");
    EXPECT_EQ(load_error({"--count", "4x"}), "--count: '4x' is not a whole number");
    EXPECT_EQ(load_error({"--count", "99999999999"}), "--count: '99999999999' is out of range [1, 100]");
    EXPECT_EQ(load_error({"--factor", "0.5"}), "--factor: '0.5' is out of range [1, 10]");
    EXPECT_EQ(load_error({"--factor", "nan"}), "--factor: 'nan' is not a number");
    EXPECT_EQ(load_error({"--watch", "maybe"}), "--watch: 'maybe' is not one of true false (yes no on off 1 0)");
    EXPECT_EQ(load_error({"--level", "nonsense"}), "--level: 'nonsense' is not one of info warn");
    EXPECT_EQ(load_error({}, {{"TASKMILL_LEVEL", "loud"}}), "TASKMILL_LEVEL: level: 'loud' is not one of info warn");
}

TEST(ConfigLoader, BadFlagsAreErrors) {
    EXPECT_EQ(load_error({"--nmae", "x"}), "unknown option --nmae (see --help)");
    EXPECT_EQ(load_error({"stray"}), "unexpected argument 'stray' (options start with --; see --help)");
    EXPECT_EQ(load_error({"--name"}), "--name needs a value");
    EXPECT_EQ(load_error({"--count", "1", "--count", "2"}), "--count: count is given more than once");
}

TEST(ConfigLoader, ValuesAndSwitches) {
    settings s;
    load(s, {"--once", "--watch=off", "--factor", "2.5", "--name="});
    EXPECT_TRUE(s.once);
    EXPECT_FALSE(s.watch);
    EXPECT_DOUBLE_EQ(s.factor, 2.5);
    EXPECT_EQ(s.name, "");
}

TEST(ConfigLoader, CommentsAfterAValueAreDropped) {
    temp_file f("name = value # a comment\n; a comment line\n");
    settings s;
    load(s, {"--config", f.path()});
    EXPECT_EQ(s.name, "value");
}

TEST(ConfigLoader, PrefixedSectionsGoToTheirReaderWithLines) {
    temp_file f("name = a\n[job.nightly]\nevery = \"1d\" # kept: the section reader decides\n[job.tick]\nevery = 1s\n");
    settings s;
    load(s, {"--config", f.path()});
    ASSERT_EQ(s.section_keys.size(), 2u);
    EXPECT_EQ(s.section_keys[0].first, "nightly.every");
    EXPECT_EQ(s.section_keys[0].second, "\"1d\" # kept: the section reader decides");
    EXPECT_EQ(s.section_keys[1].second, "1s");
    temp_file bad("[job.x]\nevery = 1s\nwhen = now\n");
    EXPECT_EQ(load_error({"--config", bad.path()}), bad.path() + ":3: unknown key 'when'");
    temp_file twice("[job.x]\nevery = 1s\n[job.x]\nevery = 2s\n");
    EXPECT_EQ(load_error({"--config", twice.path()}), twice.path() + ":3: [job.x] already defined at line 1");
}

TEST(ConfigLoader, PrintConfigLoadsBackToTheSameConfiguration) {
    temp_file f("name = from-file\ncount = 9\n");
    settings first;
    tc::loader l("test");
    load(first, {"--config", f.path(), "--factor", "3.25", "--watch", "false", "--key", "a:b"},
         {{"TASKMILL_LEVEL", "warn"}}, &l);
    auto printed = l.print_config();
    EXPECT_NE(printed.find("# from " + f.path() + ":1\nname = from-file\n"), std::string::npos) << printed;
    EXPECT_NE(printed.find("# from TASKMILL_LEVEL\nlevel = warn\n"), std::string::npos) << printed;
    EXPECT_NE(printed.find("# from --factor\nfactor = 3.25\n"), std::string::npos) << printed;
    EXPECT_NE(printed.find("key = a:(secret)\n"), std::string::npos) << printed;  // never print a secret
    EXPECT_EQ(printed.find("once"), std::string::npos) << printed;                // flag only: not a key

    // Without the secret, the printed file gives back every value.
    temp_file again(printed.substr(0, printed.find("# from --key")));
    settings second;
    load(second, {"--config", again.path()});
    EXPECT_EQ(second.name, first.name);
    EXPECT_EQ(second.count, first.count);
    EXPECT_EQ(second.factor, first.factor);
    EXPECT_EQ(second.watch, first.watch);
    EXPECT_EQ(second.level, first.level);
    EXPECT_EQ(second.period_ms, first.period_ms);
}

TEST(ConfigLoader, HelpListsEveryVisibleOptionWithItsDefault) {
    settings s;
    tc::loader l("test");
    s.declare(l);
    auto help = l.help("usage: test [options]");
    EXPECT_NE(help.find("--count ARG (=4)"), std::string::npos) << help;
    EXPECT_NE(help.find("--once  [flag only]"), std::string::npos) << help;
    EXPECT_NE(help.find("[env TASKMILL_OTHER_NAME]"), std::string::npos) << help;
}
