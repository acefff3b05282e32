/* pinger: the driving half of the ping-pong benchmark (docs/benchmarks.md).
 *
 *   hyperc inject -t 300 pinger:pingpong:bench.os \
 *       'run <n> <inflight> [<warmup> [<max_secs>]]'
 *
 * sends `warmup` unmeasured round trips (default n/10 + 1000), then n measured
 * requests to ponger:pingpong:bench.os, keeping `inflight` of them outstanding
 * at once, and answers with one line of JSON:
 *
 *   {"n":..,"inflight":..,"warmup":..,"errors":..,"truncated":..,"secs":..,
 *    "msgs_per_s":..,"p50_us":..,"p99_us":..,"mean_us":..}
 *
 * Each phase stops sending after max_secs (default 60) and then only waits
 * for the requests still outstanding; "truncated" says whether the measured
 * phase was cut short, and "n" is then the number of round trips it made.
 *
 * msgs_per_s is completed round trips per second of the measured phase; the
 * latencies are per round trip, from just before hw_send_request to the
 * return of the hw_receive that delivers the response.  Each request carries
 * its send time (CLOCK_MONOTONIC, ns) as its context.
 *
 * While a run is going on, other requests to pinger are ignored (not
 * answered): answering them would change the prompting message that the
 * final result answers. */
#include <hyperc/abi.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PING_TIMEOUT_S 30

static hw_address ponger;
static uint8_t ping_body[8] = {'p', 'i', 'n', 'g', '0', '0', '0', '0'};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void send_ping(void)
{
    hw_request rq = {0};
    rq.has_expects_response = true;
    rq.expects_response = PING_TIMEOUT_S;
    rq.body.ptr = ping_body;
    rq.body.len = sizeof ping_body;
    uint64_t t = now_ns();
    hw_bytes ctx = {(uint8_t *)&t, sizeof t};
    hw_send_request(&ponger, &rq, &ctx, NULL);
}

typedef struct phase {
    uint64_t ok, errors, secs_ns;
    bool truncated;
    uint64_t total; /* round trips made (n, or fewer when truncated) */
    uint64_t *rtt;  /* ok entries when not NULL */
} phase;

/* `total` round trips with `inflight` outstanding; no new request after
 * max_ns. */
static void run_phase(uint64_t total, uint64_t inflight, uint64_t max_ns,
                      phase *ph)
{
    uint64_t sent = 0, done = 0;
    uint64_t start = now_ns();
    while (sent < total && sent < inflight) {
        send_ping();
        sent++;
    }
    while (done < total) {
        hw_receive_result r;
        hw_receive(&r);
        uint64_t t1 = now_ns();
        bool finished = false;
        if (r.is_err) {
            ph->errors++;
            finished = true;
        } else if (r.message.kind == HW_MESSAGE_RESPONSE) {
            if (r.message.has_context && r.message.context.len == 8) {
                uint64_t t0;
                memcpy(&t0, r.message.context.ptr, 8);
                if (ph->rtt)
                    ph->rtt[ph->ok] = t1 - t0;
                ph->ok++;
            } else {
                ph->errors++;
            }
            finished = true;
        }
        /* else: a request arriving mid-run; ignored, see the top. */
        hw_receive_result_fini(&r);
        if (finished) {
            done++;
            if (sent < total && t1 - start > max_ns) {
                total = sent; /* out of time: drain what is outstanding */
                ph->truncated = true;
            }
            if (sent < total) {
                send_ping();
                sent++;
            }
        }
    }
    ph->secs_ns = now_ns() - start;
    ph->total = total;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct_us(const uint64_t *v, uint64_t n, unsigned p)
{
    if (n == 0)
        return 0;
    uint64_t rank = (n * p + 99) / 100;
    if (rank == 0)
        rank = 1;
    return (double)v[rank - 1] / 1000.0;
}

static void answer(const char *text)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, NULL);
}

static void run_command(const char *cmd)
{
    unsigned long long n = 0, inflight = 0, warmup = 0, max_secs = 60;
    int k = sscanf(cmd, "run %llu %llu %llu %llu", &n, &inflight, &warmup,
                   &max_secs);
    if (k < 2 || n == 0 || inflight == 0 || inflight > 1000 || max_secs == 0 ||
        max_secs > 86400) {
        answer("{\"error\":\"usage: run <n> <inflight 1..1000> [<warmup> "
               "[<max_secs>]]\"}");
        return;
    }
    if (k < 3)
        warmup = n / 10 + 1000;
    uint64_t max_ns = (uint64_t)max_secs * 1000000000u;
    phase w = {0}, m = {0};
    m.rtt = malloc(n * sizeof *m.rtt);
    if (m.rtt == NULL) {
        answer("{\"error\":\"out of memory\"}");
        return;
    }
    if (warmup)
        run_phase(warmup, inflight, max_ns, &w);
    run_phase(n, inflight, max_ns, &m);
    qsort(m.rtt, m.ok, sizeof *m.rtt, cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < m.ok; i++)
        sum += (double)m.rtt[i];
    double secs = (double)m.secs_ns / 1e9;
    char out[512];
    snprintf(out, sizeof out,
             "{\"n\":%" PRIu64 ",\"inflight\":%llu,\"warmup\":%" PRIu64
             ",\"errors\":%" PRIu64 ",\"truncated\":%s,\"secs\":%.4f,"
             "\"msgs_per_s\":%.0f,\"p50_us\":%.2f,"
             "\"p99_us\":%.2f,\"mean_us\":%.2f}",
             m.total, inflight, w.total, m.errors + w.errors,
             m.truncated ? "true" : "false", secs,
             secs > 0 ? (double)m.ok / secs : 0, pct_us(m.rtt, m.ok, 50),
             pct_us(m.rtt, m.ok, 99), m.ok ? sum / (double)m.ok / 1000.0 : 0);
    free(m.rtt);
    answer(out);
}

void hw_init(const char *our)
{
    /* ponger lives on this node, in this package. */
    const char *at = strchr(our, '@');
    char addr[512];
    snprintf(addr, sizeof addr, "%.*s@ponger:pingpong:bench.os",
             at ? (int)(at - our) : 0, our);
    if (hw_address_parse(addr, &ponger) != 0) {
        hw_print_to_terminal(0, "pinger: cannot form ponger's address");
        return;
    }
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            char cmd[128];
            size_t len = b->len < sizeof cmd - 1 ? b->len : sizeof cmd - 1;
            if (len)
                memcpy(cmd, b->ptr, len);
            cmd[len] = 0;
            if (strncmp(cmd, "run", 3) == 0)
                run_command(cmd);
            else
                answer("{\"error\":\"unknown command; try: run <n> "
                       "<inflight> [<warmup> [<max_secs>]]\"}");
        }
        hw_receive_result_fini(&r);
    }
}
