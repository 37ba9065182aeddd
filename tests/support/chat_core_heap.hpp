// Heap bytes the chat core holds per named idle client, for the tests that
// bound it: `n` clients connect and take a nickname (their actions dropped
// as they come), measured by glibc's count of allocated bytes (chunk
// overhead included). 0 where that count is not available (another C
// library, or a sanitizer's allocator): the caller skips.
#ifndef PARLEY_TESTS_SUPPORT_CHAT_CORE_HEAP_HPP
#define PARLEY_TESTS_SUPPORT_CHAT_CORE_HEAP_HPP

#include <parley/chat/core/core.hpp>

#include <doctest/doctest.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>

namespace parley::test {

inline double core_bytes_per_client(chat::core::options o, std::size_t n) {
#if defined(__GLIBC__)
    using namespace std::chrono_literals;
    namespace core = chat::core;
    o.max_clients = n + 2;
    o.max_clients_per_address = n + 2;
    core::chat chat(std::move(o));
    core::moment now{std::chrono::steady_clock::time_point(1h),
                     std::chrono::system_clock::time_point(1000h)};
    core::actions out;
    out.reserve(1024);
    const auto login = [&](core::conn_id id) {
        chat.connect(id, {"127.0.0.1:" + std::to_string(10000 + id), "127.0.0.1", false}, now, out);
        chat.input(id, "u" + std::to_string(id), now, out);
        out.clear();
    };
    login(1); // the lobby exists
    const auto before = ::mallinfo2().uordblks;
    for (core::conn_id id = 2; id < n + 2; ++id)
        login(id);
    const auto after = ::mallinfo2().uordblks;
    REQUIRE(chat.clients().size() == n + 1);
    return after > before ? static_cast<double>(after - before) / static_cast<double>(n) : 0;
#else
    (void)o;
    (void)n;
    return 0;
#endif
}

} // namespace parley::test

#endif
