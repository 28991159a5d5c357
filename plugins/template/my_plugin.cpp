// my_plugin: rename me. One handler, "mine.greet", which answers
// {"greeting": "<salute>, <name>"} for a payload {"name": "..."}. The
// salute comes from the plugin's config (host.ini [plugin.mine], key
// "salute"; default "hello"), read once into the plugin's state.
#include <taskmill/plugin.hpp>

#include <stdexcept>
#include <string>

namespace {

namespace tp = taskmill::plugin;

// Built in init() from the config, destroyed in shutdown(). Shared by every
// call, possibly on several threads: keep it read-only or protect it.
class mine_state {
public:
    explicit mine_state(tp::init_context& c) : salute_(c.config()["salute"].as_string("hello")) {
        if (salute_.empty()) c.fail("salute must not be empty");  // -> the plugin is refused
    }
    const std::string& salute() const { return salute_; }

private:
    std::string salute_;
};

tp::mp::value greet(tp::context& c) {
    std::string name = c.payload()["name"].as_string("world");
    if (name.empty()) throw tp::permanent_error("name must not be empty");  // -> TM_FAIL
    c.throw_if_cancelled();                                                 // -> TM_CANCELLED
    c.info("greeting " + name);
    return tp::mp::value::map({{"greeting", c.state<mine_state>().salute() + ", " + name}});
}

TASKMILL_HANDLER(greet_handler, "mine.greet", greet, {.default_timeout_ms = 10000});

}  // namespace

TASKMILL_PLUGIN_WITH_STATE("mine", "0.1.0", mine_state, &greet_handler);
