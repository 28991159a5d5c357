/*
 * taskmill/plugin.h -- the binary contract between the taskmill worker host
 * and handler plugins (shared libraries). ABI 1.1.
 *
 * This header is plain C99 with no dependencies beyond <stddef.h> and
 * <stdint.h>, so plugins can be written in C, C++, Rust or anything else that
 * speaks the C calling convention. The host is the only place that knows about
 * ZeroMQ, msgpack libraries, LMDB, spdlog or Boost. None of those types, and no
 * C++ type at all, ever crosses this boundary.
 *
 * ---------------------------------------------------------------------------
 * How a plugin is found
 *
 *   The plugin exports exactly one symbol, TM_PLUGIN_ENTRY_SYMBOL, a function
 *   with no arguments that returns a pointer to a static, immutable
 *   tm_plugin descriptor. Calling it must have no side effects, so the host
 *   can call it just to inspect a file. Use TM_DECLARE_PLUGIN() to define it.
 *   The major ABI version is part of the symbol name. A breaking change gets
 *   a new symbol ("..._v2"), and a host may accept both during a transition.
 *
 * Versioning and evolution (the rules that keep old plugins working)
 *
 *   1. Every struct that crosses the boundary starts with `struct_size`. Its
 *      writer sets it to sizeof(the struct it was compiled with).
 *   2. Fields are only ever appended. Nothing is reordered, retyped or removed
 *      within a major version. Appending a field bumps TM_ABI_MINOR.
 *   3. A reader only touches a field if TM_HAS_FIELD() says the writer's
 *      struct is big enough. Fields that are missing read as zero/NULL.
 *   4. A plugin calls a host function added after 1.0 only if
 *      TM_HOST_HAS(host, fn) is true.
 *   5. The host rejects a plugin whose major version differs from its own, or
 *      whose minor version is newer than its own.
 *   6. Unknown bits in tm_handler.flags make the host reject that handler,
 *      because a flag is a request for a guarantee the host may not give.
 *
 * Memory ownership (there is no cross-boundary free(), ever)
 *
 *   - Host -> plugin data (tm_task, payloads, checkpoint_load output, ids) is
 *     BORROWED. It is valid only until the call it was handed to returns,
 *     unless a comment below gives a longer lifetime. Copy it to keep it.
 *   - Plugin -> host data (results, errors, logs, checkpoints, subtask
 *     payloads) is COPIED by the host before the host function returns. The
 *     plugin may free or reuse its buffer right away.
 *   - The tm_plugin and tm_handler structs, and the strings they point to,
 *     belong to the plugin and must stay valid while the library is loaded
 *     (in practice: static storage).
 *
 * Errors
 *
 *   - tm_handler.execute and tm_plugin.init return a tm_status. The return
 *     value alone decides what happens next (done / retry / give up).
 *   - Details (code, message, retry delay) go through host->set_error()
 *     before returning. If the plugin does not call it, the host uses its
 *     defaults (for TM_RETRY that means the configured backoff).
 *   - Host functions return 0 on success or a negative TM_E_* code.
 *   - The host treats any return value it does not know as TM_FAIL.
 *   - C++ exceptions, longjmp and Rust panics must not cross the boundary.
 *     The C++ SDK (plugin.hpp) catches everything and turns it into a status
 *     (docs/PLUGINS.md, section 2).
 *
 * Threads
 *
 *   - The host may call execute() at the same time on several threads, for
 *     different tasks, and for the same handler, unless the handler sets
 *     TM_HANDLER_SERIAL. Plugin state shared between calls is the plugin's
 *     to protect.
 *   - A tm_ctx belongs to one call on one thread. Do not store it. Do not
 *     use it from threads the plugin creates.
 *   - The tm_host_api table is valid from init() until shutdown() returns.
 *
 * Unloading
 *
 *   - After shutdown() returns the library may be closed. By then the plugin
 *     must have joined every thread it started and released every callback
 *     it gave to third-party libraries.
 *   - For a plugin to be really unloadable (hot reload), avoid thread_local
 *     objects with destructors and function-local statics in inline or
 *     template functions (GCC makes them STB_GNU_UNIQUE, which pins the
 *     library in memory). Build with -fvisibility=hidden.
 * ---------------------------------------------------------------------------
 */
#ifndef TASKMILL_PLUGIN_H
#define TASKMILL_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== */
/* Versions                                                              */
/* ===================================================================== */

