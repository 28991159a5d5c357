# Every third-party dependency is found here, once (Debian 12 packages;
# scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(cppzmq 4.9 CONFIG REQUIRED)              # target cppzmq
find_package(msgpack 4 CONFIG REQUIRED)               # target msgpackc-cxx
find_package(spdlog 1.10 CONFIG REQUIRED)             # spdlog::spdlog (compiled)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3 CONFIG REQUIRED)         # nlohmann_json::nlohmann_json
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb) # PkgConfig::LMDB
if(TASKMILL_BUILD_TESTS)
  find_package(GTest 1.12 CONFIG REQUIRED)
  include(GoogleTest)
endif()
