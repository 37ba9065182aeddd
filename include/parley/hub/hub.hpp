// parley: the broadcast hub. Rooms of sessions; a message published to a
// room is built once and shared by every member's queue.
#ifndef PARLEY_HUB_HUB_HPP
#define PARLEY_HUB_HUB_HPP

#include <parley/error.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/session.hpp>
#include <parley/detail/optional_mutex.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley {

/// How much of a room's past a joiner is sent. Zero in either field turns
/// history off.
struct history_limits {
    std::size_t max_messages = 0;
    std::size_t max_bytes = 0;
};

/// Options of a hub.
struct hub_options {
    /// Per room; the same buffers the members were sent are kept, so
    /// history costs no copy.
    history_limits history{};
    /// Guard rooms with a mutex: needed when sessions join, leave or publish
    /// from several threads.
    bool thread_safe = true;
    /// Called when a member could not keep up: with the number of its
    /// messages dropped (overflow_policy::drop_oldest), or with 0 when it
    /// was disconnected (overflow_policy::disconnect). A member cut by its
    /// write deadline (overflow_policy::backpressure included) closes with
    /// error::write_timeout, which reaches its close handlers, not this.
    std::function<void(session_base&, std::size_t dropped)> on_slow_member{};
};

/// A snapshot of the hub's counters.
/// Messages are counted in frames: a message relaying a batch of frames
/// (message::frame_count) counts as that many.
struct hub_counters {
    std::uint64_t published = 0;         ///< messages published
    std::uint64_t deliveries = 0;        ///< messages queued to a member
    std::uint64_t dropped = 0;           ///< messages dropped by drop_oldest
    std::uint64_t slow_disconnects = 0;  ///< members disconnected as slow consumers
    std::uint64_t failed_deliveries = 0; ///< members closed or full at publish time
    /// Publishers paused by a member's queue above its high-water mark
    /// (overflow_policy::backpressure); each pause ends when that queue
    /// drains or its member is cut.
    std::uint64_t publisher_pauses = 0;
    std::size_t rooms = 0;
    std::size_t members = 0; ///< sessions that joined a room and have not closed
};

/// Rooms of sessions, and publishing to them.
///
/// The hub never writes to a socket itself and never blocks: publish()
/// queues the shared message to every member's bounded queue and returns;
/// each session's own executor writes. A member that cannot keep up is
/// handled by its queue's overflow_policy, and reported through
/// hub_options::on_slow_member and the counters, so one slow or hostile
/// client never holds the others back for long:
///
/// | policy | a member that falls behind | the others |
/// |---|---|---|
/// | `disconnect` (default) | disconnected at its queue's limit | unaffected |
/// | `drop_oldest` | stays, loses its oldest messages | unaffected |
/// | `backpressure` | stays and loses nothing; cut if it holds the room for the write deadline | publishers into it are paused (not read) until it drains: the room moves at its pace |
///
/// Under `backpressure` the publisher is the session whose read handler
/// calls publish() (or send_to()); a publish from anywhere else (a timer,
/// another thread) pauses no one and is bounded by the queue's limits only.
///
/// @par Thread safety
/// With hub_options::thread_safe (the default), every member function may
/// be called from any thread. A session that closes leaves all its rooms by
/// itself.
class hub {
public:
    using session_ptr = std::shared_ptr<session_base>;

    explicit hub(hub_options options = {})
        : options_(std::move(options)), mutex_(options_.thread_safe) {}

    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    ~hub() {
        // Sessions may outlive the hub: their close handlers must not call back.
        alive_->store(false);
    }

    /// Adds `s` to `room`, creating the room, and queues the room's history
    /// to it. Returns false if it was already a member.
    bool join(std::string_view room, const session_ptr& s) {
        std::vector<message_ptr> history;
        {
            detail::optional_lock lock(mutex_);
            auto [entry, inserted] = memberships_.try_emplace(s->id());
            auto& rooms_of_s = entry->second;
            if (std::find(rooms_of_s.begin(), rooms_of_s.end(), room) != rooms_of_s.end())
                return false;
            auto& r = rooms_[std::string(room)];
            writable_members(r).push_back(s);
            history.reserve(r.history.size());
            for (const auto& h : r.history)
                history.push_back(h.pick(s->encoding()));
            rooms_of_s.push_back(std::string(room));
            if (inserted)
                watch(*s);
        }
        if (!history.empty())
            s->send(std::span<const message_ptr>(history));
        return true;
    }

