/* M:N scheduling of in-process guest processes (kernel.h, "schedulers";
 * `hyperc run --schedulers N`, N = the online CPUs by default).
 *
 * A fiber is one process's life (hcn_proc_life) on a stack of its own: one
 * mapping with a PROT_NONE guard at the bottom, switched to with the
 * guest's coroutine switch assembled under the node's names
 * (fiber_switch.S).  A worker (N of them) owns a run queue and a timer
 * heap, both under its lock, and a `runnext` slot; a thread runs one
 * worker at a time, and the watchdog may hand a worker to another thread:
 *
 * - A fiber waits (hcn_fiber_wait) by making its token odd and switching
 *   to its thread, which then, off the fiber's stack, puts it in its
 *   worker's timer heap (a timed wait) and releases the lock the fiber
 *   waited under (its mailbox's).  So whoever wakes it, under that lock or
 *   from the heap, finds it wholly suspended.
 * - A waker claims it (the token's odd -> even step, one winner per wait)
 *   and readies it: into its own worker's runnext when the waker is itself
 *   a fiber (the waker is about to wait in its turn, typically: a pair that
 *   talks then runs on one thread, with a switch and no system call per
 *   message), else into the queue of the worker it last ran on, waking
 *   that worker's thread if it sleeps, or another sleeping one to take it
 *   if that one is busy.
 * - A thread runs its worker's runnext first (up to RUNNEXT_STREAK times
 *   in a row, so that its queue and timers are not starved by a pair),
 *   then its due timers and its queue, then takes from the other workers'
 *   queues; with nothing to run it spins (no `pause`: mailbox.c says
 *   why) for a budget that adapts, up to the node's spin_us, to how long
 *   work took to come (as a mailbox's), then sleeps on its worker's futex
 *   word until its next timer, a push, or PARK_MAX_NS — or, one thread at
 *   a time, in the netpoller (np_wait): an epoll set of the descriptors
 *   registered by hcn_netpoll_add, whose `ready` it calls when they have
 *   input, so that a message from another node is read and its fiber run
 *   on the thread it woke.
 * - A fiber that computes, or blocks in a system call, holds its thread: C
 *   cannot be preempted.  The watchdog (a thread of its own, like Go's
 *   sysmon) looks at every worker each TICK_NS; one seen in the same fiber
 *   run for HANDOFF_NS is handed over (its `run` word's step to
 *   RUN_HANDED, which the holding thread's return from the fiber cannot
 *   take back) to a spare thread, or to a new one: its runnext, queue and
 *   timers go on at once, whether the other workers are held too or not
 *   (--schedulers 1).  The held thread finishes its fiber's turn without a
 *   worker, then becomes a spare; a spare that gets no worker within
 *   SPARE_IDLE_NS, or one beyond N spares, ends.  With every worker asleep
 *   for QUIET_TICKS the watchdog sleeps too, until a worker wakes.
 *
 * Per-thread state that follows a fiber: the fault handler's current host
 * and stack (fault.c: hcn_fault_fiber_in/out around each switch); each
 * thread has its own alternate signal stack (hcn_fault_thread_begin), and
 * a kill jump (siglongjmp to the host's kill point) lands on the fiber's
 * stack, where run_instance set it.  Under AddressSanitizer every switch is
 * announced; the bounds of the stack a fiber left (which may be one of its
 * guest's task stacks) are learnt from the sanitizer when it comes back,
 * and fiber stacks are LeakSanitizer root regions. */
#include "kernel_int.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
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
/* Longest sleep of an idle thread (it then looks at the others' queues and
 * the shutdown again). */
#define PARK_MAX_NS (100 * 1000000LL)
/* A sleeping fiber sees a shutdown within this. */
#define SLEEP_STEP_NS (50 * 1000000LL)
#define NO_HEAP ((size_t)-1)
/* The watchdog looks every TICK_NS and hands over a worker seen in one
 * fiber run for HANDOFF_NS (so after 2 to 3 ms); with every worker asleep
 * for QUIET_TICKS it sleeps until one wakes (or WATCH_SLEEP_NS). */
#define TICK_NS (1000000LL)
#define HANDOFF_NS (2 * 1000000LL)
#define QUIET_TICKS 50u
#define WATCH_SLEEP_NS (1000 * 1000000LL)
/* A spare thread given no worker within this ends.  Long enough that a
 * process handed over now and then (one that works without a break is
 * handed over every few seconds) reuses the same spare rather than a new
 * thread each time; an idle spare costs only its stack. */
#define SPARE_IDLE_NS (10 * 1000 * 1000000LL)

/* A worker's `run` word: the count of fiber runs begun on it, shifted
 * left by two, and what its thread does (the low two bits).  One word, so
 * that the watchdog's hand-over of a run it saw cannot take a later run. */
#define RUN_SCHED 0u  /* scheduling (or spinning, or asleep) */
#define RUN_FIBER 1u  /* in a fiber */
#define RUN_HANDED 2u /* handed over, no thread has it yet */
#define RUN_STATE(r) ((unsigned)((r)&3u))
#define RUN_COUNT(r) ((r) & ~(uint64_t)3)

#define cpu_relax() __asm__ __volatile__("" ::: "memory")

/* fiber_switch.S */
void hcn__fiber_switch(void **save_sp, void *to_sp);
void hcn__fiber_trampoline(void);

typedef struct worker worker;
typedef struct sthread sthread;

