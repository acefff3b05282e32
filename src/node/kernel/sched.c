/* M:N scheduling of in-process guest processes (kernel.h, "schedulers";
 * experimental, `hyperc run --schedulers N`).
 *
 * A fiber is one process's life (hcn_proc_life) on a stack of its own: one
 * mapping with a PROT_NONE guard at the bottom, switched to with the
 * guest's coroutine switch assembled under the node's names
 * (fiber_switch.S).  Each scheduler thread (a worker) owns a run queue and
 * a timer heap, both under its lock, and a `runnext` slot only it touches:
 *
 * - A fiber waits (hcn_fiber_wait) by making its token odd and switching
 *   to its worker, which then, off the fiber's stack, puts it in its timer
 *   heap (a timed wait) and releases the lock the fiber waited under (its
 *   mailbox's).  So whoever wakes it, under that lock or from the heap,
 *   finds it wholly suspended.
 * - A waker claims it (the token's odd -> even step, one winner per wait)
 *   and readies it: into its own worker's runnext when the waker is itself
 *   a fiber (the waker is about to wait in its turn, typically: a pair that
 *   talks then runs on one thread, with a switch and no system call per
 *   message), else into the queue of the worker it last ran on, waking
 *   that thread if it sleeps, or another sleeping one to take it if that
 *   one is busy.
 * - A worker runs runnext first (up to RUNNEXT_STREAK times in a row, so
 *   that its queue and timers are not starved by a pair), then its due
 *   timers and its queue, then takes from the others' queues; with nothing
 *   to run it spins for the node's spin_us (no `pause`: mailbox.c says
 *   why), then sleeps on its condition variable until its next timer, a
 *   push, or PARK_MAX_NS.
 * - A fiber that computes holds its worker: C cannot be preempted.  The
 *   fibers queued behind it are taken by idle workers; one in its runnext
 *   waits (a watchdog that moves them is future work).
 *
 * Per-thread state that follows a fiber: the fault handler's current host
 * and stack (fault.c: hcn_fault_fiber_in/out around each switch); each
 * worker has its own alternate signal stack (hcn_fault_thread_begin), and
 * a kill jump (siglongjmp to the host's kill point) lands on the fiber's
 * stack, where run_instance set it.  Under AddressSanitizer every switch is
 * announced; the bounds of the stack a fiber left (which may be one of its
 * guest's task stacks) are learnt from the sanitizer when it comes back,
 * and fiber stacks are LeakSanitizer root regions. */
#include "kernel_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef HCN_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

/* A fiber's stack: address space reserved, pages committed as touched.
 * The node's own frames on it (loading an instance copies through a
 * 64 KiB buffer; dlopen) and the guest's main context run there. */
#define FIBER_STACK ((size_t)1024 * 1024)
#define FIBER_GUARD ((size_t)64 * 1024)
/* Runnext picks in a row before the queue and the timers get a turn. */
#define RUNNEXT_STREAK 61u
/* Longest sleep of an idle worker (it then looks at the others' queues and
 * the shutdown again). */
#define PARK_MAX_NS (100 * 1000000LL)
/* A sleeping fiber sees a shutdown within this. */
#define SLEEP_STEP_NS (50 * 1000000LL)
#define NO_HEAP ((size_t)-1)

#define cpu_relax() __asm__ __volatile__("" ::: "memory")

/* fiber_switch.S */
void hcn__fiber_switch(void **save_sp, void *to_sp);
void hcn__fiber_trampoline(void);

typedef struct worker worker;

struct hcn_fiber {
    void *sp; /* saved stack pointer while suspended */
    hcn_proc *proc;
    char *map; /* guard, then stack */
    size_t map_len;
    char *stack_lo;
    size_t stack_size;
    hcn_fiber *next; /* in a run queue */
    worker *last;    /* the worker it runs or last ran on */
    /* A timed wait: the worker whose heap holds it (set by that worker,
     * cleared by the fiber as it resumes) and its place there (under that
     * worker's lock). */
    worker *timer_w;
    size_t heap_idx;
    int64_t deadline;
    _Atomic uint64_t token; /* odd while waiting to be claimed */
    bool done;
    hcn_host *fault_host; /* fault.c's host for it while suspended */
#ifdef HCN_ASAN
    void *fake;          /* its fake stack while suspended */
    const void *from_lo; /* the worker stack it came from */
    size_t from_size;
    const void *cur_lo; /* the stack it is suspended on */
    size_t cur_size;
#endif
};

