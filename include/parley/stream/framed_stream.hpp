// parley: messages over any Asio byte stream.
#ifndef PARLEY_STREAM_FRAMED_STREAM_HPP
#define PARLEY_STREAM_FRAMED_STREAM_HPP

#include <parley/error.hpp>
#include <parley/codec/frame_batch.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/detail/read_buffer.hpp>

#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <ranges>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace parley {

namespace detail {
template <class Stream>
struct framed_read_op;
template <class Stream>
struct framed_write_op;
template <class Stream>
struct framed_input_op;
} // namespace detail

/// A frame's payload as handed out by a read: a view into the stream's
/// buffer, valid until the next read on that stream.
using frame_view = std::span<const std::byte>;

/// The payload as text (no validation: see utf8.hpp for that).
inline std::string_view as_string_view(frame_view payload) noexcept {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
}

/// Completion signature of a frame read: the payload is a view valid until
/// the next read on the same stream.
using read_frame_signature = void(std::error_code, frame_view);

/// Completion signature of a frame write: the payload bytes written.
using write_frame_signature = void(std::error_code, std::size_t);

/// A view of text as payload bytes, for the write functions.
inline asio::const_buffer as_payload(std::string_view text) noexcept {
    return asio::buffer(text.data(), text.size());
}

/// Reads and writes length-prefixed frames over a stream: a TCP or local
/// socket, an `asio::ssl::stream`, or anything modelling Asio's
/// AsyncReadStream and AsyncWriteStream (and SyncReadStream/SyncWriteStream
/// for the blocking functions).
///
/// `NextLayer` may be a reference (`framed_stream<tcp::socket&>`) to wrap a
/// stream owned elsewhere.
///
/// Reading takes large chunks from the next layer and hands out the frames
/// in them one by one: several frames arriving together cost one system
/// call. Over a socket on POSIX systems, a stream with nothing buffered
/// waits for readiness before it takes a buffer from a per-thread pool, so
/// an idle connection holds no read buffer (unless keep_read_buffer()).
///
/// @par Thread safety
/// Like an Asio socket: distinct objects are safe, a shared object is not.
/// At most one read and one write may be outstanding at a time.
template <class NextLayer, frame_format Format = default_frame_format>
class framed_stream {
public:
    using next_layer_type = std::remove_reference_t<NextLayer>;
    using executor_type = typename next_layer_type::executor_type;
    using codec_type = frame_codec<Format>;

    /// Default size of each read from the next layer.
    static constexpr std::size_t default_read_chunk = 32 * 1024;

    /// Constructs the next layer from `args`: for a socket, an executor or
    /// an execution context, or an existing socket to move from.
    template <class... Args>
        requires(std::is_constructible_v<NextLayer, Args...> &&
                 !(sizeof...(Args) == 1 &&
                   (std::is_same_v<std::remove_cvref_t<Args>, framed_stream> || ...)))
    explicit framed_stream(Args&&... args) : next_layer_(std::forward<Args>(args)...) {}

    framed_stream(framed_stream&&) = default;
    framed_stream& operator=(framed_stream&&) = default;

    executor_type get_executor() noexcept { return next_layer_.get_executor(); }
    next_layer_type& next_layer() noexcept { return next_layer_; }
    const next_layer_type& next_layer() const noexcept { return next_layer_; }

    /// The largest payload accepted by reads and writes (default: the
    /// format's, 1 MiB). @throws std::invalid_argument if the length field
    /// cannot express `limit`.
    std::uint64_t max_payload() const noexcept { return codec_.max_payload(); }
    void max_payload(std::uint64_t limit) { codec_.max_payload(limit); }

    /// How many bytes each read from the next layer asks for (default 32
    /// KiB). Takes effect when the stream holds no buffer.
    std::size_t read_chunk_size() const noexcept { return buffer_.chunk(); }
    void read_chunk_size(std::size_t size) noexcept { buffer_.chunk(size); }

