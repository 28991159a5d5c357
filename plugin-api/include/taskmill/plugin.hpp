// taskmill/plugin.hpp -- header-only C++ layer over the C ABI in plugin.h.
// The one header a C++ plugin includes.
//
// For plugin authors:
//   - plugin/context.hpp: `context` (one execute() call: task, payload,
//     log, cancellation, progress, checkpoints, spawn, result, limits,
//     plugin state) and `init_context` (init(): config and log);
//   - plugin/errors.hpp: retryable_error, permanent_error, too_large_error
//     and `cancelled`, which the trampolines turn into statuses;
//   - plugin/entry.hpp: the noexcept trampolines and the TASKMILL_HANDLER,
//     TASKMILL_PLUGIN and TASKMILL_PLUGIN_WITH_STATE macros;
//   - plugin/mp.hpp: a small msgpack reader/writer (namespace `mp`), so a
//     plugin needs no msgpack library.
// Depends on the standard library only. See docs/PLUGINS.md, section 2.
#pragma once

#include <taskmill/plugin.h>
#include <taskmill/plugin/context.hpp>
#include <taskmill/plugin/entry.hpp>
#include <taskmill/plugin/errors.hpp>
#include <taskmill/plugin/mp.hpp>
