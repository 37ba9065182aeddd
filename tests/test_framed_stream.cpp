// Tests for include/parley/framed_stream.hpp. Included first: the header
// must stand on its own.
#include <parley/stream/framed_stream.hpp>

#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/buffer.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/connect_pair.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

namespace {

using parley::as_payload;
using parley::as_string_view;
using parley::frame_view;
using namespace std::chrono_literals;

using local_socket = asio::local::stream_protocol::socket;
using tcp_socket = asio::ip::tcp::socket;

// --- socket pairs -------------------------------------------------------------

void connect(local_socket& a, local_socket& b) { asio::local::connect_pair(a, b); }

void connect(tcp_socket& a, tcp_socket& b) {
    asio::ip::tcp::acceptor acceptor(a.get_executor(),
                                     {asio::ip::address_v4::loopback(), 0}); // any free port
    a.connect(acceptor.local_endpoint());
    acceptor.accept(b);
}

template <class Socket>
struct connected_sockets {
    Socket first, second;
    explicit connected_sockets(asio::io_context& io) : first(io), second(io) {
        connect(first, second);
    }
};

// How a test case's framed_streams hold their socket: by value, or by
// reference to a socket owned elsewhere.
template <class Socket, bool ByRef>
struct kind {
    using socket = Socket;
    static constexpr bool by_reference = ByRef;
};
using local_owned = kind<local_socket, false>;
using local_ref = kind<local_socket, true>;
using tcp_owned = kind<tcp_socket, false>;
using tcp_ref = kind<tcp_socket, true>;
#define PARLEY_STREAM_KINDS local_owned, local_ref, tcp_owned, tcp_ref

// Two framed_streams talking to each other: a writes, b reads (or the
// other way). a.next_layer() and b.next_layer() are the raw sockets, for
// playing a misbehaving peer.
template <class Kind, parley::frame_format Format = parley::default_frame_format>
struct stream_pair : connected_sockets<typename Kind::socket> {
    using socket = typename Kind::socket;
    using layer = std::conditional_t<Kind::by_reference, socket&, socket>;
    using stream = parley::framed_stream<layer, Format>;

    stream a, b;

    explicit stream_pair(asio::io_context& io)
        : connected_sockets<socket>(io), a(pass(this->first)), b(pass(this->second)) {}

private:
    static decltype(auto) pass(socket& s) {
        if constexpr (Kind::by_reference)
            return (s);
        else
            return std::move(s);
    }
};

// Runs until the io_context runs out of work, with a deadline so that a
// bug shows up as a failure rather than a hung test run.
void run(asio::io_context& io) {
    io.restart();
    io.run_for(10s);
    CHECK_MESSAGE(io.stopped(), "the io_context still had work after 10 s");
}

// Runs handlers until `done` holds (used while some other operation is
// deliberately left pending).
void run_until(asio::io_context& io, const std::function<bool()>& done) {
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        io.run_one_for(100ms);
    CHECK_MESSAGE(done(), "condition not reached within 10 s");
}

std::string pattern(std::size_t n, unsigned seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 9)) & 0xFF);
    return s;
}

std::string header(std::uint32_t size) {
    return {static_cast<char>(size >> 24), static_cast<char>(size >> 16),
            static_cast<char>(size >> 8), static_cast<char>(size)};
}

std::string frame(std::string_view payload) {
    return header(static_cast<std::uint32_t>(payload.size())) + std::string(payload);
}

template <class Socket>
void raw_write(Socket& socket, std::string_view bytes) {
    asio::write(socket, asio::buffer(bytes));
}

std::vector<asio::const_buffer> payload_buffers(const std::vector<std::string>& payloads) {
    std::vector<asio::const_buffer> buffers;
    for (const auto& p : payloads)
        buffers.push_back(as_payload(p));
    return buffers;
}

// --- a scriptable stream, after Beast's test::stream ---------------------------

// A minimal AsyncReadStream/AsyncWriteStream (and SyncReadStream/
// SyncWriteStream) over strings: reads come from `input`, at most
// `max_read` bytes each, then asio::error::eof; writes go to `output`, at
// most `max_write` bytes each. The operation numbered `fail_at` (reads and
// writes counted together from 0) fails with `fail_error`, as Beast's
// fail_count does. It is not a socket, so framed_stream uses its generic
// read path on it.
class test_stream {
    asio::io_context::executor_type executor_;

public:
    using executor_type = asio::io_context::executor_type;

    explicit test_stream(asio::io_context& io, std::string in = {})
        : executor_(io.get_executor()), input(std::move(in)) {}

    executor_type get_executor() noexcept { return executor_; }

    std::string input;
    std::size_t max_read = std::numeric_limits<std::size_t>::max();
    std::string output;
    std::size_t max_write = std::numeric_limits<std::size_t>::max();
    std::size_t fail_at = std::numeric_limits<std::size_t>::max();
    std::error_code fail_error = asio::error::connection_reset;
    std::size_t operations = 0;
    std::size_t reads = 0;

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, std::error_code& ec) {
        ++reads;
        if (operations++ == fail_at) {
            ec = fail_error;
            return 0;
        }
        if (asio::buffer_size(buffers) == 0) {
            ec.clear();
            return 0;
        }
        if (position_ == input.size()) {
            ec = asio::error::eof;
            return 0;
        }
        const std::size_t available = std::min(max_read, input.size() - position_);
        const std::size_t n =
            asio::buffer_copy(buffers, asio::buffer(input.data() + position_, available));
        position_ += n;
        ec.clear();
        return n;
    }

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers) {
        std::error_code ec;
        const std::size_t n = read_some(buffers, ec);
        if (ec)
            throw std::system_error(ec);
        return n;
    }

    template <class ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers, std::error_code& ec) {
        if (operations++ == fail_at) {
            ec = fail_error;
            return 0;
        }
        const std::size_t n = std::min(max_write, asio::buffer_size(buffers));
        const std::size_t at = output.size();
        output.resize(at + n);
        asio::buffer_copy(asio::buffer(output.data() + at, n), buffers);
        ec.clear();
        return n;
    }

    template <class ConstBufferSequence>
    std::size_t write_some(const ConstBufferSequence& buffers) {
        std::error_code ec;
        const std::size_t n = write_some(buffers, ec);
        if (ec)
            throw std::system_error(ec);
        return n;
    }

    // The transfer happens at once; the handler runs later, through the
    // executor, as a real stream's would.
    template <class MutableBufferSequence, class Token>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const MutableBufferSequence& b) {
                std::error_code ec;
                const std::size_t n = read_some(b, ec);
                complete_later(std::move(handler), ec, n);
            },
            token, buffers);
    }

    template <class ConstBufferSequence, class Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::size_t)>(
            [this](auto handler, const ConstBufferSequence& b) {
                std::error_code ec;
                const std::size_t n = write_some(b, ec);
                complete_later(std::move(handler), ec, n);
            },
            token, buffers);
    }

private:
    template <class Handler>
    void complete_later(Handler handler, std::error_code ec, std::size_t n) {
        auto ex = asio::get_associated_executor(handler, executor_);
        asio::post(ex, [h = std::move(handler), ec, n]() mutable { std::move(h)(ec, n); });
    }

    std::size_t position_ = 0;
};

static_assert(!parley::detail::waitable_socket<test_stream>);
static_assert(parley::detail::waitable_socket<local_socket>);
static_assert(parley::detail::waitable_socket<tcp_socket>);

// Reads frames with async_read_frame until an error, collecting payloads.
template <class Stream>
std::error_code read_all_async(asio::io_context& io, Stream& stream,
                               std::vector<std::string>& out) {
    std::error_code result;
    std::function<void()> next = [&] {
        stream.async_read_frame([&](std::error_code ec, frame_view payload) {
            if (ec) {
                result = ec;
                return;
            }
            out.emplace_back(as_string_view(payload));
            next();
        });
    };
    next();
    run(io);
    return result;
}

std::string encode_all(const std::vector<std::string>& payloads) {
    std::string wire;
    for (const auto& p : payloads)
        wire += frame(p);
    return wire;
}

} // namespace

// --- types ----------------------------------------------------------------------

static_assert(std::is_same_v<parley::framed_stream<tcp_socket&>::next_layer_type, tcp_socket>);
static_assert(std::is_same_v<parley::framed_stream<tcp_socket>::next_layer_type, tcp_socket>);
static_assert(std::is_same_v<parley::framed_stream<tcp_socket>::executor_type,
                             tcp_socket::executor_type>);
