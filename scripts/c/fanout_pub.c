/*
 * fanout_pub: the tick fan-out's publisher on raw libzmq, the floor for any
 * engine built on the same library (scripts/fair-fanout.sh runs it beside
 * ztick and zmq.rs).
 *
 *   fanout_pub --bind EP --subscribers N [--topics 8] [--size 64]
 *              [--rate 100000] [--duration 3] [--coalesce-us 0]
 *              [--max-batch 64] [--hwm 1000] [--wait-s 10]
 *              [--idle-gaps-us 100,1000,... --idle-samples 20]
 *   fanout_pub --version
 *
 * An XPUB (a PUB that hands its subscriptions to the application, with
 * ZMQ_XPUB_VERBOSE so every one arrives) binds EP and waits, at most
 * --wait-s, until N subscribers have subscribed: T subscriptions each (one per
 * topic) when ticks travel alone, one ("g0") when coalesced. Nothing is sent
 * before, so no subscriber misses the start.
 *
 * Paced feed: tick i (topics round-robin) is due at start + i / rate. The
 * single thread sleeps to absolute deadlines (clock_nanosleep TIMER_ABSTIME,
 * timer slack 1 ns) and on each wake-up sends every tick due:
 *   --coalesce-us 0 (default): one message per tick, [t<k>][record], woken
 *                  for the next tick due;
 *   --coalesce-us W: woken W after the next tick is due, everything due in one
 *                  message [g0][records...] (at most --max-batch ticks each),
 *                  as `ztick fanout --max-delay-us W` does.
 * A wake-up that finds the oldest tick due more than 1 ms late counts as a
 * stall; every tick sent more than 1 ms late counts as late.
 *
 * Idle feed (--idle-gaps-us): one lead-in tick at the start, then for each
 * gap G, --idle-samples K times: wait until the previous tick's intended time
 * plus G, send one tick. --rate and --duration are ignored.
 *
 * The end: each topic's end record (its tick count) is sent 5 times, 10 ms
 * apart; the socket closes with a 2 s linger. Prints one JSON line:
 *   {"stack":"c","role":"pub","libzmq","coalesce_us","published","messages",
 *    "rate","rate_per_s","elapsed_ns","stalls","late_ticks","max_lag_ns",
 *    "subscribers"}
 * Progress lines go to stderr ("fanout_pub: N subscribers connected").
 */
#include "zfanout.h"

#define PROG "fanout_pub"
#define END_REPEATS 5
#define END_INTERVAL_NS 10000000ull

struct opts {
    const char *bind;
    long long subscribers, topics, size, rate, coalesce_us, max_batch, hwm,
        wait_s, idle_samples;
    double duration;
    uint64_t gaps_ns[ZF_MAX_GAPS];
    int ngaps;
};

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " --bind EP --subscribers N [--topics T] [--size B] "
            "[--rate R] [--duration S] [--coalesce-us W] [--max-batch M] "
            "[--hwm H] [--wait-s S] [--idle-gaps-us LIST --idle-samples K]\n"
            "       " PROG " --version\n");
    exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){NULL, 1, 8, 64, 100000, 0, 64, 1000, 10, 20, 3.0, {0}, 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define NUM(flag, field, lo, hi)                                               \
    if (strcmp(a, flag) == 0) {                                                \
        o->field = zc_parse_count(PROG, flag, zf_value(PROG, argc, argv, &i),  \
                                  lo, hi);                                     \
        continue;                                                              \
    }
        NUM("--subscribers", subscribers, 1, 256)
        NUM("--topics", topics, 1, ZF_MAX_TOPICS)
        NUM("--size", size, 0, 65535)
        NUM("--rate", rate, 1, 100000000)
        NUM("--coalesce-us", coalesce_us, 0, 1000000)
        NUM("--max-batch", max_batch, 1, 4096)
        NUM("--hwm", hwm, 0, 100000000)
        NUM("--wait-s", wait_s, 1, 3600)
        NUM("--idle-samples", idle_samples, 1, 100000)
#undef NUM
        if (strcmp(a, "--bind") == 0) {
            o->bind = zf_value(PROG, argc, argv, &i);
        } else if (strcmp(a, "--duration") == 0) {
            const char *v = zf_value(PROG, argc, argv, &i);
            char *end = NULL;
            o->duration = strtod(v, &end);
            if (end == v || *end != '\0' || !(o->duration > 0.0) ||
                o->duration > 86400.0) {
                fprintf(stderr, PROG ": bad --duration '%s' (seconds, 0..86400)\n", v);
                exit(2);
            }
        } else if (strcmp(a, "--idle-gaps-us") == 0) {
            o->ngaps = zf_parse_gaps(PROG, zf_value(PROG, argc, argv, &i), o->gaps_ns);
        } else {
            fprintf(stderr, PROG ": unknown option '%s'\n", a);
            usage();
        }
    }
    if (!o->bind) {
        fprintf(stderr, PROG ": --bind is required (e.g. tcp://127.0.0.1:5556)\n");
        usage();
    }
}

