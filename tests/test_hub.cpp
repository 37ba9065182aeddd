// The hub and sessions over real loopback TCP: an io_context runs on its
// own thread(s) while the test drives clients with the blocking API.
#include <parley/hub/hub.hpp>
#include <parley/net/socket.hpp>

#include "support/frame_message.hpp"

#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/strand.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using session = parley::session<tcp::socket>;

namespace {

using parley::test::frame;

// Waits (bounded) until `done` holds.
template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

struct loopback_hub {
    explicit loopback_hub(parley::hub_options options = {}, int threads = 1)
        : hub(std::move(options)) {
        for (int i = 0; i < threads; ++i)
            io.emplace_back([this] { ioc.run(); });
    }
    ~loopback_hub() {
        for (auto& s : sessions)
            s->abort(parley::error::shut_down);
        work.reset();
        for (auto& t : io)
            t.join();
    }

    struct pair {
        std::shared_ptr<session> server_side;
        parley::tcp_socket client;
    };

    // A connected client and its session on the server side (on a strand,
    // since the io_context may run on several threads).
    // `on_strand` false: on the io_context's own executor (with
    // options.thread_safe false, the flush-list path; then the io_context
    // must run on one thread).
    pair connect(parley::session_options options = {}, bool on_strand = true,
                 std::function<void(tcp::socket&)> configure = {}) {
        auto client = parley::tcp_socket::connect("127.0.0.1", acceptor.local_endpoint().port(), 5s);
        client.set_timeout(5s);
        tcp::socket socket = on_strand ? tcp::socket(asio::make_strand(ioc)) : tcp::socket(ioc);
        acceptor.accept(socket);
        if (configure)
            configure(socket);
        auto s = std::make_shared<session>(std::move(socket), options);
        sessions.push_back(s);
        return {s, std::move(client)};
    }

    asio::io_context ioc;
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    parley::hub hub;
    std::vector<std::shared_ptr<session>> sessions;
    std::vector<std::thread> io;
};

} // namespace

TEST_CASE("hub: publish reaches every member of the room, optionally not the sender") {
    loopback_hub h;
    auto a = h.connect(), b = h.connect(), c = h.connect(), outsider = h.connect();
    CHECK(h.hub.join("lobby", a.server_side));
    CHECK(h.hub.join("lobby", b.server_side));
    CHECK(h.hub.join("lobby", c.server_side));
    CHECK_FALSE(h.hub.join("lobby", c.server_side)); // already in
    CHECK(h.hub.join("elsewhere", outsider.server_side));

    CHECK(h.hub.publish("lobby", frame("to all")) == 3);
    CHECK(h.hub.publish("lobby", frame("not to a"), a.server_side.get()) == 2);
    CHECK(h.hub.publish("nowhere", frame("lost")) == 0);

    CHECK(a.client.recv_frame() == "to all");
    CHECK(b.client.recv_frame() == "to all");
    CHECK(c.client.recv_frame() == "to all");
    CHECK(b.client.recv_frame() == "not to a");
    CHECK(c.client.recv_frame() == "not to a");
    std::error_code ec;
    a.client.recv_frame(100ms, ec);
    CHECK(ec == parley::error::timed_out);
    outsider.client.recv_frame(100ms, ec);
    CHECK(ec == parley::error::timed_out);

    const auto counters = h.hub.counters();
    CHECK(counters.published == 2); // publishing to a room that does not exist counts nothing
    CHECK(counters.deliveries == 5);
    CHECK(counters.rooms == 2);
    CHECK(counters.members == 4);
}