#define TM_ABI_MAJOR 1
#define TM_ABI_MINOR 1
#define TM_ABI_VERSION ((uint32_t)(((uint32_t)TM_ABI_MAJOR << 16) | (uint32_t)TM_ABI_MINOR))
#define TM_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define TM_ABI_MINOR_OF(v) ((uint32_t)(v)&0xFFFFu)

/* The one symbol a plugin exports. The major version is part of the name. */
#define TM_PLUGIN_ENTRY_SYMBOL "taskmill_plugin_v1"

/* True if the struct behind `ptr` (of type `type`, written by the other
 * side) is big enough to contain `field`. */
#define TM_HAS_FIELD(ptr, type, field) \
    ((ptr) != NULL && (size_t)(ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* True if the host provides function `fn` (use it for anything after 1.0). */
#define TM_HOST_HAS(host, fn) (TM_HAS_FIELD(host, tm_host_api, fn) && (host)->fn != NULL)

/* ===================================================================== */
/* Status and error codes                                                */
/* ===================================================================== */

/* Outcome of tm_plugin.init and tm_handler.execute. Plain int32_t, not a C
 * enum, so its size never depends on compiler flags. */
typedef int32_t tm_status;
#define TM_OK 0        /* done; the result (if any) was set with set_result */
#define TM_RETRY 1     /* transient failure; the host may run the task again */
#define TM_FAIL 2      /* permanent failure; never retried */
#define TM_CANCELLED 3 /* stopped because is_cancelled() returned true */

/* Return codes of host functions: 0 means success. */
#define TM_E_INVALID (-1)     /* bad argument (NULL, bad size, unknown handler) */
#define TM_E_TOO_LARGE (-2)   /* buffer is over the configured limit */
#define TM_E_STATE (-3)       /* not allowed now (e.g. set_result during init) */
#define TM_E_NOT_FOUND (-4)   /* e.g. no checkpoint stored for this task */
#define TM_E_UNAVAILABLE (-5) /* storage or broker unreachable; try again */
#define TM_E_INTERNAL (-6)    /* host bug or fatal condition; see host log */

/* Log levels; the host maps them onto its logger. */
#define TM_LOG_TRACE 0
#define TM_LOG_DEBUG 1
#define TM_LOG_INFO 2
#define TM_LOG_WARN 3
#define TM_LOG_ERROR 4

/* What host->limit() reports the size limit of (ABI 1.1). */
#define TM_LIMIT_RESULT 1     /* set_result */
#define TM_LIMIT_CHECKPOINT 2 /* checkpoint_save */
#define TM_LIMIT_SPAWN 3      /* spawn: the subtask's payload */

/* ===================================================================== */
/* Basic value types                                                     */
/* ===================================================================== */

/* A byte range. Who owns it is stated wherever it is used. */
typedef struct tm_bytes {
    const uint8_t* data;
    size_t size;
} tm_bytes;

/* A UTF-8 string range. It is not necessarily NUL-terminated. */
typedef struct tm_str {
    const char* data;
    size_t size;
} tm_str;

/* Host-side state for one call (init or one execute). Opaque to plugins. */
typedef struct tm_ctx tm_ctx;

/* ===================================================================== */
/* Data handed to the plugin                                             */
/* ===================================================================== */

/* One task to run. Everything in it is BORROWED for the duration of
 * execute(). */
typedef struct tm_task {
    uint32_t struct_size;
    uint32_t attempt;         /* 1 on the first run, 2 on the first retry, ... */
    tm_str task_id;           /* unique and stable across retries */
    tm_str handler;           /* the handler name, without a pinned "@version" */
    tm_bytes payload;         /* msgpack, exactly as the client submitted it */
    int64_t deadline_unix_ms; /* 0 = no deadline; after it, is_cancelled() is true */
    tm_str parent_task_id;    /* empty if the task was not spawned by another task */
} tm_task;

/* Error details, passed to host->set_error(). The host copies everything. */
typedef struct tm_error {
    uint32_t struct_size;
    int32_t code;           /* plugin-defined, sent to the broker; 0 if unused */
    tm_str message;         /* for people; may be empty */
    int64_t retry_after_ms; /* only read for TM_RETRY; < 0 = host default backoff */
} tm_error;

/* A subtask request, passed to host->spawn(). The host copies everything. */
typedef struct tm_spawn_request {
    uint32_t struct_size;
    tm_str handler;   /* target handler name (any plugin) */
    tm_bytes payload; /* msgpack */
    tm_str key;       /* idempotency key, unique within the parent task.
                         If the parent spawns again with the same key (in
                         the same attempt, after a retry or a crash), the
                         broker returns the existing subtask instead of
                         creating a second one. Empty = no deduplication. */
    int64_t delay_ms; /* 0 = runnable immediately */
} tm_spawn_request;

/* ===================================================================== */
/* What the host offers (a function table, filled in by the host)        */
/* ===================================================================== */

/* Every function takes the tm_ctx of the call in progress. During init()
 * every function exists, but only log_enabled, log, set_error and limit do
 * anything (limit gives the same sizes a task sees); is_cancelled returns 0
 * and the others return TM_E_STATE. Calls made after execute() or init()
 * has returned are undefined behaviour (ctx is gone). */
typedef struct tm_host_api {
    uint32_t struct_size;
    uint32_t abi_version; /* the host's TM_ABI_VERSION */

    /* --- ABI 1.0 ------------------------------------------------------ */

    /* Nonzero if a message at `level` would be written. Use it to skip
     * formatting that nobody will read. */
    int32_t (*log_enabled)(tm_ctx* ctx, int32_t level);

    /* Writes one log line, tagged with plugin, handler and task id. Control
     * characters are escaped (a newline cannot start another line); the
     * message is cut at 8 KiB. With the host's log-format = json the line
     * is a JSON object with component "plugin" and the plugin, handler,
     * task and attempt as fields; the message keeps its newlines, escaped
     * by JSON. */
    void (*log)(tm_ctx* ctx, int32_t level, tm_str message);

    /* Nonzero once the task has been cancelled, its deadline has passed, or
     * the worker is stopping (see docs/PLUGINS.md: a task the worker stops
     * and that returns TM_CANCELLED runs again elsewhere). Cheap; call it
     * between units of work and return TM_CANCELLED. */
    int32_t (*is_cancelled)(tm_ctx* ctx);

    /* Reports progress. fraction is in [0, 1], or negative if unknown;
     * NaN, infinities and values over 1 return TM_E_INVALID. The host may
     * rate-limit what it forwards to the broker. */
    int32_t (*report_progress)(tm_ctx* ctx, double fraction, tm_str note);

    /* Stores `state` as this task's checkpoint, replacing the previous one.
     * Returns 0 only after the state is durably committed, so a retry
     * (attempt > 1) will see it in checkpoint_load(). TM_E_TOO_LARGE at
     * once over limit(TM_LIMIT_CHECKPOINT). */
    int32_t (*checkpoint_save)(tm_ctx* ctx, tm_bytes state);

    /* Loads the last checkpoint of this task. On success *out_state is
     * BORROWED until the next checkpoint_* call on this ctx or the end of
     * execute(), whichever comes first. TM_E_NOT_FOUND if none exists. */
    int32_t (*checkpoint_load)(tm_ctx* ctx, tm_bytes* out_state);

    /* Submits a subtask. On success *out_task_id (may be NULL) is BORROWED
     * until execute() returns. TM_E_INVALID, creating nothing, when no
     * worker connected to the broker serves the handler, the request is
     * invalid, or the task no longer runs on this worker (the reason is in
     * the host log); TM_E_UNAVAILABLE if the broker does not answer;
     * TM_E_TOO_LARGE for a payload over limit(TM_LIMIT_SPAWN). */
    int32_t (*spawn)(tm_ctx* ctx, const tm_spawn_request* request, tm_str* out_task_id);

    /* Sets the task result (msgpack). Calling it again replaces the result.
     * TM_E_TOO_LARGE over limit(TM_LIMIT_RESULT): nothing is stored, and a
     * TM_OK return without a later result that fits fails the task. */
    int32_t (*set_result)(tm_ctx* ctx, tm_bytes result);

    /* Attaches details to a TM_RETRY or TM_FAIL return. The last call wins.
     * The message is cut at 64 KiB. */
    int32_t (*set_error)(tm_ctx* ctx, const tm_error* error);

    /* --- ABI 1.1 ------------------------------------------------------ */

    /* The largest buffer, in bytes, the host accepts for `what` (one of
     * TM_LIMIT_*); 0 for a `what` it does not know. set_result,
     * checkpoint_save and spawn return TM_E_TOO_LARGE at once, storing
     * nothing, for anything bigger. Check with TM_HOST_HAS(host, limit). */
    uint64_t (*limit)(tm_ctx* ctx, int32_t what);

    /* --- ABI 1.2 and later: append below this line only --------------- */
} tm_host_api;

/* ===================================================================== */
/* What the plugin offers                                                */
/* ===================================================================== */

/* Runs one task. `plugin_state` is whatever init() stored (NULL if the
 * plugin has no init). Must not throw, must not keep `task`, `host` or
 * `ctx` after returning. */
typedef tm_status (*tm_execute_fn)(void* plugin_state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx);

/* Handler flags. The host rejects a handler that sets a bit it does not
 * know. TM_HANDLER_SERIAL changes how the host runs the handler.
 * TM_HANDLER_IDEMPOTENT is a declaration for operators and tools: the host
 * shows it (taskmill-host --check) and sends it to the broker with the
 * worker's handler list, and nothing else reads it. A task whose worker
 * died is run again whether or not the flag is set (execution is at least
 * once), so every handler must tolerate a re-run from the start. */
#define TM_HANDLER_SERIAL (1u << 0)     /* never run two executes of this handler at once */
#define TM_HANDLER_IDEMPOTENT (1u << 1) /* declares: safe to re-run from the start after a worker crash */

typedef struct tm_handler {
    uint32_t struct_size;
    uint32_t flags;           /* TM_HANDLER_* */
    const char* name;         /* routing key "namespace.name", e.g. "image.resize";
                                 [a-z0-9_-] segments joined by '.'; unique per plugin */
    uint32_t payload_version; /* version of the msgpack schema this handler reads.
                                 Sent to the broker with the worker's handler
                                 list for operators to match clients; nothing
                                 routes or refuses by it. */
    tm_execute_fn execute;
    /* Defaults applied by the broker to a task for this handler whose
     * submit (or spawn, workflow step, schedule) leaves them unset, once a
     * worker serving the handler has connected to that broker (it keeps
     * them in its store). With several versions, those of the newest
     * version the task's handler matches.
     * NULL / 0 / negative mean "no default of the handler's own". */
    const char* default_queue;  /* e.g. "images"; NULL = "default" */
    int64_t default_timeout_ms; /* 0 = none */
    int32_t default_retries;    /* < 0 = broker default */
} tm_handler;

typedef struct tm_plugin {
    uint32_t struct_size;
    uint32_t abi_version; /* TM_ABI_VERSION the plugin was compiled against */
    const char* name;     /* unique per worker, e.g. "imaging" */
    const char* version;  /* the plugin's own version, e.g. "2.3.1" */
    uint32_t handler_count;
    const tm_handler* const* handlers; /* array of handler_count pointers */

    /* Optional (may be NULL). Called once, before any execute(). `config` is
     * a msgpack map, the [plugin.NAME] section of the host's config file
     * (NAME = this descriptor's name; an empty map if there is none), and is
     * BORROWED. On TM_OK the plugin stores its state in *out_state; on any
     * other status the host refuses the plugin, reporting the message given
     * to set_error, does not call shutdown() and closes the library. */
    tm_status (*init)(const tm_host_api* host, tm_ctx* ctx, tm_bytes config, void** out_state);

    /* Optional (may be NULL). Called once, after the last execute() has
     * returned. Must join the plugin's threads and free its state. */
    void (*shutdown)(void* plugin_state);
} tm_plugin;

/* The type of the exported entry point. */
typedef const tm_plugin* (*tm_plugin_entry_fn)(void);

/* ===================================================================== */
/* Plugin-side helpers                                                   */
/* ===================================================================== */

#if defined(_WIN32)
#define TM_EXPORT __declspec(dllexport)
#else
#define TM_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
#define TM_EXTERN_C extern "C"
#else
#define TM_EXTERN_C
#endif

/* Defines the entry point. Use it once per plugin, at file scope, with the
 * name of a static tm_plugin object:
 *
 *     static const tm_plugin my_plugin = { sizeof(tm_plugin), TM_ABI_VERSION, ... };
 *     TM_DECLARE_PLUGIN(my_plugin)
 */
#define TM_DECLARE_PLUGIN(descriptor)                                \
    TM_EXTERN_C TM_EXPORT const tm_plugin* taskmill_plugin_v1(void); \
    TM_EXTERN_C TM_EXPORT const tm_plugin* taskmill_plugin_v1(void) { return &(descriptor); }

/* Initializer for a tm_str from a string literal, for use in declarations:
 *     tm_str note = TM_STR_LIT("resizing");  */
#define TM_STR_LIT(s) \
    { (s), sizeof(s) - 1 }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TASKMILL_PLUGIN_H */
