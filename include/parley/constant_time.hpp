// parley: comparing secrets without leaking them through timing.
#ifndef PARLEY_CONSTANT_TIME_HPP
#define PARLEY_CONSTANT_TIME_HPP

#include <cstddef>
#include <string_view>

namespace parley {

/// Whether `given` equals `expected`, taking a time that depends only on
/// the length of `given`: not on where the first difference is, and not on
/// the contents of `expected`. For checking a token or password sent by a
/// peer (`given`) against the secret (`expected`), where `==` would stop
/// at the first wrong byte and tell a patient attacker how many were right.
/// The secret's length is not hidden beyond that (nor needs to be: guess it
/// and the content is as hard as ever).
inline bool constant_time_equal(std::string_view given, std::string_view expected) noexcept {
    // Every byte of `given` is compared, against the secret's byte at the
    // same place, or its first byte past its end: no early exit, no branch
    // on secret data. The lengths take part in the result.
    unsigned difference = given.size() == expected.size() ? 0u : 1u;
    if (expected.empty())
        return given.empty();
    for (std::size_t i = 0; i < given.size(); ++i) {
        const std::size_t j = i < expected.size() ? i : 0;
        difference |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected[j]);
    }
    // Through a volatile, so the compiler cannot turn the loop back into
    // one that stops early.
    volatile unsigned result = difference;
    return result == 0;
}

} // namespace parley

#endif
