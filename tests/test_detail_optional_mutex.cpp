// detail::optional_mutex: a lock when enabled, nothing when not, in the
// space of a pointer (every session holds one).
#include <parley/detail/optional_mutex.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

TEST_CASE("detail::optional_mutex: eight bytes, not std::mutex's size") {
    static_assert(sizeof(parley::detail::optional_mutex) <= 8);
    CHECK(sizeof(parley::detail::optional_mutex) < sizeof(std::mutex));
}

TEST_CASE("detail::optional_mutex: enabled, it excludes other threads (contended)") {
    parley::detail::optional_mutex mutex;
    REQUIRE(mutex.enabled());
    long counter = 0; // not atomic: the lock alone protects it
    constexpr int threads = 4, rounds = 200000;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (int i = 0; i < rounds; ++i) {
                parley::detail::optional_lock lock(mutex);
                counter = counter + 1;
                if (i % 1024 == 0)
                    std::this_thread::yield(); // holding it: others must wait
            }
        });
    for (auto& t : pool)
        t.join();
    CHECK(counter == long{threads} * rounds);
}

TEST_CASE("detail::optional_mutex: try_lock fails while held, and a waiter gets it on unlock") {
    parley::detail::optional_mutex mutex;
    mutex.lock();
    CHECK_FALSE(mutex.try_lock());
    bool got = false;
    std::thread waiter([&] {
        parley::detail::optional_lock lock(mutex);
        got = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20)); // it waits
    mutex.unlock();
    waiter.join();
    CHECK(got);
    CHECK(mutex.try_lock());
    mutex.unlock();
}

TEST_CASE("detail::optional_mutex: disabled, it never blocks") {
    parley::detail::optional_mutex mutex(false);
    CHECK_FALSE(mutex.enabled());
    mutex.lock();
    mutex.lock(); // would deadlock if it locked
    CHECK(mutex.try_lock());
    mutex.unlock();
    mutex.unlock();
}
