#include "replication/recording_store.hpp"

#include <utility>

#include "replication/write_set.hpp"
#include "store/keys.hpp"

namespace taskmill::broker::replication {
namespace {

class recording_transaction final : public transaction {
public:
    recording_transaction(std::unique_ptr<transaction> inner, const entry_sink& sink, const index_fn& next_index)
        : inner_(std::move(inner)), sink_(sink), next_index_(next_index) {}

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
        if (next_index_ && !changes_.empty()) {
            std::string at;
            keys::put_u64(at, next_index_());
            if (auto put = this->put(table::meta, keys::meta_applied_index, at); !put) {
                return put;
            }
        }
        auto rc = inner_->commit();
        if (rc && !changes_.empty()) {
            sink_(changes_.take());
        }
        return rc;
    }

private:
    std::unique_ptr<transaction> inner_;
    const entry_sink& sink_;
    const index_fn& next_index_;
    write_set changes_;
};

class recording_store final : public store {
public:
    recording_store(std::unique_ptr<store> owned, store& inner, entry_sink sink, index_fn next_index)
        : owned_(std::move(owned)), inner_(inner), sink_(std::move(sink)), next_index_(std::move(next_index)) {}

    std::unique_ptr<transaction> begin(bool write) override {
        auto txn = inner_.begin(write);
        if (!write) {
            return txn;
        }
        return std::make_unique<recording_transaction>(std::move(txn), sink_, next_index_);
    }
    store_space space() override { return inner_.space(); }
    std::string fill_text() override { return inner_.fill_text(); }

private:
    std::unique_ptr<store> owned_;
    store& inner_;
    entry_sink sink_;
    index_fn next_index_;
};

}  // namespace

std::unique_ptr<store> make_recording_store(std::unique_ptr<store> inner, entry_sink sink) {
    store& ref = *inner;
    return std::make_unique<recording_store>(std::move(inner), ref, std::move(sink), index_fn{});
}

std::unique_ptr<store> make_recording_store(store& inner, entry_sink sink, index_fn next_index) {
    return std::make_unique<recording_store>(nullptr, inner, std::move(sink), std::move(next_index));
}

}  // namespace taskmill::broker::replication
