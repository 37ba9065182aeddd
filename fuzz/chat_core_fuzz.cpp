// libFuzzer target for the chat core (parley/chat/core/core.hpp): the
// input bytes are a script of what happens to a server (connections
// arriving, sending text lines, finishing, closing; time passing; payloads
// and answers from other instances), played against one core::chat.
//
// Script: one command per line, its first byte the operation and its
// second the connection (0-7), the rest its text:
//   c  connect          i  input (the rest)    f  peer finished
//   x  closed (error)   s  closed (slow)       t  time passes (second byte: seconds)
//   m  cluster payload (the rest, '|' for '\n')
//   a  answer the oldest claim (second byte: claimed/taken/unavailable)
//   h  answer the oldest history read (the rest: payloads split at ';', '|' for '\n')
//   r  /resume with the last token given to connection (third byte % 8),
//      the rest after it (room positions), as connection (second byte)'s input
//   d  answer the oldest store read from what the core stored (second
//      byte % 4 == 0: the read failed)
//   e  the store refused a message of room "#" + the rest
//   l  the store failed
// The first byte's bits: 1 clustered, 2 shared history, 4 access token,
// 8 no resume grace, 16 a history store (when not clustered), kept by the
// script in memory from the core's store_append actions.
// Besides sanitizer reports, these properties are checked (any failure
// aborts): every event sent or published goes to a connection the core
// knows (connected and not yet closed); every event encodes to JSON and to
// a line; a closed connection is never sent to again; a connection's
// messages of one room and epoch have increasing seqs (a /part, which
// may be followed by a join's replay, starts again); no resume token is
// given twice, and none resumes twice; the store is given each room's seqs
// in increasing order within an epoch.
#include <parley/chat/core/core.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace core = parley::chat::core;
namespace pc = parley::chat;

namespace {

void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "chat_core_fuzz: %s\n", what);
        std::abort();
    }
}

