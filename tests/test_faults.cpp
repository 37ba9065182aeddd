// Hostile and faulty peers against the chat server, over loopback: every
// limit tripped (the peer told why, the others unaffected), resets at
// awkward moments, connect/close churn, a reader that never reads, the
// process out of file descriptors, and a graceful stop with messages in
// flight. docs/RELIABILITY.md cites these cases by name with their figures.
#include <parley/chat/server.hpp>

#include "test_chat_support.hpp"

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

using namespace parley::test::chat;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PARLEY_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PARLEY_TEST_SANITIZED 1
#endif
#endif
#ifdef PARLEY_TEST_SANITIZED
constexpr bool PARLEY_TEST_SANITIZED_VALUE = true;
#else
constexpr bool PARLEY_TEST_SANITIZED_VALUE = false;
#endif

namespace {

// Options for a fault test: framed clients only, and no flood control
// unless the test is about it (several tests send hundreds of messages).
pc::server_options quiet_options() {
    pc::server_options o;
    o.line_port = std::nullopt;
    o.flood.messages_per_second = 0;
    return o;
}

// Resident memory of this process, in bytes.
std::size_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0, resident = 0;
    statm >> pages >> resident;
    return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

bool left_with(const client& c, std::string_view nick, std::string_view reason) {
    for (const auto& l : c.seen_of<pc::leave_event>())
        if (l.nick == nick && l.reason == reason)
            return true;
    return false;
}

// Reads a framed connection on its own thread and counts the messages
// from `from`, checking that their texts arrive as "0 ...", "1 ..." in
// order. No doctest macros off the main thread: results are read after
// join().
class message_reader {
public:
    message_reader(connection& conn, std::string from, std::size_t expected)
        : conn_(conn), from_(std::move(from)), expected_(expected),
          thread_([this] { run(); }) {}
    ~message_reader() { join(); }

    void join() {
        if (thread_.joinable())
            thread_.join();
    }
    const std::atomic<std::size_t>& count() const { return count_; }
    std::size_t received() const { return count_; }
    const std::string& failure() const { return failure_; }
    bool saw_shutdown() const { return shutdown_; }

private:
    void run() {
        const auto deadline = clock::now() + 4 * patience;
        while (count_ < expected_) {
            auto payload = conn_.recv_frame(std::max<clock::duration>(deadline - clock::now(), 0ms));
            if (!payload) {
                failure_ = "stopped after " + std::to_string(count_) + " messages" +
                           (conn_.closed() ? " (connection closed)" : " (timed out)");
                return;
            }
            std::string error;
            auto e = pc::parse_event(*payload, error);
            if (!e) {
                failure_ = "bad event: " + error;
                return;
            }
            if (auto* n = std::get_if<pc::notice_event>(&*e); n && n->code == "shutdown")
                shutdown_ = true;
            auto* m = std::get_if<pc::message_event>(&*e);
            if (!m || m->from != from_)
                continue;
            const std::string want = std::to_string(count_.load()) + " ";
            if (m->text.compare(0, want.size(), want) != 0) {
                failure_ = "message " + std::to_string(count_) + " out of order: " +
                           m->text.substr(0, 20);
                return;
            }
            ++count_;
        }
        // What follows the messages, for the shutdown test.
        while (auto payload = conn_.recv_frame(500ms)) {
            std::string error;
            auto e = pc::parse_event(*payload, error);
            if (e)
                if (auto* n = std::get_if<pc::notice_event>(&*e); n && n->code == "shutdown")
                    shutdown_ = true;
        }
    }

