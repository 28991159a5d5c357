// Storage faults with the real taskmill-broker binary: a second broker on
// the same data folder, a full map or disk, a damaged store.
#include <sys/mount.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <future>
#include <tuple>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

#include "harness.hpp"

namespace taskmill::testing {
namespace {

std::vector<std::string> broker_argv(const fs::path& data, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {build_paths::broker().string(),
                                     "--data-dir",
                                     data.string(),
                                     "--frontend",
                                     "tcp://127.0.0.1:0",
                                     "--backend",
                                     "tcp://127.0.0.1:0",
                                     "--events",
                                     "tcp://127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
}

struct exit_info {
    int code = -1;  // -1: killed by a signal (or still running)
    std::string log;
};

// Runs taskmill-broker until it exits by itself (a refusal, --check-store).
exit_info run_broker(const fs::path& log_dir, const fs::path& data, const std::vector<std::string>& extra,
                     const std::string& log_name) {
    process p(broker_argv(data, extra), log_dir / log_name);
    auto status = p.wait_exit(30s);
    exit_info r;
    r.log = p.log_text();
    if (status && WIFEXITED(*status)) {
        r.code = WEXITSTATUS(*status);
    } else if (status && WIFSIGNALED(*status)) {
        r.log += "\n(killed by signal " + std::to_string(WTERMSIG(*status)) + ")";
    }
    return r;
}

// A broker stopped with SIGTERM, as an operator stops it.
void stop(broker_process& b) {
    b.proc().signal(SIGTERM);
    ASSERT_TRUE(b.proc().wait_exit(20s).has_value());
}

std::vector<std::string> submit_n(wire_client& c, int n, std::size_t payload_bytes, const std::string& marker = "") {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
        auto got = c.submit({task("echo.echo", marker + std::to_string(i) + std::string(payload_bytes, 'x'))});
        if (got.size() != 1) {
            break;
        }
        ids.push_back(got[0]);
    }
    return ids;
}

// Submits until the broker says `unavailable` (or `limit` tasks); returns
// the accepted ids and the refusal.
std::pair<std::vector<std::string>, std::optional<protocol::reply>> submit_until_refused(wire_client& c,
                                                                                         std::size_t payload_bytes,
                                                                                         int limit) {
    std::vector<std::string> ids;
    for (int i = 0; i < limit; ++i) {
        protocol::request rq;
        rq.tasks = {task("echo.echo", std::to_string(i) + std::string(payload_bytes, 'p'))};
        auto rep = c.call(protocol::cmd::submit, rq);
        if (!rep) {
            return {ids, std::nullopt};
        }
        if (!rep->ok) {
            return {ids, std::move(rep)};
        }
        ids.push_back(rep->ids.at(0));
    }
    return {ids, std::nullopt};
}

class StoreFault : public ::testing::Test {
protected:
    temp_dir tmp;
    fs::path data() const { return tmp.path() / "data"; }
};

// Item: a second broker on the same data folder handed out the same queued
// tasks. It must be refused (exit 3, naming the holder), and so must
// --check-store, while the first broker serves on.
TEST_F(StoreFault, SecondBrokerOnTheSameDataFolderIsRefused) {
    broker_process first(data());
    wire_client c(first.ep().frontend);
    ASSERT_EQ(c.submit({task("echo.echo", "a")}).size(), 1u);

    auto second = run_broker(tmp.path(), data(), {}, "second.log");
    EXPECT_EQ(second.code, 3) << second.log;
    EXPECT_NE(second.log.find("in use by another process (pid " + std::to_string(first.proc().pid())),
              std::string::npos)
        << second.log;

    auto check = run_broker(tmp.path(), data(), {"--check-store"}, "check.log");
    EXPECT_EQ(check.code, 3) << check.log;

    EXPECT_TRUE(first.proc().running());
    EXPECT_EQ(c.submit({task("echo.echo", "b")}).size(), 1u);
    stop(first);
    auto after = run_broker(tmp.path(), data(), {"--check-store"}, "check-after.log");
    EXPECT_EQ(after.code, 0) << after.log;
    EXPECT_NE(after.log.find("2 task(s)"), std::string::npos) << after.log;
}

// Item: half a data.mdb ended in SIGBUS without a word.
TEST_F(StoreFault, TruncatedDataFileIsRefusedWithWhatToDo) {
    {
        broker_process b(data(), {"--durability", "none"});  // fsync adds nothing here but time
        wire_client c(b.ep().frontend);
        ASSERT_EQ(submit_n(c, 200, 1000).size(), 200u);
        stop(b);
    }
    const auto file = data() / "data.mdb";
    fs::resize_file(file, fs::file_size(file) / 2);

    auto start = run_broker(tmp.path(), data(), {}, "start.log");
    EXPECT_EQ(start.code, 4) << start.log;
    EXPECT_NE(start.log.find("data.mdb is truncated"), std::string::npos) << start.log;
    EXPECT_NE(start.log.find("restore data.mdb from a backup"), std::string::npos) << start.log;

    auto check = run_broker(tmp.path(), data(), {"--check-store"}, "check.log");
    EXPECT_EQ(check.code, 4) << check.log;
    EXPECT_NE(check.log.find("truncated"), std::string::npos) << check.log;
}

// Item: a 0-byte data.mdb started silently as an empty store.
TEST_F(StoreFault, EmptyDataFileWhereAStoreWasIsRefusedUnlessAllowed) {
    {
        broker_process b(data());
        wire_client c(b.ep().frontend);
        ASSERT_EQ(submit_n(c, 3, 10).size(), 3u);
        stop(b);
    }
    fs::resize_file(data() / "data.mdb", 0);

    auto start = run_broker(tmp.path(), data(), {}, "start.log");
    EXPECT_EQ(start.code, 4) << start.log;
    EXPECT_NE(start.log.find("data.mdb is empty (0 bytes)"), std::string::npos) << start.log;
    EXPECT_NE(start.log.find("--allow-empty-store"), std::string::npos) << start.log;

    broker_process again(data(), {"--allow-empty-store"});
    wire_client c(again.ep().frontend);
    EXPECT_EQ(c.submit({task("echo.echo", "new")}).size(), 1u);
}

// Item: bad pages gave `fatal MDB_PAGE_NOTFOUND` at every start (or only when
// a request reached them). The start reads every table and says which one is
// damaged and how to salvage the rest.
TEST_F(StoreFault, DamagedPagesAreFoundAtStartAndByCheckStore) {
    std::vector<std::string> ids;
    {
        broker_process b(data(), {"--durability", "none"});
        wire_client c(b.ep().frontend);
        ids = submit_n(c, 300, 600, "MARK");
        ASSERT_EQ(ids.size(), 300u);
        stop(b);
    }
    // Zero every page that holds the record of task 150 (its live page and
    // any freed older copies).
    const auto file = data() / "data.mdb";
    std::string bytes = read_file(file);
    const std::string marker = "MARK150";
    std::size_t zeroed = 0;
    for (auto pos = bytes.find(marker); pos != std::string::npos; pos = bytes.find(marker, pos + 1)) {
        const std::size_t page = pos / 4096;
        ASSERT_GE(page, 2u);  // never the meta pages
        std::fill_n(bytes.begin() + static_cast<std::ptrdiff_t>(page * 4096), 4096, '\0');
        ++zeroed;
    }
    ASSERT_GT(zeroed, 0u);
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }

