// parley: UTF-8 validation of text that arrives in pieces.
//
// A WebSocket text message may be split across frames and reads anywhere,
// even inside a character; RFC 6455 asks that it be failed as soon as it
// can no longer be valid, not when it ends. utf8_validator keeps the state
// of a partial character between pieces and reports the first byte that no
// valid UTF-8 text could continue with: after F4 90 (above U+10FFFF) it
// fails on the 90, after ED A0 (a surrogate) on the A0. The rules are those
// of utf8.hpp (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF).
#ifndef PARLEY_CODEC_UTF8_VALIDATOR_HPP
#define PARLEY_CODEC_UTF8_VALIDATOR_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace parley {

/// Incremental UTF-8 validator. Feed it the pieces of one text in order;
/// once it has failed it stays failed until reset().
///
/// @code
/// parley::utf8_validator v;
/// for (auto piece : pieces)
///     if (v.feed(piece) != piece.size())
///         return fail_1007();     // invalid at byte v.feed() returned
/// if (!v.complete())
///     return fail_1007();         // the text ends inside a character
/// @endcode
class utf8_validator {
public:
    /// Validates the next piece. Returns piece.size() when every byte of it
    /// continues a text that can still be valid; otherwise the index in
    /// `piece` of the first byte that cannot, and the validator has failed.
    /// After a failure it returns 0 for every piece.
    std::size_t feed(std::span<const std::byte> piece) noexcept {
        return feed(reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
    }
    std::size_t feed(std::string_view piece) noexcept {
        return feed(reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
    }

    /// Not failed, and not inside a character: the text so far is valid.
    bool complete() const noexcept { return !failed_ && need_ == 0; }
    /// Whether a byte that no valid text could hold has been seen.
    bool failed() const noexcept { return failed_; }
    /// Bytes of a character still expected (0 to 3).
    unsigned pending() const noexcept { return need_; }

    /// Starts a new text.
    void reset() noexcept { *this = utf8_validator(); }

private:
    std::size_t feed(const unsigned char* p, std::size_t n) noexcept {
        if (failed_)
            return 0;
        std::size_t i = 0;
        while (i < n) {
            if (need_ == 0) {
                // ASCII runs, a word at a time.
                while (n - i >= 8) {
                    std::uint64_t w;
                    std::memcpy(&w, p + i, 8);
                    if ((w & 0x8080808080808080ull) != 0)
                        break;
                    i += 8;
                }
                if (i == n)
                    break;
                const unsigned b = p[i];
                if (b < 0x80) {
                    ++i;
                    continue;
                }
                lo_ = 0x80;
                hi_ = 0xBF;
                if (b >= 0xC2 && b <= 0xDF) {
                    need_ = 1;
                } else if (b >= 0xE0 && b <= 0xEF) {
                    need_ = 2;
                    if (b == 0xE0)
                        lo_ = 0xA0; // overlong
                    else if (b == 0xED)
                        hi_ = 0x9F; // UTF-16 surrogates
                } else if (b >= 0xF0 && b <= 0xF4) {
                    need_ = 3;
                    if (b == 0xF0)
                        lo_ = 0x90; // overlong
                    else if (b == 0xF4)
                        hi_ = 0x8F; // above U+10FFFF
                } else {
                    return fail(i); // 80-C1 (continuation, overlong 2-byte), F5-FF
                }
                ++i;
            } else {
                const unsigned b = p[i];
                if (b < lo_ || b > hi_)
                    return fail(i);
                lo_ = 0x80;
                hi_ = 0xBF;
                --need_;
                ++i;
            }
        }
        return n;
    }

    std::size_t fail(std::size_t at) noexcept {
        failed_ = true;
        return at;
    }

    std::uint8_t need_ = 0;
    std::uint8_t lo_ = 0x80;
    std::uint8_t hi_ = 0xBF;
    bool failed_ = false;
};

} // namespace parley

#endif