    connection& conn_;
    std::string from_;
    std::size_t expected_;
    std::atomic<std::size_t> count_{0};
    std::string failure_;
    bool shutdown_ = false;
    std::thread thread_;
};

// Sends `count` numbered messages of about `size` bytes, never more than
// `window` ahead of the slowest reader.
void send_paced(client& talker, std::size_t count, std::size_t size,
                std::initializer_list<const message_reader*> readers, std::size_t window = 8) {
    const std::string filler(size, 'x');
    for (std::size_t i = 0; i < count; ++i) {
        const auto deadline = clock::now() + patience;
        for (;;) {
            std::size_t slowest = SIZE_MAX;
            for (const auto* r : readers)
                slowest = std::min(slowest, r->received());
            if (i < slowest + window || clock::now() >= deadline)
                break;
            std::this_thread::sleep_for(100us);
        }
        talker.say(std::to_string(i) + " " + filler);
    }
}

} // namespace

TEST_CASE("faults: keepalive pings a quiet client; one that answers stays, a silent one is closed") {
    auto o = quiet_options();
    o.ping_interval = 200ms;
    o.idle_timeout = 800ms;
    server_fixture f(o);
    client alive(f.port());
    alive.login("alive");
    client silent(f.port());
    silent.login("silent");

    // `alive` answers every ping, as examples/chat_client does, for more
    // than two idle deadlines.
    int pings = 0;
    const auto until = clock::now() + 2000ms;
    while (clock::now() < until) {
        auto e = alive.next(until - clock::now());
        if (!e)
            break;
        if (std::holds_alternative<pc::ping_event>(*e)) {
            ++pings;
            alive.say("/pong");
        }
    }
    CHECK(pings >= 4);
    CHECK(alive.seen_of<pc::error_event>().empty()); // /pong itself is answered by nothing

    // `silent` was pinged once, then told and closed.
    silent.expect<pc::ping_event>();
    CHECK(silent.expect_error("idle_timeout").message.find("800 ms") != std::string::npos);
    CHECK(silent.conn().wait_closed());
    CHECK(left_with(alive, "silent", "timeout"));

    alive.say("still here");
    CHECK(alive.wait_for<pc::message_event>([](auto& m) { return m.text == "still here"; }).from ==
          "alive");
    const auto hits = f.server().limit_counters();
    CHECK(hits.idle_timeouts == 1);
    CHECK(hits.pings_sent >= static_cast<std::uint64_t>(pings) + 1);
}

TEST_CASE("faults: a frame trickled in byte by byte (slowloris) is cut off by the idle deadline") {
    auto o = quiet_options();
    o.ping_interval = 0ms;
    o.idle_timeout = 400ms;
    server_fixture f(o);
    client other(f.port());
    other.login("other");
    client slow(f.port());
    slow.login("slow");

    // A 100-byte frame, one byte every 50 ms, never finished: sending
    // fails once the server has closed the connection.
    const auto start = clock::now();
    slow.conn().send_raw(std::string_view("\0\0\0\x64", 4));
    auto took = clock::duration::zero();
    for (int i = 0; i < 99; ++i) {
        try {
            slow.conn().send_raw("a");
        } catch (const std::exception&) {
            break; // the server closed it
        }
        took = clock::now() - start;
        other.say("tick " + std::to_string(i)); // `other` is not idle
        std::this_thread::sleep_for(50ms);
    }
    other.say("unaffected");
    CHECK(took < 2000ms);
    CHECK(slow.wait_for<pc::error_event>([](auto&) { return true; }).code == "idle_timeout");
    CHECK(slow.conn().wait_closed());
    for (const auto& m : slow.seen_of<pc::message_event>())
        CHECK(m.from != "slow"); // the frame never completed
    other.wait_for<pc::leave_event>([](auto& l) { return l.nick == "slow"; });
    CHECK(left_with(other, "slow", "timeout"));
    other.wait_for<pc::message_event>([](auto& m) { return m.text == "unaffected"; });
}

TEST_CASE("faults: line mode, a line that never ends is cut off by the line idle deadline") {
    auto o = quiet_options();
    o.line_port = 0;
    o.line_idle_timeout = 300ms;
    server_fixture f(o);
    connection nc(f.line_port());
    REQUIRE(nc.recv_line()); // the prompt
    nc.send_raw("carol\n");
    const auto start = clock::now();
    std::optional<std::string> error_line;
    for (int i = 0; i < 60 && !error_line; ++i) {
        try {
            nc.send_raw("z");
        } catch (const std::exception&) {
            break;
        }
        while (auto line = nc.recv_line(50ms))
            if (line->rfind("! idle_timeout", 0) == 0)
                error_line = line;
    }
    REQUIRE(error_line.has_value());
    CHECK(clock::now() - start < 1500ms);
    CHECK(nc.wait_closed());
    CHECK(f.server().limit_counters().idle_timeouts == 1);
}