    /// Whether a read that finds nothing to read keeps the read buffer while
    /// it waits (default: no). Kept, the wait is the next layer's own
    /// async_read_some, which receives the bytes as soon as they arrive: on
    /// a socket, one system call fewer each time the stream waits (Asio
    /// re-arms a readiness wait with epoll_ctl; a pending read needs none),
    /// at the cost of a read_chunk_size() buffer held by every waiting
    /// stream. For a few busy request-reply connections; leave it off for
    /// many mostly idle ones.
    bool keeps_read_buffer() const noexcept { return keep_read_buffer_; }
    void keep_read_buffer(bool keep) noexcept { keep_read_buffer_ = keep; }

    /// Bytes received but not yet handed out as frames.
    std::size_t buffered_bytes() const noexcept { return buffer_.size() - delivered_; }

    /// Puts bytes already read from the next layer (by whoever had the
    /// connection before: an HTTP server that read past its request head)
    /// in front of what is read next.
    void unread(std::span<const std::byte> bytes) {
        while (!bytes.empty()) {
            const auto space = buffer_.prepare(buffer_.size() + bytes.size());
            const std::size_t n = std::min(space.size(), bytes.size());
            std::memcpy(space.data(), bytes.data(), n);
            buffer_.commit(n);
            bytes = bytes.subspan(n);
        }
    }

    /// A sentence describing `ec` as this stream met it: for a frame that
    /// was too large, the announced size and the limit.
    std::string describe(std::error_code ec) const {
        if (ec == error::frame_too_large)
            return describe_oversize_frame(announced_, codec_.max_payload());
        return ec.message();
    }

    /// @name Reading
    /// @{

    /// Starts an asynchronous read of one frame.
    ///
    /// The handler receives the payload as a view into the stream's buffer,
    /// valid until the next read is started:
    /// @code
    /// void handler(std::error_code ec, parley::frame_view payload);
    /// @endcode
    /// Errors: asio::error::eof when the peer closed between frames,
    /// error::truncated_frame when it closed inside one,
    /// error::frame_too_large (see describe()) for a length over the limit;
    /// after an error the stream should be closed.
    ///
    /// The handler is never invoked from within this function, even when a
    /// frame is already buffered. Supports per-operation cancellation (bind
    /// a cancellation slot): the slot goes to the next layer's read or wait
    /// as it is, so every type that cancels that (a socket's: terminal,
    /// partial, total) cancels the frame read; bytes already received stay
    /// buffered for the next read.
    template <asio::completion_token_for<read_frame_signature> ReadToken>
    auto async_read_frame(ReadToken&& token);

    /// Reads one frame, blocking. The view is valid until the next read.
    frame_view read_frame(std::error_code& ec);
    frame_view read_frame();

    /// Hands out the next frame that is already buffered, without any I/O,
    /// or nullopt (with `ec` set on a decoding error). Lets a server take
    /// every frame of one read before it starts the next: all the views
    /// handed out since the last read_frame() or async_read_frame() stay
    /// valid until the next one, so they can be answered in one gathered
    /// write.
    std::optional<frame_view> read_buffered_frame(std::error_code& ec);

    /// The frames handed out since the last read_frame() or
    /// async_read_frame() (that one included) as they arrived: contiguous,
    /// headers and payloads, valid as long as their views. A relay forwards
    /// them as one buffer, without re-encoding.
    basic_frame_batch<Format> delivered_frames() const noexcept {
        return {buffer_.data().first(delivered_), delivered_count_};
    }

    /// @}
    /// @name Reading raw bytes
    /// For a decoder of another format over the same adaptive buffer (see
    /// session::read_with): an idle stream holds no buffer either way.
    /// @{

    /// Starts an asynchronous read of whatever bytes the next layer has,
    /// appended to those received and not yet consumed (buffered_input()).
    /// Frames handed out by an earlier frame read are consumed first.
    /// @code
    /// void handler(std::error_code ec, std::size_t bytes_received);
    /// @endcode
    /// asio::error::eof when the peer closed (whatever is still buffered
    /// stays readable). The handler is never invoked from within this
    /// function; cancellation as for async_read_frame().
    template <asio::completion_token_for<void(std::error_code, std::size_t)> ReadToken>
    auto async_read_some_input(ReadToken&& token);

    /// The bytes received and not yet consumed, valid until the next read
    /// or consume_input().
    std::span<std::byte> buffered_input() noexcept { return buffer_.data().subspan(delivered_); }

