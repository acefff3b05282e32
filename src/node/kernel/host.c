/* The host side of the process ABI for native guests: Hyperware's per-process
 * rules (request ids, rsvp, inherit, the prompting message, contexts with
 * deadlines, blobs), run on the process's own thread. */
#include "kernel_int.h"

#include "../../common/abi_types.h"
#include "../../worker/lane.h"
#include "../../worker/proto.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* -------------------------------------------------------- conversions */

/* A guest address as the node's string form "node@process:package:pub",
 * with node "our" (or none) resolved, into buf (n bytes), its length in
 * *len when len is not NULL.  Returns buf, or NULL if it does not fit.  The
 * send path uses a stack buffer, sparing a heap string per message. */
static const char *addr_into(hcn_host *h, const hw_address *a, char *buf,
                             size_t n, size_t *len)
{
    const char *node = a->node;
    if (node == NULL || strcmp(node, "our") == 0)
        node = h->node->name;
    const char *parts[4] = {node, a->process.process_name,
                            a->process.package_name, a->process.publisher_node};
    static const char seps[4] = {'@', ':', ':', 0};
    size_t o = 0;
    for (int i = 0; i < 4; i++) {
        const char *p = parts[i] ? parts[i] : "";
        size_t l = strlen(p);
        if (o + l + 1 > n)
            return NULL;
        memcpy(buf + o, p, l);
        o += l;
        buf[o++] = seps[i];
    }
    if (len != NULL)
        *len = o - 1;
    return buf;
}

/* The same as a fresh heap string; caller frees. */
static char *addr_string(hcn_host *h, const hw_address *a)
{
    size_t n = 4 + h->node->name_len + (a->node ? strlen(a->node) : 0);
    const char *parts[3] = {a->process.process_name, a->process.package_name,
                            a->process.publisher_node};
    for (int i = 0; i < 3; i++)
        n += parts[i] ? strlen(parts[i]) : 0;
    char *buf = hcn_xmalloc(n);
    if (addr_into(h, a, buf, n, NULL) == NULL)
        abort(); /* n covers every part */
    return buf;
}

void hcn_address_export(const char *s, hw_address *out)
{
    size_t at, offs[3][2];
    if (hcc_address_split(s, false, &at, offs) != HCC_EOK) {
        /* Internal addresses are validated on entry; keep going safely. */
        hcc_address_from_parts(s, strlen(s), "", 0, "", 0, "", 0, out);
        return;
    }
    if (hcc_address_from_parts(s, at, s + offs[0][0], offs[0][1],
                               s + offs[1][0], offs[1][1], s + offs[2][0],
                               offs[2][1], out) != 0)
        abort();
}

/* The memo slot of source s (host.c keeps the split of the last few
 * sources, compared whole), made if s is not there; -1 when s does not fit
 * a slot or is not an address. */
static int source_memo(hcn_host *h, const char *s)
{
    /* the slot found last first: a steady exchange finds it at once (a
     * miss looks at every slot as before) */
    if (strcmp(h->src_memo[h->src_memo_last].str, s) == 0)
        return (int)h->src_memo_last;
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(h->src_memo[i].str, s) == 0) {
            h->src_memo_last = i;
            return (int)i;
        }
    }
    size_t len = strlen(s), at, offs[3][2];
    if (len == 0 || len >= sizeof h->src_memo[0].str ||
        hcc_address_split(s, false, &at, offs) != HCC_EOK)
        return -1;
    unsigned n = h->src_memo_next % 4;
    memcpy(h->src_memo[n].str, s, len + 1);
    memcpy(h->src_memo[n].parts, s, len + 1);
    h->src_memo[n].parts[at] = 0;
    for (int k = 0; k < 2; k++)
        h->src_memo[n].parts[offs[k][0] + offs[k][1]] = 0;
    h->src_memo[n].at = at;
    memcpy(h->src_memo[n].offs, offs, sizeof offs);
    h->src_memo_next = n + 1;
    h->src_memo_last = n;
    return (int)n;
}

/* export_address for the source of a message this host hands over: a
 * steady exchange copies the parts without splitting the string again. */
static void export_source(hcn_host *h, const char *s, hw_address *out)
{
    int i = source_memo(h, s);
    if (i < 0) {
        hcn_address_export(s, out);
        return;
    }
    const size_t(*o)[2] = h->src_memo[i].offs;
    if (hcc_address_from_parts(s, h->src_memo[i].at, s + o[0][0], o[0][1],
                               s + o[1][0], o[1][1], s + o[2][0], o[2][1],
                               out) != 0)
        abort();
}

/* Byte lists handed to the guest never have a NULL ptr, even when empty, so
 * that memcpy(dst, b.ptr, b.len) is always valid in guest code. */
static void export_bytes(const void *p, size_t n, hw_bytes *out)
{
    out->len = n;
    out->ptr = hcn_xmalloc(n);
    if (n)
        memcpy(out->ptr, p, n);
}

static void export_caps(const hcn_cap *caps, size_t n, hw_capability_list *o)
{
    o->len = n;
    o->ptr = n ? hcn_xcalloc(n, sizeof *o->ptr) : NULL;
    for (size_t i = 0; i < n; i++) {
        hcn_address_export(caps[i].issuer, &o->ptr[i].issuer);
        o->ptr[i].params = hcn_xstrdup(caps[i].params);
    }
}

static void export_blob(const hcn_blob *b, hw_blob *out)
{
    out->mime = b->mime ? hcn_xstrdup(b->mime) : NULL;
    export_bytes(b->bytes, b->len, &out->bytes);
}

/* The request or response part of an envelope. */
static void export_message(const hcn_msg *m, hw_message *out)
{
    memset(out, 0, sizeof *out);
    if (m->kind == HCN_MSG_RESPONSE) {
        out->kind = HW_MESSAGE_RESPONSE;
        out->response.inherit = m->inherit;
        export_bytes(m->body, m->body_len, &out->response.body);
        out->response.metadata = m->metadata ? hcn_xstrdup(m->metadata) : NULL;
        export_caps(m->caps, m->ncaps, &out->response.capabilities);
    } else {
        out->kind = HW_MESSAGE_REQUEST;
        out->request.inherit = m->inherit;
        out->request.has_expects_response = m->has_expects;
        out->request.expects_response = m->expects;
        export_bytes(m->body, m->body_len, &out->request.body);
        out->request.metadata = m->metadata ? hcn_xstrdup(m->metadata) : NULL;
        export_caps(m->caps, m->ncaps, &out->request.capabilities);
    }
}

/* Capabilities a sender may attach: those it issued or holds (Hyperware's
 * FilterCaps); the rest are dropped.  Returns a fresh array. */
static hcn_cap *filter_caps(hcn_host *h, const hw_capability_list *in,
                            size_t *n_out)
{
    *n_out = 0;
    if (in->len == 0)
        return NULL;
    hcn_cap *out = hcn_xcalloc(in->len, sizeof *out);
    hcn_proc *p = h->proc;
    for (size_t i = 0; i < in->len; i++) {
        char *issuer = addr_string(h, &in->ptr[i].issuer);
        char *canon =
            in->ptr[i].params ? hcn_json_canonical(in->ptr[i].params) : NULL;
        bool ok = canon != NULL;
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        if (ok && strcmp(issuer, p->addr) != 0) {
            pthread_mutex_lock(&p->lock);
            const hcn_cap *held = hcn_capset_get(&p->caps, issuer, canon);
            ok = held != NULL;
            if (held != NULL && held->sig_len != 0) {
                /* another node's: with its signature, for its issuer */
                sig = hcn_xmalloc(held->sig_len);
                memcpy(sig, held->sig, held->sig_len);
                sig_len = held->sig_len;
            }
            pthread_mutex_unlock(&p->lock);
        }
        if (ok) {
            out[*n_out].issuer = issuer;
            out[*n_out].params = canon;
            out[*n_out].sig = sig;
            out[*n_out].sig_len = sig_len;
            (*n_out)++;
        } else {
            free(issuer);
            free(canon);
        }
    }
    return out;
}

static void free_caps(hcn_cap *c, size_t n)
{
    if (c == NULL)
        return; /* none attached, as most messages: spare free(NULL) */
    for (size_t i = 0; i < n; i++) {
        free(c[i].issuer);
        free(c[i].params);
        free(c[i].sig);
    }
    free(c);
}

/* ---------------------------------------------------------- deadlines */

/* A context's deadline is the time of its request plus its span (the
 * request's expects-response), so the deadlines of one span come in the
 * order they are set: the first few spans each get a FIFO (append and
 * unlink in O(1), a steady exchange's whole cost), and a deadline that
 * would not keep its FIFO in order (another span, or a context put back
 * with its old deadline) goes into a binary heap. */

static void heap_swap(hcn_host *h, size_t a, size_t b)
{
    hcn_ctx_entry *t = h->heap[a];
    h->heap[a] = h->heap[b];
    h->heap[b] = t;
    h->heap[a]->heap_idx = a;
    h->heap[b]->heap_idx = b;
}

static void heap_up(hcn_host *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->heap[parent]->deadline <= h->heap[i]->deadline)
            break;
        heap_swap(h, i, parent);
        i = parent;
    }
}

static void heap_down(hcn_host *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->heap_len && h->heap[l]->deadline < h->heap[m]->deadline)
            m = l;
        if (r < h->heap_len && h->heap[r]->deadline < h->heap[m]->deadline)
            m = r;
        if (m == i)
            return;
        heap_swap(h, i, m);
        i = m;
    }
}

