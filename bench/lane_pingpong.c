/* What a round trip between two isolated processes would cost if their
 * workers exchanged messages directly, without the node in between (a
 * "lane": docs/architecture.md, "A direct lane between two workers: the
 * floor measured", and docs/lane-design.md).  Two OS processes share one worker
 * link (src/worker/link.c: the same rings, the same adaptive spin with its
 * yields, the same futex sleeps) and pass, as real frames of the worker
 * protocol's codec (src/worker/proto.c), what a lane carries: an LREQ with
 * its id (decoded as a view, its source known from the lane), then the
 * LRESP with the same id (hcw_frame_lreq / _lresp).  Nothing here is the node's
 * work (routing, capabilities, mailboxes): it is the floor under any design
 * that keeps the guest in its own OS process.
 *
 *   lane_pingpong [ROUND_TRIPS [IN_FLIGHT [SPIN_US [YIELD [TRANSPORT
 *                 [GROW [WORK_US]]]]]]]
 *
 * defaults 200000, 1, 50, 1, link, 0, 0.  YIELD 0 makes both ends spin without
 * giving up their CPU (hcw_link_spin_yield): each has a CPU of its own
 * here.  TRANSPORT `link` passes the frames through one worker link (as
 * the first measurement did); `lane` through a real lane (src/worker/
 * lane.c: a sealed memfd, try-send only, untrusted reads), each side
 * waiting as a lane worker will, in hcw_link_wait_any over its lane and a
 * link of its own standing for its link to the node (whose budget and
 * yield setting the wait uses; nothing comes on it).  GROW 1 turns on
 * hcw_link_spin_grow for both ends' waits (lane only).  WORK_US makes the
 * pinger busy for that long after each response before it sends again, as
 * a slow peer's turn would (a wasm host's guest and JavaScript, ~8 µs): the
 * ponger waits that long for each request, and whether its spin still
 * covers the wait shows in the round trips/s (the p50 is from a request's
 * send to its response, without the work).
 *
 * Prints one line of JSON: round trips/s, the p50 and p99 of a round trip
 * (from a request's send to its response's decoding). */
#include "worker/lane.h"
#include "worker/link.h"
#include "worker/proto.h"

#include <errno.h>
#include <sched.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* One end's transport: a link, or a lane side with the rings it waits on
 * (a link of its own first, then the lane). */
typedef struct end {
    hcw_link *link; /* link mode */
    hcw_lane *lane; /* lane mode: */
    hcw_link *own_node, *own;
    hcw_link *rings[2];
} end;

static int end_lane(end *e, int fd, int side, uint32_t spin_us, bool yield,
                    bool grow)
{
    char err[256];
    int lfd;
    e->lane = hcw_lane_map(fd, 1, side, err, sizeof err);
    e->own_node = hcw_link_shm_new(spin_us, &lfd);
    if (e->lane == NULL || e->own_node == NULL) {
        fprintf(stderr, "lane_pingpong: %s\n", e->lane ? "link" : err);
        return -1;
    }
    e->own = hcw_link_shm_open(lfd, err, sizeof err);
    if (e->own == NULL) {
        fprintf(stderr, "lane_pingpong: %s\n", err);
        return -1;
    }
    hcw_link_spin_yield(e->own, yield);
    hcw_link_spin_grow(e->own, grow);
    e->rings[0] = e->own;
    e->rings[1] = hcw_lane_link(e->lane);
    return 0;
}

/* A lane's try-send, retried (yielding) while the ring is full. */
static int end_send(end *e, hcw_frame *f)
{
    if (e->lane == NULL)
        return hcw_link_send(e->link, f);
    for (;;) {
        int r = hcw_link_try_send(e->rings[1], f);
        if (r != 0)
            return r == 1 ? 0 : -1;
        sched_yield();
    }
}

static int end_recv(end *e, hcw_in *in, char *err, size_t errlen)
{
    if (e->lane == NULL)
        return hcw_link_recv(e->link, in, err, errlen);
    for (;;) {
        int r = hcw_link_try_recv(e->rings[1], in, err, errlen);
        if (r != 0)
            return r;
        bool ready[2];
        if (hcw_link_wait_any(e->rings, 2, now_ns() + 50000000, ready) < 0) {
            snprintf(err, errlen, "wait: %s", strerror(errno));
            return -1;
        }
    }
}

static void end_free(end *e)
{
    hcw_link_free(e->link);
    hcw_lane_free(e->lane);
    hcw_link_free(e->own);
    hcw_link_free(e->own_node);
}

/* The pinger's request: 8 bytes of body, a response expected within 5 s,
 * as bench/pingpong's raw exchange sends. */
static void put_request(hcw_frame *f, uint64_t id)
{
    uint8_t body[8];
    memcpy(body, &id, sizeof body);
    hw_request r = {.has_expects_response = true,
                    .expects_response = 5,
                    .body = {.ptr = body, .len = sizeof body}};
    hcw_frame_lreq(f, id, &r, NULL);
}

/* The ponger: answer each request with its body, until told to stop (a
 * request with id 0). */
