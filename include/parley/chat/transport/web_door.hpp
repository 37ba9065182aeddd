// parley chat transports: the web port's front door. Reads one HTTP
// request head within a deadline, answers it as web_routes.hpp says, and
// either closes the connection or hands it, upgraded, to the chat with the
// bytes that came after the head (they are the first WebSocket bytes).
#ifndef PARLEY_CHAT_TRANSPORT_WEB_DOOR_HPP
#define PARLEY_CHAT_TRANSPORT_WEB_DOOR_HPP

#include <parley/chat/transport/web_routes.hpp>
#include <parley/http/request_parser.hpp>

#include <asio/buffer.hpp>
#include <asio/socket_base.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace parley::chat::transport {

/// One web connection until its request is answered. Create with
/// std::make_shared and call start(); it keeps itself alive until done.
/// `on_upgrade(Stream&&, std::string first_bytes, bool deflate)` takes
/// over an upgraded connection (`deflate`: it negotiated
/// permessage-deflate); `on_refused(int status, std::error_code)` is told of every
/// request answered with an error (for counters and logs).
template <class Stream>
class web_door : public std::enable_shared_from_this<web_door<Stream>> {
public:
    using upgrade_handler = std::function<void(Stream&&, std::string, bool)>;
    using refusal_handler = std::function<void(int, std::error_code)>;

    web_door(Stream stream, web_options options, http::head_limits limits,
             std::chrono::milliseconds deadline, upgrade_handler on_upgrade, refusal_handler on_refused)
        : stream_(std::move(stream)), options_(std::move(options)), parser_(limits),
          timer_(stream_.get_executor()), deadline_(deadline), on_upgrade_(std::move(on_upgrade)),
          on_refused_(std::move(on_refused)) {}

    ~web_door() {
        if (on_end_)
            on_end_();
    }

    /// Called once, when the door is done with the connection (answered
    /// and closed, or handed over).
    void on_end(std::function<void()> f) { on_end_ = std::move(f); }

    auto get_executor() { return stream_.get_executor(); }

    void start() {
        timer_.expires_after(deadline_);
        timer_.async_wait([weak = this->weak_from_this()](std::error_code ec) {
            if (ec)
                return;
            if (auto self = weak.lock())
                self->expired();
        });
        read();
    }

    /// Closes the connection now (the server is stopping). On the
    /// connection's executor.
    void cancel() { close(); }

private:
    void read() {
        stream_.async_read_some(asio::buffer(chunk_), [self = this->shared_from_this()](
                                                           std::error_code ec, std::size_t n) {
            self->on_read(ec, n);
        });
    }

    void on_read(std::error_code ec, std::size_t n) {
        if (ec || closed_)
            return close();
        std::error_code pec;
        const std::string_view bytes(chunk_.data(), n);
        const std::size_t used = parser_.feed(bytes, pec);
        if (pec)
            return answer(refuse_web_request(pec), {});
        if (!parser_.done())
            return read();
        answer(route_web_request(parser_, options_), std::string(bytes.substr(used)));
    }

    void answer(web_answer a, std::string rest) {
        if (a.error && on_refused_)
            on_refused_(a.status, a.error);
        response_ = std::move(a.response);
        const bool upgrade = a.what == web_answer::kind::upgrade;
        const bool deflate = a.deflate;
        asio::async_write(stream_, asio::buffer(response_),
                          [self = this->shared_from_this(), upgrade, deflate,
                           rest = std::move(rest)](std::error_code ec, std::size_t) mutable {
                              if (ec || self->closed_)
                                  return self->close();
                              if (!upgrade)
                                  return self->finish();
                              self->timer_.cancel();
                              self->closed_ = true;
                              self->on_upgrade_(std::move(self->stream_), std::move(rest), deflate);
                          });
    }

    // After an answer that ends the connection: say so (FIN), then wait
    // for the peer's FIN, so that unread request bytes do not make the
    // kernel reset the connection and lose the answer on the way.
    void finish() {
        std::error_code ignored;
        lowest_layer().shutdown(asio::socket_base::shutdown_send, ignored);
        drain();
    }

    void drain() {
        stream_.async_read_some(asio::buffer(chunk_),
                                [self = this->shared_from_this()](std::error_code ec, std::size_t) {
                                    if (ec || self->closed_)
                                        return self->close();
                                    self->drain();
                                });
    }

    void expired() {
        if (closed_)
            return;
        if (!parser_.done() && response_.empty() && on_refused_)
            on_refused_(408, std::make_error_code(std::errc::timed_out));
        close();
    }

    void close() {
        if (closed_)
            return;
        closed_ = true;
        timer_.cancel();
        std::error_code ignored;
        lowest_layer().close(ignored);
    }

    auto& lowest_layer() {
        if constexpr (requires { stream_.lowest_layer(); })
            return stream_.lowest_layer();
        else
            return stream_;
    }

    Stream stream_;
    web_options options_;
    http::request_parser parser_;
    asio::steady_timer timer_;
    std::chrono::milliseconds deadline_;
    upgrade_handler on_upgrade_;
    refusal_handler on_refused_;
    std::function<void()> on_end_;
    // Small: a door lives through every WebSocket handshake, and a storm of
    // them (10,000 clients connecting at once) holds a door each, whose heap
    // stays with the process after the upgrades. A browser's request head
    // (about 0.5-1.5 KiB) takes one to three reads of it.
    std::array<char, 512> chunk_{};
    std::string response_;
    bool closed_ = false;
};

} // namespace parley::chat::transport

#endif
