/* The callee of the stub benchmark: Pong(v) answers v. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct rpcponger_state {
    uint64_t unused;
} rpcponger_state;

HYPERPROCESS(rpcponger_state, .name = "rpcponger", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "rpcbench-v0");

HP_LOCAL
static uint64_t pong(rpcponger_state *s, uint64_t v)
{
    (void)s;
    return v;
}
