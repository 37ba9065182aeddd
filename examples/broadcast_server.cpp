// The hub and nothing else: every frame a client sends is delivered to
// every connected client (the sender too, unless --no-echo).
//
// This is the server the benchmarks compare with Redis, NATS and a raw
// epoll floor, so it adds nothing per message beyond what the hub needs:
// the frames of each read relayed in one shared buffer, no copy per
// recipient, gathered writes. A client that stops reading is disconnected when its queue is
// full (or loses its oldest messages, with --policy drop-oldest). With --policy backpressure
// the senders into a client's full queue are not read until it drains, so nobody loses a frame;
// a client that does not drain within --write-timeout is disconnected.
//
//   broadcast_server [--host 127.0.0.1] [--port 7000] [--no-echo] [--threads 1] [--read-chunk 131072]
//                    [--policy disconnect|drop-oldest|backpressure] [--write-timeout 10000]
#include "common/options.hpp"

#include <parley/net/accept_backoff.hpp>
#include <parley/hub/hub.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>

#include <iostream>
#include <optional>
#include <thread>
#include <vector>

using asio::ip::tcp;
using session = parley::session<tcp::socket>;

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    bool no_echo = false;
    unsigned threads = 1;
    std::uint64_t max_payload = 1024 * 1024;
    // Larger than framed_stream's default: each read is relayed as one
    // message, so a bigger read is a bigger batch per recipient (N=100,
    // 512 B frames: 104 ns of server CPU per delivery at 64 KiB, 71 at 128).
    std::size_t read_chunk = 128 * 1024;
    std::size_t max_queue_bytes = 4 * 1024 * 1024;
    std::size_t max_queue_messages = 16 * 1024;
    std::string policy = "disconnect";
    unsigned write_timeout_ms = 0; // 0: none (10 s under backpressure)
};

std::optional<parley::overflow_policy> parse_policy(const std::string& name) {
    if (name == "disconnect")
        return parley::overflow_policy::disconnect;
    if (name == "drop-oldest")
        return parley::overflow_policy::drop_oldest;
    if (name == "backpressure")
        return parley::overflow_policy::backpressure;
    return std::nullopt;
}

class broadcast_server {
public:
    broadcast_server(asio::io_context& ioc, const settings& s)
        : ioc_(ioc), settings_(s), acceptor_(ioc), pause_(ioc),
          hub_({.thread_safe = s.threads > 1,
                .on_slow_member = [](parley::session_base& member, std::size_t dropped) {
                    if (dropped == 0)
                        std::cerr << "session " << member.id() << ": slow consumer, disconnected\n";
                }}) {
        options_.thread_safe = s.threads > 1;
        options_.queue.max_bytes = s.max_queue_bytes;
        options_.queue.max_messages = s.max_queue_messages;
        options_.queue.policy = *parse_policy(s.policy);
        options_.write_timeout = std::chrono::milliseconds(s.write_timeout_ms);
    }

    bool start() {
        if (!parley::examples::open_acceptor(acceptor_, settings_.host, settings_.port))
            return false;
        accept();
        return true;
    }

    // Stops accepting and closes every session once what it was sent is
    // written; sessions that cannot drain within a second are cut off.
    void stop() {
        acceptor_.close();
        pause_.cancel();
        for (auto& member : hub_.members(room))
            member->close();
        auto deadline = std::make_shared<asio::steady_timer>(ioc_, std::chrono::seconds(1));
        deadline->async_wait([this, deadline](std::error_code) {
            for (auto& member : hub_.members(room))
                member->abort(parley::error::shut_down);
        });
    }

    parley::hub_counters counters() const { return hub_.counters(); }

private:
    static constexpr std::string_view room = "all";

    void accept() {
        // With several threads each connection gets a strand, so that its
        // handlers never run concurrently.
        const asio::any_io_executor executor =
            settings_.threads > 1 ? asio::any_io_executor(asio::make_strand(ioc_))
                                  : asio::any_io_executor(ioc_.get_executor());
        acceptor_.async_accept(executor, [this](std::error_code ec, tcp::socket socket) {
            if (!acceptor_.is_open())
                return;
            if (!ec) {
                backoff_.succeeded();
                serve(std::move(socket));
                return accept();
            }
            // Out of descriptors, say: pause (100 ms, growing to 1 s while
            // it lasts) rather than spin or stop accepting for good.
            const auto pause = backoff_.failed(ec);
            std::cerr << "accept: " << ec.message() << "; retrying in " << pause.count()
                      << " ms\n";
            pause_.expires_after(pause);
            pause_.async_wait([this](std::error_code wec) {
                if (!wec && acceptor_.is_open())
                    accept();
            });
        });
    }

    void serve(tcp::socket socket) {
        std::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        auto s = std::make_shared<session>(std::move(socket), options_);
        s->stream().max_payload(settings_.max_payload);
        s->stream().read_chunk_size(settings_.read_chunk);
        s->on_close([](parley::session_base& closed, std::error_code reason) {
            if (reason != asio::error::eof && reason != parley::error::session_closed &&
                reason != parley::error::slow_consumer)
                std::cerr << "session " << closed.id() << ": " << reason.message() << '\n';
        });
        hub_.join(room, s);
        // The frames of one read are relayed as they arrived: one shared
        // buffer and one queue entry per recipient for the whole batch.
        s->read_frame_batches([this](session& from, parley::frame_batch frames) {
            auto message = parley::make_raw_message(frames.wire(), frames.size());
            hub_.publish(room, message, settings_.no_echo ? &from : nullptr);
        });
    }

    asio::io_context& ioc_;
    settings settings_;
    tcp::acceptor acceptor_;
    asio::steady_timer pause_;
    parley::accept_backoff backoff_;
    parley::hub hub_;
    parley::session_options options_;
};

int main(int argc, char** argv) {
    settings s;
    parley::examples::command_line cli("broadcast_server",
                                       "Delivers every frame a client sends to every client.");
    cli.option("--host", s.host, "address to listen on")
        .option("--port", s.port, "port, 0 for any free one")
        .flag("--no-echo", s.no_echo, "do not send a client its own frames")
        .option("--threads", s.threads, "threads running the I/O", 1u, 64u)
        .option("--max-payload", s.max_payload, "largest frame payload accepted, in bytes")
        .option("--read-chunk", s.read_chunk, "bytes asked for by each read (a publisher's batch)")
        .option("--max-queue-bytes", s.max_queue_bytes, "per-client outbound queue limit, in bytes")
        .option("--max-queue-messages", s.max_queue_messages, "per-client outbound queue limit, in messages")
        .option("--policy", s.policy,
                "when a client's queue is full: disconnect, drop-oldest or backpressure")
        .option("--write-timeout", s.write_timeout_ms,
                "ms a client's socket may take nothing (or, with backpressure, hold senders)");
    if (auto status = cli.parse(argc, argv))
        return *status;
    if (!parse_policy(s.policy)) {
        std::cerr << "broadcast_server: --policy must be disconnect, drop-oldest or backpressure\n";
        return 2;
    }

    asio::io_context ioc(static_cast<int>(s.threads));
    broadcast_server server(ioc, s);
    if (!server.start())
        return 1;

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code, int) { server.stop(); });

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < s.threads; ++i)
        threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : threads)
        t.join();

    const auto c = server.counters();
    std::cout << "stopped: " << c.published << " published, " << c.deliveries << " delivered, "
              << c.slow_disconnects << " slow consumers disconnected, " << c.dropped << " dropped, "
              << c.publisher_pauses << " senders paused" << std::endl;
    return 0;
}
