/* The hot imports of interface `standard` in the canonical ABI, in C: the
 * wasm host's addon lifts their arguments straight from the component's
 * linear memory into the worker binding's hw_* values and lowers the
 * results straight into it (docs/wasm-lanes.md, step 4), with no msgpack
 * and no JavaScript value in between.  Once the host is bound (ready()),
 * host.mjs's hand imports for receive, send-request(s), send-response,
 * send-and-await-response and the three blob calls are one call here each;
 * over a socket abi.mjs does the same in JavaScript.
 *
 * The layouts are cabi_layout.h's (the guest's abi_wasm.c checks its own
 * against the same table).  Linear memory is a byte array here, addressed
 * by u32 offsets; every offset and length the component hands over is
 * checked against the memory's size, and every string it hands over must
 * be UTF-8 without NUL: otherwise the call throws an Error saying what was
 * wrong, and the component traps (only it: the host sends TRAP).
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
 * buf is memory.buffer as the caller has it.  A result's strings and lists
 * are allocated with cabi_realloc, all before the first byte is written:
 * an allocation may grow the memory (detaching buf), so the memory's
 * buffer is fetched again once, after them.  An allocation of 0 bytes is
 * asked at most once a result and given to each empty string and list in
 * it (cabi_realloc's answer to one is never freed nor written: abi_wasm.c's
 * cw_empty).  The node's strings in a result are checked to be UTF-8: one
 * that is not (the node passes on a native process's strings unchecked)
 * is lowered with U+FFFD in place of each ill-formed sequence, and a line
 * in the node's log says so; a lane peer's that is not never gets here (the
 * binding gives its lane up, lane_table.c). */
#include "link_int.h"

#include "../common/cabi_layout.h"
#include "../common/common.h"
#include "hyperc/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "linear memory is little-endian: this host must be too"
#endif

static napi_ref mem_ref;     /* the component's WebAssembly.Memory */
static napi_ref realloc_ref; /* its cabi_realloc */
static uint32_t *args;       /* the flat arguments (bind's ArrayBuffer) */
#define NARGS 16

/* ----------------------------------------------------------- memory */

/* The component's memory as the call sees it. */
typedef struct gmem {
    uint8_t *base;
    size_t len;
} gmem;

static bool mem_of(napi_env env, napi_value buf, gmem *m)
{
    void *data;
    if (napi_get_arraybuffer_info(env, buf, &data, &m->len) != napi_ok) {
        hcl_fail(env, NULL, "not the component's memory buffer");
        return false;
    }
    m->base = data;
    return true;
}

/* The memory's buffer now (after a cabi_realloc, which may have grown
 * it). */
static bool mem_fresh(napi_env env, gmem *m)
{
    napi_value mem, buf;
    bool pending;
    if (napi_get_reference_value(env, mem_ref, &mem) != napi_ok ||
        napi_get_named_property(env, mem, "buffer", &buf) != napi_ok) {
        if (napi_is_exception_pending(env, &pending) != napi_ok || !pending)
            hcl_fail(env, NULL, "cannot read the component's memory");
        return false;
    }
    return mem_of(env, buf, m);
}

/* The call's one argument, memory.buffer: false (thrown) when unbound. */
static bool call_mem(napi_env env, napi_callback_info info, gmem *m)
{
    size_t argc = 1;
    napi_value argv[1];
    if (!hcl_bound || args == NULL)
        return hcl_fail(env, NULL, "the canonical ABI calls before bind"),
               false;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 1)
        return hcl_fail(env, NULL, "too few arguments"), false;
    return mem_of(env, argv[0], m);
}

/* Throw a trap's message: `what` (the import) and why. */
static napi_value trap(napi_env env, const char *what, const char *fmt, ...)
{
    char why[200], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s: %s", what, why);
    return hcl_fail(env, NULL, msg);
}

/* ------------------------------------------------------------ arena */

