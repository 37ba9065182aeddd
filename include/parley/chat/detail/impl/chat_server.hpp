// parley chat: the server's listeners, connections and accessors.
#ifndef PARLEY_CHAT_DETAIL_IMPL_CHAT_SERVER_HPP
#define PARLEY_CHAT_DETAIL_IMPL_CHAT_SERVER_HPP

namespace parley::chat::detail {

inline chat_server::chat_server(asio::any_io_executor executor, server_options options)
    : executor_(std::move(executor)), options_(std::move(options)), chat_(asio::make_strand(executor_)),
      control_(asio::make_strand(executor_)), frame_acceptor_(control_), line_acceptor_(control_),
      web_acceptor_(control_),
      wakeup_(chat_), sweep_(chat_),
      core_([this] {
          // Keep every event within max_event_bytes: a message's text at
          // most doubles when escaped for JSON.
          options_.max_message_bytes = std::min<std::size_t>(options_.max_message_bytes, 256 * 1024);
          return core_options(options_, options_.backplane ? options_.backplane->history_length() : 0);
      }()) {
    if (options_.outbound_budget.max_bytes != 0)
        budget_ = std::make_shared<outbound_budget>(options_.outbound_budget);
}

inline void chat_server::start(std::error_code& ec) {
    ec.clear();
    if (started_.exchange(true)) {
        ec = error::invalid_argument;
        start_error_ = "the server was started already";
        return;
    }
    if (options_.prompt.size() > 4096 || !is_valid_utf8(options_.prompt) ||
        room_name_problem(canonical_room(options_.default_room)) ||
        options_.max_message_bytes == 0 || options_.max_frame_bytes == 0 ||
        options_.max_line_bytes == 0) {
        ec = error::invalid_argument;
        start_error_ = "invalid options: the prompt must be UTF-8 of at most 4096 bytes, "
                       "the default room a valid room name, and the limits above 0";
        return;
    }
    const auto& f = options_.flood;
    if (f.messages_per_second < 0 || f.bytes_per_second < 0 ||
        (f.messages_per_second > 0 &&
         (f.burst_messages == 0 || f.burst_bytes == 0 || f.bytes_per_second == 0))) {
        ec = error::invalid_argument;
        start_error_ = "invalid flood limits: rates must not be negative, and with flood "
                       "control on, the byte rate and both bursts must be above 0";
        return;
    }
    options_.default_room = canonical_room(options_.default_room);
    if (!listen(frame_acceptor_, options_.port, ec))
        return;
    frame_port_ = frame_acceptor_.local_endpoint().port();
    if (options_.line_port) {
        if (!listen(line_acceptor_, *options_.line_port, ec)) {
            std::error_code ignored;
            frame_acceptor_.close(ignored);
            return;
        }
        line_port_ = line_acceptor_.local_endpoint().port();
    }
    if (options_.web_port) {
        if (!listen(web_acceptor_, *options_.web_port, ec)) {
            std::error_code ignored;
            frame_acceptor_.close(ignored);
            line_acceptor_.close(ignored);
            return;
        }
        web_port_ = web_acceptor_.local_endpoint().port();
    }
    if (options_.backplane) {
        std::weak_ptr<chat_server> weak = weak_from_this();
        link_ = std::make_unique<cluster::link>(
            options_.backplane,
            [weak](cluster::core_step step) {
                if (auto self = weak.lock())
                    self->run(std::move(step));
            },
            [weak] {
                presence_entries out;
                if (auto self = weak.lock()) {
                    std::lock_guard lock(self->mutex_);
                    out = self->core_.local_presence();
                }
                return out;
            });
        link_->start();
    }
    if (options_.history_store && options_.backplane && options_.backplane->history_length() != 0)
        emit("history: the history store is not used: the backplane keeps a shared history");
    // With a store, connections wait in the listen backlog until its rooms
    // are loaded.
    // The executor's work until then: its run() must not return while the
    // store, maybe on another executor, loads.
    if (core_.settings().stored)
        return load_history(
            [self = shared_from_this(),
             work = std::make_shared<asio::executor_work_guard<asio::any_io_executor>>(executor_)] {
                self->start_accepting();
            });
    start_accepting();
}

inline void chat_server::start_accepting() {
    asio::post(chat_, [self = shared_from_this()] { self->arm_sweep(); });
    asio::dispatch(control_, [self = shared_from_this()] {
        if (!self->frame_acceptor_.is_open())
            return; // stopped meanwhile
        self->accept(self->frame_acceptor_, port_kind::framed);
        if (self->line_acceptor_.is_open())
            self->accept(self->line_acceptor_, port_kind::line);
        if (self->web_acceptor_.is_open())
            self->accept(self->web_acceptor_, port_kind::web);
    });
}

inline void chat_server::stop(std::chrono::milliseconds flush_deadline) {
    std::vector<std::function<void()>> handshakes;
    {
        std::lock_guard lock(mutex_);
        if (stopping_)
            return;
        stopping_ = true;
        for (auto& [id, cancel] : handshaking_)
            handshakes.push_back(std::move(cancel));
        handshaking_.clear();
    }
    run([self = shared_from_this(), flush_deadline](core::chat& c, core::actions& out) {
        c.stop(flush_deadline, core::moment::now(), out);
        // After the cluster leaves above are sent (the actions run first).
        asio::post(self->chat_, [self] {
            if (self->link_)
                self->link_->stop();
            self->wakeup_.cancel();
            self->sweep_.cancel();
        });
    });
    asio::post(control_, [self = shared_from_this()] {
        std::error_code ignored;
        self->frame_acceptor_.close(ignored);
        self->line_acceptor_.close(ignored);
        self->web_acceptor_.close(ignored);
    });
    for (auto& cancel : handshakes)
        cancel();
}

inline std::vector<client_info> chat_server::clients() const {
    std::lock_guard lock(mutex_);
    std::vector<client_info> out;
    for (auto& v : core_.clients()) {
        auto it = connections_.find(v.id);
        out.push_back({v.id, std::move(v.nick), std::move(v.peer), v.interactive, std::move(v.rooms),
                       std::move(v.current_room),
                       it == connections_.end() ? session_stats{} : it->second.session->stats()});
    }
    return out;
}

inline hub_counters chat_server::counters() const {
    hub_counters out;
    const auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    out.published = get(hits_.published);
    out.deliveries = get(hits_.deliveries);
    out.dropped = get(hits_.dropped);
    out.slow_disconnects = get(hits_.slow_disconnects);
    out.failed_deliveries = get(hits_.failed);
    std::lock_guard lock(mutex_);
    out.rooms = core_.room_count();
    out.members = core_.member_count();
    return out;
}

inline limit_counters chat_server::limits() const {
    limit_counters out;
    const auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    {
        std::lock_guard lock(mutex_);
        const auto& h = core_.hits();
        out.nickname_timeouts = h.nickname_timeouts;
        out.idle_timeouts = h.idle_timeouts;
        out.pings_sent = h.pings_sent;
        out.frames_too_large = h.frames_too_large;
        out.lines_too_long = h.lines_too_long;
        out.server_full = h.server_full;
        out.address_full = h.address_full;
        out.rate_limited = h.rate_limited;
        out.flood_disconnects = h.flood_disconnects;
        out.resumes = h.resumes;
        out.resumes_failed = h.resumes_failed;
        out.graces_expired = h.graces_expired;
    }
    out.write_timeouts = get(hits_.write_timeouts);
    out.slow_consumers = get(hits_.slow_disconnects);
    out.accept_pauses = get(hits_.accept_pauses);
    if (budget_) {
        out.budget_refusals = budget_->refusals();
        out.outbound_bytes = budget_->used();
        out.outbound_peak_bytes = budget_->peak();
    }
    return out;
}

// --- listening ------------------------------------------------------------------------

inline bool chat_server::listen(asio::ip::tcp::acceptor& acceptor, std::uint16_t port,
                                std::error_code& ec) {
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) {
        start_error_ = "invalid address '" + options_.host + "' (use a numeric IPv4 or IPv6 address)";
        return false;
    }
    const asio::ip::tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        start_error_ = "cannot listen on " + endpoint_string(endpoint);
        std::error_code ignored;
        acceptor.close(ignored);
        return false;
    }
    return true;
}

