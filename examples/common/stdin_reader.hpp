// Reading standard input inside an Asio event loop, so that a client reads
// the keyboard and the network at once without a thread per direction.
// Shared by the examples; not part of parley's API.
//
// Standard input may be a terminal, a pipe, a socket or a regular file
// (`client < script.txt`). The first three are waited on by the reactor
// like any socket. A regular file is the odd one: epoll refuses it (EPERM)
// because reading a file never waits for anyone. Asio knows this: it then
// reads the descriptor directly, without the reactor, and since a read from
// a file returns at once (data or end of file) that is exactly right. So
// one posix::stream_descriptor covers every case, and there is no need for
// a blocking fallback or a reader thread.
//
// One more catch: Asio puts the descriptor in non-blocking mode, and that
// mode belongs to the open file, which a terminal's standard input usually
// shares with standard output and with the shell. A write to a
// non-blocking terminal can fail with EAGAIN, and std::cout then drops
// everything after. So a terminal is opened again, as a file of its own,
// and a pipe or file gets its mode put back on exit.
#ifndef PARLEY_EXAMPLES_COMMON_STDIN_READER_HPP
#define PARLEY_EXAMPLES_COMMON_STDIN_READER_HPP

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace parley::examples {

class stdin_reader {
public:
    /// Lines longer than this are handed out in pieces of this size.
    static constexpr std::size_t max_line = 64 * 1024;

    explicit stdin_reader(const asio::any_io_executor& ex)
        : in_(ex), saved_flags_(::fcntl(STDIN_FILENO, F_GETFL)) {
        std::error_code ec;
        if (::isatty(STDIN_FILENO)) {
            const char* name = ::ttyname(STDIN_FILENO);
            const int own = name ? ::open(name, O_RDONLY | O_NOCTTY | O_CLOEXEC) : -1;
            if (own >= 0) {
                owned_ = true;
                in_.assign(own, ec);
                if (ec)
                    ::close(own);
            } else {
                in_.assign(STDIN_FILENO, ec);
            }
        } else {
            in_.assign(STDIN_FILENO, ec);
        }
        if (ec)
            failed_ = ec;
    }

    // Standard input stays open for whoever runs next (the shell), and in
    // the mode it was in.
    ~stdin_reader() {
        std::error_code ignored;
        if (owned_)
            in_.close(ignored);
        else if (in_.is_open())
            in_.release();
        restore_flags();
    }

    stdin_reader(const stdin_reader&) = delete;
    stdin_reader& operator=(const stdin_reader&) = delete;

    /// Puts standard input back as it was (also for signal and exit paths).
    void restore_flags() const noexcept {
        if (saved_flags_ != -1)
            ::fcntl(STDIN_FILENO, F_SETFL, saved_flags_);
    }

    /// The next line without its "\n" (or "\r\n"); a last line without a
    /// newline counts too. nullopt at end of input, on an error, or when
    /// cancel() was called.
    asio::awaitable<std::optional<std::string>> read_line() {
        if (failed_)
            co_return std::nullopt;
        auto [ec, n] = co_await asio::async_read_until(
            in_, asio::dynamic_buffer(pending_, max_line), '\n',
            asio::experimental::as_tuple(asio::use_awaitable));
        std::string line;
        if (!ec) {
            line = pending_.substr(0, n - 1);
            pending_.erase(0, n);
        } else if (ec == asio::error::not_found || (ec == asio::error::eof && !pending_.empty())) {
            line = std::move(pending_); // too long for one line, or the last one
            pending_.clear();
        } else {
            co_return std::nullopt;
        }
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        co_return line;
    }

    /// Whatever bytes arrive next (at least one); empty at end of input,
    /// on an error, or when cancel() was called.
    asio::awaitable<std::string> read_some() {
        if (failed_)
            co_return std::string();
        if (!pending_.empty())
            co_return std::exchange(pending_, std::string());
        char chunk[4096];
        auto [ec, n] = co_await in_.async_read_some(
            asio::buffer(chunk), asio::experimental::as_tuple(asio::use_awaitable));
        co_return ec ? std::string() : std::string(chunk, n);
    }

    /// Makes a pending read finish (with nothing).
    void cancel() {
        std::error_code ignored;
        in_.cancel(ignored);
    }

    /// Why standard input could not be used, if it could not (closed).
    std::error_code error() const noexcept { return failed_; }

private:
    asio::posix::stream_descriptor in_;
    std::string pending_;
    int saved_flags_;
    bool owned_ = false; // a descriptor of our own for the terminal
    std::error_code failed_;
};

} // namespace parley::examples

#endif
