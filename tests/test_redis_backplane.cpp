// The Redis backplane: parley/redis/redis_connection.hpp against a real Redis,
// and three chat_server processes on one Redis acting as one chat
// (docs/SCALING.md). Each case starts its own redis-server on a free
// loopback port without persistence, and ends it by its PID. Without
// hiredis (build) or redis-server (PATH, or PARLEY_REDIS_SERVER), the
// cases say so and are counted as skipped (support/skip.hpp).
#ifdef PARLEY_HAVE_HIREDIS
#include <parley/chat/redis_backplane.hpp>
#include <parley/redis/redis_connection.hpp>
#endif

#include "support/server_process.hpp"
#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <asio/io_context.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#ifdef PARLEY_HAVE_HIREDIS
namespace {

using namespace std::chrono_literals;
namespace pc = parley::chat;
using parley::test::chat::client;
using parley::test::chat::clock;

// redis-server's path, or empty: $PARLEY_REDIS_SERVER if set (set it empty
// to see these tests skip), else the first on PATH.
std::string find_redis_server() {
    if (const char* chosen = std::getenv("PARLEY_REDIS_SERVER"))
        return *chosen && ::access(chosen, X_OK) == 0 ? chosen : "";
    const char* path = std::getenv("PATH");
    const std::string dirs = path ? path : "";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const auto end = std::min(dirs.find(':', start), dirs.size());
        const std::string candidate = dirs.substr(start, end - start) + "/redis-server";
        if (end > start && ::access(candidate.c_str(), X_OK) == 0)
            return candidate;
        start = end + 1;
    }
    return {};
}

// A test that needs redis-server says why it did nothing.
void skip_without_redis() {
    parley::test::skip("redis-server is not installed (Debian: apt-get install redis-server)");
}

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

