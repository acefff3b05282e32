/* The prompting message as the worker sees it (docs/lane-design.md §4, §5
 * and "Step 5, the protocol"): which message prompts now (none, a lane's
 * request, or the node's), the prompting handles, and the contexts of the
 * requests this worker sent by lane, with their deadlines.  The node is
 * told lazily (SYNC), only before a call whose meaning depends on what it
 * does not know.  A worker the node does not serve with lanes uses only the
 * handles, all of them the node's.  The guest's thread only. */
#include "binding_int.h"

#include "../common/abi_types.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

/* A lane's request with expects: it prompts, or is held, or a context
 * restores it. */
typedef struct lrec {
    int refs;
    uint32_t lane;
    uint64_t id;
    hw_address source; /* its strings in data (one malloc a request) */
    char data[];
} lrec;

/* The node's prompting message at one version of it, which contexts
 * restore: the node holds it under `handle` once it changes (0: not yet,
 * or no need: `none`). */
typedef struct nodever {
    int refs;
    uint32_t ver;
    int handle;
    bool none; /* the node had no prompting message then */
} nodever;

enum { OWN_NONE, OWN_LANE, OWN_NODE };

typedef struct owner {
    int kind;
    lrec *rec;   /* OWN_LANE */
    nodever *nv; /* OWN_NODE, in a context */
} owner;

static struct {
    bool tracked;   /* the node tells the worker its prompting's changes */
    owner now;      /* (nv unused) */
    bool synced;    /* the node's prompting message is `now` */
    bool node_none; /* the node's prompting message is none */
    uint32_t ver;   /* changes of the node's prompting message */
    nodever *cur;   /* the record of version `ver`, NULL: none yet */
    hcw_frame *out; /* SYNC and the worker's own holds */
} own = {.synced = true, .node_none = true};

/* --------------------------------------------------------------- handles */

/* A handle holds: the node's message, held by the node (a worker the
 * node does not tell its changes); the node's message at a version, held
 * by the node only once it changes (nodever); a lane's request or none
 * (the worker's); or, for a nodever, the node's message (the worker's
 * own, which the guest cannot name). */
enum { HELD_FREE, HELD_NODE, HELD_NODEVER, HELD_LOCAL, HELD_MINE };

typedef struct held {
    int kind;
    bool none; /* HELD_NODE: the node held none (a SET changes nothing) */
    lrec *rec; /* HELD_LOCAL: the lane request held, NULL: none */
    struct nodever *nv; /* HELD_NODEVER */
} held;

static held *hv;
static size_t nhv;

static void rec_unref(lrec *r)
{
    if (r && --r->refs == 0)
        free(r);
}

/* An address's strings and their lengths: what addr_size measures and
 * addr_put copies into a block of its caller's. */
typedef struct addr_parts {
    const char *s[4];
    size_t n[4];
} addr_parts;

/* The bytes a's four strings take with their NULs, their parts in *p. */
static size_t addr_size(const hw_address *a, addr_parts *p)
{
    const hw_process_id *id = &a->process;
    const char *s[4] = {a->node, id->process_name, id->package_name,
                        id->publisher_node};
    size_t size = 0;
    for (int k = 0; k < 4; k++) {
        p->s[k] = s[k];
        size += (p->n[k] = strlen(s[k])) + 1;
    }
    return size;
}

/* Copy n bytes from src to *at and step past them: the copy. */
static char *put_bytes(char **at, const void *src, size_t n)
{
    char *d = *at;
    if (n)
        memcpy(d, src, n);
    *at += n;
    return d;
}

/* *out, the address of parts p, its strings copied to *at (stepped past
 * them: addr_size's bytes). */
static void addr_put(const addr_parts *p, char **at, hw_address *out)
{
    char **dsts[] = {&out->node, &out->process.process_name,
                     &out->process.package_name, &out->process.publisher_node};
    for (int k = 0; k < 4; k++)
        *dsts[k] = put_bytes(at, p->s[k], p->n[k] + 1);
}

