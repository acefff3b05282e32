/* The hot imports of interface `standard` in the canonical ABI, in C: the
 * wasm host's addon lifts their arguments straight from the component's
 * linear memory into the worker binding's hw_* values and lowers the
 * results straight into it (docs/wasm-lanes.md, step 4), with no msgpack
 * and no JavaScript value in between.  Once the host is bound (ready()),
 * host.mjs's hand imports for receive, send-request(s), send-response,
 * send-and-await-response and the three blob calls are one call here each;
 * over a socket abi.mjs does the same in JavaScript.
 *
 * The lifting, the lowering and their checks are cabi.c's, free of
 * Node-API; this file gives it the component's memory, its cabi_realloc
 * and a trap as Node-API has them: a trap is an Error thrown, saying what
 * was wrong, and the component traps (only it: the host sends TRAP).
 *
 *   bind(memory, realloc, args)  the component's WebAssembly.Memory, its
 *                     cabi_realloc, and an ArrayBuffer of 16 u32 through
 *                     which host.mjs passes each call's flat core
 *                     arguments (written there before the call, in the
 *                     import's order), kept for the host's life.
 *   receive(buf)      args [ret]: the next message, lowered at ret.
 *   sendRequest(buf)  args [params]: send-request's parameters at params.
 *   sendRequests(buf) args [ptr, len]: each in turn, as send-request.
 *   sendResponse(buf) args: send-response's 14 flat arguments.
 *   sendAndAwait(buf) args [params, ret]: the result lowered at ret.
 *   hasBlob()         1 or 0.
 *   getBlob(buf), lastBlob(buf)  args [ret]: option<lazy-load-blob> at ret.
 *
 * buf is memory.buffer as the caller has it: the memory a call starts
 * with.  Once cabi_realloc has been called (it may grow the memory,
 * detaching buf), the memory's buffer is fetched again when cabi.c asks
 * for the memory. */
#include "link_int.h"

#include "cabi.h"

#include <stdio.h>

static napi_ref mem_ref;     /* the component's WebAssembly.Memory */
static napi_ref realloc_ref; /* its cabi_realloc */
static uint32_t *args;       /* the flat arguments (bind's ArrayBuffer) */
#define NARGS 16

/* The call under way: its env, the memory it was given (until an
 * allocation), and cabi_realloc once fetched. */
static struct {
    napi_env env;
    uint8_t *base; /* NULL: fetch memory.buffer again */
    size_t len;
    napi_value realloc_fn; /* NULL: not fetched yet in this call */
} cur;

/* ----------------------------------------------------------- memory */

/* buf's bytes; false (thrown) when it is no ArrayBuffer. */
static bool mem_of(napi_env env, napi_value buf, uint8_t **base, size_t *len)
{
    void *data;
    if (napi_get_arraybuffer_info(env, buf, &data, len) != napi_ok) {
        hcl_fail(env, NULL, "not the component's memory buffer");
        return false;
    }
    *base = data;
    return true;
}

/* The memory's buffer now (after a cabi_realloc, which may have grown
 * it). */
static bool mem_fresh(napi_env env, uint8_t **base, size_t *len)
{
    napi_value mem, buf;
    bool pending;
    if (napi_get_reference_value(env, mem_ref, &mem) != napi_ok ||
        napi_get_named_property(env, mem, "buffer", &buf) != napi_ok) {
        if (napi_is_exception_pending(env, &pending) != napi_ok || !pending)
            hcl_fail(env, NULL, "cannot read the component's memory");
        return false;
    }
    return mem_of(env, buf, base, len);
}

/* cabi.c's g->mem: the call's buffer, or memory.buffer after an
 * allocation. */
static uint8_t *a_mem(hca_guest *g, size_t *len)
{
    if (cur.base == NULL && !mem_fresh(cur.env, &cur.base, &cur.len))
        return NULL;
    *len = cur.len;
    return cur.base;
}

/* cabi.c's g->alloc: cabi_realloc(0, 0, align, size), or false with the
 * exception pending (the guest trapped, or gave no number). */