    /// Consumes the first `n` bytes of buffered_input() (at most all of
    /// them). A buffer left empty goes back to the per-thread pool.
    void consume_input(std::size_t n) noexcept {
        release_delivered();
        buffer_.consume(std::min(n, buffer_.size()));
        buffer_.release_if_empty();
    }

    /// @}
    /// @name Writing
    /// @{

    /// Starts an asynchronous write of one frame whose payload is the
    /// buffer sequence `payload` (gathered, not copied: the memory it refers
    /// to must stay valid until the handler is called).
    /// @code
    /// void handler(std::error_code ec, std::size_t payload_bytes);
    /// @endcode
    /// A payload over max_payload() fails with error::frame_too_large
    /// without writing anything. The handler is never invoked from within
    /// this function.
    ///
    /// The frame's header is prepared when this function is called, in the
    /// stream's own storage: with a lazy token (`deferred`), launch the
    /// operation before starting any other write on this stream.
    template <class ConstBufferSequence,
              asio::completion_token_for<write_frame_signature> WriteToken>
        requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
    auto async_write_frame(const ConstBufferSequence& payload, WriteToken&& token);

    /// Starts an asynchronous write of several frames, one per buffer in
    /// `payloads` (a range of asio::const_buffer), in one gathered write.
    /// All are checked against the limit before anything is written. The
    /// range itself may be destroyed after this call; the memory its
    /// buffers refer to must stay valid until the handler is called, which
    /// receives the total payload bytes.
    template <class BufferRange, asio::completion_token_for<write_frame_signature> WriteToken>
    auto async_write_frames(const BufferRange& payloads, WriteToken&& token);

    /// Writes one frame, blocking. Returns the payload size.
    template <class ConstBufferSequence>
        requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
    std::size_t write_frame(const ConstBufferSequence& payload, std::error_code& ec);
    template <class ConstBufferSequence>
        requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
    std::size_t write_frame(const ConstBufferSequence& payload);

    /// Writes several frames in one gathered write, blocking.
    template <class BufferRange>
    std::size_t write_frames(const BufferRange& payloads, std::error_code& ec);
    template <class BufferRange>
    std::size_t write_frames(const BufferRange& payloads);

    /// Writes one frame now, without blocking and without a completion
    /// handler, if the next layer takes all of it at once: returns true.
    /// Otherwise returns false:
    /// - with `ec` set on an error, as for the other writes: a payload over
    ///   max_payload() (nothing written), or a failed socket (close it);
    /// - with `ec` clear when the socket was full: part or none of the frame
    ///   went out, the rest is kept (write_pending()) and must be sent with
    ///   async_write_pending() before any other write; the payload's memory
    ///   must stay valid until that completes.
    /// On a stream that is not a plain socket (TLS) nothing is written at
    /// once: the whole frame is kept for async_write_pending().
    ///
    /// For a server that answers each request as it reads it: a reply the
    /// socket takes at once costs one system call and nothing else, where
    /// async_write_frame() queues its completion, which makes Asio poll its
    /// reactor once more before it runs the handler.
    /// @code
    /// if (!stream.try_write_frames(replies, ec) && !ec)
    ///     std::tie(ec, n) = co_await stream.async_write_pending(as_tuple(use_awaitable));
    /// @endcode
    template <class ConstBufferSequence>
        requires asio::is_const_buffer_sequence<ConstBufferSequence>::value
    bool try_write_frame(const ConstBufferSequence& payload, std::error_code& ec);

    /// try_write_frame() for several frames, in one gathered write: all or
    /// none are checked against the limit first, as by async_write_frames().
    template <class BufferRange>
    bool try_write_frames(const BufferRange& payloads, std::error_code& ec);

    /// Whether a try_write_frame(s)() left frames to send.
    bool write_pending() const noexcept { return writes_ && writes_->pending; }

    /// Sends what try_write_frame(s)() left; the handler receives that
    /// call's payload bytes, or 0 when nothing was left. As
    /// async_write_frames() otherwise (never invoked from within this
    /// function). Until it is called, the other write functions fail with
    /// asio::error::already_started and write nothing.
    template <asio::completion_token_for<write_frame_signature> WriteToken>
    auto async_write_pending(WriteToken&& token);

