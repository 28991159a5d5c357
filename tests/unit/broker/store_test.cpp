// LMDB specifics, key layouts, record codec, ready index, and persistence
// of a broker's state across a restart (the contract both stores keep is in
// store_contract_test.cpp).
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "broker_harness.hpp"
#include "engine/ready_index.hpp"
#include "model/task_record.hpp"
#include "store/keys.hpp"

using namespace taskmill::broker;
using namespace tmtest;

namespace {

task_id make_id(uint8_t n) {
    task_id id{};
    id[15] = n;
    return id;
}

}  // namespace

TEST(LmdbStore, DataSurvivesReopen) {
    temp_dir dir;
    lmdb_options o{dir.path.string(), 64ull << 20, durability::sync};
    {
        auto st = open_lmdb_store(o);
        auto txn = st->begin(true);
        ASSERT_TRUE(txn->put(table::tasks, "k", "v"));
        ASSERT_TRUE(txn->commit());
    }
    auto st = open_lmdb_store(o);
    EXPECT_EQ(st->begin(false)->get(table::tasks, "k").value(), "v");
}

TEST(TaskRecord, RoundTrip) {
    task_record r;
    r.id = *parse_task_id("0123456789abcdef0123456789abcdef");
    r.handler = "a.b@2";
    r.payload = std::string("\x00\x01\xff", 3);
    r.priority = 7;
    r.tags = {"x", "y"};
    r.result = std::string("\xc0", 1);
    r.progress_fraction = 0.25;
    r.state = task_state::running;
    auto back = decode_record(encode(r));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->id, r.id);
    EXPECT_EQ(back->state, task_state::running);
    EXPECT_EQ(back->payload, r.payload);
    EXPECT_EQ(back->priority, 7);
    EXPECT_EQ(back->tags, r.tags);
    EXPECT_EQ(back->result, r.result);
    EXPECT_FALSE(back->checkpoint.has_value());
    EXPECT_DOUBLE_EQ(*back->progress_fraction, 0.25);
    EXPECT_FALSE(decode_record("\x01garbage").has_value());
}

namespace {
task_record full_record() {
    task_record r;
    r.id = *parse_task_id("0123456789abcdef0123456789abcdef");
    r.handler = "a.b@2";
    r.payload = std::string("\x00\x01\xff", 3);
    r.queue = "q";
    r.priority = -3;
    r.max_retries = 5;
    r.timeout_ms = 70000;
    r.ttl_ms = 1LL << 40;
    r.eta_ms = 1700000000000;
    r.backoff_base_ms = 250;
    r.backoff_factor = 1.5;
    r.backoff_cap_ms = 60000;
    r.tags = {"x", std::string(300, 't')};
    r.key = "k";
    r.parent = "p";
    r.notify = true;
    r.notify_peer = std::string("\x00peer", 5);
    r.state = task_state::failed;
    r.attempts = 3;
    r.crashes = 1;
    r.created_ms = 1;
    r.started_ms = 2;
    r.finished_ms = 3;
    r.error = std::string(70000, 'e');
    r.result = std::string("\xc0", 1);
    r.worker = "w:1";
    r.children = {make_id(1), make_id(2), make_id(3)};
    r.progress_fraction = 0.25;
    r.progress_note = "n";
    r.checkpoint = std::string();
    r.cancel_requested = true;
    r.seq = 1ULL << 63;
    r.version = "1.2.3";
    return r;
}
}  // namespace

TEST(TaskRecord, EveryFieldSurvivesTheRoundTrip) {
    auto r = full_record();
    auto back = decode_record(encode(r));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(encode(*back), encode(r));  // byte for byte: no field lost or altered
    EXPECT_EQ(back->priority, -3);
    EXPECT_EQ(back->ttl_ms, 1LL << 40);
    EXPECT_EQ(back->seq, 1ULL << 63);
    EXPECT_DOUBLE_EQ(back->backoff_factor, 1.5);
    EXPECT_EQ(back->error.size(), 70000u);
    EXPECT_EQ(back->notify_peer, r.notify_peer);
    ASSERT_TRUE(back->checkpoint.has_value());
    EXPECT_TRUE(back->checkpoint->empty());
    EXPECT_TRUE(back->cancel_requested);
}

