# Build helpers shared by every component.

function(taskmill_enable_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    # GCC 12 at -O2 and up warns on every `"text" + std::string(...)`, with an
    # impossible size (9223372036854775810 bytes): its own bug in
    # operator+(const char*, string&&), fixed in later releases
    # (gcc.gnu.org/bugzilla/show_bug.cgi?id=105651). Only for that compiler.
    $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>
    $<$<BOOL:${TASKMILL_WARNINGS_AS_ERRORS}>:-Werror>)
endfunction()

# taskmill_add_test(NAME SOURCES ... [LIBS ...]): one GoogleTest executable,
# its tests discovered into CTest.
function(taskmill_add_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;DEFINES" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE ${T_DEFINES})
  taskmill_enable_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endfunction()

# A CTest that checks a plugin's exported symbols (scripts/check_plugin_abi.sh).
function(taskmill_check_plugin_abi target)
  if(TASKMILL_BUILD_TESTS)
    add_test(NAME plugin_abi.${target}
      COMMAND ${PROJECT_SOURCE_DIR}/scripts/check_plugin_abi.sh $<TARGET_FILE:${target}>)
  endif()
endfunction()
