# Installation of what is not a program (the programs' install(TARGETS)
# rules live beside them: scalecastd in sbin, scalecast and scalecast-agent
# in bin): man pages, the example configuration and the systemd units.
#
# Paths inside the units follow the prefix given at install time, so
# `cmake --install build --prefix /tmp/x` yields units that run /tmp/x/...
# The configuration goes where GNUInstallDirs puts SYSCONFDIR: /etc for the
# /usr prefix, /etc/opt/... for /opt/..., else PREFIX/etc. DESTDIR is
# honoured (packaging: -DCMAKE_INSTALL_PREFIX=/usr, DESTDIR=staging).
include(GNUInstallDirs)
set(SCALECAST_INSTALL_RULES ON) # tests/cli registers packaging.install

set(SCALECAST_SYSCONFDIR "" CACHE PATH
    "Absolute directory holding scalecast/scalecast.conf (default: from the install prefix)")
set(SCALECAST_SYSTEMD_UNITDIR "" CACHE PATH
    "Absolute directory for the systemd units (default: PREFIX/lib/systemd/system)")

install(FILES ${PROJECT_SOURCE_DIR}/docs/man/scalecast.1
              ${PROJECT_SOURCE_DIR}/docs/man/scalecast-agent.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/docs/man/scalecastd.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# Runs at install time, when CMAKE_INSTALL_PREFIX is the final prefix.
install(CODE "
  set(_src \"${PROJECT_SOURCE_DIR}\")
  set(_work \"${PROJECT_BINARY_DIR}/install-units\")
  set(_bindir \"${CMAKE_INSTALL_BINDIR}\")
  set(_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
  set(_sysconf \"${SCALECAST_SYSCONFDIR}\")
  set(_unitdir \"${SCALECAST_SYSTEMD_UNITDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/install_files.cmake\")
")
