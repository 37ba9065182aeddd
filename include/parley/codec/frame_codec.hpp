// parley: the length-prefixed framing codec, free of any I/O.
//
// A frame on the wire is a length field (1, 2, 4 or 8 bytes, big or little
// endian) holding the payload size, followed by exactly that many payload
// bytes. parley's default is a 4-byte big-endian length and a 1 MiB limit.
//
// Nothing here touches a socket: bytes go in, frames come out. The stream
// wrappers (framed_stream, socket) only move bytes and call into this file,
// so the codec can be tested one byte at a time and fuzzed.
#ifndef PARLEY_CODEC_FRAME_CODEC_HPP
#define PARLEY_CODEC_FRAME_CODEC_HPP

#include <parley/error.hpp>

#include <asio/buffer.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace parley {

/// Byte order of the length field.
enum class byte_order : unsigned char { big, little };

/// Describes a wire format. Used as a template argument, so a format whose
/// maximum payload the length field cannot express fails to compile:
///
/// @code
/// using small = parley::frame_codec<parley::frame_format{.length_bytes = 2,
///                                                        .max_payload = 65535}>;
/// @endcode
struct frame_format {
    /// Width of the length field: 1, 2, 4 or 8 bytes.
    std::size_t length_bytes = 4;
    /// Byte order of the length field.
    byte_order order = byte_order::big;
    /// Default limit on a frame's payload, in bytes. A decoder's limit can
    /// be changed at run time up to what the length field can express.
    std::uint64_t max_payload = 1024 * 1024;

    /// The largest payload size the length field can hold (and that fits in
    /// memory on this platform, header included).
    constexpr std::uint64_t max_expressible() const noexcept {
        const std::uint64_t field_max =
            length_bytes >= 8 ? std::numeric_limits<std::uint64_t>::max()
                              : (std::uint64_t{1} << (8 * length_bytes)) - 1;
        // The frame's size on the wire, header plus payload, is a size_t:
        // a payload limit closer than that to SIZE_MAX would let an 8-byte
        // length wrap the frame size to a few bytes.
        const std::uint64_t memory_max = std::numeric_limits<std::size_t>::max() - length_bytes;
        return field_max < memory_max ? field_max : memory_max;
    }

    constexpr bool valid() const noexcept {
        const bool width_ok = length_bytes == 1 || length_bytes == 2 || length_bytes == 4 ||
                              length_bytes == 8;
        return width_ok && max_payload <= max_expressible();
    }
};

/// parley's default format: 4-byte big-endian length, 1 MiB maximum payload.
inline constexpr frame_format default_frame_format{};

/// A readable description of a frame that exceeded its limit, naming both
/// sizes, e.g. "frame of 4294967295 bytes exceeds the 1048576-byte limit".
inline std::string describe_oversize_frame(std::uint64_t announced, std::uint64_t limit) {
    return "frame of " + std::to_string(announced) + " bytes exceeds the " +
           std::to_string(limit) + "-byte limit";
}

/// The stateless core of the codec for one format: reads and writes length
/// fields and checks the run-time payload limit. Everything else in parley
/// that speaks frames goes through this class.
template <frame_format Format = default_frame_format>
class frame_codec {
    static_assert(Format.length_bytes == 1 || Format.length_bytes == 2 ||
                      Format.length_bytes == 4 || Format.length_bytes == 8,
                  "frame_format::length_bytes must be 1, 2, 4 or 8");
    static_assert(Format.max_payload <= Format.max_expressible(),
                  "frame_format::max_payload is larger than the length field can express");

public:
    static constexpr frame_format format = Format;
    static constexpr std::size_t header_size = Format.length_bytes;
    using header_bytes = std::array<std::byte, header_size>;

    constexpr frame_codec() noexcept = default;

    /// A codec whose limit is `max_payload` instead of the format's default.
    /// @throws std::invalid_argument if the length field cannot express it.
    explicit constexpr frame_codec(std::uint64_t max_payload) { this->max_payload(max_payload); }

    constexpr std::uint64_t max_payload() const noexcept { return max_payload_; }

    /// Changes the limit. @throws std::invalid_argument if the length field
    /// cannot express `limit`.
    constexpr void max_payload(std::uint64_t limit) {
        if (limit > Format.max_expressible())
            throw std::invalid_argument("parley: a maximum payload of " + std::to_string(limit) +
                                        " bytes cannot be expressed by a " +
                                        std::to_string(header_size) + "-byte length field");
        max_payload_ = limit;
    }

    /// Writes the length field for a payload of `size` bytes.
    static constexpr void write_length(std::uint64_t size, std::byte* out) noexcept {
        for (std::size_t i = 0; i < header_size; ++i) {
            const std::size_t shift = Format.order == byte_order::big ? header_size - 1 - i : i;
            out[i] = static_cast<std::byte>((size >> (8 * shift)) & 0xFF);
        }
    }

