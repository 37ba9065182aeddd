// parley: a session's bounded queue of outgoing messages, free of any I/O.
#ifndef PARLEY_HUB_OUTBOUND_QUEUE_HPP
#define PARLEY_HUB_OUTBOUND_QUEUE_HPP

#include <parley/hub/message.hpp>

#include <asio/buffer.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

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
    /// Keep every message and slow the publishers down instead: while the
    /// queue is above its high-water mark, the session publishing into it
    /// is not read (TCP pushes back on its peer) until the queue drains to
    /// the low-water mark. Nobody loses a message and a reader that keeps
    /// up stays connected; the price is that a room moves at the pace of
    /// its slowest reader, up to the write deadline, after which a reader
    /// that does not drain is disconnected (error::write_timeout) and the
    /// publishers resume. A message is still refused, as with
    /// `disconnect`, once the queue already holds max_bytes or
    /// max_messages: with P publishers each relaying reads of R bytes, keep
    /// max_bytes above high_water + P * R. See session_options and
    /// docs/RELIABILITY.md.
    backpressure,
};

/// Limits of one outbound queue.
struct queue_limits {
    /// Bytes queued and not yet written, at most.
    std::size_t max_bytes = 4 * 1024 * 1024;
    /// Messages queued, at most (a message relaying a batch of frames
    /// counts once: the bytes bound its size).
    std::size_t max_messages = 16 * 1024;
    overflow_policy policy = overflow_policy::disconnect;
    /// overflow_policy::backpressure: publishers are paused while the queue
    /// holds more than this many bytes (or more than half of max_messages).
    /// 0: a quarter of max_bytes.
    std::size_t high_water = 0;
    /// ... and resumed once it holds at most this many (and at most a
    /// quarter of max_messages). 0: half of the high-water mark.
    std::size_t low_water = 0;
};

/// A FIFO of shared messages bounded in bytes and in count, with the
/// bookkeeping of a gathered writer: take() lends the front messages as
/// buffers for one write, consume() retires what the write sent (the front
/// message may be partly sent). Holds no memory while empty.
class outbound_queue {
public:
    enum class push_result : unsigned char { queued, dropped_oldest, overflow };

    explicit outbound_queue(queue_limits limits = {}) noexcept : limits_(limits) {}
    outbound_queue(const outbound_queue&) = delete;
    outbound_queue& operator=(const outbound_queue&) = delete;
    ~outbound_queue() { clear(); }

    const queue_limits& limits() const noexcept { return limits_; }
    void limits(const queue_limits& l) noexcept { limits_ = l; }

    /// Queues `m` within the limits, applying the policy. `overflow` means
    /// nothing was queued. `dropped` (if given) is increased by how many
    /// frames the messages dropped to make room held.
    push_result push(const message_ptr& m, std::size_t* dropped = nullptr) {
        const push_result r = push_counted(*m, dropped);
        if (r != push_result::overflow)
            m->add_ref();
        return r;
    }

    /// Like push(), for a caller that already added the queue's reference
    /// (message::add_refs): the queue takes it over unless the result is
    /// `overflow`, when it stays with the caller.
    push_result push_counted(const message& m, std::size_t* dropped = nullptr) {
        const std::size_t size = m.size();
        // The common case first: room in the limits and in the ring.
        if (bytes_ + size <= limits_.max_bytes && count_ < limits_.max_messages &&
            count_ < capacity_) [[likely]] {
            append(&m, size);
            return push_result::queued;
        }
        return push_slow(m, size, dropped);
    }

    /// Queues `m` whatever the limits and the policy: a session's last
    /// message before it closes (session_base::close(const message_ptr&)),
    /// which it takes at most once. The caller added the queue's reference.
    void push_beyond_limits(const message& m) {
        if (count_ == capacity_)
            grow();
        append(&m, m.size());
    }

