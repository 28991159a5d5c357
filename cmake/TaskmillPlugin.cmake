# taskmill_add_plugin(NAME SOURCES ... [OUTPUT_DIRECTORY dir])
#
# Builds a taskmill handler plugin: a MODULE library that links only the
# plugin API, exports nothing but the entry point and carries no
# STB_GNU_UNIQUE symbols (they pin a library in memory). Used in this tree
# and, installed, by out-of-tree plugins through find_package(taskmill).
function(taskmill_add_plugin name)
  cmake_parse_arguments(P "" "OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT P_SOURCES)
    message(FATAL_ERROR "taskmill_add_plugin(${name}): SOURCES is required")
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  target_link_libraries(${name} PRIVATE taskmill::plugin_api)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  # GCC marks inline statics STB_GNU_UNIQUE, which keeps dlclose from
  # unloading; clang never emits them and has no such flag.
  target_compile_options(${name} PRIVATE $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)
  # Sanitized builds resolve the sanitizer runtime from the host process.
  if(NOT TASKMILL_SANITIZE)
    target_link_options(${name} PRIVATE -Wl,-z,defs)
  endif()
  # In this tree, every plugin's exported surface is checked by the suite.
  if(TASKMILL_CHECK_PLUGIN_ABI AND COMMAND taskmill_check_plugin_abi)
    taskmill_check_plugin_abi(${name})
  endif()
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIRECTORY})
  elseif(DEFINED TASKMILL_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${TASKMILL_PLUGIN_OUTPUT_DIRECTORY})
  endif()
endfunction()
