// Codec round trips and rejection of malformed bodies and frames.
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/mp_reader.hpp>
#include <taskmill/protocol/peer_text.hpp>

#include <gtest/gtest.h>

namespace tp = taskmill::protocol;
using namespace std::string_literals;

TEST(Codec, RequestRoundTrip) {
    tp::request r;
    r.req = 42;
    tp::task_spec t;
    t.handler = "echo.echo";
    t.payload = std::string("\x81\xa1x\x01", 4);
    t.priority = 7;
    t.delay_ms = 1500;
    t.tags = {"a", "b"};
    t.notify = true;
    r.tasks.push_back(t);
    r.before = "0123456789abcdef0123456789abcdef";
    auto back = tp::decode_request(tp::encode(r));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->req, 42u);
    EXPECT_EQ(back->before, r.before);
    ASSERT_EQ(back->tasks.size(), 1u);
    EXPECT_EQ(back->tasks[0].handler, "echo.echo");
    EXPECT_EQ(back->tasks[0].payload, t.payload);
    EXPECT_EQ(back->tasks[0].priority, 7);
    EXPECT_FALSE(back->tasks[0].retries.has_value());
    EXPECT_EQ(back->tasks[0].delay_ms, 1500);
    EXPECT_EQ(back->tasks[0].tags, t.tags);
    EXPECT_TRUE(back->tasks[0].notify);
}

TEST(Codec, ReplyWithNestedRecordsRoundTrip) {
    tp::reply r;
    r.req = 9;
    tp::task_info ti;
    ti.id = "abc";
    ti.state = "SUCCEEDED";
    ti.result = std::string("\xc0", 1);
    ti.progress = tp::progress_info{0.5, "half"};
    r.task = ti;
    r.stats = tp::stats_info{};
    r.stats->states["QUEUED"] = 3;
    r.next = "fedcba9876543210fedcba9876543210";
    auto back = tp::decode_reply(tp::encode(r));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->next, r.next);
    ASSERT_TRUE(back->task.has_value());
    EXPECT_EQ(back->task->state, "SUCCEEDED");
    EXPECT_EQ(back->task->result, std::string("\xc0", 1));
    EXPECT_DOUBLE_EQ(back->task->progress->fraction, 0.5);
    EXPECT_EQ(back->stats->states.at("QUEUED"), 3u);
}

TEST(Codec, UnknownKeysAreIgnored) {
    // {"req": 1, "zzz": [1,2]}
    std::string body = "\x82\xa3req\x01\xa3zzz\x92\x01\x02"s;
    auto back = tp::decode_request(body);
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->req, 1u);
}

TEST(Codec, RejectsWrongTypesNamingTheField) {
    // {"tasks": [{"priority": "high"}]}
    std::string body = "\x81\xa5tasks\x91\x81\xa8priority\xa4high"s;
    auto back = tp::decode_request(body);
    ASSERT_FALSE(back.has_value());
    EXPECT_EQ(back.error().code, taskmill::errc::invalid_argument);
    EXPECT_NE(back.error().message.find("priority"), std::string::npos) << back.error().message;
}

TEST(Codec, RejectsGarbageAndTruncation) {
    EXPECT_FALSE(tp::decode_request("").has_value());
    EXPECT_FALSE(tp::decode_request("\x92").has_value());                          // truncated array
    EXPECT_FALSE(tp::decode_request("\x01").has_value());                          // not a map
    EXPECT_FALSE(tp::decode_request(std::string("\x81\x01\x02", 3)).has_value());  // int key
    tp::request r;
    auto ok = tp::encode(r) + "x";
    EXPECT_FALSE(tp::decode_request(ok).has_value());  // trailing bytes
}

TEST(Codec, RejectsHugeDeclaredSizes) {
    // array32 claiming 4 billion elements, with no data behind it
    std::string body = "\x81\xa5tasks\xdd\xff\xff\xff\xff"s;
    EXPECT_FALSE(tp::decode_request(body).has_value());
}

