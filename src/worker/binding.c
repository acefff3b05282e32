/* The worker's host table: every entry of the native binding carried to the
 * node as a call of the worker protocol, and its results read back from
 * the node's REPLY.  The guest cannot tell it from the in-process table.
 * A broken or closed link ends the worker (hcw_die): the node has gone
 * or stopped the instance. */
#include "binding_int.h"

#include "../common/abi_types.h"
#include "slot.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the worker keeps itself (protocol version 2): the blob the last
 * RECEIVE or SEND_AND_AWAIT reply carried, and which prompting handles
 * are held.  The guest is single-threaded, so plain statics. */
static struct {
    hw_blob last;   /* the last blob received (valid when has_last) */
    bool has_last;  /* a message with a blob has come */
    bool blobbed;   /* the newest message had one (hw_has_blob) */
    bool stale;     /* the node's last blob is not `last` (one came by
                       lane, or the node kept one of an ANSWER dropped
                       here): a call by node that inherits the last blob
                       SYNCs it first (docs/lane-design.md §5) */
    uint32_t taken; /* receives so far (a worker with lanes) */
} kept;

/* The blob of the message the guest now has (`has` false: none) becomes
 * the current blob, as the node's host does; taken. */
static void keep_blob(bool has, hw_blob *b)
{
    kept.blobbed = has;
    if (has) {
        kept.stale = false; /* (by node: the node keeps the same; a lane's
                               caller marks it stale after) */
        if (kept.has_last)
            hw_blob_fini(&kept.last);
        kept.last = *b;
        kept.has_last = true;
    }
}

/* SYNC as a call by node needs it (hcw_prompt_sync): with the worker's
 * last blob (or none) when the call inherits it (`inherits`) and the
 * node's is stale; the node's is the worker's once that is sent. */
static void sync_for(bool inherits)
{
    bool blob = inherits && kept.stale;
    if (blob)
        kept.stale = false;
    hcw_prompt_sync(blob, blob && kept.has_last ? &kept.last : NULL);
}

/* Read the `blob | nil` a reply carries for a message the guest now has
 * and keep it (keep_blob). */
static void take_blob(hcw_in *in)
{
    bool has;
    hw_blob b;
    if (!hcw_get_blob_opt(in, &has, &b))
        hcw_die("a malformed REPLY from the node");
    keep_blob(has, &b);
}

void *hcw_dup(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q == NULL)
        hcw_die("out of memory");
    if (n)
        memcpy(q, p, n);
    return q;
}

void hcw_address_copy(const hw_address *a, hw_address *out)
{
    const hw_process_id *p = &a->process;
    if (hcc_address_from_parts(a->node, strlen(a->node), p->process_name,
                               strlen(p->process_name), p->package_name,
                               strlen(p->package_name), p->publisher_node,
                               strlen(p->publisher_node), out) != 0)
        hcw_die("out of memory");
}

/* A copy of the kept blob for the guest (who frees it). */
static void copy_blob(hw_blob *out)
{
    out->mime = kept.last.mime
                    ? hcw_dup(kept.last.mime, strlen(kept.last.mime) + 1)
                    : NULL;
    out->bytes.len = kept.last.bytes.len;
    out->bytes.ptr = hcw_dup(kept.last.bytes.ptr, kept.last.bytes.len);
}

/* Messages the node delivered ahead (DELIVER, protocol version 4), oldest
 * first: each is the answer to a RECEIVE the guest has not made yet.  They
 * come in the replies ring before whatever the node answers next, so a
 * wait for a REPLY sets them aside here. */
typedef struct ahead_msg {
    hw_receive_result r; /* the guest's, once it receives it */
    bool has_blob;       /* not an error, and a blob came with it */
    hw_blob blob;
    unsigned flags;     /* HCW_ITEM_* (a worker the node serves with lanes) */
    uint64_t answer;    /* an ANSWER's id, 0: none */
    bool snapped;       /* read once the worker had lanes: */
    hcw_lane_snap snap; /* the lanes then */
} ahead_msg;

/* The snapshot of an item read before any lane: before every lane frame. */
static const hcw_lane_snap no_lanes;

