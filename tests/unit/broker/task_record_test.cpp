// Task states, and the record codec against records written by earlier
// releases (ids in hex, states by name), built here byte by byte.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <type_traits>

#include "model/task_record.hpp"

using namespace taskmill::broker;
using taskmill::errc;

namespace {

// A state is named only at the edges: text does not turn into one.
static_assert(!std::is_convertible_v<const char*, task_state>);
static_assert(!std::is_assignable_v<task_state&, const char*>);
static_assert(!std::is_assignable_v<task_state&, std::string_view>);

constexpr const char* hex_id = "0123456789abcdef0123456789abcdef";
constexpr const char* hex_child = "00000000000000000000000000000abc";

using packer = msgpack::packer<msgpack::sbuffer>;

std::string bytes_of(const msgpack::sbuffer& buf) { return {buf.data(), buf.size()}; }

// A record as format 2 wrote it: every field in order, the id, the
// children and the state as text.
std::string format2_record(const std::string& id, const std::string& state, const std::string& child) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_array(34);
    pk.pack(2);
    pk.pack(id);
    pk.pack(std::string("mod.fn@1"));
    pk.pack(std::string("\x93\x01\x02\x03"));
    pk.pack(std::string("q"));
    pk.pack(5);
    pk.pack(3);
    pk.pack(1000);
    pk.pack(0);
    pk.pack(7);
    pk.pack(0);
    pk.pack(0.0);
    pk.pack(0);
    pk.pack(std::vector<std::string>{"red", "blue"});
    pk.pack(std::string("key1"));
    pk.pack(std::string("wf9"));
    pk.pack(false);
    pk.pack(std::string());
    pk.pack(state);
    pk.pack(2);
    pk.pack(0);
    pk.pack(100);
    pk.pack(200);
    pk.pack(300);
    pk.pack(std::string("boom"));
    pk.pack(std::string("\xa2ok"));  // result
    pk.pack(std::string("w:1"));
    pk.pack(std::vector<std::string>{child});
    pk.pack_nil();
    pk.pack(std::string());
    pk.pack_nil();  // progress, note, checkpoint
    pk.pack(false);
    pk.pack(42);
    pk.pack(std::string("0.9"));
    return bytes_of(buf);
}

std::string format1_record(const std::string& state, const std::string& child) {
    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_map(4);
    pk.pack(std::string("id"));
    pk.pack(std::string(hex_id));
    pk.pack(std::string("state"));
    pk.pack(state);
    pk.pack(std::string("children"));
    pk.pack(std::vector<std::string>{child});
    pk.pack(std::string("result"));
    pk.pack(std::string("\xc3"));
    return bytes_of(buf);
}

void expect_corrupt(const std::string& bytes, const std::string& what) {
    auto r = decode_record(bytes);
    ASSERT_FALSE(r.has_value()) << what;
    EXPECT_EQ(r.error().code, errc::corrupt) << what;
}

}  // namespace

TEST(TaskState, NamesRoundTripAndOnlyTheFourEndsAreFinal) {
    for (auto s : all_task_states) {
        EXPECT_EQ(parse_task_state(to_string(s)), s);
        EXPECT_EQ(task_state_from_number(static_cast<uint8_t>(s)), s);
    }
    EXPECT_EQ(to_string(task_state::queued), "QUEUED");
    EXPECT_EQ(lower_name(task_state::succeeded), "succeeded");
    EXPECT_FALSE(parse_task_state("QUEUD"));
    EXPECT_FALSE(parse_task_state("queued"));
    EXPECT_FALSE(parse_task_state(""));
    EXPECT_FALSE(task_state_from_number(all_task_states.size()));
    EXPECT_FALSE(is_final(task_state::pending));
    EXPECT_FALSE(is_final(task_state::queued));
    EXPECT_FALSE(is_final(task_state::running));
    EXPECT_FALSE(is_final(task_state::retrying));
    EXPECT_TRUE(is_final(task_state::succeeded));
    EXPECT_TRUE(is_final(task_state::failed));
    EXPECT_TRUE(is_final(task_state::cancelled));
    EXPECT_TRUE(is_final(task_state::expired));
}

