// parley: TLS over TCP with asio::ssl (OpenSSL). The one parley header that
// needs OpenSSL: only programs that include it link it (CMake target
// parley::tls, meson dependency parley_tls_dep, pkg-config parley-tls).
//
// @code
// // A server: one context for every connection.
// auto ctx = parley::tls::server_context("server.pem", "server.key");  // throws with the file's name
// parley::tls::stream tls(std::move(socket), ctx);
// co_await parley::tls::async_handshake(tls, asio::ssl::stream_base::server, 10s, asio::use_awaitable);
// parley::framed_stream<parley::tls::stream&> frames(tls);               // frames over TLS
//
// // A client: verifies the server's certificate and name by default.
// auto ctx = parley::tls::client_context({.ca_file = "ca.pem"});
// parley::tls::stream tls(ioc, ctx);
// co_await parley::tls::async_connect(tls, "chat.example.org", 9999, {}, asio::use_awaitable);
// @endcode
//
// framed_stream<tls::stream> and session<tls::stream> work as over a plain
// socket; they take Asio's generic read/write path (a TLS stream has no
// socket to wait on), and a session ends a TLS connection with a
// close_notify once everything queued is written (include this header for
// that: it is what teaches session<> about TLS).
#ifndef PARLEY_NET_TLS_HPP
#define PARLEY_NET_TLS_HPP

#include <parley/client/async_client.hpp>
#include <parley/net/connect.hpp>
#include <parley/error.hpp>
#include <parley/hub/session.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace parley::tls {

/// A TLS stream over a TCP socket with the given executor.
template <class Executor = asio::any_io_executor>
using basic_stream = asio::ssl::stream<asio::basic_stream_socket<asio::ip::tcp, Executor>>;

/// A TLS stream over `asio::ip::tcp::socket`.
using stream = basic_stream<>;

/// A server's context: TLS 1.2 or later, the certificate chain and the
/// private key from PEM files. On failure `ec` is set and the returned
/// context is unusable; the throwing form's what() names the file and
/// OpenSSL's reason ("cannot load the TLS private key from 'x.key': ...").
asio::ssl::context server_context(const std::string& certificate_chain_file,
                                  const std::string& private_key_file, std::error_code& ec,
                                  std::string* what = nullptr);
asio::ssl::context server_context(const std::string& certificate_chain_file,
                                  const std::string& private_key_file);

/// How a client checks the server.
struct client_config {
    /// PEM file of the certificate authorities to trust; empty: the
    /// system's default trust store.
    std::string ca_file{};
    /// Check the server's certificate chain and that it was issued for the
    /// name connected to (see set_peer_name()). Turning it off gives
    /// encryption without any proof of who is at the other end.
    bool verify_peer = true;
};

/// A client's context: TLS 1.2 or later, trusting `config.ca_file` (or
/// the system's store), verifying the peer unless told not to.
asio::ssl::context client_context(const client_config& config, std::error_code& ec,
                                  std::string* what = nullptr);
asio::ssl::context client_context(const client_config& config = {});

/// Before a client handshake: sends `host` as SNI (names only, not
/// addresses) and makes the handshake fail unless the certificate was
/// issued for `host` (a DNS name, or an IP address for an address).
/// async_connect() does this itself.
template <class Stream>
void set_peer_name(asio::ssl::stream<Stream>& stream, std::string_view host, std::error_code& ec);

/// Completion signature of the handshake operations.
using handshake_signature = void(std::error_code);

/// Performs the TLS handshake, failing with error::timed_out if it takes
/// longer than `timeout` (zero: no limit): a peer that connects and says
/// nothing cannot hold the connection forever.
///
/// @code
/// void handler(std::error_code ec);
/// @endcode
/// A rejected certificate fails with error::certificate_rejected (see
/// describe() for the reason); other failures keep OpenSSL's error (for
/// example "wrong version number" when the peer does not speak TLS). The
/// stream cannot be used again after a failure. The handler is never
/// invoked from within this function. The stream must outlive the
/// operation.
template <class Stream, asio::completion_token_for<handshake_signature> Token>
auto async_handshake(asio::ssl::stream<Stream>& stream,
                     asio::ssl::stream_base::handshake_type type,
                     std::chrono::milliseconds timeout, Token&& token);

/// Connects the stream's socket to `host`:`port` with the retries of
/// parley::async_connect(), then performs a client handshake that checks
/// the certificate against `host` (set_peer_name()), within
/// options.attempt_timeout. Completes with the address connected to.
///
/// @code
/// void handler(std::error_code ec, asio::ip::tcp::endpoint connected_to);
/// @endcode
/// A failed handshake is not retried (a second handshake on the same
/// stream is not possible, and a certificate that is refused once will be
/// refused again): make a new stream to try again. The handler is never
/// invoked from within this function.
template <class Executor, asio::completion_token_for<connect_signature> Token>
auto async_connect(basic_stream<Executor>& stream, std::string_view host, std::uint16_t port,
                   const connect_options& options, Token&& token);

/// A sentence for an error of a TLS stream: for error::certificate_rejected
/// the verification's reason ("certificate rejected: self-signed
/// certificate"), otherwise ec.message().
template <class Stream>
std::string describe(asio::ssl::stream<Stream>& stream, std::error_code ec);

/// Whether `ec` is the end of a TLS stream that the peer closed without a
/// close_notify (a crashed peer, or one that closed the socket only).
bool is_truncation(std::error_code ec) noexcept;

/// The transport that makes parley::basic_async_client speak TLS: after
/// each TCP connect (and reconnect) it performs a client handshake that
/// verifies the server as the context says and checks its certificate
/// against the host name given to async_connect(); close() ends with a
/// close_notify. A failed handshake fails the connect (or ends the
/// reconnecting) without further attempts; the client's describe() says
/// why.
template <class Executor = asio::any_io_executor>
class client_transport {
public:
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, Executor>;
    using stream_type = asio::ssl::stream<socket_type>;

    /// `context` is shared by every connection the client makes.
    explicit client_transport(std::shared_ptr<asio::ssl::context> context,
                              std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10))
        : context_(std::move(context)), timeout_(handshake_timeout) {}

    template <class Handler>
    void async_secure(socket_type socket, const std::string& host, Handler&& done);
    template <class Handler>
    void async_shutdown_send(stream_type& stream, Handler&& done);
    static socket_type& socket(stream_type& stream) noexcept { return stream.next_layer(); }
    void cancel() noexcept;
    std::string describe(std::error_code ec) const;

private:
    struct state {
        std::weak_ptr<stream_type> handshaking;
        std::error_code last_error;
        std::string last_reason;
    };
    std::shared_ptr<asio::ssl::context> context_;
    std::chrono::milliseconds timeout_;
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

/// A framed client over TLS:
/// @code
/// auto ctx = std::make_shared<asio::ssl::context>(parley::tls::client_context({.ca_file = "ca.pem"}));
/// parley::tls::async_client client(ioc.get_executor(), {}, parley::tls::client_transport<>(ctx));
/// co_await client.async_connect("chat.example.org", 9999, asio::use_awaitable);
/// @endcode
using async_client = basic_async_client<asio::any_io_executor, client_transport<>>;

} // namespace parley::tls

#include <parley/net/impl/tls.hpp>

#endif
