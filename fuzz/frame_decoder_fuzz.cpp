// libFuzzer target for parley::frame_decoder.
//
// The first bytes of the input choose the configuration; the rest is the
// byte stream. It is fed to the decoder in chunks whose sizes come from a
// PRNG seeded by the input, and the result is compared with a reference
// decoder that reads the whole stream in one go. Any difference, or any
// sanitizer report, is a crash.
//
//   byte 0: bits 0-2 the format (length 1/2/4/8 x big/little),
//           bits 3-4 how the run-time limit is chosen
//   byte 1: chunking seed
//   bytes 2-3: limit parameter
#include <parley/codec/frame_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <system_error>
#include <vector>

namespace {

using parley::byte_order;
using parley::frame_format;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "frame_decoder_fuzz: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fail(#cond);                                                                      \
    } while (0)

struct outcome {
    std::vector<std::vector<std::byte>> frames;
    std::error_code error;
    std::error_code finish_error;
    std::uint64_t announced = 0;
};

template <frame_format F>
outcome reference(std::span<const std::byte> in, std::uint64_t limit) {
    outcome r;
    std::size_t pos = 0;
    while (pos < in.size()) {
        if (in.size() - pos < F.length_bytes) {
            r.finish_error = parley::error::truncated_frame;
            return r;
        }
        std::uint64_t length = 0;
        for (std::size_t i = 0; i < F.length_bytes; ++i) {
            const std::uint64_t b = std::to_integer<std::uint64_t>(in[pos + i]);
            length |= F.order == byte_order::big ? b << (8 * (F.length_bytes - 1 - i)) : b << (8 * i);
        }
        if (length > limit) {
            r.error = r.finish_error = parley::error::frame_too_large;
            r.announced = length;
            return r;
        }
        if (in.size() - pos - F.length_bytes < length) {
            r.finish_error = parley::error::truncated_frame;
            return r;
        }
        const auto* p = in.data() + pos + F.length_bytes;
        r.frames.emplace_back(p, p + length);
        pos += F.length_bytes + static_cast<std::size_t>(length);
    }
    return r;
}

template <frame_format F>
void run(std::uint8_t limit_mode, std::uint32_t seed, std::uint16_t limit_param,
         std::span<const std::byte> in) {
    std::uint64_t limit = F.max_payload;
    switch (limit_mode) {
    case 0: break;
    case 1: limit = limit_param % (F.max_payload + 1); break;
    case 2: limit = limit_param % 64; break;
    case 3: limit = F.max_expressible(); break; // as large as the field allows
    }
    parley::frame_decoder<F> decoder(limit);
    outcome got;
    std::uint32_t state = seed * 2654435761u + 1;
    std::size_t fed = 0;
    while (fed < in.size()) {
        state = state * 1103515245u + 12345u;
        const std::uint32_t r = state >> 16;
        std::size_t n;
        switch (r % 4) {
        case 0: n = 1; break;
        case 1: n = 1 + r % 7; break;
        case 2: n = r % 300; break; // may be 0: an empty chunk
        default: n = in.size(); break;
        }
        if (n > in.size() - fed)
            n = in.size() - fed;
        // A private copy that dies after the chunk is drained: a view kept
        // past that is a use-after-free for AddressSanitizer.
        const std::vector<std::byte> chunk(in.begin() + fed, in.begin() + fed + n);
        fed += n;
        decoder.feed(chunk);
        std::error_code ec;
        while (auto payload = decoder.next(ec)) {
            FUZZ_CHECK(!ec);
            // A frame wholly inside the chunk is a view into it; otherwise it
            // lives in the decoder.
            got.frames.emplace_back(payload->begin(), payload->end());
        }
        if (ec) {
            FUZZ_CHECK(ec == parley::error::frame_too_large);
            if (got.error)
                FUZZ_CHECK(ec == got.error); // sticky
            got.error = ec;
            got.announced = decoder.announced_size();
            FUZZ_CHECK(!decoder.error_message().empty());
        }
        FUZZ_CHECK(decoder.buffered() <= fed);
    }
    decoder.finish(got.finish_error);

    const outcome want = reference<F>(in, limit);
    FUZZ_CHECK(got.frames == want.frames);
    FUZZ_CHECK(got.error == want.error);
    FUZZ_CHECK(got.finish_error == want.finish_error);
    if (want.error) {
        FUZZ_CHECK(got.announced == want.announced);
        FUZZ_CHECK(decoder.error_message() ==
                   parley::describe_oversize_frame(want.announced, limit));
    }

    decoder.reset();
    std::error_code ec;
    decoder.finish(ec);
    FUZZ_CHECK(!ec);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4)
        return 0;
    const std::uint8_t config = data[0];
    const std::uint32_t seed = data[1];
    const std::uint16_t limit_param = static_cast<std::uint16_t>(data[2] << 8 | data[3]);
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 4), size - 4);
    const std::uint8_t limit_mode = (config >> 3) & 3;
    switch (config & 7) {
    case 0: run<frame_format{1, byte_order::big, 255}>(limit_mode, seed, limit_param, in); break;
    case 1: run<frame_format{1, byte_order::little, 255}>(limit_mode, seed, limit_param, in); break;
    case 2: run<frame_format{2, byte_order::big, 65535}>(limit_mode, seed, limit_param, in); break;
    case 3: run<frame_format{2, byte_order::little, 65535}>(limit_mode, seed, limit_param, in); break;
    case 4: run<frame_format{4, byte_order::big}>(limit_mode, seed, limit_param, in); break;
    case 5: run<frame_format{4, byte_order::little}>(limit_mode, seed, limit_param, in); break;
    case 6: run<frame_format{8, byte_order::big}>(limit_mode, seed, limit_param, in); break;
    default: run<frame_format{8, byte_order::little}>(limit_mode, seed, limit_param, in); break;
    }
    return 0;
}
