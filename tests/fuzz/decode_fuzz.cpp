// Fuzz target for every body decoder of the wire protocol.
//
// Built two ways: with clang and -fsanitize=fuzzer by scripts/fuzz.sh
// (coverage-guided, libFuzzer), and with any compiler as part of the test
// suite, where fuzz_driver.cpp feeds it mutations of valid messages.
// Decoders must return an error for bad input, never crash or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <taskmill/protocol/messages.hpp>

namespace tp = taskmill::protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view body(reinterpret_cast<const char*>(data), size);
    // Whatever decodes must encode again and decode to the same shape.
    if (auto r = tp::decode_request(body)) {
        (void)tp::decode_request(tp::encode(*r)).value();
    }
    if (auto r = tp::decode_reply(body)) {
        (void)tp::decode_reply(tp::encode(*r)).value();
    }
    if (auto r = tp::decode_hello(body)) {
        (void)tp::decode_hello(tp::encode(*r)).value();
    }
    (void)tp::decode_welcome(body);
    (void)tp::peek_req(body);
    if (auto r = tp::decode_dispatch(body)) {
        (void)tp::decode_dispatch(tp::encode(*r)).value();
    }
    if (auto r = tp::decode_results(body)) {
        (void)tp::decode_results(tp::encode(*r)).value();
    }
    if (auto r = tp::decode_control(body)) {
        (void)tp::decode_control(tp::encode(*r)).value();
    }
    return 0;
}
