/* Every import of interface `standard` that hyperc's guest makes, in the
 * canonical ABI (cabi.h), free of Node-API: the arguments lifted straight
 * from the component's linear memory into the hw_* values of
 * include/hyperc/abi.h, the host table called, its results lowered
 * straight into the memory (docs/wasm-lanes.md, step 4), with no msgpack
 * and no JavaScript value in between.  The wasm host's addon calls the hot
 * ones (link_cabi.c; over a socket abi.mjs does the same in JavaScript,
 * and jco's glue with host.mjs serves the rest); a component translated to
 * C calls them all (docs/wasm-native.md).
 *
 * The layouts are cabi_layout.h's (the guest's abi_wasm.c checks its own
 * against the same table).  Linear memory is a byte array here, addressed
 * by u32 offsets; every offset and length the component hands over is
 * checked against the memory's size, and every string it hands over must
 * be UTF-8 without NUL: otherwise the call traps saying what was wrong
 * (only the component: the host sends TRAP).
 *
 * A result's strings and lists are allocated with cabi_realloc, all before
 * the first byte is written: an allocation may grow the memory (moving
 * it), so the memory is asked for again once, after them.  An allocation
 * of 0 bytes is asked at most once a result and given to each empty string
 * and list in it (cabi_realloc's answer to one is never freed nor written:
 * abi_wasm.c's cw_empty).  The node's strings in a result are checked to be
 * UTF-8: one that is not (the node passes on a native process's strings
 * unchecked) is lowered with U+FFFD in place of each ill-formed sequence,
 * and a line in the node's log says so (the host's print_to_terminal); a
 * lane peer's that is not never gets here (the binding gives its lane up,
 * lane_table.c). */
#include "cabi.h"

#include "../common/cabi_layout.h"
#include "../common/common.h"
#include "../worker/binding.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "linear memory is little-endian: this host must be too"
#endif

void hca_guest_init(hca_guest *g, const hwn_host *host,
                    uint8_t *(*mem)(hca_guest *g, size_t *len),
                    bool (*alloc)(hca_guest *g, uint32_t align, uint32_t size,
                                  uint32_t *out),
                    void (*trap)(hca_guest *g, const char *what,
                                 const char *why))
{
    memset(g, 0, sizeof *g);
    g->host = host;
    g->mem = mem;
    g->alloc = alloc;
    g->trap = trap;
    hp_arena_init(&g->arena);
}

void hca_guest_fini(hca_guest *g)
{
    hp_arena_fini(&g->arena);
    free(g->allocs);
    g->allocs = NULL;
    g->allocs_cap = 0;
}

/* ----------------------------------------------------------- memory */

/* The component's memory as the call sees it. */
typedef struct gmem {
    uint8_t *base;
    size_t len;
} gmem;

/* The memory now (g->mem); false: the trap is raised. */
static bool mem_now(hca_guest *g, gmem *m)
{
    m->base = g->mem(g, &m->len);
    return m->base != NULL;
}

/* Raise the trap of import `what`, why formatted; false. */
static bool trap(hca_guest *g, const char *what, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    g->trap(g, what, why);
    return false;
}

/* ------------------------------------------ lifting (guest -> binding) */

