// parley internals: a mutex that can be switched off for single-threaded use.
#ifndef PARLEY_DETAIL_OPTIONAL_MUTEX_HPP
#define PARLEY_DETAIL_OPTIONAL_MUTEX_HPP

#include <mutex>

namespace parley::detail {

// Locks only when enabled: a server running its io_context on one thread
// pays nothing for thread safety it does not use.
class optional_mutex {
public:
    explicit optional_mutex(bool enabled = true) noexcept : enabled_(enabled) {}
    void lock() {
        if (enabled_)
            mutex_.lock();
    }
    void unlock() {
        if (enabled_)
            mutex_.unlock();
    }
    bool enabled() const noexcept { return enabled_; }

private:
    std::mutex mutex_;
    bool enabled_;
};

using optional_lock = std::unique_lock<optional_mutex>;

} // namespace parley::detail

#endif
