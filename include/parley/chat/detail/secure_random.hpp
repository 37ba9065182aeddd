// parley chat: the random bytes the chat core is given for resume tokens
// and room epochs (core::options::random).
#ifndef PARLEY_CHAT_DETAIL_SECURE_RANDOM_HPP
#define PARLEY_CHAT_DETAIL_SECURE_RANDOM_HPP

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <random>

namespace parley::chat::detail {

// The operating system's CSPRNG through std::random_device: libstdc++'s
// "getrandom" (Linux) or "/dev/urandom" where it has them, else its
// default source. Every byte comes from the device: a token must not be
// predictable from earlier ones, as a seeded generator's would be once its
// state leaked. Thread-safe (the device is not).
inline std::function<void(unsigned char*, std::size_t)> secure_random() {
    struct source {
        std::mutex mutex;
        std::unique_ptr<std::random_device> device;
    };
    auto s = std::make_shared<source>();
    for (const char* token : {"getrandom", "/dev/urandom"}) {
        try {
            s->device = std::make_unique<std::random_device>(token);
            break;
        } catch (...) { // not offered by this standard library
        }
    }
    if (!s->device)
        s->device = std::make_unique<std::random_device>();
    return [s](unsigned char* out, std::size_t n) {
        std::lock_guard lock(s->mutex);
        for (std::size_t i = 0; i < n;) {
            auto word = (*s->device)();
            for (std::size_t k = 0; k < sizeof word && i < n; ++k, ++i) {
                out[i] = static_cast<unsigned char>(word & 0xFF);
                word >>= 8;
            }
        }
    };
}

} // namespace parley::chat::detail

#endif
