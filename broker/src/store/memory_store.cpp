// An in-memory store for unit tests: std::map tables, copy-on-begin for
// write transactions (simple and correct; tests hold little data). It runs
// the engine in tests, so it keeps LMDB's rules where a caller can see them
// (tests/unit/broker/store_contract_test.cpp runs both): byte order, the
// key sizes LMDB refuses, read transactions that refuse writes, and scans
// that go on over a table changed under them. A second write transaction
// while one is open, which LMDB would make wait (for ever, in the same
// thread), throws instead of silently losing one of the two.
#include <taskmill/broker/store.hpp>

#include <array>
#include <map>
#include <mutex>
#include <stdexcept>

namespace taskmill::broker {
namespace {

using table_data = std::array<std::map<std::string, std::string, std::less<>>, table_count>;
using table_map = table_data::value_type;

// LMDB's default largest key (mdb_env_get_maxkeysize).
constexpr std::size_t max_key_size = 511;

// What the store shares with its transactions.
struct shared_state {
    table_data live;
    std::mutex mu;
    bool writing = false;  // a write transaction is open
};

class memory_transaction final : public transaction {
public:
    memory_transaction(shared_state& shared, bool write) : shared_(shared), write_(write) {
        std::lock_guard lock(shared_.mu);
        if (write_ && shared_.writing) {
            throw std::runtime_error("memory store: a write transaction is already open");
        }
        shared_.writing = shared_.writing || write_;
        copy_ = shared_.live;
    }
    ~memory_transaction() override { end(); }
    memory_transaction(const memory_transaction&) = delete;
    memory_transaction& operator=(const memory_transaction&) = delete;

    result<std::string> get(table t, std::string_view key) override {
        if (key.empty()) {
            return fail(errc::too_large, "get: empty key");
        }
        auto& m = copy_[idx(t)];
        auto it = m.find(key);
        if (it == m.end()) {
            return fail(errc::not_found, "not found");
        }
        return it->second;
    }
    result<void> put(table t, std::string_view key, std::string_view value) override {
        if (!write_) {
            return fail(errc::internal, "put: read-only transaction");
        }
        if (key.empty() || key.size() > max_key_size) {
            return fail(errc::too_large, "put: key of " + std::to_string(key.size()) + " bytes");
        }
        copy_[idx(t)].insert_or_assign(std::string(key), std::string(value));
        return {};
    }
    result<void> erase(table t, std::string_view key) override {
        if (!write_) {
            return fail(errc::internal, "del: read-only transaction");
        }
        if (key.empty()) {
            return fail(errc::too_large, "del: empty key");
        }
        auto& m = copy_[idx(t)];
        if (auto it = m.find(key); it != m.end()) {
            m.erase(it);
        }
        return {};
    }
    result<void> clear(table t) override {
        if (!write_) {
            return fail(errc::internal, "drop: read-only transaction");
        }
        copy_[idx(t)].clear();
        return {};
    }
    // Each step looks the next key up afresh from the one just visited, so
    // `fn` may put or erase in the table (the visited entry too), as an LMDB
    // cursor allows.
    result<void> scan(table t, std::string_view from, bool reverse, const scan_fn& fn) override {
        auto& m = copy_[idx(t)];
        auto it = first(m, from, reverse);
        while (it != m.end()) {
            const std::string key = it->first;
            const std::string value = it->second;
            if (!fn(key, value)) {
                break;
            }
            it = next(m, key, reverse);
        }
        return {};
    }
    result<void> commit() override {
        if (write_ && open_) {
            std::lock_guard lock(shared_.mu);
            shared_.live = std::move(copy_);
        }
        end();
        return {};
    }

private:
    static std::size_t idx(table t) { return static_cast<std::size_t>(t); }

    // The first entry a scan visits (see transaction::scan), or end().
    static table_map::iterator first(table_map& m, std::string_view from, bool reverse) {
        if (!reverse) {
            return m.lower_bound(from);
        }
        auto it = from.empty() ? m.end() : m.upper_bound(from);
        return it == m.begin() ? m.end() : std::prev(it);
    }

    static table_map::iterator next(table_map& m, const std::string& after, bool reverse) {
        if (!reverse) {
            return m.upper_bound(after);
        }
        auto it = m.lower_bound(after);
        return it == m.begin() ? m.end() : std::prev(it);
    }

    // Committed or aborted: another write transaction may begin.
    void end() {
        if (write_ && open_) {
            std::lock_guard lock(shared_.mu);
            shared_.writing = false;
        }
        open_ = false;
    }

    shared_state& shared_;
    bool write_;
    bool open_ = true;
    table_data copy_;
};

class memory_store final : public store {
public:
    std::unique_ptr<transaction> begin(bool write) override {
        return std::make_unique<memory_transaction>(shared_, write);
    }

private:
    shared_state shared_;
};

}  // namespace

std::unique_ptr<store> make_memory_store() { return std::make_unique<memory_store>(); }

}  // namespace taskmill::broker
