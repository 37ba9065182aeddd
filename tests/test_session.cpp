// session<Stream> over real loopback TCP: the read loops (frames, or bytes
// handed to a decoder with holds), the queue written by gathered writes,
// close(), close(last) and abort(), the close handlers' reasons.
#include <parley/hub/session.hpp>

#include <parley/hub/hub.hpp>
#include <parley/net/socket.hpp>

#include "support/frame_message.hpp"

#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using session = parley::session<tcp::socket>;

namespace {

using parley::test::frame;

// An io_context on a thread of its own, and sessions accepted from it.
struct loopback {
    loopback() : io([this] { ioc.run(); }) {}
    ~loopback() {
        for (auto& s : sessions)
            s->abort(parley::error::shut_down);
        work.reset();
        io.join();
    }

    // A connected client and the session of its server side, on a strand.
    std::pair<std::shared_ptr<session>, parley::tcp_socket> connect(
        parley::session_options options = {}) {
        auto client = parley::tcp_socket::connect("127.0.0.1", acceptor.local_endpoint().port(), 5s);
        client.set_timeout(5s);
        tcp::socket socket(asio::make_strand(ioc));
        acceptor.accept(socket);
        auto s = std::make_shared<session>(std::move(socket), options);
        sessions.push_back(s);
        return {s, std::move(client)};
    }

    // The reason the session's close handlers will get. Register it before
    // the session can close: close handlers are not guarded by a lock.
    static std::future<std::error_code> close_reason(session& s) {
        auto reason = std::make_shared<std::promise<std::error_code>>();
        auto got = reason->get_future();
        s.on_close([reason](parley::session_base&, std::error_code ec) { reason->set_value(ec); });
        return got;
    }

    static std::error_code wait(std::future<std::error_code>& reason) {
        if (reason.wait_for(10s) != std::future_status::ready)
            return parley::error::timed_out;
        return reason.get();
    }

    asio::io_context ioc;
    asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
    tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    std::vector<std::shared_ptr<session>> sessions;
    std::thread io;
};

} // namespace

TEST_CASE("session: frames sent are written in order; close() writes them all, then closes") {
    loopback l;
    auto [s, client] = l.connect();
    auto reason = loopback::close_reason(*s);
    for (int i = 0; i < 100; ++i)
        CHECK(s->send(frame("m" + std::to_string(i))));
    s->close();
    CHECK_FALSE(s->send(frame("after close"))); // refused: the session is closing
    for (int i = 0; i < 100; ++i)
        CHECK(client.recv_frame() == "m" + std::to_string(i));
    std::error_code ec;
    client.recv_frame(5s, ec);
    CHECK(ec == asio::error::eof);
    CHECK(loopback::wait(reason) == parley::error::session_closed);
    CHECK(s->stats().sent_messages == 100);
    CHECK(s->stats().queued_bytes == 0);
}

TEST_CASE("session: read_frames hands each frame to the handler; the peer's close is eof") {
    loopback l;
    auto [s, client] = l.connect();
    auto got = std::make_shared<std::vector<std::string>>();
    auto reason = std::make_shared<std::promise<std::error_code>>();
    auto closed = reason->get_future();
    asio::dispatch(s->get_executor(), [s = s, got, reason] {
        s->on_close([reason](parley::session_base&, std::error_code ec) { reason->set_value(ec); });
        s->read_frames([got](session&, parley::frame_view f) {
            got->emplace_back(parley::as_string_view(f));
        });
    });
    for (const char* text : {"one", "", "three"})
        client.send_frame(text);
    client.close();
    REQUIRE(closed.wait_for(10s) == std::future_status::ready);
    CHECK(closed.get() == asio::error::eof);
    CHECK(*got == std::vector<std::string>{"one", "", "three"});
}

TEST_CASE("session: a queue over its limit disconnects a slow reader with slow_consumer") {
    loopback l;
    auto [s, client] = l.connect({.queue = {.max_bytes = 64 * 1024, .max_messages = 1000}});
    auto reason = loopback::close_reason(*s);
    // Nobody reads: the socket buffers fill, then the queue, then it overflows.
    const auto big = frame(std::string(16 * 1024, 'x'));
    bool refused = false;
    for (int i = 0; i < 10000 && !refused; ++i)
        refused = !s->send(big);
    CHECK(refused);
    CHECK(loopback::wait(reason) == parley::error::slow_consumer);
    CHECK_FALSE(s->is_open());
}

TEST_CASE("session: abort() drops what is queued and reports its reason") {
    loopback l;
    auto [s, client] = l.connect();
    auto reason = loopback::close_reason(*s);
    s->abort(parley::error::shut_down);
    CHECK_FALSE(s->send(frame("too late")));
    CHECK(loopback::wait(reason) == parley::error::shut_down);
    std::error_code ec;
    client.recv_frame(5s, ec);
    CHECK(ec); // end of stream or reset, and no frame
}

