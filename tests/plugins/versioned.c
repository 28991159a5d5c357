/* versioned -- one plugin built several times, each a different version.
 *
 * Compiled with -DVERSION_MAJOR=N into versioned_vN.so: plugin "versioned",
 * version "N.0.0" (minor and patch from -DVERSION_MINOR / -DVERSION_PATCH
 * if given), one handler ver.which answering the msgpack string of its
 * own version. Tests swap these files in a watched plugins folder and read,
 * from each result, which version ran the task.
 *
 * With -DVERSIONED_BROKEN it claims ABI 2.0, so the host must refuse it. */
#include <taskmill/plugin.h>

#ifndef VERSION_MAJOR
#error "build with -DVERSION_MAJOR=N"
#endif

#define VERSIONED_STR2(x) #x
#define VERSIONED_STR(x) VERSIONED_STR2(x)
#ifndef VERSION_MINOR
#define VERSION_MINOR 0
#endif
#ifndef VERSION_PATCH
#define VERSION_PATCH 0
#endif
#define VERSIONED_VERSION VERSIONED_STR(VERSION_MAJOR) "." VERSIONED_STR(VERSION_MINOR) "." VERSIONED_STR(VERSION_PATCH)

#ifdef VERSIONED_BROKEN
#define VERSIONED_ABI ((2u << 16) | 0u)
#else
#define VERSIONED_ABI TM_ABI_VERSION
#endif

static const char version_text[] = VERSIONED_VERSION;

/* The result is a msgpack fixstr: 0xa0 | length, then the text (< 32 bytes). */
static tm_status which_execute(void* state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) {
    uint8_t buf[32];
    size_t n = sizeof(version_text) - 1u;
    size_t i;
    tm_bytes out;
    (void)state;
    (void)task;
    buf[0] = (uint8_t)(0xa0u | n);
    for (i = 0; i < n; ++i) buf[1 + i] = (uint8_t)version_text[i];
    out.data = buf;
    out.size = n + 1u;
    if (host->set_result(ctx, out) != 0) {
        static const char msg[] = "could not store the result";
        tm_error err = {sizeof(tm_error), 0, TM_STR_LIT(msg), -1};
        host->set_error(ctx, &err);
        return TM_RETRY;
    }
    return TM_OK;
}

static const tm_handler which_handler = {
    sizeof(tm_handler),
    TM_HANDLER_IDEMPOTENT,
    "ver.which",
    1, /* payload_version */
    which_execute,
    NULL, /* default_queue */
    0,    /* default_timeout_ms */
    -1,   /* default_retries */
};

static const tm_handler* const versioned_handlers[] = {&which_handler};

static const tm_plugin versioned_plugin = {
    sizeof(tm_plugin),
    VERSIONED_ABI,
    "versioned",
    VERSIONED_VERSION,
    1,
    versioned_handlers,
    NULL, /* init */
    NULL, /* shutdown */
};

TM_DECLARE_PLUGIN(versioned_plugin)