bool port_accepts(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

// A redis-server child on 127.0.0.1:port, no persistence; stop() ends it
// by its PID.
class redis_process {
public:
    redis_process(std::string program, std::uint16_t port) : program_(std::move(program)), port_(port) {
        start();
    }
    ~redis_process() { stop(); }
    redis_process(const redis_process&) = delete;
    redis_process& operator=(const redis_process&) = delete;

    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }
    std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

    void start() {
        std::vector<std::string> args{program_, "--port", std::to_string(port_), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no",
                                      "--logfile", "/dev/null"};
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        REQUIRE(::posix_spawn(&pid_, program_.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
        const auto deadline = clock::now() + 5s;
        while (!port_accepts(port_)) {
            REQUIRE_MESSAGE(clock::now() < deadline, "redis-server did not start listening");
            std::this_thread::sleep_for(10ms);
        }
    }

    void stop() {
        if (pid_ <= 0)
            return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

private:
    std::string program_;
    std::uint16_t port_;
    pid_t pid_ = -1;
};

bool eventually(const std::function<bool()>& done, clock::duration within = 20s) {
    return parley::test::chat::server_fixture::eventually(done, within);
}

} // namespace

TEST_CASE("redis backplane: parse_redis_url") {
    std::string error;
    auto a = pc::parse_redis_url("redis://127.0.0.1:6380", error);
    REQUIRE(a);
    CHECK(a->first == "127.0.0.1");
    CHECK(a->second == 6380);
    auto b = pc::parse_redis_url("redis://localhost", error);
    REQUIRE(b);
    CHECK(b->second == 6379);
    auto c = pc::parse_redis_url("redis://[::1]:7000/", error);
    REQUIRE(c);
    CHECK(c->first == "::1");
    CHECK(c->second == 7000);
    for (const char* bad : {"http://x", "redis://", "redis://host:0", "redis://host:99999",
                            "redis://user:pw@host", "redis://[::1", "redis://host:12x"}) {
        error.clear();
        CHECK_MESSAGE(!pc::parse_redis_url(bad, error), bad);
        CHECK(!error.empty());
    }
}

TEST_CASE("redis connection: pipelined commands, error replies, subscriber mode") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    redis_process redis(redis_server, free_port());
    asio::io_context ioc;
    auto conn = std::make_shared<parley::redis::connection>(ioc.get_executor());
    auto sub = std::make_shared<parley::redis::connection>(ioc.get_executor());
    std::vector<std::string> replies;
    std::vector<std::string> pushes;
    parley::connect_options how;
    how.max_attempts = 1;
    std::error_code connect_ec = asio::error::would_block;
    auto finish_when_done = [&] {
        if (replies.size() == 6 && pushes.size() == 2) {
            sub->close();
            conn->close();
        }
    };
    conn->connect("127.0.0.1", redis.port(), how, [&](std::error_code ec) {
        connect_ec = ec;
        if (ec)
            return;
        sub->connect("127.0.0.1", redis.port(), how, [&](std::error_code ec) {
            REQUIRE(!ec);
            sub->subscriber([&](const parley::redis::reply& r) {
                pushes.push_back(r.describe());
                if (pushes.size() == 1) {
                    // Subscribed: now the commands, pipelined.
                    auto record = [&](std::error_code ec, const parley::redis::reply& r) {
                        CHECK(!ec);
                        replies.push_back(r.describe());
                        finish_when_done();
                    };
                    conn->command({"SET", "k", std::string("a\0b", 3)}, record);
                    conn->command({"GET", "k"}, record);
                    conn->command({"GET", "missing"}, record);
                    conn->command({"INCRBY", "n", "41"}, record);
                    conn->command({"NOSUCHCOMMAND"}, record);
                    conn->command({"PUBLISH", "ch", "hello"}, record);
                }
                finish_when_done();
            });
            sub->command({"SUBSCRIBE", "ch"});
        });
    });
    ioc.run_for(20s); // returns as soon as both connections are closed
    REQUIRE(!connect_ec);
    REQUIRE(replies.size() == 6);
    CHECK(replies[0] == "OK");
    CHECK(replies[1] == std::string("a\0b", 3));
    CHECK(replies[2] == "(nil)");
    CHECK(replies[3] == "41");
    CHECK(replies[4].rfind("error: ERR unknown command", 0) == 0);
    CHECK(replies[5] == "1");
    REQUIRE(pushes.size() == 2);
    CHECK(pushes[0] == "[subscribe, ch, 1]");
    CHECK(pushes[1] == "[message, ch, hello]");

    // Redis gone: commands fail with an error, they do not hang.
    redis.stop();
    asio::io_context ioc2;
    auto gone = std::make_shared<parley::redis::connection>(ioc2.get_executor());
    std::optional<std::error_code> result;
    gone->connect("127.0.0.1", redis.port(), how, [&](std::error_code ec) { result = ec; });
    ioc2.run_for(20s); // returns once the connect failed
    REQUIRE(result);
    CHECK(*result);
}

namespace {

// A chat cluster for the tests: one Redis, `n` chat_server processes with
// a fast heartbeat (100 ms) and expiry (1.5 s).
struct cluster {
    static constexpr auto heartbeat = 100ms;
    static constexpr auto expiry = 1500ms;

    // The second instance runs two I/O threads, the others one. `extra`:
    // more chat_server arguments, for every instance.
    explicit cluster(const std::string& redis_server, int n, std::vector<std::string> extra = {})
        : redis(redis_server, free_port()), extra_args(std::move(extra)) {
        for (int i = 0; i < n; ++i)
            add(i == 1 ? 2 : 1);
    }

    // Each server stops cleanly (SIGTERM: exit status 0) unless the test
    // killed it, and no sanitizer complained in any of them.
    ~cluster() {
        for (auto& s : servers) {
            const bool killed = s->pid() <= 0; // by the test, already reaped
            const auto status = s->terminate(SIGTERM, 5s);
            CHECK_MESSAGE((killed || status == 0), "a chat server did not stop cleanly: " << s->output());
            CHECK_MESSAGE(s->output().find("Sanitizer") == std::string::npos, s->output());
        }
    }

    void kill(std::size_t i) { REQUIRE(servers.at(i)->terminate(SIGKILL)); }

    parley::test::server_process& add(unsigned threads = 1) {
        std::vector<std::string> args{"--port", "0", "--no-line-mode", "--no-web", "--redis", redis.url(),
                                      "--redis-heartbeat-ms", std::to_string(heartbeat.count()),
                                      "--redis-expiry-ms", std::to_string(expiry.count()),
                                      "--threads", std::to_string(threads)};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        servers.push_back(std::make_unique<parley::test::server_process>(
            parley::test::example_path("chat_server"), args));
        auto& s = *servers.back();
        REQUIRE_MESSAGE(eventually([&] { return has(s, "redis: connected"); }),
                        "the chat server did not connect to Redis: " << s.output());
        return s;
    }

    static bool has(parley::test::server_process& s, std::string_view text) {
        return s.output().find(text) != std::string::npos;
    }
    static std::size_t count(parley::test::server_process& s, std::string_view text) {
        const std::string& out = s.output();
        std::size_t n = 0;
        for (auto at = out.find(text); at != std::string::npos; at = out.find(text, at + 1))
            ++n;
        return n;
    }

    std::uint16_t port(std::size_t i) { return servers.at(i)->port(); }

    redis_process redis;
    std::vector<std::string> extra_args;
    std::vector<std::unique_ptr<parley::test::server_process>> servers;
};

// Logs `nick` in on `port` and waits until every client in `others` has
// seen it join the lobby.
std::unique_ptr<client> join(std::uint16_t port, const std::string& nick,
                             const std::vector<client*>& others) {
    auto c = std::make_unique<client>(port);
    c->login(nick);
    for (auto* o : others)
        o->wait_for<pc::join_event>([&](const pc::join_event& j) { return j.nick == nick; });
    return c;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
}

} // namespace

TEST_CASE("redis backplane: three chat servers are one chat") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 3);
    auto a = join(cl.port(0), "alice", {});
    auto b = join(cl.port(1), "bob", {a.get()});
    auto c = join(cl.port(2), "carol", {a.get(), b.get()});
    auto d = join(cl.port(0), "dave", {a.get(), b.get(), c.get()});
    std::vector<client*> all{a.get(), b.get(), c.get(), d.get()};

    // /list on any instance names the members of all.
    for (auto* x : all) {
        x->say("/list");
        auto m = x->wait_for<pc::members_event>([](const auto&) { return true; });
        CHECK(m.count == 4);
        CHECK(sorted(m.members) == std::vector<std::string>{"alice", "bob", "carol", "dave"});
    }

    // A nickname held on one instance is refused on another (any case).
    {
        client e(cl.port(1));
        e.welcome_and_send("ALICE");
        e.expect_error("nickname_taken");
        e.conn().send_frame("erin"); // and a free one is accepted
        CHECK(e.expect<pc::nick_accepted_event>().nick == "erin");
        for (auto* x : all)
            x->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "erin"; });
        e.say("/quit");
        for (auto* x : all)
            x->wait_for<pc::leave_event>([](const pc::leave_event& l) { return l.nick == "erin"; });
    }

    // Everyone talks at once: every client receives every message once,
    // each sender's in order.
    constexpr int per_sender = 25;
    for (int i = 0; i < per_sender; ++i)
        for (auto* x : all)
            x->say(x->nick() + " " + std::to_string(i));
    for (auto* x : all) {
        std::map<std::string, std::vector<int>> got;
        std::size_t total = 0;
        while (total < all.size() * per_sender) {
            auto m = x->wait_for<pc::message_event>([](const auto&) { return true; });
            CHECK(m.room == "lobby");
            const auto space = m.text.find(' ');
            REQUIRE(space != std::string::npos);
            CHECK(m.text.substr(0, space) == m.from);
            got[m.from].push_back(std::stoi(m.text.substr(space + 1)));
            ++total;
        }
        for (auto* sender : all) {
            std::vector<int> expected(per_sender);
            for (int i = 0; i < per_sender; ++i)
                expected[static_cast<std::size_t>(i)] = i;
            CHECK_MESSAGE(got[sender->nick()] == expected,
                          x->nick() << " got " << sender->nick() << "'s messages out of order");
        }
    }
    for (auto* x : all)
        CHECK(x->silent(200ms)); // and nothing twice

    // Private messages cross instances; the sender gets its copy.
    a->say("/msg carol psst");
    auto p = c->expect<pc::private_event>();
    CHECK(p.from == "alice");
    CHECK(p.to == "carol");
    CHECK(p.text == "psst");
    CHECK(a->expect<pc::private_event>().text == "psst");
    c->say("/msg BOB hi bob");
    CHECK(b->expect<pc::private_event>().text == "hi bob");
    CHECK(c->expect<pc::private_event>().to == "bob");
    a->say("/msg nobody hello");
    a->expect_error("no_such_nick");

    // A rename is seen once by everyone sharing a room, and frees the old
    // nickname cluster-wide.
    b->say("/nick bobby");
    for (auto* x : all) {
        auto r = x->expect<pc::rename_event>();
        CHECK(r.old_nick == "bob");
        CHECK(r.new_nick == "bobby");
    }
    a->say("/msg bobby still there?");
    CHECK(b->expect<pc::private_event>().text == "still there?");
    CHECK(a->expect<pc::private_event>().to == "bobby");

    // Rooms: only members of a room on each instance get its messages.
    a->say("/join side");
    // alice in first: a carol's join that reached alice's instance before
    // alice's own was done would rightly not be shown to her (a flake under
    // load, issue 12).
    a->wait_for<pc::members_event>([](const pc::members_event& m) { return m.room == "side"; });
    c->say("/join side");
    a->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "carol"; });
    c->wait_for<pc::members_event>([](const pc::members_event& m) { return m.room == "side"; });
    c->say("in side");
    CHECK(a->wait_for<pc::message_event>([](const auto&) { return true; }).room == "side");
    CHECK(c->wait_for<pc::message_event>([](const auto&) { return true; }).text == "in side");
    CHECK(b->silent(200ms));
    CHECK(d->silent(50ms));

    // A quit on one instance is a leave on the others, and frees the name.
    d->say("/quit");
    for (auto* x : {a.get(), b.get(), c.get()})
        x->wait_for<pc::leave_event>([](const pc::leave_event& l) { return l.nick == "dave"; });
    client d2(cl.port(2));
    d2.login("dave");
}