TEST_CASE("session: flushes bypass the executor only when it is the io_context's own, never a strand") {
    // A session posts its flushes straight to the io_context when its
    // polymorphic executor holds exactly that; anything else, above all a
    // strand, must be posted through, or two threads would run one
    // session's handlers at once.
    asio::io_context ioc;
    CHECK(parley::detail::plain_io_executor(asio::any_io_executor(ioc.get_executor())) != nullptr);
    CHECK(parley::detail::plain_io_executor(asio::any_io_executor(asio::make_strand(ioc))) ==
          nullptr);
    CHECK(parley::detail::plain_io_executor(
              asio::any_io_executor(asio::make_strand(asio::any_io_executor(ioc.get_executor())))) ==
          nullptr);
    CHECK(parley::detail::plain_io_executor(asio::any_io_executor{}) == nullptr);
}

TEST_CASE("session: sessions that are not thread-safe share one posted flush per publish") {
    asio::io_context ioc; // run by this thread only, as thread_safe = false requires
    // Nothing reads, so without this the io_context would stop when idle
    // and every later poll() would return 0 whatever was posted.
    auto work = asio::make_work_guard(ioc);
    tcp::acceptor acceptor{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
    parley::hub hub({.thread_safe = false});
    std::vector<parley::tcp_socket> clients;
    std::vector<std::shared_ptr<session>> sessions;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(
            parley::tcp_socket::connect("127.0.0.1", acceptor.local_endpoint().port(), 5s));
        clients.back().set_timeout(5s);
        tcp::socket socket(ioc);
        acceptor.accept(socket);
        sessions.push_back(
            std::make_shared<session>(std::move(socket), parley::session_options{.thread_safe = false}));
        hub.join("room", sessions.back());
    }
    CHECK(hub.publish("room", frame("one")) == 3);
    CHECK(hub.publish("room", frame("two")) == 3);
    CHECK(ioc.poll_one() == 1); // one handler writes both messages to all three
    for (auto& c : clients) {
        CHECK(c.recv_frame() == "one");
        CHECK(c.recv_frame() == "two");
    }
    CHECK(ioc.poll() == 0); // and nothing else was posted
    // A flush that closes a session (its peer is gone) leaves the others whole.
    clients[1].close();
    const std::string big(64 * 1024, 'x');
    int published = 0;
    for (; published < 50 && sessions[1]->is_open(); ++published) {
        hub.publish("room", frame(big));
        ioc.poll();
        std::this_thread::sleep_for(2ms);
    }
    CHECK_FALSE(sessions[1]->is_open());
    CHECK(sessions[0]->is_open());
    CHECK(sessions[2]->is_open());
    // Both others get every frame, whole and in order, then one more.
    CHECK(hub.publish("room", frame("after")) == 2);
    for (const int i : {0, 2}) {
        CAPTURE(i);
        int received = 0;
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (received <= published && std::chrono::steady_clock::now() < deadline) {
            ioc.poll(); // this thread is the only one that may flush
            std::error_code ec;
            const std::string f = clients[i].recv_frame(5ms, ec);
            if (ec == parley::error::timed_out)
                continue;
            REQUIRE_FALSE(ec);
            REQUIRE(f == (received < published ? big : "after"));
            ++received;
        }
        CHECK(received == published + 1);
        CHECK(sessions[i]->stats().dropped_messages == 0);
    }
    for (auto& s : sessions)
        s->abort(parley::error::shut_down);
    ioc.poll();
    work.reset();
}


namespace {

// A decoder of "\n"-terminated lines, one line per decode() call (the
// session calls it again while bytes are left): what each line does is the
// test's. At the end of input it records the bytes left over and the
// reason, then closes the session.
struct line_splitter {
    struct state {
        std::mutex mutex;
        std::vector<std::string> lines;
        std::promise<std::pair<std::string, std::error_code>> end;
        std::size_t count() {
            std::lock_guard lock(mutex);
            return lines.size();
        }
    };
    std::shared_ptr<state> st = std::make_shared<state>();
    std::function<parley::read_action(session&, const std::string&)> on_line =
        [](session&, const std::string&) { return parley::read_action::more; };

    parley::decode_result decode(session& s, parley::input_view bytes) {
        const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        const auto newline = text.find('\n');
        if (newline == std::string_view::npos)
            return {0, parley::read_action::more};
        std::string line(text.substr(0, newline));
        {
            std::lock_guard lock(st->mutex);
            st->lines.push_back(line);
        }
        return {newline + 1, on_line(s, line)};
    }
    void finish(session& s, parley::input_view rest, std::error_code ec) {
        st->end.set_value({std::string(reinterpret_cast<const char*>(rest.data()), rest.size()), ec});
        s.close();
    }
};

static_assert(parley::input_decoder<line_splitter, session>);

template <class Pred>
bool eventually(Pred done, std::chrono::milliseconds bound = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(1ms);
    return done();
}

} // namespace