static void heap_push(hcn_host *h, hcn_ctx_entry *e)
{
    if (h->heap_len == h->heap_cap) {
        h->heap_cap = h->heap_cap ? h->heap_cap * 2 : 4;
        hcn_ctx_entry **nh = realloc(h->heap, h->heap_cap * sizeof *nh);
        if (nh == NULL)
            abort();
        h->heap = nh;
    }
    e->heap_idx = h->heap_len;
    h->heap[h->heap_len++] = e;
    heap_up(h, e->heap_idx);
}

static void heap_remove(hcn_host *h, hcn_ctx_entry *e)
{
    size_t i = e->heap_idx;
    h->heap_len--;
    if (i != h->heap_len) {
        h->heap[i] = h->heap[h->heap_len];
        h->heap[i]->heap_idx = i;
        heap_down(h, i);
        heap_up(h, i);
    }
}

static void dl_add(hcn_host *h, hcn_ctx_entry *e)
{
    unsigned q = 0;
    while (q < h->ndlq && h->dlq[q].span != e->span)
        q++;
    if (q == h->ndlq && q < HCN_DLQ_MAX) {
        h->dlq[q].span = e->span;
        h->dlq[q].head = h->dlq[q].tail = NULL;
        h->ndlq++;
    }
    if (q == h->ndlq ||
        (h->dlq[q].tail && h->dlq[q].tail->deadline > e->deadline)) {
        e->dlq = -1;
        heap_push(h, e);
        return;
    }
    e->dlq = (int)q;
    e->dl_next = NULL;
    e->dl_prev = h->dlq[q].tail;
    if (e->dl_prev)
        e->dl_prev->dl_next = e;
    else
        h->dlq[q].head = e;
    h->dlq[q].tail = e;
}

static void dl_del(hcn_host *h, hcn_ctx_entry *e)
{
    if (e->dlq < 0) {
        heap_remove(h, e);
        return;
    }
    unsigned q = (unsigned)e->dlq;
    if (e->dl_prev)
        e->dl_prev->dl_next = e->dl_next;
    else
        h->dlq[q].head = e->dl_next;
    if (e->dl_next)
        e->dl_next->dl_prev = e->dl_prev;
    else
        h->dlq[q].tail = e->dl_prev;
}

/* The context with the earliest deadline, or NULL. */
static hcn_ctx_entry *dl_first(const hcn_host *h)
{
    hcn_ctx_entry *best = h->heap_len ? h->heap[0] : NULL;
    for (unsigned q = 0; q < h->ndlq; q++) {
        hcn_ctx_entry *e = h->dlq[q].head;
        if (e && (best == NULL || e->deadline < best->deadline))
            best = e;
    }
    return best;
}

/* ------------------------------------------------------------ contexts */

static uint64_t fresh_id(hcn_host *h)
{
    for (;;) {
        /* bit 63 clear: the other half is for ids a worker draws itself
         * (docs/lane-design.md, "Ids, contexts and timeouts") */
        uint64_t id = hcn_rng_next(&h->rng) & ~(UINT64_C(1) << 63);
        hcn_ctx_entry *e;
        HASH_FIND(hh, h->contexts, &id, sizeof id, e);
        if (e == NULL)
            return id;
    }
}

/* Release an entry; a few are kept for reuse, sparing an allocation per
 * request in a steady exchange. */
static void ctx_free(hcn_host *h, hcn_ctx_entry *e)
{
    if (e->is_save)
        h->saves--;
    hcn_msg_unref(e->sent);
    hcn_msg_unref(e->prompting);
    if (e->context != e->small)
        free(e->context);
    if (h->nspare < 256) {
        e->next_spare = h->spare;
        h->spare = e;
        h->nspare++;
    } else {
        free(e);
    }
}

static hcn_ctx_entry *ctx_add(hcn_host *h, hcn_msg *sent,
                              const hw_bytes *context)
{
    hcn_ctx_entry *e = h->spare;
    if (e) {
        h->spare = e->next_spare;
        h->nspare--;
        memset(e, 0, sizeof *e);
    } else {
        e = hcn_xcalloc(1, sizeof *e);
    }
    e->id = sent->id;
    e->sent = hcn_msg_ref(sent);
    e->prompting = h->prompting ? hcn_msg_ref(h->prompting) : NULL;
    if (context) {
        e->has_context = true;
        e->context_len = context->len;
        e->context = context->len <= sizeof e->small
                         ? e->small
                         : hcn_xmalloc(context->len);
        if (context->len)
            memcpy(e->context, context->ptr, context->len);
    }
    /* From the precise clock: the coarse one plus its tick was cheaper by
     * ~20 ns but not a bound (the coarse clock lags by more than its tick
     * often on a VM: 5 ms seen with a 4 ms tick), so a timeout came early. */
    e->span = (int64_t)(sent->expects > 31536000 ? 31536000 : sent->expects) *
              1000000000;
    e->deadline = hcn_now_ns() + e->span;
    /* An inherited id may already be waited on (a second request reusing
     * the prompting id); the newest entry wins, as in Hyperware's map. */
    hcn_ctx_entry *old;
    HASH_FIND(hh, h->contexts, &e->id, sizeof e->id, old);
    if (old) {
        HASH_DEL(h->contexts, old);
        dl_del(h, old);
        ctx_free(h, old);
    }
    HASH_ADD(hh, h->contexts, id, sizeof e->id, e);
    dl_add(h, e);
    return e;
}

/* A context was just filed under `id`: if it is a lane id inherited from a
 * request that came by node (a stub's id is its lane peer's, never the
 * worker's own), the worker may hold a context of its own under it, which
 * this one replaces, as ctx_add replaces the node's: FORGET
 * (docs/lane-design.md §4). */
static void forget_lane_id(hcn_host *h, uint64_t id)
{
    if (h->forget && id >> 63 && h->prompting && !h->prompting->stub)
        h->forget(h->lane_ctx, id);
}

/* Unlink e and restore its prompting message as the current one. */
static void ctx_take(hcn_host *h, hcn_ctx_entry *e)
{
    HASH_DEL(h->contexts, e);
    dl_del(h, e);
    hcn_msg_unref(h->prompting);
    h->prompting = e->prompting;
    e->prompting = NULL;
}

/* --------------------------------------------------------------- init */

static void host_print(void *ctx, uint8_t v, const char *msg)
{
    hcn_host *h = ctx;
    int level = hcn_proc_level(h->proc);
    /* a printout at the debug level (3) is kept only while the process's
     * level is 3, as the kernel's own lines of that level are */
    if (v >= 3 && level < 3)
        return;
    hcn_log_write(&h->node->log, h->proc->id, v, level, msg ? msg : "");
    if (v == 0 && !h->started && msg) {
        /* what a process says before it refuses to start is its reason
         * (proc.c reports it when the instance ends) */
        char *keep = hcn_xstrndup(msg, strnlen(msg, 500));
        pthread_mutex_lock(&h->proc->lock);
        free(h->proc->early_words);
        h->proc->early_words = keep;
        pthread_mutex_unlock(&h->proc->lock);
    }
}

static void host_our(void *ctx, hw_address *out)
{
    hcn_host *h = ctx;
    hcn_address_export(h->proc->addr, out);
}

/* ---------------------------------------------------------- receiving */

static void set_blob_from(hcn_host *h, const hcn_msg *m)
{
    if (m->blob) {
        hcn_blob_unref(h->last_blob);
        h->last_blob = hcn_blob_ref(m->blob);
        h->last_blobbed = true;
    } else {
        h->last_blobbed = false;
    }
}

static void note_offered(hcn_host *h, const hcn_msg *m)
{
    if (m->ncaps == 0)
        return;
    pthread_mutex_lock(&h->proc->lock);
    for (size_t i = 0; i < m->ncaps; i++)
        hcn_capset_add_signed(&h->proc->offered, m->caps[i].issuer,
                              m->caps[i].params, m->caps[i].sig,
                              m->caps[i].sig_len);
    pthread_mutex_unlock(&h->proc->lock);
}

static void fill_error(hcn_ctx_entry *e, int kind, hw_send_error *err)
{
    err->kind = (hw_send_error_kind)kind;
    hcn_address_export(e->sent->target, &err->target);
    export_message(e->sent, &err->message);
    if (e->sent->blob) {
        err->has_blob = true;
        export_blob(e->sent->blob, &err->blob);
    }
}

/* Fill *out with an answer (a response, or a send error) to the request
 * whose context entry is e: the message or the error, with the request's
 * context. */
static void export_answer(hcn_host *h, hcn_ctx_entry *e, const hcn_msg *m,
                          hw_receive_result *out)
{
    if (m->kind == HCN_MSG_RESPONSE) {
        export_source(h, m->source, &out->source);
        export_message(m, &out->message);
        if (e->has_context) {
            out->message.has_context = true;
            export_bytes(e->context, e->context_len, &out->message.context);
        }
    } else {
        out->is_err = true;
        fill_error(e, m->err_kind, &out->error);
        if (e->has_context) {
            out->has_context = true;
            export_bytes(e->context, e->context_len, &out->context);
        }
    }
}

/* Lend the guest m's source and request or response (the body and the
 * metadata stay in m, the source's parts in its memo slot) where *out had
 * copies: false, *out untouched, when m carries capabilities or its source
 * has no memo slot (then it is exported as a copy). */
