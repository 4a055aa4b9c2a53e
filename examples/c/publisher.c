/*
 * A C program publishing its own ticks through ztick, read by ztick's own subscriber.
 *
 *   scripts/capi.sh build && make -C examples/c
 *   target/system/release/ztick fanout --role sub --connect ipc:///tmp/px.ipc \
 *       --snapshot ipc:///tmp/px-snap.ipc &
 *   examples/c/build/publisher ipc:///tmp/px.ipc ipc:///tmp/px-snap.ipc 10000
 *
 * Topics t0..t7 are what `ztick fanout --role sub` follows by default. The program times
 * every publish call with a ztick latency recorder and prints its percentiles.
 * Arguments: ENDPOINT [SNAPSHOT_ENDPOINT|-] [COUNT] [HGRM_FILE]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ztick.h"

#define CHECK(call)                                                                      \
    do {                                                                                 \
        ztick_result rc_ = (call);                                                       \
        if (rc_ != ZTICK_RESULT_OK) {                                                    \
            fprintf(stderr, "publisher: %s: error %u: %s\n", #call, (unsigned)rc_,      \
                    ztick_last_error());                                                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:5556";
    const char *snapshot = argc > 2 && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
    long count = argc > 3 ? atol(argv[3]) : 10000;
    const char *hgrm = argc > 4 ? argv[4] : NULL;
    const char *topics[] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"};
    const size_t ntopics = sizeof topics / sizeof topics[0];

    printf("ztick %s, libzmq capabilities 0x%x\n", ztick_version(), ztick_capabilities());
    ztick_engine *engine = NULL;
    CHECK(ztick_engine_new(1, &engine));
    ztick_publisher_options options;
    CHECK(ztick_publisher_options_init(&options));
    options.snapshot_endpoint = snapshot; /* subscribers acknowledge the end there */
    /* A PUB socket drops ticks for a subscriber that falls HWM messages behind (counted as
     * gaps by the subscriber). This example publishes a burst as fast as it can and checks
     * that none is lost, so let the queue hold the whole burst. */
    options.hwm = 100000;
    ztick_publisher *publisher = NULL;
    CHECK(ztick_publisher_new(engine, endpoint, topics, ntopics, &options, &publisher));
    printf("publishing on %s\n", ztick_publisher_endpoint(publisher));
    fflush(stdout);
    CHECK(ztick_publisher_wait_subscribers(publisher, 1, 20000));

    ztick_recorder *call_cost = NULL;
    CHECK(ztick_recorder_new(&call_cost));
    for (long i = 0; i < count; i++) {
        char price[32];
        int len = snprintf(price, sizeof price, "%ld.%02ld", 100 + i / 100, i % 100);
        uint64_t t0 = now_ns();
        CHECK(ztick_publisher_publish(publisher, (size_t)i % ntopics, (const uint8_t *)price,
                                      (size_t)len));
        CHECK(ztick_recorder_record(call_cost, now_ns() - t0));
    }
    ztick_publisher_stats stats;
    CHECK(ztick_publisher_finish(publisher, 5000, &stats));
    printf("published %llu ticks in %llu messages; %llu subscriber(s) acknowledged the end\n",
           (unsigned long long)stats.published, (unsigned long long)stats.batches,
           (unsigned long long)stats.acks);

    ztick_latency_summary s;
    CHECK(ztick_recorder_summary(call_cost, &s));
    printf("publish call: p50 %llu ns, p99 %llu ns, max %llu ns over %llu calls\n",
           (unsigned long long)s.p50_ns, (unsigned long long)s.p99_ns,
           (unsigned long long)s.max_ns, (unsigned long long)s.count);
    if (hgrm) {
        CHECK(ztick_recorder_write_hgrm(call_cost, hgrm, 1000.0));
    }
    ztick_recorder_free(call_cost);
    ztick_publisher_free(publisher);
    ztick_engine_free(engine);
    return stats.published == (uint64_t)count ? 0 : 1;
}
