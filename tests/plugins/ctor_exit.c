/* A library whose constructor ends the process that loads it with
 * _exit(0): a check, or a worker, that loads it exits at once, cleanly. */
#include <unistd.h>

#include <taskmill/plugin.h>

__attribute__((constructor)) static void leave(void) { _exit(0); }

static tm_status run(void* s, const tm_task* t, const tm_host_api* h, tm_ctx* c) {
    (void)s;
    (void)t;
    (void)h;
    (void)c;
    return TM_OK;
}
static const tm_handler handler = {sizeof(tm_handler), 0, "ctor.exit", 1, run, NULL, 0, -1};
static const tm_handler* const handlers[] = {&handler};
static const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "ctor_exit", "1.0.0", 1, handlers, NULL, NULL};
TM_DECLARE_PLUGIN(plugin)
