// parley internals: the bookkeeping of overflow_policy::backpressure, which
// pauses the reading of a session whose publishes fill another's queue.
#ifndef PARLEY_DETAIL_READ_PAUSE_HPP
#define PARLEY_DETAIL_READ_PAUSE_HPP

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace parley {
class session_base;
}

namespace parley::detail {

// The session whose read handler is running on this thread: what it
// publishes is attributed to it, so a recipient's full queue can pause it.
// Handlers of one session never run concurrently, and a handler runs on
// one thread from start to end, so a thread-local names it exactly.
inline session_base*& current_reader() noexcept {
    static thread_local session_base* reader = nullptr;
    return reader;
}

// Marks the calling thread as running `s`'s read handler for its lifetime.
class reading_scope {
public:
    explicit reading_scope(session_base* s) noexcept : saved_(std::exchange(current_reader(), s)) {}
    reading_scope(const reading_scope&) = delete;
    reading_scope& operator=(const reading_scope&) = delete;
    ~reading_scope() { current_reader() = saved_; }

private:
    session_base* saved_;
};

// Publishers held by one recipient's queue, each once, and since when the
// first was held (the write deadline also bounds how long a room waits).
// Guarded by the recipient's lock. Only overflow_policy::backpressure holds
// any: every session has one, so its state is allocated by the first hold
// (one pointer in a session that never holds).
class held_publishers {
public:
    using list = std::vector<std::weak_ptr<session_base>>;

    bool empty() const noexcept { return !state_ || state_->held.empty(); }
    std::chrono::steady_clock::time_point since() const noexcept {
        return state_ ? state_->since : std::chrono::steady_clock::time_point{};
    }

    // Holds the publisher `id`; false if it was held already.
    bool add(std::uint64_t id, std::weak_ptr<session_base> publisher) {
        if (!state_)
            state_ = std::make_unique<state>();
        auto& ids = state_->ids;
        if (std::find(ids.begin(), ids.end(), id) != ids.end())
            return false;
        if (ids.empty())
            state_->since = std::chrono::steady_clock::now();
        ids.push_back(id);
        state_->held.push_back(std::move(publisher));
        return true;
    }

    // Lets every publisher go: appends them to `out`, whose owner releases
    // them once no lock is held.
    void take(list& out) {
        if (!state_)
            return;
        state_->ids.clear();
        if (out.empty())
            out.swap(state_->held);
        else {
            out.insert(out.end(), state_->held.begin(), state_->held.end());
            state_->held.clear();
        }
    }

private:
    struct state {
        std::vector<std::uint64_t> ids;
        list held;
        std::chrono::steady_clock::time_point since{};
    };
    std::unique_ptr<state> state_;
};

} // namespace parley::detail

#endif
