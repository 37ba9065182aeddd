// Micro-benchmarks of parley's I/O-free hot paths, in bytes/s next to a
// plain memcpy of the same bytes (Google Benchmark).
//
// For each payload size S (16 B, 64 B, 512 B, 4 KiB, 64 KiB) a buffer of
// about 256 KiB of back-to-back frames (at least 4 frames) is built once;
// every benchmark of that size processes exactly that buffer's bytes per
// iteration, so its bytes/s can be divided by the memcpy row's:
//
//   S/memcpy                       memcpy of the buffer (the yardstick)
//   S/encode_header                frame_codec::encode_header per frame
//                                  (4-byte header bytes only: a cost per
//                                  frame, shown as bytes/s of header)
//   S/append_frame                 building the buffer: append_frame() of
//                                  every payload into a reserved vector
//   S/frame_decoder/one_chunk      frame_decoder, whole buffer fed at once
//   S/frame_decoder/ragged         fed in pseudo-random chunks of 1..3000 B
//   S/frame_decoder/1byte          fed one byte at a time
//   S/line_decoder/{one_chunk,ragged,1byte}
//                                  the same for newline-terminated lines
//   S/framed_stream/read_frame     framed_stream<memory stream>::read_frame,
//                                  the server's read path (the fake stream
//                                  copies up to the 32 KiB asked for, as
//                                  recv() would); /ragged: 1..3000 B per read
//   S/make_frame_message           one shared message per frame (allocate,
//                                  header, memcpy), released again
//   S/outbound_queue               push every frame's message into a
//                                  session queue, take() iovecs 1024 at a
//                                  time and consume() them, as a session's
//                                  flush does (no byte is copied)
//   S/baseline/plain_ring          not parley: the same with a bare ring of
//                                  pointers and a non-atomic reference count
//                                  (what the floor server does)
//
// Counters: `frames/s` (items) and `allocs/frame`, heap allocations per
// frame counted by a replaced global operator new.
//
// Run: build/<preset>/bench/codec_bench [--benchmark_filter=64/] ...
// bench/micro/table.py turns --benchmark_format=json output into the
// markdown table of docs/BENCHMARKS.md (ratios to memcpy).
#include <parley/codec/frame_codec.hpp>
#include <parley/stream/framed_stream.hpp>
#include <parley/codec/line_codec.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/detail/socket_io.hpp>

#include <asio/io_context.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <system_error>
#include <vector>

// --- allocation counting -----------------------------------------------------

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}

void* operator new(std::size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size))
        return p;
    throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
// The replacements pair malloc with free; GCC, seeing free() inlined where
// a pointer from operator new is deleted, warns of a mismatch that is none.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

constexpr std::size_t header_size = parley::frame_codec<>::header_size;
constexpr std::size_t target_buffer_bytes = 256 * 1024;
constexpr std::size_t min_frames = 4;

// The same frames, as a length-prefixed buffer and as a newline-separated
// buffer (payload bytes never contain '\n').
struct workload {
    std::size_t payload_size = 0;
    std::size_t frames = 0;
    std::vector<std::byte> payload;   // one payload, reused for every frame
    std::vector<std::byte> framed;    // frames back to back
    std::string lines;                // the same payloads as lines
    std::vector<std::size_t> ragged;  // chunk sizes covering `framed`
    std::vector<std::size_t> ragged_lines;

    explicit workload(std::size_t size) : payload_size(size) {
        frames = std::max(min_frames, target_buffer_bytes / (size + header_size));
        payload.resize(size);
        for (std::size_t i = 0; i < size; ++i)
            payload[i] = static_cast<std::byte>('a' + i % 26);
        parley::frame_codec<> codec(1024 * 1024);
        std::error_code ec;
        framed.reserve(frames * (size + header_size));
        for (std::size_t i = 0; i < frames; ++i)
            parley::append_frame(codec, payload, framed, ec);
        if (ec)
            std::abort();
        lines.reserve(frames * (size + 1));
        for (std::size_t i = 0; i < frames; ++i) {
            lines.append(reinterpret_cast<const char*>(payload.data()), size);
            lines.push_back('\n');
        }
        ragged = ragged_chunks(framed.size());
        ragged_lines = ragged_chunks(lines.size());
    }

