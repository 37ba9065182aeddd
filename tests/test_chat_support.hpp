// Test support for the chat tests: a chat server running in-process on
// loopback, and blocking clients with timeouts (framed and line mode)
// written against docs/PROTOCOL.md with plain POSIX sockets, so that the
// tests check the server through the wire and nothing else.
#ifndef PARLEY_TESTS_TEST_CHAT_SUPPORT_HPP
#define PARLEY_TESTS_TEST_CHAT_SUPPORT_HPP

#include <parley/chat/protocol.hpp>
#include <parley/chat/server.hpp>

#include <asio/io_context.hpp>
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace parley::test::chat {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
namespace pc = parley::chat;

/// How long a test waits for something that should happen at once. Only
/// a failing test waits this long, so it is generous: enough for a loaded
/// 2-core machine running a sanitizer build.
inline constexpr auto patience = 15s;

/// A server on 127.0.0.1 with free ports, run by `threads` threads, with
/// its log lines collected. The destructor stops it and checks that the
/// io_context then runs out of work (a clean shutdown).
class server_fixture {
public:
    explicit server_fixture(pc::server_options options = {}, int threads = 2) {
        options.host = "127.0.0.1";
        options.port = 0;
        // The chat tests send hundreds of messages as fast as they can:
        // flood control is off unless a test sets limits of its own
        // (test_faults.cpp does).
        if (options.flood.messages_per_second == pc::flood_limits{}.messages_per_second)
            options.flood.messages_per_second = 0;
        // Leaves are announced at once (no resume grace period) unless a
        // test sets a grace period of its own (test_chat_resume.cpp does).
        if (options.resume_grace == pc::server_options{}.resume_grace)
            options.resume_grace = std::chrono::milliseconds(0);
        if (options.line_port)
            options.line_port = 0;
        options.log = [this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        };
        server_.emplace(ioc_, std::move(options));
        server_->start();
        for (int i = 0; i < threads; ++i)
            threads_.emplace_back([this] { ioc_.run(); });
    }

    ~server_fixture() {
        server_->stop();
        const auto deadline = clock::now() + patience;
        while (!ioc_.stopped() && clock::now() < deadline)
            std::this_thread::sleep_for(5ms);
        CHECK_MESSAGE(ioc_.stopped(), "the server did not finish stopping in time");
        ioc_.stop();
        for (auto& t : threads_)
            t.join();
        server_.reset();
    }

    pc::server& server() { return *server_; }
    std::uint16_t port() { return server_->local_port(); }
    std::uint16_t line_port() { return server_->line_port(); }

    std::vector<std::string> log() {
        std::lock_guard lock(log_mutex_);
        return log_;
    }

    /// Log lines containing all of `parts`.
    std::size_t count_log(std::initializer_list<std::string_view> parts) {
        std::size_t n = 0;
        for (const auto& line : log()) {
            bool all = true;
            for (auto p : parts)
                all = all && line.find(p) != std::string::npos;
            n += all;
        }
        return n;
    }

    /// Waits until `done()` holds (polling), or the patience runs out.
    static bool eventually(const std::function<bool()>& done, clock::duration within = patience) {
        const auto deadline = clock::now() + within;
        while (!done()) {
            if (clock::now() >= deadline)
                return false;
            std::this_thread::sleep_for(2ms);
        }
        return true;
    }

private:
    asio::io_context ioc_;
    std::optional<pc::server> server_;
    std::vector<std::thread> threads_;
    std::mutex log_mutex_;
    std::vector<std::string> log_;
};

/// A TCP connection to 127.0.0.1 with timeouts on every read.
class connection {
public:
    explicit connection(std::uint16_t port, int receive_buffer = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0)
            throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        if (receive_buffer > 0) // before connect, so the window is small from the start
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            const int e = errno;
            ::close(fd_);
            throw std::runtime_error("connect: " + std::string(std::strerror(e)));
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() {
        if (fd_ >= 0)
            ::close(fd_);
    }

    void send_raw(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                throw std::runtime_error("send: " + std::string(std::strerror(errno)));
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    void send_frame(std::string_view payload) {
        std::string wire(4, '\0');
        const auto n = static_cast<std::uint32_t>(payload.size());
        wire[0] = static_cast<char>(n >> 24);
        wire[1] = static_cast<char>(n >> 16);
        wire[2] = static_cast<char>(n >> 8);
        wire[3] = static_cast<char>(n);
        wire += payload;
        send_raw(wire);
    }

    /// The next frame's payload; nullopt on timeout or when the connection
    /// ended (closed() tells which).
    std::optional<std::string> recv_frame(clock::duration timeout = patience) {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            if (buffer_.size() >= 4) {
                const auto b = [&](int i) { return static_cast<std::uint32_t>(
                                                static_cast<unsigned char>(buffer_[i])); };
                const std::size_t n = b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
                if (buffer_.size() >= 4 + n) {
                    std::string payload = buffer_.substr(4, n);
                    buffer_.erase(0, 4 + n);
                    return payload;
                }
            }
            if (!fill(deadline))
                return std::nullopt;
        }
    }

    /// The next line without its "\n".
    std::optional<std::string> recv_line(clock::duration timeout = patience) {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            if (!fill(deadline))
                return std::nullopt;
        }
    }

    /// Reads and discards until the server closes the connection.
    bool wait_closed(clock::duration timeout = patience) {
        const auto deadline = clock::now() + timeout;
        while (!closed_) {
            buffer_.clear();
            if (!fill(deadline) && !closed_)
                return false;
        }
        return true;
    }

    /// Everything until the server closes the connection (nullopt if it
    /// does not in time).
    std::optional<std::string> recv_until_closed(clock::duration timeout = patience) {
        const auto deadline = clock::now() + timeout;
        while (!closed_)
            if (!fill(deadline) && !closed_)
                return std::nullopt;
        return std::exchange(buffer_, {});
    }

    bool closed() const noexcept { return closed_; }

    /// Orderly close (FIN).
    void close() {
        ::close(fd_);
        fd_ = -1;
    }

    /// Abortive close: SO_LINGER 0 makes close() send a reset.
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close();
    }

    void shutdown_send() { ::shutdown(fd_, SHUT_WR); }

