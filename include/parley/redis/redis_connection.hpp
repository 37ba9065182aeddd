// parley: one connection to a Redis server. Asio does the socket I/O;
// hiredis (Debian: libhiredis-dev, link with -lhiredis) only formats
// commands (redisFormatCommandArgv) and parses replies (redisReader), so
// nothing ever blocks a thread. Only programs that include this header
// need hiredis.
//
// @code
// auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
// redis->connect("127.0.0.1", 6379, parley::connect_options{}, [redis](std::error_code ec) {
//     if (!ec)
//         redis->command({"SET", "greeting", "hello"}, [](std::error_code ec, const parley::redis::reply& r) {
//             // r.type == parley::redis::reply::kind::status, r.str == "OK"
//         });
// });
// @endcode
#ifndef PARLEY_REDIS_REDIS_CONNECTION_HPP
#define PARLEY_REDIS_REDIS_CONNECTION_HPP

#include <parley/net/connect.hpp>
#include <parley/error.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <hiredis/hiredis.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace parley::redis {

/// A Redis reply (RESP2), copied out of hiredis's reply tree.
struct reply {
    enum class kind : unsigned char { nil, string, status, error, integer, array };
    kind type = kind::nil;
    std::string str;         ///< string, status, error
    long long integer = 0;   ///< integer
    std::vector<reply> elements; ///< array

    bool is_error() const noexcept { return type == kind::error; }
    bool is_nil() const noexcept { return type == kind::nil; }
    /// Readable form for logs and tests: "OK", "(nil)", "[a, b]".
    std::string describe() const;
};

/// Called with a command's reply, or with an error (and a nil reply) when
/// the connection failed before the reply came. A Redis error reply
/// ("-ERR ...") is a reply with kind::error, not an error code.
using reply_handler = std::function<void(std::error_code, const reply&)>;

/// Options of a connection.
struct connection_options {
    /// Commands written or waiting to be written, in bytes, at most; a
    /// command beyond it fails at once with error::queue_full. Bounds what
    /// an unresponsive Redis costs.
    std::size_t max_pending_bytes = 16 * 1024 * 1024;
    /// Replies awaited at most (same effect as above when reached).
    std::size_t max_pending_replies = 100000;
};

/// One Redis connection with pipelining: commands are written in the order
/// given, batched into as few writes as possible, and their handlers are
/// called in the same order as the replies arrive.
///
/// In subscriber mode (subscribe()), every reply goes to the push handler
/// instead: subscription confirmations and published messages.
///
/// @par Threading
/// Every member function must be called on the connection's strand
/// (get_executor()); every handler is invoked on it. Create it with
/// std::make_shared: operations keep it alive.
class connection : public std::enable_shared_from_this<connection> {
public:
    using executor_type = asio::strand<asio::any_io_executor>;

    explicit connection(asio::any_io_executor executor, connection_options options = {});
    ~connection();

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    executor_type get_executor() const noexcept { return strand_; }

    /// Connects as parley::async_connect() does (retries with backoff as
    /// `how` says), then starts reading. `handler(ec)` runs on the strand.
    void connect(std::string host, std::uint16_t port, const connect_options& how,
                 std::function<void(std::error_code)> handler);

    /// Queues a command (its arguments, binary-safe). `handler` may be
    /// empty. If the connection is not open, or its queue is full, the
    /// handler is posted with the error.
    void command(const std::vector<std::string>& args, reply_handler handler = {});

    /// Switches to subscriber mode: every reply from now on goes to
    /// `on_push` (call before sending SUBSCRIBE).
    void subscriber(std::function<void(const reply&)> on_push);

    /// Called once, when the connection fails or is closed: with the
    /// reason (asio::error::eof when Redis closed it, operation_aborted
    /// after close()).
    void on_close(std::function<void(std::error_code)> handler);

    /// Closes the socket and stops a connect() in progress (its retries
    /// too); pending handlers get operation_aborted.
    void close();

    bool is_open() const noexcept { return open_; }

    /// Bytes of commands not yet written.
    std::size_t pending_bytes() const noexcept { return out_.size() + writing_.size(); }

private:
    void read();
    void write();
    void fail(std::error_code ec);
    void on_reply(reply r);

    executor_type strand_;
    connection_options options_;
    asio::ip::tcp::socket socket_;
    redisReader* reader_ = nullptr;
    bool open_ = false, closed_ = false;
    std::string out_, writing_;
    std::deque<reply_handler> awaiting_;
    std::function<void(const reply&)> on_push_;
    std::function<void(std::error_code)> on_close_;
    std::vector<char> in_;
    asio::cancellation_signal connect_cancel_; // close() stops a connect's retries
};

} // namespace parley::redis

#include <parley/redis/impl/redis_connection.hpp>

#endif
