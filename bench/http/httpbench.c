/* The HTTP and WebSocket benchmark app (bench/http/run): a hyperprocess
 * served by the node's http-server, unauthenticated.
 *
 *   POST /httpbench:httpbench:bench.os/api/sum
 *        {"name":"bench","values":[1,2,3,4,5,6,7,8]}
 *     -> {"name":"bench","count":8,"sum":36}
 *   WS   /httpbench:httpbench:bench.os/ws: each text message echoed back.
 *
 * nginx (the same bytes, static) and a Node.js server (the same JSON work)
 * answer the same request beside it; see docs/benchmarks.md. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef HP_LIST(int64_t) i64_list;

typedef struct sum_request {
    char *name;
    i64_list values;
} sum_request;

typedef struct sum_reply {
    char *name;
    uint64_t count;
    int64_t sum;
} sum_reply;

typedef struct httpbench_state {
    uint64_t unused;
} httpbench_state;

HYPERPROCESS(
    httpbench_state, .name = "httpbench",
    .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api", .authenticated = false),
                              HP_WS_BINDING("/ws", .authenticated = false)),
    .save_config = HP_SAVE_NEVER, .wit_world = "httpbench-v0");

/* The JSON job: parse the request, answer its name, count and sum.  The
 * values are the client's: the sum saturates at INT64_MAX / INT64_MIN
 * rather than overflow (undefined behaviour). */
HP_HTTP_ROUTE("POST", "/api/sum")
static sum_reply sum(httpbench_state *s, const sum_request *req)
{
    (void)s;
    sum_reply r = {.name = req->name, .count = req->values.len, .sum = 0};
    for (size_t i = 0; i < req->values.len; i++) {
        int64_t v = req->values.ptr[i];
        if (__builtin_add_overflow(r.sum, v, &r.sum))
            r.sum = v > 0 ? INT64_MAX : INT64_MIN;
    }
    return r;
}

/* WebSocket echo: each text message back to its sender. */
HP_WS
static void echo(httpbench_state *s, uint32_t channel_id,
                 hp_ws_message_type type, const hw_blob *blob)
{
    (void)s;
    if (type == HP_WS_TEXT)
        hp_ws_push(channel_id, HP_WS_TEXT, blob->bytes.ptr, blob->bytes.len);
}
