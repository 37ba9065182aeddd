// parley: connecting a TCP socket with a timeout per attempt and retries
// with exponential backoff and jitter.
//
// @code
// parley::connect_options options;
// options.max_attempts = 0;                       // until cancelled
// options.on_state = [](const parley::connect_event& e) { std::clog << e.describe() << '\n'; };
// auto [ec, peer] = co_await parley::async_connect(socket, "localhost", 9999, options,
//                                                  asio::experimental::as_tuple(asio::use_awaitable));
// @endcode
#ifndef PARLEY_NET_CONNECT_HPP
#define PARLEY_NET_CONNECT_HPP

#include <parley/error.hpp>

#include <asio/async_result.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>

namespace parley {

/// One step of a connection attempt sequence, as reported to
/// connect_options::on_state.
struct connect_event {
    enum class kind : unsigned char {
        /// A TCP connect to `endpoint` is starting, in attempt `attempt`.
        connecting,
        /// The connect to `endpoint` failed with `error`; the attempt goes
        /// on with the next address the name resolved to, if any.
        endpoint_failed,
        /// Connected to `endpoint`. The last event of a successful sequence.
        connected,
        /// Attempt `attempt` failed as a whole with `error` (every address
        /// failed, or the name did not resolve). Unless `giving_up`, the
        /// next attempt starts after `next_delay`.
        attempt_failed,
    };

    kind what = kind::connecting;
    /// Which attempt, counting from 1.
    unsigned attempt = 0;
    /// The address concerned (connecting, endpoint_failed, connected).
    asio::ip::tcp::endpoint endpoint;
    /// Why it failed (endpoint_failed, attempt_failed).
    std::error_code error;
    /// attempt_failed: the wait before the next attempt (zero if giving up).
    std::chrono::milliseconds next_delay{0};
    /// attempt_failed: this was the last attempt; the operation completes
    /// with `error`.
    bool giving_up = false;

    /// One line for a log or a terminal, e.g. "attempt 2 to connect failed:
    /// Connection refused; retrying in 380 ms".
    std::string describe() const;
};

/// How async_connect() and connect() try.
///
/// An attempt resolves the host name (again on every attempt: a server that
/// moved is found), then tries each address it resolved to in turn, each
/// within `attempt_timeout`. If every address fails, the attempt failed:
/// the next one starts after a delay that grows from `initial_backoff` by
/// `multiplier` per failure up to `max_backoff`, less a random part of up
/// to `jitter` of it, so that many clients cut off together do not come
/// back in lockstep.
struct connect_options {
    /// Time allowed for one TCP connect to one address; zero means no limit
    /// beyond the operating system's own (about two minutes on Linux). Name
    /// resolution is not bounded by it: the system resolver applies its own
    /// timeouts (see /etc/resolv.conf).
    std::chrono::milliseconds attempt_timeout{5000};
    /// Attempts before giving up; 0 means until cancelled.
    unsigned max_attempts = 5;
    /// Wait after the first failed attempt.
    std::chrono::milliseconds initial_backoff{100};
    /// Upper bound of any wait.
    std::chrono::milliseconds max_backoff{10000};
    /// Growth of the wait per failed attempt; at least 1.
    double multiplier = 2.0;
    /// Fraction of each wait, between 0 and 1, that is randomised: the wait
    /// is drawn uniformly from [(1 - jitter) * d, d], where d is the
    /// exponential delay. 0 gives exact, repeatable delays.
    double jitter = 0.2;
    /// Called for every step (see connect_event), on the executor the
    /// operation's intermediate handlers run on (that of the completion
    /// handler, by default the socket's). Optional. It must not destroy the
    /// socket; cancel the operation instead.
    std::function<void(const connect_event&)> on_state;

    /// Whether the values are usable: multiplier >= 1, jitter within [0, 1],
    /// no negative durations, initial_backoff <= max_backoff.
    bool valid() const noexcept;
};

/// The wait before attempt `failed + 1` when `failed` attempts have failed
/// (failed >= 1), before jitter: min(max_backoff, initial_backoff *
/// multiplier^(failed - 1)).
std::chrono::milliseconds backoff_delay(const connect_options& options, unsigned failed) noexcept;

/// backoff_delay() with the options' jitter applied, using `rng`.
template <class RandomEngine>
std::chrono::milliseconds jittered_backoff_delay(const connect_options& options, unsigned failed,
                                                 RandomEngine& rng);

/// The sentence a program shows when connecting failed for good, e.g.
/// "could not connect to localhost:9999 (3 attempts): Connection refused".
std::string describe_connect_failure(std::string_view host, std::uint16_t port,
                                     unsigned attempts, std::error_code ec);

/// Completion signature of async_connect(): the error, and the address
/// connected to (default-constructed on failure).
using connect_signature = void(std::error_code, asio::ip::tcp::endpoint);

/// Connects `socket` to `host`:`port`, retrying as `options` say.
///
/// `host` may be a name ("localhost", "example.org") or an address
/// ("127.0.0.1", "::1"); an address is used as is, without a resolver
/// round trip. The socket is closed first if it is open, and is reopened
/// for each address's protocol. `host` and `options` are copied; `socket`
/// must outlive the operation.
///
/// The completion handler's signature is
/// @code
/// void handler(std::error_code ec, asio::ip::tcp::endpoint connected_to);
/// @endcode
/// On success `ec` is clear and the socket is connected. On failure the
/// socket is closed and `ec` is the error of the last attempt, so that the
/// reason is as specific as it can be: asio::error::connection_refused,
/// parley::error::timed_out (the last address did not answer within
/// attempt_timeout), asio::error::host_not_found... Every earlier failure
/// was reported to options.on_state, and describe_connect_failure() turns
/// the result into a sentence for the user. Invalid options fail with
/// error::invalid_argument and no attempt.
///
/// The handler is never invoked from within this function.
///
/// @par Per-operation cancellation
/// Supports terminal, partial and total cancellation (for instance through
/// `asio::bind_cancellation_slot`, or the `||` of awaitable operators):
/// a connect in progress or a wait between attempts stops at once and the
/// operation completes with asio::error::operation_aborted, leaving the
/// socket closed. While a name is being resolved, cancellation takes effect
/// when the system resolver returns (it cannot be interrupted).
///
/// @par Thread safety
/// The socket must not be used by anything else until the operation
/// completes; as for any Asio operation, if its io_context runs on several
/// threads, give the socket (or the handler) a strand.
template <class Executor, asio::completion_token_for<connect_signature> Token>
auto async_connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                   std::string_view host, std::uint16_t port, const connect_options& options,
                   Token&& token);

/// Connects `socket` as async_connect() does, blocking the calling thread
/// (which runs options.on_state) until connected or given up. The socket
/// may belong to any execution context, running or not. Returns the
/// address connected to; on failure sets `ec` (see async_connect()).
template <class Executor>
asio::ip::tcp::endpoint connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                                std::string_view host, std::uint16_t port,
                                const connect_options& options, std::error_code& ec);

/// As above; on failure throws std::system_error whose what() is
/// describe_connect_failure()'s sentence.
template <class Executor>
asio::ip::tcp::endpoint connect(asio::basic_stream_socket<asio::ip::tcp, Executor>& socket,
                                std::string_view host, std::uint16_t port,
                                const connect_options& options);

} // namespace parley

#include <parley/net/impl/connect.hpp>

#endif
