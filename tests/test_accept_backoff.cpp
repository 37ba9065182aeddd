// accept_backoff: pauses that grow while the process is out of resources.
#include <parley/net/accept_backoff.hpp>

#include <doctest/doctest.h>

#include <cerrno>

using namespace std::chrono_literals;

TEST_CASE("accept_backoff: out of descriptors, pauses double from 100 ms to 1 s") {
    parley::accept_backoff backoff;
    const std::error_code emfile(EMFILE, std::system_category());
    CHECK(parley::accept_backoff::is_resource_exhaustion(emfile));
    CHECK(backoff.failed(emfile) == 100ms);
    CHECK(backoff.failed(emfile) == 200ms);
    CHECK(backoff.failed(std::error_code(ENFILE, std::system_category())) == 400ms);
    CHECK(backoff.failed(std::error_code(ENOBUFS, std::system_category())) == 800ms);
    CHECK(backoff.failed(std::error_code(ENOMEM, std::system_category())) == 1000ms);
    CHECK(backoff.failed(emfile) == 1000ms);
    CHECK(backoff.pauses() == 6);
    backoff.succeeded();
    CHECK(backoff.failed(emfile) == 100ms);
}

TEST_CASE("accept_backoff: a connection reset before accept needs no pause, other errors a short one") {
    parley::accept_backoff backoff(50ms, 400ms);
    CHECK(backoff.failed(asio::error::connection_aborted) == 0ms);
    CHECK(backoff.pauses() == 0);
    CHECK(backoff.failed(asio::error::access_denied) == 50ms);
    CHECK(backoff.failed(asio::error::access_denied) == 50ms); // never spins, never grows
    CHECK(!parley::accept_backoff::is_resource_exhaustion(asio::error::access_denied));
}
