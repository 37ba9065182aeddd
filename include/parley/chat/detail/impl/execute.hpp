// parley chat: carrying out the core's actions, on the chat strand and
// outside every lock.
#ifndef PARLEY_CHAT_DETAIL_IMPL_EXECUTE_HPP
#define PARLEY_CHAT_DETAIL_IMPL_EXECUTE_HPP

#include <parley/detail/duration_buckets.hpp>

namespace parley::chat::detail {

// On a session's strand: what one read brought goes to the core; the
// reader reads again once the core has handled it. What the batch
// publishes counts as this connection's: a recipient's queue above its
// high-water mark (overflow_policy::backpressure) pauses its reading, as
// the hub does for a session's read handler.
inline void chat_server::on_batch(core::conn_id id, transport::input_batch batch,
                                  std::function<void()> resume) {
    asio::post(chat_, [self = shared_from_this(), id, batch = std::move(batch),
                       resume = std::move(resume)]() mutable {
        session_base* reader = nullptr;
        if (auto it = self->connections_.find(id); it != self->connections_.end())
            reader = it->second.session.get();
        parley::detail::reading_scope publishing(reader);
        auto step = [&](core::chat& c, core::actions& out) {
            const auto now = core::moment::now();
            for (auto& in : batch.inputs) {
                if (in.error)
                    c.input_error(id, *in.error, std::move(in.text), now, out);
                else
                    c.input(id, in.text, now, out);
            }
            if (batch.finished)
                c.peer_finished(id, now, out);
        };
        // The first message it publishes samples it; a batch handed over
        // without a read time (the last inputs at a FIN or an error) none.
        if (batch.read_at != std::chrono::steady_clock::time_point{})
            self->batch_read_at_ = batch.read_at;
        self->run_here(step); // the batch's actions are carried out on return
        self->batch_read_at_.reset();
        if (!batch.finished)
            resume();
    });
}

inline void chat_server::deliver(core::conn_id to, session_base& s, const message_ptr& m,
                                 delivery& d) {
    if (!m)
        return;
    std::size_t dropped = 0;
    (s.send(m, &dropped) ? d.delivered : d.failed) += 1;
    if (dropped != 0)
        d.drops.emplace_back(to, dropped);
}

// One delivery_latency sample, on chat_ (the only writer: relaxed
// stores, read by metrics() from anywhere).
inline void chat_server::note_latency(std::chrono::steady_clock::time_point read_at) {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - read_at)
                        .count();
    const auto took = static_cast<std::uint64_t>(ns < 0 ? 0 : ns);
    ::parley::detail::count_duration(delivery_latency_bounds, latency_.within, took);
    latency_.sum_ns.fetch_add(took, std::memory_order_relaxed);
    latency_.count.fetch_add(1, std::memory_order_relaxed);
}

inline delivery_latency chat_server::latency() const {
    delivery_latency out;
    for (std::size_t b = 0; b < out.within.size(); ++b)
        out.within[b] = latency_.within[b].load(std::memory_order_relaxed);
    out.sum_ns = latency_.sum_ns.load(std::memory_order_relaxed);
    out.count = latency_.count.load(std::memory_order_relaxed);
    return out;
}

// Writes what is queued (and `last`, if any), then closes; aborts once the
// flush deadline passes: the peer does not read what is queued.
inline void chat_server::close_connection(connection& conn, const core::close_action& c,
                                          const message_ptr& last) {
    auto session = conn.session;
    auto timer = std::make_shared<asio::steady_timer>(chat_, c.flush);
    conn.close_timer = timer;
    session->close(transport::last_words(static_cast<transport::encoding>(conn.encoding), last));
    timer->async_wait([timer, weak = std::weak_ptr<session_base>(session)](std::error_code ec) {
        if (!ec)
            if (auto s = weak.lock())
                s->abort(error::timed_out);
    });
}

