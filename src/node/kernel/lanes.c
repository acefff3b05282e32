/* The node's lanes (docs/lane-design.md §2): which pairs of isolated
 * workers share a lane, opened after a pair has exchanged
 * HCN_LANE_THRESHOLD messages by node, closed when either instance ends, a
 * capability drop leaves the pair without permission, a worker drops it,
 * or the node's log level goes to 3: the table, the hand-over of each
 * memfd, the frames that open and close a lane, the lane requests a peer
 * adopted (SYNC), and the drain of a ring whose reader ended.
 *
 * A lane's LANE_OPEN and LANE_CLOSE reach each worker as a control entry
 * in its process's mailbox (HCN_MSG_LANE), which whichever thread serves
 * the worker turns into the fd message and the frame when it reaches it
 * (isolate.c): so a worker hears of a lane after every message queued for
 * it before the lane existed.  One mutex guards the table; mailboxes are
 * pushed and capabilities read outside it. */
#include "kernel_int.h"

#include "../../worker/lane.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A side's progress. */
enum {
    SIDE_QUEUED = 0, /* its LANE_OPEN entry is in its mailbox */
    SIDE_GIVEN = 1,  /* its worker has the lane (the fd and LANE_OPEN) */
    SIDE_QUIET = 2,  /* closed: its worker writes no more (its LANE_DROP
                        nil), and still reads */
    SIDE_FINAL = 3,  /* its last LANE_CLOSE is on the way: it takes what is
                        left and unmaps */
    SIDE_DONE = 4,   /* done with: it unmapped or will, its instance ended,
                        or it never got the lane */
};

typedef struct lane_rec {
    struct lane_rec *next;
    uint32_t number;
    hcn_proc *p[2]; /* references; side 0 the lower process id */
    int inst[2];    /* the instances the lane is between */
    int side[2];    /* SIDE_* */
    int told[2];    /* the last LANE_CLOSE `why` pushed to it, -1: none */
    bool ok[2];     /* side s may send to side 1 - s */
    bool open;      /* not closed yet */
    hcw_lane *lane; /* the node's mapping */
    int memfd;      /* until both sides have it, or it closes */
    /* ring d (written by side d) once its reader's instance ended: where
     * the reader stopped, and where the node's drain did (LANE_CLOSE) */
    bool drained[2];
    uint32_t taken_to[2], drained_to[2];
    /* the ids of side d's lane requests that side 1 - d adopted (SYNC),
     * a ring of HCN_LANE_ADOPTED_MAX (allocated at the first), the oldest
     * forgotten: LANE_CLOSE's `adopted` to side d */
    uint64_t *adopted[2];
    unsigned nadopted[2], adopted_next[2];
} lane_rec;

typedef struct hcn_lanes hcn_lanes;

struct hcn_lanes {
    pthread_mutex_t mu;
    lane_rec *list;
    uint32_t next_number;
};

/* A mailbox entry to push once the table's lock is let go. */
typedef struct push {
    hcn_proc *p; /* a reference */
    uint64_t id;
} push;

bool hcn_lanes_wanted(void)
{
    static _Atomic int on = -1;
    if (on < 0) {
        const char *e = getenv("HYPERC_LANES");
        on = e == NULL || strcmp(e, "0") != 0;
    }
    return on == 1;
}

void hcn_lanes_init(hcn_node *n)
{
    n->lanes = hcn_xcalloc(1, sizeof *n->lanes);
    pthread_mutex_init(&n->lanes->mu, NULL);
    n->lanes->next_number = 1;
}

/* Side s is done with r (mu held): what waits in the ring it reads no
 * longer counts in its mailbox (hcn_mailbox_lane_add, at the lane's
 * making). */
static void side_done(lane_rec *r, int s)
{
    r->side[s] = SIDE_DONE;
    hcn_mailbox_lane_remove(&r->p[s]->mb, r->lane);
}

