/*
 * remote_thr: the sending side of libzmq's two-process throughput test,
 * same CLI and (empty) output as libzmq's perf/remote_thr.
 *
 *   remote_thr <connect-to> <message-size> <message-count>
 *
 * Connects a PUSH socket, sends the messages, closes with the default
 * (infinite) linger and terminates the context, which waits for delivery
 * to the peer's kernel buffers.
 */
#include "zcommon.h"

#define PROG "remote_thr"

int main(int argc, char **argv)
{
    if (argc != 4) {
        printf("usage: remote_thr <connect-to> <message-size> <message-count>\n");
        return 1;
    }
    const char *connect_to = argv[1];
    size_t size = (size_t)zc_parse_count(PROG, "message size", argv[2], 0, INT_MAX);
    long long count = zc_parse_count(PROG, "message count", argv[3], 0, INT_MAX);

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    ZC_CHECK_PTR(PROG, s, "zmq_socket");
    ZC_CHECK(PROG, zmq_connect(s, connect_to), "zmq_connect");

    zmq_msg_t msg;
    for (long long i = 0; i < count; i++) {
        ZC_CHECK(PROG, zmq_msg_init_size(&msg, size), "zmq_msg_init_size");
        ZC_CHECK(PROG, zmq_msg_send(&msg, s, 0), "zmq_msg_send");
        ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");
    }

    ZC_CHECK(PROG, zmq_close(s), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    return 0;
}