static struct {
    ahead_msg *v; /* a ring of cap messages */
    size_t first, len, cap;
} ahead;

static void check(bool ok);

/* The `receive-result, blob | nil` of a DELIVER or of RECEIVE's REPLY (and,
 * to a worker the node serves with lanes, the item's mailbox number, its
 * flags and an ANSWER's id). */
static void get_message(hcw_in *in, hw_receive_result *out, bool *has,
                        hw_blob *blob, unsigned *flags, uint64_t *answer)
{
    *has = false;
    *flags = 0;
    *answer = 0;
    memset(blob, 0, sizeof *blob);
    check(hcw_get_receive_result(in, out));
    if (!out->is_err)
        check(hcw_get_blob_opt(in, has, blob));
    else
        check(hcw_get_nil(in));
    if (in->next < in->nargs) {
        /* a worker served with lanes: the item's mailbox number */
        uint64_t seq;
        check(hcw_get_u64(in, &seq) && seq <= UINT32_MAX);
        hcw_lanes_note_read((uint32_t)seq);
    }
    if (in->next < in->nargs) {
        uint64_t f;
        check(hcw_get_u64(in, &f) && f <= 3 && hcw_get_u64(in, answer) &&
              (*answer == 0 || *answer >> 63));
        *flags = (unsigned)f;
        hcw_prompt_track();
    }
}

/* Set the DELIVER in `in` aside, decoded at once (so that the frame's
 * buffers serve the next frame). */
static void ahead_push(hcw_in *in)
{
    if (ahead.len == ahead.cap) {
        size_t cap = ahead.cap ? 2 * ahead.cap : 16;
        ahead_msg *v = malloc(cap * sizeof *v);
        if (v == NULL)
            hcw_die("out of memory");
        for (size_t k = 0; k < ahead.len; k++)
            v[k] = ahead.v[(ahead.first + k) % ahead.cap];
        free(ahead.v);
        ahead.v = v;
        ahead.first = 0;
        ahead.cap = cap;
    }
    ahead_msg *a = &ahead.v[(ahead.first + ahead.len++) % ahead.cap];
    a->snapped = hcw_lanes_active();
    if (a->snapped)
        hcw_lanes_snapshot(&a->snap);
    get_message(in, &a->r, &a->has_blob, &a->blob, &a->flags, &a->answer);
}

/* NEED came (protocol version 6, a worker with lanes): the node's next
 * item waits for a RECEIVE; the lanes when it was read. */
static bool need_receive;
static hcw_lane_snap need_snap;

/* Read the node's next frame into hcw_w.in: NULL when it was the worker's
 * own and is handled (a lane's frame, hcw_lanes_ctl; NEED; FORGET). */
static hcw_in *read_frame(void)
{
    char err[128];
    if (hcw_link_recv(hcw_w.link, &hcw_w.in, err, sizeof err) != 1)
        hcw_die(NULL);
    if (hcw_lanes_ctl(&hcw_w.in))
        return NULL;
    if (hcw_w.in.op == HCW_FORGET) {
        /* the node filed a context under one of this worker's lane ids
         * (the guest inherited it): newest wins, as in the node's table */
        uint64_t id;
        if (hcw_w.in.nargs != 1 || !hcw_get_u64(&hcw_w.in, &id) || !(id >> 63))
            hcw_die("a malformed FORGET from the node");
        hcw_ctx_forget(id);
        return NULL;
    }
    if (hcw_w.in.op == HCW_NEED) {
        if (!need_receive && hcw_lanes_active())
            hcw_lanes_snapshot(&need_snap);
        need_receive = true;
        return NULL;
    }
    return &hcw_w.in;
}

/* Read the node's next frame while no call waits for a REPLY: the
 * worker's own (handled), or a DELIVER, set aside; anything else breaks
 * the protocol. */
static void read_unasked(void)
{
    hcw_in *in = read_frame();
    if (in == NULL)
        return;
    if (in->op != HCW_DELIVER)
        hcw_die("the node sent a frame no call waits for");
    ahead_push(in);
}

/* Read the node's next frame for the caller into hcw_w.in; when
 * `keep_ahead`, a message delivered ahead is set aside and the next one
 * read. */
