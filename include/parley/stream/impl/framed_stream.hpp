// parley: framed_stream bodies and its composed operations.
#ifndef PARLEY_STREAM_IMPL_FRAMED_STREAM_HPP
#define PARLEY_STREAM_IMPL_FRAMED_STREAM_HPP

#include <parley/detail/framed_input_op.hpp>
#include <parley/detail/lean_op.hpp>
#include <parley/detail/socket_io.hpp>

#include <asio/async_result.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace parley {
namespace detail {

// The error to report when a read from the next layer fails.
inline std::error_code read_failure(std::error_code ec, bool inside_frame) noexcept {
    if (ec == asio::error::eof && inside_frame)
        return error::truncated_frame;
    return ec;
}

template <class Stream>
struct framed_read_op {
    Stream& stream;
    enum class state { start, posted, reading, waiting } state_ = state::start;
    std::size_t requested_ = 0;
    std::error_code result_ec_{};
    frame_view result_{};

    // Start, or resume after the post that keeps completions out of the
    // initiating function (streams other than plain sockets).
    template <class Self>
    void operator()(Self& self) {
        if (state_ == state::posted)
            return self.complete(result_ec_, result_);
        stream.release_delivered();
        step(self, true);
    }

    // Resume after async_wait: the socket is readable.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (ec)
            return self.complete(ec, frame_view{});
        auto space = stream.buffer_.prepare(stream.pending_frame_size());
        const std::size_t n = detail::receive_now(stream.next_layer_, space, ec);
        if (detail::would_block(ec)) { // spurious wake-up
            stream.buffer_.release_if_empty();
            return wait(self);
        }
        received(self, ec, n, space.size());
    }

    // Resume after async_read_some, or after complete_soon() on a plain
    // socket (its zero-length read).
    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t n) {
        if (state_ == state::posted)
            return self.complete(result_ec_, result_);
        received(self, ec, n, requested_);
    }

private:
    template <class Self>
    void received(Self& self, std::error_code ec, std::size_t n, std::size_t requested,
                  bool initiating = false) {
        stream.buffer_.commit(n);
        stream.may_have_more_ = n == requested;
        if (ec) {
            const bool inside_frame = !stream.buffer_.empty();
            stream.buffer_.release_if_empty();
            return finish(self, initiating, detail::read_failure(ec, inside_frame), frame_view{});
        }
        step(self, initiating);
    }

    template <class Self>
    void step(Self& self, bool initiating) {
        std::error_code ec;
        if (auto frame = stream.parse(ec))
            return finish(self, initiating, ec, *frame);
        if (ec)
            return finish(self, initiating, ec, frame_view{});
        if constexpr (detail::waitable_socket<typename Stream::next_layer_type>) {
            if (stream.waits_unbuffered()) {
                // Nothing buffered and the last read drained the socket.
                // Bytes often arrive while the caller works: try once at
                // once, which skips a trip through the reactor (Asio's own
                // reads do the same). If none came, wait for readiness
                // without holding a buffer. A peer that is never ready at
                // once gets fewer tries (try_now()).
                if (!stream.try_now())
                    return wait(self);
                auto space = stream.buffer_.prepare(stream.pending_frame_size());
                const std::size_t n = detail::receive_now(stream.next_layer_, space, ec);
                stream.tried_now(!detail::would_block(ec));
                if (detail::would_block(ec)) {
                    stream.buffer_.release_if_empty();
                    return wait(self);
                }
                return received(self, ec, n, space.size(), initiating);
            }
        }
        // A frame in progress, a stream that keeps its buffer (Asio's read
        // tries at once itself when the last one did not drain the
        // socket), or another kind of stream.
        auto space = stream.buffer_.prepare(stream.pending_frame_size());
        requested_ = space.size();
        state_ = state::reading;
        stream.next_layer_.async_read_some(asio::buffer(space.data(), space.size()),
                                           std::move(self));
    }

    template <class Self>
    void wait(Self& self) {
        // Nothing is buffered (or the frame in progress stays): give an
        // empty block back, so a connection that goes idle holds none.
        stream.buffer_.release_if_empty();
        state_ = state::waiting;
        stream.next_layer_.async_wait(asio::socket_base::wait_read, std::move(self));
    }

    template <class Self>
    void finish(Self& self, bool initiating, std::error_code ec, frame_view frame) {
        if (!initiating)
            return self.complete(ec, frame);
        state_ = state::posted;
        result_ec_ = ec;
        result_ = frame;
        detail::complete_soon(stream.next_layer_, asio::socket_base::wait_read, std::move(self));
    }
};