static_assert(std::is_move_constructible_v<parley::framed_stream<tcp_socket>>);

// --- completion tokens ----------------------------------------------------------

TEST_CASE_TEMPLATE("framed_stream: callbacks, never invoked from the initiating function", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);

    bool write_returned = false, read_returned = false;
    std::size_t written = 0;
    std::string got;
    p.a.async_write_frame(as_payload("hello"), [&](std::error_code ec, std::size_t n) {
        CHECK(write_returned);
        CHECK_FALSE(ec);
        written = n;
    });
    write_returned = true;
    p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
        CHECK(read_returned);
        CHECK_FALSE(ec);
        got = as_string_view(payload);
    });
    read_returned = true;
    run(io);
    CHECK(written == 5);
    CHECK(got == "hello");

    // Several frames in one write: after the first read the rest are
    // buffered, and a read that finds its frame already there still
    // completes later, not inside async_read_frame.
    std::error_code ec;
    p.a.write_frames(payload_buffers({"one", "two", "three"}), ec);
    REQUIRE_FALSE(ec);
    std::vector<std::string> frames;
    bool inner_returned = false;
    p.b.async_read_frame([&](std::error_code ec1, frame_view first) {
        REQUIRE_FALSE(ec1);
        frames.emplace_back(as_string_view(first));
        CHECK(p.b.buffered_bytes() == frame("two").size() + frame("three").size());
        // Started from a handler, with its frame already buffered.
        p.b.async_read_frame([&](std::error_code ec2, frame_view second) {
            CHECK(inner_returned);
            CHECK_FALSE(ec2);
            frames.emplace_back(as_string_view(second));
        });
        inner_returned = true;
    });
    run(io);
    CHECK(frames == std::vector<std::string>{"one", "two"});

    bool third_returned = false;
    p.b.async_read_frame([&](std::error_code ec3, frame_view third) {
        CHECK(third_returned);
        CHECK_FALSE(ec3);
        frames.emplace_back(as_string_view(third));
    });
    third_returned = true;
    run(io);
    CHECK(frames.back() == "three");
    CHECK(p.b.buffered_bytes() == 0);
}

// A write the socket takes at once, and a read whose frame is already
// buffered, complete without waiting for the socket (on a plain socket
// through a zero-length operation on it, not asio::post): still later, and
// on the handler's own executor.
TEST_CASE_TEMPLATE("framed_stream: immediate completions run on the handler's strand", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    auto strand = asio::make_strand(io);

    std::error_code ec;
    p.a.write_frames(payload_buffers({"one", "two"}), ec);
    REQUIRE_FALSE(ec);
    std::vector<std::string> got;
    int on_strand = 0;
    bool returned = false;
    p.b.async_read_frame(asio::bind_executor(strand, [&](std::error_code ec1, frame_view first) {
        REQUIRE_FALSE(ec1);
        on_strand += strand.running_in_this_thread();
        got.emplace_back(as_string_view(first));
        // "two" is buffered: this read finds its frame without any I/O.
        returned = false;
        p.b.async_read_frame(asio::bind_executor(strand, [&](std::error_code ec2, frame_view second) {
            CHECK(returned);
            CHECK_FALSE(ec2);
            on_strand += strand.running_in_this_thread();
            got.emplace_back(as_string_view(second));
        }));
        returned = true;
    }));
    run(io);
    CHECK(got == std::vector<std::string>{"one", "two"});

    returned = false;
    std::size_t written = 0;
    p.a.async_write_frame(as_payload("three"), asio::bind_executor(strand, [&](std::error_code ec3, std::size_t n) {
        CHECK(returned);
        CHECK_FALSE(ec3);
        on_strand += strand.running_in_this_thread();
        written = n;
    }));
    returned = true;
    run(io);
    CHECK(written == 5);
    CHECK(on_strand == 3);
    CHECK(p.b.read_frame(ec).size() == 5);
}

// The socket's own executor a strand (as chat_server gives each connection
// when it runs on several threads) and handlers without one of their own:
// completions that need no I/O go through that strand too, never straight
// to the io_context behind it.
TEST_CASE("framed_stream: on a socket whose executor is a strand, immediate completions run on it") {
    asio::io_context io;
    const auto strand = asio::make_strand(io);
    local_socket first(strand), second(strand);
    connect(first, second);
    parley::framed_stream<local_socket> a(std::move(first)), b(std::move(second));

    std::error_code ec;
    a.write_frames(payload_buffers({"one", "two"}), ec);
    REQUIRE_FALSE(ec);
    int on_strand = 0;
    std::vector<std::string> got;
    b.async_read_frame([&](std::error_code ec1, frame_view one) {
        REQUIRE_FALSE(ec1);
        on_strand += strand.running_in_this_thread();
        got.emplace_back(as_string_view(one));
        b.async_read_frame([&](std::error_code ec2, frame_view two) { // buffered
            CHECK_FALSE(ec2);
            on_strand += strand.running_in_this_thread();
            got.emplace_back(as_string_view(two));
        });
    });
    run(io);
    CHECK(got == std::vector<std::string>{"one", "two"});

    // Input the socket has at once: the read completes without waiting.
    a.write_frames(payload_buffers({"three"}), ec);
    REQUIRE_FALSE(ec);
    std::size_t input = 0;
    b.async_read_some_input([&](std::error_code ec3, std::size_t) {
        CHECK_FALSE(ec3);
        on_strand += strand.running_in_this_thread();
        input = b.buffered_input().size();
    });
    run(io);
    CHECK(input > 0);

    std::size_t written = 0;
    a.async_write_frame(as_payload("four"), [&](std::error_code ec4, std::size_t n) {
        CHECK_FALSE(ec4);
        on_strand += strand.running_in_this_thread();
        written = n;
    });
    run(io);
    CHECK(written == 4);
    CHECK(on_strand == 4);
}

TEST_CASE_TEMPLATE("framed_stream: asio::use_awaitable", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    std::vector<std::string> got;
    std::size_t written = 0;
    std::error_code oversize;
    bool finished = false;

    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (std::string_view text : {"alpha", "", "连上了"}) {
                written += co_await p.a.async_write_frame(as_payload(text), asio::use_awaitable);
                const frame_view payload = co_await p.b.async_read_frame(asio::use_awaitable);
                got.emplace_back(as_string_view(payload));
            }
            const std::vector<std::string> batch{"x", "yy", "zzz"};
            written += co_await p.a.async_write_frames(payload_buffers(batch), asio::use_awaitable);
            for (int i = 0; i < 3; ++i)
                got.emplace_back(
                    as_string_view(co_await p.b.async_read_frame(asio::use_awaitable)));

            // Errors arrive as exceptions.
            p.a.max_payload(2);
            try {
                co_await p.a.async_write_frame(as_payload("abc"), asio::use_awaitable);
            } catch (const std::system_error& e) {
                oversize = e.code();
            }
            finished = true;
        },
        [](std::exception_ptr e) {
            if (e)
                std::rethrow_exception(e);
        });
    run(io);
    CHECK(finished);
    CHECK(got == std::vector<std::string>{"alpha", "", "连上了", "x", "yy", "zzz"});
    CHECK(written == 5 + 0 + 9 + 6);
    CHECK(oversize == parley::error::frame_too_large);
}

TEST_CASE_TEMPLATE("framed_stream: asio::use_future", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    auto work = asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });

    auto written = p.a.async_write_frame(as_payload("future"), asio::use_future);
    auto read = p.b.async_read_frame(asio::use_future);
    CHECK(written.get() == 6);
    CHECK(as_string_view(read.get()) == "future");

    auto batch = p.a.async_write_frames(payload_buffers({"a", "bc"}), asio::use_future);
    CHECK(batch.get() == 3);
    CHECK(as_string_view(p.b.async_read_frame(asio::use_future).get()) == "a");
    CHECK(as_string_view(p.b.async_read_frame(asio::use_future).get()) == "bc");

    // An error becomes the future's exception.
    p.a.max_payload(1);
    auto refused = p.a.async_write_frame(as_payload("too big"), asio::use_future);
    try {
        refused.get();
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == parley::error::frame_too_large);
    }

    work.reset();
    runner.join();
}