static hcw_in *next_from_node(bool keep_ahead)
{
    for (;;) {
        hcw_in *in = read_frame();
        if (in == NULL)
            continue;
        if (!keep_ahead || in->op != HCW_DELIVER)
            return in;
        ahead_push(in);
    }
}

/* The last frame sent that may make the node file a context under one of
 * this worker's lane ids (an inheriting request with expects-response, by
 * node: the id may have come back to the guest by node): its FORGET, if
 * any, is in the node's ring before `served` reaches that frame
 * (docs/worker-protocol.md, "Lanes"). */
static struct {
    bool wait;   /* such a frame was sent, and what came before its
                    serving has not been read since */
    uint32_t at; /* its number (hcw_w.sent) */
} forget;

/* Before a lane context's Timeout is given: 1, a FORGET may still come
 * (the node has not served that frame); 2, what the node wrote before
 * serving it is read now (the context may be gone: look again); 0,
 * nothing may come. */
static int forget_gate(void)
{
    if (!forget.wait)
        return 0;
    if ((int32_t)(hcw_link_served(hcw_w.link) - forget.at) < 0)
        return 1;
    forget.wait = false;
    while (hcw_link_pending(hcw_w.link))
        read_unasked();
    return 2;
}

/* A lane request's deadline that passed: its Timeout goes after what the
 * worker had from the node and the lanes when it saw that (`ahead` node
 * items, lane frames before `snap`), before anything later. */
static struct {
    bool seen;
    size_t ahead;
    hcw_lane_snap snap;
} expiry;

/* Wait at most 1 ms for the node's ring; a frame that came is read (a
 * DELIVER set aside). */
static void wait_node_briefly(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + 1000000;
    bool ready;
    hcw_link *const links[1] = {hcw_w.link};
    if (hcw_link_wait_any(links, 1, deadline, &ready) < 0)
        hcw_die("cannot wait on the node's ring");
    if (!ready || !hcw_link_pending(hcw_w.link))
        return;
    read_unasked();
}

enum { NEXT_LANE, NEXT_NODE, NEXT_TIMEOUT };

/* A worker with lanes sends RECEIVE only once it has something to take
 * (docs/lane-design.md §5), so that it never waits for the node's REPLY
 * while a lane may have frames.  The next item: a lane's frame that came
 * before the node's next item (or any, when the node has none), taken into
 * *out and *item (NEXT_LANE; lent when `lend`: hcw_lanes_take); a lane
 * request's timeout into *out (NEXT_TIMEOUT); or the node's (NEXT_NODE: a
 * message delivered ahead, or NEED saying the next one waits for a
 * RECEIVE). */
static int next_item(hw_receive_result *out, hcw_lane_item *item, bool lend)
{
    for (;;) {
        const ahead_msg *a = ahead.len ? &ahead.v[ahead.first] : NULL;
        const hcw_lane_snap *snap = a ? a->snapped ? &a->snap : &no_lanes
                                    : need_receive ? &need_snap
                                                   : NULL;
        if (!hcw_ctx_expired()) {
            expiry.seen = false;
        } else {
            if (!expiry.seen) {
                expiry.seen = true;
                expiry.ahead = ahead.len + need_receive;
                hcw_lanes_snapshot(&expiry.snap);
            }
            if (expiry.ahead == 0) {
                int i = hcw_lanes_next(&expiry.snap);
                if (i >= 0) {
                    if (hcw_lanes_take(i, lend, out, item))
                        return NEXT_LANE;
                    continue;
                }
                int g = forget_gate();
                if (g == 0) {
                    expiry.seen = false;
                    hcw_ctx_expire(out);
                    return NEXT_TIMEOUT;
                }
                if (g == 1) {
                    /* the node serves it soon: its ring, or the served
                     * word (which wakes nobody) looked at again in 1 ms */
                    wait_node_briefly();
                }
                continue;
            }
        }
        int i = hcw_lanes_next(snap);
        if (i >= 0) {
            if (hcw_lanes_take(i, lend, out, item))
                return NEXT_LANE;
            continue; /* (given up) */
        }
        if (snap)
            return NEXT_NODE;
        if (!hcw_lanes_wait())
            continue; /* a lane has a frame, or nothing yet */
        read_unasked();
    }
}

