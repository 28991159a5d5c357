// The LMDB implementation of the store: one environment, one named database
// per table. LMDB error codes are translated to errc here and nowhere else.
#include <taskmill/broker/store.hpp>

#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <lmdb.h>

#include "store/store_guard.hpp"

namespace taskmill::broker {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, table_count> table_names = {"tasks",  "ready",    "delayed",   "running",   "keys",
                                                              "meta",   "tags",     "workflows", "schedules", "index",
                                                              "expiry", "settings", "jobs"};

std::vector<std::string> table_names_list() { return {table_names.begin(), table_names.end()}; }

std::string lmdb_message(const char* what, int rc) { return std::string(what) + ": " + mdb_strerror(rc); }

failure translate(const char* what, int rc) {
    if (rc == MDB_NOTFOUND) {
        return fail(errc::not_found, lmdb_message(what, rc));
    }
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        return fail(errc::unavailable, lmdb_message(what, rc));
    }
    if (rc == MDB_BAD_VALSIZE) {
        return fail(errc::too_large, lmdb_message(what, rc));
    }
    if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
        return fail(errc::corrupt, lmdb_message(what, rc));
    }
    return fail(errc::internal, lmdb_message(what, rc));
}

MDB_val to_val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view to_view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

class lmdb_transaction final : public transaction {
public:
    lmdb_transaction(MDB_txn* txn, const std::array<MDB_dbi, table_count>& dbis) : txn_(txn), dbis_(dbis) {}
    ~lmdb_transaction() override {
        if (txn_ != nullptr) {
            close_erasers();
            mdb_txn_abort(txn_);
        }
    }
    lmdb_transaction(const lmdb_transaction&) = delete;
    lmdb_transaction& operator=(const lmdb_transaction&) = delete;

    result<std::string> get(table t, std::string_view key) override {
        MDB_val k = to_val(key);
        MDB_val v{};
        int rc = mdb_get(txn_, dbi(t), &k, &v);
        if (rc != 0) {
            return translate("get", rc);
        }
        return std::string(to_view(v));
    }

    result<void> put(table t, std::string_view key, std::string_view value) override {
        MDB_val k = to_val(key);
        MDB_val v = to_val(value);
        int rc = mdb_put(txn_, dbi(t), &k, &v, 0);
        if (rc != 0) {
            return translate("put", rc);
        }
        return {};
    }

    // Through one cursor per table, kept for the transaction: LMDB looks
    // first on the page the cursor is on, so erasing keys near each other
    // (a batch of the retention sweep) skips most of the descent from the
    // root that mdb_del makes every time.
    result<void> erase(table t, std::string_view key) override {
        MDB_cursor*& cur = erasers_[static_cast<std::size_t>(t)];
        if (cur == nullptr) {
            if (int rc = mdb_cursor_open(txn_, dbi(t), &cur); rc != 0) {
                cur = nullptr;
                return translate("cursor_open", rc);
            }
        }
        MDB_val k = to_val(key);
        MDB_val v{};
        int rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        if (rc == 0) {
            rc = mdb_cursor_del(cur, 0);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return translate("del", rc);
        }
        return {};
    }

    result<void> clear(table t) override {
        MDB_cursor*& cur = erasers_[static_cast<std::size_t>(t)];
        if (cur != nullptr) {
            mdb_cursor_close(cur);  // its pages go with the table's
            cur = nullptr;
        }
        if (int rc = mdb_drop(txn_, dbi(t), 0); rc != 0) {
            return translate("drop", rc);
        }
        return {};
    }

    result<void> scan(table t, std::string_view from, bool reverse, const scan_fn& fn) override {
        MDB_cursor* cur = nullptr;
        int rc = mdb_cursor_open(txn_, dbi(t), &cur);
        if (rc != 0) {
            return translate("cursor_open", rc);
        }
        MDB_val k = to_val(from);
        MDB_val v{};
        rc = position(cur, from, reverse, k, v);
        while (rc == 0 && fn(to_view(k), to_view(v))) {
            rc = mdb_cursor_get(cur, &k, &v, reverse ? MDB_PREV : MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return translate("cursor_get", rc);
        }
        return {};
    }

    result<void> commit() override {
        close_erasers();
        int rc = mdb_txn_commit(txn_);
        txn_ = nullptr;  // committed or not, LMDB has freed it
        if (rc != 0) {
            return translate("commit", rc);
        }
        return {};
    }

private:
    MDB_dbi dbi(table t) const { return dbis_[static_cast<std::size_t>(t)]; }

    void close_erasers() {
        for (auto*& cur : erasers_) {
            if (cur != nullptr) {
                mdb_cursor_close(cur);
                cur = nullptr;
            }
        }
    }

    // Places the cursor on the first entry to visit (see transaction::scan).
    static int position(MDB_cursor* cur, std::string_view from, bool reverse, MDB_val& k, MDB_val& v) {
        if (!reverse) {
            return from.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
        if (from.empty()) {
            return mdb_cursor_get(cur, &k, &v, MDB_LAST);
        }
        int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND) {
            return mdb_cursor_get(cur, &k, &v, MDB_LAST);
        }
        if (rc == 0 && to_view(k) != from) {
            return mdb_cursor_get(cur, &k, &v, MDB_PREV);  // first key > from: step back
        }
        return rc;
    }

    MDB_txn* txn_;
    const std::array<MDB_dbi, table_count>& dbis_;
    // The cursors erase() keeps, closed before the transaction ends.
    std::array<MDB_cursor*, table_count> erasers_{};
};

// Mebibytes, for messages.
std::string mib(double bytes) {
    char buf[32];
    const double m = bytes / (1 << 20);
    std::snprintf(buf, sizeof buf, m < 10 ? "%.2f MiB" : "%.0f MiB", m);
    return buf;
}

class lmdb_store final : public store {
public:
    explicit lmdb_store(const lmdb_options& opts) : dir_(opts.dir), lock_(prepare(opts)) {
        refuse_lost_data(dir_, had_lock_file_, opts.allow_empty);
        check("mdb_env_create", mdb_env_create(&env_));
        check("mdb_env_set_maxdbs", mdb_env_set_maxdbs(env_, table_count + 2));
        check("mdb_env_set_mapsize", mdb_env_set_mapsize(env_, static_cast<std::size_t>(opts.map_size_bytes)));
        // NOTLS: a reader slot belongs to its read transaction, not to the
        // thread, so store.hpp's rule (a transaction belongs to the thread
        // that began it, nothing more) holds: a thread may begin several read
        // transactions, also beside its write one. Only --check-store reads
        // today; HTTP threads never touch the store (docs/DESIGN.md, "The
        // HTTP bridge").
        unsigned flags = MDB_NOTLS;
        if (opts.mode == durability::none) {
            flags |= MDB_NOSYNC;
        }
        int rc = mdb_env_open(env_, opts.dir.c_str(), flags, 0644);
        if (rc != 0) {
            mdb_env_close(env_);
            if (is_damage(rc)) {
                throw_damaged(dir_, std::string("cannot open it: ") + mdb_strerror(rc));
            }
            throw std::runtime_error("cannot open LMDB environment in " + opts.dir + ": " + mdb_strerror(rc));
        }
        try {
            check_file_size();
            auto bad = read_all_tables_aside(dir_, table_names_list());
            int dead = 0;
            mdb_reader_check(env_, &dead);  // the reader's slot, had it died reading
            if (bad) {
                throw_damaged(dir_, *bad);
            }
            open_tables();
        } catch (...) {
            mdb_env_close(env_);
            throw;
        }
    }
    ~lmdb_store() override { mdb_env_close(env_); }
    lmdb_store(const lmdb_store&) = delete;
    lmdb_store& operator=(const lmdb_store&) = delete;

