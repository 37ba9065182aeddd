// parley internals: the read buffer behind framed_stream, and the
// per-thread pool that lets an idle connection hold no buffer at all.
#ifndef PARLEY_DETAIL_READ_BUFFER_HPP
#define PARLEY_DETAIL_READ_BUFFER_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <utility>

namespace parley::detail {

// Blocks of one size, recycled per thread. Thousands of idle connections
// then cost no read buffer each, and a busy one takes and returns the same
// block without touching malloc.
class buffer_pool {
public:
    static constexpr std::size_t max_cached = 16;

    static std::byte* acquire(std::size_t size) {
        if (destroyed())
            return new std::byte[size];
        auto& pool = local();
        if (size == pool.block_size_ && pool.count_ > 0)
            return pool.blocks_[--pool.count_];
        return new std::byte[size];
    }

    static void release(std::byte* block, std::size_t size) noexcept {
        // A buffer freed during thread exit, after this thread's pool is
        // gone (a static socket destroyed at exit), goes to the heap.
        if (destroyed()) {
            delete[] block;
            return;
        }
        auto& pool = local();
        if (pool.count_ == 0 && pool.block_size_ != size)
            pool.block_size_ = size; // follow the size in use
        if (size == pool.block_size_ && pool.count_ < max_cached) {
            pool.blocks_[pool.count_++] = block;
            return;
        }
        delete[] block;
    }

    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;

private:
    buffer_pool() = default;
    ~buffer_pool() {
        for (std::size_t i = 0; i < count_; ++i)
            delete[] blocks_[i];
        destroyed() = true;
    }

    // Trivially destructible, so it outlives the pool within the thread.
    static bool& destroyed() noexcept {
        static thread_local bool flag = false;
        return flag;
    }

    static buffer_pool& local() noexcept {
        static thread_local buffer_pool pool;
        return pool;
    }

    std::array<std::byte*, max_cached> blocks_{};
    std::size_t count_ = 0;
    std::size_t block_size_ = 0;
};

// A contiguous buffer: [begin, end) holds received bytes not yet consumed,
// [end, capacity) is free space for the next read. Blocks of `chunk` bytes
// come from the pool; a larger frame grows the buffer geometrically, only
// as its bytes arrive, and is given back once consumed.
class read_buffer {
public:
    explicit read_buffer(std::size_t chunk) noexcept : chunk_(chunk) {}
    read_buffer(read_buffer&& other) noexcept { *this = std::move(other); }
    read_buffer& operator=(read_buffer&& other) noexcept {
        if (this != &other) {
            free();
            data_ = std::exchange(other.data_, nullptr);
            capacity_ = std::exchange(other.capacity_, 0);
            begin_ = std::exchange(other.begin_, 0);
            end_ = std::exchange(other.end_, 0);
            chunk_ = other.chunk_;
        }
        return *this;
    }
    ~read_buffer() { free(); }

    std::size_t chunk() const noexcept { return chunk_; }
    void chunk(std::size_t size) noexcept {
        if (data_ == nullptr)
            chunk_ = size;
    }

    std::span<const std::byte> data() const noexcept { return {data_ + begin_, end_ - begin_}; }
    std::span<std::byte> data() noexcept { return {data_ + begin_, end_ - begin_}; }
    std::size_t size() const noexcept { return end_ - begin_; }
    bool empty() const noexcept { return begin_ == end_; }
    bool allocated() const noexcept { return data_ != nullptr; }
    std::size_t capacity() const noexcept { return capacity_; }

    void consume(std::size_t n) noexcept {
        begin_ += n;
        if (begin_ == end_)
            begin_ = end_ = 0;
    }

    // Free space for the next read, large enough that the frame being
    // assembled (`frame_size` bytes on the wire, 0 if not yet known) can
    // make progress.
    std::span<std::byte> prepare(std::size_t frame_size) {
        if (data_ == nullptr) {
            capacity_ = chunk_;
            data_ = buffer_pool::acquire(capacity_);
        }
        const std::size_t held = size();
        const std::size_t wanted = std::max(frame_size, held + 1);
        if (wanted > capacity_) {
            // Grow by doubling, bounded by the frame itself: memory follows
            // the bytes received, not the size a peer announced. Always by
            // at least a byte, even with a chunk size of 0: an empty buffer
            // would make the next read return 0 bytes, which a socket
            // reports as end of file.
            reallocate(std::min(std::max({capacity_ * 2, held + chunk_, held + 1}), wanted));
        } else if (begin_ != 0 && (begin_ + wanted > capacity_ || capacity_ - end_ < chunk_ / 4)) {
            std::memmove(data_, data_ + begin_, held);
            begin_ = 0;
            end_ = held;
        }
        return {data_ + end_, capacity_ - end_};
    }

    void commit(std::size_t n) noexcept { end_ += n; }

    // Gives the memory back when nothing is held: pooled blocks to the
    // pool, grown ones to the heap.
    void release_if_empty() noexcept {
        if (empty())
            free();
    }

    // Drops an oversized buffer once the large frame is consumed.
    void shrink_if_empty() noexcept {
        if (empty() && capacity_ > chunk_)
            free();
    }

private:
    void reallocate(std::size_t capacity) {
        auto* block = capacity == chunk_ ? buffer_pool::acquire(capacity) : new std::byte[capacity];
        const std::size_t held = size();
        std::memcpy(block, data_ + begin_, held);
        free();
        data_ = block;
        capacity_ = capacity;
        begin_ = 0;
        end_ = held;
    }

    void free() noexcept {
        if (data_ == nullptr)
            return;
        if (capacity_ == chunk_)
            buffer_pool::release(data_, capacity_);
        else
            delete[] data_;
        data_ = nullptr;
        capacity_ = begin_ = end_ = 0;
    }

    std::byte* data_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t chunk_ = 0;
};

} // namespace parley::detail

#endif