TEST_CASE("faults: write deadline, a member whose socket takes nothing is closed before its queue fills") {
    auto o = quiet_options();
    o.write_timeout = 300ms;
    o.send_buffer_bytes = 4096;
    o.queue.max_bytes = 8 * 1024 * 1024; // the queue is not what trips
    server_fixture f(o);
    client stuck(f.port(), 4096);
    stuck.login("stuck");
    client talker(f.port());
    talker.login("talker");
    stuck.expect<pc::join_event>(); // the talker's; no longer read from here on

    const std::string filler(2000, 'w');
    for (int i = 0; i < 100; ++i)
        talker.say(std::to_string(i) + " " + filler);
    talker.wait_for<pc::leave_event>([](auto& l) { return l.nick == "stuck"; }, patience);
    CHECK(left_with(talker, "stuck", "slow_consumer"));
    CHECK(talker.seen_of<pc::message_event>().size() == 100); // the sender got all its messages

    const auto hits = f.server().limit_counters();
    CHECK(hits.write_timeouts == 1);
    CHECK(hits.slow_consumers == 0); // the queue (8 MiB) never filled
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"stuck", "accepted nothing for 300 ms"}) == 1; }));
}

TEST_CASE("faults: connections per address are limited; a freed slot can be used again") {
    auto o = quiet_options();
    o.max_clients_per_address = 2;
    server_fixture f(o);
    client a(f.port());
    a.login("a");
    client b(f.port());
    b.login("b");
    client third(f.port());
    third.expect_error("too_many_connections");
    CHECK(third.conn().wait_closed());
    CHECK(f.server().limit_counters().address_full == 1);

    a.conn().close();
    REQUIRE(server_fixture::eventually([&] { return f.server().clients().size() == 1; }));
    client d(f.port());
    d.login("d");
    b.wait_for<pc::join_event>([](auto& j) { return j.nick == "d"; });
}

TEST_CASE("faults: flood control drops inputs over the rate, warns once, then disconnects") {
    auto o = quiet_options();
    o.flood = {.messages_per_second = 5, .burst_messages = 5, .bytes_per_second = 1e6,
               .burst_bytes = 1000000, .max_dropped = 10};
    server_fixture f(o);
    client victim(f.port());
    victim.login("victim");
    client flooder(f.port());
    // The nickname is an input too: 4 messages are left in the burst.
    flooder.login("flooder");
    victim.wait_for<pc::join_event>([](auto& j) { return j.nick == "flooder"; });

    for (int i = 0; i < 8; ++i)
        flooder.say("m" + std::to_string(i));
    CHECK(flooder.wait_for<pc::error_event>([](auto&) { return true; }).code == "rate_limited");
    for (int i = 8; i < 30; ++i) {
        try {
            flooder.say("m" + std::to_string(i));
        } catch (const std::runtime_error&) {
            break; // disconnected meanwhile (EPIPE, ECONNRESET): the events already sent stay readable
        }
    }
    CHECK(flooder.wait_for<pc::error_event>([](auto&) { return true; }).code == "flooding");
    CHECK(flooder.conn().wait_closed());

    victim.wait_for<pc::leave_event>([](auto& l) { return l.nick == "flooder"; });
    CHECK(left_with(victim, "flooder", "flooding"));
    const auto got = victim.seen_of<pc::message_event>();
    REQUIRE(got.size() >= 4);
    CHECK(got.size() <= 6); // the burst, and whatever refilled meanwhile (a token per 200 ms)
    for (int i = 0; i < 4; ++i)
        CHECK(got[i].text == "m" + std::to_string(i));

    const auto hits = f.server().limit_counters();
    CHECK(hits.rate_limited >= 11);
    CHECK(hits.flood_disconnects == 1);
    victim.say("calm");
    victim.wait_for<pc::message_event>([](auto& m) { return m.text == "calm"; });
}

