/* Bounded mailboxes: push never blocks; pop spins briefly, then parks on a
 * condition variable until a message, a deadline or close; a process fiber
 * (sched.c) suspends instead, and whoever pushes, closes or stops wakes
 * it. */
#include "kernel.h"

#include "../../worker/lane.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

/* No `pause` in the spin loop: under virtualization, pause-loop exiting
 * deschedules a vCPU that executes many pauses; with it, a ping-pong round
 * trip took about 400 us instead of 4 us on our 2-vCPU VMs
 * (docs/architecture.md). */
#define cpu_relax() __asm__ __volatile__("" ::: "memory")

void hcn_mailbox_init(hcn_mailbox *mb, uint32_t max_req, uint32_t spin_us)
{
    pthread_mutex_init(&mb->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&mb->cv, &ca);
    pthread_condattr_destroy(&ca);
    mb->head = mb->tail = NULL;
    atomic_init(&mb->count, 0);
    atomic_init(&mb->nreq, 0);
    mb->max_req = max_req;
    mb->spin_max_ns = (int64_t)spin_us * 1000;
    mb->spin_ns = mb->spin_max_ns;
    mb->waiting = 0;
    mb->fiber = NULL;
    mb->closed = false;
    atomic_init(&mb->stopping, false);
    atomic_init(&mb->fine_stamps, false);
    mb->notify = NULL;
    mb->notify_ctx = NULL;
    atomic_init(&mb->notify_calls, 0);
    atomic_init(&mb->push_seq, 0);
    mb->lanes_in = NULL;
    mb->nlanes_in = 0;
}

void hcn_mailbox_fini(hcn_mailbox *mb)
{
    hcn_msg *m = hcn_mailbox_take_all(mb);
    while (m) {
        hcn_msg *next = m->next;
        hcn_msg_unref(m);
        m = next;
    }
    free(mb->lanes_in);
    pthread_mutex_destroy(&mb->mu);
    pthread_cond_destroy(&mb->cv);
}

/* ------------------------------------------------------ inbound lanes */

struct hcn_mb_lane {
    struct hcw_lane *lane;
    int dir;
    uint32_t quota;
};

void hcn_mailbox_lane_add(hcn_mailbox *mb, struct hcw_lane *lane, int dir,
                          uint32_t quota)
{
    pthread_mutex_lock(&mb->mu);
    mb->lanes_in =
        hcn_xrealloc(mb->lanes_in, (mb->nlanes_in + 1) * sizeof *mb->lanes_in);
    mb->lanes_in[mb->nlanes_in++] = (struct hcn_mb_lane){lane, dir, quota};
    pthread_mutex_unlock(&mb->mu);
}

void hcn_mailbox_lane_remove(hcn_mailbox *mb, const struct hcw_lane *lane)
{
    pthread_mutex_lock(&mb->mu);
    for (unsigned i = 0; i < mb->nlanes_in; i++) {
        if (mb->lanes_in[i].lane == lane) {
            mb->lanes_in[i] = mb->lanes_in[--mb->nlanes_in];
            break;
        }
    }
    pthread_mutex_unlock(&mb->mu);
}

/* The inbound lanes' backlog (mu held). */
static uint32_t lanes_backlog(const hcn_mailbox *mb)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < mb->nlanes_in; i++) {
        const struct hcn_mb_lane *x = &mb->lanes_in[i];
        sum += hcw_lane_backlog(x->lane, x->dir, x->quota);
    }
    return sum;
}

/* Every inbound lane's `full` flag (mu held). */
static void lanes_full(hcn_mailbox *mb, bool full)
{
    for (unsigned i = 0; i < mb->nlanes_in; i++)
        hcw_lane_set_full(mb->lanes_in[i].lane, mb->lanes_in[i].dir, full);
}

uint32_t hcn_mailbox_lane_backlog(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    uint32_t sum = lanes_backlog(mb);
    pthread_mutex_unlock(&mb->mu);
    return sum;
}