/* The NUL-terminated copies of a call's strings and its capability arrays
 * (libhyperc's arena, src/guest/arena.c): blocks that never move (the
 * values point into them), released at the next call (hp_arena_reset,
 * which keeps the first).  Zeroed: an arena just initialised. */
static hp_arena arena;

/* ------------------------------------------ lifting (guest -> binding) */

/* What a lifting reads from and, when it fails, why (for the trap). */
typedef struct lift {
    gmem m;
    uint64_t size; /* the frame's size at most, so far (each string and
                      list with the 5 bytes of a msgpack header) */
    char why[200];
} lift;

static bool lf_fail(lift *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->why, sizeof l->why, fmt, ap);
    va_end(ap);
    return false;
}

/* A call's frame goes to the node whole: one over the link's limit traps
 * the component, as over a socket (host.mjs), before anything is sent. */
static bool lf_fits(lift *l)
{
    if (l->size + 64 > HCW_MAX_FRAME)
        return lf_fail(l,
                       "a call of %llu bytes or more, over the link's "
                       "frame limit (%u bytes)",
                       (unsigned long long)l->size, HCW_MAX_FRAME);
    return true;
}

/* The n bytes at ptr, if they are inside the memory. */
static bool lf_span(lift *l, uint32_t ptr, uint64_t n, const uint8_t **p)
{
    *p = NULL;
    if ((uint64_t)ptr + n > l->m.len)
        return lf_fail(l,
                       "%llu bytes at %u, outside the component's memory "
                       "(%zu bytes)",
                       (unsigned long long)n, ptr, l->m.len);
    *p = l->m.base + ptr;
    return true;
}

static bool lf_u8(lift *l, uint32_t at, uint8_t *v)
{
    const uint8_t *p;
    if (!lf_span(l, at, 1, &p))
        return false;
    *v = *p;
    return true;
}

static bool lf_u32(lift *l, uint32_t at, uint32_t *v)
{
    const uint8_t *p;
    if (!lf_span(l, at, 4, &p))
        return false;
    memcpy(v, p, 4);
    return true;
}

static bool lf_u64(lift *l, uint32_t at, uint64_t *v)
{
    const uint8_t *p;
    if (!lf_span(l, at, 8, &p))
        return false;
    memcpy(v, p, 8);
    return true;
}

/* An option's or a variant's tag of `cases` cases. */
static bool lf_tag(lift *l, uint32_t at, uint8_t cases, uint8_t *tag)
{
    if (!lf_u8(l, at, tag))
        return false;
    if (*tag >= cases)
        return lf_fail(l, "a tag %u of a type with %u cases", *tag, cases);
    return true;
}

/* A bool: any byte but 0 is true (the canonical ABI's lifting). */
static bool lf_bool(lift *l, uint32_t at, bool *v)
{
    uint8_t b;
    if (!lf_u8(l, at, &b))
        return false;
    *v = b != 0;
    return true;
}

/* The string (ptr, len): UTF-8 without NUL (C strings carry it to the
 * node), copied with a NUL into the arena. */
static bool lf_str_of(lift *l, uint32_t ptr, uint32_t len, char **out)
{
    const uint8_t *p;
    if (!lf_span(l, ptr, len, &p))
        return false;
    if (memchr(p, 0, len) != NULL)
        return lf_fail(l, "a string with a NUL character, which the node "
                          "cannot carry");
    if (!hcc_utf8_valid(p, len))
        return lf_fail(l, "a string of %u bytes at %u that is not UTF-8", len,
                       ptr);
    l->size += 5 + (uint64_t)len;
    *out = hp_arena_strndup(&arena, (const char *)p, len);
    if (*out == NULL)
        hcw_die("out of memory");
    return true;
}

static bool lf_str(lift *l, uint32_t at, char **out)
{
    uint32_t ptr, len;
    return lf_u32(l, at + CW_LIST_PTR, &ptr) &&
           lf_u32(l, at + CW_LIST_LEN, &len) && lf_str_of(l, ptr, len, out);
}

