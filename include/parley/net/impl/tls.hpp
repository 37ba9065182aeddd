// parley: tls.hpp bodies and the handshake and connect operations.
#ifndef PARLEY_NET_IMPL_TLS_HPP
#define PARLEY_NET_IMPL_TLS_HPP

#include <asio/compose.hpp>
#include <asio/error.hpp>
#include <asio/ip/address.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <utility>

namespace parley {

namespace detail {

// What a session does once everything queued is written: send TLS's
// close_notify, so the peer reads a clean end of stream rather than a
// truncation. Only the sending half, like shutdown(SHUT_WR): waiting for
// the peer's close_notify would let a peer that never answers hold the
// session open, and a client closing this way still reads what the peer
// sends until it closes too.
template <class Next>
struct graceful_end<asio::ssl::stream<Next>> {
    static constexpr bool needed = true;

    template <class Handler>
    static void async_end(asio::ssl::stream<Next>& stream, Handler&& handler) {
        ::SSL* ssl = stream.native_handle();
        const int before = ::SSL_get_shutdown(ssl);
        // With the peer's close_notify marked as received, SSL_shutdown()
        // writes ours and is done, without waiting to read. Asio calls it
        // within async_shutdown() itself; only the write is asynchronous.
        ::SSL_set_shutdown(ssl, before | SSL_RECEIVED_SHUTDOWN);
        stream.async_shutdown(std::forward<Handler>(handler));
        // Then unmark it, so reads go on until the peer's real one.
        ::SSL_set_shutdown(ssl, (before & SSL_RECEIVED_SHUTDOWN) | SSL_SENT_SHUTDOWN);
    }
};

} // namespace detail

namespace tls {

namespace detail {

// Fills `what` with the sentence for a failed context step.
inline void context_failure(std::string* what, std::string step, const std::string& file,
                            std::error_code ec) {
    if (what)
        *what = "cannot load the TLS " + step + " from '" + file + "': " + ec.message();
}

inline void restrict_protocols(asio::ssl::context& ctx, std::error_code& ec) {
    ctx.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1,
                    ec);
}

struct handshake_state {
    explicit handshake_state(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool expired = false;
    bool done = false;
};

template <class Stream>
struct handshake_op {
    asio::ssl::stream<Stream>& stream;
    asio::ssl::stream_base::handshake_type type;
    std::chrono::milliseconds timeout;
    std::shared_ptr<handshake_state> state{};

    template <class Self>
    void operator()(Self& self) {
        if (timeout.count() > 0) {
            state = std::make_shared<handshake_state>(stream.get_executor());
            state->timer.expires_after(timeout);
            // The wake-up only touches the stream while the handshake is
            // still running (the stream must outlive the operation, not
            // the timer's late wake-up).
            state->timer.async_wait([s = state, &stream = stream](std::error_code ec) {
                if (ec || s->done)
                    return;
                s->expired = true;
                std::error_code ignored;
                stream.lowest_layer().cancel(ignored);
            });
        }
        stream.async_handshake(type, std::move(self));
    }

    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (state) {
            state->done = true;
            state->timer.cancel();
            if (ec && state->expired)
                ec = parley::error::timed_out;
        }
        if (ec && ec.category() != parley::error_category()) {
            const long verdict = ::SSL_get_verify_result(stream.native_handle());
            if (verdict != X509_V_OK)
                ec = parley::error::certificate_rejected;
        }
        self.complete(ec);
    }
};

template <class Executor>
struct connect_op {
    basic_stream<Executor>& stream;
    std::string host;
    std::uint16_t port;
    connect_options options;
    enum class phase : unsigned char { start, posted, connecting, handshaking } at = phase::start;
    std::error_code early{};
    asio::ip::tcp::endpoint peer{};

    template <class Self>
    void operator()(Self& self) {
        set_peer_name(stream, host, early);
        if (early) {
            at = phase::posted;
            return asio::post(std::move(self));
        }
        at = phase::connecting;
        // Copies first: `self`, which owns them, moves into the handler.
        auto& socket = stream.next_layer();
        const std::string where = host;
        const connect_options how = options;
        const std::uint16_t to = port;
        parley::async_connect(socket, where, to, how, std::move(self));
    }

    // The connect finished.
    template <class Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::endpoint connected) {
        if (ec)
            return self.complete(ec, asio::ip::tcp::endpoint());
        peer = connected;
        at = phase::handshaking;
        auto& s = stream;
        const auto limit = options.attempt_timeout;
        tls::async_handshake(s, asio::ssl::stream_base::client, limit, std::move(self));
    }

    // The handshake finished, or an early error was posted.
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        if (at == phase::posted)
            return self.complete(early, asio::ip::tcp::endpoint());
        if (ec) {
            std::error_code ignored;
            stream.next_layer().close(ignored);
            return self.complete(ec, asio::ip::tcp::endpoint());
        }
        self.complete(ec, peer);
    }
};

} // namespace detail

inline asio::ssl::context server_context(const std::string& certificate_chain_file,
                                         const std::string& private_key_file,
                                         std::error_code& ec, std::string* what) {
    asio::ssl::context ctx(asio::ssl::context::tls_server);
    detail::restrict_protocols(ctx, ec);
    if (ec) {
        if (what)
            *what = "cannot set up a TLS context: " + ec.message();
        return ctx;
    }
    ctx.use_certificate_chain_file(certificate_chain_file, ec);
    if (ec) {
        detail::context_failure(what, "certificate chain", certificate_chain_file, ec);
        return ctx;
    }
    ctx.use_private_key_file(private_key_file, asio::ssl::context::pem, ec);
    if (ec) {
        detail::context_failure(what, "private key", private_key_file, ec);
        return ctx;
    }
    if (::SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
        ec = parley::error::invalid_argument;
        if (what)
            *what = "the TLS private key '" + private_key_file +
                    "' does not belong to the certificate in '" + certificate_chain_file + "'";
    }
    return ctx;
}

