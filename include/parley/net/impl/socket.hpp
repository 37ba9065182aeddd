// parley: tcp_socket and tcp_listener bodies.
#ifndef PARLEY_NET_IMPL_SOCKET_HPP
#define PARLEY_NET_IMPL_SOCKET_HPP

#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>
#include <asio/ip/v6_only.hpp>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

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
