// outbound_budget: a bound on bytes queued across sessions.
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/session.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <doctest/doctest.h>

TEST_CASE("outbound_budget: refuses only sessions over their reserve once the total is reached") {
    parley::outbound_budget budget({.max_bytes = 1000, .reserve_bytes = 100});
    CHECK(budget.admit(0, 600));
    budget.charge(600);
    CHECK(budget.admit(0, 400)); // exactly the limit
    budget.charge(400);
    CHECK(!budget.admit(200, 10)); // over the total, and over its reserve
    CHECK(budget.admit(50, 50));   // within its reserve: always
    CHECK(budget.refusals() == 1);
    budget.note_peak();
    budget.release(500);
    CHECK(budget.used() == 500);
    CHECK(budget.peak() == 1000);
    CHECK(budget.admit(200, 10));
}

TEST_CASE("outbound_budget: sessions charge what they queue and give back what they write") {
    asio::io_context ioc;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::address_v4::loopback(), 0});
    asio::ip::tcp::socket client(ioc);
    client.connect(acceptor.local_endpoint());
    auto budget = std::make_shared<parley::outbound_budget>(
        parley::outbound_budget_limits{.max_bytes = 100, .reserve_bytes = 10});
    auto s = std::make_shared<parley::session<asio::ip::tcp::socket>>(
        acceptor.accept(), parley::session_options{.budget = budget});
    const auto m = parley::make_raw_message(std::string(60, 'x'));
    CHECK(s->send(m));
    CHECK(budget->used() == 60);
    CHECK(!s->send(m)); // 120 > 100 and the session holds 60 > 10: a slow consumer
    CHECK(budget->refusals() == 1);
    std::error_code closed_with;
    s->on_close([&](parley::session_base&, std::error_code ec) { closed_with = ec; });
    ioc.run();
    CHECK(closed_with == parley::error::slow_consumer);
    CHECK(budget->used() == 0); // the dropped queue was given back
}
