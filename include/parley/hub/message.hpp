// parley: an immutable, reference-counted message in its wire form.
#ifndef PARLEY_HUB_MESSAGE_HPP
#define PARLEY_HUB_MESSAGE_HPP

#include <parley/codec/frame_codec.hpp>

#include <asio/buffer.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley {

/// Bytes ready to go on the wire (a whole frame, header included, or a
/// whole text line), built once and shared by every recipient. Header and
/// bytes live in one allocation; copies of a message_ptr share it.
class message {
public:
    message(const message&) = delete;
    message& operator=(const message&) = delete;

    /// The wire bytes.
    std::span<const std::byte> wire() const noexcept { return {data(), size_}; }
    const std::byte* data() const noexcept { return reinterpret_cast<const std::byte*>(this + 1); }
    /// The payload: the wire bytes after the frame header, if any.
    std::span<const std::byte> payload() const noexcept { return wire().subspan(header_size_); }
    std::size_t size() const noexcept { return size_; }
    /// How many frames (or lines) the wire bytes hold: 1, unless the
    /// message relays a batch of frames as they arrived (make_raw_message
    /// with a count). Counters of deliveries and drops count these.
    std::uint32_t frame_count() const noexcept { return frames_; }
    asio::const_buffer buffer() const noexcept { return {data(), size_}; }

    /// Allocates a message of `size` wire bytes whose first `header_size`
    /// are a header; the caller fills mutable_data() before sharing it.
    static message* allocate(std::size_t size, std::size_t header_size,
                             std::uint32_t frame_count = 1) {
        void* memory = ::operator new(sizeof(message) + size);
        return ::new (memory) message(size, header_size, frame_count);
    }
    std::byte* mutable_data() noexcept { return reinterpret_cast<std::byte*>(this + 1); }

    /// Manual reference counting, for containers that hold many raw
    /// pointers (outbound_queue): add_ref() once per pointer stored,
    /// release() once per pointer dropped.
    void add_ref() const noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    /// Adds `n` references at the cost of one: a publisher about to queue
    /// a message to n members takes their references in one step.
    void add_refs(std::uint32_t n) const noexcept { refs_.fetch_add(n, std::memory_order_relaxed); }
    /// How many references there are now: exact when no other thread
    /// changes them, a snapshot otherwise (for tests and diagnostics).
    std::uint32_t use_count() const noexcept { return refs_.load(std::memory_order_relaxed); }
    /// Gives back `n` references the caller holds, not its last one.
    void release_refs(std::uint32_t n) const noexcept {
        if (n != 0)
            refs_.fetch_sub(n, std::memory_order_release);
    }
    void release() const noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            this->~message();
            ::operator delete(const_cast<message*>(this));
        }
    }

private:
    friend class message_ptr;

    message(std::size_t size, std::size_t header_size, std::uint32_t frame_count) noexcept
        : frames_(frame_count), size_(size), header_size_(static_cast<std::uint32_t>(header_size)) {}

    mutable std::atomic<std::uint32_t> refs_{1};
    std::uint32_t frames_;
    std::size_t size_;
    std::uint32_t header_size_;
};

static_assert(alignof(message) <= alignof(std::max_align_t));

/// Shared ownership of a message (intrusive: no control block, one
/// allocation per message however many queues hold it).
class message_ptr {
public:
    message_ptr() noexcept = default;
    /// Takes ownership of a freshly allocated message (reference count 1).
    static message_ptr adopt(message* m) noexcept {
        message_ptr p;
        p.m_ = m;
        return p;
    }

    message_ptr(const message_ptr& other) noexcept : m_(other.m_) {
        if (m_)
            m_->add_ref();
    }
    message_ptr(message_ptr&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    message_ptr& operator=(message_ptr other) noexcept {
        std::swap(m_, other.m_);
        return *this;
    }
    ~message_ptr() {
        if (m_)
            m_->release();
    }

    const message* get() const noexcept { return m_; }
    const message& operator*() const noexcept { return *m_; }
    const message* operator->() const noexcept { return m_; }
    explicit operator bool() const noexcept { return m_ != nullptr; }
    void reset() noexcept { message_ptr().swap(*this); }
    void swap(message_ptr& other) noexcept { std::swap(m_, other.m_); }

private:
    message* m_ = nullptr;
};

/// Frames `payload` once, in `codec`'s format, as a shareable message.
/// Fails with error::frame_too_large (returning an empty pointer) when the
/// payload exceeds the codec's limit.
template <frame_format Format>
message_ptr make_frame_message(const frame_codec<Format>& codec,
                               std::span<const std::byte> payload, std::error_code& ec) {
    auto header = codec.encode_header(payload.size(), ec);
    if (ec)
        return {};
    constexpr std::size_t header_size = frame_codec<Format>::header_size;
    message* m = message::allocate(header_size + payload.size(), header_size);
    std::memcpy(m->mutable_data(), header.data(), header_size);
    if (!payload.empty())
        std::memcpy(m->mutable_data() + header_size, payload.data(), payload.size());
    return message_ptr::adopt(m);
}

/// Frames `payload` in parley's default format (4-byte big-endian length,
/// 1 MiB limit).
inline message_ptr make_frame_message(std::span<const std::byte> payload, std::error_code& ec) {
    return make_frame_message(frame_codec<>{}, payload, ec);
}
inline message_ptr make_frame_message(std::string_view payload, std::error_code& ec) {
    return make_frame_message(std::as_bytes(std::span(payload)), ec);
}

/// Wraps raw wire bytes (already framed, or a text line with its "\n") as a
/// shareable message. `frame_count` says how many frames they hold: a relay
/// forwards a whole batch of received frames as one message (see
/// frame_batch), one buffer and one queue entry per recipient whatever the
/// number of frames in it.
inline message_ptr make_raw_message(std::span<const std::byte> wire,
                                    std::size_t frame_count = 1) {
    message* m = message::allocate(wire.size(), 0, static_cast<std::uint32_t>(frame_count));
    if (!wire.empty())
        std::memcpy(m->mutable_data(), wire.data(), wire.size());
    return message_ptr::adopt(m);
}
inline message_ptr make_raw_message(std::string_view wire) {
    return make_raw_message(std::as_bytes(std::span(wire)));
}

} // namespace parley

#endif
