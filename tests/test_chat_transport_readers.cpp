// The chat transports' input decoders (parley/chat/transport/readers.hpp),
// run by a session's read loop over loopback TCP.
#include <parley/chat/transport/readers.hpp>

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace tr = parley::chat::transport;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// Records every batch and resumes at once.
struct recorder {
    std::vector<std::string> inputs; // errors as "!code"
    bool finished = false;
    void on_batch(parley::chat::core::conn_id, tr::input_batch batch, std::function<void()> resume) {
        for (auto& in : batch.inputs)
            inputs.push_back(in.error ? "!" + std::string(parley::chat::to_string(*in.error))
                                      : in.text);
        finished = batch.finished;
        resume();
    }
};

struct pair_fixture {
    asio::io_context ioc;
    tcp::socket client{ioc};
    std::shared_ptr<parley::session<tcp::socket>> server;
    pair_fixture() {
        tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        client.connect(acceptor.local_endpoint());
        server = std::make_shared<parley::session<tcp::socket>>(acceptor.accept());
    }
    void send(std::string_view bytes) { asio::write(client, asio::buffer(bytes)); }
    template <class Pred>
    bool run_until(Pred done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            ioc.restart();
            ioc.run_for(20ms);
        }
        return done();
    }
};

} // namespace

TEST_CASE("line reader: CRLF and LF lines, an over-long line, a last line without newline") {
    pair_fixture f;
    auto sink = std::make_shared<recorder>();
    f.server->read_with(tr::line_input<recorder>(sink, 1, 8));
    f.send("alice\r\nhel");
    f.send("lo\n123456789\nok\nlast");
    f.client.shutdown(tcp::socket::shutdown_send);
    REQUIRE(f.run_until([&] { return sink->finished; }));
    CHECK(sink->inputs == std::vector<std::string>{"alice", "hello", "!line_too_long", "ok", "last"});
}

TEST_CASE("frame reader: frames in one read are one batch; an oversized frame is reported") {
    pair_fixture f;
    f.server->stream().max_payload(16);
    auto sink = std::make_shared<recorder>();
    f.server->read_with(tr::frame_input<recorder>(sink, 1));
    f.send(std::string("\0\0\0\x05hello\0\0\0\x02hi", 15));
    REQUIRE(f.run_until([&] { return sink->inputs.size() == 2; }));
    CHECK(sink->inputs == std::vector<std::string>{"hello", "hi"});
    f.send(std::string("\0\0\x10\0", 4)); // 4096 bytes announced
    REQUIRE(f.run_until([&] { return sink->inputs.size() == 3; }));
    CHECK(sink->inputs[2] == "!frame_too_large");
}

TEST_CASE("frame reader: the peer's FIN finishes the input") {
    pair_fixture f;
    auto sink = std::make_shared<recorder>();
    f.server->read_with(tr::frame_input<recorder>(sink, 1));
    f.send(std::string("\0\0\0\x03" "bye", 7));
    f.client.shutdown(tcp::socket::shutdown_send);
    REQUIRE(f.run_until([&] { return sink->finished; }));
    CHECK(sink->inputs == std::vector<std::string>{"bye"});
    CHECK(f.server->is_open()); // a FIN leaves the closing to the core
}

TEST_CASE("frame reader: a FIN inside a frame closes the session with truncated_frame") {
    pair_fixture f;
    auto sink = std::make_shared<recorder>();
    std::error_code reason;
    f.server->on_close([&](parley::session_base&, std::error_code ec) { reason = ec; });
    f.server->read_with(tr::frame_input<recorder>(sink, 1));
    f.send(std::string("\0\0\0\x05he", 6));
    f.client.shutdown(tcp::socket::shutdown_send);
    REQUIRE(f.run_until([&] { return bool(reason); }));
    CHECK(reason == parley::error::truncated_frame);
    CHECK_FALSE(sink->finished);
    CHECK(sink->inputs.empty());
}

TEST_CASE("line reader: a partial line waits in the line decoder, not in the session's buffer") {
    pair_fixture f;
    auto sink = std::make_shared<recorder>();
    f.server->read_with(tr::line_input<recorder>(sink, 1, 64));
    f.send("alice\npart");
    REQUIRE(f.run_until([&] { return sink->inputs.size() == 1; }));
    CHECK(f.server->stream().buffered_input().empty());
    f.send("ial\n");
    REQUIRE(f.run_until([&] { return sink->inputs.size() == 2; }));
    CHECK(sink->inputs[1] == "partial");
}