TEST_CASE("faults: flood control in bytes") {
    auto o = quiet_options();
    o.flood = {.messages_per_second = 100, .burst_messages = 100, .bytes_per_second = 100,
               .burst_bytes = 2000, .max_dropped = 100};
    server_fixture f(o);
    client c(f.port());
    c.login("bytes");
    const std::string big(900, 'b');
    c.say(big);
    c.say(big);
    c.say(big); // 2705 bytes with the nickname: over the 2000-byte burst
    c.expect<pc::message_event>();
    c.expect<pc::message_event>();
    CHECK(c.expect_error("rate_limited").message.find("100 bytes/s") != std::string::npos);
    CHECK(!c.conn().closed());
}

TEST_CASE("faults: the server-wide outbound budget disconnects the readers that hold it, not the others") {
    auto o = quiet_options();
    o.outbound_budget = {.max_bytes = 256 * 1024, .reserve_bytes = 64 * 1024};
    o.queue.max_bytes = 4 * 1024 * 1024; // each stuck reader alone would fit
    o.send_buffer_bytes = 4096;
    o.write_timeout = 0ms;
    server_fixture f(o);
    client stuck1(f.port(), 4096), stuck2(f.port(), 4096);
    stuck1.login("stuck1");
    stuck2.login("stuck2");
    client r1(f.port()), r2(f.port()), talker(f.port());
    r1.login("r1");
    r2.login("r2");
    talker.login("talker");

    constexpr std::size_t count = 400, size = 2000;
    std::size_t peak = 0;
    {
        message_reader read1(r1.conn(), "talker", count), read2(r2.conn(), "talker", count),
            own(talker.conn(), "talker", count);
        send_paced(talker, count, size, {&read1, &read2, &own});
        read1.join();
        read2.join();
        own.join();
        CHECK_MESSAGE(read1.failure().empty(), read1.failure());
        CHECK_MESSAGE(read2.failure().empty(), read2.failure());
        CHECK(read1.received() == count);
        CHECK(read2.received() == count);
        peak = f.server().limit_counters().outbound_peak_bytes;
    }
    CHECK(stuck1.conn().wait_closed());
    CHECK(stuck2.conn().wait_closed());
    const auto hits = f.server().limit_counters();
    CHECK(hits.budget_refusals >= 2);
    CHECK(hits.slow_consumers == 2);
    // The documented bound: max_bytes + clients * reserve (+ one message).
    CHECK(peak <= 256 * 1024 + 5 * 64 * 1024 + 2100);
    MESSAGE("outbound budget: peak " << peak << " bytes queued with a 256 KiB budget");
    REQUIRE(server_fixture::eventually([&] { return f.server().limit_counters().outbound_bytes < 64 * 1024; }));
}

TEST_CASE("faults: a member that never reads while others chat: nothing lost, memory bounded") {
    auto o = quiet_options(); // default queue: 1 MiB per client
    server_fixture f(o);
    client stuck(f.port(), 4096);
    stuck.login("stuck");
    client r1(f.port()), r2(f.port()), talker(f.port());
    r1.login("r1");
    r2.login("r2");
    talker.login("talker");

    const std::size_t before = resident_bytes();
    constexpr std::size_t count = 1500, size = 3000; // 4.5 MB through the room
    std::size_t peak_rss = before;
    {
        message_reader read1(r1.conn(), "talker", count), read2(r2.conn(), "talker", count),
            own(talker.conn(), "talker", count);
        std::atomic<bool> sending{true};
        std::thread sampler([&] {
            while (sending) {
                peak_rss = std::max(peak_rss, resident_bytes());
                std::this_thread::sleep_for(10ms);
            }
        });
        send_paced(talker, count, size, {&read1, &read2, &own});
        read1.join();
        read2.join();
        own.join();
        sending = false;
        sampler.join();
        CHECK_MESSAGE(read1.failure().empty(), read1.failure());
        CHECK_MESSAGE(read2.failure().empty(), read2.failure());
    }
    CHECK(stuck.conn().wait_closed());
    CHECK(f.server().limit_counters().slow_consumers == 1);
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"slow consumer: stuck"}) == 1; }));
    const std::size_t growth = peak_rss > before ? peak_rss - before : 0;
    MESSAGE("never-reading member: resident memory grew by " << growth / 1024 << " KiB at most");