template <class Stream>
struct framed_write_op {
    Stream& stream;
    std::size_t payload_bytes_;
    std::error_code result_ec_; // an error found before any I/O, or the posted result
    bool posted_ = false;
#if PARLEY_HAS_POSIX_SOCKETS
    detail::gathered_cursor cursor_{stream.writes().buffers, stream.writes().resume_buffer,
                                    stream.writes().resume_offset};
#endif

    // Start, or resume after the post that keeps completions out of the
    // initiating function.
    template <class Self>
    void operator()(Self& self) {
        if (posted_)
            return self.complete(result_ec_, result_ec_ ? std::size_t{0} : payload_bytes_);
        if (result_ec_) {
            posted_ = true;
            return detail::complete_soon(stream.next_layer_, asio::socket_base::wait_write,
                                         std::move(self));
        }
#if PARLEY_HAS_POSIX_SOCKETS
        if constexpr (detail::waitable_socket<typename Stream::next_layer_type>) {
            return send(self, true);
        }
#endif
        // asio::async_write sends at most 16 buffers per system call:
        // kept for streams that are not plain sockets (TLS takes its own).
        // (Only sockets resume a write part-way: try_write_frames() sends
        // nothing at once on other streams.)
        asio::async_write(stream.next_layer_,
                          std::span<const asio::const_buffer>(stream.writes().buffers),
                          std::move(self));
    }

    // Resume after async_wait: the socket takes data again.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (ec)
            return self.complete(ec, std::size_t{0});
#if PARLEY_HAS_POSIX_SOCKETS
        if constexpr (detail::waitable_socket<typename Stream::next_layer_type>)
            send(self, false);
#endif
    }

    // Resume after asio::async_write, or after complete_soon() on a plain
    // socket (its zero-length write).
    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t) {
        if (posted_)
            return self.complete(result_ec_, result_ec_ ? std::size_t{0} : payload_bytes_);
        self.complete(ec, ec ? std::size_t{0} : payload_bytes_);
    }

private:
#if PARLEY_HAS_POSIX_SOCKETS
    // On a plain socket: one sendmsg() of up to IOV_MAX buffers at a time,
    // as session does, and a readiness wait when the socket is full.
    template <class Self>
    void send(Self& self, bool initiating) {
        std::error_code ec;
        if (cursor_.send_while_taken(stream.next_layer_, ec) || ec)
            return finish(self, initiating, ec);
        stream.next_layer_.async_wait(asio::socket_base::wait_write, std::move(self));
    }

    template <class Self>
    void finish(Self& self, bool initiating, std::error_code ec) {
        if (!initiating)
            return self.complete(ec, ec ? std::size_t{0} : payload_bytes_);
        posted_ = true;
        result_ec_ = ec;
        detail::complete_soon(stream.next_layer_, asio::socket_base::wait_write, std::move(self));
    }
#endif
};

// The blocking counterpart: on a plain socket, sendmsg() of up to IOV_MAX
// buffers per call and a blocking wait when the socket is full; otherwise
// asio::write.
template <class NextLayer>
void write_gathered(NextLayer& next_layer, std::span<const asio::const_buffer> buffers,
                    std::error_code& ec) {
#if PARLEY_HAS_POSIX_SOCKETS
    if constexpr (waitable_socket<NextLayer>) {
        ec.clear();
        gathered_cursor cursor(buffers);
        while (!cursor.done()) {
            if (cursor.send_some(next_layer, ec))
                continue;
            if (ec || cursor.done())
                return;
            next_layer.wait(asio::socket_base::wait_write, ec);
            if (ec)
                return;
        }
        return;
    }
#endif
    asio::write(next_layer, buffers, ec);
}

} // namespace detail

template <class NextLayer, frame_format Format>
void framed_stream<NextLayer, Format>::release_delivered() noexcept {
    if (delivered_ != 0) {
        buffer_.consume(delivered_);
        delivered_ = 0;
        delivered_count_ = 0;
        buffer_.shrink_if_empty();
    }
}

