// parley: websocket::stream's reads, writes, pings and close. Included by
// impl/stream.hpp.
#ifndef PARLEY_WEBSOCKET_IMPL_STREAM_IO_HPP
#define PARLEY_WEBSOCKET_IMPL_STREAM_IO_HPP

#include <parley/codec/utf8.hpp>
#include <parley/websocket/impl/stream_handshake.hpp>

#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <vector>

namespace parley::websocket {
namespace detail {

// Where a read puts the message.
struct string_sink {
    std::string* out;
    std::error_code put(std::span<const std::byte> p) {
        out->assign(reinterpret_cast<const char*>(p.data()), p.size());
        return {};
    }
};

template <class DynamicBuffer>
struct dynamic_sink {
    DynamicBuffer buffer;
    std::error_code put(std::span<const std::byte> p) {
        if (p.size() > buffer.max_size() - buffer.size())
            return error::message_too_big;
        const std::size_t old = buffer.size();
        buffer.grow(p.size());
        asio::buffer_copy(buffer.data(old, p.size()), asio::buffer(p.data(), p.size()));
        return {};
    }
};

// Reads one message, answering pings and the peer's close on the way.
template <class Stream, class Sink>
struct read_op {
    Stream& s;
    Sink sink;
    message_ptr out{};          // a pong or close to send
    bool continue_after = true; // go on reading after `out` is sent
    std::error_code result{};
    std::size_t size = 0;
    bool started = false; // this operation set s.reading_
    enum class state { start, reading, lock_wait, writing, teardown, posted } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t n = 0) {
        switch (state_) {
        case state::start:
            if (s.close_sent_ || s.close_received_ || s.torn_down_)
                return finish(self, true, error::closed, 0);
            if (!s.open_)
                return finish(self, true, error::not_open, 0);
            s.reading_ = started = true;
            return process(self, true);
        case state::reading:
            if (ec)
                return read_failed(self, ec);
            s.reader_.feed(std::span<std::byte>(s.rbuf_.data(), n));
            return process(self, false);
        case state::lock_wait:
            if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
                return finish(self, false, asio::error::operation_aborted, 0);
            return send(self);
        case state::writing:
            s.release_write();
            out.reset();
            if (ec) {
                close_socket(s);
                s.open_ = false;
                return finish(self, false, result ? result : ec, 0);
            }
            if (continue_after)
                return process(self, false);
            return teardown(self);
        case state::teardown:
            return finish(self, false, result, 0);
        case state::posted:
            return self.complete(result, size);
        }
    }

private:
    template <class Self>
    void process(Self& self, bool initiating) {
        for (;;) {
            std::error_code ec;
            const event ev = s.reader_.next(ec);
            if (ec)
                return fail(self, ec, s.reader_.close_code_to_send());
            if (!ev) {
                if (s.pending_ != 0) {
                    s.reader_.feed(std::span<std::byte>(s.rbuf_.data(), s.pending_));
                    s.pending_ = 0;
                    continue;
                }
                state_ = state::reading;
                return s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()),
                                                     std::move(self));
            }
            switch (ev.kind) {
            case event_kind::text:
            case event_kind::binary: {
                s.got_text_ = ev.kind == event_kind::text;
                if (!ev.compressed || !s.deflate_)
                    return finish(self, initiating, sink.put(ev.payload), ev.payload.size());
                detail::deflate_state& d = *s.deflate_;
                if (const std::error_code iec = d.inflate(ev.payload))
                    return fail(self, iec, deflate_close_code_for(iec));
                if (s.got_text_ && !is_valid_utf8(d.inflated))
                    return fail(self, error::invalid_utf8, close_code::invalid_payload);
                const std::error_code put = sink.put(std::as_bytes(std::span(d.inflated)));
                const std::size_t n = d.inflated.size();
                d.trim();
                return finish(self, initiating, put, n);
            }
            case event_kind::ping:
                if (s.close_sent_)
                    continue;
                out = s.writer_.pong(ev.payload, ec);
                continue_after = true;
                return send(self);
            case event_kind::pong:
                ++s.pongs_;
                continue;
            case event_kind::close:
                s.close_received_ = true;
                s.peer_close_ = {ev.code, std::string(ev.reason)};
                result = error::closed;
                if (s.close_sent_)
                    return teardown(self);
                s.close_sent_ = true;
                // Echo the peer's code (RFC 6455 5.5.1); an empty close is answered empty.
                out = s.writer_.close(ev.code, "", ec);
                continue_after = false;
                return send(self);
            case event_kind::none:
                break;
            }
        }
    }

    // The peer broke the protocol (or sent data that does not inflate):
    // close with `code` and end the read with `ec`.
    template <class Self>
    void fail(Self& self, std::error_code ec, close_code code) {
        result = ec;
        if (s.close_sent_)
            return teardown(self);
        s.close_sent_ = true;
        std::error_code ignored;
        out = s.writer_.close(code, "", ignored);
        continue_after = false;
        return send(self);
    }

    // Writes `out` once no other frame is being written.
    template <class Self>
    void send(Self& self) {
        if (s.writing_) {
            state_ = state::lock_wait;
            return s.write_waiters_.async_wait(std::move(self));
        }
        s.writing_ = true;
        state_ = state::writing;
        asio::async_write(s.next_layer_, out->buffer(), std::move(self));
    }

    template <class Self>
    void read_failed(Self& self, std::error_code ec) {
        if (s.close_sent_ || s.torn_down_) {
            ec = error::closed; // this side ended it (async_close's deadline)
        } else if (ec == asio::error::eof) {
            std::error_code truncated;
            s.reader_.finish(truncated);
            ec = truncated ? truncated : std::error_code(error::no_close_frame);
        }
        close_socket(s);
        s.open_ = false;
        finish(self, false, ec, 0);
    }

    template <class Self>
    void teardown(Self& self) {
        state_ = state::teardown;
        async_teardown(s, std::move(self));
    }

    template <class Self>
    void finish(Self& self, bool initiating, std::error_code ec, std::size_t n) {
        if (started)
            s.reading_ = false;
        if (s.close_sent_)
            s.close_waiter_.cancel(); // an async_close waits for this read
        if (initiating) {
            result = ec;
            size = n;
            state_ = state::posted;
            return asio::post(std::move(self));
        }
        self.complete(ec, n);
    }
};