#ifndef PARLEY_TEST_SANITIZED
    CHECK(growth < 32 * 1024 * 1024);
#endif // ASan's quarantine holds freed memory: RSS says nothing there
}

TEST_CASE("faults: resets mid-handshake, mid-frame and mid-write leave the others unaffected") {
    auto o = quiet_options();
    o.line_port = 0;
    o.send_buffer_bytes = 4096; // events wait in the queue, not in the kernel
    server_fixture f(o);
    client healthy(f.port());
    healthy.login("healthy");

    { // mid-handshake: welcome read, no nickname
        connection c(f.port());
        REQUIRE(c.recv_frame());
        c.reset();
    }
    { // mid-frame: half a frame, then a reset
        client m(f.port());
        m.login("midframe");
        m.conn().send_raw(std::string_view("\0\0\0\x20half a fra", 14));
        m.conn().reset();
    }
    { // mid-write: events queued to it and partly written when it resets
        client w(f.port(), 4096);
        w.login("midwrite");
        const std::string filler(3000, 'r');
        for (int i = 0; i < 50; ++i)
            healthy.say(std::to_string(i) + filler);
        w.conn().reset();
    }
    { // line mode, mid-line
        connection nc(f.line_port());
        REQUIRE(nc.recv_line());
        nc.send_raw("liner\nhalf a li");
        REQUIRE(nc.recv_line()); // welcome line
        nc.reset();
    }
    REQUIRE(server_fixture::eventually([&] { return f.server().clients().size() == 1; }));
    for (auto nick : {"midframe", "midwrite", "liner"})
        healthy.wait_for<pc::leave_event>([&](auto& l) { return l.nick == nick; });
    healthy.say("after the resets");
    healthy.wait_for<pc::message_event>([](auto& m) { return m.text == "after the resets"; });
    CHECK(healthy.seen_of<pc::message_event>().size() == 51);
}

TEST_CASE("faults: connect/close cycles leave no session and no memory behind") {
#ifdef PARLEY_TEST_SANITIZED
    constexpr int cycles = 2000; // sanitizers make each cycle several times slower
#else
    constexpr int cycles = 10000;
#endif
    auto o = quiet_options();
    o.max_clients_per_address = 0;
    server_fixture f(o);
    const auto churn = [&](int n) {
        for (int i = 0; i < n; ++i) {
            connection c(f.port());
            if (i % 2)
                c.reset(); // RST
            // else: FIN when `c` goes out of scope
        }
    };
    churn(500); // warm-up: allocator pools, the hub's tables
    REQUIRE(server_fixture::eventually([&] { return f.server().clients().empty(); }));
    const std::size_t before = resident_bytes();
    const auto start = clock::now();
    churn(cycles);
    REQUIRE(server_fixture::eventually([&] { return f.server().clients().empty(); }, 10s));
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    const std::size_t after = resident_bytes();
    const long long growth = static_cast<long long>(after) - static_cast<long long>(before);
    MESSAGE(cycles << " connect/close cycles in " << took.count() << " ms; resident memory "
                   << growth / 1024 << " KiB more afterwards");
#ifndef PARLEY_TEST_SANITIZED
    CHECK(growth < 4 * 1024 * 1024);
#endif // ASan's quarantine holds freed memory (its leak check covers this case there)
    CHECK(f.server().counters().members == 0);
    client after_all(f.port());
    after_all.login("still-serving");
}

