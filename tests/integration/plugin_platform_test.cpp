// The plugin platform end to end: hot swap of a plugin file under load,
// a broken library refused while the old one keeps serving, two major
// versions side by side, checkpoint resume after a worker SIGKILL, and
// subtasks. Real broker and host processes, real .so files (the
// versioned_v* test plugins answer which version ran them).
#include "harness.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

int64_t unix_now_ms() {
    return std::chrono::duration_cast<ms>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The parent PID of `pid`, from /proc (0 if it is gone).
int64_t parent_pid(int64_t pid) {
    std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    auto close = stat.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream in(stat.substr(close + 1));
    std::string state;
    int64_t ppid = 0;
    in >> state >> ppid;
    return ppid;
}

ino_t inode_of(const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Index of a "N.0.0" version string (0 for anything else).
int major_of(const std::string& version) { return version.size() > 1 && version[1] == '.' ? version[0] - '0' : 0; }

class PluginPlatform : public ::testing::Test {
protected:
    temp_dir tmp;
    std::unique_ptr<broker_process> broker;
    std::unique_ptr<process> host;
    std::unique_ptr<wire_client> client;

    fs::path plugin_dir() const { return tmp.path() / "plugins"; }

    static fs::path versioned(const std::string& variant) {
        return build_paths::test_plugins() / ("versioned_" + variant + ".so");
    }

    // Copies a versioned_* build output into the watched folder. An existing
    // file is overwritten in place: truncated and rewritten, same inode.
    void put(const std::string& variant, const std::string& name) {
        fs::copy_file(versioned(variant), plugin_dir() / name, fs::copy_options::overwrite_existing);
    }

    // Puts a copy of `from` in the watched folder as `name`, the way an
    // operator installs a file: written aside, then renamed into place.
    void drop(const fs::path& from, const std::string& name) {
        fs::copy_file(from, plugin_dir() / (name + ".part"), fs::copy_options::overwrite_existing);
        fs::rename(plugin_dir() / (name + ".part"), plugin_dir() / name);
    }

    // The first half of echo.so as `name`: an ELF header and little else.
    // Written in place, over an existing file of that name if any.
    void put_truncated(const std::string& name) {
        std::string bytes = read_file(build_paths::plugins() / "echo.so");
        std::ofstream(plugin_dir() / name, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    }

    static fs::path ctor_plugin(const std::string& name) { return build_paths::test_plugins() / (name + ".so"); }

    std::size_t log_count(const std::string& what) {
        std::string text = host->log_text();
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) {
            ++n;
        }
        return n;
    }

    void start(const fs::path& plugins, int processes, int concurrency) {
        broker = std::make_unique<broker_process>(tmp.path() / "data");
        host = start_host(
            tmp.path(),
            {.backend = broker->ep().backend, .plugins = plugins, .processes = processes, .concurrency = concurrency});
        client = std::make_unique<wire_client>(broker->ep().frontend);
    }

    // The watched folder, empty; fails if the test plugins are not built.
    void make_plugin_dir() {
        for (const char* v : {"v1", "v2", "v3", "broken"}) {
            ASSERT_TRUE(fs::exists(versioned(v))) << versioned(v) << " is missing: build target versioned_plugins";
        }
        for (const char* c : {"ctor_exit", "ctor_segv", "ctor_segv_in_worker"}) {
            ASSERT_TRUE(fs::exists(ctor_plugin(c))) << ctor_plugin(c) << " is missing: build target ctor_plugins";
        }
        fs::create_directories(plugin_dir());
    }

    // The versions of ver.which the registered workers offer, and how many
    // workers offer it.
    std::pair<std::set<std::string>, std::size_t> which_versions() {
        std::set<std::string> versions;
        std::size_t serving = 0;
        for (auto& w : client->workers()) {
            bool any = false;
            for (auto& h : w.handlers) {
                if (h.name == "ver.which") {
                    versions.insert(h.version);
                    any = true;
                }
            }
            serving += any ? 1 : 0;
        }
        return {versions, serving};
    }

    // True once exactly `versions` are served, by `workers` workers: a swap
    // has completed when no worker offers an older version any more.
    bool serving_exactly(const std::set<std::string>& versions, std::size_t workers) {
        auto [have, n] = which_versions();
        return have == versions && n == workers;
    }

    std::string run_which(const std::string& handler) {
        auto ids = client->submit({task(handler)});
        if (ids.size() != 1) {
            return "submit failed";
        }
        auto t = client->wait_final(ids[0], 30s);
        if (!t || t->state != "SUCCEEDED" || !t->result) {
            return t ? t->state + ": " + t->error : "did not finish";
        }
        return from_msgpack(*t->result).get<std::string>();
    }

    int64_t pid_of(const std::string& worker_id) {
        for (auto& w : client->workers()) {
            if (w.id == worker_id) {
                return w.pid;
            }
        }
        return 0;
    }
};

// One submitted batch: its ids, and how many swaps had completed (as seen
// in the workers list) before it was submitted.
struct batch_record {
    std::vector<std::string> ids;
    int swaps_done = 0;
};

TEST_F(PluginPlatform, HotSwapUnderLoadLosesNothingAndOnlyMovesForward) {
    constexpr int total = 5000;
    constexpr int batch = 50;
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    start(plugin_dir(), 2, 4);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 2); }, 30s)) << host->log_text();
    const ino_t inode = inode_of(plugin_dir() / "ver.so");
    const int supervisor = host->pid();

    std::vector<batch_record> batches;
    int submitted = 0;
    int swaps_done = 0;
    auto submit_batch = [&] {
        std::vector<tp::task_spec> specs(batch, task("ver.which"));
        batch_record b{client->submit(specs), swaps_done};
        ASSERT_EQ(b.ids.size(), static_cast<std::size_t>(batch)) << "submit refused";
        submitted += batch;
        batches.push_back(std::move(b));
    };
    // Streams `count` tasks in batches; `done` ends a pacing pause early.
    auto stream = [&](int count, const std::function<bool()>& done) {
        for (int i = 0; i < count / batch && !HasFatalFailure(); ++i) {
            submit_batch();
            wait_until(done, 20ms);  // pacing between batches, not synchronisation
        }
    };
    // Overwrites ver.so with `variant` while tasks keep coming, until the
    // workers list shows only `version`.
    auto swap_to = [&](const std::string& variant, const std::string& version, int budget) {
        put(variant, "ver.so");
        ASSERT_EQ(inode_of(plugin_dir() / "ver.so"), inode) << "the file was replaced, not overwritten";
        auto swapped = [&] { return serving_exactly({version}, 2); };
        for (int sent = 0; sent < budget && !swapped() && !HasFatalFailure(); sent += batch) {
            submit_batch();
            wait_until(swapped, 20ms);  // pacing
        }
        ASSERT_TRUE(wait_until(swapped, 30s)) << "swap to " << version << " did not complete\n" << host->log_text();
        ++swaps_done;
    };

    ASSERT_NO_FATAL_FAILURE(stream(1000, [] { return false; }));
    ASSERT_NO_FATAL_FAILURE(swap_to("v2", "2.0.0", 1000));
    ASSERT_NO_FATAL_FAILURE(stream(1000, [] { return false; }));
    ASSERT_NO_FATAL_FAILURE(swap_to("v3", "3.0.0", 1000));
    ASSERT_NO_FATAL_FAILURE(stream(total - submitted, [] { return false; }));
    ASSERT_EQ(submitted, total);

    // The same supervisor did it all: it runs, and the workers are its children.
    EXPECT_TRUE(host->running());
    for (auto& w : client->workers()) {
        EXPECT_EQ(parent_pid(w.pid), supervisor) << "worker " << w.id;
    }

    // Versions only move forward, task by task in submit order: a draining
    // worker runs every DISPATCH the broker sent before acknowledging its
    // CREDIT 0, so no task is bounced back to run after later ones.
    int last = 0;
    std::string last_id;
    std::string last_worker;
    std::map<int, int> per_version;
    for (std::size_t b = 0; b < batches.size(); ++b) {
        for (auto& id : batches[b].ids) {
            auto t = client->wait_final(id, 60s);
            ASSERT_TRUE(t.has_value()) << "task " << id << " was lost";
            ASSERT_EQ(t->state, "SUCCEEDED") << t->error;
            ASSERT_TRUE(t->result.has_value());
            int v = major_of(from_msgpack(*t->result).get<std::string>());
            ASSERT_GE(v, 1);
            ++per_version[v];
            // After swap k completed, nothing runs on a version below k + 1.
            ASSERT_GE(v, batches[b].swaps_done + 1)
                << "task " << id << " submitted after swap " << batches[b].swaps_done << " ran on version " << v;
            EXPECT_EQ(t->attempts, 1u) << "task " << id << " was bounced by a draining worker";
            ASSERT_GE(v, last) << "task " << id << " of batch " << b << " ran on version " << v << " on worker "
                               << t->worker << " (attempts " << t->attempts << ") after an earlier task " << last_id
                               << " ran on version " << last << " on " << last_worker;
            last = v;
            last_id = id;
            last_worker = t->worker;
        }
    }
    EXPECT_GT(per_version[1], 0);
    EXPECT_GT(per_version[2], 0);
    EXPECT_GT(per_version[3], 0);
    EXPECT_EQ(per_version[1] + per_version[2] + per_version[3], total);
}