/* option<string>: NULL when none. */
static bool lf_opt_str(lift *l, uint32_t at, char **out)
{
    uint8_t some;
    *out = NULL;
    if (!lf_tag(l, at, 2, &some))
        return false;
    return !some || lf_str(l, at + CW_OPT_LIST_VAL, out);
}

/* list<u8> (ptr, len): lent in place (nothing in the guest runs while the
 * binding has it). */
static bool lf_bytes_of(lift *l, uint32_t ptr, uint32_t len, hw_bytes *out)
{
    const uint8_t *p;
    if (!lf_span(l, ptr, len, &p))
        return false;
    l->size += 5 + (uint64_t)len;
    out->ptr = (uint8_t *)p;
    out->len = len;
    return true;
}

static bool lf_bytes(lift *l, uint32_t at, hw_bytes *out)
{
    uint32_t ptr, len;
    return lf_u32(l, at + CW_LIST_PTR, &ptr) &&
           lf_u32(l, at + CW_LIST_LEN, &len) && lf_bytes_of(l, ptr, len, out);
}

static bool lf_opt_bytes(lift *l, uint32_t at, bool *has, hw_bytes *out)
{
    uint8_t some;
    if (!lf_tag(l, at, 2, &some))
        return false;
    *has = some;
    return !some || lf_bytes(l, at + CW_OPT_LIST_VAL, out);
}

static bool lf_addr(lift *l, uint32_t at, hw_address *a)
{
    uint32_t p = at + CW_ADDR_PROCESS;
    return lf_str(l, at + CW_ADDR_NODE, &a->node) &&
           lf_str(l, p + CW_PID_NAME, &a->process.process_name) &&
           lf_str(l, p + CW_PID_PACKAGE, &a->process.package_name) &&
           lf_str(l, p + CW_PID_PUBLISHER, &a->process.publisher_node);
}

static bool lf_caps_of(lift *l, uint32_t ptr, uint32_t len,
                       hw_capability_list *c)
{
    const uint8_t *p;
    if (!lf_span(l, ptr, (uint64_t)len * CW_CAP_SIZE, &p))
        return false;
    l->size += 5 + 2 * (uint64_t)len; /* (each cap an array, its issuer
                                         one of 2, its process one of 3) */
    c->len = len;
    c->ptr = hp_arena_alloc(&arena, (size_t)len * sizeof *c->ptr);
    if (c->ptr == NULL)
        hcw_die("out of memory");
    for (uint32_t i = 0; i < len; i++) {
        uint32_t at = ptr + i * CW_CAP_SIZE;
        if (!lf_addr(l, at + CW_CAP_ISSUER, &c->ptr[i].issuer) ||
            !lf_str(l, at + CW_CAP_PARAMS, &c->ptr[i].params))
            return false;
    }
    return true;
}

static bool lf_caps(lift *l, uint32_t at, hw_capability_list *c)
{
    uint32_t ptr, len;
    return lf_u32(l, at + CW_LIST_PTR, &ptr) &&
           lf_u32(l, at + CW_LIST_LEN, &len) && lf_caps_of(l, ptr, len, c);
}

static bool lf_request(lift *l, uint32_t at, hw_request *r)
{
    uint8_t expects;
    if (!lf_bool(l, at + CW_REQUEST_INHERIT, &r->inherit) ||
        !lf_tag(l, at + CW_REQUEST_EXPECTS, 2, &expects))
        return false;
    r->has_expects_response = expects;
    if (expects && !lf_u64(l, at + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL,
                           &r->expects_response))
        return false;
    return lf_bytes(l, at + CW_REQUEST_BODY, &r->body) &&
           lf_opt_str(l, at + CW_REQUEST_METADATA, &r->metadata) &&
           lf_caps(l, at + CW_REQUEST_CAPS, &r->capabilities);
}

static bool lf_opt_blob(lift *l, uint32_t at, bool *has, hw_blob *b)
{
    uint8_t some;
    if (!lf_tag(l, at, 2, &some))
        return false;
    *has = some;
    uint32_t v = at + CW_OPT_BLOB_VAL;
    return !some || (lf_opt_str(l, v + CW_BLOB_MIME, &b->mime) &&
                     lf_bytes(l, v + CW_BLOB_BYTES, &b->bytes));
}

