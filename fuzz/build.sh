#!/bin/sh
# Builds parley's libFuzzer targets into fuzz/build/ (or $1).
#
#   fuzz/build.sh
#   fuzz/build/frame_decoder_fuzz -max_total_time=60 fuzz/corpus/frame_decoder
#   fuzz/build/line_decoder_fuzz -max_total_time=60 fuzz/corpus/line_decoder
#   fuzz/build/chat_protocol_fuzz -max_total_time=60 fuzz/corpus/chat_protocol
#   fuzz/build/chat_core_fuzz -max_total_time=60 fuzz/corpus/chat_core
#   fuzz/build/cluster_codec_fuzz -max_total_time=60 fuzz/corpus/cluster_codec
#   fuzz/build/websocket_frame_fuzz -max_total_time=60 fuzz/corpus/websocket_frame
#   fuzz/build/http_request_fuzz -max_total_time=60 fuzz/corpus/http_request
#
# libFuzzer writes new inputs into the first corpus directory it is given;
# to keep the checked-in seeds small, pass a scratch directory first:
#   mkdir -p /tmp/corpus && fuzz/build/frame_decoder_fuzz /tmp/corpus fuzz/corpus/frame_decoder
#
# Needs clang with libFuzzer (Debian: clang and libclang-rt-14-dev).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:-$here/build}
cxx=${CXX_FUZZ:-clang++}
mkdir -p "$out"
for target in frame_decoder_fuzz line_decoder_fuzz chat_protocol_fuzz chat_core_fuzz cluster_codec_fuzz \
        websocket_frame_fuzz http_request_fuzz; do
    echo "building $out/$target"
    "$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
        -Wall -Wextra -Wpedantic -Werror \
        -I"$root/include" -DASIO_STANDALONE \
        "$here/$target.cpp" -o "$out/$target"
done
