/*
 * floor_server.c - the least a single-threaded server can do for parley's
 * broadcast and echo jobs: raw epoll, writev, no library.
 *
 * It is the machine's limit that parley's own servers are measured against
 * (see bench/README.md), so every choice here is the cheapest correct one:
 *
 *  - Wire format is parley's: 4-byte big-endian payload length, then payload;
 *    a client announcing more than 1 MiB is disconnected.
 *  - Reads go into one shared buffer per process; only a frame that straddles
 *    two reads is copied into a per-client buffer that grows with the bytes
 *    actually received (never with what the peer merely announced), so an idle
 *    connection pins no read buffer.
 *  - Broadcast: one allocation per published frame, reference-counted and
 *    shared by every recipient's queue.  Queues are rings of pointers.
 *  - Output is flushed once per event-loop round with writev, up to IOV_MAX
 *    frames per call; EPOLLOUT is armed only when a write would block.
 *  - A recipient whose queue exceeds --max-queue bytes is disconnected, so a
 *    stalled reader cannot make the server hold unbounded memory.
 *  - Echo: complete frames of one read are sent straight from the shared read
 *    buffer when the client's queue is empty; only the unsent rest is copied.
 *
 *  - --relay-runs (broadcast): the complete frames of one read are shared as
 *    one buffer instead of one per frame, as parley's broadcast_server does;
 *    the floor for that design (reported beside the default one).
 *
 * Usage: floor_server --mode broadcast|echo [--host H] [--port P] [--no-echo]
 *                     [--relay-runs] [--max-queue BYTES]
 * Prints "listening on HOST:PORT" once accepting; exits on SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

#define MAX_PAYLOAD (1u << 20)
#define READ_BUF_SIZE (256u * 1024u)
#define MAX_EVENTS 256

typedef struct msg {
    uint32_t refs;
    uint32_t len; /* bytes in data: header + payload (or a run of frames) */
    char data[];
} msg_t;

typedef struct client {
    int fd;
    int idx;       /* position in g.clients */
    int dead;      /* scheduled for close at the end of this round */
    int want_out;  /* EPOLLOUT armed */
    int dirty;     /* in g.dirty */
    /* outbound ring of shared messages */
    msg_t **q;
    uint32_t qcap, qhead, qcount;
    uint32_t qoff;  /* bytes of the head message already written */
    size_t qbytes;  /* unwritten bytes queued */
    /* a frame that straddles reads */
    char *part;
    size_t part_len, part_cap;
} client_t;

enum mode { MODE_BROADCAST, MODE_ECHO };

static struct {
    enum mode mode;
    int no_echo;
    int relay_runs; /* --relay-runs */
    size_t max_queue;
    int ep;
    int listen_fd;
    int sig_fd;
    int spare_fd; /* closed to make room when accept hits EMFILE */
    client_t **clients;
    size_t nclients, cap_clients;
    client_t **dirty;
    size_t ndirty, cap_dirty;
    client_t **dead;
    size_t ndead, cap_dead;
    msg_t **batch; /* frames of the current read, broadcast mode */
    size_t nbatch, cap_batch;
    char *rbuf;
    /* statistics, printed to stderr on exit */
    unsigned long long frames_in, msgs_alloc, accepted, dropped_slow, dropped_bad;
} g;

static char tag_listen, tag_signal; /* epoll data.ptr sentinels */

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void *xrealloc(void *p, size_t n)
{
    void *r = realloc(p, n);
    if (!r && n) {
        fprintf(stderr, "floor_server: out of memory\n");
        exit(1);
    }
    return r;
}

static void push_ptr(client_t ***arr, size_t *n, size_t *cap, client_t *c)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = c;
}

static void msg_unref(msg_t *m)
{
    if (--m->refs == 0)
        free(m);
}

static void kill_client(client_t *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    push_ptr(&g.dead, &g.ndead, &g.cap_dead, c);
}

static void set_out(client_t *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        kill_client(c);
        return;
    }
    c->want_out = on;
}

static void mark_dirty(client_t *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        push_ptr(&g.dirty, &g.ndirty, &g.cap_dirty, c);
    }
}

