// loadgen.cpp - single-threaded load generator for parley and its peers.
//
// Raw epoll, no Asio, no parley code: it must not share the code path of the
// servers it measures, and it runs on one core so the other is the server's.
//
//   loadgen fanout --proto P --port PORT --subs N --size S [--window W | --rate R]
//   loadgen echo   --proto P --port PORT --conns C --inflight W --size S [--greeting]
//   loadgen idle   --proto P --port PORT --conns K [--server-pid PID] [--greeting]
//                  [--nick] [--broadcast]
//
// Protocols: parley (4-byte big-endian length + payload), resp (Redis
// SUBSCRIBE/PUBLISH, and ECHO for the echo scenario), nats (text protocol),
// asiochat (Asio's chat example: 4 ASCII digits + body of at most 512 bytes),
// and the text chat protocols: irc (NICK/USER, JOIN #SUBJECT, PRIVMSG),
// chat (parley chat_server's framed port: text inputs, JSON events out) and
// chatline (chat_server's line port: text lines in, "[room] nick: text" out),
// and WebSocket (RFC 6455) clients: ws (a server that relays every text
// message as it is: Beast's chat-multi example, a Node ws broadcast server)
// and wschat (chat_server's web port, GET /ws: the nickname first, text
// inputs in, JSON events out, as on its framed port).
//
// Every payload starts with a 24-byte header: magic, run id, sequence number
// and send time (CLOCK_MONOTONIC ns); the rest is filler.  The text protocols
// carry it as 41 printable characters (a letter, then 8 + 16 + 16 hex digits).
// Latency is receive time minus send time, in this one process, so the clocks
// agree.
//
// Each run prints one human line and one JSON line (the line starting '{').
// See bench/README.md for what each number means.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr uint32_t kDataMagic = 0x444c5250;  // "PRLD"
constexpr uint32_t kMarkMagic = 0x4d4c5250;  // "PRLM"
constexpr size_t kHeader = 24;               // magic, run id, seq, timestamp
constexpr size_t kMaxPayload = 1u << 20;     // parley's limit
constexpr size_t kAsioMaxBody = 512;         // Asio chat example's limit
constexpr size_t kTextHeader = 41;           // 'D'/'M', run, seq, ts in hex
constexpr size_t kIrcMaxText = 460;          // an IRC line stops at 512 bytes
constexpr size_t kBufSize = 4u << 20;        // shared receive buffer
constexpr size_t kReadChunk = 1u << 20;      // at most this much per recv
constexpr uint64_t kNever = UINT64_MAX;

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

[[noreturn]] void fail(const char* fmt, const char* arg = "") {
  std::fprintf(stderr, "loadgen: ");
  std::fprintf(stderr, fmt, arg);
  std::fprintf(stderr, "\n");
  std::exit(2);
}

// --------------------------------------------------------------------------
// Log-linear histogram (HDR style): 2^kSub linear sub-buckets per power of
// two, so any recorded value is off by less than 1/2^kSub (0.8%).  Fixed
// size, no allocation per record.
class Histogram {
 public:
  static constexpr int kSub = 7;
  static constexpr uint64_t kSubCount = uint64_t(1) << kSub;
  static constexpr size_t kBuckets = (64 - kSub + 1) * kSubCount;

  Histogram() : counts_(kBuckets, 0) {}

  void record(uint64_t v) {
    ++counts_[index(v)];
    ++total_;
    if (v > max_) max_ = v;
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // Value at quantile q (0..1): the midpoint of the bucket holding it.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t want = uint64_t(std::ceil(q * double(total_)));
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= want) return std::min(mid(i), max_);
    }
    return max_;
  }

 private:
  static size_t index(uint64_t v) {
    if (v < 2 * kSubCount) return size_t(v);
    int e = 63 - __builtin_clzll(v);  // e > kSub
    uint64_t top = v >> (e - kSub);   // in [kSubCount, 2*kSubCount)
    return size_t(e - kSub + 1) * kSubCount + size_t(top - kSubCount);
  }
  static uint64_t mid(size_t i) {
    if (i < 2 * kSubCount) return i;
    uint64_t g = i / kSubCount, sub = i % kSubCount;
    uint64_t lo = (kSubCount + sub) << (g - 1);
    uint64_t width = uint64_t(1) << (g - 1);
    return lo + width / 2;
  }
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0, max_ = 0;
};

// --------------------------------------------------------------------------
enum class Scenario { fanout, echo, idle };
enum class Proto { parley, resp, nats, asiochat, irc, chat, chatline, ws, wschat };

const char* name(Proto p) {
  switch (p) {
    case Proto::parley: return "parley";
    case Proto::resp: return "resp";
    case Proto::nats: return "nats";
    case Proto::asiochat: return "asiochat";
    case Proto::irc: return "irc";
    case Proto::chat: return "chat";
    case Proto::chatline: return "chatline";
    case Proto::ws: return "ws";
    case Proto::wschat: return "wschat";
  }
  return "?";
}

struct Options {
  Scenario scenario = Scenario::fanout;
  Proto proto = Proto::parley;
  std::string host = "127.0.0.1";
  std::string port;
  std::string label;           // free text copied into the JSON (server name)
  std::string subject = "bench";
  std::string ws_path = "/ws";  // ws, wschat: the upgrade request's target
  std::string ws_protocol;      // ws: a Sec-WebSocket-Protocol to ask for ("" = none)
  std::string irc_oper;        // irc: "NAME PASSWORD" the publisher sends as OPER
  int subs = 10;               // fanout: subscribers
  size_t size = 64;            // payload bytes
  double rate = 0;             // fanout: publishes/s; 0 = saturating
  uint64_t window = 0;         // fanout saturating: max messages ahead of slowest (0 = auto)
  int conns = 1;               // echo, idle
  int inflight = 1;            // echo: requests in flight per connection
  bool greeting = false;       // parley echo_server: one greeting frame per connection
  double warmup = 1, duration = 5, drain = 3;
  double connect_timeout = 15, ready_timeout = 10;
  int server_pid = 0;          // idle: whose RSS to read
  double hold = 0;             // idle: keep connections open this long after measuring
  bool nick = false;           // idle, chat: every connection takes a nickname first
  bool broadcast = false;      // idle: then one message from the first reaches all others
  std::string tcp_cc = "reno"; // congestion control of loadgen's own sockets ("" = system default)
  double coalesce_us = -1;     // echo, saturating fanout: pause before a thin loop turn (-1 = auto)
};

void usage() {
  std::fprintf(stderr,
      "usage: loadgen fanout|echo|idle --proto parley|resp|nats|asiochat|irc|chat|chatline|ws|wschat --port P [options]\n"
      "  common:  --host H (loopback only) --size S --warmup SEC --duration SEC\n"
      "           --drain SEC --connect-timeout SEC --ready-timeout SEC --label TEXT\n"
      "           --tcp-cc NAME (loadgen's sockets' congestion control; default reno, '' = system's)\n"
      "           --ws-path PATH (ws, wschat: the upgrade's request target; default /ws)\n"
      "           --ws-protocol NAME (ws, wschat: the subprotocol asked for; default none)\n"
      "           --coalesce-us US (echo, saturating fanout: a turn that found under half the connections\n"
      "             ready is followed by a pause of US, so replies gather; default 25 with 8+ connections, else 0)\n"
      "  fanout:  --subs N  [--window W (saturating; default auto) | --rate R (paced)]\n"
      "           [--irc-oper 'NAME PASSWORD' (irc: the publisher opers up, for flood exemptions)]\n"
      "  echo:    --conns C --inflight W [--greeting]   (proto parley or resp)\n"
      "  idle:    --conns K [--server-pid PID] [--greeting] [--hold SEC]\n"
      "           [--nick (chat, wschat: each takes a nickname)] [--broadcast (then time one message to all)]\n");
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  if (argc < 2) usage();
  std::string_view sc = argv[1];
  if (sc == "fanout") o.scenario = Scenario::fanout;
  else if (sc == "echo") o.scenario = Scenario::echo;
  else if (sc == "idle") o.scenario = Scenario::idle;
  else usage();
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) fail("missing value for %s", argv[i]);
      return argv[++i];
    };
    auto num = [&]() { return std::strtod(val(), nullptr); };
    if (a == "--proto") {
      std::string_view p = val();
      if (p == "parley") o.proto = Proto::parley;
      else if (p == "resp") o.proto = Proto::resp;
      else if (p == "nats") o.proto = Proto::nats;
      else if (p == "asiochat") o.proto = Proto::asiochat;
      else if (p == "irc") o.proto = Proto::irc;
      else if (p == "chat") o.proto = Proto::chat;
      else if (p == "chatline") o.proto = Proto::chatline;
      else if (p == "ws") o.proto = Proto::ws;
      else if (p == "wschat") o.proto = Proto::wschat;
      else fail("unknown protocol %s", p.data());
    } else if (a == "--host") o.host = val();
    else if (a == "--port") o.port = val();
    else if (a == "--label") o.label = val();
    else if (a == "--subject") o.subject = val();
    else if (a == "--ws-path") o.ws_path = val();
    else if (a == "--ws-protocol") o.ws_protocol = val();
    else if (a == "--irc-oper") o.irc_oper = val();
    else if (a == "--subs") o.subs = int(num());
    else if (a == "--size") o.size = size_t(num());
    else if (a == "--rate") o.rate = num();
    else if (a == "--window") o.window = uint64_t(num());
    else if (a == "--conns") o.conns = int(num());
    else if (a == "--inflight") o.inflight = int(num());
    else if (a == "--greeting") o.greeting = true;
    else if (a == "--warmup") o.warmup = num();
    else if (a == "--duration") o.duration = num();
    else if (a == "--drain") o.drain = num();
    else if (a == "--connect-timeout") o.connect_timeout = num();
    else if (a == "--ready-timeout") o.ready_timeout = num();
    else if (a == "--server-pid") o.server_pid = int(num());
    else if (a == "--hold") o.hold = num();
    else if (a == "--tcp-cc") o.tcp_cc = val();
    else if (a == "--coalesce-us") o.coalesce_us = num();
    else if (a == "--nick") o.nick = true;
    else if (a == "--broadcast") o.broadcast = true;
    else usage();
  }
  if (o.port.empty()) fail("--port is required");
  if (o.size < kHeader) fail("--size must be at least 24 (the payload header)");
  if (o.size > kMaxPayload) fail("--size must be at most 1048576");
  if (o.proto == Proto::asiochat && o.size > kAsioMaxBody)
    fail("asiochat bodies are at most 512 bytes");
  const bool ws = o.proto == Proto::ws || o.proto == Proto::wschat;
  const bool text = o.proto == Proto::irc || o.proto == Proto::chat || o.proto == Proto::chatline || ws;
  if (text && o.size < kTextHeader) fail("text protocols need --size of at least 41 (the text header)");
  if (o.proto == Proto::irc && o.size > kIrcMaxText) fail("irc texts are at most 460 bytes here");
  if (text && o.size > 4096) fail("chat texts are at most 4096 bytes");
  if (text && o.scenario != Scenario::fanout &&
      !((o.proto == Proto::chat || ws) && o.scenario == Scenario::idle))
    fail("irc, chat, chatline, ws and wschat do fanout only (chat, ws, wschat: idle too)");
  if ((o.nick || o.broadcast) && o.scenario != Scenario::idle) fail("--nick and --broadcast are for idle");
  if (o.nick && o.proto != Proto::chat && o.proto != Proto::wschat) fail("--nick is for --proto chat or wschat");
  if (o.broadcast && o.proto != Proto::parley && o.proto != Proto::chat)
    fail("--broadcast speaks parley or chat");
  if (ws && (o.ws_path.empty() || o.ws_path[0] != '/' || o.ws_path.find_first_of(" \r\n") != std::string::npos))
    fail("bad --ws-path");
  if (o.ws_protocol.find_first_of(" \r\n") != std::string::npos) fail("bad --ws-protocol");
  if (o.broadcast && o.conns < 2) fail("--broadcast needs 2 connections or more");
  if (o.subs < 1 || o.conns < 1 || o.inflight < 1) fail("counts must be positive");
  if (o.window == 0) {
    // A trade-off, the same for every server: enough messages in flight that
    // a server's per-recipient cost per round (a syscall) is spread over many
    // messages (the floor at N=1000 did 1.3M msgs/s with 65 in flight, ~4M
    // with 262, ~7M with 1024), but a backlog that stays short, since a deep
    // one made Redis and NATS slower, not faster.  About 256k deliveries in
    // flight, at least 256 messages, at most 8192 messages and 2 MiB of frames
    // per subscriber (inside the floor's and parley's 4 MiB per-client limits
    // and Redis's 8 MiB pub/sub soft limit).  Override with --window.
    uint64_t frame = o.size + 64;
    uint64_t cap = std::min<uint64_t>(8192, (2u << 20) / frame);
    o.window = std::max<uint64_t>(16, std::min(cap, std::max<uint64_t>(256, (256u << 10) / uint64_t(o.subs))));
  }
  if (o.duration <= 0 || o.warmup < 0 || o.drain < 0) fail("bad durations");
  if (o.coalesce_us < 0) {
    const int conns = o.scenario == Scenario::echo ? o.conns : o.subs;
    const bool saturating = o.scenario == Scenario::echo || (o.scenario == Scenario::fanout && o.rate == 0);
    o.coalesce_us = saturating && conns >= 8 ? 25 : 0;
  }
  if (o.coalesce_us > 1000) fail("--coalesce-us is at most 1000");
  if (o.scenario == Scenario::echo && o.proto != Proto::parley && o.proto != Proto::resp)
    fail("echo speaks parley framing or resp (ECHO) only");
  if (o.greeting && o.proto != Proto::parley) fail("--greeting is for parley servers");
  if (o.subject.empty() || o.subject.size() > 64 ||
      o.subject.find_first_of(" \r\n\t") != std::string::npos)
    fail("bad --subject");
  return o;
}