static lrec *rec_ref(lrec *r)
{
    if (r)
        r->refs++;
    return r;
}

static void set_now(int kind, lrec *rec)
{
    lrec *old = own.now.rec;
    own.now.kind = kind;
    own.now.rec = rec_ref(rec);
    rec_unref(old);
}

static hcw_frame *out_frame(void)
{
    if (own.out == NULL)
        own.out = hcw_frame_new();
    return own.out;
}

static void send_node(hcw_frame *f)
{
    hcw_w.sent++;
    if (hcw_link_send(hcw_w.link, f) != 0)
        hcw_die(NULL);
}

static void send_handle_op(hcw_op op, int handle)
{
    hcw_frame *f = out_frame();
    hcw_frame_begin(f, op, 1);
    hcw_put_i64(f, handle);
    send_node(f);
}

/* The lowest free handle, 0 when none is left. */
static int handle_alloc(int kind)
{
    size_t i = 0;
    while (i < nhv && hv[i].kind != HELD_FREE)
        i++;
    if (i == nhv) {
        if (i >= HCW_MAX_HELD)
            return 0;
        held *v = realloc(hv, (i + 1) * sizeof *v);
        if (v == NULL)
            return 0;
        hv = v;
        nhv++;
    }
    hv[i] = (held){.kind = kind};
    return (int)i + 1;
}

static held *handle_get(int handle)
{
    if (handle <= 0 || (size_t)handle > nhv)
        return NULL;
    held *h = &hv[handle - 1];
    return h->kind == HELD_FREE || h->kind == HELD_MINE ? NULL : h;
}

/* The node's prompting message is about to change: a context that would
 * restore the current one gets it held first. */
static void before_change(void)
{
    nodever *c = own.cur;
    if (c && c->refs > 0 && c->handle == 0 && !c->none) {
        c->handle = handle_alloc(HELD_MINE);
        if (c->handle == 0)
            hcw_die("out of prompting handles");
        send_handle_op(HCW_PROMPTING_HOLD, c->handle);
    }
    if (c && c->refs == 0)
        free(c);
    own.cur = NULL;
    own.ver++;
}

static void nodever_unref(nodever *nv)
{
    if (--nv->refs > 0 || nv == own.cur)
        return;
    if (nv->handle) {
        send_handle_op(HCW_PROMPTING_RELEASE, nv->handle);
        hv[nv->handle - 1].kind = HELD_FREE;
    }
    free(nv);
}

static nodever *cur_ref(void);
static void restore_nodever(nodever *nv);

int hcw_prompt_hold(void)
{
    if (own.tracked && own.now.kind == OWN_NODE) {
        /* the node's message now: held by the node only if it changes */
        int h = handle_alloc(HELD_NODEVER);
        if (h)
            hv[h - 1].nv = cur_ref();
        return h;
    }
    if (own.tracked) {
        /* a lane's request, or none: the worker holds it */
        int h = handle_alloc(HELD_LOCAL);
        if (h)
            hv[h - 1].rec = rec_ref(own.now.rec);
        return h;
    }
    int h = handle_alloc(HELD_NODE);
    if (h == 0)
        return 0;
    hv[h - 1].none = own.node_none; /* (true before any item: so it is) */
    send_handle_op(HCW_PROMPTING_HOLD, h);
    return h;
}

void hcw_prompt_set(int handle)
{
    held *h = handle_get(handle);
    if (h == NULL)
        return;
    if (h->kind == HELD_LOCAL) {
        if (h->rec) {
            set_now(OWN_LANE, h->rec);
            own.synced = false;
        }
        return;
    }
    if (h->kind == HELD_NODEVER) {
        restore_nodever(h->nv);
        return;
    }
    if (own.tracked && !h->none) {
        before_change();
        set_now(OWN_NODE, NULL);
        own.node_none = false;
        own.synced = true;
    }
    send_handle_op(HCW_PROMPTING_SET, handle);
}

