/* The caller of the stub benchmark: Run(n, inflight, warmup, max_secs)
 * makes `warmup` unmeasured and then n measured calls of rpcponger's Pong
 * through the generated stub (pong_local_rpc), `inflight` tasks calling at
 * once (bench/common/stub_load.h: the timing and the JSON line). */
#include <hyperc/hyperprocess.h>

#include "../common/stub_load.h"
#include "rpcponger_caller_utils.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rpcpinger_state {
    uint64_t runs;
} rpcpinger_state;

HYPERPROCESS(rpcpinger_state, .name = "rpcpinger", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "rpcbench-v0",
             .task_stack_kib = 64, .max_tasks = 20000);

static bool pong_once(const hw_address *to, uint64_t i)
{
    rpcponger_pong_result r = pong_local_rpc(to, i);
    return r.err.kind == HP_RPC_OK && r.value == i;
}

static bool pong_remote_once(const hw_address *to, uint64_t i)
{
    rpcponger_pong_result r = pong_remote_rpc(to, i);
    return r.err.kind == HP_RPC_OK && r.value == i;
}

HP_LOCAL
static char *run(rpcpinger_state *s, uint64_t n, uint64_t inflight,
                 uint64_t warmup, uint64_t max_secs)
{
    s->runs++;
    hw_address to = {.node = hp_our()->node,
                     .process = {"rpcponger", "rpcbench", "bench.os"}};
    return bl_run(&to, pong_once, "", n, inflight, warmup, max_secs);
}

/* The same calls to rpcponger on another node (bench/net/run). */
HP_LOCAL
static char *run_remote(rpcpinger_state *s, char *node, uint64_t n,
                        uint64_t inflight, uint64_t warmup, uint64_t max_secs)
{
    s->runs++;
    hw_address to = {.node = node,
                     .process = {"rpcponger", "rpcbench", "bench.os"}};
    return bl_run(&to, pong_remote_once, "", n, inflight, warmup, max_secs);
}

/* `count` calls of Bulk(bytes) on node's rpcponger, one at a time (after
 * one unmeasured): {"bytes","count","errors","secs","mb_per_s"}. */
HP_LOCAL
static char *fetch(rpcpinger_state *s, char *node, uint64_t bytes,
                   uint64_t count)
{
    (void)s;
    hw_address to = {.node = node,
                     .process = {"rpcponger", "rpcbench", "bench.os"}};
    uint64_t errors = 0;
    rpcponger_bulk_result w = bulk_remote_rpc(&to, bytes);
    errors += w.err.kind != HP_RPC_OK;
    double t0 = bl_now_s();
    for (uint64_t i = 0; i < count; i++) {
        /* each reply checked, then given back (docs/concurrency.md: a
         * loop in one handler keeps its arena flat this way; without it
         * every reply stays until the handler ends, a megabyte a call) */
        hp_arena_mark m = hp_arena_save(hp_message_arena());
        rpcponger_bulk_result r = bulk_remote_rpc(&to, bytes);
        errors += r.err.kind != HP_RPC_OK || strlen(r.value) != bytes;
        hp_arena_restore(hp_message_arena(), m);
    }
    double secs = bl_now_s() - t0;
    return hp_sprintf("{\"bytes\":%" PRIu64 ",\"count\":%" PRIu64
                      ",\"errors\":%" PRIu64 ",\"secs\":%.6f,"
                      "\"mb_per_s\":%.2f}",
                      bytes, count, errors, secs,
                      secs > 0 ? (double)bytes * (double)count / secs / 1e6
                               : 0.0);
}

typedef struct holder {
    uint64_t ms;
} holder;

static void hold_task(void *arg)
{
    hp_sleep_ms(((holder *)arg)->ms);
}

/* n tasks waiting at once for ms (sleeps), for measuring memory per
 * waiting task: answers when all have woken. */
HP_LOCAL
static uint64_t hold(rpcpinger_state *s, uint64_t n, uint64_t ms)
{
    (void)s;
    holder *h = hp_alloc(sizeof *h);
    h->ms = ms;
    hp_task **t = hp_alloc((n ? n : 1) * sizeof *t);
    uint64_t started = 0;
    for (uint64_t i = 0; i < n; i++)
        started += (t[i] = hp_task_spawn(hold_task, h)) != NULL;
    for (uint64_t i = 0; i < n; i++)
        hp_task_join(t[i]);
    return started;
}
