#!/bin/sh
# Builds Boost.Beast's own WebSocket chat server (example/websocket/server/
# chat-multi) straight from Debian's libboost1.81-doc examples (not copied
# into this repository), against libboost1.81-dev, as bench/ws_run.py's
# "what a user would write with Beast" peer.
#
# usage: bench/peers/build_beast.sh OUTDIR     (CXX, BEAST_CHAT_MULTI may override)
set -eu
out=${1:?usage: build_beast.sh OUTDIR}
src=${BEAST_CHAT_MULTI:-/usr/share/doc/libboost1.81-doc/examples/libs/beast/example/websocket/server/chat-multi}
cxx=${CXX:-g++}
flags="-std=c++17 -O2 -DNDEBUG -pthread"
if [ ! -f "$src/main.cpp" ] || [ ! -f "$src/websocket_session.cpp" ]; then
    echo "build_beast.sh: Beast's chat-multi example not found under $src" \
         "(apt-get install libboost1.81-doc libboost1.81-dev)" >&2
    exit 1
fi
mkdir -p "$out"
exe="$out/beast_chat_multi"
# Rebuilt when missing, or older than a source file or this script.
if [ ! -x "$exe" ] || [ -n "$(find "$src" "$0" -maxdepth 1 -type f -newer "$exe" | head -n 1)" ]; then
    echo "build_beast.sh: $cxx $flags $src/*.cpp -> $exe" >&2
    # shellcheck disable=SC2086
    $cxx $flags -I"$src" -o "$exe" "$src"/*.cpp
fi
