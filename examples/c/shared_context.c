/*
 * A C program that owns a libzmq context, hands it to ztick, and exchanges ticks with
 * ztick over inproc, which only works because both use the same context (and so the same
 * libzmq: link the system build of ztick).
 *
 *   scripts/capi.sh build && make -C examples/c && examples/c/build/shared_context
 *
 * 1. ztick -> C: a ztick publisher; this program's own SUB socket reads the wire format.
 * 2. C -> ztick: this program's own XPUB sends ticks it encodes itself; a ztick subscriber
 *    hands them back through a callback and times them.
 * Arguments: [COUNT] [HGRM_FILE]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ztick.h"

#define CHECK(call)                                                                      \
    do {                                                                                 \
        ztick_result rc_ = (call);                                                       \
        if (rc_ != ZTICK_RESULT_OK) {                                                    \
            fprintf(stderr, "shared_context: %s: error %u: %s\n", #call, (unsigned)rc_, \
                    ztick_last_error());                                                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)
#define ZCHECK(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "shared_context: %s: %s\n", #cond, zmq_strerror(zmq_errno()));\
            exit(1);                                                                     \
        }                                                                                \
    } while (0)
#define EXPECT(cond)                                                                     \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "shared_context: expected %s (line %d)\n", #cond, __LINE__);  \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* The subscription prefix that tells a ztick publisher a subscriber is there. */
static const char HELLO[] = "\0ztick-hello/";
#define HELLO_LEN (sizeof HELLO - 1)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

/* Part 1: reads ztick's messages ([group][body], wire format v2) until an end body. */
static long read_ztick_feed(void *sub, long expected) {
    uint64_t next[2] = {1, 1};
    long ticks = 0;
    for (;;) {
        uint8_t group[64], body[8192];
        int g = zmq_recv(sub, group, sizeof group, 0);
        ZCHECK(g >= 0);
        int n = zmq_recv(sub, body, sizeof body, 0);
        ZCHECK(n >= 12);
        EXPECT(body[0] == 2); /* version */
        int kind = body[1], count = body[2] | body[3] << 8;
        if (kind == 2) break; /* end of stream */
        if (kind != 0) continue; /* heartbeat */
        const uint8_t *p = body + 12; /* after the header and the publisher's epoch */
        for (int r = 0; r < count; r++) {
            int tl = *p++;
            const char *topic = (const char *)p;
            p += tl;
            uint64_t seq = get_u64(p), sent = get_u64(p + 8), handed = get_u64(p + 16);
            int len = p[24] | p[25] << 8;
            p += 26;
            int k = tl == 3 && memcmp(topic, "usd", 3) == 0;
            EXPECT(seq == next[k]); /* in order, nothing lost */
            EXPECT(handed <= sent);
            next[k]++;
            char want[32];
            snprintf(want, sizeof want, "px %ld", ticks);
            EXPECT(len == (int)strlen(want) && memcmp(p, want, (size_t)len) == 0);
            p += len;
            ticks++;
        }
    }
    EXPECT(ticks == expected);
    return ticks;
}

/* Part 2: counts what the ztick subscriber hands back (on its worker thread). */
struct orders {
    long ticks;
    long ended;
    uint64_t next_seq;
};

static void on_event(void *user_data, const ztick_event *ev) {
    struct orders *o = user_data;
    if (ev->kind == ZTICK_EVENT_KIND_TICK) {
        if (ev->seq != o->next_seq || ev->payload_len != 8) abort();
        o->next_seq++;
        o->ticks++;
    } else if (ev->kind == ZTICK_EVENT_KIND_END) {
        o->ended++;
    }
}

/* Sends one wire-format body for topic "orders" on the raw XPUB: a tick, or the end. */
static void send_orders_body(void *xpub, int kind, uint64_t seq, uint64_t value) {
    uint8_t body[64], *p = body;
    *p++ = 2;              /* version */
    *p++ = (uint8_t)kind;  /* 0 data, 2 end */
    *p++ = 1, *p++ = 0;    /* one record */
    p = put_u64(p, 0x0c0ffee0c0ffee0cULL); /* this publisher's epoch */
    *p++ = 6;
    memcpy(p, "orders", 6), p += 6;
    p = put_u64(p, seq);
    if (kind == 0) {
        uint64_t t = now_ns();
        p = put_u64(p, t); /* sent */
        p = put_u64(p, t); /* handed over */
        *p++ = 8, *p++ = 0;
        p = put_u64(p, value);
    } else {
        *p++ = 0, *p++ = 0; /* no last value */
    }
    ZCHECK(zmq_send(xpub, "o.", 2, ZMQ_SNDMORE) == 2);
    ZCHECK(zmq_send(xpub, body, (size_t)(p - body), 0) == (int)(p - body));
}