// Records written by the first broker format (a map keyed by field name)
// still decode.
TEST(TaskRecord, DecodesTheMapFormat) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(5);
    pk.pack(std::string("id"));
    pk.pack(std::string("0123456789abcdef0123456789abcdef"));
    pk.pack(std::string("state"));
    pk.pack(std::string("QUEUED"));
    pk.pack(std::string("priority"));
    pk.pack(4);
    pk.pack(std::string("tags"));
    pk.pack(std::vector<std::string>{"a"});
    pk.pack(std::string("unknown_later_field"));
    pk.pack(1);
    auto back = decode_record(std::string_view(buf.data(), buf.size()));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->state, task_state::queued);
    EXPECT_EQ(to_hex(back->id), "0123456789abcdef0123456789abcdef");
    EXPECT_EQ(back->priority, 4);
    EXPECT_EQ(back->tags, std::vector<std::string>{"a"});
}

// A shorter array (older) keeps defaults; a longer one (newer) is read up to
// what this broker knows; every truncation and a wrong type is an error,
// never a crash.
TEST(TaskRecord, ToleratesOtherLengthsAndRejectsDamage) {
    auto bytes = encode(full_record());
    for (std::size_t n = 0; n < bytes.size(); n += (n < 200 ? 1 : 997)) {
        EXPECT_FALSE(decode_record(std::string_view(bytes).substr(0, n)).has_value()) << n;
    }
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(3);
    pk.pack(2);
    pk.pack(std::string("0123456789abcdef0123456789abcdef"));
    pk.pack(std::string("h.x"));
    auto shorter = decode_record(std::string_view(buf.data(), buf.size()));
    ASSERT_TRUE(shorter.has_value()) << shorter.error().message;
    EXPECT_EQ(shorter->handler, "h.x");
    EXPECT_EQ(shorter->queue, "");
    EXPECT_EQ(shorter->max_retries, 0);

    std::string longer = encode(full_record());
    longer[2] = static_cast<char>(longer[2] + 1);  // array16 count + 1 ...
    longer.push_back('\x07');                      // ... and one more value
    ASSERT_EQ(static_cast<uint8_t>(longer[0]), 0xdc);
    auto l = decode_record(longer);
    ASSERT_TRUE(l.has_value()) << l.error().message;
    EXPECT_EQ(l->version, "1.2.3");

    auto wrong = encode(full_record());
    wrong[4] = '\xc3';  // the id (a bin) replaced by `true`
    EXPECT_FALSE(decode_record(wrong).has_value());
    EXPECT_FALSE(decode_record("").has_value());
    EXPECT_FALSE(decode_record("\x91\x09").has_value());  // an unknown format number
}

TEST(ReadyIndex, PriorityThenFifoAndSkipsUnrunnableHandlers) {
    ready_index idx;
    auto a = idx.intern("a.x");
    auto b = idx.intern("b.y");
    idx.push("q", 5, a, {1, make_id(1), 0});
    idx.push("q", 5, b, {2, make_id(2), 0});
    idx.push("q", 5, a, {3, make_id(3), 0});
    idx.push("q", 8, b, {4, make_id(4), 0});
    auto all = [](uint32_t) { return true; };
    std::vector<uint8_t> order;
    while (auto p = idx.peek("q", all)) {
        order.push_back(p->e.id[15]);
        idx.pop("q", *p);
    }
    EXPECT_EQ(order, (std::vector<uint8_t>{4, 1, 2, 3}));

    idx.push("q", 9, b, {5, make_id(5), 0});
    idx.push("q", 1, a, {6, make_id(6), 0});
    auto only_a = [&](uint32_t h) { return h == a; };
    auto p = idx.peek("q", only_a);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->e.id[15], 6);  // b's task waits without blocking a's
    idx.remove("q", make_id(5));
    EXPECT_EQ(idx.ready("q"), 1u);
}