TEST_CASE_TEMPLATE("framed_stream: asio::experimental::deferred", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);

    auto read = p.b.async_read_frame(asio::experimental::deferred);
    auto write = p.a.async_write_frame(as_payload("later"), asio::experimental::deferred);
    // Nothing starts until the deferred operations are invoked.
    run(io);
    CHECK(p.b.buffered_bytes() == 0);

    std::string got;
    std::size_t written = 0;
    std::move(write)([&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        written = n;
    });
    std::move(read)([&](std::error_code ec, frame_view payload) {
        CHECK_FALSE(ec);
        got = as_string_view(payload);
    });
    run(io);
    CHECK(written == 5);
    CHECK(got == "later");

    // A deferred batch write.
    const std::vector<std::string> batch{"d1", "d2"};
    auto writes = p.a.async_write_frames(payload_buffers(batch), asio::experimental::deferred);
    std::move(writes)([&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        CHECK(n == 4);
    });
    run(io);
    std::error_code ec;
    CHECK(as_string_view(p.b.read_frame(ec)) == "d1");
    CHECK(as_string_view(p.b.read_frame(ec)) == "d2");
    CHECK_FALSE(ec);
}

TEST_CASE_TEMPLATE("framed_stream: blocking read_frame and write_frame", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    std::error_code ec;
    CHECK(p.a.write_frame(as_payload("sync"), ec) == 4);
    CHECK_FALSE(ec);
    CHECK(p.a.write_frame(as_payload("")) == 0);
    // A payload made of several buffers is gathered into one frame.
    const std::array<asio::const_buffer, 3> parts{as_payload("gath"), as_payload("er"),
                                                  as_payload("ed")};
    CHECK(p.a.write_frame(parts) == 8);
    CHECK(p.a.write_frames(payload_buffers({"m1", "m2"}), ec) == 4);

    CHECK(as_string_view(p.b.read_frame(ec)) == "sync");
    CHECK_FALSE(ec);
    CHECK(p.b.read_frame().empty());
    CHECK(as_string_view(p.b.read_frame()) == "gathered");
    CHECK(as_string_view(p.b.read_frame()) == "m1");
    CHECK(as_string_view(p.b.read_frame()) == "m2");

    // Large frames need a concurrent reader.
    const std::string big = pattern(600000);
    std::thread writer([&] {
        std::error_code wec;
        p.a.write_frame(as_payload(big), wec);
        CHECK_FALSE(wec);
    });
    const frame_view got = p.b.read_frame(ec);
    writer.join();
    CHECK_FALSE(ec);
    CHECK(as_string_view(got) == big);

    p.a.next_layer().close();
    CHECK(p.b.read_frame(ec).empty());
    CHECK(ec == asio::error::eof);
}

// --- batching and sizes -----------------------------------------------------------

TEST_CASE_TEMPLATE("framed_stream: async_write_frames gathers several frames", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> payloads{"first", "", pattern(70000, 1), "last"};
    std::size_t written = 0;
    {
        // The range may go away once the call returns; the payloads may not.
        auto buffers = payload_buffers(payloads);
        p.a.async_write_frames(buffers, [&](std::error_code ec, std::size_t n) {
            CHECK_FALSE(ec);
            written = n;
        });
        std::fill(buffers.begin(), buffers.end(), asio::const_buffer());
    }
    std::vector<std::string> got;
    std::function<void()> next = [&] {
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            REQUIRE_FALSE(ec);
            got.emplace_back(as_string_view(payload));
            if (got.size() < payloads.size())
                next();
        });
    };
    next();
    run(io);
    CHECK(written == 5 + 0 + 70000 + 4);
    CHECK(got == payloads);

    // An empty batch writes nothing and completes.
    bool empty_done = false;
    p.a.async_write_frames(std::vector<asio::const_buffer>{}, [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        CHECK(n == 0);
        empty_done = true;
    });
    run(io);
    CHECK(empty_done);
}

TEST_CASE_TEMPLATE("framed_stream: frames larger than the read chunk arrive in pieces", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    constexpr std::size_t chunk = decltype(p.b)::default_read_chunk;
    static_assert(chunk == 32 * 1024);
    CHECK(p.b.read_chunk_size() == chunk);
    const std::vector<std::size_t> sizes{0,         1,         chunk - 4, chunk - 3, chunk,
                                         chunk + 1, 100000,    1024 * 1024, 7};
    std::vector<std::string> payloads;
    for (std::size_t i = 0; i < sizes.size(); ++i)
        payloads.push_back(pattern(sizes[i], static_cast<unsigned>(i)));

    std::vector<std::string> got;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (const auto& payload : payloads)
                co_await p.a.async_write_frame(as_payload(payload), asio::use_awaitable);
        },
        asio::detached);
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            for (std::size_t i = 0; i < payloads.size(); ++i)
                got.emplace_back(
                    as_string_view(co_await p.b.async_read_frame(asio::use_awaitable)));
        },
        asio::detached);
    run(io);
    REQUIRE(got.size() == payloads.size());
    for (std::size_t i = 0; i < payloads.size(); ++i) {
        CAPTURE(i);
        CHECK(got[i] == payloads[i]);
    }
    CHECK(p.b.buffered_bytes() == 0);
}

TEST_CASE("framed_stream: a frame written a byte at a time is reassembled") {
    asio::io_context io;
    stream_pair<local_owned> p(io);
    const std::string wire = frame("piecemeal") + frame("");
    std::vector<std::string> got;
    std::function<void()> next = [&] {
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            REQUIRE_FALSE(ec);
            got.emplace_back(as_string_view(payload));
            if (got.size() < 2)
                next();
        });
    };
    next();
    // Each byte is delivered, and read, before the next is sent: the read
    // goes through the wait, the partial header, the partial payload.
    for (char c : wire) {
        raw_write(p.a.next_layer(), std::string_view(&c, 1));
        io.restart();
        io.poll();
    }
    run(io);
    CHECK(got == std::vector<std::string>{"piecemeal", ""});
}

TEST_CASE("framed_stream: a small read chunk still reads large frames") {
    asio::io_context io;
    stream_pair<local_owned> p(io);
    p.b.read_chunk_size(16);
    CHECK(p.b.read_chunk_size() == 16);
    const std::vector<std::string> payloads{"tiny", pattern(5000, 3), "", pattern(17, 4)};
    p.a.async_write_frames(payload_buffers(payloads), [](std::error_code ec, std::size_t) {
        CHECK_FALSE(ec);
    });
    std::vector<std::string> got;
    std::error_code ec;
    run(io);
    for (std::size_t i = 0; i < payloads.size(); ++i)
        got.emplace_back(as_string_view(p.b.read_frame(ec)));
    CHECK_FALSE(ec);
    CHECK(got == payloads);
}

TEST_CASE("framed_stream: a read chunk size of 0 still reads") {
    // read_chunk_size() takes any value; 0 must not make the stream offer
    // an empty buffer to the next layer, whose 0-byte read a socket
    // reports as end of file.
    const std::vector<std::string> payloads{"hello", pattern(3000, 6), ""};
    {
        asio::io_context io;
        stream_pair<local_owned> p(io);
        p.b.read_chunk_size(0);
        std::error_code ec;
        p.a.write_frames(payload_buffers(payloads), ec);
        REQUIRE_FALSE(ec);
        p.a.next_layer().close();
        std::vector<std::string> got;
        CHECK(read_all_async(io, p.b, got) == asio::error::eof);
        CHECK(got == payloads);
    }
    {
        asio::io_context io;
        stream_pair<tcp_owned> p(io);
        p.b.read_chunk_size(0);
        std::error_code ec;
        p.a.write_frames(payload_buffers(payloads), ec);
        std::vector<std::string> got;
        for (std::size_t i = 0; i < payloads.size(); ++i)
            got.emplace_back(as_string_view(p.b.read_frame(ec)));
        CHECK_FALSE(ec);
        CHECK(got == payloads);
    }
    {
        asio::io_context io;
        parley::framed_stream<test_stream> s(io, encode_all(payloads));
        s.read_chunk_size(0);
        std::vector<std::string> got;
        CHECK(read_all_async(io, s, got) == asio::error::eof);
        CHECK(got == payloads);
    }
}

// 3,000 payloads of 1 to 1,000 bytes, each different: 6,000 buffers and
// about 1.5 MB once framed, more than one system call and the socket
// buffers take.
namespace {
std::vector<std::string> many_payloads() {
    std::vector<std::string> payloads;
    for (int i = 0; i < 3000; ++i)
        payloads.push_back(pattern(static_cast<std::size_t>(1 + i % 1000), static_cast<unsigned>(i)) +
                           std::to_string(i));
    return payloads;
}

std::size_t total_size(const std::vector<std::string>& payloads) {
    std::size_t total = 0;
    for (const auto& p : payloads)
        total += p.size();
    return total;
}
} // namespace

