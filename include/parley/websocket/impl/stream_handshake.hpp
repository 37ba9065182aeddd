// parley: websocket::stream's opening handshakes (both sides) and the end
// of a connection (teardown), with their deadlines. Included by
// impl/stream.hpp.
#ifndef PARLEY_WEBSOCKET_IMPL_STREAM_HANDSHAKE_HPP
#define PARLEY_WEBSOCKET_IMPL_STREAM_HANDSHAKE_HPP

#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>

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
    std::optional<deflate_params> deflate{};
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
            deflate = hs.deflate;
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
            s.opened(role::server, deflate);
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
            s.opened(role::client, hs->deflate());
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

} // namespace detail
} // namespace parley::websocket

#endif