TEST_CASE("hub: each queue holds one reference to a published message, released once written") {
    loopback_hub h;
    auto a = h.connect(), b = h.connect();
    // Too small for the frame: the publish to it fails (and disconnects it).
    auto tiny = h.connect({.queue = {.max_bytes = 4, .max_messages = 1}});
    for (auto* p : {&a, &b, &tiny})
        h.hub.join("lobby", p->server_side);
    const auto m = frame("counted");
    CHECK(h.hub.publish("lobby", m) == 2);
    CHECK(h.hub.counters().failed_deliveries == 1);
    CHECK(a.client.recv_frame() == "counted");
    CHECK(b.client.recv_frame() == "counted");
    // The hub takes the members' references in one step and gives back
    // the one the full member did not take: only ours is left.
    CHECK(eventually([&] { return m->use_count() == 1; }));
}

TEST_CASE("hub: a relay forwards each read's frames as one message; counters count the frames") {
    loopback_hub h;
    auto sender = h.connect(), a = h.connect(), b = h.connect();
    for (auto* p : {&sender, &a, &b})
        h.hub.join("lobby", p->server_side);
    std::atomic<int> batches{0};
    std::error_code reason;
    std::atomic<bool> closed{false};
    sender.server_side->on_close([&](parley::session_base&, std::error_code ec) {
        reason = ec;
        closed = true;
    });
    sender.server_side->stream().max_payload(1000);
    sender.server_side->read_frame_batches([&](session& from, parley::frame_batch frames) {
        ++batches;
        h.hub.publish("lobby",
                      parley::make_raw_message(frames.wire(), frames.size()),
                      &from);
    });
    // Three frames and then a length over the limit, in one write: the
    // good frames are relayed before the bad one ends the sender's session.
    std::string wire;
    for (std::string text : {"first", "second", "third"}) {
        wire += std::string{'\0', '\0', '\0', static_cast<char>(text.size())};
        wire += text;
    }
    wire += std::string{'\0', '\0', '\x10', '\0'} + "too long";
    sender.client.send(wire);
    for (auto* p : {&a, &b}) {
        CHECK(p->client.recv_frame() == "first");
        CHECK(p->client.recv_frame() == "second");
        CHECK(p->client.recv_frame() == "third");
    }
    REQUIRE(eventually([&] { return closed.load(); }));
    CHECK(reason == parley::error::frame_too_large);
    CHECK(batches.load() >= 1);
    const auto counters = h.hub.counters();
    CHECK(counters.published == 3); // frames, however the reads split them
    CHECK(counters.deliveries == 6);
    CHECK(eventually([&] { return a.server_side->stats().sent_messages == 3; }));
}

TEST_CASE("hub: membership queries, leave, and empty rooms disappear") {
    loopback_hub h;
    auto a = h.connect(), b = h.connect();
    h.hub.join("one", a.server_side);
    h.hub.join("two", a.server_side);
    h.hub.join("two", b.server_side);
    CHECK(h.hub.rooms_of(*a.server_side) == std::vector<std::string>{"one", "two"});
    CHECK(h.hub.members("two").size() == 2);
    CHECK(h.hub.is_member("one", *a.server_side));
    CHECK_FALSE(h.hub.is_member("one", *b.server_side));

    CHECK(h.hub.leave("one", *a.server_side));
    CHECK_FALSE(h.hub.leave("one", *a.server_side));
    CHECK(h.hub.counters().rooms == 1); // "one" was left empty
    CHECK(h.hub.leave_all(*a.server_side) == std::vector<std::string>{"two"});
    CHECK(h.hub.members("two").size() == 1);
    CHECK(h.hub.rooms_of(*a.server_side).empty());
}

TEST_CASE("hub: a session that closes leaves every room by itself") {
    loopback_hub h;
    auto a = h.connect(), b = h.connect();
    std::atomic<int> closed{0};
    std::error_code reason;
    a.server_side->on_close([&](parley::session_base&, std::error_code ec) {
        reason = ec;
        ++closed;
    });
    h.hub.join("lobby", a.server_side);
    h.hub.join("lobby", b.server_side);
    a.server_side->read_frames([](session&, parley::frame_view) {});

    a.client.close(); // the peer goes away
    REQUIRE(eventually([&] { return closed.load() == 1; }));
    CHECK(reason == asio::error::eof);
    CHECK(eventually([&] { return h.hub.members("lobby").size() == 1; }));
    CHECK(h.hub.counters().members == 1);
    CHECK(h.hub.publish("lobby", frame("still here")) == 1);
    CHECK(b.client.recv_frame() == "still here");
}