/* Make room in c's ring for extra more entries (capacity a power of two). */
static void ring_reserve(client_t *c, uint32_t extra)
{
    if (c->qcount + extra > c->qcap) {
        uint32_t ncap = c->qcap ? c->qcap : 16;
        while (ncap < c->qcount + extra)
            ncap *= 2;
        msg_t **nq = xrealloc(NULL, ncap * sizeof *nq);
        for (uint32_t i = 0; i < c->qcount; ++i)
            nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
}

/* Queue a reference to m for c; the caller holds no reference of its own. */
static void enqueue(client_t *c, msg_t *m, uint32_t offset)
{
    if (c->dead)
        return;
    ring_reserve(c, 1);
    c->q[(c->qhead + c->qcount) & (c->qcap - 1)] = m;
    if (c->qcount == 0)
        c->qoff = offset;
    c->qcount++;
    m->refs++;
    c->qbytes += m->len - offset;
    if (c->qbytes > g.max_queue) {
        g.dropped_slow++;
        kill_client(c);
        return;
    }
    mark_dirty(c);
}

/* Write as much of c's queue as the socket takes, batching IOV_MAX frames. */
static void flush_client(client_t *c)
{
    struct iovec iov[IOV_MAX];
    while (c->qcount && !c->dead) {
        int n = 0;
        size_t total = 0;
        uint32_t mask = c->qcap - 1;
        for (uint32_t i = 0; i < c->qcount && n < IOV_MAX; ++i, ++n) {
            msg_t *m = c->q[(c->qhead + i) & mask];
            uint32_t off = i == 0 ? c->qoff : 0;
            iov[n].iov_base = m->data + off;
            iov[n].iov_len = m->len - off;
            total += m->len - off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_out(c, 1);
                return;
            }
            kill_client(c);
            return;
        }
        size_t left = (size_t)w;
        c->qbytes -= left;
        while (left) {
            msg_t *m = c->q[c->qhead];
            size_t avail = m->len - c->qoff;
            if (left >= avail) {
                left -= avail;
                c->qoff = 0;
                c->qhead = (c->qhead + 1) & mask;
                c->qcount--;
                msg_unref(m);
            } else {
                c->qoff += (uint32_t)left;
                left = 0;
            }
        }
        if ((size_t)w < total) { /* the socket buffer is full */
            set_out(c, 1);
            return;
        }
    }
    if (c->qcount == 0) {
        /* Keep a ring that streaming traffic refills at once (re-growing it
           costs page faults on every burst); give back only a huge one. */
        if (c->qcap > 4096) {
            free(c->q);
            c->q = NULL;
            c->qcap = 0;
            c->qhead = 0;
        }
        set_out(c, 0);
    }
}

static msg_t *msg_new(const char *data, size_t len)
{
    msg_t *m = xrealloc(NULL, sizeof *m + len);
    m->refs = 0;
    m->len = (uint32_t)len;
    memcpy(m->data, data, len);
    g.msgs_alloc++;
    return m;
}

/* Broadcast: the frames of one read are published together, so each
   recipient's ring takes the whole batch in one pass and a message costs a
   recipient one pointer store (and one iovec when flushed). */
static void batch_add(const char *frame, size_t len)
{
    g.frames_in++;
    if (g.nbatch == g.cap_batch) {
        g.cap_batch = g.cap_batch ? g.cap_batch * 2 : 1024;
        g.batch = xrealloc(g.batch, g.cap_batch * sizeof *g.batch);
    }
    g.batch[g.nbatch++] = msg_new(frame, len);
}

static void publish_batch(client_t *from)
{
    uint32_t n = (uint32_t)g.nbatch;
    if (n == 0)
        return;
    size_t bytes = 0;
    for (uint32_t k = 0; k < n; ++k)
        bytes += g.batch[k]->len;
    uint32_t recipients = 0;
    for (size_t i = 0; i < g.nclients; ++i) {
        client_t *c = g.clients[i];
        if (c->dead || (c == from && g.no_echo))
            continue;
        ring_reserve(c, n);
        uint32_t mask = c->qcap - 1, tail = c->qhead + c->qcount;
        for (uint32_t k = 0; k < n; ++k)
            c->q[(tail + k) & mask] = g.batch[k];
        if (c->qcount == 0)
            c->qoff = 0;
        c->qcount += n;
        c->qbytes += bytes;
        recipients++;
        if (c->qbytes > g.max_queue) { /* its references go when it is reaped */
            g.dropped_slow++;
            kill_client(c);
        } else {
            mark_dirty(c);
        }
    }
    for (uint32_t k = 0; k < n; ++k) {
        g.batch[k]->refs = recipients;
        if (recipients == 0)
            free(g.batch[k]);
    }
    g.nbatch = 0;
}