TEST_CASE("redis backplane: a killed instance's members leave within the expiry") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 3);
    auto a = join(cl.port(0), "alice", {});
    auto b = join(cl.port(1), "bob", {a.get()});
    auto c = join(cl.port(2), "carol", {a.get(), b.get()});
    auto c2 = join(cl.port(2), "cyril", {a.get(), b.get(), c.get()});

    const auto killed = clock::now();
    cl.kill(2);
    // Stated bound: expiry + one heartbeat (plus delivery); allow slack for
    // sanitizer builds on a busy machine.
    const auto bound = cluster::expiry + cluster::heartbeat + 1500ms;
    for (auto* x : {a.get(), b.get()}) {
        std::vector<std::string> left;
        while (left.size() < 2) {
            auto l = x->wait_for<pc::leave_event>([](const auto&) { return true; }, bound);
            CHECK(l.room == "lobby");
            left.push_back(l.nick);
        }
        CHECK(sorted(left) == std::vector<std::string>{"carol", "cyril"});
    }
    const auto took = clock::now() - killed;
    MESSAGE("leaves announced "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
            << " ms after the kill (expiry " << cluster::expiry.count() << " ms)");
    // Not before it could be taken for dead (its last heartbeat was at most
    // one heartbeat before the kill).
    CHECK(took >= cluster::expiry - cluster::heartbeat - 50ms);
    CHECK(took < bound);
    // Announced once: exactly one survivor found it dead.
    CHECK(cluster::count(*cl.servers[0], "missed its heartbeats") +
              cluster::count(*cl.servers[1], "missed its heartbeats") ==
          1);
    CHECK(a->silent(200ms));
    CHECK(b->silent(50ms));

    a->say("/list");
    auto m = a->expect<pc::members_event>();
    CHECK(sorted(m.members) == std::vector<std::string>{"alice", "bob"});
    client again(cl.port(1));
    again.login("carol"); // its nicknames are free again
}

