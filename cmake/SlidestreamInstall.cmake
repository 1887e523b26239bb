# `cmake --install`: the modules and their public headers (installed by slidestream_add_module), the
# slidestream binary and a package configuration, so that a user's project links the library
# with find_package(slidestream) and target_link_libraries(... slidestream::slidestream).
# tests/install checks it by building examples/ out of tree against an installed copy.
include(CMakePackageConfigHelpers)

set_target_properties(slidestream_all PROPERTIES EXPORT_NAME slidestream)
install(TARGETS slidestream_all EXPORT slidestreamTargets)
install(TARGETS slidestream RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${PROJECT_BINARY_DIR}/generated/slidestream/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/slidestream)

set(SLIDESTREAM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/slidestream)
install(EXPORT slidestreamTargets NAMESPACE slidestream:: DESTINATION ${SLIDESTREAM_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/slidestreamConfig.cmake.in
  ${PROJECT_BINARY_DIR}/slidestreamConfig.cmake INSTALL_DESTINATION ${SLIDESTREAM_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/slidestreamConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/slidestreamConfig.cmake
              ${PROJECT_BINARY_DIR}/slidestreamConfigVersion.cmake
        DESTINATION ${SLIDESTREAM_CMAKE_DIR})