    /// Reads a length field; `in` must hold `header_size` bytes.
    static constexpr std::uint64_t read_length(const std::byte* in) noexcept {
        std::uint64_t size = 0;
        for (std::size_t i = 0; i < header_size; ++i) {
            const std::size_t shift = Format.order == byte_order::big ? header_size - 1 - i : i;
            size |= std::uint64_t(std::to_integer<unsigned>(in[i])) << (8 * shift);
        }
        return size;
    }

    /// Encodes the header for a payload of `size` bytes, or fails with
    /// error::frame_too_large.
    constexpr header_bytes encode_header(std::uint64_t size, std::error_code& ec) const noexcept {
        header_bytes header{};
        if (size > max_payload_) {
            ec = error::frame_too_large;
            return header;
        }
        if (ec) // clear() calls std::system_category(): not when clear already
            ec.clear();
        write_length(size, header.data());
        return header;
    }

    /// Looks at the start of `input` and returns the size on the wire
    /// (header plus payload) of the first frame, or 0 while its header is
    /// still incomplete. A length over the limit sets error::frame_too_large
    /// and returns 0; `announced` (if given) receives the offending length.
    /// Nothing is allocated for what the header merely claims.
    constexpr std::size_t frame_size(std::span<const std::byte> input, std::error_code& ec,
                                     std::uint64_t* announced = nullptr) const noexcept {
        if (ec) // clear() calls std::system_category(): not when clear already
            ec.clear();
        if (input.size() < header_size)
            return 0;
        const std::uint64_t length = read_length(input.data());
        if (announced)
            *announced = length;
        if (length > max_payload_) {
            ec = error::frame_too_large;
            return 0;
        }
        return header_size + static_cast<std::size_t>(length);
    }

private:
    std::uint64_t max_payload_ = Format.max_payload;
};

/// A frame ready to send: its header, held inline, and a view of the
/// caller's payload. Models ConstBufferSequence (two buffers), so it can be
/// passed to asio::write or async_write directly. The payload is not copied
/// and must outlive every use of the encoded_frame.
template <frame_format Format = default_frame_format>
class encoded_frame {
public:
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;

    encoded_frame(const typename frame_codec<Format>::header_bytes& header,
                  asio::const_buffer payload) noexcept
        : header_(header), buffers_{asio::const_buffer(header_.data(), header_.size()), payload} {}

    // The first buffer points into this object, so copies re-point it.
    encoded_frame(const encoded_frame& other) noexcept
        : encoded_frame(other.header_, other.buffers_[1]) {}
    encoded_frame& operator=(const encoded_frame& other) noexcept {
        header_ = other.header_;
        buffers_ = {asio::const_buffer(header_.data(), header_.size()), other.buffers_[1]};
        return *this;
    }

    const_iterator begin() const noexcept { return buffers_.data(); }
    const_iterator end() const noexcept { return buffers_.data() + buffers_.size(); }
    std::size_t size() const noexcept { return header_.size() + buffers_[1].size(); }

private:
    typename frame_codec<Format>::header_bytes header_;
    std::array<asio::const_buffer, 2> buffers_;
};

/// Encodes a frame around `payload` without copying it. Fails with
/// error::frame_too_large (returning a frame with an empty payload) when the
/// payload exceeds `codec`'s limit.
template <frame_format Format>
encoded_frame<Format> encode_frame(const frame_codec<Format>& codec, asio::const_buffer payload,
                                   std::error_code& ec) noexcept {
    auto header = codec.encode_header(payload.size(), ec);
    if (ec)
        return encoded_frame<Format>(header, asio::const_buffer());
    return encoded_frame<Format>(header, payload);
}

/// Encodes a frame around `payload` in the default format.
/// @throws std::system_error when the payload exceeds 1 MiB.
inline encoded_frame<> encode_frame(asio::const_buffer payload) {
    std::error_code ec;
    auto frame = encode_frame(frame_codec<>{}, payload, ec);
    if (ec)
        throw std::system_error(ec, describe_oversize_frame(payload.size(),
                                                            default_frame_format.max_payload));
    return frame;
}

/// Appends one whole frame (header and payload) to `out`: the contiguous
/// form used when a frame is built once and shared, as the hub does.
template <frame_format Format, class ByteContainer>
void append_frame(const frame_codec<Format>& codec, std::span<const std::byte> payload,
                  ByteContainer& out, std::error_code& ec) {
    auto header = codec.encode_header(payload.size(), ec);
    if (ec)
        return;
    using value_type = typename ByteContainer::value_type;
    const auto* h = reinterpret_cast<const value_type*>(header.data());
    const auto* p = reinterpret_cast<const value_type*>(payload.data());
    out.insert(out.end(), h, h + header.size());
    out.insert(out.end(), p, p + payload.size());
}