TEST_F(PluginPlatform, BrokenLibraryOverAWorkingOneIsRefusedAndTheOldKeepsServing) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    start(plugin_dir(), 1, 2);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 1); }, 30s)) << host->log_text();
    auto before = client->workers();
    ASSERT_EQ(before.size(), 1u);
    event_log events(broker->ep().events);
    events.drain(100ms);

    put("broken", "ver.so");
    ASSERT_TRUE(wait_until([&] { return host->log_text().find("reload skipped") != std::string::npos; }, 30s))
        << host->log_text();
    std::string log = host->log_text();
    EXPECT_NE(log.find("plugin refused: ver.so"), std::string::npos) << log;
    EXPECT_NE(log.find("ABI 2.0 is not supported"), std::string::npos) << log;
    // The refusal is published for operators, with its reason.
    EXPECT_TRUE(events.wait_for(
        [](const nlohmann::json& e) {
            return e.value("type", "") == "plugin.refused" &&
                   e.value("error", "").find("ABI 2.0 is not supported") != std::string::npos;
        },
        10s));

    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(run_which("ver.which"), "1.0.0");
    }
    auto after = client->workers();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].pid, before[0].pid) << "the serving worker was not replaced";
    EXPECT_EQ(after[0].generation, before[0].generation);
    EXPECT_TRUE(host->running());

    // The refusal does not wedge the watcher: a good file is picked up.
    put("v2", "ver.so");
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"2.0.0"}, 1); }, 30s)) << host->log_text();
    EXPECT_EQ(run_which("ver.which"), "2.0.0");
    EXPECT_GT(client->workers().at(0).generation, before[0].generation);
    EXPECT_TRUE(events.wait_for(
        [](const nlohmann::json& e) {
            return e.value("type", "") == "plugin.reloaded" && e.value("generation", 0) >= 1 &&
                   e["files"] == nlohmann::json::array({"ver.so"});
        },
        10s));
}

