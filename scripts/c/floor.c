/*
 * floor: bare ping-pong between two threads of one process, without libzmq:
 * the floor under every messaging stack on this machine.
 *
 *   floor <inproc|ipc|tcp> <message-size> <roundtrip-count> [--busy]
 *
 *   tcp     a TCP connection over 127.0.0.1 with TCP_NODELAY on both ends
 *   ipc     a Unix stream socketpair
 *   inproc  shared memory: the payload is copied into a buffer and a
 *           sequence word is bumped; the peer sleeps on a futex (blocking,
 *           one FUTEX_WAKE per message, the cost of a thread hand-off) or,
 *           with --busy, spins on the word (the cost of moving a cache line
 *           between cores).
 *
 * --busy on tcp/ipc receives with MSG_DONTWAIT in a loop. Every wait gives
 * up with an error after 10 s without progress.
 *
 * Output: the same lines as zlat (libzmq's remote_lat lines, then one JSON
 * line with per-round-trip percentiles in ns), after 1000 warm-up round trips.
 */
#ifndef ZC_NO_ZMQ
#define ZC_NO_ZMQ
#endif
#include "zcommon.h"

#include <arpa/inet.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define PROG "floor"
#define WARMUP 1000
#define STALL_LIMIT_NS (10ull * 1000000000ull)

static void die_errno(const char *call)
{
    fprintf(stderr, "%s: error in %s: %s\n", PROG, call, strerror(errno));
    exit(1);
}

static void stalled(void)
{
    fprintf(stderr, "%s: no progress for 10 s; giving up\n", PROG);
    exit(1);
}

/* ----------------------------------------------------------- stream (fd) */

static void write_full(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            die_errno("send");
        }
        buf += w;
        n -= (size_t)w;
    }
}

static void read_full(int fd, char *buf, size_t n, int busy)
{
    uint64_t start = 0;
    unsigned spins = 0;
    while (n > 0) {
        ssize_t r = recv(fd, buf, n, busy ? MSG_DONTWAIT : 0);
        if (r > 0) {
            buf += r;
            n -= (size_t)r;
            start = 0;
            continue;
        }
        if (r == 0) {
            fprintf(stderr, "%s: peer closed the connection\n", PROG);
            exit(1);
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            die_errno("recv");
        if ((++spins & 1023u) == 0) {
            uint64_t now = zc_now_ns();
            if (start == 0)
                start = now;
            else if (now - start > STALL_LIMIT_NS)
                stalled();
        }
    }
}

struct stream_echo {
    int fd;        /* connected socket, or -1 to accept on `listen_fd` */
    int listen_fd;
    size_t size;
    long long total;
    int busy;
};

static void set_nodelay(int fd)
{
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        die_errno("setsockopt(TCP_NODELAY)");
}

static void *stream_echo_main(void *arg)
{
    struct stream_echo *e = (struct stream_echo *)arg;
    int fd = e->fd;
    if (fd < 0) {
        fd = accept(e->listen_fd, NULL, NULL);
        if (fd < 0)
            die_errno("accept");
        set_nodelay(fd);
    }
    char *buf = malloc(e->size);
    if (!buf)
        die_errno("malloc");
    for (long long i = 0; i < e->total; i++) {
        read_full(fd, buf, e->size, e->busy);
        write_full(fd, buf, e->size);
    }
    free(buf);
    if (e->fd < 0)
        close(fd);
    return NULL;
}

static uint64_t run_stream(const char *transport, size_t size, long long rt,
                           int busy, uint64_t *rtt)
{
    int cfd, lfd = -1;
    struct stream_echo e = {-1, -1, size, WARMUP + rt, busy};
    if (strcmp(transport, "ipc") == 0) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
            die_errno("socketpair");
        cfd = sv[0];
        e.fd = sv[1];
    } else {
        struct sockaddr_in a;
        socklen_t alen = sizeof a;
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = 0;
        lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd < 0)
            die_errno("socket");
        if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0)
            die_errno("bind");
        if (listen(lfd, 1) != 0)
            die_errno("listen");
        if (getsockname(lfd, (struct sockaddr *)&a, &alen) != 0)
            die_errno("getsockname");
        e.listen_fd = lfd;
        cfd = socket(AF_INET, SOCK_STREAM, 0);
        if (cfd < 0)
            die_errno("socket");
        if (connect(cfd, (struct sockaddr *)&a, sizeof a) != 0)
            die_errno("connect");
        set_nodelay(cfd);
    }

    pthread_t th;
    int prc = pthread_create(&th, NULL, stream_echo_main, &e);
    if (prc != 0) {
        errno = prc;
        die_errno("pthread_create");
    }

    char *buf = malloc(size);
    if (!buf)
        die_errno("malloc");
    memset(buf, 'z', size);
    for (int i = 0; i < WARMUP; i++) {
        write_full(cfd, buf, size);
        read_full(cfd, buf, size, busy);
    }
    uint64_t start = zc_now_ns();
    for (long long i = 0; i < rt; i++) {
        uint64_t t0 = zc_now_ns();
        write_full(cfd, buf, size);
        read_full(cfd, buf, size, busy);
        rtt[i] = zc_now_ns() - t0;
    }
    uint64_t elapsed = zc_now_ns() - start;
    pthread_join(th, NULL);
    free(buf);
    close(cfd);
    if (e.fd >= 0)
        close(e.fd);
    if (lfd >= 0)
        close(lfd);
    return elapsed;
}