// A user's data message: one frame or several (max_frame_size),
// compressed when permessage-deflate was negotiated.
template <class Stream>
struct write_op {
    Stream& s;
    message_type type;
    asio::const_buffer data;
    std::vector<message_ptr> frames{};        // a client's masked copies
    std::vector<header_buffer> headers{};     // a server's fragment headers
    std::vector<asio::const_buffer> buffers{}; // what is written, in order
    std::array<asio::const_buffer, 2> single{}; // or a server's one frame
    std::error_code result{};
    enum class state { start, lock_wait, writing, posted } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t = 0) {
        switch (state_) {
        case state::start: {
            if (s.close_sent_ || s.close_received_)
                return post_fail(self, error::closed);
            if (!s.open_)
                return post_fail(self, error::not_open);
            if (const std::error_code pec = prepare())
                return post_fail(self, pec);
            return send(self);
        }
        case state::lock_wait:
            if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
                return self.complete(asio::error::operation_aborted, 0);
            if (s.close_sent_)
                return self.complete(error::closed, 0);
            return send(self);
        case state::writing:
            s.release_write();
            if (s.deflate_)
                s.deflate_->trim();
            return self.complete(ec, ec ? 0 : data.size());
        case state::posted:
            return self.complete(result, 0);
        }
    }

private:
    // Builds the frames (or, for a server's single frame, the header).
    std::error_code prepare() {
        std::span<const std::byte> payload(static_cast<const std::byte*>(data.data()), data.size());
        const bool text = type == message_type::text;
        const bool compressed = s.deflate_ != nullptr;
        const std::size_t max = s.options_.max_frame_size;
        const std::size_t count = max == 0 || payload.size() <= max ? 1 : (payload.size() + max - 1) / max;
        // A client's writer checks an unfragmented uncompressed text as it
        // masks; anything else is checked whole here.
        if (text && (s.side_ == role::server || compressed || count > 1) &&
            !is_valid_utf8({static_cast<const char*>(data.data()), data.size()}))
            return error::invalid_utf8_to_send;
        if (compressed) {
            s.deflate_->compress(payload);
            payload = std::as_bytes(std::span(s.deflate_->compressed));
        }
        const std::size_t n = max == 0 || payload.size() <= max ? 1 : (payload.size() + max - 1) / max;
        const opcode first = text ? opcode::text : opcode::binary;
        if (s.side_ == role::server && n == 1) {
            // The common case: no allocation.
            frame_header h;
            h.op = first;
            h.compressed = compressed;
            h.payload_length = payload.size();
            single = {asio::buffer(s.wheader_.data(), write_header(h, s.wheader_)),
                      asio::buffer(payload.data(), payload.size())};
            return {};
        }
        if (s.side_ == role::server) {
            headers.resize(n);
            buffers.reserve(2 * n);
        } else {
            frames.reserve(n);
            buffers.reserve(n);
        }
        for (std::size_t i = 0; i < n; ++i) {
            const std::span<const std::byte> part =
                n == 1 ? payload : payload.subspan(i * max, std::min(max, payload.size() - i * max));
            const frame_spec spec{i == 0 ? first : opcode::continuation, i + 1 == n, compressed && i == 0};
            if (s.side_ == role::server) {
                frame_header h;
                h.op = spec.op;
                h.fin = spec.fin;
                h.compressed = spec.compressed;
                h.payload_length = part.size();
                buffers.push_back(asio::buffer(headers[i].data(), write_header(h, headers[i])));
                buffers.push_back(asio::buffer(part.data(), part.size()));
            } else {
                std::error_code ec;
                frames.push_back(s.writer_.frame(spec, part, ec));
                if (ec)
                    return ec;
                buffers.push_back(frames.back()->buffer());
            }
        }
        return {};
    }

    template <class Self>
    void post_fail(Self& self, std::error_code ec) {
        result = ec;
        state_ = state::posted;
        asio::post(std::move(self));
    }

    template <class Self>
    void send(Self& self) {
        if (s.writing_) {
            state_ = state::lock_wait;
            return s.write_waiters_.async_wait(std::move(self));
        }
        s.writing_ = true;
        state_ = state::writing;
        if (buffers.empty())
            return asio::async_write(s.next_layer_, single, std::move(self));
        asio::async_write(s.next_layer_, buffers, std::move(self));
    }
};

