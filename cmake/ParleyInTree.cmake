# ParleyInTree.cmake: settings for parley's own tests, examples and benchmarks.
#
# Nothing here reaches a consumer: warnings, -Werror and sanitizers are put
# on the in-tree targets one by one through parley_add_in_tree_options(),
# never on the parley::parley interface target, so a project using parley
# keeps its own flags. Not installed.

# Warnings with -Werror are for parley's developers and CI; a user building
# parley's tests with a newer compiler can turn PARLEY_WERROR off.
set(PARLEY_WARNING_OPTIONS -Wall -Wextra -Wpedantic)

# PARLEY_SANITIZE is handed to -fsanitize= as is, so any list the compiler
# takes works; the presets use "address,undefined" and "thread".
set(PARLEY_SANITIZE_OPTIONS)
if(PARLEY_SANITIZE)
  if(MSVC)
    message(FATAL_ERROR "PARLEY_SANITIZE is only wired up for GCC and Clang")
  endif()
  if(PARLEY_SANITIZE MATCHES "thread" AND PARLEY_SANITIZE MATCHES "address")
    message(FATAL_ERROR "PARLEY_SANITIZE: ThreadSanitizer cannot be combined with AddressSanitizer")
  endif()
  # Frame pointers make the sanitizers' stack traces complete and cheap.
  list(APPEND PARLEY_SANITIZE_OPTIONS
    "-fsanitize=${PARLEY_SANITIZE}" -fno-omit-frame-pointer)
  if(PARLEY_SANITIZE MATCHES "undefined")
    # By default UBSan prints and carries on, and the test still "passes";
    # make every report fatal so ctest sees it.
    list(APPEND PARLEY_SANITIZE_OPTIONS -fno-sanitize-recover=all)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 17)
      # Clang's -fsanitize=function (part of "undefined") cannot compile
      # coroutines before Clang 17: the split resume/destroy functions end
      # up in other sections than the prologue data pointing at them, and
      # the assembler stops with "Cannot represent a difference across
      # sections". Everything else in UBSan still applies.
      list(APPEND PARLEY_SANITIZE_OPTIONS -fno-sanitize=function)
    endif()
  endif()
endif()

function(parley_add_in_tree_options target)
  # Plain -std=c++20 rather than gnu++20, as meson's cpp_std=c++20 does, so
  # parley's own code never leans on a GNU extension.
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE ${PARLEY_WARNING_OPTIONS})
  if(PARLEY_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(PARLEY_SANITIZE_OPTIONS)
    target_compile_options(${target} PRIVATE ${PARLEY_SANITIZE_OPTIONS})
    target_link_options(${target} PRIVATE ${PARLEY_SANITIZE_OPTIONS})
  endif()
endfunction()

# hiredis (Debian: libhiredis-dev) is optional: only the Redis backplane
# (parley/redis/redis_connection.hpp, parley/chat/redis_backplane.hpp) needs it.
# Found: the in-tree target parley_hiredis links it and defines
# PARLEY_HAVE_HIREDIS, which turns on chat_server's --redis and the Redis
# tests. Not found: those are off, and say so. Only the library and the
# <hiredis/...> include path are used, not pkg-config's -I.../hiredis, which
# would put hiredis's "read.h" and "sds.h" on everyone's include path.
option(PARLEY_WITH_HIREDIS "Use hiredis for the Redis backplane's tests and chat_server --redis when found" ON)
if(PARLEY_WITH_HIREDIS)
  find_path(PARLEY_HIREDIS_INCLUDE_DIR hiredis/hiredis.h)
  find_library(PARLEY_HIREDIS_LIBRARY hiredis)
  mark_as_advanced(PARLEY_HIREDIS_INCLUDE_DIR PARLEY_HIREDIS_LIBRARY)
endif()
if(PARLEY_WITH_HIREDIS AND PARLEY_HIREDIS_INCLUDE_DIR AND PARLEY_HIREDIS_LIBRARY)
  add_library(parley_hiredis INTERFACE)
  target_include_directories(parley_hiredis SYSTEM INTERFACE "${PARLEY_HIREDIS_INCLUDE_DIR}")
  target_link_libraries(parley_hiredis INTERFACE "${PARLEY_HIREDIS_LIBRARY}")
  target_compile_definitions(parley_hiredis INTERFACE PARLEY_HAVE_HIREDIS=1)
  message(STATUS "parley: hiredis found (${PARLEY_HIREDIS_LIBRARY}): Redis backplane, "
                 "chat_server --redis and its tests are on")
else()
  message(STATUS "parley: hiredis not found: the Redis backplane, chat_server --redis and "
                 "its tests are off (Debian: apt-get install libhiredis-dev)")
endif()

# SQLite (Debian: libsqlite3-dev) is optional in the same way: only the chat
# history store (parley/chat/history/sqlite_store.hpp) needs it. Found: the
# in-tree target parley_sqlite links it and defines PARLEY_HAVE_SQLITE, which
# turns on chat_server --history-db and the store's tests and benchmark. Not
# found: those are off (chat_server --history-db says so), and
# say so (the tests report themselves skipped).
option(PARLEY_WITH_SQLITE "Use SQLite for chat_server --history-db and the history store's tests and benchmark when found" ON)
if(PARLEY_WITH_SQLITE)
  find_path(PARLEY_SQLITE_INCLUDE_DIR sqlite3.h)
  find_library(PARLEY_SQLITE_LIBRARY sqlite3)
  mark_as_advanced(PARLEY_SQLITE_INCLUDE_DIR PARLEY_SQLITE_LIBRARY)
endif()
if(PARLEY_WITH_SQLITE AND PARLEY_SQLITE_INCLUDE_DIR AND PARLEY_SQLITE_LIBRARY)
  add_library(parley_sqlite INTERFACE)
  target_include_directories(parley_sqlite SYSTEM INTERFACE "${PARLEY_SQLITE_INCLUDE_DIR}")
  target_link_libraries(parley_sqlite INTERFACE "${PARLEY_SQLITE_LIBRARY}")
  target_compile_definitions(parley_sqlite INTERFACE PARLEY_HAVE_SQLITE=1)
  message(STATUS "parley: SQLite found (${PARLEY_SQLITE_LIBRARY}): chat_server --history-db and the history store's tests are on")
else()
  message(STATUS "parley: SQLite not found: chat_server --history-db and the SQLite history store's tests and benchmark are off "
                 "(Debian: apt-get install libsqlite3-dev)")
endif()
