// parley: tcp_socket bodies: options, shutdown, close, endpoints and error texts.
#ifndef PARLEY_NET_IMPL_TCP_SOCKET_OPTIONS_HPP
#define PARLEY_NET_IMPL_TCP_SOCKET_OPTIONS_HPP

#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>

namespace parley {

namespace detail {

inline asio::socket_base::shutdown_type to_asio(shutdown_type what) noexcept {
    switch (what) {
    case shutdown_type::send:
        return asio::socket_base::shutdown_send;
    case shutdown_type::receive:
        return asio::socket_base::shutdown_receive;
    case shutdown_type::both:
        break;
    }
    return asio::socket_base::shutdown_both;
}

} // namespace detail

// Options and state ----------------------------------------------------------

inline void tcp_socket::set_max_payload(std::uint64_t limit, std::error_code& ec) noexcept {
    if (limit > codec_type::format.max_expressible()) {
        ec = error::invalid_argument;
        return;
    }
    ec.clear();
    codec_.max_payload(limit);
}

inline void tcp_socket::set_max_payload(std::uint64_t limit) { codec_.max_payload(limit); }

inline void tcp_socket::set_nodelay(bool on, std::error_code& ec) {
    socket_.set_option(asio::ip::tcp::no_delay(on), ec);
}

inline void tcp_socket::set_nodelay(bool on) {
    std::error_code ec;
    set_nodelay(on, ec);
    if (ec)
        throw std::system_error(ec, "could not set TCP_NODELAY" + peer_text("on the connection to"));
}

inline void tcp_socket::shutdown(shutdown_type what, std::error_code& ec) {
    socket_.shutdown(detail::to_asio(what), ec);
}

inline void tcp_socket::shutdown(shutdown_type what) {
    std::error_code ec;
    shutdown(what, ec);
    if (ec)
        throw std::system_error(ec, "could not shut down the connection" + peer_text("to"));
}

inline void tcp_socket::close(std::error_code& ec) {
    ec.clear();
    if (socket_.is_open())
        socket_.close(ec);
    buffer_ = detail::read_buffer(read_chunk);
    remote_.reset();
}

inline void tcp_socket::close() {
    const std::string peer = peer_text("to");
    std::error_code ec;
    close(ec);
    if (ec)
        throw std::system_error(ec, "could not close the connection" + peer);
}

inline tcp_socket::endpoint_type tcp_socket::local_endpoint(std::error_code& ec) const {
    return socket_.local_endpoint(ec);
}

inline tcp_socket::endpoint_type tcp_socket::local_endpoint() const {
    std::error_code ec;
    auto endpoint = local_endpoint(ec);
    if (ec)
        throw std::system_error(ec, "could not get the socket's local address");
    return endpoint;
}

inline tcp_socket::endpoint_type tcp_socket::remote_endpoint(std::error_code& ec) const {
    if (!socket_.is_open()) {
        ec = asio::error::bad_descriptor;
        return {};
    }
    if (remote_) {
        ec.clear();
        return *remote_;
    }
    return socket_.remote_endpoint(ec);
}

inline tcp_socket::endpoint_type tcp_socket::remote_endpoint() const {
    std::error_code ec;
    auto endpoint = remote_endpoint(ec);
    if (ec)
        throw std::system_error(ec, "could not get the socket's peer address");
    return endpoint;
}

inline std::string tcp_socket::peer_text(const char* preposition) const {
    if (!remote_)
        return {};
    return std::string(" ") + preposition + " " + detail::endpoint_string(*remote_);
}

inline void tcp_socket::throw_error(std::error_code ec, const std::string& doing,
                                    std::chrono::nanoseconds timeout) const {
    std::string what = doing;
    if (ec == error::frame_too_large)
        what += ": " + describe_oversize_frame(announced_, codec_.max_payload());
    else if (ec == error::timed_out)
        what += " (timeout " + detail::describe_timeout(timeout) + ")";
    else if (ec == asio::error::eof)
        what += ": the peer closed the connection";
    throw std::system_error(ec, what);
}

} // namespace parley

#endif
