/*
 * zcommon.h: small helpers shared by ztick's C comparison programs
 * (zlat, zthr, the classic local/remote perf tools and floor).
 *
 * Header-only on purpose: every program is one .c file plus this header,
 * so the Makefile stays a list of programs.
 */
#ifndef ZTICK_ZCOMMON_H
#define ZTICK_ZCOMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef ZC_NO_ZMQ
#include <zmq.h>

/* Report a failed zmq call by name and exit(1). */
static inline void zc_die_zmq(const char *prog, const char *call)
{
    int e = errno;
    fprintf(stderr, "%s: error in %s: %s\n", prog, call, zmq_strerror(e));
    exit(1);
}

/* rc < 0 (or != 0 where 0 is success) means failure for every zmq call we use. */
#define ZC_CHECK(prog, rc, call)                                               \
    do {                                                                       \
        if ((rc) < 0)                                                          \
            zc_die_zmq((prog), (call));                                        \
    } while (0)

#define ZC_CHECK_PTR(prog, p, call)                                            \
    do {                                                                       \
        if ((p) == NULL)                                                       \
            zc_die_zmq((prog), (call));                                        \
    } while (0)

/*
 * Build the endpoint to bind for a transport name:
 *   inproc -> inproc://<tag>-<pid>
 *   ipc    -> ipc:///tmp/<tag>-<pid>.ipc  (ipc_path receives the file path)
 *   tcp    -> tcp://127.0.0.1:*           (read ZMQ_LAST_ENDPOINT after bind)
 * Returns 0, or -1 for an unknown transport.
 */
static inline int zc_bind_endpoint(const char *transport, const char *tag,
                                   char *ep, size_t eplen, char *ipc_path,
                                   size_t ipclen)
{
    long pid = (long)getpid();
    if (ipc_path && ipclen)
        ipc_path[0] = '\0';
    if (strcmp(transport, "inproc") == 0) {
        snprintf(ep, eplen, "inproc://%s-%ld", tag, pid);
    } else if (strcmp(transport, "ipc") == 0) {
        char path[256];
        snprintf(path, sizeof path, "/tmp/%s-%ld.ipc", tag, pid);
        unlink(path); /* stale file from a crashed run with a reused pid */
        snprintf(ep, eplen, "ipc://%s", path);
        if (ipc_path && ipclen)
            snprintf(ipc_path, ipclen, "%s", path);
    } else if (strcmp(transport, "tcp") == 0) {
        snprintf(ep, eplen, "tcp://127.0.0.1:*");
    } else {
        return -1;
    }
    return 0;
}

/*
 * Bind `s` for `transport` and write the endpoint a peer should connect to
 * into `connect_ep` (the resolved port for tcp).
 */
static inline void zc_bind(const char *prog, void *s, const char *transport,
                           const char *tag, char *connect_ep, size_t len,
                           char *ipc_path, size_t ipclen)
{
    char ep[512];
    if (zc_bind_endpoint(transport, tag, ep, sizeof ep, ipc_path, ipclen) != 0) {
        fprintf(stderr, "%s: unknown transport '%s' (inproc, ipc or tcp)\n",
                prog, transport);
        exit(2);
    }
    ZC_CHECK(prog, zmq_bind(s, ep), "zmq_bind");
    size_t n = len;
    ZC_CHECK(prog, zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, connect_ep, &n),
             "zmq_getsockopt(ZMQ_LAST_ENDPOINT)");
    if (n == 0 || n > len)
        connect_ep[len - 1] = '\0';
}
#endif /* ZC_NO_ZMQ */

static inline uint64_t zc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Strict non-negative integer parse for command-line arguments. */
static inline long long zc_parse_count(const char *prog, const char *what,
                                       const char *s, long long min,
                                       long long max)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "%s: bad %s '%s' (expected an integer in %lld..%lld)\n",
                prog, what, s, min, max);
        exit(2);
    }
    return v;
}

/* ---------------------------------------------------------------- watchdog */
/*
 * A thread that wakes every 200 ms and exits the process with an error when
 * the progress counter has not moved for `limit_s` seconds. The hot path
 * only does a relaxed store to the counter, so it costs next to nothing;
 * it keeps a lost message from hanging a benchmark script forever.
 */
