// Deployment: config files and the environment, graceful shutdown of host
// and broker, CURVE on the wire, plugin-folder strict modes, and a late
// result from a partitioned worker.
#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

int exit_code(const std::optional<int>& status) { return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1; }

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::trunc);
    out << text;
}

// Runs a program to completion with its output in `log`; returns the exit
// code and the output.
std::pair<int, std::string> run(const fs::path& dir, const std::string& name, std::vector<std::string> argv,
                                std::vector<std::string> env = {}) {
    process p(std::move(argv), dir / (name + ".log"), std::move(env));
    int code = exit_code(p.wait_exit(30s));
    return {code, p.log_text()};
}

fs::path shipped(const std::string& name) { return build_paths::source_dir() / "configs" / name; }

std::map<std::string, uint64_t> counters(wire_client& c) {
    auto rep = c.call(tp::cmd::stats, {});
    if (!rep || !rep->stats) {
        return {};
    }
    return rep->stats->counters;
}

class Deployment : public ::testing::Test {
protected:
    temp_dir tmp;
};

TEST_F(Deployment, ConfigErrorsNameFileLineAndKey) {
    auto bad_key = tmp.path() / "bad_key.ini";
    write_text(bad_key, "# comment\n\nheartbeat-ms = 500\nfrobnicate = 3\n");
    auto [code1, out1] = run(tmp.path(), "b1", {build_paths::broker().string(), "--config", bad_key.string()});
    EXPECT_EQ(code1, 2);
    EXPECT_NE(out1.find(bad_key.string() + ":4"), std::string::npos) << out1;
    EXPECT_NE(out1.find("frobnicate"), std::string::npos) << out1;

    auto bad_value = tmp.path() / "bad_value.ini";
    write_text(bad_value, "log-level = info\n\nliveness-ms = soon\n");
    auto [code2, out2] = run(tmp.path(), "b2", {build_paths::broker().string(), "--config", bad_value.string()});
    EXPECT_EQ(code2, 2);
    EXPECT_NE(out2.find(bad_value.string() + ":3"), std::string::npos) << out2;
    EXPECT_NE(out2.find("liveness-ms"), std::string::npos) << out2;

    auto missing = tmp.path() / "missing.ini";
    auto [code3, out3] = run(tmp.path(), "b3", {build_paths::broker().string(), "--config", missing.string()});
    EXPECT_EQ(code3, 2);
    EXPECT_NE(out3.find(missing.string()), std::string::npos) << out3;

    auto host_bad = tmp.path() / "host_bad.ini";
    write_text(host_bad, "processes = 1\nconcurency = 4\n");
    auto [code4, out4] = run(tmp.path(), "h1", {build_paths::host().string(), "--config", host_bad.string()});
    EXPECT_EQ(code4, 2);
    EXPECT_NE(out4.find(host_bad.string() + ":2"), std::string::npos) << out4;
    EXPECT_NE(out4.find("concurency"), std::string::npos) << out4;

    auto [code5, out5] = run(tmp.path(), "h2", {build_paths::host().string(), "--config", missing.string()});
    EXPECT_EQ(code5, 2);
    EXPECT_NE(out5.find(missing.string()), std::string::npos) << out5;
}

