/* A handler with a NULL name: the host must refuse the whole library. */
#include <taskmill/plugin.h>

static tm_status run(void* s, const tm_task* t, const tm_host_api* h, tm_ctx* c) {
    (void)s;
    (void)t;
    (void)h;
    (void)c;
    return TM_OK;
}
static const tm_handler good = {sizeof(tm_handler), 0, "malformed.good", 1, run, NULL, 0, -1};
static const tm_handler nameless = {sizeof(tm_handler), 0, NULL, 1, run, NULL, 0, -1};
static const tm_handler* const handlers[] = {&good, &nameless};
static const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "malformed", "1.0.0", 2, handlers, NULL, NULL};
TM_DECLARE_PLUGIN(plugin)
