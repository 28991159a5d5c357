// The broker at its open-files limit.
//
// libzmq retries a failed accept() at once for as long as a connection
// waits in the listen queue: at the limit, its I/O thread spins at full
// CPU and the waiting clients hang. So the broker opens its TCP listening
// sockets itself and hands them to ZeroMQ (ZMQ_USE_FD); a socket monitor
// tells it when an accept fails, and it then empties the listen queue
// itself, with one descriptor it keeps in reserve for that: those clients
// are disconnected at once (they retry later), the spin stops, and one line
// in the log says what happened and what to do. ZeroMQ's spinning accept
// would win every descriptor freed for that, so while the queue is emptied
// its descriptor number points at a decoy listening socket (dup3), and the
// queue is read through a duplicate of the real one. The decoy then stays
// (back-off): the loop polls the real socket itself and closes what
// arrives at once, because ZeroMQ's poller still sees the real socket
// ready and would spin on every new arrival until the loop drained it.
// Once a second's check finds descriptors free again, ZeroMQ gets the real
// socket back.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace spdlog {
class logger;
}

namespace taskmill::broker {

// A socket listening on a tcp:// endpoint, or -1 if `endpoint` is not one
// this can open (another transport, an interface name): ZeroMQ binds those
// itself. Throws std::runtime_error when the bind fails.
int open_listener(const std::string& endpoint);

// Raises the soft open-files limit to the hard one; returns the limit.
uint64_t raise_fd_limit();

class fd_guard {
public:
    fd_guard(zmq::context_t& ctx, spdlog::logger& log);
    ~fd_guard();
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;

    // Binds `s` to `endpoint`, through a listener of our own when it is TCP,
    // and watches its accepts. Returns what ZeroMQ reports as bound.
    std::string bind(zmq::socket_t& s, const std::string& endpoint, const std::string& name);
    // The monitor sockets, for the loop's poll.
    void poll_items(std::vector<zmq::pollitem_t>& items);
    // Reads the monitors; after a failed accept, empties the listen queues.
    void check(int64_t now_ms);
    // When check() wants to run next (a memory trim or a back-off check is
    // due), or -1.
    int64_t next_due_ms() const;

private:
    struct watched {
        std::string name;
        std::string endpoint;
        int listen_fd = -1;  // the number ZeroMQ accepts on
        int spare_fd = -1;   // the same listening socket, ours
        int decoy_fd = -1;   // a listening socket nobody connects to
        zmq::socket_t monitor;
        int64_t backoff_until_ms = -1;  // >= 0: the decoy stands in, we drain
    };
    std::size_t drain(const watched& w);
    bool read_monitor(watched& w, int64_t now_ms, int& err);
    void back_off(watched& w, int64_t now_ms);
    void log_refusals(const watched& w, int err, int64_t now_ms);
    int free_descriptors();
    void note_disconnect(int64_t now_ms);

    zmq::context_t& ctx_;
    spdlog::logger& log_;
    std::vector<watched> watched_;
    int reserve_fd_ = -1;
    int last_err_ = EMFILE;  // why the last accept failed
    uint64_t refused_ = 0;   // connections closed since the last log line
    int64_t next_log_ms_ = 0;
    bool logged_once_ = false;
    // glibc keeps the heap that closed connections freed (about 27 KiB
    // each) unless asked: after a burst of disconnects, once they settle,
    // malloc_trim gives it back.
    uint64_t disconnects_ = 0;
    int64_t trim_due_ms_ = -1;
};

}  // namespace taskmill::broker
