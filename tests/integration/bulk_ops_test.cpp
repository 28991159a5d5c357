// The operator verbs against a real broker: the CLI's purge, cancel by
// queue, bulk retry, delete and run-now; a large job that spans many loop
// turns while other clients are served; a SIGKILL in the middle of a job.
#include "harness.hpp"

#include <csignal>
#include <regex>

#include <gtest/gtest.h>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

tp::task_spec in_queue(const std::string& queue, int64_t delay_ms = 0) {
    auto t = task("echo.echo", 1);
    t.queue = queue;
    if (delay_ms > 0) {
        t.delay_ms = delay_ms;
    }
    return t;
}

std::vector<std::string> submit_many(wire_client& c, const tp::task_spec& t, std::size_t n) {
    std::vector<std::string> ids;
    while (ids.size() < n) {
        auto batch = c.submit(std::vector<tp::task_spec>(std::min<std::size_t>(10000, n - ids.size()), t), 60s);
        if (batch.empty()) {
            break;
        }
        ids.insert(ids.end(), batch.begin(), batch.end());
    }
    return ids;
}

std::string state_of(wire_client& c, const std::string& id) {
    auto t = c.status(id);
    return t ? t->state : "none";
}

std::optional<tp::job_info> job(wire_client& c, uint64_t id) {
    tp::request rq;
    rq.job = id;
    auto rep = c.call(tp::cmd::job, rq);
    return rep && rep->ok ? rep->job : std::nullopt;
}

uint64_t count_in(wire_client& c, const std::string& state) {
    auto rep = c.call(tp::cmd::stats, {});
    if (!rep || !rep->stats) {
        return UINT64_MAX;
    }
    auto it = rep->stats->states.find(state);
    return it == rep->stats->states.end() ? 0 : it->second;
}

}  // namespace

// No host: the tasks stay where the verbs put them.
TEST(BulkOps, CliPurgeCancelRetryDeleteRunNow) {
    temp_dir tmp;
    broker_process broker(tmp.path() / "data");
    wire_client c(broker.ep().frontend);
    auto cli = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"--broker", broker.ep().frontend});
        return run_cli(tmp.path(), std::move(args));
    };
    auto q = c.submit(std::vector<tp::task_spec>(5, in_queue("q")));
    auto q_later = c.submit({in_queue("q", 3600000)});
    auto r = c.submit(std::vector<tp::task_spec>(2, in_queue("r")));
    ASSERT_EQ(q.size(), 5u);
    ASSERT_EQ(r.size(), 2u);

    auto purged = cli({"queue", "purge", "q"});
    EXPECT_EQ(purged.exit_code, 0) << purged.err;
    EXPECT_EQ(purged.out, "purged 6 task(s)\n");
    EXPECT_EQ(state_of(c, q_later[0]), "CANCELLED");

    auto cancelled = cli({"cancel", "--queue", "r"});
    EXPECT_EQ(cancelled.out, "cancelled 2 task(s)\n") << cancelled.err;
    auto retried = cli({"retry", "--state", "cancelled", "--queue", "r"});
    EXPECT_EQ(retried.out, "retried 2 task(s)\n") << retried.err;
    EXPECT_EQ(state_of(c, r[0]), "QUEUED");
    EXPECT_EQ(cli({"retry", "--queue", "r", "--state", "QUEUED"}).exit_code, 2);
    EXPECT_EQ(cli({"cancel", "--no-wait"}).exit_code, 2);  // no filter: refused

    EXPECT_EQ(cli({"delete", r[0]}).exit_code, 2);  // unfinished: conflict
    auto one = cli({"delete", q[0]});
    EXPECT_EQ(one.exit_code, 0) << one.err;
    EXPECT_EQ(state_of(c, q[0]), "none");
    auto by_filter = cli({"delete", "--state", "CANCELLED", "--queue", "q", "--before", "0s"});
    EXPECT_EQ(by_filter.out, "deleted 5 task(s)\n") << by_filter.err;
    EXPECT_EQ(count_in(c, "CANCELLED"), 0u);

    auto later = c.submit({in_queue("r", 3600000)});
    EXPECT_EQ(state_of(c, later[0]), "PENDING");
    auto now = cli({"run-now", later[0]});
    EXPECT_EQ(now.exit_code, 0) << now.err;
    EXPECT_EQ(state_of(c, later[0]), "QUEUED");
    EXPECT_EQ(cli({"run-now", later[0]}).exit_code, 2);

    auto no_wait = cli({"cancel", "--queue", "r", "--no-wait"});
    ASSERT_EQ(no_wait.exit_code, 0) << no_wait.err;
    ASSERT_TRUE(std::regex_match(no_wait.out, std::regex("[0-9]+\n"))) << no_wait.out;
    auto shown = cli({"job", no_wait.out.substr(0, no_wait.out.size() - 1), "--wait"});
    EXPECT_NE(shown.out.find("cancel (queue=r): done, matched 3, changed 3"), std::string::npos) << shown.out;
}

// A purge of 50k tasks runs over many turns, each a bounded slice, while
// another client's PINGs are answered; a SIGKILL mid-job loses nothing: the
// restarted broker resumes the job and every task ends CANCELLED once.
TEST(BulkOps, LargePurgeServesOthersAndSurvivesSigkill) {
    temp_dir tmp;
    constexpr std::size_t n = 50000;
    endpoints at;
    uint64_t job_id = 0;
    {
        broker_process broker(tmp.path() / "data", {"--durability", "none"});
        at = broker.ep();
        wire_client c(broker.ep().frontend);
        wire_client other(broker.ep().frontend);
        ASSERT_EQ(submit_many(c, in_queue("big"), n).size(), n);
        tp::request rq;
        rq.queue = "big";
        auto rep = c.call(tp::cmd::purge, rq);
        ASSERT_TRUE(rep && rep->ok && rep->job);
        ASSERT_EQ(rep->job->state, "running");
        job_id = rep->job->id;
        std::set<uint64_t> seen;  // distinct progress counts while running
        ASSERT_TRUE(wait_until(
            [&] {
                auto pong = other.call(tp::cmd::ping, {}, 2s);
                EXPECT_TRUE(pong.has_value()) << "PING unanswered during the job";
                auto j = job(c, job_id);
                if (j && j->state == "running") {
                    seen.insert(j->changed);
                }
                return seen.size() >= 4 && j && j->changed < n / 2;
            },
            60s))
            << "the job did not show progress over several turns (seen " << seen.size() << ")";
        broker.proc().signal(SIGKILL);
        ASSERT_TRUE(broker.proc().wait_exit(10s).has_value());
    }
    broker_process again(tmp.path() / "data", {"--durability", "none"}, "broker2.log", &at);
    wire_client c(again.ep().frontend);
    std::optional<tp::job_info> j;
    ASSERT_TRUE(wait_until(
        [&] {
            j = job(c, job_id);
            return j && j->state == "done";
        },
        120s));
    EXPECT_EQ(j->matched, n);
    EXPECT_EQ(j->changed, n);
    EXPECT_EQ(count_in(c, "CANCELLED"), n);
    EXPECT_EQ(count_in(c, "QUEUED"), 0u);
    EXPECT_NE(again.proc().log_text().find("resumed"), std::string::npos);
}