struct worker {
    hcn_sched *s;
    unsigned index;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards the queue, the heap and `sleeping` */
    pthread_cond_t cv;
    hcn_fiber *head, *tail;
    atomic_uint nready;   /* queue length, also read without the lock */
    atomic_bool sleeping; /* waiting on cv */
    hcn_fiber **heap;     /* timed waits, earliest first */
    size_t heap_len, heap_cap;
    _Atomic int64_t due; /* heap[0]'s deadline, INT64_MAX when empty */
    /* The worker's own thread only. */
    hcn_fiber *runnext;
    unsigned streak;
    hcn_fiber *cur;               /* running now */
    atomic_bool running;          /* cur != NULL, for other threads */
    void *sp;                     /* the worker's context while a fiber runs */
    pthread_mutex_t *post_unlock; /* what a waiting fiber asked */
    int64_t post_deadline;
};

struct hcn_sched {
    hcn_node *node;
    unsigned n;
    worker *w;
    atomic_int fibers; /* fibers not yet ended */
    atomic_uint rr;    /* where the next new fiber goes */
    atomic_bool stopping;
};

static _Thread_local worker *tl_worker;

/* The calling thread's worker.  A fiber moves between threads, so the
 * address of a thread-local must not be kept across a switch: this is an
 * opaque call each time (the asm stops the compiler deeming it pure). */
static __attribute__((noinline)) worker *self_worker(void)
{
    worker *w = tl_worker;
    __asm__ __volatile__("" : "+r"(w));
    return w;
}

hcn_fiber *hcn_fiber_self(void)
{
    worker *w = self_worker();
    return w ? w->cur : NULL;
}

/* ------------------------------------------------------------ the heap */

static void heap_set(worker *w, size_t i, hcn_fiber *f)
{
    w->heap[i] = f;
    f->heap_idx = i;
}

static void heap_up(worker *w, size_t i)
{
    hcn_fiber *f = w->heap[i];
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (w->heap[up]->deadline <= f->deadline)
            break;
        heap_set(w, i, w->heap[up]);
        i = up;
    }
    heap_set(w, i, f);
}

static void heap_down(worker *w, size_t i)
{
    hcn_fiber *f = w->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= w->heap_len)
            break;
        if (c + 1 < w->heap_len &&
            w->heap[c + 1]->deadline < w->heap[c]->deadline)
            c++;
        if (f->deadline <= w->heap[c]->deadline)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, f);
}

static void heap_due(worker *w)
{
    atomic_store_explicit(&w->due,
                          w->heap_len ? w->heap[0]->deadline : INT64_MAX,
                          memory_order_relaxed);
}

static void heap_push(worker *w, hcn_fiber *f)
{
    if (w->heap_len == w->heap_cap) {
        w->heap_cap = w->heap_cap ? 2 * w->heap_cap : 16;
        w->heap = hcn_xrealloc(w->heap, w->heap_cap * sizeof *w->heap);
    }
    w->heap[w->heap_len++] = f;
    heap_up(w, w->heap_len - 1);
    heap_due(w);
}

static void heap_remove(worker *w, size_t i)
{
    hcn_fiber *f = w->heap[i];
    f->heap_idx = NO_HEAP;
    hcn_fiber *last = w->heap[--w->heap_len];
    if (i < w->heap_len) {
        heap_set(w, i, last);
        heap_down(w, i);
        heap_up(w, last->heap_idx);
    }
    heap_due(w);
}

/* -------------------------------------------------------- run queues */