TEST_CASE("redis backplane: a stalled instance taken for dead comes back") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2);
    auto a = join(cl.port(0), "alice", {});
    auto b = join(cl.port(1), "bob", {a.get()});

    // Frozen longer than the expiry: the other instance announces bob's leave.
    REQUIRE(::kill(cl.servers[1]->pid(), SIGSTOP) == 0);
    a->wait_for<pc::leave_event>([](const pc::leave_event& l) { return l.nick == "bob"; },
                                 cluster::expiry + cluster::heartbeat + 1500ms);
    REQUIRE(::kill(cl.servers[1]->pid(), SIGCONT) == 0);
    // Back: it registers again and announces its member anew.
    a->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "bob"; });
    b->say("still here");
    CHECK(a->wait_for<pc::message_event>([](const auto&) { return true; }).text == "still here");
    CHECK(b->wait_for<pc::message_event>([](const auto&) { return true; }).text == "still here");
    // bob never saw himself leave (the leave was for the others).
    CHECK(b->seen_of<pc::leave_event>().empty());
    a->say("/list");
    CHECK(sorted(a->expect<pc::members_event>().members) ==
          std::vector<std::string>{"alice", "bob"});
    client other(cl.port(0));
    other.welcome_and_send("bob");
    other.expect_error("nickname_taken"); // reclaimed
}

TEST_CASE("redis backplane: Redis restarts, the servers chat locally, then resume") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2);
    auto a = join(cl.port(0), "alice", {});
    auto b = join(cl.port(1), "bob", {a.get()});
    auto a2 = join(cl.port(0), "ann", {a.get(), b.get()});

    cl.redis.stop();
    for (std::size_t i = 0; i < 2; ++i)
        REQUIRE_MESSAGE(eventually([&] { return cluster::has(*cl.servers[i], "serving local members only"); }),
                        cl.servers[i]->output());

    // Local members still chat; the other instance does not get it, not
    // even later (at most once across instances).
    a->say("during the outage");
    CHECK(a->wait_for<pc::message_event>([](const auto&) { return true; }).text ==
          "during the outage");
    CHECK(a2->wait_for<pc::message_event>([](const auto&) { return true; }).text ==
          "during the outage");
    client local(cl.port(1));
    local.login("bella"); // nicknames: checked locally meanwhile
    b->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "bella"; });

    cl.redis.start();
    for (std::size_t i = 0; i < 2; ++i)
        REQUIRE_MESSAGE(eventually([&] { return cluster::has(*cl.servers[i], "redis: back"); }, 10s),
                        cl.servers[i]->output());
    // Each said it once: one "lost" line and one "back" line per outage.
    for (std::size_t i = 0; i < 2; ++i) {
        CHECK(cluster::count(*cl.servers[i], "serving local members only") == 1);
        CHECK(cluster::count(*cl.servers[i], "redis: back") == 1);
    }

    // Delivery across instances resumes, without restarting anything; the
    // shared presence was rebuilt from both sides.
    REQUIRE(eventually([&] {
        a->say("/list");
        auto m = a->wait_for<pc::members_event>([](const auto&) { return true; });
        if (m.count != 4)
            std::this_thread::sleep_for(50ms);
        return m.count == 4;
    }));
    b->say("after the outage");
    auto m = a->wait_for<pc::message_event>([](const auto&) { return true; });
    CHECK(m.text == "after the outage");
    CHECK(m.from == "bob");
    auto mb = b->wait_for<pc::message_event>([](const auto&) { return true; });
    CHECK(mb.text == "after the outage"); // the outage message never arrived late
    a->say("/msg bella welcome back");
    CHECK(local.wait_for<pc::private_event>([](const auto&) { return true; }).text ==
          "welcome back");
    local.say("/nick alice");
    local.expect_error("nickname_taken");
}

TEST_CASE("redis backplane: no Redis at start: serve locally, say so once, stop cleanly") {
    // Nothing listens on this port (taken and released): connecting fails
    // at once, and the retries go on with backoff until the stop.
    const std::uint16_t nothing = free_port();
    parley::test::server_process s(parley::test::example_path("chat_server"),
                                   {"--port", "0", "--no-line-mode", "--no-web", "--redis",
                                    "redis://127.0.0.1:" + std::to_string(nothing)});
    REQUIRE_MESSAGE(eventually([&] { return s.output().find("cannot reach") != std::string::npos; }),
                    s.output());
    client a(s.port());
    a.login("alice");
    client b(s.port());
    b.login("bob");
    a.say("hello");
    CHECK(b.wait_for<pc::message_event>([](const auto&) { return true; }).text == "hello");
    client c(s.port());
    c.welcome_and_send("Alice");
    c.expect_error("nickname_taken"); // local uniqueness still holds
    std::this_thread::sleep_for(300ms); // a few failed attempts
    const std::string& out = s.output();
    CHECK(out.find("cannot reach") == out.rfind("cannot reach")); // said once
    CHECK(s.terminate(SIGTERM, 5s) == 0);
}

