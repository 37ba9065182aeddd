// parley chat: redis_backplane bodies: this instance's registration and heartbeat, nickname claims and presence.
#ifndef PARLEY_CHAT_IMPL_REDIS_BACKPLANE_PRESENCE_HPP
#define PARLEY_CHAT_IMPL_REDIS_BACKPLANE_PRESENCE_HPP

#include <parley/chat/cluster/detail/redis_support.hpp>

#include <asio/post.hpp>

namespace parley::chat {

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

} // namespace parley::chat

#endif