inline asio::ssl::context server_context(const std::string& certificate_chain_file,
                                         const std::string& private_key_file) {
    std::error_code ec;
    std::string what;
    auto ctx = server_context(certificate_chain_file, private_key_file, ec, &what);
    if (ec)
        throw std::system_error(ec, what);
    return ctx;
}

inline asio::ssl::context client_context(const client_config& config, std::error_code& ec,
                                         std::string* what) {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    detail::restrict_protocols(ctx, ec);
    if (ec) {
        if (what)
            *what = "cannot set up a TLS context: " + ec.message();
        return ctx;
    }
    if (config.ca_file.empty())
        ctx.set_default_verify_paths(ec);
    else
        ctx.load_verify_file(config.ca_file, ec);
    if (ec) {
        if (what)
            *what = config.ca_file.empty()
                        ? "cannot load the system's trusted certificates: " + ec.message()
                        : "cannot load the TLS certificate authorities from '" + config.ca_file +
                              "': " + ec.message();
        return ctx;
    }
    ctx.set_verify_mode(config.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none, ec);
    return ctx;
}

inline asio::ssl::context client_context(const client_config& config) {
    std::error_code ec;
    std::string what;
    auto ctx = client_context(config, ec, &what);
    if (ec)
        throw std::system_error(ec, what);
    return ctx;
}

template <class Stream>
void set_peer_name(asio::ssl::stream<Stream>& stream, std::string_view host, std::error_code& ec) {
    ec.clear();
    const std::string name(host);
    std::error_code not_address;
    asio::ip::make_address(name, not_address);
    ::X509_VERIFY_PARAM* param = ::SSL_get0_param(stream.native_handle());
    int ok = 1;
    if (!not_address) {
        // RFC 6066: no SNI for a literal address.
        ok = ::X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
        ok = SSL_set_tlsext_host_name(stream.native_handle(), name.c_str()) == 1 &&
             ::X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1;
    }
    if (ok != 1)
        ec = parley::error::invalid_argument;
}

template <class Stream, asio::completion_token_for<handshake_signature> Token>
auto async_handshake(asio::ssl::stream<Stream>& stream,
                     asio::ssl::stream_base::handshake_type type,
                     std::chrono::milliseconds timeout, Token&& token) {
    return asio::async_compose<Token, handshake_signature>(
        detail::handshake_op<Stream>{stream, type, timeout}, token, stream);
}

template <class Executor, asio::completion_token_for<connect_signature> Token>
auto async_connect(basic_stream<Executor>& stream, std::string_view host, std::uint16_t port,
                   const connect_options& options, Token&& token) {
    return asio::async_compose<Token, connect_signature>(
        detail::connect_op<Executor>{stream, std::string(host), port, options}, token, stream);
}

template <class Stream>
std::string describe(asio::ssl::stream<Stream>& stream, std::error_code ec) {
    if (ec == parley::error::certificate_rejected) {
        const long verdict = ::SSL_get_verify_result(stream.native_handle());
        if (verdict != X509_V_OK)
            return std::string("certificate rejected: ") + ::X509_verify_cert_error_string(verdict);
    }
    return ec.message();
}

inline bool is_truncation(std::error_code ec) noexcept {
    return ec == asio::ssl::error::stream_truncated;
}

template <class Executor>
template <class Handler>
void client_transport<Executor>::async_secure(socket_type socket, const std::string& host,
                                              Handler&& done) {
    auto stream = std::make_shared<stream_type>(std::move(socket), *context_);
    state_->handshaking = stream;
    std::error_code ec;
    set_peer_name(*stream, host, ec);
    if (ec) {
        state_->last_error = ec;
        state_->last_reason = "cannot check a certificate for the name '" + host + "'";
        return std::forward<Handler>(done)(ec, std::move(*stream));
    }
    tls::async_handshake(*stream, asio::ssl::stream_base::client, timeout_,
                         [st = state_, stream, done = std::forward<Handler>(done)](
                             std::error_code hec) mutable {
                             st->handshaking.reset();
                             if (hec) {
                                 st->last_error = hec;
                                 st->last_reason = "TLS handshake failed: " + tls::describe(*stream, hec);
                             }
                             done(hec, std::move(*stream));
                         });
}

template <class Executor>
template <class Handler>
void client_transport<Executor>::async_shutdown_send(stream_type& stream, Handler&& done) {
    parley::detail::graceful_end<stream_type>::async_end(
        stream, [done = std::forward<Handler>(done)](std::error_code) mutable { done(); });
}

template <class Executor>
void client_transport<Executor>::cancel() noexcept {
    if (auto s = state_->handshaking.lock()) {
        std::error_code ignored;
        s->next_layer().close(ignored);
    }
}

template <class Executor>
std::string client_transport<Executor>::describe(std::error_code ec) const {
    if (ec && ec == state_->last_error && !state_->last_reason.empty())
        return state_->last_reason;
    return ec.message();
}

} // namespace tls
} // namespace parley

#endif
