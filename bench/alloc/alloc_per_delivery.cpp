// Heap allocations per delivered message through parley's hub, in steady
// state (performance issue: "zero allocations per recipient per message;
// one shared buffer per publish").
//
// One io_context on one thread (the single-threaded broadcast_server's
// configuration: hub and sessions with thread_safe = false), a hub with N
// subscriber sessions over loopback TCP, every session reading as
// broadcast_server's do. The subscribers' peers are raw non-blocking
// sockets drained in the same thread by a driver handler that re-posts
// itself; it also publishes, in batches of B messages of S bytes, never more
// than W messages ahead of the slowest peer. With --drain-every K the peers
// are read only every K-th round, so that sockets fill and the sessions'
// queues grow (as behind a slow reader, or a saturating load generator);
// --peer-rcvbuf BYTES shrinks the peers' receive buffers to the same end.
//
//   --mode direct  the driver calls hub.publish(room, make_frame_message(...))
//                  itself: the hub, the queues and the gathered writes.
//   --mode server  the driver writes the frames to a publisher connection;
//                  the publisher's session reads them and relays the
//                  frames of each read as one message, exactly as
//                  examples/broadcast_server.cpp does (no echo): adds the
//                  read path (readiness wait, recv, parse), and at most one
//                  allocation per read instead of one per frame.
//
// After a warm-up of --warmup messages, every peer having received all of
// them, heap allocations (malloc, calloc, realloc, aligned_alloc,
// posix_memalign, memalign: operator new and Asio's handler memory both
// end there) are counted while --messages more are
// published and received by every peer. Printed: allocations per published
// message and per delivery (published × N), and the deepest session queue
// seen at the driver's rounds. --sites prints where the measured
// allocations come from (call stacks, symbolised with addr2line).
//
//   alloc_per_delivery                      # N = 10, 100 × both modes, B = 64
//   alloc_per_delivery --subs 100 --batch 1 --mode server --sites
#include <parley/hub/hub.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/session.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

// --- counting every heap allocation ---------------------------------------------------

namespace {

std::atomic<std::uint64_t> g_allocations{0};

// Call-site recording (with --sites, during the measured phase only): a
// fixed table, so recording allocates nothing itself.
constexpr int site_depth = 10;
constexpr std::size_t max_sites = 64;
struct site {
    std::array<void*, site_depth> frames{};
    int depth = 0;
    std::uint64_t count = 0;
};
std::array<site, max_sites> g_sites;
std::size_t g_site_count = 0;
std::uint64_t g_unrecorded = 0;
std::atomic<bool> g_recording{false};
thread_local bool t_in_hook = false;

void record_site() {
    if (t_in_hook)
        return;
    t_in_hook = true;
    void* frames[site_depth + 2];
    const int depth = ::backtrace(frames, site_depth + 2) - 2; // drop record_site, malloc
    bool found = false;
    for (std::size_t i = 0; i < g_site_count && !found; ++i) {
        auto& s = g_sites[i];
        if (s.depth == depth && std::equal(frames + 2, frames + 2 + depth, s.frames.begin())) {
            ++s.count;
            found = true;
        }
    }
    if (!found) {
        if (g_site_count < max_sites && depth > 0) {
            auto& s = g_sites[g_site_count++];
            std::copy(frames + 2, frames + 2 + depth, s.frames.begin());
            s.depth = depth;
            s.count = 1;
        } else {
            ++g_unrecorded;
        }
    }
    t_in_hook = false;
}

} // namespace

// Every heap allocation of the process goes through these: operator new
// calls malloc, and Asio may take its handler memory from aligned_alloc
// directly (asio/detail/memory.hpp; the in-tree build defines
// ASIO_DISABLE_STD_ALIGNED_ALLOC, a consumer's build may not), which a
// replaced operator new would never see. They forward to glibc's own
// entry points.
extern "C" {
void* __libc_malloc(std::size_t) noexcept;
void* __libc_calloc(std::size_t, std::size_t) noexcept;
void* __libc_realloc(void*, std::size_t) noexcept;
void* __libc_memalign(std::size_t, std::size_t) noexcept;

namespace {
inline void count_allocation() noexcept {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (g_recording.load(std::memory_order_relaxed)) [[unlikely]]
        record_site();
}
} // namespace

void* malloc(std::size_t size) noexcept {
    count_allocation();
    return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
    count_allocation();
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
    count_allocation();
    return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t align, std::size_t size) noexcept {
    count_allocation();
    return __libc_memalign(align, size);
}
void* memalign(std::size_t align, std::size_t size) noexcept {
    count_allocation();
    return __libc_memalign(align, size);
}
int posix_memalign(void** out, std::size_t align, std::size_t size) noexcept {
    if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0)
        return EINVAL;
    count_allocation();
    void* p = __libc_memalign(align, size);
    if (p == nullptr)
        return ENOMEM;
    *out = p;
    return 0;
}
} // extern "C"