    /// Removes `s` from `room`; a room left empty is deleted (with its
    /// history). Returns false if it was not a member.
    bool leave(std::string_view room, const session_base& s) {
        detail::optional_lock lock(mutex_);
        return leave_locked(room, s);
    }

    /// Removes `s` from every room; returns the rooms it was in.
    std::vector<std::string> leave_all(const session_base& s) {
        detail::optional_lock lock(mutex_);
        auto it = memberships_.find(s.id());
        if (it == memberships_.end())
            return {};
        auto rooms = it->second;
        for (const auto& room : rooms)
            leave_locked(room, s);
        return rooms;
    }

    /// Queues `m` to every member of `room` except `except`. Returns the
    /// number of members it was queued to.
    std::size_t publish(std::string_view room, const message_ptr& m,
                        const session_base* except = nullptr) {
        return publish(room, std::span<const message_ptr>(&m, 1), except);
    }

    /// Publishes one message prepared in several encodings: each member is
    /// sent `encodings[member.encoding()]` (the last one if out of range).
    std::size_t publish(std::string_view room, std::span<const message_ptr> encodings,
                        const session_base* except = nullptr) {
        return publish_to_room(room, encodings, except, true);
    }

    /// Like publish(), but the message is not kept in the room's history:
    /// for events that only matter as they happen (a chat's join and leave
    /// notices), which would otherwise be replayed to later joiners and
    /// push real messages out of the history.
    std::size_t publish_transient(std::string_view room, std::span<const message_ptr> encodings,
                                  const session_base* except = nullptr) {
        return publish_to_room(room, encodings, except, false);
    }
    std::size_t publish_transient(std::string_view room, const message_ptr& m,
                                  const session_base* except = nullptr) {
        return publish_transient(room, std::span<const message_ptr>(&m, 1), except);
    }

    /// Queues `m` to one session (a private message), counted like a
    /// delivery. Returns false if it could not be queued.
    bool send_to(session_base& s, const message_ptr& m) { return send_one(s, m); }

    /// The members of `room`, in joining order.
    std::vector<session_ptr> members(std::string_view room) const {
        detail::optional_lock lock(mutex_);
        auto it = rooms_.find(room);
        if (it == rooms_.end() || !it->second.members)
            return {};
        return it->second.members->sessions;
    }

    /// The rooms `s` is in, in joining order.
    std::vector<std::string> rooms_of(const session_base& s) const {
        detail::optional_lock lock(mutex_);
        auto it = memberships_.find(s.id());
        return it == memberships_.end() ? std::vector<std::string>{} : it->second;
    }

    /// Every room's name.
    std::vector<std::string> rooms() const {
        detail::optional_lock lock(mutex_);
        std::vector<std::string> names;
        names.reserve(rooms_.size());
        for (const auto& [name, r] : rooms_)
            names.push_back(name);
        return names;
    }

    bool is_member(std::string_view room, const session_base& s) const {
        detail::optional_lock lock(mutex_);
        auto it = memberships_.find(s.id());
        return it != memberships_.end() &&
               std::find(it->second.begin(), it->second.end(), room) != it->second.end();
    }