TEST_CASE("faults: stop(deadline) delivers every message accepted before it, then the notice") {
    auto o = quiet_options();
    o.send_buffer_bytes = 4096; // events wait in the queues, not in the kernel
    server_fixture f(o);
    client late1(f.port(), 4096), late2(f.port(), 4096), talker(f.port());
    late1.login("late1");
    late2.login("late2");
    talker.login("talker");

    // The late readers read nothing until the server is stopping: the
    // messages wait in their queues.
    constexpr int count = 300;
    const std::string filler(1000, 's');
    for (int i = 0; i < count; ++i)
        talker.say(std::to_string(i) + " " + filler);
    // The talker's own copies prove each message was published to all.
    for (int i = 0; i < count; ++i)
        talker.wait_for<pc::message_event>([](auto&) { return true; });
    std::size_t queued = 0;
    for (const auto& c : f.server().clients())
        queued += c.queue.queued_bytes;
    CHECK(queued > 100 * 1000); // in flight when stop() is called

    f.server().stop(3000ms);
    message_reader read1(late1.conn(), "talker", count), read2(late2.conn(), "talker", count);
    read1.join();
    read2.join();
    CHECK_MESSAGE(read1.failure().empty(), read1.failure());
    CHECK_MESSAGE(read2.failure().empty(), read2.failure());
    CHECK(read1.received() == count);
    CHECK(read2.received() == count);
    CHECK(read1.saw_shutdown());
    CHECK(read2.saw_shutdown());
    CHECK(talker.wait_for<pc::notice_event>([](auto& n) { return n.code == "shutdown"; }).code ==
          "shutdown");
    CHECK(late1.conn().wait_closed());
    CHECK(talker.conn().wait_closed());
}

// Under the sanitizers the child process, with its lowered descriptor limit,
// does not come up (the sanitizer runtime needs descriptors of its own).
TEST_CASE("faults: out of file descriptors, the accept loop pauses and resumes"
          * doctest::skip(PARLEY_TEST_SANITIZED_VALUE)) {
    // In a child process, whose descriptor limit is lowered to allow
    // exactly one connection more than it has open.
    int report[2];
    REQUIRE(::pipe(report) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(report[0]);
        int status = 1;
        {
            asio::io_context ioc;
            auto o = quiet_options();
            o.host = "127.0.0.1";
            o.port = 0;
            pc::server server(ioc, o);
            std::error_code ec;
            server.start(ec);
            if (!ec) {
                // New descriptors take the lowest free number, and must be
                // below the limit: the lowest free one is the only spare.
                const int lowest_free = ::dup(0);
                ::close(lowest_free);
                rlimit limit{};
                ::getrlimit(RLIMIT_NOFILE, &limit);
                limit.rlim_cur = static_cast<rlim_t>(lowest_free) + 1;
                ::setrlimit(RLIMIT_NOFILE, &limit);
                const std::uint16_t port = server.local_port();
                (void)!::write(report[1], &port, sizeof port);
                ioc.run_for(3s);
                const auto pauses = server.limit_counters().accept_pauses;
                (void)!::write(report[1], &pauses, sizeof pauses);
                status = 0;
            }
        }
        ::_exit(status);
    }
    ::close(report[1]);
    std::uint16_t port = 0;
    REQUIRE(::read(report[0], &port, sizeof port) == static_cast<ssize_t>(sizeof port));

    client first(port);
    first.expect<pc::welcome_event>(); // took the spare descriptor
    client second(port);               // queued in the backlog: accept fails with EMFILE
    CHECK(!second.next(400ms).has_value());
    first.conn().close(); // frees the descriptor once the server sees the close
    second.expect<pc::welcome_event>(2s);

    std::uint64_t pauses = 0;
    CHECK(::read(report[0], &pauses, sizeof pauses) == static_cast<ssize_t>(sizeof pauses));
    ::close(report[0]);
    int status = -1;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(pauses >= 1);
    MESSAGE("accept loop paused " << pauses << " times while out of descriptors");
}