static void rec_free(lane_rec *r)
{
    hcn_mailbox_lane_remove(&r->p[0]->mb, r->lane);
    hcn_mailbox_lane_remove(&r->p[1]->mb, r->lane);
    free(r->adopted[0]);
    free(r->adopted[1]);
    hcw_lane_free(r->lane);
    if (r->memfd >= 0)
        close(r->memfd);
    hcn_proc_unref(r->p[0]);
    hcn_proc_unref(r->p[1]);
    free(r);
}

void hcn_lanes_fini(hcn_node *n)
{
    if (n->lanes == NULL)
        return;
    while (n->lanes->list) {
        lane_rec *r = n->lanes->list;
        n->lanes->list = r->next;
        rec_free(r);
    }
    pthread_mutex_destroy(&n->lanes->mu);
    free(n->lanes);
    n->lanes = NULL;
}

/* A control entry's id: the op, a LANE_CLOSE's why, the lane. */
static uint64_t entry_id(int op, uint32_t number)
{
    return (uint64_t)op << 32 | number;
}

static uint64_t close_id(int why, uint32_t number)
{
    return (uint64_t)why << 40 | entry_id(HCW_LANE_CLOSE, number);
}

static void push_entries(push *v, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        hcn_msg *m =
            HCN_MSG_NEW(.kind = HCN_MSG_LANE, .id = v[i].id,
                        .source = v[i].p->addr, .target = v[i].p->addr);
        /* a closed mailbox: the instance is ending, and its end closes
         * the lane (hcn_lanes_instance_end) */
        if (hcn_mailbox_push(&v[i].p->mb, m) != HCC_EOK)
            hcn_msg_unref(m);
        hcn_proc_unref(v[i].p);
    }
}