// The strand of one connection. On an io_context's own executor it is a
// strand of that concrete executor, small enough for any_io_executor's
// inline storage: a strand over the polymorphic executor is not, and each
// post to a session (a flush per recipient of every event) then copied it
// to the heap several times (13.8 allocations per recipient per message,
// bench/alloc/chat_allocs.py).
// With server_options::single_threaded there is no other thread to keep a
// connection's handlers from: the executor itself.
inline asio::any_io_executor connection_strand(const asio::any_io_executor& executor,
                                               bool single_threaded) {
    if (single_threaded)
        return executor;
    if (const auto* io = parley::detail::plain_io_executor(executor))
        return asio::make_strand(*io);
    return asio::make_strand(executor);
}

// Runs on control_. An accept error (out of descriptors, a connection reset
// before it was accepted) must not end the loop: pause, retry.
inline void chat_server::accept(asio::ip::tcp::acceptor& acceptor, port_kind kind) {
    acceptor.async_accept(
        connection_strand(executor_, options_.single_threaded),
        [self = shared_from_this(), &acceptor, kind](std::error_code ec, auto socket) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open())
                return;
            if (ec) {
                const auto wait = self->backoff_.failed(ec);
                if (wait.count() == 0)
                    return self->accept(acceptor, kind);
                self->hits_.accept_pauses.fetch_add(1, std::memory_order_relaxed);
                self->emit("accept failed: " + ec.message() + "; pausing " +
                           std::to_string(wait.count()) + " ms");
                auto pause = std::make_shared<asio::steady_timer>(self->control_, wait);
                pause->async_wait([self, pause, &acceptor, kind](std::error_code) {
                    if (acceptor.is_open())
                        self->accept(acceptor, kind);
                });
                return;
            }
            self->backoff_.succeeded();
            self->on_accept(asio::ip::tcp::socket(std::move(socket)), kind);
            self->accept(acceptor, kind);
        });
}