TEST_CASE("hub: one message in several encodings, each member gets its own") {
    loopback_hub h;
    auto framed = h.connect(), text = h.connect();
    text.server_side->encoding(1);
    h.hub.join("lobby", framed.server_side);
    h.hub.join("lobby", text.server_side);
    const parley::message_ptr encodings[] = {frame("{\"text\":\"hi\"}"),
                                             parley::make_raw_message("hi\n")};
    CHECK(h.hub.publish("lobby", encodings) == 2);
    CHECK(framed.client.recv_frame() == "{\"text\":\"hi\"}");
    CHECK(text.client.recv(3) == "hi\n");
}

TEST_CASE("hub: history is replayed to a joiner, within its limits") {
    loopback_hub h({.history = {.max_messages = 3, .max_bytes = 1024}});
    auto early = h.connect();
    h.hub.join("lobby", early.server_side);
    for (int i = 0; i < 5; ++i)
        h.hub.publish("lobby", frame("m" + std::to_string(i)));
    auto late = h.connect();
    h.hub.join("lobby", late.server_side);
    CHECK(late.client.recv_frame() == "m2");
    CHECK(late.client.recv_frame() == "m3");
    CHECK(late.client.recv_frame() == "m4");
    std::error_code ec;
    late.client.recv_frame(100ms, ec);
    CHECK(ec == parley::error::timed_out);
}

TEST_CASE("hub: a member that stops reading is disconnected; the others lose nothing") {
    std::atomic<int> reported{0};
    loopback_hub h({.on_slow_member = [&](parley::session_base&, std::size_t dropped) {
        if (dropped == 0)
            ++reported;
    }});
    parley::session_options small;
    small.queue.max_bytes = 64 * 1024;
    auto reader = h.connect(small), stalled = h.connect(small);
    std::atomic<int> closed{0};
    std::error_code reason;
    stalled.server_side->on_close([&](parley::session_base&, std::error_code ec) {
        reason = ec;
        ++closed;
    });
    h.hub.join("lobby", reader.server_side);
    h.hub.join("lobby", stalled.server_side);

    // 16 MiB in 4 KiB frames: far more than the stalled peer's socket
    // buffers and queue hold. Published at the pace the reader keeps.
    const std::string payload(4096, 'p');
    constexpr int total = 4096;
    std::size_t max_queued = 0;
    for (int i = 0; i < total; ++i) {
        h.hub.publish("lobby", frame(payload));
        REQUIRE(reader.client.recv_frame() == payload);
        max_queued = std::max(max_queued, stalled.server_side->stats().queued_bytes);
    }
    REQUIRE(eventually([&] { return closed.load() == 1; }));
    CHECK(reason == parley::error::slow_consumer);
    CHECK(max_queued <= small.queue.max_bytes); // memory stayed bounded
    CHECK(reported.load() == 1);
    const auto counters = h.hub.counters();
    CHECK(counters.slow_disconnects == 1);
    CHECK(eventually([&] { return h.hub.members("lobby").size() == 1; }));
    CHECK(reader.server_side->stats().dropped_messages == 0);
}

