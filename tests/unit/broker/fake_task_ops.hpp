// A stand-in for the engine as its clients (workflow_engine,
// schedule_engine) see it: a settable clock, the tasks submitted, counters,
// events, replies, and the in-memory store's transaction for their tables.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "engine/task_ops.hpp"

namespace tmtest {

using namespace taskmill;
using namespace taskmill::broker;

class fake_ops final : public task_ops {
public:
    fake_ops() : store_(make_memory_store()), txn_(store_->begin(true)), bus_(events_) {}

    int64_t now() const override { return now_; }
    task_id new_id() override {
        task_id id{};
        id[15] = static_cast<uint8_t>(++ids_);
        return id;
    }
    std::optional<std::string> new_work_refused() override { return refuse_; }
    task_record submit(const protocol::task_spec& spec) override {
        submitted.push_back(spec);
        task_record r;
        r.id = new_id();
        r.handler = spec.handler;
        r.parent = spec.parent;
        r.state = task_state::queued;
        r.has_state = true;
        tasks[r.id] = r;
        return r;
    }
    std::optional<task_record> find(const task_id& id) override {
        auto it = tasks.find(id);
        return it == tasks.end() ? std::nullopt : std::optional(it->second);
    }
    void cancel(const task_id& id, const std::string&) override { cancelled.push_back(id); }
    bool workers_connected() const override { return false; }
    bool runnable(const std::string&) const override { return false; }
    void count(const std::string& counter) override { ++counters[counter]; }
    event_bus& events() override { return bus_; }
    void reply(const std::string& peer, std::string_view command, const protocol::reply& r) override {
        replies.push_back({peer, std::string(command), r});
    }
    void reply_error(const std::string&, std::string_view, uint64_t, errc, const std::string&) override {}
    std::size_t max_body() const override { return 1 << 20; }
    std::optional<std::string> get(table t, std::string_view key) override {
        auto v = txn_->get(t, key);
        return v ? std::optional(*v) : std::nullopt;
    }
    void put(table t, std::string_view key, std::string_view value) override { ASSERT_TRUE(txn_->put(t, key, value)); }
    void scan(table t, const scan_fn& fn) override { ASSERT_TRUE(txn_->scan(t, "", false, fn)); }

    void set_time(int64_t t) {
        now_ = t;
        bus_.set_time(t);
    }
    struct sent {
        std::string peer;
        std::string command;
        protocol::reply rep;
    };
    std::vector<protocol::task_spec> submitted;
    std::map<task_id, task_record> tasks;  // what submit() created
    std::vector<task_id> cancelled;
    std::map<std::string, int> counters;
    std::vector<sent> replies;
    event_list events_;
    std::optional<std::string> refuse_;

private:
    std::unique_ptr<store> store_;
    std::unique_ptr<transaction> txn_;
    event_bus bus_;
    int64_t now_ = 0;
    int ids_ = 0;
};

// A logger that drops everything, for the engine's clients under test.
inline spdlog::logger& quiet_log() {
    static spdlog::logger log("fake-task-ops", std::make_shared<spdlog::sinks::null_sink_mt>());
    return log;
}

}  // namespace tmtest
