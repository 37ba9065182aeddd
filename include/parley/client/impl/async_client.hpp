// parley: async_client bodies and operations.
#ifndef PARLEY_CLIENT_IMPL_ASYNC_CLIENT_HPP
#define PARLEY_CLIENT_IMPL_ASYNC_CLIENT_HPP

#include <parley/hub/message.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/compose.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <random>
#include <vector>

namespace parley {

inline std::string_view to_string(client_state state) noexcept {
    switch (state) {
    case client_state::idle:
        return "idle";
    case client_state::connecting:
        return "connecting";
    case client_state::connected:
        return "connected";
    case client_state::reconnecting:
        return "reconnecting";
    case client_state::closing:
        return "closing";
    case client_state::closed:
        return "closed";
    }
    return "unknown";
}

inline std::string client_event::describe() const {
    auto unsent_text = [this] {
        return unsent == 0 ? std::string()
                           : "; " + std::to_string(unsent) +
                                 (unsent == 1 ? " unsent frame dropped" : " unsent frames dropped");
    };
    switch (what) {
    case kind::connect_progress:
        return progress.describe();
    case kind::connected:
        return "connected to " + detail::endpoint_text(endpoint);
    case kind::disconnected: {
        std::string text = "connection to " + detail::endpoint_text(endpoint);
        text += error == asio::error::eof ? std::string(" closed by the peer")
                                          : " lost: " + error.message();
        text += unsent_text();
        if (reconnecting)
            text += "; reconnecting in " + std::to_string(next_delay.count()) + " ms";
        return text;
    }
    case kind::closed:
        return (error ? "closed: " + error.message() : std::string("closed")) + unsent_text();
    }
    return "client event";
}

namespace detail {

template <class Executor, class Transport>
class client_impl : public std::enable_shared_from_this<client_impl<Executor, Transport>> {
public:
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, Executor>;
    using stream_type = typename Transport::stream_type;
    using timer_type =
        asio::basic_waitable_timer<std::chrono::steady_clock,
                                   asio::wait_traits<std::chrono::steady_clock>, Executor>;
    using endpoint_type = asio::ip::tcp::endpoint;
    using frame_handler = std::function<void(frame_view)>;
    using event_handler = std::function<void(const client_event&)>;

    // One connection's stream and queue. Handlers capture the connection
    // they were started for; once the client has moved on (conn_ points
    // elsewhere) they only let go of it, so a late completion can never
    // touch a newer connection, and the buffers a write was lent stay
    // alive until that write is done.
    struct connection {
        connection(stream_type&& s, const queue_limits& limits)
            : stream(std::move(s)), queue(limits) {}
        framed_stream<stream_type> stream;
        outbound_queue queue;
        std::vector<asio::const_buffer> buffers;
        endpoint_type peer;
        std::chrono::steady_clock::time_point since;
        bool writing = false;
        bool flush_posted = false;
        bool send_shut = false; // our side is shut down (closing)
        bool read_eof = false;  // the peer's side is
    };

    client_impl(const Executor& ex, client_options options, Transport transport)
        : ex_(ex), options_(std::move(options)), transport_(std::move(transport)),
          codec_(options_.max_payload), connecting_(ex),
          backoff_timer_(ex), close_timer_(ex), done_(ex), rng_(std::random_device{}()) {
        done_.expires_at(timer_type::time_point::max());
    }

    const Executor& executor() const noexcept { return ex_; }
    client_state state() const noexcept { return state_; }
    const std::shared_ptr<connection>& current() const noexcept { return conn_; }
    std::error_code close_result() const noexcept { return close_result_; }

    void set_frame_handler(frame_handler h) {
        on_frame_ = h ? std::make_shared<frame_handler>(std::move(h)) : nullptr;
    }
    void set_event_handler(event_handler h) {
        on_event_ = h ? std::make_shared<event_handler>(std::move(h)) : nullptr;
    }

    // --- connecting ----------------------------------------------------------

