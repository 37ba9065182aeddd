// parley internals: framed_stream::async_read_some_input's operation.
#ifndef PARLEY_DETAIL_FRAMED_INPUT_OP_HPP
#define PARLEY_DETAIL_FRAMED_INPUT_OP_HPP

#include <parley/detail/socket_io.hpp>

#include <asio/buffer.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>

#include <cstddef>
#include <span>
#include <system_error>
#include <utility>

namespace parley::detail {

// Reads whatever the next layer has into the stream's buffer, for
// buffered_input(): framed_read_op's I/O without the frame parsing.
// Free space after the bytes held; a buffer they fill doubles (a decoder
// waiting for the rest of a message bounds how far).
template <class Buffer>
std::span<std::byte> next_input_space(Buffer& b) {
    const std::size_t held = b.size();
    return b.prepare(held != 0 && held >= b.capacity() ? 2 * held : 0);
}

template <class Stream>
struct framed_input_op {
    Stream& stream;
    enum class state { start, posted, reading, waiting } state_ = state::start;
    std::size_t requested_ = 0;
    std::error_code result_ec_{};
    std::size_t result_ = 0;

    template <class Self>
    void operator()(Self& self) {
        if (state_ == state::posted)
            return self.complete(result_ec_, result_);
        stream.release_delivered();
        if constexpr (detail::waitable_socket<typename Stream::next_layer_type>) {
            if (stream.waits_unbuffered()) {
                // As framed_read_op: try at once, else wait for readiness
                // without holding a buffer.
                if (!stream.try_now())
                    return wait(self);
                std::error_code ec;
                auto space = next_input_space(stream.buffer_);
                const std::size_t n = detail::receive_now(stream.next_layer_, space, ec);
                stream.tried_now(!detail::would_block(ec));
                if (detail::would_block(ec)) {
                    stream.buffer_.release_if_empty();
                    return wait(self);
                }
                return received(self, ec, n, space.size(), true);
            }
        }
        auto space = next_input_space(stream.buffer_);
        requested_ = space.size();
        state_ = state::reading;
        stream.next_layer_.async_read_some(asio::buffer(space.data(), space.size()),
                                           std::move(self));
    }

    // Resume after async_wait: the socket is readable.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (ec)
            return self.complete(ec, std::size_t{0});
        auto space = next_input_space(stream.buffer_);
        const std::size_t n = detail::receive_now(stream.next_layer_, space, ec);
        if (detail::would_block(ec)) { // spurious wake-up
            stream.buffer_.release_if_empty();
            return wait(self);
        }
        received(self, ec, n, space.size(), false);
    }

    // Resume after async_read_some, or after complete_soon() on a plain
    // socket (its zero-length read).
    template <class Self>
    void operator()(Self& self, std::error_code ec, std::size_t n) {
        if (state_ == state::posted)
            return self.complete(result_ec_, result_);
        received(self, ec, n, requested_, false);
    }

private:
    template <class Self>
    void received(Self& self, std::error_code ec, std::size_t n, std::size_t requested,
                  bool initiating) {
        stream.buffer_.commit(n);
        stream.may_have_more_ = !ec && n == requested;
        stream.buffer_.release_if_empty();
        if (!initiating)
            return self.complete(ec, n);
        state_ = state::posted;
        result_ec_ = ec;
        result_ = n;
        detail::complete_soon(stream.next_layer_, asio::socket_base::wait_read, std::move(self));
    }

    template <class Self>
    void wait(Self& self) {
        // Nothing is buffered (or the frame in progress stays): give an
        // empty block back, so a connection that goes idle holds none.
        stream.buffer_.release_if_empty();
        state_ = state::waiting;
        stream.next_layer_.async_wait(asio::socket_base::wait_read, std::move(self));
    }
};

} // namespace parley::detail

#endif
