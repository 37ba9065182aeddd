// parley: the receiving half of a WebSocket connection, free of any I/O.
//
// message_reader is fed the bytes a socket read and yields what a stream
// acts on: data messages (text or binary, whole or in pieces), pings to
// answer with a pong, pongs, and the peer's close. It applies every rule of
// RFC 6455 that concerns received frames: masking for its role, reserved
// bits and opcodes, control frames (at most 125 bytes, never fragmented,
// allowed between the fragments of a message), fragmentation (no
// continuation without a start, no new message inside an unfinished one),
// the size limit (checked from the frame headers, before a byte is
// buffered), UTF-8 of text (checked as bytes arrive, failing on the first
// bad byte, across fragments), and close payloads.
//
// An error is final and says which close code to answer with; after the
// peer's close frame nothing more is accepted.
#ifndef PARLEY_WEBSOCKET_MESSAGE_READER_HPP
#define PARLEY_WEBSOCKET_MESSAGE_READER_HPP

#include <parley/codec/utf8_validator.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace parley::websocket {

enum class event_kind : unsigned char {
    /// Nothing yet: feed more bytes (or, with an error set, stop).
    none,
    text,
    binary,
    /// Answer with a pong carrying the same payload.
    ping,
    pong,
    /// The peer's close frame; answer with a close frame, then nothing more.
    close,
};

/// How data messages are handed out.
enum class delivery : unsigned char {
    /// Each message once, whole: gathered in the reader's buffer (growing
    /// as bytes arrive, never past max_message_size), or a view of the
    /// input when the message came in one frame inside one fed chunk.
    whole,
    /// Each piece of payload as it arrives, a view of the input, with
    /// first/last flags: nothing is buffered, for large messages streamed
    /// onwards. max_message_size still bounds the message.
    pieces,
};

struct reader_options {
    /// Which end this is: a server reads masked frames, a client unmasked.
    role side = role::server;
    /// The largest data message accepted, in bytes (all its frames'
    /// payloads). Larger: error::message_too_big, close code 1009.
    std::uint64_t max_message_size = 1024 * 1024;
    delivery mode = delivery::whole;
    /// permessage-deflate was negotiated: the first frame of a message may
    /// have RSV1 set (event::compressed). Such a message is handed out as
    /// received, not checked as UTF-8: the inflating layer must check it,
    /// and bound its inflated size.
    bool compression = false;
};

/// One thing the reader found. The views are valid until the next call to
/// feed(), next() or reset() of the reader that gave it.
struct event {
    event_kind kind = event_kind::none;
    /// Data: the message, or this piece of it. Ping and pong: the payload
    /// (to echo in a pong). Close: the raw close payload.
    std::span<const std::byte> payload;
    /// Data: this piece starts the message / ends it (both, when whole).
    bool first = false;
    bool last = false;
    /// Data: the message's first frame had RSV1 set (compressed).
    bool compressed = false;
    /// Close: the code (no_status for an empty close) and the UTF-8 reason.
    close_code code = close_code::no_status;
    std::string_view reason;

    explicit operator bool() const noexcept { return kind != event_kind::none; }
    bool is_data() const noexcept { return kind == event_kind::text || kind == event_kind::binary; }
    /// The payload as characters (UTF-8 for an uncompressed text message).
    std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(payload.data()), payload.size()};
    }
};

/// The decoding state machine of one connection's received bytes.
///
/// @code
/// parley::websocket::message_reader reader({.side = role::server});
/// // after each read of n bytes into buf:
/// reader.feed(std::span(buf).first(n));
/// std::error_code ec;
/// while (auto ev = reader.next(ec)) {
///     switch (ev.kind) {
///     case event_kind::text: on_text(ev.text()); break;
///     case event_kind::ping: send_pong(ev.payload); break;
///     case event_kind::close: send_close(ev.code); return;
///     ...
///     }
/// }
/// if (ec) send_close(reader.close_code_to_send()); // then close the socket
/// @endcode
///
/// Who owns the bytes: feed() lends the reader the caller's buffer, which
/// it reads and, for masked frames, unmasks in place (so it is modified).
/// The buffer must stay valid, and must not be fed again, until next() has
/// returned an empty event. Views in events point into that buffer or into
/// the reader's own (a gathered message, a control frame), and are valid
/// until the next call to feed(), next() or reset(). The reader allocates
/// only to gather a message that is not in one chunk, as its bytes arrive.
class message_reader {
public:
    message_reader() : message_reader(reader_options{}) {}
    explicit message_reader(const reader_options& options) : options_(options) {
        rules_.reader = options.side;
        rules_.compression = options.compression;
        rules_.max_payload = std::max<std::uint64_t>(options.max_message_size, max_control_payload);
    }

