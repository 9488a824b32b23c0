# JarvisInstall.cmake - owns where `cmake --install` puts everything, with
# GNUInstallDirs paths, and the Debian package built from those rules (CPack
# DEB; scripts/package is the one command that builds it).
#
# The systemd service is generated for the install prefix (configure_file):
# its ExecStartPre/ExecStart name ${CMAKE_INSTALL_FULL_SBINDIR} and its
# EnvironmentFile ${CMAKE_INSTALL_FULL_SYSCONFDIR}/default. With the prefix
# /usr (the package) GNUInstallDirs puts the configuration in /etc; the
# units go to /lib/systemd/system, where Debian 12 packages put them.

if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_jarvis_unitdir "/lib/systemd/system")
else()
  set(_jarvis_unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(JARVIS_SYSTEMD_UNITDIR "" CACHE PATH
    "Where the systemd units go (empty: /lib/systemd/system for the prefix /usr, else <prefix>/lib/systemd/system)")
if(JARVIS_SYSTEMD_UNITDIR)
  set(_jarvis_unitdir "${JARVIS_SYSTEMD_UNITDIR}")
endif()
set(JARVIS_PACKAGE_MAINTAINER "JARVIS Atomic Executor maintainers <jarvis-atomic-executor@example.org>"
    CACHE STRING "Maintainer field of the Debian package (and its changelog)")

set(_jarvis_gen "${CMAKE_BINARY_DIR}/deploy")
set(_jarvis_conf "${CMAKE_INSTALL_FULL_SYSCONFDIR}")
set(JARVIS_SBINDIR "${CMAKE_INSTALL_FULL_SBINDIR}")
set(JARVIS_DEFAULT_FILE "${_jarvis_conf}/default/jarvis-atomic-executor")
configure_file("${CMAKE_SOURCE_DIR}/deploy/systemd/jarvis-atomic-executor.service.in"
               "${_jarvis_gen}/systemd/jarvis-atomic-executor.service" @ONLY)
configure_file("${CMAKE_SOURCE_DIR}/deploy/debian/changelog.in"
               "${_jarvis_gen}/debian/changelog" @ONLY)

# Build-time files: gzipped man pages and changelog (Debian wants them
# compressed, -n for reproducible bytes), and send-request with the
# interpreter Debian's python3 package provides.
set(_jarvis_built "")
foreach(_page jarvis-atomic-executor.8 jarvis-send-request.1)
  add_custom_command(OUTPUT "${_jarvis_gen}/man/${_page}.gz"
    COMMAND "${CMAKE_COMMAND}" -E make_directory "${_jarvis_gen}/man"
    COMMAND gzip -9n -c "${CMAKE_SOURCE_DIR}/deploy/man/${_page}" > "${_jarvis_gen}/man/${_page}.gz"
    DEPENDS "${CMAKE_SOURCE_DIR}/deploy/man/${_page}" VERBATIM)
  list(APPEND _jarvis_built "${_jarvis_gen}/man/${_page}.gz")
endforeach()
add_custom_command(OUTPUT "${_jarvis_gen}/debian/changelog.Debian.gz"
  COMMAND gzip -9n -c "${_jarvis_gen}/debian/changelog" > "${_jarvis_gen}/debian/changelog.Debian.gz"
  DEPENDS "${_jarvis_gen}/debian/changelog" VERBATIM)
add_custom_command(OUTPUT "${_jarvis_gen}/bin/jarvis-send-request"
  COMMAND "${CMAKE_COMMAND}" -DIN=${CMAKE_SOURCE_DIR}/tools/send-request
          -DOUT=${_jarvis_gen}/bin/jarvis-send-request -P "${CMAKE_SOURCE_DIR}/cmake/shebang.cmake"
  DEPENDS "${CMAKE_SOURCE_DIR}/tools/send-request" "${CMAKE_SOURCE_DIR}/cmake/shebang.cmake"
  VERBATIM)
add_custom_target(jarvis_install_files ALL
  DEPENDS ${_jarvis_built} "${_jarvis_gen}/debian/changelog.Debian.gz"
          "${_jarvis_gen}/bin/jarvis-send-request")

install(FILES "${_jarvis_gen}/systemd/jarvis-atomic-executor.service"
              "${CMAKE_SOURCE_DIR}/deploy/systemd/jarvis-atomic-executor.socket"
        DESTINATION "${_jarvis_unitdir}")
# nginx: the sites (plain HTTP on loopback; TLS) and the snippets they
# include from snippets/.
set(_jarvis_nginx_sites jarvis-atomic-executor.conf jarvis-atomic-executor-tls.conf)
set(_jarvis_nginx_snippets jarvis-atomic-executor-locations.conf
    jarvis-atomic-executor-errors.conf jarvis-atomic-executor-tls-profile.conf)
# The files under /etc are the administrator's (conffiles in the package).
set(_jarvis_conffiles "${_jarvis_conf}/default/jarvis-atomic-executor")
install(FILES "${CMAKE_SOURCE_DIR}/deploy/systemd/jarvis-atomic-executor.default"
        DESTINATION "${_jarvis_conf}/default" RENAME jarvis-atomic-executor)
foreach(_kind sites snippets)
  set(_dest "${_jarvis_conf}/nginx/snippets")
  if(_kind STREQUAL "sites")
    set(_dest "${_jarvis_conf}/nginx/sites-available")
  endif()
  foreach(_f IN LISTS _jarvis_nginx_${_kind})
    install(FILES "${CMAKE_SOURCE_DIR}/deploy/nginx/${_f}" DESTINATION "${_dest}")
    list(APPEND _jarvis_conffiles "${_dest}/${_f}")
  endforeach()
endforeach()
install(FILES "${_jarvis_gen}/man/jarvis-atomic-executor.8.gz"
        DESTINATION "${CMAKE_INSTALL_MANDIR}/man8")
install(FILES "${_jarvis_gen}/man/jarvis-send-request.1.gz"
        DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(PROGRAMS "${_jarvis_gen}/bin/jarvis-send-request" DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES "${CMAKE_SOURCE_DIR}/deploy/debian/copyright"
              "${_jarvis_gen}/debian/changelog.Debian.gz"
        DESTINATION "${CMAKE_INSTALL_DOCDIR}")
# Every variable with its default (the man page points here).
install(FILES "${CMAKE_SOURCE_DIR}/.env.example" DESTINATION "${CMAKE_INSTALL_DOCDIR}/examples"
        RENAME env.example)

# ---- the Debian package ---------------------------------------------------
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "Debian package: configure with -DCMAKE_INSTALL_PREFIX=/usr (scripts/package does)")
endif()
string(REPLACE ";" "\n" _jarvis_conffiles_text "${_jarvis_conffiles}")
file(WRITE "${_jarvis_gen}/debian/conffiles" "${_jarvis_conffiles_text}\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME jarvis-atomic-executor)
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${JARVIS_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "ARP spec/v1 Atomic Executor: a FastCGI worker pool behind nginx")
# Debian's extended description (CPack puts the summary line above it).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "The JARVIS Atomic Executor runs one atomic NodeRun per request for an ARP
Run Coordinator (ARP spec/v1), written in C. nginx terminates HTTP and
passes the API to a pool of FastCGI worker processes kept by multiwatch
under hardened systemd units; the workers share a run table, so a cancel or
a health check reaches any run of the pool.")
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries come from dpkg-shlibdeps; nginx fronts the pool, multiwatch
# keeps it, python3 runs jarvis-send-request. spawn-fcgi only serves a run
# without systemd (the man page), so it is recommended, not required.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "nginx, multiwatch, python3")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "spawn-fcgi")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${_jarvis_gen}/debian/conffiles" "${CMAKE_SOURCE_DIR}/deploy/debian/postinst"
    "${CMAKE_SOURCE_DIR}/deploy/debian/prerm" "${CMAKE_SOURCE_DIR}/deploy/debian/postrm")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
include(CPack)