TEST_CASE_TEMPLATE("framed_stream: a batch of more buffers than one system call takes, into a full socket",
                   K, PARLEY_STREAM_KINDS) {
    // 3,000 frames are 6,000 buffers (a header and a payload each): more
    // than IOV_MAX per call, and 1.5 MB, more than the socket buffers hold,
    // so the write goes out in many calls with waits for writability.
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> payloads = many_payloads();
    const std::size_t total = total_size(payloads);
    std::error_code write_ec = asio::error::would_block;
    std::size_t written = 0;
    p.a.async_write_frames(payload_buffers(payloads), [&](std::error_code ec, std::size_t n) {
        write_ec = ec;
        written = n;
    });
    std::vector<std::string> got;
    std::function<void()> next = [&] {
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            REQUIRE_FALSE(ec);
            got.emplace_back(as_string_view(payload));
            std::error_code bad;
            while (auto more = p.b.read_buffered_frame(bad))
                got.emplace_back(as_string_view(*more));
            REQUIRE_FALSE(bad);
            if (got.size() < payloads.size())
                next();
        });
    };
    next();
    run(io);
    CHECK_FALSE(write_ec);
    CHECK(written == total);
    CHECK(got == payloads);
}

TEST_CASE_TEMPLATE("framed_stream: blocking write_frames of more buffers than one system call takes",
                   K, PARLEY_STREAM_KINDS) {
    // As above, blocking: 6,000 buffers and 1.5 MB go out in gathered calls
    // of up to IOV_MAX buffers, waiting while the socket is full, and
    // arrive whole and in order.
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> payloads = many_payloads();
    const std::size_t total = total_size(payloads);
    std::error_code write_ec = asio::error::would_block;
    std::size_t written = 0;
    std::thread writer([&] { written = p.a.write_frames(payload_buffers(payloads), write_ec); });
    std::vector<std::string> got;
    std::error_code read_ec;
    while (got.size() < payloads.size() && !read_ec)
        got.emplace_back(as_string_view(p.b.read_frame(read_ec)));
    writer.join();
    CHECK_FALSE(read_ec);
    CHECK_FALSE(write_ec);
    CHECK(written == total);
    CHECK(got == payloads);
}

#if defined(__linux__)
// Data segments a TCP socket has sent (Linux 4.6+), or nullopt. The field is
// read at its offset in Linux's struct tcp_info: <linux/tcp.h>, which has
// it, cannot be included beside <netinet/tcp.h>, whose copy stops earlier.
std::optional<std::uint32_t> data_segments_sent(tcp_socket& s) {
    constexpr std::size_t offset = 156; // tcpi_data_segs_out
    std::array<unsigned char, 232> info{};
    socklen_t len = info.size();
    if (::getsockopt(s.native_handle(), IPPROTO_TCP, TCP_INFO, info.data(), &len) != 0 ||
        len < offset + sizeof(std::uint32_t))
        return std::nullopt;
    std::uint32_t n = 0;
    std::memcpy(&n, info.data() + offset, sizeof n);
    return n;
}

TEST_CASE("framed_stream: 40 frames, blocking or not, leave in one system call") {
    // 80 buffers (header, payload), 1.2 KB: one sendmsg() sends them as one
    // TCP segment; asio::write's 16 buffers per call would make it 5 calls
    // and at least 2 segments.
    asio::io_context io;
    stream_pair<tcp_owned> p(io);
    p.a.next_layer().set_option(asio::ip::tcp::no_delay(true));
    std::vector<std::string> payloads;
    for (int i = 0; i < 40; ++i)
        payloads.push_back("frame " + std::to_string(100 + i) + "-----------------");
    const auto before = data_segments_sent(p.a.next_layer());
    if (!before) {
        MESSAGE("TCP_INFO has no data segment count here: skipped");
        return;
    }
    std::error_code ec;
    p.a.write_frames(payload_buffers(payloads), ec);
    REQUIRE_FALSE(ec);
    CHECK(*data_segments_sent(p.a.next_layer()) - *before == 1);

    bool written = false;
    p.a.async_write_frames(payload_buffers(payloads), [&](std::error_code e, std::size_t) {
        ec = e;
        written = true;
    });
    run_until(io, [&] { return written; });
    REQUIRE_FALSE(ec);
    CHECK(*data_segments_sent(p.a.next_layer()) - *before == 2);

    for (int round = 0; round < 2; ++round)
        for (const auto& want : payloads)
            CHECK(as_string_view(p.b.read_frame(ec)) == want);
    CHECK_FALSE(ec);
}
#endif

TEST_CASE_TEMPLATE("framed_stream: blocking write_frames to a closed peer fails, without SIGPIPE", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    p.b.next_layer().close();
    std::vector<std::string> payloads(2000, std::string(1000, 'x'));
    std::error_code ec;
    // The first call may still be taken by the kernel; a second one cannot.
    for (int i = 0; i < 2 && !ec; ++i) {
        const std::size_t written = p.a.write_frames(payload_buffers(payloads), ec);
        CHECK(written == (ec ? 0u : 2000u * 1000u));
    }
    CHECK(ec);
}

TEST_CASE_TEMPLATE("framed_stream: try_write_frames sends at once, with no handler to run", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    std::error_code ec = asio::error::would_block; // cleared by a write that succeeds
    CHECK(p.a.try_write_frames(payload_buffers({"one", "", "three"}), ec));
    CHECK_FALSE(ec);
    CHECK(p.a.try_write_frame(as_payload("four"), ec));
    CHECK_FALSE(ec);
    CHECK(p.a.try_write_frames(std::vector<asio::const_buffer>{}, ec));
    CHECK_FALSE(p.a.write_pending());
    CHECK(io.poll() == 0); // nothing was queued

    // Echoed back whole (the frames' own headers go with them).
    std::vector<asio::const_buffer> echo{as_payload(as_string_view(p.b.read_frame(ec)))};
    while (auto more = p.b.read_buffered_frame(ec))
        echo.emplace_back(more->data(), more->size());
    REQUIRE(echo.size() == 4);
    CHECK(p.b.try_write_frames(echo, ec));
    for (std::string_view want : {"one", "", "three", "four"})
        CHECK(as_string_view(p.a.read_frame(ec)) == want);
    CHECK_FALSE(ec);

    // With nothing left, async_write_pending() completes with 0 bytes, later.
    bool called = false;
    p.a.async_write_pending([&](std::error_code e, std::size_t n) {
        called = true;
        CHECK_FALSE(e);
        CHECK(n == 0);
    });
    CHECK_FALSE(called);
    run(io);
    CHECK(called);
}

TEST_CASE_TEMPLATE("framed_stream: try_write_frames into a full socket: async_write_pending sends the rest",
                   K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> payloads = many_payloads(); // 1.5 MB in 3,000 frames
    const auto buffers = payload_buffers(payloads);
    std::error_code ec;
    std::size_t taken = 0; // batches the socket took whole before it was full
    bool full = false;
    while (!full && taken < 100) {
        if (p.a.try_write_frames(buffers, ec))
            ++taken;
        else
            full = true;
        REQUIRE_FALSE(ec);
    }
    REQUIRE(full);
    CHECK(p.a.write_pending());

    // Every other write fails while the rest waits, and writes nothing
    // (the blocking ones check the same, in the same functions, but would
    // block on the full socket if they did not).
    CHECK_FALSE(p.a.try_write_frame(as_payload("intruder"), ec));
    CHECK(ec == asio::error::already_started);
    CHECK_FALSE(p.a.try_write_frames(payload_buffers({"intruder"}), ec));
    CHECK(ec == asio::error::already_started);
    std::error_code refused;
    p.a.async_write_frame(as_payload("intruder"), [&](std::error_code e, std::size_t n) {
        refused = e;
        CHECK(n == 0);
    });
    CHECK(p.a.write_pending());

    std::error_code rest_ec = asio::error::would_block;
    std::size_t rest = 0;
    p.a.async_write_pending([&](std::error_code e, std::size_t n) {
        rest_ec = e;
        rest = n;
    });
    CHECK_FALSE(p.a.write_pending());

    const std::size_t want = payloads.size() * (taken + 1);
    std::size_t got = 0;
    std::size_t misplaced = 0;
    const auto take = [&](frame_view frame) {
        misplaced += as_string_view(frame) != payloads[got % payloads.size()];
        ++got;
    };
    std::function<void()> next = [&] {
        p.b.async_read_frame([&](std::error_code e, frame_view frame) {
            REQUIRE_FALSE(e);
            take(frame);
            std::error_code bad;
            while (auto more = p.b.read_buffered_frame(bad))
                take(*more);
            REQUIRE_FALSE(bad);
            if (got < want)
                next();
        });
    };
    next();
    run(io);
    CHECK(refused == asio::error::already_started);
    CHECK_FALSE(rest_ec);
    CHECK(rest == total_size(payloads));
    CHECK(got == want);
    CHECK(misplaced == 0);

    // Done: the stream writes as before, and nothing came in between.
    CHECK(p.a.try_write_frame(as_payload("after"), ec));
    CHECK(as_string_view(p.b.read_frame(ec)) == "after");
    CHECK_FALSE(ec);
}

