/* The worker's lanes (docs/lane-design.md): what LANE_OPEN hands it and
 * LANE_CLOSE takes back (the node sends both among its frames; the worker
 * handles them wherever it reads the node's frames, binding.c, so they
 * never reach the guest), the requests without a response it sends its
 * peers by lane (LREQ), and those it takes from them. */
#include "binding_int.h"

#include "../common/abi_types.h"
#include "../common/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

typedef struct wlane {
    uint32_t number;
    int side;
    hcw_lane *lane; /* NULL: the slot is free */
    hw_address peer;
    size_t peer_len[4]; /* its strings' lengths */
    bool send_ok, recv_ok;
    uint32_t quota;
    bool peer_host;   /* the peer is a wasm host: a grow hold on the link
                         (hcw_link_spin_grow_hold) while the slot is used */
    bool closing;     /* it writes no more (a LANE_CLOSE came) */
    bool final;       /* unmapped once what came in is taken */
    uint32_t by_node; /* hcw_w.sent after the last frame that may have sent
                         the peer something by node */
    bool noticed;     /* the node was told the state word says closed */
    uint64_t last_in; /* the id of the last LREQ taken from the peer (for
                         hcw_test_lane_scribble) */
    /* requests (LREQ) this worker wrote to the peer, and the peer's
     * req_taken as last read: the writer reads the peer's word only when
     * these two say the quota may be reached; requests it took from the
     * peer (docs/lane-design.md §6) */
    uint32_t req_written, taken_seen, req_taken;
} wlane;

static struct {
    wlane v[HCW_LANES_MAX];
    hcw_frame *out; /* LANE_DROP, LREQ, re-sends: apart from the guest's
                       calls' frame */
    hcw_in in;      /* a lane's frame being taken (a lent message's body
                       stays in it until the guest receives again) */
    hcw_in rein;    /* a frame re-read to send it again by node */
    bool in_ready;  /* `in` and `rein` initialised */
    /* the source of the messages lent to the guest: a copy of their
     * lane's peer, made again when a message of another lane (or of a
     * freed slot) is lent; kept, not freed, while the guest may hold it */
    hw_address lent_src;
    uint32_t lent_src_lane;
    bool lent_src_ok;
    bool active;       /* a LANE_OPEN has come */
    uint32_t read_seq; /* the newest mailbox number read from the node */
    /* lane ids to come: random words from the kernel, drawn a batch at a
     * time (4 KiB a getrandom: 20-40 ns an id), taken from the top */
    uint64_t ids[512];
    size_t ids_left;
    unsigned turn; /* where the next look at the lanes starts */
    /* 1 + the highest slot in use (0: none): the loops over the lanes,
     * several a message, look at the slots below it only; slots are
     * taken lowest first */
    size_t hi;
} lanes;

/* The decoders of lanes' frames (taken; re-read), made on first use. */
static hcw_in *lane_in(bool reread)
{
    if (!lanes.in_ready) {
        hcw_in_init(&lanes.in);
        hcw_in_init(&lanes.rein);
        lanes.in_ready = true;
    }
    return reread ? &lanes.rein : &lanes.in;
}

static hcw_frame *out_frame(void)
{
    if (lanes.out == NULL)
        lanes.out = hcw_frame_new();
    return lanes.out;
}

static void free_slot(wlane *w)
{
    if (w->lane)
        hcw_ctx_lane_gone(w->number);
    if (w->peer_host)
        hcw_link_spin_grow_hold(hcw_w.link, false);
    if (lanes.lent_src_lane == w->number)
        lanes.lent_src_ok = false; /* (the guest may hold it: kept) */
    hcw_lane_free(w->lane);
    hw_address_fini(&w->peer);
    memset(w, 0, sizeof *w);
    while (lanes.hi > 0 && lanes.v[lanes.hi - 1].lane == NULL)
        lanes.hi--;
}

static void send_node(hcw_frame *f)
{
    hcw_w.sent++;
    if (hcw_link_send(hcw_w.link, f) != 0)
        hcw_die(NULL);
}