TEST(Codec, WorkerMessagesRoundTrip) {
    tp::dispatch d;
    d.tasks.push_back({"id1", "demo.sleep@1", "\x80", 2, 1000, "p", std::string("ck")});
    auto back = tp::decode_dispatch(tp::encode(d));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->tasks.at(0).attempt, 2u);
    EXPECT_EQ(back->tasks.at(0).checkpoint, "ck");
    tp::results rs;
    rs.items.push_back({"id1", 2, "retry", "", "boom", 250, "1.0.0", 42, 1500});
    auto rb = tp::decode_results(tp::encode(rs));
    ASSERT_TRUE(rb.has_value());
    EXPECT_EQ(rb->items.at(0).retry_after_ms, 250);
    EXPECT_EQ(rb->items.at(0).error, "boom");
    EXPECT_EQ(rb->items.at(0).error_code, 42);
    EXPECT_EQ(rb->items.at(0).run_us, 1500);
}

TEST(Codec, ResultsCarryStartedIds) {
    tp::results rs;
    rs.items.push_back({"done1", 1, "ok", "\xc0", "", std::nullopt, "1.0.0", std::nullopt, std::nullopt});
    rs.started = {"run1", "run2"};
    auto rb = tp::decode_results(tp::encode(rs));
    ASSERT_TRUE(rb.has_value()) << rb.error().message;
    ASSERT_EQ(rb->items.size(), 1u);
    EXPECT_EQ(rb->items[0].id, "done1");
    EXPECT_EQ(rb->started, (std::vector<std::string>{"run1", "run2"}));

    // Only started ids, no outcome: valid, and `items` is left out (`seq`,
    // an integer, is always there).
    tp::results only;
    only.started = {"run3"};
    auto body = tp::encode(only);
    EXPECT_EQ(body, "\x82\xa7started\x91\xa4run3\xa3seq\x00"s);
    auto ob = tp::decode_results(body);
    ASSERT_TRUE(ob.has_value()) << ob.error().message;
    EXPECT_TRUE(ob->items.empty());
    EXPECT_EQ(ob->started, (std::vector<std::string>{"run3"}));

    // A RESULTS without `started` (an older worker) decodes to none.
    tp::results old;
    old.items.push_back({"done2", 1, "fail", "", "no", std::nullopt, "", std::nullopt, std::nullopt});
    auto oldb = tp::decode_results(tp::encode(old));
    ASSERT_TRUE(oldb.has_value());
    EXPECT_TRUE(oldb->started.empty());

    // A field this decoder does not know (a newer worker) is skipped, at
    // both levels: {"items": [{"id": "x", "zz": 1}], "started": ["y"], "later": {"a": nil}}
    auto newer =
        "\x83\xa5items\x91\x82\xa2id\xa1x\xa2zz\x01\xa7started\x91\xa1y\xa5later\x81\xa1"
        "a\xc0"s;
    auto nb = tp::decode_results(newer);
    ASSERT_TRUE(nb.has_value()) << nb.error().message;
    ASSERT_EQ(nb->items.size(), 1u);
    EXPECT_EQ(nb->items[0].id, "x");
    EXPECT_EQ(nb->started, (std::vector<std::string>{"y"}));

    // `started` must be a list of strings.
    auto bad = tp::decode_results("\x81\xa7started\x91\x01"s);
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("started"), std::string::npos) << bad.error().message;
}

TEST(Codec, HelloCarriesPrefetch) {
    tp::hello h;
    h.worker = "w";
    h.slots = 40;
    h.prefetch = 32;
    auto back = tp::decode_hello(tp::encode(h));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->slots, 40u);
    EXPECT_EQ(back->prefetch, 32u);
    // An older worker's HELLO has none: 0, every slot runs.
    h.prefetch = 0;
    auto old = tp::decode_hello(tp::encode(h));
    ASSERT_TRUE(old.has_value());
    EXPECT_EQ(old->prefetch, 0u);
}

