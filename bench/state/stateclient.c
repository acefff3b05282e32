/* The client of the persistence benchmark (bench/state/run): Run(store, n,
 * inflight, warmup, max_secs) makes `warmup` unmeasured and then n measured
 * calls of Record on the process `store` of this package (store-every or
 * store-never: the same handler under two save policies) through the
 * generated stub, `inflight` tasks calling at once, and answers with one
 * line of JSON (bench/common/stub_load.h, with "store" first).  Each call is
 * timed from before the stub until it returns: with EveryMessage that
 * includes the store's save, which happens before its answer is sent. */
#include <hyperc/hyperprocess.h>

#include "../common/stub_load.h"
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

static bool record_once(const hw_address *to, uint64_t i)
{
    statestore_record_result r = record_local_rpc(to, i);
    return r.err.kind == HP_RPC_OK && r.value != 0;
}

HP_LOCAL
static char *run(stateclient_state *s, const char *store, uint64_t n,
                 uint64_t inflight, uint64_t warmup, uint64_t max_secs)
{
    s->runs++;
    if (strcmp(store, "store-every") != 0 && strcmp(store, "store-never") != 0)
        return hp_sprintf("{\"error\":\"store is store-every or "
                          "store-never\"}");
    hw_address to = {.node = hp_our()->node,
                     .process = {(char *)store, "statebench", "bench.os"}};
    char *first = hp_sprintf("\"store\":\"%s\",", store);
    return bl_run(&to, record_once, first, n, inflight, warmup, max_secs);
}
