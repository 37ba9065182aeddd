/* count_allocs.c - an LD_PRELOAD library that counts a process's heap
 * allocations: every call to malloc, calloc, realloc, aligned_alloc,
 * posix_memalign, memalign, valloc and pvalloc (operator new and Asio's
 * handler memory end in malloc). For programs that cannot be linked with a
 * counter, such as examples/chat_server; bench/alloc/chat_allocs.py uses it.
 *
 *   cc -O2 -shared -fPIC -o count_allocs.so bench/alloc/count_allocs.c
 *   LD_PRELOAD=./count_allocs.so PROGRAM ...
 *
 * SIGUSR2 writes "count_allocs: N\n" (the count so far) to standard error,
 * and so does the process's exit. The calls go to glibc's __libc_* entry
 * points, so no dlsym bootstrap is needed (glibc only).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

static _Atomic uint64_t count;

static void report(void) {
    char buf[64];
    char digits[24];
    uint64_t v = count;
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    static const char head[] = "count_allocs: ";
    size_t len = sizeof head - 1;
    memcpy(buf, head, len);
    while (n)
        buf[len++] = digits[--n];
    buf[len++] = '\n';
    int saved = errno;
    ssize_t r = write(2, buf, len);
    (void)r;
    errno = saved;
}

static void on_usr2(int sig) {
    (void)sig;
    report();
}

__attribute__((constructor)) static void install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, NULL);
}

__attribute__((destructor)) static void at_exit(void) { report(); }

void* malloc(size_t n) {
    ++count;
    return __libc_malloc(n);
}
void* calloc(size_t n, size_t m) {
    ++count;
    return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
    ++count;
    return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
    ++count;
    return __libc_memalign(a, n);
}
void* aligned_alloc(size_t a, size_t n) {
    ++count;
    return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
    ++count;
    void* p = __libc_memalign(a, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
void* valloc(size_t n) {
    ++count;
    return __libc_valloc(n);
}
void* pvalloc(size_t n) {
    ++count;
    return __libc_pvalloc(n);
}