struct hcn_fiber {
    void *sp; /* saved stack pointer while suspended */
    hcn_proc *proc;
    char *map; /* guard, then stack */
    size_t map_len;
    char *stack_lo;
    size_t stack_size;
    hcn_fiber *next; /* in a run queue */
    worker *last;    /* the worker it runs or last ran on */
    /* A timed wait: the worker whose heap holds it (set by that worker's
     * thread, cleared by the fiber as it resumes) and its place there
     * (under that worker's lock). */
    worker *timer_w;
    size_t heap_idx;
    int64_t deadline;
    _Atomic uint64_t token; /* odd while waiting to be claimed */
    bool done;
    hcn_host *fault_host; /* fault.c's host for it while suspended */
    void *guest_inst;     /* the runtime's running instance, likewise */
#ifdef HCN_ASAN
    void *fake;          /* its fake stack while suspended */
    const void *from_lo; /* the thread stack it came from */
    size_t from_size;
    const void *cur_lo; /* the stack it is suspended on */
    size_t cur_size;
#endif
#ifdef HCN_TSAN
    void *tsan;     /* TSan's context for its stack */
    void *tsan_cur; /* the context it is suspended in (a guest coroutine's
                       when it waits from one) */
#endif
};

/* A run queue, a timer heap and a runnext slot, run by one thread at a
 * time. */
struct worker {
    hcn_sched *s;
    unsigned index;
    bool started; /* a thread was made for it (threads_start; under s->mu) */
    pthread_mutex_t mu; /* guards the queue, the heap and `sleeping` */
    /* Its thread sleeps on this futex word (park), and a waker adds one to
     * it and wakes it (worker_wake): a wake-up costs the two system calls
     * and no more (a condition variable made the woken thread take the
     * mutex back, often one more futex call each way). */
    _Atomic uint32_t wakes;
    hcn_fiber *head, *tail;
    atomic_uint nready;   /* queue length, also read without the lock */
    atomic_bool sleeping; /* its thread sleeps on `wakes` */
    /* ... in the netpoller instead (so a waker writes np_wake) */
    atomic_bool netpolling;
    hcn_fiber **heap; /* timed waits, earliest first */
    size_t heap_len, heap_cap;
    _Atomic int64_t due; /* heap[0]'s deadline, INT64_MAX when empty */
    /* The next to run: set by a fiber of this worker waking another, taken
     * by its thread (or given back to the queue by a waker that finds the
     * worker handed over meanwhile). */
    _Atomic(hcn_fiber *) runnext;
    _Atomic uint64_t run; /* RUN_COUNT | RUN_STATE, above */
    unsigned streak;      /* its thread's */
    int64_t spin_ns;      /* its thread's spin budget now (next_fiber) */
    /* The watchdog's (under s->mu): the run word it saw, since when, and
     * whether the worker waits for a thread (none could be made). */
    uint64_t seen_run;
    int64_t seen_at;
    bool orphan;
};

/* A scheduler thread. */
struct sthread {
    hcn_sched *s;
    pthread_t thread;
    worker *w; /* the worker it runs; NULL while spare */
    /* Its own while a fiber runs on it. */
    hcn_fiber *cur;
    uint64_t run; /* w->run as this fiber run began */
    void *sp;     /* the thread's context while a fiber runs */
#ifdef HCN_TSAN
    void *tsan; /* TSan's context for the thread's own stack */
#endif
    pthread_mutex_t *post_unlock; /* what a waiting fiber asked */
    int64_t post_deadline;
    /* Under s->mu. */
    pthread_cond_t cv; /* a spare waits here for a worker */
    worker *given;     /* handed to it while spare */
    bool spare;
    bool exited;      /* ended: to be joined */
    sthread *next;    /* in s->threads */
    sthread *next_sp; /* in s->spares */
};

struct hcn_sched {
    hcn_node *node;
    unsigned n;
    worker *w;
    atomic_int fibers; /* fibers not yet ended */
    atomic_uint rr;    /* where the next new fiber goes */
    atomic_bool stopping;
    atomic_uint handoffs; /* workers handed over so far */
    pthread_mutex_t mu;   /* the threads, the spares, the watchdog's state */
    pthread_cond_t cv;    /* the watchdog waits here */
    pthread_condattr_t cattr;
    sthread *threads; /* every thread not joined yet */
    sthread *spares;
    unsigned nspares;
    unsigned started;         /* threads started so far (under mu) */
    atomic_bool watch_asleep; /* the watchdog waits for a worker to wake */
    pthread_t watchdog;
    bool watchdog_started;
    /* the threads and the watchdog run (under mu; read without it once
     * true): they start with the first fiber, so a node whose processes
     * are all isolated or modules has none */
    atomic_bool running;
    /* The netpoller (hcn_netpoll_add): an epoll set of the watched
     * descriptors and np_wake (an eventfd, edge-triggered and never read:
     * a write is one event), waited on by the one thread that holds
     * np_token as it parks; np_seq is odd from before that wait to the
     * end of the `ready` calls after it. */
    int np_fd, np_wake;
    atomic_uint np_count; /* descriptors watched */
    atomic_bool np_token;
    atomic_uint np_seq;
    /* (the watchdog's) np_seq at its previous tick, and whether no thread
     * held np_token then */
    unsigned np_seen_seq;
    bool np_seen_free;
};

static _Thread_local sthread *tl_thread;

