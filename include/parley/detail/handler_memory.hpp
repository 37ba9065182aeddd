// parley internals: recycled memory for the small handlers a session posts
// on every flush, so that steady-state delivery allocates nothing.
//
// Asio keeps two recycled blocks per thread for handler memory; a publish
// to a room of N members posts N flushes at once, and the rest went to
// malloc. This pool keeps up to `max_cached` blocks per thread instead.
#ifndef PARLEY_DETAIL_HANDLER_MEMORY_HPP
#define PARLEY_DETAIL_HANDLER_MEMORY_HPP

#include <parley/detail/io_executor.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <array>
#include <cstddef>
#include <new>

namespace parley::detail {

class handler_block_pool {
public:
    static constexpr std::size_t block_size = 256;
    static constexpr std::size_t max_cached = 1024; // 256 KiB per thread at most

    static void* acquire(std::size_t size) {
        if (size <= block_size && !destroyed()) {
            auto& pool = local();
            if (pool.count_ > 0)
                return pool.blocks_[--pool.count_];
            return ::operator new(block_size);
        }
        return ::operator new(size);
    }

    // Sized deallocation when the compiler has it (clang 14 does not by
    // default: -fsized-deallocation); the size is only a hint.
    static void free_block(void* block, [[maybe_unused]] std::size_t size) noexcept {
#if defined(__cpp_sized_deallocation)
        ::operator delete(block, size);
#else
        ::operator delete(block);
#endif
    }

    static void release(void* block, std::size_t size) noexcept {
        if (size <= block_size && !destroyed()) {
            auto& pool = local();
            if (pool.count_ < max_cached) {
                pool.blocks_[pool.count_++] = block;
                return;
            }
            free_block(block, block_size);
            return;
        }
        free_block(block, size <= block_size ? block_size : size);
    }

    handler_block_pool(const handler_block_pool&) = delete;
    handler_block_pool& operator=(const handler_block_pool&) = delete;

private:
    handler_block_pool() = default;
    ~handler_block_pool() {
        for (std::size_t i = 0; i < count_; ++i)
            free_block(blocks_[i], block_size);
        destroyed() = true;
    }

    // Trivially destructible, so it outlives the pool within the thread.
    static bool& destroyed() noexcept {
        static thread_local bool flag = false;
        return flag;
    }

    static handler_block_pool& local() noexcept {
        static thread_local handler_block_pool pool;
        return pool;
    }

    std::array<void*, max_cached> blocks_{};
    std::size_t count_ = 0;
};

// A standard allocator over the pool, to bind to a handler with
// asio::bind_allocator.
template <class T>
struct handler_allocator {
    using value_type = T;

    handler_allocator() noexcept = default;
    template <class U>
    handler_allocator(const handler_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
            return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignof(T))));
        else
            return static_cast<T*>(handler_block_pool::acquire(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if constexpr (alignof(T) > __STDCPP_DEFAULT_NEW_ALIGNMENT__)
            ::operator delete(p, std::align_val_t(alignof(T)));
        else
            handler_block_pool::release(p, n * sizeof(T));
    }

    template <class U>
    bool operator==(const handler_allocator<U>&) const noexcept {
        return true;
    }
};

} // namespace parley::detail

#endif