static int ponger(int fd, bool yield, bool lane, uint32_t spin_us, bool grow)
{
    char err[256];
    end e = {0};
    if (lane) {
        if (end_lane(&e, fd, 1, spin_us, yield, grow) != 0)
            return 1;
    } else {
        e.link = hcw_link_shm_open(fd, err, sizeof err);
        if (e.link == NULL) {
            fprintf(stderr, "lane_pingpong: %s\n", err);
            return 1;
        }
        hcw_link_spin_yield(e.link, yield);
    }
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    for (;;) {
        if (end_recv(&e, &in, err, sizeof err) != 1) {
            fprintf(stderr, "lane_pingpong: ponger: %s\n", err);
            return 1;
        }
        uint64_t id;
        hw_request req;
        hw_response none;
        bool has_blob;
        hw_blob blob;
        if (in.op != HCW_LREQ || !hcw_get_lane_frame(&in, true, &id, &req,
                                                     &none, &has_blob, &blob)) {
            fprintf(stderr, "lane_pingpong: ponger: a bad request\n");
            return 1;
        }
        if (id == 0) {
            hcw_request_view_fini(&req);
            break;
        }
        hw_response resp = {.body = req.body};
        hcw_frame_lresp(f, id, &resp, NULL);
        hcw_request_view_fini(&req);
        if (end_send(&e, f) != 0) {
            perror("lane_pingpong: ponger: send");
            return 1;
        }
    }
    hcw_in_fini(&in);
    hcw_frame_free(f);
    end_free(&e);
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    long k = argc > 2 ? atol(argv[2]) : 1;
    long spin_us = argc > 3 ? atol(argv[3]) : 50;
    bool yield = argc > 4 ? atoi(argv[4]) != 0 : true;
    const char *transport = argc > 5 ? argv[5] : "link";
    bool lane = strcmp(transport, "lane") == 0;
    bool grow = argc > 6 ? atoi(argv[6]) != 0 : false;
    long work_us = argc > 7 ? atol(argv[7]) : 0;
    if (n < 1 || k < 1 || k > 1024 || spin_us < 0 || work_us < 0 ||
        work_us > 1000000 || (!lane && strcmp(transport, "link") != 0)) {
        fprintf(stderr, "usage: lane_pingpong [ROUND_TRIPS [IN_FLIGHT 1..1024 "
                        "[SPIN_US [YIELD [link|lane [GROW [WORK_US]]]]]]]\n");
        return 2;
    }
    int fd;
    end e = {0};
    hcw_lane *made = NULL; /* the lane as the node makes it */
    if (lane)
        made = hcw_lane_new(1, &fd);
    else
        e.link = hcw_link_shm_new((uint32_t)spin_us, &fd);
    if (made == NULL && e.link == NULL) {
        perror("lane_pingpong: link");
        return 1;
    }
    int fd0 = lane ? dup(fd) : -1;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        hcw_link_free(e.link);
        hcw_lane_free(made);
        if (fd0 >= 0)
            close(fd0);
        _exit(ponger(fd, yield, lane, (uint32_t)spin_us, grow));
    }
    close(fd);
    hcw_lane_free(made);
    if (lane && end_lane(&e, fd0, 0, (uint32_t)spin_us, yield, grow) != 0)
        return 1;
    if (!lane)
        hcw_link_spin_yield(e.link, yield);

    long warm = n / 10 + 100, total = n + warm;
    int64_t *sent = calloc((size_t)total + 1, sizeof *sent);
    int64_t *lat = malloc((size_t)n * sizeof *lat);
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    char err[256];
    if (sent == NULL || lat == NULL)
        return 1;
    long next = 1, done = 0;
    int64_t t0 = 0;
    int rc = 0;
    while (done < total) {
        while (next <= total && next - 1 - done < k) {
            put_request(f, (uint64_t)next);
            sent[next] = now_ns();
            if (end_send(&e, f) != 0) {
                perror("lane_pingpong: send");
                rc = 1;
                goto out;
            }
            next++;
        }
        if (end_recv(&e, &in, err, sizeof err) != 1) {
            fprintf(stderr, "lane_pingpong: %s\n", err);
            rc = 1;
            goto out;
        }
        uint64_t id;
        hw_request none;
        hw_response resp;
        bool has_blob;
        hw_blob blob;
        if (in.op != HCW_LRESP ||
            !hcw_get_lane_frame(&in, true, &id, &none, &resp, &has_blob,
                                &blob) ||
            id < 1 || id > (uint64_t)total || resp.body.len != 8) {
            fprintf(stderr, "lane_pingpong: a bad response\n");
            rc = 1;
            goto out;
        }
        hcw_response_view_fini(&resp);
        done++;
        if ((long)id > warm)
            lat[id - (uint64_t)warm - 1] = now_ns() - sent[id];
        if (done == warm)
            t0 = now_ns();
        if (work_us > 0) { /* the pinger's turn, as a slow peer's */
            int64_t until = now_ns() + work_us * 1000;
            while (now_ns() < until)
                ;
        }
    }
    int64_t t = now_ns() - t0;
    put_request(f, 0);
    end_send(&e, f);
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"transport\":\"%s\",\"in_flight\":%ld,\"spin_us\":%ld,"
           "\"yield\":%s,\"grow\":%s,\"work_us\":%ld,"
           "\"round_trips\":%ld,\"per_s\":%.0f,"
           "\"p50_us\":%.2f,\"p99_us\":%.2f}\n",
           transport, k, spin_us, yield ? "true" : "false",
           grow ? "true" : "false", work_us, n,
           (double)(total - warm) * 1e9 / (double)t, (double)lat[n / 2] / 1e3,
           (double)lat[n * 99 / 100] / 1e3);
out:
    if (rc != 0)
        kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    hcw_in_fini(&in);
    hcw_frame_free(f);
    end_free(&e);
    free(sent);
    free(lat);
    return rc;
}
