/*
 * zlat: REQ/REP round-trip latency, both ends in one process (two threads),
 * in the manner of libzmq's inproc_lat but for any transport.
 *
 *   zlat <inproc|ipc|tcp> <message-size> <roundtrip-count> [--busy]
 *
 * The REP thread echoes every message back; the REQ thread times every
 * round trip with CLOCK_MONOTONIC. After 1000 untimed warm-up round trips it
 * prints libzmq's remote_lat lines (average latency = elapsed / (roundtrips
 * * 2)) and one JSON line with per-round-trip percentiles in ns.
 *
 * zlat --version prints the version of the libzmq it runs on.
 *
 * --busy: both threads receive with ZMQ_DONTWAIT in a loop instead of
 * blocking, and give up with an error after 10 s without a message.
 */
#include "zcommon.h"

#define PROG "zlat"
#define WARMUP 1000
#define STALL_LIMIT_S 10

struct echo_args {
    void *rep;
    size_t size;
    long long total; /* warm-up + timed round trips */
    int busy;
};

/* Receive one message; in busy mode spin on ZMQ_DONTWAIT with a bound. */
static void recv_msg(void *s, zmq_msg_t *msg, int busy)
{
    if (!busy) {
        if (zmq_msg_recv(msg, s, 0) < 0)
            zc_die_zmq(PROG, "zmq_msg_recv");
        return;
    }
    uint64_t start = 0;
    unsigned spins = 0;
    for (;;) {
        if (zmq_msg_recv(msg, s, ZMQ_DONTWAIT) >= 0)
            return;
        if (errno != EAGAIN)
            zc_die_zmq(PROG, "zmq_msg_recv(ZMQ_DONTWAIT)");
        if ((++spins & 1023u) == 0) {
            uint64_t now = zc_now_ns();
            if (start == 0) {
                start = now;
            } else if (now - start > (uint64_t)STALL_LIMIT_S * 1000000000ull) {
                fprintf(stderr,
                        "%s: busy-poll gave up: no message for %d s\n",
                        PROG, STALL_LIMIT_S);
                exit(1);
            }
        }
    }
}

static void *echo_main(void *arg)
{
    struct echo_args *a = (struct echo_args *)arg;
    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init(&msg), "zmq_msg_init");
    for (long long i = 0; i < a->total; i++) {
        recv_msg(a->rep, &msg, a->busy);
        if (zmq_msg_size(&msg) != a->size) {
            fprintf(stderr, "%s: echo received %zu bytes, expected %zu\n", PROG,
                    zmq_msg_size(&msg), a->size);
            exit(1);
        }
        ZC_CHECK(PROG, zmq_msg_send(&msg, a->rep, 0), "zmq_msg_send");
    }
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: zlat <inproc|ipc|tcp> <message-size> <roundtrip-count> "
            "[--busy]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        int major, minor, patch;
        zmq_version(&major, &minor, &patch);
        printf("libzmq %d.%d.%d\n", major, minor, patch);
        return 0;
    }
    const char *pos[3];
    int npos = 0, busy = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--busy") == 0)
            busy = 1;
        else if (npos < 3)
            pos[npos++] = argv[i];
        else
            usage();
    }
    if (npos != 3)
        usage();
    const char *transport = pos[0];
    size_t size = (size_t)zc_parse_count(PROG, "message size", pos[1], 0,
                                         INT_MAX);
    long long roundtrips = zc_parse_count(PROG, "roundtrip count", pos[2], 1,
                                          100000000LL);

    uint64_t *rtt = malloc((size_t)roundtrips * sizeof *rtt);
    if (!rtt) {
        fprintf(stderr, "%s: out of memory for %lld samples\n", PROG, roundtrips);
        return 1;
    }

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");

    void *rep = zmq_socket(ctx, ZMQ_REP);
    ZC_CHECK_PTR(PROG, rep, "zmq_socket(ZMQ_REP)");
    char connect_ep[512], ipc_path[256];
    zc_bind(PROG, rep, transport, "zlat", connect_ep, sizeof connect_ep,
            ipc_path, sizeof ipc_path);

    struct echo_args ea = {rep, size, WARMUP + roundtrips, busy};
    pthread_t echo;
    int prc = pthread_create(&echo, NULL, echo_main, &ea);
    if (prc != 0) {
        fprintf(stderr, "%s: pthread_create: %s\n", PROG, strerror(prc));
        return 1;
    }

    void *req = zmq_socket(ctx, ZMQ_REQ);
    ZC_CHECK_PTR(PROG, req, "zmq_socket(ZMQ_REQ)");
    ZC_CHECK(PROG, zmq_connect(req, connect_ep), "zmq_connect");

    volatile uint64_t progress = 0;
    struct zc_watchdog wd;
    zc_watchdog_start(&wd, PROG, "round trips", &progress, STALL_LIMIT_S);

    zmq_msg_t msg;
    ZC_CHECK(PROG, zmq_msg_init_size(&msg, size), "zmq_msg_init_size");
    if (size)
        memset(zmq_msg_data(&msg), 'z', size);

    for (int i = 0; i < WARMUP; i++) {
        ZC_CHECK(PROG, zmq_msg_send(&msg, req, 0), "zmq_msg_send");
        recv_msg(req, &msg, busy);
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
        __atomic_store_n(&progress, (uint64_t)i + 1, __ATOMIC_RELAXED);
    }

    uint64_t start = zc_now_ns();
    for (long long i = 0; i < roundtrips; i++) {
        uint64_t t0 = zc_now_ns();
        ZC_CHECK(PROG, zmq_msg_send(&msg, req, 0), "zmq_msg_send");
        recv_msg(req, &msg, busy);
        uint64_t t1 = zc_now_ns();
        if (zmq_msg_size(&msg) != size) {
            fprintf(stderr, "%s: message of incorrect size received\n", PROG);
            return 1;
        }
        rtt[i] = t1 - t0;
        __atomic_store_n(&progress, (uint64_t)(WARMUP + i + 1), __ATOMIC_RELAXED);
    }
    uint64_t elapsed = zc_now_ns() - start;

    zc_watchdog_stop(&wd);
    ZC_CHECK(PROG, zmq_msg_close(&msg), "zmq_msg_close");
    pthread_join(echo, NULL);
    ZC_CHECK(PROG, zmq_close(req), "zmq_close(REQ)");
    ZC_CHECK(PROG, zmq_close(rep), "zmq_close(REP)");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    if (ipc_path[0])
        unlink(ipc_path);

    zc_print_latency(size, rtt, (size_t)roundtrips, elapsed);
    free(rtt);
    return 0;
}
