// The one program every packaging test builds, whichever way it found
// parley (FetchContent, add_subdirectory, find_package, pkg-config, meson
// subproject). It proves the include path, the definitions (ASIO_STANDALONE)
// and the thread library all reach a consumer, then exercises a little of
// the library. Exit status 0 means the consumer works.
#include <parley/parley.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstdio>
#include <string>

#ifndef ASIO_STANDALONE
#error "ASIO_STANDALONE should come with parley; the build files lost it"
#endif
#ifdef ASIO_SEPARATE_COMPILATION
#error "parley's in-tree ASIO_SEPARATE_COMPILATION leaked to a consumer"
#endif

// TODO: include this unconditionally (through parley.hpp) once
// frame_codec.hpp is part of the umbrella header in every checkout.
#if __has_include(<parley/codec/frame_codec.hpp>)
#include <parley/codec/frame_codec.hpp>
#include <asio/buffer.hpp>
#define PARLEY_CONSUMER_HAS_CODEC 1
#endif

namespace {

int check(bool ok, const char* what) {
    if (!ok)
        std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    return ok ? 0 : 1;
}

#ifdef PARLEY_CONSUMER_HAS_CODEC
// Encode one frame, decode it again, compare.
int frame_round_trip() {
    const std::string payload = "hello, parley";
    auto frame = parley::encode_frame(asio::buffer(payload));
    std::string wire(asio::buffer_size(frame), '\0');
    asio::buffer_copy(asio::buffer(wire), frame);

    parley::frame_decoder<> decoder;
    decoder.feed(std::string_view(wire));
    std::error_code ec;
    auto decoded = decoder.next(ec);
    if (check(!ec && decoded.has_value(), "decoding the frame just encoded") != 0)
        return 1;
    const std::string text(reinterpret_cast<const char*>(decoded->data()), decoded->size());
    if (check(text == payload, "decoded payload equals the original") != 0)
        return 1;
    std::printf("frame round trip OK\n");
    return 0;
}
#endif

} // namespace

int main() {
    std::printf("parley %s\n", PARLEY_VERSION);
    int failures = check(std::string(PARLEY_VERSION).size() >= 5, "PARLEY_VERSION looks like x.y.z");

    // A posted handler run by io_context::run proves Asio is usable as
    // configured (header-only, threads linked).
    asio::io_context io;
    bool ran = false;
    asio::post(io, [&] { ran = true; });
    io.run();
    failures += check(ran, "asio::io_context ran a posted handler");

#ifdef PARLEY_CONSUMER_HAS_CODEC
    failures += frame_round_trip();
#endif
    if (failures == 0)
        std::printf("consumer OK\n");
    return failures == 0 ? 0 : 1;
}
