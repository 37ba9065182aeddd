// parley chat: redis_backplane bodies: the link to Redis (creation, connecting, pushes, outages and retries, stop, counters).
#ifndef PARLEY_CHAT_IMPL_REDIS_BACKPLANE_LINK_HPP
#define PARLEY_CHAT_IMPL_REDIS_BACKPLANE_LINK_HPP

#include <parley/chat/cluster/detail/redis_support.hpp>
#include <parley/detail/hex.hpp>
#include <parley/detail/sha1.hpp>

#include <asio/post.hpp>

#include <array>
#include <random>
#include <utility>

namespace parley::chat {

namespace detail {
// Every script the backplane runs, with its SHA-1 in hex (what EVALSHA
// names it by), computed once.
inline const std::array<std::pair<const char*, std::string>, 11>& redis_scripts() {
    static const auto table = [] {
        std::array<std::pair<const char*, std::string>, 11> t{{
            {register_script, {}}, {heartbeat_script, {}}, {claim_script, {}},
            {release_script, {}}, {snapshot_script, {}}, {unregister_script, {}},
            {store_script, {}}, {read_script, {}}, {park_script, {}}, {unpark_script, {}},
            {take_script, {}}}};
        for (auto& [script, sha] : t)
            sha = ::parley::detail::to_hex(::parley::detail::sha1::of(script));
        return t;
    }();
    return table;
}
inline const std::string* redis_script_sha(const char* script) {
    for (const auto& [s, sha] : redis_scripts())
        if (s == script)
            return &sha;
    return nullptr;
}
} // namespace detail

// The Lua scripts, instance ids and parse_redis_url():
// parley/chat/cluster/detail/redis_support.hpp.

inline std::shared_ptr<redis_backplane> redis_backplane::create(asio::any_io_executor executor,
                                                                redis_backplane_options options) {
    return std::make_shared<redis_backplane>(private_tag{}, std::move(executor), std::move(options));
}

inline redis_backplane::redis_backplane(private_tag, asio::any_io_executor executor,
                                        redis_backplane_options options)
    : strand_(asio::make_strand(std::move(executor))), options_(std::move(options)),
      id_(detail::random_instance_id()), channel_(options_.prefix + "chat"),
      sync_channel_(options_.prefix + "sync"), own_channel_(options_.prefix + "instance:" + id_),
      heartbeat_timer_(strand_), retry_timer_(strand_) {
    if (options_.heartbeat.count() <= 0 || options_.expiry <= options_.heartbeat ||
        !options_.reconnect.valid())
        throw std::invalid_argument(
            "redis_backplane: the heartbeat must be positive and shorter than the expiry, and "
            "the reconnect options valid");
    options_.reconnect.max_attempts = 0;
}

inline void redis_backplane::emit(const std::string& line) const {
    if (options_.log)
        options_.log(line);
}

inline std::string redis_backplane::where() const {
    return parley::detail::host_port_text(options_.host, options_.port);
}

inline void redis_backplane::start(backplane_events events) {
    asio::post(strand_, [self = shared_from_this(), events = std::move(events)]() mutable {
        if (self->started_ || self->stopping_)
            return;
        self->started_ = true;
        self->events_ = std::move(events);
        self->connect();
    });
}

inline void redis_backplane::connect() {
    const std::uint64_t gen = ++generation_;
    commands_ = std::make_shared<redis::connection>(strand_, options_.queue);
    subscriber_ = std::make_shared<redis::connection>(strand_);
    std::weak_ptr<redis_backplane> weak = weak_from_this();
    auto how = options_.reconnect;
    how.on_state = [weak, gen](const connect_event& e) {
        auto self = weak.lock();
        if (!self || gen != self->generation_ || e.what != connect_event::kind::attempt_failed)
            return;
        if (!self->in_outage_) { // said once per outage
            self->in_outage_ = true;
            self->outages_.fetch_add(1, std::memory_order_relaxed);
            self->outage_began_ = std::chrono::steady_clock::now();
            self->emit("redis: cannot reach " + self->where() + ": " + e.error.message() +
                       "; serving local members only, retrying with backoff");
        }
    };
    auto lost = [weak, gen](std::string what) {
        return [weak, gen, what](std::error_code ec) {
            if (auto self = weak.lock(); self && gen == self->generation_)
                self->link_lost(ec, what);
        };
    };
    commands_->connect(options_.host, options_.port, how,
                       [self = shared_from_this(), gen, how, lost](std::error_code ec) {
        if (gen != self->generation_ || self->stopping_)
            return;
        if (ec)
            return self->link_lost(ec, "connecting to");
        self->commands_->on_close(lost("lost the command connection to"));
        for (const auto& entry : detail::redis_scripts()) // before any EVALSHA (run_script)
            self->commands_->command({"SCRIPT", "LOAD", entry.first});
        self->subscriber_->connect(self->options_.host, self->options_.port, how,
                                   [self, gen, lost](std::error_code ec) {
            if (gen != self->generation_ || self->stopping_)
                return;
            if (ec)
                return self->link_lost(ec, "connecting to");
            std::weak_ptr<redis_backplane> weak = self;
            self->subscriber_->on_close(lost("lost the subscriber connection to"));
            self->subscriber_->subscriber([weak, gen](const redis::reply& r) {
                if (auto s = weak.lock(); s && gen == s->generation_)
                    s->on_push(r);
            });
            self->subscriber_->command(
                {"SUBSCRIBE", self->channel_, self->sync_channel_, self->own_channel_});
        });
    });
}

inline void redis_backplane::on_push(const redis::reply& r) {
    if (r.type != redis::reply::kind::array || r.elements.size() != 3)
        return;
    const std::string& kind = r.elements[0].str;
    if (kind == "subscribe") {
        if (r.elements[2].integer == 3) // all three channels
            on_subscribed();
        return;
    }
    if (kind != "message")
        return;
    if (r.elements[1].str == own_channel_)
        return on_history(r.elements[2].str);
    if (r.elements[1].str == sync_channel_) {
        // Another instance (re)registered: its members are new to us.
        if (r.elements[2].str != id_ && up_)
            refresh();
        return;
    }
    const std::string& data = r.elements[2].str;
    const auto newline = data.find('\n');
    if (newline == std::string::npos) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const std::string_view instance(data.data(), newline);
    const std::string_view payload = std::string_view(data).substr(newline + 1);
    const bool own = instance == id_;
    if (own && payload.substr(0, 2) != "N\n")
        return; // our own echo; a numbered message is delivered here too
    if (!own)
        received_.fetch_add(1, std::memory_order_relaxed);
    if (events_.on_message)
        events_.on_message(instance, payload);
}

// EVALSHA: the script's 40-digit name instead of its text (up to 1.5 KiB)
// in every command, a message's included. The scripts are loaded when the
// command connection opens (SCRIPT LOAD, before any EVALSHA on it, and
// Redis runs a connection's commands in order); a Redis that lost them
// since (SCRIPT FLUSH, a restart behind a proxy) answers NOSCRIPT, and the
// command is sent again with EVAL, which loads the script too (it may then
// run after commands sent behind it: only right after such a loss).
inline void redis_backplane::run_script(const char* script, std::vector<std::string> args,
                                        redis::reply_handler h) {
    const std::string* sha = detail::redis_script_sha(script);
    auto argv = std::make_shared<std::vector<std::string>>();
    argv->reserve(5 + args.size());
    *argv = {sha ? "EVALSHA" : "EVAL", sha ? *sha : std::string(script), "0", options_.prefix, id_};
    for (auto& a : args)
        argv->push_back(std::move(a));
    if (!sha)
        return commands_->command(*argv, std::move(h));
    auto conn = commands_;
    conn->command(*argv, [conn, argv, script, h = std::move(h)](std::error_code ec,
                                                                const redis::reply& r) mutable {
        if (!ec && r.is_error() && r.str.starts_with("NOSCRIPT")) {
            (*argv)[0] = "EVAL";
            (*argv)[1] = script;
            return conn->command(*argv, std::move(h));
        }
        if (h)
            h(ec, r);
    });
}

inline void redis_backplane::link_lost(std::error_code ec, std::string_view what) {
    if (stopping_)
        return;
    ++generation_; // handlers of this link are stale from now on
    up_ = false;
    connected_ = false;
    heartbeat_timer_.cancel();
    fail_reads();
    if (commands_)
        commands_->close();
    if (subscriber_)
        subscriber_->close();
    if (!in_outage_) {
        in_outage_ = true;
        outages_.fetch_add(1, std::memory_order_relaxed);
        outage_began_ = std::chrono::steady_clock::now();
        emit("redis: " + std::string(what) + " " + where() + " failed: " + ec.message() +
             "; serving local members only until it is back (messages to other instances are "
             "dropped meanwhile), reconnecting with backoff");
    }
    ++failures_;
    std::minstd_rand rng(static_cast<unsigned>(generation_));
    retry_timer_.expires_after(jittered_backoff_delay(options_.reconnect, failures_, rng));
    retry_timer_.async_wait([self = shared_from_this(), gen = generation_](std::error_code ec) {
        if (!ec && gen == self->generation_ && !self->stopping_)
            self->connect();
    });
}

inline void redis_backplane::stop() {
    asio::post(strand_, [self = shared_from_this()] {
        if (self->stopping_)
            return;
        self->stopping_ = true;
        ++self->generation_;
        self->heartbeat_timer_.cancel();
        self->retry_timer_.cancel();
        for (auto& [token, read] : self->reads_) // dropped unanswered: the chat is stopping
            read.timeout->cancel();
        self->reads_.clear();
        const bool was_up = self->up_;
        self->up_ = false;
        self->connected_ = false;
        auto close_all = [self] {
            self->retry_timer_.cancel();
            if (self->commands_)
                self->commands_->close();
            if (self->subscriber_)
                self->subscriber_->close();
            self->events_ = {};
        };
        if (!was_up)
            return close_all();
        self->run_script(detail::unregister_script, {},
                         [close_all](std::error_code, const redis::reply&) { close_all(); });
        self->retry_timer_.expires_after(self->options_.stop_timeout);
        self->retry_timer_.async_wait([close_all](std::error_code ec) {
            if (!ec)
                close_all();
        });
    });
}

inline backplane_counters redis_backplane::counters() const {
    backplane_counters c;
    c.connected = connected_.load(std::memory_order_relaxed);
    c.outages = outages_.load(std::memory_order_relaxed);
    c.reconnects = reconnects_.load(std::memory_order_relaxed);
    c.published = published_.load(std::memory_order_relaxed);
    c.received = received_.load(std::memory_order_relaxed);
    c.dropped = dropped_.load(std::memory_order_relaxed);
    c.malformed = malformed_.load(std::memory_order_relaxed);
    c.nick_conflicts = conflicts_.load(std::memory_order_relaxed);
    c.instances_lost = lost_.load(std::memory_order_relaxed);
    return c;
}

} // namespace parley::chat

#endif