namespace {

// A join with shared history: the room's past messages, then the join of
// the client itself (`nick`), then the members. Returns the past messages.
std::vector<pc::message_event> joined_with_history(client& c, const std::string& nick,
                                                   const std::string& room) {
    std::vector<pc::message_event> history;
    for (;;) {
        auto e = c.next();
        REQUIRE_MESSAGE(e.has_value(), nick << ": no join of " << room << " in time");
        if (auto* m = std::get_if<pc::message_event>(&*e)) {
            CHECK(m->room == room);
            history.push_back(*m);
            continue;
        }
        // Others' joins and leaves (in the client's other rooms) may come
        // first; the history comes right before the client's own join.
        auto* j = std::get_if<pc::join_event>(&*e);
        if (j && j->room == room && j->nick == nick)
            break;
        CHECK_MESSAGE(history.empty(), "history interrupted by " << pc::to_json(*e));
    }
    CHECK(c.expect<pc::members_event>().room == room);
    return history;
}

std::unique_ptr<client> login_with_history(std::uint16_t port, const std::string& nick,
                                           std::vector<pc::message_event>& history) {
    auto c = std::make_unique<client>(port);
    c->welcome_and_send(nick);
    CHECK(c->expect<pc::nick_accepted_event>().nick == nick);
    history = joined_with_history(*c, nick, "lobby");
    return c;
}

// Returns once every message `c` said has been written to Redis: a
// history read (a join) goes on the instance's Redis connection after
// those writes, and its answer after theirs.
void through_redis(client& c, const std::string& nick, const std::string& room) {
    c.say("/join barrier");
    joined_with_history(c, nick, "barrier");
    c.say("/join " + room); // the current room again
    c.wait_for<pc::members_event>([&](const pc::members_event& m) { return m.room == room; });
}

std::vector<std::string> texts(const std::vector<pc::message_event>& v) {
    std::vector<std::string> out;
    for (const auto& m : v)
        out.push_back(m.text);
    return out;
}

bool ids_increase(const std::vector<pc::message_event>& v) {
    for (std::size_t i = 1; i < v.size(); ++i)
        if (v[i].id <= v[i - 1].id)
            return false;
    return true;
}

} // namespace

TEST_CASE("redis backplane: shared history: a joiner on any instance gets the last N, once") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "5", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    CHECK(history.empty());
    for (int i = 1; i <= 8; ++i)
        a->say("m" + std::to_string(i));
    for (int i = 1; i <= 8; ++i)
        CHECK(a->expect<pc::message_event>().text == "m" + std::to_string(i));
    through_redis(*a, "alice", "lobby");

    const std::vector<std::string> last5{"m4", "m5", "m6", "m7", "m8"};
    // A joiner on an instance started after the messages were said.
    cl.add();
    auto c = login_with_history(cl.port(2), "carol", history);
    CHECK(texts(history) == last5);
    CHECK(history.front().from == "alice");
    CHECK(ids_increase(history));
    a->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "carol"; });
    // One on the sender's own instance (whose hub keeps no history) and
    // one on the other instance get the same.
    auto a2 = login_with_history(cl.port(0), "ann", history);
    CHECK(texts(history) == last5);
    auto b = login_with_history(cl.port(1), "bob", history);
    CHECK(texts(history) == last5);
    CHECK(ids_increase(history));

    // Live messages follow, once, with greater ids.
    c->say("live");
    for (auto* x : {a.get(), a2.get(), b.get(), c.get()}) {
        auto m = x->wait_for<pc::message_event>([](const auto&) { return true; });
        CHECK(m.text == "live");
        CHECK(m.from == "carol");
    }
    CHECK(b->seen_of<pc::message_event>().back().id > history.back().id);
    for (auto* x : {a.get(), a2.get(), b.get(), c.get()})
        CHECK(x->silent(100ms));

    // Each room has its own history; a new room has none.
    b->say("/join side");
    CHECK(joined_with_history(*b, "bob", "side").empty());
    b->say("s1");
    CHECK(b->expect<pc::message_event>().text == "s1");
    through_redis(*b, "bob", "side"); // stored before carol, elsewhere, reads
    c->say("/join side");
    CHECK(texts(joined_with_history(*c, "carol", "side")) == std::vector<std::string>{"s1"});
    // ... and a rejoin reads it again, with the message said since.
    c->say("/join lobby"); // current room again
    c->wait_for<pc::members_event>([](const auto& m) { return m.room == "lobby"; });
    c->say("lobby again");
    c->wait_for<pc::message_event>([](const auto& m) { return m.text == "lobby again"; });
    c->say("/part lobby");
    c->wait_for<pc::leave_event>([](const pc::leave_event& l) { return l.room == "lobby"; });
    c->say("/join lobby");
    CHECK(texts(joined_with_history(*c, "carol", "lobby")) ==
          std::vector<std::string>{"m6", "m7", "m8", "live", "lobby again"});
    CHECK(c->silent(100ms));
}

TEST_CASE("redis backplane: shared history: a message said while a history read is in flight "
          "arrives once") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "10", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    auto b = login_with_history(cl.port(1), "bob", history);
    auto j = login_with_history(cl.port(1), "jo", history);
    for (auto* x : {a.get(), b.get()}) {
        x->say("/join side");
        joined_with_history(*x, x == a.get() ? "alice" : "bob", "side");
    }
    a->say("before 1");
    a->say("before 2");
    for (const char* t : {"before 1", "before 2"})
        CHECK(b->wait_for<pc::message_event>([](const auto&) { return true; }).text == t);

    // Redis frozen: jo's history read waits in the queue of its instance's
    // Redis connection, behind nothing, and ahead of the message bob (on
    // the same instance) says next; alice's message (the other instance)
    // races with it in Redis. Thawed well within the read timeout.
    REQUIRE(::kill(cl.redis.pid(), SIGSTOP) == 0);
    j->say("/join side");
    std::this_thread::sleep_for(30ms);
    b->say("during, local");
    a->say("during, remote");
    std::this_thread::sleep_for(100ms);
    REQUIRE(::kill(cl.redis.pid(), SIGCONT) == 0);

    history = joined_with_history(*j, "jo", "side");
    std::vector<pc::message_event> got = history;
    while (got.size() < 4) {
        auto e = j->next();
        REQUIRE_MESSAGE(e.has_value(), "jo received only " << got.size() << " messages");
        if (auto* m = std::get_if<pc::message_event>(&*e); m && m->room == "side")
            got.push_back(*m);
    }
    CHECK(j->silent(200ms)); // nothing twice
    const auto all = texts(got);
    CHECK(sorted(all) ==
          sorted({"before 1", "before 2", "during, local", "during, remote"}));
    CHECK(all[0] == "before 1");
    CHECK(all[1] == "before 2");
    CHECK(ids_increase(got));
    // bob's message was held for jo, not read from the history (it was
    // stored after the read).
    const auto h = texts(history);
    CHECK(std::find(h.begin(), h.end(), "during, local") == h.end());
    MESSAGE("history read: " << h.size() << " messages (alice's 'during' one "
                             << std::string(h.size() == 3 ? "in it" : "after it") << ")");
    CHECK(!cluster::has(*cl.servers[1], "without its shared history"));
}

