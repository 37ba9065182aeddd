// parley: session bodies: read_with()'s read loop.
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
    stream_.async_read_some_input(
        [self = this->shared_from_this()](std::error_code ec, std::size_t) { self->on_input(ec); });
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

} // namespace parley

#endif
