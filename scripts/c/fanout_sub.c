/*
 * fanout_sub: the tick fan-out's subscriber on raw libzmq (see fanout_pub.c
 * for the wire and the feed).
 *
 *   fanout_sub --connect EP [--topics 8] [--size 64] [--coalesced]
 *              [--timeout-s 60] [--idle-gaps-us 100,1000,...]
 *
 * A SUB connects to EP and subscribes to every topic t0..t{T-1}, or to "g0"
 * with --coalesced. One thread blocks in zmq_msg_recv. For every tick it
 * records, in a log-linear histogram (under 1 % error):
 *   corrected latency: receive time - intended send time (latency_ns)
 *   raw latency:       receive time - the time its message was sent
 * and checks the per-topic sequence: a skipped sequence is missing, and so is
 * the tail a topic's end record announces beyond the last tick received. It
 * stops once every topic's end record has arrived, or --timeout-s after the
 * start (or after the last message, whichever is later), and prints one JSON
 * line:
 *   {"stack":"c","role":"sub","libzmq","coalesced","published","received",
 *    "missing","gap_ranges","end_topics","out_of_order","malformed",
 *    "timed_out","latency_ns":{...},"latency_raw_ns":{...},
 *    "idle_gaps":[{"gap_ns","count","latency_ns","latency_raw_ns"}],
 *    "idle_unmatched"}
 * The latency objects have the keys of ztick's LatencySummary (ns).
 *
 * --idle-gaps-us LIST: also group every in-order tick's latency by the gap
 * before it, the difference between its intended time and the previous
 * tick's, matched exactly against LIST (the publisher's --idle-gaps-us);
 * ticks that match none (the lead-in one) count as idle_unmatched.
 */
#include "zfanout.h"

#define PROG "fanout_sub"