/* The calling scheduler thread.  A fiber moves between threads, so the
 * address of a thread-local must not be kept across a switch: this is an
 * opaque call each time (the asm stops the compiler deeming it pure). */
static __attribute__((noinline)) sthread *self_thread(void)
{
    sthread *t = tl_thread;
    __asm__ __volatile__("" : "+r"(t));
    return t;
}

hcn_fiber *hcn_fiber_self(void)
{
    sthread *t = self_thread();
    return t ? t->cur : NULL;
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

/* Sleep while *word holds `seen`, until `deadline` (monotonic ns, the
 * clock of hcn_now_ns); may return early (a wake-up, a signal). */
static void futex_sleep(_Atomic uint32_t *word, uint32_t seen, int64_t deadline)
{
    struct timespec ts = {.tv_sec = deadline / 1000000000,
                          .tv_nsec = deadline % 1000000000};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
            seen, &ts, NULL, FUTEX_BITSET_MATCH_ANY);
}

/* Wake w's thread if it sleeps in park, or make its next park return at
 * once (any thread, no lock needed). */
static void np_kick(hcn_sched *s)
{
    uint64_t one = 1;
    ssize_t r = write(s->np_wake, &one, sizeof one);
    (void)r;
}

static void worker_wake(worker *w)
{
    /* seq_cst both ways, against park's netpolling-then-wakes: either it
     * sees this count, or this sees it in the netpoller */
    atomic_fetch_add(&w->wakes, 1);
    if (atomic_load(&w->netpolling))
        np_kick(w->s);
    else
        syscall(SYS_futex, (uint32_t *)&w->wakes,
                FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT32_MAX, NULL, NULL, 0);
}

/* Append f to w's queue; true if w's thread was asleep (and is now woken). */
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
        worker_wake(w);
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

/* Wake one sleeping worker's thread other than `busy`'s, to take what
 * waits in busy's queue. */
static void wake_idle(hcn_sched *s, worker *busy)
{
    for (unsigned i = 0; i < s->n; i++) {
        worker *o = &s->w[i];
        if (o == busy ||
            !atomic_load_explicit(&o->sleeping, memory_order_relaxed))
            continue;
        worker_wake(o);
        return;
    }
}

/* Descriptors are watched and no thread waits in the netpoller: wake one
 * that sleeps on its futex word, which then parks in the netpoller (the
 * descriptors' owners do not read them: hcn_netpoll_add). */
static void np_cover(hcn_sched *s)
{
    if (atomic_load(&s->np_count) == 0 || atomic_load(&s->np_token))
        return;
    for (unsigned i = 0; i < s->n; i++) {
        worker *w = &s->w[i];
        if (atomic_load(&w->sleeping) && !atomic_load(&w->netpolling)) {
            worker_wake(w);
            return;
        }
    }
}

/* Queue f on w from outside w's thread: w's thread is woken if it sleeps,
 * another sleeping one if w's is in a fiber (or w waits for a thread). */
static void push(worker *w, hcn_fiber *f)
{
    bool asleep = enqueue(w, f);
    if (!asleep && RUN_STATE(atomic_load_explicit(
                       &w->run, memory_order_relaxed)) != RUN_SCHED)
        wake_idle(w->s, w);
}

bool hcn_fiber_claim(hcn_fiber *f)
{
    uint64_t t = atomic_load(&f->token);
    return (t & 1) && atomic_compare_exchange_strong(&f->token, &t, t + 1);
}

void hcn_fiber_ready(hcn_fiber *f)
{
    sthread *t = self_thread();
    worker *w = t ? t->w : NULL;
    if (w != NULL && w->s == f->last->s) {
        if (t->cur == NULL) {
            enqueue(w, f); /* its own thread, between fibers */
            return;
        }
        /* The waker is a fiber of this worker: f runs next here. */
        hcn_fiber *old = atomic_exchange(&w->runnext, f);
        if (old != NULL)
            enqueue(w, old);
        /* Handed over meanwhile (seq_cst on both sides: if the watchdog's
         * step comes later, the next thread reads runnext after it): the
         * new thread may have looked already, so through the queue. */
        if (atomic_load(&w->run) != t->run &&
            (old = atomic_exchange(&w->runnext, NULL)) != NULL)
            push(w, old);
        return;
    }
    push(f->last, f);
}

/* -------------------------------------------------------------- fibers */

__attribute__((noreturn)) static void fiber_main(hcn_fiber *f)
{
#ifdef HCN_ASAN
    __sanitizer_finish_switch_fiber(NULL, &f->from_lo, &f->from_size);
#endif
    hcn_proc_life(f->proc);
    f->done = true;
    sthread *t = self_thread();
#ifdef HCN_ASAN
    /* no save slot: the sanitizer drops this fiber's fake stack */
    __sanitizer_start_switch_fiber(NULL, f->from_lo, f->from_size);
#endif
#ifdef HCN_TSAN
    __tsan_switch_to_fiber(t->tsan, 0);
#endif
    hcn__fiber_switch(&f->sp, t->sp);
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
    sthread *t = self_thread();
    atomic_fetch_add(&f->token, 1); /* odd: waiting */
    t->post_unlock = mu;
    t->post_deadline = deadline_ns;
#ifdef HCN_ASAN
    __sanitizer_start_switch_fiber(&f->fake, f->from_lo, f->from_size);
#endif
#ifdef HCN_TSAN
    /* TSan keeps a mutex's owner per context: the fiber lets mu go here
     * (in TSan's eyes only), and its thread takes it over in run() and
     * unlocks it once the fiber is off its stack. */
    if (mu != NULL) {
        __tsan_mutex_pre_unlock(mu, 0);
        __tsan_mutex_post_unlock(mu, 0);
    }
    f->tsan_cur = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(t->tsan, 0);
#endif
    hcn__fiber_switch(&f->sp, t->sp);
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
#ifdef HCN_TSAN
    __tsan_destroy_fiber(f->tsan);
#endif
    munmap(f->map, f->map_len);
    free(f);
}

