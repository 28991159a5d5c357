/* A plugin that passes `taskmill-host --check` but whose constructor
 * crashes (SIGSEGV) every worker process that loads it, or with
 * CTOR_EXIT_IN_WORKER ends it with _exit(0): it looks for --worker in its
 * own command line. For the supervisor's failed-start handling, which the
 * check cannot foresee. */
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <taskmill/plugin.h>

__attribute__((constructor)) static void crash_in_workers(void) {
    char cmdline[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY);
    if (fd < 0) return;
    ssize_t n = read(fd, cmdline, sizeof cmdline);
    close(fd);
    for (ssize_t at = 0; at < n; at += (ssize_t)strnlen(cmdline + at, (size_t)(n - at)) + 1) {
        if (strcmp(cmdline + at, "--worker") != 0) continue;
#ifdef CTOR_EXIT_IN_WORKER
        _exit(0);
#else
        raise(SIGSEGV);
#endif
    }
}

static tm_status run(void* s, const tm_task* t, const tm_host_api* h, tm_ctx* c) {
    (void)s;
    (void)t;
    (void)h;
    (void)c;
    return TM_OK;
}
static const tm_handler handler = {sizeof(tm_handler), 0, "ctor.segv_in_worker", 1, run, NULL, 0, -1};
static const tm_handler* const handlers[] = {&handler};
static const tm_plugin plugin = {
    sizeof(tm_plugin), TM_ABI_VERSION, "ctor_segv_in_worker", "1.0.0", 1, handlers, NULL, NULL};
TM_DECLARE_PLUGIN(plugin)
