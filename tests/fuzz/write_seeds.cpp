// Writes the broker fuzz target's seed inputs (seeds.hpp) into a folder, one
// file each, for libFuzzer to start from (scripts/fuzz.sh).
//   fuzz_seeds DIR [DEPTH]   DEPTH: nesting of the deep cases (default 200000)
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "seeds.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: fuzz_seeds DIR [DEPTH]\n";
        return 2;
    }
    std::filesystem::path dir = argv[1];
    std::size_t depth = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 200000;
    std::filesystem::create_directories(dir);
    auto inputs = fuzzseeds::broker_inputs(depth);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        std::ofstream(dir / ("seed-" + std::to_string(i)), std::ios::binary) << inputs[i];
    }
    std::cout << inputs.size() << " seeds in " << dir.string() << "\n";
    return 0;
}
