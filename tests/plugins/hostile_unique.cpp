// hostile_unique -- a C++ plugin built the way taskmill_add_plugin forbids:
// default visibility and GCC's STB_GNU_UNIQUE objects (a function-local
// static of an inline member function). Such a library can never be
// unloaded and shares the object with every other library defining it.
// Clang never emits STB_GNU_UNIQUE; tests skip what this file cannot show.
#include <taskmill/plugin.h>

template <typename T> struct hostile_counter {
    static T& get() {
        static T value{};
        return value;
    }
};

TM_EXPORT int* hostile_unique_counter();
TM_EXPORT int* hostile_unique_counter() { return &hostile_counter<int>::get(); }

namespace {

tm_status run_execute(void*, const tm_task*, const tm_host_api*, tm_ctx*) {
    ++*hostile_unique_counter();
    return TM_OK;
}

const tm_handler run_handler = {sizeof(tm_handler), 0, "hostile.run", 1, run_execute, nullptr, 0, -1};
const tm_handler* const handlers[] = {&run_handler};
const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "hostile", "1.0.0", 1, handlers, nullptr, nullptr};

}  // namespace

TM_DECLARE_PLUGIN(plugin)