TEST_CASE("redis backplane: shared history: joiners during a burst get every message once") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "10", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    auto b = login_with_history(cl.port(1), "bob", history);
    for (auto* x : {a.get(), b.get()}) {
        x->say("/join side");
        joined_with_history(*x, x == a.get() ? "alice" : "bob", "side");
    }
    // Joiners on both instances, joining while both senders talk.
    std::vector<std::unique_ptr<client>> joiners;
    std::vector<std::string> names;
    for (int i = 0; i < 4; ++i) {
        names.push_back("j" + std::to_string(i));
        joiners.push_back(login_with_history(cl.port(static_cast<std::size_t>(i % 2)), names.back(),
                                             history));
    }
    constexpr int per_sender = 100;
    for (int i = 0; i < per_sender; ++i) {
        a->say("alice " + std::to_string(i));
        b->say("bob " + std::to_string(i));
        if (i % 20 == 10)
            joiners[static_cast<std::size_t>(i / 20) % joiners.size()]->say("/join side");
    }
    // Each joiner, for each sender: a gapless run of its messages up to its
    // last (the history's part, then the live part), each once; a run that
    // does not start at the first message (or is empty) means the older
    // ones were pushed out of the history, which must then be full.
    for (std::size_t k = 0; k < joiners.size(); ++k) {
        auto& j = *joiners[k];
        std::map<std::string, std::vector<int>> got;
        std::size_t in_history = 0;
        bool joined = false;
        while (auto e = j.next(300ms)) { // until all is delivered
            if (auto* jn = std::get_if<pc::join_event>(&*e); jn && jn->nick == names[k])
                joined = joined || jn->room == "side";
            auto* m = std::get_if<pc::message_event>(&*e);
            if (!m || m->room != "side")
                continue;
            in_history += joined ? 0 : 1;
            const auto space = m->text.find(' ');
            REQUIRE(space != std::string::npos);
            got[m->from].push_back(std::stoi(m->text.substr(space + 1)));
        }
        CHECK(joined);
        CHECK(in_history <= 10);
        for (const char* from : {"alice", "bob"}) {
            const auto& seq = got[from];
            bool gapless = true;
            for (std::size_t i = 1; i < seq.size(); ++i)
                gapless = gapless && seq[i] == seq[i - 1] + 1;
            CHECK_MESSAGE(gapless, names[k] << " got " << from << "'s messages with a gap or twice");
            if (!seq.empty())
                CHECK_MESSAGE(seq.back() == per_sender - 1, names[k] << " missed " << from << "'s last");
            if (seq.empty() || seq.front() != 0)
                CHECK(in_history == 10);
            MESSAGE(names[k] << ": " << std::string(from) << "'s from "
                             << (seq.empty() ? std::string("none") : std::to_string(seq.front()))
                             << ", " << in_history << " in the history");
        }
    }
}

TEST_CASE("redis backplane: shared history: with Redis frozen or down, a join completes promptly") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "10", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    auto b = login_with_history(cl.port(1), "bob", history);
    a->say("/join side");
    joined_with_history(*a, "alice", "side");
    a->say("said before");
    a->expect<pc::message_event>();
    through_redis(*a, "alice", "side");
    // And delivered to bob's instance (which Redis may do after the store
    // returned: frozen in between, bob would get it live): a later message
    // from alice in the lobby reaches bob there.
    a->say("/join lobby");
    a->wait_for<pc::members_event>([](const auto& m) { return m.room == "lobby"; });
    a->say("sync");
    a->wait_for<pc::message_event>([](const auto& m) { return m.text == "sync"; });
    b->wait_for<pc::message_event>([](const auto& m) { return m.text == "sync"; });

    // Frozen: the read times out (500 ms), the join completes without it.
    REQUIRE(::kill(cl.redis.pid(), SIGSTOP) == 0);
    auto started = clock::now();
    b->say("/join side");
    CHECK(joined_with_history(*b, "bob", "side").empty());
    auto took = clock::now() - started;
    REQUIRE(::kill(cl.redis.pid(), SIGCONT) == 0);
    MESSAGE("join with Redis frozen took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < 1500ms);
    CHECK(cluster::has(*cl.servers[1], "without its shared history"));
    a->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "bob"; });
    b->say("live");
    CHECK(a->wait_for<pc::message_event>([](const auto&) { return true; }).text == "live");
    CHECK(b->wait_for<pc::message_event>([](const auto&) { return true; }).text == "live");

    // Down: the instance knows, the join completes at once.
    cl.redis.stop();
    REQUIRE(eventually([&] { return cluster::has(*cl.servers[1], "serving local members only"); }));
    started = clock::now();
    b->say("/join third");
    CHECK(joined_with_history(*b, "bob", "third").empty());
    took = clock::now() - started;
    MESSAGE("join with Redis down took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
    CHECK(took < 400ms);
    b->say("local");
    CHECK(b->expect<pc::message_event>().text == "local");
    CHECK(b->silent(100ms));
}

