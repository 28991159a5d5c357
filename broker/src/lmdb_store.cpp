// The LMDB implementation of the store: one environment, one named database
// per table. LMDB error codes are translated to errc here and nowhere else.
#include <taskmill/broker/store.hpp>

#include <array>
#include <filesystem>
#include <stdexcept>

#include <lmdb.h>

namespace taskmill::broker {
namespace {

constexpr std::array<const char*, table_count> table_names = {"tasks", "ready", "delayed", "running",
                                                              "keys",  "meta",  "tags"};

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

    result<void> erase(table t, std::string_view key) override {
        MDB_val k = to_val(key);
        int rc = mdb_del(txn_, dbi(t), &k, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return translate("del", rc);
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
        int rc = mdb_txn_commit(txn_);
        txn_ = nullptr;  // committed or not, LMDB has freed it
        if (rc != 0) {
            return translate("commit", rc);
        }
        return {};
    }

private:
    MDB_dbi dbi(table t) const { return dbis_[static_cast<std::size_t>(t)]; }

    // Places the cursor on the first entry to visit (see transaction::scan).
    static int position(MDB_cursor* cur, std::string_view from, bool reverse, MDB_val& k, MDB_val& v) {
        if (!reverse) {
            return from.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                                : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
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
};

class lmdb_store final : public store {
public:
    explicit lmdb_store(const lmdb_options& opts) : map_size_(opts.map_size_bytes) {
        std::filesystem::create_directories(opts.dir);
        check("mdb_env_create", mdb_env_create(&env_));
        check("mdb_env_set_maxdbs", mdb_env_set_maxdbs(env_, table_count + 2));
        check("mdb_env_set_mapsize", mdb_env_set_mapsize(env_, static_cast<std::size_t>(opts.map_size_bytes)));
        // NOTLS: read transactions may later be used from other threads (HTTP).
        unsigned flags = MDB_NOTLS;
        if (opts.mode == durability::none) {
            flags |= MDB_NOSYNC;
        }
        int rc = mdb_env_open(env_, opts.dir.c_str(), flags, 0644);
        if (rc != 0) {
            mdb_env_close(env_);
            throw std::runtime_error("cannot open LMDB environment in " + opts.dir + ": " + mdb_strerror(rc));
        }
        open_tables();
    }
    ~lmdb_store() override { mdb_env_close(env_); }
    lmdb_store(const lmdb_store&) = delete;
    lmdb_store& operator=(const lmdb_store&) = delete;

    std::unique_ptr<transaction> begin(bool write) override {
        MDB_txn* txn = nullptr;
        check("mdb_txn_begin", mdb_txn_begin(env_, nullptr, write ? 0u : MDB_RDONLY, &txn));
        return std::make_unique<lmdb_transaction>(txn, dbis_);
    }

    double fill_ratio() override {
        MDB_envinfo info{};
        MDB_stat st{};
        if (mdb_env_info(env_, &info) != 0 || mdb_env_stat(env_, &st) != 0 || map_size_ == 0) {
            return 0;
        }
        return static_cast<double>(info.me_last_pgno + 1) * st.ms_psize / static_cast<double>(map_size_);
    }

private:
    void open_tables() {
        MDB_txn* txn = nullptr;
        check("mdb_txn_begin", mdb_txn_begin(env_, nullptr, 0, &txn));
        for (std::size_t i = 0; i < table_count; ++i) {
            int rc = mdb_dbi_open(txn, table_names[i], MDB_CREATE, &dbis_[i]);
            if (rc != 0) {
                mdb_txn_abort(txn);
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

    MDB_env* env_ = nullptr;
    uint64_t map_size_;
    std::array<MDB_dbi, table_count> dbis_{};
};

}  // namespace

std::unique_ptr<store> open_lmdb_store(const lmdb_options& opts) { return std::make_unique<lmdb_store>(opts); }

}  // namespace taskmill::broker