    hub_counters counters() const {
        hub_counters c;
        c.published = published_.load(std::memory_order_relaxed);
        c.deliveries = deliveries_.load(std::memory_order_relaxed);
        c.dropped = dropped_.load(std::memory_order_relaxed);
        c.slow_disconnects = slow_disconnects_->load(std::memory_order_relaxed);
        c.failed_deliveries = failed_.load(std::memory_order_relaxed);
        c.publisher_pauses = pauses_.load(std::memory_order_relaxed);
        detail::optional_lock lock(mutex_);
        c.rooms = rooms_.size();
        c.members = memberships_.size();
        return c;
    }

private:
    // A room's members, and how many publishes are delivering to this very
    // list outside the lock (an acquire load of it orders their reads
    // before a change in place; shared_ptr::use_count() would not).
    struct member_list {
        member_list() = default;
        explicit member_list(const std::vector<session_ptr>& s) : sessions(s) {}
        std::vector<session_ptr> sessions;
        std::atomic<std::size_t> readers{0};
    };

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    // A published message as kept for history: up to two encodings.
    struct history_entry {
        std::array<message_ptr, 2> encodings;
        const message_ptr& pick(std::size_t encoding) const noexcept {
            return encoding >= 1 && encodings[1] ? encodings[1] : encodings[0];
        }
    };

    struct room_state {
        // Copy-on-write: publish takes a reference to the current list and
        // delivers outside the lock. Join and leave change the list in
        // place when no publish is reading it, and copy it only when one is.
        std::shared_ptr<member_list> members;
        std::deque<history_entry> history;
        std::size_t history_bytes = 0;
    };

    // The room's member list, safe to change under the hub's lock: new
    // readers start only under that lock, and the count says whether one is
    // still delivering to the current list.
    static std::vector<session_ptr>& writable_members(room_state& r) {
        if (!r.members)
            r.members = std::make_shared<member_list>();
        else if (r.members->readers.load(std::memory_order_acquire) != 0)
            r.members = std::make_shared<member_list>(r.members->sessions);
        return r.members->sessions;
    }

    std::size_t publish_to_room(std::string_view room, std::span<const message_ptr> encodings,
                                const session_base* except, bool keep_in_history) {
        std::shared_ptr<member_list> members;
        {
            detail::optional_lock lock(mutex_);
            auto it = rooms_.find(room);
            if (it == rooms_.end())
                return 0;
            // A snapshot: members may join or leave while we deliver.
            members = it->second.members;
            members->readers.fetch_add(1, std::memory_order_relaxed);
            if (keep_in_history)
                remember(it->second, encodings);
        }
        struct reading {
            member_list& list;
            ~reading() { list.readers.fetch_sub(1, std::memory_order_release); }
        } done{*members};
        published_.fetch_add(encodings.empty() ? 0 : encodings.front()->frame_count(),
                             std::memory_order_relaxed);
        return deliver(members->sessions, encodings, except);
    }

    std::size_t deliver(const std::vector<session_ptr>& members, std::span<const message_ptr> encodings,
                        const session_base* except) {
        if (encodings.empty() || members.empty())
            return 0;
        // Every queue holds a reference to what it was given. They are
        // taken here in one atomic step per encoding, not one per member,
        // and those not handed over are given back at the end.
        struct references {
            std::span<const message_ptr> encodings;
            std::array<std::uint32_t, 4> unused{};
            ~references() {
                for (std::size_t e = 0; e < encodings.size(); ++e)
                    encodings[e]->release_refs(unused[e]);
            }
        };
        const bool bulk = encodings.size() <= 4;
        references refs{bulk ? encodings : std::span<const message_ptr>{}};
        for (std::size_t e = 0; e < refs.encodings.size(); ++e) {
            refs.unused[e] = static_cast<std::uint32_t>(members.size());
            encodings[e]->add_refs(refs.unused[e]);
        }
        std::size_t delivered = 0, failed = 0, dropped_total = 0, pauses = 0;
        const std::size_t last = encodings.size() - 1;
        for (const auto& member : members) {
            if (member.get() == except)
                continue;
            const std::size_t e = std::min(member->encoding(), last);
            std::size_t dropped = 0;
            bool queued, paused = false;
            if (bulk) {
                queued = member->send_counted(*encodings[e], &dropped, &paused);
                refs.unused[e] -= queued ? 1 : 0;
            } else {
                queued = member->send(encodings[e], &dropped, &paused);
            }
            (queued ? delivered : failed) += 1;
            pauses += paused ? 1 : 0;
            if (dropped != 0) {
                dropped_total += dropped;
                if (options_.on_slow_member)
                    options_.on_slow_member(*member, dropped);
            }
        }
        const std::uint32_t frames = encodings.front()->frame_count();
        deliveries_.fetch_add(delivered * frames, std::memory_order_relaxed);
        if (failed)
            failed_.fetch_add(failed * frames, std::memory_order_relaxed);
        if (dropped_total)
            dropped_.fetch_add(dropped_total, std::memory_order_relaxed);
        if (pauses)
            pauses_.fetch_add(pauses, std::memory_order_relaxed);
        return delivered;
    }

