/* The client of the persistence benchmark (bench/state/run): Run(store, n,
 * inflight, warmup, max_secs) makes `warmup` unmeasured and then n measured
 * calls of Record on the process `store` of this package (store-every or
 * store-never: the same handler under two save policies) through the
 * generated stub, `inflight` tasks calling at once, and answers with one
 * line of JSON with the fields of bench/rpc/rpcpinger.c: n, inflight,
 * warmup, errors, truncated, secs, msgs_per_s, p50_us, p99_us, mean_us.
 * Each call is timed from before the stub until it returns (CLOCK_MONOTONIC):
 * with EveryMessage that includes the store's save, which happens before
 * its answer is sent. */
#include <hyperc/hyperprocess.h>

#include "statestore_caller_utils.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct stateclient_state {
    uint64_t runs;
} stateclient_state;

HYPERPROCESS(stateclient_state, .name = "stateclient",
             .endpoints = HP_NO_ENDPOINTS, .save_config = HP_SAVE_NEVER,
             .wit_world = "statebench-v0", .task_stack_kib = 64);

typedef struct phase {
    uint64_t n, issued, done, errors;
    uint64_t *lat_ns; /* NULL: not measured */
    double deadline;
    bool truncated;
    hw_address to;
} phase;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void worker(void *arg)
{
    phase *ph = arg;
    while (ph->issued < ph->n) {
        if (now_s() > ph->deadline) {
            ph->truncated = true;
            break;
        }
        uint64_t v = ph->issued++;
        double t0 = now_s();
        statestore_record_result r = record_local_rpc(&ph->to, v);
        double dt = now_s() - t0;
        if (r.err.kind != HP_RPC_OK || r.value == 0) {
            ph->errors++;
            continue;
        }
        if (ph->lat_ns)
            ph->lat_ns[ph->done] = (uint64_t)(dt * 1e9);
        ph->done++;
    }
}

/* Run a phase with `inflight` tasks; returns its seconds. */
static double run_phase(phase *ph, uint64_t inflight)
{
    hp_task **t = hp_alloc(inflight * sizeof *t);
    double t0 = now_s();
    for (uint64_t i = 0; i < inflight; i++)
        t[i] = hp_task_spawn(worker, ph);
    for (uint64_t i = 0; i < inflight; i++)
        if (t[i])
            hp_task_join(t[i]);
    return now_s() - t0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

HP_LOCAL
static char *run(stateclient_state *s, const char *store, uint64_t n,
                 uint64_t inflight, uint64_t warmup, uint64_t max_secs)
{
    s->runs++;
    if (n == 0 || inflight == 0 || inflight > 1000)
        return hp_sprintf("{\"error\":\"n > 0 and 1 <= inflight <= 1000\"}");
    if (strcmp(store, "store-every") != 0 && strcmp(store, "store-never") != 0)
        return hp_sprintf("{\"error\":\"store is store-every or "
                          "store-never\"}");
    hw_address to = {.node = hp_our()->node,
                     .process = {(char *)store, "statebench", "bench.os"}};
    phase warm = {.n = warmup, .to = to, .deadline = now_s() + max_secs};
    run_phase(&warm, inflight);
    phase m = {.n = n, .to = to, .lat_ns = hp_alloc(n * sizeof(uint64_t))};
    m.deadline = now_s() + max_secs;
    double secs = run_phase(&m, inflight);
    qsort(m.lat_ns, m.done, sizeof *m.lat_ns, cmp_u64);
    double sum = 0;
    for (uint64_t i = 0; i < m.done; i++)
        sum += (double)m.lat_ns[i];
    double p50 = m.done ? m.lat_ns[m.done / 2] / 1e3 : 0;
    double p99 = m.done ? m.lat_ns[(m.done * 99) / 100] / 1e3 : 0;
    return hp_sprintf("{\"store\":\"%s\",\"n\":%" PRIu64
                      ",\"inflight\":%" PRIu64 ",\"warmup\":%" PRIu64
                      ",\"errors\":%" PRIu64
                      ",\"truncated\":%s,\"secs\":%.4f,\"msgs_per_s\":%.0f,"
                      "\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f}",
                      store, m.done, inflight, warm.done,
                      m.errors + warm.errors, m.truncated ? "true" : "false",
                      secs, secs > 0 ? (double)m.done / secs : 0, p50, p99,
                      m.done ? sum / (double)m.done / 1e3 : 0);
}
