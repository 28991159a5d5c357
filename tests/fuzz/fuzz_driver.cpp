// Runs the decoder fuzz target in the ordinary test suite: a deterministic
// stream of mutations (bit flips, truncations, splices, length bytes set to
// extremes) of valid encoded messages. The coverage-guided run is
// scripts/fuzz.sh.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <taskmill/protocol/messages.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace tp = taskmill::protocol;

namespace {

std::vector<std::string> seeds() {
    tp::request r;
    r.req = 1;
    tp::task_spec t;
    t.handler = "demo.sleep@1";
    t.payload = std::string("\x81\xa2ms\xcd\x03\xe8", 7);
    t.priority = 5;
    t.tags = {"x", "y"};
    t.backoff_factor = 1.5;
    r.tasks = {t, t};
    tp::reply rep;
    rep.task = tp::task_info{};
    rep.task->progress = tp::progress_info{0.25, "q"};
    rep.stats = tp::stats_info{};
    rep.stats->counters["submitted"] = 3;
    rep.workers.push_back({});
    rep.workers[0].handlers.push_back({"echo.echo", "1.0.0", "echo"});
    tp::hello h{"w", "h", 1, 2, 0, {"q"}, {{"a.b", "1.0.0", "p"}}, 0, "h:1:supervisor", {{"id", 2}}};
    tp::dispatch d;
    d.tasks.push_back({"id", "a.b", "\xc0", 1, 5, "", std::string("ck")});
    tp::results rs;
    rs.items.push_back({"id", 1, "ok", "\x01", "", 10, "1.0.0", 7, 1234});
    tp::control c;
    c.ids = {"a"};
    c.tasks = {t};
    c.leader = "tcp://10.0.0.2:5556";
    // Deep nesting: decoders refuse it without recursing into it.
    std::string deep = "\x82\xa3req\x01\xa5tasks" + std::string(10000, '\x91') + "\x01";
    return {tp::encode(r), tp::encode(rep), tp::encode(h), tp::encode(d), tp::encode(rs), tp::encode(c), deep};
}

void run(const std::string& s) { LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

}  // namespace

TEST(DecodeFuzz, MutationsNeverCrash) {
    std::mt19937_64 rng(20261122);
    auto corpus = seeds();
    const uint8_t extremes[] = {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcc, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    long runs = 0;
    for (int i = 0; i < 60000; ++i) {
        std::string s = corpus[rng() % corpus.size()];
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            size_t at = rng() % s.size();
            switch (rng() % 5) {
                case 0: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
                case 1: s.resize(at); break;
                case 2: s[at] = static_cast<char>(extremes[rng() % sizeof(extremes)]); break;
                case 3: s.insert(at, corpus[rng() % corpus.size()].substr(0, rng() % 16)); break;
                default: s.erase(at, rng() % 8); break;
            }
        }
        run(s);
        ++runs;
    }
    EXPECT_EQ(runs, 60000);
}
