cmake_minimum_required(VERSION 3.21)
# ParleyCheckLists.cmake: fails when the CMake and meson builds list
# different test sources or examples. Run by ctest as "lists_in_sync":
#   cmake -DPARLEY_SOURCE_DIR=<source> -P cmake/ParleyCheckLists.cmake
#
# Both build systems list their files by hand (neither globs), so a file
# added to one list only would silently go untested in the other build.

# Reads the entries of the list that starts at the first match of `opener`
# in `file` and runs to the next ")" or "]"; comments are dropped, quotes too.
function(parley_read_list file opener out)
  file(READ "${PARLEY_SOURCE_DIR}/${file}" text)
  string(FIND "${text}" "${opener}" start)
  if(start EQUAL -1)
    message(FATAL_ERROR "${file}: cannot find '${opener}'")
  endif()
  string(LENGTH "${opener}" opener_length)
  math(EXPR start "${start} + ${opener_length}")
  string(SUBSTRING "${text}" ${start} -1 text)
  string(REGEX REPLACE "[])].*" "" text "${text}")
  string(REGEX REPLACE "#[^\n]*" "" text "${text}")
  string(REGEX REPLACE "[\"',\n\t ]+" ";" text "${text}")
  list(FILTER text EXCLUDE REGEX "^$")
  list(SORT text)
  set(${out} "${text}" PARENT_SCOPE)
endfunction()

function(parley_compare what cmake_file cmake_opener meson_file meson_opener)
  parley_read_list("${cmake_file}" "${cmake_opener}" from_cmake)
  parley_read_list("${meson_file}" "${meson_opener}" from_meson)
  if(NOT from_cmake STREQUAL from_meson)
    set(only_cmake ${from_cmake})
    set(only_meson ${from_meson})
    if(from_meson)
      list(REMOVE_ITEM only_cmake ${from_meson})
    endif()
    if(from_cmake)
      list(REMOVE_ITEM only_meson ${from_cmake})
    endif()
    message(SEND_ERROR
      "${what} lists differ.\n"
      "  only in ${cmake_file}: ${only_cmake}\n"
      "  only in ${meson_file}: ${only_meson}\n"
      "Add each file to both lists.")
  else()
    message(STATUS "${what}: ${from_cmake}")
  endif()
endfunction()

if(NOT PARLEY_SOURCE_DIR)
  message(FATAL_ERROR "pass -DPARLEY_SOURCE_DIR=<parley source dir>")
endif()
parley_compare("test sources"
  tests/CMakeLists.txt "set(PARLEY_TEST_SOURCES"
  tests/meson.build "parley_test_sources = files(")
parley_compare("parley_tests groups"
  tests/CMakeLists.txt "set(PARLEY_TEST_GROUPS"
  tests/meson.build "parley_test_groups = [")
parley_compare("examples"
  examples/CMakeLists.txt "set(PARLEY_EXAMPLES"
  examples/meson.build "parley_examples = [")
