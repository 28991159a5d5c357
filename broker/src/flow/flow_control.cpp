#include "flow/flow_control.hpp"

#include <algorithm>
#include <cmath>

#include <msgpack.hpp>

namespace taskmill::broker {

namespace {

constexpr std::string_view queue_prefix = "queue/";
constexpr std::string_view handler_prefix = "handler/";
// Floating-point slack: a bucket refilled in steps must not miss a token
// by a rounding error.
constexpr double token_slack = 1e-9;

template <class T> void pack_field(msgpack::packer<msgpack::sbuffer>& pk, const char* key, const std::optional<T>& v) {
    if (v) {
        pk.pack(key);
        pk.pack(*v);
    }
}

}  // namespace

std::string settings_key(flow_kind k, std::string_view name) {
    return std::string(k == flow_kind::queue ? queue_prefix : handler_prefix) + std::string(name);
}

std::optional<std::pair<flow_kind, std::string>> parse_settings_key(std::string_view key) {
    if (key.starts_with(queue_prefix)) {
        return std::pair{flow_kind::queue, std::string(key.substr(queue_prefix.size()))};
    }
    if (key.starts_with(handler_prefix)) {
        return std::pair{flow_kind::handler, std::string(key.substr(handler_prefix.size()))};
    }
    return std::nullopt;
}

std::string encode_settings(const flow_settings& s) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    uint32_t n = (s.paused ? 1 : 0) + (s.rate ? 1 : 0) + (s.burst ? 1 : 0) + (s.max_running ? 1 : 0);
    pk.pack_map(n);
    pack_field(pk, "paused", s.paused);
    pack_field(pk, "rate", s.rate);
    pack_field(pk, "burst", s.burst);
    pack_field(pk, "max_running", s.max_running);
    return {buf.data(), buf.size()};
}

result<flow_settings> decode_settings(std::string_view bytes) {
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        const auto& o = handle.get();
        if (o.type != msgpack::type::MAP) {
            return fail(errc::corrupt, "queue settings are not a map");
        }
        flow_settings s;
        for (const auto& kv : o.via.map) {
            auto key = kv.key.as<std::string>();
            if (key == "paused") {
                s.paused = kv.val.as<bool>();
            } else if (key == "rate") {
                s.rate = kv.val.as<double>();
            } else if (key == "burst") {
                s.burst = kv.val.as<uint32_t>();
            } else if (key == "max_running") {
                s.max_running = kv.val.as<uint32_t>();
            }  // a field of a later release: ignored
        }
        if (s.rate && (!std::isfinite(*s.rate) || *s.rate < 0)) {
            return fail(errc::corrupt, "queue settings: bad rate");
        }
        return s;
    } catch (const std::exception& e) {
        return fail(errc::corrupt, std::string("queue settings unreadable: ") + e.what());
    }
}

std::string handler_name_of(std::string_view spec) { return std::string(spec.substr(0, spec.find('@'))); }

uint32_t effective_burst(const protocol::flow_limits& l) {
    if (l.burst > 0) {
        return l.burst;
    }
    return static_cast<uint32_t>(std::clamp(std::floor(l.rate), 1.0, 4e9));
}

flow_control::flow_control(const broker_config& cfg) : cfg_(cfg) { rebuild(); }

void flow_control::set(flow_kind k, const std::string& name, const flow_settings& s) {
    auto& all = settings_[static_cast<int>(k)];
    if (s.empty()) {
        all.erase(name);
    } else {
        all[name] = s;
    }
}

const flow_settings* flow_control::settings(flow_kind k, const std::string& name) const {
    const auto& all = settings_[static_cast<int>(k)];
    auto it = all.find(name);
    return it == all.end() ? nullptr : &it->second;
}

const flow_config* flow_control::configured(flow_kind k, const std::string& name) const {
    if (k == flow_kind::queue) {
        for (const auto& q : cfg_.queues) {
            if (q.name == name) {
                return &q.flow;
            }
        }
    } else {
        for (const auto& h : cfg_.handlers) {
            if (h.name == name) {
                return &h.flow;
            }
        }
    }
    return nullptr;
}