std::string unbar(std::string_view s) {
    std::string out(s);
    std::replace(out.begin(), out.end(), '|', '\n');
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    core::options o;
    o.prompt = "hi";
    o.max_clients = 6;
    o.max_clients_per_address = 3;
    o.history_messages = 3;
    o.history_bytes = 4096;
    o.messages_per_second = 5;
    o.burst_messages = 8;
    o.max_dropped = 10;
    o.max_rooms_per_client = 3;
    o.held_messages = 8;
    const bool clustered = size > 0 && (data[0] & 1);
    o.clustered = clustered;
    o.shared_history = clustered && (data[0] & 2) ? 5 : 0;
    o.access_token = size > 0 && (data[0] & 4) ? "t" : "";
    // Resume: predictable bytes are enough here.
    auto counter = std::make_shared<std::uint64_t>(0);
    o.random = [counter](unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i)
            p[i] = static_cast<unsigned char>(++*counter * 0x9E3779B97F4A7C15ull >> 56);
    };
    o.resume_grace = size > 0 && (data[0] & 8) ? std::chrono::milliseconds(0) : std::chrono::seconds(20);
    o.resume_messages = 4;
    o.resume_bytes = 2048;
    o.history_page = 3;
    o.stored = !clustered && size > 0 && (data[0] & 16);
    o.resume_store_messages = 20;
    o.resume_store_page = 2;
    o.resume_store_page_bytes = 512;
    core::chat chat(o);
    // The store: each room's appended messages, oldest first.
    std::map<std::string, std::vector<pc::message_event>> stored;
    std::deque<core::store_read> store_reads;
    core::moment now = core::moment::now();
    std::set<core::conn_id> open;
    std::deque<core::cluster_claim> claims;
    std::deque<core::cluster_read_history> reads;
    core::actions out;
    std::map<core::conn_id, std::string> tokens, nicks;
    std::set<std::string> given, used;
    std::map<std::pair<core::conn_id, std::string>, std::pair<std::string, std::uint64_t>> last_seq;
    const auto note_message = [&](core::conn_id to, const pc::event& ev) {
        if (auto* m = std::get_if<pc::message_event>(&ev); m && m->seq != 0) {
            auto& [epoch, seq] = last_seq[{to, m->room}];
            check(epoch != m->epoch || m->seq > seq, "a room's seq that does not increase");
            epoch = m->epoch;
            seq = m->seq;
        } else if (auto* l = std::get_if<pc::leave_event>(&ev); l && l->nick == nicks[to]) {
            last_seq.erase({to, l->room});
        } else if (auto* n = std::get_if<pc::nick_accepted_event>(&ev)) {
            nicks[to] = n->nick;
            if (!n->resume_token.empty()) {
                check(given.insert(n->resume_token).second, "a resume token given twice");
                tokens[to] = n->resume_token;
            }
        } else if (auto* r = std::get_if<pc::rename_event>(&ev); r && r->old_nick == nicks[to]) {
            nicks[to] = r->new_nick;
        }
    };
    std::string resuming;

    std::string_view script(reinterpret_cast<const char*>(data), size);
    if (!script.empty())
        script.remove_prefix(1);
    while (!script.empty()) {
        const auto end = script.find('\n');
        std::string_view line = script.substr(0, end);
        script = end == std::string_view::npos ? std::string_view() : script.substr(end + 1);
        if (line.size() < 2)
            continue;
        const char op = line[0];
        const core::conn_id id = static_cast<unsigned char>(line[1]) % 8;
        const std::string_view rest = line.substr(2);
        out.clear();
        resuming.clear();
        switch (op) {
        case 'c':
            if (open.insert(id).second) {
                // A new connection that reuses a closed one's id starts with
                // nothing seen (the join replay repeats what the old one saw).
                std::erase_if(last_seq, [id](const auto& e) { return e.first.first == id; });
                nicks.erase(id);
                chat.connect(id, {"p", "a" + std::to_string(id % 2), (id & 4) != 0}, now, out);
            }
            break;
        case 'i':
            chat.input(id, rest, now, out);
            break;
        case 'f':
            chat.peer_finished(id, now, out);
            break;
        case 'x':
        case 's':
            chat.closed(id, op == 'x' ? core::departure::error : core::departure::slow_consumer,
                        "gone", now, out);
            open.erase(id);
            break;
        case 't':
            now.steady += std::chrono::seconds(static_cast<unsigned char>(line[1]));
            now.wall += std::chrono::seconds(static_cast<unsigned char>(line[1]));
            chat.tick(now, out);
            break;
        case 'r':
            if (!rest.empty()) {
                resuming = tokens[static_cast<unsigned char>(rest[0]) % 8];
                chat.input(id, "/resume " + resuming + std::string(rest.substr(1)), now, out);
            }
            break;
        case 'm':
            chat.cluster_message("other", unbar(rest), now, out);
            break;
        case 'a':
            if (!claims.empty()) {
                const auto c = claims.front();
                claims.pop_front();
                chat.nick_claimed(c.conn, c.serial, static_cast<pc::claim_result>(line[1] % 3), now,
                                  out);
            }
            break;
        case 'h':
            if (!reads.empty()) {
                std::vector<std::string> payloads;
                std::string_view r = rest;
                while (!r.empty()) {
                    const auto semi = r.find(';');
                    payloads.push_back(unbar(r.substr(0, semi)));
                    r = semi == std::string_view::npos ? std::string_view() : r.substr(semi + 1);
                }
                chat.history_read(reads.front().serial, std::move(payloads), now, out);
                reads.pop_front();
            }
            break;
        case 'd':
            if (!store_reads.empty()) {
                const auto r = store_reads.front();
                store_reads.pop_front();
                std::optional<core::stored_page> page;
                if (static_cast<unsigned char>(line[1]) % 4 != 0) {
                    page.emplace();
                    const auto& all = stored[r.room];
                    if (!all.empty()) {
                        page->epoch = all.back().epoch;
                        page->first_seq = all.front().seq;
                    }
                    std::vector<pc::message_event> matching;
                    for (const auto& m : all)
                        if (m.epoch == page->epoch && m.seq > r.after &&
                            (r.before == 0 || m.seq < r.before))
                            matching.push_back(m);
                    const std::size_t n = std::min(matching.size(), r.limit);
                    // A resume's read takes the oldest after `after`, a
                    // /history page the newest before `before`.
                    if (r.after != 0)
                        page->messages.assign(matching.begin(), matching.begin() + n);
                    else
                        page->messages.assign(matching.end() - n, matching.end());
                }
                chat.stored_read(r.serial, std::move(page), now, out);
            }
            break;
        case 'e':
            chat.store_refused("#" + std::string(rest), now, out);
            break;
        case 'l':
            chat.store_lost("fuzz", now, out);
            break;
        default:
            break;
        }
        for (const auto& a : out) {
            if (auto* s = std::get_if<core::send_action>(&a)) {
                check(open.contains(s->to), "an event for an unknown connection");
                note_message(s->to, s->ev);
                if (std::holds_alternative<pc::resumed_event>(s->ev))
                    check(used.insert(resuming).second, "a resume token that resumed twice");
                check(!pc::to_json(s->ev).empty(), "an event that does not encode");
                (void)pc::to_line(s->ev);
            } else if (auto* p = std::get_if<core::publish_action>(&a)) {
                for (auto to : *p->to) {
                    check(open.contains(to), "a publish to an unknown connection");
                    note_message(to, p->ev);
                }
                check(!pc::to_json(p->ev).empty(), "an event that does not encode");
            } else if (auto* c = std::get_if<core::cluster_claim>(&a)) {
                claims.push_back(*c);
            } else if (auto* r = std::get_if<core::cluster_read_history>(&a)) {
                reads.push_back(*r);
            } else if (auto* sa = std::get_if<core::store_append>(&a)) {
                check(o.stored, "a store_append without a store");
                auto& room = stored[sa->message.room];
                if (!room.empty() && room.back().epoch == sa->message.epoch)
                    check(sa->message.seq > room.back().seq, "a stored seq that does not increase");
                room.push_back(sa->message);
            } else if (auto* sr = std::get_if<core::store_read>(&a)) {
                check(o.stored, "a store_read without a store");
                store_reads.push_back(*sr);
            }
        }
        check(chat.connections() <= open.size(), "more clients than connections");
    }
    return 0;
}
