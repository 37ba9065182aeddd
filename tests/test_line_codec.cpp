// Tests for include/parley/line_codec.hpp. Included first: the header must
// stand on its own.
#include <parley/codec/line_codec.hpp>

#include <doctest/doctest.h>

#include <asio/buffer.hpp>

#include <cstddef>
#include <limits>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

// Readable failure output for the line lists compared below.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
    static doctest::String convert(const std::vector<std::string>& lines) {
        std::string out = "{";
        for (const auto& line : lines)
            out += (out.size() > 1 ? ", \"" : "\"") + line + "\"";
        return (out + "}").c_str();
    }
};

namespace {

// What a decoder produced: a line's text, or the marker for an over-long
// line (error::line_too_long reported once).
constexpr std::string_view too_long = "<too long>";

// Feeds one chunk and takes every line out of it, as a reader loop would:
// next() returns nullopt both for "need more input" and for an error, so
// an error is recorded and the loop goes on.
void drain(parley::line_decoder& decoder, std::string_view chunk, std::vector<std::string>& out) {
    decoder.feed(chunk);
    for (;;) {
        std::error_code ec;
        auto line = decoder.next(ec);
        if (line) {
            REQUIRE_FALSE(ec);
            out.emplace_back(*line);
            continue;
        }
        if (ec) {
            REQUIRE(ec == parley::error::line_too_long);
            out.emplace_back(too_long);
            continue;
        }
        return;
    }
}

std::vector<std::string> decode_chunks(parley::line_decoder& decoder,
                                       const std::vector<std::string>& chunks) {
    std::vector<std::string> out;
    for (const auto& chunk : chunks) {
        // Each chunk lives only while it is drained, so a view kept past
        // that would be caught by AddressSanitizer.
        const std::string copy = chunk;
        drain(decoder, copy, out);
    }
    return out;
}

std::vector<std::string> decode_chunks(const std::vector<std::string>& chunks,
                                       std::size_t max_line = parley::line_decoder::default_max_line) {
    parley::line_decoder decoder(max_line);
    return decode_chunks(decoder, chunks);
}

std::vector<std::string> bytewise(std::string_view text) {
    std::vector<std::string> chunks;
    for (char c : text)
        chunks.emplace_back(1, c);
    return chunks;
}

// The reference model: split the whole input at each '\n', drop one '\r'
// before it, and flag lines over the limit. An unterminated tail is
// reported as too long only once it exceeds the limit by more than the
// room kept for a '\r' that may still come; otherwise it is pending.
struct reference_result {
    std::vector<std::string> lines;
    std::string pending;
};

reference_result reference_decode(std::string_view input, std::size_t max_line) {
    reference_result r;
    std::size_t start = 0;
    for (;;) {
        const auto nl = input.find('\n', start);
        if (nl == std::string_view::npos)
            break;
        std::string_view line = input.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r')
            line.remove_suffix(1);
        r.lines.emplace_back(line.size() > max_line ? too_long : line);
        start = nl + 1;
    }
    const std::string_view tail = input.substr(start);
    if (tail.size() > max_line + 1)
        r.lines.emplace_back(too_long);
    else
        r.pending = tail;
    return r;
}

} // namespace

TEST_CASE("line_codec: \\n and \\r\\n terminators, empty lines") {
    CHECK(decode_chunks({"one\ntwo\r\n\n\r\nlast\n"}) ==
          std::vector<std::string>{"one", "two", "", "", "last"});
    // Only one '\r' directly before the '\n' is a terminator; others are text.
    CHECK(decode_chunks({"a\rb\n\r\r\n\rx\n"}) == std::vector<std::string>{"a\rb", "\r", "\rx"});
    // Bytes beyond ASCII pass through untouched.
    CHECK(decode_chunks({"连上了\r\n\xFF\xFE\n"}) == std::vector<std::string>{"连上了", "\xFF\xFE"});
}

TEST_CASE("line_codec: lines split across chunks") {
    const std::string text = "hello world\r\nsecond\n\nthird line\r\n";
    const std::vector<std::string> expected{"hello world", "second", "", "third line"};
    CHECK(decode_chunks(bytewise(text)) == expected);
    CHECK(decode_chunks({"hello wo", "rld\r", "\nsec", "ond\n", "\nthird line\r\n"}) == expected);
    CHECK(decode_chunks({"hello world\r", "\n", "second\n\nthird line", "\r", "\n"}) == expected);
    CHECK(decode_chunks({"", "hello world\r\nsecond\n", "", "\nthird line\r\n", ""}) == expected);
}