TEST_CASE("session: read_with holds reading at the decoder's word until release_reading()") {
    loopback l;
    auto [s, client] = l.connect();
    line_splitter d;
    auto st = d.st;
    d.on_line = [](session&, const std::string& line) {
        return line == "hold" ? parley::read_action::hold : parley::read_action::more;
    };
    asio::dispatch(s->get_executor(), [s = s, d] { s->read_with(d); });
    // "b" arrives with the hold, in the same read: it waits in the buffer.
    client.send(std::string_view("a\nhold\nb\n"));
    REQUIRE(eventually([&] { return st->count() >= 2; }));
    client.send(std::string_view("c\n"));
    std::this_thread::sleep_for(100ms); // a window for a wrong decode to happen
    CHECK(st->count() == 2);
    s->release_reading(); // from another thread, as a transport's core would
    REQUIRE(eventually([&] { return st->count() == 4; }));
    std::lock_guard lock(st->mutex);
    CHECK(st->lines == std::vector<std::string>{"a", "hold", "b", "c"});
}

TEST_CASE("session: a decoder closes with a last message; the peer gets it, then EOF") {
    loopback l;
    auto [s, client] = l.connect();
    auto reason = loopback::close_reason(*s);
    line_splitter d;
    d.on_line = [](session& self, const std::string& line) {
        if (line != "quit")
            return self.send(frame("echo " + line)), parley::read_action::more;
        self.close(frame("bye"));
        CHECK_FALSE(self.send(frame("after the last"))); // refused: closing
        self.close(frame("second last")); // dropped: one last message only
        return parley::read_action::stop;
    };
    asio::dispatch(s->get_executor(), [s = s, d] { s->read_with(d); });
    client.send(std::string_view("hi\nquit\nignored\n"));
    CHECK(client.recv_frame() == "echo hi");
    CHECK(client.recv_frame() == "bye");
    std::error_code ec;
    client.recv_frame(5s, ec);
    CHECK(ec == asio::error::eof);
    CHECK(loopback::wait(reason) == parley::error::session_closed);
}

TEST_CASE("session: a lingering close: a peer still sending gets the last message, not a reset") {
    loopback l;
    // Small socket buffers on both sides, so that most of what the client
    // sends is still to come when the session closes.
    l.acceptor.set_option(asio::socket_base::receive_buffer_size(8192));
    auto [s, client] = l.connect();
    client.set_option(asio::socket_base::send_buffer_size(8192));
    auto reason = loopback::close_reason(*s);
    line_splitter d;
    d.on_line = [](session& self, const std::string&) {
        self.close(frame("too much"));
        return parley::read_action::stop;
    };
    asio::dispatch(s->get_executor(), [s = s, d] { s->read_with(d); });
    // A line, then 2 MiB the session never decodes. A socket closed with
    // that unread would reset the connection: this send would fail and
    // "too much" could be lost before the client reads it.
    std::error_code ec;
    client.send(std::string("first\n") + std::string(2 << 20, 'x'), 5s, ec);
    CHECK_FALSE(ec);
    // The close handlers ran when the lingering started, before this
    // client closed its side.
    CHECK(loopback::wait(reason) == parley::error::session_closed);
    CHECK(client.recv_frame(5s, ec) == "too much");
    CHECK_FALSE(ec);
    client.recv_frame(5s, ec);
    CHECK(ec == asio::error::eof);
}