/* The fiber waiting on mb, claimed for waking (under mb->mu), or NULL:
 * the caller readies it once the lock is released. */
/* Under mu: the notify function to call once mu is released (counted as
 * under way), or NULL. */
static void (*notify_take(hcn_mailbox *mb, void **ctx))(void *, bool)
{
    void (*fn)(void *, bool) = mb->notify;
    *ctx = mb->notify_ctx;
    if (fn)
        atomic_fetch_add_explicit(&mb->notify_calls, 1, memory_order_relaxed);
    return fn;
}

static void notify_call(hcn_mailbox *mb, void (*fn)(void *, bool), void *ctx,
                        bool ending)
{
    if (fn == NULL)
        return;
    fn(ctx, ending);
    atomic_fetch_sub_explicit(&mb->notify_calls, 1, memory_order_release);
}

void hcn_mailbox_set_notify(hcn_mailbox *mb, void (*fn)(void *ctx, bool ending),
                            void *ctx)
{
    pthread_mutex_lock(&mb->mu);
    mb->notify = fn;
    mb->notify_ctx = ctx;
    pthread_mutex_unlock(&mb->mu);
    if (fn == NULL)
        while (atomic_load_explicit(&mb->notify_calls, memory_order_acquire))
            sched_yield();
}

static hcn_fiber *claim_fiber(hcn_mailbox *mb)
{
    hcn_fiber *f = mb->fiber;
    if (f == NULL || !hcn_fiber_claim(f))
        return NULL; /* none, or its deadline woke it already */
    mb->fiber = NULL;
    return f;
}

int hcn_mailbox_push(hcn_mailbox *mb, hcn_msg *m)
{
    uint32_t seq;
    return hcn_mailbox_push_seq(mb, m, &seq);
}

int hcn_mailbox_push_seq(hcn_mailbox *mb, hcn_msg *m, uint32_t *seq)
{
    bool req = m->kind == HCN_MSG_REQUEST;
    pthread_mutex_lock(&mb->mu);
    if (mb->closed) {
        pthread_mutex_unlock(&mb->mu);
        return HCC_ECLOSED;
    }
    /* requests in the inbound lanes count too (each lane's at most its
     * quota: the words are its workers' say) */
    uint32_t backlog = req && mb->nlanes_in ? lanes_backlog(mb) : 0;
    if (req && (uint64_t)atomic_load_explicit(&mb->nreq, memory_order_relaxed) +
                       backlog >=
                   mb->max_req) {
        if (mb->nlanes_in)
            lanes_full(mb, true);
        pthread_mutex_unlock(&mb->mu);
        return HCC_EFULL;
    }
    m->next = NULL;
    m->arrived = atomic_load_explicit(&mb->fine_stamps, memory_order_relaxed)
                     ? hcn_now_ns()
                     : hcn_now_coarse_ns();
    if (mb->tail)
        mb->tail->next = m;
    else
        mb->head = m;
    mb->tail = m;
    m->counted = req;
    uint32_t n = atomic_load_explicit(&mb->push_seq, memory_order_relaxed) + 1;
    m->seq = *seq = n ? n : 1;
    atomic_store_explicit(&mb->push_seq, m->seq, memory_order_relaxed);
    if (req) {
        uint32_t nreq =
            atomic_fetch_add_explicit(&mb->nreq, 1, memory_order_relaxed) + 1;
        if (mb->nlanes_in)
            lanes_full(mb, (uint64_t)nreq + backlog >= mb->max_req);
    }
    atomic_fetch_add_explicit(&mb->count, 1, memory_order_release);
    int waiting = mb->waiting;
    hcn_fiber *f = claim_fiber(mb);
    void *nctx;
    void (*nfn)(void *, bool) = notify_take(mb, &nctx);
    pthread_mutex_unlock(&mb->mu);
    if (waiting)
        pthread_cond_signal(&mb->cv);
    if (f)
        hcn_fiber_ready(f);
    notify_call(mb, nfn, nctx, false);
    return HCC_EOK;
}

