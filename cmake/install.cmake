# `make install` (cmake --install): the headers under include/dmar/, libdmar.a,
# libdmar.so.MAJOR with its links, dmar.pc for pkg-config, the CMake package (find_package
# (dmar) gives dmar::dmar, the static library, and dmar::dmar_shared), dmarctl and its
# man page. Also the simulated machine for embedders' own host tests: the VT-d model
# (libdmar_model.a, dmar::model) and the POSIX OS layer over it (libdmar_posix.a,
# dmar::posix; pkg-config dmar-sim), headers under include/dmar/sim/.
# examples/ builds against the result (scripts/install_check.sh).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/dmar DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
set(dmar_install_targets dmar)
if(TARGET dmarposix)
  list(APPEND dmar_install_targets dmarmodel dmarposix)
  install(FILES ${CMAKE_SOURCE_DIR}/model/model.h
                ${CMAKE_SOURCE_DIR}/ports/posix/posix_machine.h
          DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/dmar/sim)
endif()
if(TARGET dmar_shared)
  list(APPEND dmar_install_targets dmar_shared)
endif()
install(TARGETS ${dmar_install_targets} EXPORT dmarTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT dmarTargets NAMESPACE dmar:: FILE dmarTargets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dmar)
include(CMakePackageConfigHelpers)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/dmarConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/dmarConfig.cmake
                              INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dmar)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/dmarConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/dmarConfig.cmake ${CMAKE_BINARY_DIR}/dmarConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/dmar)
# dmar.pc finds the prefix from its own place, so `cmake --install --prefix P` (and
# DESTDIR) need no reconfiguration.
file(RELATIVE_PATH DMAR_PC_TO_PREFIX /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" DMAR_PC_TO_PREFIX "${DMAR_PC_TO_PREFIX}")
foreach(pc dmar dmar-sim)
  configure_file(${CMAKE_SOURCE_DIR}/cmake/${pc}.pc.in ${CMAKE_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endforeach()
if(TARGET dmarctl)
  install(TARGETS dmarctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(FILES ${CMAKE_SOURCE_DIR}/docs/dmarctl.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
