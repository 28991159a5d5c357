// taskmill/plugin/errors.hpp -- what a C++ handler (or a plugin state's
// constructor) throws to say how it ended. Part of plugin.hpp (include that).
// The trampolines turn each into a tm_status, with the message and code
// passed to host->set_error():
//
//   retryable_error  -> TM_RETRY  (message, code, optional delay)
//   permanent_error  -> TM_FAIL   (message, code)
//   too_large_error  -> TM_FAIL   (a permanent_error: the host refused a
//                                  buffer over its size limit)
//   cancelled        -> TM_CANCELLED
//   any other std::exception -> TM_FAIL with what(); anything else TM_FAIL.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace taskmill::plugin {

// The base of the errors that carry a plugin-defined code (tm_error.code).
class handler_error : public std::runtime_error {
public:
    handler_error(int32_t code, const std::string& what) : std::runtime_error(what), code_(code) {}
    int32_t code() const noexcept { return code_; }

private:
    int32_t code_;
};

// A transient failure: the task is retried, after `delay` if given (else
// the host's backoff).
class retryable_error : public handler_error {
public:
    explicit retryable_error(const std::string& what, std::optional<std::chrono::milliseconds> delay = std::nullopt)
        : retryable_error(0, what, delay) {}
    retryable_error(int32_t code, const std::string& what,
                    std::optional<std::chrono::milliseconds> delay = std::nullopt)
        : handler_error(code, what), delay_(delay) {}
    std::optional<std::chrono::milliseconds> delay() const noexcept { return delay_; }

private:
    std::optional<std::chrono::milliseconds> delay_;
};

// A permanent failure: the task fails and is never retried.
class permanent_error : public handler_error {
public:
    explicit permanent_error(const std::string& what) : handler_error(0, what) {}
    permanent_error(int32_t code, const std::string& what) : handler_error(code, what) {}
};

// The host refused a buffer (result, checkpoint, subtask payload) over its
// size limit (TM_E_TOO_LARGE); nothing was stored. Retrying would fail the
// same way, so uncaught it fails the task; catch it to fall back (store the
// data elsewhere and return a reference, say).
class too_large_error : public permanent_error {
public:
    too_large_error(const std::string& what, uint64_t size, uint64_t limit)
        : permanent_error(what), size_(size), limit_(limit) {}
    uint64_t size() const noexcept { return size_; }
    // The host's limit in bytes; 0 if the host does not say.
    uint64_t limit() const noexcept { return limit_; }

private:
    uint64_t size_;
    uint64_t limit_;
};

// Thrown to stop a task that was cancelled (or whose deadline passed):
// the trampoline returns TM_CANCELLED. Not a std::exception, so a handler's
// `catch (const std::exception&)` does not swallow it. See
// context::throw_if_cancelled().
struct cancelled {};

}  // namespace taskmill::plugin
