// detail::plain_io_executor: an io_context's own executor is recognised,
// bare or held by any_io_executor; a strand of it never is (running a
// handler past its strand would run a session on two threads at once).
#include <parley/detail/io_executor.hpp>

#include <doctest/doctest.h>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <asio/system_executor.hpp>

using parley::detail::plain_io_executor;

TEST_CASE("detail::plain_io_executor: the io_context's executor, bare or held") {
    asio::io_context io;
    const auto bare = io.get_executor();
    CHECK(plain_io_executor(bare) == &bare);

    const asio::any_io_executor held = io.get_executor();
    const auto* found = plain_io_executor(held);
    REQUIRE(found != nullptr);
    CHECK(*found == io.get_executor());
}

TEST_CASE("detail::plain_io_executor: a strand is not the io_context's executor, held or not") {
    asio::io_context io;
    const auto strand = asio::make_strand(io);
    CHECK(plain_io_executor(strand) == nullptr);
    // any_executor::target<T>() alone would hand back the strand's inner
    // executor here, as if it were the io_context's.
    const asio::any_io_executor held = strand;
    CHECK(plain_io_executor(held) == nullptr);
}

TEST_CASE("detail::held_executor: the type held, and only that type") {
    asio::io_context io;
    using strand_type = asio::strand<asio::io_context::executor_type>;
    const asio::any_io_executor held = asio::make_strand(io);
    const auto* strand = parley::detail::held_executor<strand_type>(held);
    REQUIRE(strand != nullptr);
    CHECK(&strand->get_inner_executor().context() == &io);
    CHECK(parley::detail::held_executor<asio::io_context::executor_type>(held) == nullptr);
    const asio::any_io_executor plain = io.get_executor();
    CHECK(parley::detail::held_executor<strand_type>(plain) == nullptr);
}

TEST_CASE("detail::plain_io_executor: other executors, and an empty one") {
    CHECK(plain_io_executor(asio::system_executor()) == nullptr);
    const asio::any_io_executor empty;
    CHECK(plain_io_executor(empty) == nullptr);
}