static hcw_frame *begin(hcw_op op, size_t nargs)
{
    hcw_frame_begin(hcw_w.out, op, nargs);
    return hcw_w.out;
}

static void send_call(void)
{
    hcw_w.sent++;
    if (hcw_link_send(hcw_w.link, hcw_w.out) != 0)
        hcw_die(NULL);
}

/* Send the call begun and read its REPLY into hcw_w.in. */
static hcw_in *call(void)
{
    send_call();
    next_from_node(true);
    if (hcw_w.in.op != HCW_REPLY)
        hcw_die("the node answered a call with another operation");
    return &hcw_w.in;
}

static void check(bool ok)
{
    if (!ok)
        hcw_die("a malformed REPLY from the node");
}

static void w_print(void *ctx, uint8_t verbosity, const char *msg)
{
    hcw_frame *f = begin(HCW_PRINT, 2);
    hcw_put_u64(f, verbosity);
    hcw_put_str(f, msg);
    send_call();
}

static void w_our(void *ctx, hw_address *out)
{
    begin(HCW_OUR, 0);
    check(hcw_get_address(call(), out));
}

static void w_get_on_exit(void *ctx, hw_on_exit *out)
{
    begin(HCW_GET_ON_EXIT, 0);
    check(hcw_get_on_exit(call(), out));
}

static void w_set_on_exit(void *ctx, const hw_on_exit *on_exit)
{
    hcw_put_on_exit(begin(HCW_SET_ON_EXIT, 1), on_exit);
    send_call();
}

static bool w_get_state(void *ctx, hw_bytes *out)
{
    begin(HCW_GET_STATE, 0);
    bool has;
    check(hcw_get_bytes_opt(call(), &has, out));
    return has;
}

static bool w_set_state(void *ctx, const uint8_t *bytes, size_t len)
{
    hcw_put_bin(begin(HCW_SET_STATE, 1), bytes, len);
    bool ok;
    check(hcw_get_bool(call(), &ok));
    return ok;
}

static bool w_clear_state(void *ctx)
{
    begin(HCW_CLEAR_STATE, 0);
    bool ok;
    check(hcw_get_bool(call(), &ok));
    return ok;
}

static hw_spawn_error w_spawn(void *ctx, const char *name, const char *path,
                              const hw_on_exit *on_exit,
                              const hw_capability *req_caps, size_t req_len,
                              const hw_process_id *grant_procs,
                              const char *const *grant_params,
                              size_t grants_len, bool public_,
                              hw_process_id *out)
{
    hcw_frame *f = begin(HCW_SPAWN, 7);
    hcw_put_str(f, name);
    hcw_put_str(f, path);
    hcw_put_on_exit(f, on_exit);
    hcw_put_caps(f, req_caps, req_len);
    hcw_put_process_ids(f, grant_procs, grants_len);
    hcw_put_strs(f, grant_params, grants_len);
    hcw_put_bool(f, public_);
    hcw_in *in = call();
    uint64_t err;
    check(hcw_get_u64(in, &err));
    memset(out, 0, sizeof *out);
    if (!hcw_get_nil(in))
        check(hcw_get_process_id(in, out));
    return (hw_spawn_error)err;
}

static void w_save_caps(void *ctx, const hw_capability *caps, size_t len)
{
    hcw_put_caps(begin(HCW_SAVE_CAPS, 1), caps, len);
    send_call();
}

static void w_drop_caps(void *ctx, const hw_capability *caps, size_t len)
{
    hcw_put_caps(begin(HCW_DROP_CAPS, 1), caps, len);
    send_call();
}

static void w_our_caps(void *ctx, hw_capability_list *out)
{
    begin(HCW_OUR_CAPS, 0);
    check(hcw_get_caps(call(), out));
}

/* What the binding still holds of the message it last lent the guest
 * (receive_lent): its metadata and its context, freed at the guest's next
 * receive (the rest is the lane table's: hcw_lanes_take). */
