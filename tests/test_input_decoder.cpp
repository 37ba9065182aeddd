// The input_decoder concept and its result type, without a network (the
// read loop that runs decoders is tested in test_session.cpp).
#include <parley/hub/input_decoder.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <system_error>

namespace {

struct fake_session {
    std::string sent;
};

// Counts bytes up to each '.', as a decoder of one-byte-terminated records.
struct dot_counter {
    std::size_t records = 0;
    std::error_code ended;
    parley::decode_result decode(fake_session& s, parley::input_view bytes) {
        std::size_t used = 0;
        for (std::size_t i = 0; i < bytes.size(); ++i)
            if (bytes[i] == std::byte{'.'}) {
                ++records;
                used = i + 1;
                s.sent += "ack ";
            }
        return {used, records >= 2 ? parley::read_action::hold : parley::read_action::more};
    }
    void finish(fake_session&, parley::input_view, std::error_code ec) { ended = ec; }
};

struct no_finish {
    parley::decode_result decode(fake_session&, parley::input_view) { return {}; }
};

struct wrong_result {
    int decode(fake_session&, parley::input_view) { return 0; }
    void finish(fake_session&, parley::input_view, std::error_code) {}
};

} // namespace

static_assert(parley::input_decoder<dot_counter, fake_session>);
static_assert(!parley::input_decoder<no_finish, fake_session>);
static_assert(!parley::input_decoder<wrong_result, fake_session>);

TEST_CASE("input_decoder: a result reads on and consumes nothing by default") {
    const parley::decode_result r;
    CHECK(r.consumed == 0);
    CHECK(r.next == parley::read_action::more);
}

