// parley chat cluster: the link between the chat core and a backplane
// (parley/chat/backplane.hpp; parley/chat/redis_backplane.hpp is one).
//
// The core asks for cluster work through its cluster_* actions; the server
// hands each to a `listener`. `link` is the listener over a backplane: it
// sends what the core asks, and turns what the backplane reports (payloads,
// snapshots, lost instances, answers to claims and history reads) into
// inputs of the core, through the `runner` the server gives it (which
// serialises them with every other input, in the order they came).
#ifndef PARLEY_CHAT_CLUSTER_LINK_HPP
#define PARLEY_CHAT_CLUSTER_LINK_HPP

#include <parley/chat/backplane.hpp>
#include <parley/chat/core/core.hpp>

#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace parley::chat::cluster {

/// What the chat core asks of the other instances.
class listener {
public:
    virtual ~listener() = default;
    virtual void publish(std::string payload) = 0;
    virtual void store(std::string room, std::string payload) = 0;
    virtual void presence(std::string key, std::string value) = 0;
    virtual void release(std::string key) = 0;
    /// Answered with core::chat::nick_claimed().
    virtual void claim(core::conn_id id, std::uint64_t serial, std::string key) = 0;
    /// Answered with core::chat::history_read().
    virtual void read_history(std::uint64_t serial, std::string room) = 0;
    virtual void park(core::cluster_park p) { (void)p; }
    virtual void unpark(std::string token) { (void)token; }
    /// Answered with core::chat::ticket_taken().
    virtual void take(core::conn_id id, std::uint64_t serial, std::string token) {
        (void)id, (void)serial, (void)token;
    }

    /// Hands a cluster action of the core to the matching function; false
    /// for an action that is not the cluster's.
    bool carry_out(core::action& a) {
        if (auto* p = std::get_if<core::cluster_publish>(&a))
            return publish(std::move(p->payload)), true;
        if (auto* s = std::get_if<core::cluster_store>(&a))
            return store(std::move(s->room), std::move(s->payload)), true;
        if (auto* p = std::get_if<core::cluster_presence>(&a))
            return presence(std::move(p->key), std::move(p->value)), true;
        if (auto* r = std::get_if<core::cluster_release>(&a))
            return release(std::move(r->key)), true;
        if (auto* c = std::get_if<core::cluster_claim>(&a))
            return claim(c->conn, c->serial, std::move(c->key)), true;
        if (auto* h = std::get_if<core::cluster_read_history>(&a))
            return read_history(h->serial, std::move(h->room)), true;
        if (auto* p = std::get_if<core::cluster_park>(&a))
            return park(std::move(*p)), true;
        if (auto* u = std::get_if<core::cluster_unpark>(&a))
            return unpark(std::move(u->token)), true;
        if (auto* t = std::get_if<core::cluster_take>(&a))
            return take(t->conn, t->serial, std::move(t->token)), true;
        return false;
    }
};

/// A step on the core, run by the server in order with its other inputs.
using core_step = std::function<void(core::chat&, core::actions&)>;
using runner = std::function<void(core_step)>;

/// The listener over a backplane.
class link final : public listener {
public:
    /// `run` feeds the core; `presence` reads this instance's presence
    /// entries (core::chat::local_presence(), under the server's lock).
    link(std::shared_ptr<backplane> b, runner run, std::function<presence_entries()> presence)
        : backplane_(std::move(b)), run_(std::move(run)), presence_(std::move(presence)) {}

    void start() {
        backplane_events events;
        events.on_message = [run = run_](std::string_view instance, std::string_view payload) {
            run([instance = std::string(instance), payload = std::string(payload)](
                    core::chat& c, core::actions& out) {
                c.cluster_message(instance, payload, core::moment::now(), out);
            });
        };
        events.local_presence = presence_;
        events.on_snapshot = [run = run_](auto all) {
            run([all = std::move(all)](core::chat& c, core::actions& out) {
                c.cluster_snapshot(all, out);
            });
        };
        events.on_instance_lost = [run = run_](std::string_view instance,
                                               std::vector<std::string> values) {
            run([instance = std::string(instance), values = std::move(values)](core::chat& c,
                                                                               core::actions& out) {
                c.instance_lost(instance, values, core::moment::now(), out);
            });
        };
        events.on_conflict = [run = run_](std::vector<std::string> keys) {
            run([keys = std::move(keys)](core::chat& c, core::actions& out) {
                c.nick_conflict(keys, out);
            });
        };
        events.on_rejoined = [run = run_] {
            run([](core::chat& c, core::actions& out) { c.rejoined(core::moment::now(), out); });
        };
        backplane_->start(std::move(events));
    }

    void stop() { backplane_->stop(); }
    backplane_counters counters() const { return backplane_->counters(); }

    void publish(std::string payload) override { backplane_->publish(std::move(payload)); }
    void store(std::string room, std::string payload) override {
        if (!backplane_->numbers_messages())
            return backplane_->publish_stored(std::move(room), std::move(payload));
        std::string copy = payload;
        backplane_->publish_numbered(std::move(room), std::move(payload),
                                     [run = run_, copy = std::move(copy)]() mutable {
            run([copy = std::move(copy)](core::chat& c, core::actions& out) {
                c.store_failed(copy, core::moment::now(), out);
            });
        });
    }
    void presence(std::string key, std::string value) override {
        backplane_->set_presence(std::move(key), std::move(value));
    }
    void release(std::string key) override { backplane_->release_nick(std::move(key)); }
    void claim(core::conn_id id, std::uint64_t serial, std::string key) override {
        backplane_->claim_nick(std::move(key), [run = run_, id, serial](claim_result r) {
            run([id, serial, r](core::chat& c, core::actions& out) {
                c.nick_claimed(id, serial, r, core::moment::now(), out);
            });
        });
    }
    void park(core::cluster_park p) override {
        backplane_->park_ticket(std::move(p.token), p.serial, std::move(p.key), std::move(p.record),
                                std::move(p.current), p.grace);
    }
    void unpark(std::string token) override { backplane_->unpark_ticket(std::move(token)); }
    void take(core::conn_id id, std::uint64_t serial, std::string token) override {
        backplane_->take_ticket(std::move(token), [run = run_, id, serial](
                                                      bool reached, std::optional<taken_ticket> t) {
            run([id, serial, reached, t = std::move(t)](core::chat& c,
                                                        core::actions& out) mutable {
                c.ticket_taken(id, serial, reached, std::move(t), core::moment::now(), out);
            });
        });
    }
    void read_history(std::uint64_t serial, std::string room) override {
        backplane_->read_history(std::move(room), [run = run_, serial](auto history) {
            run([serial, history = std::move(history)](core::chat& c, core::actions& out) mutable {
                c.history_read(serial, std::move(history), core::moment::now(), out);
            });
        });
    }

private:
    std::shared_ptr<backplane> backplane_;
    runner run_;
    std::function<presence_entries()> presence_;
};

} // namespace parley::chat::cluster

#endif