/* -------------------------------------------- lowering (binding -> guest) */

/* A result is lowered in two walks of the same code: the first (plan)
 * lists the size of every string and list in order, the allocations are
 * made, and the second (write) writes the values with their addresses,
 * taken in the same order. */
typedef struct alloc_item {
    uint32_t size, align, ptr;
    bool lossy; /* a string that is not UTF-8, lowered as hcc_utf8_lossy's */
} alloc_item;

typedef struct lower {
    bool write;
    size_t lossy;     /* strings that are not UTF-8 (the plan's count) */
    alloc_item *v;    /* the allocations, in order */
    size_t n, cap, i; /* made, room, next to take (write) */
    uint8_t *base;    /* the memory (write) */
} lower;

static void put_u8(lower *w, uint32_t at, uint8_t v)
{
    if (w->write)
        w->base[at] = v;
}

static void put_u32(lower *w, uint32_t at, uint32_t v)
{
    if (w->write)
        memcpy(w->base + at, &v, 4);
}

static void put_u64(lower *w, uint32_t at, uint64_t v)
{
    if (w->write)
        memcpy(w->base + at, &v, 8);
}

/* A string or list of n bytes at `at` (src copied into it, unless NULL:
 * the caller fills it): its address in the write walk, 0 in the plan. */
static uint32_t put_list(lower *w, uint32_t at, const void *src, size_t n,
                         uint32_t align, uint32_t count)
{
    if (!w->write) {
        if (n > UINT32_MAX)
            hcw_die("a message too large for the component's memory");
        if (w->n == w->cap) {
            w->cap = w->cap ? 2 * w->cap : 64;
            w->v = realloc(w->v, w->cap * sizeof *w->v);
            if (w->v == NULL)
                hcw_die("out of memory");
        }
        w->v[w->n++] = (alloc_item){(uint32_t)n, align, 0, false};
        return 0;
    }
    alloc_item *it = &w->v[w->i++];
    if (src != NULL && n > 0)
        memcpy(w->base + it->ptr, src, n);
    put_u32(w, at + CW_LIST_PTR, it->ptr);
    put_u32(w, at + CW_LIST_LEN, count);
    return it->ptr;
}

/* A string from the node (or a lane peer) is UTF-8 by the protocol, but
 * the node passes on what a native process wrote without looking: one
 * that is not is lowered with U+FFFD in place of each ill-formed sequence
 * (and the call says so once, lower_value), which is what the component
 * could hold of it; the message still comes. */
static void put_str(lower *w, uint32_t at, const char *s)
{
    size_t n = strlen(s);
    if (!w->write) {
        bool ok = hcc_utf8_valid((const uint8_t *)s, n);
        if (!ok)
            n = hcc_utf8_lossy((const uint8_t *)s, n, NULL);
        put_list(w, at, NULL, n, 1, 0);
        w->v[w->n - 1].lossy = !ok;
        w->lossy += !ok;
        return;
    }
    const alloc_item *it = &w->v[w->i];
    if (!it->lossy) {
        put_list(w, at, s, n, 1, (uint32_t)n);
        return;
    }
    uint32_t p = put_list(w, at, NULL, it->size, 1, it->size);
    hcc_utf8_lossy((const uint8_t *)s, n, w->base + p);
}

static void put_opt_str(lower *w, uint32_t at, const char *s)
{
    put_u8(w, at, s != NULL);
    if (s != NULL)
        put_str(w, at + CW_OPT_LIST_VAL, s);
}

static void put_bytes(lower *w, uint32_t at, const hw_bytes *b)
{
    put_list(w, at, b->ptr, b->len, 1, (uint32_t)b->len);
}

static void put_opt_bytes(lower *w, uint32_t at, bool has, const hw_bytes *b)
{
    put_u8(w, at, has);
    if (has)
        put_bytes(w, at + CW_OPT_LIST_VAL, b);
}

