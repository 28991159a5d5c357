// `taskmill events`: follow the broker's PUB stream, one JSON line per event.
//
// An event is read as [topic][body] or [body]; the body may be JSON text or
// msgpack, and is printed as a JSON object with "type" set (from the topic
// when the body has none). Runs until interrupted, or after --count events.
#include <csignal>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include <boost/program_options.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <taskmill/client/json.hpp>
#include <taskmill/protocol/endpoints.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "cli.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

namespace {

volatile std::sig_atomic_t interrupted = 0;

nlohmann::json decode_body(std::string_view body) {
    // Events wrap task and step fields a few levels deep.
    if (auto j = protocol::parse_json<nlohmann::json>(body, "event", protocol::max_nesting + 8)) {
        return std::move(j.value());
    }
    return client::msgpack_to_json(body);
}

nlohmann::json to_event(std::vector<zmq::message_t>& parts) {
    std::string topic = parts.size() > 1 ? parts.front().to_string() : "";
    auto body = decode_body(parts.back().to_string_view());
    if (!body.is_object()) {
        body = nlohmann::json{{"data", body}};
    }
    if (!body.contains("type") && !topic.empty()) {
        body["type"] = topic;
    }
    return body;
}

}  // namespace

int run_events(const global_options& g, const std::vector<std::string>& args) {
    std::string type;
    uint64_t count = 0;
    bool json = false;
    po::options_description desc;
    desc.add_options()("type", po::value<std::string>(&type))("count", po::value<uint64_t>(&count))(
        "json", po::bool_switch(&json));
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(std::vector<std::string>(args.begin() + 1, args.end())).options(desc).run(),
                  vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error("events: " + std::string(e.what()));
    }
    zmq::context_t ctx(1);
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    std::vector<std::string> endpoints;
    try {
        endpoints = protocol::split_endpoints(g.events);
    } catch (const std::invalid_argument& e) {
        throw usage_error("events: " + std::string(e.what()));
    }
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    // A cluster's members, all of them: only the leader publishes, and
    // after a failover the stream goes on from the new one.
    for (const auto& endpoint : endpoints) {
        try {
            sub.connect(endpoint);
        } catch (const zmq::error_t& e) {
            throw usage_error("events: cannot connect to '" + endpoint + "': " + e.what());
        }
    }
    std::signal(SIGINT, [](int) { interrupted = 1; });
    std::signal(SIGTERM, [](int) { interrupted = 1; });
    uint64_t seen = 0;
    while (interrupted == 0 && (count == 0 || seen < count)) {
        zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
        try {
            zmq::poll(&item, 1, std::chrono::milliseconds(200));  // short, so a signal is noticed
        } catch (const zmq::error_t&) {
            continue;  // EINTR
        }
        // Whole messages only: the parts of one message arrive together.
        std::vector<zmq::message_t> parts;
        while ((item.revents & ZMQ_POLLIN) != 0 &&
               zmq::recv_multipart(sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
            auto event = to_event(parts);
            parts.clear();
            if (!type.empty() && event.value("type", "") != type) {
                continue;
            }
            std::cout << event.dump() << std::endl;
            if (count != 0 && ++seen >= count) {
                break;
            }
        }
    }
    return exit_ok;
}

}  // namespace taskmill::cli
