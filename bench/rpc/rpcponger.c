/* The callee of the stub benchmark: Pong(v) answers v, to this node's
 * processes and other nodes' (bench/net/run); Bulk(n) answers n bytes of
 * text, for the network's transfer rate. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <string.h>

typedef struct rpcponger_state {
    uint64_t unused;
} rpcponger_state;

HYPERPROCESS(rpcponger_state, .name = "rpcponger", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "rpcbench-v0");

HP_LOCAL HP_REMOTE static uint64_t pong(rpcponger_state *s, uint64_t v)
{
    (void)s;
    return v;
}

HP_LOCAL HP_REMOTE static char *bulk(rpcponger_state *s, uint64_t n)
{
    (void)s;
    if (n > 8u << 20)
        n = 8u << 20;
    char *t = hp_alloc(n + 1);
    memset(t, 'x', n);
    t[n] = '\0';
    return t;
}
