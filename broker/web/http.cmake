# The broker's HTTP side: metrics, the JSON API and the embedded dashboard.
# Included from broker/CMakeLists.txt after taskmill_broker_lib is defined.
# GLOBAL: the tests link it too.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)

set(_web_dir ${CMAKE_CURRENT_SOURCE_DIR}/web)
set(_web_files ${_web_dir}/index.html ${_web_dir}/app.js ${_web_dir}/style.css)
set(_web_cpp ${CMAKE_CURRENT_BINARY_DIR}/web_assets.cpp)
add_custom_command(
  OUTPUT ${_web_cpp}
  COMMAND ${CMAKE_COMMAND} "-DOUT=${_web_cpp}" "-DFILES=${_web_files}" -P ${_web_dir}/embed.cmake
  DEPENDS ${_web_files} ${_web_dir}/embed.cmake
  COMMENT "Embedding the dashboard"
  VERBATIM)

target_sources(taskmill_broker_lib PRIVATE
  src/metrics.cpp
  src/metrics_engine.cpp
  src/http_bridge.cpp
  src/http_json.cpp
  src/http_api.cpp
  src/http_server.cpp
  src/http_pool.cpp
  ${_web_cpp})
target_link_libraries(taskmill_broker_lib PRIVATE PkgConfig::HTTPLIB cppzmq)
