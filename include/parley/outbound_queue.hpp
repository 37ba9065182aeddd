// parley: a session's bounded queue of outgoing messages, free of any I/O.
#ifndef PARLEY_OUTBOUND_QUEUE_HPP
#define PARLEY_OUTBOUND_QUEUE_HPP

#include <parley/message.hpp>

#include <asio/buffer.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

namespace parley {

/// What happens when a message would take a queue past its limits.
enum class overflow_policy : unsigned char {
    /// Refuse the message; the owner disconnects the slow member (what
    /// Redis and NATS do with slow consumers). The default: a member that
    /// cannot keep up gets a clear reason instead of a silent gap.
    disconnect,
    /// Drop the oldest queued messages (never one already being written)
    /// until the new one fits; the member sees a gap but stays connected.
    drop_oldest,
};

/// Limits of one outbound queue.
struct queue_limits {
    /// Bytes queued and not yet written, at most.
    std::size_t max_bytes = 4 * 1024 * 1024;
    /// Messages queued, at most.
    std::size_t max_messages = 16 * 1024;
    overflow_policy policy = overflow_policy::disconnect;
};

/// A FIFO of shared messages bounded in bytes and in count, with the
/// bookkeeping of a gathered writer: take() lends the front messages as
/// buffers for one write, consume() retires what the write sent (the front
/// message may be partly sent). Holds no memory while empty.
class outbound_queue {
public:
    enum class push_result : unsigned char { queued, dropped_oldest, overflow };

    explicit outbound_queue(queue_limits limits = {}) noexcept : limits_(limits) {}

    const queue_limits& limits() const noexcept { return limits_; }
    void limits(const queue_limits& l) noexcept { limits_ = l; }

    /// Queues `m` within the limits, applying the policy. `overflow` means
    /// nothing was queued. `dropped` receives how many messages were
    /// dropped to make room.
    push_result push(message_ptr m, std::size_t* dropped = nullptr) {
        const std::size_t size = m->size();
        std::size_t dropped_now = 0;
        if (bytes_ + size > limits_.max_bytes || count_ + 1 > limits_.max_messages) {
            if (limits_.policy == overflow_policy::disconnect || size > limits_.max_bytes)
                return push_result::overflow;
            while ((bytes_ + size > limits_.max_bytes || count_ + 1 > limits_.max_messages) &&
                   count_ > protected_count()) {
                drop_after_lent();
                ++dropped_now;
            }
            if (bytes_ + size > limits_.max_bytes || count_ + 1 > limits_.max_messages)
                return push_result::overflow; // everything left is being written
        }
        if (count_ == ring_.size())
            grow();
        ring_[(head_ + count_) & (ring_.size() - 1)] = std::move(m);
        ++count_;
        bytes_ += size;
        if (dropped)
            *dropped = dropped_now;
        return dropped_now ? push_result::dropped_oldest : push_result::queued;
    }

    /// Lends up to `out.size()` front buffers for one gathered write (the
    /// first may be the unsent tail of a partly written message). They stay
    /// valid until the matching consume(). Returns how many were filled.
    template <class Buffer, class MakeBuffer>
    std::size_t take(std::span<Buffer> out, MakeBuffer make) {
        std::size_t n = 0;
        for (; n < out.size() && n < count_; ++n) {
            const message& m = *ring_[(head_ + n) & (ring_.size() - 1)];
            const std::size_t skip = n == 0 ? front_offset_ : 0;
            out[n] = make(m.wire().data() + skip, m.size() - skip);
        }
        lent_ = n;
        return n;
    }
    std::size_t take(std::span<asio::const_buffer> out) {
        return take(out, [](const std::byte* p, std::size_t s) { return asio::const_buffer(p, s); });
    }

    /// Retires `written` bytes from the front and ends the loan of take().
    /// Returns how many messages were completely sent.
    std::size_t consume(std::size_t written) noexcept {
        bytes_ -= written;
        std::size_t completed = 0;
        while (written != 0) {
            message_ptr& front = ring_[head_];
            const std::size_t left = front->size() - front_offset_;
            if (written < left) {
                front_offset_ += written;
                break;
            }
            written -= left;
            pop_front();
            ++completed;
        }
        lent_ = 0;
        if (count_ == 0)
            shrink();
        return completed;
    }

    /// Drops everything (the session is going away).
    void clear() noexcept {
        while (count_ != 0)
            pop_front();
        bytes_ = 0;
        lent_ = 0;
        std::vector<message_ptr>().swap(ring_);
    }

    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    /// Bytes still to write, counting only the unsent part of the front.
    std::size_t bytes() const noexcept { return bytes_; }

private:
    void pop_front() noexcept {
        ring_[head_].reset();
        head_ = (head_ + 1) & (ring_.size() - 1);
        --count_;
        front_offset_ = 0;
    }

    // Messages that must not be dropped: those lent to a write in
    // progress, and a front message partly sent (dropping it would cut a
    // frame in half on the wire).
    std::size_t protected_count() const noexcept {
        return lent_ != 0 ? lent_ : (front_offset_ != 0 ? 1 : 0);
    }

    // Removes the oldest message that is not protected.
    void drop_after_lent() noexcept {
        const std::size_t mask = ring_.size() - 1;
        const std::size_t keep = protected_count();
        bytes_ -= ring_[(head_ + keep) & mask]->size();
        // Shift the protected messages one slot towards the tail, over the
        // victim.
        for (std::size_t i = keep; i > 0; --i)
            ring_[(head_ + i) & mask] = std::move(ring_[(head_ + i - 1) & mask]);
        ring_[head_].reset();
        head_ = (head_ + 1) & mask;
        --count_;
    }

    void grow() {
        const std::size_t capacity = ring_.empty() ? 8 : ring_.size() * 2;
        std::vector<message_ptr> bigger(capacity);
        for (std::size_t i = 0; i < count_; ++i)
            bigger[i] = std::move(ring_[(head_ + i) & (ring_.size() - 1)]);
        ring_.swap(bigger);
        head_ = 0;
    }

    // An idle member should not pin the ring a burst made it grow to.
    void shrink() noexcept {
        head_ = 0;
        if (ring_.size() > 64)
            std::vector<message_ptr>().swap(ring_);
    }

    queue_limits limits_;
    std::vector<message_ptr> ring_; // capacity is a power of two
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::size_t bytes_ = 0;
    std::size_t front_offset_ = 0; // bytes of the front message already sent
    std::size_t lent_ = 0;         // front messages handed to a write
};

} // namespace parley

#endif
