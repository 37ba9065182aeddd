// parley: websocket::stream's composed operations.
#ifndef PARLEY_WEBSOCKET_IMPL_STREAM_HPP
#define PARLEY_WEBSOCKET_IMPL_STREAM_HPP

#include <parley/utf8.hpp>

#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>

namespace parley::websocket {
namespace detail {

// A deadline on one phase (handshake, close): when it passes, the socket's
// operations are cancelled. The wake-up only touches the socket while the
// phase is still running (the stream must outlive the operation, not the
// timer's late wake-up).
struct watchdog {
    explicit watchdog(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool expired = false;
    bool done = false;
};

template <class Socket>
std::shared_ptr<watchdog> start_watchdog(Socket& socket, std::chrono::milliseconds timeout) {
    if (timeout.count() <= 0)
        return nullptr;
    auto w = std::make_shared<watchdog>(socket.get_executor());
    w->timer.expires_after(timeout);
    w->timer.async_wait([w, &socket](std::error_code ec) {
        if (ec || w->done)
            return;
        w->expired = true;
        std::error_code ignored;
        socket.cancel(ignored);
    });
    return w;
}

// Stops the watchdog; true if it had expired.
inline bool stop_watchdog(std::shared_ptr<watchdog>& w) noexcept {
    if (!w)
        return false;
    w->done = true;
    w->timer.cancel();
    const bool expired = w->expired;
    w.reset();
    return expired;
}

template <class Stream>
void close_socket(Stream& s) noexcept {
    std::error_code ignored;
    s.next_layer().lowest_layer().close(ignored);
}

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

// Ends the connection: half-closes it, reads and discards what the peer
// still sends until it closes too (closing with unread bytes would reset
// the connection and could destroy the close frame just sent), at most
// options().close_timeout, then closes the socket. Waits for a frame
// being written to be written whole first.
template <class Stream>
struct teardown_op {
    Stream& s;
    std::shared_ptr<watchdog> dog{};
    enum class state { start, lock_wait, draining, posted } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t = 0) {
        switch (state_) {
        case state::start:
            if (s.torn_down_) {
                state_ = state::posted;
                return asio::post(std::move(self));
            }
            s.torn_down_ = true;
            [[fallthrough]];
        case state::lock_wait:
            if (s.writing_) {
                state_ = state::lock_wait;
                return s.write_waiters_.async_wait(std::move(self));
            }
            {
                std::error_code ignored;
                s.next_layer_.lowest_layer().shutdown(asio::socket_base::shutdown_send, ignored);
            }
            dog = start_watchdog(s.next_layer_.lowest_layer(), s.options_.close_timeout);
            if (s.rbuf_.empty())
                s.rbuf_.resize(4096);
            state_ = state::draining;
            return s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()),
                                                 std::move(self));
        case state::draining:
            if (!ec)
                return s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()),
                                                     std::move(self));
            stop_watchdog(dog);
            close_socket(s);
            s.open_ = false;
            return self.complete(std::error_code{});
        case state::posted:
            return self.complete(std::error_code{});
        }
    }
};

template <class Stream, class Self>
void async_teardown(Stream& s, Self&& self) {
    asio::async_compose<Self, void(std::error_code)>(teardown_op<Stream>{s}, self, s.next_layer());
}

// Server side of the opening handshake.
template <class Stream>
struct accept_op {
    Stream& s;
    server_options options;
    bool prepared = false; // the request was parsed by the caller; the answer is ready
    std::unique_ptr<http::request_parser> parser{};
    std::shared_ptr<watchdog> dog{};
    std::error_code result{};
    std::string subprotocol{};
    enum class state { start, reading, writing, teardown } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t n = 0) {
        switch (state_) {
        case state::start:
            dog = start_watchdog(s.next_layer_.lowest_layer(), s.options_.handshake_timeout);
            if (prepared)
                return write_answer(self);
            parser = std::make_unique<http::request_parser>();
            s.rbuf_.resize(std::max<std::size_t>(s.options_.read_chunk, 1024));
            return read(self);
        case state::reading: {
            if (ec)
                return fail(self, ec);
            std::error_code parse_ec;
            const std::string_view bytes(reinterpret_cast<const char*>(s.rbuf_.data()), n);
            const std::size_t used = parser->feed(bytes, parse_ec);
            if (parse_ec) {
                result = parse_ec;
                s.handshake_out_ = http::error_response(parse_ec);
                return write_answer(self);
            }
            if (!parser->done())
                return read(self);
            auto hs = accept_upgrade(*parser, options);
            result = hs.error;
            s.handshake_out_ = std::move(hs.response);
            subprotocol = std::move(hs.subprotocol);
            // Bytes after the head are the first WebSocket bytes.
            std::memmove(s.rbuf_.data(), s.rbuf_.data() + used, n - used);
            s.pending_ = n - used;
            return write_answer(self);
        }
        case state::writing:
            s.handshake_out_.clear();
            s.handshake_out_.shrink_to_fit();
            if (ec)
                return fail(self, ec);
            if (result) {
                stop_watchdog(dog);
                state_ = state::teardown;
                return async_teardown(s, std::move(self));
            }
            stop_watchdog(dog);
            s.subprotocol_ = std::move(subprotocol);
            s.opened(role::server);
            return self.complete(std::error_code{});
        case state::teardown:
            return self.complete(result);
        }
    }

