// parley: the frames of one read, as they arrived on the wire.
#ifndef PARLEY_CODEC_FRAME_BATCH_HPP
#define PARLEY_CODEC_FRAME_BATCH_HPP

#include <parley/codec/frame_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>

namespace parley {

/// Whole frames received together, contiguous and still in wire form
/// (headers included), already checked against the stream's limit. A
/// relay forwards wire() as one buffer, with no re-encoding and one queue
/// entry per recipient however many frames it holds; an application
/// iterates over the payloads. A view: valid as long as the frames it was
/// made from (until the stream's next read).
template <frame_format Format = default_frame_format>
class basic_frame_batch {
public:
    using codec_type = frame_codec<Format>;

    /// Iterates over the payloads, in order.
    class iterator {
    public:
        using value_type = std::span<const std::byte>;
        using difference_type = std::ptrdiff_t;
        using iterator_category = std::forward_iterator_tag;

        iterator() = default;
        value_type operator*() const noexcept {
            return {at_ + codec_type::header_size, length()};
        }
        iterator& operator++() noexcept {
            at_ += codec_type::header_size + length();
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator before = *this;
            ++*this;
            return before;
        }
        friend bool operator==(const iterator&, const iterator&) = default;

    private:
        friend class basic_frame_batch;
        explicit iterator(const std::byte* at) noexcept : at_(at) {}
        std::size_t length() const noexcept {
            return static_cast<std::size_t>(codec_type::read_length(at_));
        }
        const std::byte* at_ = nullptr;
    };

    basic_frame_batch() = default;
    /// `wire` must hold exactly `count` whole frames of this format.
    basic_frame_batch(std::span<const std::byte> wire, std::size_t count) noexcept
        : wire_(wire), count_(count) {}

    /// The frames as received: headers and payloads.
    std::span<const std::byte> wire() const noexcept { return wire_; }
    /// How many frames there are.
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }

    iterator begin() const noexcept { return iterator(wire_.data()); }
    iterator end() const noexcept { return iterator(wire_.data() + wire_.size()); }

private:
    std::span<const std::byte> wire_;
    std::size_t count_ = 0;
};

/// A batch of frames in parley's default format.
using frame_batch = basic_frame_batch<>;

} // namespace parley

#endif
