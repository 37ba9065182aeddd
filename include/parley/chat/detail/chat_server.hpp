// parley chat: the server's I/O around the chat core. Listeners, TLS
// bookkeeping, the sessions, the one chat strand that feeds the core and
// carries out its actions (docs/CHAT_DESIGN.md has the threading model).
// Outside the guard: parley/chat/server.hpp declares what this file
// implements and includes it at its end.
#include <parley/chat/server.hpp>

#ifndef PARLEY_CHAT_DETAIL_CHAT_SERVER_HPP
#define PARLEY_CHAT_DETAIL_CHAT_SERVER_HPP

#include <parley/chat/cluster/link.hpp>
#include <parley/chat/core/core.hpp>
#include <parley/chat/detail/secure_random.hpp>
#include <parley/chat/transport/encoding.hpp>
#include <parley/chat/transport/readers.hpp>
#include <parley/chat/transport/web_door.hpp>
#include <parley/chat/transport/websocket_input.hpp>
#include <parley/detail/heap_trim.hpp>
#include <parley/detail/read_pause.hpp>
#include <parley/net/accept_backoff.hpp>
#include <parley/error.hpp>
#include <parley/version.hpp>

#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace parley::chat {
struct metrics_snapshot;
}

namespace parley::chat::detail {

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

// The chat core's settings from the server's options.
inline core::options core_options(const server_options& o, std::size_t shared_history) {
    core::options c;
    c.prompt = o.prompt;
    c.server_name = "parley/" PARLEY_VERSION;
    c.default_room = canonical_room(o.default_room);
    c.access_token = o.access_token;
    c.max_frame_bytes = o.max_frame_bytes;
    c.max_message_bytes = o.max_message_bytes;
    c.max_line_bytes = o.max_line_bytes;
    c.max_clients = o.max_clients;
    c.max_clients_per_address = o.max_clients_per_address;
    c.max_rooms_per_client = o.max_rooms_per_client;
    c.history_messages = shared_history != 0 ? 0 : o.history.max_messages;
    c.history_bytes = shared_history != 0 ? 0 : o.history.max_bytes;
    c.shared_history = shared_history;
    c.held_messages = o.queue.max_messages;
    c.held_bytes = o.queue.max_bytes;
    c.nickname_timeout = o.nickname_timeout;
    c.idle_timeout = o.idle_timeout;
    c.ping_interval = o.ping_interval;
    c.line_idle_timeout = o.line_idle_timeout;
    c.write_timeout = o.write_timeout;
    c.close_timeout = o.close_timeout;
    c.queue_bytes = o.queue.max_bytes;
    c.queue_messages = o.queue.max_messages;
    c.messages_per_second = o.flood.messages_per_second;
    c.burst_messages = o.flood.burst_messages;
    c.bytes_per_second = o.flood.bytes_per_second;
    c.burst_bytes = o.flood.burst_bytes;
    c.max_dropped = o.flood.max_dropped;
    c.clustered = o.backplane != nullptr;
    c.numbered = shared_history != 0 && o.backplane->numbers_messages();
    if (c.numbered)
        c.instance = o.backplane->instance_id(); // resume on any instance
    c.resume_grace = o.resume_grace;
    c.resume_messages = o.resume_messages;
    c.resume_bytes = o.resume_bytes;
    c.history_page = o.history_page;
    c.random = secure_random(); // resume tokens, room epochs
    c.stored = o.history_store != nullptr && shared_history == 0;
    c.resume_store_messages = o.resume_store_messages;
    return c;
}

// How a closed session's reason reads to the core. EPIPE is an error too:
// after a reset (SO_LINGER 0) the first call reports ECONNRESET and the
// next ones EPIPE, so a write can see EPIPE for a reset whose ECONNRESET
// went to the read. A peer that closed normally was announced on its FIN.
inline core::departure departure_of(std::error_code reason) {
    if (reason == error::slow_consumer)
        return core::departure::slow_consumer;
    if (reason == error::write_timeout)
        return core::departure::write_timeout;
    if (reason == asio::error::eof || reason == error::session_closed)
        return core::departure::closed;
    return core::departure::error;
}

class chat_server : public std::enable_shared_from_this<chat_server> {
public:
    chat_server(asio::any_io_executor executor, server_options options);

    const server_options& options() const noexcept { return options_; }
    void start(std::error_code& ec);
    const std::string& start_error() const noexcept { return start_error_; }
    std::uint16_t frame_port() const noexcept { return frame_port_; }
    std::uint16_t line_port() const noexcept { return line_port_; }
    std::uint16_t web_port() const noexcept { return web_port_; }
    void stop() { stop(options_.close_timeout); }
    void stop(std::chrono::milliseconds flush_deadline);

    std::vector<client_info> clients() const;
    hub_counters counters() const;
    backplane_counters cluster_counters() const {
        return link_ ? link_->counters() : backplane_counters{};
    }
    chat::limit_counters limits() const;
    chat::delivery_latency latency() const;
    security_counters security() const {
        std::lock_guard lock(mutex_);
        security_counters out = security_;
        out.access_denied = core_.hits().access_denied;
        return out;
    }

    // Starts the chat on a connected stream: a TCP socket, or a TLS stream
    // once its handshake is done (parley/chat/tls.hpp calls this). On the
    // web port, the request is read first (web_door).
    template <class Stream>
    void adopt(Stream stream, port_kind kind, std::string peer);

    // TLS handshakes (parley/chat/tls.hpp).
    void handshake_failed(const std::string& peer, std::error_code ec, const std::string& why);
    // `refused`: the security counter a refusal adds to.
    bool handshake_started(std::uint64_t id, std::function<void()> cancel,
                           std::uint64_t security_counters::*refused);
    void handshake_ended(std::uint64_t id) {
        std::lock_guard lock(mutex_);
        handshaking_.erase(id);
    }