static bool lend_message(hcn_host *h, const hcn_msg *m, hw_receive_result *out)
{
    if (m->ncaps != 0)
        return false;
    int i = source_memo(h, m->source);
    if (i < 0)
        return false;
    char *p = h->src_memo[i].parts;
    const size_t(*o)[2] = h->src_memo[i].offs;
    out->source.node = p;
    out->source.process.process_name = p + o[0][0];
    out->source.process.package_name = p + o[1][0];
    out->source.process.publisher_node = p + o[2][0];
    hw_bytes body = {(uint8_t *)m->body, m->body_len};
    char *meta = (char *)m->metadata;
    if (m->kind == HCN_MSG_RESPONSE) {
        out->message.kind = HW_MESSAGE_RESPONSE;
        out->message.response.inherit = m->inherit;
        out->message.response.body = body;
        out->message.response.metadata = meta;
    } else {
        out->message.kind = HW_MESSAGE_REQUEST;
        out->message.request.inherit = m->inherit;
        out->message.request.has_expects_response = m->has_expects;
        out->message.request.expects_response = m->expects;
        out->message.request.body = body;
        out->message.request.metadata = meta;
    }
    return true;
}

/* What the guest was lent at its last receive (receive_lent): the envelope
 * and the answered request's context entry, released at its next receive. */
static void lent_release(hcn_host *h)
{
    if (h->lent_msg != NULL) {
        hcn_msg_unref(h->lent_msg);
        h->lent_msg = NULL;
    }
    if (h->lent_ctx != NULL) {
        ctx_free(h, h->lent_ctx);
        h->lent_ctx = NULL;
    }
}

enum { INGEST_DROPPED, INGEST_COPIED, INGEST_LENT };

/* The flags of an answer or timeout paired with a context of the node's:
 * taking it restores the prompting message recorded there (none or not). */
static uint8_t answer_flags(bool none)
{
    return (uint8_t)(HCW_ITEM_PROMPTS | (none ? HCW_ITEM_PROMPTS_NONE : 0));
}

/* Whether m, a response or send error no context of the node's waits for,
 * is an ANSWER for a worker with lanes: its id has bit 63, the half ids a
 * worker draws (docs/lane-design.md §4). */
static bool lane_answer(const hcn_host *h, const hcn_msg *m)
{
    return h->lanes && m->id >> 63 != 0;
}

/* An ANSWER as the guest's receive would have it, without a context (the
 * worker has it): a response from its source, or a send error whose target
 * and message are the failed request's as the envelope has it (the worker
 * puts its own record of the request there). */
static void export_lane_answer(hcn_host *h, const hcn_msg *m,
                               hw_receive_result *out)
{
    if (m->kind == HCN_MSG_RESPONSE) {
        export_source(h, m->source, &out->source);
        export_message(m, &out->message);
        return;
    }
    out->is_err = true;
    out->error.kind = (hw_send_error_kind)m->err_kind;
    const hcn_msg *o = m->orig;
    hcn_address_export(o ? o->target : m->source, &out->error.target);
    if (o) {
        export_message(o, &out->error.message);
    } else {
        out->error.message.kind = HW_MESSAGE_REQUEST;
        export_bytes(NULL, 0, &out->error.message.request.body);
    }
}

/* Take in one envelope (consuming it).  Fills *out and returns
 * INGEST_COPIED (the guest owns *out) or, when `lend` and m allows it,
 * INGEST_LENT (*out points into m and its context entry, kept until the
 * guest's next receive: lent_release); INGEST_DROPPED when it was not for
 * the guest (an answer nobody waits for). */
static int ingest(hcn_host *h, hcn_msg *m, hw_receive_result *out, bool lend)
{
    memset(out, 0, sizeof *out);
    h->taken_seq = m->seq;
    h->taken_flags = 0;
    h->taken_answer = 0;
    if (m->kind == HCN_MSG_REQUEST) {
        if (m->has_expects || m->rsvp) {
            hcn_msg_unref(h->prompting);
            h->prompting = hcn_msg_ref(m);
            h->taken_flags = HCW_ITEM_PROMPTS;
        }
        set_blob_from(h, m);
        note_offered(h, m);
        if (lend && lend_message(h, m, out)) {
            h->lent_msg = m; /* our reference, until the next receive */
            return INGEST_LENT;
        }
        export_source(h, m->source, &out->source);
        export_message(m, &out->message);
        hcn_msg_unref(m);
        return INGEST_COPIED;
    }
    hcn_ctx_entry *e;
    HASH_FIND(hh, h->contexts, &m->id, sizeof m->id, e);
    if (e == NULL && lane_answer(h, m)) {
        /* the worker's to pair: its effects are a paired answer's, but
         * for the prompting message */
        h->taken_answer = m->id;
        export_lane_answer(h, m, out);
        if (m->kind == HCN_MSG_RESPONSE) {
            set_blob_from(h, m);
            note_offered(h, m);
        }
        hcn_msg_unref(m);
        return INGEST_COPIED;
    }
    if (e == NULL) {
        hcn_log_write(&h->node->log, h->proc->id, 2, hcn_proc_level(h->proc),
                      m->kind == HCN_MSG_RESPONSE
                          ? "dropped a response nobody waits for"
                          : "dropped a send error nobody waits for");
        hcn_msg_unref(m);
        return INGEST_DROPPED;
    }
    ctx_take(h, e);
    h->taken_flags = answer_flags(h->prompting == NULL);
    if (m->kind == HCN_MSG_RESPONSE) {
        set_blob_from(h, m);
        note_offered(h, m);
        /* a save's answer is copied: ctx_free counts it done at once */
        if (lend && !e->is_save && lend_message(h, m, out)) {
            if (e->has_context) {
                out->message.has_context = true;
                out->message.context.ptr = e->context;
                out->message.context.len = e->context_len;
            }
            h->lent_msg = m;
            h->lent_ctx = e; /* out of the table; freed at the next receive */
            return INGEST_LENT;
        }
    }
    export_answer(h, e, m, out);
    ctx_free(h, e);
    hcn_msg_unref(m);
    return INGEST_COPIED;
}

/* The earliest context whose deadline has passed, as a timeout error. */
static bool expire_one(hcn_host *h, int64_t now, hw_receive_result *out)
{
    h->taken_seq = 0; /* (a timeout is no mailbox item) */
    h->taken_answer = 0;
    hcn_ctx_entry *e = dl_first(h);
    if (e == NULL || e->deadline > now)
        return false;
    ctx_take(h, e);
    h->taken_flags = answer_flags(h->prompting == NULL);
    memset(out, 0, sizeof *out);
    out->is_err = true;
    fill_error(e, HW_SEND_ERROR_TIMEOUT, &out->error);
    if (e->has_context) {
        out->has_context = true;
        export_bytes(e->context, e->context_len, &out->context);
    }
    ctx_free(h, e);
    return true;
}

/* Next envelope from the deferred queue, then the mailbox; stops the
 * process (longjmp) when the mailbox is closed. */
/* Move whatever the mailbox holds to the local queue in one lock, so a
 * busy process takes the mailbox lock once per batch, not per message. */
static void drain(hcn_host *h)
{
    hcn_msg *head, *tail;
    hcn_mailbox_drain(&h->proc->mb, &head, &tail);
    if (head == NULL)
        return;
    if (h->deferred_tail)
        h->deferred_tail->next = head;
    else
        h->deferred_head = head;
    h->deferred_tail = tail;
}

static void mark_started(hcn_host *h);
static int save_answer(hcn_host *h, hcn_msg **m);

/* Saves this instance submitted to the node's store: flushed before the
 * thread waits for anything, so no save waits for work nobody does (the
 * state module answers each at submit; see hcn_store). */
static void saves_flush(hcn_host *h)
{
    if (h->unflushed == 0)
        return;
    h->unflushed = 0;
    h->node->store.flush(h->node->store.ctx, false);
}

static int next_msg(hcn_host *h, int64_t deadline, hcn_msg **m)
{
    if (!h->started && !h->start_told)
        mark_started(h); /* a process that does not say: its first receive */
    if (!h->stack_trimmed)
        h->stack_trimmed = hcn_fault_thread_trim();
    saves_flush(h);
    if (hcn_mailbox_stopping(&h->proc->mb)) {
        if (h->saves == 0)
            hcn_kill_jump(h, HCN_KILL_STOP); /* reinstall: stop here */
        return save_answer(h, m); /* first let the saves under way end */
    }
    if (h->deferred_head == NULL)
        drain(h);
    if (h->deferred_head) {
        *m = h->deferred_head;
        h->deferred_head = (*m)->next;
        if (h->deferred_head == NULL)
            h->deferred_tail = NULL;
        (*m)->next = NULL;
        hcn_mailbox_taken(&h->proc->mb, *m);
        return HCC_EOK;
    }
    int rc = hcn_mailbox_pop(&h->proc->mb, deadline, m);
    if (rc == HCC_ECLOSED && hcn_mailbox_stopping(&h->proc->mb) && h->saves > 0)
        return save_answer(h, m); /* stopped meanwhile: as above */
    if (rc == HCC_ECLOSED)
        hcn_kill_jump(h, HCN_KILL_STOP);
    return rc;
}

static void defer_front(hcn_host *h, hcn_msg *m)
{
    m->next = h->deferred_head;
    h->deferred_head = m;
    if (h->deferred_tail == NULL)
        h->deferred_tail = m;
}

static void defer_back(hcn_host *h, hcn_msg *m)
{
    m->next = NULL;
    if (h->deferred_tail)
        h->deferred_tail->next = m;
    else
        h->deferred_head = m;
    h->deferred_tail = m;
}

/* Whether m answers a set_state_start under way. */
static bool answers_save(hcn_host *h, const hcn_msg *m)
{
    if (m->kind == HCN_MSG_REQUEST || m->kind == HCN_MSG_LANE)
        return false;
    hcn_ctx_entry *e;
    HASH_FIND(hh, h->contexts, &m->id, sizeof m->id, e);
    return e != NULL && e->is_save;
}

/* Stopping with saves under way: the next answer to one of them (from the
 * deferred queue, or waited for through the stop until the first
 * deadline); everything else is set aside for the next instance. */
