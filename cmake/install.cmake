# What `cmake --install` puts where, and the Debian package `cpack -G DEB`
# makes of it:
#   bin/mqd, bin/mqd-cli, share/man/man1/mqd.1.gz and mqd-cli.1.gz,
#   share/doc/mqd/copyright,
#   lib/systemd/system/mqd.service and the configuration file, which lands
#   in /etc/mqd/ for a prefix of /usr (the package) and <prefix>/etc/mqd/
#   otherwise, with the unit's paths following it (see install-service.cmake.in).
include(GNUInstallDirs)

install(TARGETS mqd mqd-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

find_program(MQD_GZIP gzip)
foreach(page mqd mqd-cli)
  if(MQD_GZIP)
    # -n: no name or time stamp inside, so the same page gives the same bytes
    add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${page}.1.gz
      COMMAND ${CMAKE_COMMAND} -E copy ${CMAKE_CURRENT_SOURCE_DIR}/docs/${page}.1 ${page}.1
      COMMAND ${MQD_GZIP} -9 -n -f ${page}.1
      DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/docs/${page}.1
      WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
      VERBATIM)
    list(APPEND MQD_MANPAGES ${CMAKE_CURRENT_BINARY_DIR}/${page}.1.gz)
  else()
    list(APPEND MQD_MANPAGES docs/${page}.1)
  endif()
endforeach()
if(MQD_GZIP)
  add_custom_target(manpage ALL DEPENDS ${MQD_MANPAGES})
endif()
install(FILES ${MQD_MANPAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME copyright)

configure_file(cmake/install-service.cmake.in install-service.cmake @ONLY)
install(SCRIPT ${CMAKE_CURRENT_BINARY_DIR}/install-service.cmake)

set(MQD_PACKAGE_MAINTAINER
    "mqd maintainers <maintainers@users.noreply.r-seed-f03cc4e9.example>"
    CACHE STRING "Maintainer field of the Debian package")
# empty: the package has no Homepage field (the project has no public page
# yet; whoever publishes a build sets it, and the Maintainer above)
set(MQD_PACKAGE_HOMEPAGE "" CACHE STRING "Homepage field of the Debian package (empty: none)")

set(CPACK_PACKAGE_NAME mqd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "small, fast publish/subscribe server speaking JSON lines over TCP")
set(CPACK_PACKAGE_DESCRIPTION
    "mqd routes messages between clients that connect over TCP and send one
JSON command per line: subscribe to a topic, unsubscribe, send to every
subscriber or to one. It keeps the latest messages of each topic for late
subscribers, runs as one process with one epoll loop, and limits what any
client can make it hold, so that no client can hurt the others. It speaks
the line protocol of the aiomemq servers. The package also holds mqd-cli,
a command-line client: subscribe and print messages, publish arguments or
lines of standard input, or type commands by hand.")
# install with DESTDIR, so that CMAKE_INSTALL_PREFIX is /usr while packaging
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MQD_PACKAGE_MAINTAINER}")
if(MQD_PACKAGE_HOMEPAGE)
    set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${MQD_PACKAGE_HOMEPAGE}")
endif()
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
find_program(MQD_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(MQD_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libcjson1, libssl3, libwslay1")
endif()
# dpkg keeps a changed configuration file across upgrades only if it is
# listed as a conffile
file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles "/etc/mqd/mqd.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles)
include(CPack)
