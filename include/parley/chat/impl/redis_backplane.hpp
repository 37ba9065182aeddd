// parley chat: redis_backplane.hpp bodies.
#ifndef PARLEY_CHAT_IMPL_REDIS_BACKPLANE_HPP
#define PARLEY_CHAT_IMPL_REDIS_BACKPLANE_HPP

#include <parley/chat/cluster/detail/redis_support.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <charconv>
#include <random>

namespace parley::chat {

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
    if (instance == id_)
        return; // our own echo
    received_.fetch_add(1, std::memory_order_relaxed);
    if (events_.on_message)
        events_.on_message(instance, std::string_view(data).substr(newline + 1));
}

inline void redis_backplane::run_script(const char* script, std::vector<std::string> args,
                                        redis::reply_handler h) {
    std::vector<std::string> argv{"EVAL", script, "0", options_.prefix, id_};
    for (auto& a : args)
        argv.push_back(std::move(a));
    commands_->command(argv, std::move(h));
}

// Subscribed: (re)announce this instance with its presence, then learn
// everyone else's.
inline void redis_backplane::on_subscribed() {
    std::vector<std::string> args{std::to_string(options_.expiry.count())};
    if (events_.local_presence)
        for (auto& [key, value] : events_.local_presence()) {
            args.push_back(std::move(key));
            args.push_back(std::move(value));
        }
    const std::uint64_t gen = generation_;
    run_script(detail::register_script, std::move(args),
               [self = shared_from_this(), gen](std::error_code ec, const redis::reply& r) {
                   if (gen != self->generation_ || self->stopping_)
                       return;
                   if (ec)
                       return self->link_lost(ec, "registering with");
                   self->registered(r);
               });
}

inline std::vector<std::pair<std::string, std::vector<std::string>>>
redis_backplane::instances_of(const redis::reply& list) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const auto& inst : list.elements) {
        if (inst.elements.size() != 2)
            continue;
        std::vector<std::string> values;
        for (const auto& v : inst.elements[1].elements)
            values.push_back(v.str);
        out.emplace_back(inst.elements[0].str, std::move(values));
    }
    return out;
}

inline void redis_backplane::refresh() {
    const std::uint64_t gen = generation_;
    run_script(detail::snapshot_script, {},
               [self = shared_from_this(), gen](std::error_code ec, const redis::reply& r) {
                   if (ec || gen != self->generation_ || self->stopping_ ||
                       r.type != redis::reply::kind::array)
                       return;
                   if (self->events_.on_snapshot)
                       self->events_.on_snapshot(instances_of(r));
               });
}

inline void redis_backplane::registered(const redis::reply& r) {
    if (r.type != redis::reply::kind::array || r.elements.size() != 3)
        return link_lost(error::malformed_message, "registering (" + r.describe() + ") with");
    std::vector<std::string> conflicts;
    for (const auto& k : r.elements[0].elements)
        conflicts.push_back(k.str);
    auto others = instances_of(r.elements[1]);
    const bool first = !ever_up_;
    const bool was_out = in_outage_;
    up_ = ever_up_ = true;
    connected_ = true;
    failures_ = 0;
    in_outage_ = false;
    if (was_out) {
        reconnects_.fetch_add(1, std::memory_order_relaxed);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - outage_began_);
        emit("redis: " + std::string(first ? "connected to " : "back: reconnected to ") + where() +
             " after " + std::to_string(ms.count()) + " ms; resubscribed, cross-instance "
             "delivery resumes (instance " + id_ + ")");
    } else if (first) {
        emit("redis: connected to " + where() + " as instance " + id_ + ", " +
             std::to_string(others.size()) + " other instance(s)");
    }
    if (!conflicts.empty()) {
        conflicts_.fetch_add(conflicts.size(), std::memory_order_relaxed);
        if (events_.on_conflict)
            events_.on_conflict(std::move(conflicts));
    }
    if (events_.on_snapshot)
        events_.on_snapshot(std::move(others));
    if (r.elements[2].integer == 1) {
        // Another instance took us for dead (we were cut off, or stalled,
        // for longer than the expiry) and announced our members' leaves.
        emit("redis: this instance had been taken for dead by another; announcing its members "
             "again");
        if (events_.on_rejoined)
            events_.on_rejoined();
    }
    // Tell the others to read our presence (they may have read it before
    // we were back).
    commands_->command({"PUBLISH", sync_channel_, id_});
    heartbeat();
}