    const reader_options& options() const noexcept { return options_; }

    /// Hands the reader the next bytes read. Call only once next() has
    /// returned an empty event for the previous ones.
    void feed(std::span<std::byte> input) noexcept { input_ = input; }

    /// The next event, or an empty one when more bytes are needed or an
    /// error occurred (then `ec` is set, and stays set: see
    /// close_code_to_send()). After the close event, bytes still fed are
    /// error::data_after_close.
    event next(std::error_code& ec);

    /// Declares the end of the input (the peer closed the connection).
    /// Sets error::truncated when it ended inside a frame or a fragmented
    /// message, or the earlier decoding error; clear otherwise (an end
    /// without a close frame is for the stream to report as 1006).
    void finish(std::error_code& ec) const noexcept {
        ec = error_;
        if (!ec && stage_ != stage::closed && (stage_ == stage::payload || header_have_ != 0 ||
                                               message_open_ || !input_.empty()))
            ec = error::truncated;
    }

    /// The peer's close frame was received.
    bool closed() const noexcept { return stage_ == stage::closed; }
    /// The decoding error, if any.
    std::error_code last_error() const noexcept { return error_; }
    /// The close code to send for the error (1002, 1007 or 1009).
    close_code close_code_to_send() const noexcept { return close_code_for(error_); }
    /// A fragmented data message has started and not ended.
    bool in_message() const noexcept { return message_open_; }
    /// Bytes of the current message gathered in the reader's buffer.
    std::size_t buffered() const noexcept { return release_ ? 0 : message_.size(); }
    /// Heap memory the reader holds (its gathering buffer), for a
    /// connection's memory accounting: none between messages; while a
    /// split message is gathered, under twice the bytes received of it
    /// (the buffer grows as they arrive, never to a size merely announced).
    std::size_t heap_bytes() const noexcept { return message_.capacity(); }

    /// Forgets everything, to read a new connection with the same options.
    void reset() noexcept;

private:
    enum class stage : unsigned char { header, payload, closed, failed };

    event fail(std::error_code& ec, error e) {
        error_ = e;
        ec = error_;
        stage_ = stage::failed;
        input_ = {};
        message_.clear();
        message_.shrink_to_fit();
        return {};
    }

    bool read_header(std::error_code& ec);
    bool start_frame(std::error_code& ec);
    event control_step(std::error_code& ec);
    event data_step(std::error_code& ec);

    reader_options options_;
    header_rules rules_;
    std::span<std::byte> input_;
    std::error_code error_;
    stage stage_ = stage::header;

    // The frame being read.
    frame_header frame_;
    std::uint64_t remaining_ = 0; // payload bytes of the frame still to come
    std::uint64_t frame_pos_ = 0; // payload bytes of the frame already seen
    header_buffer header_{};      // a header split across chunks
    std::size_t header_have_ = 0;
    std::array<std::byte, max_control_payload> control_{};

    // The data message being read.
    bool message_open_ = false;
    bool first_piece_ = false;
    bool release_ = false; // message_ was handed out: clear it on next()
    opcode message_op_ = opcode::text;
    bool message_compressed_ = false;
    std::uint64_t message_size_ = 0;
    utf8_validator utf8_;
    std::vector<std::byte> message_;
};

} // namespace parley::websocket

#include <parley/websocket/impl/message_reader.hpp>

#endif