/* Free r if both sides are done (mu held); whether it was. */
static bool rec_reap(hcn_lanes *t, lane_rec *r)
{
    if (r->side[0] != SIDE_DONE || r->side[1] != SIDE_DONE)
        return false;
    for (lane_rec **pp = &t->list; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    rec_free(r);
    return true;
}

static bool quiet(int side)
{
    return side == SIDE_QUIET || side == SIDE_FINAL || side == SIDE_DONE;
}

/* The LANE_CLOSEs a closed lane owes its sides now (mu held; into pushes,
 * at most 2; docs/worker-protocol.md, "Lanes"): `why` 0 to a side that
 * has the lane, "write no more" (it answers LANE_DROP nil and goes on
 * reading); 1 to one whose peer's instance ended, after the drain ("re-send
 * from drained_to, take what the peer left, unmap"); 2 to a quiet side
 * whose peer is quiet too ("take what is left, unmap"). */
static size_t settle(lane_rec *r, push *pushes)
{
    size_t k = 0;
    if (r->open)
        return 0;
    for (int s = 0; s < 2; s++) {
        int want = -1;
        if (r->side[s] != SIDE_GIVEN && r->side[s] != SIDE_QUIET)
            continue;
        if (r->drained[s] && r->told[s] < 1)
            want = 1;
        else if (r->side[s] == SIDE_GIVEN && r->told[s] < 0)
            want = 0;
        else if (r->side[s] == SIDE_QUIET && quiet(r->side[1 - s]) &&
                 r->told[s] == 0)
            want = 2;
        if (want < 0)
            continue;
        pushes[k++] = (push){hcn_proc_ref(r->p[s]), close_id(want, r->number)};
        r->told[s] = want;
        if (want == 2 || (want == 1 && r->side[s] == SIDE_QUIET))
            r->side[s] = SIDE_FINAL; /* done once it is delivered */
    }
    return k;
}

/* Close r (mu held): the state word says so, and each side that has the
 * lane is told (settle; into pushes, at most 2).  A side still
 * SIDE_QUEUED finds the lane closed when its entry comes, and is done
 * then. */
static size_t rec_close(lane_rec *r, push *pushes)
{
    if (!r->open)
        return settle(r, pushes);
    r->open = false;
    hcw_lane_set_state(r->lane, HCW_LANE_STATE_CLOSED);
    if (r->memfd >= 0) {
        close(r->memfd);
        r->memfd = -1;
    }
    return settle(r, pushes);
}

/* The lanes p's worker has or will have (mapped, or not yet dropped): a
 * worker holds at most HCW_LANES_MAX. */
static int lanes_of(hcn_lanes *t, hcn_proc *p)
{
    int k = 0;
    for (lane_rec *r = t->list; r; r = r->next)
        for (int s = 0; s < 2; s++)
            if (r->p[s] == p && r->side[s] != SIDE_DONE)
                k++;
    return k;
}

/* Whether `from` may message `to` now, as hcn_route_ex decides. */
static bool may_message(hcn_proc *from, hcn_proc *to)
{
    if (to->public_)
        return true;
    pthread_mutex_lock(&from->lock);
    bool ok = hcn_capset_has_messaging(&from->caps, to->addr);
    pthread_mutex_unlock(&from->lock);
    return ok;
}

/* Whether p's current instance is a worker that takes lanes and has
 * started; its instance number then. */
static int lane_instance(hcn_proc *p)
{
    int inst = atomic_load(&p->lane_inst);
    if (inst == 0 || inst != atomic_load(&p->instance) ||
        !hcn_proc_started(p) || atomic_load(&p->status) != HCN_PROC_RUNNING)
        return 0;
    return inst;
}

void hcn_lanes_consider(hcn_node *n, hcn_proc *a, hcn_proc *b)
{
    if (!hcn_lanes_wanted() || n->log.level >= 3 || a == b)
        return;
    int ia = lane_instance(a), ib = lane_instance(b);
    if (ia == 0 || ib == 0)
        return;
    /* side 0 is the lower process id: both workers agree which ring is
     * whose without asking */
    if (strcmp(a->id, b->id) > 0) {
        hcn_proc *x = a;
        a = b;
        b = x;
        int y = ia;
        ia = ib;
        ib = y;
    }
    bool ok0 = may_message(a, b), ok1 = may_message(b, a);
    if (!ok0 && !ok1)
        return;
    hcn_lanes *t = n->lanes;
    pthread_mutex_lock(&t->mu);
    for (lane_rec *r = t->list; r; r = r->next) {
        if (r->p[0] == a && r->p[1] == b && r->inst[0] == ia &&
            r->inst[1] == ib) {
            /* one lane a pair of instances: an open one, or one that
             * closed (it stays closed while both live) */
            pthread_mutex_unlock(&t->mu);
            return;
        }
    }
    if (lanes_of(t, a) >= HCW_LANES_MAX || lanes_of(t, b) >= HCW_LANES_MAX) {
        pthread_mutex_unlock(&t->mu);
        return;
    }
    uint32_t number = t->next_number++;
    int memfd;
    hcw_lane *l = hcw_lane_new(number, &memfd);
    if (l == NULL) {
        pthread_mutex_unlock(&t->mu);
        hcn_logf(n, 1, "cannot make a lane between %s and %s: %s", a->id, b->id,
                 strerror(errno));
        return;
    }
    lane_rec *r = hcn_xcalloc(1, sizeof *r);
    *r = (lane_rec){.number = number,
                    .p = {hcn_proc_ref(a), hcn_proc_ref(b)},
                    .inst = {ia, ib},
                    .ok = {ok0, ok1},
                    .told = {-1, -1},
                    .open = true,
                    .lane = l,
                    .memfd = memfd,
                    .next = t->list};
    t->list = r;
    /* each way permitted counts its unread requests in its reader's
     * mailbox (docs/lane-design.md §6) */
    for (int d = 0; d < 2; d++)
        if (r->ok[d])
            hcn_mailbox_lane_add(&r->p[1 - d]->mb, l, d,
                                 HCN_LANE_QUOTA(r->p[1 - d]->mb.max_req));
    push pushes[2] = {{hcn_proc_ref(a), entry_id(HCW_LANE_OPEN, number)},
                      {hcn_proc_ref(b), entry_id(HCW_LANE_OPEN, number)}};
    pthread_mutex_unlock(&t->mu);
    hcn_logf(n, 2, "lane %u opened between %s and %s", (unsigned)number, a->id,
             b->id);
    push_entries(pushes, 2);
}

/* The record of lane `number` with `p` as a side (mu held); its side in
 * *s.  NULL if none. */
static lane_rec *rec_find(hcn_lanes *t, uint32_t number, hcn_proc *p, int *s)
{
    for (lane_rec *r = t->list; r; r = r->next) {
        if (r->number != number)
            continue;
        for (int i = 0; i < 2; i++) {
            if (r->p[i] == p) {
                *s = i;
                return r;
            }
        }
        return NULL;
    }
    return NULL;
}

int hcn_lanes_entry(hcn_node *n, hcn_proc *p, int inst, const hcn_msg *m,
                    hcw_frame *f, int *memfd, hcn_lane_given *g)
{
    *memfd = -1;
    memset(g, 0, sizeof *g);
    int op = (int)(m->id >> 32 & 0xff);
    int why = (int)(m->id >> 40 & 0xff);
    uint32_t number = (uint32_t)m->id;
    hcn_lanes *t = n->lanes;
    pthread_mutex_lock(&t->mu);
    int s;
    lane_rec *r = rec_find(t, number, p, &s);
    int rc = 0;
    if (r == NULL || r->inst[s] != inst || r->side[s] == SIDE_DONE) {
        rc = 0; /* for an instance that has ended, or a lane done with */
    } else if (op == HCW_LANE_OPEN && r->side[s] == SIDE_QUEUED) {
        if (!r->open) {
            side_done(r, s); /* closed before this side heard */
            rec_reap(t, r);
        } else {
            hw_address peer;
            hcn_address_export(r->p[1 - s]->addr, &peer);
            hcw_frame_begin(f, HCW_LANE_OPEN, 7);
            hcw_put_u64(f, number);
            hcw_put_address(f, &peer);
            hcw_put_u64(f, (uint64_t)s);
            hcw_put_bool(f, r->ok[s]);
            hcw_put_bool(f, r->ok[1 - s]);
            /* the requests its way may hold unread: the peer's bound's */
            hcw_put_u64(f, HCN_LANE_QUOTA(r->p[1 - s]->mb.max_req));
            /* the peer a wasm host: its turns are long (link.h) */
            hcw_put_bool(f, atomic_load(&r->p[1 - s]->in_wasm_host));
            hw_address_fini(&peer);
            *memfd = dup(r->memfd);
            rc = *memfd >= 0 ? 1 : 0;
            *g = (hcn_lane_given){r->p[1 - s], r->lane, s};
            if (rc == 0) {
                /* out of descriptors: no lane */
                side_done(r, s);
                push pushes[2];
                size_t k = rec_close(r, pushes);
                pthread_mutex_unlock(&t->mu);
                push_entries(pushes, k);
                return 0;
            }
        }
    } else if (op == HCW_LANE_CLOSE && r->side[s] != SIDE_QUEUED) {
        /* (settle says which why; 1 carries where the peer's reader and
         * the node's drain stopped in this side's ring) */
        hcw_frame_begin(f, HCW_LANE_CLOSE, 5);
        hcw_put_u64(f, number);
        hcw_put_u64(f, (uint64_t)why);
        hcw_put_u64(f, r->taken_to[s]);
        hcw_put_u64(f, r->drained_to[s]);
        /* the ids of its requests the peer adopted, oldest first */
        uint64_t ids[HCN_LANE_ADOPTED_MAX];
        unsigned na = r->nadopted[s];
        for (unsigned i = 0; i < na; i++)
            ids[i] = r->adopted[s][(r->adopted_next[s] + HCN_LANE_ADOPTED_MAX -
                                    na + i) %
                                   HCN_LANE_ADOPTED_MAX];
        hcw_put_u64s(f, ids, na);
        rc = 1;
        if (r->side[s] == SIDE_FINAL && why == r->told[s]) {
            side_done(r, s); /* its last word from the node */
            rec_reap(t, r);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

/* Note in r that side d's request `id` was adopted (mu held). */
static void adopt(lane_rec *r, int d, uint64_t id)
{
    if (r->adopted[d] == NULL)
        r->adopted[d] =
            hcn_xmalloc(HCN_LANE_ADOPTED_MAX * sizeof *r->adopted[d]);
    for (unsigned i = 0; i < r->nadopted[d]; i++)
        if (r->adopted[d][(r->adopted_next[d] + HCN_LANE_ADOPTED_MAX - 1 - i) %
                          HCN_LANE_ADOPTED_MAX] == id)
            return; /* (a stub made again) */
    r->adopted[d][r->adopted_next[d]] = id;
    r->adopted_next[d] = (r->adopted_next[d] + 1) % HCN_LANE_ADOPTED_MAX;
    if (r->nadopted[d] < HCN_LANE_ADOPTED_MAX)
        r->nadopted[d]++;
}

void hcn_lanes_adopted(hcn_node *n, hcn_proc *p, int inst, const char *peer,
                       uint64_t id)
{
    hcn_lanes *t = n->lanes;
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    /* every lane of this instance's with that peer still kept (one open,
     * and one closed while both live, at most) */
    for (lane_rec *r = t->list; r; r = r->next)
        for (int s = 0; s < 2; s++)
            if (r->p[s] == p && r->inst[s] == inst &&
                strcmp(r->p[1 - s]->addr, peer) == 0)
                adopt(r, 1 - s, id);
    pthread_mutex_unlock(&t->mu);
}

void hcn_lanes_given(hcn_node *n, hcn_proc *p, const hcn_msg *m, bool ok)
{
    int op = (int)(m->id >> 32 & 0xff);
    if (op != HCW_LANE_OPEN)
        return;
    hcn_lanes *t = n->lanes;
    push pushes[2];
    size_t k = 0;
    pthread_mutex_lock(&t->mu);
    int s;
    lane_rec *r = rec_find(t, (uint32_t)m->id, p, &s);
    if (r && r->side[s] == SIDE_QUEUED) {
        if (ok) {
            r->side[s] = SIDE_GIVEN;
            if (r->side[1 - s] != SIDE_QUEUED && r->memfd >= 0) {
                close(r->memfd); /* both have it */
                r->memfd = -1;
            }
        } else {
            side_done(r, s);
            k = rec_close(r, pushes);
            rec_reap(t, r);
        }
    }
    pthread_mutex_unlock(&t->mu);
    push_entries(pushes, k);
}

void hcn_lanes_dropped(hcn_node *n, hcn_proc *p, uint32_t number,
                       const char *why)
{
    hcn_lanes *t = n->lanes;
    push pushes[2];
    size_t k = 0;
    pthread_mutex_lock(&t->mu);
    int s;
    lane_rec *r = rec_find(t, number, p, &s);
    /* an empty why: its worker saw the state word say closed before a
     * LANE_CLOSE came; the node's own close (its LANE_CLOSE is on the way)
     * or, on a lane still open, a worker's scribble: closed as the node
     * closes one */
    bool notice = why && why[0] == '\0';
    bool unasked = notice && r && r->open && r->side[s] == SIDE_GIVEN;
    if (notice) {
        if (unasked)
            k = rec_close(r, pushes);
    } else if (r && why) {
        /* refused or broken: it unmapped it */
        if (r->side[s] != SIDE_QUEUED)
            side_done(r, s);
        k = rec_close(r, pushes);
        rec_reap(t, r);
    } else if (r && r->side[s] == SIDE_GIVEN) {
        /* it writes no more (after a LANE_CLOSE; or it asks to close) */
        if (r->told[s] == 1)
            side_done(r, s);
        else
            r->side[s] = SIDE_QUIET;
        k = rec_close(r, pushes);
        rec_reap(t, r);
    }
    pthread_mutex_unlock(&t->mu);
    if (why && !notice)
        hcn_logf(n, 1, "%s: dropped lane %u: %s", p->id, (unsigned)number, why);
    else if (unasked)
        hcn_logf(n, 1,
                 "%s: dropped lane %u: its state word says closed, which "
                 "the node did not write",
                 p->id, (unsigned)number);
    push_entries(pushes, k);
}

size_t hcn_lane_drain(hcw_link *view, const char *from, const char *to,
                      hcn_msg **head, hcn_msg **tail, char *why, size_t whylen)
{
    size_t k = 0;
    hcw_in in;
    hcw_in_init(&in);
    why[0] = '\0';
    for (;;) {
        char err[160];
        int rc = hcw_link_try_recv(view, &in, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            snprintf(why, whylen, "%s", err);
            break;
        }
        uint64_t id;
        hw_request req;
        hw_response resp;
        bool has_blob;
        hw_blob blob;
        bool whole =
            hcw_get_lane_frame(&in, true, &id, &req, &resp, &has_blob, &blob);
        if (whole && in.op == HCW_LRESP) {
            /* an answer to the ended reader's lane request: its context
             * ended with it, so nobody waits for it */
            hcw_response_view_fini(&resp);
            if (has_blob)
                hw_blob_fini(&blob);
            continue;
        }
        if (!whole) {
            snprintf(why, whylen,
                     "a frame that is not LREQ [id, expects, body, metadata, "
                     "blob] or LRESP [id, body, metadata, blob] (op %d)",
                     in.op);
            break;
        }
        if (!(id >> 63)) {
            snprintf(why, whylen, "an LREQ with an id without bit 63");
            hcw_request_view_fini(&req);
            if (has_blob)
                hw_blob_fini(&blob);
            break;
        }
        hcn_blob *b =
            has_blob ? hcn_blob_new(blob.mime, blob.bytes.ptr, blob.bytes.len)
                     : NULL;
        /* as build_request makes it: the rsvp is the sender when it
         * expects a response */
        hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id,
                                 .source = from, .target = to,
                                 .rsvp = req.has_expects_response ? from : NULL,
                                 .has_expects = req.has_expects_response,
                                 .expects = req.expects_response,
                                 .body = req.body.ptr, .body_len = req.body.len,
                                 .metadata = req.metadata, .blob = b);
        hcn_blob_unref(b);
        hcw_request_view_fini(&req);
        if (has_blob)
            hw_blob_fini(&blob);
        if (*tail)
            (*tail)->next = m;
        else
            *head = m;
        *tail = m;
        k++;
    }
    hcw_in_fini(&in);
    return k;
}

/* Side s of r ended: what is left in the ring it read (written by 1 - s)
 * goes to its process's next instance (mu held). */
static void drain_into(hcn_node *n, lane_rec *r, int s, hcn_msg **head,
                       hcn_msg **tail)
{
    hcw_link *view = hcw_lane_view(r->lane, s);
    int w = 1 - s;
    r->taken_to[w] = hcw_link_rx_resync(view);
    char why[200];
    size_t k = hcn_lane_drain(view, r->p[w]->addr, r->p[s]->addr, head, tail,
                              why, sizeof why);
    r->drained_to[w] = hcw_link_rx_pos(view);
    r->drained[w] = true;
    if (why[0])
        hcn_logf(n, 1,
                 "lane %u: what %s wrote for %s is broken after %zu "
                 "message(s): %s",
                 (unsigned)r->number, r->p[w]->id, r->p[s]->id, k, why);
}

void hcn_lanes_instance_end(hcn_node *n, hcn_proc *p, int inst, hcn_msg **head,
                            hcn_msg **tail)
{
    *head = *tail = NULL;
    hcn_lanes *t = n->lanes;
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    size_t cap = 0;
    for (lane_rec *r = t->list; r; r = r->next)
        cap += 2;
    push *pushes = hcn_xcalloc(cap ? cap : 1, sizeof *pushes);
    size_t k = 0;
    for (lane_rec *r = t->list, *next; r; r = next) {
        next = r->next;
        for (int s = 0; s < 2; s++) {
            if (r->p[s] != p || r->inst[s] != inst)
                continue;
            bool had = r->side[s] != SIDE_QUEUED && r->side[s] != SIDE_DONE;
            side_done(r, s);
            /* closed first: a writer that looks takes no more; one that
             * wrote after the drain re-sends by node from drained_to */
            if (r->open) {
                r->open = false;
                hcw_lane_set_state(r->lane, HCW_LANE_STATE_CLOSED);
            }
            if (had)
                drain_into(n, r, s, head, tail);
            k += rec_close(r, pushes + k);
        }
        rec_reap(t, r);
    }
    pthread_mutex_unlock(&t->mu);
    push_entries(pushes, k);
    free(pushes);
}

/* Close the lanes that `pick` chooses (it runs outside the lock, on a
 * snapshot of the open lanes; `only`: those of that process). */
static void close_where(hcn_node *n, hcn_proc *only,
                        bool (*pick)(hcn_proc *a, hcn_proc *b,
                                     const bool ok[2]))
{
    hcn_lanes *t = n->lanes;
    if (t == NULL)
        return;
    typedef struct {
        uint32_t number;
        hcn_proc *p[2];
        bool ok[2];
    } snap_t;
    pthread_mutex_lock(&t->mu);
    size_t cap = 0;
    for (lane_rec *r = t->list; r; r = r->next)
        cap++;
    snap_t *snap = hcn_xcalloc(cap ? cap : 1, sizeof *snap);
    size_t ns = 0;
    for (lane_rec *r = t->list; r; r = r->next) {
        if (!r->open || (only && r->p[0] != only && r->p[1] != only))
            continue;
        snap[ns++] = (snap_t){r->number,
                              {hcn_proc_ref(r->p[0]), hcn_proc_ref(r->p[1])},
                              {r->ok[0], r->ok[1]}};
    }
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < ns; i++) {
        if (pick(snap[i].p[0], snap[i].p[1], snap[i].ok)) {
            push pushes[2];
            size_t k = 0;
            pthread_mutex_lock(&t->mu);
            int s;
            lane_rec *r = rec_find(t, snap[i].number, snap[i].p[0], &s);
            if (r) {
                k = rec_close(r, pushes);
                rec_reap(t, r);
            }
            pthread_mutex_unlock(&t->mu);
            push_entries(pushes, k);
        }
        hcn_proc_unref(snap[i].p[0]);
        hcn_proc_unref(snap[i].p[1]);
    }
    free(snap);
}

static bool lost_permission(hcn_proc *a, hcn_proc *b, const bool ok[2])
{
    return (ok[0] && !may_message(a, b)) || (ok[1] && !may_message(b, a));
}

void hcn_lanes_recheck(hcn_node *n, hcn_proc *p)
{
    close_where(n, p, lost_permission);
}

static bool every(hcn_proc *a, hcn_proc *b, const bool ok[2])
{
    (void)a;
    (void)b;
    (void)ok;
    return true;
}

void hcn_lanes_close_all(hcn_node *n)
{
    close_where(n, NULL, every);
}

size_t hcn_lanes_list(hcn_node *n, hcn_proc *p, hcn_lane_info **out)
{
    *out = NULL;
    hcn_lanes *t = n->lanes;
    if (t == NULL)
        return 0;
    size_t k = 0, cap = 0;
    pthread_mutex_lock(&t->mu);
    for (lane_rec *r = t->list; r; r = r->next) {
        for (int s = 0; s < 2; s++) {
            if (r->p[s] != p)
                continue;
            if (k == cap) {
                cap = cap ? 2 * cap : 4;
                *out = hcn_xrealloc(*out, cap * sizeof **out);
            }
            (*out)[k++] = (hcn_lane_info){
                .number = r->number,
                .peer = hcn_xstrdup(r->p[1 - s]->id),
                .open = r->open,
                .send_ok = r->ok[s],
                .recv_ok = r->ok[1 - s],
                .mapped = r->side[s] == SIDE_GIVEN ||
                          r->side[s] == SIDE_QUIET || r->side[s] == SIDE_FINAL,
                .sent_seq = hcw_lane_last_seq(r->lane, s),
                .peer_read_seq = hcw_lane_read_seq(r->lane, s),
                .sent_unread = hcw_lane_backlog(
                    r->lane, s, HCN_LANE_QUOTA(r->p[1 - s]->mb.max_req)),
                .full = hcw_lane_full(r->lane, s)};
        }
    }
    pthread_mutex_unlock(&t->mu);
    return k;
}
