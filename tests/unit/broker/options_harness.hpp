// The broker's options read from an INI file the test writes, as
// taskmill-broker --config reads them.
#pragma once

#include <fstream>
#include <string>

#include "broker_harness.hpp"
#include "options/broker_options.hpp"

namespace tmtest {

inline tb::broker_options load(const temp_dir& d, const std::string& ini) {
    auto file = (d.path / "broker.ini").string();
    std::ofstream(file) << ini;
    const char* argv[] = {"taskmill-broker", "--config", file.c_str()};
    return tb::load_broker_options(3, argv, {});
}

// What loading `ini` throws, or "" if it loads.
inline std::string load_error(const temp_dir& d, const std::string& ini) {
    try {
        load(d, ini);
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

}  // namespace tmtest