// True once some plugin.refused event names `file`.
bool refused_event(event_log& events, const std::string& file, ms timeout) {
    return events.wait_for(
        [&](const nlohmann::json& e) {
            return e.value("type", "") == "plugin.refused" && e.contains("files") &&
                   e["files"] == nlohmann::json::array({file});
        },
        timeout);
}

// Tasks submitted in batches while something happens; all must succeed.
struct task_stream {
    wire_client& client;
    std::vector<std::string> ids;

    void batch(const std::string& handler, int n) {
        auto got = client.submit(std::vector<tp::task_spec>(n, task(handler)));
        ASSERT_EQ(got.size(), static_cast<std::size_t>(n)) << "submit refused";
        ids.insert(ids.end(), got.begin(), got.end());
    }
    // Submits a batch every 20 ms until `done` holds or `timeout` passes.
    bool until(const std::string& handler, const std::function<bool()>& done, ms timeout) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                return false;
            }
            batch(handler, 10);
            wait_until(done, 20ms);  // pacing between batches, not synchronisation
        }
        return true;
    }
    void expect_all_succeeded() {
        for (auto& id : ids) {
            auto t = client.wait_final(id, 60s);
            ASSERT_TRUE(t.has_value()) << "task " << id << " was lost";
            ASSERT_EQ(t->state, "SUCCEEDED") << id << ": " << t->error;
        }
    }
};