inline void chat_server::on_accept(asio::ip::tcp::socket socket, port_kind kind) {
    std::error_code ec;
    socket.set_option(asio::ip::tcp::no_delay(true), ec);
    if (options_.send_buffer_bytes != 0)
        socket.set_option(
            asio::socket_base::send_buffer_size(static_cast<int>(options_.send_buffer_bytes)), ec);
    const auto remote = socket.remote_endpoint(ec);
    std::string peer = ec ? std::string("unknown peer") : endpoint_string(remote);
    if (options_.tls)
        return options_.tls->accept(shared_from_this(), std::move(socket), kind, std::move(peer));
    adopt(std::move(socket), kind, std::move(peer));
}

// --- connections ------------------------------------------------------------------------

template <class Stream>
void chat_server::adopt(Stream stream, port_kind kind, std::string peer) {
    if (kind == port_kind::web)
        return open_door(std::move(stream), std::move(peer));
    const bool line = kind == port_kind::line;
    auto s = enter(std::move(stream), line ? transport::encoding::line : transport::encoding::framed,
                   std::move(peer));
    if (!line)
        s->stream().max_payload(options_.max_frame_bytes);
    // Reading may start at once: inputs reach the core after its arrival,
    // on the same strand, in order.
    asio::dispatch(s->get_executor(), [self = shared_from_this(), s, line] {
        if (!line)
            return s->read_with(transport::frame_input<chat_server>(self, s->id()));
        s->read_with(
            transport::line_input<chat_server>(self, s->id(), self->options_.max_line_bytes));
    });
}

// A new connection's session, known to the core (its arrival is on the
// chat strand before any of its inputs).
template <class Stream>
std::shared_ptr<parley::session<Stream>> chat_server::enter(Stream stream, transport::encoding how,
                                                            std::string peer) {
    auto s = std::make_shared<parley::session<Stream>>(
        std::move(stream), session_options{.queue = options_.queue,
                                           .write_timeout = options_.write_timeout,
                                           .budget = budget_});
    s->encoding(static_cast<std::size_t>(how));
    const core::conn_id id = s->id();
    // Weak: the session must not keep the server alive.
    s->on_close([weak = weak_from_this(), id](session_base&, std::error_code reason) {
        if (auto self = weak.lock())
            self->on_closed(id, reason);
    });
    // Line-mode users are people at a terminal (longer idle deadline, no
    // pings); framed and WebSocket clients are programs and pages.
    const bool interactive = how == transport::encoding::line;
    run([self = shared_from_this(), s, interactive, peer = std::move(peer)](
            core::chat& c, core::actions& out) mutable {
        self->connections_.emplace(s->id(), connection{s, s->encoding(), nullptr});
        std::string address = address_of(peer);
        c.connect(s->id(), {std::move(peer), std::move(address), interactive}, core::moment::now(), out);
    });
    return s;
}

inline void chat_server::on_closed(core::conn_id id, std::error_code reason) {
    if (reason == error::write_timeout)
        hits_.write_timeouts.fetch_add(1, std::memory_order_relaxed);
    if (reason == error::slow_consumer)
        hits_.slow_disconnects.fetch_add(1, std::memory_order_relaxed);
    run([self = shared_from_this(), id, reason](core::chat& c, core::actions& out) {
        auto it = self->connections_.find(id);
        if (it != self->connections_.end()) {
            if (it->second.close_timer)
                it->second.close_timer->cancel();
            self->connections_.erase(it);
        }
        c.closed(id, departure_of(reason), reason.message(), core::moment::now(), out);
    });
}

inline void chat_server::handshake_failed(const std::string& peer, std::error_code ec,
                                          const std::string& why) {
    {
        std::lock_guard lock(mutex_);
        if (ec == error::timed_out)
            ++security_.tls_handshake_timeouts;
        else
            ++security_.tls_handshake_failures;
    }
    emit("tls: handshake with " + peer + " failed: " + why);
}

// False (and the connection is to be dropped) when too many are under way
// or the server is stopping; `cancel` is called on stop() while it runs.
inline bool chat_server::handshake_started(std::uint64_t id, std::function<void()> cancel,
                                           std::uint64_t security_counters::*refused) {
    std::lock_guard lock(mutex_);
    if (stopping_ || handshaking_.size() >= options_.max_clients) {
        ++(security_.*refused);
        return false;
    }
    handshaking_.emplace(id, std::move(cancel));
    return true;
}

} // namespace parley::chat::detail

#endif