    // The state change of async_connect(); an error if it is not allowed.
    std::error_code begin_connect(std::string_view host, std::uint16_t port) {
        switch (state_) {
        case client_state::idle:
        case client_state::closed:
            break;
        case client_state::connecting:
        case client_state::reconnecting:
            return asio::error::already_started;
        case client_state::connected:
        case client_state::closing:
            return asio::error::already_connected;
        }
        host_ = host;
        port_ = port;
        quick_drops_ = 0;
        close_result_.clear();
        state_ = client_state::connecting;
        return {};
    }

    // The connect options, reporting progress as events.
    connect_options connect_options_for_events() {
        connect_options options = options_.connect;
        options.on_state = [this](const connect_event& step) {
            client_event e;
            e.what = client_event::kind::connect_progress;
            e.progress = step;
            emit(e);
        };
        return options;
    }

    socket_type& connecting_socket() noexcept { return connecting_; }
    asio::cancellation_slot connect_slot() noexcept { return connect_signal_.slot(); }

    void cancel_connect(asio::cancellation_type type) { connect_signal_.emit(type); }

    const Transport& transport() const noexcept { return transport_; }

    // The TCP connect of async_connect() finished: secure the connection
    // (TLS handshake), then call `done(ec)`.
    template <class Handler>
    void connected(std::error_code ec, const endpoint_type& peer, Handler&& done) {
        if (ec || state_ != client_state::connecting)
            return std::forward<Handler>(done)(ec);
        secure(peer, client_state::connecting, std::forward<Handler>(done));
    }

    // async_connect() finished; returns the result to hand to its caller.
    std::error_code connect_finished(std::error_code ec) {
        if (state_ != client_state::connecting) {
            // close() or abort() came first and has reported it.
            std::error_code ignored;
            connecting_.close(ignored);
            secured_.reset();
            return ec ? ec : std::error_code(asio::error::operation_aborted);
        }
        if (ec) {
            end(ec, 0);
            return ec;
        }
        establish();
        return {};
    }

    // --- sending ---------------------------------------------------------------

    bool send(std::span<const std::byte> payload, std::error_code& ec) {
        if (state_ != client_state::connected) {
            ec = state_ == client_state::closing || state_ == client_state::closed
                     ? std::error_code(error::session_closed)
                     : std::error_code(asio::error::not_connected);
            return false;
        }
        auto frame = make_frame_message(codec_, payload, ec);
        if (ec)
            return false;
        if (conn_->queue.push(std::move(frame)) == outbound_queue::push_result::overflow) {
            ec = error::queue_full;
            return false;
        }
        ec.clear();
        schedule_flush(conn_);
        return true;
    }

    // --- closing ---------------------------------------------------------------

    // Starts a graceful close within `timeout` (negative: the option's).
    // Returns true when there is nothing to wait for: never connected,
    // already closed, or only connecting (which stops).
    bool begin_close(std::chrono::milliseconds timeout) {
        switch (state_) {
        case client_state::idle:
        case client_state::closed:
            return true;
        case client_state::connecting:
        case client_state::reconnecting:
            stop_connecting();
            end({}, 0);
            return true;
        case client_state::closing:
            return false;
        case client_state::connected:
            break;
        }
        state_ = client_state::closing;
        auto conn = conn_;
        close_timer_.expires_after(timeout.count() < 0 ? options_.close_timeout : timeout);
        close_timer_.async_wait([self = this->shared_from_this(), conn](std::error_code ec) {
            if (ec || conn != self->conn_ || self->state_ != client_state::closing)
                return;
            const bool written = conn->send_shut;
            self->finish(written ? std::error_code() : std::error_code(error::timed_out));
        });
        if (!conn->writing && !conn->flush_posted)
            flush(conn); // shuts the sending side down if nothing is queued
        return false;
    }

    void abort() {
        switch (state_) {
        case client_state::idle:
        case client_state::closed:
            return;
        case client_state::connecting:
        case client_state::reconnecting:
            stop_connecting();
            end(asio::error::operation_aborted, 0);
            return;
        case client_state::connected:
        case client_state::closing:
            finish(asio::error::operation_aborted);
            return;
        }
    }