static int save_answer(hcn_host *h, hcn_msg **m)
{
    for (hcn_msg **pp = &h->deferred_head, *prev = NULL; *pp;
         prev = *pp, pp = &(*pp)->next) {
        if (!answers_save(h, *pp))
            continue;
        *m = *pp;
        *pp = (*m)->next;
        if (h->deferred_tail == *m)
            h->deferred_tail = prev;
        (*m)->next = NULL;
        hcn_mailbox_taken(&h->proc->mb, *m);
        return HCC_EOK;
    }
    int64_t deadline = hcn_host_next_deadline(h);
    for (;;) {
        hcn_msg *x;
        int rc = hcn_mailbox_pop_through(&h->proc->mb, deadline, &x);
        if (rc != HCC_EOK)
            return rc; /* a deadline: the caller delivers the timeout */
        if (answers_save(h, x)) {
            *m = x;
            return HCC_EOK;
        }
        defer_back(h, x);
    }
}

/* A timeout due before m (the next message, or NULL) goes first: m is put
 * back in front and *out is the timeout.  false when none is due.  The
 * clock is read only when no message, or one that arrived after the
 * earliest deadline, leaves the question open. */
static bool expire_first(hcn_host *h, hcn_msg *m, hw_receive_result *out)
{
    hcn_ctx_entry *first = dl_first(h);
    if (first == NULL || (m != NULL && first->deadline >= m->arrived))
        return false;
    int64_t now = hcn_now_ns();
    if (first->deadline > now)
        return false;
    if (m)
        defer_front(h, m);
    expire_one(h, now, out);
    return true;
}

/* A timeout takes its place in arrival order, as Hyperware's timer task
 * pushes it into the queue at the deadline: messages that arrived before the
 * deadline come first (an answer that made it in time wins), later ones
 * after.  A deadline is precise and never early; an arrival stamp is the
 * coarse clock's (never late, early by about a tick, a few ms): an answer
 * that far past its deadline may still win. */
static bool receive_next(hcn_host *h, hw_receive_result *out, bool lend)
{
    lent_release(h);
    /* For `hyperc ps`: waiting from here, in its own code again from when
     * a message is handed over (to the clock's tick: `ps` shows
     * milliseconds). */
    _Atomic int64_t *busy = &h->proc->busy_since;
    atomic_store_explicit(busy, 0, memory_order_relaxed);
    for (;;) {
        hcn_msg *m = NULL;
        if (h->deferred_head == NULL) {
            /* The batch taken from the mailbox is done: its saves are
             * flushed (their answers come in with the next batch). */
            saves_flush(h);
            drain(h);
        }
        if (h->deferred_head)
            next_msg(h, -1, &m);
        if (expire_first(h, m, out)) {
            atomic_store_explicit(busy, hcn_now_coarse_ns(),
                                  memory_order_relaxed);
            return false;
        }
        if (m == NULL) {
            int64_t deadline = hcn_host_next_deadline(h);
            if (next_msg(h, deadline, &m) != HCC_EOK)
                continue; /* the deadline passed: deliver the timeout */
        }
        if (m->kind == HCN_MSG_LANE) {
            h->lane_ctl(h->lane_ctx, m, true); /* the worker's, waited for */
            hcn_msg_unref(m);
            continue;
        }
        int got = ingest(h, m, out, lend);
        if (got != INGEST_DROPPED) {
            atomic_store_explicit(busy, hcn_now_coarse_ns(),
                                  memory_order_relaxed);
            hcn_host_thread_busy(h);
            return got == INGEST_LENT;
        }
    }
}

static void host_receive(void *ctx, hw_receive_result *out)
{
    receive_next(ctx, out, false);
}

static bool host_receive_lent(void *ctx, hw_receive_result *out)
{
    return receive_next(ctx, out, true);
}

static hcn_msg *deferred_pop(hcn_host *h);

bool hcn_host_try_receive(hcn_host *h, hw_receive_result *out, bool own_thread)
{
    hcn_mailbox *mb = &h->proc->mb;
    if (hcn_mailbox_stopping(mb))
        return false;
    if (!h->started && !h->start_told)
        mark_started(h); /* as next_msg: its first receive */
    if (own_thread && !h->stack_trimmed)
        h->stack_trimmed = hcn_fault_thread_trim();
    for (;;) {
        hcn_msg *m = NULL;
        if (h->deferred_head == NULL) {
            saves_flush(h);
            if (atomic_load_explicit(&mb->count, memory_order_acquire))
                drain(h);
        }
        if (h->deferred_head) {
            m = deferred_pop(h);
            hcn_mailbox_taken(mb, m);
        }
        if (!expire_first(h, m, out)) {
            if (m == NULL)
                return false;
            if (m->kind == HCN_MSG_LANE) {
                if (!h->lane_ctl(h->lane_ctx, m, own_thread)) {
                    defer_front(h, m); /* no room now */
                    return false;
                }
                hcn_msg_unref(m);
                continue;
            }
            if (ingest(h, m, out, false) == INGEST_DROPPED)
                continue; /* an answer nobody waits for: dropped */
        }
        atomic_store_explicit(&h->proc->busy_since, hcn_now_coarse_ns(),
                              memory_order_relaxed);
        if (own_thread)
            hcn_host_thread_busy(h);
        return true;
    }
}

void hcn_host_thread_busy(hcn_host *h)
{
    if (!h->cache_on && h->started) {
        h->cache_on = true; /* work after the start: not idle */
        hcn_thread_cache_on();
    }
}

int64_t hcn_host_next_deadline(const hcn_host *h)
{
    const hcn_ctx_entry *e = dl_first(h);
    return e ? e->deadline : -1;
}

static bool host_has_blob(void *ctx)
{
    hcn_host *h = ctx;
    return h->last_blobbed;
}

static bool host_get_blob(void *ctx, hw_blob *out)
{
    hcn_host *h = ctx;
    memset(out, 0, sizeof *out);
    if (!h->last_blobbed || h->last_blob == NULL)
        return false;
    export_blob(h->last_blob, out);
    return true;
}

static bool host_last_blob(void *ctx, hw_blob *out)
{
    hcn_host *h = ctx;
    memset(out, 0, sizeof *out);
    if (h->last_blob == NULL)
        return false;
    export_blob(h->last_blob, out);
    return true;
}

/* ------------------------------------------------- delivering ahead */

/* One message delivered ahead (hcn_host_take_ahead). */
typedef struct hcn_ahead {
    hcn_msg *msg;         /* the envelope (a reference); NULL: a timeout */
    hcn_ctx_entry *entry; /* the context it answers, out of the table;
                             NULL for a request or an ANSWER (a lane
                             worker's, host.c's lane_answer) */
} hcn_ahead;

static hcn_ahead *ahead_at(const hcn_host *h, size_t k)
{
    return &h->ahead[(h->ahead_first + k) % h->ahead_cap];
}

static void ahead_push(hcn_host *h, hcn_msg *m, hcn_ctx_entry *e)
{
    if (h->ahead_len == h->ahead_cap) {
        size_t cap = h->ahead_cap ? 2 * h->ahead_cap : 16;
        hcn_ahead *v = hcn_xmalloc(cap * sizeof *v);
        for (size_t k = 0; k < h->ahead_len; k++)
            v[k] = *ahead_at(h, k);
        free(h->ahead);
        h->ahead = v;
        h->ahead_first = 0;
        h->ahead_cap = cap;
    }
    *ahead_at(h, h->ahead_len++) = (hcn_ahead){m, e};
}

/* Whether the guest could send a request inheriting `id` before it has
 * received every message delivered ahead so far: id is that of the
 * prompting message, of a held one, or of one that becomes prompting when
 * a message ahead is received.  An answer (or timeout) with such an id is
 * not taken ahead: an inheriting request with expects-response would
 * replace its context entry first (host_send_request, ctx_add). */
static bool may_inherit(const hcn_host *h, uint64_t id)
{
    if (h->prompting && h->prompting->id == id)
        return true;
    for (size_t i = 0; i < h->nheld; i++)
        if (h->held[i] && h->held[i]->id == id)
            return true;
    for (size_t k = 0; k < h->ahead_len; k++) {
        const hcn_ahead *a = ahead_at(h, k);
        /* (an ANSWER, with neither, prompts nothing) */
        const hcn_msg *p = a->entry ? a->entry->prompting
                           : a->msg->kind == HCN_MSG_REQUEST ? a->msg
                                                             : NULL;
        if (p && p->id == id)
            return true;
    }
    return false;
}

static void entry_unlink(hcn_host *h, hcn_ctx_entry *e)
{
    HASH_DEL(h->contexts, e);
    dl_del(h, e);
}

static void entry_relink(hcn_host *h, hcn_ctx_entry *e)
{
    HASH_ADD(hh, h->contexts, id, sizeof e->id, e);
    dl_add(h, e);
}

/* The first message of the deferred queue, out of it.  Still counted in
 * the mailbox's bound (and `hyperc ps`'s queue) until it is received. */
static hcn_msg *deferred_pop(hcn_host *h)
{
    hcn_msg *m = h->deferred_head;
    h->deferred_head = m->next;
    if (h->deferred_head == NULL)
        h->deferred_tail = NULL;
    m->next = NULL;
    return m;
}

