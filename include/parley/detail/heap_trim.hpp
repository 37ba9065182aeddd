// parley internals: giving freed heap back to the system once a burst is
// over (glibc), and when to.
//
// glibc returns memory to the system by itself only from the top of its
// heap. After a burst (a chat server's join storm: every join announced to
// the whole lobby, a member list for every joiner, outbound queues grown
// while their clients read) the blocks it freed lie between blocks still in
// use, one connection's next to another's, and stay resident: 1.3 to 3.4
// KiB per idle client at 10,000 in docs/BENCHMARKS.md. malloc_trim(0)
// gives back every whole free page inside the heap (madvise), which the
// allocator refaults on its next use of that page. It walks the free
// chunks, so it is called rarely: once per quiet period after activity
// (heap_trimmer), never on a hot path.
#ifndef PARLEY_DETAIL_HEAP_TRIM_HPP
#define PARLEY_DETAIL_HEAP_TRIM_HPP

#include <cstddef>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace parley::detail {

/// What the C library's allocator holds, in bytes: in use, and free (kept
/// for reuse, resident or not). Both 0 where it cannot tell.
struct heap_figures {
    std::size_t in_use = 0;
    std::size_t free = 0;
};

inline heap_figures heap_now() noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const auto m = ::mallinfo2();
    return {m.uordblks, m.fordblks};
#else
    return {};
#endif
}

/// Gives the whole free pages of the heap back to the system (glibc's
/// malloc_trim(0)). False where that does not exist, or nothing was given
/// back.
inline bool heap_release() noexcept {
#if defined(__GLIBC__)
    return ::malloc_trim(0) != 0;
#else
    return false;
#endif
}

/// When a server gives freed heap back: called once per period (a sweep)
/// with whether that period was busy (connections came or went, messages
/// flowed), it says "now" once per quiet period that follows a busy one,
/// and only if the heap holds at least `min_free` free bytes and an eighth
/// of what is in use (a trim for less is not worth its walk), and at least
/// `min_gap` periods after the last trim. A server under steady load is
/// never trimmed: its free heap is reused. The walk holds the allocator's
/// lock and the caller's thread: 27-28 ms for a 156 MB heap of 200,000
/// free chunks here (a 10,000-client chat after its join storm holds about
/// a sixth of that), so a load that comes and goes does not pay it more
/// than once per `min_gap` periods.
class heap_trimmer {
public:
    explicit heap_trimmer(std::size_t min_free = std::size_t(1) << 20,
                          unsigned min_gap = 5) noexcept
        : min_free_(min_free), min_gap_(min_gap), since_trim_(min_gap) {}

    /// `figures` is called only when the answer depends on it (after a
    /// busy period, in the first quiet one).
    template <class Figures>
    bool due(bool busy, Figures&& figures) {
        if (since_trim_ < min_gap_)
            ++since_trim_;
        if (busy) {
            armed_ = true;
            return false;
        }
        if (!armed_ || since_trim_ < min_gap_)
            return false; // a quiet period that starts too soon after a trim keeps it armed
        armed_ = false; // once per quiet period
        const heap_figures h = figures();
        if (h.free < min_free_ || h.free < h.in_use / 8)
            return false;
        since_trim_ = 0;
        return true;
    }

private:
    std::size_t min_free_;
    unsigned min_gap_;
    unsigned since_trim_; // periods since the last trim, up to min_gap_
    bool armed_ = true;   // the start counts as activity
};

} // namespace parley::detail

#endif
