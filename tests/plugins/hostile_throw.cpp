// hostile_throw -- a C++ plugin whose static constructor throws: nothing
// catches it, so loading it ends in std::terminate (SIGABRT).
#include <stdexcept>

#include <taskmill/plugin.h>

namespace {

struct thrower {
    thrower() { throw std::runtime_error("hostile_throw: constructor throws"); }
};
const thrower at_load;

tm_status run_execute(void*, const tm_task*, const tm_host_api*, tm_ctx*) { return TM_OK; }

const tm_handler run_handler = {sizeof(tm_handler), 0, "hostile.run", 1, run_execute, nullptr, 0, -1};
const tm_handler* const handlers[] = {&run_handler};
const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "hostile", "1.0.0", 1, handlers, nullptr, nullptr};

}  // namespace

TM_DECLARE_PLUGIN(plugin)