TEST_CASE("redis backplane: shared history: every member on every server sees the same seq, "
          "gapless") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "100", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    auto b = login_with_history(cl.port(1), "bob", history);
    auto c = login_with_history(cl.port(0), "carol", history);
    a->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "carol"; });
    b->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "carol"; });
    constexpr int per_sender = 20;
    for (int i = 0; i < per_sender; ++i)
        for (auto* x : {a.get(), b.get(), c.get()})
            x->say("m" + std::to_string(i));
    std::vector<std::vector<pc::message_event>> seen;
    for (auto* x : {a.get(), b.get(), c.get()}) {
        std::vector<pc::message_event> got;
        while (got.size() < 3 * per_sender) {
            auto e = x->next();
            REQUIRE_MESSAGE(e.has_value(), "received only " << got.size() << " messages");
            if (auto* m = std::get_if<pc::message_event>(&*e))
                got.push_back(*m);
        }
        CHECK(x->silent(100ms)); // nothing twice
        for (std::size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].seq == i + 1);
            CHECK(got[i].epoch == got[0].epoch);
        }
        seen.push_back(std::move(got));
    }
    CHECK(seen[0][0].epoch.size() == 14);
    for (std::size_t k = 1; k < seen.size(); ++k)
        for (std::size_t i = 0; i < seen[0].size(); ++i) {
            CHECK(seen[k][i].from == seen[0][i].from);
            CHECK(seen[k][i].text == seen[0][i].text);
            CHECK(seen[k][i].epoch == seen[0][i].epoch);
        }

    // A server restarted (or a new one) continues the room where it was:
    // same epoch, next seq; its joiner's history carries the same numbers.
    REQUIRE(cl.servers[1]->terminate(SIGTERM, 5s) == 0);
    cl.add();
    auto d = std::make_unique<client>(cl.port(2));
    d->welcome_and_send("dave");
    CHECK(d->expect<pc::nick_accepted_event>().nick == "dave");
    history = joined_with_history(*d, "dave", "lobby");
    REQUIRE(history.size() == 3 * per_sender);
    CHECK(history.back().seq == 3 * per_sender);
    CHECK(history.back().epoch == seen[0][0].epoch);
    d->say("/list");
    const auto m = d->wait_for<pc::members_event>([](const auto&) { return true; });
    CHECK(m.seq == 3 * per_sender);
    CHECK(m.epoch == seen[0][0].epoch);
    d->say("after");
    for (auto* x : {a.get(), d.get()}) {
        const auto after = x->wait_for<pc::message_event>([](const auto&) { return true; });
        CHECK(after.text == "after");
        CHECK(after.seq == 3 * per_sender + 1);
        CHECK(after.epoch == seen[0][0].epoch);
    }
}