void hcw_prompt_release(int handle)
{
    held *h = handle_get(handle);
    if (h == NULL)
        return;
    if (h->kind == HELD_NODE)
        send_handle_op(HCW_PROMPTING_RELEASE, handle);
    rec_unref(h->rec);
    nodever *nv = h->nv;
    *h = (held){0};
    if (nv)
        nodever_unref(nv);
}

/* ------------------------------------------------------------ the owner */

void hcw_prompt_track(void)
{
    own.tracked = true;
}

void hcw_prompt_before_node_item(bool known, unsigned flags)
{
    if (own.tracked && (!known || (flags & HCW_ITEM_PROMPTS)))
        before_change();
}

void hcw_prompt_node_item(unsigned flags)
{
    if (!own.tracked || !(flags & HCW_ITEM_PROMPTS))
        return;
    bool none = flags & HCW_ITEM_PROMPTS_NONE;
    set_now(none ? OWN_NONE : OWN_NODE, NULL);
    own.node_none = none;
    own.synced = true;
}

void hcw_prompt_lane_request(uint32_t lane, const hw_address *source,
                             uint64_t id)
{
    addr_parts parts;
    size_t size = sizeof(lrec) + addr_size(source, &parts);
    lrec *r = malloc(size);
    if (r == NULL)
        hcw_die("out of memory");
    memset(r, 0, sizeof *r);
    char *at = r->data;
    addr_put(&parts, &at, &r->source);
    r->lane = lane;
    r->id = id;
    set_now(OWN_LANE, r); /* (its one reference) */
    own.synced = false;
}

bool hcw_prompt_lane(uint32_t *lane, uint64_t *id)
{
    if (!own.tracked || own.now.kind != OWN_LANE)
        return false;
    *lane = own.now.rec->lane;
    *id = own.now.rec->id;
    return true;
}

void hcw_prompt_sync(bool with_last, const hw_blob *last)
{
    bool prompting = own.tracked && !own.synced;
    if (!prompting && !with_last)
        return;
    if (prompting)
        before_change(); /* (it may send a frame of its own first) */
    hcw_frame *f = out_frame();
    hcw_frame_begin(f, HCW_SYNC, with_last ? 2 : 1);
    if (!prompting) {
        /* [nil, blob | nil]: the last blob only */
        hcw_put_nil(f);
        hcw_put_blob_opt(f, last);
        send_node(f);
        return;
    }
    if (own.now.kind == OWN_LANE) {
        hcw_prompting p = {.source = own.now.rec->source,
                           .id = own.now.rec->id,
                           .expects = true};
        hcw_put_prompting(f, &p);
        own.node_none = false;
    } else {
        hcw_put_prompting(f, &(hcw_prompting){.none = true});
        own.node_none = true;
    }
    if (with_last)
        hcw_put_blob_opt(f, last);
    send_node(f);
    own.synced = true;
}

/* A reference to the record of the node's prompting message now. */
static nodever *cur_ref(void)
{
    if (own.cur == NULL) {
        own.cur = calloc(1, sizeof *own.cur);
        if (own.cur == NULL)
            hcw_die("out of memory");
        own.cur->ver = own.ver;
        own.cur->none = own.node_none;
    }
    own.cur->refs++;
    return own.cur;
}

/* The owner now, for a context sent now. */
static owner owner_take(void)
{
    owner o = {.kind = own.now.kind, .rec = rec_ref(own.now.rec)};
    if (o.kind == OWN_NODE)
        o.nv = cur_ref();
    return o;
}

/* The node's message of version nv prompts again: unchanged since, or
 * set back from the node's hold (none: nothing to set). */
static void restore_nodever(nodever *nv)
{
    if (nv->ver == own.ver) {
        set_now(OWN_NODE, NULL); /* the node's is unchanged */
        own.synced = true;
    } else if (nv->none) {
        set_now(OWN_NONE, NULL);
        own.synced = own.node_none;
    } else {
        int handle = nv->handle;
        before_change();
        send_handle_op(HCW_PROMPTING_SET, handle);
        set_now(OWN_NODE, NULL);
        own.node_none = false;
        own.synced = true;
    }
}

