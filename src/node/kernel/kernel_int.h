/* Internal to the kernel room (src/node/kernel/): what its files share and
 * no other room uses: a guest instance's host state (the pairing rules of
 * host.c), contexts, task stack guards and faults (fault.c), spawn and the
 * guest's thread (proc.c). */
#ifndef HYPERC_NODE_KERNEL_INT_H
#define HYPERC_NODE_KERNEL_INT_H

#include "../../abi/native.h"
#include "kernel.h"

#include <setjmp.h>
#include <signal.h>

/* HCN_ASAN: built with AddressSanitizer (clang's or gcc's spelling). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HCN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(HCN_ASAN)
#define HCN_ASAN 1
#endif

/* HCN_TSAN: built with ThreadSanitizer, which is told of every switch of
 * stacks (its fiber interface: the scheduler's fibers, and the kill jump
 * that may leave a guest coroutine's stack). */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HCN_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) && !defined(HCN_TSAN)
#define HCN_TSAN 1
#endif
#ifdef HCN_TSAN
#include <sanitizer/tsan_interface.h>
#endif

typedef struct hcn_host hcn_host;
struct hcw_frame;
struct hcw_lane;
struct hcw_prompting;

/* An address string as the ABI's address (the caller finis it). */
void hcn_address_export(const char *s, hw_address *out);

/* ------------------------------------------------ lanes (lanes.c) */

/* Messages a pair exchanges by node before a lane is opened for it, and a
 * direction's quota of unread requests (the most lanes a process has:
 * HCW_LANES_MAX, worker/lane.h). */
#define HCN_LANE_THRESHOLD 16u
#define HCN_LANE_QUOTA(max_req) ((max_req) / 16 > 16 ? (max_req) / 16 : 16)

/* A sends to B by node again and again (host.c, on A's serving thread):
 * open a lane between them if both are workers that take lanes, started,
 * permitted at least one way, and have lanes to spare.  Never waits for
 * either process. */
void hcn_lanes_consider(hcn_node *n, hcn_proc *a, hcn_proc *b);
/* A control entry (HCN_MSG_LANE) reached p's instance `inst` (the thread
 * serving its worker, isolate.c): 1 with the frame to write in f (and for
 * LANE_OPEN, the memfd to send first on fd 4 in *memfd, the caller's to
 * close, and the lane in *g: it stays mapped, and the peer referenced,
 * until p's side is done, which only p's LANE_DROP or p's instance's end
 * makes it), 0 when there is nothing to send (an entry for an ended
 * instance, or a lane already closed). */
typedef struct hcn_lane_given {
    hcn_proc *peer;        /* the process at the other side */
    struct hcw_lane *lane; /* the node's mapping */
    int side;              /* p's side */
} hcn_lane_given;
int hcn_lanes_entry(hcn_node *n, hcn_proc *p, int inst, const hcn_msg *m,
                    struct hcw_frame *f, int *memfd, hcn_lane_given *g);
/* After hcn_lanes_entry's 1: whether the worker was given it (false: the
 * fd message could not go, and the lane closes). */
void hcn_lanes_given(hcn_node *n, hcn_proc *p, const hcn_msg *m, bool ok);
/* p's worker sent LANE_DROP: it unmapped the lane (why NULL, after
 * LANE_CLOSE) or refused or broke it (why); the lane closes. */
void hcn_lanes_dropped(hcn_node *n, hcn_proc *p, uint32_t number,
                       const char *why);
/* p's instance `inst` ended: its lanes close, and its peers are told.
 * What the peers wrote to p by lane and p did not take comes back in
 * *head..*tail (linked by ->next, NULL if none): the caller puts it at
 * the front of p's queue once the instance's host is gone, for the next
 * instance (hcn_mailbox_requeue). */
void hcn_lanes_instance_end(hcn_node *n, hcn_proc *p, int inst, hcn_msg **head,
                            hcn_msg **tail);
