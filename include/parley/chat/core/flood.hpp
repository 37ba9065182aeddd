// parley chat core: flood control, a pair of token buckets (inputs and
// bytes) refilled by the time passed in.
#ifndef PARLEY_CHAT_CORE_FLOOD_HPP
#define PARLEY_CHAT_CORE_FLOOD_HPP

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace parley::chat::core {

/// The rates and bursts of one client's buckets; messages_per_second 0
/// turns flood control off.
struct flood_rates {
    double messages_per_second = 20;
    std::size_t burst_messages = 60;
    double bytes_per_second = 64 * 1024;
    std::size_t burst_bytes = 256 * 1024;
};

/// One client's buckets. Full at start.
class flood_bucket {
public:
    using time_point = std::chrono::steady_clock::time_point;

    enum class verdict : unsigned char {
        admitted,
        dropped_first, ///< the first drop since the client last paused: warn it
        dropped,       ///< dropped again
    };

    flood_bucket() = default;
    flood_bucket(const flood_rates& r, time_point now)
        : messages_(static_cast<double>(r.burst_messages)),
          bytes_(static_cast<double>(r.burst_bytes)), refilled_(now) {}

    /// Whether an input of `size` bytes may pass at `now`.
    verdict admit(const flood_rates& r, std::size_t size, time_point now) {
        if (r.messages_per_second <= 0)
            return verdict::admitted;
        const double elapsed =
            std::max(0.0, std::chrono::duration<double>(now - refilled_).count());
        refilled_ = std::max(refilled_, now);
        const auto burst_messages = static_cast<double>(r.burst_messages);
        const auto burst_bytes = static_cast<double>(r.burst_bytes);
        messages_ = std::min(burst_messages, messages_ + elapsed * r.messages_per_second);
        bytes_ = std::min(burst_bytes, bytes_ + elapsed * r.bytes_per_second);
        if (messages_ >= burst_messages)
            dropped_ = 0; // it paused long enough: forgiven
        const auto bytes = static_cast<double>(size);
        // An input larger than the byte burst could never pass: it passes
        // when the bucket is full, and empties it.
        if (messages_ >= 1 && bytes_ >= std::min(bytes, burst_bytes)) {
            messages_ -= 1;
            bytes_ = std::max(0.0, bytes_ - bytes);
            return verdict::admitted;
        }
        return ++dropped_ == 1 ? verdict::dropped_first : verdict::dropped;
    }

    /// Inputs dropped since the message bucket was last full.
    std::size_t dropped() const noexcept { return dropped_; }

private:
    double messages_ = 0, bytes_ = 0;
    time_point refilled_{};
    std::size_t dropped_ = 0;
};

} // namespace parley::chat::core

#endif