    // The handle is going away: no handler may be called any more.
    void detach() {
        on_frame_.reset();
        on_event_.reset();
        abort();
    }

    timer_type& done_timer() noexcept { return done_; }

private:
    void emit(const client_event& e) {
        if (auto handler = on_event_) // a copy: the handler may replace itself
            (*handler)(e);
    }

    void stop_connecting() {
        connect_signal_.emit(asio::cancellation_type::terminal);
        backoff_timer_.cancel();
        std::error_code ignored;
        connecting_.close(ignored);
        transport_.cancel(); // a handshake under way
    }

    // Hands the connected socket to the transport (a TLS handshake); the
    // result waits in secured_ for establish(). `done(ec)` follows, unless
    // the client has left state `during` meanwhile (then with
    // operation_aborted).
    template <class Handler>
    void secure(const endpoint_type& peer, client_state during, Handler&& done) {
        if (options_.no_delay) {
            std::error_code ignored;
            connecting_.set_option(asio::ip::tcp::no_delay(true), ignored);
        }
        auto socket = std::move(connecting_);
        connecting_ = socket_type(ex_);
        secured_peer_ = peer;
        transport_.async_secure(
            std::move(socket), host_,
            [self = this->shared_from_this(), during,
             done = std::forward<Handler>(done)](std::error_code ec, stream_type stream) mutable {
                if (!ec && self->state_ == during)
                    self->secured_.emplace(std::move(stream));
                else if (!ec)
                    ec = asio::error::operation_aborted;
                done(ec);
            });
    }

    void establish() {
        auto conn = std::make_shared<connection>(std::move(*secured_), options_.queue);
        secured_.reset();
        const endpoint_type peer = secured_peer_;
        conn->stream.max_payload(options_.max_payload);
        conn->peer = peer;
        conn->since = std::chrono::steady_clock::now();
        conn_ = conn;
        state_ = client_state::connected;
        read_next(conn);
        client_event e;
        e.what = client_event::kind::connected;
        e.endpoint = peer;
        emit(e);
    }

    // --- reading ---------------------------------------------------------------

    void read_next(const std::shared_ptr<connection>& conn) {
        conn->stream.async_read_frame(
            [self = this->shared_from_this(), conn](std::error_code ec, frame_view frame) {
                self->on_read(conn, ec, frame);
            });
    }

    void on_read(const std::shared_ptr<connection>& conn, std::error_code ec, frame_view frame) {
        // Every frame of one read is handed out before the next read.
        while (!ec) {
            if (conn != conn_)
                return;
            if (auto handler = on_frame_)
                (*handler)(frame);
            if (conn != conn_)
                return;
            auto next = conn->stream.read_buffered_frame(ec);
            if (!next) {
                if (!ec)
                    return read_next(conn);
                break;
            }
            frame = *next;
        }
        if (conn != conn_)
            return;
        if (state_ == client_state::closing) {
            if (ec != asio::error::eof)
                return finish(conn->send_shut ? std::error_code() : ec);
            // The peer is done sending; it may still be reading, so what
            // is queued still goes out.
            conn->read_eof = true;
            if (conn->send_shut)
                finish({});
            return;
        }
        lost(ec);
    }

    // --- writing ---------------------------------------------------------------

    void schedule_flush(const std::shared_ptr<connection>& conn) {
        if (conn->writing || conn->flush_posted)
            return;
        // Posted, so that frames sent one after another by the same
        // handler leave together in one gathered write.
        conn->flush_posted = true;
        asio::post(ex_, [self = this->shared_from_this(), conn] {
            conn->flush_posted = false;
            if (conn == self->conn_)
                self->flush(conn);
        });
    }