static void owner_drop(owner *o)
{
    rec_unref(o->rec);
    if (o->nv)
        nodever_unref(o->nv);
    *o = (owner){0};
}

/* A context's answer is taken: the owner it recorded prompts again. */
static void owner_restore(owner *o)
{
    switch (o->kind) {
    case OWN_NONE:
        set_now(OWN_NONE, NULL);
        own.synced = own.node_none;
        break;
    case OWN_LANE:
        set_now(OWN_LANE, o->rec);
        own.synced = false;
        break;
    default: restore_nodever(o->nv);
    }
}

/* ------------------------------------------------------------ contexts */

typedef struct lctx {
    UT_hash_handle hh;
    uint64_t id;
    uint32_t lane; /* the lane its request went on (only it may answer) */
    uint32_t pos;  /* where that request's frame starts in the lane */
    bool doomed;   /* the peer took it and ended without an answer */
    size_t heap_i; /* its entry in ctxs.heap, which has its deadline */
    owner at;      /* the owner when it was sent */
    /* the request as sent (no capabilities): its target's strings, body,
     * metadata and blob live in this allocation after the struct (one
     * malloc a request; an error copies them out) */
    hw_address target;
    hw_request req;
    bool has_blob;
    hw_blob blob;
    bool has_context; /* its own allocation: it moves to the answer */
    hw_bytes context;
    char data[];
} lctx;

/* A context's place in the deadline heap: the deadline kept beside its
 * pointer, so that a sift compares without reaching into the contexts. */
typedef struct hent {
    int64_t deadline;
    lctx *c;
} hent;

static struct {
    lctx *by_id;
    hent *heap;
    size_t len, cap;
} ctxs;

/* A lane id's hash in ctxs.by_id: its own bits.  Every key the table
 * holds is an id this worker drew at random (fresh_id, lane_table.c), so
 * they need no hashing; a peer's chosen id is only looked up. */
