// libFuzzer target for parley::line_decoder and encode_line.
//
// The first bytes of the input choose the line limit and the chunking; the
// rest is the byte stream, fed in PRNG-sized chunks and compared with a
// reference that splits the whole stream at once. Any difference, or any
// sanitizer report, is a crash.
//
//   byte 0: the limit: 0-199 that many bytes, 200-254 the default (4096),
//           255 no limit (SIZE_MAX)
//   byte 1: chunking seed
#include <parley/codec/line_codec.hpp>

#include <asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "line_decoder_fuzz: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fail(#cond);                                                                      \
    } while (0)

// A line, or this marker for a line reported as too long.
const std::string too_long = std::string("\0<too long>", 11);

struct outcome {
    std::vector<std::string> lines;
    std::string pending;
};

outcome reference(std::string_view in, std::size_t max_line) {
    outcome r;
    std::size_t start = 0;
    for (;;) {
        const auto nl = in.find('\n', start);
        if (nl == std::string_view::npos)
            break;
        std::string_view line = in.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        r.lines.push_back(line.size() > max_line ? too_long : std::string(line));
        start = nl + 1;
    }
    // An unterminated tail is too long once it exceeds the limit by more
    // than the one byte kept for a '\r' that may precede the newline.
    const std::string_view tail = in.substr(start);
    if (tail.size() > max_line && tail.size() - max_line > 1)
        r.lines.push_back(too_long);
    else
        r.pending = tail;
    return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const std::size_t max_line = data[0] < 200   ? data[0]
                                 : data[0] < 255 ? parley::line_decoder::default_max_line
                                                 : std::numeric_limits<std::size_t>::max();
    std::uint32_t state = data[1] * 2654435761u + 1;
    const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);

    parley::line_decoder decoder(max_line);
    outcome got;
    std::size_t fed = 0;
    while (fed < in.size()) {
        state = state * 1103515245u + 12345u;
        const std::uint32_t r = state >> 16;
        std::size_t n = r % 4 == 0 ? 1 : r % 4 == 1 ? 1 + r % 9 : r % 4 == 2 ? r % 200 : in.size();
        if (n > in.size() - fed)
            n = in.size() - fed;
        // A private copy that dies after the chunk is drained, so a view kept
        // too long is a use-after-free for AddressSanitizer.
        const std::string chunk(in.substr(fed, n));
        fed += n;
        decoder.feed(chunk);
        for (;;) {
            std::error_code ec;
            auto line = decoder.next(ec);
            if (line) {
                FUZZ_CHECK(!ec);
                FUZZ_CHECK(line->size() <= max_line);
                FUZZ_CHECK(line->find('\n') == std::string_view::npos);
                got.lines.emplace_back(*line);
                // Whatever the decoder hands out, encode_line accepts under
                // the same limit.
                std::error_code eec;
                auto encoded = parley::encode_line(*line, eec, max_line);
                FUZZ_CHECK(encoded && !eec);
                FUZZ_CHECK(asio::buffer_size(*encoded) == line->size() + 1);
                continue;
            }
            if (ec) {
                FUZZ_CHECK(ec == parley::error::line_too_long);
                got.lines.push_back(too_long);
                continue;
            }
            break;
        }
    }
    got.pending = decoder.pending();
    std::error_code ec;
    decoder.finish(ec);
    FUZZ_CHECK(ec == (got.pending.empty() ? std::error_code()
                                          : make_error_code(parley::error::truncated_line)));

    const outcome want = reference(in, max_line);
    FUZZ_CHECK(got.lines == want.lines);
    FUZZ_CHECK(got.pending == want.pending);
    return 0;
}