template <class NextLayer, frame_format Format>
std::optional<frame_view> framed_stream<NextLayer, Format>::parse(std::error_code& ec) {
    // Frames already handed out stay in the buffer until the next read that
    // may do I/O, so that every view handed out since then stays valid.
    const auto data = buffer_.data().subspan(delivered_);
    const std::size_t size = codec_.frame_size(data, ec, &announced_);
    if (ec || size == 0 || data.size() < size)
        return std::nullopt;
    delivered_ += size;
    ++delivered_count_;
    return data.subspan(codec_type::header_size, size - codec_type::header_size);
}

template <class NextLayer, frame_format Format>
std::size_t framed_stream<NextLayer, Format>::pending_frame_size() const noexcept {
    std::error_code ignored;
    return codec_.frame_size(buffer_.data().subspan(delivered_), ignored);
}

template <class NextLayer, frame_format Format>
std::optional<frame_view> framed_stream<NextLayer, Format>::read_buffered_frame(
    std::error_code& ec) {
    return parse(ec);
}

template <class NextLayer, frame_format Format>
template <asio::completion_token_for<read_frame_signature> ReadToken>
auto framed_stream<NextLayer, Format>::async_read_frame(ReadToken&& token) {
    return asio::async_initiate<ReadToken, read_frame_signature>(
        detail::lean_initiation<detail::framed_read_op<framed_stream>>{{*this}}, token);
}

template <class NextLayer, frame_format Format>
template <asio::completion_token_for<void(std::error_code, std::size_t)> ReadToken>
auto framed_stream<NextLayer, Format>::async_read_some_input(ReadToken&& token) {
    return asio::async_initiate<ReadToken, void(std::error_code, std::size_t)>(
        detail::lean_initiation<detail::framed_input_op<framed_stream>>{{*this}}, token);
}

template <class NextLayer, frame_format Format>
frame_view framed_stream<NextLayer, Format>::read_frame(std::error_code& ec) {
    release_delivered();
    for (;;) {
        if (auto frame = parse(ec))
            return *frame;
        if (ec)
            return {};
        auto space = buffer_.prepare(pending_frame_size());
        const std::size_t n = next_layer_.read_some(asio::buffer(space.data(), space.size()), ec);
        buffer_.commit(n);
        may_have_more_ = n == space.size();
        if (ec) {
            ec = detail::read_failure(ec, !buffer_.empty());
            return {};
        }
    }
}

template <class NextLayer, frame_format Format>
frame_view framed_stream<NextLayer, Format>::read_frame() {
    std::error_code ec;
    auto frame = read_frame(ec);
    if (ec)
        throw std::system_error(ec, describe(ec));
    return frame;
}

template <class NextLayer, frame_format Format>
template <class BufferRange>
std::size_t framed_stream<NextLayer, Format>::prepare_frames(const BufferRange& payloads,
                                                             std::error_code& ec) {
    if (!begin_write(ec))
        return 0;
    writes().headers.clear();
    writes().buffers.clear();
    if (ec) // the caller's error_code may hold anything
        ec.clear();
    if constexpr (std::ranges::sized_range<const BufferRange>)
        return prepare_frames_once(payloads, ec);
    std::size_t total = 0;
    for (const asio::const_buffer& payload : payloads) {
        writes().headers.push_back(codec_.encode_header(payload.size(), ec));
        if (ec) {
            announced_ = payload.size();
            return 0;
        }
        total += payload.size();
    }
    // Headers first, then point at them: the vector no longer reallocates.
    // A frame this stream handed out and is now written back whole (an echo)
    // still has its header in the read buffer right before its payload:
    // header and payload go as one buffer, consecutive such frames as one,
    // so the kernel copies one block instead of two small ones per frame.
    constexpr std::size_t header_size = codec_type::header_size;
    const auto delivered = buffer_.data().first(delivered_);
    const auto lo = reinterpret_cast<std::uintptr_t>(delivered.data());
    const auto hi = lo + delivered.size();
    std::size_t i = 0;
    for (const asio::const_buffer& payload : payloads) {
        const auto at = reinterpret_cast<std::uintptr_t>(payload.data());
        const auto* header = writes().headers[i++].data();
        if (at >= lo + header_size && at + payload.size() <= hi &&
            std::memcmp(static_cast<const std::byte*>(payload.data()) - header_size, header,
                        header_size) == 0) {
            const auto* frame = static_cast<const std::byte*>(payload.data()) - header_size;
            if (!writes().buffers.empty()) {
                auto& last = writes().buffers.back();
                if (static_cast<const std::byte*>(last.data()) + last.size() == frame) {
                    last = asio::const_buffer(last.data(), last.size() + header_size + payload.size());
                    continue;
                }
            }
            writes().buffers.emplace_back(frame, header_size + payload.size());
            continue;
        }
        writes().buffers.emplace_back(header, header_size);
        writes().buffers.push_back(payload);
    }
    return total;
}