TEST(Codec, HelloNamesTheTasksAWorkerHoldsAndNotLeaderNamesTheBackend) {
    tp::hello h;
    h.worker = "w";
    h.held = {{"0123456789abcdef0123456789abcdef", 3}, {"fedcba9876543210fedcba9876543210", 1}};
    auto back = tp::decode_hello(tp::encode(h));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    ASSERT_EQ(back->held.size(), 2u);
    EXPECT_EQ(back->held[0].id, h.held[0].id);
    EXPECT_EQ(back->held[0].attempt, 3u);
    EXPECT_EQ(back->held[1].attempt, 1u);
    auto bad = tp::decode_hello("\x81\xa4held\x91\x01"s);
    ASSERT_FALSE(bad.has_value()) << "a held entry that is not a map";

    tp::control c;
    c.ok = false;
    c.error_code = "not_leader";
    c.leader = "tcp://10.0.0.2:5556";
    auto e = tp::decode_control(tp::encode(c));
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(e->leader, c.leader);
}

TEST(Codec, DeadCarriesRunningTaskIds) {
    // With ids: they come back, in order.
    tp::control c;
    c.ids = {"host:42"};
    c.note = "killed by signal 9 (Killed)";
    c.running = std::vector<std::string>{"a1", "b2"};
    auto back = tp::decode_control(tp::encode(c));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    ASSERT_TRUE(back->running.has_value());
    EXPECT_EQ(*back->running, (std::vector<std::string>{"a1", "b2"}));
    EXPECT_EQ(back->ids, (std::vector<std::string>{"host:42"}));

    // An empty list is sent (the supervisor knows: no slot was running) and
    // stays distinct from an absent one.
    tp::control empty;
    empty.running = std::vector<std::string>{};
    auto eb = tp::encode(empty);
    EXPECT_NE(eb.find("\xa7running\x90"s), std::string::npos);  // an empty array, not left out
    auto ed = tp::decode_control(eb);
    ASSERT_TRUE(ed.has_value()) << ed.error().message;
    ASSERT_TRUE(ed->running.has_value());
    EXPECT_TRUE(ed->running->empty());

    // Absent (unknown, or an older supervisor): left out, decodes to nullopt.
    tp::control none;
    none.ids = {"host:43"};
    auto nb = tp::encode(none);
    EXPECT_EQ(nb.find("running"), std::string::npos);
    auto nd = tp::decode_control(nb);
    ASSERT_TRUE(nd.has_value()) << nd.error().message;
    EXPECT_FALSE(nd->running.has_value());

    // nil is read as absent; anything but a list of strings is refused.
    auto nil = tp::decode_control("\x81\xa7running\xc0"s);
    ASSERT_TRUE(nil.has_value()) << nil.error().message;
    EXPECT_FALSE(nil->running.has_value());
    auto bad = tp::decode_control("\x81\xa7running\x91\x01"s);
    ASSERT_FALSE(bad.has_value());
    EXPECT_NE(bad.error().message.find("running"), std::string::npos) << bad.error().message;
}

TEST(Codec, HeartbeatCarriesTheWorkersMemoryAndWorkersShowIt) {
    tp::control hb;
    hb.ids = {"a1"};
    hb.rss_bytes = uint64_t{3} << 32;  // past 32 bits
    auto back = tp::decode_control(tp::encode(hb));
    ASSERT_TRUE(back.has_value()) << back.error().message;
    EXPECT_EQ(back->rss_bytes, uint64_t{3} << 32);

    tp::control old;  // an older worker's heartbeat: no field, nothing known
    old.ids = {"a1"};
    EXPECT_EQ(tp::encode(old).find("rss_bytes"), std::string::npos);
    EXPECT_FALSE(tp::decode_control(tp::encode(old))->rss_bytes.has_value());
    EXPECT_FALSE(tp::decode_control("\x81\xa9rss_bytes\xa1x"s).has_value()) << "a string is not a size";

    tp::reply r;
    tp::worker_info w;
    w.id = "h:1";
    w.rss_bytes = 42u << 20;
    r.workers = {w};
    auto rb = tp::decode_reply(tp::encode(r));
    ASSERT_TRUE(rb.has_value()) << rb.error().message;
    ASSERT_EQ(rb->workers.size(), 1u);
    EXPECT_EQ(rb->workers[0].rss_bytes, 42u << 20);
}

