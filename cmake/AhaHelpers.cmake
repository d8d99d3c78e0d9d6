# Helpers that give every module, test and benchmark the same shape.

include(GNUInstallDirs)

# aha_add_module(NAME SOURCES ... DEPS ...): library target aha_NAME with public headers in
# NAME/include and an alias aha::NAME. `cmake --install` installs the library and its headers
# and exports it as aha::NAME (cmake/AhaInstall.cmake writes the package).
function(aha_add_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(aha_${name} ${ARG_SOURCES})
  add_library(aha::${name} ALIAS aha_${name})
  set_target_properties(aha_${name} PROPERTIES EXPORT_NAME ${name})
  target_include_directories(aha_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(aha_${name} PUBLIC ${ARG_DEPS})
  install(TARGETS aha_${name} EXPORT ahaTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set_property(GLOBAL APPEND PROPERTY AHA_MODULES ${name})
endfunction()

# aha_add_test(NAME SOURCES ... DEPS ... [LABELS ...]): one GoogleTest binary per module,
# registered test by test with CTest.
function(aha_add_test name)
  cmake_parse_arguments(ARG "" "RESOURCE_LOCK" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/temp_cleanup.cpp)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE
    AHA_TEST_DATA_DIR="${PROJECT_SOURCE_DIR}/tests/data"
    AHA_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    AHA_BINARY_DIR="${PROJECT_BINARY_DIR}")
  include(GoogleTest)
  set(props LABELS "${ARG_LABELS}" TIMEOUT 300)
  if(ARG_RESOURCE_LOCK)
    list(APPEND props RESOURCE_LOCK ${ARG_RESOURCE_LOCK})
  endif()
  gtest_discover_tests(${name} PROPERTIES ${props} DISCOVERY_TIMEOUT 60)
endfunction()

# aha_add_bench(NAME SOURCES ... DEPS ...): a Google Benchmark binary.
function(aha_add_bench name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()
