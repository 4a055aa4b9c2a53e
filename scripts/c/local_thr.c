/*
 * local_thr: the receiving side of libzmq's two-process throughput test,
 * same CLI and output lines as libzmq's perf/local_thr.
 *
 *   local_thr <bind-to> <message-size> <message-count>
 *
 * Binds a PULL socket; the clock starts when the first message arrives.
 * Prints "message size: N [B]", "message count: N",
 * "mean throughput: N [msg/s]" and "mean throughput: X.XXX [Mb/s]".
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
    uint64_t start = zc_now_ns();
    for (long long i = 0; i != count - 1; i++) {
        ZC_CHECK(PROG, zmq_msg_recv(&msg, s, 0), "zmq_msg_recv");
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
    }
    uint64_t elapsed_us = (zc_now_ns() - start) / 1000u;
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
