// The folder lock, the lost-data check and the full read of a store (see
// store_guard.hpp).
#include "store/store_guard.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <lmdb.h>

#include <taskmill/broker/store.hpp>

namespace taskmill::broker {

namespace fs = std::filesystem;

dir_lock::dir_lock(const fs::path& dir) : path_(dir / "broker.lock") {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw std::runtime_error("cannot open " + path_.string() + ": " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        ::close(fd_);
        if (err == EWOULDBLOCK) {
            throw store_busy("data folder " + dir.string() + " is in use by another process (pid " + holder() +
                             " holds " + path_.string() + "); stop it first, or give this broker another --data-dir");
        }
        throw std::runtime_error("cannot lock " + path_.string() + ": " + std::strerror(err));
    }
    // The pid is only a hint for the message above; the lock holds without it.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
        [[maybe_unused]] auto n = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
}

dir_lock::~dir_lock() { ::close(fd_); }

std::string dir_lock::holder() const {
    std::ifstream in(path_);
    std::string pid;
    in >> pid;
    return pid.empty() ? "unknown" : pid;
}

bool is_damage(int rc) {
    return rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
           rc == MDB_INCOMPATIBLE;
}

void throw_damaged(const fs::path& dir, const std::string& what) {
    const std::string d = dir.string();
    throw store_damaged("store in " + d + " is damaged: " + what +
                        ". Keep the folder as it is and restore data.mdb from a backup (docs/OPERATIONS.md, "
                        "\"Damaged store\"), or salvage what can still be read into a new folder: mdb_dump -a " +
                        d + " > taskmill.dump && mkdir " + d + ".new && mdb_load -f taskmill.dump " + d +
                        ".new, then start with --data-dir " + d + ".new.");
}

void refuse_lost_data(const fs::path& dir, bool had_lock_file, bool allow_empty) {
    std::error_code ec;
    const auto data = dir / "data.mdb";
    if (allow_empty || !fs::exists(data, ec) || fs::file_size(data, ec) != 0 || ec) {
        return;
    }
    std::string sign = had_lock_file ? "broker.lock" : "";
    for (const char* s : {"lock.mdb", "endpoints.json"}) {
        if (sign.empty() && fs::exists(dir / s, ec)) {
            sign = s;
        }
    }
    if (!sign.empty()) {
        throw store_damaged("store in " + dir.string() +
                            " is damaged: data.mdb is empty (0 bytes) but the folder "
                            "held a store before (" +
                            sign +
                            " is there): its tasks are lost. Restore data.mdb "
                            "from a backup (docs/OPERATIONS.md, \"Damaged store\"), or start with "
                            "--allow-empty-store to begin again with an empty store.");
    }
}

namespace {

int read_table(MDB_txn* txn, MDB_dbi dbi) {
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return rc;
    }
    MDB_val k{};
    MDB_val v{};
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

void say(int fd, const std::string& line) {
    const std::string l = line + "\n";
    [[maybe_unused]] auto n = ::write(fd, l.data(), l.size());
}

// The child: opens its own read-only environment (never the parent's: LMDB
// forbids using an environment across fork), reads, reports on `fd`:
// "at WHERE" before each table, "bad WHAT" on an error.
[[noreturn]] void child_read(int fd, const fs::path& dir, const std::vector<std::string>& tables) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    int rc = mdb_env_create(&env);
    if (rc == 0) {
        rc = mdb_env_set_maxdbs(env, static_cast<MDB_dbi>(tables.size() + 2));
    }
    say(fd, "at the main table");
    if (rc == 0) {
        rc = mdb_env_open(env, dir.c_str(), MDB_RDONLY, 0644);
    }
    if (rc == 0) {
        rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
    }
    if (rc != 0) {
        say(fd, std::string("bad cannot open it: ") + mdb_strerror(rc));
        ::_exit(1);
    }
    say(fd, "at the free list");
    if (rc = read_table(txn, 0); rc != 0) {
        say(fd, std::string("bad the free list cannot be read: ") + mdb_strerror(rc));
        ::_exit(1);
    }
    for (const auto& name : tables) {
        say(fd, "at table " + name);
        MDB_dbi dbi = 0;
        rc = mdb_dbi_open(txn, name.c_str(), 0, &dbi);
        if (rc == MDB_NOTFOUND) {
            continue;  // a new store: created by the broker after this check
        }
        if (rc == 0) {
            rc = read_table(txn, dbi);
        }
        if (rc != 0) {
            say(fd, "bad table " + name + " cannot be read: " + mdb_strerror(rc));
            ::_exit(1);
        }
    }
    // Frees the reader slot: a slot left behind would pin the pages of this
    // snapshot and keep LMDB from reusing freed pages.
    mdb_txn_abort(txn);
    mdb_env_close(env);
    ::_exit(0);
}

}  // namespace

std::optional<std::string> read_all_tables_aside(const fs::path& dir, const std::vector<std::string>& tables) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
        ::close(fds[0]);
        child_read(fds[1], dir, tables);
    }
    ::close(fds[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    // The last line says where the reader was, or what it found.
    std::string last;
    for (std::size_t pos = 0, nl; (nl = out.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        last = out.substr(pos, nl - pos);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return std::nullopt;
    }
    if (last.rfind("bad ", 0) == 0) {
        return last.substr(4);
    }
    const std::string where = last.rfind("at ", 0) == 0 ? last.substr(3) : "the store";
    if (WIFSIGNALED(status)) {
        return "reading " + where + " stopped the reader with signal " + std::to_string(WTERMSIG(status)) + " (" +
               strsignal(WTERMSIG(status)) + "): a page is damaged";
    }
    return "reading " + where + " failed";
}

}  // namespace taskmill::broker
