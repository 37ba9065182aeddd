// parley: session bodies: read_with()'s read loop, the graceful and
// lingering close.
#ifndef PARLEY_HUB_IMPL_SESSION_HPP
#define PARLEY_HUB_IMPL_SESSION_HPP

namespace parley {

template <class Stream>
void session<Stream>::read_input() {
    if (!is_open()) // closing: what the peer sends now would not be answered
        return;
    if (undecoded_) // posted: a decoder that holds at every message must not recurse
        return post_pooled([self = this->shared_from_this()] {
            if (!self->closed_)
                self->on_input({});
        });
    read_pending_ = true;
    stream_.async_read_some_input([self = this->shared_from_this()](std::error_code ec, std::size_t) {
        self->read_pending_ = false;
        if (self->lingering_)
            return self->linger_read(ec);
        self->on_input(ec);
    });
}

template <class Stream>
void session<Stream>::on_input(std::error_code ec) {
    if (closed_)
        return;
    read_action next = read_action::more;
    {
        detail::reading_scope publishing(this);
        decoding_ = true;
        undecoded_ = false;
        if (!ec) {
            for (;;) {
                const input_view bytes = stream_.buffered_input();
                const decode_result r = decoder_->decode(*this, bytes);
                const std::size_t used = std::min(r.consumed, bytes.size());
                stream_.consume_input(used);
                next = r.next;
                if (next != read_action::more || used == 0 || used == bytes.size() || closed_) {
                    undecoded_ = next == read_action::hold && used != 0 && used < bytes.size();
                    break;
                }
            }
        } else {
            decoder_->finish(*this, stream_.buffered_input(), ec);
            stream_.consume_input(stream_.buffered_input().size());
        }
        decoding_ = false;
    }
    if (closed_) {
        decoder_.reset();
        return;
    }
    if (ec) {
        if (ec != asio::error::eof)
            shut(ec);
        return;
    }
    if (next == read_action::stop || !is_open())
        return;
    if (next == read_action::hold)
        hold_reading();
    continue_reading();
}

// After close(), once everything queued is written.
template <class Stream>
void session<Stream>::end_gracefully() {
    using end = detail::graceful_end<typename stream_type::next_layer_type>;
    if constexpr (end::needed) {
        {
            detail::optional_lock lock(mutex_);
            if (writing_ || closed_)
                return;
            writing_ = true; // nothing else may write meanwhile
        }
        // close_notify written, the session lingers as over a plain socket:
        // reads (still decrypted) go on until the peer's close_notify or end.
        end::async_end(stream_.next_layer(),
                       [self = this->shared_from_this()](std::error_code ec) {
                           self->shut(error::session_closed, !ec && self->linger_.count() > 0);
                       });
    } else {
        shut(error::session_closed, linger_.count() > 0);
    }
}

// Shuts the sending side (the peer reads everything, then end of stream)
// and drains the peer until it closes too or the linger time is over.
// False when the socket cannot be shut that way.
template <class Stream>
bool session<Stream>::start_linger() {
    auto& socket = lowest_layer(stream_.next_layer());
    if constexpr (requires(std::error_code& ec) {
                      socket.shutdown(asio::socket_base::shutdown_send, ec);
                      socket.close(ec);
                  }) {
        std::error_code ec;
        socket.shutdown(asio::socket_base::shutdown_send, ec);
        if (ec)
            return false;
        lingering_ = true;
        auto& t = rare_timers();
        t.linger.emplace(get_executor(), linger_);
        t.linger->async_wait([self = this->shared_from_this()](std::error_code) {
            if (self->lingering_)
                self->close_socket(); // the pending read ends with an error
        });
        // Posted: shut() may run inside a decoder's call, whose view of
        // the read buffer must stay valid until it returns. A read in
        // progress drains on when it completes.
        post_pooled([self = this->shared_from_this()] {
            if (self->lingering_ && !self->read_pending_)
                self->linger_read({});
        });
        return true;
    } else {
        return false;
    }
}

template <class Stream>
void session<Stream>::linger_read(std::error_code ec) {
    constexpr std::size_t max_lingered_bytes = std::size_t{4} << 20;
    stream_.consume_input(stream_.buffered_input().size());
    if (ec || !lingering_ || timers_->lingered_bytes > max_lingered_bytes)
        return close_socket();
    read_pending_ = true;
    stream_.async_read_some_input([self = this->shared_from_this()](std::error_code rec, std::size_t n) {
        self->read_pending_ = false;
        self->timers_->lingered_bytes += n;
        self->linger_read(rec);
    });
}

template <class Stream>
void session<Stream>::close_socket() {
    lingering_ = false;
    if (timers_ && timers_->linger)
        timers_->linger->cancel();
    std::error_code ignored;
    auto& socket = lowest_layer(stream_.next_layer());
    if constexpr (requires { socket.shutdown(asio::socket_base::shutdown_both, ignored); })
        socket.shutdown(asio::socket_base::shutdown_both, ignored);
    if constexpr (requires { socket.close(ignored); })
        socket.close(ignored);
}

} // namespace parley

#endif
