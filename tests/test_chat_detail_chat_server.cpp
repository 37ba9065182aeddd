// The chat server's I/O layer (parley/chat/detail/chat_server.hpp): how a
// closed connection's reason reads to the core, and resets under churn.
#include <parley/chat/detail/chat_server.hpp>

#include "test_chat_support.hpp"

#include <doctest/doctest.h>

namespace core = parley::chat::core;
namespace pcd = parley::chat::detail;
using namespace parley::test::chat;
using namespace std::chrono_literals;

TEST_CASE("chat server: a reset is an error whichever call meets it; a FIN is a close") {
    CHECK(pcd::departure_of(asio::error::connection_reset) == core::departure::error);
    // After a reset, the call that comes second gets EPIPE.
    CHECK(pcd::departure_of(asio::error::broken_pipe) == core::departure::error);
    CHECK(pcd::departure_of(asio::error::eof) == core::departure::closed);
    CHECK(pcd::departure_of(parley::error::session_closed) == core::departure::closed);
    CHECK(pcd::departure_of(parley::error::slow_consumer) == core::departure::slow_consumer);
    CHECK(pcd::departure_of(parley::error::write_timeout) == core::departure::write_timeout);
}

TEST_CASE("chat server: clients that reset with events unread are announced as leaving with error") {
    auto o = pc::server_options{};
    o.line_port = std::nullopt;
    o.flood.messages_per_second = 0;
    o.max_clients_per_address = 0;
    server_fixture f(o);
    client watcher(f.port());
    watcher.login("watcher");
    constexpr int count = 40;
    for (int i = 0; i < count; ++i) {
        client c(f.port());
        const std::string nick = "r" + std::to_string(i);
        c.login(nick);
        watcher.wait_for<pc::join_event>([&](const auto& j) { return j.nick == nick; });
        for (int k = 0; k < 5; ++k)
            watcher.say("to be unread " + std::to_string(k)); // queued to c, never read
        c.conn().reset();
    }
    // Every event the watcher got is kept (seen_of), those skipped above too.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (watcher.seen_of<pc::leave_event>().size() < count &&
           std::chrono::steady_clock::now() < deadline)
        watcher.next(1s);
    const auto leaves = watcher.seen_of<pc::leave_event>();
    REQUIRE(leaves.size() == count);
    std::string wrong;
    for (const auto& l : leaves)
        if (l.reason != "error")
            wrong += l.nick + ":" + l.reason + " ";
    CHECK_MESSAGE(wrong.empty(), "leaves not announced as error: " << wrong);
}
