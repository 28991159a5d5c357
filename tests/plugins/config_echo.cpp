// config_echo -- plugin "config_echo": init() keeps the configuration it is
// given ([plugin.config_echo] in host.ini) and handler config.echo returns
// it, as msgpack, as its result. A config with a string "fail" makes init()
// fail with that text as its error message.
#include <new>
#include <string>

#include <taskmill/plugin.hpp>

namespace {

namespace mp = taskmill::plugin::mp;

struct state {
    std::string config;
};

tm_status echo_execute(void* s, const tm_task*, const tm_host_api* host, tm_ctx* ctx) {
    const std::string& config = static_cast<state*>(s)->config;
    tm_bytes out{reinterpret_cast<const uint8_t*>(config.data()), config.size()};
    return host->set_result(ctx, out) == 0 ? TM_OK : TM_RETRY;
}

tm_status echo_init(const tm_host_api* host, tm_ctx* ctx, tm_bytes config, void** out_state) {
    if (config.data == nullptr || config.size == 0) return TM_FAIL;  // the host promises a map
    std::string bytes(reinterpret_cast<const char*>(config.data), config.size);
    auto parsed = mp::unpack(bytes);
    if (!parsed || !parsed->is_map()) return TM_FAIL;
    if (const mp::value* why = parsed->find("fail")) {
        std::string text = why->as_string();
        tm_error err{sizeof(tm_error), 0, {text.data(), text.size()}, -1};
        host->set_error(ctx, &err);
        return TM_FAIL;
    }
    auto* s = new (std::nothrow) state{std::move(bytes)};
    if (s == nullptr) return TM_FAIL;
    *out_state = s;
    return TM_OK;
}

void echo_shutdown(void* s) { delete static_cast<state*>(s); }

const tm_handler echo_handler = {sizeof(tm_handler), 0, "config.echo", 1, echo_execute, nullptr, 0, -1};
const tm_handler* const handlers[] = {&echo_handler};
const tm_plugin plugin = {sizeof(tm_plugin), TM_ABI_VERSION, "config_echo", "1.0.0", 1,
                          handlers,          echo_init,      echo_shutdown};

}  // namespace

TM_DECLARE_PLUGIN(plugin)
