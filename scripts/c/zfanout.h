/*
 * zfanout.h: what fanout_pub and fanout_sub share: the tick record on the
 * wire, the idle-gap list, a log-linear latency histogram, the JSON of a
 * latency summary, the timer slack and an absolute sleep.
 *
 * Wire: every message is two frames, [name][body]. The name is the topic
 * ("t0", "t1", ...) when each tick travels alone, or "g0" when ticks are
 * coalesced (the subscriber subscribes to what it must receive). The body is
 * one or more records of ZF_HEADER bytes plus the payload (--size bytes):
 *
 *   u32 topic | u32 kind (0 tick, 1 end of stream) | u64 seq |
 *   u64 intended_ns | u64 sent_ns | payload
 *
 * native byte order (one host). seq counts from 0 per topic; an end record
 * carries in seq the number of ticks its topic published. intended_ns is when
 * the schedule meant the tick to leave, sent_ns when its message was handed to
 * zmq_send (CLOCK_MONOTONIC: one clock for every process of the host).
 */
#ifndef ZTICK_ZFANOUT_H
#define ZTICK_ZFANOUT_H

#include "zcommon.h"

#include <stddef.h>
#include <sys/prctl.h>

#define ZF_HEADER 32u
#define ZF_KIND_TICK 0u
#define ZF_KIND_END 1u
#define ZF_MAX_TOPICS 1000
#define ZF_MAX_GAPS 64
/* A pass or tick more than this far behind its schedule is a stall / late. */
#define ZF_STALL_NS 1000000ull

struct zf_rec {
    uint32_t topic;
    uint32_t kind;
    uint64_t seq;
    uint64_t intended_ns;
    uint64_t sent_ns;
};

/* ---------------------------------------------------------------- args */

/* "100,1000,10000" (microseconds) -> ns values; returns the count. */
static inline int zf_parse_gaps(const char *prog, const char *s,
                                uint64_t *gaps_ns)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno != 0 || end == p || v < 1 || v > 60LL * 1000 * 1000 ||
            (*end != ',' && *end != '\0') || n == ZF_MAX_GAPS) {
            fprintf(stderr,
                    "%s: bad --idle-gaps-us '%s' (expected up to %d "
                    "comma-separated microsecond gaps, each 1..60000000)\n",
                    prog, s, ZF_MAX_GAPS);
            exit(2);
        }
        gaps_ns[n++] = (uint64_t)v * 1000ull;
        p = *end == ',' ? end + 1 : end;
    }
    if (n == 0) {
        fprintf(stderr, "%s: --idle-gaps-us needs at least one gap\n", prog);
        exit(2);
    }
    return n;
}

/* The value after option argv[*i], or exit(2) naming the option. */
static inline const char *zf_value(const char *prog, int argc, char **argv,
                                   int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", prog, argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

/* ---------------------------------------------------------------- time */

/* Timer slack 1 ns: an absolute sleep wakes when asked, not up to 50 us later
 * (the default slack; see ANCHORS.md for this machine's wake-up floor). */
static inline void zf_timer_slack_1ns(const char *prog)
{
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0)
        fprintf(stderr, "%s: warning: prctl(PR_SET_TIMERSLACK, 1): %s\n", prog,
                strerror(errno));
}

/* Sleeps until CLOCK_MONOTONIC reaches `at_ns` (retrying on EINTR). */
static inline void zf_sleep_until(uint64_t at_ns)
{
    struct timespec ts = {(time_t)(at_ns / 1000000000ull),
                          (long)(at_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ----------------------------------------------------------- histogram */
/*
 * Log-linear buckets: values below 256 ns exactly, above that 128 buckets per
 * power of two, so a reported percentile is at most 1/128 (0.8 %) above the
 * true value (HdrHistogram with 2 significant digits does the same). Values
 * up to 2^63 ns fit. A percentile is the highest value of its bucket, capped
 * by the largest value recorded (HdrHistogram's highest-equivalent value).
 */
#define ZF_SUB 128u
#define ZF_BUCKETS (256u + 56u * ZF_SUB)

struct zf_hist {
    uint64_t counts[ZF_BUCKETS];
    uint64_t n, min, max;
    long double sum;
};

static inline void zf_hist_init(struct zf_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static inline unsigned zf_bucket(uint64_t v)
{
    if (v < 256)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - 7u;
    unsigned top = (unsigned)(v >> shift); /* 128..255 */
    return 256u + (shift - 1u) * ZF_SUB + (top - ZF_SUB);
}

static inline uint64_t zf_bucket_high(unsigned idx)
{
    if (idx < 256)
        return idx;
    unsigned shift = (idx - 256u) / ZF_SUB + 1u;
    uint64_t top = ZF_SUB + (idx - 256u) % ZF_SUB;
    return ((top + 1u) << shift) - 1u;
}

static inline void zf_hist_record(struct zf_hist *h, uint64_t v)
{
    h->counts[zf_bucket(v)]++;
    h->n++;
    h->sum += (long double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* The value at quantile q_ppm (parts per million): the first bucket whose
 * cumulative count reaches ceil(q * n). */
static inline uint64_t zf_hist_at(const struct zf_hist *h, unsigned q_ppm)
{
    if (h->n == 0)
        return 0;
    unsigned long long want =
        ((unsigned long long)q_ppm * h->n + 999999ull) / 1000000ull;
    if (want == 0)
        want = 1;
    unsigned long long seen = 0;
    for (unsigned i = 0; i < ZF_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = zf_bucket_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* `"key":{"count":..,"min":..,"p50":..,...}`: the keys of ztick's
 * LatencySummary, all zero for an empty histogram. */
static inline void zf_print_summary(FILE *f, const char *key,
                                    const struct zf_hist *h)
{
    uint64_t n = h->n;
    fprintf(f,
            "\"%s\":{\"count\":%" PRIu64 ",\"min\":%" PRIu64 ",\"p50\":%" PRIu64
            ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p99_9\":%" PRIu64
            ",\"p99_99\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.1f}",
            key, n, n ? h->min : 0, zf_hist_at(h, 500000), zf_hist_at(h, 900000),
            zf_hist_at(h, 990000), zf_hist_at(h, 999000), zf_hist_at(h, 999900),
            n ? h->max : 0, n ? (double)(h->sum / (long double)n) : 0.0);
}

static inline const char *zf_version(void)
{
    static char v[32];
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    snprintf(v, sizeof v, "%d.%d.%d", major, minor, patch);
    return v;
}

#endif /* ZTICK_ZFANOUT_H */