TEST_CASE_TEMPLATE("framed_stream: try_write_frames that fails leaves nothing pending", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    p.a.max_payload(8);
    std::error_code ec;
    CHECK_FALSE(p.a.try_write_frames(payload_buffers({"fits", "too large"}), ec));
    CHECK(ec == parley::error::frame_too_large);
    CHECK_FALSE(p.a.write_pending());
    CHECK_FALSE(p.a.try_write_frame(as_payload("too large"), ec));
    CHECK(ec == parley::error::frame_too_large);
    CHECK_FALSE(p.a.write_pending());
    CHECK(p.a.try_write_frame(as_payload("fits"), ec)); // the refused ones sent nothing
    CHECK(as_string_view(p.b.read_frame(ec)) == "fits");

    // A closed peer: a send fails once the kernel knows (at once for a
    // local socket, after the peer's reset for TCP).
    p.b.next_layer().close();
    bool failed = false;
    for (int i = 0; i < 200 && !failed; ++i) {
        const bool sent = p.a.try_write_frame(as_payload("x"), ec);
        failed = bool(ec);
        CHECK(sent != failed);
        if (!failed)
            std::this_thread::sleep_for(5ms);
    }
    CHECK(failed);
    CHECK(ec != asio::error::already_started);
    CHECK_FALSE(p.a.write_pending());
}

TEST_CASE_TEMPLATE("framed_stream: many small frames in one write, drained without I/O", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    constexpr int count = 1000;
    std::vector<std::string> payloads;
    for (int i = 0; i < count; ++i)
        payloads.push_back("msg-" + std::to_string(i));
    std::error_code ec;
    p.a.write_frames(payload_buffers(payloads), ec);
    REQUIRE_FALSE(ec);
    // The writer is gone: whatever is read from here on was already sent.
    p.a.next_layer().close();

    std::vector<std::string> got;
    int async_reads = 0;
    std::error_code last;
    while (!last) {
        ++async_reads;
        // Every view handed out since this read stays valid until the next
        // read: keep them all and copy them only once the batch is drained,
        // as a server answering the batch in one gathered write would.
        std::vector<frame_view> batch;
        p.b.async_read_frame([&](std::error_code rec, frame_view payload) {
            last = rec;
            if (!rec)
                batch.push_back(payload);
        });
        run(io);
        if (last)
            break;
        // Everything else that arrived with that read.
        while (auto payload = p.b.read_buffered_frame(ec))
            batch.push_back(*payload);
        REQUIRE_FALSE(ec);
        for (const frame_view view : batch)
            got.emplace_back(as_string_view(view));
    }
    CHECK(last == asio::error::eof);
    CHECK(got == payloads);
    // About 11 KB in one write; a local socket hands it over in one read,
    // loopback TCP in very few.
    if constexpr (std::is_same_v<typename K::socket, local_socket>)
        CHECK(async_reads == 2); // one for all the frames, one for the EOF
    else
        CHECK(async_reads <= 4);
    CHECK(p.b.buffered_bytes() == 0);
    CHECK_FALSE(p.b.read_buffered_frame(ec));
    CHECK_FALSE(ec);
}

TEST_CASE_TEMPLATE("framed_stream: echoing the frames of a read, whole, in part and mixed", K,
                   PARLEY_STREAM_KINDS) {
    // Frames the stream handed out are written back from the read buffer,
    // their headers included: what arrives must be exactly what a write of
    // copies would send, also for a view into the middle of a frame, frames
    // out of order and a payload from elsewhere between them.
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> sent{"alpha", "bravo", "charlie", "delta", "echo"};
    std::error_code ec;
    p.a.write_frames(payload_buffers(sent), ec);
    REQUIRE_FALSE(ec);
    std::vector<frame_view> batch;
    p.b.async_read_frame([&](std::error_code rec, frame_view payload) {
        REQUIRE_FALSE(rec);
        batch.push_back(payload);
    });
    run_until(io, [&] { return !batch.empty(); });
    while (batch.size() < sent.size()) {
        if (auto payload = p.b.read_buffered_frame(ec)) {
            batch.push_back(*payload);
            continue;
        }
        REQUIRE_FALSE(ec);
        break; // the five frames came in more than one read: echo what there is
    }
    const std::string other = "from elsewhere";
    std::vector<asio::const_buffer> replies;
    for (const frame_view view : batch)
        replies.emplace_back(view.data(), view.size());
    const std::size_t whole = replies.size();
    replies.emplace_back(other.data(), other.size());
    replies.emplace_back(batch[0].data() + 1, batch[0].size() - 1); // "lpha": not a whole frame
    replies.emplace_back(batch[0].data(), batch[0].size());         // back to the first frame
    bool written = false;
    p.b.async_write_frames(replies, [&](std::error_code wec, std::size_t) {
        CHECK_FALSE(wec);
        written = true;
    });
    run_until(io, [&] { return written; });

    std::vector<std::string> expected(sent.begin(), sent.begin() + std::ptrdiff_t(whole));
    expected.insert(expected.end(), {other, sent[0].substr(1), sent[0]});
    for (const std::string& want : expected) {
        const auto got = p.a.read_frame(ec);
        REQUIRE_FALSE(ec);
        CHECK(as_string_view(got) == want);
    }
}

TEST_CASE_TEMPLATE("framed_stream: delivered_frames() is the wire bytes of the frames of one read",
                   K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    const std::vector<std::string> payloads{"one", "", "three", std::string(300, 'x')};
    std::error_code ec;
    p.a.write_frames(payload_buffers(payloads), ec);
    REQUIRE_FALSE(ec);
    // What went on the wire, encoded independently of the stream.
    std::string wire;
    for (const auto& text : payloads) {
        const auto header = parley::frame_codec<>{}.encode_header(text.size(), ec);
        wire.append(reinterpret_cast<const char*>(header.data()), header.size());
        wire += text;
    }

    std::vector<std::string> got;
    std::string relayed;
    while (got.size() < payloads.size()) {
        bool done = false;
        p.b.async_read_frame([&](std::error_code rec, frame_view) {
            REQUIRE_FALSE(rec);
            done = true;
        });
        run(io);
        REQUIRE(done);
        while (p.b.read_buffered_frame(ec)) {
        }
        REQUIRE_FALSE(ec);
        const parley::frame_batch batch = p.b.delivered_frames();
        CHECK(batch.size() >= 1);
        std::size_t n = 0;
        for (frame_view payload : batch) {
            got.emplace_back(as_string_view(payload));
            ++n;
        }
        CHECK(n == batch.size());
        relayed.append(reinterpret_cast<const char*>(batch.wire().data()), batch.wire().size());
    }
    CHECK(got == payloads);
    CHECK(relayed == wire);
}

// --- errors ---------------------------------------------------------------------

TEST_CASE_TEMPLATE("framed_stream: an oversize length from the peer", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    {
        stream_pair<K> p(io);
        raw_write(p.a.next_layer(), "\xFF\xFF\xFF\xFF" "abc");
        std::error_code result;
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            result = ec;
            CHECK(payload.empty());
        });
        run(io);
        CHECK(result == parley::error::frame_too_large);
        CHECK(p.b.describe(result) == "frame of 4294967295 bytes exceeds the 1048576-byte limit");
        CHECK(p.b.describe(asio::error::eof) == std::error_code(asio::error::eof).message());
        // It stays an error: the stream cannot be resynchronised.
        std::error_code again;
        CHECK_FALSE(p.b.read_buffered_frame(again));
        CHECK(again == parley::error::frame_too_large);
    }
    {
        stream_pair<K> p(io);
        p.b.max_payload(100);
        raw_write(p.a.next_layer(), header(101) + pattern(101));
        try {
            (void)p.b.read_frame();
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == parley::error::frame_too_large);
            CHECK(std::string(e.what()).find("frame of 101 bytes exceeds the 100-byte limit") !=
                  std::string::npos);
        }
    }
    {
        // Exactly at the limit is fine.
        stream_pair<K> p(io);
        p.b.max_payload(100);
        raw_write(p.a.next_layer(), frame(pattern(100)));
        CHECK(p.b.read_frame().size() == 100);
    }
}

