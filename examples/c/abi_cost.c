/*
 * The cost of one call through ztick's C ABI, from C: ztick_recorder_record (a histogram
 * increment behind the panic boundary and the NULL check) and ztick_publisher_publish
 * (the hand-off of a 16-byte tick to the publisher's worker), timed over many calls.
 * The same calls from Rust: tests/capi.rs, abi_cost. Both: scripts/capi.sh bench.
 *
 *   examples/c/build/abi_cost [CALLS] [ROUNDS]
 *
 * Prints the median over ROUNDS of the mean ns per call, one line per measurement.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ztick.h"

#define CHECK(call)                                                                      \
    do {                                                                                 \
        ztick_result rc_ = (call);                                                       \
        if (rc_ != ZTICK_RESULT_OK) {                                                    \
            fprintf(stderr, "abi_cost: %s: error %u: %s\n", #call, (unsigned)rc_,        \
                    ztick_last_error());                                                 \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long calls = argc > 1 ? atol(argv[1]) : 10000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (calls <= 0 || rounds <= 0 || rounds > 100) return 2;
    double record[100], publish[100];

    ztick_recorder *r = NULL;
    CHECK(ztick_recorder_new(&r));
    ztick_engine *engine = NULL;
    CHECK(ztick_engine_new(0, &engine));
    const char *topics[] = {"t0"};
    ztick_publisher_options o;
    CHECK(ztick_publisher_options_init(&o));
    o.capacity = 1u << 16;
    ztick_publisher *p = NULL;
    CHECK(ztick_publisher_new(engine, "inproc://abi-cost", topics, 1, &o, &p));
    uint8_t tick[16] = {0};
    long publishes = calls / 10 < 50000 ? calls / 10 : 50000;

    for (int k = 0; k < rounds; k++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < calls; i++) {
            /* Values spread over 64 K ns, as the Rust side records them. */
            if (ztick_recorder_record(r, (uint64_t)(i & 0xffff) + 1) != ZTICK_RESULT_OK) abort();
        }
        record[k] = (double)(now_ns() - t0) / (double)calls;

        /* Nobody subscribes: the worker sequences, coalesces and sends into the void. */
        t0 = now_ns();
        for (long i = 0; i < publishes; i++) {
            tick[0] = (uint8_t)i;
            if (ztick_publisher_publish(p, 0, tick, sizeof tick) != ZTICK_RESULT_OK) abort();
        }
        publish[k] = (double)(now_ns() - t0) / (double)publishes;
        /* Let the worker drain (sleeping) so it does not compete with the next loop. */
        struct timespec ms = {0, 1000000};
        while (ztick_publisher_published(p) < (uint64_t)publishes * (uint64_t)(k + 1)) {
            nanosleep(&ms, NULL);
        }
    }
    if (ztick_recorder_count(r) != (uint64_t)calls * (uint64_t)rounds) return 1;
    qsort(record, (size_t)rounds, sizeof record[0], cmp);
    qsort(publish, (size_t)rounds, sizeof publish[0], cmp);
    printf("C   ztick_recorder_record        %6.2f ns/call (median of %d rounds of %ld)\n",
           record[rounds / 2], rounds, calls);
    printf("C   ztick_publisher_publish      %6.2f ns/call (median of %d rounds of %ld)\n",
           publish[rounds / 2], rounds, publishes);
    CHECK(ztick_publisher_finish(p, 0, NULL));
    ztick_publisher_free(p);
    ztick_engine_free(engine);
    ztick_recorder_free(r);
    return 0;
}