// A broker restarted on the same data dir finds its tasks: queued ones in
// order, and a RUNNING one back in the queue.
TEST(Persistence, TasksSurviveRestartAndRunningComesBackQueued) {
    temp_dir dir;
    zmq::context_t ctx;
    auto cfg = test_config(dir.path.string());
    cfg.mode = durability::sync;
    std::vector<std::string> ids;
    {
        running_broker b(ctx, cfg);
        client c(ctx, b.endpoints().frontend);
        ids = c.submit({task("a.b", 1), task("a.b", 9), task("a.b", 5)});
        ASSERT_EQ(ids.size(), 3u);
        fake_worker w(ctx, b.endpoints().backend, "w1");
        w.hello({handler("a.b")}, 1);
        auto items = w.next_dispatch();
        ASSERT_EQ(items.size(), 1u);
        EXPECT_EQ(items[0].id, ids[1]);  // priority 9 first
        EXPECT_EQ(c.status(ids[1]).state, "RUNNING");
    }
    auto cfg2 = test_config(dir.path.string());
    running_broker b(ctx, cfg2);
    client c(ctx, b.endpoints().frontend);
    EXPECT_EQ(c.status(ids[1]).state, "QUEUED");
    EXPECT_EQ(c.status(ids[0]).state, "QUEUED");
    tp::request rq;
    auto stats = c.call(tp::cmd::stats, rq);
    ASSERT_TRUE(stats.stats.has_value());
    EXPECT_EQ(stats.stats->states["QUEUED"], 3u);
    fake_worker w(ctx, b.endpoints().backend, "w2");
    w.hello({handler("a.b")}, 1);
    std::vector<std::string> order;
    for (int i = 0; i < 3; ++i) {
        auto items = w.next_dispatch();
        ASSERT_EQ(items.size(), 1u);
        order.push_back(items[0].id);
        if (items[0].id == ids[1]) {
            // The store never saw the lost attempt start (RUNNING is kept in
            // memory), so the task runs again as attempt 1.
            EXPECT_EQ(items[0].attempt, 1u);
        }
        w.result(items[0], "ok", "\xc0");
    }
    // The requeued task went to the back of its priority: 9 is alone there.
    EXPECT_EQ(order, (std::vector<std::string>{ids[1], ids[2], ids[0]}));
    ASSERT_EQ(c.status(ids[0], 5000).state, "SUCCEEDED");
}

// The per-queue/state counters live in `meta`, so a restart does not read
// every task; they must come back exactly as they were.
TEST(Persistence, CountersSurviveRestarts) {
    temp_dir dir;
    zmq::context_t ctx;
    auto cfg = test_config(dir.path.string());
    std::map<std::string, uint64_t> before;
    {
        running_broker b(ctx, cfg);
        client c(ctx, b.endpoints().frontend);
        auto ids = c.submit({task("a.b"), task("a.b"), task("a.b"), task("a.b")});
        auto other = tp::task_spec{};
        other.handler = "x.y";
        other.queue = "q2";
        c.submit({other});
        c.call(tp::cmd::cancel, [&] {
            tp::request rq;
            rq.id = ids[3];
            return rq;
        }());
        fake_worker w(ctx, b.endpoints().backend, "w1");
        w.hello({handler("a.b")}, 1);
        auto items = w.next_dispatch();
        ASSERT_EQ(items.size(), 1u);
        w.result(items[0], "ok", "\xc0");
        ASSERT_EQ(c.status(items[0].id, 5000).state, "SUCCEEDED");
        before = c.call(tp::cmd::stats, tp::request{}).stats->states;
    }
    EXPECT_EQ(before["SUCCEEDED"], 1u);
    EXPECT_EQ(before["CANCELLED"], 1u);
    EXPECT_EQ(before["QUEUED"] + before["RUNNING"], 3u);
    for (int restart = 0; restart < 2; ++restart) {
        running_broker b(ctx, test_config(dir.path.string()));
        client c(ctx, b.endpoints().frontend);
        auto after = c.call(tp::cmd::stats, tp::request{}).stats->states;
        EXPECT_EQ(after["SUCCEEDED"], 1u);
        EXPECT_EQ(after["CANCELLED"], 1u);
        EXPECT_EQ(after["QUEUED"], 3u);  // a RUNNING one comes back QUEUED
        EXPECT_EQ(after["RUNNING"], 0u);
    }
}