TEST_F(Deployment, BadLogLevelAndHttpOptionsExitTwoBeforeStarting) {
    const auto broker = build_paths::broker().string();
    const auto data = (tmp.path() / "data").string();
    for (const std::string& bin : {broker, build_paths::host().string()}) {
        auto [code, out] = run(tmp.path(), "level", {bin, "--log-level", "verbose", "--print-config"});
        EXPECT_EQ(code, 2) << bin << ": " << out;
        EXPECT_NE(out.find("verbose"), std::string::npos) << out;
    }
    const std::vector<std::vector<std::string>> bad = {
        {"--http", "127.0.0.1"},        // no port
        {"--http", "127.0.0.1:99999"},  // port out of range
        {"--http", "127.0.0.1:80x"},    // not a number
        {"--http", "127.0.0.1:0", "--http-token", "nocolons"},
        {"--http", "127.0.0.1:0", "--http-token", "ops:admin:secret"},
        {"--http", "127.0.0.1:0", "--http-anonymous", "everyone"},
    };
    for (const auto& flags : bad) {
        for (bool print : {true, false}) {
            std::vector<std::string> argv = {broker,
                                             "--data-dir",
                                             data,
                                             "--frontend",
                                             "tcp://127.0.0.1:0",
                                             "--backend",
                                             "tcp://127.0.0.1:0",
                                             "--events",
                                             ""};
            argv.insert(argv.end(), flags.begin(), flags.end());
            if (print) {
                argv.push_back("--print-config");
            }
            auto [code, out] = run(tmp.path(), "http", argv);
            EXPECT_EQ(code, 2) << flags[flags.size() - 1] << (print ? " --print-config" : "") << ": " << out;
            EXPECT_NE(out.find("--http"), std::string::npos) << out;
        }
    }
}

TEST_F(Deployment, BadValuesExitTwoNamingWhatIsAllowed) {
    auto [bc, bout] = run(tmp.path(), "bl", {build_paths::broker().string(), "--log-level", "nonsense"});
    EXPECT_EQ(bc, 2) << bout;
    EXPECT_NE(bout.find("--log-level: 'nonsense' is not one of trace debug info warn error critical off"),
              std::string::npos)
        << bout;
    auto [hc, hout] = run(tmp.path(), "hb", {build_paths::host().string(), "--processes", "-1"});
    EXPECT_EQ(hc, 2) << hout;
    EXPECT_NE(hout.find("--processes: '-1' is not a whole number"), std::string::npos) << hout;
    auto host_ini = tmp.path() / "host.ini";
    write_text(host_ini, "processes = 2\nwatch = sometimes\n");
    auto [fc, fout] = run(tmp.path(), "hf", {build_paths::host().string(), "--config", host_ini.string()});
    EXPECT_EQ(fc, 2) << fout;
    EXPECT_NE(fout.find(host_ini.string() + ":2: watch: 'sometimes' is not one of true false"), std::string::npos)
        << fout;
}

// What --print-config prints is an INI file giving the same configuration.
TEST_F(Deployment, PrintedConfigLoadsBackToTheSameConfiguration) {
    struct binary {
        fs::path exe;
        std::string ini;
    };
    for (const auto& b : {binary{build_paths::broker(), "broker.ini"}, binary{build_paths::host(), "host.ini"}}) {
        auto [c1, first] =
            run(tmp.path(), "p1-" + b.ini,
                {b.exe.string(), "--config", shipped(b.ini).string(), "--heartbeat-ms", "250", "--print-config"},
                {"TASKMILL_LOG_LEVEL=warn"});
        ASSERT_EQ(c1, 0) << first;
        EXPECT_NE(first.find("# from --heartbeat-ms\nheartbeat-ms = 250\n"), std::string::npos) << first;
        EXPECT_NE(first.find("# from TASKMILL_LOG_LEVEL\nlog-level = warn\n"), std::string::npos) << first;
        auto printed = tmp.path() / ("printed-" + b.ini);
        write_text(printed, first);
        auto [c2, second] =
            run(tmp.path(), "p2-" + b.ini, {b.exe.string(), "--config", printed.string(), "--print-config"});
        ASSERT_EQ(c2, 0) << second;
        // Same values; only the "# from" lines now name the printed file.
        auto values = [](const std::string& text) {
            std::string out;
            std::istringstream in(text);
            for (std::string line; std::getline(in, line);) {
                if (line.rfind("# from", 0) != 0) out += line + "\n";
            }
            return out;
        };
        EXPECT_EQ(values(second), values(first)) << b.ini;
    }
}

