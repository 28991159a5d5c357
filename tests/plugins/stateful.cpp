// stateful: a C++ plugin with state built from its config, for the SDK
// tests. Config (all optional): {"greeting": str, "refuse": bool,
// "shutdown_marker": path}. stateful.greet answers {"greeting": ...,
// "calls": n}; the state's destructor (shutdown) writes shutdown_marker.
#include <taskmill/plugin.hpp>

#include <atomic>
#include <fstream>
#include <string>

namespace {

namespace tp = taskmill::plugin;

class greeter_state {
public:
    explicit greeter_state(tp::init_context& c)
        : greeting_(c.config()["greeting"].as_string("hello")), marker_(c.config()["shutdown_marker"].as_string()) {
        if (c.config()["refuse"].as_bool()) c.fail("refused by config", 99);
        c.info("greeting with " + greeting_);
    }
    ~greeter_state() {
        if (!marker_.empty()) std::ofstream(marker_) << "shut down after " << calls_.load() << " calls";
    }
    greeter_state(const greeter_state&) = delete;
    greeter_state& operator=(const greeter_state&) = delete;

    const std::string& greeting() const { return greeting_; }
    int64_t count_call() { return ++calls_; }

private:
    std::string greeting_;
    std::string marker_;
    std::atomic<int64_t> calls_{0};
};

tp::mp::value greet(tp::context& c) {
    auto& s = c.state<greeter_state>();
    return tp::mp::value::map({{"greeting", s.greeting()}, {"calls", s.count_call()}});
}

TASKMILL_HANDLER(greet_handler, "stateful.greet", greet);

}  // namespace

TASKMILL_PLUGIN_WITH_STATE("stateful", "1.0.0", greeter_state, &greet_handler);