TEST_CASE_TEMPLATE("framed_stream: peer closing mid-frame, and between frames", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    // Inside the payload, inside the header, and cleanly after a frame.
    const std::pair<std::string, std::error_code> cases[] = {
        {header(10) + "abc", parley::error::truncated_frame},
        {std::string("\0\0", 2), parley::error::truncated_frame},
        {frame("whole"), asio::error::eof},
        {"", asio::error::eof},
    };
    for (const auto& each : cases) {
        // Not a structured binding: clang 14 cannot capture one (CAPTURE
        // makes a lambda).
        const std::string& sent = each.first;
        const std::error_code& expected = each.second;
        CAPTURE(sent.size());
        for (bool blocking : {false, true}) {
            CAPTURE(blocking);
            stream_pair<K> p(io);
            raw_write(p.a.next_layer(), sent);
            p.a.next_layer().close();
            std::vector<std::string> got;
            std::error_code ec;
            if (blocking) {
                for (;;) {
                    const frame_view payload = p.b.read_frame(ec);
                    if (ec)
                        break;
                    got.emplace_back(as_string_view(payload));
                }
            } else {
                ec = read_all_async(io, p.b, got);
            }
            CHECK(ec == expected);
            CHECK(got.size() == (sent == frame("whole") ? 1u : 0u));
        }
    }
}

TEST_CASE_TEMPLATE("framed_stream: a write over max_payload writes nothing", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    p.a.max_payload(10);
    CHECK(p.a.max_payload() == 10);
    const std::string eleven = pattern(11);

    bool returned = false;
    std::error_code result;
    std::size_t written = 99;
    p.a.async_write_frame(as_payload(eleven), [&](std::error_code ec, std::size_t n) {
        CHECK(returned); // even an error found up front is not reported inline
        result = ec;
        written = n;
    });
    returned = true;
    run(io);
    CHECK(result == parley::error::frame_too_large);
    CHECK(written == 0);
    CHECK(p.a.describe(result) == "frame of 11 bytes exceeds the 10-byte limit");

    // One oversize payload in a batch refuses the whole batch.
    const std::vector<std::string> batch{"ok", eleven, "fine"};
    result.clear();
    returned = false;
    p.a.async_write_frames(payload_buffers(batch), [&](std::error_code ec, std::size_t n) {
        CHECK(returned);
        result = ec;
        CHECK(n == 0);
    });
    returned = true;
    run(io);
    CHECK(result == parley::error::frame_too_large);

    std::error_code ec;
    CHECK(p.a.write_frame(as_payload(eleven), ec) == 0);
    CHECK(ec == parley::error::frame_too_large);
    CHECK_THROWS_AS(p.a.write_frame(as_payload(eleven)), std::system_error);
    CHECK(p.a.write_frames(payload_buffers(batch), ec) == 0);
    CHECK(ec == parley::error::frame_too_large);
    CHECK_THROWS_AS(p.a.max_payload(std::uint64_t{1} << 32), std::invalid_argument);

    // None of that reached the peer: the next frame it sees is this one.
    p.a.write_frame(as_payload("after"));
    p.a.next_layer().close();
    std::vector<std::string> got;
    CHECK(read_all_async(io, p.b, got) == asio::error::eof);
    CHECK(got == std::vector<std::string>{"after"});
}

TEST_CASE_TEMPLATE("framed_stream: write errors from the socket", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    p.a.next_layer().close();
    std::error_code result;
    std::size_t written = 99;
    p.a.async_write_frame(as_payload("x"), [&](std::error_code ec, std::size_t n) {
        result = ec;
        written = n;
    });
    run(io);
    CHECK(result == asio::error::bad_descriptor);
    CHECK(written == 0);
}

// --- cancellation ---------------------------------------------------------------

TEST_CASE_TEMPLATE("framed_stream: socket.cancel() aborts a pending read", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    std::error_code result;
    p.b.async_read_frame([&](std::error_code ec, frame_view) { result = ec; });
    asio::post(io, [&] { p.b.next_layer().cancel(); });
    run(io);
    CHECK(result == asio::error::operation_aborted);

    // The stream is still usable after a cancelled idle read.
    p.a.write_frame(as_payload("still here"));
    std::string got;
    p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
        CHECK_FALSE(ec);
        got = as_string_view(payload);
    });
    run(io);
    CHECK(got == "still here");
}

TEST_CASE_TEMPLATE("framed_stream: per-operation cancellation", K, PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    asio::cancellation_signal signal;

    SUBCASE("while waiting for a frame to start") {
        std::error_code result;
        bool done = false;
        p.b.async_read_frame(asio::bind_cancellation_slot(
            signal.slot(), [&](std::error_code ec, frame_view) {
                result = ec;
                done = true;
            }));
        asio::post(io, [&] { signal.emit(asio::cancellation_type::terminal); });
        run(io);
        CHECK(done);
        CHECK(result == asio::error::operation_aborted);
    }

    SUBCASE("in the middle of a frame, which a later read completes") {
        const std::string wire = frame("abcdefghij");
        raw_write(p.a.next_layer(), std::string_view(wire).substr(0, 7));
        std::error_code result;
        bool done = false;
        p.b.async_read_frame(asio::bind_cancellation_slot(
            signal.slot(), [&](std::error_code ec, frame_view) {
                result = ec;
                done = true;
            }));
        run_until(io, [&] { return p.b.buffered_bytes() == 7; }); // header and "abc" are in
        CHECK_FALSE(done);
        signal.emit(asio::cancellation_type::terminal);
        run(io);
        CHECK(done);
        CHECK(result == asio::error::operation_aborted);
        CHECK(p.b.buffered_bytes() == 7); // kept for the next read

        raw_write(p.a.next_layer(), std::string_view(wire).substr(7));
        std::string got;
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            CHECK_FALSE(ec);
            got = as_string_view(payload);
        });
        run(io);
        CHECK(got == "abcdefghij");
    }

    SUBCASE("a signal emitted after completion does nothing") {
        p.a.write_frame(as_payload("done"));
        std::string got;
        p.b.async_read_frame(asio::bind_cancellation_slot(
            signal.slot(), [&](std::error_code ec, frame_view payload) {
                CHECK_FALSE(ec);
                got = as_string_view(payload);
            }));
        run(io);
        signal.emit(asio::cancellation_type::terminal);
        run(io);
        CHECK(got == "done");
    }
}

// --- buffer ownership ----------------------------------------------------------

TEST_CASE_TEMPLATE("framed_stream: an idle stream over a socket holds no read buffer", K,
                   PARLEY_STREAM_KINDS) {
    // Read buffers come from a per-thread pool that hands out the most
    // recently returned block first. If a stream that has read a frame and
    // is waiting for the next gives its block back, the next stream to read
    // on that thread gets that very block, and its frame lands at the same
    // address. A fresh thread starts with an empty pool, so nothing left by
    // earlier tests interferes.
    const std::byte* first_frame = nullptr;
    const std::byte* second_frame = nullptr;
    std::size_t idle_buffered = 99;
    std::error_code pending_result;
    std::thread([&] {
        asio::io_context io;
        stream_pair<K> p(io), q(io);
        p.a.write_frame(as_payload("first"));
        p.b.async_read_frame([&](std::error_code, frame_view payload) {
            first_frame = payload.data();
        });
        run(io);

        // p.b now waits for a frame that will not come.
        p.b.async_read_frame([&](std::error_code ec, frame_view) { pending_result = ec; });
        idle_buffered = p.b.buffered_bytes();

        q.a.write_frame(as_payload("second"));
        q.b.async_read_frame([&](std::error_code, frame_view payload) {
            second_frame = payload.data();
        });
        run_until(io, [&] { return second_frame != nullptr; });
        p.b.next_layer().cancel();
        run(io);
    }).join();
    CHECK(first_frame != nullptr);
    CHECK(second_frame == first_frame);
    CHECK(idle_buffered == 0);
    CHECK(pending_result == asio::error::operation_aborted);
}

