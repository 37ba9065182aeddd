// parley chat: redis_backplane bodies: publishing, stored history and history reads.
#ifndef PARLEY_CHAT_IMPL_REDIS_BACKPLANE_MESSAGES_HPP
#define PARLEY_CHAT_IMPL_REDIS_BACKPLANE_MESSAGES_HPP

#include <parley/chat/cluster/detail/redis_support.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <charconv>

namespace parley::chat {

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

inline void redis_backplane::publish_stored(std::string room, std::string payload) {
    publish_numbered(std::move(room), std::move(payload), {});
}

inline void redis_backplane::publish_numbered(std::string room, std::string payload,
                                              std::function<void()> failed) {
    asio::post(strand_, [self = shared_from_this(), room = std::move(room),
                         payload = std::move(payload), failed = std::move(failed)] {
        if (!self->up_) {
            self->dropped_.fetch_add(1, std::memory_order_relaxed);
            if (failed)
                failed();
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
                          std::move(framed), detail::epoch_text(self->epochs_())},
                         [self, failed](std::error_code ec, const redis::reply& r) {
                             const bool bad = ec || r.is_error();
                             (bad ? self->dropped_ : self->published_)
                                 .fetch_add(1, std::memory_order_relaxed);
                             // Lost with the link: its echo cannot come either (the
                             // subscriber is closed with it), so it is delivered here.
                             if (bad && failed)
                                 failed();
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

inline void redis_backplane::park_ticket(std::string token, std::uint64_t serial, std::string key,
                                         std::string record, std::string current,
                                         std::chrono::milliseconds ttl) {
    asio::post(strand_, [self = shared_from_this(), token = std::move(token), serial,
                         key = std::move(key), record = std::move(record),
                         current = std::move(current), ttl]() mutable {
        if (!self->up_)
            return; // resumable on this instance only
        self->run_script(detail::park_script,
                         {std::move(token), std::to_string(std::max<long long>(ttl.count(), 1)),
                          std::to_string(serial), std::move(key), std::move(record),
                          std::move(current)},
                         [](std::error_code, const redis::reply&) {});
    });
}

inline void redis_backplane::unpark_ticket(std::string token) {
    asio::post(strand_, [self = shared_from_this(), token = std::move(token)]() mutable {
        if (self->up_)
            self->run_script(detail::unpark_script, {std::move(token)},
                             [](std::error_code, const redis::reply&) {});
    });
}

inline void redis_backplane::take_ticket(std::string token, take_handler done) {
    asio::post(strand_, [self = shared_from_this(), token = std::move(token),
                         done = std::move(done)]() mutable {
        const bool may_retry = self->options_.take_retry.count() > 0;
        self->take_on_strand(std::move(token), std::move(done), may_retry);
    });
}

inline void redis_backplane::take_on_strand(std::string token, take_handler done, bool may_retry) {
    if (!up_ || stopping_)
        return done(false, std::nullopt);
    std::vector<std::string> args{token, std::to_string(options_.expiry.count())};
    run_script(
        detail::take_script, std::move(args),
        [self = shared_from_this(), token = std::move(token), done = std::move(done),
         may_retry](std::error_code ec, const redis::reply& r) mutable {
            if (ec || r.is_error())
                return done(false, std::nullopt);
            if (r.type != redis::reply::kind::array || r.elements.size() != 5) {
                if (!may_retry)
                    return done(true, std::nullopt);
                // Not there (yet): the instance that lost the connection
                // may still be writing it. One more try, later.
                auto timer = std::make_shared<asio::steady_timer>(self->strand_,
                                                                  self->options_.take_retry);
                return timer->async_wait([self, timer, token = std::move(token),
                                          done = std::move(done)](std::error_code) mutable {
                    self->take_on_strand(std::move(token), std::move(done), false);
                });
            }
            taken_ticket t;
            t.instance = r.elements[0].str;
            const auto& s = r.elements[1].str;
            const auto [end, sec] = std::from_chars(s.data(), s.data() + s.size(), t.serial);
            if (sec != std::errc() || end != s.data() + s.size()) {
                self->malformed_.fetch_add(1, std::memory_order_relaxed);
                return done(true, std::nullopt);
            }
            t.key = r.elements[2].str;
            t.record = r.elements[3].str;
            t.current = r.elements[4].str;
            done(true, std::move(t));
        });
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

} // namespace parley::chat

#endif