/* Read what is left in a lane ring through view (the node's view of its
 * ended reader) as request envelopes from `from` to `to`, appended to
 * *head..*tail in order; how many.  Each frame is decoded untrusted and
 * must be an LREQ as a lane carries it (an id with bit 63; one that
 * expects a response gets rsvp `from`) or an LRESP,
 * which is skipped (the ended reader's contexts went with it); the first
 * that is neither ends the drain, with why it was refused in why (else why
 * is ""). */
size_t hcn_lane_drain(struct hcw_link *view, const char *from, const char *to,
                      hcn_msg **head, hcn_msg **tail, char *why, size_t whylen);
/* p's instance `inst` adopted, by SYNC, the lane request `id` that the
 * process at address `peer` sent it by lane: it goes into the `adopted` of
 * the LANE_CLOSE the peer gets for each lane between them that is still
 * there (at most HCN_LANE_ADOPTED_MAX a way, the oldest forgotten). */
#define HCN_LANE_ADOPTED_MAX 256
void hcn_lanes_adopted(hcn_node *n, hcn_proc *p, int inst, const char *peer,
                       uint64_t id);
/* p dropped capabilities: close its lanes that are no longer permitted
 * the way they were. */
void hcn_lanes_recheck(hcn_node *n, hcn_proc *p);

/* spawn, on behalf of the guest of h (proc.c). */
hw_spawn_error hcn_spawn(hcn_host *h, const char *name, const char *path,
                         const hw_on_exit *on_exit, const hw_capability *rc,
                         size_t rc_len, const hw_process_id *gp,
                         const char *const *gparams, size_t g_len, bool public_,
                         hw_process_id *out);

/* ------------------------------------------------------- guest host side */

/* Context entry for a request sent with expects-response. */
typedef struct hcn_ctx_entry {
    UT_hash_handle hh;
    uint64_t id;
    hcn_msg *prompting; /* restored when the answer arrives */
    hcn_msg *sent;      /* the request as sent (for send errors) */
    bool has_context;
    uint8_t *context;
    size_t context_len;
    int64_t deadline;
    int64_t span; /* the deadline less the time it was set (ns) */
    /* where the deadline waits (host.c, "deadlines"): queue dlq's list,
     * or the heap at heap_idx when dlq is -1 */
    struct hcn_ctx_entry *dl_prev, *dl_next;
    int dlq;
    size_t heap_idx;
    uint8_t small[48]; /* holds a context of up to 48 bytes: a stub call's
                        * (a 36-character id) without an allocation */
    bool is_save;      /* a set_state_start under way */
    struct hcn_ctx_entry *next_spare;
} hcn_ctx_entry;

/* A registered guard range of a guest coroutine stack (fault.c); lo == 0
 * marks a free slot. */
typedef struct hcn_guard {
    uintptr_t lo, hi;
    int next_free; /* free list: slot index + 1, 0 = end */
} hcn_guard;

/* An executable range of a guest instance, with its protection. */
typedef struct hcn_text {
    uintptr_t lo, hi;
    int prot;
} hcn_text;

/* Task stack overflow states (fault.c). */
enum {
    HCN_OVF_NONE = 0,
    HCN_OVF_OPENED = 1,  /* a call overflowed; waiting for it to return */
    HCN_OVF_STOPPED = 2, /* jumped to the kill point */
};

/* Values with which a guest's thread jumps to h->kill. */
enum {
    HCN_KILL_STOP = 1,     /* the mailbox closed (shutdown) */
    HCN_KILL_OVERFLOW = 2, /* a task stack overflow */
};

/* Deadline spans given a FIFO of their own per host (the rest: a heap). */
#define HCN_DLQ_MAX 4