// peek_req finds the req of a body that does not decode as a whole, stepping
// over any value (deep nesting included) without recursion.
TEST(Codec, PeekReqReadsTheReqOfBodiesThatDoNotDecode) {
    // {"tasks": [{"priority": "high"}], "req": 7}
    EXPECT_EQ(tp::peek_req("\x82\xa5tasks\x91\x81\xa8priority\xa4high\xa3req\x07"s), 7u);
    EXPECT_FALSE(tp::decode_request("\x82\xa5tasks\x91\x81\xa8priority\xa4high\xa3req\x07"s).has_value());
    // Every kind of value before it: int key, bin, ext, float, nested map.
    std::string body =
        "\x88\x01\xc0\xa1"
        "a\xc4\x02xy\xa1"
        "b\xd4\x01\x02\xa1"
        "c\xcb"s +
        std::string(8, '\0') +
        "\xa1"
        "d\x81\xa1x\x92\x01\x02\xa1"
        "e\xc7\x01\x05z\xa3req\xcf"s +
        std::string(7, '\0') +
        "\x2a\xa1"
        "f\x01"s;
    EXPECT_EQ(tp::peek_req(body), 42u);
    // 100,000 nested arrays, then req.
    std::string deep =
        "\x82\xa1"
        "a"s +
        std::string(100000, '\x91') + "\x01\xa3req\x05"s;
    EXPECT_EQ(tp::peek_req(deep), 5u);
    EXPECT_FALSE(tp::decode_request(deep).has_value());
    // No req, a req of the wrong type, not a map, truncated, lying sizes.
    EXPECT_FALSE(tp::peek_req("\x81\xa2id\x01"s).has_value());
    EXPECT_FALSE(tp::peek_req("\x81\xa3req\xa1x"s).has_value());
    EXPECT_FALSE(tp::peek_req("\x81\xa3req\xff"s).has_value());  // negative
    EXPECT_FALSE(tp::peek_req("\x92\x01\x02"s).has_value());
    EXPECT_FALSE(tp::peek_req("").has_value());
    EXPECT_FALSE(tp::peek_req("\x82\xa1"
                              "a\xdd\xff\xff\xff\xff"s)
                     .has_value());
    EXPECT_FALSE(tp::peek_req("\x82\xa1"
                              "a\xc6\xff\xff\xff\xff\xa3req\x01"s)
                     .has_value());
    EXPECT_FALSE(tp::peek_req("\x82\xa1"
                              "a\xc1\xa3req\x01"s)
                     .has_value());
}

// The names are the wire contract (docs/PROTOCOL.md): a rename here would
// break every peer of an older release, so the spellings are pinned.
TEST(Commands, SpellingsAreTheWireNames) {
    EXPECT_EQ(tp::cmd::submit, "SUBMIT");
    EXPECT_EQ(tp::cmd::wf_submit, "WF_SUBMIT");
    EXPECT_EQ(tp::cmd::wf_status, "WF_STATUS");
    EXPECT_EQ(tp::cmd::wf_cancel, "WF_CANCEL");
    EXPECT_EQ(tp::cmd::schedules, "SCHEDULES");
    EXPECT_EQ(tp::cmd::hello, "HELLO");
    EXPECT_EQ(tp::cmd::plugins, "PLUGINS");
}

class Frames : public ::testing::Test {
protected:
    zmq::context_t ctx{1};
    zmq::socket_t router{ctx, zmq::socket_type::router};
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    void SetUp() override {
        router.bind("inproc://frames");
        dealer.set(zmq::sockopt::routing_id, "d1");
        dealer.connect("inproc://frames");
    }
    std::optional<tp::incoming> wait_recv(std::size_t max_body = tp::default_max_body) {
        zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(2000));
        return tp::try_recv(router, true, max_body);
    }
};