void hcw_lanes_note_read(uint32_t seq)
{
    if (seq == 0 || (int32_t)(seq - lanes.read_seq) <= 0)
        return;
    lanes.read_seq = seq;
    for (size_t i = 0; i < lanes.hi; i++)
        if (lanes.v[i].lane)
            hcw_lane_set_read_seq(lanes.v[i].lane, 1 - lanes.v[i].side, seq);
}

bool hcw_lanes_active(void)
{
    return lanes.active;
}

bool hcw_lanes_probe(void)
{
    /* no waiters is EINVAL where the call exists, ENOSYS where it does not */
    long rc = syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0);
    return rc == -1 && errno == EINVAL;
}

static void drop(uint32_t number, const char *why)
{
    hcw_frame *f = out_frame();
    hcw_frame_begin(f, HCW_LANE_DROP, 2);
    hcw_put_u64(f, number);
    hcw_put_str(f, why);
    send_node(f);
}

/* A lane the worker gives up (a breach): unmapped at once, and the node
 * told why. */
static void give_up(wlane *w, const char *why)
{
    uint32_t number = w->number;
    free_slot(w);
    drop(number, why);
}

static wlane *find(uint32_t number)
{
    for (size_t i = 0; i < lanes.hi; i++)
        if (lanes.v[i].lane && lanes.v[i].number == number)
            return &lanes.v[i];
    return NULL;
}

static void lane_open(hcw_in *in)
{
    lanes.active = true;
    uint64_t number, side, quota;
    bool send_ok, recv_ok, peer_host;
    hw_address peer;
    if (!hcw_get_u64(in, &number) || number > UINT32_MAX ||
        !hcw_get_address(in, &peer))
        hcw_die("a malformed LANE_OPEN from the node");
    if (!hcw_get_u64(in, &side) || side > 1 || !hcw_get_bool(in, &send_ok) ||
        !hcw_get_bool(in, &recv_ok) || !hcw_get_u64(in, &quota) ||
        quota > UINT32_MAX || !hcw_get_bool(in, &peer_host)) {
        hw_address_fini(&peer);
        hcw_die("a malformed LANE_OPEN from the node");
    }
    /* its descriptor is taken from fd 4 whatever happens, so that the next
     * lane's is the next message there */
    char err[160];
    hcw_lane *l = hcw_lane_receive(HCW_LANE_FD, (uint32_t)number, (int)side,
                                   err, sizeof err);
    wlane *slot = NULL;
    for (size_t i = 0; l && slot == NULL && i < HCW_LANES_MAX; i++)
        if (lanes.v[i].lane == NULL)
            slot = &lanes.v[i];
    if (l && find((uint32_t)number)) {
        snprintf(err, sizeof err, "lane %u is open already", (unsigned)number);
        hcw_lane_free(l);
        l = NULL;
    } else if (l && slot == NULL) {
        snprintf(err, sizeof err, "more than %d lanes", HCW_LANES_MAX);
        hcw_lane_free(l);
        l = NULL;
    }
    if (l == NULL) {
        hw_address_fini(&peer);
        drop((uint32_t)number, err);
        return;
    }
    /* what this worker has read from the node so far, for the peer's
     * switch to the lane (docs/lane-design.md §3a) */
    hcw_lane_set_read_seq(l, 1 - (int)side, lanes.read_seq);
    *slot = (wlane){.number = (uint32_t)number,
                    .by_node = hcw_w.sent,
                    .side = (int)side,
                    .lane = l,
                    .peer = peer,
                    .send_ok = send_ok,
                    .recv_ok = recv_ok,
                    .quota = (uint32_t)quota,
                    .peer_host = peer_host};
    const char *parts[] = {peer.node, peer.process.process_name,
                           peer.process.package_name,
                           peer.process.publisher_node};
    for (int k = 0; k < 4; k++)
        slot->peer_len[k] = strlen(parts[k]);
    if (peer_host)
        hcw_link_spin_grow_hold(hcw_w.link, true);
    if ((size_t)(slot - lanes.v) >= lanes.hi)
        lanes.hi = (size_t)(slot - lanes.v) + 1;
}

/* A final lane whose inbound ring is empty: unmapped. */
static void maybe_unmap(wlane *w)
{
    if (w->final && hcw_link_frame_ready(hcw_lane_link(w->lane)) == 0)
        free_slot(w);
}

