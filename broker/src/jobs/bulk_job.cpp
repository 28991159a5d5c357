#include "jobs/bulk_job.hpp"

#include <array>

#include <nlohmann/json.hpp>

#include "store/keys.hpp"

namespace taskmill::broker {
namespace {

constexpr std::array<std::string_view, 4> kind_names = {"purge", "cancel", "retry", "delete"};

nlohmann::json filter_json(const task_filter& f) {
    nlohmann::json j = nlohmann::json::object();
    if (f.state) {
        j["state"] = std::string(to_string(*f.state));
    }
    j["queue"] = f.queue;
    j["handler"] = f.handler;
    j["tag"] = f.tag;
    j["since_ms"] = f.since_ms;
    j["until_ms"] = f.until_ms;
    return j;
}

task_filter filter_of(const nlohmann::json& j) {
    task_filter f;
    if (j.contains("state")) {
        f.state = parse_task_state(j.at("state").get<std::string>());
    }
    f.queue = j.value("queue", "");
    f.handler = j.value("handler", "");
    f.tag = j.value("tag", "");
    f.since_ms = j.value("since_ms", int64_t{0});
    f.until_ms = j.value("until_ms", int64_t{0});
    return f;
}

}  // namespace

std::string_view to_string(job_kind k) { return kind_names.at(static_cast<std::size_t>(k)); }

std::optional<job_kind> parse_job_kind(std::string_view name) {
    for (std::size_t i = 0; i < kind_names.size(); ++i) {
        if (kind_names[i] == name) {
            return static_cast<job_kind>(i);
        }
    }
    return std::nullopt;
}

std::string job_key(uint64_t id) {
    std::string k;
    keys::put_u64(k, id);
    return k;
}

std::optional<uint64_t> job_id_of(std::string_view key) {
    if (key.size() != 8) {
        return std::nullopt;
    }
    return keys::get_u64(key);
}

std::string encode(const bulk_job& j) {
    std::string ids;
    ids.reserve(j.ids.size() * 16);
    for (const auto& id : j.ids) {
        ids += id_bytes(id);
    }
    nlohmann::json out = {{"id", j.id},
                          {"kind", std::string(to_string(j.kind))},
                          {"filter", filter_json(j.filter)},
                          {"ids", nlohmann::json::binary_t(std::vector<uint8_t>(ids.begin(), ids.end()))},
                          {"cursor", nlohmann::json::binary_t(std::vector<uint8_t>(j.cursor.begin(), j.cursor.end()))},
                          {"position", j.position},
                          {"started", j.started},
                          {"done", j.done},
                          {"matched", j.matched},
                          {"changed", j.changed},
                          {"started_ms", j.started_ms},
                          {"finished_ms", j.finished_ms}};
    auto bytes = nlohmann::json::to_msgpack(out);
    return {bytes.begin(), bytes.end()};
}

result<bulk_job> decode_job(std::string_view bytes) {
    try {
        auto in = nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
        bulk_job j;
        j.id = in.at("id").get<uint64_t>();
        auto kind = parse_job_kind(in.at("kind").get<std::string>());
        if (!kind) {
            return fail(errc::corrupt, "job record of unknown kind");
        }
        j.kind = *kind;
        j.filter = filter_of(in.at("filter"));
        const auto& ids = in.at("ids").get_binary();
        for (std::size_t i = 0; i + 16 <= ids.size(); i += 16) {
            auto id = id_from_bytes(std::string_view(reinterpret_cast<const char*>(ids.data() + i), 16));
            if (id) {
                j.ids.push_back(*id);
            }
        }
        const auto& cursor = in.at("cursor").get_binary();
        j.cursor.assign(cursor.begin(), cursor.end());
        j.position = in.at("position").get<uint64_t>();
        j.started = in.at("started").get<bool>();
        j.done = in.at("done").get<bool>();
        j.matched = in.at("matched").get<uint64_t>();
        j.changed = in.at("changed").get<uint64_t>();
        j.started_ms = in.at("started_ms").get<int64_t>();
        j.finished_ms = in.at("finished_ms").get<int64_t>();
        return j;
    } catch (const nlohmann::json::exception& e) {
        return fail(errc::corrupt, std::string("job record unreadable: ") + e.what());
    }
}

protocol::job_info to_info(const bulk_job& j) {
    protocol::job_info info;
    info.id = j.id;
    info.kind = std::string(to_string(j.kind));
    if (!j.ids.empty()) {
        info.filter = std::to_string(j.ids.size()) + " task id(s)";
    } else {
        info.filter = j.filter.text();
    }
    info.state = j.done ? "done" : "running";
    info.matched = j.matched;
    info.changed = j.changed;
    info.started_ms = j.started_ms;
    info.finished_ms = j.finished_ms;
    return info;
}

}  // namespace taskmill::broker
