/*
 * zthr: PUSH/PULL throughput, both ends in one process (two threads).
 *
 *   zthr <inproc|ipc|tcp> <message-size> <message-count>
 *
 * A PUSH thread sends <message-count> messages of <message-size> bytes with
 * zmq_send (as libzmq's remote_thr does); the main thread PULLs them, and
 * its timer starts at the first message received (as libzmq's local_thr).
 * SNDHWM/RCVHWM are set to 1000, libzmq's default; nothing else is tuned.
 *
 * The PUSH socket stays open until every message has arrived, so a close
 * racing the last messages cannot lose any; a watchdog ends the run with an
 * error if nothing arrives for 10 s.
 */
#include "zcommon.h"

#define PROG "zthr"
#define HWM 1000
#define STALL_LIMIT_S 10

struct push_args {
    void *push;
    size_t size;
    long long count;
};

static void *push_main(void *arg)
{
    struct push_args *a = (struct push_args *)arg;
    char *buf = malloc(a->size ? a->size : 1);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        exit(1);
    }
    memset(buf, 'z', a->size ? a->size : 1);
    for (long long i = 0; i < a->count; i++) {
        if (zmq_send(a->push, buf, a->size, 0) < 0)
            zc_die_zmq(PROG, "zmq_send");
    }
    free(buf);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr,
                "usage: zthr <inproc|ipc|tcp> <message-size> <message-count>\n");
        return 2;
    }
    const char *transport = argv[1];
    size_t size = (size_t)zc_parse_count(PROG, "message size", argv[2], 0,
                                         INT_MAX);
    long long count = zc_parse_count(PROG, "message count", argv[3], 1,
                                     INT_MAX);
    int hwm = HWM;

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");

    void *pull = zmq_socket(ctx, ZMQ_PULL);
    ZC_CHECK_PTR(PROG, pull, "zmq_socket(ZMQ_PULL)");
    ZC_CHECK(PROG, zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm),
             "zmq_setsockopt(ZMQ_RCVHWM)");
    char connect_ep[512], ipc_path[256];
    zc_bind(PROG, pull, transport, "zthr", connect_ep, sizeof connect_ep,
            ipc_path, sizeof ipc_path);

    void *push = zmq_socket(ctx, ZMQ_PUSH);
    ZC_CHECK_PTR(PROG, push, "zmq_socket(ZMQ_PUSH)");
    ZC_CHECK(PROG, zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm),
             "zmq_setsockopt(ZMQ_SNDHWM)");
    ZC_CHECK(PROG, zmq_connect(push, connect_ep), "zmq_connect");

    volatile uint64_t progress = 0;
    struct zc_watchdog wd;
    zc_watchdog_start(&wd, PROG, "messages received", &progress, STALL_LIMIT_S);

    struct push_args pa = {push, size, count};
    pthread_t pusher;
    int prc = pthread_create(&pusher, NULL, push_main, &pa);
    if (prc != 0) {
        fprintf(stderr, "%s: pthread_create: %s\n", PROG, strerror(prc));
        return 1;
    }

    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init(&msg), "zmq_msg_init");
    uint64_t start = 0;
    for (long long i = 0; i < count; i++) {
        if (zmq_msg_recv(&msg, pull, 0) < 0)
            zc_die_zmq(PROG, "zmq_msg_recv");
        if (i == 0)
            start = zc_now_ns();
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
        __atomic_store_n(&progress, (uint64_t)i + 1, __ATOMIC_RELAXED);
    }
    uint64_t elapsed_ns = zc_now_ns() - start;
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");
    zc_watchdog_stop(&wd);

    pthread_join(pusher, NULL);
    ZC_CHECK(PROG, zmq_close(push), "zmq_close(PUSH)");
    ZC_CHECK(PROG, zmq_close(pull), "zmq_close(PULL)");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    if (ipc_path[0])
        unlink(ipc_path);

    /* local_thr's arithmetic, on a microsecond clock (minimum 1 us). */
    double elapsed_us = (double)elapsed_ns / 1000.0;
    if (elapsed_us < 1.0)
        elapsed_us = 1.0;
    double throughput = (double)count / elapsed_us * 1000000.0;
    double megabits = throughput * (double)size * 8.0 / 1000000.0;

    printf("message size: %zu [B]\n", size);
    printf("message count: %lld\n", count);
    printf("mean throughput: %" PRIu64 " [msg/s]\n", (uint64_t)throughput);
    printf("mean throughput: %.3f [Mb/s]\n", megabits);
    printf("{\"size\":%zu,\"count\":%lld,\"msgs_per_s\":%" PRIu64
           ",\"mbit_per_s\":%.3f}\n",
           size, count, (uint64_t)throughput, megabits);
    fflush(stdout);
    return 0;
}
