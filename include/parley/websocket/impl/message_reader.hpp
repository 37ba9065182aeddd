// parley: message_reader bodies.
#ifndef PARLEY_WEBSOCKET_IMPL_MESSAGE_READER_HPP
#define PARLEY_WEBSOCKET_IMPL_MESSAGE_READER_HPP

#include <parley/websocket/message_reader.hpp>

namespace parley::websocket {

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
        // Only a message split across reads is gathered: giving the buffer
        // back each time costs little, and an idle connection holds no heap.
        message_.clear();
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