bool hcn_host_take_ahead(hcn_host *h, hw_receive_result *out,
                         const hcn_blob **blob, bool *lent)
{
    *blob = NULL;
    *lent = false;
    memset(out, 0, sizeof *out);
    /* stopping: host_receive decides what comes (save answers, or none) */
    if (hcn_mailbox_stopping(&h->proc->mb))
        return false;
    for (;;) {
        /* the mailbox's lock only when it holds something (a count read
         * stale is a message taken at the next try) */
        if (h->deferred_head == NULL &&
            atomic_load_explicit(&h->proc->mb.count, memory_order_relaxed))
            drain(h);
        hcn_msg *m = h->deferred_head;
        /* a timeout in arrival order, as host_receive; the clock is read
         * only when no message that came before the first deadline waits
         * (a steady exchange: every message, one clock read fewer) */
        hcn_ctx_entry *due = dl_first(h);
        if (due && (m == NULL || due->deadline < m->arrived) &&
            due->deadline <= hcn_now_ns()) {
            if (may_inherit(h, due->id))
                return false;
            entry_unlink(h, due);
            h->taken_seq = 0;
            h->taken_flags = answer_flags(due->prompting == NULL);
            h->taken_answer = 0;
            out->is_err = true;
            fill_error(due, HW_SEND_ERROR_TIMEOUT, &out->error);
            if (due->has_context) {
                out->has_context = true;
                export_bytes(due->context, due->context_len, &out->context);
            }
            ahead_push(h, NULL, due);
            return true;
        }
        if (m == NULL)
            return false;
        if (m->kind == HCN_MSG_LANE) {
            /* the worker's own, written before what follows it */
            if (!h->lane_ctl(h->lane_ctx, m, false))
                return false; /* no room now: it stays first */
            deferred_pop(h);
            hcn_msg_unref(m);
            continue;
        }
        h->taken_seq = m->seq;
        h->taken_flags = 0;
        h->taken_answer = 0;
        if (m->kind == HCN_MSG_REQUEST) {
            if (m->has_expects || m->rsvp)
                h->taken_flags = HCW_ITEM_PROMPTS;
            deferred_pop(h);
            /* lent where it can be: the ahead record holds m until it is
             * received, and the caller encodes *out at once */
            *lent = lend_message(h, m, out);
            if (!*lent) {
                export_source(h, m->source, &out->source);
                export_message(m, &out->message);
            }
            *blob = m->blob;
            ahead_push(h, m, NULL);
            return true;
        }
        if (may_inherit(h, m->id))
            return false;
        hcn_ctx_entry *e;
        HASH_FIND(hh, h->contexts, &m->id, sizeof m->id, e);
        deferred_pop(h);
        if (e == NULL && lane_answer(h, m)) {
            /* the worker's (no context of the node's can be inherited for
             * it meanwhile: may_inherit said so); its effects but the
             * prompting message's at its receive */
            h->taken_answer = m->id;
            export_lane_answer(h, m, out);
            if (m->kind == HCN_MSG_RESPONSE)
                *blob = m->blob;
            ahead_push(h, m, NULL);
            return true;
        }
        if (e == NULL) {
            /* nobody waits, and nobody can before it would be received */
            hcn_log_write(&h->node->log, h->proc->id, 2,
                          hcn_proc_level(h->proc),
                          m->kind == HCN_MSG_RESPONSE
                              ? "dropped a response nobody waits for"
                              : "dropped a send error nobody waits for");
            hcn_mailbox_taken(&h->proc->mb, m);
            hcn_msg_unref(m);
            continue;
        }
        entry_unlink(h, e);
        h->taken_flags = answer_flags(e->prompting == NULL);
        /* a response lent as a request is (the entry, its context, stays
         * in the ahead record too); a send error copied */
        *lent = m->kind == HCN_MSG_RESPONSE && lend_message(h, m, out);
        if (*lent && e->has_context) {
            out->message.has_context = true;
            out->message.context.ptr = e->context;
            out->message.context.len = e->context_len;
        } else if (!*lent) {
            export_answer(h, e, m, out);
        }
        if (m->kind == HCN_MSG_RESPONSE)
            *blob = m->blob;
        ahead_push(h, m, e);
        return true;
    }
}

void hcn_host_untake_ahead(hcn_host *h)
{
    if (h->ahead_len == 0)
        return;
    hcn_ahead a = *ahead_at(h, --h->ahead_len);
    if (a.entry)
        entry_relink(h, a.entry);
    if (a.msg)
        defer_front(h, a.msg);
}

bool hcn_host_blocked(hcn_host *h)
{
    if (hcn_mailbox_stopping(&h->proc->mb))
        return false;
    const hcn_ctx_entry *e = dl_first(h);
    return h->deferred_head != NULL || (e && e->deadline <= hcn_now_ns());
}

size_t hcn_host_ahead_count(const hcn_host *h)
{
    return h->ahead_len;
}

bool hcn_host_receive_ahead(hcn_host *h)
{
    if (h->ahead_len == 0)
        return false;
    hcn_ahead a = *ahead_at(h, 0);
    h->ahead_first = (h->ahead_first + 1) % h->ahead_cap;
    h->ahead_len--;
    /* what host_receive does around handing a message over */
    if (!h->started && !h->start_told)
        mark_started(h);
    saves_flush(h);
    if (a.entry) {
        /* ctx_take's part: the request it answers prompts again */
        hcn_msg_unref(h->prompting);
        h->prompting = a.entry->prompting;
        a.entry->prompting = NULL;
        if (a.msg && a.msg->kind == HCN_MSG_RESPONSE) {
            set_blob_from(h, a.msg);
            note_offered(h, a.msg);
        }
        ctx_free(h, a.entry);
    } else if (a.msg->kind == HCN_MSG_REQUEST) {
        if (a.msg->has_expects || a.msg->rsvp) {
            hcn_msg_unref(h->prompting);
            h->prompting = hcn_msg_ref(a.msg);
        }
        set_blob_from(h, a.msg);
        note_offered(h, a.msg);
    } else if (a.msg->kind == HCN_MSG_RESPONSE) {
        /* an ANSWER: as a paired response, the prompting message aside */
        set_blob_from(h, a.msg);
        note_offered(h, a.msg);
    }
    if (a.msg)
        hcn_mailbox_taken(&h->proc->mb, a.msg);
    hcn_msg_unref(a.msg);
    atomic_store_explicit(&h->proc->busy_since, hcn_now_coarse_ns(),
                          memory_order_relaxed);
    if (!h->cache_on && h->started) {
        h->cache_on = true;
        hcn_thread_cache_on();
    }
    return true;
}

/* The messages delivered ahead that the guest never received: back to the
 * front of the queue in their order (hcn_host_fini), their contexts
 * released with the others. */
static void ahead_return(hcn_host *h)
{
    while (h->ahead_len) {
        hcn_ahead a = *ahead_at(h, --h->ahead_len);
        if (a.entry)
            ctx_free(h, a.entry);
        if (a.msg)
            defer_front(h, a.msg);
    }
    free(h->ahead);
    h->ahead = NULL;
    h->ahead_cap = h->ahead_first = 0;
}

/* ------------------------------------------------------------ sending */

/* The target's process entry, from a small cache of recent peers so that a
 * steady exchange does not take the process table's lock per message.  An
 * entry is dropped once its process has exited (a later process of the same
 * id is a new entry).  Returns a borrowed pointer, or NULL to let routing
 * look it up (other nodes, unknown ids). */
static hcn_proc *peer(hcn_host *h, const char *target, unsigned *slot)
{
    /* the slot found last first: a process answering and calling one peer
     * finds it with one compare (a miss looks at every slot as before) */
    hcn_proc *last = h->peers[h->peer_last];
    if (last != NULL && strcmp(last->addr, target) == 0 &&
        atomic_load(&last->status) != HCN_PROC_EXITED) {
        *slot = h->peer_last;
        return last;
    }
    for (unsigned i = 0; i < 8; i++) {
        hcn_proc *p = h->peers[i];
        if (p == NULL || strcmp(p->addr, target) != 0)
            continue;
        if (atomic_load(&p->status) != HCN_PROC_EXITED) {
            *slot = h->peer_last = i;
            return p;
        }
        hcn_proc_unref(p);
        h->peers[i] = NULL;
    }
    const char *name = h->node->name;
    size_t nl = h->node->name_len;
    if (strncmp(target, name, nl) != 0 || target[nl] != '@')
        return NULL;
    hcn_proc *p = hcn_node_find(h->node, target + nl + 1);
    if (p == NULL)
        return NULL;
    *slot = h->peer_last = h->peer_next++ % 8;
    hcn_proc_unref(h->peers[*slot]);
    h->peers[*slot] = p;
    h->peer_sent[*slot] = 0;
    return p;
}

struct hcn_lane_out {
    hcn_proc *peer; /* borrowed: the lane record holds it */
    struct hcw_lane *lane;
    uint32_t number;
    int dir;
};

void hcn_host_lane_add(hcn_host *h, hcn_proc *peer, struct hcw_lane *lane,
                       uint32_t number, int dir)
{
    size_t i = 0;
    while (i < h->nlane_peers && strcmp(h->lane_peers[i], peer->addr) != 0)
        i++;
    if (i == h->nlane_peers) {
        h->lane_peers =
            hcn_xrealloc(h->lane_peers, (i + 1) * sizeof *h->lane_peers);
        h->lane_peers[h->nlane_peers++] = hcn_xstrdup(peer->addr);
    }
    if (h->lane_out == NULL)
        h->lane_out = hcn_xcalloc(HCW_LANES_MAX, sizeof *h->lane_out);
    if (h->nlane_out == HCW_LANES_MAX)
        return; /* (the node opens no more) */
    h->lane_out[h->nlane_out++] =
        (struct hcn_lane_out){peer, lane, number, dir};
    hcw_lane_set_last_seq(lane, dir, atomic_load(&peer->mb.push_seq));
}