inline void redis_backplane::heartbeat() {
    const std::uint64_t gen = generation_;
    heartbeat_timer_.expires_after(options_.heartbeat);
    heartbeat_timer_.async_wait([self = shared_from_this(), gen](std::error_code ec) {
        if (ec || gen != self->generation_ || self->stopping_)
            return;
        self->run_script(detail::heartbeat_script, {std::to_string(self->options_.expiry.count())},
                         [self, gen](std::error_code ec, const redis::reply& r) {
            if (gen != self->generation_ || self->stopping_)
                return;
            if (ec)
                return self->link_lost(ec, "heartbeat to");
            if (r.type != redis::reply::kind::array || r.elements.size() != 2)
                return self->link_lost(error::malformed_message,
                                       "heartbeat (" + r.describe() + ") to");
            for (const auto& inst : r.elements[1].elements) {
                if (inst.elements.size() != 2)
                    continue;
                std::vector<std::string> values;
                for (const auto& v : inst.elements[1].elements)
                    values.push_back(v.str);
                self->lost_.fetch_add(1, std::memory_order_relaxed);
                self->emit("redis: instance " + inst.elements[0].str + " missed its heartbeats for " +
                           std::to_string(self->options_.expiry.count()) +
                           " ms; announcing that its " + std::to_string(values.size()) +
                           " member(s) left");
                if (self->events_.on_instance_lost)
                    self->events_.on_instance_lost(inst.elements[0].str, std::move(values));
            }
            if (r.elements[0].integer == 0) {
                // Taken for dead (we were stalled) or Redis lost its data
                // (a restart without persistence): announce ourselves again.
                self->emit("redis: this instance was unknown to " + self->where() +
                           "; registering again");
                return self->on_subscribed();
            }
            self->heartbeat();
        });
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

inline void redis_backplane::publish(std::string payload) {
    asio::post(strand_, [self = shared_from_this(), payload = std::move(payload)] {
        if (!self->up_) {
            self->dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        std::string framed;
        framed.reserve(self->id_.size() + 1 + payload.size());
        framed += self->id_;
        framed += '\n';
        framed += payload;
        self->commands_->command({"PUBLISH", self->channel_, std::move(framed)},
                                 [self](std::error_code ec, const redis::reply&) {
                                     (ec ? self->dropped_ : self->published_)
                                         .fetch_add(1, std::memory_order_relaxed);
                                 });
    });
}

inline void redis_backplane::claim_nick(std::string key, std::function<void(claim_result)> done) {
    asio::post(strand_, [self = shared_from_this(), key = std::move(key),
                         done = std::move(done)]() mutable {
        if (!self->up_)
            return done(claim_result::unavailable);
        self->run_script(detail::claim_script,
                         {std::move(key), std::to_string(self->options_.expiry.count())},
                         [done = std::move(done)](std::error_code ec, const redis::reply& r) {
                             if (ec || r.type != redis::reply::kind::integer)
                                 return done(claim_result::unavailable);
                             done(r.integer == 1 ? claim_result::claimed : claim_result::taken);
                         });
    });
}

inline void redis_backplane::release_nick(std::string key) {
    asio::post(strand_, [self = shared_from_this(), key = std::move(key)]() mutable {
        if (self->up_)
            self->run_script(detail::release_script, {std::move(key)}, {});
    });
}

inline void redis_backplane::set_presence(std::string key, std::string value) {
    asio::post(strand_, [self = shared_from_this(), key = std::move(key),
                         value = std::move(value)]() mutable {
        if (self->up_)
            self->commands_->command(
                {"HSET", self->options_.prefix + "presence:" + self->id_, std::move(key),
                 std::move(value)});
    });
}

inline void redis_backplane::publish_stored(std::string room, std::string payload) {
    asio::post(strand_, [self = shared_from_this(), room = std::move(room),
                         payload = std::move(payload)] {
        if (!self->up_) {
            self->dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        const auto& h = self->options_.history;
        std::string framed;
        framed.reserve(self->id_.size() + 1 + payload.size());
        framed += self->id_;
        framed += '\n';
        framed += payload;
        self->run_script(detail::store_script,
                         {room, std::to_string(h.max_messages), std::to_string(h.expiry.count()),
                          std::move(framed)},
                         [self](std::error_code ec, const redis::reply& r) {
                             (ec || r.is_error() ? self->dropped_ : self->published_)
                                 .fetch_add(1, std::memory_order_relaxed);
                         });
    });
}

inline void redis_backplane::read_history(std::string room, history_handler done) {
    asio::post(strand_, [self = shared_from_this(), room = std::move(room),
                         done = std::move(done)]() mutable {
        const auto& h = self->options_.history;
        if (!self->up_ || self->stopping_ || h.max_messages == 0 ||
            self->reads_.size() >= h.max_reads)
            return done(std::nullopt);
        const std::uint64_t token = ++self->next_read_;
        auto timeout = std::make_shared<asio::steady_timer>(self->strand_, h.read_timeout);
        timeout->async_wait([self, token](std::error_code ec) {
            if (!ec)
                self->finish_read(token, std::nullopt);
        });
        self->reads_.emplace(token, history_read{std::move(done), std::move(timeout)});
        self->run_script(detail::read_script,
                         {std::move(room), std::to_string(h.max_messages),
                          std::to_string(h.max_bytes), std::to_string(token)},
                         [self, token](std::error_code ec, const redis::reply& r) {
                             // The answer itself comes on own_channel_.
                             if (ec || r.type != redis::reply::kind::integer || r.integer < 1)
                                 self->finish_read(token, std::nullopt);
                         });
    });
}

// The answer to a read_history(), on own_channel_: "token\n", then each
// payload as <length>:<payload>.
inline void redis_backplane::on_history(std::string_view data) {
    const auto newline = data.find('\n');
    std::uint64_t token = 0;
    const auto [end, ec] = std::from_chars(data.data(), data.data() + std::min(newline, data.size()),
                                           token);
    if (newline == std::string_view::npos || ec != std::errc() || end != data.data() + newline) {
        malformed_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (!reads_.contains(token))
        return; // timed out already
    std::vector<std::string> payloads;
    std::string_view rest = data.substr(newline + 1);
    while (!rest.empty()) {
        std::size_t length = 0;
        const auto colon = rest.find(':');
        const auto [e, ec2] = std::from_chars(rest.data(), rest.data() + std::min(colon, rest.size()),
                                              length);
        if (colon == std::string_view::npos || ec2 != std::errc() || e != rest.data() + colon ||
            length > rest.size() - colon - 1) {
            malformed_.fetch_add(1, std::memory_order_relaxed);
            return finish_read(token, std::nullopt);
        }
        payloads.emplace_back(rest.substr(colon + 1, length));
        rest.remove_prefix(colon + 1 + length);
    }
    finish_read(token, std::move(payloads));
}

inline void redis_backplane::finish_read(std::uint64_t token,
                                         std::optional<std::vector<std::string>> result) {
    auto it = reads_.find(token);
    if (it == reads_.end())
        return;
    auto read = std::move(it->second);
    reads_.erase(it);
    read.timeout->cancel();
    read.done(std::move(result));
}

// The link is lost: no answer can come any more.
inline void redis_backplane::fail_reads() {
    auto reads = std::move(reads_);
    reads_.clear();
    for (auto& [token, read] : reads) {
        read.timeout->cancel();
        read.done(std::nullopt);
    }
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