    // Pseudo-random chunk sizes in [1, 3000] (fixed seed): what reads of a
    // TCP stream look like when frames do not line up with segments.
    static std::vector<std::size_t> ragged_chunks(std::size_t total) {
        std::vector<std::size_t> sizes;
        std::uint32_t x = 2463534242u;
        std::size_t done = 0;
        while (done < total) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            const std::size_t n = std::min<std::size_t>(1 + x % 3000, total - done);
            sizes.push_back(n);
            done += n;
        }
        return sizes;
    }
};

const workload& get_workload(std::size_t size) {
    static std::vector<std::unique_ptr<workload>> cache;
    for (auto& w : cache)
        if (w->payload_size == size)
            return *w;
    cache.push_back(std::make_unique<workload>(size));
    return *cache.back();
}

// Sets bytes/s, frames/s and allocations per frame.
class accounting {
public:
    explicit accounting(benchmark::State& state) : state_(state), start_(g_allocations.load()) {}
    void finish(std::size_t bytes_per_iteration, std::size_t frames_per_iteration) {
        const auto iterations = static_cast<std::int64_t>(state_.iterations());
        const std::uint64_t allocations = g_allocations.load() - start_;
        state_.SetBytesProcessed(iterations * static_cast<std::int64_t>(bytes_per_iteration));
        state_.SetItemsProcessed(iterations * static_cast<std::int64_t>(frames_per_iteration));
        const double frames = double(iterations) * double(frames_per_iteration);
        state_.counters["allocs/frame"] = frames > 0 ? double(allocations) / frames : 0.0;
    }

private:
    benchmark::State& state_;
    std::uint64_t start_;
};

// --- the yardstick -----------------------------------------------------------

