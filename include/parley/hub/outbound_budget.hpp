// parley: a bound on the bytes queued for writing across many sessions, on
// top of each session's own queue limits.
#ifndef PARLEY_HUB_OUTBOUND_BUDGET_HPP
#define PARLEY_HUB_OUTBOUND_BUDGET_HPP

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace parley {

/// Limits of an outbound_budget.
struct outbound_budget_limits {
    /// Bytes queued across every session sharing the budget, at most (see
    /// the bound below).
    std::size_t max_bytes = 64 * 1024 * 1024;
    /// Bytes each session may always queue, budget or not. A session that
    /// keeps up holds little in its queue, so when the budget runs out it
    /// is the sessions holding more than this, the slow readers, that are
    /// refused, never the healthy ones.
    std::size_t reserve_bytes = 64 * 1024;
};

/// Bytes queued for writing, shared by sessions (session_options::budget).
///
/// Every message queued is charged to the budget and every byte written,
/// dropped or cleared is given back. A message that would take the total
/// past max_bytes is refused for a session whose queue would then hold more
/// than reserve_bytes; that session is treated as overflowing its own queue
/// (overflow_policy::disconnect: disconnected as a slow consumer;
/// drop_oldest: the message is not queued for it). Sessions under their
/// reserve are never refused, so the total stays below
/// `max_bytes + sessions * reserve_bytes` (plus, with several threads, one
/// message per thread racing past the check).
///
/// Thread-safe: one relaxed atomic add per queued message and one per
/// completed write.
class outbound_budget {
public:
    explicit outbound_budget(outbound_budget_limits limits = {}) noexcept : limits_(limits) {}
    outbound_budget(const outbound_budget&) = delete;
    outbound_budget& operator=(const outbound_budget&) = delete;

    const outbound_budget_limits& limits() const noexcept { return limits_; }

    /// Whether a session holding `queued` bytes may queue `size` more.
    /// Counts a refusal when not.
    bool admit(std::size_t queued, std::size_t size) noexcept {
        if (queued + size <= limits_.reserve_bytes ||
            used_.load(std::memory_order_relaxed) + size <= limits_.max_bytes)
            return true;
        refusals_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }

    /// Adds (queued) or removes (written, dropped) bytes.
    void charge(std::size_t bytes) noexcept { used_.fetch_add(bytes, std::memory_order_relaxed); }
    void release(std::size_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }

    /// Bytes queued right now, across the sessions.
    std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    /// The largest total seen (a high-water mark, for tests and reports).
    std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
    /// Messages refused because the budget was exhausted.
    std::uint64_t refusals() const noexcept { return refusals_.load(std::memory_order_relaxed); }

    /// Records the current total as a high-water mark if it is one. Called
    /// by sessions after queuing; kept apart from charge() so that a caller
    /// that does not need the mark pays nothing for it.
    void note_peak() noexcept {
        const std::size_t now = used_.load(std::memory_order_relaxed);
        std::size_t seen = peak_.load(std::memory_order_relaxed);
        while (now > seen && !peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
        }
    }

private:
    outbound_budget_limits limits_;
    std::atomic<std::size_t> used_{0};
    std::atomic<std::size_t> peak_{0};
    std::atomic<std::uint64_t> refusals_{0};
};

} // namespace parley

#endif
