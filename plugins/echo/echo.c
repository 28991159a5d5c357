/* echo -- the smallest taskmill plugin, in pure C99.
 *
 * echo.echo returns its payload unchanged. The payload is borrowed for the
 * duration of execute(); set_result copies it, so nothing is allocated. */
#include <taskmill/plugin.h>

static tm_status echo_execute(void* state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) {
    (void)state;
    if (host->set_result(ctx, task->payload) != 0) {
        static const char msg[] = "could not store the result";
        tm_error err = {sizeof(tm_error), 0, TM_STR_LIT(msg), -1};
        host->set_error(ctx, &err);
        return TM_RETRY;
    }
    return TM_OK;
}

static const tm_handler echo_handler = {
    sizeof(tm_handler),
    TM_HANDLER_IDEMPOTENT,
    "echo.echo",
    1, /* payload_version */
    echo_execute,
    NULL, /* default_queue */
    0,    /* default_timeout_ms */
    -1,   /* default_retries */
};

static const tm_handler* const echo_handlers[] = {&echo_handler};

static const tm_plugin echo_plugin = {
    sizeof(tm_plugin),
    TM_ABI_VERSION,
    "echo",
    "1.0.0",
    1,
    echo_handlers,
    NULL, /* init */
    NULL, /* shutdown */
};

TM_DECLARE_PLUGIN(echo_plugin)