    void flush(const std::shared_ptr<connection>& conn) {
        if (conn->writing)
            return;
        if (conn->queue.empty()) {
            if (state_ == client_state::closing && !conn->send_shut)
                shut_send(conn);
            return;
        }
        conn->buffers.resize(max_buffers_per_write);
        const std::size_t count = conn->queue.take(std::span<asio::const_buffer>(conn->buffers));
        conn->buffers.resize(count);
        conn->writing = true;
        asio::async_write(conn->stream.next_layer(),
                          std::span<const asio::const_buffer>(conn->buffers),
                          [self = this->shared_from_this(), conn](std::error_code ec,
                                                                  std::size_t written) {
                              conn->writing = false;
                              conn->queue.consume(written);
                              if (conn != self->conn_)
                                  return;
                              if (ec)
                                  return self->write_failed(ec);
                              self->flush(conn);
                          });
    }

    void shut_send(const std::shared_ptr<connection>& conn) {
        conn->writing = true; // nothing else goes out after this
        transport_.async_shutdown_send(conn->stream.next_layer(),
                                       [self = this->shared_from_this(), conn] {
                                           conn->writing = false;
                                           if (conn != self->conn_)
                                               return;
                                           conn->send_shut = true;
                                           if (conn->read_eof)
                                               self->finish({});
                                       });
    }

    void write_failed(std::error_code ec) {
        if (state_ == client_state::closing)
            return finish(ec);
        lost(ec);
    }

    // --- endings ---------------------------------------------------------------

    // An established connection ended without close(): reconnect or stop.
    void lost(std::error_code ec) {
        auto conn = std::move(conn_);
        const std::size_t unsent = conn->queue.size();
        close_socket(Transport::socket(conn->stream.next_layer()));
        client_event e;
        e.what = client_event::kind::disconnected;
        e.endpoint = conn->peer;
        e.error = ec;
        e.unsent = unsent;
        if (!options_.reconnect) {
            state_ = client_state::closed;
            emit(e);
            return end(ec, 0);
        }
        // Backoff grows while connections die young, so a server that
        // accepts and drops at once is not hammered.
        const auto lived = std::chrono::steady_clock::now() - conn->since;
        quick_drops_ = lived < healthy_connection ? quick_drops_ + 1 : 1;
        const auto delay = jittered_backoff_delay(options_.connect, quick_drops_, rng_);
        state_ = client_state::reconnecting;
        e.reconnecting = true;
        e.next_delay = delay;
        emit(e);
        if (state_ != client_state::reconnecting)
            return; // the handler closed the client
        backoff_timer_.expires_after(delay);
        backoff_timer_.async_wait([self = this->shared_from_this()](std::error_code wait_ec) {
            if (wait_ec || self->state_ != client_state::reconnecting)
                return;
            self->reconnect();
        });
    }

    void reconnect() {
        parley::async_connect(
            connecting_, host_, port_, connect_options_for_events(),
            asio::bind_cancellation_slot(
                connect_signal_.slot(),
                [self = this->shared_from_this()](std::error_code ec, endpoint_type peer) {
                    if (self->state_ != client_state::reconnecting) {
                        std::error_code ignored;
                        self->connecting_.close(ignored);
                        return;
                    }
                    if (ec)
                        return self->end(ec, 0);
                    self->secure(peer, client_state::reconnecting, [self](std::error_code sec) {
                        if (self->state_ != client_state::reconnecting) {
                            self->secured_.reset();
                            return;
                        }
                        if (sec)
                            return self->end(sec, 0);
                        self->establish();
                    });
                }));
    }

    // Ends the current connection for good (close finished, abort, or a
    // failure during close).
    void finish(std::error_code ec) {
        auto conn = std::move(conn_);
        std::size_t unsent = 0;
        if (conn) {
            unsent = conn->queue.size();
            close_socket(Transport::socket(conn->stream.next_layer()));
        }
        close_timer_.cancel();
        end(ec, unsent);
    }

    // Enters the closed state, reports it, wakes async_close() callers.
    void end(std::error_code ec, std::size_t unsent) {
        state_ = client_state::closed;
        close_result_ = ec;
        client_event e;
        e.what = client_event::kind::closed;
        e.error = ec;
        e.unsent = unsent;
        emit(e);
        done_.cancel();
    }

    static void close_socket(socket_type& socket) {
        std::error_code ignored;
        socket.shutdown(asio::socket_base::shutdown_both, ignored);
        socket.close(ignored);
    }