    /// Lends up to `out.size()` front buffers for one gathered write (the
    /// first may be the unsent tail of a partly written message). They stay
    /// valid until the matching consume(). Returns how many were filled.
    template <class Buffer, class MakeBuffer>
    std::size_t take(std::span<Buffer> out, MakeBuffer make) {
        const std::size_t n = out.size() < count_ ? out.size() : count_;
        std::size_t index = head_;
        for (std::size_t i = 0; i < n; ++i) {
            const message* m = ring_[index];
            const std::size_t skip = i == 0 ? front_offset_ : 0;
            out[i] = make(m->data() + skip, m->size() - skip);
            index = (index + 1) & mask();
        }
        lent_ = static_cast<std::uint32_t>(n);
        return n;
    }
    std::size_t take(std::span<asio::const_buffer> out) {
        return take(out, [](const std::byte* p, std::size_t s) { return asio::const_buffer(p, s); });
    }

    /// Retires `written` bytes from the front and ends the loan of take().
    /// Returns how many frames the messages completely sent held (one per
    /// message, unless a message carries a batch: message::frame_count).
    std::size_t consume(std::size_t written) noexcept {
        // clear() during the write (the session was aborted): the loan
        // ended with it and nothing is left to retire.
        if (lent_ == 0)
            return 0;
        bytes_ -= written;
        std::size_t completed = 0;
        while (written != 0) {
            const std::size_t left = ring_[head_]->size() - front_offset_;
            if (written < left) {
                front_offset_ += written;
                break;
            }
            written -= left;
            completed += pop_front();
        }
        lent_ = 0;
        written_ = true;
        if (count_ == 0)
            shrink();
        return completed;
    }

    /// Gives the ring back when the queue is empty and nothing was written
    /// from it since the previous call: what a periodic sweep over idle
    /// members calls (session_base::release_idle_memory()), so that a
    /// member idle for a whole period holds no slots, while one written to
    /// in every period keeps its ring and allocates nothing per message.
    /// Returns whether a ring was freed.
    bool release_if_idle() noexcept {
        const bool idle = !written_;
        written_ = false;
        if (!idle || count_ != 0 || lent_ != 0 || capacity_ == 0)
            return false;
        release_ring();
        return true;
    }

    /// Drops everything (the session is going away).
    void clear() noexcept {
        while (count_ != 0)
            pop_front();
        bytes_ = 0;
        lent_ = 0;
        release_ring();
    }

    /// Slots of the ring now allocated (0 while none is held). Grows by
    /// doubling; once drained, a ring above 1024 slots is freed, and the
    /// next burst starts at the size the last one needed; a smaller one is
    /// kept until release_if_idle().
    std::size_t capacity() const noexcept { return capacity_; }
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    /// Bytes still to write, counting only the unsent part of the front.
    std::size_t bytes() const noexcept { return bytes_; }

    /// The back-pressure marks in effect (see queue_limits).
    std::size_t high_water() const noexcept {
        return limits_.high_water != 0 ? std::min(limits_.high_water, limits_.max_bytes)
                                       : limits_.max_bytes / 4;
    }
    std::size_t low_water() const noexcept {
        const std::size_t high = high_water();
        return limits_.low_water != 0 ? std::min(limits_.low_water, high) : high / 2;
    }
    /// Whether publishers into this queue should wait.
    bool above_high_water() const noexcept {
        return bytes_ > high_water() || count_ > limits_.max_messages / 2;
    }
    /// Whether publishers waiting on this queue may go on.
    bool below_low_water() const noexcept {
        return bytes_ <= low_water() && count_ <= limits_.max_messages / 4;
    }

private:
    std::uint32_t mask() const noexcept { return capacity_ - 1; }

    void append(const message* m, std::size_t size) noexcept {
        ring_[(head_ + count_) & mask()] = m;
        ++count_;
        bytes_ += size;
    }