TEST_F(Deployment, AHostWithNoBrokerAtItsEndpointWarnsNamingIt) {
    // A port that is bound but not listening: every connect is refused.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), len), 0);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    const auto endpoint = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    auto host = start_host(tmp.path(), {.backend = endpoint, .processes = 1, .concurrency = 1});
    EXPECT_TRUE(wait_until(
        [&] {
            auto log = host->log_text();
            return log.find("no WELCOME") != std::string::npos && log.find(endpoint) != std::string::npos;
        },
        20s))
        << host->log_text();
    ::close(fd);
}

TEST_F(Deployment, ShippedConfigsParseAndFlagBeatsEnvironmentBeatsFile) {
    auto [bc, bout] =
        run(tmp.path(), "bp",
            {build_paths::broker().string(), "--config", shipped("broker.ini").string(), "--print-config"});
    ASSERT_EQ(bc, 0) << bout;
    EXPECT_NE(bout.find("data-dir = /var/lib/taskmill"), std::string::npos) << bout;
    auto [hc, hout] = run(tmp.path(), "hp",
                          {build_paths::host().string(), "--config", shipped("host.ini").string(), "--print-config"});
    ASSERT_EQ(hc, 0) << hout;
    EXPECT_NE(hout.find("processes = 2"), std::string::npos) << hout;

    // File says info; the environment says warn; a flag says error.
    auto [c1, o1] = run(tmp.path(), "pe",
                        {build_paths::broker().string(), "--config", shipped("broker.ini").string(), "--print-config"},
                        {"TASKMILL_LOG_LEVEL=warn", "TASKMILL_HEARTBEAT_MS=250"});
    ASSERT_EQ(c1, 0) << o1;
    EXPECT_NE(o1.find("log-level = warn"), std::string::npos) << o1;
    EXPECT_NE(o1.find("heartbeat-ms = 250"), std::string::npos) << o1;
    auto [c2, o2] = run(tmp.path(), "pf",
                        {build_paths::broker().string(), "--config", shipped("broker.ini").string(), "--log-level",
                         "error", "--print-config"},
                        {"TASKMILL_LOG_LEVEL=warn"});
    ASSERT_EQ(c2, 0) << o2;
    EXPECT_NE(o2.find("log-level = error"), std::string::npos) << o2;
    auto [c3, o3] = run(tmp.path(), "ph",
                        {build_paths::host().string(), "--config", shipped("host.ini").string(), "--print-config"},
                        {"TASKMILL_CONCURRENCY=7", "TASKMILL_BROKER=tcp://10.0.0.1:1"});
    ASSERT_EQ(c3, 0) << o3;
    EXPECT_NE(o3.find("concurrency = 7"), std::string::npos) << o3;
    // TASKMILL_BROKER is the client's frontend; the host keeps its backend.
    EXPECT_NE(o3.find("broker = tcp://127.0.0.1:5556"), std::string::npos) << o3;
    auto [c4, o4] =
        run(tmp.path(), "pb", {build_paths::broker().string(), "--print-config"}, {"TASKMILL_HEARTBEAT_MS=often"});
    EXPECT_EQ(c4, 2) << o4;
    EXPECT_NE(o4.find("heartbeat-ms"), std::string::npos) << o4;
}