TEST(TaskRecordFormats, DecodesFormat2WithTextIdsAndStateNames) {
    auto r = decode_record(format2_record(hex_id, "SUCCEEDED", hex_child));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(to_hex(r->id), hex_id);
    EXPECT_EQ(r->state, task_state::succeeded);
    ASSERT_EQ(r->children.size(), 1u);
    EXPECT_EQ(to_hex(r->children[0]), hex_child);
    EXPECT_EQ(r->handler, "mod.fn@1");
    EXPECT_EQ(r->tags, (std::vector<std::string>{"red", "blue"}));
    EXPECT_EQ(r->parent, "wf9");
    EXPECT_EQ(r->result, std::string("\xa2ok"));
    EXPECT_EQ(r->attempts, 2u);
    EXPECT_EQ(r->seq, 42u);
    EXPECT_EQ(r->version, "0.9");
    // The upper-case hex of some writers reads the same.
    auto upper = decode_record(format2_record("0123456789ABCDEF0123456789ABCDEF", "FAILED", hex_child));
    ASSERT_TRUE(upper.has_value()) << upper.error().message;
    EXPECT_EQ(upper->id, r->id);
}

TEST(TaskRecordFormats, AnOldRecordIsWrittenBackInTheNewFormat) {
    auto old = decode_record(format2_record(hex_id, "QUEUED", hex_child));
    ASSERT_TRUE(old.has_value());
    auto bytes = encode(*old);
    ASSERT_EQ(static_cast<uint8_t>(bytes[0]), 0xdc);  // array16
    EXPECT_EQ(bytes[3], '\x03');                      // format 3
    EXPECT_EQ(static_cast<uint8_t>(bytes[4]), 0xc4);  // the id as a bin8 ...
    EXPECT_EQ(bytes[5], '\x10');                      // ... of 16 bytes
    auto again = decode_record(bytes);
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(encode(*again), bytes);
    EXPECT_EQ(again->id, old->id);
    EXPECT_EQ(again->state, task_state::queued);
    EXPECT_EQ(again->children, old->children);
}

TEST(TaskRecordFormats, DecodesFormat1Maps) {
    auto r = decode_record(format1_record("CANCELLED", hex_child));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(to_hex(r->id), hex_id);
    EXPECT_EQ(r->state, task_state::cancelled);
    ASSERT_EQ(r->children.size(), 1u);
    EXPECT_EQ(to_hex(r->children[0]), hex_child);
}

TEST(TaskRecordFormats, ARecordThatIsNeitherEncodingIsCorrupt) {
    expect_corrupt(format2_record(hex_id, "QUEUD", hex_child), "format 2, unknown state");
    expect_corrupt(format2_record(hex_id, "queued", hex_child), "format 2, lower-case state");
    expect_corrupt(format2_record("0123", "QUEUED", hex_child), "format 2, short id");
    expect_corrupt(format2_record(std::string(31, 'a') + "g", "QUEUED", hex_child), "format 2, not hex");
    expect_corrupt(format2_record(hex_id, "QUEUED", "c1"), "format 2, bad child");
    expect_corrupt(format1_record("QUEUD", hex_child), "format 1, unknown state");
    expect_corrupt(format1_record("QUEUED", "zz"), "format 1, bad child");

    task_record r;
    r.id[0] = 1;
    auto good = encode(r);
    ASSERT_TRUE(decode_record(good).has_value());
    // The state is the 18th field: find it by re-encoding with a marker.
    r.state = task_state::expired;
    auto expired = encode(r);
    std::size_t at = 0;
    while (at < good.size() && good[at] == expired[at]) {
        ++at;
    }
    ASSERT_LT(at, good.size());
    ASSERT_EQ(expired[at], '\x07');
    auto out_of_range = expired;
    out_of_range[at] = '\x08';  // no such state
    expect_corrupt(out_of_range, "format 3, state number 8");
    auto as_name = expired;
    as_name[at] = '\xa1';  // a one-letter string where the number was
    expect_corrupt(as_name, "format 3, state as text");

    msgpack::sbuffer buf;
    packer pk(buf);
    pk.pack_array(2);
    pk.pack(3);
    pk.pack(std::string(hex_id));  // a format-3 id must be 16 raw bytes, not hex
    expect_corrupt(bytes_of(buf), "format 3, id in hex");
}

// The fields added after format 3's first release (the handler's error
// code, shared crashes) are read when present and default when a record
// predates them.
TEST(TaskRecordFormats, ErrorCodeAndSharedCrashesRoundTripAndDefault) {
    auto old = decode_record(format2_record(hex_id, "FAILED", hex_child));
    ASSERT_TRUE(old.has_value());
    EXPECT_FALSE(old->error_code.has_value());
    EXPECT_EQ(old->suspect_crashes, 0u);
    old->error_code = -42;
    old->suspect_crashes = 2;
    auto again = decode_record(encode(*old));
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(again->error_code, std::optional<int64_t>(-42));
    EXPECT_EQ(again->suspect_crashes, 2u);
    EXPECT_TRUE(again->runs_alone());
    EXPECT_EQ(to_info(*again).error_code, std::optional<int64_t>(-42));
}