TEST_CASE("hub: drop_oldest keeps a slow member connected, with whole frames") {
    std::atomic<std::size_t> dropped_reported{0};
    loopback_hub h({.on_slow_member = [&](parley::session_base&, std::size_t dropped) {
        dropped_reported += dropped;
    }});
    parley::session_options lossy;
    lossy.queue.max_bytes = 64 * 1024;
    lossy.queue.policy = parley::overflow_policy::drop_oldest;
    auto slow = h.connect(lossy);
    h.hub.join("lobby", slow.server_side);

    constexpr int total = 4096;
    for (int i = 0; i < total; ++i)
        h.hub.publish("lobby", frame(std::to_string(i) + std::string(4000, '.')));

    // Now read everything: every frame intact, in order, some missing.
    int received = 0, last = -1;
    for (;;) {
        std::error_code ec;
        const std::string f = slow.client.recv_frame(300ms, ec);
        if (ec)
            break;
        const int n = std::stoi(f.substr(0, f.find('.')));
        REQUIRE(n > last);
        REQUIRE(f.size() == std::to_string(n).size() + 4000);
        last = n;
        ++received;
    }
    CHECK(last == total - 1); // the newest survive
    CHECK(received < total);
    CHECK(slow.server_side->is_open());
    const auto counters = h.hub.counters();
    CHECK(counters.dropped > 0);
    CHECK(counters.dropped == dropped_reported.load());
    CHECK(counters.dropped + static_cast<std::uint64_t>(received) == total);
    CHECK(counters.slow_disconnects == 0);
}

TEST_CASE("hub: close() sends everything queued, then closes") {
    loopback_hub h;
    auto a = h.connect();
    for (int i = 0; i < 1000; ++i)
        a.server_side->send(frame("m" + std::to_string(i)));
    a.server_side->close();
    CHECK_FALSE(a.server_side->send(frame("too late")));
    for (int i = 0; i < 1000; ++i)
        REQUIRE(a.client.recv_frame() == "m" + std::to_string(i));
    std::error_code ec;
    a.client.recv_frame(ec);
    CHECK(ec == asio::error::eof);
}

TEST_CASE("hub: thread safety — publishers on several threads, io_context on two") {
    loopback_hub h({}, 2);
    constexpr int members = 4, publishers = 3, per_publisher = 300;
    std::vector<loopback_hub::pair> clients;
    for (int i = 0; i < members; ++i) {
        clients.push_back(h.connect());
        h.hub.join("lobby", clients.back().server_side);
    }
    std::vector<std::thread> threads;
    for (int p = 0; p < publishers; ++p)
        threads.emplace_back([&, p] {
            for (int k = 0; k < per_publisher; ++k)
                h.hub.publish("lobby", frame(std::to_string(p) + ":" + std::to_string(k)));
        });
    // Members joining and leaving another room meanwhile.
    threads.emplace_back([&] {
        for (int k = 0; k < 200; ++k) {
            h.hub.join("side", clients[k % members].server_side);
            h.hub.leave("side", *clients[k % members].server_side);
        }
    });
    for (auto& c : clients) {
        std::vector<int> next(publishers, 0);
        for (int m = 0; m < publishers * per_publisher; ++m) {
            const std::string f = c.client.recv_frame();
            const int p = std::stoi(f.substr(0, f.find(':')));
            const int k = std::stoi(f.substr(f.find(':') + 1));
            REQUIRE(k == next[p]); // per-publisher order, nothing lost or doubled
            ++next[p];
        }
    }
    for (auto& t : threads)
        t.join();
    CHECK(h.hub.counters().deliveries == members * publishers * per_publisher);
}

// overflow_policy::backpressure, end to end: a relay (each read's frames
// published as one message, as examples/broadcast_server.cpp does) over
// loopback TCP, with clients on threads of their own.
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

// Runs `f` on the io_context's thread and waits for it: sessions that are
// not thread-safe may only be touched there.
template <class F>
auto on_io(asio::io_context& ioc, F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    asio::post(ioc, [&task] { task(); });
    return result.get();
}

// Publishes each read's frames to every room in `rooms`.
void relay(parley::hub& hub, session& s, std::vector<std::string> rooms, bool echo) {
    s.read_frame_batches([&hub, rooms, echo](session& from, parley::frame_batch frames) {
        const auto m = parley::make_raw_message(frames.wire(), frames.size());
        for (const auto& room : rooms)
            hub.publish(room, m, echo ? nullptr : &from);
    });
}