    bool send_one(session_base& s, const message_ptr& m) {
        std::size_t dropped = 0;
        bool paused = false;
        const bool ok = s.send(m, &dropped, &paused);
        (ok ? deliveries_ : failed_).fetch_add(m->frame_count(), std::memory_order_relaxed);
        if (paused)
            pauses_.fetch_add(1, std::memory_order_relaxed);
        if (dropped != 0) {
            dropped_.fetch_add(dropped, std::memory_order_relaxed);
            if (options_.on_slow_member)
                options_.on_slow_member(s, dropped);
        }
        return ok;
    }

    void remember(room_state& r, std::span<const message_ptr> encodings) {
        const auto& limits = options_.history;
        if (limits.max_messages == 0 || limits.max_bytes == 0)
            return;
        // Counted by the first encoding's size.
        const std::size_t size = encodings.front()->size();
        if (size > limits.max_bytes)
            return;
        history_entry entry;
        entry.encodings[0] = encodings[0];
        if (encodings.size() > 1)
            entry.encodings[1] = encodings[1];
        r.history.push_back(std::move(entry));
        r.history_bytes += size;
        while (r.history.size() > limits.max_messages || r.history_bytes > limits.max_bytes) {
            r.history_bytes -= r.history.front().encodings[0]->size();
            r.history.pop_front();
        }
    }

    bool leave_locked(std::string_view room, const session_base& s) {
        auto mit = memberships_.find(s.id());
        if (mit == memberships_.end())
            return false;
        auto& rooms_of_s = mit->second;
        auto r = std::find(rooms_of_s.begin(), rooms_of_s.end(), room);
        if (r == rooms_of_s.end())
            return false;
        rooms_of_s.erase(r);
        auto it = rooms_.find(room);
        auto& members = writable_members(it->second);
        members.erase(std::find_if(members.begin(), members.end(),
                                   [&](const session_ptr& m) { return m.get() == &s; }));
        if (members.empty())
            rooms_.erase(it);
        return true;
    }

    // On its first join, a session is watched so that closing it removes it
    // from every room; a slow-consumer disconnect is counted and reported.
    void watch(session_base& s) {
        s.on_close([this, alive = alive_, slow = slow_disconnects_](session_base& closed,
                                                                    std::error_code reason) {
            if (reason == error::slow_consumer)
                slow->fetch_add(1, std::memory_order_relaxed);
            if (!alive->load())
                return;
            if (reason == error::slow_consumer && options_.on_slow_member)
                options_.on_slow_member(closed, 0);
            detail::optional_lock lock(mutex_);
            auto it = memberships_.find(closed.id());
            if (it == memberships_.end())
                return;
            const auto rooms = it->second;
            for (const auto& room : rooms)
                leave_locked(room, closed);
            memberships_.erase(closed.id());
        });
    }

    hub_options options_;
    mutable detail::optional_mutex mutex_;
    std::unordered_map<std::string, room_state, string_hash, std::equal_to<>> rooms_;
    std::unordered_map<session_base::id_type, std::vector<std::string>> memberships_;
    std::atomic<std::uint64_t> published_{0}, deliveries_{0}, dropped_{0}, failed_{0}, pauses_{0};
    std::shared_ptr<std::atomic<std::uint64_t>> slow_disconnects_ =
        std::make_shared<std::atomic<std::uint64_t>>(0);
    std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

} // namespace parley

#endif
