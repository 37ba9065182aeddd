// parley: tcp_socket bodies: sending and receiving bytes and frames.
#ifndef PARLEY_NET_IMPL_TCP_SOCKET_IO_HPP
#define PARLEY_NET_IMPL_TCP_SOCKET_IO_HPP

#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>

#include <algorithm>
#include <array>

namespace parley {

namespace detail {

// Consumes `n` bytes from the front of a buffer sequence.
inline void advance(std::span<asio::const_buffer>& buffers, std::size_t n) noexcept {
    while (n != 0 && !buffers.empty()) {
        asio::const_buffer& front = buffers.front();
        if (n >= front.size()) {
            n -= front.size();
            buffers = buffers.subspan(1);
        } else {
            front += n;
            n = 0;
        }
    }
}

} // namespace detail

// Sending --------------------------------------------------------------------

inline std::size_t tcp_socket::send_buffers(std::span<asio::const_buffer> buffers,
                                            const detail::deadline& limit, std::error_code& ec) {
    ec.clear();
    if (!socket_.is_open()) {
        ec = asio::error::bad_descriptor;
        return 0;
    }
    std::size_t sent = 0;
    for (;;) {
        while (!buffers.empty() && buffers.front().size() == 0)
            buffers = buffers.subspan(1);
        if (buffers.empty())
            return sent;
        const std::size_t n =
            socket_.send(std::span<const asio::const_buffer>(buffers), 0, ec);
        if (!ec) {
            sent += n;
            detail::advance(buffers, n);
            continue;
        }
        if (!detail::would_block(ec))
            return sent;
        detail::wait_ready(socket_.native_handle(), detail::wait_for::write, limit, ec);
        if (ec)
            return sent;
    }
}

inline std::size_t tcp_socket::send(byte_view data, std::chrono::nanoseconds timeout,
                                    std::error_code& ec) {
    std::array<asio::const_buffer, 1> buffers{asio::buffer(data.data(), data.size())};
    return send_buffers(buffers, detail::deadline::after(timeout), ec);
}

inline std::size_t tcp_socket::send(byte_view data, std::error_code& ec) {
    return send(data, timeout_, ec);
}

inline std::size_t tcp_socket::send(byte_view data, std::chrono::nanoseconds timeout) {
    std::error_code ec;
    const std::size_t sent = send(data, timeout, ec);
    if (ec)
        throw_error(ec, "sending" + peer_text("to"), timeout);
    return sent;
}

inline std::size_t tcp_socket::send(byte_view data) { return send(data, timeout_); }

inline void tcp_socket::send_frame(byte_view payload, std::chrono::nanoseconds timeout,
                                   std::error_code& ec) {
    const auto header = codec_.encode_header(payload.size(), ec);
    if (ec) {
        announced_ = payload.size();
        return;
    }
    std::array<asio::const_buffer, 2> buffers{asio::buffer(header),
                                              asio::buffer(payload.data(), payload.size())};
    send_buffers(buffers, detail::deadline::after(timeout), ec);
}

inline void tcp_socket::send_frame(byte_view payload, std::error_code& ec) {
    send_frame(payload, timeout_, ec);
}

inline void tcp_socket::send_frame(byte_view payload, std::chrono::nanoseconds timeout) {
    std::error_code ec;
    send_frame(payload, timeout, ec);
    if (ec)
        throw_error(ec, "sending a frame" + peer_text("to"), timeout);
}

inline void tcp_socket::send_frame(byte_view payload) { send_frame(payload, timeout_); }

// Receiving ------------------------------------------------------------------

inline void tcp_socket::fill(std::size_t frame_size, const detail::deadline& limit,
                             std::error_code& ec) {
    for (;;) {
        const auto space = buffer_.prepare(frame_size);
        const std::size_t n = socket_.receive(asio::buffer(space.data(), space.size()), 0, ec);
        if (!ec) {
            buffer_.commit(n);
            return;
        }
        // Hand an empty buffer back to the pool while waiting, so an idle
        // connection holds none.
        buffer_.release_if_empty();
        if (!detail::would_block(ec))
            return;
        detail::wait_ready(socket_.native_handle(), detail::wait_for::read, limit, ec);
        if (ec)
            return;
    }
}

inline std::string tcp_socket::recv(std::size_t max, std::chrono::nanoseconds timeout,
                                    std::error_code& ec) {
    ec.clear();
    if (max == 0) {
        ec = error::invalid_argument;
        return {};
    }
    if (!socket_.is_open()) {
        ec = asio::error::bad_descriptor;
        return {};
    }
    if (buffer_.empty()) {
        fill(0, detail::deadline::after(timeout), ec);
        if (ec == asio::error::eof)
            ec.clear();
        if (ec || buffer_.empty())
            return {};
    }
    const auto data = buffer_.data();
    const std::size_t n = std::min(max, data.size());
    std::string out(reinterpret_cast<const char*>(data.data()), n);
    buffer_.consume(n);
    buffer_.shrink_if_empty();
    return out;
}

inline std::string tcp_socket::recv(std::size_t max, std::error_code& ec) {
    return recv(max, timeout_, ec);
}

inline std::string tcp_socket::recv(std::size_t max, std::chrono::nanoseconds timeout) {
    std::error_code ec;
    std::string data = recv(max, timeout, ec);
    if (ec)
        throw_error(ec, "receiving" + peer_text("from"), timeout);
    return data;
}

inline std::string tcp_socket::recv(std::size_t max) { return recv(max, timeout_); }

// frame_decoder is not used here: recv() must be able to hand out bytes
// buffered past a frame, which frame_decoder keeps private, and a socket
// that owns its buffer can let the frame being assembled grow it in place.
// The limit checks and length decoding are frame_codec's, as everywhere.
inline std::string tcp_socket::recv_frame(std::chrono::nanoseconds timeout,
                                          std::error_code& ec) {
    ec.clear();
    if (!socket_.is_open()) {
        ec = asio::error::bad_descriptor;
        return {};
    }
    const auto limit = detail::deadline::after(timeout);
    for (;;) {
        const auto data = buffer_.data();
        const std::size_t size = codec_.frame_size(data, ec, &announced_);
        if (ec)
            return {};
        if (size != 0 && data.size() >= size) {
            const auto payload = data.subspan(codec_type::header_size, size - codec_type::header_size);
            std::string out(reinterpret_cast<const char*>(payload.data()), payload.size());
            buffer_.consume(size);
            buffer_.shrink_if_empty();
            return out;
        }
        fill(size, limit, ec);
        if (ec) {
            if (ec == asio::error::eof && !buffer_.empty())
                ec = error::truncated_frame;
            return {};
        }
    }
}

inline std::string tcp_socket::recv_frame(std::error_code& ec) { return recv_frame(timeout_, ec); }

inline std::string tcp_socket::recv_frame(std::chrono::nanoseconds timeout) {
    std::error_code ec;
    std::string payload = recv_frame(timeout, ec);
    if (ec)
        throw_error(ec, "receiving a frame" + peer_text("from"), timeout);
    return payload;
}

inline std::string tcp_socket::recv_frame() { return recv_frame(timeout_); }

} // namespace parley

#endif