TEST_F(Frames, RoundTripThroughRouter) {
    ASSERT_TRUE(tp::send(dealer, "", tp::cmd::submit, "body"));
    auto in = wait_recv();
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->peer, "d1");
    ASSERT_TRUE(in->msg.has_value());
    EXPECT_EQ(in->msg->command, tp::cmd::submit);
    EXPECT_EQ(in->msg->body, "body");
}

TEST_F(Frames, RejectsBadSignatureAndFrameCount) {
    dealer.send(zmq::str_buffer("NOTTASKMILL"), zmq::send_flags::sndmore);
    dealer.send(zmq::str_buffer("SUBMIT"), zmq::send_flags::sndmore);
    dealer.send(zmq::str_buffer("x"), zmq::send_flags::none);
    auto in = wait_recv();
    ASSERT_TRUE(in.has_value());
    EXPECT_EQ(in->peer, "d1");
    EXPECT_FALSE(in->msg.has_value());
    dealer.send(zmq::str_buffer("TASKMILL1"), zmq::send_flags::none);
    in = wait_recv();
    ASSERT_TRUE(in.has_value());
    EXPECT_FALSE(in->msg.has_value());
    // The socket is still usable after garbage.
    ASSERT_TRUE(tp::send(dealer, "", tp::cmd::ping, ""));
    in = wait_recv();
    ASSERT_TRUE(in && in->msg.has_value());
}

TEST_F(Frames, RejectsOversizeBody) {
    ASSERT_TRUE(tp::send(dealer, "", tp::cmd::submit, std::string(100, 'x')));
    auto in = wait_recv(10);
    ASSERT_TRUE(in.has_value());
    ASSERT_FALSE(in->msg.has_value());
    EXPECT_EQ(in->msg.error().code, taskmill::errc::too_large);
}