void hcn_host_lane_remove(hcn_host *h, uint32_t number)
{
    for (unsigned i = 0; i < h->nlane_out; i++) {
        if (h->lane_out[i].number == number) {
            h->lane_out[i] = h->lane_out[--h->nlane_out];
            return;
        }
    }
}

uint32_t hcn_host_taken_seq(const hcn_host *h)
{
    return h->taken_seq;
}

uint8_t hcn_host_taken_flags(const hcn_host *h)
{
    return h->taken_flags;
}

uint64_t hcn_host_taken_answer(const hcn_host *h)
{
    return h->taken_answer;
}

static void route(hcn_host *h, hcn_msg *m)
{
    unsigned slot = 8;
    hcn_proc *to = peer(h, m->target, &slot);
    uint32_t seq = hcn_route_ex(h->node, h->proc, to, m);
    for (unsigned i = 0; seq && i < h->nlane_out; i++)
        if (h->lane_out[i].peer == to)
            hcw_lane_set_last_seq(h->lane_out[i].lane, h->lane_out[i].dir, seq);
    /* a pair that keeps talking by node gets a lane (looked at again
     * every 1024 messages, if the first look found it could not) */
    if (h->lanes && slot < 8 && to->isolated &&
        (++h->peer_sent[slot] & 1023) == HCN_LANE_THRESHOLD)
        hcn_lanes_consider(h->node, h->proc, to);
}

/* Build the envelope of a guest request per Hyperware's rules. */
static hcn_msg *build_request(hcn_host *h, const char *target,
                              size_t target_len, const hw_request *r,
                              const hw_blob *blob, uint64_t id)
{
    const char *rsvp = NULL;
    size_t rsvp_len = 0;
    if (id == 0) /* (else a worker's lane id, never inherited) */
        id = r->inherit && h->prompting ? h->prompting->id : fresh_id(h);
    if (r->has_expects_response) {
        rsvp = h->proc->addr;
        rsvp_len = h->addr_len;
    } else if (r->inherit && h->prompting) {
        rsvp = h->prompting->rsvp;
        rsvp_len = h->prompting->rsvp_len;
    }
    hcn_blob *b = NULL;
    if (blob)
        b = hcn_blob_new(blob->mime, blob->bytes.ptr, blob->bytes.len);
    else if (r->inherit && h->last_blob)
        b = hcn_blob_ref(h->last_blob);
    size_t ncaps;
    hcn_cap *caps = filter_caps(h, &r->capabilities, &ncaps);
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = h->proc->addr,
                    .source_len = h->addr_len, .target = target,
                    .target_len = target_len, .rsvp = rsvp,
                    .rsvp_len = rsvp_len, .inherit = r->inherit,
                    .has_expects = r->has_expects_response,
                    .expects = r->expects_response, .body = r->body.ptr,
                    .body_len = r->body.len, .metadata = r->metadata,
                    .caps = caps, .ncaps = ncaps, .blob = b);
    free_caps(caps, ncaps);
    hcn_blob_unref(b);
    return m;
}

/* Send req under `id` (0: a fresh or inherited one, and a context filed
 * when it expects a response; else a worker's lane id, whose context the
 * worker keeps). */
static void send_request_as(hcn_host *h, const hw_address *target,
                            const hw_request *req, const hw_bytes *context,
                            const hw_blob *blob, uint64_t id)
{
    char buf[512];
    size_t tl = 0;
    const char *t = addr_into(h, target, buf, sizeof buf, &tl);
    char *heap = t ? NULL : addr_string(h, target);
    hcn_msg *m = build_request(h, t ? t : heap, tl, req, blob, id);
    if (heap != NULL)
        free(heap);
    if (req->has_expects_response && id == 0) {
        ctx_add(h, m, context);
        forget_lane_id(h, m->id);
    }
    route(h, m);
}

static void host_send_request(void *ctx, const hw_address *target,
                              const hw_request *req, const hw_bytes *context,
                              const hw_blob *blob)
{
    send_request_as(ctx, target, req, context, blob, 0);
}

void hcn_host_send_lane_request(hcn_host *h, const hw_address *target,
                                const hw_request *req, const hw_blob *blob,
                                uint64_t id)
{
    send_request_as(h, target, req, NULL, blob, id);
}

bool hcn_host_sync(hcn_host *h, int inst, const hcw_prompting *p,
                   const char **why)
{
    *why = NULL;
    if (!h->lanes) {
        *why = "SYNC from a worker without lanes";
        return false;
    }
    if (p->none) {
        hcn_msg_unref(h->prompting);
        h->prompting = NULL;
        return true;
    }
    if (p->id >> 63 == 0) {
        *why = "SYNC of an id without bit 63";
        return false;
    }
    char buf[512];
    const char *src = addr_into(h, &p->source, buf, sizeof buf, NULL);
    const char *peer = NULL;
    for (size_t i = 0; src && i < h->nlane_peers && !peer; i++)
        if (strcmp(h->lane_peers[i], src) == 0)
            peer = h->lane_peers[i];
    if (peer == NULL) {
        *why = "SYNC of a request from a process that is no lane's peer";
        return false;
    }
    hcn_lanes_adopted(h->node, h->proc, inst, peer, p->id);
    /* a stub of the lane request: the node's own record of the peer as
     * its source, answered to it when it expects a response */
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = p->id, .source = peer,
                    .target = h->proc->addr, .rsvp = p->expects ? peer : NULL,
                    .has_expects = p->expects);
    m->stub = true;
    hcn_msg_unref(h->prompting);
    h->prompting = m;
    /* a new envelope, not answered yet */
    hcn_msg_unref(h->answered);
    h->answered = NULL;
    return true;
}

bool hcn_host_sync_blob(hcn_host *h, const hw_blob *b, const char **why)
{
    *why = NULL;
    if (!h->lanes) {
        *why = "SYNC from a worker without lanes";
        return false;
    }
    /* (last_blobbed is the newest message's, which the worker answers) */
    hcn_blob *nb = b ? hcn_blob_new(b->mime, b->bytes.ptr, b->bytes.len) : NULL;
    hcn_blob_unref(h->last_blob);
    h->last_blob = nb;
    return true;
}

static void host_send_response(void *ctx, const hw_response *resp,
                               const hw_blob *blob)
{
    hcn_host *h = ctx;
    if (h->prompting == NULL) {
        hcn_log_write(&h->node->log, h->proc->id, 0, hcn_proc_level(h->proc),
                      "send-response with no request to answer: dropped");
        return;
    }
    const hcn_msg *p = h->prompting;
    hcn_blob *b = NULL;
    if (resp->inherit)
        b = hcn_blob_ref(h->last_blob);
    else if (blob)
        b = hcn_blob_new(blob->mime, blob->bytes.ptr, blob->bytes.len);
    size_t ncaps;
    hcn_cap *caps = filter_caps(h, &resp->capabilities, &ncaps);
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = p->id,
                    .source = h->proc->addr, .source_len = h->addr_len,
                    .target = p->rsvp ? p->rsvp : p->source,
                    .target_len = p->rsvp ? p->rsvp_len : p->source_len,
                    .inherit = resp->inherit, .body = resp->body.ptr,
                    .body_len = resp->body.len, .metadata = resp->metadata,
                    .caps = caps, .ncaps = ncaps, .blob = b);
    free_caps(caps, ncaps);
    hcn_blob_unref(b);
    if (h->answered != p) {
        hcn_msg_unref(h->answered);
        h->answered = hcn_msg_ref(h->prompting);
    }
    route(h, m);
}

/* Wait for the answer to context entry `e` (already routed); other
 * envelopes go to the deferred queue. */
static void await_entry(hcn_host *h, hcn_ctx_entry *e, hcn_msg **resp,
                        int *err_kind)
{
    uint64_t id = e->id;
    *resp = NULL;
    *err_kind = -1;
    /* The answer may already have been set aside by an earlier wait. */
    for (hcn_msg **pp = &h->deferred_head; *pp; pp = &(*pp)->next) {
        hcn_msg *m = *pp;
        if (m->kind == HCN_MSG_REQUEST || m->id != id)
            continue;
        *pp = m->next;
        if (h->deferred_tail == m) {
            h->deferred_tail = NULL;
            for (hcn_msg *t = h->deferred_head; t; t = t->next)
                h->deferred_tail = t;
        }
        m->next = NULL;
        if (m->kind == HCN_MSG_SEND_ERROR) {
            *err_kind = m->err_kind;
            hcn_msg_unref(m);
        } else {
            *resp = m;
        }
        return;
    }
    saves_flush(h);
    for (;;) {
        hcn_msg *m;
        int64_t deadline = e->deadline;
        int rc = hcn_mailbox_pop_through(&h->proc->mb, deadline, &m);
        if (rc == HCC_ECLOSED) {
            /* Stopping: fail this call once, so that the guest frees what
             * it holds on its way back to hw_receive, where it stops. */
            if (h->closing_seen)
                hcn_kill_jump(h, HCN_KILL_STOP);
            h->closing_seen = true;
            *err_kind = HW_SEND_ERROR_OFFLINE;
            return;
        }
        if (rc == HCC_ETIMEOUT) {
            if (hcn_now_ns() < deadline)
                continue;
            *err_kind = HW_SEND_ERROR_TIMEOUT;
            return;
        }
        if (m->kind != HCN_MSG_REQUEST && m->id == id) {
            if (m->kind == HCN_MSG_SEND_ERROR) {
                *err_kind = m->err_kind;
                hcn_msg_unref(m);
            } else {
                *resp = m;
            }
            return;
        }
        defer_back(h, m);
    }
}