namespace {

using asio::ip::tcp;
using session = parley::session<tcp::socket>;
constexpr std::string_view room = "all";

struct config {
    std::size_t subs = 0; // 0: both 10 and 100
    std::size_t messages = 200000;
    std::size_t warmup = 50000;
    std::size_t size = 64;
    std::size_t batch = 64;
    std::size_t window = 1024;
    std::size_t drain_every = 1;
    int peer_rcvbuf = 0; // 0: the kernel's default
    std::string mode = "both";
    bool sites = false;
};

struct result {
    std::size_t subs = 0;
    std::string mode;
    std::uint64_t allocations = 0;
    std::uint64_t published = 0;
    std::uint64_t deliveries = 0;
    double seconds = 0;
    double cpu_seconds = 0;
    std::size_t max_queue = 0;
    bool ok = false;
};

double cpu_now() {
    ::rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

// A raw client socket connected to `port` on loopback, then non-blocking.
int connect_raw(std::uint16_t port, int rcvbuf = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    if (rcvbuf > 0 && ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0)
        die("SO_RCVBUF");
    ::sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<::sockaddr*>(&addr), sizeof addr) != 0)
        die("connect");
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

class bench {
public:
    bench(const config& c, std::size_t subs, bool server_mode)
        : config_(c), subs_(subs), server_mode_(server_mode), ioc_(1),
          acceptor_(ioc_, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
          hub_({.thread_safe = false}) {
        options_.thread_safe = false; // one I/O thread, as broadcast_server --threads 1
        frame_size_ = parley::frame_codec<>::header_size + c.size;
        payload_.assign(c.size, std::byte{'x'});
        recv_buffer_.resize(256 * 1024);
    }

    ~bench() {
        for (int fd : peers_)
            ::close(fd);
        if (publisher_fd_ >= 0)
            ::close(publisher_fd_);
    }

    result run() {
        const auto port = acceptor_.local_endpoint().port();
        for (std::size_t i = 0; i < subs_; ++i) {
            peers_.push_back(connect_raw(port, config_.peer_rcvbuf));
            serve(acceptor_.accept(), false);
        }
        received_.assign(subs_, 0);
        peer_bytes_.assign(subs_, 0);
        if (server_mode_) {
            publisher_fd_ = connect_raw(port);
            serve(acceptor_.accept(), true);
        }
        target_ = config_.warmup;
        asio::post(ioc_, [this] { step(); });
        ioc_.run();

        result r;
        r.subs = subs_;
        r.mode = server_mode_ ? "server" : "direct";
        r.allocations = allocations_;
        r.published = config_.messages;
        r.deliveries = config_.messages * subs_;
        r.seconds = seconds_;
        r.cpu_seconds = cpu_seconds_;
        r.max_queue = max_queue_;
        const auto c = hub_.counters();
        const std::uint64_t total = config_.warmup + config_.messages;
        r.ok = done_ && c.published == total && c.deliveries == total * subs_ &&
               c.slow_disconnects == 0 && c.failed_deliveries == 0;
        if (!r.ok)
            std::cerr << "run incomplete: hub published " << c.published << " delivered "
                      << c.deliveries << " (expected " << total << ", " << total * subs_
                      << "), slow disconnects " << c.slow_disconnects << ", failed "
                      << c.failed_deliveries << '\n';
        return r;
    }

private:
    // What broadcast_server's serve() does, minus logging.
    void serve(tcp::socket socket, bool publisher) {
        socket.set_option(tcp::no_delay(true));
        auto s = std::make_shared<session>(std::move(socket), options_);
        sessions_.push_back(s);
        if (!publisher)
            hub_.join(room, s);
        s->read_frame_batches([this](session& from, parley::frame_batch frames) {
            hub_.publish(room,
                         parley::make_raw_message(frames.wire(), frames.size()),
                         &from);
        });
    }

    // Drains every peer, publishes the next batch when the window allows,
    // switches phase, and re-posts itself.
    void step() {
        for (const auto& s : sessions_)
            max_queue_ = std::max(max_queue_, s->stats().queued_messages);
        if (++steps_ % config_.drain_every == 0)
            drain();
        const std::size_t slowest = *std::min_element(received_.begin(), received_.end());
        if (phase_ == 0 && slowest >= config_.warmup) {
            phase_ = 1;
            target_ += config_.messages;
            start_allocations_ = g_allocations.load();
            start_time_ = std::chrono::steady_clock::now();
            start_cpu_ = cpu_now();
            if (config_.sites)
                g_recording = true;
        } else if (phase_ == 1 && slowest >= target_) {
            g_recording = false;
            allocations_ = g_allocations.load() - start_allocations_;
            seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                     start_time_)
                           .count();
            cpu_seconds_ = cpu_now() - start_cpu_;
            done_ = true;
            for (auto& s : sessions_)
                s->abort(parley::error::shut_down);
            acceptor_.close();
            return;
        }
        if (published_ < target_ && published_ + config_.batch <= slowest + config_.window) {
            const std::size_t n = std::min(config_.batch, target_ - published_);
            server_mode_ ? send_frames(n) : publish(n);
            published_ += n;
        }
        flush_publisher();
        asio::post(ioc_, [this] { step(); });
    }