static unsigned id_hash(uint64_t id)
{
    return (unsigned)(id ^ id >> 32);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC_COARSE's resolution (a tick), read once: 100 ms when it
 * cannot be read or is larger. */
static int64_t coarse_res_ns(void)
{
    static int64_t res = -1;
    if (res < 0) {
        struct timespec ts;
        res = clock_getres(CLOCK_MONOTONIC_COARSE, &ts) == 0
                  ? (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec
                  : 0;
        if (res <= 0 || res > 100000000)
            res = 100000000;
    }
    return res;
}

/* CLOCK_MONOTONIC_COARSE plus its resolution: a few ns to read where the
 * precise clock costs tens in a VM; behind the precise clock when the tick
 * is late (5 ms seen with a 4 ms tick on a VM). */
static int64_t coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + coarse_res_ns();
}

static void heap_swap(size_t i, size_t j)
{
    hent t = ctxs.heap[i];
    ctxs.heap[i] = ctxs.heap[j];
    ctxs.heap[j] = t;
    ctxs.heap[i].c->heap_i = i;
    ctxs.heap[j].c->heap_i = j;
}

static void heap_up(size_t i)
{
    while (i > 0 && ctxs.heap[(i - 1) / 2].deadline > ctxs.heap[i].deadline) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < ctxs.len && ctxs.heap[l].deadline < ctxs.heap[m].deadline)
            m = l;
        if (r < ctxs.len && ctxs.heap[r].deadline < ctxs.heap[m].deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void heap_remove(lctx *c)
{
    size_t i = c->heap_i;
    ctxs.len--;
    if (i != ctxs.len) {
        ctxs.heap[i] = ctxs.heap[ctxs.len];
        ctxs.heap[i].c->heap_i = i;
        heap_down(i);
        heap_up(i);
    }
}

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        hcw_die("out of memory");
    return d;
}

void hcw_ctx_add(uint64_t id, uint32_t lane, uint32_t pos,
                 const hw_address *target, const hw_request *req,
                 const hw_bytes *context, const hw_blob *blob)
{
    addr_parts parts;
    size_t size = sizeof(lctx) + req->body.len + addr_size(target, &parts);
    size_t mlen = req->metadata ? strlen(req->metadata) + 1 : 0;
    size_t blen = blob && blob->mime ? strlen(blob->mime) + 1 : 0;
    size += mlen + blen + (blob ? blob->bytes.len : 0);
    lctx *c = malloc(size);
    if (c == NULL)
        hcw_die("out of memory");
    memset(c, 0, sizeof *c);
    char *at = c->data;
    addr_put(&parts, &at, &c->target);
    c->id = id;
    c->lane = lane;
    c->pos = pos;
    uint64_t s =
        req->expects_response > 31536000 ? 31536000 : req->expects_response;
    /* the precise clock: the coarse one can lag by more than its tick, and
     * a timeout is never early */
    int64_t deadline = now_ns() + (int64_t)s * 1000000000;
    c->at = owner_take();
    c->req.has_expects_response = true;
    c->req.expects_response = req->expects_response;
    c->req.body.len = req->body.len;
    c->req.body.ptr = (uint8_t *)put_bytes(&at, req->body.ptr, req->body.len);
    if (mlen)
        c->req.metadata = put_bytes(&at, req->metadata, mlen);
    if (blob) {
        c->has_blob = true;
        if (blen)
            c->blob.mime = put_bytes(&at, blob->mime, blen);
        c->blob.bytes.len = blob->bytes.len;
        c->blob.bytes.ptr =
            (uint8_t *)put_bytes(&at, blob->bytes.ptr, blob->bytes.len);
    }
    if (context) {
        c->has_context = true;
        c->context.len = context->len;
        c->context.ptr = hcw_dup(context->ptr, context->len);
    }
    HASH_ADD_BYHASHVALUE(hh, ctxs.by_id, id, sizeof c->id, id_hash(id), c);
    if (ctxs.len == ctxs.cap) {
        size_t cap = ctxs.cap ? 2 * ctxs.cap : 64;
        hent *v = realloc(ctxs.heap, cap * sizeof *v);
        if (v == NULL)
            hcw_die("out of memory");
        ctxs.heap = v;
        ctxs.cap = cap;
    }
    c->heap_i = ctxs.len;
    ctxs.heap[ctxs.len++] = (hent){deadline, c};
    heap_up(c->heap_i);
}

static void ctx_free(lctx *c)
{
    free(c->context.ptr);
    owner_drop(&c->at);
    free(c);
}

/* Unlink c: it is answered (its owner prompts again) or forgotten. */
static void ctx_unlink(lctx *c)
{
    HASH_DEL(ctxs.by_id, c);
    heap_remove(c);
}

bool hcw_ctx_pending(uint64_t id)
{
    lctx *c;
    HASH_FIND_BYHASHVALUE(hh, ctxs.by_id, &id, sizeof id, id_hash(id), c);
    return c != NULL;
}

uint64_t hcw_ctx_pending_to(const hw_address *target)
{
    uint64_t id = 0;
    int64_t best = INT64_MAX;
    const hw_process_id *b = &target->process;
    for (size_t i = 0; i < ctxs.len; i++) {
        /* (a lane's peer is on this node: the process names it) */
        const hw_process_id *a = &ctxs.heap[i].c->target.process;
        if (ctxs.heap[i].deadline < best &&
            strcmp(a->process_name, b->process_name) == 0 &&
            strcmp(a->package_name, b->package_name) == 0 &&
            strcmp(a->publisher_node, b->publisher_node) == 0) {
            best = ctxs.heap[i].deadline;
            id = ctxs.heap[i].c->id;
        }
    }
    return id;
}

void hcw_ctx_forget(uint64_t id)
{
    lctx *c;
    HASH_FIND_BYHASHVALUE(hh, ctxs.by_id, &id, sizeof id, id_hash(id), c);
    if (c) {
        ctx_unlink(c);
        ctx_free(c);
    }
}

/* Fill the error of *out from c (copied out of it; its context moved): a
 * send error of `kind` for the request as it was sent. */
static void fill_error(lctx *c, hw_send_error_kind kind, hw_receive_result *out)
{
    hw_send_error_fini(&out->error);
    out->is_err = true;
    out->error.kind = kind;
    hcw_address_copy(&c->target, &out->error.target);
    out->error.message.kind = HW_MESSAGE_REQUEST;
    hw_request *r = &out->error.message.request;
    r->has_expects_response = true;
    r->expects_response = c->req.expects_response;
    r->body.len = c->req.body.len;
    r->body.ptr = hcw_dup(c->req.body.ptr, c->req.body.len);
    r->metadata = dup_str(c->req.metadata);
    if (c->has_blob) {
        out->error.has_blob = true;
        out->error.blob.mime = dup_str(c->blob.mime);
        out->error.blob.bytes.len = c->blob.bytes.len;
        out->error.blob.bytes.ptr =
            hcw_dup(c->blob.bytes.ptr, c->blob.bytes.len);
    }
    if (c->has_context) {
        out->has_context = true;
        out->context = c->context;
        memset(&c->context, 0, sizeof c->context);
    }
}

bool hcw_ctx_answer(uint64_t id, uint32_t lane, hw_receive_result *out)
{
    lctx *c;
    HASH_FIND_BYHASHVALUE(hh, ctxs.by_id, &id, sizeof id, id_hash(id), c);
    if (c == NULL || (lane != 0 && c->lane != lane))
        return false;
    ctx_unlink(c);
    if (out->is_err) {
        fill_error(c, out->error.kind, out);
    } else if (c->has_context) {
        out->message.has_context = true;
        out->message.context = c->context;
        memset(&c->context, 0, sizeof c->context);
    }
    owner_restore(&c->at);
    ctx_free(c);
    return true;
}

int64_t hcw_ctx_deadline(void)
{
    return ctxs.len ? ctxs.heap[0].deadline : INT64_MAX;
}

/* The coarse clock plus a margin of 50 ms: a filter before the precise
 * read, never the answer (coarse_ns can lag the precise clock by more than
 * its resolution); a deadline further than that has not passed. */
static int64_t coarse_bound_ns(void)
{
    return coarse_ns() + 50000000;
}

bool hcw_ctx_expired(void)
{
    /* at each receive: the precise clock only near the earliest deadline */
    return ctxs.len && ctxs.heap[0].deadline <= coarse_bound_ns() &&
           ctxs.heap[0].deadline <= now_ns();
}

void hcw_ctx_expire(hw_receive_result *out)
{
    lctx *c = ctxs.heap[0].c;
    ctx_unlink(c);
    memset(out, 0, sizeof *out);
    fill_error(c, HW_SEND_ERROR_TIMEOUT, out);
    owner_restore(&c->at);
    ctx_free(c);
}

void hcw_ctx_lane_closed(uint32_t lane, uint32_t taken_to,
                         const uint64_t *adopted, size_t nadopted)
{
    for (lctx *c = ctxs.by_id; c; c = c->hh.next) {
        if (c->lane != lane)
            continue;
        bool taken = (int32_t)(c->pos - taken_to) < 0;
        bool kept = !taken; /* drained into its next instance, or sent
                               again by node */
        for (size_t i = 0; taken && i < nadopted; i++)
            kept = kept || adopted[i] == c->id;
        c->doomed = !kept; /* (kept: its answer comes by node) */
    }
}

void hcw_ctx_lane_gone(uint32_t lane)
{
    for (lctx *c = ctxs.by_id; c; c = c->hh.next) {
        if (c->lane == lane && c->doomed) {
            /* its peer ended without answering: it times out now */
            c->doomed = false;
            ctxs.heap[c->heap_i].deadline = 0;
            heap_up(c->heap_i);
        }
    }
}
