// fd_guard: see fd_guard.hpp.
#include "net/fd_guard.hpp"

#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace taskmill::broker {

namespace {

// "tcp://HOST:PORT" -> (HOST, PORT), "*" and "[::1]" unwrapped; nullopt-ish
// (empty port) for anything else.
std::pair<std::string, std::string> split_tcp(const std::string& endpoint) {
    constexpr std::string_view scheme = "tcp://";
    if (endpoint.rfind(scheme, 0) != 0 || endpoint.find(';') != std::string::npos) {
        return {};
    }
    auto rest = endpoint.substr(scheme.size());
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) {
        return {};
    }
    auto host = rest.substr(0, colon);
    auto port = rest.substr(colon + 1);
    if (host == "*") {
        host.clear();
    } else if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    return {host, port};
}

// A non-blocking socket listening on a loopback port nobody is told of:
// accept() on it says EAGAIN, which ZeroMQ takes in its stride.
int decoy_listener() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 1) != 0)) {
        ::close(fd);
        fd = -1;
    }
    return fd;
}

bool out_of_descriptors(int err) { return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM; }

struct addrinfo_list {
    addrinfo* head = nullptr;
    ~addrinfo_list() {
        if (head != nullptr) {
            ::freeaddrinfo(head);
        }
    }
};

}  // namespace

int open_listener(const std::string& endpoint) {
    auto [host, port] = split_tcp(endpoint);
    if (port.empty() || port == "*") {
        return -1;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo_list found;
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found.head) != 0 ||
        found.head == nullptr) {
        return -1;  // a name or an interface: ZeroMQ resolves those
    }
    // An IPv4 address for "*", as ZeroMQ binds it without ZMQ_IPV6.
    const addrinfo* ai = found.head;
    for (const addrinfo* p = found.head; p != nullptr; p = p->ai_next) {
        if (p->ai_family == AF_INET) {
            ai = p;
            break;
        }
    }
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::runtime_error("cannot bind " + endpoint + ": " + std::strerror(errno));
    }
    int on = 1;
    (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 100) != 0) {
        int err = errno;
        ::close(fd);
        throw std::runtime_error("cannot bind " + endpoint + ": " + std::strerror(err));
    }
    return fd;
}

uint64_t raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 0;
    }
    if (lim.rlim_cur < lim.rlim_max) {
        rlimit raised = lim;
        raised.rlim_cur = lim.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            lim = raised;
        }
    }
    return static_cast<uint64_t>(lim.rlim_cur);
}

fd_guard::fd_guard(zmq::context_t& ctx, spdlog::logger& log)
    : ctx_(ctx), log_(log), reserve_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