TEST_CASE("session: lingering ends after the linger time when the peer never closes") {
    loopback l;
    auto [s, client] = l.connect({.linger = 200ms});
    auto reason = loopback::close_reason(*s);
    s->close(frame("bye"));
    CHECK(client.recv_frame() == "bye");
    std::error_code ec;
    client.recv_frame(5s, ec);
    CHECK(ec == asio::error::eof); // the session shut its sending side
    CHECK(loopback::wait(reason) == parley::error::session_closed);
    // The client keeps its side open. The lingering read and timer hold
    // the session until the linger time is over, then let it go (to this
    // test's and the loopback's references).
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (s.use_count() > 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    CHECK(s.use_count() == 2);
}

TEST_CASE("session: close(last) queues past a full queue, without dropping, and sends it last") {
    loopback l;
    const parley::queue_limits limits{.max_bytes = 256 * 1024, .max_messages = 1000,
                                      .policy = parley::overflow_policy::drop_oldest};
    auto [s, client] = l.connect({.queue = limits});
    auto reason = loopback::close_reason(*s);
    // Nobody reads: the socket buffers fill, then the queue.
    const auto big = frame(std::string(16 * 1024, 'x'));
    for (int i = 0; i < 10000 && s->stats().queued_bytes + big->size() <= limits.max_bytes; ++i)
        REQUIRE(s->send(big));
    REQUIRE(s->stats().queued_bytes + big->size() > limits.max_bytes);
    const auto dropped = s->stats().dropped_messages;
    const std::string bye = "bye" + std::string(16 * 1024, 'z'); // a send would drop for it
    s->close(frame(bye));
    CHECK(s->stats().dropped_messages == dropped);
    CHECK(s->stats().peak_queued_bytes > limits.max_bytes);
    std::string last;
    std::error_code ec;
    for (int i = 0; i < 10000; ++i) {
        auto f = client.recv_frame(5s, ec);
        if (ec)
            break;
        last = std::move(f);
    }
    CHECK(ec == asio::error::eof);
    CHECK(last == bye);
    CHECK(loopback::wait(reason) == parley::error::session_closed);
}

TEST_CASE("session: at EOF the decoder gets the partial input left, and closes when it likes") {
    loopback l;
    auto [s, client] = l.connect();
    auto reason = loopback::close_reason(*s);
    line_splitter d;
    auto end = d.st->end.get_future();
    asio::dispatch(s->get_executor(), [s = s, d] { s->read_with(d); });
    client.send(std::string_view("whole\npart"));
    client.shutdown(parley::shutdown_type::send);
    REQUIRE(end.wait_for(10s) == std::future_status::ready);
    const auto [rest, ec] = end.get();
    CHECK(rest == "part");
    CHECK(ec == asio::error::eof);
    CHECK(d.st->count() == 1);
    CHECK(loopback::wait(reason) == parley::error::session_closed); // its close(), not the EOF
}

TEST_CASE("session: back-pressure pauses a decoder-driven publisher until its reader drains") {
    loopback l;
    // The reader: a queue that holds publishers above 64 KiB, a small
    // socket buffer, a peer that does not read yet.
    auto [reader, reader_client] = l.connect(
        {.queue = {.max_bytes = 8 * 1024 * 1024, .max_messages = 10000,
                   .policy = parley::overflow_policy::backpressure, .high_water = 64 * 1024},
         .write_timeout = 20s});
    reader->stream().next_layer().set_option(asio::socket_base::send_buffer_size(4096));
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    auto connected = l.connect();
    auto& publisher = connected.first;
    auto& publisher_client = connected.second;
    publisher->stream().read_chunk_size(1024); // about one line per read
    constexpr std::size_t lines = 200;
    const auto big = frame(std::string(16 * 1024, 'y'));
    line_splitter d;
    auto st = d.st;
    d.on_line = [r = reader, big](session&, const std::string&) {
        r->send(big);
        return parley::read_action::more;
    };
    asio::dispatch(publisher->get_executor(), [p = publisher, d] { p->read_with(d); });
    auto sender = std::async(std::launch::async, [&c = publisher_client] {
        const std::string line(999, 'p');
        for (std::size_t i = 0; i < lines; ++i)
            c.send(line + "\n", 10s);
    });
    REQUIRE(eventually([&] { return publisher->stats().read_pauses >= 1; }));
    // The reader's peer reads nothing: the pauses end as long as the socket
    // buffers take bytes, then the publisher stays paused, its lines unread.
    std::size_t decoded = 0;
    REQUIRE(eventually([&] {
        decoded = st->count();
        std::this_thread::sleep_for(200ms);
        return st->count() == decoded;
    }));
    CHECK(decoded < lines);
    // The reader drains: the publisher reads on, and nothing was lost.
    std::size_t received = 0;
    std::error_code ec;
    while (received < lines && !ec) {
        reader_client.recv_frame(10s, ec);
        received += ec ? 0 : 1;
    }
    CHECK(received == lines);
    CHECK(eventually([&] { return st->count() == lines; }));
    sender.get();
    CHECK(reader->stats().dropped_messages == 0);
    CHECK(reader->is_open());
}

TEST_CASE("session: what an idle session never uses is not in the object") {
    // The write deadline's and the lingering close's timers, the frame
    // writer's buffers and the portable write path's are each made on
    // first use; the lock is a word, not a std::mutex; the close handlers
    // one std::function. A chat server holds one session per client
    // (616 bytes before, with libstdc++ on x86-64).
#if defined(__GLIBCXX__) && defined(__x86_64__)
    CHECK(sizeof(parley::session<asio::ip::tcp::socket>) <= 528);
#endif
    CHECK(sizeof(parley::detail::optional_mutex) <= 8);
}
