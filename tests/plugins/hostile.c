/* hostile -- one C source built into the plugins a host must refuse (or
 * warn about) without crashing or hanging, one behaviour per definition:
 *
 *   HOSTILE_CTOR_EXIT     a constructor calls _exit(0)
 *   HOSTILE_CTOR_SEGV     a constructor dereferences NULL
 *   HOSTILE_FORK_SEGV     a constructor forks a process that keeps every
 *                         inherited descriptor for 3 s, then dereferences NULL
 *   HOSTILE_INIT_HANG     init() never returns
 *   HOSTILE_INIT_FAIL     init() fails with TM_FAIL and a set_error message
 *   HOSTILE_UNDEFINED     calls a function no library defines
 *   HOSTILE_NEEDS_GONE    links a library that is not there at load time
 *   HOSTILE_MANY_EXPORTS  exports functions besides the entry point
 *   HOSTILE_RC_VERSION    claims version "1.0.0-rc1" (not X[.Y[.Z]])
 *   HOSTILE_INIT_PROBE    init() calls every host function and fails, with
 *                         the reason, unless each answers as plugin.h says
 *
 * Each is plugin "hostile" with one handler hostile.run that does nothing. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <taskmill/plugin.h>

static tm_status run_execute(void* state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) {
    (void)state;
    (void)task;
    (void)host;
    (void)ctx;
    return TM_OK;
}

#if defined(HOSTILE_CTOR_EXIT)
__attribute__((constructor)) static void leave(void) { _exit(0); }
#endif

#if defined(HOSTILE_CTOR_SEGV)
__attribute__((constructor)) static void crash(void) {
    volatile int* volatile nowhere = NULL;
    *nowhere = 1;
}
#endif

#if defined(HOSTILE_FORK_SEGV)
__attribute__((constructor)) static void fork_then_crash(void) {
    volatile int* volatile nowhere = NULL;
    if (fork() == 0) {
        sleep(3);
        _exit(0);
    }
    *nowhere = 1;
}
#endif

#if defined(HOSTILE_UNDEFINED)
int taskmill_no_such_function(void);
__attribute__((constructor)) static void use_it(void) { (void)taskmill_no_such_function(); }
#endif

#if defined(HOSTILE_NEEDS_GONE)
int hostile_gone_function(void);
__attribute__((constructor)) static void use_gone(void) { (void)hostile_gone_function(); }
#endif

#if defined(HOSTILE_MANY_EXPORTS)
TM_EXPORT int hostile_extra_a(void);
TM_EXPORT int hostile_extra_b(void);
TM_EXPORT int hostile_extra_c(void);
TM_EXPORT int hostile_extra_a(void) { return 1; }
TM_EXPORT int hostile_extra_b(void) { return 2; }
TM_EXPORT int hostile_extra_c(void) { return 3; }
#endif

__attribute__((unused)) static void fail_with(const tm_host_api* host, tm_ctx* ctx, const char* why) {
    tm_error err;
    memset(&err, 0, sizeof err);
    err.struct_size = sizeof(tm_error);
    err.code = 7;
    err.message.data = why;
    err.message.size = strlen(why);
    err.retry_after_ms = -1;
    host->set_error(ctx, &err);
}

#if defined(HOSTILE_INIT_PROBE)
/* The first host function that does not answer as plugin.h says, or NULL. */
static const char* probe(const tm_host_api* host, tm_ctx* ctx) {
    static const uint8_t nil = 0xc0;
    tm_bytes bytes = {&nil, 1};
    tm_bytes loaded = {NULL, 0};
    tm_str none = {NULL, 0};
    tm_spawn_request req;
    if (!TM_HOST_HAS(host, is_cancelled) || host->is_cancelled(ctx) != 0) return "is_cancelled";
    if (!TM_HOST_HAS(host, report_progress) || host->report_progress(ctx, 0.5, none) != TM_E_STATE)
        return "report_progress";
    if (!TM_HOST_HAS(host, checkpoint_save) || host->checkpoint_save(ctx, bytes) != TM_E_STATE)
        return "checkpoint_save";
    if (!TM_HOST_HAS(host, checkpoint_load) || host->checkpoint_load(ctx, &loaded) != TM_E_STATE)
        return "checkpoint_load";
    memset(&req, 0, sizeof req);
    req.struct_size = sizeof req;
    req.handler.data = "hostile.run";
    req.handler.size = 11;
    req.payload = bytes;
    if (!TM_HOST_HAS(host, spawn) || host->spawn(ctx, &req, NULL) != TM_E_STATE) return "spawn";
    if (!TM_HOST_HAS(host, set_result) || host->set_result(ctx, bytes) != TM_E_STATE) return "set_result";
    if (!TM_HOST_HAS(host, limit) || host->limit(ctx, TM_LIMIT_RESULT) != (16u << 20) - (64u << 10) ||
        host->limit(ctx, TM_LIMIT_CHECKPOINT) != (16u << 20) - (64u << 10) ||
        host->limit(ctx, TM_LIMIT_SPAWN) != (16u << 20) - (64u << 10) || host->limit(ctx, 999) != 0)
        return "limit";
    if (!TM_HOST_HAS(host, log_enabled) || !TM_HOST_HAS(host, log)) return "log";
    return NULL;
}
#endif

static tm_status hostile_init(const tm_host_api* host, tm_ctx* ctx, tm_bytes config, void** out_state) {
    (void)config;
    (void)out_state;
#if defined(HOSTILE_INIT_HANG)
    (void)host;
    (void)ctx;
    for (;;) pause();
#elif defined(HOSTILE_INIT_FAIL)
    fail_with(host, ctx, "the licence file /nonexistent/licence is missing");
    return TM_FAIL;
#elif defined(HOSTILE_INIT_PROBE)
    {
        const char* wrong = probe(host, ctx);
        static const char said[] = "probe ran every host function";
        tm_str line = TM_STR_LIT(said);
        if (wrong != NULL) {
            fail_with(host, ctx, wrong);
            return TM_FAIL;
        }
        host->log(ctx, TM_LOG_INFO, line);
    }
    return TM_OK;
#else
    (void)host;
    (void)ctx;
    return TM_OK;
#endif
}

static const tm_handler run_handler = {
    sizeof(tm_handler), 0, "hostile.run", 1, run_execute, NULL, 0, -1,
};

static const tm_handler* const hostile_handlers[] = {&run_handler};

#if defined(HOSTILE_RC_VERSION)
#define HOSTILE_VERSION "1.0.0-rc1"
#else
#define HOSTILE_VERSION "1.0.0"
#endif

static const tm_plugin hostile_plugin = {
    sizeof(tm_plugin), TM_ABI_VERSION, "hostile", HOSTILE_VERSION, 1, hostile_handlers, hostile_init, NULL,
};

TM_DECLARE_PLUGIN(hostile_plugin)
