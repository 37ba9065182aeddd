// parley chat: the server's side of a history store (server_options::
// history_store; docs/HISTORY.md). The core asks (store_append, store_read,
// core/impl/storage.hpp); this file carries it out: appends only queue, and
// every answer comes back on the chat strand through the store's completion,
// so no I/O thread ever waits for the disk.
#ifndef PARLEY_CHAT_DETAIL_IMPL_STORAGE_HPP
#define PARLEY_CHAT_DETAIL_IMPL_STORAGE_HPP

#include <algorithm>

namespace parley::chat::detail {

inline message_event to_event(history::record&& r) {
    return message_event{r.id, std::move(r.room), std::move(r.from), std::move(r.text),
                               std::move(r.time), r.seq, std::move(r.epoch)};
}

// At start: every room's state, then each room's newest messages (one read
// at a time: the store bounds its waiting requests; the completions run on
// the store's executor and touch only `rooms`), then the core takes
// them and `then` starts accepting. A store that cannot load leaves the
// chat with history in memory only.
inline void chat_server::load_history(std::function<void()> then) {
    options_.history_store->async_load_rooms(
        [self = shared_from_this(), then = std::move(then)](
            std::error_code ec, std::vector<history::room_state> states) mutable {
            if (ec) {
                self->emit("history: cannot load the rooms from the store: " + ec.message() +
                           "; running WITHOUT stored history (in memory only)");
                self->run([ec](core::chat& c, core::actions& out) {
                    c.store_lost(ec.message(), core::moment::now(), out);
                });
                return then();
            }
            auto rooms = std::make_shared<std::vector<core::stored_room>>();
            rooms->reserve(states.size());
            for (auto& s : states)
                rooms->push_back({std::move(s.room), std::move(s.epoch), s.last_seq, {}});
            self->load_tails(std::move(rooms), 0, std::move(then));
        });
}

inline void chat_server::load_tails(std::shared_ptr<std::vector<core::stored_room>> rooms,
                                    std::size_t next, std::function<void()> then) {
    if (next == rooms->size()) {
        return run([rooms, then = std::move(then)](core::chat& c, core::actions& out) {
            c.restore(std::move(*rooms), out);
            then(); // accepting starts after the rooms are in the core
        });
    }
    // The newest messages: the join replay's worth, and at least one (the
    // newest id, so that ids keep increasing).
    const std::size_t tail = std::max<std::size_t>(core_.settings().history_messages, 1);
    history::range_query q{.room = (*rooms)[next].room, .limit = tail};
    options_.history_store->async_read(
        std::move(q), [self = shared_from_this(), rooms, next,
                       then = std::move(then)](std::error_code ec, history::range r) mutable {
            if (!ec) {
                auto& room = (*rooms)[next];
                for (auto& rec : r.records)
                    room.tail.push_back(to_event(std::move(rec)));
            }
            self->load_tails(std::move(rooms), next + 1, std::move(then));
        });
}

// On the chat strand. Refused (queue full): the room restarts its epoch;
// failed: the core goes on without the store. Both after this step.
inline void chat_server::store_append(core::store_append& a, std::vector<std::string>& refused,
                                      std::error_code& failed) {
    auto& m = a.message;
    const std::string room = m.room;
    const auto ec = options_.history_store->append(
        {std::move(m.room), m.seq, std::move(m.epoch), m.id, std::move(m.from), std::move(m.text),
         std::move(m.time), a.unix_ms});
    if (!ec)
        return;
    if (ec == history::store_error::queue_full) {
        if (std::find(refused.begin(), refused.end(), room) == refused.end())
            refused.push_back(room);
    } else if (!failed) {
        failed = ec;
    }
}

// A resume's read (for_client) waits until the client's outbound queue
// has drained to a quarter of its bounds: the answer goes to it, and a
// resume that reads 10,000 messages must not queue them all at once (the
// session's limits would disconnect it as a slow consumer). A client that
// reads nothing is closed by the write deadline; the read is then answered
// with nothing, which the core ignores for a connection that is gone.
inline void chat_server::store_read(core::store_read& r) {
    if (r.for_client != 0) {
        auto it = connections_.find(r.for_client);
        if (it != connections_.end()) {
            const auto st = it->second.session->stats();
            if (st.queued_bytes > options_.queue.max_bytes / 4 ||
                st.queued_messages > options_.queue.max_messages / 4) {
                auto timer = std::make_shared<asio::steady_timer>(chat_, std::chrono::milliseconds(2));
                timer->async_wait(
                    [self = shared_from_this(), timer, r = std::move(r)](std::error_code) mutable {
                        self->store_read(r);
                    });
                return;
            }
        } else { // gone: nothing to read for
            return run([serial = r.serial](core::chat& c, core::actions& out) {
                c.stored_read(serial, std::nullopt, core::moment::now(), out);
            });
        }
    }
    history::range_query q{.room = r.room, .limit = r.limit};
    if (r.for_client != 0)
        q.after = r.after;
    else if (r.before != 0)
        q.before = r.before;
    options_.history_store->async_read(
        std::move(q), [self = shared_from_this(), serial = r.serial,
                       resume = r.for_client != 0](std::error_code ec, history::range got) mutable {
            std::optional<core::stored_page> page;
            if (!ec) {
                page.emplace();
                page->epoch = std::move(got.state.epoch);
                page->first_seq = got.first_seq;
                page->messages.reserve(got.records.size());
                for (auto& rec : got.records)
                    page->messages.push_back(to_event(std::move(rec)));
            } else {
                self->emit(std::string("history: a ") + (resume ? "resume's" : "/history") +
                           " read from the store failed (" + ec.message() +
                           "); answered from memory");
            }
            self->run([serial, page = std::move(page)](core::chat& c, core::actions& out) mutable {
                c.stored_read(serial, std::move(page), core::moment::now(), out);
            });
        });
}

} // namespace parley::chat::detail

#endif