static void put_addr(lower *w, uint32_t at, const hw_address *a)
{
    uint32_t p = at + CW_ADDR_PROCESS;
    put_str(w, at + CW_ADDR_NODE, a->node);
    put_str(w, p + CW_PID_NAME, a->process.process_name);
    put_str(w, p + CW_PID_PACKAGE, a->process.package_name);
    put_str(w, p + CW_PID_PUBLISHER, a->process.publisher_node);
}

static void put_caps(lower *w, uint32_t at, const hw_capability_list *c)
{
    uint32_t p = put_list(w, at, NULL, c->len * (size_t)CW_CAP_SIZE,
                          CW_CAP_ALIGN, (uint32_t)c->len);
    for (size_t i = 0; i < c->len; i++) {
        uint32_t e = p + (uint32_t)i * CW_CAP_SIZE;
        put_addr(w, e + CW_CAP_ISSUER, &c->ptr[i].issuer);
        put_str(w, e + CW_CAP_PARAMS, c->ptr[i].params);
    }
}

static void put_request(lower *w, uint32_t at, const hw_request *r)
{
    put_u8(w, at + CW_REQUEST_INHERIT, r->inherit);
    put_u8(w, at + CW_REQUEST_EXPECTS, r->has_expects_response);
    if (r->has_expects_response)
        put_u64(w, at + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL,
                r->expects_response);
    put_bytes(w, at + CW_REQUEST_BODY, &r->body);
    put_opt_str(w, at + CW_REQUEST_METADATA, r->metadata);
    put_caps(w, at + CW_REQUEST_CAPS, &r->capabilities);
}

static void put_response(lower *w, uint32_t at, const hw_response *r)
{
    put_u8(w, at + CW_RESPONSE_INHERIT, r->inherit);
    put_bytes(w, at + CW_RESPONSE_BODY, &r->body);
    put_opt_str(w, at + CW_RESPONSE_METADATA, r->metadata);
    put_caps(w, at + CW_RESPONSE_CAPS, &r->capabilities);
}

static void put_message(lower *w, uint32_t at, const hw_message *m)
{
    if (m->kind == HW_MESSAGE_REQUEST) {
        put_u8(w, at, 0);
        put_request(w, at + CW_MESSAGE_PAYLOAD, &m->request);
    } else {
        put_u8(w, at, 1);
        put_response(w, at + CW_MESSAGE_PAYLOAD, &m->response);
        put_opt_bytes(w, at + CW_MESSAGE_CONTEXT, m->has_context, &m->context);
    }
}

static void put_opt_blob(lower *w, uint32_t at, const hw_blob *b)
{
    put_u8(w, at, b != NULL);
    if (b == NULL)
        return;
    uint32_t v = at + CW_OPT_BLOB_VAL;
    put_opt_str(w, v + CW_BLOB_MIME, b->mime);
    put_bytes(w, v + CW_BLOB_BYTES, &b->bytes);
}

static void put_send_error(lower *w, uint32_t at, const hw_send_error *e)
{
    put_u8(w, at, e->kind == HW_SEND_ERROR_OFFLINE ? 0 : 1);
    put_addr(w, at + CW_SEND_ERROR_TARGET, &e->target);
    put_message(w, at + CW_SEND_ERROR_MESSAGE, &e->message);
    put_opt_blob(w, at + CW_SEND_ERROR_BLOB, e->has_blob ? &e->blob : NULL);
}

/* The values a walk lowers: one of these, at `ret`. */
typedef enum { LOW_RECEIVE, LOW_AWAIT, LOW_BLOB } low_kind;
typedef struct low_value {
    low_kind kind;
    const hw_receive_result *r; /* LOW_RECEIVE */
    const hw_await_result *a;   /* LOW_AWAIT */
    const hw_blob *b;           /* LOW_BLOB (NULL: none) */
} low_value;