inline void chat_server::execute(core::actions& out) {
    delivery d;
    std::vector<std::string> refused; // rooms whose message the store did not take
    std::error_code store_failed; // the store's error, when it failed
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& a = out[i];
        if (auto* s = std::get_if<core::send_action>(&a)) {
            auto it = connections_.find(s->to);
            if (it == connections_.end())
                continue;
            auto m = transport::encode(s->ev, static_cast<transport::encoding>(it->second.encoding));
            // The last word before a close (why: server full, shutting
            // down) goes with the close: queued even past a full queue.
            auto* c = i + 1 < out.size() ? std::get_if<core::close_action>(&out[i + 1]) : nullptr;
            if (c && c->id == s->to && m) {
                ++i;
                ++d.delivered;
                close_connection(it->second, *c, m);
                continue;
            }
            deliver(s->to, *it->second.session, m, d);
        } else if (auto* p = std::get_if<core::publish_action>(&a)) {
            // Encoded once per encoding some member needs.
            transport::lazy_encodings encodings(p->ev);
            hits_.published.fetch_add(1, std::memory_order_relaxed);
            bool sample = batch_read_at_ && std::holds_alternative<message_event>(p->ev);
            for (core::conn_id id : *p->to)
                if (auto it = connections_.find(id); it != connections_.end()) {
                    const auto before = d.delivered;
                    deliver(id, *it->second.session, encodings.get(it->second.encoding), d);
                    if (sample && d.delivered != before) { // its first recipient took it
                        note_latency(*batch_read_at_);
                        batch_read_at_.reset();
                        sample = false;
                    }
                }
        } else if (auto* c = std::get_if<core::close_action>(&a)) {
            if (auto it = connections_.find(c->id); it != connections_.end())
                close_connection(it->second, *c, message_ptr{});
        } else if (auto* x = std::get_if<core::abort_action>(&a)) {
            if (auto it = connections_.find(x->id); it != connections_.end())
                it->second.session->abort(error::slow_consumer);
        } else if (auto* l = std::get_if<core::log_action>(&a)) {
            emit(l->line);
        } else if (auto* sa = std::get_if<core::store_append>(&a)) {
            store_append(*sa, refused, store_failed);
        } else if (auto* sr = std::get_if<core::store_read>(&a)) {
            store_read(*sr);
        } else if (link_) {
            link_->carry_out(a);
        }
    }
    if (d.delivered != 0)
        hits_.deliveries.fetch_add(d.delivered, std::memory_order_relaxed);
    if (d.failed != 0)
        hits_.failed.fetch_add(d.failed, std::memory_order_relaxed);
    if (!d.drops.empty() || !refused.empty() || store_failed) {
        core::actions logs;
        {
            std::lock_guard lock(mutex_);
            for (const auto& [id, n] : d.drops) {
                hits_.dropped.fetch_add(n, std::memory_order_relaxed);
                core_.dropped(id, n, logs);
            }
            const auto now = core::moment::now();
            if (store_failed)
                core_.store_lost(store_failed.message(), now, logs);
            for (const auto& room : refused)
                core_.store_refused(room, now, logs);
        }
        for (auto& a : logs)
            if (auto* l = std::get_if<core::log_action>(&a))
                emit(l->line);
    }
}

// The one timer of the core's deadlines, armed for the earliest.
inline void chat_server::rearm() {
    std::optional<std::chrono::steady_clock::time_point> next;
    {
        std::lock_guard lock(mutex_);
        if (core_.stopping())
            return;
        next = core_.next_wakeup();
    }
    if (!next || (armed_ && *armed_ <= *next))
        return;
    armed_ = next;
    wakeup_.expires_at(*next);
    wakeup_.async_wait([self = shared_from_this(), at = *next](std::error_code ec) {
        if (ec || self->armed_ != at)
            return; // re-armed for earlier meanwhile
        self->armed_.reset();
        auto step = [](core::chat& c, core::actions& out) { c.tick(core::moment::now(), out); };
        self->run_here(step);
    });
}

inline void chat_server::arm_sweep() {
    if (options_.memory_sweep.count() <= 0)
        return;
    {
        std::lock_guard lock(mutex_);
        if (core_.stopping())
            return;
    }
    sweep_.expires_after(options_.memory_sweep);
    sweep_.async_wait([self = shared_from_this()](std::error_code ec) {
        if (ec)
            return;
        self->sweep();
        self->arm_sweep();
    });
}

// Idle clients' outbound rings back (a client written to in every period
// keeps its own: no allocation per message); then, once per quiet period
// after activity, the heap a burst left free (see heap_trim.hpp). On
// chat_, where connections_ changes: no lock needed to walk it.
inline void chat_server::sweep() {
    for (auto& [id, conn] : connections_)
        conn.session->release_idle_memory();
    const std::size_t count = connections_.size();
    const std::uint64_t deliveries = hits_.deliveries.load(std::memory_order_relaxed);
    const bool busy = count != swept_connections_ || deliveries - swept_deliveries_ > count;
    swept_connections_ = count;
    swept_deliveries_ = deliveries;
    if (options_.trim_heap && trimmer_.due(busy, parley::detail::heap_now))
        parley::detail::heap_release();
}

} // namespace parley::chat::detail

#endif
