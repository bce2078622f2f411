# Install-time half of cmake/install.cmake (included from cmake_install.cmake
# with _src, _work, _bindir, _sbindir, _sysconf and _unitdir set): writes the
# systemd units for the final prefix and installs them with the example
# configuration. An existing configuration that differs from the example is
# kept; the example then lands beside it as scalecast.conf.dist.
set(_prefix "${CMAKE_INSTALL_PREFIX}")
if(NOT _sysconf)
  if(_prefix STREQUAL "/usr")
    set(_sysconf "/etc")
  elseif(_prefix MATCHES "^/opt/")
    set(_sysconf "/etc${_prefix}")
  else()
    set(_sysconf "${_prefix}/etc")
  endif()
endif()
if(NOT _unitdir)
  set(_unitdir "${_prefix}/lib/systemd/system")
endif()
foreach(_dir _bindir _sbindir)
  if(NOT IS_ABSOLUTE "${${_dir}}")
    set(${_dir} "${_prefix}/${${_dir}}")
  endif()
endforeach()

set(BINDIR "${_bindir}")
set(SBINDIR "${_sbindir}")
set(SYSCONFDIR "${_sysconf}")
foreach(_unit scalecastd.service scalecast-agent.service)
  configure_file("${_src}/config/systemd/${_unit}.in" "${_work}/${_unit}" @ONLY)
endforeach()
file(INSTALL DESTINATION "${_unitdir}" TYPE FILE
     FILES "${_work}/scalecastd.service" "${_work}/scalecast-agent.service")

set(_conf "$ENV{DESTDIR}${_sysconf}/scalecast/scalecast.conf")
set(_example "${_src}/config/scalecast.conf")
if(EXISTS "${_conf}")
  file(SHA256 "${_conf}" _have)
  file(SHA256 "${_example}" _want)
endif()
if(EXISTS "${_conf}" AND NOT _have STREQUAL _want)
  message(STATUS "Keeping ${_conf} (it differs from the example); the example goes to "
                 "scalecast.conf.dist beside it")
  configure_file("${_example}" "${_work}/scalecast.conf.dist" COPYONLY)
  file(INSTALL DESTINATION "${_sysconf}/scalecast" TYPE FILE
       FILES "${_work}/scalecast.conf.dist")
else()
  file(INSTALL DESTINATION "${_sysconf}/scalecast" TYPE FILE FILES "${_example}")
endif()