fd_guard::~fd_guard() {
    for (const auto& w : watched_) {
        for (int fd : {w.spare_fd, w.decoy_fd}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
    }
}

std::string fd_guard::bind(zmq::socket_t& s, const std::string& endpoint, const std::string& name) {
    int fd = open_listener(endpoint);
    try {
        s.set(zmq::sockopt::use_fd, fd);  // -1: ZeroMQ opens its own
        s.bind(endpoint);
        s.set(zmq::sockopt::use_fd, -1);
    } catch (const zmq::error_t& e) {
        if (fd >= 0) {
            ::close(fd);
        }
        throw std::runtime_error("cannot bind " + endpoint + ": " + e.what());
    }
    std::string bound = s.get(zmq::sockopt::last_endpoint);
    if (fd >= 0) {
        auto addr = "inproc://taskmill-monitor-" + name + "-" + std::to_string(reinterpret_cast<uintptr_t>(this));
        if (zmq_socket_monitor(s.handle(), addr.c_str(), ZMQ_EVENT_ACCEPT_FAILED | ZMQ_EVENT_DISCONNECTED) == 0) {
            watched w{name,
                      bound,
                      fd,
                      ::fcntl(fd, F_DUPFD_CLOEXEC, 0),
                      decoy_listener(),
                      zmq::socket_t(ctx_, zmq::socket_type::pair)};
            w.monitor.set(zmq::sockopt::linger, 0);
            w.monitor.connect(addr);
            watched_.push_back(std::move(w));
        }
    }
    return bound;
}

void fd_guard::poll_items(std::vector<zmq::pollitem_t>& items) {
    for (auto& w : watched_) {
        items.push_back({w.monitor.handle(), 0, ZMQ_POLLIN, 0});
        if (w.backoff_until_ms >= 0) {
            items.push_back({nullptr, w.spare_fd, ZMQ_POLLIN, 0});  // arrivals, drained at once
        }
    }
}

int64_t fd_guard::next_due_ms() const {
    int64_t due = trim_due_ms_;
    for (const auto& w : watched_) {
        if (w.backoff_until_ms >= 0 && (due < 0 || w.backoff_until_ms < due)) {
            due = w.backoff_until_ms;
        }
    }
    return due;
}

void fd_guard::note_disconnect(int64_t now_ms) {
    constexpr uint64_t burst = 64;       // fewer free too little to matter
    constexpr int64_t settle_ms = 1000;  // ZeroMQ frees a connection after its event
    if (++disconnects_ >= burst) {
        trim_due_ms_ = now_ms + settle_ms;  // pushed out while they keep coming
    }
}

void fd_guard::check(int64_t now_ms) {
    if (trim_due_ms_ >= 0 && now_ms >= trim_due_ms_) {
        ::malloc_trim(0);
        trim_due_ms_ = -1;
        disconnects_ = 0;
    }
    for (auto& w : watched_) {
        int err = 0;
        if (read_monitor(w, now_ms, err)) {
            last_err_ = err;
        } else if (w.backoff_until_ms < 0) {
            continue;
        }
        back_off(w, now_ms);
        log_refusals(w, last_err_, now_ms);
    }
}

// Reads the monitor's events; true if an accept failed for lack of
// descriptors (`err` says which errno).
bool fd_guard::read_monitor(watched& w, int64_t now_ms, int& err) {
    bool failed = false;
    zmq::message_t event;
    // An event is two frames: (uint16 event, uint32 errno), endpoint.
    while (w.monitor.recv(event, zmq::recv_flags::dontwait)) {
        if (event.size() >= 6) {
            uint16_t kind = 0;
            uint32_t value = 0;
            std::memcpy(&kind, event.data<char>(), sizeof kind);
            std::memcpy(&value, event.data<char>() + 2, sizeof value);
            if (kind == ZMQ_EVENT_DISCONNECTED) {
                note_disconnect(now_ms);
            } else if (out_of_descriptors(static_cast<int>(value))) {
                err = static_cast<int>(value);
                failed = true;
            }
        }
        while (event.more() && w.monitor.recv(event, zmq::recv_flags::dontwait)) {
        }
    }
    return failed;
}

// Drains what waits with the decoy standing in for ZeroMQ; once a second,
// hands the real socket back if descriptors are free again.
void fd_guard::back_off(watched& w, int64_t now_ms) {
    constexpr int64_t probe_ms = 1000;
    constexpr int headroom = 16;  // free descriptors that make accepting worth it again
    if (w.backoff_until_ms < 0) {
        if (w.spare_fd < 0 || w.decoy_fd < 0 || ::dup3(w.decoy_fd, w.listen_fd, O_CLOEXEC) < 0) {
            return;
        }
        w.backoff_until_ms = now_ms + probe_ms;
    }
    refused_ += drain(w);
    if (now_ms < w.backoff_until_ms) {
        return;
    }
    if (free_descriptors() >= headroom) {
        (void)::dup3(w.spare_fd, w.listen_fd, O_CLOEXEC);  // ZeroMQ accepts on the real socket again
        w.backoff_until_ms = -1;
    } else {
        w.backoff_until_ms = now_ms + probe_ms;
    }
}

void fd_guard::log_refusals(const watched& w, int err, int64_t now_ms) {
    if (logged_once_ && (refused_ == 0 || now_ms < next_log_ms_)) {
        return;
    }
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    log_.error(
        "cannot accept connections on {} ({}): {}; the open-files limit is {}. {} waiting "
        "connection(s) closed at once; they may retry. Raise the limit (ulimit -n, systemd "
        "LimitNOFILE=) or spread clients over more brokers",
        w.name, w.endpoint, std::strerror(err), static_cast<uint64_t>(lim.rlim_cur), refused_);
    logged_once_ = true;
    refused_ = 0;
    next_log_ms_ = now_ms + 60000;  // then a count once a minute at most
}

// Accepts and closes what waits in the listen queue, with the reserve
// descriptor freed for it; ZeroMQ's descriptor number points at the decoy
// meanwhile (back_off), so its accepts (EAGAIN) take none of the freed slots.
std::size_t fd_guard::drain(const watched& w) {
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
        reserve_fd_ = -1;
    }
    std::size_t closed = 0;
    for (;;) {
        int fd = ::accept4(w.spare_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            break;  // empty (EAGAIN), or no slot after all
        }
        ::close(fd);
        ++closed;
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return closed;
}

// Descriptors this process may still open: the limit less those open.
// Reading /proc/self/fd takes one itself: the reserve lends it.
int fd_guard::free_descriptors() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return 0;
    }
    if (reserve_fd_ >= 0) {
        ::close(reserve_fd_);
        reserve_fd_ = -1;
    }
    std::error_code ec;
    int open = 0;
    for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end; it.increment(ec)) {
        ++open;
    }
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return ec ? 0 : static_cast<int>(lim.rlim_cur) - open;
}

}  // namespace taskmill::broker