// Only loopback targets: this tool floods whatever it connects to.
bool is_loopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

uint32_t be32(const char* p) {
  auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 | u[3];
}
void put_be32(char* p, uint32_t v) {
  p[0] = char(v >> 24); p[1] = char(v >> 16); p[2] = char(v >> 8); p[3] = char(v);
}

// Reads a decimal number ending at "\r\n"; false if malformed.
bool parse_i64(const char* p, const char* end, int64_t& out) {
  bool neg = false;
  if (p < end && *p == '-') { neg = true; ++p; }
  if (p == end) return false;
  int64_t v = 0;
  for (; p < end; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
    if (v > (int64_t(1) << 40)) return false;
  }
  out = neg ? -v : v;
  return true;
}

// /proc readers for the idle scenario.
long rss_kb(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "VmRSS:", 6) == 0) { kb = std::strtol(line + 6, nullptr, 10); break; }
  std::fclose(f);
  return kb;
}
long fd_count(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/fd", pid);
  DIR* d = opendir(path);
  if (!d) return -1;
  long n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') ++n;
  closedir(d);
  return n;
}

// utime + stime of every thread of pid, in seconds (clock-tick resolution).
double proc_cpu_s(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[1024];
  bool ok = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!ok) return -1;
  const char* p = std::strrchr(line, ')');  // the command name may hold spaces
  if (!p) return -1;
  unsigned long long ut = 0, st = 0;
  // after ')': state(3) ... utime is field 14, stime 15
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
  return double(ut + st) / double(sysconf(_SC_CLK_TCK));
}
double self_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

std::string fmt_rate(double v) {
  char b[32];
  if (v >= 1e6) std::snprintf(b, sizeof b, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(b, sizeof b, "%.1fk", v / 1e3);
  else std::snprintf(b, sizeof b, "%.0f", v);
  return b;
}
std::string fmt_us(uint64_t ns) {
  char b[32];
  if (ns >= 10000000) std::snprintf(b, sizeof b, "%.1fms", double(ns) / 1e6);
  else std::snprintf(b, sizeof b, "%.0fus", double(ns) / 1e3);
  return b;
}
std::string json_str(const std::string& s) {
  std::string r = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') { r += '\\'; r += ch; }
    else if (static_cast<unsigned char>(ch) < 0x20) r += ' ';
    else r += ch;
  }
  return r + "\"";
}

// --------------------------------------------------------------------------
enum class Role { publisher, subscriber, echo, idle };

struct Conn {
  int fd = -1;
  Role role = Role::idle;
  bool connecting = false, alive = false, want_out = false;
  bool ready = false, subscribed = false, pong = false, greeted = false;
  bool registered = false, joined = false;  // irc: 001 seen, 366 (end of NAMES) seen
  bool oper = false;                        // irc: 381 (you are an operator) seen
  bool upgraded = false;                    // ws, wschat: the 101 answer read
  std::string in;              // bytes of an incomplete unit, carried to the next read
  std::string out;             // bytes not yet accepted by the socket
  size_t out_off = 0;
  uint64_t expected = 0;       // subscriber/echo: next sequence number
  uint64_t sent = 0;           // echo: requests sent
};