/* The sending side: one message per tick, or ticks gathered per message. */
struct sender {
    void *sock;
    const struct opts *o;
    int coalesce;
    size_t rec_bytes;
    unsigned char *body; /* max_batch records */
    size_t in_body;      /* records in `body` */
    uint64_t *seq;       /* next seq per topic */
    uint64_t messages;
    char names[ZF_MAX_TOPICS][16];
};

static void send_frames(struct sender *s, const char *name, const void *body,
                        size_t len)
{
    ZC_CHECK(PROG, zmq_send(s->sock, name, strlen(name), ZMQ_SNDMORE),
             "zmq_send(name frame)");
    ZC_CHECK(PROG, zmq_send(s->sock, body, len, 0), "zmq_send(body frame)");
    s->messages++;
}

static void put_rec(struct sender *s, unsigned char *at, uint32_t topic,
                    uint32_t kind, uint64_t seq, uint64_t intended)
{
    struct zf_rec r = {topic, kind, seq, intended, 0};
    memcpy(at, &r, sizeof r);
    if (s->o->size)
        memset(at + ZF_HEADER, 0xA5, (size_t)s->o->size);
}

/* Stamps sent_ns in every record of the body (just before zmq_send). */
static void stamp(struct sender *s, unsigned char *body, size_t n)
{
    uint64_t now = zc_now_ns();
    for (size_t i = 0; i < n; i++)
        memcpy(body + i * s->rec_bytes + offsetof(struct zf_rec, sent_ns), &now,
               sizeof now);
}

static void flush(struct sender *s)
{
    if (s->in_body == 0)
        return;
    stamp(s, s->body, s->in_body);
    send_frames(s, "g0", s->body, s->in_body * s->rec_bytes);
    s->in_body = 0;
}

/* Queues (coalesced) or sends (one per message) tick `i`. */
static void tick(struct sender *s, uint64_t i, uint64_t intended)
{
    uint32_t k = (uint32_t)(i % (uint64_t)s->o->topics);
    if (!s->coalesce) {
        put_rec(s, s->body, k, ZF_KIND_TICK, s->seq[k]++, intended);
        stamp(s, s->body, 1);
        send_frames(s, s->names[k], s->body, s->rec_bytes);
        return;
    }
    put_rec(s, s->body + s->in_body * s->rec_bytes, k, ZF_KIND_TICK, s->seq[k]++,
            intended);
    if (++s->in_body == (size_t)s->o->max_batch)
        flush(s);
}

static void send_ends(struct sender *s)
{
    for (int r = 0; r < END_REPEATS; r++) {
        for (uint32_t k = 0; k < (uint32_t)s->o->topics; k++) {
            if (!s->coalesce) {
                put_rec(s, s->body, k, ZF_KIND_END, s->seq[k], 0);
                send_frames(s, s->names[k], s->body, s->rec_bytes);
            } else {
                put_rec(s, s->body + s->in_body * s->rec_bytes, k, ZF_KIND_END,
                        s->seq[k], 0);
                if (++s->in_body == (size_t)s->o->max_batch)
                    flush(s);
            }
        }
        flush(s);
        zf_sleep_until(zc_now_ns() + END_INTERVAL_NS);
    }
}

