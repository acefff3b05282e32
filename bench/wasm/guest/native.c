/* The guest's cost a message, native (bench/wasm/guest/run): the RPC
 * benchmark's callee (rpcponger.so) loaded as the worker loads a process,
 * with a host table of its own that hands it the same request again and
 * again and takes its answers, all on one thread.  What it times is the
 * guest's whole turn: receive's result built (malloc'd blocks for the
 * guest to free, as the worker's binding gives them), the dispatch, the
 * task, the JSON, send-response read.  w2c.c and v8.mjs do the same with
 * the process built as a component.
 *
 *   guest_native <rpcponger.so> <messages> <warm-up messages>
 *
 * prints one JSON line: the messages timed, ns a message, the answers and
 * the sum of their bytes, warm-up included (the same in all three when they
 * did the same work). */
#include "abi/native.h"
#include "common/abi_types.h"
#include "count.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
    fprintf(stderr, "guest_native: %s\n", what);
    exit(1);
}

/* An address as hosts give them: one block (src/common/abi_types.c). */
static void addr(hw_address *a, const char *node, const char *name)
{
    if (hcc_address_from_parts(node, strlen(node), name, strlen(name),
                               "rpcbench", 8, "bench.os", 8, a) != 0)
        die("out of memory");
}

static void h_print(void *c, uint8_t v, const char *m)
{
    (void)c;
    (void)v;
    fprintf(stderr, "guest_native: the process says: %s\n", m);
}

static void h_our(void *c, hw_address *o)
{
    (void)c;
    addr(o, "bench.os", "rpcponger");
}

static void h_get_on_exit(void *c, hw_on_exit *o)
{
    (void)c;
    memset(o, 0, sizeof *o);
}

static void h_set_on_exit(void *c, const hw_on_exit *o)
{
    (void)c;
    (void)o;
}

static bool h_get_state(void *c, hw_bytes *o)
{
    (void)c;
    (void)o;
    return false;
}

static bool h_set_state(void *c, const uint8_t *b, size_t l)
{
    (void)c;
    (void)b;
    (void)l;
    return true;
}

static bool h_clear_state(void *c)
{
    (void)c;
    return true;
}

static hw_spawn_error h_spawn(void *c, const char *n, const char *p,
                              const hw_on_exit *oe, const hw_capability *rc,
                              size_t rl, const hw_process_id *gp,
                              const char *const *gpar, size_t gl, bool pub,
                              hw_process_id *o)
{
    (void)c, (void)n, (void)p, (void)oe, (void)rc, (void)rl, (void)gp;
    (void)gpar, (void)gl, (void)pub, (void)o;
    die("the process spawned");
    return HW_SPAWN_NO_FILE_AT_PATH;
}

static void h_caps(void *c, const hw_capability *k, size_t l)
{
    (void)c;
    (void)k;
    (void)l;
}

static void h_our_caps(void *c, hw_capability_list *o)
{
    (void)c;
    o->ptr = NULL;
    o->len = 0;
}

/* The next request, or the figures and the end after the last. */
static void h_receive(void *c, hw_receive_result *o)
{
    (void)c;
    count_receive("native");
    memset(o, 0, sizeof *o);
    addr(&o->source, "bench.os", "rpcpinger");
    o->message.kind = HW_MESSAGE_REQUEST;
    o->message.request.has_expects_response = true;
    o->message.request.expects_response = 30;
    char body[40];
    int bl = snprintf(body, sizeof body, "{\"Pong\":%ld}", n_recv);
    o->message.request.body.ptr = malloc((size_t)bl);
    if (o->message.request.body.ptr == NULL)
        die("out of memory");
    memcpy(o->message.request.body.ptr, body, (size_t)bl);
    o->message.request.body.len = (size_t)bl;
}

static bool h_has_blob(void *c)
{
    (void)c;
    return false;
}

static bool h_blob(void *c, hw_blob *o)
{
    (void)c;
    (void)o;
    return false;
}

static void h_send_request(void *c, const hw_address *t, const hw_request *r,
                           const hw_bytes *x, const hw_blob *b)
{
    (void)c, (void)t, (void)r, (void)x, (void)b;
    die("the process sent a request");
}

static void h_send_response(void *c, const hw_response *r, const hw_blob *b)
{
    (void)c;
    (void)b;
    n_answers++;
    for (size_t i = 0; i < r->body.len; i++)
        answer_sum += r->body.ptr[i];
}

/* Its only call: the log's drive at init (vfs), answered offline, so it
 * logs to the terminal alone. */
static int h_await(void *c, const hw_address *t, const hw_request *r,
                   const hw_blob *b, hw_await_result *o)
{
    (void)c;
    (void)r;
    (void)b;
    memset(o, 0, sizeof *o);
    o->is_err = true;
    o->error.kind = HW_SEND_ERROR_OFFLINE;
    addr(&o->error.target, t->node, t->process.process_name);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (n_timed = atol(argv[2])) <= 0 ||
        (n_warm = atol(argv[3])) < 0)
        die("usage: guest_native <rpcponger.so> <messages> <warm-up>");
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (so == NULL)
        die(dlerror());
    hwn_entry_fn entry = (hwn_entry_fn)dlsym(so, HWN_ENTRY_SYMBOL);
    if (entry == NULL)
        die("no hwn_entry in the shared object");
    static const hwn_host host = {
        .abi_version = HW_ABI_VERSION,
        .size = HWN_MIN_SIZE,
        .print_to_terminal = h_print,
        .our = h_our,
        .get_on_exit = h_get_on_exit,
        .set_on_exit = h_set_on_exit,
        .get_state = h_get_state,
        .set_state = h_set_state,
        .clear_state = h_clear_state,
        .spawn = h_spawn,
        .save_capabilities = h_caps,
        .drop_capabilities = h_caps,
        .our_capabilities = h_our_caps,
        .receive = h_receive,
        .has_blob = h_has_blob,
        .get_blob = h_blob,
        .last_blob = h_blob,
        .send_request = h_send_request,
        .send_response = h_send_response,
        .send_and_await_response = h_await,
    };
    entry(&host, "rpcponger:rpcbench:bench.os@bench.os");
    die("the process returned before its last message");
}
