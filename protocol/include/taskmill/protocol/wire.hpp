// taskmill/protocol/wire.hpp -- wire protocol v1 without the transport:
// the command names, the size limits and a received message as a value.
// Code that only handles messages (the broker's engine, tests) includes
// this; frame.hpp adds the ZeroMQ calls that read and write them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::protocol {

inline constexpr std::string_view signature = "TASKMILL1";

// Default bound on a whole message body; brokers and hosts may configure it.
inline constexpr std::size_t default_max_body = 16u << 20;

// Room a frame limit (ZMQ_MAXMSGSIZE) leaves above the body limit: a body a
// little over the limit is still read and refused with too_large naming its
// request; a larger frame makes ZeroMQ drop the connection before it holds
// the bytes, so a peer cannot make us allocate what it merely declares.
inline constexpr std::size_t frame_room = 1u << 20;

// The frame limit that goes with a body limit: max_body + frame_room,
// saturating.
constexpr std::size_t frame_limit(std::size_t max_body) noexcept {
    return max_body > SIZE_MAX - frame_room ? SIZE_MAX : max_body + frame_room;
}

namespace cmd {
// client -> broker (frontend)
inline constexpr std::string_view submit = "SUBMIT";
inline constexpr std::string_view status = "STATUS";
inline constexpr std::string_view cancel = "CANCEL";
inline constexpr std::string_view retry = "RETRY";
inline constexpr std::string_view tasks = "TASKS";
inline constexpr std::string_view stats = "STATS";
inline constexpr std::string_view workers = "WORKERS";
inline constexpr std::string_view ping = "PING";
inline constexpr std::string_view wf_submit = "WF_SUBMIT";
inline constexpr std::string_view wf_status = "WF_STATUS";
inline constexpr std::string_view wf_cancel = "WF_CANCEL";
inline constexpr std::string_view schedules = "SCHEDULES";
// operator verbs (docs/PROTOCOL.md, "Operating queues")
inline constexpr std::string_view queues = "QUEUES";    // every queue with its counts, pause and limits
inline constexpr std::string_view pause = "PAUSE";      // queue: dispatch nothing (persists)
inline constexpr std::string_view resume = "RESUME";    // queue: dispatch again
inline constexpr std::string_view purge = "PURGE";      // queue: cancel everything queued and delayed (a job)
inline constexpr std::string_view limit = "LIMIT";      // queue or handler: rate, burst, max_running
inline constexpr std::string_view remove = "DELETE";    // finished tasks, by ids or filter (a job)
inline constexpr std::string_view run_now = "RUN_NOW";  // a delayed task: queue it now
inline constexpr std::string_view job = "JOB";          // how a bulk job is going
// workflow listing and schedule control (docs/PROTOCOL.md 4.9)
inline constexpr std::string_view workflows = "WORKFLOWS";                // workflows, newest first, by page
inline constexpr std::string_view schedule_trigger = "SCHEDULE_TRIGGER";  // fire a schedule once, now
inline constexpr std::string_view schedule_pause = "SCHEDULE_PAUSE";      // a schedule stops firing (persists)
inline constexpr std::string_view schedule_resume = "SCHEDULE_RESUME";    // it fires again, from now on
// any member of a broker cluster, leader or not (docs/CLUSTER.md)
inline constexpr std::string_view cluster = "CLUSTER";  // what this broker knows of its cluster
// the leader of a broker cluster: membership changes, one at a time
inline constexpr std::string_view cluster_add = "CLUSTER_ADD";            // member, address: a new voter
inline constexpr std::string_view cluster_remove = "CLUSTER_REMOVE";      // member: out of the cluster
inline constexpr std::string_view cluster_transfer = "CLUSTER_TRANSFER";  // member (0: any): the new leader
// broker -> client, unsolicited, for tasks submitted with notify
inline constexpr std::string_view done = "DONE";
// broker -> client when the request could not be parsed at all
inline constexpr std::string_view error = "ERROR";
// worker <-> broker (backend)
inline constexpr std::string_view hello = "HELLO";
inline constexpr std::string_view welcome = "WELCOME";
inline constexpr std::string_view heartbeat = "HEARTBEAT";
inline constexpr std::string_view dispatch = "DISPATCH";
inline constexpr std::string_view results = "RESULTS";
inline constexpr std::string_view progress = "PROGRESS";
inline constexpr std::string_view checkpoint = "CHECKPOINT";
inline constexpr std::string_view spawn = "SPAWN";
inline constexpr std::string_view credit = "CREDIT";
inline constexpr std::string_view bye = "BYE";
inline constexpr std::string_view dead = "DEAD";
inline constexpr std::string_view plugins = "PLUGINS";  // supervisor: plugin set reloaded or refused
inline constexpr std::string_view unknown = "UNKNOWN";
}  // namespace cmd

// A received message's command and body.
struct message {
    std::string command;
    std::string body;
};

// What try_recv read: the routing identity (empty on a DEALER) and either
// the message or why it is malformed (wrong frame count, signature, command
// or size), so a ROUTER can answer the peer with an ERROR. When `msg` failed
// on a message of the right shape (a body over the limit), `command` and
// `req` say which request it was (req 0 = not readable), so that the answer
// can name it; otherwise they are empty and 0.
struct incoming {
    std::string peer;
    result<message> msg;
    std::string command;
    uint64_t req = 0;
    // The connection's "User-Id" (the ZAP handler's answer: the peer's CURVE
    // public key in Z85); empty without authentication.
    std::string user_id;
};

}  // namespace taskmill::protocol