    push_result push_slow(const message& m, std::size_t size, std::size_t* dropped) {
        std::size_t dropped_now = 0;
        const auto over = [&] {
            return bytes_ + size > limits_.max_bytes || count_ + 1 > limits_.max_messages;
        };
        if (over()) {
            if (limits_.policy == overflow_policy::backpressure) {
                // The publishers should be waiting by now; one message (a
                // read's batch) may still take the queue past the cap.
                if (bytes_ >= limits_.max_bytes || count_ >= limits_.max_messages)
                    return push_result::overflow;
                if (count_ == capacity_)
                    grow();
                append(&m, size);
                return push_result::queued;
            }
            if (limits_.policy == overflow_policy::disconnect || size > limits_.max_bytes)
                return push_result::overflow;
            while (over() && count_ > protected_count())
                dropped_now += drop_after_protected();
            if (over())
                return push_result::overflow; // everything left is being written
        }
        if (count_ == capacity_)
            grow();
        append(&m, size);
        if (dropped)
            *dropped += dropped_now;
        return dropped_now ? push_result::dropped_oldest : push_result::queued;
    }

    // Returns the frames the message held.
    std::uint32_t pop_front() noexcept {
        const message* m = ring_[head_];
        const std::uint32_t frames = m->frame_count();
        m->release();
        head_ = (head_ + 1) & mask();
        --count_;
        front_offset_ = 0;
        return frames;
    }

    // Messages that must not be dropped: those lent to a write in
    // progress, and a front message partly sent (dropping it would cut a
    // frame in half on the wire).
    std::uint32_t protected_count() const noexcept {
        return lent_ != 0 ? lent_ : (front_offset_ != 0 ? 1u : 0u);
    }

    // Removes the oldest message that is not protected; returns the frames
    // it held.
    std::uint32_t drop_after_protected() noexcept {
        const std::uint32_t keep = protected_count();
        const message* victim = ring_[(head_ + keep) & mask()];
        const std::uint32_t frames = victim->frame_count();
        bytes_ -= victim->size();
        victim->release();
        // Shift the protected messages one slot towards the tail, over the
        // victim's slot.
        for (std::uint32_t i = keep; i > 0; --i)
            ring_[(head_ + i) & mask()] = ring_[(head_ + i - 1) & mask()];
        head_ = (head_ + 1) & mask();
        --count_;
        return frames;
    }

    void grow() {
        // A ring released after a burst comes back at the size that burst
        // needed: one allocation instead of a doubling series of copies.
        const std::uint32_t capacity = capacity_ == 0 ? std::max<std::uint32_t>(16, last_capacity_)
                                                      : capacity_ * 2;
        auto bigger = std::make_unique_for_overwrite<const message*[]>(capacity);
        for (std::size_t i = 0; i < count_; ++i)
            bigger[i] = ring_[(head_ + i) & mask()];
        ring_ = std::move(bigger);
        grew_ = capacity_ != 0;
        capacity_ = capacity;
        head_ = 0;
    }

    // An idle member should not pin the large ring a burst made it grow
    // to; a moderate one (8 KiB) is kept, to save an allocation per burst.
    void shrink() noexcept {
        head_ = 0;
        if (capacity_ > 1024)
            release_ring();
    }

    void release_ring() noexcept {
        // Remembered for the next burst; halved when this one never filled
        // it, so that one large burst is forgotten over later small ones.
        if (capacity_ != 0)
            last_capacity_ = grew_ ? capacity_ : capacity_ / 2;
        grew_ = false;
        ring_.reset();
        capacity_ = 0;
        head_ = 0;
    }

    // Every session holds one: slot counts in 32 bits (a ring of 2^31
    // slots would be 16 GiB), the flags last.
    queue_limits limits_;
    std::unique_ptr<const message*[]> ring_; // each holds a reference
    std::size_t bytes_ = 0;
    std::size_t front_offset_ = 0;           // bytes of the front message already sent
    std::uint32_t capacity_ = 0;             // a power of two, or 0
    std::uint32_t last_capacity_ = 0;        // what the next ring starts at
    std::uint32_t head_ = 0;
    std::uint32_t count_ = 0;
    std::uint32_t lent_ = 0;                 // front messages handed to a write
    bool grew_ = false;                      // this ring had to double
    bool written_ = false;                   // consume() ran since the last release_if_idle()
};

} // namespace parley

#endif
