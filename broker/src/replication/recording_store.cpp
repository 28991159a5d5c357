#include "replication/recording_store.hpp"

#include <utility>

#include "replication/write_set.hpp"

namespace taskmill::broker::replication {
namespace {

class recording_transaction final : public transaction {
public:
    recording_transaction(std::unique_ptr<transaction> inner, const entry_sink& sink)
        : inner_(std::move(inner)), sink_(sink) {}

    result<std::string> get(table t, std::string_view key) override { return inner_->get(t, key); }

    result<void> put(table t, std::string_view key, std::string_view value) override {
        auto rc = inner_->put(t, key, value);
        if (rc) {
            changes_.put(t, key, value);
        }
        return rc;
    }

    result<void> erase(table t, std::string_view key) override {
        auto rc = inner_->erase(t, key);
        if (rc) {
            changes_.erase(t, key);
        }
        return rc;
    }

    result<void> clear(table t) override {
        auto rc = inner_->clear(t);
        if (rc) {
            changes_.clear(t);
        }
        return rc;
    }

    result<void> scan(table t, std::string_view from, bool reverse, const scan_fn& fn) override {
        return inner_->scan(t, from, reverse, fn);
    }

    result<void> commit() override {
        auto rc = inner_->commit();
        if (rc && !changes_.empty()) {
            sink_(changes_.take());
        }
        return rc;
    }

private:
    std::unique_ptr<transaction> inner_;
    const entry_sink& sink_;
    write_set changes_;
};

class recording_store final : public store {
public:
    recording_store(std::unique_ptr<store> inner, entry_sink sink) : inner_(std::move(inner)), sink_(std::move(sink)) {}

    std::unique_ptr<transaction> begin(bool write) override {
        auto txn = inner_->begin(write);
        if (!write) {
            return txn;
        }
        return std::make_unique<recording_transaction>(std::move(txn), sink_);
    }
    store_space space() override { return inner_->space(); }
    std::string fill_text() override { return inner_->fill_text(); }

private:
    std::unique_ptr<store> inner_;
    entry_sink sink_;
};

}  // namespace

std::unique_ptr<store> make_recording_store(std::unique_ptr<store> inner, entry_sink sink) {
    return std::make_unique<recording_store>(std::move(inner), std::move(sink));
}

}  // namespace taskmill::broker::replication