class Runner {
 public:
  explicit Runner(Options o) : o_(std::move(o)) {
    std::random_device rd;
    run_id_ = rd() | 1;
    buf_.resize(kBufSize + 64);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) fail("epoll_create1: %s", std::strerror(errno));
    resolve();
    payload_.assign(o_.size, 'x');
    ws_ = o_.proto == Proto::ws || o_.proto == Proto::wschat;
    text_ = o_.proto == Proto::irc || o_.proto == Proto::chat || o_.proto == Proto::chatline || ws_;
    coalesce_ns_ = uint64_t(o_.coalesce_us * 1000);
    exact_ts_ = o_.scenario == Scenario::idle || (o_.scenario == Scenario::fanout && o_.rate > 0);
    if (coalesce_ns_) prctl(PR_SET_TIMERSLACK, 2000UL, 0, 0, 0);  // pauses of about what was asked
  }

  int run() {
    switch (o_.scenario) {
      case Scenario::fanout: return run_fanout();
      case Scenario::echo: return run_echo();
      case Scenario::idle: return run_idle();
    }
    return 2;
  }

 private:
  // ---------------------------------------------------------------- setup
  void resolve() {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;  // no name lookups: no DNS traffic
    if (o_.host == "localhost") o_.host = "127.0.0.1";
    addrinfo* res = nullptr;
    int rc = getaddrinfo(o_.host.c_str(), o_.port.c_str(), &hints, &res);
    if (rc) fail("--host must be a numeric loopback address or localhost: %s", gai_strerror(rc));
    std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
    addrlen_ = res->ai_addrlen;
    freeaddrinfo(res);
    if (!is_loopback(reinterpret_cast<sockaddr*>(&addr_)))
      fail("refusing non-loopback target %s", o_.host.c_str());
  }

  bool fatal() const { return !error_.empty(); }
  void set_error(const std::string& e) {
    if (error_.empty()) error_ = e;
  }

  void ctl(int op, size_t i, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    if (epoll_ctl(ep_, op, conns_[i].fd, &ev) < 0 && op != EPOLL_CTL_DEL)
      set_error(std::string("epoll_ctl: ") + std::strerror(errno));
  }

  void start_connect(size_t i) {
    Conn& c = conns_[i];
    c.fd = socket(addr_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) { set_error(std::string("socket: ") + std::strerror(errno)); return; }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Loopback loses nothing: Reno's per-ACK work is a fraction of BBR's
    // (Linux's usual default), and it is loadgen's CPU, not the server's.
    // Best effort: a kernel without it keeps its default.
    if (!o_.tcp_cc.empty())
      setsockopt(c.fd, IPPROTO_TCP, TCP_CONGESTION, o_.tcp_cc.data(), socklen_t(o_.tcp_cc.size()));
    if (o_.scenario == Scenario::idle && addr_.ss_family == AF_INET) {
      // Thousands of connections to one port: the kernel's search for a free
      // local port grows slow as they fill one source address's range, so
      // spread them over 127.0.0.1-32 (all loopback), the port picked at
      // connect for the whole address pair.
      setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl((127u << 24) | uint32_t(1 + i % 32));
      if (bind(c.fd, reinterpret_cast<sockaddr*>(&src), sizeof src) < 0) {
        set_error(std::string("bind: ") + std::strerror(errno));
        return;
      }
    }
    int rc = connect(c.fd, reinterpret_cast<sockaddr*>(&addr_), addrlen_);
    if (rc < 0 && errno != EINPROGRESS) {
      set_error(std::string("connect: ") + std::strerror(errno));
      return;
    }
    c.connecting = true;
    ctl(EPOLL_CTL_ADD, i, EPOLLOUT);
  }

  void finish_connect(size_t i) {
    Conn& c = conns_[i];
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    c.connecting = false;
    --connecting_;
    if (err) { set_error(std::string("connect: ") + std::strerror(err)); return; }
    c.alive = true;
    ++connected_;
    ctl(EPOLL_CTL_MOD, i, EPOLLIN);
  }

  // Opens every connection in conns_, at most 256 handshakes in flight so a
  // small listen backlog does not drop SYNs.
  bool connect_all() {
    uint64_t deadline = now_ns() + uint64_t(o_.connect_timeout * 1e9);
    size_t next = 0;
    while (connected_ < conns_.size() && !fatal()) {
      while (next < conns_.size() && connecting_ < 256) {
        start_connect(next++);
        ++connecting_;
        if (fatal()) return false;
      }
      if (now_ns() > deadline) {
        set_error("timeout connecting (" + std::to_string(connected_) + "/" +
                  std::to_string(conns_.size()) + " connected)");
        return false;
      }
      poll_once(10'000'000);
    }
    return !fatal();
  }

  // Runs the loop until pred() holds; false on timeout or fatal error.
  bool wait_until(const std::function<bool()>& pred, double seconds, const char* what,
                  const std::function<size_t()>& progress = {}) {
    uint64_t deadline = now_ns() + uint64_t(seconds * 1e9);
    while (!pred()) {
      if (fatal()) return false;
      if (now_ns() > deadline) {
        std::string e = std::string("timeout waiting for ") + what;
        if (progress) e += " (" + std::to_string(progress()) + "/" + std::to_string(conns_.size()) + ")";
        set_error(e);
        return false;
      }
      poll_once(10'000'000);
    }
    return true;
  }

  // ---------------------------------------------------------------- I/O
  void poll_once(uint64_t timeout_ns) {
    epoll_event evs[512];
    timespec ts{time_t(timeout_ns / 1000000000u), long(timeout_ns % 1000000000u)};
    int n = epoll_pwait2(ep_, evs, 512, &ts, nullptr);
    if (n < 0) {
      if (errno != EINTR) set_error(std::string("epoll_pwait2: ") + std::strerror(errno));
      return;
    }
    last_events_ = size_t(n);
    turn_ns_ = now_ns();  // one clock read per turn: every unit read in it arrived by now
    for (int k = 0; k < n; ++k) {
      size_t i = evs[k].data.u64;
      Conn& c = conns_[i];
      if (c.connecting) { finish_connect(i); continue; }
      if (!c.alive) continue;
      if ((evs[k].events & EPOLLOUT) && c.want_out) flush(i);
      if (c.alive && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(i);
    }
    // Replies queued by this turn's reads go out together: one send per
    // connection per turn, however many of its units the turn read.
    for (size_t i : dirty_)
      if (conns_[i].alive && pending(conns_[i]) && !conns_[i].want_out) flush(i);
    dirty_.clear();
  }

  void close_conn(size_t i, const char* why) {
    Conn& c = conns_[i];
    if (!c.alive) return;
    ctl(EPOLL_CTL_DEL, i, 0);
    ::close(c.fd);
    c.fd = -1;
    c.alive = false;
    if (c.role == Role::subscriber || c.role == Role::echo || c.role == Role::idle) ++disconnected_;
    if (first_close_.empty()) first_close_ = why;
    if (c.role == Role::publisher) set_error(std::string("publisher connection closed: ") + why);
    else if (strict_) set_error(std::string("connection closed during setup: ") + why);
  }

  void flush(size_t i) {
    Conn& c = conns_[i];
    while (c.out_off < c.out.size()) {
      ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!c.want_out) { c.want_out = true; ctl(EPOLL_CTL_MOD, i, EPOLLIN | EPOLLOUT); }
          return;
        }
        close_conn(i, std::strerror(errno));
        return;
      }
      c.out_off += size_t(w);
    }
    c.out.clear();
    c.out_off = 0;
    if (c.want_out) { c.want_out = false; ctl(EPOLL_CTL_MOD, i, EPOLLIN); }
  }
  size_t pending(const Conn& c) const { return c.out.size() - c.out_off; }

  // --coalesce-us: after a turn that found under half the connections ready,
  // pause before the next, so the next finds more.  Each turn then reads and
  // sends for many connections at once: fewer wake-ups and epoll_waits per
  // message, for loadgen and for the server, which need not wake it.  Only
  // in saturating runs, whose many requests in flight keep the server busy
  // meanwhile (the pause adds to the measured latency).
  void coalesce() {
    if (coalesce_ns_ == 0 || last_events_ * 2 >= conns_.size()) return;
    timespec ts{0, long(coalesce_ns_)};
    nanosleep(&ts, nullptr);
  }

  void on_readable(size_t i) {
    Conn& c = conns_[i];
    char* b = buf_.data();
    size_t carried = c.in.size();
    if (carried) std::memcpy(b, c.in.data(), carried);
    size_t room = std::min(kReadChunk, kBufSize - carried);
    ssize_t n;
    do n = ::recv(c.fd, b + carried, room, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) { close_conn(i, "closed by server"); return; }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) close_conn(i, std::strerror(errno));
      return;
    }
    // Saturating runs read the clock once per loop turn; latency runs (paced,
    // the idle broadcast) once per read, as late as a unit can be known to be in.
    const uint64_t t = exact_ts_ ? now_ns() : turn_ns_;
    size_t len = carried + size_t(n);
    size_t used = 0;
    if (ws_ && !c.upgraded) {
      used = read_upgrade(i, b, len);
      if (!c.alive) return;
      if (!c.upgraded) {
        c.in.assign(b, len);
        return;
      }
      b += used;
      len -= used;
      used = 0;
    }
    if (c.role == Role::publisher && discard_publisher_input_) {
      c.in.clear();
      return;
    }
    switch (o_.proto) {
      case Proto::parley: used = parse_parley(i, b, len, t); break;
      case Proto::asiochat: used = parse_asiochat(i, b, len, t); break;
      case Proto::resp: used = parse_resp(i, b, len, t); break;
      case Proto::nats: used = parse_nats(i, b, len, t); break;
      case Proto::irc: used = parse_irc(i, b, len, t); break;
      case Proto::chat: used = parse_chat(i, b, len, t); break;
      case Proto::chatline: used = parse_chatline(i, b, len, t); break;
      case Proto::ws: case Proto::wschat: used = parse_ws(i, b, len, t); break;
    }
    if (!c.alive) return;
    if (used == len) c.in.clear();
    else c.in.assign(b + used, len - used);
    if (c.in.size() > kMaxPayload + 4096) close_conn(i, "protocol error: oversized unit");
    if (pending(c)) dirty_.push_back(i);
  }

  // ------------------------------------------------------------ parsers
  size_t parse_parley(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    while (n - off >= 4) {
      uint32_t len = be32(p + off);
      if (len > kMaxPayload) { close_conn(i, "protocol error: frame over 1 MiB"); return off; }
      if (n - off - 4 < len) break;
      on_data(i, p + off + 4, len, t);
      off += 4 + size_t(len);
    }
    return off;
  }

  size_t parse_asiochat(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    while (n - off >= 4) {
      size_t len = 0;
      for (int k = 0; k < 4; ++k) {
        char ch = p[off + k];
        if (ch >= '0' && ch <= '9') len = len * 10 + size_t(ch - '0');
        else if (ch != ' ') { close_conn(i, "protocol error: bad asio chat header"); return off; }
      }
      if (len > kAsioMaxBody) { close_conn(i, "protocol error: asio chat body over 512"); return off; }
      if (n - off - 4 < len) break;
      on_data(i, p + off + 4, len, t);
      off += 4 + len;
    }
    return off;
  }

  // RESP2: top-level integers (PUBLISH replies), simple strings (+PONG),
  // errors, bulk strings (ECHO replies) and flat arrays (subscribe
  // confirmations and pushed messages).
  size_t parse_resp(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    const char* end = p + n;
    struct Elem { char type; const char* s; size_t len; int64_t num; };
    // Parses one non-array element at q; returns the position after it, or
    // nullptr when incomplete; sets bad on a malformed element.
    auto elem = [&](const char* q, Elem& e, bool& bad) -> const char* {
      if (q >= end) return nullptr;
      const char* nl = static_cast<const char*>(std::memchr(q, '\n', size_t(end - q)));
      if (!nl) return nullptr;
      if (nl == q || nl[-1] != '\r') { bad = true; return nullptr; }
      e.type = *q;
      const char* ls = q + 1;
      const char* le = nl - 1;
      switch (e.type) {
        case '+': case '-':
          e.s = ls; e.len = size_t(le - ls); return nl + 1;
        case ':':
          if (!parse_i64(ls, le, e.num)) { bad = true; return nullptr; }
          return nl + 1;
        case '$': {
          if (!parse_i64(ls, le, e.num)) { bad = true; return nullptr; }
          if (e.num < 0) { e.s = nullptr; e.len = 0; return nl + 1; }
          if (size_t(e.num) > kMaxPayload) { bad = true; return nullptr; }
          const char* body = nl + 1;
          if (size_t(end - body) < size_t(e.num) + 2) return nullptr;
          e.s = body; e.len = size_t(e.num);
          return body + e.num + 2;
        }
        default: bad = true; return nullptr;
      }
    };
    while (off < n) {
      const char* q = p + off;
      bool bad = false;
      if (*q == '*') {
        const char* nl = static_cast<const char*>(std::memchr(q, '\n', n - off));
        if (!nl) break;
        int64_t count;
        if (nl[-1] != '\r' || !parse_i64(q + 1, nl - 1, count) || count < 0 || count > 8) {
          close_conn(i, "protocol error: bad RESP array");
          return off;
        }
        Elem el[8];
        const char* r = nl + 1;
        for (int64_t k = 0; k < count && r; ++k) r = elem(r, el[k], bad);
        if (bad) { close_conn(i, "protocol error: bad RESP element"); return off; }
        if (!r) break;
        off = size_t(r - p);
        auto is = [](const Elem& e, std::string_view s) {
          return e.type == '$' && e.s && std::string_view(e.s, e.len) == s;
        };
        if (count == 3 && is(el[0], "message") && el[2].type == '$' && el[2].s) {
          on_data(i, el[2].s, el[2].len, t);
        } else if (count == 3 && is(el[0], "subscribe")) {
          conns_[i].subscribed = true;
        } else if (count >= 1 && el[0].type == '-') {
          resp_error(std::string(el[0].s, el[0].len));
        }
        continue;
      }
      Elem e;
      const char* r = elem(q, e, bad);
      if (bad) { close_conn(i, "protocol error: bad RESP reply"); return off; }
      if (!r) break;
      off = size_t(r - p);
      switch (e.type) {
        case ':': on_publish_reply(e.num); break;
        case '+': if (std::string_view(e.s, e.len) == "PONG") conns_[i].pong = true; break;
        case '-': resp_error(std::string(e.s, e.len)); break;
        case '$': if (e.s) on_data(i, e.s, e.len, t); break;
      }
    }
    return off;
  }

  void resp_error(const std::string& text) {
    ++server_errors_;
    if (server_error_text_.empty()) server_error_text_ = text;
  }

  size_t parse_nats(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    while (off < n) {
      const char* q = p + off;
      const char* nl = static_cast<const char*>(std::memchr(q, '\n', n - off));
      if (!nl) {
        if (n - off > 4096) { close_conn(i, "protocol error: NATS line too long"); return off; }
        break;
      }
      const char* le = (nl > q && nl[-1] == '\r') ? nl - 1 : nl;
      std::string_view line(q, size_t(le - q));
      if (line.size() >= 4 && (line.substr(0, 4) == "MSG " || line.substr(0, 4) == "msg ")) {
        size_t sp = line.rfind(' ');
        int64_t len;
        if (!parse_i64(line.data() + sp + 1, line.data() + line.size(), len) || len < 0 ||
            size_t(len) > kMaxPayload) {
          close_conn(i, "protocol error: bad NATS MSG");
          return off;
        }
        const char* body = nl + 1;
        if (size_t(p + n - body) < size_t(len) + 2) break;
        on_data(i, body, size_t(len), t);
        off = size_t(body + len + 2 - p);
        continue;
      }
      off = size_t(nl + 1 - p);
      if (line == "PING") {
        conns_[i].out += "PONG\r\n";
      } else if (line == "PONG") {
        conns_[i].pong = true;
      } else if (line.substr(0, 4) == "-ERR") {
        ++server_errors_;
        if (server_error_text_.empty()) server_error_text_ = std::string(line);
      }  // INFO and +OK need nothing
    }
    return off;
  }

  void note_server_error(std::string_view text) {
    ++server_errors_;
    if (server_error_text_.empty()) server_error_text_ = std::string(text.substr(0, 200));
  }

  // chat_server's framed port: one JSON event per frame.  A message event's
  // text is found by its key and ends at the next quote (the payloads hold no
  // character JSON escapes); other events carry no payload and are skipped.
  size_t parse_chat(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    while (n - off >= 4) {
      uint32_t len = be32(p + off);
      if (len > kMaxPayload) { close_conn(i, "protocol error: frame over 1 MiB"); return off; }
      if (n - off - 4 < len) break;
      const char* f = p + off + 4;
      off += 4 + size_t(len);
      on_chat_event(i, f, len, t);
    }
    return off;
  }

  void on_chat_event(size_t i, const char* f, size_t len, uint64_t t) {
    static constexpr std::string_view key = "\"text\":\"";
    std::string_view ev(f, len);
    if (ev.size() > 15 && ev.substr(0, 15) == "{\"type\":\"error\"") { note_server_error(ev); return; }
    if (ev.substr(0, 23) == "{\"type\":\"nick_accepted\"") { conns_[i].registered = true; return; }
    size_t k = ev.find(key);
    if (k == std::string_view::npos) return;
    const char* s = f + k + key.size();
    const char* e = static_cast<const char*>(std::memchr(s, '"', size_t(f + len - s)));
    if (!e) { ++bad_; return; }
    on_data(i, s, size_t(e - s), t);
  }

  // ---------------------------------------------------------- WebSocket
  // The opening handshake's answer: the head up to the blank line, which must
  // be a 101 carrying the accept value of the fixed key (RFC 6455's own
  // example key; the server cannot tell).  Returns the bytes of the head, or
  // 0 while it is incomplete.
  static constexpr const char* kWsKey = "dGhlIHNhbXBsZSBub25jZQ==";
  static constexpr std::string_view kWsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  size_t read_upgrade(size_t i, const char* p, size_t n) {
    std::string_view head(p, n);
    size_t end = head.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (n > 8192) close_conn(i, "WebSocket handshake: answer head over 8 KiB");
      return 0;
    }
    head = head.substr(0, end);
    if (head.substr(0, 13) != "HTTP/1.1 101 ") {
      std::string first(head.substr(0, head.find('\r')));
      note_server_error(first);
      close_conn(i, "WebSocket handshake refused");
      return 0;
    }
    if (head.find(kWsAccept) == std::string_view::npos) {
      close_conn(i, "WebSocket handshake: wrong Sec-WebSocket-Accept");
      return 0;
    }
    conns_[i].upgraded = true;
    ++upgraded_;
    return end + 4;
  }

  void append_upgrade(Conn& c) {
    c.out += "GET " + o_.ws_path + " HTTP/1.1\r\nHost: " + o_.host + ":" + o_.port +
             "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + kWsKey +
             "\r\nSec-WebSocket-Version: 13\r\n" +
             (o_.ws_protocol.empty() ? "" : "Sec-WebSocket-Protocol: " + o_.ws_protocol + "\r\n") + "\r\n";
  }

  // A client frame: FIN, OPCODE, the MASK bit and the length, the key, then
  // the payload XORed with it.
  static std::string ws_client_frame(int opcode, std::string_view payload, const uint8_t key[4]) {
    std::string f;
    f.push_back(char(0x80 | opcode));
    size_t n = payload.size();
    if (n < 126) {
      f.push_back(char(0x80 | n));
    } else if (n < 65536) {
      f.push_back(char(0x80 | 126));
      f.push_back(char(n >> 8));
      f.push_back(char(n & 0xff));
    } else {
      f.push_back(char(0x80 | 127));
      for (int k = 7; k >= 0; --k) f.push_back(char((uint64_t(n) >> (8 * k)) & 0xff));
    }
    f.append(reinterpret_cast<const char*>(key), 4);
    for (size_t k = 0; k < n; ++k) f.push_back(char(uint8_t(payload[k]) ^ key[k & 3]));
    return f;
  }
  void append_ws_text(Conn& c, std::string_view text) {
    uint8_t key[4];
    const uint32_t r = uint32_t(ws_rng_());
    std::memcpy(key, &r, 4);
    c.out += ws_client_frame(0x1, text, key);
  }

  // Server frames, read in place from the shared buffer: unmasked, one text
  // (or binary) message per frame.  Pings are answered, a close frame ends
  // the connection; fragmented messages are not expected from these servers
  // for payloads this small and are counted as bad.
  size_t parse_ws(size_t i, const char* p, size_t n, uint64_t t) {
    size_t off = 0;
    while (n - off >= 2) {
      const uint8_t b0 = uint8_t(p[off]), b1 = uint8_t(p[off + 1]);
      if (b1 & 0x80) { close_conn(i, "protocol error: masked server frame"); return off; }
      size_t hdr = 2;
      uint64_t len = b1 & 0x7f;
      if (len == 126) {
        if (n - off < 4) break;
        len = (uint64_t(uint8_t(p[off + 2])) << 8) | uint8_t(p[off + 3]);
        hdr = 4;
      } else if (len == 127) {
        if (n - off < 10) break;
        len = 0;
        for (int k = 0; k < 8; ++k) len = len << 8 | uint8_t(p[off + 2 + k]);
        hdr = 10;
      }
      if (len > kMaxPayload) { close_conn(i, "protocol error: WebSocket frame over 1 MiB"); return off; }
      if (n - off - hdr < len) break;
      const char* f = p + off + hdr;
      off += hdr + size_t(len);
      const int opcode = b0 & 0x0f;
      if (b0 & 0x70) { close_conn(i, "protocol error: reserved bits in a server frame"); return off; }
      if (opcode == 0x1 || opcode == 0x2) {
        if (!(b0 & 0x80)) { ++bad_; ++ws_fragments_; continue; }
        if (o_.proto == Proto::wschat) on_chat_event(i, f, size_t(len), t);
        else on_data(i, f, size_t(len), t);
      } else if (opcode == 0x0) {
        ++bad_;
        ++ws_fragments_;
      } else if (opcode == 0x9) {
        append_ws_pong(conns_[i], std::string_view(f, size_t(len)));
      } else if (opcode == 0x8) {
        close_conn(i, "WebSocket close frame from the server");
        return off;
      }  // 0xA, pong: nothing to do
    }
    return off;
  }
  void append_ws_pong(Conn& c, std::string_view payload) {
    uint8_t key[4];
    const uint32_t r = uint32_t(ws_rng_());
    std::memcpy(key, &r, 4);
    c.out += ws_client_frame(0xA, payload, key);
  }

  // Calls line(start, length) for each complete line (without \r\n); returns
  // the bytes used.  A line over 8 KiB closes the connection.
  template <class F>
  size_t split_lines(size_t i, const char* p, size_t n, F&& line) {
    size_t off = 0;
    while (off < n) {
      const char* q = p + off;
      const char* nl = static_cast<const char*>(std::memchr(q, '\n', n - off));
      if (!nl) {
        if (n - off > 8192) close_conn(i, "protocol error: line over 8 KiB");
        break;
      }
      off = size_t(nl + 1 - p);
      const char* le = (nl > q && nl[-1] == '\r') ? nl - 1 : nl;
      line(q, size_t(le - q));
      if (!conns_[i].alive) break;
    }
    return off;
  }

  // chat_server's line port: "[ROOM] FROM: TEXT" is a message; "!" starts an
  // error; everything else ("* ...", the prompt) is news and skipped.
  size_t parse_chatline(size_t i, const char* p, size_t n, uint64_t t) {
    return split_lines(i, p, n, [&](const char* q, size_t len) {
      std::string_view l(q, len);
      if (l.empty()) return;
      if (l[0] == '!') { note_server_error(l); return; }
      if (l[0] != '[') return;
      size_t rb = l.find("] ");
      size_t colon = rb == std::string_view::npos ? rb : l.find(": ", rb + 2);
      if (colon == std::string_view::npos) { ++bad_; return; }
      on_data(i, q + colon + 2, len - colon - 2, t);
    });
  }

  // IRC: ":prefix COMMAND params :trailing".  PRIVMSG's trailing parameter is
  // the payload; PING is answered; 001 marks registration, 366 (end of NAMES)
  // a completed JOIN; ERROR and numerics 400-599 are the server's complaints.
  size_t parse_irc(size_t i, const char* p, size_t n, uint64_t t) {
    return split_lines(i, p, n, [&](const char* q, size_t len) {
      std::string_view l(q, len);
      if (l.substr(0, 5) == "PING ") {
        Conn& c = conns_[i];
        c.out.append("PONG ");
        c.out.append(l.substr(5));
        c.out.append("\r\n");
        return;
      }
      std::string_view rest = l;
      if (!rest.empty() && rest[0] == ':') {
        size_t sp = rest.find(' ');
        if (sp == std::string_view::npos) return;
        rest = rest.substr(sp + 1);
      }
      if (rest.substr(0, 8) == "PRIVMSG ") {
        size_t tr = rest.find(" :");
        if (tr == std::string_view::npos) { ++bad_; return; }
        const char* s = rest.data() + tr + 2;
        on_data(i, s, size_t(q + len - s), t);
        return;
      }
      if (rest.substr(0, 4) == "001 ") { conns_[i].registered = true; return; }
      if (rest.substr(0, 4) == "366 ") { conns_[i].joined = true; return; }
      if (rest.substr(0, 4) == "381 ") { conns_[i].oper = true; return; }
      if (rest.substr(0, 6) == "ERROR " || (rest.size() > 3 && (rest[0] == '4' || rest[0] == '5') &&
                                            rest[3] == ' ' && std::isdigit(static_cast<unsigned char>(rest[1]))))
        note_server_error(l);
    });
  }

  // --------------------------------------------------------- payloads
  struct Header { uint32_t magic, run; uint64_t seq, ts; };
  // False when p[0..n) is too short or (text) not a header: stale or bad.
  bool read_header(const char* p, size_t n, Header& h) const {
    if (!text_) {
      if (n < kHeader) return false;
      std::memcpy(&h.magic, p, 4);
      std::memcpy(&h.run, p + 4, 4);
      std::memcpy(&h.seq, p + 8, 8);
      std::memcpy(&h.ts, p + 16, 8);
      return true;
    }
    if (n < kTextHeader) return false;
    if (p[0] == 'D') h.magic = kDataMagic;
    else if (p[0] == 'M') h.magic = kMarkMagic;
    else return false;
    uint64_t run;
    if (!unhex(p + 1, 8, run) || !unhex(p + 9, 16, h.seq) || !unhex(p + 25, 16, h.ts)) return false;
    h.run = uint32_t(run);
    return true;
  }
  static bool unhex(const char* p, int digits, uint64_t& v) {
    v = 0;
    for (int k = 0; k < digits; ++k) {
      char ch = p[k];
      unsigned d = ch >= '0' && ch <= '9' ? unsigned(ch - '0') : ch >= 'a' && ch <= 'f' ? unsigned(ch - 'a' + 10) : 16;
      if (d == 16) return false;
      v = v << 4 | d;
    }
    return true;
  }
  static void put_hex(char* p, int digits, uint64_t v) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int k = digits - 1; k >= 0; --k, v >>= 4) p[k] = kHex[v & 15];
  }
  void write_header(char* p, uint32_t magic, uint64_t seq, uint64_t ts) const {
    if (text_) {
      p[0] = magic == kMarkMagic ? 'M' : 'D';
      put_hex(p + 1, 8, run_id_);
      put_hex(p + 9, 16, seq);
      put_hex(p + 25, 16, ts);
      return;
    }
    std::memcpy(p, &magic, 4);
    std::memcpy(p + 4, &run_id_, 4);
    std::memcpy(p + 8, &seq, 8);
    std::memcpy(p + 16, &ts, 8);
  }

  // Appends one framed message to c.out in the protocol's publish/request form.
  void append_message(Conn& c, uint32_t magic, uint64_t seq, uint64_t ts) {
    if (ws_) {
      // One of kWsUnits prebuilt frames, each masked with its own random key;
      // only the 41 header characters are written and masked per message.
      const WsUnit& u = ws_units_[ws_next_++ % kWsUnits];
      size_t body = c.out.size() + u.header;
      c.out.append(u.frame);
      char h[kTextHeader];
      write_header(h, magic, seq, ts);
      char* q = c.out.data() + body;
      for (size_t k = 0; k < kTextHeader; ++k) q[k] = char(uint8_t(h[k]) ^ u.key[k & 3]);
      return;
    }
    size_t body = c.out.size() + prefix_.size();
    c.out.append(unit_);
    write_header(c.out.data() + body, magic, seq, ts);
  }

  void build_framing(bool request_echo) {
    char b[128];
    switch (o_.proto) {
      case Proto::parley:
      case Proto::chat:
        prefix_.assign(4, '\0');
        put_be32(prefix_.data(), uint32_t(o_.size));
        break;
      case Proto::asiochat:
        std::snprintf(b, sizeof b, "%4zu", o_.size);
        prefix_ = b;
        break;
      case Proto::resp:
        if (request_echo)
          std::snprintf(b, sizeof b, "*2\r\n$4\r\nECHO\r\n$%zu\r\n", o_.size);
        else
          std::snprintf(b, sizeof b, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                        o_.subject.size(), o_.subject.c_str(), o_.size);
        prefix_ = b;
        suffix_ = "\r\n";
        break;
      case Proto::nats:
        std::snprintf(b, sizeof b, "PUB %s %zu\r\n", o_.subject.c_str(), o_.size);
        prefix_ = b;
        suffix_ = "\r\n";
        break;
      case Proto::irc:
        prefix_ = "PRIVMSG #" + o_.subject + " :";
        suffix_ = "\r\n";
        break;
      case Proto::chatline:
        suffix_ = "\n";
        break;
      case Proto::ws: case Proto::wschat:
        for (WsUnit& u : ws_units_) {
          const uint32_t r = uint32_t(ws_rng_());
          std::memcpy(u.key, &r, 4);
          u.frame = ws_client_frame(0x1, payload_, u.key);
          u.header = u.frame.size() - payload_.size();
        }
        prefix_.assign(ws_units_[0].header, '\0');  // its size: the frame's length is frame - payload
        break;
    }
    unit_ = prefix_ + payload_ + suffix_;
  }

  void on_data(size_t i, const char* p, size_t n, uint64_t t) {
    Conn& c = conns_[i];
    if (c.role == Role::idle && bcast_) {
      // --broadcast: the one timed message; anything else is the server's news.
      Header h;
      if (read_header(p, n, h) && h.run == run_id_ && h.magic == kDataMagic && !c.expected) {
        c.expected = 1;
        ++delivered_;
        hist_.record(t > h.ts ? t - h.ts : 0);
      }
      return;
    }
    if (c.role == Role::idle || ((c.role == Role::echo) && o_.greeting && !c.greeted)) {
      c.greeted = true;  // parley echo_server's greeting, or anything for idle
      return;
    }
    if (c.role == Role::publisher) return;
    Header h;
    if (!c.ready) {
      // Before its first marker a subscriber ignores everything: a server's
      // welcome frame, Asio chat's replay of recent messages, old runs' data.
      if (read_header(p, n, h) && h.run == run_id_ && h.magic == kMarkMagic) {
        c.ready = true;
        ++ready_count_;
        return;
      }
      ++stale_;
      return;
    }
    if (!read_header(p, n, h)) { ++bad_; return; }
    if (h.run != run_id_) { ++stale_; return; }
    if (h.magic == kMarkMagic) return;  // a later marker of the barrier
    if (h.magic != kDataMagic) { ++bad_; return; }
    if (n != o_.size) ++bad_;
    if (h.seq == c.expected) ++c.expected;
    else if (h.seq > c.expected) { gap_lost_ += h.seq - c.expected; c.expected = h.seq + 1; }
    else {
      // A late message fills a gap counted as lost: lost stays the net number
      // missing (assuming no duplicates), out_of_order says it happened.
      ++out_of_order_;
      if (gap_lost_) --gap_lost_;
    }
    ++delivered_;
    if (t >= t_warm_ && t < t_stop_) ++window_delivered_;
    if (h.ts >= t_warm_ && h.ts < t_stop_) hist_.record(t > h.ts ? t - h.ts : 0);
    if (c.role == Role::echo && issuing_) {
      append_message(c, kDataMagic, c.sent++, t);
    }
  }

  // A percentile for the human line; "-" when no message sent in the
  // measured window arrived (the JSON then says samples 0).
  std::string lat(double q) const {
    if (hist_.total() == 0) return "-";
    return fmt_us(q >= 1.0 ? hist_.max() : hist_.quantile(q));
  }

  void on_publish_reply(int64_t receivers) {
    ++publish_replies_;
    if (receivers < min_receivers_) min_receivers_ = receivers;
  }

  // ------------------------------------------------------------ fanout
  bool handshake() {
    // Protocol-level readiness: after this, a subscriber is known to be
    // registered with the server (Redis: SUBSCRIBE confirmed; NATS: the PONG
    // to a PING sent after SUB proves the SUB was processed).
    strict_ = true;
    for (size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      switch (o_.proto) {
        case Proto::nats:
          c.out += "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"loadgen\"}\r\n";
          if (c.role == Role::subscriber) c.out += "SUB " + o_.subject + " 1\r\n";
          c.out += "PING\r\n";
          break;
        case Proto::resp:
          if (c.role == Role::subscriber) {
            char b[128];
            std::snprintf(b, sizeof b, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                          o_.subject.size(), o_.subject.c_str());
            c.out += b;
          } else {
            c.out += "*1\r\n$4\r\nPING\r\n";
          }
          break;
        case Proto::chat: case Proto::chatline: case Proto::irc: {
          // The chat server puts every nickname in its room "lobby" at once.
          const std::string nick = c.role == Role::publisher ? "pub" : "s" + std::to_string(i);
          if (o_.proto == Proto::chat) {
            char h[4];
            put_be32(h, uint32_t(nick.size()));
            c.out.append(h, 4);
            c.out += nick;
          } else if (o_.proto == Proto::chatline) {
            c.out += nick + "\n";
          } else {
            c.out += "NICK " + nick + "\r\nUSER " + nick + " 0 * :loadgen\r\n";
          }
          break;
        }
        case Proto::ws: case Proto::wschat:
          append_upgrade(c);
          break;
        default: break;
      }
      if (!c.out.empty()) flush(i);
    }
    bool ok = true;
    if (ws_) {
      ok = wait_until([&] { return upgraded_ == conns_.size(); }, o_.ready_timeout,
                      "WebSocket upgrades (101)", [&] { return upgraded_; });
      // chat_server: a nickname first; it puts every nickname in "lobby".
      for (size_t i = 0; ok && o_.proto == Proto::wschat && i < conns_.size(); ++i) {
        append_ws_text(conns_[i], conns_[i].role == Role::publisher ? "pub" : "s" + std::to_string(i));
        flush(i);
      }
    }
    if (o_.proto == Proto::irc) {
      // Registered (001), then JOIN the channel and wait for its NAMES end.
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.registered; }) == conns_.size(); },
                      o_.ready_timeout, "IRC registration (001)",
                      [&] { return count_if([](const Conn& c) { return c.registered; }); });
      if (ok && !o_.irc_oper.empty()) {
        conns_[0].out += "OPER " + o_.irc_oper + "\r\n";
        flush(0);
        ok = wait_until([&] { return conns_[0].oper; }, o_.ready_timeout, "IRC OPER (381)");
      }
      for (size_t i = 0; ok && i < conns_.size(); ++i) {
        conns_[i].out += "JOIN #" + o_.subject + "\r\n";
        flush(i);
      }
      ok = ok && wait_until([&] { return count_if([](const Conn& c) { return c.joined; }) == conns_.size(); },
                            o_.ready_timeout, "IRC JOIN (366)",
                            [&] { return count_if([](const Conn& c) { return c.joined; }); });
    }
    if (o_.proto == Proto::nats) {
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.pong; }) == conns_.size(); },
                      o_.ready_timeout, "NATS PONG", [&] { return count_if([](const Conn& c) { return c.pong; }); });
    } else if (o_.proto == Proto::resp) {
      ok = wait_until([&] {
            return count_if([](const Conn& c) {
                     return c.role == Role::subscriber ? c.subscribed : c.pong;
                   }) == conns_.size();
          }, o_.ready_timeout, "Redis SUBSCRIBE/PING replies",
          [&] { return count_if([](const Conn& c) { return c.subscribed || c.pong; }); });
    }
    if (ok && o_.greeting) {
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.greeted; }) == conns_.size(); },
                      o_.ready_timeout, "greetings", [&] { return count_if([](const Conn& c) { return c.greeted; }); });
    }
    return ok;
  }

  template <class F>
  size_t count_if(F f) const {
    return size_t(std::count_if(conns_.begin(), conns_.end(), f));
  }

  // End-to-end barrier: the publisher sends marker messages until every
  // subscriber has seen one.  This proves each subscriber is joined on the
  // server (a kernel-completed connect may not be accepted yet), and anything
  // a server replays to joiners (Asio chat's last 100 messages) is discarded
  // because it arrives before the marker.
  bool barrier() {
    uint64_t deadline = now_ns() + uint64_t(o_.ready_timeout * 1e9);
    uint64_t marker = 0;
    while (ready_count_ < size_t(o_.subs)) {
      if (fatal()) return false;
      if (now_ns() > deadline) {
        set_error("timeout: " + std::to_string(ready_count_) + "/" + std::to_string(o_.subs) +
                  " subscribers saw a marker message");
        return false;
      }
      append_message(conns_[0], kMarkMagic, marker++, now_ns());
      flush(0);
      uint64_t until = now_ns() + 200'000'000;
      while (ready_count_ < size_t(o_.subs) && now_ns() < until && !fatal())
        poll_once(10'000'000);
    }
    return true;
  }

  // CPU used by the server (if --server-pid) and by this process over the
  // measured window: CPU per message is steadier than throughput on a
  // shared machine, and a generator near 100% means the cell measures it.
  void window_edges(uint64_t t) {
    if (!cpu_started_ && t >= t_warm_) {
      cpu_started_ = true;
      srv_cpu0_ = o_.server_pid ? proc_cpu_s(o_.server_pid) : -1;
      self_cpu0_ = self_cpu_s();
      cpu_t0_ = t;
    }
    if (cpu_started_ && !cpu_done_ && t >= t_stop_) {
      cpu_done_ = true;
      double wall = double(t - cpu_t0_) / 1e9;
      if (wall > 0) {
        double s1 = o_.server_pid ? proc_cpu_s(o_.server_pid) : -1;
        if (srv_cpu0_ >= 0 && s1 >= 0) server_cpu_ = (s1 - srv_cpu0_) / wall;
        self_cpu_ = (self_cpu_s() - self_cpu0_) / wall;
      }
    }
  }
  std::string cpu_json(double msgs_per_s) const {
    char b[160];
    double ns = server_cpu_ >= 0 && msgs_per_s > 0 ? server_cpu_ * 1e9 / msgs_per_s : -1;
    double self_ns = msgs_per_s > 0 ? self_cpu_ * 1e9 / msgs_per_s : -1;
    std::snprintf(b, sizeof b, ",\"server_cpu\":%.3f,\"server_ns_per_msg\":%.1f,\"loadgen_cpu\":%.3f,"
                  "\"loadgen_ns_per_msg\":%.1f", server_cpu_, ns, self_cpu_, self_ns);
    return b;
  }
  std::string cpu_human() const {
    char b[96];
    if (server_cpu_ >= 0) std::snprintf(b, sizeof b, "  cpu server %.0f%% loadgen %.0f%%", server_cpu_ * 100, self_cpu_ * 100);
    else std::snprintf(b, sizeof b, "  cpu loadgen %.0f%%", self_cpu_ * 100);
    return b;
  }

  uint64_t min_expected() {
    uint64_t m = kNever;
    for (size_t i = 1; i < conns_.size(); ++i)
      if (conns_[i].alive && conns_[i].expected < m) m = conns_[i].expected;
    return m;
  }

  int run_fanout() {
    // conns_[0] is the publisher, the rest subscribers.
    conns_.resize(size_t(o_.subs) + 1);
    conns_[0].role = Role::publisher;
    for (size_t i = 1; i < conns_.size(); ++i) conns_[i].role = Role::subscriber;
    // parley and asiochat servers may send the publisher its own messages;
    // it reads and discards them without parsing.
    // So does chat_server (a room message goes to its sender too).
    // So do Beast's chat-multi (every session, the sender too) and chat_server's web port.
    discard_publisher_input_ = o_.proto == Proto::parley || o_.proto == Proto::asiochat ||
                               o_.proto == Proto::chat || o_.proto == Proto::chatline || ws_;
    build_framing(false);
    strict_ = true;
    bool ok = connect_all() && handshake() && barrier();
    strict_ = false;
    uint64_t t0 = now_ns();
    uint64_t published = 0;
    double elapsed = 0;
    bool drain_timeout = false;
    if (ok) {
      t_warm_ = t0 + uint64_t(o_.warmup * 1e9);
      t_stop_ = t_warm_ + uint64_t(o_.duration * 1e9);
      const size_t frame = prefix_.size() + o_.size + suffix_.size();
      const uint64_t batch_cap = std::max<uint64_t>(1, (256u << 10) / frame);
      const double ns_per_msg = o_.rate > 0 ? 1e9 / o_.rate : 0;
      uint64_t seq = 0, cached_min = 0, last_min = 0, t_progress = 0, t_nudge = 0;
      bool publishing = true;
      uint64_t drain_deadline = 0;
      for (;;) {
        uint64_t t = now_ns();
        if (fatal()) break;
        window_edges(t);
        if (publishing && t >= t_stop_) {
          publishing = false;
          published = seq;
          drain_deadline = t + uint64_t(o_.drain * 1e9);
        }
        uint64_t timeout = 1'000'000;
        Conn& pub = conns_[0];
        if (publishing && pending(pub) == 0) {
          if (o_.rate > 0) {
            // Stamped with the actual send time, not the scheduled one: on a
            // VM a timed wait overshoots by ~100us, which is the generator's
            // lag, not the server's.  A publisher held up by a server that
            // stops reading shows as achieved_rate below the target.
            uint64_t due = uint64_t(double(t - t0) / ns_per_msg) + 1;
            uint64_t k = due > seq ? std::min<uint64_t>(due - seq, 65536) : 0;
            for (uint64_t j = 0; j < k; ++j, ++seq) append_message(pub, kDataMagic, seq, t);
            if (t >= t_warm_) pub_window_ += k;
            if (k) flush(0);
            uint64_t next = t0 + uint64_t(double(seq) * ns_per_msg);
            uint64_t tn = now_ns();
            timeout = next > tn ? std::min<uint64_t>(next - tn, 1'000'000) : 0;
          } else {
            if (seq - cached_min >= o_.window / 2) {
              cached_min = min_expected();
              if (cached_min == kNever) { set_error("all subscribers disconnected"); break; }
            }
            uint64_t room = o_.window > seq - cached_min ? o_.window - (seq - cached_min) : 0;
            if (cached_min != last_min) { last_min = cached_min; t_progress = t; }
            if (room == 0 && o_.proto == Proto::irc && t - t_progress > 2'000'000 &&
                t - t_nudge > 2'000'000) {
              // InspIRCd and ngircd were seen to leave a client's lines
              // unprocessed until more bytes arrive: with the window full
              // none would.  A PING is such bytes.
              pub.out += "PING :nudge\r\n";
              flush(0);
              ++nudges_;
              t_nudge = t;
            }
            uint64_t k = std::min(room, batch_cap);
            for (uint64_t j = 0; j < k; ++j, ++seq) append_message(pub, kDataMagic, seq, t);
            if (t >= t_warm_) pub_window_ += k;
            if (k) {
              flush(0);
              if (k == batch_cap && pending(pub) == 0) timeout = 0;  // more to send now
            }
          }
        }
        if (!publishing) {
          bool done = true;
          size_t alive = 0;
          for (size_t i = 1; i < conns_.size(); ++i)
            if (conns_[i].alive) { ++alive; if (conns_[i].expected < published) { done = false; break; } }
          if (done) break;
          if (t > drain_deadline) { drain_timeout = true; break; }
        }
        if (publishing && o_.rate == 0) coalesce();
        poll_once(timeout);
      }
      if (published == 0) published = seq;
      // A run cut short by an error is rated over the time it measured.
      uint64_t t_end = std::min(now_ns(), t_stop_);
      elapsed = t_end > t_warm_ ? double(t_end - t_warm_) / 1e9 : 0;
    }
    // A gap in a subscriber's sequence is a loss; messages still on their
    // way when the drain time ran out are reported apart, as undrained.
    uint64_t lost = gap_lost_;
    for (size_t i = 1; i < conns_.size(); ++i)
      if (conns_[i].alive && conns_[i].ready && conns_[i].expected < published)
        undrained_ += published - conns_[i].expected;
    double rate = elapsed > 0 ? double(window_delivered_) / elapsed : 0;
    report_fanout(ok && !fatal(), rate, published, lost, drain_timeout);
    return ok && !fatal() ? 0 : 1;
  }

  void report_fanout(bool ok, double rate, uint64_t published, uint64_t lost, bool drain_timeout) {
    double mbs = rate * double(o_.size) / 1e6;
    const char* mode = o_.rate > 0 ? "paced" : "window";
    std::printf("fanout %s%s%s N=%d S=%zu %s=%s: %s msgs/s %.1f MB/s  p50 %s p99 %s p99.9 %s max %s"
                "  published %" PRIu64 " lost %" PRIu64 " ooo %" PRIu64 " disc %" PRIu64 "%s%s%s%s%s\n",
                name(o_.proto), o_.label.empty() ? "" : "/", o_.label.c_str(), o_.subs, o_.size, mode,
                o_.rate > 0 ? fmt_rate(o_.rate).c_str() : std::to_string(o_.window).c_str(),
                fmt_rate(rate).c_str(), mbs, lat(0.5).c_str(),
                lat(0.99).c_str(), lat(0.999).c_str(),
                lat(1.0).c_str(), published, lost, out_of_order_, disconnected_,
                cpu_human().c_str(),
                drain_timeout ? ("  DRAIN-TIMEOUT undrained " + std::to_string(undrained_)).c_str() : "",
                bad_ ? ("  BAD " + std::to_string(bad_)).c_str() : "",
                ok ? "" : "  ERROR: ", ok ? "" : error_.c_str());
    std::string extra = cpu_json(rate);
    if (o_.proto == Proto::irc) extra += ",\"nudges\":" + std::to_string(nudges_);
    if (ws_) extra += ",\"ws_fragments\":" + std::to_string(ws_fragments_);
    if (o_.proto == Proto::resp && publish_replies_)
      extra += ",\"publish_replies\":" + std::to_string(publish_replies_) +
               ",\"min_receivers\":" + std::to_string(min_receivers_);
    std::printf("{\"scenario\":\"fanout\",\"proto\":\"%s\",\"label\":%s,\"ok\":%s,\"error\":%s,"
                "\"subs\":%d,\"size\":%zu,\"mode\":\"%s\",\"rate\":%.0f,\"window\":%" PRIu64 ","
                "\"warmup\":%.3f,\"duration\":%.3f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.2f,"
                "\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"samples\":%" PRIu64 ","
                "\"published\":%" PRIu64 ",\"delivered\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"undrained\":%" PRIu64 ","
                "\"out_of_order\":%" PRIu64 ",\"disconnected\":%" PRIu64 ",\"bad\":%" PRIu64 ","
                "\"stale\":%" PRIu64 ",\"server_errors\":%" PRIu64 ",\"drain_timeout\":%s,\"publish_rate\":%.1f%s}\n",
                name(o_.proto), json_str(o_.label).c_str(), ok ? "true" : "false",
                json_str(error_ + (server_error_text_.empty() ? "" : " [server: " + server_error_text_ + "]")).c_str(),
                o_.subs, o_.size, mode, o_.rate, o_.window, o_.warmup, o_.duration, rate, mbs,
                double(hist_.quantile(0.5)) / 1e3, double(hist_.quantile(0.99)) / 1e3,
                double(hist_.quantile(0.999)) / 1e3, double(hist_.max()) / 1e3, hist_.total(),
                published, delivered_, lost, undrained_, out_of_order_, disconnected_, bad_, stale_,
                server_errors_, drain_timeout ? "true" : "false", double(pub_window_) / o_.duration,
                extra.c_str());
    std::fflush(stdout);
  }

  // -------------------------------------------------------------- echo
  int run_echo() {
    conns_.resize(size_t(o_.conns));
    for (auto& c : conns_) { c.role = Role::echo; c.ready = true; }
    build_framing(true);
    strict_ = true;
    bool ok = connect_all() && handshake();
    strict_ = false;
    uint64_t published = 0, lost = 0;
    bool drain_timeout = false;
    if (ok) {
      uint64_t t0 = now_ns();
      t_warm_ = t0 + uint64_t(o_.warmup * 1e9);
      t_stop_ = t_warm_ + uint64_t(o_.duration * 1e9);
      issuing_ = true;
      for (size_t i = 0; i < conns_.size(); ++i) {
        for (int k = 0; k < o_.inflight; ++k) append_message(conns_[i], kDataMagic, conns_[i].sent++, t0);
        flush(i);
      }
      uint64_t drain_deadline = kNever;
      for (;;) {
        uint64_t t = now_ns();
        if (fatal()) break;
        window_edges(t);
        if (issuing_ && t >= t_stop_) {
          issuing_ = false;
          drain_deadline = t + uint64_t(o_.drain * 1e9);
        }
        if (!issuing_) {
          bool done = true;
          for (auto& c : conns_)
            if (c.alive && c.expected < c.sent) { done = false; break; }
          if (done) break;
          if (t > drain_deadline) { drain_timeout = true; break; }
        }
        if (connected_ == disconnected_) {
          set_error("all connections closed");
          break;
        }
        if (issuing_) coalesce();
        poll_once(1'000'000);
      }
      for (auto& c : conns_) {
        published += c.sent;
        if (c.alive && c.expected < c.sent) undrained_ += c.sent - c.expected;
      }
    }
    lost += gap_lost_;
    uint64_t t_end = std::min(now_ns(), t_stop_);
    double elapsed = t_end > t_warm_ && t_warm_ != kNever ? double(t_end - t_warm_) / 1e9 : 0;
    double rate = elapsed > 0 ? double(window_delivered_) / elapsed : 0;
    bool good = ok && !fatal();
    std::printf("echo %s%s%s C=%d W=%d S=%zu: %s round trips/s  p50 %s p99 %s p99.9 %s max %s"
                "  lost %" PRIu64 " ooo %" PRIu64 " disc %" PRIu64 "%s%s%s%s%s\n",
                name(o_.proto), o_.label.empty() ? "" : "/", o_.label.c_str(), o_.conns, o_.inflight,
                o_.size, fmt_rate(rate).c_str(), lat(0.5).c_str(),
                lat(0.99).c_str(), lat(0.999).c_str(),
                lat(1.0).c_str(), lost, out_of_order_, disconnected_, cpu_human().c_str(),
                drain_timeout ? ("  DRAIN-TIMEOUT undrained " + std::to_string(undrained_)).c_str() : "",
                bad_ ? ("  BAD " + std::to_string(bad_)).c_str() : "",
                good ? "" : "  ERROR: ", good ? "" : error_.c_str());
    std::printf("{\"scenario\":\"echo\",\"proto\":\"%s\",\"label\":%s,\"ok\":%s,\"error\":%s,"
                "\"conns\":%d,\"inflight\":%d,\"size\":%zu,\"warmup\":%.3f,\"duration\":%.3f,"
                "\"rtt_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,"
                "\"samples\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"undrained\":%" PRIu64 ","
                "\"out_of_order\":%" PRIu64 ",\"disconnected\":%" PRIu64 ",\"bad\":%" PRIu64 ","
                "\"server_errors\":%" PRIu64 ",\"drain_timeout\":%s%s}\n",
                name(o_.proto), json_str(o_.label).c_str(), good ? "true" : "false",
                json_str(error_ + (server_error_text_.empty() ? "" : " [server: " + server_error_text_ + "]")).c_str(),
                o_.conns, o_.inflight, o_.size, o_.warmup, o_.duration, rate,
                double(hist_.quantile(0.5)) / 1e3, double(hist_.quantile(0.99)) / 1e3,
                double(hist_.quantile(0.999)) / 1e3, double(hist_.max()) / 1e3, hist_.total(),
                published, delivered_, lost, undrained_, out_of_order_, disconnected_, bad_, server_errors_,
                drain_timeout ? "true" : "false", cpu_json(rate).c_str());
    std::fflush(stdout);
    return good ? 0 : 1;
  }

  // -------------------------------------------------------------- idle
  int run_idle() {
    conns_.resize(size_t(o_.conns));
    for (auto& c : conns_) c.role = Role::idle;
    long base_fds = o_.server_pid ? fd_count(o_.server_pid) : -1;
    if (o_.server_pid && base_fds < 0) fail("cannot read /proc/%s/fd", std::to_string(o_.server_pid).c_str());
    long before = o_.server_pid ? rss_kb(o_.server_pid) : -1;
    strict_ = true;
    uint64_t t_begin = now_ns();
    bool ok = connect_all();
    if (ok && o_.proto == Proto::nats) {
      // A NATS client must say CONNECT; the PONG proves the server holds it.
      for (size_t i = 0; i < conns_.size(); ++i) {
        conns_[i].out = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";
        flush(i);
      }
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.pong; }) == conns_.size(); },
                      o_.ready_timeout, "NATS PONG", [&] { return count_if([](const Conn& c) { return c.pong; }); });
    } else if (ok && o_.proto == Proto::resp) {
      for (size_t i = 0; i < conns_.size(); ++i) {
        conns_[i].out = "*1\r\n$4\r\nPING\r\n";
        flush(i);
      }
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.pong; }) == conns_.size(); },
                      o_.ready_timeout, "Redis PONG", [&] { return count_if([](const Conn& c) { return c.pong; }); });
    } else if (ok && ws_) {
      // Upgraded: the server holds a WebSocket, not an HTTP request.
      for (size_t i = 0; i < conns_.size(); ++i) {
        append_upgrade(conns_[i]);
        flush(i);
      }
      ok = wait_until([&] { return upgraded_ == conns_.size(); }, o_.ready_timeout,
                      "WebSocket upgrades (101)", [&] { return upgraded_; });
    } else if (ok && o_.greeting) {
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.greeted; }) == conns_.size(); },
                      o_.ready_timeout, "greetings", [&] { return count_if([](const Conn& c) { return c.greeted; }); });
    }
    if (ok && o_.nick && ws_) {
      for (size_t i = 0; i < conns_.size(); ++i) {
        append_ws_text(conns_[i], "i" + std::to_string(i));
        flush(i);
      }
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.registered; }) == conns_.size(); },
                      o_.ready_timeout, "nick_accepted", [&] { return count_if([](const Conn& c) { return c.registered; }); });
    } else if (ok && o_.nick) {
      // chat_server's framed port: a nickname each, then its nick_accepted.
      for (size_t i = 0; i < conns_.size(); ++i) {
        const std::string nick = "i" + std::to_string(i);
        char h[4];
        put_be32(h, uint32_t(nick.size()));
        conns_[i].out.append(h, 4);
        conns_[i].out += nick;
        flush(i);
      }
      ok = wait_until([&] { return count_if([](const Conn& c) { return c.registered; }) == conns_.size(); },
                      o_.ready_timeout, "nick_accepted", [&] { return count_if([](const Conn& c) { return c.registered; }); });
    }
    // The server has accepted every connection once it holds that many more
    // descriptors; then wait for its RSS to stop moving.
    long after = -1, fds = -1;
    double accept_s = -1;  // until the server held every connection: its accept rate
    if (ok && o_.server_pid) {
      uint64_t deadline = now_ns() + uint64_t(o_.ready_timeout * 1e9);
      while ((fds = fd_count(o_.server_pid)) < base_fds + o_.conns && now_ns() < deadline && !fatal())
        poll_once(50'000'000);
      if (fds < base_fds + o_.conns)
        set_error("server holds " + std::to_string(fds - base_fds) + " of " + std::to_string(o_.conns) +
                  " connections");
      accept_s = double(now_ns() - t_begin) / 1e9;
      long prev = -2;
      uint64_t settle = now_ns() + 3'000'000'000ull;
      while (!fatal() && now_ns() < settle) {
        poll_once(200'000'000);
        after = rss_kb(o_.server_pid);
        if (after == prev) break;
        prev = after;
      }
    }
    // --broadcast: the first connection sends one message; the time from its
    // send to each other connection's read of it (one process, one clock;
    // the reads are this one thread's, in turn).
    double bcast_s = -1;
    if (ok && !fatal() && o_.broadcast) {
      build_framing(false);
      bcast_ = true;
      const uint64_t t_send = now_ns();
      t_warm_ = 0;
      t_stop_ = kNever;
      append_message(conns_[0], kDataMagic, 0, t_send);
      flush(0);
      conns_[0].expected = 1;  // its own copy, if the server echoes, is not counted
      wait_until([&] { return delivered_ + 1 >= conns_.size(); }, o_.ready_timeout, "the broadcast",
                 [&] { return size_t(delivered_ + 1); });
      bcast_s = double(now_ns() - t_send) / 1e9;
    }
    // --hold: keep them idle a while, then read the server's RSS again: a
    // server that gives memory back once the load settles shows it here.
    long settled = -1;
    if (ok && o_.hold > 0) {
      uint64_t until = now_ns() + uint64_t(o_.hold * 1e9);
      while (now_ns() < until && !fatal()) poll_once(50'000'000);
      if (o_.server_pid) settled = rss_kb(o_.server_pid);
    }
    size_t alive = count_if([](const Conn& c) { return c.alive; });
    bool good = ok && !fatal();
    double per_conn = (before >= 0 && after >= 0) ? double(after - before) * 1024.0 / o_.conns : -1;
    double settled_per_conn = (before >= 0 && settled >= 0) ? double(settled - before) * 1024.0 / o_.conns : -1;
    std::string bh, bj;
    if (settled_per_conn >= 0) {
      char b[160];
      std::snprintf(b, sizeof b, ",\"settled_bytes_per_conn\":%.1f,\"hold_s\":%.1f", settled_per_conn, o_.hold);
      bj = b;
    }
    if (o_.broadcast) {
      bh += "; one broadcast to " + std::to_string(delivered_) + ": p50 " + lat(0.5) + " p99 " + lat(0.99) +
           " max " + lat(1.0);
      char b[200];
      std::snprintf(b, sizeof b, ",\"bcast_received\":%" PRIu64 ",\"bcast_p50_us\":%.1f,\"bcast_p99_us\":%.1f,"
                    "\"bcast_max_us\":%.1f,\"bcast_s\":%.3f", delivered_, double(hist_.quantile(0.5)) / 1e3,
                    double(hist_.quantile(0.99)) / 1e3, double(hist_.max()) / 1e3, bcast_s);
      bj += b;
    }
    if (settled_per_conn >= 0)
      bh = "; after " + std::to_string(int(o_.hold)) + " s idle " + std::to_string(long(settled_per_conn)) +
           " bytes/connection" + bh;
    std::printf("idle %s%s%s K=%d: server RSS %ld -> %ld KiB, %.0f bytes/connection, %zu alive, "
                "all held after %.2fs%s%s%s\n",
                name(o_.proto), o_.label.empty() ? "" : "/", o_.label.c_str(), o_.conns, before, after,
                per_conn, alive, accept_s, bh.c_str(), good ? "" : "  ERROR: ", good ? "" : error_.c_str());
    std::printf("{\"scenario\":\"idle\",\"proto\":\"%s\",\"label\":%s,\"ok\":%s,\"error\":%s,"
                "\"conns\":%d,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"bytes_per_conn\":%.1f,"
                "\"server_fds\":%ld,\"alive\":%zu,\"accept_s\":%.3f%s}\n",
                name(o_.proto), json_str(o_.label).c_str(), good ? "true" : "false",
                json_str(error_).c_str(), o_.conns, before, after, per_conn, fds, alive, accept_s, bj.c_str());
    std::fflush(stdout);
    // Reset rather than close: thousands of TIME_WAIT sockets would linger.
    linger lg{1, 0};
    for (auto& c : conns_)
      if (c.fd >= 0) setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    return good ? 0 : 1;
  }

  // ------------------------------------------------------------ state
  Options o_;
  uint32_t run_id_ = 0;
  int ep_ = -1;
  sockaddr_storage addr_{};
  socklen_t addrlen_ = 0;
  std::vector<Conn> conns_;
  std::vector<char> buf_;
  std::string prefix_, payload_, suffix_;
  std::string unit_;                       // prefix_ + payload_ + suffix_
  std::vector<size_t> dirty_;              // connections with replies queued this loop turn
  size_t last_events_ = 0;                 // events the last loop turn found
  uint64_t turn_ns_ = 0;                   // when the last loop turn's wait returned
  uint64_t coalesce_ns_ = 0;               // --coalesce-us, in ns
  bool exact_ts_ = false;                  // a clock read per read, not per turn
  size_t connecting_ = 0, connected_ = 0, ready_count_ = 0;
  bool strict_ = false;                    // any close is fatal during setup
  bool discard_publisher_input_ = false;
  bool text_ = false;                      // payload header as printable text
  bool ws_ = false;                        // ws, wschat: WebSocket client framing
  struct WsUnit { std::string frame; size_t header = 0; uint8_t key[4]{}; };
  static constexpr size_t kWsUnits = 16;   // prebuilt masked frames, a key each, used in turn
  WsUnit ws_units_[kWsUnits];
  size_t ws_next_ = 0, upgraded_ = 0;
  uint64_t ws_fragments_ = 0;              // fragmented server messages (counted bad)
  std::mt19937_64 ws_rng_{std::random_device{}()};
  bool issuing_ = false;                   // echo: send a new request per response
  bool bcast_ = false;                     // idle --broadcast: timing the message
  uint64_t t_warm_ = kNever, t_stop_ = kNever;
  uint64_t delivered_ = 0, window_delivered_ = 0, gap_lost_ = 0, out_of_order_ = 0;
  uint64_t disconnected_ = 0, bad_ = 0, stale_ = 0, server_errors_ = 0;
  uint64_t publish_replies_ = 0, pub_window_ = 0, undrained_ = 0, nudges_ = 0;
  int64_t min_receivers_ = INT64_MAX;
  bool cpu_started_ = false, cpu_done_ = false;
  uint64_t cpu_t0_ = 0;
  double srv_cpu0_ = -1, self_cpu0_ = 0, server_cpu_ = -1, self_cpu_ = 0;
  Histogram hist_;
  std::string error_, first_close_, server_error_text_;
};

extern "C" void on_alarm(int) {
  static const char msg[] = "loadgen: watchdog: run exceeded its time budget\n";
  ssize_t r = write(2, msg, sizeof msg - 1);
  (void)r;
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  // Thousands of sockets: take the hard descriptor limit.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  size_t need = size_t(o.scenario == Scenario::fanout ? o.subs + 1 : o.conns) + 16;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
    fail("descriptor limit too low for this many connections (raise ulimit -n)");
  // A watchdog so no server behaviour can hang a benchmark run.
  double budget = o.connect_timeout + 3 * o.ready_timeout + o.warmup + o.duration + o.drain + o.hold + 30;
  signal(SIGALRM, on_alarm);
  alarm(unsigned(budget));
  Runner r(std::move(o));
  return r.run();
}