TEST_CASE("line_codec: a line inside one chunk is a view into it") {
    parley::line_decoder decoder;
    const std::string chunk = "first\nsecond\r\nthird";
    decoder.feed(chunk);
    std::error_code ec;
    auto first = decoder.next(ec);
    REQUIRE(first);
    CHECK(first->data() == chunk.data());
    auto second = decoder.next(ec);
    REQUIRE(second);
    CHECK(second->data() == chunk.data() + 6);
    CHECK(*second == "second");
    CHECK_FALSE(decoder.next(ec));
    CHECK_FALSE(ec);
    CHECK(decoder.pending() == "third");
    // The split line is gathered into the decoder's own storage.
    const std::string rest = "!\n";
    decoder.feed(rest);
    auto third = decoder.next(ec);
    REQUIRE(third);
    CHECK(*third == "third!");
    CHECK(third->data() != rest.data());
}

TEST_CASE("line_codec: maximum length exactly and one over") {
    constexpr std::size_t max = 8;
    const std::string exact(max, 'x');
    const std::string over(max + 1, 'y');
    const std::string text = exact + "\n" + over + "\n" + exact + "\r\n" + over + "\r\nnext\n";
    const std::vector<std::string> expected{exact, std::string(too_long), exact,
                                            std::string(too_long), "next"};
    CHECK(decode_chunks({text}, max) == expected);
    CHECK(decode_chunks(bytewise(text), max) == expected);

    // A very long line split over many chunks is reported once, and the
    // decoder picks up again at the next line.
    std::vector<std::string> chunks{"start\n"};
    for (int i = 0; i < 50; ++i)
        chunks.push_back("0123456789");
    chunks.push_back("tail\r\nafter\n");
    CHECK(decode_chunks(chunks, max) ==
          std::vector<std::string>{"start", std::string(too_long), "after"});

    // The error is for that one call: the next call carries on.
    parley::line_decoder decoder(max);
    const std::string input = over + "\nok\n";
    decoder.feed(input);
    std::error_code ec;
    CHECK_FALSE(decoder.next(ec));
    CHECK(ec == parley::error::line_too_long);
    auto line = decoder.next(ec);
    CHECK_FALSE(ec);
    REQUIRE(line);
    CHECK(*line == "ok");

    CHECK(decode_chunks({"\n\n"}, 0) == std::vector<std::string>{"", ""});
    CHECK(decode_chunks({"a\n\r\n"}, 0) == std::vector<std::string>{std::string(too_long), ""});
    CHECK(parley::line_decoder().max_line() == parley::line_decoder::default_max_line);
    decoder.max_line(3);
    CHECK(decoder.max_line() == 3);
}

TEST_CASE("line_codec: the largest max_line means no limit") {
    // std::numeric_limits<std::size_t>::max() is the natural way to ask for
    // no limit; the check for split lines must not overflow on it.
    const std::size_t unlimited = std::numeric_limits<std::size_t>::max();
    const std::string text = "a line split over several chunks\r\nand another\n";
    CHECK(decode_chunks(bytewise(text), unlimited) ==
          std::vector<std::string>{"a line split over several chunks", "and another"});
    CHECK(decode_chunks({"ab", "cd", "\n"}, unlimited) == std::vector<std::string>{"abcd"});
}

TEST_CASE("line_codec: finish() reports an unterminated line, readable via pending()") {
    parley::line_decoder decoder;
    std::vector<std::string> out;
    drain(decoder, "done\npart", out);
    CHECK(out == std::vector<std::string>{"done"});
    CHECK(decoder.pending() == "part");
    std::error_code ec;
    decoder.finish(ec);
    CHECK(ec == parley::error::truncated_line);
    CHECK(decoder.pending() == "part"); // finish() does not consume it

    drain(decoder, "ial\n", out);
    CHECK(out == std::vector<std::string>{"done", "partial"});
    CHECK(decoder.pending().empty()); // the delivered split line is not pending
    decoder.finish(ec);
    CHECK_FALSE(ec);

    // A '\r' alone at the end is an unterminated line too.
    drain(decoder, "\r", out);
    decoder.finish(ec);
    CHECK(ec == parley::error::truncated_line);
    CHECK(decoder.pending() == "\r");

    decoder.reset();
    CHECK(decoder.pending().empty());
    decoder.finish(ec);
    CHECK_FALSE(ec);

    // Nothing buffered at all: clean.
    parley::line_decoder fresh;
    fresh.finish(ec);
    CHECK_FALSE(ec);
    out.clear();
    drain(fresh, "a\nb\n", out);
    fresh.finish(ec);
    CHECK_FALSE(ec);
}

