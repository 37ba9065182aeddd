// parley: tcp_listener bodies.
#ifndef PARLEY_NET_IMPL_TCP_LISTENER_HPP
#define PARLEY_NET_IMPL_TCP_LISTENER_HPP

#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>
#include <asio/ip/v6_only.hpp>

#include <algorithm>
#include <utility>
#include <vector>

namespace parley {

// --- tcp_listener -------------------------------------------------------------

inline tcp_listener::tcp_listener() : acceptor_(detail::blocking_context()) {}

inline tcp_listener::tcp_listener(std::string_view host, std::uint16_t port, int backlog)
    : tcp_listener() {
    std::error_code ec;
    listen(host, port, backlog, ec);
    if (ec)
        throw std::system_error(ec, "could not listen on " + detail::host_port_string(host, port));
}

inline tcp_listener::tcp_listener(const endpoint_type& endpoint, int backlog) : tcp_listener() {
    std::error_code ec;
    listen(endpoint, backlog, ec);
    if (ec)
        throw std::system_error(ec, "could not listen on " + detail::endpoint_string(endpoint));
}

inline bool tcp_listener::listen_one(const endpoint_type& endpoint, int backlog, bool dual_stack,
                                     std::error_code& ec) {
    asio::ip::tcp::acceptor acceptor(detail::blocking_context());
    acceptor.open(endpoint.protocol(), ec);
    if (ec)
        return true; // no such address family here: try the next address
    if (dual_stack) {
        // Linux defaults to dual-stack, BSDs and Windows do not.
        std::error_code ignored;
        acceptor.set_option(asio::ip::v6_only(false), ignored);
    }
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (ec)
        return ec == std::errc::address_not_available ||
               ec == std::errc::address_family_not_supported;
    acceptor.listen(backlog, ec);
    if (!ec)
        acceptor.non_blocking(true, ec);
    const auto local = ec ? endpoint_type() : acceptor.local_endpoint(ec);
    if (ec)
        return false;
    acceptor_ = std::move(acceptor);
    local_ = local;
    return false;
}

inline void tcp_listener::listen(std::string_view host, std::uint16_t port, int backlog,
                                 std::error_code& ec) {
    close(ec);
    std::vector<endpoint_type> candidates;
    bool dual_stack = false;
    if (host.empty()) {
        dual_stack = true;
        candidates = {endpoint_type(asio::ip::address_v6::any(), port),
                      endpoint_type(asio::ip::address_v4::any(), port)};
    } else {
        asio::ip::tcp::resolver resolver(detail::blocking_context());
        const auto results = resolver.resolve(
            host, std::to_string(port),
            asio::ip::resolver_base::passive | asio::ip::resolver_base::numeric_service, ec);
        if (ec)
            return;
        for (const auto& entry : results)
            if (std::find(candidates.begin(), candidates.end(), entry.endpoint()) ==
                candidates.end())
                candidates.push_back(entry.endpoint());
        std::stable_partition(candidates.begin(), candidates.end(),
                              [](const endpoint_type& e) { return e.address().is_v4(); });
        if (candidates.empty()) {
            ec = asio::error::host_not_found;
            return;
        }
    }
    for (const auto& endpoint : candidates) {
        const bool try_next = listen_one(endpoint, backlog, dual_stack && endpoint.address().is_v6(), ec);
        if (!ec || !try_next)
            return;
    }
}

inline void tcp_listener::listen(std::string_view host, std::uint16_t port, std::error_code& ec) {
    listen(host, port, default_backlog, ec);
}

inline void tcp_listener::listen(const endpoint_type& endpoint, int backlog,
                                 std::error_code& ec) {
    close(ec);
    listen_one(endpoint, backlog, false, ec);
}

inline void tcp_listener::listen(const endpoint_type& endpoint, std::error_code& ec) {
    listen(endpoint, default_backlog, ec);
}

inline tcp_socket tcp_listener::accept(std::chrono::nanoseconds timeout, std::error_code& ec) {
    ec.clear();
    if (!acceptor_.is_open()) {
        ec = asio::error::bad_descriptor;
        return tcp_socket();
    }
    const auto limit = detail::deadline::after(timeout);
    for (;;) {
        asio::ip::tcp::socket socket(detail::blocking_context());
        endpoint_type peer;
        acceptor_.accept(socket, peer, ec);
        if (!ec)
            return tcp_socket::adopt(std::move(socket), peer, ec);
        if (!detail::would_block(ec))
            return tcp_socket();
        detail::wait_ready(acceptor_.native_handle(), detail::wait_for::read, limit, ec);
        if (ec)
            return tcp_socket();
    }
}

inline tcp_socket tcp_listener::accept(std::error_code& ec) { return accept(no_timeout, ec); }

inline tcp_socket tcp_listener::accept(std::chrono::nanoseconds timeout) {
    std::error_code ec;
    tcp_socket socket = accept(timeout, ec);
    if (ec) {
        std::string what = "could not accept a connection";
        if (local_)
            what += " on " + detail::endpoint_string(*local_);
        if (ec == error::timed_out)
            what += " within " + detail::describe_timeout(timeout);
        throw std::system_error(ec, what);
    }
    return socket;
}

inline tcp_socket tcp_listener::accept() { return accept(no_timeout); }

inline tcp_listener::endpoint_type tcp_listener::local_endpoint(std::error_code& ec) const {
    if (!acceptor_.is_open() || !local_) {
        ec = asio::error::bad_descriptor;
        return {};
    }
    ec.clear();
    return *local_;
}

inline tcp_listener::endpoint_type tcp_listener::local_endpoint() const {
    std::error_code ec;
    auto endpoint = local_endpoint(ec);
    if (ec)
        throw std::system_error(ec, "could not get the listener's address");
    return endpoint;
}

inline std::uint16_t tcp_listener::port() const noexcept { return local_ ? local_->port() : 0; }

inline void tcp_listener::close(std::error_code& ec) {
    ec.clear();
    if (acceptor_.is_open())
        acceptor_.close(ec);
    local_.reset();
}

inline void tcp_listener::close() {
    std::error_code ec;
    close(ec);
    if (ec)
        throw std::system_error(ec, "could not close the listener");
}

} // namespace parley

#endif