    std::unique_ptr<transaction> begin(bool write) override {
        MDB_txn* txn = nullptr;
        check("mdb_txn_begin", mdb_txn_begin(env_, nullptr, write ? 0u : MDB_RDONLY, &txn));
        return std::make_unique<lmdb_transaction>(txn, dbis_);
    }

    store_space space() override {
        MDB_envinfo info{};
        MDB_stat st{};
        store_space f;
        if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &st) != 0) {
            return f;
        }
        f.used = static_cast<double>(info.me_last_pgno + 1) * st.ms_psize;
        f.map = static_cast<double>(info.me_mapsize);  // LMDB keeps the larger of ours and the file's
        f.capacity = f.map;
        struct statvfs vfs {};
        std::error_code ec;
        auto size = fs::file_size(dir_ / "data.mdb", ec);
        if (::statvfs(dir_.c_str(), &vfs) == 0 && !ec) {
            f.disk_free = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize);
            f.capacity = std::min(f.capacity, static_cast<double>(size) + f.disk_free);
        }
        return f;
    }

    std::string fill_text() override {
        auto f = space();
        return mib(f.used) + " used of " + mib(f.capacity) + " (map " + mib(f.map) + ", free disk " + mib(f.disk_free) +
               ")";
    }

private:
    // Creates the folder and takes its lock, noting first whether an earlier
    // store left its lock file there (see refuse_lost_data).
    std::unique_ptr<dir_lock> prepare(const lmdb_options& opts) {
        fs::create_directories(opts.dir);
        std::error_code ec;
        had_lock_file_ = fs::exists(fs::path(opts.dir) / "broker.lock", ec);
        return std::make_unique<dir_lock>(opts.dir);
    }

    // LMDB has read only the meta pages so far. A file shorter than the
    // last page its newest meta names would end in SIGBUS at the first read
    // through the map.
    void check_file_size() {
        MDB_envinfo info{};
        MDB_stat st{};
        check("mdb_env_info", mdb_env_info(env_, &info));
        check("mdb_env_stat", mdb_env_stat(env_, &st));
        const uint64_t need = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
        std::error_code ec;
        const auto have = fs::file_size(dir_ / "data.mdb", ec);
        if (!ec && have < need) {
            throw_damaged(dir_, "data.mdb is truncated: it has " + std::to_string(have) +
                                    " bytes, but its last commit uses " + std::to_string(need) + " (up to page " +
                                    std::to_string(info.me_last_pgno) + ")");
        }
    }

    void open_tables() {
        MDB_txn* txn = nullptr;
        check("mdb_txn_begin", mdb_txn_begin(env_, nullptr, 0, &txn));
        for (std::size_t i = 0; i < table_count; ++i) {
            int rc = mdb_dbi_open(txn, table_names[i], MDB_CREATE, &dbis_[i]);
            if (rc != 0) {
                mdb_txn_abort(txn);
                if (is_damage(rc)) {
                    throw_damaged(dir_,
                                  std::string("table ") + table_names[i] + " cannot be opened: " + mdb_strerror(rc));
                }
                check("mdb_dbi_open", rc);
            }
        }
        check("mdb_txn_commit", mdb_txn_commit(txn));
    }

    void check(const char* what, int rc) {
        if (rc != 0) {
            throw std::runtime_error(lmdb_message(what, rc));
        }
    }

    fs::path dir_;
    bool had_lock_file_ = false;
    std::unique_ptr<dir_lock> lock_;  // released after the environment is closed
    MDB_env* env_ = nullptr;
    std::array<MDB_dbi, table_count> dbis_{};
};

}  // namespace

std::unique_ptr<store> open_lmdb_store(const lmdb_options& opts) { return std::make_unique<lmdb_store>(opts); }

}  // namespace taskmill::broker
