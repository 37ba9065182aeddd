// parley chat: server bodies.
#ifndef PARLEY_CHAT_IMPL_SERVER_HPP
#define PARLEY_CHAT_IMPL_SERVER_HPP

#include <parley/constant_time.hpp>
#include <parley/accept_backoff.hpp>
#include <parley/error.hpp>
#include <parley/line_codec.hpp>
#include <parley/message.hpp>
#include <parley/version.hpp>

#include <asio/dispatch.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <optional>
#include <utility>

namespace parley::chat::detail {

using chat_socket = asio::ip::tcp::socket;

// "127.0.0.1" of "127.0.0.1:5000", "[::1]" of "[::1]:5000"; empty for
// anything else ("unknown peer").
inline std::string address_of(std::string_view peer) {
    const auto colon = peer.rfind(':');
    return colon == std::string_view::npos ? std::string() : std::string(peer.substr(0, colon));
}

inline std::string endpoint_string(const asio::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

struct chat_client;

// A join waiting for its room's shared history (docs/SCALING.md, "Shared
// room history"): what is said to the joiner meanwhile, to follow the
// history. Guarded by chat_server::mutex_.
struct history_wait {
    struct held_event {
        std::array<message_ptr, 2> encodings;
        // Arrived from another instance before the read's answer: already
        // accounted for by the history (a stored message) or by the member
        // list sent after it (a join or leave).
        bool covered_by_read;
    };
    std::weak_ptr<chat_client> client;
    std::string room;
    join_event joined;           // the joiner's own, sent after the history
    std::uint64_t first_id = 0;  // ids first_id+1 .. first_id+history_length() are the history's
    std::deque<held_event> held;
    std::size_t held_bytes = 0;
    bool answered = false;       // the read's answer (or failure) came
    std::optional<std::vector<std::string>> history; // the answer, if it succeeded
};

// One connection, over whatever stream (TCP, TLS): the code that reads
// from it is templated on the stream and holds the typed session.
struct chat_client {
    chat_client(std::shared_ptr<session_base> s, asio::any_io_executor ex, bool line,
                std::string from, bool needs_token, std::string addr)
        : session(std::move(s)), executor(std::move(ex)), line_mode(line),
          peer(std::move(from)), address(std::move(addr)), authorized(!needs_token),
          deadline(executor), idle(executor) {}

    const std::shared_ptr<session_base> session;
    const asio::any_io_executor executor; // the session's strand
    const bool line_mode;
    const std::string peer;
    const std::string address; // the remote IP, counted per address; may be empty
    bool authorized; // guarded by chat_server::mutex_

    // Guarded by chat_server::mutex_.
    std::string nick, key;          // empty until a nickname is accepted
    std::vector<std::string> rooms; // joining order
    std::string current;            // where plain text goes
    bool gone = false;              // left the chat: never announce it twice
    std::optional<leave_reason> close_reason; // set when the server closes it
    std::uint64_t dropped = 0;      // messages dropped under drop_oldest
    bool claiming = false;          // a nickname claim is with the backplane
    std::shared_ptr<history_wait> wait; // a join waiting for the room's shared history
    bool awaiting_history = false;  // until that join is complete (on the strand only)
    std::deque<std::string> held;   // inputs meanwhile (on the strand only)

    // Used only on the session's strand.
    asio::steady_timer deadline; // nickname timeout, then closing timeout
    std::uint64_t deadline_generation = 0; // which arming a wake-up belongs to
    bool closing = false;
    line_decoder lines;
    std::vector<char> read_buffer;

    // Idle deadline and keepalive, on the session's strand.
    asio::steady_timer idle;
    std::chrono::steady_clock::time_point last_input{};
    bool pinged = false; // since the last input

    // Flood control (token buckets), on the session's strand.
    double message_tokens = 0, byte_tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
    std::size_t dropped_inputs = 0; // since the message bucket was last full
};

using client_ptr = std::shared_ptr<chat_client>;

class chat_server : public std::enable_shared_from_this<chat_server> {
public:
    chat_server(asio::any_io_executor executor, server_options options)
        : executor_(std::move(executor)), options_(std::move(options)),
          shared_history_(options_.backplane ? options_.backplane->history_length() : 0),
          hub_(hub_options{.history = shared_history_ != 0 ? history_limits{} : options_.history,
                           .thread_safe = true,
                           .on_slow_member =
                               [this](session_base& s, std::size_t dropped) {
                                   if (dropped != 0)
                                       note_dropped(s.id(), dropped);
                               }}),
          control_(asio::make_strand(executor_)), frame_acceptor_(control_),
          line_acceptor_(control_) {
        if (options_.outbound_budget.max_bytes != 0)
            budget_ = std::make_shared<outbound_budget>(options_.outbound_budget);
        // Keep every event within max_event_bytes: a message's text at
        // most doubles when escaped for JSON.
        options_.max_message_bytes = std::min<std::size_t>(options_.max_message_bytes, 256 * 1024);
    }

    const server_options& options() const noexcept { return options_; }

    void start(std::error_code& ec) {
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
            (f.messages_per_second > 0 && (f.burst_messages == 0 || f.burst_bytes == 0 ||
                                           f.bytes_per_second == 0))) {
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
        if (cluster_)
            start_cluster();
        asio::dispatch(control_, [self = shared_from_this()] {
            self->accept(self->frame_acceptor_, false);
            if (self->line_acceptor_.is_open())
                self->accept(self->line_acceptor_, true);
        });
    }

    const std::string& start_error() const noexcept { return start_error_; }
    std::uint16_t frame_port() const noexcept { return frame_port_; }
    std::uint16_t line_port() const noexcept { return line_port_; }

    void stop() { stop(options_.close_timeout); }

    void stop(std::chrono::milliseconds flush_deadline) {
        std::vector<client_ptr> all;
        std::vector<std::function<void()>> handshakes;
        {
            guard g(*this);
            if (stopping_)
                return;
            stopping_ = true;
            stop_deadline_ = flush_deadline;
            for (const auto& [id, c] : clients_)
                all.push_back(c);
            for (auto& [id, cancel] : handshaking_)
                handshakes.push_back(std::move(cancel));
            handshaking_.clear();
            g.log("shutdown: closing " + std::to_string(all.size()) + " connection(s)");
            for (const auto& c : all)
                if (!c->gone && !c->nick.empty())
                    cluster_leave(*c, leave_reason::disconnected, now());
        }
        if (cluster_)
            cluster_->stop();
        asio::post(control_, [self = shared_from_this()] {
            std::error_code ignored;
            self->frame_acceptor_.close(ignored);
            self->line_acceptor_.close(ignored);
        });
        for (auto& c : all)
            asio::post(c->executor, [self = shared_from_this(), c] { self->shut_down(c); });
        for (auto& cancel : handshakes)
            cancel();
    }

    std::vector<client_info> clients() const {
        std::lock_guard lock(mutex_);
        std::vector<client_info> out;
        out.reserve(clients_.size());
        for (const auto& [id, c] : clients_)
            out.push_back({id, c->nick, c->peer, c->line_mode, c->rooms, c->current,
                           c->session->stats()});
        return out;
    }

    hub_counters counters() const { return hub_.counters(); }

    backplane_counters cluster_counters() const {
        return cluster_ ? cluster_->counters() : backplane_counters{};
    }

    limit_counters limits() const {
        limit_counters out;
        const auto get = [](const std::atomic<std::uint64_t>& a) {
            return a.load(std::memory_order_relaxed);
        };
        out.nickname_timeouts = get(hits_.nickname_timeouts);
        out.idle_timeouts = get(hits_.idle_timeouts);
        out.pings_sent = get(hits_.pings_sent);
        out.write_timeouts = get(hits_.write_timeouts);
        out.slow_consumers = hub_.counters().slow_disconnects;
        out.frames_too_large = get(hits_.frames_too_large);
        out.lines_too_long = get(hits_.lines_too_long);
        out.server_full = get(hits_.server_full);
        out.address_full = get(hits_.address_full);
        out.accept_pauses = get(hits_.accept_pauses);
        out.rate_limited = get(hits_.rate_limited);
        out.flood_disconnects = get(hits_.flood_disconnects);
        if (budget_) {
            out.budget_refusals = budget_->refusals();
            out.outbound_bytes = budget_->used();
            out.outbound_peak_bytes = budget_->peak();
        }
        return out;
    }

private:
    // The chat lock, and log lines to emit once it is released (the log
    // callback may be slow, and must be free to call back into the server).
    class guard {
    public:
        explicit guard(chat_server& s) : server_(s), lock_(s.mutex_) {}
        ~guard() {
            lock_.unlock();
            if (server_.options_.log)
                for (const auto& line : logs_)
                    server_.options_.log(line);
        }
        guard(const guard&) = delete;
        guard& operator=(const guard&) = delete;
        void log(std::string line) { logs_.push_back(std::move(line)); }

    private:
        chat_server& server_;
        std::unique_lock<std::mutex> lock_;
        std::vector<std::string> logs_;
    };

    // --- listening ------------------------------------------------------------

    bool listen(asio::ip::tcp::acceptor& acceptor, std::uint16_t port, std::error_code& ec) {
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

    // Runs on control_. An accept error (out of descriptors, a connection
    // reset before it was accepted) must not end the loop: pause, retry.
    void accept(asio::ip::tcp::acceptor& acceptor, bool line) {
        acceptor.async_accept(
            asio::make_strand(executor_),
            [self = shared_from_this(), &acceptor, line](std::error_code ec, auto socket) {
                if (ec == asio::error::operation_aborted || !acceptor.is_open())
                    return;
                if (ec) {
                    const auto wait = self->backoff_.failed(ec);
                    if (wait.count() == 0)
                        return self->accept(acceptor, line);
                    self->hits_.accept_pauses.fetch_add(1, std::memory_order_relaxed);
                    self->emit("accept failed: " + ec.message() + "; pausing " +
                               std::to_string(wait.count()) + " ms");
                    auto pause = std::make_shared<asio::steady_timer>(self->control_, wait);
                    pause->async_wait([self, pause, &acceptor, line](std::error_code) {
                        if (acceptor.is_open())
                            self->accept(acceptor, line);
                    });
                    return;
                }
                self->backoff_.succeeded();
                self->on_accept(chat_socket(std::move(socket)), line);
                self->accept(acceptor, line);
            });
    }

    void on_accept(chat_socket socket, bool line) {
        std::error_code ec;
        socket.set_option(asio::ip::tcp::no_delay(true), ec);
        if (options_.send_buffer_bytes != 0)
            socket.set_option(
                asio::socket_base::send_buffer_size(static_cast<int>(options_.send_buffer_bytes)),
                ec);
        const auto remote = socket.remote_endpoint(ec);
        std::string peer = ec ? std::string("unknown peer") : endpoint_string(remote);
        if (options_.tls)
            return secure(std::move(socket), line, std::move(peer));
        adopt(std::move(socket), line, std::move(peer));
    }

public:
    // Starts the chat on a connected stream: a TCP socket, or a TLS stream
    // once its handshake is done (parley/chat/tls.hpp calls this).
    template <class Stream>
    void adopt(Stream stream, bool line, std::string peer) {
        auto s = std::make_shared<parley::session<Stream>>(
            std::move(stream), session_options{.queue = options_.queue,
                                               .write_timeout = options_.write_timeout,
                                               .budget = budget_});
        s->encoding(line ? 1 : 0);
        if (!line)
            s->stream().max_payload(options_.max_frame_bytes);
        std::string address = address_of(peer);
        auto c = std::make_shared<chat_client>(s, s->get_executor(), line, std::move(peer),
                                               !options_.access_token.empty(),
                                               std::move(address));
        {
            guard g(*this);
            if (stopping_)
                return; // the socket closes with the session
            const auto refuse_connection = [&](errc code, std::string why, std::string log) {
                g.log(std::move(log));
                s->send(encode(error_event{std::string(to_string(code)), std::move(why)}, line));
                s->close();
            };
            if (clients_.size() >= options_.max_clients) {
                hits_.server_full.fetch_add(1, std::memory_order_relaxed);
                return refuse_connection(errc::server_full, "the server is full; try again later",
                                         "server full: refused " + c->peer + " (" +
                                             std::to_string(options_.max_clients) +
                                             " connections)");
            }
            if (!c->address.empty() && options_.max_clients_per_address != 0) {
                auto& n = per_address_[c->address];
                if (n >= options_.max_clients_per_address) {
                    hits_.address_full.fetch_add(1, std::memory_order_relaxed);
                    return refuse_connection(
                        errc::too_many_connections,
                        "too many connections from your address (at most " +
                            std::to_string(options_.max_clients_per_address) + ")",
                        "too many connections: refused " + c->peer + " (" + std::to_string(n) +
                            " open from that address)");
                }
                ++n;
            }
            clients_.emplace(s->id(), c);
        }
        // Weak pointers: the session must not keep its client (which owns
        // the session) alive, or neither would ever be freed.
        s->on_close([weak_self = weak_from_this(), weak_client = std::weak_ptr<chat_client>(c)](
                        session_base&, std::error_code reason) {
            auto self = weak_self.lock();
            auto client = weak_client.lock();
            if (!self || !client)
                return;
            // Posted: a session can close inside a publish that holds the
            // chat lock (a member overflowing its own queue).
            asio::post(client->executor,
                       [self, client, reason] { self->on_closed(client, reason); });
        });
        asio::dispatch(s->get_executor(), [self = shared_from_this(), c, s] { self->begin(c, s); });
    }

    // A TLS handshake failed or timed out (parley/chat/tls.hpp).
    void handshake_failed(const std::string& peer, std::error_code ec, const std::string& why) {
        {
            std::lock_guard lock(mutex_);
            if (ec == error::timed_out)
                ++security_.tls_handshake_timeouts;
            else
                ++security_.tls_handshake_failures;
        }
        emit("tls: handshake with " + peer + " failed: " + why);
    }

    // A TLS handshake is starting; false (and the connection is to be
    // dropped) when too many are under way or the server is stopping.
    // `cancel` is called on stop() while it is still running.
    bool handshake_started(std::uint64_t id, std::function<void()> cancel) {
        std::lock_guard lock(mutex_);
        if (stopping_ || handshaking_.size() >= options_.max_clients) {
            ++security_.tls_handshakes_refused;
            return false;
        }
        handshaking_.emplace(id, std::move(cancel));
        return true;
    }
    void handshake_ended(std::uint64_t id) {
        std::lock_guard lock(mutex_);
        handshaking_.erase(id);
    }

    security_counters security() const {
        std::lock_guard lock(mutex_);
        return security_;
    }

private:
    void secure(chat_socket socket, bool line, std::string peer) {
        options_.tls->accept(shared_from_this(), std::move(socket), line, std::move(peer));
    }

    // --- per connection, on its strand -----------------------------------------

    template <class Session>
    void begin(const client_ptr& c, const std::shared_ptr<Session>& s) {
        welcome_event w;
        w.prompt = options_.prompt;
        w.server = "parley/" PARLEY_VERSION;
        w.max_frame_bytes = options_.max_frame_bytes;
        w.max_message_bytes = options_.max_message_bytes;
        w.max_nickname_length = max_name_length;
        send(*c, w);
        arm_deadline(c, options_.nickname_timeout);
        c->last_input = std::chrono::steady_clock::now();
        c->refilled = c->last_input;
        c->message_tokens = static_cast<double>(options_.flood.burst_messages);
        c->byte_tokens = static_cast<double>(options_.flood.burst_bytes);
        watch_idle(c);
        if (c->line_mode) {
            c->lines.max_line(options_.max_line_bytes);
            c->read_buffer.resize(4096);
            read_lines(c, s);
        } else {
            read_frames(c, s);
        }
    }

    void arm_deadline(const client_ptr& c, std::chrono::milliseconds after) {
        // A wake-up of an earlier arming may already be queued with success
        // (cancel() comes too late for it): the generation tells it apart.
        const std::uint64_t generation = ++c->deadline_generation;
        c->deadline.expires_after(after);
        c->deadline.async_wait([self = shared_from_this(), c, generation](std::error_code ec) {
            if (!ec && generation == c->deadline_generation)
                self->on_deadline(c);
        });
    }

    void on_deadline(const client_ptr& c) {
        if (c->closing) {
            // The peer does not read what is queued: stop waiting for it.
            c->session->abort(error::timed_out);
            return;
        }
        guard g(*this);
        if (c->gone || !c->nick.empty())
            return;
        hits_.nickname_timeouts.fetch_add(1, std::memory_order_relaxed);
        refuse(g, *c, errc::nickname_timeout,
               "no nickname was chosen within " +
                   std::to_string(options_.nickname_timeout.count()) +
                   " ms; closing the connection");
        c->gone = true;
        close_gracefully(c);
    }

    // Stops reading, writes what is queued, then closes; aborts if that takes
    // longer than close_timeout.
    void close_gracefully(const client_ptr& c) { close_gracefully(c, options_.close_timeout); }

    void close_gracefully(const client_ptr& c, std::chrono::milliseconds deadline) {
        if (c->closing)
            return;
        c->closing = true;
        c->idle.cancel();
        c->session->close();
        arm_deadline(c, deadline);
    }

    // --- idle deadline and keepalive (on the strand) ---------------------------

    std::chrono::milliseconds idle_limit(const chat_client& c) const {
        return c.line_mode ? options_.line_idle_timeout : options_.idle_timeout;
    }

    bool pings(const chat_client& c) const {
        return !c.line_mode && options_.ping_interval.count() != 0 &&
               (idle_limit(c).count() == 0 || options_.ping_interval < idle_limit(c));
    }

    // Sleeps until the next ping or deadline is due. Inputs only move
    // last_input: the timer is not touched per input, so at most one
    // wake-up per interval and client.
    void watch_idle(const client_ptr& c) {
        using clock = std::chrono::steady_clock;
        if (c->closing)
            return;
        const auto limit = idle_limit(*c);
        std::optional<clock::time_point> next;
        if (limit.count() != 0)
            next = c->last_input + limit;
        if (pings(*c) && !c->pinged) {
            const auto ping_at = c->last_input + options_.ping_interval;
            next = next ? std::min(*next, ping_at) : ping_at;
        }
        if (!next)
            return;
        c->idle.expires_at(*next);
        c->idle.async_wait([self = shared_from_this(), c](std::error_code ec) {
            if (!ec)
                self->on_idle(c);
        });
    }

    void on_idle(const client_ptr& c) {
        if (c->closing)
            return;
        const auto silence = std::chrono::steady_clock::now() - c->last_input;
        const auto limit = idle_limit(*c);
        if (limit.count() != 0 && silence >= limit) {
            hits_.idle_timeouts.fetch_add(1, std::memory_order_relaxed);
            guard g(*this);
            return expel(g, c, errc::idle_timeout, leave_reason::timeout,
                         "nothing received for " + std::to_string(limit.count()) +
                             " ms; closing the connection");
        }
        if (pings(*c) && !c->pinged && silence >= options_.ping_interval) {
            c->pinged = true;
            hits_.pings_sent.fetch_add(1, std::memory_order_relaxed);
            send(*c, ping_event{});
        }
        watch_idle(c);
    }

    // Tells `c` why, announces its leave, and closes it once told.
    void expel(guard& g, const client_ptr& c, errc code, leave_reason reason,
               std::string message) {
        if (c->gone || c->closing)
            return;
        refuse(g, *c, code, std::move(message));
        if (!c->nick.empty())
            leave_chat(g, *c, reason, {});
        c->gone = true;
        close_gracefully(c);
    }

    // --- flood control (on the strand) -----------------------------------------

    // Whether `c` may send an input of `bytes` now; drops it (and warns,
    // or disconnects a persistent flooder) when not.
    bool admit_input(guard& g, const client_ptr& c, std::size_t bytes) {
        const auto& f = options_.flood;
        if (f.messages_per_second <= 0)
            return true;
        const auto now = std::chrono::steady_clock::now();
        const double elapsed = std::chrono::duration<double>(now - c->refilled).count();
        c->refilled = now;
        const auto burst_messages = static_cast<double>(f.burst_messages);
        c->message_tokens =
            std::min(burst_messages, c->message_tokens + elapsed * f.messages_per_second);
        c->byte_tokens = std::min(static_cast<double>(f.burst_bytes),
                                  c->byte_tokens + elapsed * f.bytes_per_second);
        if (c->message_tokens >= burst_messages)
            c->dropped_inputs = 0; // it paused long enough: forgiven
        const auto size = static_cast<double>(bytes);
        // An input larger than the byte burst could never pass: it passes
        // when the bucket is full, and empties it.
        const bool bytes_ok = c->byte_tokens >= std::min(size, static_cast<double>(f.burst_bytes));
        if (c->message_tokens >= 1 && bytes_ok) {
            c->message_tokens -= 1;
            c->byte_tokens = std::max(0.0, c->byte_tokens - size);
            return true;
        }
        hits_.rate_limited.fetch_add(1, std::memory_order_relaxed);
        if (++c->dropped_inputs > f.max_dropped) {
            hits_.flood_disconnects.fetch_add(1, std::memory_order_relaxed);
            expel(g, c, errc::flooding, leave_reason::flooding,
                  "still sending faster than " + rate_text() + " after " +
                      std::to_string(f.max_dropped) +
                      " inputs were dropped; closing the connection");
        } else if (c->dropped_inputs == 1) {
            refuse(g, *c, errc::rate_limited,
                   "too fast: at most " + rate_text() +
                       "; this input and the next ones until you slow down are dropped");
        }
        return false;
    }

    std::string rate_text() const {
        const auto& f = options_.flood;
        return std::to_string(static_cast<long long>(f.messages_per_second)) + " inputs/s and " +
               std::to_string(static_cast<long long>(f.bytes_per_second)) + " bytes/s (bursts " +
               std::to_string(f.burst_messages) + " inputs, " + std::to_string(f.burst_bytes) +
               " bytes)";
    }

    template <class Session>
    void read_frames(const client_ptr& c, const std::shared_ptr<Session>& s) {
        s->stream().async_read_frame(
            [self = shared_from_this(), c, s](std::error_code ec, frame_view frame) {
                if (ec)
                    return self->on_read_error(c, ec, s->stream().describe(ec));
                for (;;) {
                    self->on_input(c, as_string_view(frame));
                    if (!c->session->is_open())
                        return;
                    auto next = s->stream().read_buffered_frame(ec);
                    if (!next) {
                        if (ec)
                            return self->on_read_error(c, ec, s->stream().describe(ec));
                        return self->read_frames(c, s);
                    }
                    frame = *next;
                }
            });
    }

    template <class Session>
    void read_lines(const client_ptr& c, const std::shared_ptr<Session>& s) {
        s->stream().next_layer().async_read_some(
            asio::buffer(c->read_buffer),
            [self = shared_from_this(), c, s](std::error_code ec, std::size_t n) {
                if (!ec) {
                    self->on_line_bytes(c, std::string_view(c->read_buffer.data(), n));
                    if (c->session->is_open())
                        self->read_lines(c, s);
                    return;
                }
                if (ec == asio::error::eof && !c->lines.pending().empty()) {
                    // `printf 'alice\nhello' | nc ...`: the last line has no
                    // newline but is meant all the same.
                    std::string last(c->lines.pending());
                    if (!last.empty() && last.back() == '\r')
                        last.pop_back();
                    self->on_input(c, last);
                }
                self->on_read_error(c, ec, ec.message());
            });
    }

    void on_line_bytes(const client_ptr& c, std::string_view bytes) {
        c->lines.feed(bytes);
        for (;;) {
            std::error_code ec;
            auto line = c->lines.next(ec);
            if (ec) {
                hits_.lines_too_long.fetch_add(1, std::memory_order_relaxed);
                guard g(*this);
                if (!c->gone)
                    refuse(g, *c, errc::line_too_long,
                           "a line longer than " + std::to_string(options_.max_line_bytes) +
                               " bytes was discarded");
                continue;
            }
            if (!line)
                return;
            on_input(c, *line);
            if (!c->session->is_open()) {
                c->lines.reset();
                return;
            }
        }
    }

    void on_read_error(const client_ptr& c, std::error_code ec, const std::string& description) {
        if (ec == asio::error::operation_aborted)
            return; // the session was closed: on_closed() does the rest
        if (ec == asio::error::eof) {
            // The peer will send nothing more, but may still be reading
            // (`nc -N`, a shutdown(SHUT_WR)): announce the leave now, then
            // let it have what is queued.
            guard g(*this);
            if (!c->nick.empty())
                leave_chat(g, *c, leave_reason::disconnected, ec);
            c->gone = true;
            close_gracefully(c);
            return;
        }
        if (ec == error::frame_too_large) {
            // The stream cannot be resynchronised; say why before closing.
            hits_.frames_too_large.fetch_add(1, std::memory_order_relaxed);
            guard g(*this);
            c->close_reason = leave_reason::error;
            refuse(g, *c, errc::frame_too_large, description + "; closing the connection");
            close_gracefully(c);
            return;
        }
        c->session->abort(ec);
    }

    void on_closed(const client_ptr& c, std::error_code reason) {
        c->deadline.cancel();
        ++c->deadline_generation;
        c->idle.cancel();
        c->closing = true; // no more idle checks
        if (reason == error::write_timeout)
            hits_.write_timeouts.fetch_add(1, std::memory_order_relaxed);
        guard g(*this);
        if (!c->address.empty() && options_.max_clients_per_address != 0 &&
            clients_.contains(c->session->id())) {
            auto it = per_address_.find(c->address);
            if (it != per_address_.end() && --it->second == 0)
                per_address_.erase(it);
        }
        if (!c->gone && !c->nick.empty()) {
            if (stopping_) {
                g.log("leave: " + who(*c) + " disconnected (server shutdown)");
                forget_nick(*c);
            } else {
                leave_chat(g, *c, c->close_reason.value_or(classify(reason)), reason);
            }
        }
        c->gone = true;
        cancel_wait(*c);
        clients_.erase(c->session->id());
    }

    static leave_reason classify(std::error_code reason) {
        if (reason == error::slow_consumer || reason == error::write_timeout)
            return leave_reason::slow_consumer;
        // EPIPE rather than ECONNRESET means the reset came after the
        // peer's FIN: it closed normally, with our last events unread.
        if (reason == asio::error::eof || reason == asio::error::broken_pipe ||
            reason == error::session_closed)
            return leave_reason::disconnected;
        return leave_reason::error;
    }

    void shut_down(const client_ptr& c) {
        if (c->closing)
            return;
        send(*c, notice_event{"shutdown", "the server is shutting down; goodbye"});
        close_gracefully(c, stop_deadline_);
    }

    // --- inputs -----------------------------------------------------------------

    void on_input(const client_ptr& c, std::string_view text) {
        c->last_input = std::chrono::steady_clock::now();
        c->pinged = false;
        guard g(*this);
        if (c->gone || stopping_)
            return;
        if (!c->authorized)
            return on_access(g, c, text); // a wrong token closes the connection
        if (c->claiming || c->awaiting_history)
            return hold(g, *c, text); // counted by flood control when replayed
        if (!admit_input(g, c, text.size()))
            return;
        if (c->nick.empty())
            return on_nickname(g, c, text);
        std::visit([&](const auto& in) { handle(g, c, in); }, parse_input(text));
    }

    // Before anything else when the server needs an access token: only
    // /auth TOKEN, /help and /quit. One wrong token closes the connection.
    void on_access(guard& g, const client_ptr& c, std::string_view text) {
        if (is_quit_input(text))
            return goodbye(g, c);
        static constexpr std::string_view auth = "/auth";
        const bool is_auth = text.substr(0, auth.size()) == auth &&
                             (text.size() == auth.size() || text[auth.size()] == ' ');
        if (!is_auth) {
            if (std::holds_alternative<help_input>(parse_input(text)))
                return send(*c, notice_event{"help", help_text()});
            return refuse(g, *c, errc::access_required,
                          "this server requires an access token: send /auth TOKEN first, "
                          "then your nickname");
        }
        std::string_view token = text.substr(auth.size());
        if (!token.empty())
            token.remove_prefix(1);
        if (constant_time_equal(token, options_.access_token)) {
            c->authorized = true;
            return send(*c, notice_event{"info", "access granted; choose a nickname"});
        }
        ++security_.access_denied;
        refuse(g, *c, errc::access_denied, "wrong access token; closing the connection");
        c->gone = true;
        close_gracefully(c);
    }

    void on_nickname(guard& g, const client_ptr& c, std::string_view text) {
        if (is_quit_input(text))
            return goodbye(g, c);
        if (!text.empty() && text.front() == '/') {
            const input in = parse_input(text);
            if (std::holds_alternative<pong_input>(in))
                return; // a sign of life, nothing more
            if (std::holds_alternative<help_input>(in))
                return send(*c, notice_event{"help", help_text()});
            return refuse(g, *c, errc::nickname_required,
                          "choose a nickname first: send it on its own (only /help and /quit "
                          "work before that)");
        }
        if (auto problem = nickname_problem(text))
            return refuse(g, *c, errc::nickname_invalid, *problem + "; choose another");
        std::string key = nickname_key(text);
        if (nick_in_use(key))
            return refuse(g, *c, errc::nickname_taken,
                          "the nickname \"" + std::string(text) + "\" is taken; choose another");
        if (cluster_)
            return claim_nick(c, std::string(text), std::move(key));
        accept_nick(g, c, std::string(text), std::move(key));
    }

    void accept_nick(guard& g, const client_ptr& c, std::string nick, std::string key) {
        c->deadline.cancel();
        ++c->deadline_generation;
        c->nick = std::move(nick);
        c->key = std::move(key);
        nicks_.emplace(c->key, c.get());
        send(*c, nick_accepted_event{c->nick});
        join_room(g, c, options_.default_room);
    }

    void handle(guard& g, const client_ptr& c, const say_input& in) {
        if (auto problem = message_text_problem(in.text, options_.max_message_bytes))
            return refuse(g, *c, problem->first, problem->second);
        if (c->current.empty())
            return refuse(g, *c, errc::not_in_room, "you are in no room; /join ROOM first");
        message_event ev{++next_id_, c->current, c->nick, std::string(in.text), now()};
        publish(c->current, ev, true);
        if (shared_history_ != 0)
            cluster_store(ev);
        else
            cluster_publish({"M", ev.room, ev.from, ev.text, ev.time});
    }

    void handle(guard& g, const client_ptr& c, const nick_input& in) {
        if (auto problem = nickname_problem(in.nick))
            return refuse(g, *c, errc::nickname_invalid, *problem);
        if (in.nick == c->nick)
            return send(*c, notice_event{"info", "you are already known as " + c->nick});
        std::string key = nickname_key(in.nick);
        if (key != c->key && nick_in_use(key))
            return refuse(g, *c, errc::nickname_taken,
                          "the nickname \"" + std::string(in.nick) + "\" is taken");
        if (cluster_ && key != c->key)
            return claim_nick(c, std::string(in.nick), std::move(key));
        rename(g, c, std::string(in.nick), std::move(key));
    }

    void rename(guard& g, const client_ptr& c, std::string nick, std::string key) {
        forget_nick(*c);
        if (cluster_ && key != c->key)
            cluster_->release_nick(c->key);
        rename_event ev{c->nick, std::move(nick), now()};
        c->nick = ev.new_nick;
        c->key = std::move(key);
        nicks_.emplace(c->key, c.get());
        g.log("nick: " + ev.old_nick + " (" + c->peer + ") is now known as " + ev.new_nick);
        // Once to each client sharing a room with the renamer, and to it.
        const auto encodings = encode_both(ev);
        std::unordered_set<session_base::id_type> told{c->session->id()};
        hub_.send_to(*c->session, pick(encodings, *c->session));
        for (const auto& room : c->rooms) {
            for (const auto& member : hub_.members(room))
                if (told.insert(member->id()).second)
                    hub_.send_to(*member, pick(encodings, *member));
            hold_for_waiting(room, encodings, false, &told);
        }
        cluster_publish({"R", ev.old_nick, ev.new_nick, ev.time});
        cluster_presence(*c);
    }

    void handle(guard& g, const client_ptr& c, const join_input& in) {
        const std::string room = canonical_room(in.room);
        if (auto problem = room_name_problem(room))
            return refuse(g, *c, errc::room_invalid, *problem);
        join_room(g, c, room);
    }

    void handle(guard& g, const client_ptr& c, const part_input& in) {
        const std::string room = in.room.empty() ? c->current : canonical_room(in.room);
        if (room.empty())
            return refuse(g, *c, errc::not_in_room, "you are in no room");
        auto it = std::find(c->rooms.begin(), c->rooms.end(), room);
        if (it == c->rooms.end())
            return refuse(g, *c, errc::not_in_room, "you are not in " + printable(room));
        // Published before leaving, so the parting client gets it too.
        leave_event ev{room, c->nick, std::string(to_string(leave_reason::part)), now()};
        publish(room, ev, false);
        hub_.leave(room, *c->session);
        c->rooms.erase(it);
        cluster_presence(*c);
        cluster_publish({"L", ev.room, ev.nick, ev.reason, ev.time});
        if (c->current == room)
            c->current = c->rooms.empty() ? std::string() : c->rooms.back();
        g.log("leave: " + who(*c) + " left " + room + " (part)");
    }

    void handle(guard& g, const client_ptr& c, const list_input& in) {
        const std::string room = in.room.empty() ? c->current : canonical_room(in.room);
        if (room.empty())
            return refuse(g, *c, errc::not_in_room, "you are in no room; say /list ROOM");
        if (!hub_.members(room).empty() || remote_in(room) || waits_.contains(room))
            return send(*c, members_of(room));
        refuse(g, *c, errc::no_such_room, "there is no room " + printable(room));
    }

    void handle(guard& g, const client_ptr& c, const msg_input& in) {
        if (auto problem = message_text_problem(in.text, options_.max_message_bytes))
            return refuse(g, *c, problem->first, problem->second);
        auto target = nicks_.find(nickname_key(in.nick));
        if (target == nicks_.end() && cluster_msg(*c, in))
            return;
        if (target == nicks_.end())
            return refuse(g, *c, errc::no_such_nick, "nobody is called " + printable(in.nick));
        chat_client& to = *target->second;
        const auto encodings =
            encode_both(private_event{++next_id_, c->nick, to.nick, std::string(in.text), now()});
        send_or_hold(to, encodings);
        if (&to != c.get())
            hub_.send_to(*c->session, pick(encodings, *c->session));
    }

    void handle(guard&, const client_ptr& c, const help_input&) {
        send(*c, notice_event{"help", help_text()});
    }

    void handle(guard& g, const client_ptr& c, const quit_input&) { goodbye(g, c); }

    void handle(guard&, const client_ptr&, const pong_input&) {}

    void handle(guard& g, const client_ptr& c, const bad_input& in) {
        refuse(g, *c, in.code, in.message);
    }

    // --- chat state (under the lock) ------------------------------------------

    void join_room(guard& g, const client_ptr& c, const std::string& room) {
        if (std::find(c->rooms.begin(), c->rooms.end(), room) != c->rooms.end()) {
            c->current = room; // already in: just switch to it
            return send(*c, members_of(room));
        }
        if (c->rooms.size() >= options_.max_rooms_per_client)
            return refuse(g, *c, errc::too_many_rooms,
                          "you are in " + std::to_string(c->rooms.size()) +
                              " rooms already, the most allowed; /part one first");
        if (shared_history_ == 0)
            hub_.join(room, c->session); // queues the room's history first
        c->rooms.push_back(room);
        c->current = room;
        join_event ev{room, c->nick, now()};
        publish(room, ev, false);
        cluster_presence(*c); // before the event: a snapshot in between sees the room
        cluster_publish({"J", ev.room, ev.nick, ev.time});
        if (shared_history_ != 0)
            await_history(c, room, std::move(ev)); // the rest once the history is read
        else
            send(*c, members_of(room));
        g.log("join: " + who(*c) + " joined " + room + (c->line_mode ? " (line mode)" : ""));
    }

    // Announces that `c` left every room it was in, once.
    void leave_chat(guard& g, chat_client& c, leave_reason reason, std::error_code cause) {
        if (c.gone)
            return;
        c.gone = true;
        cancel_wait(c);
        const std::string time = now();
        cluster_leave(c, reason, time);
        std::string rooms;
        for (const auto& room : c.rooms) {
            hub_.leave(room, *c.session); // already done by the hub if the session closed
            publish(room, leave_event{room, c.nick, std::string(to_string(reason)), time}, false);
            rooms += (rooms.empty() ? "" : ", ") + room;
        }
        if (rooms.empty())
            rooms = "no room";
        if (reason == leave_reason::slow_consumer && cause == error::write_timeout) {
            g.log("slow consumer: " + who(c) + " disconnected, its socket accepted nothing for " +
                  std::to_string(options_.write_timeout.count()) + " ms; left " + rooms);
        } else if (reason == leave_reason::slow_consumer) {
            g.log("slow consumer: " + who(c) + " disconnected, its outbound queue reached " +
                  std::to_string(options_.queue.max_bytes) + " bytes or " +
                  std::to_string(options_.queue.max_messages) +
                  " messages (or the server-wide outbound budget ran out); left " + rooms);
        } else {
            std::string line = "leave: " + who(c) + " left " + rooms + " (" +
                               std::string(to_string(reason));
            if (reason == leave_reason::error && cause)
                line += ": " + cause.message();
            if (c.dropped != 0)
                line += "; " + std::to_string(c.dropped) + " messages to it were dropped";
            g.log(line + ")");
        }
        c.rooms.clear();
        c.current.clear();
        forget_nick(c);
    }

    void goodbye(guard& g, const client_ptr& c) {
        if (!c->nick.empty())
            leave_chat(g, *c, leave_reason::quit, {});
        c->gone = true;
        send(*c, notice_event{"goodbye", c->nick.empty() ? "goodbye" : "goodbye, " + c->nick});
        close_gracefully(c);
    }

    void forget_nick(chat_client& c) {
        auto it = nicks_.find(c.key);
        if (it != nicks_.end() && it->second == &c)
            nicks_.erase(it);
    }

    members_event members_of(const std::string& room) const {
        members_event e;
        e.room = room;
        const auto members = hub_.members(room);
        for (const auto& m : members) {
            auto it = clients_.find(m->id());
            if (it == clients_.end() || it->second->nick.empty() || it->second->gone)
                continue;
            ++e.count;
            if (e.members.size() < max_listed_members)
                e.members.push_back(it->second->nick);
        }
        if (auto w = waits_.find(room); w != waits_.end())
            for (const auto& wait : w->second)
                if (auto c = wait->client.lock(); c && !c->gone) {
                    ++e.count;
                    if (e.members.size() < max_listed_members)
                        e.members.push_back(c->nick);
                }
        add_remote_members(e);
        return e;
    }

    void note_dropped(session_base::id_type id, std::size_t dropped) {
        // Called inside a publish, perhaps under the chat lock: post.
        asio::post(executor_, [self = shared_from_this(), id, dropped] {
            guard g(*self);
            auto it = self->clients_.find(id);
            if (it == self->clients_.end())
                return;
            chat_client& c = *it->second;
            if (c.dropped == 0)
                g.log("slow consumer: " + self->who(c) +
                      " is not reading fast enough; dropping its oldest messages");
            c.dropped += dropped;
        });
    }

    // --- sending ------------------------------------------------------------------

    message_ptr encode(const event& e, bool line) const {
        if (line) {
            std::string text = to_line(e);
            text += '\n';
            return make_raw_message(text);
        }
        const std::string payload = to_json(e);
        std::error_code ec;
        return make_frame_message(out_codec_, std::as_bytes(std::span(payload)), ec);
    }

    // One encoding per kind of client, each built once for every recipient.
    std::array<message_ptr, 2> encode_both(const event& e) const {
        return {encode(e, false), encode(e, true)};
    }

    static const message_ptr& pick(const std::array<message_ptr, 2>& encodings,
                                   const session_base& s) {
        return encodings[std::min<std::size_t>(s.encoding(), 1)];
    }

    void send(chat_client& c, const event& e) {
        if (auto m = encode(e, c.line_mode))
            hub_.send_to(*c.session, m);
    }

    // `covered_by_read`: an event from another instance that a joiner's
    // history read accounts for if it arrives before the read's answer.
    void publish(const std::string& room, const event& e, bool keep_in_history,
                 bool covered_by_read = false) {
        const auto encodings = encode_both(e);
        if (!encodings[0] || !encodings[1])
            return;
        if (keep_in_history)
            hub_.publish(room, encodings);
        else
            hub_.publish_transient(room, encodings);
        hold_for_waiting(room, encodings, covered_by_read, nullptr);
    }

    void refuse(guard& g, chat_client& c, errc code, std::string message) {
        g.log("error: " + who(c) + ": " + std::string(to_string(code)) + ": " + message);
        send(c, error_event{std::string(to_string(code)), std::move(message)});
    }

    void emit(const std::string& line) const {
        if (options_.log)
            options_.log(line);
    }

    std::string who(const chat_client& c) const {
        return c.nick.empty() ? c.peer : c.nick + " (" + c.peer + ")";
    }

    static std::string printable(std::string_view text) {
        std::string out;
        parley::chat::detail::append_printable(out, text.substr(0, 128));
        return out;
    }

    static std::string now() { return format_time(std::chrono::system_clock::now()); }

    // --- cluster (docs/SCALING.md): hooks to and from the backplane ---------------
    //
    // What crosses instances, one payload each, fields joined by '\n' (no
    // field can hold one: names and message text exclude control
    // characters): M room nick text time | J room nick time | L room nick
    // reason time | R old new time | P from to text time | Q nick. Each
    // instance delivers them to its own members, encoded once, exactly as
    // its own events. A presence value is the nick, then its rooms, joined
    // by '\n'.

    struct remote_member {
        std::string instance, nick;
        std::vector<std::string> rooms;
    };

    bool nick_in_use(const std::string& key) const {
        return nicks_.contains(key) || claiming_.contains(key) || remote_.contains(key);
    }

    // A payload between instances: fields joined by newlines (no field
    // holds one: nicknames, rooms and texts are checked for controls).
    static std::string cluster_payload(std::initializer_list<std::string_view> fields) {
        std::string payload;
        for (auto f : fields) {
            if (!payload.empty())
                payload += '\n';
            payload += f;
        }
        return payload;
    }

    // Splits a payload into `f`; the number of fields, or 0 when there are
    // more than f.size().
    template <std::size_t N>
    static std::size_t cluster_fields(std::string_view payload,
                                      std::array<std::string_view, N>& f) noexcept {
        std::size_t n = 0, start = 0;
        for (;;) {
            const auto end = payload.find('\n', start);
            if (n == N)
                return 0;
            f[n++] = payload.substr(start, end == std::string_view::npos ? end : end - start);
            if (end == std::string_view::npos)
                return n;
            start = end + 1;
        }
    }

    void cluster_publish(std::initializer_list<std::string_view> fields) {
        if (cluster_)
            cluster_->publish(cluster_payload(fields));
    }

    static std::string presence_value(const chat_client& c) {
        std::string v = c.nick;
        for (const auto& room : c.rooms)
            v += '\n' + room;
        return v;
    }

    void cluster_presence(const chat_client& c) {
        if (cluster_ && !c.nick.empty())
            cluster_->set_presence(c.key, presence_value(c));
    }

    // `c` leaves the whole chat: tell the other instances, free its name.
    void cluster_leave(const chat_client& c, leave_reason reason, const std::string& time) {
        if (!cluster_)
            return;
        // Q first: whoever sees the leave finds the nickname free already.
        cluster_publish({"Q", c.nick});
        for (const auto& room : c.rooms)
            cluster_publish({"L", room, c.nick, to_string(reason), time});
        cluster_->release_nick(c.key);
    }

    // --- shared room history (docs/SCALING.md, "Shared room history") ----------
    //
    // With a backplane that keeps history, a room message is stored once,
    // by the sender's instance, with its publication (publish_stored: one
    // atomic step in Redis). The hub keeps none. A join reads the room's
    // history from the backplane; until the answer, the joiner is not a
    // member of the room in the hub, and what is said to it (room events,
    // private messages) is held in its history_wait, its inputs too. The
    // answer splits the events exactly, with no id to compare:
    //  - a local event after the join is not in the history (its write
    //    was queued after the read, on the same ordered connection): held,
    //    then delivered after the history;
    //  - an event from another instance that arrives before the answer was
    //    published before the read (the answer travels on the same
    //    subscriber connection, in Redis's order): a stored message is in
    //    the history, a join or leave is reflected in the member list sent
    //    with the history, so they are dropped; one arriving after the
    //    answer is live, as for any member.
    // If the read fails (Redis down, timeout, too much held), the joiner
    // gets no history and everything held, so nothing live is lost. The
    // history's messages take ids reserved at the join, below every id
    // the joiner receives after.

    void cluster_store(const message_event& ev) {
        cluster_->publish_stored(ev.room, cluster_payload({"S", ev.room, ev.from, ev.text, ev.time}));
    }

    void await_history(const client_ptr& c, const std::string& room, join_event joined) {
        auto w = std::make_shared<history_wait>();
        w->client = c;
        w->room = room;
        w->joined = std::move(joined);
        w->first_id = next_id_;
        next_id_ += shared_history_;
        c->wait = w;
        c->awaiting_history = true;
        waits_[room].push_back(w);
        cluster_->read_history(room, [weak = weak_from_this(), c, w](auto history) {
            if (auto self = weak.lock())
                self->on_history_read(c, w, std::move(history));
        });
    }

    // On the backplane's executor, in order with on_cluster_message().
    void on_history_read(const client_ptr& c, const std::shared_ptr<history_wait>& w,
                         std::optional<std::vector<std::string>> history) {
        {
            std::lock_guard lock(mutex_);
            if (w->answered)
                return; // given up already (too much held)
            w->answered = true;
            w->history = std::move(history);
        }
        // The join completes on the client's strand, where its session
        // may be given to the hub.
        asio::post(c->executor, [self = shared_from_this(), c, w] { self->complete_wait(c, w); });
    }

    // On the client's strand: history, the joiner's own join, the members,
    // then what was held; from now on the joiner is a member like any.
    void complete_wait(const client_ptr& c, const std::shared_ptr<history_wait>& w) {
        {
            guard g(*this);
            if (c->wait == w && !c->gone && !stopping_) {
                cancel_wait(*c);
                const bool read = w->history.has_value();
                if (read)
                    send_history(*c, *w);
                else
                    g.log("join: " + who(*c) + " joined " + w->room +
                          " without its shared history (the backplane did not answer in time)");
                send(*c, w->joined);
                hub_.join(w->room, c->session);
                send(*c, members_of(w->room));
                for (const auto& h : w->held)
                    if (!(read && h.covered_by_read))
                        hub_.send_to(*c->session, pick(h.encodings, *c->session));
            }
        }
        c->awaiting_history = false;
        replay_held_inputs(c);
    }

    void send_history(chat_client& c, const history_wait& w) {
        std::vector<message_event> events;
        for (const auto& payload : *w.history) {
            std::array<std::string_view, 5> f{};
            // Checked as carefully as a payload from another instance.
            if (cluster_fields(payload, f) != 5 || f[0] != "S" || f[1] != w.room || !valid_nick(f[2]) ||
                message_text_problem(f[3], 256 * 1024) || !valid_short(f[4])) {
                note_malformed();
                continue;
            }
            events.push_back({0, w.room, std::string(f[2]), std::string(f[3]), std::string(f[4])});
        }
        const std::size_t n = std::min(events.size(), shared_history_);
        std::uint64_t id = w.first_id + (shared_history_ - n);
        for (std::size_t i = events.size() - n; i < events.size(); ++i) {
            events[i].id = ++id;
            send(c, events[i]);
        }
    }

    void cancel_wait(chat_client& c) {
        if (!c.wait)
            return;
        if (auto it = waits_.find(c.wait->room); it != waits_.end()) {
            std::erase(it->second, c.wait);
            if (it->second.empty())
                waits_.erase(it);
        }
        c.wait.reset();
    }

    // Holds an event for the clients waiting for `room`'s history (each
    // once: `told`, if given, skips those already told and records them).
    void hold_for_waiting(const std::string& room, const std::array<message_ptr, 2>& encodings,
                          bool covered_by_read, std::unordered_set<session_base::id_type>* told) {
        if (waits_.empty())
            return;
        auto it = waits_.find(room);
        if (it == waits_.end())
            return;
        const auto waits = it->second; // hold() may end a wait
        for (const auto& w : waits)
            if (auto c = w->client.lock(); c && !c->gone &&
                                           (!told || told->insert(c->session->id()).second))
                hold_event(c, w, encodings, covered_by_read);
    }

    // A private message: held if `to` waits for a room's history (ids
    // must increase on its connection).
    void send_or_hold(chat_client& to, const std::array<message_ptr, 2>& encodings) {
        if (!encodings[0] || !encodings[1])
            return;
        if (to.wait)
            if (auto c = to.wait->client.lock())
                return hold_event(c, to.wait, encodings, false);
        hub_.send_to(*to.session, pick(encodings, *to.session));
    }

    // Bounded by the client's queue limits: past them, the history is
    // given up (the held events are delivered at once); past twice them
    // (its strand has not run since), the client is a slow consumer.
    void hold_event(const client_ptr& c, const std::shared_ptr<history_wait>& w,
                    const std::array<message_ptr, 2>& encodings, bool covered_by_read) {
        w->held.push_back({encodings, covered_by_read && !w->answered});
        w->held_bytes += pick(encodings, *c->session)->size();
        const auto& q = options_.queue;
        if (w->held.size() <= q.max_messages && w->held_bytes <= q.max_bytes)
            return;
        if (!w->answered) {
            w->answered = true; // no history
            asio::post(c->executor,
                       [self = shared_from_this(), c, w] { self->complete_wait(c, w); });
        } else if (w->held.size() > 2 * q.max_messages || w->held_bytes > 2 * q.max_bytes) {
            c->session->abort(error::slow_consumer);
        }
    }

    // Inputs that arrive while a nickname claim is with the backplane wait
    // for it, in order (bounded).
    void hold(guard& g, chat_client& c, std::string_view text) {
        if (c.held.size() >= 256) {
            if (c.claiming)
                return refuse(g, c, errc::nickname_required,
                              "still confirming your nickname with the other servers; input "
                              "dropped");
            return refuse(g, c, errc::rate_limited,
                          "still loading the room's history; input dropped");
        }
        c.held.emplace_back(text);
    }

    void claim_nick(const client_ptr& c, std::string nick, std::string key) {
        c->claiming = true;
        claiming_.insert(key);
        cluster_->claim_nick(key, [weak = weak_from_this(), c, nick, key](claim_result r) {
            if (auto self = weak.lock())
                asio::post(c->executor, [self, c, nick, key, r] {
                    self->on_nick_claimed(c, nick, key, r);
                });
        });
    }

    // On the client's strand.
    void on_nick_claimed(const client_ptr& c, const std::string& nick, const std::string& key,
                         claim_result result) {
        {
            guard g(*this);
            claiming_.erase(key);
            c->claiming = false;
            if (c->gone || stopping_) {
                if (result == claim_result::claimed)
                    cluster_->release_nick(key);
            } else if (result == claim_result::taken) {
                refuse(g, *c, errc::nickname_taken,
                       "the nickname \"" + nick + "\" is taken on another server" +
                           (c->nick.empty() ? "; choose another" : ""));
            } else {
                if (result == claim_result::unavailable)
                    g.log("nick: " + nick + " (" + c->peer +
                          ") checked on this server only: the backplane is down");
                if (c->nick.empty())
                    accept_nick(g, c, nick, key);
                else
                    rename(g, c, nick, key);
            }
        }
        replay_held_inputs(c);
    }

    // On the client's strand: the inputs held while it waited, in order.
    void replay_held_inputs(const client_ptr& c) {
        auto pending = std::move(c->held);
        c->held.clear();
        while (!pending.empty() && c->session->is_open()) {
            if (c->claiming || c->awaiting_history) { // waiting again: the rest waits, first
                c->held.insert(c->held.begin(), pending.begin(), pending.end());
                break;
            }
            const std::string text = std::move(pending.front());
            pending.pop_front();
            on_input(c, text);
        }
    }

    // A private message to a member of another instance; false if no
    // instance has `in.nick`.
    bool cluster_msg(chat_client& c, const msg_input& in) {
        if (!cluster_)
            return false;
        auto it = remote_.find(nickname_key(in.nick));
        if (it == remote_.end())
            return false;
        private_event ev{++next_id_, c.nick, it->second.nick, std::string(in.text), now()};
        cluster_publish({"P", ev.from, ev.to, ev.text, ev.time});
        send(c, ev);
        return true;
    }

    bool remote_in(const std::string& room) const {
        for (const auto& [key, m] : remote_)
            if (std::find(m.rooms.begin(), m.rooms.end(), room) != m.rooms.end())
                return true;
        return false;
    }

    void add_remote_members(members_event& e) const {
        for (const auto& [key, m] : remote_) {
            if (std::find(m.rooms.begin(), m.rooms.end(), e.room) == m.rooms.end())
                continue;
            ++e.count;
            if (e.members.size() < max_listed_members)
                e.members.push_back(m.nick);
        }
    }

    void start_cluster() {
        std::weak_ptr<chat_server> weak = weak_from_this();
        backplane_events events;
        events.on_message = [weak](std::string_view instance, std::string_view payload) {
            if (auto self = weak.lock())
                self->on_cluster_message(instance, payload);
        };
        events.local_presence = [weak] {
            presence_entries out;
            if (auto self = weak.lock()) {
                std::lock_guard lock(self->mutex_);
                for (const auto& [id, c] : self->clients_)
                    if (!c->gone && !c->nick.empty())
                        out.emplace_back(c->key, presence_value(*c));
            }
            return out;
        };
        events.on_snapshot = [weak](auto instances) {
            if (auto self = weak.lock())
                self->on_cluster_snapshot(std::move(instances));
        };
        events.on_instance_lost = [weak](std::string_view instance, std::vector<std::string> values) {
            if (auto self = weak.lock())
                self->on_instance_lost(instance, values);
        };
        events.on_conflict = [weak](std::vector<std::string> keys) {
            if (auto self = weak.lock())
                self->on_nick_conflict(keys);
        };
        events.on_rejoined = [weak] {
            if (auto self = weak.lock())
                self->on_rejoined();
        };
        cluster_->start(std::move(events));
    }

    // Checks what another instance sent as carefully as a client's input:
    // anyone who can publish on the Redis channel can send anything.
    static bool valid_nick(std::string_view s) { return !nickname_problem(s); }
    static bool valid_room(std::string_view s) {
        return canonical_room(s) == s && !room_name_problem(s);
    }
    static bool valid_short(std::string_view s) { return s.size() <= 64 && is_valid_utf8(s); }

    static std::optional<remote_member> parse_presence(std::string_view instance,
                                                       std::string_view value) {
        remote_member m;
        m.instance = std::string(instance);
        std::size_t start = 0;
        for (bool first = true;; first = false) {
            const auto end = value.find('\n', start);
            const auto field = value.substr(start, end == std::string_view::npos ? end : end - start);
            if (first ? !valid_nick(field) : !valid_room(field))
                return std::nullopt;
            (first ? m.nick : m.rooms.emplace_back()) = std::string(field);
            if (end == std::string_view::npos || m.rooms.size() > 64)
                break;
            start = end + 1;
        }
        return m;
    }

    void on_cluster_message(std::string_view instance, std::string_view payload) {
        std::array<std::string_view, 6> f{};
        const std::size_t n = cluster_fields(payload, f);
        if (n == 0)
            return note_malformed();
        const std::string_view kind = f[0];
        guard g(*this);
        if (stopping_)
            return;
        if ((kind == "M" || kind == "S") && n == 5 && valid_room(f[1]) && valid_nick(f[2]) &&
            !message_text_problem(f[3], 256 * 1024) && valid_short(f[4])) {
            // S: also in the room's shared history (publish_stored).
            publish(std::string(f[1]),
                    message_event{++next_id_, std::string(f[1]), std::string(f[2]),
                                  std::string(f[3]), std::string(f[4])},
                    true, kind == "S");
        } else if (kind == "J" && n == 4 && valid_room(f[1]) && valid_nick(f[2]) &&
                   valid_short(f[3])) {
            const std::string room(f[1]);
            auto& m = remote_[nickname_key(f[2])];
            m.instance = std::string(instance);
            m.nick = std::string(f[2]);
            if (std::find(m.rooms.begin(), m.rooms.end(), room) == m.rooms.end())
                m.rooms.push_back(room);
            publish(room, join_event{room, m.nick, std::string(f[3])}, false, true);
        } else if (kind == "L" && n == 5 && valid_room(f[1]) && valid_nick(f[2]) &&
                   valid_short(f[3]) && valid_short(f[4])) {
            if (nicks_.contains(nickname_key(f[2])))
                return; // ours, announced by an instance that took us for dead
            const std::string room(f[1]);
            if (auto it = remote_.find(nickname_key(f[2])); it != remote_.end())
                std::erase(it->second.rooms, room);
            publish(room,
                    leave_event{room, std::string(f[2]), std::string(f[3]), std::string(f[4])},
                    false, true);
        } else if (kind == "R" && n == 4 && valid_nick(f[1]) && valid_nick(f[2]) &&
                   valid_short(f[3])) {
            remote_member m;
            if (auto it = remote_.find(nickname_key(f[1])); it != remote_.end()) {
                m = std::move(it->second);
                remote_.erase(it);
            }
            m.instance = std::string(instance);
            m.nick = std::string(f[2]);
            // Once to each local member sharing a room with the renamer.
            const auto encodings =
                encode_both(rename_event{std::string(f[1]), m.nick, std::string(f[3])});
            std::unordered_set<session_base::id_type> told;
            for (const auto& room : m.rooms) {
                for (const auto& member : hub_.members(room))
                    if (told.insert(member->id()).second)
                        hub_.send_to(*member, pick(encodings, *member));
                hold_for_waiting(room, encodings, false, &told);
            }
            remote_[nickname_key(m.nick)] = std::move(m);
        } else if (kind == "P" && n == 5 && valid_nick(f[1]) && valid_nick(f[2]) &&
                   !message_text_problem(f[3], 256 * 1024) && valid_short(f[4])) {
            if (auto it = nicks_.find(nickname_key(f[2])); it != nicks_.end()) {
                chat_client& to = *it->second;
                send_or_hold(to, encode_both(private_event{++next_id_, std::string(f[1]), to.nick,
                                                           std::string(f[3]),
                                                           std::string(f[4])}));
            }
        } else if (kind == "Q" && n == 2 && valid_nick(f[1])) {
            if (!nicks_.contains(nickname_key(f[1])))
                remote_.erase(nickname_key(f[1]));
        } else {
            note_malformed();
        }
    }

    void note_malformed() {
        if (malformed_logged_.exchange(true))
            return;
        emit("cluster: ignored a payload from another instance that is not a valid chat event "
             "(said once; see the backplane's malformed counter)");
    }

    void on_cluster_snapshot(std::vector<std::pair<std::string, std::vector<std::string>>> all) {
        guard g(*this);
        remote_.clear();
        std::size_t members = 0;
        for (const auto& [instance, values] : all)
            for (const auto& v : values)
                if (auto m = parse_presence(instance, v)) {
                    ++members;
                    remote_[nickname_key(m->nick)] = std::move(*m);
                }
        g.log("cluster: " + std::to_string(all.size()) + " other instance(s) with " +
              std::to_string(members) + " member(s)");
    }

    // Another instance died: announce its members' leaves, here and (for
    // the others) through the backplane.
    void on_instance_lost(std::string_view instance, const std::vector<std::string>& values) {
        guard g(*this);
        if (stopping_)
            return;
        const std::string time = now();
        const std::string reason(to_string(leave_reason::disconnected));
        for (const auto& v : values) {
            auto m = parse_presence(instance, v);
            if (!m)
                continue;
            cluster_publish({"Q", m->nick}); // first, as in cluster_leave()
            for (const auto& room : m->rooms) {
                publish(room, leave_event{room, m->nick, reason, time}, false);
                cluster_publish({"L", room, m->nick, reason, time});
            }
            remote_.erase(nickname_key(m->nick));
            g.log("leave: " + m->nick + " (on lost instance " + std::string(instance) + ") left " +
                  std::to_string(m->rooms.size()) + " room(s) (disconnected)");
        }
        std::erase_if(remote_, [&](const auto& entry) { return entry.second.instance == instance; });
    }

    // The others announced our members' leaves while we were cut off: join
    // them again in the others' eyes (our own members saw nothing).
    void on_rejoined() {
        guard g(*this);
        const std::string time = now();
        for (const auto& [id, c] : clients_)
            if (!c->gone && !c->nick.empty())
                for (const auto& room : c->rooms)
                    cluster_publish({"J", room, c->nick, time});
    }

    void on_nick_conflict(const std::vector<std::string>& keys) {
        guard g(*this);
        for (const auto& key : keys) {
            auto it = nicks_.find(key);
            if (it == nicks_.end())
                continue;
            chat_client& c = *it->second;
            g.log("nick: " + who(c) + " is also in use on another server (both claimed it while "
                  "the backplane was down)");
            send(c, notice_event{"info", "your nickname " + c.nick +
                                             " was also taken on another server while the servers "
                                             "were disconnected; consider /nick NEW"});
        }
    }

    asio::any_io_executor executor_;
    server_options options_;
    // Messages per room the backplane keeps for all instances (0: none);
    // with it the hub keeps no history.
    std::size_t shared_history_ = 0;
    hub hub_;
    asio::strand<asio::any_io_executor> control_; // acceptors
    asio::ip::tcp::acceptor frame_acceptor_, line_acceptor_;
    std::atomic<bool> started_{false};
    std::string start_error_;
    std::uint16_t frame_port_ = 0, line_port_ = 0;
    frame_codec<> out_codec_{max_event_bytes};

    std::shared_ptr<outbound_budget> budget_; // null without a shared bound
    accept_backoff backoff_;                   // on control_
    struct hit_counters {
        std::atomic<std::uint64_t> nickname_timeouts{0}, idle_timeouts{0}, pings_sent{0},
            write_timeouts{0}, frames_too_large{0}, lines_too_long{0}, server_full{0},
            address_full{0}, accept_pauses{0}, rate_limited{0}, flood_disconnects{0};
    } hits_;

    mutable std::mutex mutex_;
    std::unordered_map<session_base::id_type, client_ptr> clients_;
    std::unordered_map<std::string, std::size_t> per_address_; // open connections by IP
    std::chrono::milliseconds stop_deadline_{0};
    std::unordered_map<std::string, chat_client*> nicks_; // by nickname_key()
    std::uint64_t next_id_ = 0;
    std::shared_ptr<backplane> cluster_ = options_.backplane; // null: on its own
    std::unordered_map<std::string, remote_member> remote_; // other instances' members, by key
    std::unordered_set<std::string> claiming_;              // keys being claimed
    // Joins waiting for their room's shared history, by room.
    std::unordered_map<std::string, std::vector<std::shared_ptr<history_wait>>> waits_;
    std::atomic<bool> malformed_logged_{false};
    bool stopping_ = false;
    std::unordered_map<std::uint64_t, std::function<void()>> handshaking_; // TLS, by id
    security_counters security_{};
};

} // namespace parley::chat::detail

namespace parley::chat {

inline server::server(asio::any_io_executor executor, server_options options)
    : impl_(std::make_shared<detail::chat_server>(std::move(executor), std::move(options))) {}

inline server::server(asio::io_context& ioc, server_options options)
    : server(ioc.get_executor(), std::move(options)) {}

inline server::~server() {
    if (impl_)
        impl_->stop();
}

inline void server::start() {
    std::error_code ec;
    start(ec);
    if (ec)
        throw std::system_error(ec, impl_->start_error()); // what(): "...: " + ec.message()
}

inline void server::start(std::error_code& ec) { impl_->start(ec); }

inline std::uint16_t server::local_port() const { return impl_->frame_port(); }
inline std::uint16_t server::line_port() const { return impl_->line_port(); }
inline void server::stop() { impl_->stop(); }
inline void server::stop(std::chrono::milliseconds flush_deadline) { impl_->stop(flush_deadline); }
inline limit_counters server::limit_counters() const { return impl_->limits(); }
inline std::vector<client_info> server::clients() const { return impl_->clients(); }
inline hub_counters server::counters() const { return impl_->counters(); }
inline backplane_counters server::cluster_counters() const { return impl_->cluster_counters(); }
inline security_counters server::security() const { return impl_->security(); }
inline const server_options& server::options() const noexcept { return impl_->options(); }

} // namespace parley::chat

#endif