/* Append f to w's queue; true if w was asleep (and is now woken). */
static bool enqueue_locked(worker *w, hcn_fiber *f)
{
    f->next = NULL;
    if (w->tail)
        w->tail->next = f;
    else
        w->head = f;
    w->tail = f;
    atomic_fetch_add_explicit(&w->nready, 1, memory_order_release);
    return atomic_load_explicit(&w->sleeping, memory_order_relaxed);
}

static bool enqueue(worker *w, hcn_fiber *f)
{
    pthread_mutex_lock(&w->mu);
    bool asleep = enqueue_locked(w, f);
    pthread_mutex_unlock(&w->mu);
    if (asleep)
        pthread_cond_signal(&w->cv);
    return asleep;
}

static hcn_fiber *dequeue_locked(worker *w)
{
    hcn_fiber *f = w->head;
    if (f == NULL)
        return NULL;
    w->head = f->next;
    if (w->head == NULL)
        w->tail = NULL;
    f->next = NULL;
    atomic_fetch_sub_explicit(&w->nready, 1, memory_order_relaxed);
    return f;
}

/* Wake one sleeping worker other than `busy`, to take what waits in busy's
 * queue. */
static void wake_idle(hcn_sched *s, worker *busy)
{
    for (unsigned i = 0; i < s->n; i++) {
        worker *o = &s->w[i];
        if (o == busy ||
            !atomic_load_explicit(&o->sleeping, memory_order_relaxed))
            continue;
        pthread_mutex_lock(&o->mu);
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        return;
    }
}

bool hcn_fiber_claim(hcn_fiber *f)
{
    uint64_t t = atomic_load(&f->token);
    return (t & 1) && atomic_compare_exchange_strong(&f->token, &t, t + 1);
}

void hcn_fiber_ready(hcn_fiber *f)
{
    worker *w = self_worker();
    if (w != NULL && w->s == f->last->s) {
        if (w->cur != NULL) {
            /* the waker is a fiber of this worker: f runs next here */
            if (w->runnext)
                enqueue(w, w->runnext);
            w->runnext = f;
        } else {
            enqueue(w, f);
        }
        return;
    }
    worker *to = f->last;
    bool asleep = enqueue(to, f);
    if (!asleep && atomic_load_explicit(&to->running, memory_order_relaxed))
        wake_idle(to->s, to);
}

/* -------------------------------------------------------------- fibers */

__attribute__((noreturn)) static void fiber_main(hcn_fiber *f)
{
#ifdef HCN_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->from_lo, &f->from_size);
#endif
    hcn_proc_life(f->proc);
    f->done = true;
    worker *w = self_worker();
#ifdef HCN_ASAN
    /* no save slot: the sanitizer drops this fiber's fake stack */
    __sanitizer_start_switch_fiber(NULL, f->from_lo, f->from_size);
#endif
    hcn__fiber_switch(&f->sp, w->sp);
    abort(); /* an ended fiber is never resumed */
}

/* The first frame hcn__fiber_switch pops to "return" into the trampoline,
 * which calls fiber_main(f) (the layout of src/guest/coro_native.c). */
static void init_frame(hcn_fiber *f)
{
    uintptr_t top = (uintptr_t)(f->stack_lo + f->stack_size) & ~(uintptr_t)15;
    uint64_t *s = (uint64_t *)top;
    void (*entry)(hcn_fiber *) = fiber_main;
#if defined(__x86_64__)
    s[-1] = 0;
    s[-2] = 0;
    s[-3] = (uint64_t)(uintptr_t)hcn__fiber_trampoline; /* return address */
    s[-4] = 0;                                          /* rbp */
    s[-5] = 0;                                          /* rbx */
    s[-6] = (uint64_t)(uintptr_t)f;                     /* r12: argument */
    s[-7] = (uint64_t)(uintptr_t)entry;                 /* r13: entry */
    s[-8] = 0;                                          /* r14 */
    s[-9] = 0;                                          /* r15 */
    /* MXCSR and x87 control word: the processor's defaults */
    s[-10] = (uint64_t)0x1F80 | (uint64_t)0x037F << 32;
    f->sp = &s[-10];
#elif defined(__aarch64__)
    uint64_t *b = s - 22;
    memset(b, 0, 22 * sizeof *b);
    b[0] = (uint64_t)(uintptr_t)f;                      /* x19: argument */
    b[1] = (uint64_t)(uintptr_t)entry;                  /* x20: entry */
    b[11] = (uint64_t)(uintptr_t)hcn__fiber_trampoline; /* x30 */
    f->sp = b;
#endif
}

