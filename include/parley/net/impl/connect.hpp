// parley: connect.hpp bodies and the connect operation.
#ifndef PARLEY_NET_IMPL_CONNECT_HPP
#define PARLEY_NET_IMPL_CONNECT_HPP

#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/experimental/parallel_group.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/basic_resolver.hpp>
#include <asio/post.hpp>

#include <array>
#include <cmath>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace parley {

namespace detail {

// "127.0.0.1:9999", "[::1]:9999".
inline std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
    const auto address = ep.address();
    std::string text = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return text + ":" + std::to_string(ep.port());
}

inline std::string host_port_text(std::string_view host, std::uint16_t port) {
    const bool v6_literal = host.find(':') != std::string_view::npos;
    std::string text = v6_literal ? "[" + std::string(host) + "]" : std::string(host);
    return text + ":" + std::to_string(port);
}

} // namespace detail

inline std::string connect_event::describe() const {
    const std::string n = std::to_string(attempt);
    switch (what) {
    case kind::connecting:
        return "attempt " + n + ": connecting to " + detail::endpoint_text(endpoint);
    case kind::endpoint_failed:
        return "attempt " + n + ": " + detail::endpoint_text(endpoint) + ": " + error.message();
    case kind::connected:
        return "connected to " + detail::endpoint_text(endpoint) + " (attempt " + n + ")";
    case kind::attempt_failed:
        if (giving_up)
            return "attempt " + n + " failed: " + error.message() + "; giving up";
        return "attempt " + n + " failed: " + error.message() + "; retrying in " +
               std::to_string(next_delay.count()) + " ms";
    }
    return "attempt " + n;
}

inline bool connect_options::valid() const noexcept {
    return multiplier >= 1.0 && jitter >= 0.0 && jitter <= 1.0 &&
           attempt_timeout.count() >= 0 && initial_backoff.count() >= 0 &&
           max_backoff >= initial_backoff;
}

inline std::chrono::milliseconds backoff_delay(const connect_options& options,
                                               unsigned failed) noexcept {
    const double cap = static_cast<double>(options.max_backoff.count());
    double delay = static_cast<double>(options.initial_backoff.count());
    // Multiply step by step rather than pow(): stops at the cap, never
    // overflows however many attempts failed.
    for (unsigned i = 1; i < failed && delay < cap; ++i)
        delay *= options.multiplier;
    if (delay > cap)
        delay = cap;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(delay));
}

template <class RandomEngine>
std::chrono::milliseconds jittered_backoff_delay(const connect_options& options, unsigned failed,
                                                 RandomEngine& rng) {
    const auto delay = backoff_delay(options, failed);
    if (options.jitter <= 0.0 || delay.count() == 0)
        return delay;
    const double full = static_cast<double>(delay.count());
    std::uniform_real_distribution<double> fraction(1.0 - options.jitter, 1.0);
    return std::chrono::milliseconds(
        static_cast<std::chrono::milliseconds::rep>(std::llround(full * fraction(rng))));
}

namespace detail {

// describe_connect_failure() without the error, as std::system_error's
// what_arg (it appends ": " and the error's message itself).
inline std::string connect_failure_context(std::string_view host, std::uint16_t port,
                                           unsigned attempts) {
    std::string text = "could not connect to " + detail::host_port_text(host, port);
    if (attempts > 1)
        text += " (" + std::to_string(attempts) + " attempts)";
    return text;
}

} // namespace detail

inline std::string describe_connect_failure(std::string_view host, std::uint16_t port,
                                            unsigned attempts, std::error_code ec) {
    return detail::connect_failure_context(host, port, attempts) + ": " + ec.message();
}

namespace detail {

template <class Socket>
class connect_op {
public:
    using executor_type = typename Socket::executor_type;
    using resolver_type = asio::ip::basic_resolver<asio::ip::tcp, executor_type>;
    using results_type = typename resolver_type::results_type;
    using timer_type =
        asio::basic_waitable_timer<std::chrono::steady_clock,
                                   asio::wait_traits<std::chrono::steady_clock>, executor_type>;
    using endpoint_type = asio::ip::tcp::endpoint;

    connect_op(Socket& socket, std::string_view host, std::uint16_t port,
               const connect_options& options)
        : s_(std::make_unique<state>(socket, host, port, options)) {}