    static constexpr std::size_t max_buffers_per_write = 256;
    static constexpr std::chrono::seconds healthy_connection{5};

    Executor ex_;
    client_options options_;
    Transport transport_;
    frame_codec<> codec_;
    client_state state_ = client_state::idle;
    std::string host_;
    std::uint16_t port_ = 0;
    socket_type connecting_;
    std::optional<stream_type> secured_;  // connected and secured, not yet established
    endpoint_type secured_peer_;
    asio::cancellation_signal connect_signal_;
    timer_type backoff_timer_;
    timer_type close_timer_;
    timer_type done_; // never expires; cancelled to wake async_close() callers
    std::shared_ptr<connection> conn_;
    std::shared_ptr<frame_handler> on_frame_;
    std::shared_ptr<event_handler> on_event_;
    std::error_code close_result_;
    unsigned quick_drops_ = 0;
    std::minstd_rand rng_;
};

template <class Executor, class Transport>
struct client_connect_op {
    using port_type = std::uint16_t;
    std::shared_ptr<client_impl<Executor, Transport>> impl;
    std::string host;
    std::uint16_t port;
    std::error_code early_error{};
    enum class phase : unsigned char { start, on_executor, posted } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::start) {
            // The client's state is only touched on its executor, whichever
            // thread starts the operation (use_future, for one).
            at = phase::on_executor;
            auto ex = impl->executor();
            return asio::dispatch(ex, std::move(self));
        }
        if (at == phase::posted)
            return self.complete(early_error, asio::ip::tcp::endpoint());
        early_error = impl->begin_connect(host, port);
        if (early_error) {
            at = phase::posted;
            return asio::post(std::move(self));
        }
        // The inner connect listens to the client's own signal, so that
        // close() and abort() can stop it too; the caller's cancellation
        // is forwarded to that signal.
        auto slot = self.get_cancellation_state().slot();
        if (slot.is_connected())
            slot.assign([impl = impl.get()](asio::cancellation_type type) {
                impl->cancel_connect(type);
            });
        // Everything the call needs is taken out before `self` (and this
        // object with it) is moved into the handler.
        auto& client = *impl;
        const std::string where = std::move(host);
        client_connect_op::port_type at = port;
        parley::async_connect(client.connecting_socket(), where, at,
                              client.connect_options_for_events(),
                              asio::bind_cancellation_slot(client.connect_slot(), std::move(self)));
    }

    // The TCP connect finished: secure the connection (TLS) next.
    template <class Self>
    void operator()(Self& self, std::error_code ec, asio::ip::tcp::endpoint peer) {
        auto& client = *impl;
        client.connected(ec, peer, std::move(self));
    }

    // Secured (or failed).
    template <class Self>
    void operator()(Self& self, std::error_code ec) {
        ec = impl->connect_finished(ec);
        const auto peer = impl->current() ? impl->current()->peer : asio::ip::tcp::endpoint();
        self.complete(ec, ec ? asio::ip::tcp::endpoint() : peer);
    }
};

template <class Executor, class Transport>
struct client_close_op {
    std::shared_ptr<client_impl<Executor, Transport>> impl;
    std::chrono::milliseconds timeout;
    enum class phase : unsigned char { start, on_executor, posted, waiting } at = phase::start;

    template <class Self>
    void operator()(Self& self) {
        if (at == phase::start) {
            at = phase::on_executor;
            auto ex = impl->executor();
            return asio::dispatch(ex, std::move(self));
        }
        if (at == phase::posted)
            return self.complete(std::error_code());
        if (impl->begin_close(timeout)) {
            at = phase::posted; // nothing to wait for: success
            return asio::post(std::move(self));
        }
        at = phase::waiting;
        impl->done_timer().async_wait(std::move(self));
    }

    // The close finished (the timer was cancelled to say so), or the
    // caller cancelled the wait: then the connection is aborted.
    template <class Self>
    void operator()(Self& self, std::error_code) {
        if (impl->state() != client_state::closed)
            impl->abort();
        self.complete(impl->close_result());
    }
};

} // namespace detail