void bm_memcpy(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    std::vector<std::byte> out(w.framed.size());
    accounting acc(state);
    for (auto _ : state) {
        std::memcpy(out.data(), w.framed.data(), w.framed.size());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    acc.finish(w.framed.size(), w.frames);
}

// --- encoding ----------------------------------------------------------------

void bm_encode_header(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    const parley::frame_codec<> codec(1024 * 1024);
    std::vector<parley::frame_codec<>::header_bytes> out(w.frames);
    accounting acc(state);
    for (auto _ : state) {
        std::error_code ec;
        for (std::size_t i = 0; i < w.frames; ++i) {
            benchmark::DoNotOptimize(i);
            out[i] = codec.encode_header(w.payload_size, ec);
        }
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    // Only the header bytes are produced: bytes/s here is header bytes.
    acc.finish(w.frames * header_size, w.frames);
}

void bm_append_frame(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    const parley::frame_codec<> codec(1024 * 1024);
    std::vector<std::byte> out;
    out.reserve(w.framed.size());
    accounting acc(state);
    for (auto _ : state) {
        out.clear();
        std::error_code ec;
        for (std::size_t i = 0; i < w.frames; ++i)
            parley::append_frame(codec, w.payload, out, ec);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    acc.finish(w.framed.size(), w.frames);
}

// --- decoding ----------------------------------------------------------------

enum class chunking { one_chunk, ragged, one_byte };

template <class Decoder, class Consume>
std::size_t decode_all(Decoder& decoder, std::span<const std::byte> input, chunking how,
                       const std::vector<std::size_t>& ragged, Consume consume) {
    std::size_t count = 0;
    std::error_code ec;
    const auto drain = [&] {
        while (auto item = decoder.next(ec)) {
            consume(*item);
            ++count;
        }
        if (ec)
            std::abort();
    };
    switch (how) {
    case chunking::one_chunk:
        decoder.feed(input);
        drain();
        break;
    case chunking::ragged: {
        std::size_t at = 0;
        for (std::size_t n : ragged) {
            decoder.feed(input.subspan(at, n));
            drain();
            at += n;
        }
        break;
    }
    case chunking::one_byte:
        for (std::size_t at = 0; at < input.size(); ++at) {
            decoder.feed(input.subspan(at, 1));
            drain();
        }
        break;
    }
    return count;
}

void bm_frame_decoder(benchmark::State& state, std::size_t size, chunking how) {
    const auto& w = get_workload(size);
    parley::frame_decoder<> decoder(1024 * 1024);
    accounting acc(state);
    for (auto _ : state) {
        std::size_t sum = 0;
        const std::size_t n = decode_all(decoder, w.framed, how, w.ragged,
                                         [&](std::span<const std::byte> p) { sum += p.size(); });
        if (n != w.frames || sum != w.frames * w.payload_size) {
            state.SkipWithError("frame_decoder lost frames");
            break;
        }
        benchmark::DoNotOptimize(sum);
    }
    acc.finish(w.framed.size(), w.frames);
}

void bm_line_decoder(benchmark::State& state, std::size_t size, chunking how) {
    const auto& w = get_workload(size);
    parley::line_decoder decoder(1024 * 1024);
    const auto input = std::as_bytes(std::span(w.lines));
    accounting acc(state);
    for (auto _ : state) {
        std::size_t sum = 0;
        const std::size_t n = decode_all(decoder, input, how, w.ragged_lines,
                                         [&](std::string_view line) { sum += line.size(); });
        if (n != w.frames || sum != w.frames * w.payload_size) {
            state.SkipWithError("line_decoder lost lines");
            break;
        }
        benchmark::DoNotOptimize(sum);
    }
    acc.finish(w.lines.size(), w.frames);
}

// A SyncReadStream over a byte buffer: read_some copies what is asked for,
// capped by the current chunk (all that is left, or the next ragged size).
class memory_stream {
public:
    using executor_type = asio::io_context::executor_type;

    memory_stream(asio::io_context& ioc, std::span<const std::byte> data,
                  const std::vector<std::size_t>* chunks)
        : executor_(ioc.get_executor()), data_(data), chunks_(chunks) {}

    executor_type get_executor() noexcept { return executor_; }

    void rewind() noexcept {
        at_ = 0;
        chunk_index_ = 0;
        chunk_left_ = 0;
    }

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, std::error_code& ec) {
        ec.clear();
        const asio::mutable_buffer into = *asio::buffer_sequence_begin(buffers);
        std::size_t n = std::min(into.size(), data_.size() - at_);
        if (chunks_) {
            if (chunk_left_ == 0 && chunk_index_ < chunks_->size())
                chunk_left_ = (*chunks_)[chunk_index_++];
            n = std::min(n, chunk_left_);
            chunk_left_ -= n;
        }
        if (n == 0) {
            ec = asio::error::eof;
            return 0;
        }
        std::memcpy(into.data(), data_.data() + at_, n);
        at_ += n;
        return n;
    }

private:
    executor_type executor_;
    std::span<const std::byte> data_;
    const std::vector<std::size_t>* chunks_;
    std::size_t at_ = 0;
    std::size_t chunk_index_ = 0;
    std::size_t chunk_left_ = 0;
};

void bm_framed_stream(benchmark::State& state, std::size_t size, bool ragged) {
    const auto& w = get_workload(size);
    asio::io_context ioc;
    parley::framed_stream<memory_stream> stream(ioc, std::span<const std::byte>(w.framed),
                                                ragged ? &w.ragged : nullptr);
    accounting acc(state);
    for (auto _ : state) {
        stream.next_layer().rewind();
        std::size_t sum = 0;
        std::error_code ec;
        for (std::size_t i = 0; i < w.frames; ++i) {
            sum += stream.read_frame(ec).size();
            if (ec)
                break;
        }
        if (ec || sum != w.frames * w.payload_size) {
            state.SkipWithError("framed_stream lost frames");
            break;
        }
        benchmark::DoNotOptimize(sum);
    }
    acc.finish(w.framed.size(), w.frames);
}

// --- sharing and queueing ----------------------------------------------------

void bm_make_frame_message(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    const parley::frame_codec<> codec(1024 * 1024);
    accounting acc(state);
    for (auto _ : state) {
        std::error_code ec;
        for (std::size_t i = 0; i < w.frames; ++i) {
            auto m = parley::make_frame_message(codec, w.payload, ec);
            benchmark::DoNotOptimize(m.get());
        }
    }
    acc.finish(w.framed.size(), w.frames);
}

void bm_outbound_queue(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    std::vector<parley::message_ptr> messages;
    std::error_code ec;
    for (std::size_t i = 0; i < w.frames; ++i)
        messages.push_back(parley::make_frame_message(w.payload, ec));
    parley::outbound_queue queue({.max_bytes = std::size_t(1) << 40,
                                  .max_messages = std::size_t(1) << 30});
    auto iov = parley::detail::iovec_scratch();
    accounting acc(state);
    for (auto _ : state) {
        for (const auto& m : messages)
            queue.push(m);
        std::size_t sent = 0;
        while (!queue.empty()) {
            const std::size_t count = queue.take(iov, parley::detail::make_iovec);
            const std::size_t bytes = parley::detail::iovec_bytes(iov.first(count));
            sent += queue.consume(bytes);
        }
        if (sent != w.frames) {
            state.SkipWithError("outbound_queue lost messages");
            break;
        }
    }
    acc.finish(w.framed.size(), w.frames);
}

// Not parley code: the least a recipient's queue can do (what the floor
// server does), a ring of message pointers with a plain, non-atomic
// reference count, iovecs built the same way. The distance to the
// outbound_queue row is the price of parley's queue, mostly its two atomic
// read-modify-writes per message (add_ref on push, release on consume).
void bm_plain_ring(benchmark::State& state, std::size_t size) {
    const auto& w = get_workload(size);
    struct plain_message {
        std::uint32_t refs = 0;
        const std::byte* data = nullptr;
        std::size_t size = 0;
    };
    std::vector<parley::message_ptr> owners;
    std::vector<plain_message> messages(w.frames);
    std::error_code ec;
    for (std::size_t i = 0; i < w.frames; ++i) {
        owners.push_back(parley::make_frame_message(w.payload, ec));
        messages[i].data = owners.back()->data();
        messages[i].size = owners.back()->size();
    }
    std::size_t capacity = 16;
    while (capacity < w.frames)
        capacity *= 2;
    std::vector<plain_message*> ring(capacity);
    const std::size_t mask = capacity - 1;
    auto iov = parley::detail::iovec_scratch();
    accounting acc(state);
    for (auto _ : state) {
        std::size_t head = 0, count = 0, bytes = 0;
        for (auto& m : messages) {
            ++m.refs;
            ring[(head + count++) & mask] = &m;
            bytes += m.size;
        }
        std::size_t sent = 0;
        while (count != 0) {
            const std::size_t n = std::min(iov.size(), count);
            for (std::size_t i = 0; i < n; ++i) {
                const plain_message* m = ring[(head + i) & mask];
                iov[i] = parley::detail::make_iovec(m->data, m->size);
            }
            benchmark::DoNotOptimize(iov.data());
            std::size_t written = parley::detail::iovec_bytes(iov.first(n));
            bytes -= written;
            while (written != 0) {
                plain_message* m = ring[head];
                written -= m->size;
                --m->refs;
                head = (head + 1) & mask;
                --count;
                ++sent;
            }
        }
        if (sent != w.frames || bytes != 0) {
            state.SkipWithError("plain ring lost messages");
            break;
        }
        benchmark::ClobberMemory();
    }
    acc.finish(w.framed.size(), w.frames);
}

void register_all(std::size_t size) {
    const std::string s = size >= 1024 ? std::to_string(size / 1024) + "KiB"
                                       : std::to_string(size) + "B";
    const auto reg = [&](const std::string& name, auto fn) {
        benchmark::RegisterBenchmark((s + "/" + name).c_str(), fn);
    };
    reg("memcpy", [size](benchmark::State& st) { bm_memcpy(st, size); });
    reg("encode_header", [size](benchmark::State& st) { bm_encode_header(st, size); });
    reg("append_frame", [size](benchmark::State& st) { bm_append_frame(st, size); });
    reg("frame_decoder/one_chunk",
        [size](benchmark::State& st) { bm_frame_decoder(st, size, chunking::one_chunk); });
    reg("frame_decoder/ragged",
        [size](benchmark::State& st) { bm_frame_decoder(st, size, chunking::ragged); });
    reg("frame_decoder/1byte",
        [size](benchmark::State& st) { bm_frame_decoder(st, size, chunking::one_byte); });
    reg("line_decoder/one_chunk",
        [size](benchmark::State& st) { bm_line_decoder(st, size, chunking::one_chunk); });
    reg("line_decoder/ragged",
        [size](benchmark::State& st) { bm_line_decoder(st, size, chunking::ragged); });
    reg("line_decoder/1byte",
        [size](benchmark::State& st) { bm_line_decoder(st, size, chunking::one_byte); });
    reg("framed_stream/read_frame",
        [size](benchmark::State& st) { bm_framed_stream(st, size, false); });
    reg("framed_stream/read_frame_ragged",
        [size](benchmark::State& st) { bm_framed_stream(st, size, true); });
    reg("make_frame_message", [size](benchmark::State& st) { bm_make_frame_message(st, size); });
    reg("outbound_queue", [size](benchmark::State& st) { bm_outbound_queue(st, size); });
    reg("baseline/plain_ring", [size](benchmark::State& st) { bm_plain_ring(st, size); });
}

} // namespace

int main(int argc, char** argv) {
    for (std::size_t size : {16u, 64u, 512u, 4096u, 65536u})
        register_all(size);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
