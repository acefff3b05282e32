/* Shared by the clients of the stub benchmarks (bench/rpc/rpcpinger.c,
 * bench/state/stateclient.c), included by each: `inflight` tasks call a
 * process through a generated stub, first `warmup` unmeasured calls, then n
 * measured ones, each timed from before the stub until it returns
 * (CLOCK_MONOTONIC).  The result is one line of JSON with the fields of
 * bench/pingpong/pinger.c: n, inflight, warmup, errors, truncated, secs,
 * msgs_per_s, p50_us, p99_us, mean_us. */
#ifndef HYPERC_BENCH_STUB_LOAD_H
#define HYPERC_BENCH_STUB_LOAD_H

#include <hyperc/runtime.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

/* One call of the benchmark's stub to `to`; whether it got the answer it
 * should (i is the call's number). */
typedef bool (*bl_call_fn)(const hw_address *to, uint64_t i);

typedef struct bl_phase {
    uint64_t n, issued, done, errors;
    uint64_t *lat_ns; /* NULL: not measured */
    double deadline;
    bool truncated;
    const hw_address *to;
    bl_call_fn call;
} bl_phase;

static double bl_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bl_worker(void *arg)
{
    bl_phase *ph = arg;
    while (ph->issued < ph->n) {
        /* two clock reads a call, as bench/pingpong's clients */
        double t0 = bl_now_s();
        if (t0 > ph->deadline) {
            ph->truncated = true;
            break;
        }
        uint64_t i = ph->issued++;
        bool ok = ph->call(ph->to, i);
        double dt = bl_now_s() - t0;
        if (!ok) {
            ph->errors++;
            continue;
        }
        if (ph->lat_ns)
            ph->lat_ns[ph->done] = (uint64_t)(dt * 1e9);
        ph->done++;
    }
}

/* Run a phase with `inflight` tasks; returns its seconds. */
static double bl_run_phase(bl_phase *ph, uint64_t inflight)
{
    hp_task **t = hp_alloc(inflight * sizeof *t);
    double t0 = bl_now_s();
    for (uint64_t i = 0; i < inflight; i++)
        t[i] = hp_task_spawn(bl_worker, ph);
    for (uint64_t i = 0; i < inflight; i++)
        if (t[i])
            hp_task_join(t[i]);
    return bl_now_s() - t0;
}

static int bl_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The whole run; `first` is put at the head of the JSON object (e.g.
 * "\"store\":\"x\"," or ""), each phase stops after max_secs. */
static char *bl_run(const hw_address *to, bl_call_fn call, const char *first,
                    uint64_t n, uint64_t inflight, uint64_t warmup,
                    uint64_t max_secs)
{
    if (n == 0 || inflight == 0 || inflight > 1000)
        return hp_sprintf("{\"error\":\"n > 0 and 1 <= inflight <= 1000\"}");
    bl_phase warm = {.n = warmup, .to = to, .call = call};
    warm.deadline = bl_now_s() + (double)max_secs;
    bl_run_phase(&warm, inflight);
    bl_phase m = {.n = n, .to = to, .call = call};
    m.lat_ns = hp_alloc(n * sizeof(uint64_t));
    m.deadline = bl_now_s() + (double)max_secs;
    double secs = bl_run_phase(&m, inflight);
    qsort(m.lat_ns, m.done, sizeof *m.lat_ns, bl_cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < m.done; i++)
        sum += (double)m.lat_ns[i];
    double p50 = m.done ? (double)m.lat_ns[m.done / 2] / 1e3 : 0;
    double p99 = m.done ? (double)m.lat_ns[(m.done * 99) / 100] / 1e3 : 0;
    return hp_sprintf("{%s\"n\":%" PRIu64 ",\"inflight\":%" PRIu64
                      ",\"warmup\":%" PRIu64 ",\"errors\":%" PRIu64
                      ",\"truncated\":%s,\"secs\":%.4f,\"msgs_per_s\":%.0f,"
                      "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f}",
                      first, m.done, inflight, warm.done,
                      m.errors + warm.errors, m.truncated ? "true" : "false",
                      secs, secs > 0 ? (double)m.done / secs : 0, p50, p99,
                      m.done ? sum / (double)m.done / 1e3 : 0);
}

#endif
