// parley internals: reading a socket without blocking, whatever its mode.
#ifndef PARLEY_DETAIL_SOCKET_IO_HPP
#define PARLEY_DETAIL_SOCKET_IO_HPP

#include <parley/detail/io_executor.hpp>

#include <asio/buffer.hpp>
#include <asio/associated_allocator.hpp>
#include <asio/associated_executor.hpp>
#include <asio/detail/handler_cont_helpers.hpp>
#include <asio/error.hpp>
#include <asio/execution/execute.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/socket_base.hpp>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <climits>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#define PARLEY_HAS_POSIX_SOCKETS 1
#else
#define PARLEY_HAS_POSIX_SOCKETS 0
#endif

namespace parley::detail {

// A socket we can wait on for readiness and then read with a plain
// non-blocking recv(): Asio's TCP and local stream sockets on POSIX.
template <class T>
concept waitable_socket = bool(PARLEY_HAS_POSIX_SOCKETS) && requires(T& s) {
    typename T::protocol_type;
    { s.native_handle() } -> std::convertible_to<int>;
    s.async_wait(asio::socket_base::wait_read, [](std::error_code) {});
};

// The error the OS left for the calling thread, in the category Asio uses,
// so it compares equal to asio::error::connection_refused and friends.
inline std::error_code last_socket_error() noexcept {
#if defined(_WIN32)
    return std::error_code(::WSAGetLastError(), asio::error::get_system_category());
#else
    return std::error_code(errno, asio::error::get_system_category());
#endif
}

// A non-blocking call that found nothing to do (EAGAIN or EWOULDBLOCK).
// The values first: comparing with asio::error::would_block builds an
// error_code, a call to asio's category function each time, and this runs
// on every read and write.
inline bool would_block(std::error_code ec) noexcept {
    const int value = ec.value();
    if (value != asio::error::would_block && value != asio::error::try_again)
        return false;
    return ec.category() == asio::error::get_system_category();
}

// Clears `ec` without calling std::system_category() when it is clear
// already (the usual case on the I/O path).
inline void clear_error(std::error_code& ec) noexcept {
    if (ec)
        ec.clear();
}

// One recv() that never blocks: asio's own synchronous read would poll
// until data arrives when it meets EAGAIN, and toggling the socket's
// non-blocking mode costs a system call each way.
template <waitable_socket Socket>
std::size_t receive_now(Socket& socket, std::span<std::byte> into, std::error_code& ec) {
#if PARLEY_HAS_POSIX_SOCKETS
    for (;;) {
        const auto n = ::recv(socket.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
        if (n > 0) {
            clear_error(ec);
            return static_cast<std::size_t>(n);
        }
        if (n == 0) {
            ec = asio::error::eof;
            return 0;
        }
        if (errno == EINTR)
            continue;
        ec = last_socket_error();
        return 0;
    }
#else
    (void)socket;
    (void)into;
    ec = asio::error::operation_not_supported;
    return 0;
#endif
}

// Queues `self` straight on the socket's io_context when its handler's
// executor is the socket's own (an io_context executor, bare or held by
// any_io_executor): the completion then runs where Asio would run it after
// a read that found data, without the socket operation's bookkeeping (its
// handler_work, the polymorphic executor copies and comparisons done for it
// on the way in and out). Returns false, leaving `self` alone, otherwise
// (a strand, another context, another executor type).
template <class NextLayer, class Self>
bool complete_on_context(NextLayer& next_layer, Self& self) {
    const auto socket_executor = next_layer.get_executor();
    const auto* io = plain_io_executor(socket_executor);
    if (io == nullptr)
        return false;
    const auto handler_executor = asio::get_associated_executor(self, socket_executor);
    const auto* own = plain_io_executor(handler_executor);
    if (own == nullptr || !(*own == *io))
        return false;
    const bool continuation = asio_handler_cont_helpers::is_continuation(self);
    const auto ex = asio::prefer(asio::require(*io, asio::execution::blocking.never),
                                 asio::execution::allocator(asio::get_associated_allocator(self)));
    // `self` itself is the function, called with no arguments: no wrapper
    // to move it into and out of (each move of a coroutine's handler leaves
    // one more moved-from handler to destroy).
    if (continuation)
        asio::execution::execute(asio::prefer(ex, asio::execution::relationship.continuation),
                                 std::move(self));
    else
        asio::execution::execute(ex, std::move(self));
    return true;
}

// Resumes the composed operation `self` soon, never from within the
// function that started it: with no arguments when it is queued on the
// io_context directly, otherwise with (no error, 0) as a resumption after a
// read (`wait_read`) or a write (`wait_write`). Either way the operation
// completes with the result it stored before calling this.
//
// On a plain socket whose handler runs on the socket's own io_context
// executor (a coroutine spawned on it, a plain callback), the operation is
// queued on that io_context directly (complete_on_context()). Otherwise, on
// a plain socket, this is a zero-length read or write on the socket itself:
// Asio makes no system call for it and completes it the way it completes
// its own reads that found data, through the handler's executor (a strand).
// asio::post(self) would go through the handler's polymorphic executor
// instead: type-erased property conversions, a function object allocated
// and executed: about a tenth of echo_server's instructions per round trip
// at 50 x 1 (callgrind). Other streams (TLS) post.
template <class NextLayer, class Self>
void complete_soon(NextLayer& next_layer, asio::socket_base::wait_type direction, Self&& self) {
    if constexpr (waitable_socket<NextLayer>) {
        if (complete_on_context(next_layer, self))
            return;
        if (direction == asio::socket_base::wait_read)
            next_layer.async_read_some(asio::mutable_buffer(), std::forward<Self>(self));
        else
            next_layer.async_write_some(asio::const_buffer(), std::forward<Self>(self));
    } else {
        (void)next_layer;
        (void)direction;
        asio::post(next_layer.get_executor(), std::forward<Self>(self));
    }
}

#if PARLEY_HAS_POSIX_SOCKETS

// Scratch space for one gathered write, per thread: a session builds its
// iovecs, writes, and is done with them before anyone else can run on
// this thread, so no connection needs its own array.
inline std::span<::iovec> iovec_scratch() noexcept {
#if defined(IOV_MAX)
    constexpr std::size_t count = IOV_MAX < 1024 ? IOV_MAX : 1024;
#else
    constexpr std::size_t count = 16;
#endif
    static thread_local ::iovec scratch[count];
    return {scratch, count};
}

inline ::iovec make_iovec(const std::byte* data, std::size_t size) noexcept {
    return {const_cast<std::byte*>(data), size};
}

inline std::size_t iovec_bytes(std::span<const ::iovec> iov) noexcept {
    std::size_t total = 0;
    for (const auto& v : iov)
        total += v.iov_len;
    return total;
}

// One sendmsg() that never blocks and never raises SIGPIPE. Returns the
// bytes written; `ec` is would_block when the socket took nothing.
template <waitable_socket Socket>
std::size_t send_now(Socket& socket, std::span<const ::iovec> iov, std::error_code& ec) {
    ::msghdr msg{};
    msg.msg_iov = const_cast<::iovec*>(iov.data());
    msg.msg_iovlen = iov.size();
#if defined(MSG_NOSIGNAL)
    constexpr int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
#else
    constexpr int flags = MSG_DONTWAIT;
#endif
    for (;;) {
        const auto n = ::sendmsg(socket.native_handle(), &msg, flags);
        if (n >= 0) {
            clear_error(ec);
            return static_cast<std::size_t>(n);
        }
        if (errno == EINTR)
            continue;
        ec = last_socket_error();
        return 0;
    }
}

// Walks a sequence of buffers being sent by gathered writes: which buffer
// is next and how much of it went out already. Both framed_stream's
// asynchronous write and its blocking one send through it, so each system
// call takes up to IOV_MAX buffers (asio::write stops at 16).
class gathered_cursor {
public:
    explicit gathered_cursor(std::span<const asio::const_buffer> buffers) noexcept
        : buffers_(buffers) {}
    // Resumes where another cursor over the same buffers stopped.
    gathered_cursor(std::span<const asio::const_buffer> buffers, std::size_t next,
                    std::size_t offset) noexcept
        : buffers_(buffers), next_(next), offset_(offset) {}

    bool done() const noexcept { return next_ == buffers_.size(); }
    std::size_t next() const noexcept { return next_; }
    std::size_t offset() const noexcept { return offset_; }

    // The unsent buffers, as many as fit in `iov`; returns how many.
    std::size_t fill(std::span<::iovec> iov) const noexcept {
        std::size_t count = 0;
        for (std::size_t i = next_; i < buffers_.size() && count < iov.size(); ++i) {
            const std::size_t skip = i == next_ ? offset_ : 0;
            iov[count++] = make_iovec(static_cast<const std::byte*>(buffers_[i].data()) + skip,
                                      buffers_[i].size() - skip);
        }
        return count;
    }

    void advance(std::size_t sent) noexcept {
        while (next_ < buffers_.size()) {
            const std::size_t left = buffers_[next_].size() - offset_;
            if (sent < left) {
                offset_ += sent;
                return;
            }
            sent -= left;
            ++next_;
            offset_ = 0;
        }
    }

    // One non-blocking sendmsg() of the next buffers. Returns true when the
    // socket took everything offered (go on, if not done()); false when it
    // is full (wait until writable) or failed (`ec` set, not would_block).
    template <waitable_socket Socket>
    bool send_some(Socket& socket, std::error_code& ec) {
        auto iov = iovec_scratch();
        const std::size_t count = fill(iov);
        const std::size_t offered = iovec_bytes(iov.first(count));
        const std::size_t sent = send_now(socket, iov.first(count), ec);
        advance(sent);
        if (would_block(ec)) {
            clear_error(ec);
            return false;
        }
        return !ec && sent == offered;
    }

    // send_some() until done, the socket is full or a call fails (`ec`
    // set). Returns done().
    template <waitable_socket Socket>
    bool send_while_taken(Socket& socket, std::error_code& ec) {
        while (!done() && send_some(socket, ec)) {
        }
        return done();
    }

private:
    std::span<const asio::const_buffer> buffers_;
    std::size_t next_ = 0;   // the first buffer not completely sent
    std::size_t offset_ = 0; // bytes of it already sent
};

#endif

} // namespace parley::detail

#endif