/* The peer ended before taking what this worker wrote from `from` on (the
 * node drained the rest): those requests go again, by node. */
static void resend(wlane *w, uint32_t from)
{
    hcw_link *l = hcw_lane_link(w->lane);
    hcw_in *in = lane_in(true);
    char err[160];
    uint32_t pos = from;
    for (;;) {
        int rc = hcw_link_tx_reread(l, &pos, in, err, sizeof err);
        if (rc == 0)
            return;
        uint64_t id;
        hw_request r;
        hw_response resp;
        bool has_blob;
        hw_blob blob;
        if (rc > 0 && in->op == HCW_LRESP)
            continue; /* an answer to the ended peer: nobody waits for it
                         (the node's drain skips them too) */
        if (rc < 0 || in->op != HCW_LREQ ||
            !hcw_get_lane_frame(in, true, &id, &r, &resp, &has_blob, &blob))
            return; /* (the dead peer scribbled on it: lost, as its own) */
        /* with its lane id: an answer comes back as an ANSWER, to the
         * context this worker keeps */
        hcw_frame *f = out_frame();
        hcw_frame_begin(f, HCW_SEND_REQUEST, 5);
        hcw_put_address(f, &w->peer);
        hcw_put_request(f, &r);
        hcw_put_nil(f);
        hcw_put_blob_opt(f, has_blob ? &blob : NULL);
        hcw_put_u64(f, id);
        hcw_request_view_fini(&r);
        if (has_blob)
            hw_blob_fini(&blob);
        send_node(f);
    }
}

static void lane_close(hcw_in *in)
{
    uint64_t number, why, taken_to, drained_to;
    uint64_t *adopted;
    size_t nadopted;
    if (!hcw_get_u64(in, &number) || number > UINT32_MAX ||
        !hcw_get_u64(in, &why) || why > 2 || !hcw_get_u64(in, &taken_to) ||
        taken_to > UINT32_MAX || !hcw_get_u64(in, &drained_to) ||
        drained_to > UINT32_MAX || !hcw_get_u64s(in, 4096, &adopted, &nadopted))
        hcw_die("a malformed LANE_CLOSE from the node");
    wlane *w = find((uint32_t)number);
    if (w && why == 1)
        hcw_ctx_lane_closed(w->number, (uint32_t)taken_to, adopted, nadopted);
    free(adopted);
    if (w == NULL) {
        if (why != 2)
            drop((uint32_t)number, NULL); /* (one it refused) */
        return;
    }
    /* 0: write no more; 1: the peer ended, what it did not take goes again
     * by node, and what it left is taken; 2: the peer writes no more
     * either: what is left is taken; then it is unmapped (docs/lane-design.md
     * §3a) */
    if (why == 1)
        resend(w, (uint32_t)drained_to);
    bool was_closing = w->closing;
    w->closing = true;
    w->final = why != 0;
    if (why != 2 && !was_closing)
        drop((uint32_t)number, NULL);
    maybe_unmap(w);
}

/* Whether target is w's peer (a node of "our" is this node). */
static bool is_peer(const wlane *w, const hw_address *target)
{
    const hw_process_id *a = &w->peer.process, *b = &target->process;
    if (strcmp(a->process_name, b->process_name) != 0 ||
        strcmp(a->package_name, b->package_name) != 0 ||
        strcmp(a->publisher_node, b->publisher_node) != 0)
        return false;
    return strcmp(w->peer.node, target->node) == 0 ||
           strcmp(target->node, "our") == 0;
}

/* Look at w's state word (advice: either worker can write it).  1: open.
 * 0: closing or closed, w writes no more and its inbound ring is still
 * read; the first time, before a LANE_CLOSE came, the node is told (an
 * empty LANE_DROP why): the node writes the word just before it pushes a
 * LANE_CLOSE, and closes the lane if it did not (a worker wrote it).  -1:
 * a value only a scribbling worker writes: w is given up (a breach). */