/// An incremental decoder: feed it bytes in chunks of any size, take
/// complete frames out in order.
///
/// A frame that lies whole inside the chunk given to feed() is handed out as
/// a view into that chunk, without copying. Only a frame split across chunks
/// is gathered into an internal buffer, which grows as its bytes arrive,
/// never ahead of them: a peer announcing 4 GiB and sending 10 bytes costs
/// 10 bytes, and an announced size over the limit is rejected as soon as the
/// length field is complete.
///
/// @code
/// parley::frame_decoder<> decoder;
/// decoder.feed(chunk);
/// std::error_code ec;
/// while (auto payload = decoder.next(ec))
///     handle(*payload);
/// if (ec) report(decoder.error_message());
/// @endcode
template <frame_format Format = default_frame_format>
class frame_decoder {
public:
    using codec_type = frame_codec<Format>;
    static constexpr std::size_t header_size = codec_type::header_size;

    frame_decoder() = default;
    explicit frame_decoder(std::uint64_t max_payload) : codec_(max_payload) {}

    std::uint64_t max_payload() const noexcept { return codec_.max_payload(); }
    void max_payload(std::uint64_t limit) { codec_.max_payload(limit); }

    /// Hands the decoder the next chunk of input. The bytes are read in
    /// place: `input` must stay valid until next() returns no frame. Call
    /// only after next() has returned no frame for the previous chunk.
    void feed(std::span<const std::byte> input) noexcept { input_ = input; }
    void feed(std::string_view input) noexcept { feed(std::as_bytes(std::span(input))); }

    /// The next complete frame's payload, or nullopt when more input is
    /// needed or an error occurred (then `ec` is set, and stays set: a
    /// stream with a bad length field cannot be resynchronised). The view
    /// is valid until the next call to feed() or next().
    std::optional<std::span<const std::byte>> next(std::error_code& ec) {
        ec = error_;
        if (error_)
            return std::nullopt;
        if (deliver_from_partial_) {
            deliver_from_partial_ = false;
            release_partial();
        }
        if (!partial_.empty())
            return continue_partial(ec);

        const std::size_t size = codec_.frame_size(input_, ec, &announced_);
        if (ec)
            return fail(ec);
        if (size != 0 && input_.size() >= size) {
            auto payload = input_.subspan(header_size, size - header_size);
            input_ = input_.subspan(size);
            return payload;
        }
        // The frame continues in a later chunk: keep what we have of it.
        partial_.assign(input_.begin(), input_.end());
        input_ = {};
        return std::nullopt;
    }

    /// Declares the end of the input. Sets error::truncated_frame when part
    /// of a frame is still buffered (the peer closed mid-frame); otherwise
    /// leaves `ec` clear, or holding an earlier decoding error.
    void finish(std::error_code& ec) const noexcept {
        ec = error_;
        if (!ec && (buffered() != 0))
            ec = error::truncated_frame;
    }

    /// Bytes of an incomplete frame held, in the buffer or the current chunk.
    std::size_t buffered() const noexcept {
        return (deliver_from_partial_ ? 0 : partial_.size()) + input_.size();
    }

    /// The announced length of the frame being decoded (or of the frame
    /// that was rejected).
    std::uint64_t announced_size() const noexcept { return announced_; }

    /// A sentence describing the last error, naming sizes where they apply.
    std::string error_message() const {
        if (error_ == error::frame_too_large)
            return describe_oversize_frame(announced_, codec_.max_payload());
        return error_ ? error_.message() : std::string();
    }

    /// Forgets all state, including an error, to decode a new stream.
    void reset() noexcept {
        partial_.clear();
        input_ = {};
        error_.clear();
        deliver_from_partial_ = false;
        announced_ = 0;
    }

private:
    std::optional<std::span<const std::byte>> fail(std::error_code ec) {
        error_ = ec;
        partial_.clear();
        input_ = {};
        return std::nullopt;
    }

    void take(std::size_t wanted) {
        const std::size_t n = wanted < input_.size() ? wanted : input_.size();
        partial_.insert(partial_.end(), input_.begin(), input_.begin() + n);
        input_ = input_.subspan(n);
    }

    std::optional<std::span<const std::byte>> continue_partial(std::error_code& ec) {
        if (partial_.size() < header_size) {
            take(header_size - partial_.size());
            if (partial_.size() < header_size)
                return std::nullopt;
        }
        const std::size_t size = codec_.frame_size(partial_, ec, &announced_);
        if (ec)
            return fail(ec);
        take(size - partial_.size());
        if (partial_.size() < size)
            return std::nullopt;
        deliver_from_partial_ = true;
        return std::span<const std::byte>(partial_).subspan(header_size);
    }

    // A large frame should not pin its buffer once delivered.
    void release_partial() noexcept {
        constexpr std::size_t keep_capacity = 64 * 1024;
        if (partial_.capacity() > keep_capacity)
            std::vector<std::byte>().swap(partial_);
        else
            partial_.clear();
    }

    codec_type codec_;
    std::span<const std::byte> input_;
    std::vector<std::byte> partial_;
    bool deliver_from_partial_ = false;
    std::uint64_t announced_ = 0;
    std::error_code error_;
};

} // namespace parley

#endif
