# ParleyDependencies.cmake: find Asio (always) and doctest (for the tests),
# falling back to FetchContent when PARLEY_FETCH_DEPS is ON. Not installed:
# an installed parley finds Asio through Findasio.cmake alone and never
# downloads anything behind its user's back.

include(FetchContent)

# The version Debian 12 ships; parley uses the C++20 completion-token
# concepts and asio::experimental pieces as they are in this release.
set(PARLEY_ASIO_MIN_VERSION 1.22)
set(PARLEY_ASIO_FETCH_TAG asio-1-22-1)
set(PARLEY_DOCTEST_FETCH_TAG v2.4.9)

# FetchContent_Declare(... SYSTEM) needs CMake 3.25; it keeps warnings in
# fetched headers from tripping -Werror in parley's own targets.
set(_parley_fetch_system)
if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.25)
  set(_parley_fetch_system SYSTEM)
endif()

find_package(asio ${PARLEY_ASIO_MIN_VERSION} QUIET)
if(NOT asio_FOUND)
  if(NOT PARLEY_FETCH_DEPS)
    message(FATAL_ERROR
      "parley: standalone Asio >= ${PARLEY_ASIO_MIN_VERSION} not found. Install it "
      "(Debian: apt-get install libasio-dev), set asio_INCLUDE_DIR to the "
      "directory holding asio.hpp, or configure with -DPARLEY_FETCH_DEPS=ON.")
  endif()
  message(STATUS "parley: Asio not found, fetching ${PARLEY_ASIO_FETCH_TAG}")
  FetchContent_Declare(asio
    GIT_REPOSITORY https://github.com/chriskohlhoff/asio
    GIT_TAG ${PARLEY_ASIO_FETCH_TAG}
    GIT_SHALLOW TRUE
    ${_parley_fetch_system})
  # Asio's repository has no CMakeLists.txt, so this only downloads it.
  FetchContent_MakeAvailable(asio)
  # Point Findasio.cmake at the checkout so the fetched Asio gets exactly the
  # same asio::asio target (definitions, threads) as an installed one.
  set(asio_INCLUDE_DIR "${asio_SOURCE_DIR}/asio/include"
      CACHE PATH "Directory containing standalone Asio's asio.hpp" FORCE)
  find_package(asio ${PARLEY_ASIO_MIN_VERSION} REQUIRED)
endif()
message(STATUS "parley: using Asio ${asio_VERSION} from ${asio_INCLUDE_DIR}")

if(PARLEY_BUILD_TESTS)
  find_package(doctest CONFIG QUIET)
  if(NOT doctest_FOUND)
    if(NOT PARLEY_FETCH_DEPS)
      message(FATAL_ERROR
        "parley: doctest not found for the tests. Install it (Debian: "
        "apt-get install doctest-dev), configure with -DPARLEY_FETCH_DEPS=ON, "
        "or turn the tests off with -DPARLEY_BUILD_TESTS=OFF.")
    endif()
    message(STATUS "parley: doctest not found, fetching ${PARLEY_DOCTEST_FETCH_TAG}")
    set(DOCTEST_NO_INSTALL ON CACHE BOOL "" FORCE)
    set(DOCTEST_WITH_TESTS OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(doctest
      GIT_REPOSITORY https://github.com/doctest/doctest
      GIT_TAG ${PARLEY_DOCTEST_FETCH_TAG}
      GIT_SHALLOW TRUE
      ${_parley_fetch_system})
    FetchContent_MakeAvailable(doctest)
  endif()
  if(NOT TARGET doctest::doctest)
    message(FATAL_ERROR "parley: doctest was found but provides no doctest::doctest target")
  endif()
endif()

unset(_parley_fetch_system)
