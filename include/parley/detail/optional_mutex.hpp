// parley internals: a mutex that can be switched off for single-threaded use.
#ifndef PARLEY_DETAIL_OPTIONAL_MUTEX_HPP
#define PARLEY_DETAIL_OPTIONAL_MUTEX_HPP

#include <atomic>
#include <cstdint>
#include <mutex>

namespace parley::detail {

// Locks only when enabled: a server running its io_context on one thread
// pays nothing for thread safety it does not use.
//
// Eight bytes, not std::mutex's 40 (every session holds one: a chat server
// with many idle clients pays it per client). The lock is a word with
// three states (free, locked, locked with waiters), waited on with C++20's
// atomic wait, which is a futex on Linux: the critical sections it guards
// (queueing a message, reading counters) are short, so a contended lock
// is rare and costs one wake-up, as with std::mutex.
class optional_mutex {
public:
    explicit optional_mutex(bool enabled = true) noexcept : enabled_(enabled) {}
    optional_mutex(const optional_mutex&) = delete;
    optional_mutex& operator=(const optional_mutex&) = delete;

    void lock() noexcept {
        if (!enabled_)
            return;
        std::uint32_t expected = free;
        if (state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                           std::memory_order_relaxed)) [[likely]]
            return;
        // Contended: announce a waiter, and sleep while the lock is held.
        if (expected != contended)
            expected = state_.exchange(contended, std::memory_order_acquire);
        while (expected != free) {
            state_.wait(contended, std::memory_order_relaxed);
            expected = state_.exchange(contended, std::memory_order_acquire);
        }
    }

    bool try_lock() noexcept {
        if (!enabled_)
            return true;
        std::uint32_t expected = free;
        return state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                              std::memory_order_relaxed);
    }

    void unlock() noexcept {
        if (!enabled_)
            return;
        if (state_.exchange(free, std::memory_order_release) == contended)
            state_.notify_one();
    }

    bool enabled() const noexcept { return enabled_; }

private:
    static constexpr std::uint32_t free = 0, locked = 1, contended = 2;
    std::atomic<std::uint32_t> state_{free};
    bool enabled_;
};

using optional_lock = std::unique_lock<optional_mutex>;

} // namespace parley::detail

#endif
