// An in-memory store for unit tests: std::map tables, copy-on-begin for
// write transactions (simple and correct; tests hold little data).
#include <taskmill/broker/store.hpp>

#include <array>
#include <map>
#include <mutex>

namespace taskmill::broker {
namespace {

using table_data = std::array<std::map<std::string, std::string, std::less<>>, table_count>;

class memory_transaction final : public transaction {
public:
    memory_transaction(table_data& live, std::mutex& mu, bool write)
        : live_(live), mu_(mu), write_(write) {
        std::lock_guard lock(mu_);
        copy_ = live_;
    }

    result<std::string> get(table t, std::string_view key) override {
        auto& m = copy_[idx(t)];
        auto it = m.find(key);
        if (it == m.end()) {
            return fail(errc::not_found, "not found");
        }
        return it->second;
    }
    result<void> put(table t, std::string_view key, std::string_view value) override {
        copy_[idx(t)].insert_or_assign(std::string(key), std::string(value));
        return {};
    }
    result<void> erase(table t, std::string_view key) override {
        auto& m = copy_[idx(t)];
        if (auto it = m.find(key); it != m.end()) {
            m.erase(it);
        }
        return {};
    }
    result<void> scan(table t, std::string_view from, bool reverse, const scan_fn& fn) override {
        auto& m = copy_[idx(t)];
        if (!reverse) {
            for (auto it = m.lower_bound(from); it != m.end(); ++it) {
                if (!fn(it->first, it->second)) {
                    break;
                }
            }
            return {};
        }
        auto it = from.empty() ? m.end() : m.upper_bound(from);
        while (it != m.begin()) {
            --it;
            if (!fn(it->first, it->second)) {
                break;
            }
        }
        return {};
    }
    result<void> commit() override {
        if (write_) {
            std::lock_guard lock(mu_);
            live_ = std::move(copy_);
        }
        return {};
    }

private:
    static std::size_t idx(table t) { return static_cast<std::size_t>(t); }
    table_data& live_;
    std::mutex& mu_;
    bool write_;
    table_data copy_;
};

class memory_store final : public store {
public:
    std::unique_ptr<transaction> begin(bool write) override {
        return std::make_unique<memory_transaction>(data_, mu_, write);
    }
    double fill_ratio() override { return 0; }

private:
    table_data data_;
    std::mutex mu_;
};

}  // namespace

std::unique_ptr<store> make_memory_store() { return std::make_unique<memory_store>(); }

}  // namespace taskmill::broker
