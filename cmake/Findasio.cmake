# Findasio.cmake: finds standalone Asio (not Boost.Asio) and creates asio::asio.
#
# Debian's libasio-dev, like most distributions' Asio packages, ships neither a
# CMake package nor a pkg-config file, so parley carries this module and
# installs it beside parleyConfig.cmake for find_package(parley) to use.
#
# Result variables:
#   asio_FOUND, asio_VERSION, asio_INCLUDE_DIRS
# Cache variable (set it to point at an Asio checkout, e.g. <asio>/asio/include):
#   asio_INCLUDE_DIR
# Imported target:
#   asio::asio - header-only, with ASIO_STANDALONE and ASIO_NO_DEPRECATED
#                and a link to Threads::Threads.
#
# asio_ROOT (CMake >= 3.12) is honoured as a search hint as usual.

# Another project (or an earlier call) may already provide asio::asio, for
# example from its own copy of Asio; reuse it rather than fight over the name.
if(TARGET asio::asio)
  set(asio_FOUND TRUE)
  return()
endif()

find_path(asio_INCLUDE_DIR
  NAMES asio.hpp
  PATH_SUFFIXES asio/include include
  DOC "Directory containing standalone Asio's asio.hpp")
mark_as_advanced(asio_INCLUDE_DIR)

if(asio_INCLUDE_DIR AND EXISTS "${asio_INCLUDE_DIR}/asio/version.hpp")
  # ASIO_VERSION is MAJOR * 100000 + MINOR * 100 + PATCH (102201 is 1.22.1).
  file(STRINGS "${asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
       REGEX "^#define[ \t]+ASIO_VERSION[ \t]+[0-9]+")
  string(REGEX REPLACE "^#define[ \t]+ASIO_VERSION[ \t]+([0-9]+).*" "\\1"
         _asio_version_number "${_asio_version_line}")
  if(_asio_version_number MATCHES "^[0-9]+$")
    math(EXPR _asio_major "${_asio_version_number} / 100000")
    math(EXPR _asio_minor "${_asio_version_number} / 100 % 1000")
    math(EXPR _asio_patch "${_asio_version_number} % 100")
    set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
  endif()
  unset(_asio_version_line)
  unset(_asio_version_number)
  unset(_asio_major)
  unset(_asio_minor)
  unset(_asio_patch)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(asio
  REQUIRED_VARS asio_INCLUDE_DIR
  VERSION_VAR asio_VERSION)

if(asio_FOUND)
  set(asio_INCLUDE_DIRS "${asio_INCLUDE_DIR}")
  # Asio runs its reactor on threads the user starts; even a single-threaded
  # program needs the thread library on some platforms.
  if(NOT TARGET Threads::Threads)
    set(THREADS_PREFER_PTHREAD_FLAG ON)
    find_package(Threads REQUIRED)
  endif()
  add_library(asio::asio INTERFACE IMPORTED)
  # Include directories of an IMPORTED target are SYSTEM includes, so Asio's
  # own warnings never break a -Werror build of code that uses it.
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
