// taskmill-index-bench: how long a listing page takes in the broker with
// millions of tasks stored. Fills an LMDB store through the broker's own
// store and index code (records, listing indexes, tags, as the engine
// writes them), then times TASKS requests through the engine, each one
// loop turn (begin, the command, commit), as the broker runs them.
//   taskmill-index-bench DIR [TASKS]   (TASKS default 10000000)
// DIR is created (or reused when it already holds as many tasks, so the
// fill is paid once). scripts/bench.sh --index runs it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "engine/engine.hpp"
#include "store/keys.hpp"

namespace tb = taskmill::broker;
namespace tp = taskmill::protocol;

namespace {

constexpr int handlers = 100;
constexpr int queues = 10;
constexpr int tags = 10000;
constexpr std::string_view filled_key = "index-bench-tasks";

// One in 20 tasks FAILED, one in 100 QUEUED, the rest SUCCEEDED.
tb::task_state state_of(uint64_t i) {
    if (i % 20 == 7) {
        return tb::task_state::failed;
    }
    return i % 100 == 3 ? tb::task_state::queued : tb::task_state::succeeded;
}

void fill(tb::store& st, uint64_t n, int64_t start_ms) {
    tb::id_generator ids;
    constexpr uint64_t per_txn = 200000;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t done = 0; done < n;) {
        auto txn = st.begin(true);
        for (uint64_t end = std::min(n, done + per_txn); done < end; ++done) {
            tb::task_record r;
            r.created_ms = start_ms + static_cast<int64_t>(done / 10);  // 10 tasks per ms
            r.id = ids.next(r.created_ms);
            r.handler = "bench.h" + std::to_string(done % handlers);
            r.queue = "q" + std::to_string(done % queues);
            r.state = state_of(done);
            r.has_state = true;
            r.finished_ms = tb::is_final(r.state) ? r.created_ms + 5 : 0;
            r.payload = std::string(tp::msgpack_nil);
            r.tags = {"batch:" + std::to_string(done % tags)};
            auto ok = txn->put(tb::table::tasks, tb::id_bytes(r.id), tb::encode(r));
            ok = ok ? tb::task_index::add(*txn, r) : ok;
            ok = ok ? txn->put(tb::table::tags, tb::keys::tag_key(r.tags[0], r.id), "") : ok;
            if (!ok) {
                std::fprintf(stderr, "fill failed: %s\n", ok.error().message.c_str());
                std::exit(1);
            }
        }
        std::string v;
        tb::keys::put_u64(v, done);
        (void)txn->put(tb::table::meta, filled_key, v);
        (void)txn->put(tb::table::meta, tb::keys::meta_listing_indexed, "1");
        (void)txn->put(tb::table::meta, tb::keys::meta_tags_indexed, "1");
        (void)txn->put(tb::table::meta, tb::keys::meta_expiry_indexed, "1");  // retention is not measured here
        if (!txn->commit()) {
            std::fprintf(stderr, "commit failed\n");
            std::exit(1);
        }
        std::fprintf(stderr, "\rfilled %llu", static_cast<unsigned long long>(done));
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\rfilled %llu tasks in %.0f s\n", static_cast<unsigned long long>(n), s);
}

struct query {
    const char* name;
    tp::request rq;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: taskmill-index-bench DIR [TASKS]\n");
        return 2;
    }
    const uint64_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 10'000'000;
    tb::broker_config cfg;
    cfg.data_dir = argv[1];
    cfg.mode = tb::durability::none;
    auto st = tb::open_lmdb_store({.dir = cfg.data_dir, .map_size_bytes = 64ull << 30, .mode = cfg.mode});
    constexpr int64_t start_ms = 1'767'225'600'000;
    uint64_t have = 0;
    if (auto txn = st->begin(false); auto v = txn->get(tb::table::meta, filled_key)) {
        have = v->size() == 8 ? tb::keys::get_u64(*v) : 0;
    }
    if (have != n) {
        if (have != 0) {
            std::fprintf(stderr, "%s holds %llu tasks, not %llu: use another DIR\n", argv[1],
                         static_cast<unsigned long long>(have), static_cast<unsigned long long>(n));
            return 2;
        }
        fill(*st, n, start_ms);
    }
    auto log = std::make_shared<spdlog::logger>("index-bench");  // no sinks: quiet
    tb::engine e(cfg, *st, *log);
    const int64_t now = start_ms + static_cast<int64_t>(n / 10) + 1000;
    const auto r0 = std::chrono::steady_clock::now();
    e.recover(now);
    const double recover_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r0).count();

    std::vector<query> queries;
    auto add = [&](const char* name, auto set) {
        tp::request rq;
        rq.limit = 50;
        set(rq);
        queries.push_back({name, rq});
    };
    add("50 newest FAILED", [](tp::request& rq) { rq.state = "FAILED"; });
    add("50 of one handler", [](tp::request& rq) { rq.handler = "bench.h42"; });
    add("50 of one tag", [](tp::request& rq) { rq.tag = "batch:4242"; });
    add("50 FAILED of one handler", [](tp::request& rq) {
        rq.state = "FAILED";
        rq.handler = "bench.h7";
    });
    // The tasks were created 10 per ms up to `now`: the last minute holds
    // the newest 600,000 of them.
    add("50 FAILED of one queue, last minute", [now](tp::request& rq) {
        rq.state = "FAILED";
        rq.queue = "q7";
        rq.since_ms = now - 60'000;
    });
    add("50 of one handler, first minute", [](tp::request& rq) {
        rq.handler = "bench.h42";
        rq.until_ms = start_ms + 60'000;
    });
    add("50 newest (no filter)", [](tp::request&) {});
    std::printf("%llu tasks stored; recovery (start-up) took %.2f s\n", static_cast<unsigned long long>(n), recover_s);
    std::printf("each figure: one TASKS turn (begin, command, commit), 50 runs\n");
    std::printf("%-36s %10s %10s %10s %6s\n", "page", "median ms", "p90 ms", "max ms", "tasks");
    for (auto& q : queries) {
        std::vector<double> ms;
        std::size_t listed = 0;
        for (int i = 0; i < 50; ++i) {
            q.rq.req = static_cast<uint64_t>(i + 1);
            const auto t0 = std::chrono::steady_clock::now();
            e.begin_turn(now);
            e.on_frontend(tp::incoming{"bench", tp::message{std::string(tp::cmd::tasks), tp::encode(q.rq)}, "", 0, ""});
            e.end_turn();
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            for (const auto& m : e.out().messages) {
                if (auto rep = tp::decode_reply(m.body); rep && rep->ok) {
                    listed = rep->tasks.size();
                } else {
                    std::fprintf(stderr, "%s: %s\n", q.name, rep ? rep->error.c_str() : "undecodable reply");
                    return 1;
                }
            }
            e.out().clear();
        }
        std::sort(ms.begin(), ms.end());
        std::printf("%-36s %10.3f %10.3f %10.3f %6zu\n", q.name, ms[ms.size() / 2], ms[ms.size() * 9 / 10], ms.back(),
                    listed);
    }
    return 0;
}