private:
    bool fill(clock::time_point deadline) {
        if (closed_)
            return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                                clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r <= 0)
            return false;
        char chunk[65536];
        const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            closed_ = true;
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    int fd_ = -1;
    std::string buffer_;
    bool closed_ = false;
};

/// The whole response (head and body) to `GET path` on 127.0.0.1:`port`,
/// for a server that answers once and closes (the chat's web port).
inline std::optional<std::string> http_get(std::uint16_t port, std::string_view path) {
    connection c(port);
    c.send_raw("GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    return c.recv_until_closed();
}

/// A framed chat client that decodes every event and keeps them all.
class client {
public:
    explicit client(std::uint16_t port, int receive_buffer = 0) : conn_(port, receive_buffer) {}

    connection& conn() { return conn_; }
    const std::string& nick() const { return nick_; }

    /// The next event, decoded; fails the test on timeout or a bad event.
    std::optional<pc::event> next(clock::duration timeout = patience) {
        auto payload = conn_.recv_frame(timeout);
        if (!payload)
            return std::nullopt;
        std::string error;
        auto e = pc::parse_event(*payload, error);
        REQUIRE_MESSAGE(e.has_value(), "undecodable event " << *payload << ": " << error);
        seen_.push_back(*e);
        return e;
    }

    /// The next event, which must be an E.
    template <class E>
    E expect(clock::duration timeout = patience) {
        auto e = next(timeout);
        REQUIRE_MESSAGE(e.has_value(), nick_ << ": no " << E::type << " event in time"
                                             << (conn_.closed() ? " (connection closed)" : ""));
        const E* got = std::get_if<E>(&*e);
        REQUIRE_MESSAGE(got != nullptr, nick_ << ": expected a " << E::type << " event, got "
                                              << pc::to_json(*e));
        return *got;
    }

    /// Skips events until an E for which `match` holds.
    template <class E, class Match>
    E wait_for(Match match, clock::duration timeout = patience) {
        const auto deadline = clock::now() + timeout;
        for (;;) {
            auto e = next(std::max<clock::duration>(deadline - clock::now(), 0ms));
            REQUIRE_MESSAGE(e.has_value(), nick_ << ": no matching " << E::type
                                                 << " event in time");
            if (const E* got = std::get_if<E>(&*e); got && match(*got))
                return *got;
        }
    }

    /// An error event with `code`.
    pc::error_event expect_error(std::string_view code) {
        auto e = expect<pc::error_event>();
        CHECK_MESSAGE(e.code == code, "expected error " << code << ", got " << e.code << ": "
                                                        << e.message);
        CHECK(!e.message.empty());
        return e;
    }

    /// Reads the welcome and sends `nick`.
    void welcome_and_send(std::string_view nick) {
        auto w = expect<pc::welcome_event>();
        CHECK(w.prompt == pc::default_prompt);
        CHECK(w.protocol == pc::protocol_version);
        conn_.send_frame(nick);
    }

    /// welcome, nickname, then nick_accepted, join (self) and members.
    pc::members_event login(std::string_view nick) {
        welcome_and_send(nick);
        nick_ = std::string(nick);
        CHECK(expect<pc::nick_accepted_event>().nick == nick);
        auto j = expect<pc::join_event>();
        CHECK(j.nick == nick);
        CHECK(j.room == "lobby");
        auto m = expect<pc::members_event>();
        CHECK(m.room == "lobby");
        return m;
    }

    void say(std::string_view text) { conn_.send_frame(text); }

    /// True if nothing arrives within `quiet`.
    bool silent(clock::duration quiet = 150ms) {
        auto e = next(quiet);
        if (e)
            MESSAGE(nick_ << " received unexpected " << pc::to_json(*e));
        return !e;
    }

    /// Every event received so far.
    const std::vector<pc::event>& seen() const { return seen_; }

    template <class E>
    std::vector<E> seen_of() const {
        std::vector<E> out;
        for (const auto& e : seen_)
            if (const E* x = std::get_if<E>(&e))
                out.push_back(*x);
        return out;
    }

private:
    connection conn_;
    std::string nick_;
    std::vector<pc::event> seen_;
};

/// True for "2024-05-01T12:34:56.789Z".
inline bool is_rfc3339_utc_millis(std::string_view t) {
    if (t.size() != 24)
        return false;
    static constexpr std::string_view shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (std::size_t i = 0; i < shape.size(); ++i)
        if (shape[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != shape[i])
            return false;
    return true;
}

} // namespace parley::test::chat

#endif
