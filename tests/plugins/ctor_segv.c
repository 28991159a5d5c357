/* A library whose constructor crashes the process that loads it (SIGSEGV). */
#include <signal.h>

#include <taskmill/plugin.h>

__attribute__((constructor)) static void crash(void) { raise(SIGSEGV); }

static tm_status run(void* s, const tm_task* t, const tm_host_api* h, tm_ctx* c) {
    (void)s;
    (void)t;
    (void)h;
    (void)c;
    return TM_OK;
}
static const tm_handler handler = {sizeof(tm_handler), 0, "ctor.segv", 1, run, NULL, 0, -1};
static const tm_handler* const handlers[] = {&handler};
static const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "ctor_segv", "1.0.0", 1, handlers, NULL, NULL};
TM_DECLARE_PLUGIN(plugin)