static int host_send_and_await(void *ctx, const hw_address *target,
                               const hw_request *req, const hw_blob *blob,
                               hw_await_result *out)
{
    hcn_host *h = ctx;
    memset(out, 0, sizeof *out);
    if (!req->has_expects_response)
        return -1;
    char *t = addr_string(h, target);
    if (strcmp(t, h->proc->addr) == 0) {
        free(t);
        return -1;
    }
    hcn_msg *m = build_request(h, t, 0, req, blob, 0);
    free(t);
    hcn_ctx_entry *e = ctx_add(h, m, NULL);
    forget_lane_id(h, m->id);
    route(h, m);
    hcn_msg *resp;
    int err_kind;
    await_entry(h, e, &resp, &err_kind);
    ctx_take(h, e);
    if (resp) {
        set_blob_from(h, resp);
        note_offered(h, resp);
        hcn_address_export(resp->source, &out->source);
        export_message(resp, &out->message);
        hcn_msg_unref(resp);
    } else {
        out->is_err = true;
        fill_error(e, err_kind, &out->error);
    }
    ctx_free(h, e);
    return 0;
}

int hcn_host_kernel_call(hcn_host *h, const char *target_pid, const char *body,
                         hcn_blob *blob, uint64_t timeout_s, hcn_msg **resp)
{
    const char *src = h->node->kernel_addr;
    char *dst = hcn_xasprintf("%s@%s", h->node->name, target_pid);
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = fresh_id(h), .source = src,
                    .target = dst, .rsvp = h->proc->addr, .has_expects = true,
                    .expects = timeout_s, .body = body,
                    .body_len = strlen(body), .metadata = h->proc->id,
                    .blob = blob);
    free(dst);
    /* The prompting message and blobs are left as they were (Hyperware
     * leaves has-blob stale here). */
    hcn_msg *saved_prompting = h->prompting ? hcn_msg_ref(h->prompting) : NULL;
    hcn_ctx_entry *e = ctx_add(h, m, NULL);
    hcn_route(h->node, m);
    int err_kind;
    await_entry(h, e, resp, &err_kind);
    ctx_take(h, e);
    ctx_free(h, e);
    hcn_msg_unref(h->prompting);
    h->prompting = saved_prompting;
    return *resp ? HCC_EOK : HCC_ETIMEOUT;
}

/* ---------------------------------------------------------------- state */

static bool state_call(hcn_host *h, const char *action, const uint8_t *bytes,
                       size_t len, bool with_blob, hcn_msg **resp)
{
    json_t *body = json_pack("{ss}", action, h->proc->id);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    hcn_blob *b = with_blob ? hcn_blob_new(NULL, bytes, len) : NULL;
    int rc = hcn_host_kernel_call(h, "state:distro:sys", text, b, 5, resp);
    hcn_blob_unref(b);
    free(text);
    return rc == HCC_EOK;
}

static bool body_is(const hcn_msg *m, const char *s)
{
    size_t n = strlen(s);
    return m->body_len == n && memcmp(m->body, s, n) == 0;
}

static bool host_get_state(void *ctx, hw_bytes *out)
{
    hcn_host *h = ctx;
    memset(out, 0, sizeof *out);
    hcn_msg *r;
    if (!state_call(h, "GetState", NULL, 0, false, &r))
        return false;
    bool ok = r->blob != NULL && body_is(r, "\"GetState\"");
    if (ok)
        export_bytes(r->blob->bytes, r->blob->len, out);
    hcn_msg_unref(r);
    return ok;
}

static void host_set_state_start(void *ctx, const uint8_t *bytes, size_t len,
                                 const hw_bytes *context, uint64_t timeout_s)
{
    hcn_host *h = ctx;
    if (h->save_body == NULL) { /* the same for every save of the instance */
        json_t *body = json_pack("{ss}", "SetState", h->proc->id);
        h->save_body = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        h->save_dst = hcn_xasprintf("%s@state:distro:sys", h->node->name);
    }
    hcn_blob *b = hcn_blob_new(NULL, bytes, len);
    /* as state_call, from the kernel on the process's behalf, but the
     * answer comes to receive like any other */
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = fresh_id(h),
                    .source = h->node->kernel_addr, .target = h->save_dst,
                    .rsvp = h->proc->addr, .has_expects = true,
                    .expects = timeout_s, .body = h->save_body,
                    .body_len = strlen(h->save_body), .metadata = h->proc->id,
                    .blob = b);
    hcn_blob_unref(b);
    hcn_ctx_entry *e = ctx_add(h, m, context);
    e->is_save = true;
    h->saves++;
    if (h->node->store.submit != NULL) {
        /* straight into the store (the state module's log): answered
         * into this process's mailbox */
        h->node->store.submit(h->node->store.ctx, m);
        h->unflushed++;
    } else {
        hcn_route(h->node, m);
    }
}

/* The store's answer to a set-state or clear-state put straight into it
 * (rc 0 or -1 with errno), logged when it failed. */
static bool stored(hcn_host *h, const char *what, int rc)
{
    if (rc == 0)
        return true;
    char why[256];
    snprintf(why, sizeof why, "%s: the state module could not store it: %s",
             what, strerror(errno));
    hcn_log_write(&h->node->log, h->proc->id, 0, hcn_proc_level(h->proc), why);
    return false;
}

/* set-state and clear-state go straight into the state module's store
 * where it has one, so a call that returns has been stored, and one that
 * failed will not be: a request that timed out would still wait in the
 * module's mailbox, and be stored after saves made since (every other save
 * of the process goes straight in).  Only the node's own processes may
 * send the module requests of their own. */
static bool host_set_state(void *ctx, const uint8_t *bytes, size_t len)
{
    hcn_host *h = ctx;
    if (h->node->store.save != NULL)
        return stored(
            h, "set-state",
            h->node->store.save(h->node->store.ctx, h->proc->id, bytes, len));
    hcn_msg *r;
    if (!state_call(h, "SetState", bytes, len, true, &r)) {
        hcn_log_write(&h->node->log, h->proc->id, 0, hcn_proc_level(h->proc),
                      "set-state: no answer from the state module (in 5 s, "
                      "or the process is stopping)");
        return false;
    }
    bool ok = body_is(r, "\"SetState\"");
    hcn_msg_unref(r);
    return ok;
}

static int host_set_state_now(void *ctx, const uint8_t *bytes, size_t len)
{
    hcn_host *h = ctx;
    /* With no such store, or messages waiting for this process, the guest
     * saves by message: the answer comes behind those messages, and the
     * saves their handlers make meanwhile are grouped into one. */
    if (h->node->store.save == NULL || h->deferred_head != NULL ||
        atomic_load_explicit(&h->proc->mb.count, memory_order_relaxed) > 0)
        return -1;
    return host_set_state(ctx, bytes, len) ? 1 : 0; /* (straight in) */
}

static bool host_clear_state(void *ctx)
{
    hcn_host *h = ctx;
    if (h->node->store.del != NULL)
        return stored(h, "clear-state",
                      h->node->store.del(h->node->store.ctx, h->proc->id));
    hcn_msg *r;
    if (!state_call(h, "DeleteState", NULL, 0, false, &r))
        return false;
    bool ok = body_is(r, "\"DeleteState\"");
    hcn_msg_unref(r);
    return ok;
}

/* ------------------------------------------------------------ on-exit */

static void host_get_on_exit(void *ctx, hw_on_exit *out)
{
    hcn_host *h = ctx;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&h->proc->lock);
    const hcn_on_exit *o = &h->proc->on_exit;
    out->kind = (hw_on_exit_kind)o->kind;
    if (o->nreqs) {
        out->requests = hcn_xcalloc(o->nreqs, sizeof *out->requests);
        out->requests_len = o->nreqs;
        for (size_t i = 0; i < o->nreqs; i++) {
            hw_outgoing_request *r = &out->requests[i];
            hcn_address_export(o->reqs[i].target, &r->target);
            r->request.inherit = o->reqs[i].inherit;
            export_bytes(o->reqs[i].body, o->reqs[i].body_len,
                         &r->request.body);
            r->request.metadata =
                o->reqs[i].metadata ? hcn_xstrdup(o->reqs[i].metadata) : NULL;
            if (o->reqs[i].blob) {
                r->has_blob = true;
                export_blob(o->reqs[i].blob, &r->blob);
            }
        }
    }
    pthread_mutex_unlock(&h->proc->lock);
}

static void host_set_on_exit(void *ctx, const hw_on_exit *in)
{
    hcn_host *h = ctx;
    hcn_on_exit o = {.kind = in->kind};
    if (in->kind == HW_ON_EXIT_REQUESTS && in->requests_len) {
        o.reqs = hcn_xcalloc(in->requests_len, sizeof *o.reqs);
        o.nreqs = in->requests_len;
        for (size_t i = 0; i < in->requests_len; i++) {
            const hw_outgoing_request *r = &in->requests[i];
            hcn_exit_req *e = &o.reqs[i];
            e->target = addr_string(h, &r->target);
            e->inherit = r->request.inherit;
            e->body_len = r->request.body.len;
            e->body = hcn_xmalloc(e->body_len);
            if (e->body_len)
                memcpy(e->body, r->request.body.ptr, e->body_len);
            e->metadata =
                r->request.metadata ? hcn_xstrdup(r->request.metadata) : NULL;
            if (r->has_blob)
                e->blob = hcn_blob_new(r->blob.mime, r->blob.bytes.ptr,
                                       r->blob.bytes.len);
        }
    }
    pthread_mutex_lock(&h->proc->lock);
    hcn_on_exit_fini(&h->proc->on_exit);
    h->proc->on_exit = o;
    pthread_mutex_unlock(&h->proc->lock);
}

/* --------------------------------------------------------- capabilities */

