// Test support: starts an example server as a child process, waits for its
// "listening on HOST:PORT" line, and stops it (by its PID) when done.
#ifndef PARLEY_TESTS_SUPPORT_SERVER_PROCESS_HPP
#define PARLEY_TESTS_SUPPORT_SERVER_PROCESS_HPP

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace parley::test {

/// Path of an example program built beside the tests.
inline std::string example_path(const std::string& name) {
#ifdef PARLEY_EXAMPLES_DIR
    return std::string(PARLEY_EXAMPLES_DIR) + "/" + name;
#else
    return name;
#endif
}

/// A running server process. Its stdout and stderr are captured (in an
/// unlinked temporary file): start() reads until a
/// line starting with `ready_prefix` (default "listening on ") and takes
/// the port after the last ':'. The destructor sends SIGTERM, then SIGKILL
/// if it has not exited within two seconds.
class server_process {
public:
    server_process(std::string program, std::vector<std::string> args,
                   std::string ready_prefix = "listening on ",
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        // Output goes to a file, not a pipe: a server that prints a lot must
        // never block because the test is busy elsewhere.
        char path[] = "/tmp/parley-test-server-XXXXXX";
        const int file = ::mkstemp(path);
        if (file < 0)
            throw std::runtime_error("cannot create a temporary file");
        ::unlink(path);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, file, STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&actions, file, STDERR_FILENO);
        std::vector<char*> argv;
        argv.push_back(program.data());
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        const int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        out_ = file;
        if (rc != 0) {
            ::close(out_);
            throw std::runtime_error("cannot start " + program + ": " + std::strerror(rc));
        }
        port_ = wait_for_line(ready_prefix, timeout);
        if (!port_) {
            stop();
            throw std::runtime_error(program + " did not print '" + ready_prefix +
                                     "' in time; output so far: " + output_);
        }
    }

    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;
    ~server_process() { stop(); }

    std::uint16_t port() const noexcept { return *port_; }
    pid_t pid() const noexcept { return pid_; }

    /// Waits for a further line starting with `prefix`; returns the number
    /// after its last ':' if any (0 otherwise), or nullopt on timeout.
    std::optional<std::uint16_t> wait_for_line(const std::string& prefix,
                                               std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            for (auto newline = output_.find('\n', scanned_); newline != std::string::npos;
                 newline = output_.find('\n', scanned_)) {
                const std::string line = output_.substr(scanned_, newline - scanned_);
                scanned_ = newline + 1;
                if (line.rfind(prefix, 0) == 0) {
                    const auto colon = line.rfind(':');
                    const std::string tail = colon == std::string::npos ? "" : line.substr(colon + 1);
                    const bool numeric = !tail.empty() && tail.find_first_not_of("0123456789") ==
                                                              std::string::npos;
                    return numeric ? static_cast<std::uint16_t>(std::stoul(tail)) : 0;
                }
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !read_some(static_cast<int>(left.count())))
                return std::nullopt;
        }
    }

    /// Everything the process printed so far.
    const std::string& output() {
        while (read_some(0)) {
        }
        return output_;
    }

    /// Sends `signal` and waits up to `timeout` for the exit; returns the
    /// exit status (or -signal), nullopt if it did not exit in time.
    std::optional<int> terminate(int signal = SIGTERM,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(2)) {
        if (pid_ <= 0)
            return status_;
        ::kill(pid_, signal);
        return wait_exit(timeout);
    }

    /// Waits up to `timeout` for the process to exit by itself; returns
    /// its exit status (or -signal), nullopt if it is still running.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        if (pid_ <= 0)
            return status_;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
                return status_;
            }
            read_some(10);
        }
        return std::nullopt;
    }

private:
    // Reads what the process wrote since last time, waiting up to
    // `timeout_ms` for something new.
    bool read_some(int timeout_ms) {
        if (out_ < 0)
            return false;
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            char buf[65536];
            const auto n = ::pread(out_, buf, sizeof buf, static_cast<off_t>(output_.size()));
            if (n > 0) {
                output_.append(buf, static_cast<std::size_t>(n));
                return true;
            }
            if (std::chrono::steady_clock::now() >= deadline)
                return false;
            ::usleep(2000);
        }
    }

    void stop() {
        if (pid_ > 0 && !terminate(SIGTERM)) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        if (out_ >= 0) {
            ::close(out_);
            out_ = -1;
        }
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string output_;
    std::size_t scanned_ = 0;
    std::optional<std::uint16_t> port_;
    std::optional<int> status_;
};

} // namespace parley::test

#endif