/* Echo a run of complete frames: straight from the read buffer when possible. */
static void echo_run(client_t *c, const char *p, size_t len)
{
    size_t sent = 0;
    if (c->qcount == 0) {
        ssize_t w;
        do
            w = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            kill_client(c);
            return;
        }
        if (w > 0)
            sent = (size_t)w;
    }
    if (sent < len) {
        msg_t *m = msg_new(p + sent, len - sent);
        enqueue(c, m, 0);
        if (m->refs == 0)
            free(m);
    }
}

/* --relay-runs: the complete frames of one read go out as one shared
   buffer, one pointer and one iovec per recipient for the whole run. */
static void batch_add_run(const char *run, size_t len, uint64_t frames)
{
    batch_add(run, len);
    g.frames_in += frames - 1;
}

static void deliver(client_t *c, const char *frame, size_t len)
{
    if (g.mode == MODE_BROADCAST) {
        batch_add(frame, len);
    } else {
        g.frames_in++;
        echo_run(c, frame, len);
    }
}

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void part_append(client_t *c, const char *src, size_t n)
{
    if (c->part_len + n > c->part_cap) {
        size_t cap = c->part_cap ? c->part_cap : 256;
        while (cap < c->part_len + n)
            cap *= 2;
        c->part = xrealloc(c->part, cap);
        c->part_cap = cap;
    }
    memcpy(c->part + c->part_len, src, n);
    c->part_len += n;
}

static void part_reset(client_t *c)
{
    c->part_len = 0;
    if (c->part_cap > 4096) { /* a big frame passed; do not keep its buffer */
        free(c->part);
        c->part = NULL;
        c->part_cap = 0;
    }
}

static void on_readable(client_t *c)
{
    ssize_t n;
    do
        n = read(c->fd, g.rbuf, READ_BUF_SIZE);
    while (n < 0 && errno == EINTR);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        kill_client(c);
        return;
    }
    if (n < 0)
        return;
    const char *p = g.rbuf, *end = g.rbuf + n;

    /* Finish a frame begun in an earlier read. */
    if (c->part_len) {
        if (c->part_len < 4) {
            size_t k = 4 - c->part_len;
            if (k > (size_t)(end - p))
                k = (size_t)(end - p);
            part_append(c, p, k);
            p += k;
            if (c->part_len < 4)
                return;
        }
        uint32_t len = be32(c->part);
        if (len > MAX_PAYLOAD) {
            g.dropped_bad++;
            kill_client(c);
            return;
        }
        size_t need = 4 + (size_t)len - c->part_len;
        size_t k = need < (size_t)(end - p) ? need : (size_t)(end - p);
        part_append(c, p, k);
        p += k;
        if (k < need)
            return;
        deliver(c, c->part, c->part_len);
        part_reset(c);
        if (c->dead)
            return;
    }

    /* Complete frames straight from the shared buffer. */
    const char *run = p;
    uint64_t run_frames = 0;
    while (end - p >= 4) {
        uint32_t len = be32(p);
        if (len > MAX_PAYLOAD) {
            g.dropped_bad++;
            kill_client(c);
            if (g.relay_runs && p > run)
                batch_add_run(run, (size_t)(p - run), run_frames);
            publish_batch(c); /* the frames before it were good */
            return;
        }
        if ((size_t)(end - p) < 4 + (size_t)len)
            break;
        if (g.mode == MODE_BROADCAST && !g.relay_runs)
            batch_add(p, 4 + (size_t)len);
        else if (g.mode == MODE_BROADCAST)
            run_frames++;
        else
            g.frames_in++;
        p += 4 + len;
    }
    if (g.mode == MODE_BROADCAST && g.relay_runs && p > run)
        batch_add_run(run, (size_t)(p - run), run_frames);
    if (g.mode == MODE_BROADCAST)
        publish_batch(c);
    else if (p > run)
        echo_run(c, run, (size_t)(p - run));
    if (p < end && !c->dead) {
        if ((end - p) >= 4 && be32(p) > MAX_PAYLOAD) {
            g.dropped_bad++;
            kill_client(c);
            return;
        }
        part_append(c, p, (size_t)(end - p));
    }
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl");
}