/* Per-instance host state of a guest process; only its thread touches it. */
struct hcn_host {
    hcn_proc *proc;
    size_t addr_len; /* strlen(proc->addr) */
    hcn_node *node;
    hwn_host table;
    hcn_msg *prompting;
    hcn_blob *last_blob;
    bool last_blobbed;
    hcn_ctx_entry *contexts;
    /* the contexts' deadlines: a FIFO per span for the first few spans
     * (a request's deadline is its time plus its span, so each such list
     * is in order) and a heap for the rest (host.c, "deadlines") */
    struct {
        int64_t span;
        hcn_ctx_entry *head, *tail;
    } dlq[HCN_DLQ_MAX];
    unsigned ndlq;
    hcn_ctx_entry **heap;
    size_t heap_len, heap_cap;
    hcn_msg *deferred_head, *deferred_tail;
    uint64_t rng;
    hcn_ctx_entry *spare; /* released entries kept for reuse */
    unsigned nspare;
    hcn_proc *peers[8]; /* recently messaged processes (references) */
    unsigned peer_next;
    unsigned peer_last; /* the slot the last look found (looked at first) */
    /* Lanes (a worker that takes them, isolate.c): messages routed to each
     * peer since it entered its slot, and who turns a lane's control entry
     * into frames: 1 done (or nothing to do), 0 not now (no room without
     * waiting; the entry stays first, and comes again). */
    bool lanes;
    uint32_t peer_sent[8];
    /* the lanes this process's worker has: after each push into a lane
     * peer's mailbox by node, the number it got goes into the lane
     * (last_seq, docs/lane-design.md §3a) */
    struct hcn_lane_out *lane_out;
    unsigned nlane_out;
    uint32_t taken_seq;    /* hcn_host_taken_seq */
    uint8_t taken_flags;   /* hcn_host_taken_flags */
    uint64_t taken_answer; /* hcn_host_taken_answer */
    /* the addresses of the peers of every lane handed to this instance's
     * worker (closed since or not): a SYNC's stub may come only from one */
    char **lane_peers;
    size_t nlane_peers;
    int (*lane_ctl)(void *ctx, hcn_msg *m, bool may_wait);
    void *lane_ctx;
    /* A context filed under an inherited id with bit 63 (one a worker
     * drew), whose worker may hold a lane context of its own under it:
     * that one is replaced (newest wins, as in ctx_add), and the worker is
     * told (FORGET) before anything the node writes it after the frame
     * being served.  The thread serving the worker (serve_mu held);
     * NULL but for a lane worker. */
    void (*forget)(void *ctx, uint64_t id);
    /* The last sources exported to the guest, split (host.c,
     * export_source): a steady exchange splits each address once. */
    struct {
        char str[128];   /* "" = empty slot */
        char parts[128]; /* str with a NUL after each part (lent) */
        size_t at, offs[3][2];
    } src_memo[4];
    unsigned src_memo_next;
    unsigned src_memo_last; /* the slot the last look found (first look) */
    /* What the guest's last receive_lent lent it (host.c, ingest): the
     * envelope holding the body, and the answered request's context entry
     * (out of the table) holding the context; released at its next
     * receive.  The source's parts are in a memo slot, replaced only by a
     * later receive. */
    hcn_msg *lent_msg;
    hcn_ctx_entry *lent_ctx;
    /* Guards of the guest's coroutine stacks (fault.c), read by the fault
     * handler on this thread. */
    hcn_guard *guards;
    size_t nguards, guards_cap;
    int guard_free; /* slot index + 1, 0 = none */
    hcn_text text[4];
    unsigned ntext;
    volatile sig_atomic_t ovf_state;
    volatile uintptr_t ovf_addr;
    volatile bool ovf_outside;
    sigjmp_buf kill; /* where the thread jumps to stop the instance */
#ifdef HCN_TSAN
    void *tsan_kill; /* TSan's context (thread or fiber) that set `kill` */
#endif
    /* The mailbox closed while the process waited in a synchronous call:
     * that call fails so the guest can unwind; the next wait stops it. */
    bool closing_seen;
    bool start_told;  /* the guest said it will tell when it has started */
    size_t saves;     /* set_state_start answers not yet delivered */
    size_t unflushed; /* saves queued in the node's store since the last
                         flush (saves_flush) */
    char *save_body, *save_dst; /* a save's envelope, made once */
    bool started;               /* it has (or received, not having said) */
    /* The thread's stack was trimmed (hcn_fault_thread_trim) at the
     * instance's first wait for a message. */
    bool stack_trimmed;
    /* hcn_thread_cache_on was called for this instance. */
    bool cache_on;
    /* The last prompting message the guest answered (a reference, kept
     * only so that no later message can take its address: it is compared,
     * never read), and whether fini is to fail the current one when it is
     * still unanswered: the instance crashed while handling it. */
    hcn_msg *answered;
    bool crashed;
    /* Prompting messages the guest's tasks hold (prompting_hold); a NULL
     * slot is free. */
    hcn_msg **held;
    size_t nheld;
    /* Messages delivered ahead to an isolated instance's worker (isolate.c,
     * hcn_host_take_ahead), oldest first: taken out of the queues and
     * paired, their effects not yet applied. */
    struct hcn_ahead *ahead;
    size_t ahead_first, ahead_len, ahead_cap; /* a ring of ahead_cap */
};