/* Receives subscriptions until `want` have arrived or --wait-s passed. */
static void wait_subscribers(void *xpub, const struct opts *o, long long want)
{
    uint64_t deadline = zc_now_ns() + (uint64_t)o->wait_s * 1000000000ull;
    long long got = 0;
    char buf[256];
    while (got < want) {
        uint64_t now = zc_now_ns();
        if (now >= deadline) {
            fprintf(stderr,
                    PROG ": %lld of %lld subscriptions (%lld subscribers) after "
                         "%lld s on %s; are the subscribers running?\n",
                    got, want, o->subscribers, o->wait_s, o->bind);
            exit(1);
        }
        int left_ms = (int)((deadline - now) / 1000000ull) + 1;
        ZC_CHECK(PROG, zmq_setsockopt(xpub, ZMQ_RCVTIMEO, &left_ms, sizeof left_ms),
                 "zmq_setsockopt(ZMQ_RCVTIMEO)");
        int n = zmq_recv(xpub, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            zc_die_zmq(PROG, "zmq_recv(subscription)");
        }
        if (n >= 1 && buf[0] == 1)
            got++;
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("libzmq %s\n", zf_version());
        return 0;
    }
    struct opts o;
    parse(argc, argv, &o);
    int coalesce = o.coalesce_us > 0;
    uint64_t window_ns = (uint64_t)o.coalesce_us * 1000ull;

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *sock = zmq_socket(ctx, ZMQ_XPUB);
    ZC_CHECK_PTR(PROG, sock, "zmq_socket(ZMQ_XPUB)");
    int one = 1, hwm = (int)o.hwm, linger = 2000;
    ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_XPUB_VERBOSE, &one, sizeof one),
             "zmq_setsockopt(ZMQ_XPUB_VERBOSE)");
    ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm),
             "zmq_setsockopt(ZMQ_SNDHWM)");
    ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger),
             "zmq_setsockopt(ZMQ_LINGER)");
    if (zmq_bind(sock, o.bind) != 0) {
        fprintf(stderr, PROG ": zmq_bind(%s): %s\n", o.bind, zmq_strerror(errno));
        return 1;
    }
    fprintf(stderr, PROG ": bound %s\n", o.bind);
    wait_subscribers(sock, &o, o.subscribers * (coalesce ? 1 : o.topics));
    fprintf(stderr, PROG ": %lld subscribers connected\n", o.subscribers);

    struct sender s = {0};
    s.sock = sock;
    s.o = &o;
    s.coalesce = coalesce;
    s.rec_bytes = ZF_HEADER + (size_t)o.size;
    s.body = malloc(s.rec_bytes * (size_t)o.max_batch);
    s.seq = calloc((size_t)o.topics, sizeof *s.seq);
    if (!s.body || !s.seq) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    for (long long k = 0; k < o.topics; k++)
        snprintf(s.names[k], sizeof s.names[k], "t%d", (int)k);

    /* The schedule: ticks due at start + offset[i]. */
    uint64_t total;
    uint64_t *offsets = NULL;
    if (o.ngaps > 0) {
        total = 1 + (uint64_t)o.ngaps * (uint64_t)o.idle_samples;
        offsets = malloc(total * sizeof *offsets);
        if (!offsets) {
            fprintf(stderr, PROG ": out of memory\n");
            return 1;
        }
        offsets[0] = 0;
        uint64_t i = 1;
        for (int g = 0; g < o.ngaps; g++)
            for (long long k = 0; k < o.idle_samples; k++, i++)
                offsets[i] = offsets[i - 1] + o.gaps_ns[g];
        window_ns = 0; /* each tick leaves alone, at once */
    } else {
        total = (uint64_t)((double)o.rate * o.duration + 0.5);
    }

    zf_timer_slack_1ns(PROG);
    uint64_t start = zc_now_ns();
#define INTENDED(i)                                                            \
    (offsets ? start + offsets[i]                                              \
             : start + (uint64_t)((unsigned __int128)(i) * 1000000000u /       \
                                  (uint64_t)o.rate))
    uint64_t i = 0, stalls = 0, late = 0, max_lag = 0;
    while (i < total) {
        uint64_t wake = INTENDED(i) + window_ns;
        uint64_t now = zc_now_ns();
        if (now < wake) {
            zf_sleep_until(wake);
            now = zc_now_ns();
        }
        uint64_t lag = now - INTENDED(i);
        if (lag > max_lag)
            max_lag = lag;
        if (lag > ZF_STALL_NS)
            stalls++;
        /* everything due by now */
        while (i < total && INTENDED(i) <= now) {
            uint64_t intended = INTENDED(i);
            if (now - intended > ZF_STALL_NS)
                late++;
            tick(&s, i, intended);
            i++;
        }
        flush(&s);
    }
    uint64_t elapsed = zc_now_ns() - start;
    uint64_t messages = s.messages; /* the ticks' messages, not the end records */
#undef INTENDED

    send_ends(&s);
    ZC_CHECK(PROG, zmq_close(sock), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");

    double secs = (double)elapsed / 1e9;
    printf("{\"stack\":\"c\",\"role\":\"pub\",\"libzmq\":\"%s\",\"coalesce_us\":%lld,"
           "\"published\":%" PRIu64 ",\"messages\":%" PRIu64 ",\"rate\":%lld,"
           "\"rate_per_s\":%.0f,\"elapsed_ns\":%" PRIu64 ",\"stalls\":%" PRIu64
           ",\"late_ticks\":%" PRIu64 ",\"max_lag_ns\":%" PRIu64
           ",\"subscribers\":%lld}\n",
           zf_version(), coalesce ? o.coalesce_us : 0LL, i, messages,
           o.ngaps ? 0LL : o.rate, secs > 0 ? (double)i / secs : 0.0, elapsed,
           stalls, late, max_lag, o.subscribers);
    free(offsets);
    free(s.body);
    free(s.seq);
    return 0;
}
