// my_plugin: rename me. One handler, "mine.greet", which answers
// {"greeting": "hello, <name>"} for a payload {"name": "..."}.
#include <taskmill/plugin.hpp>

#include <string>

namespace {

namespace tp = taskmill::plugin;

tp::mp::value greet(tp::context& c) {
    std::string name = c.payload()["name"].as_string("world");
    if (name.empty()) throw std::runtime_error("name must not be empty");  // -> permanent failure
    c.info("greeting " + name);
    return tp::mp::value::map({{"greeting", "hello, " + name}});
}

TASKMILL_HANDLER(greet_handler, "mine.greet", greet, {.default_timeout_ms = 10000});

}  // namespace

TASKMILL_PLUGIN("mine", "0.1.0", &greet_handler);