struct zc_watchdog {
    const char *prog;
    const char *what;
    volatile uint64_t *progress;
    volatile int stop;
    unsigned limit_s;
    pthread_t th;
};

static inline void *zc_watchdog_main(void *arg)
{
    struct zc_watchdog *w = (struct zc_watchdog *)arg;
    uint64_t last = __atomic_load_n(w->progress, __ATOMIC_RELAXED);
    uint64_t since = zc_now_ns();
    struct timespec nap = {0, 200 * 1000 * 1000};
    while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
        nanosleep(&nap, NULL);
        uint64_t cur = __atomic_load_n(w->progress, __ATOMIC_RELAXED);
        uint64_t now = zc_now_ns();
        if (cur != last) {
            last = cur;
            since = now;
        } else if (now - since > (uint64_t)w->limit_s * 1000000000ull) {
            fprintf(stderr, "%s: no progress for %u s (%s stuck at %" PRIu64
                            "); giving up\n",
                    w->prog, w->limit_s, w->what, cur);
            _exit(1);
        }
    }
    return NULL;
}

static inline void zc_watchdog_start(struct zc_watchdog *w, const char *prog,
                                     const char *what,
                                     volatile uint64_t *progress,
                                     unsigned limit_s)
{
    w->prog = prog;
    w->what = what;
    w->progress = progress;
    w->stop = 0;
    w->limit_s = limit_s;
    int rc = pthread_create(&w->th, NULL, zc_watchdog_main, w);
    if (rc != 0) {
        fprintf(stderr, "%s: pthread_create(watchdog): %s\n", prog, strerror(rc));
        exit(1);
    }
}

static inline void zc_watchdog_stop(struct zc_watchdog *w)
{
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELAXED);
    pthread_join(w->th, NULL);
}

/* ------------------------------------------------------- latency summary */

static inline int zc_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*
 * Value at index ceil(q*n)-1 of the sorted samples, with q given in parts
 * per 10^4 so that no floating-point rounding moves the index.
 */
static inline uint64_t zc_pct(const uint64_t *sorted, size_t n,
                              unsigned q_per_10k)
{
    if (n == 0)
        return 0;
    unsigned long long k = ((unsigned long long)q_per_10k * n + 9999ull) / 10000ull;
    if (k == 0)
        k = 1;
    if (k > n)
        k = n;
    return sorted[k - 1];
}

/*
 * Print libzmq's three remote_lat lines and the JSON summary line, whose
 * latency_ns object has the keys of ztick's LatencySummary (count, min, p50,
 * p90, p99, p99_9, p99_99, max, mean): ztick-tables reads both as one type.
 * `rtt` holds one round-trip time in ns per round trip; it is sorted in place.
 * `elapsed_ns` is the wall time of the whole timed loop.
 */
static inline void zc_print_latency(size_t size, uint64_t *rtt, size_t n,
                                    uint64_t elapsed_ns)
{
    double avg_us = n ? ((double)elapsed_ns / 1000.0) / ((double)n * 2.0) : 0.0;
    printf("message size: %zu [B]\n", size);
    printf("roundtrip count: %zu\n", n);
    printf("average latency: %.3f [us]\n", avg_us);

    qsort(rtt, n, sizeof rtt[0], zc_cmp_u64);
    long double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += rtt[i];
    double mean = n ? (double)(sum / n) : 0.0;
    printf("{\"size\":%zu,\"count\":%zu,\"avg_latency_us\":%.3f,"
           "\"latency_ns\":{\"count\":%zu,\"min\":%" PRIu64 ",\"p50\":%" PRIu64
           ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p99_9\":%" PRIu64
           ",\"p99_99\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.1f}}\n",
           size, n, avg_us, n, n ? rtt[0] : 0, zc_pct(rtt, n, 5000),
           zc_pct(rtt, n, 9000), zc_pct(rtt, n, 9900), zc_pct(rtt, n, 9990),
           zc_pct(rtt, n, 9999), n ? rtt[n - 1] : 0, mean);
    fflush(stdout);
}

#endif /* ZTICK_ZCOMMON_H */