static int look_at_state(wlane *w)
{
    uint32_t s = hcw_lane_state_word(w->lane);
    if (s == HCW_LANE_STATE_OPEN)
        return 1;
    if (s == HCW_LANE_STATE_CLOSING || s == HCW_LANE_STATE_CLOSED) {
        if (!w->closing && !w->noticed) {
            w->noticed = true;
            drop(w->number, "");
        }
        return 0;
    }
    char why[64];
    snprintf(why, sizeof why, "a state word of %u", (unsigned)s);
    give_up(w, why);
    return -1;
}

/* The writer found its reader's head impossible (hcw_link_try_send's
 * EPROTO): the lane is given up. */
static void bad_head(wlane *w)
{
    give_up(w, "lane: the ring's positions are impossible (its reader's "
               "head)");
}

/* Whether w may carry a message to its peer now: open, permitted, and the
 * switch from the node (docs/lane-design.md §3a): every frame that may
 * have sent the peer something is served, and the peer has read all that
 * was sent it by node.  (w may be given up meanwhile: a breach.) */
static bool may_send(wlane *w)
{
    if (!w->send_ok || w->closing || look_at_state(w) != 1)
        return false;
    int d = w->side;
    return (int32_t)(hcw_link_served(hcw_w.link) - w->by_node) >= 0 &&
           (int32_t)(hcw_lane_read_seq(w->lane, d) -
                     hcw_lane_last_seq(w->lane, d)) >= 0;
}

/* Whether w's way to the peer may take one more request: under its quota
 * of unread requests (the peer's req_taken read again only when the count
 * this worker keeps says the quota is reached) and its `full` flag down
 * (docs/lane-design.md §6).  Otherwise requests go by node, where the
 * peer's mailbox bound answers Busy. */
static bool under_quota(wlane *w)
{
    int d = w->side;
    if (hcw_lane_full(w->lane, d))
        return false;
    if (w->req_written - w->taken_seen < w->quota)
        return true;
    w->taken_seen = hcw_lane_req_taken(w->lane, d);
    uint32_t unread = w->req_written - w->taken_seen;
    return (int32_t)unread < 0 || unread < w->quota; /* (taken ahead of
                                                        written: the peer's
                                                        own loss) */
}

/* Which of a lane frame's strings, all the peer's (its metadata, its blob's
 * mime), is not UTF-8, or NULL.  The protocol's strings are UTF-8
 * (docs/worker-protocol.md, "Types"), and a component's host could not
 * lower one that is not into its memory: such a frame is a breach, and an
 * honest worker sends what holds one by node (which passes it on as it
 * is). */
static const char *not_utf8(const char *metadata, bool has_blob,
                            const hw_blob *blob)
{
    if (metadata &&
        !hcc_utf8_valid((const uint8_t *)metadata, strlen(metadata)))
        return "its metadata";
    if (has_blob && blob->mime &&
        !hcc_utf8_valid((const uint8_t *)blob->mime, strlen(blob->mime)))
        return "its blob's mime";
    return NULL;
}

/* A lane id (bit 63 set), for a request with expects one that no pending
 * lane context has (hcw_ctx_add's precondition).  Random, not counted: a
 * peer sees the ids of the requests sent to it, and with counted ids it
 * could tell the ones of requests to other processes still pending
 * (docs/security.md, "Lane ids"). */
static uint64_t fresh_id(bool expects)
{
    for (;;) {
        if (lanes.ids_left == 0) {
            uint8_t *p = (uint8_t *)lanes.ids;
            size_t got = 0;
            while (got < sizeof lanes.ids) {
                ssize_t n = getrandom(p + got, sizeof lanes.ids - got, 0);
                if (n < 0 && errno != EINTR)
                    hcw_die("cannot read random bytes for lane ids");
                if (n > 0)
                    got += (size_t)n;
            }
            lanes.ids_left = sizeof lanes.ids / sizeof lanes.ids[0];
        }
        uint64_t id = lanes.ids[--lanes.ids_left] | 1ull << 63;
        if (!expects || !hcw_ctx_pending(id))
            return id;
    }
}