// The shipped files, with only what must differ on a shared test machine
// (folders, ports) given through the environment.
TEST_F(Deployment, BrokerAndTwoHostsStartFromTheShippedConfigFiles) {
    auto data = tmp.path() / "data";
    fs::create_directories(data);
    process broker(
        {build_paths::broker().string(), "--config", shipped("broker.ini").string()}, tmp.path() / "broker.log",
        {"TASKMILL_DATA_DIR=" + data.string(), "TASKMILL_FRONTEND=tcp://127.0.0.1:0",
         "TASKMILL_BACKEND=tcp://127.0.0.1:0", "TASKMILL_EVENTS=tcp://127.0.0.1:0", "TASKMILL_DURABILITY=none"});
    ASSERT_TRUE(wait_until([&] { return fs::exists(data / "endpoints.json") || !broker.running(); }, 20s));
    ASSERT_TRUE(fs::exists(data / "endpoints.json")) << broker.log_text();
    auto ep = nlohmann::json::parse(read_file(data / "endpoints.json"));
    std::vector<std::unique_ptr<process>> hosts;
    for (int i = 0; i < 2; ++i) {
        auto run_dir = tmp.path() / ("run" + std::to_string(i));
        hosts.push_back(std::make_unique<process>(
            std::vector<std::string>{build_paths::host().string(), "--config", shipped("host.ini").string()},
            tmp.path() / ("host" + std::to_string(i) + ".log"),
            std::vector<std::string>{"TASKMILL_BROKER_BACKEND=" + ep["backend"].get<std::string>(),
                                     "TASKMILL_PLUGINS=" + build_paths::plugins().string(),
                                     "TASKMILL_RUN_DIR=" + run_dir.string()}));
    }
    wire_client client(ep["frontend"].get<std::string>());
    // host.ini: 2 processes each.
    ASSERT_TRUE(wait_until([&] { return client.workers().size() == 4; }, 30s)) << hosts[0]->log_text();
    auto ids = client.submit({task("echo.echo", {{"n", 1}}), task("echo.echo", {{"n", 2}})});
    ASSERT_EQ(ids.size(), 2u);
    for (const auto& id : ids) {
        auto t = client.wait_final(id, 30s);
        ASSERT_TRUE(t);
        EXPECT_EQ(t->state, "SUCCEEDED");
    }
    for (auto& h : hosts) {
        h->signal(SIGTERM);
        EXPECT_EQ(exit_code(h->wait_exit(30s)), 0) << h->log_text();
    }
    broker.signal(SIGTERM);
    EXPECT_EQ(exit_code(broker.wait_exit(30s)), 0) << broker.log_text();
}