static void walk(lower *w, uint32_t ret, const low_value *v)
{
    switch (v->kind) {
    case LOW_RECEIVE:
        put_u8(w, ret, v->r->is_err);
        if (!v->r->is_err) {
            put_addr(w, ret + CW_RESULT_PAYLOAD, &v->r->source);
            put_message(w, ret + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE,
                        &v->r->message);
        } else {
            put_send_error(w, ret + CW_RESULT_PAYLOAD, &v->r->error);
            put_opt_bytes(w, ret + CW_RECEIVE_ERR_CONTEXT, v->r->has_context,
                          &v->r->context);
        }
        return;
    case LOW_AWAIT:
        put_u8(w, ret, v->a->is_err);
        if (!v->a->is_err) {
            put_addr(w, ret + CW_RESULT_PAYLOAD, &v->a->source);
            put_message(w, ret + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE,
                        &v->a->message);
        } else {
            put_send_error(w, ret + CW_RESULT_PAYLOAD, &v->a->error);
        }
        return;
    case LOW_BLOB: put_opt_blob(w, ret, v->b); return;
    }
}

static lower low; /* its allocation list is reused call after call */

/* cabi_realloc(0, 0, align, size): the address, or false with the
 * exception pending (the guest trapped, or gave no number). */
static bool guest_alloc(napi_env env, napi_value fn, uint32_t align,
                        uint32_t size, uint32_t *out)
{
    napi_value argv[4], undef, r;
    int32_t p;
    napi_get_undefined(env, &undef);
    if (napi_create_uint32(env, 0, &argv[0]) != napi_ok ||
        napi_create_uint32(env, align, &argv[2]) != napi_ok ||
        napi_create_uint32(env, size, &argv[3]) != napi_ok)
        return false;
    argv[1] = argv[0];
    if (napi_call_function(env, undef, fn, 4, argv, &r) != napi_ok)
        return false;
    if (napi_get_value_int32(env, r, &p) != napi_ok) {
        hcl_fail(env, NULL, "cabi_realloc returned no address");
        return false;
    }
    *out = (uint32_t)p;
    return true;
}

/* Lower v at ret (ret_size bytes) into the memory m: plan, allocate,
 * fetch the memory again, write.  false: thrown (a trap of the
 * component's). */
static bool lower_value(napi_env env, const char *what, gmem *m, uint32_t ret,
                        uint32_t ret_size, const low_value *v)
{
    if ((uint64_t)ret + ret_size > m->len) {
        trap(env, what,
             "a result area of %u bytes at %u, outside the "
             "component's memory (%zu bytes)",
             ret_size, ret, m->len);
        return false;
    }
    low.write = false;
    low.lossy = 0;
    low.n = 0;
    walk(&low, ret, v);
    if (low.lossy) {
        /* the process's line in the node's log, at level 1 */
        char line[160];
        snprintf(line, sizeof line,
                 "hyperc wasm host: %s: %zu string%s not UTF-8 from the "
                 "node, each ill-formed sequence given as U+FFFD",
                 what, low.lossy, low.lossy == 1 ? "" : "s");
        hcl_table.print_to_terminal(NULL, 1, line);
    }
    if (low.n > 0) {
        napi_value fn;
        if (napi_get_reference_value(env, realloc_ref, &fn) != napi_ok)
            return false;
        bool have_empty = false;
        uint32_t empty = 0;
        for (size_t i = 0; i < low.n; i++) {
            alloc_item *it = &low.v[i];
            if (it->size > 0) {
                if (!guest_alloc(env, fn, it->align, it->size, &it->ptr))
                    return false;
                continue;
            }
            if (!have_empty && !guest_alloc(env, fn, CW_CAP_ALIGN, 0, &empty))
                return false;
            have_empty = true;
            it->ptr = empty;
        }
        if (!mem_fresh(env, m))
            return false;
        for (size_t i = 0; i < low.n; i++) {
            alloc_item *it = &low.v[i];
            if ((uint64_t)it->ptr + it->size > m->len ||
                (it->ptr & (it->align - 1)) != 0) {
                trap(env, what,
                     "cabi_realloc gave %u bytes at %u, outside "
                     "the component's memory (%zu bytes) or not "
                     "aligned to %u",
                     it->size, it->ptr, m->len, it->align);
                return false;
            }
        }
    }
    low.write = true;
    low.i = 0;
    low.base = m->base;
    walk(&low, ret, v);
    return true;
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
    gmem m;
    if (!mem_fresh(env, &m))
        return hcl_fail(env, NULL, "not a WebAssembly.Memory");
    args = data;
    return NULL;
}