void hcn_host_init(hcn_host *h, hcn_proc *p);

/* Mark where the kill jump lands: called just before sigsetjmp(h->kill),
 * on the thread or fiber that will run the instance (a no-op but with
 * ThreadSanitizer). */
static inline void hcn_kill_point_mark(hcn_host *h)
{
#ifdef HCN_TSAN
    h->tsan_kill = __tsan_get_current_fiber();
#else
    (void)h;
#endif
}

/* Jump to h's kill point, from the instance's thread or fiber (possibly
 * from a guest coroutine's stack, or a signal handler on it).  With
 * ThreadSanitizer the context that set the point is made current first,
 * since its jump buffers are kept per context. */
__attribute__((noreturn)) static inline void hcn_kill_jump(hcn_host *h,
                                                           int code)
{
#ifdef HCN_TSAN
    __tsan_switch_to_fiber(h->tsan_kill, 0);
#endif
    siglongjmp(h->kill, code);
}

/* Release h; messages still delivered ahead go back to the queue first
 * (then as that queue's: set aside for the next instance when the process
 * stops, else the requests among them fail to their senders). */
void hcn_host_fini(hcn_host *h);

/* Delivering ahead (an isolated instance, isolate.c): the node hands its
 * worker the messages it will receive next while the guest still handles
 * the current one, and applies each one's effects on the host (the
 * prompting message, the blob, the offered capabilities, the pairing's
 * context entry) only when the guest's receive for it comes.
 *
 * Take the message the next hw_receive would deliver (a request, a
 * response or send error paired with its context, or a timeout), if it is
 * there now and nothing the guest may do before that receive can change
 * it: not while the process is stopping, and not an answer or timeout
 * whose id the guest could still reuse by inheriting it (the id of a
 * message that is or may become the prompting one before then).  A
 * response nobody waits for is dropped here as receive would.  true: *out
 * is what the guest will receive and *blob the message's blob (borrowed
 * until it is consumed; NULL: none); *lent says whether *out is lent (it
 * points into the message and the host: the caller only reads it, and
 * not after its next call on h) or the caller's (hw_receive_result_fini).
 * false: nothing taken. */
bool hcn_host_take_ahead(hcn_host *h, hw_receive_result *out,
                         const hcn_blob **blob, bool *lent);
/* Put the newest message taken ahead back where it was (it could not be
 * sent). */
void hcn_host_untake_ahead(hcn_host *h);
/* How many messages are delivered ahead and not yet received. */
size_t hcn_host_ahead_count(const hcn_host *h);
/* A lane of the worker's (isolate.c, on the thread serving it): from now
 * on, after each message this process sends `peer` by node, the number
 * peer's mailbox gave it goes into direction `dir` of `lane` (which must
 * stay mapped until hcn_host_lane_remove); it starts at the number of
 * peer's mailbox's last push (so that nothing sent before is missed).  A
 * host has at most HCW_LANES_MAX. */
void hcn_host_lane_add(hcn_host *h, hcn_proc *peer, struct hcw_lane *lane,
                       uint32_t number, int dir);