    // The input decoders' sink (parley/chat/transport/readers.hpp).
    void on_batch(core::conn_id id, transport::input_batch batch, std::function<void()> resume);

    // Runs `step` on the core, on the chat strand, then carries out what it
    // asked for (the cluster link's inputs come this way too). Posted, never
    // run inline: a close or send while actions are carried out may call
    // back here, and must wait for them.
    template <class Step>
    void run(Step step) {
        asio::post(chat_, [self = shared_from_this(), step = std::move(step)]() mutable {
            self->run_here(step);
        });
    }

private:
    struct connection {
        std::shared_ptr<session_base> session;
        std::size_t encoding = 0;
        std::shared_ptr<asio::steady_timer> close_timer; // armed by a close action
    };

    bool listen(asio::ip::tcp::acceptor& acceptor, std::uint16_t port, std::error_code& ec);
    void accept(asio::ip::tcp::acceptor& acceptor, port_kind kind);
    void on_accept(asio::ip::tcp::socket socket, port_kind kind);
    // The web port: one HTTP request, then the page, an error or the chat.
    template <class Stream>
    void open_door(Stream stream, std::string peer);
    template <class Stream>
    void adopt_websocket(Stream stream, std::string peer, std::string first_bytes, bool deflate);
    template <class Stream>
    std::shared_ptr<parley::session<Stream>> enter(Stream stream, transport::encoding how,
                                                   std::string peer);
    void web_refused(int status);
    // What GET /metrics shows (parley/chat/metrics.hpp).
    metrics_snapshot metrics() const;
    void on_closed(core::conn_id id, std::error_code reason);
    // impl/storage.hpp: the history store.
    void load_history(std::function<void()> then);
    void load_tails(std::shared_ptr<std::vector<core::stored_room>> rooms, std::size_t next,
                    std::function<void()> then);
    void store_append(core::store_append& a, std::vector<std::string>& refused,
                      std::error_code& failed);
    void store_read(core::store_read& r);
    void start_accepting();

    // On the chat strand: the core under the lock, the actions after it.
    template <class Step>
    void run_here(Step& step) {
        core::actions out;
        {
            std::lock_guard lock(mutex_);
            step(core_, out);
        }
        execute(out);
        rearm();
    }
    void execute(core::actions& out);
    // What one step's deliveries came to, counted once per step.
    struct delivery {
        std::uint64_t delivered = 0, failed = 0;
        std::vector<std::pair<core::conn_id, std::size_t>> drops; // drop_oldest victims
    };
    void deliver(core::conn_id to, session_base& s, const message_ptr& m, delivery& d);
    void close_connection(connection& conn, const core::close_action& c, const message_ptr& last);
    void rearm();
    // The memory sweep (server_options::memory_sweep), on chat_.
    void arm_sweep();
    void sweep();
    void emit(const std::string& line) const {
        if (options_.log)
            options_.log(line);
    }

    asio::any_io_executor executor_;
    server_options options_;
    asio::strand<asio::any_io_executor> chat_;    // the core, its actions, its timer
    asio::strand<asio::any_io_executor> control_; // acceptors
    asio::ip::tcp::acceptor frame_acceptor_, line_acceptor_, web_acceptor_;
    asio::steady_timer wakeup_;
    asio::steady_timer sweep_; // on chat_
    std::size_t swept_connections_ = 0;     // on chat_: at the last sweep
    std::uint64_t swept_deliveries_ = 0;    // on chat_: at the last sweep
    parley::detail::heap_trimmer trimmer_;  // on chat_
    std::optional<std::chrono::steady_clock::time_point> armed_; // on chat_
    std::atomic<bool> started_{false};
    std::string start_error_;
    std::uint16_t frame_port_ = 0, line_port_ = 0, web_port_ = 0;
    std::shared_ptr<outbound_budget> budget_; // null without a shared bound
    accept_backoff backoff_;                   // on control_
    std::unique_ptr<cluster::link> link_;      // null: on its own

    mutable std::mutex mutex_; // core_, connections_ (changed on chat_ only), security_, handshaking_
    core::chat core_;
    std::unordered_map<core::conn_id, connection> connections_;
    security_counters security_{};
    std::unordered_map<std::uint64_t, std::function<void()>> handshaking_; // TLS and web, by id
    std::atomic<std::uint64_t> next_door_{1};
    bool stopping_ = false; // under mutex_

    // The delivery_latency histogram: written on chat_ only, read anywhere.
    struct latency_counters {
        std::array<std::atomic<std::uint64_t>, delivery_latency_bounds.size()> within{};
        std::atomic<std::uint64_t> count{0}, sum_ns{0};
    } latency_;
    // On chat_, while a batch's actions are carried out: when its read
    // completed; cleared by the first message it publishes (one sample).
    std::optional<std::chrono::steady_clock::time_point> batch_read_at_;
    void note_latency(std::chrono::steady_clock::time_point read_at);

    struct hit_counters {
        std::atomic<std::uint64_t> write_timeouts{0}, accept_pauses{0}, published{0},
            deliveries{0}, dropped{0}, failed{0}, slow_disconnects{0};
    } hits_;
};

} // namespace parley::chat::detail

#include <parley/chat/detail/impl/chat_server.hpp>
#include <parley/chat/detail/impl/execute.hpp>
#include <parley/chat/detail/impl/web.hpp>
#include <parley/chat/detail/impl/storage.hpp>

#endif