TEST_F(Deployment, CurveAdmitsAllowedKeysOnlyAndRefusedClientsReachNothing) {
    for (auto name : {"broker", "client", "host", "stranger"}) {
        auto r = run_cli(tmp.path(), {"keygen", (tmp.path() / name).string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
    }
    struct stat st {};
    ASSERT_EQ(::stat((tmp.path() / "client.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto key = [&](const std::string& f) { return (tmp.path() / f).string(); };
    broker_process broker(tmp.path() / "data", {"--curve-key-file", key("broker.key"), "--allow-client",
                                                key("client.pub"), "--allow-host", key("host.pub")});
    auto host = start_host(tmp.path(),
                           {.backend = broker.ep().backend,
                            .extra = {"--curve-server-key", key("broker.pub"), "--curve-key-file", key("host.key")}});
    auto as = [&](const std::string& who, std::vector<std::string> args) {
        std::vector<std::string> all{"--broker", broker.ep().frontend, "--timeout", "2"};
        if (!who.empty()) {
            all.insert(all.end(), {"--server-key", key("broker.pub"), "--key-file", key(who + ".key")});
        }
        all.insert(all.end(), args.begin(), args.end());
        return run_cli(tmp.path(), all);
    };
    auto ok = as("client", {"submit", "echo.echo", "--payload", R"({"secret":42})", "--wait"});
    EXPECT_EQ(ok.exit_code, 0) << ok.err << host->log_text();
    EXPECT_NE(ok.out.find("42"), std::string::npos);

    auto stranger = as("stranger", {"submit", "echo.echo", "--payload", "{}"});
    EXPECT_EQ(stranger.exit_code, 3) << stranger.out;
    auto plain = as("", {"submit", "echo.echo", "--payload", "{}"});
    EXPECT_EQ(plain.exit_code, 3) << plain.out;
    // A plain wire client is not answered either.
    wire_client raw(broker.ep().frontend);
    EXPECT_FALSE(raw.call(tp::cmd::ping, {}, 500ms).has_value());

    auto list = as("client", {"--json", "tasks"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    auto tasks = nlohmann::json::parse(list.out);
    EXPECT_EQ(tasks.size(), 1u) << list.out;

    auto log = broker.proc().log_text();
    EXPECT_NE(log.find("curve refused socket=frontend"), std::string::npos) << log;
    auto stranger_pub = read_file(tmp.path() / "stranger.pub");
    EXPECT_NE(log.find(stranger_pub.substr(0, 40)), std::string::npos) << log;

    // A host with a key the broker does not list never joins.
    auto intruder =
        start_host(tmp.path(),
                   {.backend = broker.ep().backend,
                    .extra = {"--curve-server-key", key("broker.pub"), "--curve-key-file", key("stranger.key")}},
                   "intruder.log");
    ASSERT_TRUE(wait_until(
        [&] { return broker.proc().log_text().find("curve refused socket=backend") != std::string::npos; }, 20s))
        << broker.proc().log_text();
    auto workers = as("client", {"--json", "workers"});
    ASSERT_EQ(workers.exit_code, 0) << workers.err;
    EXPECT_EQ(nlohmann::json::parse(workers.out).size(), 1u) << workers.out;
}

TEST_F(Deployment, AFrameOverTheConfiguredLimitIsDroppedWithItsConnection) {
    broker_process broker(tmp.path() / "data", {"--max-frame-bytes", "4096", "--max-body-bytes", "2048"});
    {
        wire_client big(broker.ep().frontend);
        auto spec = task("echo.echo", {{"blob", std::string(8000, 'x')}});
        EXPECT_FALSE(big.call(
            tp::cmd::submit,
            [&] {
                tp::request r;
                r.tasks = {spec};
                return r;
            }(),
            1s));
    }
    wire_client small(broker.ep().frontend);
    auto ids = small.submit({task("echo.echo", {{"n", 1}})});
    EXPECT_EQ(ids.size(), 1u);
    auto rep = small.call(tp::cmd::stats, {});
    ASSERT_TRUE(rep && rep->stats);
    EXPECT_EQ(rep->stats->counters["submitted"], 1u);
}

TEST_F(Deployment, SigtermOnABusyHostCompletesEveryTaskExactlyOnce) {
    broker_process broker(tmp.path() / "data", {"--durability", "none"});
    event_log events(broker.ep().events);
    wire_client client(broker.ep().frontend);
    auto first =
        start_host(tmp.path(),
                   {.backend = broker.ep().backend, .processes = 2, .concurrency = 2, .extra = {"--grace-ms", "20000"}},
                   "host1.log");
    ASSERT_TRUE(wait_until([&] { return client.workers().size() == 2; }, 30s)) << first->log_text();
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 16; ++i) {
        specs.push_back(task("demo.sleep", {{"ms", 400}}));
    }
    auto ids = client.submit(specs);
    ASSERT_EQ(ids.size(), 16u);
    // Stop it while every slot is busy.
    ASSERT_TRUE(wait_until(
        [&] {
            std::size_t running = 0;
            for (auto& w : client.workers()) {
                running += w.busy;
            }
            return running == 4;
        },
        20s));
    first->signal(SIGTERM);
    auto second =
        start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 4}, "host2.log");
    EXPECT_EQ(exit_code(first->wait_exit(30s)), 0) << first->log_text();
    for (const auto& id : ids) {
        auto t = client.wait_final(id, 60s);
        ASSERT_TRUE(t) << id;
        EXPECT_EQ(t->state, "SUCCEEDED") << id << " " << t->error;
        EXPECT_EQ(t->attempts, 1u) << id;
    }
    events.drain(200ms);
    for (const auto& id : ids) {
        int runs = 0;
        for (auto& e : events.of(id)) {
            runs += e.value("type", "") == "task.running" ? 1 : 0;
        }
        EXPECT_EQ(runs, 1) << "task " << id << " started " << runs << " times";
    }
    EXPECT_EQ(counters(client)["duplicates"], 0u);
}

// Tasks still running when the grace period ends go back to the broker and
// finish elsewhere: started twice, finished once, nothing lost.
TEST_F(Deployment, TasksOutlivingTheGracePeriodAreHandedBackAndFinishOnce) {
    broker_process broker(tmp.path() / "data", {"--durability", "none"});
    event_log events(broker.ep().events);
    wire_client client(broker.ep().frontend);
    auto first = start_host(
        tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 2, .extra = {"--grace-ms", "300"}},
        "host1.log");
    ASSERT_TRUE(wait_until([&] { return client.workers().size() == 1; }, 30s)) << first->log_text();
    auto ids = client.submit({task("demo.sleep", {{"ms", 1500}}), task("demo.sleep", {{"ms", 1500}})});
    ASSERT_EQ(ids.size(), 2u);
    ASSERT_TRUE(wait_until(
        [&] {
            auto w = client.workers();
            return w.size() == 1 && w[0].busy == 2;
        },
        20s));
    first->signal(SIGTERM);
    ASSERT_TRUE(first->wait_exit(30s)) << first->log_text();
    auto second =
        start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 2}, "host2.log");
    for (const auto& id : ids) {
        auto t = client.wait_final(id, 60s);
        ASSERT_TRUE(t) << id << broker.proc().log_text();
        EXPECT_EQ(t->state, "SUCCEEDED") << t->error;
        EXPECT_EQ(t->attempts, 2u) << "the first attempt was cut short by the grace period";
    }
    // Events may trail the STATUS replies by far more than a fixed wait on a
    // loaded machine: wait for both successes, then count them.
    for (const auto& id : ids) {
        EXPECT_TRUE(events.wait_for(
            [&](const nlohmann::json& e) { return e.value("id", "") == id && e.value("type", "") == "task.succeeded"; },
            10s));
    }
    events.drain(100ms);
    for (const auto& id : ids) {
        int finished = 0;
        for (auto& e : events.of(id)) {
            finished += e.value("type", "") == "task.succeeded" ? 1 : 0;
        }
        EXPECT_EQ(finished, 1) << id;
    }
}

TEST_F(Deployment, SigtermOnTheBrokerCommitsAndClosesCleanly) {
    auto data = tmp.path() / "data";
    std::string id;
    {
        broker_process broker(data, {"--durability", "sync"});
        wire_client client(broker.ep().frontend);
        auto spec = task("echo.echo", {{"kept", true}});
        spec.queue = "nobody-serves-this";
        auto ids = client.submit({spec});
        ASSERT_EQ(ids.size(), 1u);
        id = ids[0];
        broker.proc().signal(SIGTERM);
        EXPECT_EQ(exit_code(broker.proc().wait_exit(20s)), 0) << broker.proc().log_text();
        EXPECT_NE(broker.proc().log_text().find("broker stopped"), std::string::npos);
    }
    broker_process again(data, {}, "broker2.log");
    wire_client client(again.ep().frontend);
    auto t = client.status(id);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->state, "QUEUED");
}

