// Seed inputs for the broker fuzz target (layout in broker_fuzz.cpp): one
// valid message of every frontend and backend command, deep nesting, and
// messages of many frames. Shared by the suite's driver and by the corpus
// scripts/fuzz.sh starts from.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

namespace fuzzseeds {

namespace tp = taskmill::protocol;

// Byte 1 of an envelope input picks one of these (modulo the size).
inline constexpr std::array<std::string_view, 28> commands = {
    // frontend
    tp::cmd::submit, tp::cmd::status, tp::cmd::cancel, tp::cmd::retry, tp::cmd::tasks, tp::cmd::stats, tp::cmd::workers,
    tp::cmd::ping, tp::cmd::wf_submit, tp::cmd::wf_status, tp::cmd::wf_cancel, tp::cmd::schedules,
    // backend
    tp::cmd::hello, tp::cmd::heartbeat, tp::cmd::results, tp::cmd::progress, tp::cmd::checkpoint, tp::cmd::spawn,
    tp::cmd::credit, tp::cmd::bye, tp::cmd::dead, tp::cmd::plugins,
    // not commands the broker takes
    tp::cmd::done, tp::cmd::error, tp::cmd::dispatch, "FROB", "lower", ""};

inline std::size_t index_of(std::string_view command) {
    for (std::size_t i = 0; i < commands.size(); ++i) {
        if (commands[i] == command) {
            return i;
        }
    }
    return commands.size() - 1;
}

// An envelope input: byte 0 (side, peer), byte 1 (command), the body.
inline std::string envelope(bool backend, unsigned peer, std::string_view command, const std::string& body) {
    std::string s;
    s += static_cast<char>((backend ? 1 : 0) | ((peer & 3) << 1));
    s += static_cast<char>(index_of(command));
    return s + body;
}

// A raw input of `n` one-byte frames.
inline std::string frames(bool backend, std::size_t n) {
    std::string s(1, static_cast<char>(8 | (backend ? 1 : 0)));
    for (std::size_t i = 0; i < n; ++i) {
        s += "\x01x";
    }
    return s;
}

// msgpack of `levels` nested one-element arrays around a 1.
inline std::string nested(std::size_t levels) { return std::string(levels, '\x91') + "\x01"; }

inline std::string workflow(const std::string& step_payload) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_map(2);
    pk.pack("name");
    pk.pack("fz");
    pk.pack("steps");
    pk.pack_array(1);
    pk.pack_map(3);
    pk.pack("name");
    pk.pack("a");
    pk.pack("handler");
    pk.pack("fuzz.echo");
    pk.pack("payload");
    buf.write(step_payload.data(), step_payload.size());
    return std::string(buf.data(), buf.size());
}

// Every command once, then the hostile shapes. `deep` is the nesting of the
// deep cases carried as opaque bytes (a workflow definition, a result).
inline std::vector<std::string> broker_inputs(std::size_t deep = 1000) {
    const std::string id(32, '0');
    std::vector<std::string> out;
    auto front = [&](std::string_view cmd, tp::request rq) {
        rq.req = 1;
        out.push_back(envelope(false, 0, cmd, tp::encode(rq)));
    };
    tp::request submit;
    submit.tasks.push_back(tp::task_spec{});
    submit.tasks[0].handler = "fuzz.echo";
    submit.tasks[0].payload = "\xc0";
    submit.tasks[0].tags = {"t"};
    front(tp::cmd::submit, submit);
    tp::request by_id;
    by_id.id = id;
    for (auto cmd : {tp::cmd::status, tp::cmd::cancel, tp::cmd::retry}) {
        front(cmd, by_id);
    }
    tp::request list;
    list.limit = 5;
    list.state = "QUEUED";
    front(tp::cmd::tasks, list);
    for (auto cmd : {tp::cmd::stats, tp::cmd::workers, tp::cmd::ping}) {
        front(cmd, tp::request{});
    }
    tp::request wf;
    wf.data = workflow("\xc0");
    front(tp::cmd::wf_submit, wf);
    front(tp::cmd::wf_status, by_id);
    front(tp::cmd::wf_cancel, by_id);
    front(tp::cmd::schedules, tp::request{});

    auto back = [&](unsigned peer, std::string_view cmd, const std::string& body) {
        out.push_back(envelope(true, peer, cmd, body));
    };
    tp::hello h;
    h.worker = "fuzz:1";
    h.slots = 2;
    h.handlers = {{"fuzz.echo", "1.0.0", "fuzz"}};
    back(1, tp::cmd::hello, tp::encode(h));
    back(0, tp::cmd::heartbeat, tp::encode(tp::control{}));
    tp::results rs;
    rs.items.push_back({id, 1, "ok", "\xc0", "", std::nullopt, "1.0.0", std::nullopt, std::nullopt});
    rs.started = {id};
    back(0, tp::cmd::results, tp::encode(rs));
    tp::control c;
    c.req = 3;
    c.id = id;
    c.fraction = 0.5;
    c.note = "half";
    back(0, tp::cmd::progress, tp::encode(c));
    c.data = "ck";
    back(0, tp::cmd::checkpoint, tp::encode(c));
    c.tasks = submit.tasks;
    back(0, tp::cmd::spawn, tp::encode(c));
    tp::control credit;
    credit.slots = 4;
    back(0, tp::cmd::credit, tp::encode(credit));
    back(2, tp::cmd::bye, tp::encode(tp::control{}));
    tp::control dead;
    dead.ids = {"fuzz:3"};
    dead.note = "SIGKILL";
    dead.running = std::vector<std::string>{id};
    back(2, tp::cmd::dead, tp::encode(dead));
    tp::control plugins;
    plugins.id = "fuzzhost";
    plugins.note = "refused";
    plugins.error = "bad\nline";
    back(2, tp::cmd::plugins, tp::encode(plugins));
    for (auto cmd : {tp::cmd::done, tp::cmd::error, tp::cmd::dispatch, std::string_view("FROB")}) {
        back(0, cmd, tp::encode(tp::control{}));
        front(cmd, tp::request{});
    }

    // Nesting: a body too deep for the decoders, and deep opaque bytes.
    out.push_back(envelope(false, 0, tp::cmd::submit, "\x81\xa5tasks" + nested(100000)));
    out.push_back(envelope(true, 0, tp::cmd::results, "\x81\xa5items" + nested(100000)));
    wf.data = workflow(nested(deep));
    front(tp::cmd::wf_submit, wf);
    rs.items[0].result = nested(deep);
    back(0, tp::cmd::results, tp::encode(rs));
    // Frame counts around the old limit of 16, and far past it.
    for (std::size_t n : {0u, 1u, 2u, 4u, 15u, 16u, 17u, 1000u}) {
        out.push_back(frames(false, n));
        out.push_back(frames(true, n));
    }
    return out;
}

}  // namespace fuzzseeds