    auto start = run_broker(tmp.path(), data(), {}, "start.log");
    EXPECT_EQ(start.code, 4) << start.log;
    EXPECT_NE(start.log.find("table tasks"), std::string::npos) << start.log;
    EXPECT_NE(start.log.find("mdb_dump -a " + data().string()), std::string::npos) << start.log;

    auto check = run_broker(tmp.path(), data(), {"--check-store"}, "check.log");
    EXPECT_EQ(check.code, 4) << check.log;
    EXPECT_NE(check.log.find("table tasks"), std::string::npos) << check.log;
}

// Item: MDB_MAP_FULL on a result write killed the broker, and every restart
// at the same size died again. Now: the turn is dropped and the state
// reloaded, reads are served, new work is refused, a restart at the full
// size comes up, and a restart with a larger map finishes every accepted
// task.
TEST_F(StoreFault, FullMapKeepsServingAndALargerMapFinishesEverything) {
    auto b = std::make_unique<broker_process>(data(), std::vector<std::string>{"--map-size-mb", "1"});
    auto c = std::make_unique<wire_client>(b->ep().frontend);
    auto [ids, refusal] = submit_until_refused(*c, 3000, 2000);
    ASSERT_TRUE(refusal.has_value()) << "no refusal after " << ids.size() << " tasks";
    EXPECT_EQ(refusal->error_code, "unavailable");
    EXPECT_NE(refusal->error.find("new work is refused"), std::string::npos) << refusal->error;
    ASSERT_GT(ids.size(), 50u);

    // A client waits for the last task; it must not be left waiting when the
    // broker reloads its state.
    auto parked = std::async(std::launch::async, [ep = b->ep().frontend, id = ids.back()] {
        wire_client w(ep);
        protocol::request rq;
        rq.id = id;
        rq.wait_ms = 60000;
        return w.call(protocol::cmd::status, rq, 70s);
    });
    // Echo results are as large as the payloads: they cannot all fit.
    auto host = start_host(tmp.path(), {.backend = b->ep().backend, .concurrency = 4});
    ASSERT_TRUE(wait_until(
        [&] { return !b->proc().running() || b->proc().log_text().find("turn dropped") != std::string::npos; }, 60s))
        << b->proc().log_text();
    ASSERT_TRUE(b->proc().running()) << b->proc().log_text();
    ASSERT_EQ(parked.wait_for(10s), std::future_status::ready);
    auto answer = parked.get();
    ASSERT_TRUE(answer.has_value());
    if (!answer->ok) {
        EXPECT_EQ(answer->error_code, "unavailable") << answer->error;
    }
    // Reads are served. (One that lands in a turn that is dropped again, as
    // results keep coming, is answered `unavailable`: asking again works.)
    EXPECT_TRUE(wait_until([&] { return c->status(ids.front()).has_value(); }, 10s));
    EXPECT_TRUE(wait_until(
        [&] {
            auto st = c->call(protocol::cmd::stats, protocol::request{});
            return st && st->ok && st->stats.has_value();
        },
        10s));
    protocol::request more;
    more.tasks = {task("echo.echo", "more")};
    auto refused = c->call(protocol::cmd::submit, more);
    ASSERT_TRUE(refused.has_value());
    EXPECT_FALSE(refused->ok);
    EXPECT_EQ(refused->error_code, "unavailable");
    EXPECT_NE(b->proc().log_text().find("--map-size-mb"), std::string::npos);

    host.reset();
    stop(*b);
    // A start at the same, full size comes up and serves reads.
    b = std::make_unique<broker_process>(data(), std::vector<std::string>{"--map-size-mb", "1"});
    c = std::make_unique<wire_client>(b->ep().frontend);
    ASSERT_TRUE(c->status(ids.back()).has_value());
    stop(*b);

    // A larger map: everything accepted finishes.
    b = std::make_unique<broker_process>(data(), std::vector<std::string>{"--map-size-mb", "16"});
    c = std::make_unique<wire_client>(b->ep().frontend);
    host = start_host(tmp.path(), {.backend = b->ep().backend, .concurrency = 4}, "host2.log");
    for (const auto& id : ids) {
        auto t = c->wait_final(id, 60s);
        ASSERT_TRUE(t.has_value()) << id;
        EXPECT_EQ(t->state, "SUCCEEDED") << id << " " << t->error;
    }
    EXPECT_EQ(c->submit({task("echo.echo", "room again")}).size(), 1u);
}

// Item: a full disk gave `fatal: store commit failed: Input/output error`
// and a crash loop. The store's capacity counts the disk's free space, so
// new work is refused before the disk is full, and the broker serves on.
TEST_F(StoreFault, FullDiskRefusesNewWorkAndServesOn) {
    const auto disk = tmp.path() / "disk";
    fs::create_directories(disk);
    if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=1m") != 0) {
        GTEST_SKIP() << "cannot mount a 1 MiB tmpfs here (" << std::strerror(errno)
                     << "); the full-disk case needs one";
    }
    struct unmount {
        fs::path p;
        ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } guard{disk};
    std::vector<std::string> ids;
    std::optional<protocol::reply> refusal;
    {
        broker_process b(disk / "data", {"--map-size-mb", "64"});
        wire_client c(b.ep().frontend);
        std::tie(ids, refusal) = submit_until_refused(c, 3000, 2000);
        ASSERT_TRUE(refusal.has_value()) << "no refusal after " << ids.size() << " tasks; log:\n"
                                         << b.proc().log_text();
        EXPECT_EQ(refusal->error_code, "unavailable");
        EXPECT_NE(refusal->error.find("free disk"), std::string::npos) << refusal->error;
        ASSERT_GT(ids.size(), 20u);
        EXPECT_TRUE(b.proc().running()) << b.proc().log_text();
        auto t = c.status(ids.back());
        ASSERT_TRUE(t.has_value());
        EXPECT_EQ(t->state, "QUEUED");
        stop(b);
    }
    // Every acknowledged task is in the store.
    broker_process b(disk / "data", {"--map-size-mb", "64"});
    wire_client c(b.ep().frontend);
    for (const auto& id : ids) {
        auto t = c.status(id);
        ASSERT_TRUE(t.has_value()) << id;
    }
}

}  // namespace
}  // namespace taskmill::testing