bool hcw_lanes_send_req(const hw_address *target, const hw_request *req,
                        const hw_bytes *context, const hw_blob *blob)
{
    if (!lanes.active || req->inherit || req->capabilities.len ||
        (blob && blob->bytes.len > HCW_LANE_MAX_FRAME) ||
        (context && !req->has_expects_response) ||
        not_utf8(req->metadata, blob != NULL, blob))
        return false; /* (a large blob is not even encoded) */
    wlane *w = NULL;
    for (size_t i = 0; w == NULL && i < lanes.hi; i++)
        if (lanes.v[i].lane && is_peer(&lanes.v[i], target))
            w = &lanes.v[i];
    if (w == NULL || !may_send(w) || !under_quota(w))
        return false;
    uint64_t id = fresh_id(req->has_expects_response);
    hcw_frame *f = out_frame();
    hcw_frame_lreq(f, id, req, blob);
    hcw_link *l = hcw_lane_link(w->lane);
    uint32_t pos = hcw_link_tx_pos(l);
    int rc = hcw_link_try_send(l, f);
    if (rc < 0 && errno == EPROTO)
        bad_head(w);
    if (rc != 1)
        return false; /* no room: by node */
    hcw_lane_set_req_written(w->lane, w->side, ++w->req_written);
    if (req->has_expects_response)
        hcw_ctx_add(id, w->number, pos, &w->peer, req, context, blob);
    return true;
}

bool hcw_lanes_send_resp(uint32_t number, uint64_t id, const hw_response *resp,
                         const hw_blob *blob)
{
    if (resp->inherit || resp->capabilities.len ||
        (blob && blob->bytes.len > HCW_LANE_MAX_FRAME) ||
        not_utf8(resp->metadata, blob != NULL, blob))
        return false;
    wlane *w = find(number);
    if (w == NULL || !may_send(w))
        return false;
    hcw_frame *f = out_frame();
    hcw_frame_lresp(f, id, resp, blob);
    int rc = hcw_link_try_send(hcw_lane_link(w->lane), f);
    if (rc < 0 && errno == EPROTO)
        bad_head(w);
    return rc == 1;
}

void hcw_lanes_sent_by_node(const hw_address *target)
{
    for (size_t i = 0; lanes.active && i < lanes.hi; i++)
        if (lanes.v[i].lane && (target == NULL || is_peer(&lanes.v[i], target)))
            lanes.v[i].by_node = hcw_w.sent;
}

void hcw_lanes_snapshot(hcw_lane_snap *snap)
{
    snap->n = (uint32_t)lanes.hi;
    for (size_t i = 0; i < lanes.hi; i++) {
        const wlane *w = &lanes.v[i];
        snap->m[i].number = w->lane ? w->number : 0;
        snap->m[i].pos = w->lane ? hcw_link_rx_tail(hcw_lane_link(w->lane)) : 0;
    }
}

/* The next lane (in turn) with a frame to take: before its mark in snap
 * when snap is given; -1 when none.  Final lanes found empty are
 * unmapped. */
int hcw_lanes_next(const hcw_lane_snap *snap)
{
    for (size_t k = 0; k < lanes.hi; k++) {
        size_t i = (lanes.turn + k) % lanes.hi;
        wlane *w = &lanes.v[i];
        if (w->lane == NULL || look_at_state(w) < 0)
            continue;
        hcw_link *l = hcw_lane_link(w->lane);
        if (hcw_link_frame_ready(l) == 0) {
            maybe_unmap(w);
            continue;
        }
        if (snap && (i >= snap->n || snap->m[i].number != w->number ||
                     (int32_t)(snap->m[i].pos - hcw_link_rx_pos(l)) <= 0))
            continue; /* came after the node's item: it waits */
        lanes.turn = (unsigned)(i + 1);
        return (int)i;
    }
    return -1;
}

/* A copy of w's peer for a message's source, its lengths known (a
 * message from a lane takes one: no strlen). */
static void peer_copy(const wlane *w, hw_address *out)
{
    const hw_address *a = &w->peer;
    const size_t *n = w->peer_len;
    if (hcc_address_from_parts(a->node, n[0], a->process.process_name, n[1],
                               a->process.package_name, n[2],
                               a->process.publisher_node, n[3], out) != 0)
        hcw_die("out of memory");
}

/* The lent messages' source, w's peer (lent_src). */
static void lent_source(const wlane *w, hw_address *out)
{
    if (!lanes.lent_src_ok || lanes.lent_src_lane != w->number) {
        hw_address_fini(&lanes.lent_src);
        peer_copy(w, &lanes.lent_src);
        lanes.lent_src_lane = w->number;
        lanes.lent_src_ok = true;
    }
    *out = lanes.lent_src;
}