void hcn_host_lane_remove(hcn_host *h, uint32_t number);
/* The mailbox number of the item the last take (hcn_host_take_ahead,
 * hcn_host_try_receive, the blocking receive) handed over, 0 when it was
 * none of the mailbox's (a timeout). */
uint32_t hcn_host_taken_seq(const hcn_host *h);
/* And for a worker with lanes (docs/lane-design.md §10, step 5): that
 * item's flags (HCW_ITEM_PROMPTS, HCW_ITEM_PROMPTS_NONE: how taking it
 * changes the prompting message, once its effects apply), and the id of
 * an ANSWER (0 when it is none): a response or send error whose id has bit
 * 63 and no context of the node's, handed over for the worker to pair. */
uint8_t hcn_host_taken_flags(const hcn_host *h);
uint64_t hcn_host_taken_answer(const hcn_host *h);
/* SYNC from the worker of instance `inst`: the prompting message becomes
 * none, or a stub of the lane request p->id from p->source (a peer of a
 * lane handed to this instance), which is recorded as adopted.  false,
 * with why, when the worker may not say it (no lanes, an id without bit
 * 63, not a lane's peer): a breach. */
bool hcn_host_sync(hcn_host *h, int inst, const struct hcw_prompting *p,
                   const char **why);
/* SYNC's second argument (a worker with lanes): the last blob, which a
 * later inheriting request or response carries, becomes a copy of b (the
 * worker took it with a message that came by lane), or none (NULL: the
 * worker has none, and dropped an ANSWER whose blob the node kept).
 * false, with why, from a worker without lanes: a breach. */
bool hcn_host_sync_blob(hcn_host *h, const hw_blob *b, const char **why);
/* SEND_REQUEST with a lane id (a worker with lanes sends by node a
 * request it had sent by lane): the envelope has that id, rsvp this
 * process when it expects a response, and the node files no context (the
 * worker has it).  No inherit. */
void hcn_host_send_lane_request(hcn_host *h, const hw_address *target,
                                const hw_request *req, const hw_blob *blob,
                                uint64_t id);
/* After hcn_host_take_ahead said false: whether something waits that it
 * could not hand over (a message or a timeout a RECEIVE must take, with
 * its effects at once), as against nothing at all.  Not while stopping. */
bool hcn_host_blocked(hcn_host *h);
/* The guest received the oldest message delivered ahead: apply its
 * effects as hw_receive would have.  false if none is ahead. */
bool hcn_host_receive_ahead(hcn_host *h);
/* hw_receive without waiting, for an isolated instance whose thread parks
 * waiting for its worker (isolate.c): true and *out (the caller's,
 * hw_receive_result_fini) when a message or a timeout is there to be
 * received now, with its effects applied as host_receive applies them;
 * false when nothing is, or when the process is stopping (the blocking
 * receive on the process's own thread decides what comes then).  Any
 * thread may call it while it has the host to itself; `own_thread` says
 * it is the process's own (which also trims its stack and turns its
 * allocation cache on, as host_receive does). */
bool hcn_host_try_receive(hcn_host *h, hw_receive_result *out, bool own_thread);
/* On the process's own thread, once a message was handed to the guest
 * (by hcn_host_try_receive on another thread): its work after the start
 * makes the thread busy, not idle (its allocation cache goes on). */
void hcn_host_thread_busy(hcn_host *h);
/* The earliest deadline of a request the instance waits on (monotonic
 * ns), -1 if none. */
int64_t hcn_host_next_deadline(const hcn_host *h);

/* -------------------------------------------- task stack guards (fault.c) */

/* The host table's guard_add/guard_remove for h's guest. */
int hcn_fault_guard_add(hcn_host *h, const void *lo, size_t len);
void hcn_fault_guard_remove(hcn_host *h, int handle);
/* Release h's guard table (hcn_host_fini). */
void hcn_fault_guards_fini(hcn_host *h);
/* Learn the executable ranges of the instance loaded as dl. */
void hcn_fault_instance_text(hcn_host *h, void *dl);
/* A process thread starts / ends: install the SIGSEGV/SIGBUS handler (once
 * per OS process, again if someone replaced it) and give the thread an
 * alternate signal stack if it has none. */