int main(int argc, char **argv) {
    long count = argc > 1 ? atol(argv[1]) : 1000;
    const char *hgrm = argc > 2 ? argv[2] : NULL;
    void *ctx = zmq_ctx_new();
    ZCHECK(ctx != NULL);
    int timeout_ms = 20000, linger = 0;

    ztick_engine *engine = NULL;
    ztick_result rc = ztick_engine_new_shared(ctx, &engine);
    if (rc == ZTICK_RESULT_UNSUPPORTED) {
        fprintf(stderr, "shared_context: %s\n", ztick_last_error());
        return 2;
    }
    CHECK(rc);

    /* 1. ztick publishes, our SUB reads. */
    const char *prices[] = {"eur", "usd"};
    ztick_publisher *publisher = NULL;
    CHECK(ztick_publisher_new(engine, "inproc://prices", prices, 2, NULL, &publisher));
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    ZCHECK(sub != NULL);
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    ZCHECK(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "g0.", 3) == 0);
    char hello[64];
    memcpy(hello, HELLO, HELLO_LEN);
    memcpy(hello + HELLO_LEN, "c-sub", 5);
    ZCHECK(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, hello, HELLO_LEN + 5) == 0);
    ZCHECK(zmq_connect(sub, "inproc://prices") == 0);
    CHECK(ztick_publisher_wait_subscribers(publisher, 1, 20000));
    for (long i = 0; i < count; i++) {
        char px[32];
        int len = snprintf(px, sizeof px, "px %ld", i);
        CHECK(ztick_publisher_publish(publisher, (size_t)(i % 2), (const uint8_t *)px, (size_t)len));
    }
    CHECK(ztick_publisher_finish(publisher, 0, NULL)); /* the first end markers are out */
    long got = read_ztick_feed(sub, count);
    printf("ztick -> C over inproc: %ld ticks in order\n", got);

    /* 2. Our XPUB publishes, a ztick subscriber reads. */
    void *xpub = zmq_socket(ctx, ZMQ_XPUB);
    ZCHECK(xpub != NULL);
    zmq_setsockopt(xpub, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(xpub, ZMQ_LINGER, &linger, sizeof linger);
    int unlimited = 0; /* no HWM: a subscriber that lags behind is waited for, not dropped */
    zmq_setsockopt(xpub, ZMQ_SNDHWM, &unlimited, sizeof unlimited);
    ZCHECK(zmq_bind(xpub, "inproc://orders") == 0);
    struct orders seen = {0, 0, 1};
    const char *order_topics[] = {"orders"};
    ztick_subscriber *subscriber = NULL;
    CHECK(ztick_subscriber_new(engine, "inproc://orders", order_topics, 1, NULL, on_event, &seen,
                               &subscriber));
    /* Its hello subscription comes last: once it is here, every subscription is. */
    for (;;) {
        uint8_t m[256];
        int n = zmq_recv(xpub, m, sizeof m, 0);
        ZCHECK(n >= 0);
        if (n > (int)HELLO_LEN && m[0] == 1 && memcmp(m + 1, HELLO, HELLO_LEN) == 0) break;
    }
    for (long i = 0; i < count; i++) send_orders_body(xpub, 0, (uint64_t)i + 1, (uint64_t)i);
    send_orders_body(xpub, 2, (uint64_t)count, 0);
    ztick_subscriber_stats stats;
    ztick_recorder *latency = NULL;
    CHECK(ztick_subscriber_finish(subscriber, 20000, &stats, &latency));
    EXPECT(stats.complete && stats.received == (uint64_t)count && stats.missing == 0);
    EXPECT(seen.ticks == count && seen.ended == 1);
    uint64_t p50 = 0, p99 = 0;
    CHECK(ztick_recorder_percentile(latency, 50.0, &p50));
    CHECK(ztick_recorder_percentile(latency, 99.0, &p99));
    /* Sent in one burst: the latency includes the wait in the queue. */
    printf("C -> ztick over inproc: %ld ticks in order; burst latency p50 %llu ns, p99 %llu ns\n",
           seen.ticks, (unsigned long long)p50, (unsigned long long)p99);
    if (hgrm) CHECK(ztick_recorder_write_hgrm(latency, hgrm, 1000.0));

    /* ztick's handles first: zmq_ctx_term waits for every socket of the context. */
    ztick_recorder_free(latency);
    ztick_subscriber_free(subscriber);
    ztick_publisher_free(publisher);
    ztick_engine_free(engine);
    zmq_close(sub);
    zmq_close(xpub);
    ZCHECK(zmq_ctx_term(ctx) == 0);
    printf("ok\n");
    return 0;
}