TEST_F(PluginPlatform, HostileFilesDroppedUnderLoadAreRefusedByNameAndUpgradesStillApply) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    start(plugin_dir(), 2, 4);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 2); }, 30s)) << host->log_text();
    event_log events(broker->ep().events);
    events.drain(100ms);
    const std::size_t starts = log_count("worker started");
    task_stream tasks{*client, {}};

    drop(ctor_plugin("ctor_exit"), "exit.so");
    drop(ctor_plugin("ctor_segv"), "segv.so");
    put_truncated("truncated.so");
    auto all_refused = [&] {
        return log_count("plugin refused: exit.so: the library ended the process while loading (exit status 0)") == 1 &&
               log_count("plugin refused: segv.so: ") == 1 && log_count("plugin refused: truncated.so: ") == 1;
    };
    ASSERT_TRUE(tasks.until("ver.which", all_refused, 30s)) << host->log_text();
    for (const char* f : {"exit.so", "segv.so", "truncated.so"}) {
        EXPECT_TRUE(refused_event(events, f, 10s)) << f;
    }
    ASSERT_NO_FATAL_FAILURE(tasks.batch("ver.which", 50));
    EXPECT_EQ(log_count("worker started"), starts) << host->log_text();

    // An upgrade of another file, the bad ones still in the folder.
    put("v2", "ver.so");
    ASSERT_TRUE(tasks.until(
        "ver.which", [&] { return serving_exactly({"2.0.0"}, 2); }, 30s))
        << host->log_text();
    EXPECT_EQ(log_count("worker started"), starts + 2) << host->log_text();
    EXPECT_EQ(run_which("ver.which"), "2.0.0");
    ASSERT_NO_FATAL_FAILURE(tasks.expect_all_succeeded());
    EXPECT_EQ(host->log_text().find("recycled"), std::string::npos) << host->log_text();
    EXPECT_TRUE(host->running());
}

TEST_F(PluginPlatform, HostStartedWithHostileFilesServesTheRest) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    drop(ctor_plugin("ctor_exit"), "exit.so");
    drop(ctor_plugin("ctor_segv"), "segv.so");
    put_truncated("truncated.so");
    start(plugin_dir(), 1, 2);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 1); }, 30s)) << host->log_text();
    EXPECT_EQ(run_which("ver.which"), "1.0.0");
    for (const char* f : {"exit.so", "segv.so", "truncated.so"}) {
        EXPECT_EQ(log_count(std::string("plugin refused: ") + f + ": "), 1u) << f << "\n" << host->log_text();
    }
    EXPECT_EQ(log_count("worker started"), 1u) << host->log_text();
}

TEST_F(PluginPlatform, BadReplacementKeepsThePreviousVersionWhileOtherChangesApply) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    start(plugin_dir(), 1, 2);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 1); }, 30s)) << host->log_text();

    put_truncated("ver.so");  // over the served file, in place
    put("v2", "ver2.so");
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0", "2.0.0"}, 1); }, 30s)) << host->log_text();
    EXPECT_EQ(run_which("ver.which@1"), "1.0.0");
    EXPECT_EQ(run_which("ver.which@2"), "2.0.0");
    EXPECT_EQ(log_count("plugin refused: ver.so: "), 1u) << host->log_text();
    EXPECT_EQ(log_count("(its previous version keeps serving)"), 1u) << host->log_text();
}

TEST_F(PluginPlatform, AGenerationWhoseWorkersCrashLoadingIsAbandonedForThePreviousOne) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver.so");
    start(plugin_dir(), 2, 4);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0"}, 2); }, 30s)) << host->log_text();
    ASSERT_TRUE(wait_until([&] { return log_count("worker ready pid=") == 2; }, 10s)) << host->log_text();
    event_log events(broker->ep().events);
    events.drain(100ms);
    task_stream tasks{*client, {}};

    // Passes --check, kills every worker that loads it.
    drop(ctor_plugin("ctor_segv_in_worker"), "crashy.so");
    auto abandoned = [&] { return log_count("generation 1 abandoned") == 1; };
    ASSERT_TRUE(tasks.until("ver.which", abandoned, 30s)) << host->log_text();
    EXPECT_TRUE(refused_event(events, "crashy.so", 10s));
    EXPECT_NE(host->log_text().find("while loading plugin crashy.so"), std::string::npos) << host->log_text();
    ASSERT_TRUE(tasks.until(
        "ver.which", [&] { return serving_exactly({"1.0.0"}, 2); }, 30s))
        << host->log_text();
    for (auto& w : client->workers()) {
        EXPECT_GE(w.generation, 2u);
    }

    // That folder state is not tried again: the worker starts stop.
    const std::size_t starts = log_count("worker started");
    EXPECT_FALSE(wait_until([&] { return log_count("worker started") > starts; }, 1s)) << host->log_text();

    // A later good change applies, still without the crashing file.
    put("v3", "ver3.so");
    ASSERT_TRUE(tasks.until(
        "ver.which@1",
        [&] {
            return serving_exactly({"1.0.0", "3.0.0"}, 2);
        },
        30s))
        << host->log_text();
    ASSERT_NO_FATAL_FAILURE(tasks.expect_all_succeeded());
}