static int threads_start(hcn_sched *s);

/* A spawn that will not be: its count in s->fibers taken back (the last
 * one of a stopping scheduler wakes its threads to exit). */
static int spawn_undo(hcn_sched *s)
{
    if (atomic_fetch_sub(&s->fibers, 1) == 1 && atomic_load(&s->stopping))
        hcn_sched_shutdown(s);
    return -1;
}

int hcn_sched_spawn(hcn_sched *s, hcn_proc *p)
{
    /* counted first, then a look at stopping (both seq_cst): either this
     * spawn sees the scheduler stopping, or the threads' `finished` sees
     * the fiber and waits for it (a spawn that raced the shutdown's last
     * look would push onto workers no thread runs any more) */
    atomic_fetch_add(&s->fibers, 1);
    if (atomic_load(&s->stopping))
        return spawn_undo(s);
    if (!atomic_load_explicit(&s->running, memory_order_acquire) &&
        threads_start(s) != 0)
        return spawn_undo(s);
    long pg = sysconf(_SC_PAGESIZE);
    size_t guard = (FIBER_GUARD + (size_t)pg - 1) & ~((size_t)pg - 1);
    size_t len = guard + FIBER_STACK;
    char *map =
        mmap(NULL, len, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
        return spawn_undo(s);
    if (mprotect(map + guard, FIBER_STACK, PROT_READ | PROT_WRITE) != 0) {
        munmap(map, len);
        return spawn_undo(s);
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
#ifdef HCN_TSAN
    f->tsan = f->tsan_cur = __tsan_create_fiber(0);
#endif
    f->last = &s->w[atomic_fetch_add(&s->rr, 1) % s->n];
    hcn_node_thread_begin(s->node);
    push(f->last, f);
    return 0;
}

/* ------------------------------------------------------ running fibers */

/* f ended: free it and let its process go. */
static void fiber_end(hcn_sched *s, hcn_fiber *f)
{
    hcn_proc *p = f->proc;
    fiber_free(f);
    hcn_node_thread_end(s->node);
    hcn_proc_unref(p);
    if (atomic_fetch_sub(&s->fibers, 1) == 1 && atomic_load(&s->stopping))
        hcn_sched_shutdown(s); /* the last one: wake the others to exit */
}

/* Run f on t (which has a worker) until it waits or ends.  t loses its
 * worker (t->w NULL) if the watchdog handed it over meanwhile. */
static void run(sthread *t, hcn_fiber *f)
{
    worker *w = t->w;
    t->cur = f;
    uint64_t r =
        RUN_COUNT(atomic_load_explicit(&w->run, memory_order_relaxed)) + 4;
    t->run = r | RUN_FIBER;
    atomic_store_explicit(&w->run, t->run, memory_order_release);
    f->last = w;
    hcn_fault_fiber_in(f->fault_host, f->stack_lo, f->stack_size);
    /* the guest's runtime finds its instance through the thread it runs on
     * (src/guest/inst.c), and a fiber may have moved */
    hwn_instance_exchange(f->guest_inst);
#ifdef HCN_ASAN
    void *fake;
    __sanitizer_start_switch_fiber(&fake, f->cur_lo, f->cur_size);
#endif
#ifdef HCN_TSAN
    __tsan_switch_to_fiber(f->tsan_cur, 0);
#endif
    hcn__fiber_switch(&t->sp, f->sp);
#ifdef HCN_ASAN
    __sanitizer_finish_switch_fiber(fake, &f->cur_lo, &f->cur_size);
#endif
    f->fault_host = hcn_fault_fiber_out();
    f->guest_inst = hwn_instance_exchange(NULL);
    t->cur = NULL;
    uint64_t expect = t->run;
    bool kept = atomic_compare_exchange_strong(&w->run, &expect, r | RUN_SCHED);
    if (!kept)
        t->w = NULL; /* handed over: another thread runs w now */
    if (f->done) {
        fiber_end(w->s, f);
        return;
    }
    /* It waits (hcn_fiber_wait): now that it is off its stack, its timer
     * goes in, then its lock goes, and from then on it may be woken. */
    if (t->post_deadline >= 0) {
        pthread_mutex_lock(&w->mu);
        f->deadline = t->post_deadline;
        f->timer_w = w;
        heap_push(w, f);
        /* w's new thread may sleep past this deadline */
        bool wake = !kept && atomic_load(&w->sleeping);
        pthread_mutex_unlock(&w->mu);
        if (wake)
            worker_wake(w);
    }
    if (t->post_unlock != NULL) {
#ifdef HCN_TSAN
        /* the fiber let it go (for TSan, hcn_fiber_wait); take it over */
        __tsan_mutex_pre_lock(t->post_unlock, 0);
        __tsan_mutex_post_lock(t->post_unlock, 0, 0);
#endif
        pthread_mutex_unlock(t->post_unlock);
    }
    t->post_unlock = NULL;
    t->post_deadline = -1;
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

/* A worker woke: the watchdog too, if it sleeps. */
static void watch_wake(hcn_sched *s)
{
    pthread_mutex_lock(&s->mu);
    if (atomic_load(&s->watch_asleep)) {
        atomic_store(&s->watch_asleep, false);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* The netpoller's batch of events at one wake-up. */
#define NP_EVENTS 16

/* Wait in the netpoller until `deadline` (w's thread holds np_token and
 * has set `sleeping` and `netpolling`), then clear both and call `ready`
 * for what came.  Returns after the calls; true if there were any. */
static bool np_wait(worker *w, int64_t deadline)
{
    hcn_sched *s = w->s;
    struct epoll_event ev[NP_EVENTS];
    atomic_fetch_add(&s->np_seq, 1); /* odd: events may be held */
    int64_t left = deadline - hcn_now_ns();
    if (left < 0)
        left = 0;
    struct timespec ts = {.tv_sec = left / 1000000000,
                          .tv_nsec = left % 1000000000};
#ifdef HCN_TSAN
    /* TSan sees epoll_ctl to epoll_wait as a hand-over of what the event
     * points to, but knows nothing of epoll_pwait2 */
    (void)ts;
    int got = -1;
    errno = ENOSYS;
#else
    int got = epoll_pwait2(s->np_fd, ev, NP_EVENTS, &ts, NULL);
#endif
    if (got < 0 && errno == ENOSYS) /* a kernel before 5.11 */
        got = epoll_wait(s->np_fd, ev, NP_EVENTS,
                         (int)((left + 999999) / 1000000));
    atomic_store(&w->netpolling, false);
    atomic_store(&w->sleeping, false);
    for (int i = 0; i < got; i++) {
        hcn_pollable *p = ev[i].data.ptr;
        if (p == NULL || p->ready(p))
            continue; /* np_wake, or watched on */
        if (epoll_ctl(s->np_fd, EPOLL_CTL_DEL, p->fd, NULL) == 0)
            atomic_fetch_sub(&s->np_count, 1);
    }
    atomic_fetch_add(&s->np_seq, 1); /* even: none held */
    for (int i = 0; i < got; i++)
        if (ev[i].data.ptr != NULL)
            return true;
    return false;
}

/* Sleep until woken (worker_wake), the earliest timer of any worker or
 * PARK_MAX_NS, unless work came.  The wake count is read under w's lock
 * before `sleeping` is set: a waker that saw `sleeping` (under the lock,
 * or after it) adds to the count after that read, so the futex sleep
 * returns at once instead of missing it.  With descriptors to watch and
 * no other thread in the netpoller, the thread sleeps there instead
 * (np_wait): a waker then writes np_wake (worker_wake), and what comes on
 * a descriptor is read here, its fibers readied on w.  True when the work
 * came that way (a spin would not have seen it come). */
static bool park(worker *w)
{
    bool slept = false, polled = false;
    hcn_sched *s = w->s;
    pthread_mutex_lock(&w->mu);
    if (atomic_load(&w->nready) == 0 &&
        atomic_load_explicit(&w->runnext, memory_order_relaxed) == NULL &&
        !finished(s)) {
        int64_t deadline = hcn_now_ns() + PARK_MAX_NS;
        int64_t due = next_due(s);
        if (due < deadline)
            deadline = due;
        uint32_t seen = atomic_load(&w->wakes);
        atomic_store(&w->sleeping, true);
        pthread_mutex_unlock(&w->mu);
        if (atomic_load_explicit(&s->np_count, memory_order_relaxed) > 0 &&
            !atomic_exchange(&s->np_token, true)) {
            atomic_store(&w->netpolling, true);
            if (atomic_load(&w->wakes) == seen) {
                polled = np_wait(w, deadline);
            } else {
                atomic_store(&w->netpolling, false);
                atomic_store(&w->sleeping, false);
            }
            atomic_store(&s->np_token, false);
        } else {
            futex_sleep(&w->wakes, seen, deadline);
            atomic_store(&w->sleeping, false); /* seq_cst: see watch_main */
        }
        slept = true;
    } else {
        pthread_mutex_unlock(&w->mu);
    }
    if (slept && atomic_load(&s->watch_asleep))
        watch_wake(s);
    return polled;
}

static hcn_fiber *pick(worker *w);

/* The next fiber for w's thread to run; NULL when the schedulers are
 * done. */
static hcn_fiber *next_fiber(worker *w)
{
    /* The spin budget adapts as a mailbox's does (mailbox.c): it doubles
     * when work came within the longest spin, halves when the thread had
     * to park for it (to 1/64 of the longest), so that threads whose work
     * comes slowly (replies from other nodes, HTTP) park at once and leave
     * the CPU to the threads that bring it.  Work that the netpoller
     * brought counts as work for which it had to park: a spin does not
     * watch the descriptors, so a longer one would only have left it to
     * their owners' threads. */
    int64_t spin_max = (int64_t)w->s->node->cfg.spin_us * 1000;
    if (w->spin_ns <= 0 || w->spin_ns > spin_max)
        w->spin_ns = spin_max;
    int64_t spin_end = -1, idle_since = -1;
    bool polled = false;
    for (;;) {
        hcn_fiber *f = pick(w);
        if (f != NULL || finished(w->s)) {
            if (idle_since >= 0) {
                int64_t waited = hcn_now_ns() - idle_since;
                if (waited <= spin_max && !polled)
                    w->spin_ns =
                        w->spin_ns * 2 > spin_max ? spin_max : w->spin_ns * 2;
                else if ((w->spin_ns /= 2) < spin_max / 64)
                    w->spin_ns = spin_max / 64;
            }
            return f;
        }
        int64_t now = hcn_now_ns();
        if (idle_since < 0)
            idle_since = now;
        if (spin_end < 0) {
            /* With descriptors to watch and no thread in the netpoller, a
             * spin cannot see what comes on them: it would go to their
             * owners' threads (a wake-up there, then a hand-over to this
             * one), and a reply caught by the spin that way would only
             * grow the budget.  Park at once instead, in the netpoller. */
            bool np_free =
                atomic_load_explicit(&w->s->np_count, memory_order_relaxed) >
                    0 &&
                !atomic_load_explicit(&w->s->np_token, memory_order_relaxed);
            spin_end = now + (np_free ? 0 : w->spin_ns);
        }
        if (now < spin_end && next_due(w->s) > now) {
            for (int i = 0; i < 256 && !any_ready(w); i++)
                cpu_relax();
            continue;
        }
        polled = park(w);
        spin_end = -1;
    }
}

/* What w's thread runs next, if anything is ready: its runnext (within
 * the streak), its queue, its runnext, the others' queues. */
static hcn_fiber *pick(worker *w)
{
    hcn_fiber *f;
    if (w->streak < RUNNEXT_STREAK &&
        atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL &&
        (f = atomic_exchange(&w->runnext, NULL)) != NULL) {
        w->streak++;
        return f;
    }
    w->streak = 0;
    if ((f = take_local(w)) != NULL)
        return f;
    if (atomic_load_explicit(&w->runnext, memory_order_relaxed) != NULL &&
        (f = atomic_exchange(&w->runnext, NULL)) != NULL)
        return f;
    return steal(w);
}

/* ------------------------------------------------------------- threads */

/* w is t's now (under s->mu). */
static void worker_give(sthread *t, worker *w)
{
    w->orphan = false;
    w->streak = 0;
    atomic_store(&w->run, RUN_COUNT(atomic_load(&w->run)) | RUN_SCHED);
    t->w = w;
}

static void *thread_main(void *arg);

/* A new thread running w (under s->mu); -1 when none can be made. */
static int thread_start(hcn_sched *s, worker *w)
{
    sthread *t = hcn_xcalloc(1, sizeof *t);
    t->s = s;
    t->post_deadline = -1;
    pthread_cond_init(&t->cv, &s->cattr);
    worker_give(t, w);
    hcn_node_thread_begin(s->node);
    if (pthread_create(&t->thread, NULL, thread_main, t) != 0) {
        hcn_node_thread_end(s->node);
        pthread_cond_destroy(&t->cv);
        free(t);
        return -1;
    }
    t->next = s->threads;
    s->threads = t;
    s->started++;
    return 0;
}

static void spare_remove(hcn_sched *s, sthread *t)
{
    for (sthread **pp = &s->spares; *pp; pp = &(*pp)->next_sp) {
        if (*pp == t) {
            *pp = t->next_sp;
            s->nspares--;
            break;
        }
    }
    t->spare = false;
}

/* Worker w was handed over (its run word says RUN_HANDED): to a spare
 * thread, else a new one, else it waits (an orphan) for the next tick or
 * a thread that comes back to the pool.  Under s->mu. */
static void handoff(hcn_sched *s, worker *w)
{
    sthread *t = s->spares;
    if (t != NULL) {
        spare_remove(s, t);
        worker_give(t, w);
        t->given = w;
        pthread_cond_signal(&t->cv);
        return;
    }
    if (thread_start(s, w) != 0)
        w->orphan = true;
}

/* A thread without a worker (it lost its own to a hand-over while in a
 * fiber): take an orphan, or wait as a spare until given one.  false: end
 * the thread (the schedulers are done, there are spares enough, or none
 * was given within SPARE_IDLE_NS). */
static bool thread_find_worker(sthread *t)
{
    hcn_sched *s = t->s;
    pthread_mutex_lock(&s->mu);
    int64_t until = hcn_now_ns() + SPARE_IDLE_NS;
    bool got = false;
    for (;;) {
        if (t->given != NULL) {
            t->given = NULL; /* worker_give set t->w */
            got = true;
            break;
        }
        for (unsigned i = 0; i < s->n && !got; i++) {
            if (s->w[i].orphan) {
                worker_give(t, &s->w[i]);
                got = true;
            }
        }
        if (got || finished(s))
            break;
        if (!t->spare) {
            if (s->nspares >= s->n)
                break;
            t->spare = true;
            t->next_sp = s->spares;
            s->spares = t;
            s->nspares++;
        }
        struct timespec ts = {.tv_sec = until / 1000000000,
                              .tv_nsec = until % 1000000000};
        if (pthread_cond_timedwait(&t->cv, &s->mu, &ts) == ETIMEDOUT &&
            t->given == NULL)
            break;
    }
    if (t->spare)
        spare_remove(s, t);
    pthread_mutex_unlock(&s->mu);
    return got;
}

static void *thread_main(void *arg)
{
    sthread *t = arg;
    hcn_sched *s = t->s;
    tl_thread = t;
#ifdef HCN_TSAN
    t->tsan = __tsan_get_current_fiber();
#endif
    pthread_setname_np(pthread_self(), "hc-sched"); /* top -H, perf, gdb */
    hcn_fault_thread_begin();
    for (;;) {
        if (t->w == NULL && !thread_find_worker(t))
            break;
        hcn_fiber *f = next_fiber(t->w);
        if (f == NULL)
            break;
        run(t, f);
    }
    hcn_fault_thread_end();
    tl_thread = NULL;
    hcn_node *n = s->node;
    pthread_mutex_lock(&s->mu);
    t->exited = true; /* joined by the watchdog, or hcn_sched_join */
    pthread_mutex_unlock(&s->mu);
    hcn_node_thread_end(n);
    return NULL;
}

/* Join the threads that ended (outside s->mu, which the caller holds). */
static void reap(hcn_sched *s)
{
    sthread *done = NULL;
    for (sthread **pp = &s->threads; *pp;) {
        sthread *t = *pp;
        if (t->exited) {
            *pp = t->next;
            t->next = done;
            done = t;
        } else {
            pp = &t->next;
        }
    }
    if (done == NULL)
        return;
    pthread_mutex_unlock(&s->mu);
    while (done != NULL) {
        sthread *t = done;
        done = t->next;
        pthread_join(t->thread, NULL);
        pthread_cond_destroy(&t->cv);
        free(t);
    }
    pthread_mutex_lock(&s->mu);
}

/* ------------------------------------------------------------ watchdog */

/* Whether every worker's thread sleeps. */
static bool all_asleep(hcn_sched *s)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!atomic_load(&s->w[i].sleeping))
            return false;
    return true;
}

static void *watch_main(void *arg)
{
    hcn_sched *s = arg;
    unsigned quiet = 0;
    pthread_setname_np(pthread_self(), "hc-watchdog");
    pthread_mutex_lock(&s->mu);
    while (!finished(s)) {
        int64_t until = hcn_now_ns() + TICK_NS;
        struct timespec ts = {.tv_sec = until / 1000000000,
                              .tv_nsec = until % 1000000000};
        /* A tick is a plain sleep, outside s->mu: nothing signals s->cv
         * while the watchdog ticks (watch_wake only while it sleeps below;
         * the stop is seen at the next tick), and a timed condition wait
         * took 3 futex calls and 2 switches a tick under load (glibc's
         * cancelled wait, the mutex taken back). */
        pthread_mutex_unlock(&s->mu);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        pthread_mutex_lock(&s->mu);
        reap(s);
        int64_t now = hcn_now_ns();
        for (unsigned i = 0; i < s->n; i++) {
            worker *w = &s->w[i];
            if (w->orphan) {
                w->orphan = false;
                handoff(s, w);
                continue;
            }
            uint64_t r = atomic_load(&w->run);
            if (RUN_STATE(r) != RUN_FIBER || r != w->seen_run) {
                w->seen_run = r;
                w->seen_at = now;
                continue;
            }
            if (now - w->seen_at < HANDOFF_NS)
                continue;
            /* One fiber run for HANDOFF_NS at least: its thread is held
             * (it computes, or blocks in a system call). */
            if (atomic_compare_exchange_strong(&w->run, &r,
                                               RUN_COUNT(r) | RUN_HANDED)) {
                atomic_fetch_add(&s->handoffs, 1);
                handoff(s, w);
            }
        }
        /* No thread entered the netpoller for a whole tick (the one that
         * held it runs fibers, the others sleep on their futex words):
         * what comes on the descriptors waits for a thread to park, so
         * wake one to watch them.  (A thread between two rounds in the
         * netpoller, within one tick, is left alone.) */
        unsigned seq = atomic_load(&s->np_seq);
        bool free_now = !atomic_load(&s->np_token);
        if (free_now && s->np_seen_free && seq == s->np_seen_seq)
            np_cover(s);
        s->np_seen_seq = seq;
        s->np_seen_free = free_now;
        quiet = all_asleep(s) ? quiet + 1 : 0;
        if (quiet < QUIET_TICKS)
            continue;
        /* Every worker asleep: sleep too until one wakes (park() looks at
         * watch_asleep after clearing its `sleeping`, seq_cst both). */
        quiet = 0;
        atomic_store(&s->watch_asleep, true);
        if (!all_asleep(s)) {
            atomic_store(&s->watch_asleep, false);
            continue;
        }
        while (atomic_load(&s->watch_asleep) && !finished(s)) {
            until = hcn_now_ns() + WATCH_SLEEP_NS;
            ts.tv_sec = until / 1000000000;
            ts.tv_nsec = until % 1000000000;
            if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
                break;
        }
        atomic_store(&s->watch_asleep, false);
    }
    reap(s);
    pthread_mutex_unlock(&s->mu);
    hcn_node_thread_end(s->node);
    return NULL;
}

/* ----------------------------------------------------------- netpoller */

bool hcn_netpoll_add(hcn_node *n, hcn_pollable *p)
{
    hcn_sched *s = n->sched;
    /* no scheduler thread runs (yet): nothing would wait in it */
    if (s == NULL || s->np_fd < 0 ||
        !atomic_load_explicit(&s->running, memory_order_acquire))
        return false;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = p};
    if (epoll_ctl(s->np_fd, EPOLL_CTL_ADD, p->fd, &ev) != 0)
        return false;
    atomic_fetch_add(&s->np_count, 1);
    /* threads asleep on their futex words since before: one to watch it */
    np_cover(s);
    return true;
}

uint32_t hcn_netpoll_remove(hcn_node *n, hcn_pollable *p)
{
    hcn_sched *s = n->sched;
    if (s == NULL || s->np_fd < 0)
        return 0;
    if (epoll_ctl(s->np_fd, EPOLL_CTL_DEL, p->fd, NULL) == 0)
        atomic_fetch_sub(&s->np_count, 1);
    /* A netpoller that took p's event before the removal may be about to
     * call p->ready: its round (np_seq odd, the same value throughout) is
     * the token; kicked out of its wait, it ends after one batch of
     * `ready` calls.  An even np_seq: no round holds any event. */
    unsigned seq = atomic_load(&s->np_seq);
    if ((seq & 1) == 0)
        return 0;
    np_kick(s);
    return seq;
}

bool hcn_netpoll_passed(hcn_node *n, uint32_t token)
{
    return token == 0 || atomic_load(&n->sched->np_seq) != token;
}

void hcn_netpoll_del(hcn_node *n, hcn_pollable *p)
{
    uint32_t token = hcn_netpoll_remove(n, p);
    while (!hcn_netpoll_passed(n, token)) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------ lifetime */

void hcn_sched_start(hcn_node *n, unsigned count)
{
    if (count == 0)
        return;
    hcn_sched *s = hcn_xcalloc(1, sizeof *s);
    s->node = n;
    s->n = count;
    s->w = hcn_xcalloc(count, sizeof *s->w);
    pthread_condattr_init(&s->cattr);
    pthread_condattr_setclock(&s->cattr, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &s->cattr);
    for (unsigned i = 0; i < count; i++) {
        worker *w = &s->w[i];
        w->s = s;
        w->index = i;
        pthread_mutex_init(&w->mu, NULL);
        atomic_init(&w->wakes, 0);
        atomic_init(&w->due, INT64_MAX);
        atomic_init(&w->runnext, NULL);
        atomic_init(&w->run, RUN_SCHED);
    }
    atomic_init(&s->running, false);
    /* the netpoller; without it (no descriptors left) threads only futex */
    s->np_fd = epoll_create1(EPOLL_CLOEXEC);
    s->np_wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (s->np_fd < 0 || s->np_wake < 0 ||
        epoll_ctl(s->np_fd, EPOLL_CTL_ADD, s->np_wake, &ev) != 0) {
        if (s->np_fd >= 0)
            close(s->np_fd);
        s->np_fd = -1;
    }
    atomic_init(&s->np_count, 0);
    atomic_init(&s->np_token, false);
    atomic_init(&s->np_seq, 0);
    n->sched = s;
}

/* The first fiber's: start a thread per worker and the watchdog, once (any
 * thread; under s->mu).  -1 when a thread cannot be made; the next spawn
 * tries again for the workers still without one. */
static int threads_start(hcn_sched *s)
{
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (atomic_load(&s->running) || atomic_load(&s->stopping)) {
        rc = atomic_load(&s->running) ? 0 : -1;
        goto out;
    }
    for (unsigned i = 0; i < s->n && rc == 0; i++)
        if (!s->w[i].started) {
            rc = thread_start(s, &s->w[i]);
            s->w[i].started = rc == 0;
        }
    if (rc == 0 && !s->watchdog_started) {
        hcn_node_thread_begin(s->node);
        if (pthread_create(&s->watchdog, NULL, watch_main, s) != 0) {
            hcn_node_thread_end(s->node);
            rc = -1;
        } else {
            s->watchdog_started = true;
        }
    }
    if (rc == 0) {
        hcn_logf(s->node, 2, "schedulers: %u thread(s) started", s->n);
        atomic_store_explicit(&s->running, true, memory_order_release);
    }
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void hcn_sched_shutdown(hcn_sched *s)
{
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < s->n; i++) {
        worker_wake(&s->w[i]);
    }
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    for (sthread *t = s->spares; t; t = t->next_sp)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&s->mu);
}

void hcn_sched_join(hcn_sched *s, bool leave)
{
    pthread_mutex_lock(&s->mu);
    unsigned started = s->started;
    pthread_mutex_unlock(&s->mu);
    hcn_logf(s->node, 1,
             "schedulers: %u hand-over(s) of a held scheduler, %u thread(s) "
             "started",
             atomic_load(&s->handoffs), started);
    if (s->watchdog_started) {
        if (leave)
            pthread_detach(s->watchdog);
        else
            pthread_join(s->watchdog, NULL);
    }
    pthread_mutex_lock(&s->mu);
    sthread *all = s->threads;
    s->threads = NULL;
    pthread_mutex_unlock(&s->mu);
    if (leave) {
        for (sthread *t = all; t; t = t->next)
            pthread_detach(t->thread);
        return; /* a fiber still runs: s stays */
    }
    while (all != NULL) {
        sthread *t = all;
        all = t->next;
        pthread_join(t->thread, NULL);
        pthread_cond_destroy(&t->cv);
        free(t);
    }
    for (unsigned i = 0; i < s->n; i++) {
        pthread_mutex_destroy(&s->w[i].mu);
        free(s->w[i].heap);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_condattr_destroy(&s->cattr);
    if (s->np_fd >= 0)
        close(s->np_fd);
    if (s->np_wake >= 0)
        close(s->np_wake);
    free(s->w);
    free(s);
}