TEST_CASE_TEMPLATE("framed_stream: a request-reply stream that goes idle holds no read buffer", K,
                   PARLEY_STREAM_KINDS) {
    // After rounds in which b's reads never find the next question at once,
    // b stops trying before it waits (try_now()); its wait must still give
    // the empty block back. As in the test above: the next stream to read on
    // this thread then gets that block, and its frame lands where b's last
    // one did.
    const std::byte* last_question = nullptr;
    const std::byte* other_frame = nullptr;
    std::thread([&] {
        asio::io_context io;
        stream_pair<K> p(io), q(io);
        // Each read starts before its question is sent. A try that finds
        // nothing skips 1, 2, 4, 8, 16 tries: reads 21 to 36 skip theirs.
        for (int round = 0; round < 24; ++round) {
            bool got = false;
            p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
                got = !ec;
                last_question = payload.data();
            });
            p.a.write_frame(as_payload("question"));
            run_until(io, [&] { return got; });
        }
        // Read 25 (a skipped try) waits for a question that will not come.
        std::error_code pending_result;
        p.b.async_read_frame([&](std::error_code ec, frame_view) { pending_result = ec; });
        q.a.write_frame(as_payload("other"));
        q.b.async_read_frame([&](std::error_code, frame_view payload) { other_frame = payload.data(); });
        run_until(io, [&] { return other_frame != nullptr; });
        p.b.next_layer().cancel();
        io.restart();
        run(io);
        CHECK(pending_result == asio::error::operation_aborted);
    }).join();
    CHECK(last_question != nullptr);
    CHECK(other_frame == last_question);
}

TEST_CASE_TEMPLATE("framed_stream: a request-reply peer, never ready at once, is read whole", K,
                   PARLEY_STREAM_KINDS) {
    // b echoes, a asks again only after each answer: b's reads find the
    // socket empty when they start, so it stops trying to read at once
    // (try_now()) and waits for readiness instead. Nothing may be lost or
    // late either way, nor when a burst comes after many such waits.
    asio::io_context io;
    stream_pair<K> p(io);
    constexpr int rounds = 60;
    int answered = 0;
    std::vector<std::string> mismatches;
    std::string echoed; // the one echo in flight
    std::function<void()> serve = [&] {
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            if (ec)
                return;
            echoed.assign(as_string_view(payload));
            p.b.async_write_frame(as_payload(echoed), [&](std::error_code ec2, std::size_t) {
                if (!ec2)
                    serve();
            });
        });
    };
    std::string question; // the one question in flight
    std::function<void()> ask = [&] {
        question = "ask " + std::to_string(answered);
        p.a.async_write_frame(as_payload(question), [&](std::error_code ec, std::size_t) {
            if (ec)
                return;
            p.a.async_read_frame([&](std::error_code ec2, frame_view answer) {
                if (ec2 || as_string_view(answer) != question)
                    mismatches.push_back(question);
                if (++answered < rounds)
                    ask();
            });
        });
    };
    serve();
    ask();
    run_until(io, [&] { return answered == rounds; });
    CHECK(answered == rounds);
    CHECK(mismatches.empty());

    // A burst after all those waits: every frame of it still arrives.
    const std::vector<std::string> burst{"one", "two", "three"};
    std::error_code ec;
    p.a.write_frames(payload_buffers(burst), ec);
    REQUIRE_FALSE(ec);
    std::vector<std::string> got;
    std::function<void()> read_burst = [&] {
        p.a.async_read_frame([&](std::error_code ec2, frame_view payload) {
            if (ec2)
                return;
            got.emplace_back(as_string_view(payload));
            if (got.size() < burst.size())
                read_burst();
        });
    };
    read_burst();
    run_until(io, [&] { return got.size() == burst.size(); });
    CHECK(got == burst);
    p.a.next_layer().close();
    p.b.next_layer().close();
    run(io);
}

TEST_CASE_TEMPLATE("framed_stream: keep_read_buffer: a waiting stream holds its buffer", K,
                   PARLEY_STREAM_KINDS) {
    // The converse of "an idle stream over a socket holds no read buffer":
    // the block b read into stays with b while it waits, so the next stream
    // to read on this thread gets another one.
    const std::byte* first_frame = nullptr;
    const std::byte* second_frame = nullptr;
    std::error_code pending_result;
    bool kept = false;
    std::thread([&] {
        asio::io_context io;
        stream_pair<K> p(io), q(io);
        p.b.keep_read_buffer(true);
        kept = p.b.keeps_read_buffer();
        p.a.write_frame(as_payload("first"));
        p.b.async_read_frame([&](std::error_code, frame_view payload) { first_frame = payload.data(); });
        run(io);

        p.b.async_read_frame([&](std::error_code ec, frame_view) { pending_result = ec; });
        q.a.write_frame(as_payload("second"));
        q.b.async_read_frame([&](std::error_code, frame_view payload) { second_frame = payload.data(); });
        run_until(io, [&] { return second_frame != nullptr; });
        p.b.next_layer().cancel();
        run(io);
    }).join();
    CHECK(kept);
    REQUIRE(first_frame != nullptr);
    CHECK(second_frame != nullptr);
    CHECK(second_frame != first_frame);
    CHECK(pending_result == asio::error::operation_aborted);
}

TEST_CASE_TEMPLATE("framed_stream: keep_read_buffer: frames, pieces, cancellation and EOF while waiting", K,
                   PARLEY_STREAM_KINDS) {
    asio::io_context io;
    stream_pair<K> p(io);
    p.b.keep_read_buffer(true);

    // Request-reply: every read starts before its frame is sent.
    for (int round = 0; round < 30; ++round) {
        std::string got;
        p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
            CHECK_FALSE(ec);
            got = as_string_view(payload);
        });
        const std::string sent = "round " + std::to_string(round);
        asio::post(io, [&] { p.a.write_frame(as_payload(sent)); });
        run(io);
        CHECK(got == sent);
    }

    // A frame that arrives in two pieces while the read waits.
    const std::string wire = frame("abcdefghij");
    std::string got;
    p.b.async_read_frame([&](std::error_code ec, frame_view payload) {
        CHECK_FALSE(ec);
        got = as_string_view(payload);
    });
    asio::post(io, [&] {
        raw_write(p.a.next_layer(), std::string_view(wire).substr(0, 6));
        asio::post(io, [&] { raw_write(p.a.next_layer(), std::string_view(wire).substr(6)); });
    });
    run(io);
    CHECK(got == "abcdefghij");

    // Cancelled while waiting, then still usable, by frames and raw input.
    std::error_code cancelled;
    p.b.async_read_frame([&](std::error_code ec, frame_view) { cancelled = ec; });
    asio::post(io, [&] { p.b.next_layer().cancel(); });
    run(io);
    CHECK(cancelled == asio::error::operation_aborted);
    std::size_t input = 0;
    p.b.async_read_some_input([&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        input = n;
    });
    asio::post(io, [&] { raw_write(p.a.next_layer(), "raw"); });
    run(io);
    CHECK(input == 3);
    CHECK(as_string_view(p.b.buffered_input()) == "raw");
    p.b.consume_input(3);

    // The peer closes while the read waits.
    std::error_code closed;
    p.b.async_read_frame([&](std::error_code ec, frame_view) { closed = ec; });
    asio::post(io, [&] { p.a.next_layer().close(); });
    run(io);
    CHECK(closed == asio::error::eof);
}

// --- a custom format ------------------------------------------------------------

TEST_CASE("framed_stream: a 2-byte little-endian format on the wire") {
    constexpr parley::frame_format small{2, parley::byte_order::little, 65535};
    asio::io_context io;
    stream_pair<local_owned, small> p(io);
    p.a.write_frame(as_payload("abc"));
    std::string wire(5, '\0');
    asio::read(p.b.next_layer(), asio::buffer(wire));
    CHECK(wire == std::string("\x03\x00" "abc", 5));

    raw_write(p.b.next_layer(), std::string("\x02\x01", 2) + pattern(0x0102));
    CHECK(p.a.read_frame().size() == 0x0102);
    CHECK_THROWS_AS(p.a.max_payload(65536), std::invalid_argument);
    p.a.max_payload(65535);
    const std::string max(65535, 'm');
    std::thread writer([&] { p.b.write_frame(as_payload(max)); });
    CHECK(p.a.read_frame().size() == 65535);
    writer.join();
}

// --- the generic path, through test_stream ---------------------------------------

TEST_CASE("framed_stream: a non-socket stream, read a byte at a time") {
    asio::io_context io;
    const std::vector<std::string> payloads{"one", "", pattern(5000, 2), "four"};
    parley::framed_stream<test_stream> s(io, encode_all(payloads));
    s.next_layer().max_read = 1;
    std::vector<std::string> got;
    CHECK(read_all_async(io, s, got) == asio::error::eof);
    CHECK(got == payloads);
    CHECK(s.next_layer().reads >= encode_all(payloads).size());
}