/* What a lifting reads from and, when it fails, why (for the trap). */
typedef struct lift {
    hca_guest *g;
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
    *out = hp_arena_strndup(&l->g->arena, (const char *)p, len);
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
    c->ptr = hp_arena_alloc(&l->g->arena, (size_t)len * sizeof *c->ptr);
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

static bool lf_pid(lift *l, uint32_t at, hw_process_id *p)
{
    return lf_str(l, at + CW_PID_NAME, &p->process_name) &&
           lf_str(l, at + CW_PID_PACKAGE, &p->package_name) &&
           lf_str(l, at + CW_PID_PUBLISHER, &p->publisher_node);
}

/* on-exit from its flat values: kind, then the list (ptr, len) of its
 * requests, read only for kind 2 (requests) as the canonical ABI reads a
 * variant's payload for its case alone. */
static bool lf_on_exit_of(lift *l, uint32_t kind, uint32_t ptr, uint32_t len,
                          hw_on_exit *o)
{
    memset(o, 0, sizeof *o);
    if (kind > 2)
        return lf_fail(l, "a tag %u of a type with 3 cases", kind);
    o->kind = (hw_on_exit_kind)kind;
    if (kind != HW_ON_EXIT_REQUESTS)
        return true;
    const uint8_t *p;
    if (!lf_span(l, ptr, (uint64_t)len * CW_EXIT_REQUEST_SIZE, &p))
        return false;
    l->size += 5 + 24 * (uint64_t)len; /* (each one's arrays, ints and
                                          nils; its strings and lists
                                          counted as they are read) */
    o->requests_len = len;
    o->requests =
        hp_arena_alloc(&l->g->arena, (size_t)len * sizeof *o->requests);
    if (o->requests == NULL)
        hcw_die("out of memory");
    for (uint32_t i = 0; i < len; i++) {
        uint32_t at = ptr + i * CW_EXIT_REQUEST_SIZE;
        hw_outgoing_request *r = &o->requests[i];
        if (!lf_addr(l, at + CW_EXIT_REQUEST_TARGET, &r->target) ||
            !lf_request(l, at + CW_EXIT_REQUEST_REQUEST, &r->request) ||
            !lf_opt_blob(l, at + CW_EXIT_REQUEST_BLOB, &r->has_blob, &r->blob))
            return false;
    }
    return true;
}

/* -------------------------------------------- lowering (binding -> guest) */

/* A result is lowered in two walks of the same code: the first (plan)
 * lists the size of every string and list in order, the allocations are
 * made, and the second (write) writes the values with their addresses,
 * taken in the same order. */
typedef struct hca_alloc {
    uint32_t size, align, ptr;
    bool lossy; /* a string that is not UTF-8, lowered as hcc_utf8_lossy's */
} alloc_item;

typedef struct lower {
    bool write;
    size_t lossy;     /* strings that are not UTF-8 (the plan's count) */
    alloc_item *v;    /* the allocations, in order (the guest's list) */
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

static void put_pid(lower *w, uint32_t at, const hw_process_id *p)
{
    put_str(w, at + CW_PID_NAME, p->process_name);
    put_str(w, at + CW_PID_PACKAGE, p->package_name);
    put_str(w, at + CW_PID_PUBLISHER, p->publisher_node);
}

/* on-exit: the kind, and for `requests` its list (a request's context is
 * not part of it); none and restart have no payload to write. */
static void put_on_exit(lower *w, uint32_t at, const hw_on_exit *o)
{
    put_u8(w, at, (uint8_t)o->kind);
    if (o->kind != HW_ON_EXIT_REQUESTS)
        return;
    size_t n = o->requests_len;
    uint32_t p = put_list(w, at + CW_ON_EXIT_REQUESTS, NULL,
                          n * (size_t)CW_EXIT_REQUEST_SIZE,
                          CW_EXIT_REQUEST_ALIGN, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const hw_outgoing_request *r = &o->requests[i];
        uint32_t e = p + (uint32_t)i * CW_EXIT_REQUEST_SIZE;
        put_addr(w, e + CW_EXIT_REQUEST_TARGET, &r->target);
        put_request(w, e + CW_EXIT_REQUEST_REQUEST, &r->request);
        put_opt_blob(w, e + CW_EXIT_REQUEST_BLOB,
                     r->has_blob ? &r->blob : NULL);
    }
}

/* The values a walk lowers: one of these, at `ret`. */
typedef enum {
    LOW_RECEIVE,
    LOW_AWAIT,
    LOW_BLOB,
    LOW_ADDR,
    LOW_ON_EXIT,
    LOW_STATE,
    LOW_CAPS,
    LOW_SPAWN
} low_kind;
typedef struct low_value {
    low_kind kind;
    const hw_receive_result *r;  /* LOW_RECEIVE */
    const hw_await_result *a;    /* LOW_AWAIT */
    const hw_blob *b;            /* LOW_BLOB (NULL: none) */
    const hw_address *addr;      /* LOW_ADDR */
    const hw_on_exit *on_exit;   /* LOW_ON_EXIT */
    const hw_bytes *state;       /* LOW_STATE (NULL: none) */
    const hw_capability_list *c; /* LOW_CAPS */
    hw_spawn_error spawn_err;    /* LOW_SPAWN, with pid when HW_SPAWN_OK */
    const hw_process_id *pid;
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
    case LOW_ADDR: put_addr(w, ret, v->addr); return;
    case LOW_ON_EXIT: put_on_exit(w, ret, v->on_exit); return;
    case LOW_STATE: put_opt_bytes(w, ret, v->state != NULL, v->state); return;
    case LOW_CAPS: put_caps(w, ret, v->c); return;
    case LOW_SPAWN:
        put_u8(w, ret, v->spawn_err != HW_SPAWN_OK);
        if (v->spawn_err == HW_SPAWN_OK)
            put_pid(w, ret + CW_SPAWN_RESULT_PAYLOAD, v->pid);
        else
            put_u8(w, ret + CW_SPAWN_RESULT_PAYLOAD,
                   v->spawn_err == HW_SPAWN_NAME_TAKEN ? 0 : 1);
        return;
    }
}

/* Lower v at ret (ret_size bytes) into the memory m: plan, allocate, ask
 * for the memory again, write.  false: the trap is raised. */
static bool lower_value(hca_guest *g, const char *what, gmem *m, uint32_t ret,
                        uint32_t ret_size, const low_value *v)
{
    if ((uint64_t)ret + ret_size > m->len)
        return trap(g, what,
                    "a result area of %u bytes at %u, outside the "
                    "component's memory (%zu bytes)",
                    ret_size, ret, m->len);
    lower low = {.v = g->allocs, .cap = g->allocs_cap};
    walk(&low, ret, v);
    g->allocs = low.v;
    g->allocs_cap = low.cap;
    if (low.lossy) {
        /* the process's line in the node's log, at level 1 */
        char line[160];
        snprintf(line, sizeof line,
                 "hyperc component: %s: %zu string%s not UTF-8 from the "
                 "node, each ill-formed sequence given as U+FFFD",
                 what, low.lossy, low.lossy == 1 ? "" : "s");
        g->host->print_to_terminal(g->host->ctx, 1, line);
    }
    if (low.n > 0) {
        bool have_empty = false;
        uint32_t empty = 0;
        for (size_t i = 0; i < low.n; i++) {
            alloc_item *it = &low.v[i];
            if (it->size > 0) {
                if (!g->alloc(g, it->align, it->size, &it->ptr))
                    return false;
                continue;
            }
            if (!have_empty && !g->alloc(g, CW_CAP_ALIGN, 0, &empty))
                return false;
            have_empty = true;
            it->ptr = empty;
        }
        if (!mem_now(g, m))
            return false;
        for (size_t i = 0; i < low.n; i++) {
            alloc_item *it = &low.v[i];
            if ((uint64_t)it->ptr + it->size > m->len ||
                (it->ptr & (it->align - 1)) != 0)
                return trap(g, what,
                            "cabi_realloc gave %u bytes at %u, outside "
                            "the component's memory (%zu bytes) or not "
                            "aligned to %u",
                            it->size, it->ptr, m->len, it->align);
        }
    }
    low.write = true;
    low.i = 0;
    low.base = m->base;
    walk(&low, ret, v);
    return true;
}

/* --------------------------------------------------- the calls */

bool hca_receive(hca_guest *g, uint32_t ret)
{
    gmem m;
    if (!mem_now(g, &m))
        return false;
    if ((uint64_t)ret + CW_RECEIVE_RESULT_SIZE > m.len)
        return trap(g, "receive",
                    "a result area at %u, outside the "
                    "component's memory (%zu bytes)",
                    ret, m.len);
    hw_receive_result r;
    g->host->receive(g->host->ctx, &r);
    low_value v = {.kind = LOW_RECEIVE, .r = &r};
    bool ok = lower_value(g, "receive", &m, ret, CW_RECEIVE_RESULT_SIZE, &v);
    hw_receive_result_fini(&r);
    return ok;
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
    hp_arena_reset(&l->g->arena);
    l->size = 0;
    if (!lf_span(l, p, CW_SEND_PARAMS_SIZE, &whole) ||
        !lf_addr(l, p + CW_SEND_PARAMS_TARGET, &target) ||
        !lf_request(l, p + CW_SEND_PARAMS_REQUEST, &req) ||
        !lf_opt_bytes(l, p + CW_SEND_PARAMS_CONTEXT, &has_ctx, &ctx) ||
        !lf_opt_blob(l, p + CW_SEND_PARAMS_BLOB, &has_blob, &blob) ||
        !lf_fits(l))
        return false;
    const hwn_host *h = l->g->host;
    h->send_request(h->ctx, &target, &req, has_ctx ? &ctx : NULL,
                    has_blob ? &blob : NULL);
    return true;
}

bool hca_send_request(hca_guest *g, uint32_t params)
{
    lift l = {.g = g};
    if (!mem_now(g, &l.m))
        return false;
    if (!send_request_at(&l, params))
        return trap(g, "send-request", "%s", l.why);
    return true;
}

/* No op of its own: one SEND_REQUEST per request, in order. */
bool hca_send_requests(hca_guest *g, uint32_t ptr, uint32_t n)
{
    lift l = {.g = g};
    if (!mem_now(g, &l.m))
        return false;
    const uint8_t *p;
    if (!lf_span(&l, ptr, (uint64_t)n * CW_SEND_PARAMS_SIZE, &p))
        return trap(g, "send-requests", "%s", l.why);
    for (uint32_t i = 0; i < n; i++)
        if (!send_request_at(&l, ptr + i * CW_SEND_PARAMS_SIZE))
            return trap(g, "send-requests", "%s", l.why);
    return true;
}

bool hca_send_response(hca_guest *g, const uint32_t a[14])
{
    lift l = {.g = g};
    if (!mem_now(g, &l.m))
        return false;
    hw_response resp = {0};
    hw_blob blob = {0};
    hp_arena_reset(&g->arena);
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
        return trap(g, "send-response", "%s", l.why);
    g->host->send_response(g->host->ctx, &resp, a[8] ? &blob : NULL);
    return true;
}

bool hca_send_and_await(hca_guest *g, uint32_t p, uint32_t ret)
{
    lift l = {.g = g};
    if (!mem_now(g, &l.m))
        return false;
    if ((uint64_t)ret + CW_AWAIT_RESULT_SIZE > l.m.len)
        return trap(g, "send-and-await-response",
                    "a result area at %u, outside the component's memory "
                    "(%zu bytes)",
                    ret, l.m.len);
    hw_address target = {0};
    hw_request req = {0};
    hw_blob blob = {0};
    bool has_blob;
    const uint8_t *whole;
    hp_arena_reset(&g->arena);
    l.size = 0;
    if (!lf_span(&l, p, CW_AWAIT_PARAMS_SIZE, &whole) ||
        !lf_addr(&l, p + CW_AWAIT_PARAMS_TARGET, &target) ||
        !lf_request(&l, p + CW_AWAIT_PARAMS_REQUEST, &req) ||
        !lf_opt_blob(&l, p + CW_AWAIT_PARAMS_BLOB, &has_blob, &blob) ||
        !lf_fits(&l))
        return trap(g, "send-and-await-response", "%s", l.why);
    hw_await_result ar;
    memset(&ar, 0, sizeof ar);
    int rc = g->host->send_and_await_response(g->host->ctx, &target, &req,
                                              has_blob ? &blob : NULL, &ar);
    if (rc != 0) {
        /* where Hyperware traps (no expects-response, to itself...) */
        hw_await_result_fini(&ar);
        return trap(g, NULL, "send-and-await-response failed (%d)", rc);
    }
    low_value v = {.kind = LOW_AWAIT, .a = &ar};
    bool ok = lower_value(g, "send-and-await-response", &l.m, ret,
                          CW_AWAIT_RESULT_SIZE, &v);
    hw_await_result_fini(&ar);
    return ok;
}

bool hca_has_blob(hca_guest *g)
{
    return g->host->has_blob(g->host->ctx);
}

/* get-blob (last: last-blob): lent by g->lend_blob, else copied from the
 * host's table. */
static bool blob_call(hca_guest *g, uint32_t ret, const char *what, bool last)
{
    gmem m;
    if (!mem_now(g, &m))
        return false;
    low_value v = {.kind = LOW_BLOB};
    if (g->lend_blob != NULL) {
        v.b = g->lend_blob(g, last);
        return lower_value(g, what, &m, ret, CW_OPT_BLOB_SIZE, &v);
    }
    const hwn_host *h = g->host;
    hw_blob b;
    bool has = last ? h->last_blob(h->ctx, &b) : h->get_blob(h->ctx, &b);
    v.b = has ? &b : NULL;
    bool ok = lower_value(g, what, &m, ret, CW_OPT_BLOB_SIZE, &v);
    if (has)
        hw_blob_fini(&b);
    return ok;
}

bool hca_get_blob(hca_guest *g, uint32_t ret)
{
    return blob_call(g, ret, "get-blob", false);
}

bool hca_last_blob(hca_guest *g, uint32_t ret)
{
    return blob_call(g, ret, "last-blob", true);
}

/* ------------------------------------------- the rest of `standard` */

/* The result area of ret_size bytes at ret, checked before the host is
 * asked (so that nothing is done for a result that cannot be written). */
static bool ret_fits(hca_guest *g, const char *what, const gmem *m,
                     uint32_t ret, uint32_t ret_size)
{
    if ((uint64_t)ret + ret_size > m->len)
        return trap(g, what,
                    "a result area of %u bytes at %u, outside the "
                    "component's memory (%zu bytes)",
                    ret_size, ret, m->len);
    return true;
}

uint8_t *hca_result_area(hca_guest *g, const char *what, uint32_t ret,
                         uint32_t size)
{
    gmem m;
    if (!mem_now(g, &m) || !ret_fits(g, what, &m, ret, size))
        return NULL;
    return m.base + ret;
}

/* A call's lifting begins: the memory now, the arena and the size empty.
 * false: the trap is raised. */
static bool lift_begin(hca_guest *g, lift *l)
{
    l->g = g;
    l->size = 0;
    if (!mem_now(g, &l->m))
        return false;
    hp_arena_reset(&g->arena);
    return true;
}

bool hca_print(hca_guest *g, uint32_t level, uint32_t ptr, uint32_t len)
{
    lift l;
    if (!lift_begin(g, &l))
        return false;
    char *msg = NULL;
    bool ok =
        level <= UINT8_MAX
            ? lf_str_of(&l, ptr, len, &msg) && lf_fits(&l)
            : lf_fail(&l, "a verbosity %u, outside a u8 (0 to 255)", level);
    if (!ok)
        return trap(g, "print-to-terminal", "%s", l.why);
    g->host->print_to_terminal(g->host->ctx, (uint8_t)level, msg);
    return true;
}

bool hca_our(hca_guest *g, uint32_t ret)
{
    gmem m;
    if (!mem_now(g, &m) || !ret_fits(g, "our", &m, ret, CW_ADDR_SIZE))
        return false;
    hw_address a;
    memset(&a, 0, sizeof a);
    g->host->our(g->host->ctx, &a);
    low_value v = {.kind = LOW_ADDR, .addr = &a};
    bool ok = lower_value(g, "our", &m, ret, CW_ADDR_SIZE, &v);
    hw_address_fini(&a);
    return ok;
}

bool hca_get_state(hca_guest *g, uint32_t ret)
{
    gmem m;
    if (!mem_now(g, &m) || !ret_fits(g, "get-state", &m, ret, CW_OPT_LIST_SIZE))
        return false;
    hw_bytes b = {0};
    bool has = g->host->get_state(g->host->ctx, &b);
    low_value v = {.kind = LOW_STATE, .state = has ? &b : NULL};
    bool ok = lower_value(g, "get-state", &m, ret, CW_OPT_LIST_SIZE, &v);
    if (has)
        hw_bytes_fini(&b);
    return ok;
}

/* Hyperware traps when the state cannot be saved or cleared: the message
 * alone, as the wasm host's (host.mjs). */
bool hca_set_state(hca_guest *g, uint32_t ptr, uint32_t len)
{
    lift l;
    if (!lift_begin(g, &l))
        return false;
    hw_bytes b;
    if (!lf_bytes_of(&l, ptr, len, &b) || !lf_fits(&l))
        return trap(g, "set-state", "%s", l.why);
    if (!g->host->set_state(g->host->ctx, b.ptr, b.len))
        return trap(g, NULL,
                    "set-state failed: the node could not save the state");
    return true;
}

bool hca_clear_state(hca_guest *g)
{
    if (!g->host->clear_state(g->host->ctx))
        return trap(g, NULL,
                    "clear-state failed: the node could not clear the state");
    return true;
}

bool hca_get_on_exit(hca_guest *g, uint32_t ret)
{
    gmem m;
    if (!mem_now(g, &m) ||
        !ret_fits(g, "get-on-exit", &m, ret, CW_ON_EXIT_SIZE))
        return false;
    hw_on_exit o;
    memset(&o, 0, sizeof o);
    g->host->get_on_exit(g->host->ctx, &o);
    if ((unsigned)o.kind > HW_ON_EXIT_REQUESTS)
        hcw_die("get-on-exit: an on-exit of an unknown kind from the host");
    low_value v = {.kind = LOW_ON_EXIT, .on_exit = &o};
    bool ok = lower_value(g, "get-on-exit", &m, ret, CW_ON_EXIT_SIZE, &v);
    hw_on_exit_fini(&o);
    return ok;
}

bool hca_set_on_exit(hca_guest *g, uint32_t kind, uint32_t ptr, uint32_t len)
{
    lift l;
    if (!lift_begin(g, &l))
        return false;
    hw_on_exit o;
    if (!lf_on_exit_of(&l, kind, ptr, len, &o) || !lf_fits(&l))
        return trap(g, "set-on-exit", "%s", l.why);
    g->host->set_on_exit(g->host->ctx, &o);
    return true;
}

/* The flat values: 0-2 name (some, ptr, len), 3-4 wasm-path, 5-7 on-exit
 * (kind, ptr, len), 8-9 request-capabilities, 10-11 grant-capabilities,
 * 12 public, 13 the result's address. */
bool hca_spawn(hca_guest *g, const uint32_t a[14])
{
    lift l;
    if (!lift_begin(g, &l))
        return false;
    uint32_t ret = a[13];
    if (!ret_fits(g, "spawn", &l.m, ret, CW_SPAWN_RESULT_SIZE))
        return false;
    char *name = NULL, *path = NULL;
    hw_on_exit on_exit = {0};
    hw_capability_list req = {0};
    hw_process_id *procs = NULL;
    const char **params = NULL;
    uint32_t n = a[11];
    const uint8_t *p;
    bool ok = a[0] <= 1 || lf_fail(&l, "a tag %u of a type with 2 cases", a[0]);
    if (ok && a[0])
        ok = lf_str_of(&l, a[1], a[2], &name);
    ok = ok && lf_str_of(&l, a[3], a[4], &path) &&
         lf_on_exit_of(&l, a[5], a[6], a[7], &on_exit) &&
         lf_caps_of(&l, a[8], a[9], &req) &&
         lf_span(&l, a[10], (uint64_t)n * CW_GRANT_SIZE, &p);
    if (ok) {
        l.size += 10 + 2 * (uint64_t)n; /* (two arrays, each pid one) */
        procs = hp_arena_alloc(&g->arena, (size_t)n * sizeof *procs);
        params = hp_arena_alloc(&g->arena, (size_t)n * sizeof *params);
        if (procs == NULL || params == NULL)
            hcw_die("out of memory");
    }
    for (uint32_t i = 0; ok && i < n; i++) {
        uint32_t at = a[10] + i * CW_GRANT_SIZE;
        char *s = NULL;
        ok = lf_pid(&l, at + CW_GRANT_PROCESS, &procs[i]) &&
             lf_str(&l, at + CW_GRANT_PARAMS, &s);
        params[i] = s;
    }
    if (ok)
        ok = lf_fits(&l);
    if (!ok)
        return trap(g, "spawn", "%s", l.why);
    hw_process_id child;
    memset(&child, 0, sizeof child);
    hw_spawn_error err =
        g->host->spawn(g->host->ctx, name, path, &on_exit, req.ptr, req.len,
                       procs, params, n, a[12] != 0, &child);
    if (err != HW_SPAWN_OK && err != HW_SPAWN_NAME_TAKEN &&
        err != HW_SPAWN_NO_FILE_AT_PATH)
        hcw_die("spawn: an unknown spawn-error from the host");
    if (err == HW_SPAWN_OK &&
        (child.process_name == NULL || child.package_name == NULL ||
         child.publisher_node == NULL))
        hcw_die("spawn: no process id for a spawn that succeeded");
    low_value v = {.kind = LOW_SPAWN, .spawn_err = err, .pid = &child};
    ok = lower_value(g, "spawn", &l.m, ret, CW_SPAWN_RESULT_SIZE, &v);
    hw_process_id_fini(&child);
    return ok;
}

/* save-capabilities (drop: drop-capabilities): the list (ptr, len). */
static bool caps_call(hca_guest *g, uint32_t ptr, uint32_t len, bool drop)
{
    lift l;
    if (!lift_begin(g, &l))
        return false;
    hw_capability_list c = {0};
    if (!lf_caps_of(&l, ptr, len, &c) || !lf_fits(&l))
        return trap(g, drop ? "drop-capabilities" : "save-capabilities", "%s",
                    l.why);
    const hwn_host *h = g->host;
    (drop ? h->drop_capabilities : h->save_capabilities)(h->ctx, c.ptr, c.len);
    return true;
}

bool hca_save_capabilities(hca_guest *g, uint32_t ptr, uint32_t len)
{
    return caps_call(g, ptr, len, false);
}

bool hca_drop_capabilities(hca_guest *g, uint32_t ptr, uint32_t len)
{
    return caps_call(g, ptr, len, true);
}

bool hca_our_capabilities(hca_guest *g, uint32_t ret)
{
    gmem m;
    if (!mem_now(g, &m) ||
        !ret_fits(g, "our-capabilities", &m, ret, CW_LIST_SIZE))
        return false;
    hw_capability_list c = {0};
    g->host->our_capabilities(g->host->ctx, &c);
    low_value v = {.kind = LOW_CAPS, .c = &c};
    bool ok = lower_value(g, "our-capabilities", &m, ret, CW_LIST_SIZE, &v);
    hw_capability_list_fini(&c);
    return ok;
}
