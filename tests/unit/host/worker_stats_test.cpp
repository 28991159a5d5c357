// The worker's stats file as the supervisor reads it back: what a worker
// counted comes back, and a worker that died before writing its file (none,
// empty, cut short, or not one) reads as nothing, never as a crash.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "worker_stats.hpp"

namespace detail = taskmill::host::detail;
namespace fs = std::filesystem;

namespace {

class WorkerStats : public ::testing::Test {
protected:
    fs::path dir;
    void SetUp() override {
        dir = fs::temp_directory_path() / ("taskmill-stats-test-" + std::to_string(::getpid()));
        fs::create_directories(dir);
    }
    void TearDown() override { fs::remove_all(dir); }
};

TEST_F(WorkerStats, WhatAWorkerCountedReadsBack) {
    const auto path = dir / "w.stats";
    {
        detail::worker_stats s;
        ASSERT_TRUE(s.open(path, {"a.b", "c.d"}));
        s.slot_busy(true);
        s.ran("a.b", "ok", 2'000'000);
        s.ran("a.b", "fail", 1'000);
        s.ran("c.d", "timeout", 5);
    }
    auto f = detail::read_worker_stats(path);
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->busy, 1u);
    ASSERT_EQ(f->handlers.size(), 2u);
    EXPECT_EQ(f->handlers[0].first, "a.b");
    EXPECT_EQ(f->handlers[0].second.succeeded, 1u);
    EXPECT_EQ(f->handlers[0].second.failed, 1u);
    EXPECT_EQ(f->handlers[1].second.timeouts, 1u);
}

TEST_F(WorkerStats, AMissingEmptyShortOrForeignFileReadsAsNothing) {
    EXPECT_FALSE(detail::read_worker_stats(dir / "never-written").has_value());
    std::ofstream(dir / "empty").flush();
    EXPECT_FALSE(detail::read_worker_stats(dir / "empty").has_value());
    std::ofstream(dir / "short") << "abc";
    EXPECT_FALSE(detail::read_worker_stats(dir / "short").has_value());
    std::ofstream(dir / "foreign") << std::string(4096, 'x');
    EXPECT_FALSE(detail::read_worker_stats(dir / "foreign").has_value());
}

}  // namespace