static bool a_alloc(hca_guest *g, uint32_t align, uint32_t size, uint32_t *out)
{
    napi_env env = cur.env;
    napi_value argv[4], undef, r;
    int32_t p;
    cur.base = NULL; /* the memory may grow */
    if (cur.realloc_fn == NULL &&
        napi_get_reference_value(env, realloc_ref, &cur.realloc_fn) != napi_ok)
        return false;
    napi_get_undefined(env, &undef);
    if (napi_create_uint32(env, 0, &argv[0]) != napi_ok ||
        napi_create_uint32(env, align, &argv[2]) != napi_ok ||
        napi_create_uint32(env, size, &argv[3]) != napi_ok)
        return false;
    argv[1] = argv[0];
    if (napi_call_function(env, undef, cur.realloc_fn, 4, argv, &r) != napi_ok)
        return false;
    if (napi_get_value_int32(env, r, &p) != napi_ok) {
        hcl_fail(env, NULL, "cabi_realloc returned no address");
        return false;
    }
    *out = (uint32_t)p;
    return true;
}

/* cabi.c's g->trap: an Error thrown, "what: why" (why alone without
 * what). */
static void a_trap(hca_guest *g, const char *what, const char *why)
{
    char msg[256];
    if (what == NULL) {
        hcl_fail(cur.env, NULL, why);
        return;
    }
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    hcl_fail(cur.env, NULL, msg);
}

/* The binding lends the blob it keeps (no copy). */
static const hw_blob *a_lend_blob(hca_guest *g, bool last)
{
    return last ? hcw_binding_last_blob() : hcw_binding_blob();
}

/* The component's: its calls go to the binding's table. */
static hca_guest guest = {.host = &hcl_table,
                          .mem = a_mem,
                          .alloc = a_alloc,
                          .trap = a_trap,
                          .lend_blob = a_lend_blob};

/* The call's one argument, memory.buffer, as the call's memory: false
 * (thrown) when unbound. */
static bool call_mem(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    cur.env = env;
    cur.base = NULL;
    cur.realloc_fn = NULL;
    if (!hcl_bound || args == NULL)
        return hcl_fail(env, NULL, "the canonical ABI calls before bind"),
               false;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 1)
        return hcl_fail(env, NULL, "too few arguments"), false;
    return mem_of(env, argv[0], &cur.base, &cur.len);
}

/* --------------------------------------------------- the functions */

napi_value hcl_cabi_bind(napi_env env, napi_callback_info info)
{
    size_t argc = 3;
    napi_value argv[3];
    void *data;
    size_t len;
    napi_valuetype t;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 3 || napi_typeof(env, argv[1], &t) != napi_ok ||
        t != napi_function ||
        napi_get_arraybuffer_info(env, argv[2], &data, &len) != napi_ok ||
        len < NARGS * sizeof(uint32_t))
        return hcl_fail(env, NULL,
                        "bind(memory, realloc, args) wants a memory, a "
                        "function and an ArrayBuffer of 16 u32");
    if (mem_ref != NULL)
        return hcl_fail(env, NULL, "bound already");
    if (napi_create_reference(env, argv[0], 1, &mem_ref) != napi_ok ||
        napi_create_reference(env, argv[1], 1, &realloc_ref) != napi_ok)
        return hcl_fail(env, NULL, "cannot keep the memory");
    /* (an ArrayBuffer made as such lives off the heap: data never moves;
     * the reference keeps it) */
    napi_ref keep;
    if (napi_create_reference(env, argv[2], 1, &keep) != napi_ok)
        return hcl_fail(env, NULL, "cannot keep the arguments' buffer");
    uint8_t *base;
    if (!mem_fresh(env, &base, &len))
        return hcl_fail(env, NULL, "not a WebAssembly.Memory");
    args = data;
    return NULL;
}

napi_value hcl_cabi_receive(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_receive(&guest, args[0]);
    return NULL;
}

napi_value hcl_cabi_send_request(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_send_request(&guest, args[0]);
    return NULL;
}

napi_value hcl_cabi_send_requests(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_send_requests(&guest, args[0], args[1]);
    return NULL;
}

napi_value hcl_cabi_send_response(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_send_response(&guest, args);
    return NULL;
}

napi_value hcl_cabi_send_and_await(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_send_and_await(&guest, args[0], args[1]);
    return NULL;
}

napi_value hcl_cabi_has_blob(napi_env env, napi_callback_info info)
{
    napi_value r;
    napi_create_uint32(env, hcl_bound && hca_has_blob(&guest), &r);
    return r;
}

napi_value hcl_cabi_get_blob(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_get_blob(&guest, args[0]);
    return NULL;
}

napi_value hcl_cabi_last_blob(napi_env env, napi_callback_info info)
{
    if (call_mem(env, info))
        hca_last_blob(&guest, args[0]);
    return NULL;
}