TEST_CASE("line_codec: reset() forgets a partial line and the discard state") {
    parley::line_decoder decoder(4);
    std::vector<std::string> out;
    drain(decoder, "0123456789", out); // too long, now discarding to the newline
    CHECK(out == std::vector<std::string>{std::string(too_long)});
    decoder.reset();
    out.clear();
    drain(decoder, "ab\ncd", out);
    CHECK(out == std::vector<std::string>{"ab"});
    decoder.reset();
    out.clear();
    drain(decoder, "ef\n", out);
    CHECK(out == std::vector<std::string>{"ef"});
}

TEST_CASE("line_codec: random chunking agrees with the reference model") {
    std::mt19937 rng(4242);
    const char alphabet[] = {'a', 'b', 'z', ' ', '\r', '\n', '\n', '\xE8'};
    for (int iter = 0; iter < 800; ++iter) {
        const std::size_t max_line = rng() % 4 == 0 ? rng() % 3 : rng() % 40;
        std::string input(rng() % 200, '\0');
        for (auto& c : input)
            c = alphabet[rng() % sizeof alphabet];
        // Sometimes a run of long lines.
        if (rng() % 5 == 0)
            input.insert(rng() % (input.size() + 1), std::string(rng() % 120, 'L'));

        std::vector<std::string> chunks;
        const int mode = static_cast<int>(rng() % 3);
        for (std::size_t pos = 0; pos < input.size();) {
            std::size_t n = mode == 0   ? 1
                            : mode == 1 ? 1 + rng() % 8
                                        : rng() % (input.size() + 1);
            n = std::min(n, input.size() - pos);
            chunks.push_back(input.substr(pos, n)); // may be empty
            pos += n;
        }

        parley::line_decoder decoder(max_line);
        const auto got = decode_chunks(decoder, chunks);
        const auto expected = reference_decode(input, max_line);
        CAPTURE(iter);
        CAPTURE(max_line);
        CAPTURE(input);
        REQUIRE(got == expected.lines);
        REQUIRE(decoder.pending() == expected.pending);
        std::error_code ec;
        decoder.finish(ec);
        REQUIRE(ec == (expected.pending.empty() ? std::error_code()
                                                : make_error_code(parley::error::truncated_line)));
    }
}

TEST_CASE("line_codec: encode_line") {
    std::error_code ec;
    auto encoded = parley::encode_line("hello", ec);
    REQUIRE(encoded);
    CHECK_FALSE(ec);
    CHECK(asio::buffer_size(*encoded) == 6);
    std::string wire(asio::buffer_size(*encoded), '\0');
    asio::buffer_copy(asio::buffer(wire), *encoded);
    CHECK(wire == "hello\n");
    // Two buffers: the caller's text, not copied, then the newline.
    CHECK(std::distance(encoded->begin(), encoded->end()) == 2);

    const std::string text = "no copy";
    auto view = parley::encode_line(text, ec);
    REQUIRE(view);
    CHECK(view->begin()->data() == text.data());
    auto copy = *view; // a copy still points at the caller's text and a newline
    wire.assign(asio::buffer_size(copy), '\0');
    asio::buffer_copy(asio::buffer(wire), copy);
    CHECK(wire == "no copy\n");

    CHECK(parley::encode_line("", ec));
    CHECK_FALSE(ec);

    CHECK_FALSE(parley::encode_line("two\nlines", ec));
    CHECK(ec == parley::error::malformed_message);
    CHECK_FALSE(parley::encode_line("trailing\n", ec));
    CHECK(ec == parley::error::malformed_message);

    const std::string at_limit(parley::line_decoder::default_max_line, 'x');
    CHECK(parley::encode_line(at_limit, ec));
    CHECK_FALSE(ec);
    CHECK_FALSE(parley::encode_line(at_limit + "x", ec));
    CHECK(ec == parley::error::line_too_long);
    CHECK(parley::encode_line("12345", ec, 5));
    CHECK_FALSE(ec);
    CHECK_FALSE(parley::encode_line("123456", ec, 5));
    CHECK(ec == parley::error::line_too_long);
    // A failure is cleared by the next success.
    CHECK(parley::encode_line("ok", ec));
    CHECK_FALSE(ec);
}

TEST_CASE("line_codec: what encode_line writes, line_decoder reads back") {
    const std::vector<std::string> lines{"", "hello", "连接成功!,请输入昵称", "tab\there",
                                         std::string(100, 'm')};
    std::string wire;
    for (const auto& line : lines) {
        std::error_code ec;
        auto encoded = parley::encode_line(line, ec, 100);
        REQUIRE(encoded);
        const std::size_t at = wire.size();
        wire.resize(at + asio::buffer_size(*encoded));
        asio::buffer_copy(asio::buffer(wire.data() + at, wire.size() - at), *encoded);
    }
    CHECK(decode_chunks({wire}, 100) == lines);
    CHECK(decode_chunks(bytewise(wire), 100) == lines);
}