TEST_F(PluginPlatform, TwoMajorVersionsServeSideBySide) {
    ASSERT_NO_FATAL_FAILURE(make_plugin_dir());
    put("v1", "ver1.so");
    put("v2", "ver2.so");
    start(plugin_dir(), 1, 4);
    ASSERT_TRUE(wait_until([&] { return serving_exactly({"1.0.0", "2.0.0"}, 1); }, 30s)) << host->log_text();

    std::vector<tp::task_spec> specs;
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"ver.which@1", "1.0.0"}, {"ver.which@2", "2.0.0"}, {"ver.which", "2.0.0"}, {"ver.which@1.0.0", "1.0.0"}};
    for (int i = 0; i < 20; ++i) {
        for (auto& [handler, want] : cases) {
            specs.push_back(task(handler));
        }
    }
    auto ids = client->submit(specs);
    ASSERT_EQ(ids.size(), specs.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto t = client->wait_final(ids[i], 30s);
        ASSERT_TRUE(t.has_value());
        ASSERT_EQ(t->state, "SUCCEEDED") << specs[i].handler << ": " << t->error;
        EXPECT_EQ(from_msgpack(*t->result), cases[i % cases.size()].second) << specs[i].handler;
    }
}

TEST_F(PluginPlatform, CheckpointedTaskResumesAfterItsWorkerIsKilled) {
    constexpr int steps = 10;
    constexpr int step_ms = 300;
    constexpr int kill_after = 5;  // steps done (and checkpointed) when the kill is aimed
    start(build_paths::plugins(), 1, 1);
    ASSERT_TRUE(wait_until([&] { return client->workers().size() == 1; }, 30s)) << host->log_text();

    auto spec = task("demo.checkpoint", {{"steps", steps}, {"ms", step_ms}});
    spec.retries = 3;
    auto ids = client->submit({spec});
    ASSERT_EQ(ids.size(), 1u);

    // demo.checkpoint reports no progress and its checkpoints are not
    // visible to clients, so the kill is aimed by the broker's start time
    // (step k is saved, and acknowledged, no earlier than started + k *
    // step_ms) and what was saved is bounded afterwards by the kill time.
    int64_t victim = 0;
    int64_t started = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = client->status(ids[0]);
            if (!t || t->state != "RUNNING" || t->started_ms == 0) {
                return false;
            }
            victim = pid_of(t->worker);
            started = t->started_ms;
            return victim > 0 && unix_now_ms() - started >= kill_after * step_ms + step_ms / 2;
        },
        30s));
    ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
    const int64_t saved_at_most = (unix_now_ms() - started) / step_ms;

    auto t = client->wait_final(ids[0], 60s);
    ASSERT_TRUE(t.has_value()) << host->log_text();
    ASSERT_EQ(t->state, "SUCCEEDED") << t->error;
    EXPECT_EQ(t->attempts, 2u);
    auto r = from_msgpack(*t->result);
    int64_t from = r.at("resumed_from").get<int64_t>();
    EXPECT_GE(from, 1) << "the second attempt started over: " << r.dump();
    EXPECT_LE(from, saved_at_most) << r.dump();
    // The second attempt ran exactly the steps after the last checkpoint.
    nlohmann::json want = nlohmann::json::array();
    for (int64_t i = from; i < steps; ++i) {
        want.push_back(i);
    }
    EXPECT_EQ(r.at("ran"), want);
}

TEST_F(PluginPlatform, SpawnedSubtasksRecordTheirParent) {
    start(build_paths::plugins(), 1, 4);
    ASSERT_TRUE(wait_until([&] { return client->workers().size() == 1; }, 30s)) << host->log_text();

    auto ids = client->submit({task("demo.spawn", {{"n", 3}})});
    ASSERT_EQ(ids.size(), 1u);
    auto parent = client->wait_final(ids[0], 30s);
    ASSERT_TRUE(parent.has_value());
    ASSERT_EQ(parent->state, "SUCCEEDED") << parent->error;
    ASSERT_EQ(parent->children.size(), 3u);
    auto spawned = from_msgpack(*parent->result).at("ids").get<std::vector<std::string>>();
    EXPECT_EQ(std::set<std::string>(spawned.begin(), spawned.end()),
              std::set<std::string>(parent->children.begin(), parent->children.end()));

    std::set<int64_t> seen;
    for (auto& id : parent->children) {
        auto child = client->wait_final(id, 30s);
        ASSERT_TRUE(child.has_value()) << "child " << id << " did not finish";
        EXPECT_EQ(child->state, "SUCCEEDED") << child->error;
        EXPECT_EQ(child->parent, ids[0]);
        EXPECT_EQ(child->handler, "echo.echo");
        seen.insert(from_msgpack(*child->result).at("i").get<int64_t>());
    }
    EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2}));
}

}  // namespace