template <class NextLayer, frame_format Format>
template <class BufferRange>
std::size_t framed_stream<NextLayer, Format>::prepare_frames_once(const BufferRange& payloads,
                                                                  std::error_code& ec) {
    // prepare_frames() in one pass, for a range whose size is known: room
    // for every header is reserved first, so the buffers can point at them
    // as they are encoded. A frame handed out by this stream and written
    // back whole keeps the header it arrived with (see prepare_frames()):
    // the length field right before its payload, in the read buffer, holds
    // the payload's size. On a payload over the limit, writes().buffers is
    // left half-filled: the caller writes nothing when `ec` is set.
    constexpr std::size_t header_size = codec_type::header_size;
    writes().headers.reserve(std::ranges::size(payloads));
    const auto delivered = buffer_.data().first(delivered_);
    const auto lo = reinterpret_cast<std::uintptr_t>(delivered.data());
    const auto hi = lo + delivered.size();
    const std::uint64_t limit = codec_.max_payload();
    std::size_t total = 0;
    for (const asio::const_buffer& payload : payloads) {
        const std::size_t size = payload.size();
        if (size > limit) {
            ec = error::frame_too_large;
            announced_ = size;
            return 0;
        }
        total += size;
        const auto* data = static_cast<const std::byte*>(payload.data());
        const auto at = reinterpret_cast<std::uintptr_t>(data);
        if (at >= lo + header_size && at + size <= hi &&
            codec_type::read_length(data - header_size) == size) {
            const auto* frame = data - header_size;
            if (!writes().buffers.empty()) {
                auto& last = writes().buffers.back();
                if (static_cast<const std::byte*>(last.data()) + last.size() == frame) {
                    last = asio::const_buffer(last.data(), last.size() + header_size + size);
                    continue;
                }
            }
            writes().buffers.emplace_back(frame, header_size + size);
            continue;
        }
        auto& header = writes().headers.emplace_back();
        codec_type::write_length(size, header.data());
        writes().buffers.emplace_back(header.data(), header_size);
        writes().buffers.push_back(payload);
    }
    return total;
}

template <class NextLayer, frame_format Format>
template <class ConstBufferSequence>
std::size_t framed_stream<NextLayer, Format>::prepare_frame(const ConstBufferSequence& payload,
                                                            std::error_code& ec) {
    if (!begin_write(ec))
        return 0;
    const std::size_t size = asio::buffer_size(payload);
    writes().headers.resize(1);
    writes().headers[0] = codec_.encode_header(size, ec);
    writes().buffers.clear();
    if (ec) {
        announced_ = size;
        return 0;
    }
    writes().buffers.emplace_back(writes().headers[0].data(), codec_type::header_size);
    for (auto it = asio::buffer_sequence_begin(payload); it != asio::buffer_sequence_end(payload);
         ++it)
        writes().buffers.push_back(asio::const_buffer(*it));
    return size;
}

template <class NextLayer, frame_format Format>
template <class ConstBufferSequence, asio::completion_token_for<write_frame_signature>
                                         WriteToken>
    requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
auto framed_stream<NextLayer, Format>::async_write_frame(const ConstBufferSequence& payload,
                                                         WriteToken&& token) {
    std::error_code ec;
    const std::size_t size = prepare_frame(payload, ec);
    return asio::async_initiate<WriteToken, write_frame_signature>(
        detail::lean_initiation<detail::framed_write_op<framed_stream>>{{*this, size, ec}}, token);
}

