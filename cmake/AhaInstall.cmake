# Install rules: the `aha` binary, every module library (installed and exported by
# aha_add_module), a CMake package (find_package(aha) -> aha::core, aha::rewards, ...) and a
# pkg-config file (aha.pc). Both packages are relocatable: they find the prefix from their own path.
include(CMakePackageConfigHelpers)

install(TARGETS aha RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(AHA_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/aha)
install(EXPORT ahaTargets NAMESPACE aha:: DESTINATION ${AHA_CMAKE_DIR} FILE ahaTargets.cmake)

get_property(AHA_MODULES GLOBAL PROPERTY AHA_MODULES)
# tokenizer links ICU privately when found; a static aha_tokenizer still needs it at the
# consumer's link.
set(AHA_HAVE_ICU OFF)
if(TARGET aha_tokenizer)
  get_target_property(_aha_tokenizer_libs aha_tokenizer LINK_LIBRARIES)
  if("PkgConfig::ICU_UC" IN_LIST _aha_tokenizer_libs)
    set(AHA_HAVE_ICU ON)
  endif()
endif()
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/ahaConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ahaConfig.cmake INSTALL_DESTINATION ${AHA_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ahaConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ahaConfig.cmake ${PROJECT_BINARY_DIR}/ahaConfigVersion.cmake
  DESTINATION ${AHA_CMAKE_DIR})

# aha.pc: libraries in link order (dependents before their dependencies); the modules are static
# by default, so their dependencies go in Requires.
set(AHA_PC_LIBS "")
foreach(module grpo distill train rollout policy tokenizer rewards datasets runlog core)
  if(module IN_LIST AHA_MODULES)
    string(APPEND AHA_PC_LIBS " -laha_${module}")
  endif()
endforeach()
set(AHA_PC_REQUIRES "eigen3 tbb spdlog nlohmann_json sqlite3 libpcre2-8")
if(AHA_WITH_MPI)
  string(APPEND AHA_PC_REQUIRES " ompi-c")
endif()
if(AHA_HAVE_ICU)
  string(APPEND AHA_PC_REQUIRES " icu-uc")
endif()
file(RELATIVE_PATH AHA_PC_PREFIX_REL /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/aha.pc.in ${PROJECT_BINARY_DIR}/aha.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/aha.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The install test: install into a temporary prefix, then build examples/reward_plugin (copied
# out of the tree), a find_package(aha) consumer and a pkg-config consumer against it. Not under
# the sanitizers: the consumers would need the sanitizer runtime flags the libraries were built with.
if(AHA_BUILD_TESTS AND NOT AHA_SANITIZE)
  add_test(NAME install.out_of_tree_consumers
    COMMAND ${PROJECT_SOURCE_DIR}/tests/install/check_install.sh ${PROJECT_BINARY_DIR}
            ${PROJECT_SOURCE_DIR} ${CMAKE_COMMAND})
  set_tests_properties(install.out_of_tree_consumers PROPERTIES LABELS unit TIMEOUT 300)
endif()