static hcn_msg *take_head(hcn_mailbox *mb)
{
    hcn_msg *m = mb->head;
    mb->head = m->next;
    if (mb->head == NULL)
        mb->tail = NULL;
    m->next = NULL;
    hcn_mailbox_taken(mb, m);
    atomic_fetch_sub_explicit(&mb->count, 1, memory_order_relaxed);
    return m;
}

static void spin_adapt(hcn_mailbox *mb, int64_t waited)
{
    if (waited <= mb->spin_max_ns) {
        mb->spin_ns *= 2;
        if (mb->spin_ns > mb->spin_max_ns)
            mb->spin_ns = mb->spin_max_ns;
    } else {
        mb->spin_ns /= 2;
        if (mb->spin_ns < mb->spin_max_ns / 64)
            mb->spin_ns = mb->spin_max_ns / 64;
    }
}

static int pop(hcn_mailbox *mb, int64_t deadline_ns, hcn_msg **out,
               bool heed_stop)
{
    /* Spinning first saves the futex sleep and wake-up when the peer answers
     * within microseconds.  The budget adapts to how long messages actually
     * took to come (their arrival stamp, not when this thread woke): it
     * doubles when one came within the maximum spin, so spinning would pay
     * off, and halves when the wait was longer, so an idle process soon
     * parks at once.  The floor (1/64 of the maximum) keeps it measurable. */
    /* A fiber does not spin: its scheduler thread does, when it has
     * nothing else to run (sched.c). */
    hcn_fiber *self = hcn_fiber_self();
    int64_t start = -1;
    if (self == NULL && mb->spin_max_ns > 0 &&
        atomic_load_explicit(&mb->count, memory_order_acquire) == 0) {
        if (!atomic_load_explicit(&mb->fine_stamps, memory_order_relaxed))
            atomic_store_explicit(&mb->fine_stamps, true, memory_order_relaxed);
        start = hcn_now_ns();
        int64_t end = start + mb->spin_ns;
        if (deadline_ns >= 0 && end > deadline_ns)
            end = deadline_ns;
        bool got = false;
        while (!got) {
            for (int i = 0; i < 256; i++) {
                if (atomic_load_explicit(&mb->count, memory_order_acquire)) {
                    got = true;
                    break;
                }
                cpu_relax();
            }
            if (!got && hcn_now_ns() >= end)
                break;
        }
    }
    pthread_mutex_lock(&mb->mu);
    for (;;) {
        if (heed_stop && hcn_mailbox_stopping(mb)) {
            pthread_mutex_unlock(&mb->mu);
            return HCC_ECLOSED;
        }
        if (mb->head != NULL) {
            *out = take_head(mb);
            pthread_mutex_unlock(&mb->mu);
            if (start >= 0)
                spin_adapt(mb, (*out)->arrived - start);
            return HCC_EOK;
        }
        if (mb->closed) {
            pthread_mutex_unlock(&mb->mu);
            return HCC_ECLOSED;
        }
        if (self != NULL) {
            if (deadline_ns >= 0 && hcn_now_ns() >= deadline_ns) {
                pthread_mutex_unlock(&mb->mu);
                return HCC_ETIMEOUT;
            }
            mb->fiber = self;
            hcn_fiber_wait(self, &mb->mu, deadline_ns); /* releases mu */
            pthread_mutex_lock(&mb->mu);
            if (mb->fiber == self)
                mb->fiber = NULL; /* its deadline woke it */
            continue;
        }
        mb->waiting++;
        int rc = 0;
        if (deadline_ns < 0) {
            pthread_cond_wait(&mb->cv, &mb->mu);
        } else {
            struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                                  .tv_nsec = deadline_ns % 1000000000};
            rc = pthread_cond_timedwait(&mb->cv, &mb->mu, &ts);
        }
        mb->waiting--;
        if (rc == ETIMEDOUT && mb->head == NULL && !mb->closed) {
            pthread_mutex_unlock(&mb->mu);
            if (start >= 0)
                spin_adapt(mb, INT64_MAX);
            return HCC_ETIMEOUT;
        }
    }
}