// Frame `seq` of a numbered stream: its number, then filler that depends
// on it, so that a reader can check every byte.
void numbered_frame(std::string& wire, std::uint32_t seq, std::size_t payload) {
    const std::size_t at = wire.size();
    wire.resize(at + 4 + payload);
    for (int i = 0; i < 4; ++i)
        wire[at + i] = static_cast<char>((payload >> (24 - 8 * i)) & 0xff);
    std::memcpy(&wire[at + 4], &seq, sizeof seq);
    for (std::size_t i = sizeof seq; i < payload; ++i)
        wire[at + 4 + i] = static_cast<char>('a' + (seq + i) % 26);
}

bool is_numbered_frame(const std::string& f, std::uint32_t seq, std::size_t payload) {
    std::uint32_t got = 0;
    if (f.size() != payload)
        return false;
    std::memcpy(&got, f.data(), sizeof got);
    if (got != seq)
        return false;
    for (std::size_t i = sizeof seq; i < payload; ++i)
        if (f[i] != static_cast<char>('a' + (seq + i) % 26))
            return false;
    return true;
}

// Sends `count` numbered frames as fast as the socket takes them, several
// frames per system call. Returns the error that stopped it, if any.
std::error_code send_numbered(parley::tcp_socket& client, std::uint32_t count, std::size_t payload,
                              std::chrono::seconds timeout = 20s) {
    std::string wire;
    std::error_code ec;
    for (std::uint32_t seq = 0; seq < count && !ec;) {
        wire.clear();
        for (int i = 0; i < 32 && seq < count; ++i)
            numbered_frame(wire, seq++, payload);
        client.send(wire, timeout, ec);
    }
    return ec;
}

// Receives `count` numbered frames; returns how many arrived whole and in order.
std::uint32_t receive_numbered(parley::tcp_socket& client, std::uint32_t count, std::size_t payload) {
    std::uint32_t seq = 0;
    std::error_code ec;
    for (; seq < count; ++seq) {
        const std::string f = client.recv_frame(20s, ec);
        if (ec || !is_numbered_frame(f, seq, payload))
            break;
    }
    return seq;
}

} // namespace