TEST_CASE("framed_stream: a non-socket stream, random read sizes and chunk sizes") {
    std::mt19937 rng(77);
    for (int iter = 0; iter < 40; ++iter) {
        std::vector<std::string> payloads;
        const int n = static_cast<int>(rng() % 10);
        for (int i = 0; i < n; ++i)
            payloads.push_back(pattern(rng() % 3 == 0 ? rng() % 40000 : rng() % 50,
                                       static_cast<unsigned>(rng())));
        std::string wire = encode_all(payloads);
        const bool cut = rng() % 4 == 0 && !wire.empty();
        if (cut)
            wire.resize(wire.size() - 1);

        asio::io_context io;
        parley::framed_stream<test_stream> s(io, wire);
        s.next_layer().max_read = 1 + rng() % 5000;
        s.read_chunk_size(1 + rng() % 70000);
        const bool blocking = rng() % 2;
        std::vector<std::string> got;
        std::error_code ec;
        if (blocking) {
            for (;;) {
                const frame_view payload = s.read_frame(ec);
                if (ec)
                    break;
                got.emplace_back(as_string_view(payload));
            }
        } else {
            ec = read_all_async(io, s, got);
        }
        CAPTURE(iter);
        if (cut) {
            CHECK(ec == parley::error::truncated_frame);
            payloads.pop_back();
        } else {
            CHECK(ec == asio::error::eof);
        }
        CHECK(got == payloads);
    }
}

TEST_CASE("framed_stream: a non-socket stream, buffered frames and inline completion") {
    asio::io_context io;
    parley::framed_stream<test_stream> s(io, encode_all({"a", "b", "c"}));
    bool returned = false;
    std::string got;
    s.async_read_frame([&](std::error_code ec, frame_view payload) {
        CHECK(returned);
        CHECK_FALSE(ec);
        got = as_string_view(payload);
    });
    returned = true;
    run(io);
    CHECK(got == "a");
    CHECK(s.next_layer().reads == 1);
    std::error_code ec;
    auto b = s.read_buffered_frame(ec);
    REQUIRE(b);
    CHECK(as_string_view(*b) == "b");
    // The third frame is buffered too: the read completes without I/O, but
    // still not inline.
    returned = false;
    s.async_read_frame([&](std::error_code rec, frame_view payload) {
        CHECK(returned);
        CHECK_FALSE(rec);
        got = as_string_view(payload);
    });
    returned = true;
    run(io);
    CHECK(got == "c");
    CHECK(s.next_layer().reads == 1);
}

TEST_CASE("framed_stream: injected read failures at every point") {
    const std::vector<std::string> payloads{"alpha", pattern(3000, 5), "", "omega"};
    const std::string wire = encode_all(payloads);
    // Fail the first read, then the second, and so on, until the stream
    // reads to the end without reaching the failure (Beast's fail_count
    // loop). Every failure surfaces as itself, with the frames before it
    // intact.
    bool reached_end = false;
    for (std::size_t fail_at = 0; fail_at < 1000 && !reached_end; ++fail_at) {
        CAPTURE(fail_at);
        for (bool blocking : {false, true}) {
            asio::io_context io;
            parley::framed_stream<test_stream> s(io, wire);
            s.next_layer().max_read = 997;
            s.next_layer().fail_at = fail_at;
            std::vector<std::string> got;
            std::error_code ec;
            if (blocking) {
                for (;;) {
                    const frame_view payload = s.read_frame(ec);
                    if (ec)
                        break;
                    got.emplace_back(as_string_view(payload));
                }
            } else {
                ec = read_all_async(io, s, got);
            }
            REQUIRE(got.size() <= payloads.size());
            CHECK(std::equal(got.begin(), got.end(), payloads.begin()));
            if (ec == asio::error::eof) {
                CHECK(got == payloads);
                reached_end = true;
            } else {
                CHECK(ec == asio::error::connection_reset);
            }
        }
    }
    CHECK(reached_end);
}

TEST_CASE("framed_stream: a non-socket stream, writes") {
    asio::io_context io;
    parley::framed_stream<test_stream> s(io);
    s.next_layer().max_write = 3; // short writes: async_write must loop
    const std::vector<std::string> payloads{"x", "", pattern(100, 9)};
    std::size_t written = 0;
    s.async_write_frames(payload_buffers(payloads), [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        written = n;
    });
    run(io);
    CHECK(written == 101);
    CHECK(s.next_layer().output == encode_all(payloads));

    s.next_layer().output.clear();
    CHECK(s.write_frame(as_payload("sync")) == 4);
    CHECK(s.next_layer().output == frame("sync"));

    // An injected failure on the next write.
    s.next_layer().fail_at = s.next_layer().operations;
    std::error_code result;
    written = 99;
    s.async_write_frame(as_payload("lost"), [&](std::error_code ec, std::size_t n) {
        result = ec;
        written = n;
    });
    run(io);
    CHECK(result == asio::error::connection_reset);
    CHECK(written == 0);

    s.next_layer().fail_at = s.next_layer().operations + 1; // the second piece fails
    std::error_code ec;
    CHECK(s.write_frame(as_payload("partial"), ec) == 0);
    CHECK(ec == asio::error::connection_reset);
}

TEST_CASE("framed_stream: a non-socket stream, try_write_frames keeps it all for async_write_pending") {
    asio::io_context io;
    parley::framed_stream<test_stream> s(io);
    s.next_layer().max_write = 3;
    const std::vector<std::string> payloads{"x", "", pattern(100, 9)};
    std::error_code ec = asio::error::would_block;
    CHECK_FALSE(s.try_write_frames(payload_buffers(payloads), ec));
    CHECK_FALSE(ec);
    CHECK(s.write_pending());
    CHECK(s.next_layer().output.empty());
    std::size_t written = 0;
    s.async_write_pending([&](std::error_code e, std::size_t n) {
        CHECK_FALSE(e);
        written = n;
    });
    run(io);
    CHECK(written == 101);
    CHECK(s.next_layer().output == encode_all(payloads));
    CHECK_FALSE(s.write_pending());
}

TEST_CASE("framed_stream: over a reference to a non-socket stream") {
    asio::io_context io;
    test_stream raw(io, frame("by reference") + header(2000000));
    parley::framed_stream<test_stream&> s(raw);
    CHECK(&s.next_layer() == &raw);
    std::vector<std::string> got;
    const std::error_code ec = read_all_async(io, s, got);
    CHECK(got == std::vector<std::string>{"by reference"});
    CHECK(ec == parley::error::frame_too_large);
    CHECK(s.describe(ec) == "frame of 2000000 bytes exceeds the 1048576-byte limit");
    s.write_frame(as_payload("back"));
    CHECK(raw.output == frame("back"));
}

TEST_CASE("framed_stream: move construction keeps the stream working") {
    asio::io_context io;
    stream_pair<local_owned> p(io);
    p.a.write_frame(as_payload("one"));
    p.a.write_frame(as_payload("two"));
    CHECK(as_string_view(p.b.read_frame()) == "one");
    auto moved = std::move(p.b);
    CHECK(as_string_view(moved.read_frame()) == "two");
}

TEST_CASE("framed_stream: raw input reads append to what is not consumed; EOF leaves it readable") {
    asio::io_context io;
    stream_pair<local_owned> p(io);
    p.b.read_chunk_size(16); // a buffer the input fills: it must grow, not stall
    std::string seen;
    std::error_code end;
    bool inside_initiation = false;
    std::function<void()> next = [&] {
        inside_initiation = true;
        p.b.async_read_some_input([&](std::error_code ec, std::size_t) {
            CHECK_FALSE(inside_initiation);
            const auto in = p.b.buffered_input();
            seen.assign(reinterpret_cast<const char*>(in.data()), in.size());
            if (ec) {
                end = ec;
                return;
            }
            // Consumes up to the last '|' only: the rest waits for more bytes.
            const auto bar = seen.rfind('|');
            p.b.consume_input(bar == std::string::npos ? 0 : bar + 1);
            next();
        });
        inside_initiation = false;
    };
    next();
    raw_write(p.a.next_layer(), std::string(100, 'x') + "|tail");
    p.a.next_layer().shutdown(asio::socket_base::shutdown_send);
    run(io);
    CHECK(end == asio::error::eof);
    CHECK(seen == "tail");
    p.b.consume_input(1000); // more than held: all of it
    CHECK(p.b.buffered_input().empty());
}