template <class NextLayer, frame_format Format>
template <class BufferRange,
          asio::completion_token_for<write_frame_signature> WriteToken>
auto framed_stream<NextLayer, Format>::async_write_frames(const BufferRange& payloads,
                                                          WriteToken&& token) {
    std::error_code ec;
    const std::size_t size = prepare_frames(payloads, ec);
    return asio::async_initiate<WriteToken, write_frame_signature>(
        detail::lean_initiation<detail::framed_write_op<framed_stream>>{{*this, size, ec}}, token);
}

template <class NextLayer, frame_format Format>
template <class ConstBufferSequence>
    requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
std::size_t framed_stream<NextLayer, Format>::write_frame(const ConstBufferSequence& payload,
                                                          std::error_code& ec) {
    const std::size_t size = prepare_frame(payload, ec);
    if (ec)
        return 0;
    detail::write_gathered(next_layer_, std::span<const asio::const_buffer>(writes().buffers), ec);
    return ec ? 0 : size;
}

template <class NextLayer, frame_format Format>
template <class ConstBufferSequence>
    requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
std::size_t framed_stream<NextLayer, Format>::write_frame(const ConstBufferSequence& payload) {
    std::error_code ec;
    const std::size_t size = write_frame(payload, ec);
    if (ec)
        throw std::system_error(ec, describe(ec));
    return size;
}

template <class NextLayer, frame_format Format>
template <class BufferRange>
std::size_t framed_stream<NextLayer, Format>::write_frames(const BufferRange& payloads,
                                                           std::error_code& ec) {
    const std::size_t size = prepare_frames(payloads, ec);
    if (ec)
        return 0;
    detail::write_gathered(next_layer_, std::span<const asio::const_buffer>(writes().buffers), ec);
    return ec ? 0 : size;
}

template <class NextLayer, frame_format Format>
template <class BufferRange>
std::size_t framed_stream<NextLayer, Format>::write_frames(const BufferRange& payloads) {
    std::error_code ec;
    const std::size_t size = write_frames(payloads, ec);
    if (ec)
        throw std::system_error(ec, describe(ec));
    return size;
}

template <class NextLayer, frame_format Format>
template <class ConstBufferSequence>
    requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
bool framed_stream<NextLayer, Format>::try_write_frame(const ConstBufferSequence& payload,
                                                       std::error_code& ec) {
    const std::size_t size = prepare_frame(payload, ec);
    return !ec && send_now_or_keep(size, ec);
}

template <class NextLayer, frame_format Format>
template <class BufferRange>
bool framed_stream<NextLayer, Format>::try_write_frames(const BufferRange& payloads,
                                                        std::error_code& ec) {
    const std::size_t size = prepare_frames(payloads, ec);
    return !ec && send_now_or_keep(size, ec);
}

template <class NextLayer, frame_format Format>
bool framed_stream<NextLayer, Format>::send_now_or_keep(std::size_t payload_bytes,
                                                        std::error_code& ec) {
    auto& w = writes();
#if PARLEY_HAS_POSIX_SOCKETS
    if constexpr (detail::waitable_socket<next_layer_type>) {
        detail::gathered_cursor cursor(w.buffers);
        if (cursor.send_while_taken(next_layer_, ec) || ec)
            return !ec;
        w.resume_buffer = cursor.next();
        w.resume_offset = cursor.offset();
    }
#endif
    w.pending_payload = payload_bytes;
    w.pending = true;
    return false;
}

template <class NextLayer, frame_format Format>
template <asio::completion_token_for<write_frame_signature> WriteToken>
auto framed_stream<NextLayer, Format>::async_write_pending(WriteToken&& token) {
    auto& w = writes();
    std::size_t size = 0;
    if (w.pending) {
        size = w.pending_payload;
        w.pending = false;
    } else { // nothing left: an empty write, completed as any other
        w.buffers.clear();
        w.resume_buffer = w.resume_offset = 0;
    }
    return asio::async_initiate<WriteToken, write_frame_signature>(
        detail::lean_initiation<detail::framed_write_op<framed_stream>>{
            {*this, size, std::error_code()}},
        token);
}

} // namespace parley

#endif