bool hcw_lanes_take(int i, bool lend, hw_receive_result *out,
                    hcw_lane_item *item)
{
    wlane *w = &lanes.v[i];
    memset(out, 0, sizeof *out);
    hcw_in *in = lane_in(false);
    char err[200];
    int rc = hcw_link_try_recv(hcw_lane_link(w->lane), in, err, sizeof err);
    if (rc <= 0) {
        give_up(w, rc < 0 ? err : "a frame that went away");
        return false;
    }
    uint64_t id;
    hw_request r;
    hw_response resp;
    bool has_blob;
    hw_blob blob;
    bool ok = hcw_get_lane_frame(in, lend, &id, &r, &resp, &has_blob, &blob);
    if (ok && !(id >> 63)) {
        hcw_lane_frame_fini(lend, &r, &resp);
        if (has_blob)
            hw_blob_fini(&blob);
        ok = false;
    }
    if (!ok) {
        snprintf(err, sizeof err,
                 "a frame that is not an LREQ or LRESP a lane carries (op %d)",
                 in->op);
        give_up(w, err);
        return false;
    }
    const char *bad = not_utf8(in->op == HCW_LREQ ? r.metadata : resp.metadata,
                               has_blob, &blob);
    if (bad != NULL) {
        snprintf(err, sizeof err,
                 "a frame with a string that is not UTF-8 (%s)", bad);
        hcw_lane_frame_fini(lend, &r, &resp);
        if (has_blob)
            hw_blob_fini(&blob);
        give_up(w, err);
        return false;
    }
    *item = (hcw_lane_item){.lane = w->number,
                            .id = id,
                            .response = in->op == HCW_LRESP,
                            .has_blob = has_blob,
                            .blob = blob,
                            .lent = lend};
    if (!item->response) { /* for the peer's quota and the node's count */
        w->last_in = id;
        hcw_lane_set_req_taken(w->lane, 1 - w->side, ++w->req_taken);
    }
    if (lend)
        lent_source(w, &out->source);
    else
        peer_copy(w, &out->source);
    if (item->response) {
        out->message.kind = HW_MESSAGE_RESPONSE;
        out->message.response = resp;
    } else {
        out->message.kind = HW_MESSAGE_REQUEST;
        out->message.request = r;
    }
    return true;
}

bool hcw_lanes_wait(void)
{
    hcw_link *links[1 + HCW_LANES_MAX];
    bool ready[1 + HCW_LANES_MAX];
    size_t n = 0;
    links[n++] = hcw_w.link;
    for (size_t i = 0; i < lanes.hi; i++)
        if (lanes.v[i].lane)
            links[n++] = hcw_lane_link(lanes.v[i].lane);
    /* the coarse clock (a few ns in a VM, the precise one tens): it lags
     * by about a tick, a few ms, which the check's period does not mind */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    int64_t deadline = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec +
                       HCW_LINK_CHECK_MS * 1000000LL;
    int64_t ctx_deadline = hcw_ctx_deadline(); /* a lane request's timeout */
    if (ctx_deadline < deadline)
        deadline = ctx_deadline;
    int rc = hcw_link_wait_any(links, n, deadline, ready);
    if (rc < 0)
        hcw_die("cannot wait on the lanes");
    return rc > 0 && ready[0];
}

bool hcw_lanes_ctl(hcw_in *in)
{
    switch (in->op) {
    case HCW_LANE_OPEN: lane_open(in); return true;
    case HCW_LANE_CLOSE: lane_close(in); return true;
    default: return false;
    }
}

hcw_lane *hcw_lanes_of_peer(const hw_address *peer, int *side,
                            uint64_t *last_in, bool *peer_host)
{
    for (size_t i = 0; i < HCW_LANES_MAX; i++) {
        wlane *w = &lanes.v[i];
        if (w->lane && is_peer(w, peer)) {
            *side = w->side;
            *last_in = w->last_in;
            *peer_host = w->peer_host;
            return w->lane;
        }
    }
    return NULL;
}