struct gap_group {
    uint64_t gap_ns;
    struct zf_hist lat, raw;
};

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("libzmq %s\n", zf_version());
        return 0;
    }
    const char *connect = NULL;
    long long topics = 8, size = 64, timeout_s = 60;
    int coalesced = 0, ngaps = 0;
    uint64_t gaps_ns[ZF_MAX_GAPS];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--connect") == 0)
            connect = zf_value(PROG, argc, argv, &i);
        else if (strcmp(a, "--topics") == 0)
            topics = zc_parse_count(PROG, a, zf_value(PROG, argc, argv, &i), 1,
                                    ZF_MAX_TOPICS);
        else if (strcmp(a, "--size") == 0)
            size = zc_parse_count(PROG, a, zf_value(PROG, argc, argv, &i), 0, 65535);
        else if (strcmp(a, "--timeout-s") == 0)
            timeout_s = zc_parse_count(PROG, a, zf_value(PROG, argc, argv, &i), 1, 86400);
        else if (strcmp(a, "--coalesced") == 0)
            coalesced = 1;
        else if (strcmp(a, "--idle-gaps-us") == 0)
            ngaps = zf_parse_gaps(PROG, zf_value(PROG, argc, argv, &i), gaps_ns);
        else {
            fprintf(stderr,
                    PROG ": unknown option '%s'\nusage: " PROG
                         " --connect EP [--topics T] [--size B] [--coalesced] "
                         "[--timeout-s S] [--idle-gaps-us LIST]\n",
                    a);
            return 2;
        }
    }
    if (!connect) {
        fprintf(stderr, PROG ": --connect is required (the publisher's endpoint)\n");
        return 2;
    }

    struct zf_hist *lat = malloc(sizeof *lat), *raw = malloc(sizeof *raw);
    struct gap_group *groups = ngaps ? malloc((size_t)ngaps * sizeof *groups) : NULL;
    uint64_t *next = calloc((size_t)topics, sizeof *next);
    uint64_t *ends = calloc((size_t)topics, sizeof *ends);
    unsigned char *ended = calloc((size_t)topics, 1);
    if (!lat || !raw || (ngaps && !groups) || !next || !ends || !ended) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    zf_hist_init(lat);
    zf_hist_init(raw);
    for (int g = 0; g < ngaps; g++) {
        groups[g].gap_ns = gaps_ns[g];
        zf_hist_init(&groups[g].lat);
        zf_hist_init(&groups[g].raw);
    }

    void *ctx = zmq_ctx_new();
    ZC_CHECK_PTR(PROG, ctx, "zmq_ctx_new");
    void *sock = zmq_socket(ctx, ZMQ_SUB);
    ZC_CHECK_PTR(PROG, sock, "zmq_socket(ZMQ_SUB)");
    int timeout_ms = (int)(timeout_s * 1000), zero = 0;
    ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms),
             "zmq_setsockopt(ZMQ_RCVTIMEO)");
    ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero),
             "zmq_setsockopt(ZMQ_LINGER)");
    if (zmq_connect(sock, connect) != 0) {
        fprintf(stderr, PROG ": zmq_connect(%s): %s\n", connect, zmq_strerror(errno));
        return 1;
    }
    if (coalesced) {
        ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "g0", 2),
                 "zmq_setsockopt(ZMQ_SUBSCRIBE)");
    } else {
        for (long long k = 0; k < topics; k++) {
            char name[16];
            int n = snprintf(name, sizeof name, "t%lld", k);
            ZC_CHECK(PROG, zmq_setsockopt(sock, ZMQ_SUBSCRIBE, name, (size_t)n),
                     "zmq_setsockopt(ZMQ_SUBSCRIBE)");
        }
    }
    zf_timer_slack_1ns(PROG);

    size_t rec_bytes = ZF_HEADER + (size_t)size;
    uint64_t deadline = zc_now_ns() + (uint64_t)timeout_s * 1000000000ull;
    uint64_t received = 0, missing = 0, gap_ranges = 0, out_of_order = 0,
             malformed = 0, unmatched = 0, prev_intended = 0;
    int have_prev = 0, timed_out = 0;
    long long end_topics = 0;
    zmq_msg_t name, body;
    zmq_msg_init(&name);
    zmq_msg_init(&body);
    while (end_topics < topics) {
        if (zmq_msg_recv(&name, sock, 0) < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                timed_out = 1;
                break;
            }
            zc_die_zmq(PROG, "zmq_msg_recv(name frame)");
        }
        if (!zmq_msg_more(&name)) {
            malformed++;
            continue;
        }
        if (zmq_msg_recv(&body, sock, 0) < 0)
            zc_die_zmq(PROG, "zmq_msg_recv(body frame)");
        uint64_t now = zc_now_ns();
        while (zmq_msg_more(&body)) { /* a stray third frame: drop the rest */
            malformed++;
            if (zmq_msg_recv(&body, sock, 0) < 0)
                zc_die_zmq(PROG, "zmq_msg_recv(extra frame)");
        }
        size_t len = zmq_msg_size(&body);
        const unsigned char *p = zmq_msg_data(&body);
        if (len == 0 || len % rec_bytes != 0) {
            malformed++;
            continue;
        }
        for (size_t off = 0; off < len; off += rec_bytes) {
            struct zf_rec r;
            memcpy(&r, p + off, sizeof r);
            if (r.topic >= (uint32_t)topics || r.kind > ZF_KIND_END) {
                malformed++;
                continue;
            }
            if (r.kind == ZF_KIND_END) {
                if (!ended[r.topic]) {
                    ended[r.topic] = 1;
                    ends[r.topic] = r.seq;
                    end_topics++;
                }
                continue;
            }
            if (r.seq < next[r.topic]) {
                out_of_order++;
                continue;
            }
            if (r.seq > next[r.topic]) {
                missing += r.seq - next[r.topic];
                gap_ranges++;
            }
            next[r.topic] = r.seq + 1;
            received++;
            uint64_t l = now > r.intended_ns ? now - r.intended_ns : 0;
            uint64_t w = now > r.sent_ns ? now - r.sent_ns : 0;
            zf_hist_record(lat, l);
            zf_hist_record(raw, w);
            if (ngaps) {
                int matched = 0;
                if (have_prev && r.intended_ns > prev_intended) {
                    uint64_t d = r.intended_ns - prev_intended;
                    for (int g = 0; g < ngaps; g++) {
                        if (groups[g].gap_ns == d) {
                            zf_hist_record(&groups[g].lat, l);
                            zf_hist_record(&groups[g].raw, w);
                            matched = 1;
                            break;
                        }
                    }
                }
                if (!matched)
                    unmatched++;
                prev_intended = r.intended_ns;
                have_prev = 1;
            }
        }
        if (now > deadline && end_topics < topics) {
            timed_out = 1;
            break;
        }
    }
    uint64_t published = 0;
    for (long long k = 0; k < topics; k++) {
        published += ends[k];
        if (ended[k] && ends[k] > next[k]) {
            missing += ends[k] - next[k];
            gap_ranges++;
        }
    }
    zmq_msg_close(&name);
    zmq_msg_close(&body);
    ZC_CHECK(PROG, zmq_close(sock), "zmq_close");
    ZC_CHECK(PROG, zmq_ctx_term(ctx), "zmq_ctx_term");
    if (timed_out)
        fprintf(stderr,
                PROG ": timed out after %lld s: end records for %lld of %lld topics "
                     "from %s; is the publisher running?\n",
                timeout_s, end_topics, topics, connect);

    printf("{\"stack\":\"c\",\"role\":\"sub\",\"libzmq\":\"%s\",\"coalesced\":%s,"
           "\"published\":%" PRIu64 ",\"received\":%" PRIu64 ",\"missing\":%" PRIu64
           ",\"gap_ranges\":%" PRIu64 ",\"end_topics\":%lld,\"out_of_order\":%" PRIu64
           ",\"malformed\":%" PRIu64 ",\"timed_out\":%s,",
           zf_version(), coalesced ? "true" : "false", published, received, missing,
           gap_ranges, end_topics, out_of_order, malformed,
           timed_out ? "true" : "false");
    zf_print_summary(stdout, "latency_ns", lat);
    putchar(',');
    zf_print_summary(stdout, "latency_raw_ns", raw);
    printf(",\"idle_gaps\":[");
    for (int g = 0; g < ngaps; g++) {
        printf("%s{\"gap_ns\":%" PRIu64 ",\"count\":%" PRIu64 ",", g ? "," : "",
               groups[g].gap_ns, groups[g].lat.n);
        zf_print_summary(stdout, "latency_ns", &groups[g].lat);
        putchar(',');
        zf_print_summary(stdout, "latency_raw_ns", &groups[g].raw);
        putchar('}');
    }
    printf("],\"idle_unmatched\":%" PRIu64 "}\n", unmatched);
    free(lat);
    free(raw);
    free(groups);
    free(next);
    free(ends);
    free(ended);
    return timed_out ? 4 : 0;
}
