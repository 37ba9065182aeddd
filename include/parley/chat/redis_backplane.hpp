// parley chat: a backplane on Redis (docs/SCALING.md). Needs hiredis
// (Debian: libhiredis-dev; link with -lhiredis), for its RESP parser and
// command formatter only: the I/O is Asio's, on the chat's executor.
//
// @code
// auto bp = parley::chat::redis_backplane::create(ioc.get_executor(),
//                                                 {.host = "127.0.0.1", .port = 6379});
// parley::chat::server chat(ioc, {.backplane = bp});
// @endcode
//
// Two connections: one subscribed to the cluster's channels (<prefix>chat
// for the chat's payloads, <prefix>sync where an instance says it has
// (re)registered, so that the others reread its presence, and
// <prefix>instance:<id> where it receives the answers to its history
// reads), one for commands (PUBLISH in order, nickname claims, heartbeats,
// history). Redis keys,
// all under `prefix`:
//   instances            sorted set: instance id -> last heartbeat (Redis time, ms)
//   presence:<id>        hash: member key -> presence value, per instance
//   nick:<key>           string: the instance holding nickname <key>, with expiry
//   history:<room>       stream: the room's last messages (with shared history on)
//   seq:<room>           integer: the room's last seq (with shared history on)
//   epoch:<room>         string: the room's epoch (with shared history on)
//   resume:<sha1(token)> hash: a parked session, for a resume on any instance
// A Lua script per step keeps each step atomic: a heartbeat renews the
// instance's score and its nicknames, and removes any instance whose last
// heartbeat is older than `expiry`; the instance whose script removed it is
// the one told to announce its members' leaves.
#ifndef PARLEY_CHAT_REDIS_BACKPLANE_HPP
#define PARLEY_CHAT_REDIS_BACKPLANE_HPP

#include <parley/chat/backplane.hpp>
#include <parley/net/connect.hpp>
#include <parley/redis/redis_connection.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley::chat {

/// Room history shared by all instances (docs/SCALING.md): a capped Redis
/// stream per room, written by the sender's instance, read on every join.
struct redis_history_options {
    /// Messages kept per room (XADD MAXLEN ~: Redis may keep a few more,
    /// a read returns this many at most). 0: no shared history.
    std::size_t max_messages = 0;
    /// Bytes of messages one read returns at most (the newest that fit).
    std::size_t max_bytes = 256 * 1024;
    /// A room's history is deleted after this long without a message.
    std::chrono::milliseconds expiry = std::chrono::hours(24);
    /// How long a join waits for its room's history at most; then the
    /// member gets none and its live events start.
    std::chrono::milliseconds read_timeout{500};
    /// Reads in flight at most; a join beyond it gets no history.
    std::size_t max_reads = 1024;
};

/// Options of a redis_backplane.
struct redis_backplane_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    /// Prefix of every key and of the channel: servers sharing a Redis and
    /// a prefix form one chat.
    std::string prefix = "parley:";
    /// How often an instance proves it is alive (and renews its nicknames).
    std::chrono::milliseconds heartbeat{1000};
    /// An instance silent for longer is taken for dead: its members' leaves
    /// are announced, its nicknames freed. Also the lifetime of a nickname
    /// claim that is not renewed. Must exceed `heartbeat` (by 3 times or
    /// more, so that a busy instance is not taken for dead).
    std::chrono::milliseconds expiry{3000};
    /// Backoff between reconnection attempts (max_attempts is ignored:
    /// the backplane tries until stopped).
    connect_options reconnect{.attempt_timeout = std::chrono::milliseconds(2000),
                              .max_attempts = 0,
                              .initial_backoff = std::chrono::milliseconds(100),
                              .max_backoff = std::chrono::milliseconds(5000),
                              .on_state = {}};
    /// How long stop() waits for the withdrawal to be written.
    std::chrono::milliseconds stop_timeout{1000};
    /// Bounds of the command connection's queue (while Redis is slow).
    redis::connection_options queue{};
    /// Shared room history (off by default).
    redis_history_options history{};
    /// A resume whose session is not in Redis asks once more after this
    /// long (0: never): the instance that lost the client's connection
    /// writes the session one Redis round trip after it notices, so a
    /// client that reconnects to another instance at once can be ahead.
    std::chrono::milliseconds take_retry{250};
    /// One line per state change: connected, lost (once per outage),
    /// reconnected, an instance found dead. May be empty.
    std::function<void(std::string_view)> log{};
};