void hcn_fiber_wait(hcn_fiber *f, pthread_mutex_t *mu, int64_t deadline_ns)
{
    if (mu == NULL && deadline_ns < 0)
        abort(); /* nothing could ever wake it */
    worker *w = self_worker();
    atomic_fetch_add(&f->token, 1); /* odd: waiting */
    w->post_unlock = mu;
    w->post_deadline = deadline_ns;
#ifdef HCN_ASAN
    __sanitizer_start_switch_fiber(&f->fake, f->from_lo, f->from_size);
#endif
    hcn__fiber_switch(&f->sp, w->sp);
#ifdef HCN_ASAN
    __sanitizer_finish_switch_fiber(f->fake, &f->from_lo, &f->from_size);
#endif
    worker *tw = f->timer_w;
    if (tw != NULL) {
        pthread_mutex_lock(&tw->mu);
        if (f->heap_idx != NO_HEAP)
            heap_remove(tw, f->heap_idx);
        pthread_mutex_unlock(&tw->mu);
        f->timer_w = NULL;
    }
}

bool hcn_fiber_sleep_until(hcn_fiber *f, hcn_node *n, int64_t deadline_ns)
{
    while (!atomic_load(&n->shutting_down)) {
        int64_t now = hcn_now_ns();
        if (now >= deadline_ns)
            break;
        int64_t step = now + SLEEP_STEP_NS;
        hcn_fiber_wait(f, NULL, step < deadline_ns ? step : deadline_ns);
    }
    return !atomic_load(&n->shutting_down);
}

static void fiber_free(hcn_fiber *f)
{
#ifdef HCN_ASAN
    __lsan_unregister_root_region(f->stack_lo, f->stack_size);
    /* frames that never returned leave their redzones poisoned; whoever
     * maps this range next must not inherit them */
    ASAN_UNPOISON_MEMORY_REGION(f->stack_lo, f->stack_size);
#endif
    munmap(f->map, f->map_len);
    free(f);
}

int hcn_sched_spawn(hcn_sched *s, hcn_proc *p)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t guard = (FIBER_GUARD + (size_t)pg - 1) & ~((size_t)pg - 1);
    size_t len = guard + FIBER_STACK;
    char *map =
        mmap(NULL, len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return -1;
    if (mprotect(map + guard, FIBER_STACK, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, len);
        return -1;
    }
    hcn_fiber *f = hcn_xcalloc(1, sizeof *f);
    f->map = map;
    f->map_len = len;
    f->stack_lo = map + guard;
    f->stack_size = FIBER_STACK;
    f->heap_idx = NO_HEAP;
    atomic_init(&f->token, 0);
    f->proc = hcn_proc_ref(p);
    init_frame(f);
#ifdef HCN_ASAN
    f->cur_lo = f->stack_lo;
    f->cur_size = f->stack_size;
    __lsan_register_root_region(f->stack_lo, f->stack_size);
#endif
    f->last = &s->w[atomic_fetch_add(&s->rr, 1) % s->n];
    atomic_fetch_add(&s->fibers, 1);
    hcn_node_thread_begin(s->node);
    enqueue(f->last, f);
    return 0;
}

/* ------------------------------------------------------------- workers */

/* f ended on w: free it and let its process go. */
static void fiber_end(worker *w, hcn_fiber *f)
{
    hcn_sched *s = w->s;
    hcn_proc *p = f->proc;
    fiber_free(f);
    hcn_node_thread_end(s->node);
    hcn_proc_unref(p);
    if (atomic_fetch_sub(&s->fibers, 1) == 1 && atomic_load(&s->stopping))
        hcn_sched_shutdown(s); /* the last one: wake the others to exit */
}