// A worker cut off from the broker keeps running its task; the broker
// requeues it after the liveness window, another worker finishes it, and
// the cut-off worker's result arrives last: one result, one duplicate.
TEST_F(Deployment, LateResultFromAPartitionedWorkerIsCountedAsADuplicate) {
    broker_process broker(tmp.path() / "data", {"--heartbeat-ms", "200", "--liveness-ms", "1000"});
    wire_client client(broker.ep().frontend);
    zmq::context_t ctx(1);
    zmq::socket_t fake(ctx, zmq::socket_type::dealer);
    fake.set(zmq::sockopt::routing_id, "partitioned:1");
    fake.set(zmq::sockopt::linger, 0);
    fake.connect(broker.ep().backend);
    tp::hello h;
    h.worker = "partitioned:1";
    h.host = "partitioned";
    h.pid = 1;
    h.slots = 1;
    h.queues = {"cut"};
    h.handlers = {{"demo.sleep", "1.0.0", "demo"}};
    ASSERT_TRUE(tp::send(fake, "", tp::cmd::hello, tp::encode(h)));
    ASSERT_TRUE(wait_until([&] { return client.workers().size() == 1; }, 10s));

    auto spec = task("demo.sleep", {{"ms", 10}});
    spec.queue = "cut";
    auto ids = client.submit({spec});
    ASSERT_EQ(ids.size(), 1u);
    std::optional<tp::work_item> got;
    ASSERT_TRUE(wait_until(
        [&] {
            while (auto in = tp::try_recv(fake, false)) {
                if (in->msg && in->msg->command == tp::cmd::dispatch) {
                    auto d = tp::decode_dispatch(in->msg->body);
                    if (d && !d->tasks.empty()) {
                        got = d->tasks[0];
                    }
                }
            }
            return got.has_value();
        },
        10s));
    EXPECT_EQ(got->id, ids[0]);

    // The fake worker now goes silent; a real host serving the queue picks
    // the task up once the broker gives up on the fake one.
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .extra = {"--queues", "cut"}});
    auto t = client.wait_final(ids[0], 30s);
    ASSERT_TRUE(t) << host->log_text();
    EXPECT_EQ(t->state, "SUCCEEDED");
    EXPECT_NE(t->worker, "partitioned:1");
    auto real_result = t->result;

    // The link comes back: the worker says hello again and reports.
    ASSERT_TRUE(tp::send(fake, "", tp::cmd::hello, tp::encode(h)));
    tp::results r;
    tp::outcome o;
    o.id = got->id;
    o.attempt = got->attempt;
    o.status = "ok";
    auto late = nlohmann::json::to_msgpack(nlohmann::json{{"late", true}});
    o.result.assign(late.begin(), late.end());
    r.items.push_back(o);
    ASSERT_TRUE(tp::send(fake, "", tp::cmd::results, tp::encode(r)));
    ASSERT_TRUE(wait_until([&] { return counters(client)["duplicates"] == 1; }, 10s));
    auto after = client.status(ids[0]);
    ASSERT_TRUE(after);
    EXPECT_EQ(after->state, "SUCCEEDED");
    EXPECT_EQ(after->result, real_result);
    EXPECT_EQ(counters(client)["succeeded"], 1u);
}