namespace {
void send_frames(zmq::socket_t& s, std::size_t n, std::string_view routing_id = {}) {
    if (!routing_id.empty()) {
        s.send(zmq::buffer(routing_id), zmq::send_flags::sndmore);
    }
    for (std::size_t i = 0; i < n; ++i) {
        s.send(zmq::str_buffer("x"), i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}
}  // namespace

// A message of too many frames is read off to its last frame and refused,
// and the next message is read intact (before: the reader stopped keeping
// parts at 16 but went on waiting for more, which blocked for good).
TEST_F(Frames, OverlongMessagesAreReadOffAndRefused) {
    for (std::size_t n : {4u, 15u, 16u, 17u, 1000u}) {
        send_frames(dealer, n);
        ASSERT_TRUE(tp::send(dealer, "", tp::cmd::ping, "after"));
        auto in = wait_recv();
        ASSERT_TRUE(in.has_value()) << n;
        EXPECT_EQ(in->peer, "d1");
        ASSERT_FALSE(in->msg.has_value()) << n;
        EXPECT_EQ(in->msg.error().code, taskmill::errc::invalid_argument);
        EXPECT_NE(in->msg.error().message.find("got " + std::to_string(n)), std::string::npos)
            << in->msg.error().message;
        in = wait_recv();
        ASSERT_TRUE(in && in->msg.has_value()) << n;
        EXPECT_EQ(in->msg->command, tp::cmd::ping);
        EXPECT_EQ(in->msg->body, "after");
    }
}

// The DEALER side (workers, hosts, clients) reads with the same code.
TEST_F(Frames, DealerSideReadsOffOverlongMessages) {
    ASSERT_TRUE(tp::send(dealer, "", tp::cmd::ping, ""));
    ASSERT_TRUE(wait_recv());
    for (std::size_t n : {16u, 1000u}) {
        send_frames(router, n, "d1");
        ASSERT_TRUE(tp::send(router, "d1", tp::cmd::ping, "after"));
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, std::chrono::milliseconds(2000));
        auto in = tp::try_recv(dealer, false);
        ASSERT_TRUE(in.has_value());
        EXPECT_FALSE(in->msg.has_value());
        in = tp::try_recv(dealer, false);
        ASSERT_TRUE(in && in->msg.has_value()) << n;
        EXPECT_EQ(in->msg->body, "after");
    }
}

// The reader under the direct decoders: types, ranges and sizes are checked
// against the input, never trusted.
TEST(MpReader, ReadsWhatItExpectsAndRejectsTheRest) {
    using reader = tp::mp_reader;
    using namespace std::string_view_literals;              // the reader keeps a view: no temporaries
    reader ok("\x93\xcd\x01\x00\xa2hi\xc4\x02\x00\x01"sv);  // [256, "hi", bin 00 01]
    EXPECT_EQ(ok.array_size(), 3u);
    EXPECT_EQ(ok.integer<uint16_t>(), 256u);
    EXPECT_EQ(ok.bytes(), "hi");
    EXPECT_EQ(ok.bytes(), "\x00\x01"s);
    EXPECT_TRUE(ok.at_end());

    reader too_big("\xcd\x01\x00"sv);  // 256 into a uint8_t
    EXPECT_THROW(too_big.integer<uint8_t>(), reader::malformed);
    reader negative("\xff"sv);  // -1 into an unsigned
    EXPECT_THROW(negative.integer<uint32_t>(), reader::malformed);
    reader lying("\xdd\xff\xff\xff\xff"sv);  // an array of 4 billion in 5 bytes
    EXPECT_THROW(lying.array_size(), reader::malformed);
    reader short_str(
        "\xa5"
        "abc"sv);  // a 5-byte string with 3 bytes left
    EXPECT_THROW(short_str.str(), reader::malformed);
    reader wrong("\xc3"sv);  // true where a string is expected
    EXPECT_THROW(wrong.str(), reader::malformed);
    reader empty(""sv);
    EXPECT_THROW(empty.peek(), reader::malformed);
    reader nil("\xc0\x01"sv);
    EXPECT_TRUE(nil.nil());
    EXPECT_FALSE(nil.nil());
    EXPECT_EQ(nil.integer<int>(), 1);
}

// Peer text in logs: one line, no forged lines, no raw bytes, bounded.
TEST(PeerText, EscapesAndTruncates) {
    EXPECT_EQ(tp::printable("host:12"), "host:12");
    EXPECT_EQ(tp::printable("x\n[critical] fatal"), "x\\x0a[critical] fatal");
    EXPECT_EQ(tp::printable("a\\b\r\x00\xff"s), "a\\\\b\\x0d\\x00\\xff");
    EXPECT_EQ(tp::printable(std::string(15u << 20, 'y'), 4), "yyyy...(15728640 bytes)");
    EXPECT_EQ(tp::printable(std::string(300, 'z')).size(), 200u + std::string("...(300 bytes)").size());
}

TEST(PeerText, GateLogsOneLineThenASummaryPerInterval) {
    using namespace std::chrono_literals;
    tp::log_gate gate(60s);
    auto t0 = tp::log_gate::clock::time_point{} + 1000h;
    EXPECT_TRUE(gate.admit(t0));
    for (int i = 0; i < 999; ++i) {
        EXPECT_FALSE(gate.admit(t0 + 1s));
    }
    EXPECT_EQ(gate.take_summary(t0 + 30s), 0u);  // its interval is not over
    EXPECT_EQ(gate.take_summary(t0 + 60s), 999u);
    EXPECT_EQ(gate.take_summary(t0 + 61s), 0u);
    EXPECT_TRUE(gate.admit(t0 + 61s));  // a new interval: one line again
    EXPECT_FALSE(gate.admit(t0 + 62s));
    EXPECT_EQ(gate.take_summary(t0 + 121s), 1u);
}
