# Every third-party dependency is found here, once (Debian 12 packages;
# scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(cppzmq 4.9 CONFIG REQUIRED)              # target cppzmq
find_package(msgpack 4 CONFIG REQUIRED)               # target msgpackc-cxx
find_package(spdlog 1.10 CONFIG REQUIRED)             # spdlog::spdlog (compiled)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(nlohmann_json 3 CONFIG REQUIRED)         # nlohmann_json::nlohmann_json
find_package(absl CONFIG REQUIRED)                    # absl::btree (libabsl-dev)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb) # PkgConfig::LMDB
# The broker cluster's consensus (libraft-dev 0.15) and its I/O loop.
pkg_check_modules(RAFT REQUIRED IMPORTED_TARGET raft)   # PkgConfig::RAFT
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv) # PkgConfig::LIBUV
# cctz (libcctz-dev) for cron time zones; reads tzdata's /usr/share/zoneinfo.
find_path(CCTZ_INCLUDE_DIR cctz/time_zone.h REQUIRED)
find_library(CCTZ_LIBRARY cctz REQUIRED)
if(NOT TARGET cctz::cctz)
  add_library(cctz::cctz UNKNOWN IMPORTED)
  set_target_properties(cctz::cctz PROPERTIES IMPORTED_LOCATION "${CCTZ_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${CCTZ_INCLUDE_DIR}")
endif()
if(TASKMILL_BUILD_TESTS)
  find_package(GTest 1.12 CONFIG REQUIRED)
  include(GoogleTest)
endif()
