// parley chat: a chat server that applications embed.
//
// @code
// asio::io_context ioc;
// parley::chat::server chat(ioc, {.port = 9999, .line_port = 9998,
//                                 .log = [](std::string_view line) { std::cerr << line << '\n'; }});
// chat.start();                           // throws if a port is taken
// asio::signal_set signals(ioc, SIGINT, SIGTERM);
// signals.async_wait([&](auto, int) { chat.stop(); });
// ioc.run();                              // returns once stop() has finished
// @endcode
//
// The protocol is docs/PROTOCOL.md: framed clients (4-byte big-endian
// length, then the payload) send UTF-8 text inputs and receive JSON events;
// line-mode clients (`nc 127.0.0.1 9998`) send and receive text lines. Both
// share rooms: every event is encoded once per form its recipients need and
// queued on each recipient's bounded session queue, which keeps one slow
// reader from holding up the others. The chat logic is a sans-I/O state
// machine (parley/chat/core/core.hpp); docs/CHAT_DESIGN.md has the layers.
#ifndef PARLEY_CHAT_SERVER_HPP
#define PARLEY_CHAT_SERVER_HPP

#include <parley/chat/backplane.hpp>
#include <parley/chat/history/store.hpp>
#include <parley/chat/protocol.hpp>
#include <parley/hub/hub.hpp>
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/hub/session.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace parley::chat {

namespace detail {
class chat_server;
}

/// Which of a server's ports a connection came in on.
enum class port_kind : unsigned char {
    framed, ///< JSON events in length-prefixed frames
    line,   ///< text lines (nc, telnet)
    web,    ///< HTTP: the chat page, and the chat over a WebSocket
};

/// TLS for a chat server's ports (server_options::tls). Made by
/// parley::chat::make_tls() in parley/chat/tls.hpp, the one chat header
/// that needs OpenSSL; this interface keeps the server itself free of it.
class tls_layer {
public:
    virtual ~tls_layer() = default;

private:
    friend class detail::chat_server;
    // Performs the server handshake on `socket`, then hands the TLS stream
    // to server.adopt(); reports failures to server.handshake_failed().
    virtual void accept(const std::shared_ptr<detail::chat_server>& server,
                        asio::ip::tcp::socket socket, port_kind kind, std::string peer) const = 0;
};

/// Counters of refused connections and clients (see server::security()).
struct security_counters {
    /// TLS handshakes that failed: not TLS at all (a plain-TCP client on a
    /// TLS port), no common protocol version or cipher, a bad certificate.
    std::uint64_t tls_handshake_failures = 0;
    /// TLS handshakes not finished within the handshake timeout.
    std::uint64_t tls_handshake_timeouts = 0;
    /// Connections dropped before their handshake: too many handshakes
    /// under way at once (more than max_clients), or the server stopping.
    std::uint64_t tls_handshakes_refused = 0;
    /// Clients that presented a wrong access token (and were closed).
    std::uint64_t access_denied = 0;
    /// Web port: requests answered with an HTTP error (malformed, too
    /// large, another site's origin, an unknown path), and connections
    /// dropped unread (too many requests under way, or stopping).
    std::uint64_t web_requests_refused = 0;
    /// Web port: connections that sent no whole request head in time.
    std::uint64_t web_request_timeouts = 0;
};

/// Flood control: a token bucket on each client's inputs, in messages and
/// in bytes, each refilled at its rate up to its burst. An input that finds
/// a bucket short is dropped; the first one dropped after a calm spell is
/// answered with a rate_limited error, the others silently. A client whose
/// inputs keep being dropped (more than max_dropped before its message
/// bucket is full again, i.e. before it pauses) is told `flooding` and
/// disconnected.
struct flood_limits {
    /// Inputs per second; 0 turns flood control off.
    double messages_per_second = 20;
    std::size_t burst_messages = 60;
    /// Input bytes per second (payload or line, without framing).
    double bytes_per_second = 64 * 1024;
    std::size_t burst_bytes = 256 * 1024;
    /// Inputs dropped before a flooder is disconnected.
    std::size_t max_dropped = 100;
};

/// How often each limit was hit (see server::limit_counters()). Every
/// field only grows, except the two outbound_bytes fields.
struct limit_counters {
    std::uint64_t nickname_timeouts = 0;    ///< no nickname in time: closed
    std::uint64_t idle_timeouts = 0;        ///< silent past the idle deadline: closed
    std::uint64_t pings_sent = 0;           ///< keepalive pings sent
    std::uint64_t write_timeouts = 0;       ///< socket accepted nothing for write_timeout: closed
    std::uint64_t slow_consumers = 0;       ///< queue (or the shared budget) overflowed: closed
    std::uint64_t budget_refusals = 0;      ///< messages refused by the shared outbound budget
    std::uint64_t frames_too_large = 0;     ///< frame over max_frame_bytes: closed
    std::uint64_t lines_too_long = 0;       ///< line over max_line_bytes: discarded
    std::uint64_t server_full = 0;          ///< connections refused: max_clients
    std::uint64_t address_full = 0;         ///< refused: max_clients_per_address
    std::uint64_t accept_pauses = 0;        ///< accept loop paused after an error (EMFILE...)
    std::uint64_t rate_limited = 0;         ///< inputs dropped by flood control
    std::uint64_t flood_disconnects = 0;    ///< flooders disconnected
    std::uint64_t resumes = 0;              ///< sessions taken back with /resume
    std::uint64_t resumes_failed = 0;       ///< /resume refused (forged, used, expired token)
    std::uint64_t graces_expired = 0;       ///< sessions whose grace period ended unresumed
    std::size_t outbound_bytes = 0;         ///< queued for writing now, all clients
    std::size_t outbound_peak_bytes = 0;    ///< the most ever queued at once
};

/// The upper bounds, in seconds, of the buckets of delivery_latency::within.
inline constexpr std::array<double, 14> delivery_latency_bounds{
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
    0.005,    0.01,    0.025,  0.05,    0.1,   0.25,  1};

/// The time from an input's read to the handoff of the room message it
/// said to its first recipient's outbound queue (server::delivery_latency()).
/// Sampled once per read: the first room message a read's inputs publish
/// (a read that publishes none gives no sample). The read time is taken
/// once per read, when its inputs are decoded on the reading thread; the
/// end when the message is queued for the first member that takes it,
/// which starts (or joins) that member's next gathered write. So it counts
/// the hop to the chat strand, the core, the encoding and the queueing;
/// not the wait for the socket's write itself.
struct delivery_latency {
    /// within[i]: samples above bounds[i-1] and at most bounds[i]; those
    /// above the last bound are the rest of `count`.
    std::array<std::uint64_t, delivery_latency_bounds.size()> within{};
    std::uint64_t count = 0;
    std::uint64_t sum_ns = 0;
};

/// Options of a chat server.
struct server_options {
    /// Numeric address to listen on (IPv4 or IPv6).
    std::string host = "127.0.0.1";
    /// Port for framed clients; 0 picks a free one (see local_port()).
    std::uint16_t port = 9999;
    /// Port for line-mode clients; 0 picks a free one; nullopt: no line mode.
    std::optional<std::uint16_t> line_port = 9998;
    /// Port for browsers (docs/PROTOCOL.md §1b): `GET /` is the chat page,
    /// `GET /ws` the chat over a WebSocket, `GET /metrics` the counters
    /// (Prometheus text format) and `GET /healthz` "ok": firewall it from
    /// the public if they are private. 0 picks a free one; nullopt
    /// (the default): none.
    std::optional<std::uint16_t> web_port{};
    /// Origins (e.g. "https://chat.example.org") whose pages may open the
    /// chat's WebSocket. Empty: the page's own origin only, so another
    /// site's page cannot chat in its visitor's name.
    std::vector<std::string> web_origins{};
    /// A web connection that has not sent its whole request head by then
    /// is closed.
    std::chrono::milliseconds web_request_timeout = std::chrono::seconds(10);
    /// Negotiate permessage-deflate with browsers that offer it (they all
    /// do): a broadcast is compressed once and the same frame goes to every
    /// such recipient (docs/PROTOCOL.md §1b). Needs zlib (PARLEY_HAVE_ZLIB,
    /// the parley::deflate target); ignored without. Off by default.
    bool web_deflate = false;
    /// Text of the welcome event (line mode: the first line).
    std::string prompt = std::string(default_prompt);
    /// The room every client joins once it has a nickname.
    std::string default_room = "lobby";
    /// Largest frame a framed client may send. A larger one cannot be
    /// skipped reliably, so the client is told why and disconnected.
    std::size_t max_frame_bytes = default_max_frame_bytes;
    /// Largest message text; a longer one is refused (message_too_long) and
    /// the connection stays usable.
    std::size_t max_message_bytes = default_max_message_bytes;
    /// Longest line in line mode; a longer one is discarded with an error
    /// (line_too_long) and the connection stays usable.
    std::size_t max_line_bytes = default_max_line_bytes;
    /// Bounds of each client's outbound queue, and the policy when a client
    /// does not read fast enough (default: disconnect it as a slow consumer).
    queue_limits queue{.max_bytes = 1024 * 1024, .max_messages = 4096,
                       .policy = overflow_policy::disconnect};
    /// SO_SNDBUF of each connection, in bytes; 0 keeps the system's
    /// default (which grows on demand, to megabytes on Linux). Setting it
    /// bounds the kernel's share of what a slow reader costs, and makes the
    /// queue limits above take effect sooner.
    std::size_t send_buffer_bytes = 0;
    /// Messages kept per room and replayed to joiners (off by default).
    /// Unused when the backplane keeps a history shared by all instances
    /// (backplane::history_length(), docs/SCALING.md): joiners then get
    /// that one.
    history_limits history{};
    /// Resume (docs/PROTOCOL.md §8): a client whose connection is lost
    /// (not one that quits) keeps its nickname and rooms this long, with
    /// no leave announced, for a `/resume` with the token it was given.
    /// 0: no resume tokens, leaves announced at once.
    std::chrono::milliseconds resume_grace = std::chrono::minutes(2);
    /// Each room keeps at least its last resume_messages messages (and
    /// resume_bytes) for resume and /history, whatever `history` replays.
    std::size_t resume_messages = 1000;
    std::size_t resume_bytes = 256 * 1024;
    /// Most messages one /history answer carries.
    std::size_t history_page = 100;
    /// Keeps every room's messages (docs/HISTORY.md; sqlite_store in
    /// parley/chat/history/sqlite_store.hpp is one): each message is appended
    /// to it (never waiting for it), start() loads the rooms' epochs, last
    /// seqs and join-replay tails from it before accepting, so rooms continue
    /// after a restart, and /history reads it beyond what memory keeps.
    /// If it fails (at the load, or later), the server logs it and goes on
    /// with history in memory only. Null: history in memory only. Not with
    /// a backplane's shared history.
    std::shared_ptr<history::store> history_store{};
    /// With a history_store: a /resume whose gap in a room is at most this
    /// many messages reads what memory no longer holds from the store, in
    /// pages, each asked for once the client's queue has drained to a
    /// quarter of its bounds (0: resume reads memory only).
    std::size_t resume_store_messages = 10000;
    /// Connections at most; more are told server_full and closed.
    std::size_t max_clients = 1024;
    /// Connections from one remote IP address at most; more are told
    /// too_many_connections and closed. 0: no limit.
    std::size_t max_clients_per_address = 32;
    /// Rooms one client may be in at once.
    std::size_t max_rooms_per_client = 16;
    /// How long a new connection may take to choose a nickname.
    std::chrono::milliseconds nickname_timeout = std::chrono::seconds(60);
    /// Idle (read) deadline of framed clients: one that sends no complete
    /// input for this long is told idle_timeout and closed. It counts whole
    /// inputs, so a frame that trickles in byte by byte (slowloris) does
    /// not extend it. 0: no deadline.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(120);
    /// Keepalive: a framed client silent for this long is sent a ping
    /// event, which it answers with /pong. Shorter than idle_timeout; 0:
    /// no pings.
    std::chrono::milliseconds ping_interval = std::chrono::seconds(45);
    /// Idle deadline of line-mode clients. They are people at a terminal
    /// and are not pinged (a person cannot be asked to answer), so the
    /// deadline is longer; it still bounds half-open and trickling
    /// connections. 0: no deadline.
    std::chrono::milliseconds line_idle_timeout = std::chrono::minutes(30);
    /// Write deadline: a client whose socket accepts no data for this long
    /// while events are queued for it is disconnected (leave reason
    /// slow_consumer) even if its queue is not full. 0: none.
    std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
    /// Flood control per client.
    flood_limits flood{};
    /// Bound on the events queued for all clients together, on top of each
    /// client's queue limit (see outbound_budget). With the defaults, at
    /// most 128 MiB + 64 KiB per client. max_bytes 0: no shared bound.
    outbound_budget_limits outbound_budget{.max_bytes = 128 * 1024 * 1024,
                                           .reserve_bytes = 64 * 1024};
    /// How long stop() and a client that quits (or is closed for breaking a
    /// limit) wait for queued events to be written before closing the
    /// connection anyway.
    std::chrono::milliseconds close_timeout = std::chrono::seconds(2);
    /// Memory of idle clients: every this often the server gives back the
    /// outbound ring of each client that was written nothing for a whole
    /// period (session_base::release_idle_memory()), and, with
    /// `trim_heap`, once the load has settled after activity (a period in
    /// which no client came or went and fewer events than clients were
    /// delivered), the heap glibc keeps free after a burst such as a join
    /// storm (malloc_trim(0), at most once per quiet period and once per 5
    /// periods: the walk holds the chat's strand and the allocator for a few
    /// ms per 10 MB of fragmented heap; parley/detail/heap_trim.hpp). 0: no
    /// sweep.
    std::chrono::milliseconds memory_sweep = std::chrono::seconds(2);
    bool trim_heap = true;
    /// The executor is run by one thread only (one io_context::run()
    /// call at a time): connections then run on it directly, without a
    /// strand each (about 120 bytes less per connection, and no strand to
    /// pass through for each handler). The server's member functions may
    /// still be called from any thread. Off by default: with it on and
    /// several threads running the executor, one connection's handlers
    /// could run concurrently.
    bool single_threaded = false;
    /// Receives one line for every join, leave, rename, error sent to a
    /// client and slow-consumer disconnect. Called without the server's lock
    /// held, from the threads running the executor; may be empty.
    std::function<void(std::string_view)> log{};
    /// Joins this server with the others sharing the backplane into one
    /// chat: rooms, private messages, /list and nicknames span them all
    /// (docs/SCALING.md; parley/chat/redis_backplane.hpp is one). Null: a
    /// server on its own. The server starts and stops it.
    std::shared_ptr<chat::backplane> backplane{};
    /// TLS on both ports (the framed and the line port): make it with
    /// parley::chat::make_tls() from parley/chat/tls.hpp. Empty: plain TCP.
    std::shared_ptr<const tls_layer> tls{};
    /// A shared secret every client must present with `/auth TOKEN` before
    /// its nickname (docs/PROTOCOL.md). It is compared in constant time; a
    /// wrong one is answered with access_denied and the connection is
    /// closed. Empty: no token needed. Send it over TLS only: in plain TCP
    /// anyone on the path can read it.
    std::string access_token{};
};

/// What the server knows of one connection (see server::clients()).
struct client_info {
    session_base::id_type id = 0;
    std::string nick; ///< empty until a nickname was accepted
    std::string peer; ///< "127.0.0.1:54321"
    bool line_mode = false;
    std::vector<std::string> rooms; ///< in joining order
    std::string current_room;
    session_stats queue; ///< the outbound queue right now
};

/// A chat server: rooms, nicknames, private messages, framed and line-mode
/// clients, per docs/PROTOCOL.md.
///
/// @par Threading
/// Every member function may be called from any thread. The executor may
/// be an io_context run by several threads: each connection reads and
/// writes on its own strand (none with server_options::single_threaded); the chat's state (nicknames, rooms, message
/// ids: parley/chat/core/core.hpp) changes on one chat strand, which also
/// encodes and queues the events, with no lock held while another is
/// taken, so all members of a room see its events in the same order
/// (docs/CHAT_DESIGN.md).
///
/// @par Lifetime
/// Destroy the server before its execution context. The destructor calls
/// stop(); handlers still queued keep the server's internals alive until
/// they have run (or the context is destroyed).
class server {
public:
    server(asio::any_io_executor executor, server_options options = {});
    explicit server(asio::io_context& ioc, server_options options = {});
    ~server();

    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Opens the listening sockets and starts accepting. Fails (and listens
    /// on nothing) when an address is invalid or a port is taken; the
    /// throwing form says which in what().
    void start();
    void start(std::error_code& ec);

    /// The framed port actually bound (useful with port 0), or 0.
    std::uint16_t local_port() const;
    /// The line-mode port actually bound, or 0 without line mode.
    std::uint16_t line_port() const;
    /// The web port actually bound, or 0 without one.
    std::uint16_t web_port() const;

    /// Stops accepting, sends every client a "shutdown" notice, closes each
    /// connection once its queue is written (or after close_timeout). Once
    /// every connection is closed the server holds no more work, so
    /// io_context::run() returns. Returns at once: the work is done on the
    /// executor (the listening sockets close as soon as it runs).
    /// Idempotent.
    void stop();

    /// Graceful shutdown with its own deadline: as stop(), but each
    /// connection gets `flush_deadline` (instead of close_timeout) to
    /// receive what is queued for it, the shutdown notice last; then it is
    /// closed regardless. Every message accepted before the call reaches
    /// every client that keeps reading. Returns at once.
    void stop(std::chrono::milliseconds flush_deadline);

    /// A snapshot of every connection.
    std::vector<client_info> clients() const;

    /// The hub's counters: deliveries, slow-consumer disconnects, members...
    hub_counters counters() const;

    /// The backplane's counters (all zero without one).
    backplane_counters cluster_counters() const;
    /// Failed TLS handshakes and refused access tokens.
    security_counters security() const;
    /// How often each limit was hit, and the outbound bytes queued now.
    chat::limit_counters limit_counters() const;
    /// The input-to-first-delivery latency histogram (see delivery_latency).
    chat::delivery_latency delivery_latency() const;

    const server_options& options() const noexcept;

private:
    std::shared_ptr<detail::chat_server> impl_;
};

} // namespace parley::chat

#include <parley/chat/detail/chat_server.hpp>

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
inline std::uint16_t server::web_port() const { return impl_->web_port(); }
inline void server::stop() { impl_->stop(); }
inline void server::stop(std::chrono::milliseconds flush_deadline) { impl_->stop(flush_deadline); }
inline limit_counters server::limit_counters() const { return impl_->limits(); }
inline delivery_latency server::delivery_latency() const { return impl_->latency(); }
inline std::vector<client_info> server::clients() const { return impl_->clients(); }
inline hub_counters server::counters() const { return impl_->counters(); }
inline backplane_counters server::cluster_counters() const { return impl_->cluster_counters(); }
inline security_counters server::security() const { return impl_->security(); }
inline const server_options& server::options() const noexcept { return impl_->options(); }

} // namespace parley::chat

#endif