/// "redis://host:port" (or "redis://host", port 6379; IPv6 hosts in
/// brackets) into host and port; nullopt with `error` set if malformed.
std::optional<std::pair<std::string, std::uint16_t>> parse_redis_url(std::string_view url,
                                                                      std::string& error);

/// A backplane on Redis pub/sub and keys.
class redis_backplane final : public backplane,
                              public std::enable_shared_from_this<redis_backplane> {
    struct private_tag {};

public:
    /// Creates one; it does nothing until start().
    static std::shared_ptr<redis_backplane> create(asio::any_io_executor executor,
                                                   redis_backplane_options options = {});

    redis_backplane(private_tag, asio::any_io_executor executor, redis_backplane_options options);

    const std::string& instance_id() const override { return id_; }
    void start(backplane_events events) override;
    void stop() override;
    void publish(std::string payload) override;
    void claim_nick(std::string key, std::function<void(claim_result)> done) override;
    void release_nick(std::string key) override;
    void set_presence(std::string key, std::string value) override;
    backplane_counters counters() const override;
    std::size_t history_length() const override { return options_.history.max_messages; }
    void publish_stored(std::string room, std::string payload) override;
    /// Numbered whenever history is kept (history.max_messages != 0).
    bool numbers_messages() const override { return options_.history.max_messages != 0; }
    void publish_numbered(std::string room, std::string payload,
                          std::function<void()> failed) override;
    void read_history(std::string room, history_handler done) override;
    void park_ticket(std::string token, std::uint64_t serial, std::string key, std::string record,
                     std::string current, std::chrono::milliseconds ttl) override;
    void unpark_ticket(std::string token) override;
    void take_ticket(std::string token, take_handler done) override;

    const redis_backplane_options& options() const noexcept { return options_; }

private:
    void connect();
    void on_subscribed();
    void on_push(const redis::reply& r);
    void registered(const redis::reply& r);
    void refresh();
    static std::vector<std::pair<std::string, std::vector<std::string>>>
    instances_of(const redis::reply& list);
    void heartbeat();
    void link_lost(std::error_code ec, std::string_view what);
    void emit(const std::string& line) const;
    void run_script(const char* script, std::vector<std::string> args, redis::reply_handler h);
    std::string where() const;
    void on_history(std::string_view data);
    void finish_read(std::uint64_t token, std::optional<std::vector<std::string>> result);
    void fail_reads();
    void take_on_strand(std::string token, take_handler done, bool may_retry);

    asio::strand<asio::any_io_executor> strand_;
    redis_backplane_options options_;
    std::string id_, channel_, sync_channel_, own_channel_;
    backplane_events events_;
    std::shared_ptr<redis::connection> commands_, subscriber_;
    asio::steady_timer heartbeat_timer_, retry_timer_;
    std::uint64_t generation_ = 0;  // which connection attempt a handler belongs to
    bool up_ = false, started_ = false, stopping_ = false, in_outage_ = false;
    bool ever_up_ = false;
    unsigned failures_ = 0;         // consecutive failed links, for the backoff
    // History reads awaiting their answer on own_channel_, by token.
    struct history_read {
        history_handler done;
        std::shared_ptr<asio::steady_timer> timeout;
    };
    std::unordered_map<std::uint64_t, history_read> reads_;
    std::uint64_t next_read_ = 0;
    std::mt19937_64 epochs_{std::random_device{}()}; // room epoch candidates (no secret)
    std::chrono::steady_clock::time_point outage_began_{};
    std::atomic<bool> connected_{false};
    std::atomic<std::uint64_t> outages_{0}, reconnects_{0}, published_{0}, received_{0},
        dropped_{0}, malformed_{0}, conflicts_{0}, lost_{0};
};

} // namespace parley::chat

#include <parley/chat/impl/redis_backplane.hpp>

#endif
