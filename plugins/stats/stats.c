/* stats -- a C99 plugin that reads and writes msgpack with
 * taskmill/plugin_mp.h instead of by hand.
 *
 * stats.summary takes {"numbers": [n, ...]} (integers or floats) and
 * answers {"count": n, "sum": s, "min": a, "max": b} (min and max are nil
 * for an empty list). Its config (host.ini [plugin.stats]) may set
 * "max_count", the longest list it accepts (default 100000). */
#include <taskmill/plugin.h>
#include <taskmill/plugin_mp.h>

#include <stdlib.h>

typedef struct stats_config {
    uint64_t max_count;
} stats_config;

static void fail_with(const tm_host_api* host, tm_ctx* ctx, int32_t code, const char* message) {
    tm_error err = {sizeof(tm_error), 0, {NULL, 0}, -1};
    err.code = code;
    err.message.data = message;
    err.message.size = strlen(message);
    host->set_error(ctx, &err);
}

static tm_status stats_init(const tm_host_api* host, tm_ctx* ctx, tm_bytes config, void** out_state) {
    stats_config* cfg = (stats_config*)malloc(sizeof *cfg);
    tm_mp_reader r, value;
    if (cfg == NULL) {
        fail_with(host, ctx, 0, "out of memory");
        return TM_FAIL;
    }
    cfg->max_count = 100000;
    tm_mp_reader_init(&r, config.data, config.size);
    if (tm_mp_map_find(&r, "max_count", &value) && !tm_mp_read_uint(&value, &cfg->max_count)) {
        free(cfg);
        fail_with(host, ctx, 0, "max_count must be a non-negative integer");
        return TM_FAIL;
    }
    *out_state = cfg;
    return TM_OK;
}

static void stats_shutdown(void* state) { free(state); }

/* Writes the summary of the array at `list` into `w`; 0 and an error
 * message if an element is not a number. */
static int summarise(tm_mp_reader* list, uint32_t count, tm_mp_writer* w, const char** error) {
    double sum = 0, lo = 0, hi = 0, x;
    uint32_t i;
    for (i = 0; i < count; ++i) {
        if (!tm_mp_read_float(list, &x)) {
            *error = "numbers must hold only numbers";
            return 0;
        }
        sum += x;
        lo = (i == 0 || x < lo) ? x : lo;
        hi = (i == 0 || x > hi) ? x : hi;
    }
    tm_mp_write_map(w, 4);
    tm_mp_write_str(w, "count");
    tm_mp_write_uint(w, count);
    tm_mp_write_str(w, "sum");
    tm_mp_write_float(w, sum);
    tm_mp_write_str(w, "min");
    if (count > 0) tm_mp_write_float(w, lo);
    else tm_mp_write_nil(w);
    tm_mp_write_str(w, "max");
    if (count > 0) tm_mp_write_float(w, hi);
    else tm_mp_write_nil(w);
    return 1;
}

static tm_status summary_execute(void* state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) {
    const stats_config* cfg = (const stats_config*)state;
    tm_mp_reader payload, list;
    tm_mp_writer w;
    uint32_t count;
    const char* error = NULL;
    int32_t rc;
    tm_mp_reader_init(&payload, task->payload.data, task->payload.size);
    if (!tm_mp_map_find(&payload, "numbers", &list) || !tm_mp_read_array(&list, &count)) {
        fail_with(host, ctx, 1, "payload must be a map with an array \"numbers\"");
        return TM_FAIL;
    }
    if (count > cfg->max_count) {
        fail_with(host, ctx, 2, "too many numbers (see max_count)");
        return TM_FAIL;
    }
    tm_mp_writer_init_growable(&w);
    if (!summarise(&list, count, &w, &error)) {
        tm_mp_writer_free(&w);
        fail_with(host, ctx, 1, error);
        return TM_FAIL;
    }
    if (!tm_mp_writer_ok(&w)) {
        tm_mp_writer_free(&w);
        fail_with(host, ctx, 0, "out of memory");
        return TM_RETRY;
    }
    rc = host->set_result(ctx, tm_mp_writer_bytes(&w)); /* the host copies it */
    tm_mp_writer_free(&w);
    if (rc != 0) {
        fail_with(host, ctx, 0, "could not store the result");
        return rc == TM_E_UNAVAILABLE ? TM_RETRY : TM_FAIL;
    }
    return TM_OK;
}

static const tm_handler summary_handler = {
    sizeof(tm_handler),
    TM_HANDLER_IDEMPOTENT,
    "stats.summary",
    1, /* payload_version */
    summary_execute,
    NULL, /* default_queue */
    0,    /* default_timeout_ms */
    -1,   /* default_retries */
};

static const tm_handler* const stats_handlers[] = {&summary_handler};

static const tm_plugin stats_plugin = {
    sizeof(tm_plugin), TM_ABI_VERSION, "stats", "1.0.0", 1, stats_handlers, stats_init, stats_shutdown,
};

TM_DECLARE_PLUGIN(stats_plugin)
