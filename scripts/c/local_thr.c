/*
 * local_thr: the receiving side of libzmq's two-process throughput test,
 * same CLI and output lines as libzmq's perf/local_thr.
 *
 *   local_thr <bind-to> <message-size> <message-count>
 *
 * Binds a PULL socket; the clock starts when the first message arrives.
 * Prints "message size: N [B]", "message count: N",
 * "mean throughput: N [msg/s]" and "mean throughput: X.XXX [Mb/s]".
 *
 * One deliberate difference from libzmq's: once the first message is in, a
 * watchdog exits with an error (status 1, message on stderr, nothing on
 * stdout) when no message arrives for 10 s, instead of hanging. libzmq 4.3.4
 * over ipc drops the last ~0.1-1 % of a burst when the sender closes right
 * after sending, so a faithful local_thr would wait forever.
 */
#include "zcommon.h"

#define PROG "local_thr"

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: local_thr <bind-to> <message-size> <message-count>\n");
        return 1;
    }
    const char *bind_to = argv[1];
    size_t size = (size_t)zc_parse_count(PROG, "message size", argv[2], 0, INT_MAX);
    long long count = zc_parse_count(PROG, "message count", argv[3], 1, INT_MAX);

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_PULL);
    ZC_CHECK_PTR(PROG, s, "zmq_socket");
    ZC_CHECK(PROG, zmq_bind(s, bind_to), "zmq_bind");

    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init(&msg), "zmq_msg_init");

    ZC_CHECK(PROG, zmq_msg_recv(&msg, s, 0), "zmq_msg_recv");
    if (zmq_msg_size(&msg) != size) {
        fprintf(stderr, "%s: message of incorrect size received\n", PROG);
        return 1;
    }
    volatile uint64_t received = 1;
    struct zc_watchdog wd;
    zc_watchdog_start(&wd, PROG, "messages received", &received, 10);

    uint64_t start = zc_now_ns();
    for (long long i = 0; i != count - 1; i++) {
        ZC_CHECK(PROG, zmq_msg_recv(&msg, s, 0), "zmq_msg_recv");
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
        __atomic_store_n(&received, (uint64_t)i + 2, __ATOMIC_RELAXED);
    }
    uint64_t elapsed_us = (zc_now_ns() - start) / 1000u;
    zc_watchdog_stop(&wd);
    if (elapsed_us == 0)
        elapsed_us = 1;
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");

    double throughput = (double)count / (double)elapsed_us * 1000000.0;
    double megabits = throughput * (double)size * 8.0 / 1000000.0;
    printf("message size: %zu [B]\n", size);
    printf("message count: %lld\n", count);
    printf("mean throughput: %d [msg/s]\n", (int)throughput);
    printf("mean throughput: %.3f [Mb/s]\n", megabits);
    fflush(stdout);

    ZC_CHECK(PROG, zmq_close(s), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    return 0;
}