napi_value hcl_cabi_receive(napi_env env, napi_callback_info info)
{
    gmem m;
    if (!call_mem(env, info, &m))
        return NULL;
    uint32_t ret = args[0];
    if ((uint64_t)ret + CW_RECEIVE_RESULT_SIZE > m.len)
        return trap(env, "receive",
                    "a result area at %u, outside the "
                    "component's memory (%zu bytes)",
                    ret, m.len);
    hw_receive_result r;
    hcl_table.receive(NULL, &r);
    low_value v = {.kind = LOW_RECEIVE, .r = &r};
    lower_value(env, "receive", &m, ret, CW_RECEIVE_RESULT_SIZE, &v);
    hw_receive_result_fini(&r);
    return NULL;
}

/* send-request's parameters at p through the table; false: l->why. */
static bool send_request_at(lift *l, uint32_t p)
{
    hw_address target = {0};
    hw_request req = {0};
    hw_bytes ctx = {0};
    hw_blob blob = {0};
    bool has_ctx, has_blob;
    const uint8_t *whole;
    hp_arena_reset(&arena);
    l->size = 0;
    if (!lf_span(l, p, CW_SEND_PARAMS_SIZE, &whole) ||
        !lf_addr(l, p + CW_SEND_PARAMS_TARGET, &target) ||
        !lf_request(l, p + CW_SEND_PARAMS_REQUEST, &req) ||
        !lf_opt_bytes(l, p + CW_SEND_PARAMS_CONTEXT, &has_ctx, &ctx) ||
        !lf_opt_blob(l, p + CW_SEND_PARAMS_BLOB, &has_blob, &blob) ||
        !lf_fits(l))
        return false;
    hcl_table.send_request(NULL, &target, &req, has_ctx ? &ctx : NULL,
                           has_blob ? &blob : NULL);
    return true;
}

napi_value hcl_cabi_send_request(napi_env env, napi_callback_info info)
{
    lift l;
    if (!call_mem(env, info, &l.m))
        return NULL;
    if (!send_request_at(&l, args[0]))
        return trap(env, "send-request", "%s", l.why);
    return NULL;
}

/* No op of its own: one SEND_REQUEST per request, in order. */
napi_value hcl_cabi_send_requests(napi_env env, napi_callback_info info)
{
    lift l;
    if (!call_mem(env, info, &l.m))
        return NULL;
    uint32_t ptr = args[0], n = args[1];
    const uint8_t *p;
    if (!lf_span(&l, ptr, (uint64_t)n * CW_SEND_PARAMS_SIZE, &p))
        return trap(env, "send-requests", "%s", l.why);
    for (uint32_t i = 0; i < n; i++)
        if (!send_request_at(&l, ptr + i * CW_SEND_PARAMS_SIZE))
            return trap(env, "send-requests", "%s", l.why);
    return NULL;
}

/* send-response's flat arguments: inherit, body (ptr, len), metadata
 * (some, ptr, len), capabilities (ptr, len), blob (some, mime some, mime
 * ptr, mime len, bytes ptr, bytes len). */
