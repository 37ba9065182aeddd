// parley: the async client's connection state machine (connecting,
// sending, closing, reconnecting); its read and write paths are in
// parley/client/detail/client_io.hpp.
#ifndef PARLEY_CLIENT_DETAIL_CLIENT_IMPL_HPP
#define PARLEY_CLIENT_DETAIL_CLIENT_IMPL_HPP

#include <parley/hub/message.hpp>

#include <asio/basic_waitable_timer.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/error.hpp>

#include <random>
#include <vector>

namespace parley::detail {

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

    // Reading and writing: parley/client/detail/client_io.hpp.
    void read_next(const std::shared_ptr<connection>& conn);
    void on_read(const std::shared_ptr<connection>& conn, std::error_code ec,
                 frame_view frame);
    void schedule_flush(const std::shared_ptr<connection>& conn);
    void flush(const std::shared_ptr<connection>& conn);
    void shut_send(const std::shared_ptr<connection>& conn);
    void write_failed(std::error_code ec);

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

} // namespace parley::detail

#include <parley/client/detail/client_io.hpp>

#endif
