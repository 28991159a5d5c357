# cmake --install: binaries, the plugin API headers and a CMake package so
# that an out-of-tree plugin needs only find_package(taskmill) and
# taskmill_add_plugin().
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS taskmill_plugin_api EXPORT taskmillTargets)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/plugin-api/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
foreach(exe taskmill-broker taskmill-host taskmill)
  if(TARGET ${exe})
    install(TARGETS ${exe} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

set(_tm_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/taskmill)
install(EXPORT taskmillTargets NAMESPACE taskmill:: DESTINATION ${_tm_cmake_dir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/taskmillConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfig.cmake INSTALL_DESTINATION ${_tm_cmake_dir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/taskmillConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/taskmillConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/TaskmillPlugin.cmake
  DESTINATION ${_tm_cmake_dir})