private:
    template <class Self>
    void read(Self& self) {
        state_ = state::reading;
        s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()), std::move(self));
    }
    template <class Self>
    void write_answer(Self& self) {
        state_ = state::writing;
        asio::async_write(s.next_layer_, asio::buffer(s.handshake_out_), std::move(self));
    }
    template <class Self>
    void fail(Self& self, std::error_code ec) {
        if (stop_watchdog(dog))
            ec = parley::error::timed_out;
        close_socket(s);
        self.complete(ec);
    }
};

// Client side of the opening handshake.
template <class Stream>
struct client_handshake_op {
    Stream& s;
    std::unique_ptr<client_handshake> hs;
    std::shared_ptr<watchdog> dog{};
    enum class state { start, writing, reading } state_ = state::start;

    template <class Self>
    void operator()(Self& self, std::error_code ec = {}, std::size_t n = 0) {
        switch (state_) {
        case state::start:
            dog = start_watchdog(s.next_layer_.lowest_layer(), s.options_.handshake_timeout);
            state_ = state::writing;
            return asio::async_write(s.next_layer_, asio::buffer(hs->request()), std::move(self));
        case state::writing:
            if (ec)
                return fail(self, ec);
            s.rbuf_.resize(std::max<std::size_t>(s.options_.read_chunk, 1024));
            return read(self);
        case state::reading: {
            if (ec)
                return fail(self, ec);
            std::error_code parse_ec;
            const std::string_view bytes(reinterpret_cast<const char*>(s.rbuf_.data()), n);
            const std::size_t used = hs->feed(bytes, parse_ec);
            if (parse_ec)
                return fail(self, parse_ec);
            if (!hs->done())
                return read(self);
            std::memmove(s.rbuf_.data(), s.rbuf_.data() + used, n - used);
            s.pending_ = n - used;
            stop_watchdog(dog);
            s.subprotocol_ = std::string(hs->subprotocol());
            s.opened(role::client);
            return self.complete(std::error_code{});
        }
        }
    }

private:
    template <class Self>
    void read(Self& self) {
        state_ = state::reading;
        s.next_layer_.async_read_some(asio::buffer(s.rbuf_.data(), s.rbuf_.size()), std::move(self));
    }
    template <class Self>
    void fail(Self& self, std::error_code ec) {
        if (stop_watchdog(dog))
            ec = parley::error::timed_out;
        close_socket(s);
        self.complete(ec);
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
            if (ec) {
                result = ec;
                if (s.close_sent_)
                    return teardown(self);
                s.close_sent_ = true;
                std::error_code ignored;
                out = s.writer_.close(s.reader_.close_code_to_send(), "", ignored);
                continue_after = false;
                return send(self);
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
            switch (ev.kind) {
            case event_kind::text:
            case event_kind::binary:
                s.got_text_ = ev.kind == event_kind::text;
                return finish(self, initiating, sink.put(ev.payload), ev.payload.size());
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
                // Echo the peer's code (RFC 6455 5.5.1); an empty close gets one.
                out = s.writer_.close(is_valid_close_code(ev.code) ? ev.code : close_code::no_status, "", ec);
                continue_after = false;
                return send(self);
            case event_kind::none:
                break;
            }
        }
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

// A user's data message.
template <class Stream>
struct write_op {
    Stream& s;
    message_type type;
    asio::const_buffer data;
    message_ptr frame{}; // a client's masked copy
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
            const std::span<const std::byte> payload(static_cast<const std::byte*>(data.data()), data.size());
            if (type == message_type::text &&
                !is_valid_utf8({static_cast<const char*>(data.data()), data.size()}))
                return post_fail(self, error::invalid_utf8_to_send);
            const opcode op = type == message_type::text ? opcode::text : opcode::binary;
            if (s.side_ == role::client) {
                frame = s.writer_.frame({op}, payload, ec);
                if (ec)
                    return post_fail(self, ec);
            }
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
            return self.complete(ec, ec ? 0 : data.size());
        case state::posted:
            return self.complete(result, 0);
        }
    }

private:
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
        if (frame)
            return asio::async_write(s.next_layer_, frame->buffer(), std::move(self));
        frame_header h;
        h.op = type == message_type::text ? opcode::text : opcode::binary;
        h.payload_length = data.size();
        const std::size_t header_size = write_header(h, s.wheader_);
        const std::array<asio::const_buffer, 2> buffers{asio::buffer(s.wheader_.data(), header_size), data};
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

template <class NextLayer>
void stream<NextLayer>::opened(role side) {
    side_ = side;
    open_ = true;
    close_sent_ = close_received_ = torn_down_ = reading_ = writing_ = false;
    peer_close_ = {};
    reader_ = message_reader({.side = side, .max_message_size = options_.max_message_size});
    writer_ = frame_writer<>(side);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_accept(const server_options& options, Token&& token) {
    server_options o = options;
    o.deflate.enabled = false; // see the file comment
    reset_for_handshake();
    return asio::async_compose<Token, handshake_signature>(detail::accept_op<stream>{*this, std::move(o)},
                                                           token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_accept(const http::request_parser& request, asio::const_buffer already_read,
                                     const server_options& options, Token&& token) {
    server_options o = options;
    o.deflate.enabled = false;
    reset_for_handshake();
    detail::accept_op<stream> op{*this, o, true};
    if (!request.done()) {
        op.result = http::error::bad_request_line;
        handshake_out_ = http::error_response(op.result);
    } else {
        auto hs = accept_upgrade(request, o);
        op.result = hs.error;
        handshake_out_ = std::move(hs.response);
        op.subprotocol = std::move(hs.subprotocol);
    }
    rbuf_.resize(std::max<std::size_t>({options_.read_chunk, already_read.size(), 1024}));
    std::memcpy(rbuf_.data(), already_read.data(), already_read.size());
    pending_ = already_read.size();
    return asio::async_compose<Token, handshake_signature>(std::move(op), token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_handshake(std::string_view host, std::string_view target, Token&& token) {
    client_options o;
    o.host = std::string(host);
    o.target = std::string(target);
    return async_handshake(std::move(o), std::forward<Token>(token));
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_handshake(client_options options, Token&& token) {
    options.deflate.enabled = false;
    reset_for_handshake();
    auto hs = std::make_unique<client_handshake>(std::move(options));
    return asio::async_compose<Token, handshake_signature>(
        detail::client_handshake_op<stream>{*this, std::move(hs)}, token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<read_signature> Token>
auto stream<NextLayer>::async_read(std::string& out, Token&& token) {
    return asio::async_compose<Token, read_signature>(
        detail::read_op<stream, detail::string_sink>{*this, detail::string_sink{&out}}, token, next_layer_);
}

template <class NextLayer>
template <class DynamicBuffer, asio::completion_token_for<read_signature> Token>
    requires asio::is_dynamic_buffer_v2<DynamicBuffer>::value
auto stream<NextLayer>::async_read(DynamicBuffer buffer, Token&& token) {
    using sink = detail::dynamic_sink<DynamicBuffer>;
    return asio::async_compose<Token, read_signature>(
        detail::read_op<stream, sink>{*this, sink{std::move(buffer)}}, token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<write_signature> Token>
auto stream<NextLayer>::async_write(message_type type, asio::const_buffer data, Token&& token) {
    return asio::async_compose<Token, write_signature>(detail::write_op<stream>{*this, type, data}, token,
                                                       next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<ping_signature> Token>
auto stream<NextLayer>::async_ping(asio::const_buffer payload, Token&& token) {
    std::error_code ec;
    message_ptr frame;
    if (open_)
        frame = writer_.ping({static_cast<const std::byte*>(payload.data()), payload.size()}, ec);
    else
        ec = close_sent_ || close_received_ ? error::closed : error::not_open;
    detail::control_op<stream> op{*this, std::move(frame), false, ec};
    return asio::async_compose<Token, ping_signature>(std::move(op), token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<close_signature> Token>
auto stream<NextLayer>::async_close(close_code code, std::string_view reason, Token&& token) {
    std::error_code ec;
    message_ptr frame;
    if (open_ && !close_sent_)
        frame = writer_.close(code, reason, ec);
    detail::control_op<stream> op{*this, std::move(frame), true, ec};
    return asio::async_compose<Token, close_signature>(std::move(op), token, next_layer_);
}

} // namespace parley::websocket

#endif
