/* Claims ABI 2.0: the host must refuse it. */
#include <taskmill/plugin.h>

static tm_status run(void* s, const tm_task* t, const tm_host_api* h, tm_ctx* c) {
    (void)s;
    (void)t;
    (void)h;
    (void)c;
    return TM_OK;
}
static const tm_handler handler = {sizeof(tm_handler), 0, "badabi.run", 1, run, NULL, 0, -1};
static const tm_handler* const handlers[] = {&handler};
static const tm_plugin plugin = {sizeof(tm_plugin), (2u << 16) | 0u, "badabi", "1.0.0", 1, handlers, NULL, NULL};
TM_DECLARE_PLUGIN(plugin)