    // Start, or the post that keeps an early failure out of the initiating
    // function.
    template <class Self>
    void operator()(Self& self) {
        state& s = *s_;
        if (s.at == phase::posted)
            return self.complete(s.last_error, endpoint_type());
        if (!s.options.valid()) {
            s.at = phase::posted;
            s.last_error = error::invalid_argument;
            return asio::post(std::move(self));
        }
        // Each stage leaves the socket closed or connected, so any kind of
        // cancellation leaves it in a well-defined state.
        self.reset_cancellation_state(asio::enable_total_cancellation());
        std::error_code ignored;
        s.socket.close(ignored);
        asio::error_code parse_error;
        auto address = asio::ip::make_address(s.host, parse_error);
        if (!parse_error)
            s.address = address;
        begin_attempt(self);
    }

    // Name resolved.
    template <class Self>
    void operator()(Self& self, std::error_code ec, results_type results) {
        state& s = *s_;
        if (cancelled(self))
            return finish(self, asio::error::operation_aborted);
        if (ec)
            return attempt_failed(self, ec);
        s.endpoints.clear();
        for (const auto& entry : results)
            s.endpoints.push_back(entry.endpoint());
        if (s.endpoints.empty())
            return attempt_failed(self, asio::error::host_not_found);
        try_next_endpoint(self);
    }

    // A connect raced against the attempt timeout.
    template <class Self>
    void operator()(Self& self, std::array<std::size_t, 2> order, std::error_code connect_ec,
                    std::error_code timer_ec) {
        // A connect that succeeded just as the timer fired still counts.
        const bool timed_out = connect_ec && order[0] == 1 && !timer_ec;
        connected_or_failed(self, timed_out ? std::error_code(error::timed_out) : connect_ec);
    }

    // A connect without a timeout, or the wait between attempts.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (s_->at == phase::connecting)
            return connected_or_failed(self, ec);
        // phase::backing_off
        if (cancelled(self) || ec)
            return finish(self, asio::error::operation_aborted);
        begin_attempt(self);
    }

private:
    enum class phase : unsigned char { start, posted, resolving, connecting, backing_off };

    // Lives on the heap: the operation object is moved at every step, and
    // the resolver, the timer and the endpoint list must not move under
    // the operations using them.
    struct state {
        state(Socket& sock, std::string_view h, std::uint16_t p, const connect_options& o)
            : socket(sock), timer(sock.get_executor()), host(h), port(p), options(o),
              rng(std::random_device{}()) {}

        Socket& socket;
        timer_type timer;
        std::optional<resolver_type> resolver;
        std::string host;
        std::uint16_t port;
        connect_options options;
        std::optional<asio::ip::address> address; // host was an address
        std::vector<endpoint_type> endpoints;
        std::size_t next_endpoint = 0;
        unsigned attempt = 0;
        std::error_code last_error;
        std::minstd_rand rng;
        phase at = phase::start;
    };

    template <class Self>
    static bool cancelled(Self& self) {
        return self.get_cancellation_state().cancelled() != asio::cancellation_type::none;
    }

    void report(connect_event::kind what, const endpoint_type& ep = {}, std::error_code ec = {},
                std::chrono::milliseconds delay = {}, bool giving_up = false) {
        state& s = *s_;
        if (!s.options.on_state)
            return;
        connect_event event;
        event.what = what;
        event.attempt = s.attempt;
        event.endpoint = ep;
        event.error = ec;
        event.next_delay = delay;
        event.giving_up = giving_up;
        s.options.on_state(event);
    }

    template <class Self>
    void begin_attempt(Self& self) {
        state& s = *s_;
        ++s.attempt;
        s.next_endpoint = 0;
        if (s.address) {
            s.endpoints.assign(1, endpoint_type(*s.address, s.port));
            return try_next_endpoint(self);
        }
        s.at = phase::resolving;
        if (!s.resolver)
            s.resolver.emplace(s.socket.get_executor());
        // The resolver has no per-operation cancellation of its own; this
        // slot handler is replaced at the next step, before the resolver
        // could go away.
        auto slot = self.get_cancellation_state().slot();
        if (slot.is_connected())
            slot.assign([resolver = &*s.resolver](asio::cancellation_type) { resolver->cancel(); });
        s.resolver->async_resolve(s.host, std::to_string(s.port),
                                  asio::ip::resolver_base::numeric_service, std::move(self));
    }