static struct {
    char *metadata;
    uint8_t *context;
} lent;

static void lent_release(void)
{
    free(lent.metadata);
    free(lent.context);
    lent.metadata = NULL;
    lent.context = NULL;
}

/* r as lent: what is the binding's in it, kept for lent_release. */
static void lent_keep(const hw_receive_result *r)
{
    const hw_message *m = &r->message;
    lent.metadata = m->kind == HW_MESSAGE_RESPONSE ? m->response.metadata
                                                   : m->request.metadata;
    lent.context = m->kind == HW_MESSAGE_RESPONSE && m->has_context
                       ? m->context.ptr
                       : NULL;
}

/* An answer nobody waits for (its context timed out, or never was): the
 * node's line, and the item is dropped (lent_one: as lent_keep would have
 * kept it). */
static void drop_answer(hw_receive_result *r, bool lent_one)
{
    w_print(NULL, 2,
            r->is_err ? "dropped a send error nobody waits for"
                      : "dropped a response nobody waits for");
    if (lent_one) {
        lent_keep(r);
        lent_release();
        memset(r, 0, sizeof *r);
    } else {
        hw_receive_result_fini(r);
    }
}

/* Take the node's next item: one delivered ahead if there is one (the
 * RECEIVE then only tells the node, which applies its effects, and nothing
 * is waited for), else the first the node sends: a DELIVER sent before the
 * node saw this RECEIVE, or the REPLY to it.  false when it was an ANSWER
 * nobody waits for (dropped). */
static bool take_node_item(hw_receive_result *out)
{
    need_receive = false; /* this RECEIVE answers it */
    if (expiry.seen && expiry.ahead)
        expiry.ahead--;
    hcw_prompt_before_node_item(ahead.len > 0,
                                ahead.len ? ahead.v[ahead.first].flags : 0);
    begin(HCW_RECEIVE, 0);
    send_call();
    bool has;
    hw_blob blob;
    unsigned flags;
    uint64_t answer;
    if (ahead.len) {
        ahead_msg *a = &ahead.v[ahead.first];
        ahead.first = (ahead.first + 1) % ahead.cap;
        ahead.len--;
        *out = a->r;
        has = a->has_blob;
        blob = a->blob;
        flags = a->flags;
        answer = a->answer;
    } else {
        hcw_in *in = next_from_node(false);
        if (in->op != HCW_DELIVER && in->op != HCW_REPLY)
            hcw_die("the node answered RECEIVE with another operation");
        get_message(in, out, &has, &blob, &flags, &answer);
    }
    hcw_prompt_node_item(flags);
    if (answer && !hcw_ctx_answer(answer, 0, out)) {
        if (has) { /* (the node took it as the last blob) */
            hw_blob_fini(&blob);
            kept.stale = kept.stale || !out->is_err;
        }
        drop_answer(out, false);
        return false;
    }
    if (!out->is_err)
        keep_blob(has, &blob);
    return true;
}

/* The guest takes the next message into *out.  A worker with lanes first
 * waits for a lane's frame, a message delivered ahead or NEED (next_item).
 * A lane's message is lent when `lend` (true returned: lent_keep has what
 * is the binding's in it), else it is the guest's; what the last lent
 * message held is released first. */
static bool receive_next(hw_receive_result *out, bool lend)
{
    lent_release();
    if (!hcw_lanes_active()) {
        while (!take_node_item(out))
            ;
        return false;
    }
    /* a new message, for the node's CPU limit per message */
    hcw_link_set_taken(hcw_w.link, ++kept.taken);
    for (;;) {
        hcw_lane_item item;
        switch (next_item(out, &item, lend)) {
        case NEXT_TIMEOUT: return false;
        case NEXT_LANE:
            if (item.response && !hcw_ctx_answer(item.id, item.lane, out)) {
                if (item.has_blob)
                    hw_blob_fini(&item.blob);
                drop_answer(out, item.lent);
                continue;
            }
            if (!item.response && out->message.request.has_expects_response)
                hcw_prompt_lane_request(item.lane, &out->source, item.id);
            /* its blob is the last blob now, which the node does not know */
            keep_blob(item.has_blob, &item.blob);
            kept.stale = kept.stale || item.has_blob;
            if (item.lent)
                lent_keep(out);
            return item.lent;
        default:
            if (take_node_item(out))
                return false;
        }
    }
}

