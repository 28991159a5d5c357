#include <taskmill/protocol/result.hpp>

#include <array>

namespace taskmill {
namespace {
constexpr std::array<std::string_view, 11> names = {"invalid_argument", "not_found",       "conflict",  "too_large",
                                                    "unavailable",      "unsupported",     "corrupt",   "cancelled",
                                                    "internal",         "unknown_handler", "not_leader"};
}

std::string_view to_string(errc code) noexcept { return names[static_cast<std::size_t>(code)]; }

errc errc_from_string(std::string_view name) noexcept {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == name) {
            return static_cast<errc>(i);
        }
    }
    return errc::internal;
}

}  // namespace taskmill