/* ---------------------------------------------------- inproc (shared mem) */

struct mailbox {
    _Alignas(64) uint32_t seq;  /* bumped by the writer after the payload */
    _Alignas(64) char data[];   /* payload follows on its own cache line */
};

struct shm_pair {
    struct mailbox *req, *rep;
    size_t size;
    long long total;
    int busy;
};

static void futex_wake(uint32_t *addr)
{
    if (syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) < 0)
        die_errno("futex(FUTEX_WAKE)");
}

/* Wait until *addr != old; returns the new value. */
static uint32_t wait_change(uint32_t *addr, uint32_t old, int busy)
{
    uint64_t start = 0;
    unsigned spins = 0;
    for (;;) {
        uint32_t cur = __atomic_load_n(addr, __ATOMIC_ACQUIRE);
        if (cur != old)
            return cur;
        if (busy) {
            __builtin_ia32_pause();
        } else {
            struct timespec ts = {1, 0};
            long r = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, old, &ts,
                             NULL, 0);
            if (r < 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT)
                die_errno("futex(FUTEX_WAIT)");
        }
        if (busy ? ((++spins & 4095u) == 0) : 1) {
            uint64_t now = zc_now_ns();
            if (start == 0)
                start = now;
            else if (now - start > STALL_LIMIT_NS)
                stalled();
        }
    }
}

static void post(struct mailbox *m, const char *payload, size_t size, int busy)
{
    if (size)
        memcpy(m->data, payload, size);
    __atomic_add_fetch(&m->seq, 1, __ATOMIC_RELEASE);
    if (!busy)
        futex_wake(&m->seq);
}

static void *shm_echo_main(void *arg)
{
    struct shm_pair *p = (struct shm_pair *)arg;
    char *buf = malloc(p->size ? p->size : 1);
    if (!buf)
        die_errno("malloc");
    uint32_t seen = 0;
    for (long long i = 0; i < p->total; i++) {
        seen = wait_change(&p->req->seq, seen, p->busy);
        if (p->size)
            memcpy(buf, p->req->data, p->size);
        post(p->rep, buf, p->size, p->busy);
    }
    free(buf);
    return NULL;
}

static struct mailbox *mailbox_new(size_t size)
{
    void *mem = NULL;
    if (posix_memalign(&mem, 64, sizeof(struct mailbox) + size + 64) != 0)
        die_errno("posix_memalign");
    memset(mem, 0, sizeof(struct mailbox) + size);
    return (struct mailbox *)mem;
}

static uint64_t run_shm(size_t size, long long rt, int busy, uint64_t *rtt)
{
    struct shm_pair p = {mailbox_new(size), mailbox_new(size), size,
                         WARMUP + rt, busy};
    pthread_t th;
    int prc = pthread_create(&th, NULL, shm_echo_main, &p);
    if (prc != 0) {
        errno = prc;
        die_errno("pthread_create");
    }
    char *buf = malloc(size ? size : 1);
    if (!buf)
        die_errno("malloc");
    memset(buf, 'z', size ? size : 1);
    uint32_t seen = 0;
    for (int i = 0; i < WARMUP; i++) {
        post(p.req, buf, size, busy);
        seen = wait_change(&p.rep->seq, seen, busy);
        if (size)
            memcpy(buf, p.rep->data, size);
    }
    uint64_t start = zc_now_ns();
    for (long long i = 0; i < rt; i++) {
        uint64_t t0 = zc_now_ns();
        post(p.req, buf, size, busy);
        seen = wait_change(&p.rep->seq, seen, busy);
        if (size)
            memcpy(buf, p.rep->data, size);
        rtt[i] = zc_now_ns() - t0;
    }
    uint64_t elapsed = zc_now_ns() - start;
    pthread_join(th, NULL);
    free(buf);
    free(p.req);
    free(p.rep);
    return elapsed;
}

static void usage(void)
{
    fprintf(stderr, "usage: floor <inproc|ipc|tcp> <message-size> "
                    "<roundtrip-count> [--busy]\n");
    exit(2);
}

int main(int argc, char **argv)
{
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
                                         64 * 1024 * 1024);
    long long rt = zc_parse_count(PROG, "roundtrip count", pos[2], 1,
                                  100000000LL);
    int is_shm = strcmp(transport, "inproc") == 0;
    if (!is_shm && strcmp(transport, "ipc") != 0 && strcmp(transport, "tcp") != 0) {
        fprintf(stderr, "%s: unknown transport '%s' (inproc, ipc or tcp)\n",
                PROG, transport);
        return 2;
    }
    /* A byte stream cannot carry an empty message: send one byte instead. */
    size_t wire = (!is_shm && size == 0) ? 1 : size;

    uint64_t *rtt = malloc((size_t)rt * sizeof *rtt);
    if (!rtt)
        die_errno("malloc");
    uint64_t elapsed = is_shm ? run_shm(size, rt, busy, rtt)
                              : run_stream(transport, wire, rt, busy, rtt);
    zc_print_latency(size, rtt, (size_t)rt, elapsed);
    free(rtt);
    return 0;
}