template <class Executor, class Transport>
basic_async_client<Executor, Transport>::basic_async_client(const executor_type& ex,
                                                           client_options options,
                                                           Transport transport)
    : impl_(std::make_shared<detail::client_impl<Executor, Transport>>(ex, std::move(options),
                                                                       std::move(transport))) {}

template <class Executor, class Transport>
basic_async_client<Executor, Transport>& basic_async_client<Executor, Transport>::operator=(
    basic_async_client&& other) noexcept {
    if (this != &other) {
        if (impl_)
            impl_->detach();
        impl_ = std::move(other.impl_);
    }
    return *this;
}

template <class Executor, class Transport>
basic_async_client<Executor, Transport>::~basic_async_client() {
    if (impl_)
        impl_->detach();
}

template <class Executor, class Transport>
auto basic_async_client<Executor, Transport>::get_executor() const noexcept -> executor_type {
    return impl_->executor();
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::on_frame(frame_handler handler) {
    impl_->set_frame_handler(std::move(handler));
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::on_event(event_handler handler) {
    impl_->set_event_handler(std::move(handler));
}

template <class Executor, class Transport>
template <asio::completion_token_for<connect_signature> Token>
auto basic_async_client<Executor, Transport>::async_connect(std::string_view host, std::uint16_t port,
                                                 Token&& token) {
    return asio::async_compose<Token, connect_signature>(
        detail::client_connect_op<Executor, Transport>{impl_, std::string(host), port}, token,
        impl_->executor());
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::span<const std::byte> payload, std::error_code& ec) {
    return impl_->send(payload, ec);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::string_view payload, std::error_code& ec) {
    return impl_->send(std::as_bytes(std::span(payload)), ec);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::span<const std::byte> payload) {
    std::error_code ignored;
    return impl_->send(payload, ignored);
}

template <class Executor, class Transport>
bool basic_async_client<Executor, Transport>::send(std::string_view payload) {
    std::error_code ignored;
    return impl_->send(std::as_bytes(std::span(payload)), ignored);
}

template <class Executor, class Transport>
template <asio::completion_token_for<void(std::error_code)> Token>
auto basic_async_client<Executor, Transport>::async_close(Token&& token) {
    return async_close(std::chrono::milliseconds(-1), std::forward<Token>(token));
}

template <class Executor, class Transport>
template <asio::completion_token_for<void(std::error_code)> Token>
auto basic_async_client<Executor, Transport>::async_close(std::chrono::milliseconds timeout, Token&& token) {
    // A negative timeout (the overload without one) means the option's.
    return asio::async_compose<Token, void(std::error_code)>(
        detail::client_close_op<Executor, Transport>{impl_, timeout}, token, impl_->executor());
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::close() {
    asio::dispatch(impl_->executor(),
                   [impl = impl_] { impl->begin_close(std::chrono::milliseconds(-1)); });
}

template <class Executor, class Transport>
void basic_async_client<Executor, Transport>::abort() {
    asio::dispatch(impl_->executor(), [impl = impl_] { impl->abort(); });
}

template <class Executor, class Transport>
client_state basic_async_client<Executor, Transport>::state() const noexcept {
    return impl_->state();
}

template <class Executor, class Transport>
std::size_t basic_async_client<Executor, Transport>::queued_frames() const noexcept {
    const auto& conn = impl_->current();
    return conn ? conn->queue.size() : 0;
}

template <class Executor, class Transport>
std::size_t basic_async_client<Executor, Transport>::queued_bytes() const noexcept {
    const auto& conn = impl_->current();
    return conn ? conn->queue.bytes() : 0;
}

template <class Executor, class Transport>
std::optional<asio::ip::tcp::endpoint> basic_async_client<Executor, Transport>::remote_endpoint() const {
    const auto& conn = impl_->current();
    if (!conn)
        return std::nullopt;
    return conn->peer;
}

template <class Executor, class Transport>
std::string basic_async_client<Executor, Transport>::describe(std::error_code ec) const {
    return impl_->transport().describe(ec);
}

} // namespace parley

#endif