void hcn_fault_thread_begin(void);
void hcn_fault_thread_end(void);
/* Give back to the kernel the pages of the calling process thread's stack
 * below the caller's frame (with 1 KiB of margin): what an instance's start
 * touched deeper down (the dynamic loader, the guest's init) and no longer
 * uses.  Called from the thread itself, on its own stack; false (nothing
 * done) on a coroutine's stack, in a thread hcn_fault_thread_begin did not
 * set up, or under AddressSanitizer.  The pages read as zeros when the
 * stack grows into them again, as fresh stack pages do. */
bool hcn_fault_thread_trim(void);
/* The allocator's cache of the calling thread (jemalloc's tcache: about
 * 70 KiB, its stacks of cached objects and what they hold).  A process
 * thread starts without one (off, first thing on the thread) and gets it
 * with the first message its instance is given after it has started (on),
 * so an idle process costs none and a busy one allocates as every other
 * thread does.  Both are for the calling thread only and cheap to repeat;
 * without jemalloc (glibc's malloc, the sanitizers) they do nothing. */
void hcn_thread_cache_off(void);
void hcn_thread_cache_on(void);
/* Around the guest's run on this thread: from enter to leave, a fault in
 * one of h's guards stops the instance by a jump to h->kill with
 * HCN_KILL_OVERFLOW.  leave gets the sigsetjmp value; after a jump it puts
 * the thread's sanitizer and memory state back in order. */
void hcn_fault_enter(hcn_host *h);
void hcn_fault_leave(hcn_host *h, int jumped);
/* A process fiber (sched.c) runs on this thread from in to out: the fault
 * handler looks at its host (h, what out returned when it last left;
 * NULL outside hcn_fault_enter/leave), and the sanitizer's fix-up after a
 * kill jump at its stack (stack_lo, stack_size).  On the scheduler thread,
 * around each switch into the fiber. */
void hcn_fault_fiber_in(hcn_host *h, void *stack_lo, size_t stack_size);
hcn_host *hcn_fault_fiber_out(void);

/* Send a request from a host-internal source on behalf of h's process and
 * wait for the answer, as get/set/clear-state do (source
 * our@kernel:distro:sys, rsvp the process).  Returns HCC_EOK with *resp (a
 * response envelope, caller's reference) or HCC_ETIMEOUT. */
int hcn_host_kernel_call(hcn_host *h, const char *target_pid, const char *body,
                         hcn_blob *blob, uint64_t timeout_s, hcn_msg **resp);

/* ----------------------------------------------- instances (proc.c) */

/* How an instance ended. */
typedef enum hcn_run_end {
    HCN_RUN_RETURNED,    /* its entry returned */
    HCN_RUN_KILLED,      /* the node stopped it (shutdown, reinstall) */
    HCN_RUN_LOAD_FAILED, /* it never ran */
    HCN_RUN_OVERFLOW,    /* a task stack overflow stopped it */
    HCN_RUN_CRASHED,     /* an isolated instance crashed (a fatal signal,
                          * exit(), a breach of the worker protocol) */
} hcn_run_end;

/* ------------------------------------------ isolated instances (isolate.c) */

/* Run p's current instance in a worker process and serve its calls on
 * this (p's) thread until it ends; logs a crash with where it happened.
 * Blocks; a shutdown or reinstall kills the worker at once. */
hcn_run_end hcn_isolate_run(hcn_proc *p);

struct hcw_crash;
/* Where a worker crashed (symbolize.c): "function (file:line)" of the
 * first frame in `binary` (else the first named frame) into where, and a
 * backtrace, one frame a line, in *trace (malloc'd; NULL when there is
 * nothing to show).  first_exact: c->pcs[0] is the instruction a signal
 * interrupted, not a return address. */
void hcn_symbolize(const struct hcw_crash *c, bool first_exact,
                   const char *binary, char *where, size_t wl, char **trace);

#endif