int hcn_mailbox_pop(hcn_mailbox *mb, int64_t deadline_ns, hcn_msg **out)
{
    return pop(mb, deadline_ns, out, true);
}

int hcn_mailbox_pop_through(hcn_mailbox *mb, int64_t deadline_ns, hcn_msg **out)
{
    return pop(mb, deadline_ns, out, false);
}

bool hcn_mailbox_closed(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    bool c = mb->closed;
    pthread_mutex_unlock(&mb->mu);
    return c;
}

void hcn_mailbox_close(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = true;
    hcn_fiber *f = claim_fiber(mb);
    void *nctx;
    void (*nfn)(void *, bool) = notify_take(mb, &nctx);
    pthread_mutex_unlock(&mb->mu);
    pthread_cond_broadcast(&mb->cv);
    if (f)
        hcn_fiber_ready(f);
    notify_call(mb, nfn, nctx, true);
}

void hcn_mailbox_reopen(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = false;
    atomic_init(&mb->stopping, false);
    pthread_mutex_unlock(&mb->mu);
}

void hcn_mailbox_stop(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    atomic_store_explicit(&mb->stopping, true, memory_order_release);
    hcn_fiber *f = claim_fiber(mb);
    void *nctx;
    void (*nfn)(void *, bool) = notify_take(mb, &nctx);
    pthread_mutex_unlock(&mb->mu);
    pthread_cond_broadcast(&mb->cv);
    if (f)
        hcn_fiber_ready(f);
    notify_call(mb, nfn, nctx, true);
}

void hcn_mailbox_resume(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    atomic_store_explicit(&mb->stopping, false, memory_order_release);
    pthread_mutex_unlock(&mb->mu);
}

void hcn_mailbox_requeue(hcn_mailbox *mb, hcn_msg *head, hcn_msg *tail)
{
    if (head == NULL)
        return;
    unsigned n = 0;
    for (hcn_msg *m = head; m; m = m->next)
        n++;
    pthread_mutex_lock(&mb->mu);
    tail->next = mb->head;
    mb->head = head;
    if (mb->tail == NULL)
        mb->tail = tail;
    atomic_fetch_add_explicit(&mb->count, n, memory_order_release);
    pthread_mutex_unlock(&mb->mu);
}

void hcn_mailbox_taken(hcn_mailbox *mb, hcn_msg *m)
{
    if (m->counted) {
        m->counted = false;
        atomic_fetch_sub_explicit(&mb->nreq, 1, memory_order_relaxed);
    }
}

void hcn_mailbox_drain(hcn_mailbox *mb, hcn_msg **head, hcn_msg **tail)
{
    pthread_mutex_lock(&mb->mu);
    if (hcn_mailbox_stopping(mb)) {
        *head = *tail = NULL;
        pthread_mutex_unlock(&mb->mu);
        return;
    }
    *head = mb->head;
    *tail = mb->tail;
    mb->head = mb->tail = NULL;
    atomic_store_explicit(&mb->count, 0, memory_order_relaxed);
    pthread_mutex_unlock(&mb->mu);
}

hcn_msg *hcn_mailbox_take_all(hcn_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    hcn_msg *m = mb->head;
    mb->head = mb->tail = NULL;
    atomic_store(&mb->nreq, 0);
    atomic_store(&mb->count, 0);
    for (hcn_msg *t = m; t; t = t->next)
        t->counted = false;
    pthread_mutex_unlock(&mb->mu);
    return m;
}