static void host_save_caps(void *ctx, const hw_capability *caps, size_t n)
{
    hcn_host *h = ctx;
    hcn_proc *p = h->proc;
    for (size_t i = 0; i < n; i++) {
        char *issuer = addr_string(h, &caps[i].issuer);
        char *canon =
            caps[i].params ? hcn_json_canonical(caps[i].params) : NULL;
        bool ok = false;
        pthread_mutex_lock(&p->lock);
        const hcn_cap *o =
            canon ? hcn_capset_get(&p->offered, issuer, canon) : NULL;
        if (canon && (strcmp(issuer, p->addr) == 0 || o != NULL)) {
            /* another node's keeps the signature it was offered with */
            hcn_capset_add_signed(&p->caps, issuer, canon, o ? o->sig : NULL,
                                  o ? o->sig_len : 0);
            ok = true;
        }
        pthread_mutex_unlock(&p->lock);
        if (!ok) {
            char *msg = hcn_xasprintf(
                "save-capabilities: ignored %s %s: it was never sent to this "
                "process",
                issuer, caps[i].params ? caps[i].params : "(null)");
            hcn_log_write(&h->node->log, p->id, 0, hcn_proc_level(p), msg);
            free(msg);
        }
        free(issuer);
        free(canon);
    }
}

static void host_drop_caps(void *ctx, const hw_capability *caps, size_t n)
{
    hcn_host *h = ctx;
    for (size_t i = 0; i < n; i++) {
        char *issuer = addr_string(h, &caps[i].issuer);
        pthread_mutex_lock(&h->proc->lock);
        if (caps[i].params)
            hcn_capset_remove(&h->proc->caps, issuer, caps[i].params);
        pthread_mutex_unlock(&h->proc->lock);
        free(issuer);
    }
}

static void host_our_caps(void *ctx, hw_capability_list *out)
{
    hcn_host *h = ctx;
    pthread_mutex_lock(&h->proc->lock);
    export_caps(h->proc->caps.v, h->proc->caps.len, out);
    pthread_mutex_unlock(&h->proc->lock);
}

/* ---------------------------------------------------------------- spawn */

static hw_spawn_error host_spawn(void *ctx, const char *name, const char *path,
                                 const hw_on_exit *on_exit,
                                 const hw_capability *rc, size_t rc_len,
                                 const hw_process_id *gp,
                                 const char *const *gparams, size_t g_len,
                                 bool public_, hw_process_id *out)
{
    return hcn_spawn(ctx, name, path, on_exit, rc, rc_len, gp, gparams, g_len,
                     public_, out);
}

/* --------------------------------------------------- task stack guards */

static int host_guard_add(void *ctx, const void *lo, size_t len)
{
    return hcn_fault_guard_add(ctx, lo, len);
}

static void host_guard_remove(void *ctx, int handle)
{
    hcn_fault_guard_remove(ctx, handle);
}

/* ------------------------------------------------- held prompting messages */

static int host_prompting_hold(void *ctx)
{
    hcn_host *h = ctx;
    if (h->prompting == NULL)
        return 0;
    size_t i = 0;
    while (i < h->nheld && h->held[i] != NULL)
        i++;
    if (i == h->nheld) {
        hcn_msg **v = realloc(h->held, (h->nheld + 1) * sizeof *v);
        if (v == NULL)
            return 0;
        h->held = v;
        h->nheld++;
    }
    h->held[i] = hcn_msg_ref(h->prompting);
    return (int)i + 1;
}

static void host_prompting_set(void *ctx, int handle)
{
    hcn_host *h = ctx;
    if (handle <= 0 || (size_t)handle > h->nheld || !h->held[handle - 1])
        return;
    /* a task resumed after its own call's answer finds it current already
     * (ctx_take put it back): no count taken and given back */
    if (h->prompting == h->held[handle - 1])
        return;
    hcn_msg_unref(h->prompting);
    h->prompting = hcn_msg_ref(h->held[handle - 1]);
}

static void host_prompting_release(void *ctx, int handle)
{
    hcn_host *h = ctx;
    if (handle <= 0 || (size_t)handle > h->nheld)
        return;
    hcn_msg_unref(h->held[handle - 1]);
    h->held[handle - 1] = NULL;
}

/* -------------------------------------------------------------- started */

static void mark_started(hcn_host *h)
{
    h->started = true;
    atomic_store(&h->proc->started_inst, atomic_load(&h->proc->instance));
}

static void host_tasks(void *ctx, uint32_t live)
{
    hcn_host *h = ctx;
    atomic_store_explicit(&h->proc->tasks,
                          live > INT32_MAX ? INT32_MAX : (int)live,
                          memory_order_relaxed);
}

static void host_started(void *ctx, bool done)
{
    hcn_host *h = ctx;
    if (done && !h->started)
        mark_started(h);
    else if (!done)
        h->start_told = true;
}

/* -------------------------------------------------------- construction */

/* A lane's control entry for a host whose worker takes no lanes (an entry
 * for an earlier instance, say): nothing to do. */
static int lane_entry_drop(void *ctx, hcn_msg *m, bool may_wait)
{
    (void)ctx;
    (void)m;
    (void)may_wait;
    return 1;
}

void hcn_host_init(hcn_host *h, hcn_proc *p)
{
    memset(h, 0, sizeof *h);
    h->proc = p;
    h->addr_len = strlen(p->addr);
    h->node = p->node;
    h->lane_ctl = lane_entry_drop;
    h->rng = hcn_random_u64() | 1;
    hwn_host *t = &h->table;
    t->abi_version = HW_ABI_VERSION;
    t->size = sizeof *t;
    t->ctx = h;
    t->print_to_terminal = host_print;
    t->our = host_our;
    t->get_on_exit = host_get_on_exit;
    t->set_on_exit = host_set_on_exit;
    t->get_state = host_get_state;
    t->set_state = host_set_state;
    t->clear_state = host_clear_state;
    t->spawn = host_spawn;
    t->save_capabilities = host_save_caps;
    t->drop_capabilities = host_drop_caps;
    t->our_capabilities = host_our_caps;
    t->receive = host_receive;
    t->has_blob = host_has_blob;
    t->get_blob = host_get_blob;
    t->last_blob = host_last_blob;
    t->send_request = host_send_request;
    t->send_response = host_send_response;
    t->send_and_await_response = host_send_and_await;
    t->guard_add = host_guard_add;
    t->guard_remove = host_guard_remove;
    t->prompting_hold = host_prompting_hold;
    t->prompting_set = host_prompting_set;
    t->prompting_release = host_prompting_release;
    t->started = host_started;
    t->set_state_start = host_set_state_start;
    t->tasks = host_tasks;
    t->receive_lent = host_receive_lent;
    t->set_state_now = host_set_state_now;
}

void hcn_host_fini(hcn_host *h)
{
    free(h->lane_out);
    for (size_t i = 0; i < h->nlane_peers; i++)
        free(h->lane_peers[i]);
    free(h->lane_peers);
    lent_release(h);
    ahead_return(h);
    saves_flush(h); /* what the instance queued is stored all the same */
    free(h->save_body);
    free(h->save_dst);
    hcn_ctx_entry *e, *tmp;
    HASH_ITER(hh, h->contexts, e, tmp)
    {
        HASH_DEL(h->contexts, e);
        ctx_free(h, e);
    }
    free(h->heap);
    while (h->spare) {
        hcn_ctx_entry *n = h->spare->next_spare;
        free(h->spare);
        h->spare = n;
    }
    /* Requests set aside while waiting (or delivered ahead and never
     * received): back to the mailbox for the next instance when the
     * process is being reinstalled; otherwise their senders hear now, as
     * for the request the instance was handling.  Responses belong to this
     * instance's waits and go with it. */
    bool keep = hcn_mailbox_stopping(&h->proc->mb);
    bool fail = !keep && !atomic_load(&h->node->shutting_down);
    hcn_msg *kept = NULL, *kept_tail = NULL;
    hcn_msg *m = h->deferred_head;
    while (m) {
        hcn_msg *n = m->next;
        m->next = NULL;
        if (keep && m->kind == HCN_MSG_REQUEST) {
            if (kept_tail)
                kept_tail->next = m;
            else
                kept = m;
            kept_tail = m;
        } else {
            hcn_mailbox_taken(&h->proc->mb, m);
            if (fail)
                hcn_proc_fail_request(h->node, m);
            hcn_msg_unref(m);
        }
        m = n;
    }
    hcn_mailbox_requeue(&h->proc->mb, kept, kept_tail);
    /* The request a crashed instance was handling: its sender hears now
     * (unless a task held it: then it is failed below, once). */
    if (h->crashed && h->prompting && h->prompting != h->answered &&
        h->prompting->kind == HCN_MSG_REQUEST &&
        !atomic_load(&h->node->shutting_down)) {
        bool held = false;
        for (size_t i = 0; i < h->nheld && !held; i++)
            held = h->held[i] == h->prompting;
        if (!held)
            hcn_proc_fail_request(h->node, h->prompting);
    }
    hcn_msg_unref(h->prompting);
    hcn_msg_unref(h->answered);
    hcn_blob_unref(h->last_blob);
    for (unsigned i = 0; i < 8; i++)
        hcn_proc_unref(h->peers[i]);
    hcn_fault_guards_fini(h);
    /* Requests a task was still answering: this instance will not, so
     * their senders hear it now rather than at their deadline. */
    for (size_t i = 0; i < h->nheld; i++) {
        if (h->held[i] && !atomic_load(&h->node->shutting_down))
            hcn_proc_fail_request(h->node, h->held[i]);
        hcn_msg_unref(h->held[i]);
    }
    free(h->held);
    h->held = NULL;
    h->nheld = 0;
    memset(h, 0, sizeof *h);
}