TEST_F(Deployment, StrictModesRefuseAWorldWritablePluginsFolderUnlessOverridden) {
    auto plugins = tmp.path() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(build_paths::plugins() / "echo.so", plugins / "echo.so");
    fs::permissions(plugins, fs::perms::all);  // 0777
    broker_process broker(tmp.path() / "data");
    wire_client client(broker.ep().frontend);
    auto handlers = [&] {
        std::size_t n = 0;
        for (auto& w : client.workers()) {
            n += w.handlers.size();
        }
        return n;
    };
    {
        auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .plugins = plugins}, "strict.log");
        ASSERT_TRUE(wait_until([&] { return client.workers().size() == 1; }, 30s)) << host->log_text();
        EXPECT_EQ(handlers(), 0u);
        EXPECT_TRUE(wait_until([&] { return host->log_text().find("strict modes") != std::string::npos; }, 5s))
            << host->log_text();
        host->signal(SIGTERM);
        ASSERT_TRUE(host->wait_exit(20s));
    }
    ASSERT_TRUE(wait_until([&] { return client.workers().empty(); }, 20s));
    auto host = start_host(
        tmp.path(),
        {.backend = broker.ep().backend, .plugins = plugins, .extra = {"--strict-modes=false", "--watch=false"}},
        "loose.log");
    ASSERT_TRUE(wait_until([&] { return handlers() == 1; }, 30s)) << host->log_text();
    EXPECT_NE(host->log_text().find("STRICT MODES OFF"), std::string::npos);
}

}  // namespace