napi_value hcl_cabi_send_response(napi_env env, napi_callback_info info)
{
    lift l;
    if (!call_mem(env, info, &l.m))
        return NULL;
    const uint32_t *a = args;
    hw_response resp = {0};
    hw_blob blob = {0};
    hp_arena_reset(&arena);
    l.size = 0;
    resp.inherit = a[0] != 0;
    bool ok = lf_bytes_of(&l, a[1], a[2], &resp.body);
    if (ok && a[3] > 1)
        ok = lf_fail(&l, "a tag %u of a type with 2 cases", a[3]);
    if (ok && a[3])
        ok = lf_str_of(&l, a[4], a[5], &resp.metadata);
    if (ok)
        ok = lf_caps_of(&l, a[6], a[7], &resp.capabilities);
    if (ok && (a[8] > 1 || (a[8] && a[9] > 1)))
        ok = lf_fail(&l, "a tag %u of a type with 2 cases",
                     a[8] > 1 ? a[8] : a[9]);
    if (ok && a[8] && a[9])
        ok = lf_str_of(&l, a[10], a[11], &blob.mime);
    if (ok && a[8])
        ok = lf_bytes_of(&l, a[12], a[13], &blob.bytes);
    if (ok)
        ok = lf_fits(&l);
    if (!ok)
        return trap(env, "send-response", "%s", l.why);
    hcl_table.send_response(NULL, &resp, a[8] ? &blob : NULL);
    return NULL;
}

napi_value hcl_cabi_send_and_await(napi_env env, napi_callback_info info)
{
    lift l;
    if (!call_mem(env, info, &l.m))
        return NULL;
    uint32_t p = args[0], ret = args[1];
    if ((uint64_t)ret + CW_AWAIT_RESULT_SIZE > l.m.len)
        return trap(env, "send-and-await-response",
                    "a result area at %u, outside the component's memory "
                    "(%zu bytes)",
                    ret, l.m.len);
    hw_address target = {0};
    hw_request req = {0};
    hw_blob blob = {0};
    bool has_blob;
    const uint8_t *whole;
    hp_arena_reset(&arena);
    l.size = 0;
    if (!lf_span(&l, p, CW_AWAIT_PARAMS_SIZE, &whole) ||
        !lf_addr(&l, p + CW_AWAIT_PARAMS_TARGET, &target) ||
        !lf_request(&l, p + CW_AWAIT_PARAMS_REQUEST, &req) ||
        !lf_opt_blob(&l, p + CW_AWAIT_PARAMS_BLOB, &has_blob, &blob) ||
        !lf_fits(&l))
        return trap(env, "send-and-await-response", "%s", l.why);
    hw_await_result ar;
    memset(&ar, 0, sizeof ar);
    int rc = hcl_table.send_and_await_response(NULL, &target, &req,
                                               has_blob ? &blob : NULL, &ar);
    if (rc != 0) {
        /* where Hyperware traps (no expects-response, to itself...) */
        hw_await_result_fini(&ar);
        char msg[64];
        snprintf(msg, sizeof msg, "send-and-await-response failed (%d)", rc);
        return hcl_fail(env, NULL, msg);
    }
    low_value v = {.kind = LOW_AWAIT, .a = &ar};
    lower_value(env, "send-and-await-response", &l.m, ret, CW_AWAIT_RESULT_SIZE,
                &v);
    hw_await_result_fini(&ar);
    return NULL;
}

napi_value hcl_cabi_has_blob(napi_env env, napi_callback_info info)
{
    napi_value r;
    napi_create_uint32(env, hcl_bound && hcw_binding_blob() != NULL, &r);
    return r;
}

static napi_value blob_call(napi_env env, napi_callback_info info,
                            const char *what, bool last)
{
    gmem m;
    if (!call_mem(env, info, &m))
        return NULL;
    low_value v = {.kind = LOW_BLOB,
                   .b = last ? hcw_binding_last_blob() : hcw_binding_blob()};
    lower_value(env, what, &m, args[0], CW_OPT_BLOB_SIZE, &v);
    return NULL;
}

napi_value hcl_cabi_get_blob(napi_env env, napi_callback_info info)
{
    return blob_call(env, info, "get-blob", false);
}

napi_value hcl_cabi_last_blob(napi_env env, napi_callback_info info)
{
    return blob_call(env, info, "last-blob", true);
}
