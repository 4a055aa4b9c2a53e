/*
 * remote_lat: the timing side of libzmq's two-process latency test, same CLI
 * and output lines as libzmq's perf/remote_lat.
 *
 *   remote_lat <connect-to> <message-size> <roundtrip-count>
 *
 * Prints "message size: N [B]", "roundtrip count: N" and
 * "average latency: X.XXX [us]" (elapsed / (roundtrips * 2)).
 */
#include "zcommon.h"

#define PROG "remote_lat"

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: remote_lat <connect-to> <message-size> <roundtrip-count>\n");
        return 1;
    }
    const char *connect_to = argv[1];
    size_t size = (size_t)zc_parse_count(PROG, "message size", argv[2], 0, INT_MAX);
    long long roundtrips = zc_parse_count(PROG, "roundtrip count", argv[3], 1, INT_MAX);

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_REQ);
    ZC_CHECK_PTR(PROG, s, "zmq_socket");
    ZC_CHECK(PROG, zmq_connect(s, connect_to), "zmq_connect");

    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init_size(&msg, size), "zmq_msg_init_size");
    if (size)
        memset(zmq_msg_data(&msg), 0, size);

    /* Like libzmq's, the clock includes the connection set-up that the
     * first round trip waits for. */
    uint64_t start = zc_now_ns();
    for (long long i = 0; i < roundtrips; i++) {
        ZC_CHECK(PROG, zmq_msg_send(&msg, s, 0), "zmq_msg_send");
        ZC_CHECK(PROG, zmq_msg_recv(&msg, s, 0), "zmq_msg_recv");
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
    }
    uint64_t elapsed_us = (zc_now_ns() - start) / 1000u;
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");

    double latency = (double)elapsed_us / ((double)roundtrips * 2.0);
    printf("message size: %zu [B]\n", size);
    printf("roundtrip count: %lld\n", roundtrips);
    printf("average latency: %.3f [us]\n", latency);
    fflush(stdout);

    ZC_CHECK(PROG, zmq_close(s), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    return 0;
}