TEST_CASE("hub backpressure: a stalled reader is cut after the write deadline, then the publisher "
          "resumes") {
    loopback_hub h;
    parley::session_options options;
    options.queue = {.max_bytes = 1024 * 1024, .policy = parley::overflow_policy::backpressure};
    options.write_timeout = 500ms;
    auto publisher = h.connect(options), reader = h.connect(options);
    // Small socket buffers: the stalled member's queue fills after a few
    // frames instead of several megabytes.
    auto stalled = h.connect(options, true, [](tcp::socket& s) {
        s.set_option(asio::socket_base::send_buffer_size(4096));
    });
    const int small = 4096;
    REQUIRE(::setsockopt(stalled.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small,
                         sizeof small) == 0);
    std::atomic<bool> cut{false};
    std::error_code reason;
    std::chrono::steady_clock::time_point cut_at;
    stalled.server_side->on_close([&](parley::session_base&, std::error_code ec) {
        reason = ec;
        cut_at = std::chrono::steady_clock::now();
        cut = true;
    });
    // The publisher publishes to two rooms; the stalled member is in the
    // second only, or in both (then it holds the publisher once).
    h.hub.join("room", publisher.server_side);
    h.hub.join("room", reader.server_side);
    SUBCASE("in the room the healthy reader is in") { h.hub.join("room", stalled.server_side); }
    SUBCASE("in another room the publisher publishes to") {
        h.hub.join("other", stalled.server_side);
    }
    SUBCASE("in both") {
        h.hub.join("room", stalled.server_side);
        h.hub.join("other", stalled.server_side);
    }
    relay(h.hub, *publisher.server_side, {"room", "other"}, false);

    // 8 MiB in 4 KiB frames: far more than the stalled member's buffers
    // and queue hold, so its queue passes the high-water mark.
    constexpr std::uint32_t count = 2048;
    constexpr std::size_t payload = 4096;
    const auto start = std::chrono::steady_clock::now();
    std::error_code sent;
    std::thread sender([&] { sent = send_numbered(publisher.client, count, payload); });
    std::uint32_t received = 0;
    std::thread receiver([&] { received = receive_numbered(reader.client, count, payload); });

    // The publisher is paused, and stays so until the stalled member is
    // cut: the room waits for the deadline and no longer.
    REQUIRE(eventually([&] { return h.hub.counters().publisher_pauses > 0; }, 10s));
    const auto paused_seen = std::chrono::steady_clock::now();
    REQUIRE(eventually([&] { return cut.load(); }, 10s));
    CHECK(reason == parley::error::write_timeout);
    CHECK(cut_at - start >= 500ms);
    CHECK(cut_at - paused_seen <= 500ms + 1500ms);

    sender.join();
    receiver.join();
    CHECK_FALSE(sent);
    CHECK(received == count); // the healthy reader lost nothing
    CHECK(publisher.server_side->stats().read_pauses >= 1);
    CHECK(reader.server_side->is_open());
    // Bounded: past the high-water mark by one read's batch at most (two
    // copies of it when the member is in both rooms).
    const parley::outbound_queue limits(options.queue);
    CHECK(stalled.server_side->stats().peak_queued_bytes <=
          limits.high_water() + 2 * (publisher.server_side->stream().read_chunk_size() + 4 + payload));
    const auto c = h.hub.counters();
    CHECK(c.failed_deliveries == 0);
    CHECK(c.dropped == 0);
    CHECK(eventually([&] { return h.hub.members("room").size() == 2; }));
    CHECK(h.hub.members("other").empty());
}

TEST_CASE("hub backpressure: five readers that keep up get every byte of 100 MB sent as fast as "
          "possible") {
    bool on_strand = true;
    SUBCASE("thread-safe sessions on strands, the io_context on two threads") { on_strand = true; }
    SUBCASE("sessions on the io_context's executor, flushed from the flush list") {
        on_strand = false;
    }
    loopback_hub h({}, on_strand ? 2 : 1);
    parley::session_options options;
    options.queue.policy = parley::overflow_policy::backpressure;
    options.thread_safe = on_strand;
    // The publisher is a member too and reads its own frames back: its own
    // queue may pause it, and must let it go again.
    std::vector<loopback_hub::pair> members;
    for (int i = 0; i < 6; ++i)
        members.push_back(h.connect(options, on_strand));
    auto& publisher = members.front();
    on_io(h.ioc, [&] {
        for (auto& m : members)
            h.hub.join("room", m.server_side);
        relay(h.hub, *publisher.server_side, {"room"}, true);
        return 0;
    });

    constexpr std::size_t payload = 1020; // 1 KiB frames on the wire
    const std::uint32_t count = (sanitized ? 10u : 100u) * 1024 * 1024 / 1024;
    std::error_code sent;
    std::vector<std::uint32_t> received(members.size(), 0);
    std::vector<std::thread> threads;
    threads.emplace_back([&] { sent = send_numbered(publisher.client, count, payload); });
    for (std::size_t i = 0; i < members.size(); ++i)
        threads.emplace_back(
            [&, i] { received[i] = receive_numbered(members[i].client, count, payload); });
    for (auto& t : threads)
        t.join();

    CHECK_FALSE(sent);
    for (std::size_t i = 0; i < members.size(); ++i) {
        INFO("member " << i);
        CHECK(received[i] == count); // every frame, whole and in order
    }
    const auto stats = on_io(h.ioc, [&] {
        std::vector<parley::session_stats> out;
        for (auto& m : members)
            out.push_back(m.server_side->stats());
        for (auto& m : members)
            CHECK(m.server_side->is_open()); // nobody cut
        return out;
    });
    // Memory bounded: no queue past the high-water mark by more than one
    // of the publisher's reads.
    const parley::outbound_queue limits(options.queue);
    const std::size_t bound = limits.high_water() + publisher.server_side->stream().read_chunk_size() +
                              4 + payload;
    for (std::size_t i = 0; i < stats.size(); ++i) {
        INFO("member " << i << ", peak " << stats[i].peak_queued_bytes << ", bound " << bound);
        CHECK(stats[i].peak_queued_bytes <= bound);
        CHECK(stats[i].dropped_messages == 0);
    }
    const auto c = h.hub.counters();
    CHECK(c.published == count);
    CHECK(c.deliveries == std::uint64_t{count} * members.size());
    CHECK(c.slow_disconnects == 0);
    CHECK(c.failed_deliveries == 0);
    CHECK(c.dropped == 0);
    MESSAGE("publisher paused " << c.publisher_pauses << " times; peak queue "
                                << std::max_element(stats.begin(), stats.end(),
                                                    [](const auto& a, const auto& b) {
                                                        return a.peak_queued_bytes <
                                                               b.peak_queued_bytes;
                                                    })->peak_queued_bytes
                                << " bytes");
    on_io(h.ioc, [&] {
        for (auto& m : members)
            m.server_side->abort(parley::error::shut_down);
        return 0;
    });
}