static void run(worker *w, hcn_fiber *f)
{
    w->cur = f;
    atomic_store_explicit(&w->running, true, memory_order_relaxed);
    f->last = w;
    hcn_fault_fiber_in(f->fault_host, f->stack_lo, f->stack_size);
#ifdef HCN_ASAN
    void *fake;
    __sanitizer_start_switch_fiber(&fake, f->cur_lo, f->cur_size);
#endif
    hcn__fiber_switch(&w->sp, f->sp);
#ifdef HCN_ASAN
    __sanitizer_finish_switch_fiber(fake, &f->cur_lo, &f->cur_size);
#endif
    f->fault_host = hcn_fault_fiber_out();
    w->cur = NULL;
    atomic_store_explicit(&w->running, false, memory_order_relaxed);
    if (f->done) {
        fiber_end(w, f);
        return;
    }
    /* It waits (hcn_fiber_wait): now that it is off its stack, its timer
     * goes in, then its lock goes, and from then on it may be woken. */
    if (w->post_deadline >= 0) {
        pthread_mutex_lock(&w->mu);
        f->deadline = w->post_deadline;
        f->timer_w = w;
        heap_push(w, f);
        pthread_mutex_unlock(&w->mu);
    }
    if (w->post_unlock != NULL)
        pthread_mutex_unlock(w->post_unlock);
    w->post_unlock = NULL;
    w->post_deadline = -1;
}

/* Due timers into the queue, then the queue's head; under w's lock. */
static hcn_fiber *take_local(worker *w)
{
    int64_t due = atomic_load_explicit(&w->due, memory_order_relaxed);
    if (atomic_load_explicit(&w->nready, memory_order_acquire) == 0 &&
        (due == INT64_MAX || due > hcn_now_ns()))
        return NULL;
    pthread_mutex_lock(&w->mu);
    if (w->heap_len) {
        int64_t now = hcn_now_ns();
        while (w->heap_len && w->heap[0]->deadline <= now) {
            hcn_fiber *f = w->heap[0];
            heap_remove(w, 0);
            if (hcn_fiber_claim(f))
                enqueue_locked(w, f);
        }
    }
    hcn_fiber *f = dequeue_locked(w);
    pthread_mutex_unlock(&w->mu);
    return f;
}

/* From the other workers: a queued fiber, else one whose deadline passed
 * (its worker may be held by a fiber that computes, and a timeout must not
 * wait for that). */
static hcn_fiber *steal(worker *w)
{
    hcn_sched *s = w->s;
    int64_t now = -1;
    for (unsigned i = 1; i < s->n; i++) {
        worker *o = &s->w[(w->index + i) % s->n];
        if (atomic_load_explicit(&o->nready, memory_order_acquire) == 0)
            continue;
        pthread_mutex_lock(&o->mu);
        hcn_fiber *f = dequeue_locked(o);
        pthread_mutex_unlock(&o->mu);
        if (f)
            return f;
    }
    for (unsigned i = 1; i < s->n; i++) {
        worker *o = &s->w[(w->index + i) % s->n];
        int64_t due = atomic_load_explicit(&o->due, memory_order_relaxed);
        if (due == INT64_MAX)
            continue;
        if (now < 0)
            now = hcn_now_ns();
        if (due > now)
            continue;
        hcn_fiber *f = NULL;
        pthread_mutex_lock(&o->mu);
        while (f == NULL && o->heap_len && o->heap[0]->deadline <= now) {
            hcn_fiber *t = o->heap[0];
            heap_remove(o, 0);
            if (hcn_fiber_claim(t))
                f = t;
        }
        pthread_mutex_unlock(&o->mu);
        if (f)
            return f;
    }
    return NULL;
}

/* The earliest deadline of every worker's timers. */
static int64_t next_due(hcn_sched *s)
{
    int64_t due = INT64_MAX;
    for (unsigned i = 0; i < s->n; i++) {
        int64_t d = atomic_load_explicit(&s->w[i].due, memory_order_relaxed);
        if (d < due)
            due = d;
    }
    return due;
}