    void publish(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            std::error_code ec;
            hub_.publish(room, parley::make_frame_message(payload_, ec));
        }
    }

    void send_frames(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint32_t length = htonl(static_cast<std::uint32_t>(config_.size));
            const auto* h = reinterpret_cast<const char*>(&length);
            pending_out_.insert(pending_out_.end(), h, h + 4);
            const auto* p = reinterpret_cast<const char*>(payload_.data());
            pending_out_.insert(pending_out_.end(), p, p + payload_.size());
        }
    }

    void flush_publisher() {
        while (out_sent_ < pending_out_.size()) {
            const auto n = ::send(publisher_fd_, pending_out_.data() + out_sent_,
                                  pending_out_.size() - out_sent_, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n <= 0) {
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                    return;
                die("publisher send");
            }
            out_sent_ += static_cast<std::size_t>(n);
        }
        pending_out_.clear(); // keeps its capacity
        out_sent_ = 0;
    }

    void drain() {
        for (std::size_t i = 0; i < peers_.size(); ++i) {
            for (;;) {
                const auto n = ::recv(peers_[i], recv_buffer_.data(), recv_buffer_.size(),
                                      MSG_DONTWAIT);
                if (n > 0) {
                    peer_bytes_[i] += static_cast<std::size_t>(n);
                    continue;
                }
                if (n == 0)
                    die("peer closed");
                if (errno == EAGAIN || errno == EINTR)
                    break;
                die("peer recv");
            }
            received_[i] = peer_bytes_[i] / frame_size_;
        }
    }

    config config_;
    std::size_t subs_;
    bool server_mode_;
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    parley::hub hub_;
    parley::session_options options_;
    std::vector<std::shared_ptr<session>> sessions_;
    std::vector<int> peers_;
    int publisher_fd_ = -1;
    std::vector<std::byte> payload_;
    std::vector<char> recv_buffer_;
    std::vector<char> pending_out_;
    std::size_t out_sent_ = 0;
    std::vector<std::size_t> peer_bytes_;
    std::vector<std::size_t> received_;
    std::size_t frame_size_ = 0;
    std::size_t published_ = 0;
    std::size_t steps_ = 0;
    std::size_t max_queue_ = 0; // deepest session queue seen, in messages
    std::size_t target_ = 0;
    int phase_ = 0;
    bool done_ = false;
    std::uint64_t start_allocations_ = 0;
    std::uint64_t allocations_ = 0;
    std::chrono::steady_clock::time_point start_time_;
    double start_cpu_ = 0;
    double seconds_ = 0;
    double cpu_seconds_ = 0;
};

// "f<a<b>, c>(x)" -> "f<>(x)": the call stacks are read for their shape.
std::string strip_templates(const std::string& line) {
    std::string out;
    int depth = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        // "operator<" / "operator<<" and " -> " are not template brackets.
        if (c == '<' && !(i >= 8 && line.compare(i - 8, 8, "operator") == 0)) {
            if (depth++ == 0)
                out += "<>";
            continue;
        }
        if (c == '>' && depth > 0 && !(i > 0 && line[i - 1] == '-')) {
            --depth;
            continue;
        }
        if (depth == 0)
            out += c;
    }
    return out;
}

