# cmake --install: binaries, the plugin API headers and plugin check
# (bin/taskmill-check-plugin-abi), the client library with
# its headers, and a CMake package, so that an out-of-tree plugin needs only
# find_package(taskmill) and taskmill_add_plugin(), and a C++ program only
# find_package(taskmill) and taskmill::client (docs/CLIENT.md).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS taskmill_plugin_api EXPORT taskmillTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/plugin-api/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# The exported-symbol check for plugins (docs/PLUGINS.md, "Build flags").
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/check_plugin_abi.sh
  DESTINATION ${CMAKE_INSTALL_BINDIR} RENAME taskmill-check-plugin-abi)
foreach(exe taskmill-broker taskmill-host taskmill)
  if(TARGET ${exe})
    install(TARGETS ${exe} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# The client and the protocol libraries it links (its public headers include
# taskmill/protocol/result.hpp; the JSON view is linked privately, but a
# static library carries its link dependencies). A separate export set: a plugin needs none
# of their dependencies (component "plugin" in taskmillConfig.cmake).
install(TARGETS taskmill_client taskmill_protocol taskmill_protocol_json EXPORT taskmillClientTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/client/include/ ${PROJECT_SOURCE_DIR}/protocol/include/
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_tm_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/taskmill)
install(EXPORT taskmillTargets NAMESPACE taskmill:: DESTINATION ${_tm_cmake_dir})
install(EXPORT taskmillClientTargets NAMESPACE taskmill:: DESTINATION ${_tm_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/taskmillConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfig.cmake INSTALL_DESTINATION ${_tm_cmake_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/taskmillConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/TaskmillPlugin.cmake
  DESTINATION ${_tm_cmake_dir})