// async_ping and async_close: a control frame, and for a close the wait
// for the peer's.
template <class Stream>
struct control_op {
    Stream& s;
    message_ptr frame;
    bool is_close;
    std::error_code result{};
    std::shared_ptr<watchdog> dog{};
    enum class state { start, lock_wait, writing, close_wait, reading, teardown, posted } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t n = 0) {
        switch (state_) {
        case state::start:
            if (result || !frame)
                return post_complete(self);
            if (is_close) {
                if (!s.open_ || s.close_sent_ || s.torn_down_)
                    return post_complete(self); // already closed or closing
                s.close_sent_ = true;
            } else if (!s.open_ || s.close_sent_ || s.close_received_) {
                result = s.close_sent_ || s.close_received_ ? error::closed : error::not_open;
                return post_complete(self);
            }
            return send(self);
        case state::lock_wait:
            if (self.get_cancellation_state().cancelled() != asio::cancellation_type::none)
                return self.complete(asio::error::operation_aborted);
            return send(self);
        case state::writing:
            s.release_write();
            frame.reset();
            if (ec || !is_close) {
                if (ec && is_close) {
                    close_socket(s);
                    s.open_ = false;
                }
                return self.complete(ec);
            }
            if (s.torn_down_ || !s.open_)
                return self.complete(std::error_code{}); // the read ended it
            if (s.reading_) {
                // The read in progress will see the peer's close.
                state_ = state::close_wait;
                s.close_waiter_.expires_after(s.options_.close_timeout);
                return s.close_waiter_.async_wait(std::move(self));
            }
            if (s.close_received_)
                return teardown(self);
            dog = start_watchdog(s.next_layer_.lowest_layer(), s.options_.close_timeout);
            return process(self);
        case state::close_wait:
            if (!ec && !s.close_received_ && s.reading_) {
                // The deadline passed: drop the connection; the read
                // completes with error::closed.
                close_socket(s);
                s.open_ = false;
                return self.complete(parley::error::timed_out);
            }
            return self.complete(std::error_code{});
        case state::reading:
            if (ec) {
                result = stop_watchdog(dog) ? std::error_code(parley::error::timed_out)
                                            : std::error_code(error::no_close_frame);
                close_socket(s);
                s.open_ = false;
                return self.complete(result);
            }
            s.reader_.feed(std::span<std::byte>(s.rbuf_.data(), n));
            return process(self);
        case state::teardown:
        case state::posted:
            return self.complete(result);
        }
    }

private:
    template <class Self>
    void post_complete(Self& self) {
        state_ = state::posted;
        asio::post(std::move(self));
    }

    template <class Self>
    void send(Self& self) {
        if (s.writing_) {
            state_ = state::lock_wait;
            return s.write_waiters_.async_wait(std::move(self));
        }
        s.writing_ = true;
        state_ = state::writing;
        asio::async_write(s.next_layer_, frame->buffer(), std::move(self));
    }

    // No read in progress: read here until the peer's close, discarding
    // data (the caller is closing).
    template <class Self>
    void process(Self& self) {
        for (;;) {
            std::error_code ec;
            const event ev = s.reader_.next(ec);
            if (ec) {
                stop_watchdog(dog);
                result = ec;
                return teardown(self);
            }
            if (!ev) {
                if (s.pending_ != 0) {
                    s.reader_.feed(std::span<std::byte>(s.rbuf_.data(), s.pending_));
                    s.pending_ = 0;
                    continue;
                }
                state_ = state::reading;
                return s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()),
                                                     std::move(self));
            }
            if (ev.kind == event_kind::pong)
                ++s.pongs_;
            if (ev.kind == event_kind::close) {
                s.close_received_ = true;
                s.peer_close_ = {ev.code, std::string(ev.reason)};
                stop_watchdog(dog);
                return teardown(self);
            }
        }
    }

    template <class Self>
    void teardown(Self& self) {
        state_ = state::teardown;
        async_teardown(s, std::move(self));
    }
};

} // namespace detail
} // namespace parley::websocket

#endif