static bool any_ready(worker *w)
{
    hcn_sched *s = w->s;
    for (unsigned i = 0; i < s->n; i++)
        if (atomic_load_explicit(&s->w[i].nready, memory_order_relaxed))
            return true;
    return false;
}

static bool finished(hcn_sched *s)
{
    return atomic_load(&s->stopping) && atomic_load(&s->fibers) == 0;
}

static void park(worker *w)
{
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->nready) == 0 && !finished(w->s)) {
        int64_t deadline = hcn_now_ns() + PARK_MAX_NS;
        int64_t due = next_due(w->s);
        if (due < deadline)
            deadline = due;
        struct timespec ts = {.tv_sec = deadline / 1000000000,
                              .tv_nsec = deadline % 1000000000};
        atomic_store(&w->sleeping, true);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        atomic_store(&w->sleeping, false);
    }
    pthread_mutex_unlock(&w->mu);
}

/* The next fiber for w to run; NULL when the schedulers are done. */
static hcn_fiber *next_fiber(worker *w)
{
    int64_t spin_ns = (int64_t)w->s->node->cfg.spin_us * 1000;
    int64_t spin_end = -1;
    for (;;) {
        hcn_fiber *f = w->runnext;
        if (f != NULL && w->streak < RUNNEXT_STREAK) {
            w->runnext = NULL;
            w->streak++;
            return f;
        }
        w->streak = 0;
        if ((f = take_local(w)) != NULL)
            return f;
        if ((f = w->runnext) != NULL) {
            w->runnext = NULL;
            return f;
        }
        if ((f = steal(w)) != NULL)
            return f;
        if (finished(w->s))
            return NULL;
        int64_t now = hcn_now_ns();
        if (spin_end < 0)
            spin_end = now + spin_ns;
        if (now < spin_end && next_due(w->s) > now) {
            for (int i = 0; i < 256 && !any_ready(w); i++)
                cpu_relax();
            continue;
        }
        park(w);
        spin_end = -1;
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    tl_worker = w;
    hcn_fault_thread_begin();
    hcn_fiber *f;
    while ((f = next_fiber(w)) != NULL)
        run(w, f);
    hcn_fault_thread_end();
    tl_worker = NULL;
    hcn_node_thread_end(w->s->node);
    return NULL;
}

int hcn_sched_start(hcn_node *n, unsigned count)
{
    if (count == 0)
        return 0;
    hcn_sched *s = hcn_xcalloc(1, sizeof *s);
    s->node = n;
    s->n = count;
    s->w = hcn_xcalloc(count, sizeof *s->w);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (unsigned i = 0; i < count; i++) {
        worker *w = &s->w[i];
        w->s = s;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, &ca);
        atomic_init(&w->due, INT64_MAX);
        w->post_deadline = -1;
    }
    pthread_condattr_destroy(&ca);
    n->sched = s;
    for (unsigned i = 0; i < count; i++) {
        worker *w = &s->w[i];
        hcn_node_thread_begin(n);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            hcn_node_thread_end(n);
            return -1;
        }
        w->started = true;
    }
    return 0;
}

void hcn_sched_shutdown(hcn_sched *s)
{
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < s->n; i++) {
        pthread_mutex_lock(&s->w[i].mu);
        pthread_cond_broadcast(&s->w[i].cv);
        pthread_mutex_unlock(&s->w[i].mu);
    }
}

void hcn_sched_join(hcn_sched *s, bool leave)
{
    for (unsigned i = 0; i < s->n; i++) {
        worker *w = &s->w[i];
        if (!w->started)
            continue;
        if (leave)
            pthread_detach(w->thread);
        else
            pthread_join(w->thread, NULL);
    }
    if (leave)
        return;
    for (unsigned i = 0; i < s->n; i++) {
        pthread_mutex_destroy(&s->w[i].mu);
        pthread_cond_destroy(&s->w[i].cv);
        free(s->w[i].heap);
    }
    free(s->w);
    free(s);
}
