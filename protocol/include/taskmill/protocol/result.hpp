// taskmill/protocol/result.hpp -- expected outcomes as values.
//
// result<T> holds either a T or a taskmill::error {code, message}. It is the
// return type for everything that can fail for reasons that are not bugs: a
// malformed frame from a peer, a missing key, storage that is full. The
// spellings (has_value, value, error) follow std::expected so that a later
// move to C++23 is a search and replace. Not thread-safe beyond a value type.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace taskmill {

enum class errc {
    invalid_argument,  // the request or frame is malformed or out of range
    not_found,         // no such task, key or worker
    conflict,          // not allowed in the current state
    too_large,         // over a configured size limit
    unavailable,       // storage or peer unreachable; try again
    unsupported,       // valid, but not implemented by this version
    corrupt,           // stored data does not decode
    cancelled,         // the operation was cancelled
    internal,          // a bug or fatal condition; see the log
    unknown_handler,   // no worker serves or has recently offered the handler (strict SUBMIT, SPAWN)
    not_leader,        // a cluster member that does not lead: ask the leader (reply.leader)
};

// The wire name of an error code ("invalid_argument", ...).
std::string_view to_string(errc code) noexcept;
// Inverse of to_string; unknown names map to errc::internal.
errc errc_from_string(std::string_view name) noexcept;

struct error {
    errc code = errc::internal;
    std::string message;
};

// Marker for constructing a failed result: `return fail(errc::not_found, "...")`.
struct failure {
    error err;
};
inline failure fail(errc code, std::string message) { return failure{error{code, std::move(message)}}; }

template <typename T> class result {
public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}    // NOLINT: implicit by design
    result(failure f) : v_(std::in_place_index<1>, std::move(f.err)) {}  // NOLINT

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const taskmill::error& error() const& { return std::get<1>(v_); }

private:
    std::variant<T, taskmill::error> v_;
};

// result<void>: success carries nothing.
template <> class result<void> {
public:
    result() = default;
    result(failure f) : err_(std::move(f.err)), ok_(false) {}  // NOLINT
    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const taskmill::error& error() const& { return err_; }

private:
    taskmill::error err_;
    bool ok_ = true;
};

}  // namespace taskmill