// Resume on another server (docs/PROTOCOL.md §8, docs/SCALING.md): a client
// reset on server 0 mid-stream resumes on server 1 with its token.
TEST_CASE("redis backplane: shared history: a client reset on one server resumes on the other") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    cluster cl(redis_server, 2, {"--redis-history", "100", "--flood-rate", "0"});
    std::vector<pc::message_event> history;
    auto a = login_with_history(cl.port(0), "alice", history);
    auto b = login_with_history(cl.port(1), "bob", history);
    auto c = login_with_history(cl.port(0), "carol", history);
    for (auto* x : {a.get(), b.get()})
        x->wait_for<pc::join_event>([](const pc::join_event& j) { return j.nick == "carol"; });
    const std::string token = a->seen_of<pc::nick_accepted_event>().at(0).resume_token;
    REQUIRE(token.size() > 40);

    // bob talks; alice reads some of it, then her connection is reset with
    // the rest in flight, and bob keeps talking.
    for (int i = 0; i < 20; ++i)
        b->say("n" + std::to_string(i));
    std::uint64_t last = 0;
    std::string epoch;
    for (int i = 0; i < 5; ++i) {
        const auto m = a->expect<pc::message_event>();
        CHECK(m.text == "n" + std::to_string(i));
        last = m.seq;
        epoch = m.epoch;
    }
    a->conn().reset();
    REQUIRE(eventually([&] { return cluster::has(*cl.servers[0], "away: alice"); }));
    for (int i = 20; i < 30; ++i)
        b->say("n" + std::to_string(i));
    c->wait_for<pc::message_event>([](const auto& m) { return m.text == "n29"; });

    // On the other server: the missed messages once, in order, then resumed.
    auto a2 = std::make_unique<client>(cl.port(1));
    a2->expect<pc::welcome_event>();
    a2->say("/resume " + token + " lobby=" + std::to_string(last) + "@" + epoch);
    const auto accepted = a2->expect<pc::nick_accepted_event>();
    CHECK(accepted.nick == "alice");
    CHECK(accepted.resume_token != token);
    std::vector<pc::message_event> missed;
    for (;;) {
        auto e = a2->next();
        REQUIRE_MESSAGE(e.has_value(), "no resumed event");
        if (auto* m = std::get_if<pc::message_event>(&*e))
            missed.push_back(*m);
        else if (auto* r = std::get_if<pc::resumed_event>(&*e)) {
            CHECK(r->recovered);
            REQUIRE(r->rooms.size() == 1);
            CHECK(r->rooms[0].from == last);
            CHECK(r->rooms[0].seq == last + 25);
            CHECK(r->rooms[0].epoch == epoch);
            break;
        }
    }
    REQUIRE(missed.size() == 25);
    for (std::size_t i = 0; i < missed.size(); ++i) {
        CHECK(missed[i].seq == last + 1 + i);
        CHECK(missed[i].epoch == epoch);
        CHECK(missed[i].text == "n" + std::to_string(5 + i));
    }
    CHECK(ids_increase(missed));
    CHECK(a2->silent(100ms)); // nothing twice
    // Nobody saw alice leave or join; server 0 ended her session quietly.
    b->say("after");
    for (auto* x : {a2.get(), b.get(), c.get()}) {
        const auto m = x->wait_for<pc::message_event>([](const auto& m) { return m.text == "after"; });
        CHECK(m.seq == last + 26);
    }
    for (auto* x : {b.get(), c.get()}) {
        CHECK(x->seen_of<pc::leave_event>().empty());
        CHECK(x->seen_of<pc::join_event>().size() <= 3);
    }
    CHECK(eventually([&] { return cluster::has(*cl.servers[0], "resumed on instance"); }));
    // She is one member, on server 1 now: /list on both, and her nickname
    // is still taken everywhere.
    for (auto* x : {a2.get(), c.get()}) {
        x->say("/list");
        CHECK(x->wait_for<pc::members_event>([](const auto&) { return true; }).count == 3);
    }
    {
        client e(cl.port(0));
        e.welcome_and_send("alice");
        e.expect_error("nickname_taken");
    }

    // The token is single use, on either server.
    for (std::size_t i : {0, 1}) {
        client m(cl.port(i));
        m.expect<pc::welcome_event>();
        m.say("/resume " + token + " lobby=1");
        m.expect_error("resume_failed");
        m.say("mallory" + std::to_string(i));
        CHECK(m.expect<pc::nick_accepted_event>().nick == "mallory" + std::to_string(i));
    }
    // And the new token works back on server 0, even sent before server 1
    // has parked the session (the connection is reset just after it): the
    // take that finds nothing in Redis asks once more, 250 ms later
    // (take_retry), by when server 1 has written it.
    client a3(cl.port(0));
    a3.expect<pc::welcome_event>();
    a3.say("/resume " + accepted.resume_token + " lobby=" + std::to_string(last + 26) + "@" + epoch);
    a2->conn().reset();
    CHECK(a3.expect<pc::nick_accepted_event>().nick == "alice");
    CHECK(a3.wait_for<pc::resumed_event>([](const auto&) { return true; }).recovered);
}

#else

TEST_CASE("redis backplane: cross-instance tests") {
    parley::test::skip("built without hiredis, so the Redis backplane is off "
                       "(install libhiredis-dev and reconfigure)");
}

#endif

TEST_CASE("redis backplane: scripts run by EVALSHA, and by EVAL again after a SCRIPT FLUSH") {
    const std::string redis_server = find_redis_server();
    if (redis_server.empty())
        return skip_without_redis();
    if (std::system("command -v redis-cli >/dev/null 2>&1") != 0) {
        parley::test::skip("redis-cli not installed (Debian package redis-tools)");
        return;
    }
    cluster cl(redis_server, 2, {"--redis-history", "10"});
    const std::string cli = "redis-cli -p " + std::to_string(cl.redis.port()) + " ";
    auto a = join(cl.port(0), "alice", {});
    auto b = join(cl.port(1), "bob", {a.get()});
    a->say("before");
    CHECK(b->wait_for<pc::message_event>([](const auto& m) { return m.text == "before"; }).seq == 1);
    // Loaded at connect, named by their SHA-1 from then on: no EVAL yet.
    CHECK(std::system((cli + "INFO commandstats | grep -q '^cmdstat_evalsha:'").c_str()) == 0);
    CHECK(std::system((cli + "INFO commandstats | grep -q '^cmdstat_eval:'").c_str()) != 0);
    CHECK(std::system((cli + "SCRIPT FLUSH >/dev/null").c_str()) == 0);
    // Every script is gone: the next ones are answered NOSCRIPT and sent again in full.
    for (int i = 0; i < 5; ++i)
        a->say("after " + std::to_string(i));
    // Each once, seqs 2..6 (in the order they were said, but for a retry that
    // a later command overtook: see run_script).
    std::set<std::uint64_t> seqs;
    std::set<std::string> texts;
    for (int i = 0; i < 5; ++i) {
        const auto m = b->wait_for<pc::message_event>([](const auto& m) { return m.text.rfind("after", 0) == 0; });
        seqs.insert(m.seq);
        texts.insert(m.text);
    }
    CHECK(seqs == std::set<std::uint64_t>{2, 3, 4, 5, 6});
    CHECK(texts.size() == 5);
    CHECK(std::system((cli + "INFO commandstats | grep -q '^cmdstat_eval:'").c_str()) == 0);
    // And the script cache holds them again.
    CHECK(std::system((cli + "SCRIPT FLUSH >/dev/null").c_str()) == 0);
    b->say("still");
    CHECK(a->wait_for<pc::message_event>([](const auto& m) { return m.text == "still"; }).seq == 7);
}