TEST_CASE("hub backpressure: a publisher that never reads its own echo holds itself until its "
          "deadline, then is cut; the per-frame read loop pauses too") {
    loopback_hub h;
    parley::session_options options;
    options.queue = {.max_bytes = 1024 * 1024, .policy = parley::overflow_policy::backpressure};
    options.write_timeout = 500ms;
    auto publisher = h.connect(options, true, [](tcp::socket& s) {
        s.set_option(asio::socket_base::send_buffer_size(4096));
    });
    const int small = 4096;
    REQUIRE(::setsockopt(publisher.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small,
                         sizeof small) == 0);
    auto reader = h.connect(options);
    std::atomic<bool> cut{false};
    std::error_code reason;
    publisher.server_side->on_close([&](parley::session_base&, std::error_code ec) {
        reason = ec;
        cut = true;
    });
    h.hub.join("room", publisher.server_side);
    h.hub.join("room", reader.server_side);
    // One publish per frame (what the chat server's framed port does).
    publisher.server_side->read_frames([&](session&, parley::frame_view payload) {
        std::error_code ec;
        h.hub.publish("room", parley::make_frame_message(payload, ec));
    });

    constexpr std::uint32_t count = 2048;
    constexpr std::size_t payload = 4096;
    std::thread sender([&] { (void)send_numbered(publisher.client, count, payload, 5s); });
    // The reader gets a gapless prefix of the stream, whatever it is.
    std::uint32_t seq = 0;
    for (;; ++seq) {
        std::error_code ec;
        const std::string f = reader.client.recv_frame(seq == 0 ? 5s : 1500ms, ec);
        if (ec)
            break;
        REQUIRE(is_numbered_frame(f, seq, payload));
    }
    REQUIRE(eventually([&] { return cut.load(); }, 5s));
    CHECK(reason == parley::error::write_timeout);
    CHECK(seq > 0);
    CHECK(seq < count); // it was stopped: most of the stream was never read
    CHECK(publisher.server_side->stats().read_pauses >= 1);
    CHECK(publisher.server_side->stats().peak_queued_bytes <=
          parley::outbound_queue(options.queue).high_water() +
              publisher.server_side->stream().read_chunk_size() + 4 + payload);
    CHECK(reader.server_side->is_open());
    sender.join(); // its send fails once the session is cut
}
