// parley internals: telling a busy connection from an idle one, so that a
// busy one may keep its read buffer across waits for bytes.
#ifndef PARLEY_DETAIL_READ_PACE_HPP
#define PARLEY_DETAIL_READ_PACE_HPP

#include <chrono>
#include <cstdint>

namespace parley::detail {

// A stream waiting for bytes either waits for readiness without a buffer
// (no memory while idle, but Asio's epoll reactor re-arms the descriptor
// with epoll_ctl for every such wait) or reads into its buffer (no extra
// system call, but the buffer stays held while it waits). A connection is
// busy once `busy_after` waits in a row ended within `quick`. A slower wait
// (a scheduling hiccup) takes back `busy_after` of those, up to twice that
// many count; a wait of `idle` or more makes it idle at once.
class read_pace {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds quick{10};
    static constexpr std::chrono::milliseconds idle{1000};
    static constexpr std::uint8_t busy_after = 4;

    bool busy() const noexcept { return quick_waits_ >= busy_after; }

    void wait_started(clock::time_point now) noexcept { started_ = now; }

    void wait_ended(clock::time_point now) noexcept {
        const auto waited = now - started_;
        if (waited < quick) {
            if (quick_waits_ < 2 * busy_after)
                ++quick_waits_;
        } else if (waited < idle && quick_waits_ > busy_after) {
            quick_waits_ -= busy_after;
        } else {
            quick_waits_ = 0;
        }
    }

private:
    clock::time_point started_{};
    std::uint8_t quick_waits_ = 0;
};

} // namespace parley::detail

#endif
