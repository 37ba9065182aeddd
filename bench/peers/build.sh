#!/bin/sh
# Builds Asio's own cpp11 chat_server and async_tcp_echo_server straight from
# Debian's libasio-dev examples (not copied into this repository), as the
# "what a user would write with plain Asio" peers for bench/run.py.
#
# usage: bench/peers/build.sh OUTDIR     (CXX, ASIO_EXAMPLES may override)
set -eu
out=${1:?usage: build.sh OUTDIR}
src=${ASIO_EXAMPLES:-/usr/share/doc/libasio-dev/examples/cpp11}
cxx=${CXX:-g++}
flags="-O2 -DASIO_STANDALONE -pthread"
if [ ! -f "$src/chat/chat_server.cpp" ] || [ ! -f "$src/echo/async_tcp_echo_server.cpp" ]; then
    echo "build.sh: Asio examples not found under $src (apt-get install libasio-doc: it ships the examples)" >&2
    exit 1
fi
mkdir -p "$out"
build() { # name source [include dir]
    if [ ! -x "$out/$1" ] || [ "$2" -nt "$out/$1" ] || [ "$0" -nt "$out/$1" ]; then
        echo "build.sh: $cxx $flags -> $out/$1" >&2
        # shellcheck disable=SC2086
        $cxx $flags ${3:+-I"$3"} -o "$out/$1" "$2"
    fi
}
build asio_chat_server "$src/chat/chat_server.cpp" "$src/chat"
build asio_echo_server "$src/echo/async_tcp_echo_server.cpp"
