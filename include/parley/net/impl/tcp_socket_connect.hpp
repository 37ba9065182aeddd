// parley: tcp_socket bodies: construction, adoption and connecting.
#ifndef PARLEY_NET_IMPL_TCP_SOCKET_CONNECT_HPP
#define PARLEY_NET_IMPL_TCP_SOCKET_CONNECT_HPP

#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>

#include <algorithm>
#include <utility>
#include <vector>

namespace parley {

// --- tcp_socket ---------------------------------------------------------------

inline tcp_socket::tcp_socket() : socket_(detail::blocking_context()) {}

inline tcp_socket::tcp_socket(adopt_tag, asio::ip::tcp::socket&& socket) noexcept
    : socket_(std::move(socket)) {}

inline tcp_socket::tcp_socket(asio::ip::tcp::socket&& socket) : tcp_socket() {
    std::error_code ec;
    *this = adopt(std::move(socket), std::nullopt, ec);
    if (ec)
        throw std::system_error(ec, "could not adopt the socket");
}

inline tcp_socket tcp_socket::adopt(asio::ip::tcp::socket&& socket,
                                    std::optional<endpoint_type> peer, std::error_code& ec) {
    tcp_socket result(adopt_tag{}, std::move(socket));
    result.socket_.non_blocking(true, ec);
    if (ec) {
        std::error_code ignored;
        result.socket_.close(ignored);
        return result;
    }
    // A failure here means the connection has already failed; its first
    // send or receive reports that with a clearer error than this would.
    std::error_code ignored;
    result.socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (!peer) {
        const auto queried = result.socket_.remote_endpoint(ignored);
        if (!ignored)
            peer = queried;
    }
    result.remote_ = peer;
    return result;
}

inline tcp_socket tcp_socket::connect_one(const endpoint_type& peer,
                                          const detail::deadline& limit, std::error_code& ec) {
    asio::ip::tcp::socket socket(detail::blocking_context());
    socket.open(peer.protocol(), ec);
    if (!ec)
        socket.non_blocking(true, ec);
    if (!ec)
        detail::connect_within(socket, peer, limit, ec);
    if (ec)
        return tcp_socket();
    return adopt(std::move(socket), peer, ec);
}

inline tcp_socket tcp_socket::connect_impl(std::string_view host, std::uint16_t port,
                                           std::chrono::nanoseconds timeout,
                                           std::error_code& ec, std::string* what) {
    const auto limit = detail::deadline::after(timeout);
    const std::string target = detail::host_port_string(host, port);

    asio::ip::tcp::resolver resolver(detail::blocking_context());
    const auto results = resolver.resolve(host, std::to_string(port),
                                          asio::ip::resolver_base::numeric_service, ec);
    if (ec) {
        if (what)
            *what = "could not connect to " + target + ": name resolution failed";
        return tcp_socket();
    }
    std::vector<endpoint_type> peers;
    for (const auto& entry : results)
        if (std::find(peers.begin(), peers.end(), entry.endpoint()) == peers.end())
            peers.push_back(entry.endpoint());
    if (peers.empty()) {
        ec = asio::error::host_not_found;
        if (what)
            *what = "could not connect to " + target + ": the name has no address";
        return tcp_socket();
    }

    std::string tried;
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (i != 0 && limit.remaining() == std::chrono::nanoseconds::zero()) {
            ec = error::timed_out;
            break;
        }
        // Split what is left between the addresses not yet tried.
        const auto share = limit.is_never()
                               ? limit
                               : detail::deadline::after(limit.remaining() /
                                                         static_cast<long>(peers.size() - i));
        tcp_socket socket = connect_one(peers[i], share, ec);
        if (!ec)
            return socket;
        if (!tried.empty())
            tried += ", ";
        tried += detail::endpoint_string(peers[i]) + " (" + ec.message() + ")";
    }
    if (what) {
        *what = "could not connect to " + target;
        if (ec == error::timed_out)
            *what += " within " + detail::describe_timeout(timeout);
        *what += "; tried " + tried;
    }
    return tcp_socket();
}

inline tcp_socket tcp_socket::connect(std::string_view host, std::uint16_t port,
                                      std::chrono::nanoseconds timeout, std::error_code& ec) {
    return connect_impl(host, port, timeout, ec, nullptr);
}

inline tcp_socket tcp_socket::connect(std::string_view host, std::uint16_t port,
                                      std::error_code& ec) {
    return connect_impl(host, port, no_timeout, ec, nullptr);
}

inline tcp_socket tcp_socket::connect(std::string_view host, std::uint16_t port,
                                      std::chrono::nanoseconds timeout) {
    std::error_code ec;
    std::string what;
    tcp_socket socket = connect_impl(host, port, timeout, ec, &what);
    if (ec)
        throw std::system_error(ec, what);
    return socket;
}

inline tcp_socket tcp_socket::connect(const endpoint_type& peer, std::chrono::nanoseconds timeout,
                                      std::error_code& ec) {
    return connect_one(peer, detail::deadline::after(timeout), ec);
}

inline tcp_socket tcp_socket::connect(const endpoint_type& peer, std::error_code& ec) {
    return connect_one(peer, detail::deadline::never(), ec);
}

inline tcp_socket tcp_socket::connect(const endpoint_type& peer,
                                      std::chrono::nanoseconds timeout) {
    std::error_code ec;
    tcp_socket socket = connect(peer, timeout, ec);
    if (ec) {
        std::string what = "could not connect to " + detail::endpoint_string(peer);
        if (ec == error::timed_out)
            what += " within " + detail::describe_timeout(timeout);
        throw std::system_error(ec, what);
    }
    return socket;
}

} // namespace parley

#endif
