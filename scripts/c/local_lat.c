/*
 * local_lat: the echo side of libzmq's two-process latency test, same CLI
 * and (empty) output as libzmq's perf/local_lat.
 *
 *   local_lat <bind-to> <message-size> <roundtrip-count>
 *
 * Binds a REP socket and sends every message it receives straight back.
 */
#include "zcommon.h"

#define PROG "local_lat"

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: local_lat <bind-to> <message-size> <roundtrip-count>\n");
        return 1;
    }
    const char *bind_to = argv[1];
    size_t size = (size_t)zc_parse_count(PROG, "message size", argv[2], 0, INT_MAX);
    long long roundtrips = zc_parse_count(PROG, "roundtrip count", argv[3], 0, INT_MAX);

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_REP);
    ZC_CHECK_PTR(PROG, s, "zmq_socket");
    ZC_CHECK(PROG, zmq_bind(s, bind_to), "zmq_bind");

    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init(&msg), "zmq_msg_init");
    for (long long i = 0; i < roundtrips; i++) {
        ZC_CHECK(PROG, zmq_msg_recv(&msg, s, 0), "zmq_msg_recv");
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
        ZC_CHECK(PROG, zmq_msg_send(&msg, s, 0), "zmq_msg_send");
    }
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");
    /* Default linger (infinite): zmq_ctx_term waits for the last reply. */
    ZC_CHECK(PROG, zmq_close(s), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    return 0;
}
