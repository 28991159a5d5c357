// Runs the broker fuzz target (broker_fuzz.cpp) in the ordinary test suite:
// every command with a valid body, deep nesting, many frames, then a
// bounded, deterministic stream of mutations of those. The coverage-guided
// run is scripts/fuzz.sh.
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <taskmill/protocol/messages.hpp>

#include "seeds.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

void run(const std::string& s) { LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

}  // namespace

TEST(BrokerFuzz, SeedsAreServed) {
    for (const auto& s : fuzzseeds::broker_inputs()) {
        run(s);  // aborts if the broker stops answering
    }
}

TEST(BrokerFuzz, MutationsNeverCrashOrStallTheLoop) {
    std::mt19937_64 rng(20261201);
    auto corpus = fuzzseeds::broker_inputs();
    const uint8_t extremes[] = {0x00, 0x7f, 0x80, 0xc0, 0xc1, 0xcc, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    int runs = 0;
    // Bounded by count and by time, so a slow machine keeps the suite fast.
    for (; runs < 3000 && std::chrono::steady_clock::now() < deadline; ++runs) {
        std::string s = corpus[rng() % corpus.size()];
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && s.size() > 1; ++e) {
            size_t at = 1 + rng() % (s.size() - 1);  // byte 0 picks the socket: keep it mostly
            switch (rng() % 5) {
                case 0: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
                case 1: s.resize(at); break;
                case 2: s[at] = static_cast<char>(extremes[rng() % sizeof(extremes)]); break;
                case 3: s.insert(at, corpus[rng() % corpus.size()].substr(1, rng() % 16)); break;
                default: s.erase(at, rng() % 8); break;
            }
        }
        run(s);
    }
    EXPECT_GT(runs, 100);
}
