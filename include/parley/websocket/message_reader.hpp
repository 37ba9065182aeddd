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

inline void message_reader::reset() noexcept {
    input_ = {};
    error_.clear();
    stage_ = stage::header;
    remaining_ = frame_pos_ = 0;
    header_have_ = 0;
    message_open_ = first_piece_ = release_ = message_compressed_ = false;
    message_size_ = 0;
    utf8_.reset();
    message_.clear();
    message_.shrink_to_fit();
}

inline event message_reader::next(std::error_code& ec) {
    ec = error_;
    if (error_)
        return {};
    if (release_) {
        release_ = false;
        message_.clear();
        // An idle connection keeps no large buffer.
        if (message_.capacity() > 64 * 1024)
            message_.shrink_to_fit();
    }
    for (;;) {
        switch (stage_) {
        case stage::failed:
            return {};
        case stage::closed:
            if (!input_.empty())
                return fail(ec, error::data_after_close);
            return {};
        case stage::header:
            if (!read_header(ec))
                return {};
            if (!start_frame(ec))
                return {};
            break;
        case stage::payload:
            if (is_control(frame_.op)) {
                if (auto ev = control_step(ec); ev || ec || remaining_ != 0)
                    return ev;
            } else {
                if (auto ev = data_step(ec); ev || ec)
                    return ev;
                if (remaining_ != 0)
                    return {}; // the input is used up
            }
            break;
        }
    }
}

// Completes frame_ from the input (and header_, for a header split across
// chunks). False when more bytes are needed or on error.
inline bool message_reader::read_header(std::error_code& ec) {
    for (;;) {
        const std::span<const std::byte> view =
            header_have_ != 0 ? std::span<const std::byte>(header_).first(header_have_)
                              : std::span<const std::byte>(input_);
        const std::size_t size = parse_header(view, rules_, frame_, ec);
        if (ec) {
            fail(ec, static_cast<error>(ec.value()));
            return false;
        }
        if (size <= view.size()) {
            if (header_have_ != 0)
                header_have_ = 0;
            else
                input_ = input_.subspan(size);
            return true;
        }
        // At most 13 bytes short of a header, all of it kept.
        const std::size_t take = std::min(size - header_have_, input_.size());
        if (take == 0)
            return false;
        std::memcpy(header_.data() + header_have_, input_.data(), take);
        header_have_ += take;
        input_ = input_.subspan(take);
    }
}

// The rules between frames, applied once a header is complete.
inline bool message_reader::start_frame(std::error_code& ec) {
    if (!is_control(frame_.op)) {
        if (frame_.op == opcode::continuation) {
            if (!message_open_) {
                fail(ec, error::continuation_without_start);
                return false;
            }
        } else {
            if (message_open_) {
                fail(ec, error::message_not_finished);
                return false;
            }
            message_open_ = true;
            first_piece_ = true;
            message_op_ = frame_.op;
            message_compressed_ = frame_.compressed;
            message_size_ = 0;
            utf8_.reset();
        }
        if (frame_.payload_length > options_.max_message_size - message_size_) {
            fail(ec, error::message_too_big);
            return false;
        }
        message_size_ += frame_.payload_length;
    }
    remaining_ = frame_.payload_length;
    frame_pos_ = 0;
    stage_ = stage::payload;
    return true;
}

inline event message_reader::control_step(std::error_code& ec) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input_.size()));
    std::byte* dest = control_.data() + frame_pos_;
    if (n != 0)
        std::memcpy(dest, input_.data(), n);
    input_ = input_.subspan(n);
    if (frame_.masked)
        apply_mask({dest, n}, frame_.key, frame_pos_);
    frame_pos_ += n;
    remaining_ -= n;
    if (remaining_ != 0)
        return {};
    stage_ = stage::header;
    const std::span<const std::byte> payload(control_.data(),
                                             static_cast<std::size_t>(frame_.payload_length));
    event ev;
    ev.payload = payload;
    switch (frame_.op) {
    case opcode::ping:
        ev.kind = event_kind::ping;
        break;
    case opcode::pong:
        ev.kind = event_kind::pong;
        break;
    default: {
        const close_reason r = parse_close_payload(payload, ec);
        if (ec)
            return fail(ec, static_cast<error>(ec.value()));
        ev.kind = event_kind::close;
        ev.code = r.code;
        ev.reason = r.reason;
        stage_ = stage::closed;
        break;
    }
    }
    return ev;
}

inline event message_reader::data_step(std::error_code& ec) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input_.size()));
    const std::span<std::byte> chunk = input_.first(n);
    input_ = input_.subspan(n);
    if (frame_.masked)
        apply_mask(chunk, frame_.key, frame_pos_);
    const bool whole_frame_here = frame_pos_ == 0 && n == frame_.payload_length;
    frame_pos_ += n;
    remaining_ -= n;
    const bool frame_done = remaining_ == 0;
    const bool message_done = frame_done && frame_.fin;
    if (frame_done)
        stage_ = stage::header;

    if (message_op_ == opcode::text && !message_compressed_) {
        if (utf8_.feed(chunk) != n || (message_done && !utf8_.complete()))
            return fail(ec, error::invalid_utf8);
    }
    if (message_done)
        message_open_ = false;

    event ev;
    ev.kind = message_op_ == opcode::text ? event_kind::text : event_kind::binary;
    ev.compressed = message_compressed_;
    if (options_.mode == delivery::pieces) {
        if (n == 0 && !message_done)
            return {};
        ev.payload = chunk;
        ev.first = std::exchange(first_piece_, false);
        ev.last = message_done;
        return ev;
    }
    // Whole: a message in one frame, all in this chunk, is handed out in
    // place; anything else is gathered.
    if (message_done && message_.empty() && whole_frame_here && n == message_size_) {
        ev.payload = chunk;
    } else {
        message_.insert(message_.end(), chunk.begin(), chunk.end());
        if (!message_done)
            return {};
        ev.payload = message_;
        release_ = true;
    }
    ev.first = ev.last = true;
    return ev;
}

} // namespace parley::websocket

#endif
