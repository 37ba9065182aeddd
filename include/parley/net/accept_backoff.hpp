// parley: how long an accept loop pauses after a failed accept.
#ifndef PARLEY_NET_ACCEPT_BACKOFF_HPP
#define PARLEY_NET_ACCEPT_BACKOFF_HPP

#include <asio/error.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>

namespace parley {

/// The pause policy of an accept loop.
///
/// When the process runs out of file descriptors (EMFILE, ENFILE) or
/// kernel memory (ENOBUFS, ENOMEM), the pending connection stays in the
/// listen queue and the next accept fails at once: retrying immediately
/// spins a core, and giving up stops the server for good. So the loop
/// pauses, 100 ms at first, doubling to at most 1 s while the errors last,
/// and back to no pause after a successful accept. An error that concerns
/// one connection only (it was reset before it was accepted) needs no
/// pause; any other error pauses the minimum, so nothing can spin.
///
/// @code
/// acceptor.async_accept([&](std::error_code ec, tcp::socket s) {
///     if (ec == asio::error::operation_aborted) return;
///     if (!ec) { backoff.succeeded(); serve(std::move(s)); return accept(); }
///     timer.expires_after(backoff.failed(ec));
///     timer.async_wait([&](std::error_code) { accept(); });
/// });
/// @endcode
class accept_backoff {
public:
    explicit accept_backoff(std::chrono::milliseconds first = std::chrono::milliseconds(100),
                            std::chrono::milliseconds longest = std::chrono::seconds(1)) noexcept
        : first_(first), longest_(std::max(first, longest)) {}

    /// True for the errors that mean the process or system is out of
    /// descriptors or memory.
    static bool is_resource_exhaustion(const std::error_code& ec) noexcept {
        // Asio reports errno values in its own category, whose
        // default_error_condition() does not map them to std::errc.
        if (ec.category() != asio::error::get_system_category() &&
            ec.category() != std::system_category() && ec.category() != std::generic_category())
            return false;
        const int v = ec.value();
        return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
    }

    /// True for errors about one connection only, after which the next
    /// accept may be tried at once.
    static bool is_per_connection(const std::error_code& ec) noexcept {
        return ec == asio::error::connection_aborted || ec == asio::error::connection_reset ||
               ec == asio::error::try_again || ec == asio::error::interrupted;
    }

    /// After a failed accept: how long to wait before the next one.
    std::chrono::milliseconds failed(const std::error_code& ec) noexcept {
        if (is_per_connection(ec))
            return std::chrono::milliseconds(0);
        ++pauses_;
        if (!is_resource_exhaustion(ec))
            return first_;
        const auto pause = next_;
        next_ = std::min(next_ * 2, longest_);
        return pause;
    }

    /// After a successful accept: the next failure starts from the first
    /// pause again.
    void succeeded() noexcept { next_ = first_; }

    /// Pauses taken so far.
    std::uint64_t pauses() const noexcept { return pauses_; }

private:
    std::chrono::milliseconds first_, longest_;
    std::chrono::milliseconds next_ = first_;
    std::uint64_t pauses_ = 0;
};

} // namespace parley

#endif