static void w_receive(void *ctx, hw_receive_result *out)
{
    /* for `hyperc ps`: waiting from here, in its own code again once it
     * has the message (a lane's, which the node does not see, too) */
    hcw_link_set_busy(hcw_w.link, false);
    receive_next(out, false);
    hcw_link_set_busy(hcw_w.link, true);
}

/* receive, lending a lane's message (its source and body stay the lane
 * table's, its metadata and context the binding's, until the next
 * receive): the copies and frees a message costs the guest, which
 * libhyperc's runtime reads and does not keep, are saved.  A message by
 * node, or a timeout, is the guest's (false). */
static bool w_receive_lent(void *ctx, hw_receive_result *out)
{
    hcw_link_set_busy(hcw_w.link, false);
    bool lent_one = receive_next(out, true);
    hcw_link_set_busy(hcw_w.link, true);
    return lent_one;
}

/* The blob calls never cross: the replies brought what they need. */
static bool w_has_blob(void *ctx)
{
    return kept.blobbed;
}

static bool w_get_blob(void *ctx, hw_blob *out)
{
    memset(out, 0, sizeof *out);
    if (!kept.blobbed)
        return false;
    copy_blob(out);
    return true;
}

static bool w_last_blob(void *ctx, hw_blob *out)
{
    memset(out, 0, sizeof *out);
    if (!kept.has_last)
        return false;
    copy_blob(out);
    return true;
}

static void w_send_request(void *ctx, const hw_address *target,
                           const hw_request *req, const hw_bytes *context,
                           const hw_blob *blob)
{
    if (hcw_lanes_send_req(target, req, context, blob))
        return; /* by lane */
    if (req->inherit || req->has_expects_response)
        sync_for(req->inherit && blob == NULL);
    hcw_frame *f = begin(HCW_SEND_REQUEST, 4);
    hcw_put_address(f, target);
    hcw_put_request(f, req);
    hcw_put_bytes_opt(f, context != NULL, context);
    hcw_put_blob_opt(f, blob);
    send_call();
    hcw_lanes_sent_by_node(target);
    if (req->inherit && req->has_expects_response) {
        forget.wait = true;
        forget.at = hcw_w.sent;
    }
}

static void w_send_response(void *ctx, const hw_response *resp,
                            const hw_blob *blob)
{
    uint32_t lane;
    uint64_t id;
    if (hcw_prompt_lane(&lane, &id) &&
        hcw_lanes_send_resp(lane, id, resp, blob))
        return; /* by the lane its request came by */
    sync_for(resp->inherit);
    hcw_frame *f = begin(HCW_SEND_RESPONSE, 2);
    hcw_put_response(f, resp);
    hcw_put_blob_opt(f, blob);
    send_call();
    hcw_lanes_sent_by_node(NULL); /* (to whoever asked) */
}

static int w_send_and_await(void *ctx, const hw_address *target,
                            const hw_request *req, const hw_blob *blob,
                            hw_await_result *out)
{
    sync_for(req->inherit && blob == NULL);
    hcw_frame *f = begin(HCW_SEND_AND_AWAIT, 3);
    hcw_put_address(f, target);
    hcw_put_request(f, req);
    hcw_put_blob_opt(f, blob);
    hcw_in *in = call();
    hcw_lanes_sent_by_node(target);
    int64_t rc;
    check(hcw_get_i64(in, &rc));
    memset(out, 0, sizeof *out);
    if (!hcw_get_nil(in)) {
        check(hcw_get_await_result(in, out));
        if (!out->is_err) {
            take_blob(in);
            return (int)rc;
        }
    }
    check(hcw_get_nil(in));
    return (int)rc;
}

/* Handles are the worker's to choose (the lowest free one), so a hold
 * needs no answer; the node maps each to what it holds (prompt.c). */
static int w_prompting_hold(void *ctx)
{
    return hcw_prompt_hold();
}

static void w_prompting_set(void *ctx, int handle)
{
    hcw_prompt_set(handle);
}