std::vector<std::string> flow_control::named(flow_kind k) const {
    std::vector<std::string> out;
    if (k == flow_kind::queue) {
        for (const auto& q : cfg_.queues) {
            out.push_back(q.name);
        }
    } else {
        for (const auto& h : cfg_.handlers) {
            out.push_back(h.name);
        }
    }
    for (const auto& [name, s] : settings_[static_cast<int>(k)]) {
        out.push_back(name);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

void flow_control::rebuild() {
    for (auto k : {flow_kind::queue, flow_kind::handler}) {
        gate_map next;
        for (const auto& name : named(k)) {
            gate g;
            const auto* c = configured(k, name);
            const auto* s = settings(k, name);
            g.paused = k == flow_kind::queue && s && s->paused.value_or(false);
            g.limits.rate = s && s->rate ? *s->rate : (c && c->rate ? *c->rate : 0);
            g.limits.burst = s && s->burst ? *s->burst : (c && c->burst ? *c->burst : 0);
            g.limits.max_running = s && s->max_running ? *s->max_running : (c && c->max_running ? *c->max_running : 0);
            if (!g.paused && g.limits.rate <= 0 && g.limits.max_running == 0) {
                continue;  // nothing to enforce
            }
            if (auto old = gates(k).find(name); old != gates(k).end() && old->second.limits.rate > 0) {
                g.tokens = std::min(old->second.tokens, static_cast<double>(effective_burst(g.limits)));
                g.refilled_ms = old->second.refilled_ms;
            }
            next.emplace(name, g);
        }
        gates(k) = std::move(next);
    }
}

bool flow_control::paused(const std::string& queue) const {
    auto it = gates(flow_kind::queue).find(queue);
    return it != gates(flow_kind::queue).end() && it->second.paused;
}

protocol::flow_limits flow_control::limits(flow_kind k, const std::string& name) const {
    auto it = gates(k).find(name);
    return it == gates(k).end() ? protocol::flow_limits{} : it->second.limits;
}

uint64_t flow_control::running(flow_kind k, const std::string& name) const {
    auto it = gates(k).find(name);
    return it == gates(k).end() ? 0 : it->second.running;
}

// A task that waits for a token is started by a turn that may come a few
// ms after the token: the bucket is full by then, and with a burst of 1 the
// time it was late would be lost on every token (7% of the rate at 100/s).
// While a task waits, the bucket keeps up to one token more (never a whole
// one, so no more than `burst` tasks start at once) and the rate holds.
constexpr double late_credit = 0.999;

void flow_control::refill(gate& g, int64_t now) {
    const auto burst = static_cast<double>(effective_burst(g.limits));
    const double cap = g.waiting ? burst + late_credit : burst;
    if (g.refilled_ms < 0) {
        g.tokens = burst;
    } else if (now > g.refilled_ms) {
        g.tokens = std::min(cap, g.tokens + g.limits.rate * static_cast<double>(now - g.refilled_ms) / 1000.0);
    }
    g.refilled_ms = std::max(g.refilled_ms, now);
}

flow_block flow_control::may_start(flow_kind k, const std::string& name, int64_t now, std::optional<int64_t>& due) {
    auto it = gates(k).find(name);
    if (it == gates(k).end()) {
        return flow_block::none;
    }
    auto& g = it->second;
    if (g.paused) {
        return flow_block::paused;
    }
    if (g.limits.max_running > 0 && g.running >= g.limits.max_running) {
        return flow_block::capped;  // a result frees a place, and brings a turn
    }
    if (g.limits.rate <= 0) {
        return flow_block::none;
    }
    refill(g, now);
    if (g.tokens + token_slack >= 1.0) {
        return flow_block::none;
    }
    g.waiting = true;
    auto wait = static_cast<int64_t>(std::ceil((1.0 - g.tokens) * 1000.0 / g.limits.rate - token_slack));
    auto at = now + std::max<int64_t>(wait, 1);
    if (!due || at < *due) {
        due = at;
    }
    return flow_block::rate;
}

void flow_control::started(const std::string& queue, const std::string& handler, int64_t now) {
    for (auto [k, name] : {std::pair{flow_kind::queue, &queue}, std::pair{flow_kind::handler, &handler}}) {
        auto it = gates(k).find(*name);
        if (it == gates(k).end()) {
            continue;
        }
        auto& g = it->second;
        ++g.running;
        if (g.limits.rate > 0) {
            refill(g, now);
            g.tokens = std::max(0.0, g.tokens - 1.0);
            g.waiting = false;
        }
    }
}

void flow_control::add_running(const std::string& queue, const std::string& handler) {
    if (auto it = gates(flow_kind::queue).find(queue); it != gates(flow_kind::queue).end()) {
        ++it->second.running;
    }
    if (auto it = gates(flow_kind::handler).find(handler); it != gates(flow_kind::handler).end()) {
        ++it->second.running;
    }
}

void flow_control::stopped(const std::string& queue, const std::string& handler) {
    for (auto [k, name] : {std::pair{flow_kind::queue, &queue}, std::pair{flow_kind::handler, &handler}}) {
        if (auto it = gates(k).find(*name); it != gates(k).end() && it->second.running > 0) {
            --it->second.running;
        }
    }
}

}  // namespace taskmill::broker