    template <class Self>
    void try_next_endpoint(Self& self) {
        state& s = *s_;
        if (s.next_endpoint == s.endpoints.size())
            return attempt_failed(self, s.last_error ? s.last_error
                                                     : std::error_code(asio::error::host_not_found));
        const endpoint_type ep = s.endpoints[s.next_endpoint++];
        report(connect_event::kind::connecting, ep);
        std::error_code ignored;
        s.socket.close(ignored);
        s.at = phase::connecting;
        if (s.options.attempt_timeout.count() == 0)
            return s.socket.async_connect(ep, std::move(self));
        s.timer.expires_after(s.options.attempt_timeout);
        // Whichever finishes first cancels the other; the group completes
        // once both have, so nothing is left running on the socket.
        asio::experimental::make_parallel_group(
            s.socket.async_connect(ep, asio::experimental::deferred),
            s.timer.async_wait(asio::experimental::deferred))
            .async_wait(asio::experimental::wait_for_one(), std::move(self));
    }

    template <class Self>
    void connected_or_failed(Self& self, std::error_code ec) {
        state& s = *s_;
        const endpoint_type ep = s.endpoints[s.next_endpoint - 1];
        if (!ec) {
            report(connect_event::kind::connected, ep);
            return self.complete(ec, ep);
        }
        if (cancelled(self))
            return finish(self, asio::error::operation_aborted);
        s.last_error = ec;
        report(connect_event::kind::endpoint_failed, ep, ec);
        try_next_endpoint(self);
    }

    template <class Self>
    void attempt_failed(Self& self, std::error_code ec) {
        state& s = *s_;
        s.last_error = ec;
        const bool giving_up = s.options.max_attempts != 0 && s.attempt >= s.options.max_attempts;
        const auto delay = giving_up ? std::chrono::milliseconds(0)
                                     : jittered_backoff_delay(s.options, s.attempt, s.rng);
        report(connect_event::kind::attempt_failed, {}, ec, delay, giving_up);
        if (giving_up)
            return finish(self, ec);
        if (cancelled(self))
            return finish(self, asio::error::operation_aborted);
        s.at = phase::backing_off;
        s.timer.expires_after(delay);
        s.timer.async_wait(std::move(self));
    }

    template <class Self>
    void finish(Self& self, std::error_code ec) {
        std::error_code ignored;
        s_->socket.close(ignored);
        self.complete(ec, endpoint_type());
    }

    std::unique_ptr<state> s_;
};

} // namespace detail

template <class Executor, asio::completion_token_for<connect_signature> Token>
auto async_connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                   std::string_view host, std::uint16_t port, const connect_options& options,
                   Token&& token) {
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, Executor>;
    return asio::async_compose<Token, connect_signature>(
        detail::connect_op<socket_type>(socket, host, port, options), token, socket);
}

template <class Executor>
asio::ip::tcp::endpoint connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                                std::string_view host, std::uint16_t port,
                                const connect_options& options, std::error_code& ec) {
    // The socket's own context may not be running (or may be run by other
    // threads): connect a socket of a private context, then hand the
    // connection over.
    asio::io_context context(1);
    asio::ip::tcp::socket connecting(context);
    asio::ip::tcp::endpoint peer;
    parley::async_connect(connecting, host, port, options,
                          [&](std::error_code result, asio::ip::tcp::endpoint connected) {
                              ec = result;
                              peer = connected;
                          });
    context.run();
    if (ec)
        return {};
    std::error_code ignored;
    socket.close(ignored);
    auto handle = connecting.release(ec);
    if (ec)
        return {};
    socket.assign(peer.protocol(), handle, ec);
    if (ec) {
#if defined(__unix__) || defined(__APPLE__)
        ::close(handle);
#endif
        return {};
    }
    return peer;
}

template <class Executor>
asio::ip::tcp::endpoint connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                                std::string_view host, std::uint16_t port,
                                const connect_options& options) {
    unsigned attempts = 0;
    connect_options counting = options;
    counting.on_state = [&](const connect_event& event) {
        attempts = event.attempt;
        if (options.on_state)
            options.on_state(event);
    };
    std::error_code ec;
    auto peer = parley::connect(socket, host, port, counting, ec);
    if (ec)
        throw std::system_error(ec, detail::connect_failure_context(host, port, attempts));
    return peer;
}

} // namespace parley

#endif