static void w_prompting_release(void *ctx, int handle)
{
    hcw_prompt_release(handle);
}

static void w_started(void *ctx, bool done)
{
    hcw_put_bool(begin(HCW_STARTED, 1), done);
    send_call();
}

/* Saves into the state slot (slot.h): the last sequence number written,
 * and how many saves by message (SET_STATE_START) were sent.  A save goes
 * into the slot only once the node says it has stored every one of those
 * (its `starts` word): else the slot's newer value would be overtaken by
 * an older one the node stores after it. */
static struct {
    bool primed;
    uint64_t seq, starts;
} saves;

static void saves_prime(void)
{
    if (!saves.primed && hcw_w.slot != NULL) {
        saves.seq = hcw_slot_seq(hcw_w.slot);
        saves.starts = hcw_slot_starts(hcw_w.slot);
        saves.primed = true;
    }
}

static int w_set_state_now(void *ctx, const uint8_t *bytes, size_t len)
{
    (void)ctx;
    if (hcw_w.slot == NULL || len > HCW_SLOT_VALUE_MAX)
        return -1;
    saves_prime();
    if (hcw_slot_starts(hcw_w.slot) != saves.starts)
        return -1;
    hcw_slot_put(hcw_w.slot, ++saves.seq, bytes, len);
    return 1;
}

static void w_set_state_start(void *ctx, const uint8_t *bytes, size_t len,
                              const hw_bytes *context, uint64_t timeout_s)
{
    saves_prime();
    saves.starts++;
    hcw_prompt_sync(false, NULL);
    hcw_frame *f = begin(HCW_SET_STATE_START, 3);
    hcw_put_bin(f, bytes, len);
    hcw_put_bytes_opt(f, context != NULL, context);
    hcw_put_u64(f, timeout_s);
    send_call();
}

/* Kept in the link for the node to read when `hyperc ps` asks: no frame. */
static void w_tasks(void *ctx, uint32_t live)
{
    (void)ctx;
    hcw_link_set_tasks(hcw_w.link, live);
}

void hcw_binding_send_raw(const uint8_t *frame, size_t len, uint32_t nframes)
{
    hcw_w.sent += nframes;
    if (hcw_link_send_bytes(hcw_w.link, frame, len) != 0)
        hcw_die(NULL);
}

hcw_in *hcw_binding_call_raw(const uint8_t *frame, size_t len)
{
    hcw_binding_send_raw(frame, len, 1);
    next_from_node(true);
    if (hcw_w.in.op != HCW_REPLY)
        hcw_die("the node answered a call with another operation");
    return &hcw_w.in;
}

const hw_blob *hcw_binding_blob(void)
{
    return kept.blobbed ? &kept.last : NULL;
}

const hw_blob *hcw_binding_last_blob(void)
{
    return kept.has_last ? &kept.last : NULL;
}

void hcw_binding_init(hwn_host *t)
{
    memset(t, 0, sizeof *t);
    t->abi_version = HW_ABI_VERSION;
    t->size = sizeof *t;
    t->print_to_terminal = w_print;
    t->our = w_our;
    t->get_on_exit = w_get_on_exit;
    t->set_on_exit = w_set_on_exit;
    t->get_state = w_get_state;
    t->set_state = w_set_state;
    t->clear_state = w_clear_state;
    t->spawn = w_spawn;
    t->save_capabilities = w_save_caps;
    t->drop_capabilities = w_drop_caps;
    t->our_capabilities = w_our_caps;
    t->receive = w_receive;
    t->receive_lent = w_receive_lent;
    t->has_blob = w_has_blob;
    t->get_blob = w_get_blob;
    t->last_blob = w_last_blob;
    t->send_request = w_send_request;
    t->send_response = w_send_response;
    t->send_and_await_response = w_send_and_await;
    t->prompting_hold = w_prompting_hold;
    t->prompting_set = w_prompting_set;
    t->prompting_release = w_prompting_release;
    t->started = w_started;
    t->set_state_start = w_set_state_start;
    t->set_state_now = w_set_state_now;
    t->tasks = w_tasks;
}