static void on_accept(void)
{
    for (;;) {
        int fd = accept4(g.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && g.spare_fd >= 0) {
                /* Out of descriptors: accept and close one so the listen
                   queue does not keep epoll spinning. */
                fprintf(stderr, "floor_server: accept: %s\n", strerror(errno));
                close(g.spare_fd);
                fd = accept(g.listen_fd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            return; /* EAGAIN or a transient error */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client_t *c = xrealloc(NULL, sizeof *c);
        memset(c, 0, sizeof *c);
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        c->idx = (int)g.nclients;
        push_ptr(&g.clients, &g.nclients, &g.cap_clients, c);
        g.accepted++;
    }
}

static void reap(void)
{
    for (size_t i = 0; i < g.ndead; ++i) {
        client_t *c = g.dead[i];
        epoll_ctl(g.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        for (uint32_t k = 0; k < c->qcount; ++k)
            msg_unref(c->q[(c->qhead + k) & (c->qcap - 1)]);
        free(c->q);
        free(c->part);
        /* swap-remove from the client list */
        client_t *last = g.clients[--g.nclients];
        g.clients[c->idx] = last;
        last->idx = c->idx;
        free(c);
    }
    g.ndead = 0;
}

static int open_listener(const char *host, const char *port)
{
    /* numeric only: a benchmark server has no business doing name lookups */
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST};
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "floor_server: %s:%s: %s\n", host, port, gai_strerror(rc));
        exit(1);
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
        die("bind");
    freeaddrinfo(res);
    if (listen(fd, SOMAXCONN) < 0)
        die("listen");
    set_nonblock(fd);
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        die("getsockname");
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void usage(void)
{
    fprintf(stderr, "usage: floor_server --mode broadcast|echo [--host H] [--port P]"
                    " [--no-echo] [--relay-runs] [--max-queue BYTES]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *port = "0", *mode = NULL;
    g.max_queue = 4u << 20;
    for (int i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--mode") && v)
            mode = v, ++i;
        else if (!strcmp(a, "--host") && v)
            host = v, ++i;
        else if (!strcmp(a, "--port") && v)
            port = v, ++i;
        else if (!strcmp(a, "--max-queue") && v)
            g.max_queue = strtoull(v, NULL, 10), ++i;
        else if (!strcmp(a, "--no-echo"))
            g.no_echo = 1;
        else if (!strcmp(a, "--relay-runs"))
            g.relay_runs = 1;
        else
            usage();
    }
    if (!mode)
        usage();
    if (!strcmp(mode, "broadcast"))
        g.mode = MODE_BROADCAST;
    else if (!strcmp(mode, "echo"))
        g.mode = MODE_ECHO;
    else
        usage();

    /* Streaming allocates and frees many small buffers in waves; glibc's
       default would hand the top of the heap back to the kernel after each
       wave and fault it in again on the next (a profile showed a quarter of
       the time in page faults).  Keep freed memory, and keep 1 MiB frames
       off mmap for the same reason. */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);

    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
        die("sigprocmask");
    g.sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g.sig_fd < 0)
        die("signalfd");

    g.rbuf = xrealloc(NULL, READ_BUF_SIZE);
    g.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    g.listen_fd = open_listener(host, port);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0)
        die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_listen};
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.listen_fd, &ev) < 0)
        die("epoll_ctl");
    ev.data.ptr = &tag_signal;
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, g.sig_fd, &ev) < 0)
        die("epoll_ctl");

    printf("listening on %s:%d\n", host, bound_port(g.listen_fd));
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    int running = 1;
    while (running) {
        int n = epoll_wait(g.ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            void *p = evs[i].data.ptr;
            if (p == &tag_listen) {
                on_accept();
            } else if (p == &tag_signal) {
                running = 0;
            } else {
                client_t *c = p;
                if (c->dead)
                    continue;
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable(c);
                if (!c->dead && (evs[i].events & EPOLLOUT))
                    flush_client(c);
            }
        }
        /* One flush per client per round: everything queued this round goes
           out in as few writev calls as the socket allows. */
        for (size_t i = 0; i < g.ndirty; ++i) {
            client_t *c = g.dirty[i];
            c->dirty = 0;
            if (!c->dead && !c->want_out)
                flush_client(c);
        }
        g.ndirty = 0;
        reap();
    }

    for (size_t i = 0; i < g.nclients; ++i)
        kill_client(g.clients[i]);
    reap();
    close(g.listen_fd);
    close(g.ep);
    fprintf(stderr,
            "floor_server: accepted %llu, frames in %llu, buffers %llu, "
            "dropped slow %llu, dropped bad %llu\n",
            g.accepted, g.frames_in, g.msgs_alloc, g.dropped_slow, g.dropped_bad);
    free(g.rbuf);
    free(g.clients);
    free(g.dirty);
    free(g.dead);
    free(g.batch);
    return 0;
}