    /// @}

private:
    template <class> friend struct detail::framed_read_op;
    template <class> friend struct detail::framed_write_op;
    template <class> friend struct detail::framed_input_op;

    // Consumes the frame handed out by the previous read.
    void release_delivered() noexcept;
    // Whether a read that found the socket drained last time tries once at
    // once before waiting for readiness, and the outcome of such a try. A
    // try that finds nothing skips the next tries, 1, 2, 4 ... up to 16 of
    // them, until one finds bytes: a request-reply peer, whose next request
    // comes only after the reply, is never ready at once, and each try
    // would be a system call for nothing.
    bool try_now() noexcept {
        if (tries_to_skip_ == 0)
            return true;
        --tries_to_skip_;
        return false;
    }
    void tried_now(bool found) noexcept {
        if (found)
            try_backoff_ = 0;
        else
            try_backoff_ = static_cast<std::uint8_t>(try_backoff_ == 0 ? 1 : std::min(2 * try_backoff_, 16));
        tries_to_skip_ = try_backoff_;
    }
    // Whether a socket read starts with a try at once, then a readiness
    // wait without a buffer (try_now()): nothing is buffered, the last read
    // drained the socket, and the stream does not keep its buffer.
    bool waits_unbuffered() const noexcept {
        return buffer_.empty() && !may_have_more_ && !keep_read_buffer_;
    }
    // The next complete frame in the buffer, if any; error on a bad length.
    std::optional<frame_view> parse(std::error_code& ec);
    // Size on the wire of the frame being assembled, 0 if its header is
    // not complete.
    std::size_t pending_frame_size() const noexcept;
    // Fills writes().buffers with headers and payloads; error if too large.
    template <class BufferRange>
    std::size_t prepare_frames(const BufferRange& payloads, std::error_code& ec);
    template <class BufferRange>
    std::size_t prepare_frames_once(const BufferRange& payloads, std::error_code& ec);
    template <class ConstBufferSequence>
    std::size_t prepare_frame(const ConstBufferSequence& payload, std::error_code& ec);

    NextLayer next_layer_;
    codec_type codec_;
    detail::read_buffer buffer_{default_read_chunk};
    std::size_t delivered_ = 0;     // bytes of the frames handed out since the last read
    std::size_t delivered_count_ = 0; // and how many frames they are
    std::uint64_t announced_ = 0;   // length field of the last frame seen
    bool may_have_more_ = false;    // the last read filled the buffer
    std::uint8_t try_backoff_ = 0;  // see try_now()
    std::uint8_t tries_to_skip_ = 0;
    bool keep_read_buffer_ = false; // see keep_read_buffer()
    // The frame writers' headers and buffers, made by the first write: a
    // stream that is only read from (a session writes its own queue)
    // holds a pointer, not two vectors.
    struct write_state {
        std::vector<typename codec_type::header_bytes> headers;
        std::vector<asio::const_buffer> buffers;
        // Where the next send resumes in `buffers` (a try_write's rest):
        // the first buffer not completely sent, and its bytes already sent.
        std::size_t resume_buffer = 0;
        std::size_t resume_offset = 0;
        std::size_t pending_payload = 0; // the rest's call's payload bytes
        bool pending = false;            // see write_pending()
    };
    // Sends the prepared frames at once as far as the next layer takes
    // them; keeps the rest as pending. See try_write_frames().
    bool send_now_or_keep(std::size_t payload_bytes, std::error_code& ec);
    // The start of every write: refused (already_started) while a
    // try_write's rest waits; otherwise the next send starts at the top.
    bool begin_write(std::error_code& ec) {
        if (write_pending()) {
            ec = asio::error::already_started;
            return false;
        }
        writes().resume_buffer = writes().resume_offset = 0;
        return true;
    }
    write_state& writes() {
        if (!writes_)
            writes_ = std::make_unique<write_state>();
        return *writes_;
    }
    std::unique_ptr<write_state> writes_;
};

} // namespace parley

#include <parley/stream/impl/framed_stream.hpp>

#endif