void print_sites() {
    std::vector<const site*> order;
    for (std::size_t i = 0; i < g_site_count; ++i)
        order.push_back(&g_sites[i]);
    std::sort(order.begin(), order.end(),
              [](const site* a, const site* b) { return a->count > b->count; });
    std::cout << "\nallocation sites during the measured phase (innermost first):\n";
    for (const site* s : order) {
        std::cout << "  " << s->count << " allocations:\n";
        for (int f = 0; f < s->depth; ++f) {
            ::Dl_info info{};
            if (::dladdr(s->frames[f], &info) == 0 || info.dli_fname == nullptr)
                continue;
            // Return addresses point after the call: step back one byte so
            // addr2line names the calling line.
            const auto offset = reinterpret_cast<std::uintptr_t>(s->frames[f]) -
                                reinterpret_cast<std::uintptr_t>(info.dli_fbase) - 1;
            char command[1024];
            std::snprintf(command, sizeof command, "addr2line -Cfpi -e '%s' 0x%lx 2>/dev/null",
                          info.dli_fname, static_cast<unsigned long>(offset));
            std::string text;
            if (FILE* pipe = ::popen(command, "r")) {
                char line[2048];
                while (std::fgets(line, sizeof line, pipe))
                    text += line;
                ::pclose(pipe);
            }
            if (text.empty() || text.starts_with("??"))
                text = std::string(info.dli_sname ? info.dli_sname : info.dli_fname) + "\n";
            // Keep only "function at file:line" per inlined level, shortened.
            std::size_t at = 0;
            while (at < text.size()) {
                const std::size_t end = text.find('\n', at);
                std::string line = text.substr(at, end == std::string::npos ? end : end - at);
                at = end == std::string::npos ? text.size() : end + 1;
                line = strip_templates(line);
                if (line.size() > 160)
                    line = line.substr(0, 157) + "...";
                std::cout << "      " << line << '\n';
            }
        }
    }
    if (g_unrecorded)
        std::cout << "  " << g_unrecorded << " allocations at other sites (table full)\n";
}

bool parse(int argc, char** argv, config& c) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto value = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::cerr << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        const auto number = [&] { return std::strtoull(value(), nullptr, 10); };
        if (a == "--subs")
            c.subs = number();
        else if (a == "--messages")
            c.messages = number();
        else if (a == "--warmup")
            c.warmup = number();
        else if (a == "--size")
            c.size = number();
        else if (a == "--batch")
            c.batch = number();
        else if (a == "--window")
            c.window = number();
        else if (a == "--drain-every")
            c.drain_every = number();
        else if (a == "--peer-rcvbuf")
            c.peer_rcvbuf = static_cast<int>(number());
        else if (a == "--mode")
            c.mode = value();
        else if (a == "--sites")
            c.sites = true;
        else {
            std::cerr << "usage: alloc_per_delivery [--subs N] [--messages M] [--warmup W]\n"
                         "         [--size S] [--batch B] [--window W] [--drain-every K]\n"
                         "         [--peer-rcvbuf BYTES] [--mode direct|server|both] [--sites]\n";
            return false;
        }
    }
    if (c.mode != "direct" && c.mode != "server" && c.mode != "both") {
        std::cerr << "--mode must be direct, server or both\n";
        return false;
    }
    if (c.batch == 0 || c.messages == 0 || c.size < 1 || c.window < c.batch || c.drain_every == 0) {
        std::cerr << "need --batch >= 1, --messages >= 1, --size >= 1, --window >= --batch, "
                     "--drain-every >= 1\n";
        return false;
    }
    return true;
}

} // namespace

int main(int argc, char** argv) {
    config c;
    if (!parse(argc, argv, c))
        return 2;
    if (c.sites) {
        // backtrace() loads libgcc's unwinder (and allocates) on first use.
        void* warm[4];
        ::backtrace(warm, 4);
    }
    std::vector<std::size_t> subs = c.subs ? std::vector<std::size_t>{c.subs}
                                           : std::vector<std::size_t>{10, 100};
    std::vector<bool> modes;
    if (c.mode != "server")
        modes.push_back(false);
    if (c.mode != "direct")
        modes.push_back(true);

    std::cout << "payload " << c.size << " B, batch " << c.batch << ", window " << c.window
              << ", peers read every " << c.drain_every << " driver step(s)"
              << ", warm-up " << c.warmup << ", measured " << c.messages << " messages\n\n";
    std::cout << "| mode | N | allocations | per publish | per delivery | deepest queue | "
                 "ns CPU per delivery* |\n"
              << "|---|---|---|---|---|---|---|\n";
    bool all_ok = true;
    for (std::size_t n : subs) {
        for (bool server_mode : modes) {
            result r;
            {
                bench b(c, n, server_mode);
                r = b.run();
            }
            all_ok = all_ok && r.ok;
            char line[256];
            std::snprintf(line, sizeof line, "| %s | %zu | %llu | %.3f | %.4f | %zu | %.0f |%s\n",
                          r.mode.c_str(), r.subs, static_cast<unsigned long long>(r.allocations),
                          double(r.allocations) / double(r.published),
                          double(r.allocations) / double(r.deliveries), r.max_queue,
                          r.cpu_seconds * 1e9 / double(r.deliveries), r.ok ? "" : " FAILED");
            std::cout << line << std::flush;
            if (c.sites) {
                print_sites();
                g_site_count = 0;
                g_unrecorded = 0;
            }
        }
    }
    std::cout << "\n* whole process (hub, sessions, and the raw-socket drain of every peer in the "
                 "same thread): informative only, not a throughput figure.\n";
    return all_ok ? 0 : 1;
}
