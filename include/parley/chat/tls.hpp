// parley chat: TLS for the chat server's ports. Needs OpenSSL (link
// parley::tls); the rest of the chat server does not.
//
// @code
// parley::chat::server_options options;
// options.tls = parley::chat::make_tls({.certificate_file = "server.pem",
//                                       .private_key_file = "server.key"});   // throws if unusable
// parley::chat::server chat(ioc, options);
// @endcode
//
// Both ports then speak TLS: framed clients connect with
// parley::tls::async_connect() (or `chat_client --tls`), line-mode users with
// `openssl s_client -quiet -connect HOST:LINE_PORT` instead of nc.
#ifndef PARLEY_CHAT_TLS_HPP
#define PARLEY_CHAT_TLS_HPP

#include <parley/chat/server.hpp>
#include <parley/net/tls.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>

namespace parley::chat {

/// The server's TLS identity and how long a handshake may take.
struct tls_options {
    /// PEM file with the server's certificate, then any intermediates.
    std::string certificate_file;
    /// PEM file with its private key (unencrypted).
    std::string private_key_file;
    /// A connection that has not finished its handshake by then is closed
    /// (and counted in security_counters::tls_handshake_timeouts).
    std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
};

/// The TLS layer for server_options::tls. Loads the files now: on failure
/// sets `ec` and `what` ("cannot load the TLS private key from 'x': ...")
/// and returns nullptr.
std::shared_ptr<const tls_layer> make_tls(const tls_options& options, std::error_code& ec,
                                          std::string* what = nullptr);
/// As above; throws std::system_error with that sentence.
std::shared_ptr<const tls_layer> make_tls(const tls_options& options);

namespace detail {

class server_tls final : public tls_layer {
public:
    server_tls(asio::ssl::context ctx, std::chrono::milliseconds timeout)
        : ctx_(std::move(ctx)), timeout_(timeout) {}

private:
    using stream_type = parley::tls::stream;

    void accept(const std::shared_ptr<chat_server>& server, asio::ip::tcp::socket socket,
                port_kind kind, std::string peer) const override {
        // Shared: the handshake's handler and a stop() may both reach it.
        auto stream = std::make_shared<stream_type>(std::move(socket), ctx_);
        const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
        std::weak_ptr<stream_type> weak = stream;
        const auto ex = stream->get_executor();
        const bool admitted = server->handshake_started(id, [weak, ex] {
            asio::post(ex, [weak] {
                if (auto s = weak.lock()) {
                    std::error_code ignored;
                    s->lowest_layer().close(ignored);
                }
            });
        }, &security_counters::tls_handshakes_refused);
        if (!admitted)
            return; // the socket closes with the stream
        parley::tls::async_handshake(
            *stream, asio::ssl::stream_base::server, timeout_,
            [server, stream, id, kind, peer = std::move(peer)](std::error_code ec) mutable {
                server->handshake_ended(id);
                if (ec) {
                    server->handshake_failed(peer, ec, parley::tls::describe(*stream, ec));
                    std::error_code ignored;
                    stream->lowest_layer().close(ignored);
                    return;
                }
                server->adopt(std::move(*stream), kind, std::move(peer));
            });
    }

    // Not modified after construction; OpenSSL allows one context to be
    // shared by connections on several threads.
    mutable asio::ssl::context ctx_;
    std::chrono::milliseconds timeout_;
    mutable std::atomic<std::uint64_t> next_id_{1};
};

} // namespace detail

inline std::shared_ptr<const tls_layer> make_tls(const tls_options& options, std::error_code& ec,
                                                 std::string* what) {
    auto ctx = parley::tls::server_context(options.certificate_file, options.private_key_file,
                                           ec, what);
    if (ec)
        return nullptr;
    return std::make_shared<detail::server_tls>(std::move(ctx), options.handshake_timeout);
}

inline std::shared_ptr<const tls_layer> make_tls(const tls_options& options) {
    std::error_code ec;
    std::string what;
    auto layer = make_tls(options, ec, &what);
    if (ec)
        throw std::system_error(ec, what);
    return layer;
}

} // namespace parley::chat

#endif
