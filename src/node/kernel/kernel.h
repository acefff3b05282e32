/* Internal to the node: what the kernel room (src/node/kernel/) offers the
 * node's other rooms: envelopes and blobs, capabilities, mailboxes, the
 * process table and its entries, routing, grants, the module interface
 * (hcn_module_ops) and the node structure that ties them.  The kernel uses
 * only src/node/base/ and src/common/; the modules, http, control, package
 * and the node's life (node.c) sit above it.  kernel_int.h holds what only
 * the kernel's own files share (a guest's host state, faults, spawn).
 *
 * Threads: each process (guest or runtime module) runs on its own thread and
 * owns its host state alone.  Routing (hcn_route) runs on the sending
 * thread: it looks the target up under the table's read lock and pushes
 * into the target's mailbox, which never blocks.  So no process, however
 * slow, can stall another's sends. */
#ifndef HYPERC_NODE_KERNEL_H
#define HYPERC_NODE_KERNEL_H

#include "../../common/common.h"
#include "../base/base.h"
#include "hyperc/abi.h"
#include "hyperc/node.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "../../common/hash.h" /* uthash, with its hash */

typedef struct hcn_node hcn_node;
typedef struct hcn_proc hcn_proc;
typedef struct hcn_control hcn_control;
typedef struct hcn_fiber hcn_fiber;
typedef struct hcn_sched hcn_sched;

/* ---------------------------------------------------------------- blobs */

/* A lazy-load blob, immutable once built and shared by reference: a message,
 * a process's last_blob and a saved request can all hold the same one. */
typedef struct hcn_blob {
    atomic_int refs;
    char *mime; /* NULL = none; points into the same allocation */
    size_t len;
    uint8_t bytes[];
} hcn_blob;

/* Copy mime (may be NULL) and bytes into a new blob with one reference. */
hcn_blob *hcn_blob_new(const char *mime, const void *bytes, size_t len);
hcn_blob *hcn_blob_ref(hcn_blob *b);
void hcn_blob_unref(hcn_blob *b);

/* ---------------------------------------------------------- capabilities */

/* A capability with its params in canonical JSON (sorted keys, compact), so
 * that equality is string equality, as Hyperware compares parsed JSON.
 * One issued by another node keeps that node's signature (as it came over
 * the network), so that it can be shown back to its issuer; ours carry
 * none (the net module signs them as they leave). */
typedef struct hcn_cap {
    char *issuer; /* full address string */
    char *params; /* canonical JSON */
    uint8_t *sig; /* the issuing node's signature; NULL = none */
    size_t sig_len;
} hcn_cap;

typedef struct hcn_capset {
    hcn_cap *v;
    size_t len, cap;
} hcn_capset;

/* Canonicalize a JSON text; NULL if it is not JSON.  Caller frees. */
char *hcn_json_canonical(const char *json);
/* Add (copies; canonicalizes params). Returns 1 if added, 0 if present, -1
 * if params is not JSON. */
int hcn_capset_add(hcn_capset *s, const char *issuer, const char *params);
/* hcn_capset_add with the issuer's signature (sig_len 0: none).  A
 * capability already held takes the signature given, if any (the latest
 * signed copy wins, as a map insert in Hyperware). */
int hcn_capset_add_signed(hcn_capset *s, const char *issuer, const char *params,
                          const uint8_t *sig, size_t sig_len);
/* The held capability, or NULL; params must already be canonical.  Valid
 * until the set changes. */
const hcn_cap *hcn_capset_get(const hcn_capset *s, const char *issuer,
                              const char *canon_params);
/* Remove; returns 1 if it was there. */
int hcn_capset_remove(hcn_capset *s, const char *issuer, const char *params);
/* Whether held; params must already be canonical. */
bool hcn_capset_has(const hcn_capset *s, const char *issuer,
                    const char *canon_params);
/* Whether the set holds messaging for the process at address `target`. */
bool hcn_capset_has_messaging(const hcn_capset *s, const char *target);
/* Remove every capability issued by `issuer_addr`; returns how many. */
size_t hcn_capset_remove_issuer(hcn_capset *s, const char *issuer_addr);
void hcn_capset_fini(hcn_capset *s);

/* ------------------------------------------------------------- messages */

typedef enum hcn_msg_kind {
    HCN_MSG_REQUEST = 0,
    HCN_MSG_RESPONSE = 1,
    HCN_MSG_SEND_ERROR = 2,
    /* a lane's control entry for an isolated worker (kernel/lanes.c): never
     * the guest's; id is the worker protocol's op << 32 | the lane */
    HCN_MSG_LANE = 3,
} hcn_msg_kind;

/* The envelope {id, source, target, rsvp, message, blob}.  Immutable after
 * hcn_route (except `next`, used by the one mailbox it sits in), and shared
 * by reference: the receiver's prompting message and the sender's context
 * entry may point at the same envelope. */
typedef struct hcn_msg {
    atomic_int refs;
    /* strlen of source and target (and rsvp_len below), 0 when unknown
     * (over 65535 bytes): where the envelope's gap was */
    uint16_t source_len, target_len;
    struct hcn_msg *next;
    uint64_t id;
    uint8_t kind;     /* hcn_msg_kind */
    uint8_t err_kind; /* HW_SEND_ERROR_* for HCN_MSG_SEND_ERROR */
    bool inherit;
    bool has_expects;
    uint32_t seq;       /* set by the mailbox it is pushed into: its number
                           there (hcn_mailbox_push_seq) */
    uint64_t expects;   /* seconds */
    const char *source; /* "node@process:package:publisher" */
    const char *target;
    const char *rsvp; /* NULL = none */
    const uint8_t *body;
    size_t body_len;
    const char *metadata; /* NULL = none */
    hcn_cap *caps;
    size_t ncaps;
    hcn_blob *blob;       /* NULL = none; owned reference */
    struct hcn_msg *orig; /* SEND_ERROR: the failed request (owned ref) */
    bool counted;         /* a request still counted in its mailbox's nreq */
    bool stub;            /* a lane request's stub (a worker's SYNC, host.c):
                             its id is a lane peer's, never the worker's own */
    uint16_t rsvp_len;    /* strlen of rsvp, 0 when none or unknown */
    int64_t arrived;      /* monotonic ns when it entered the mailbox: the
                             coarse clock's (early by about a tick), unless the
                             mailbox's receiver spins (fine_stamps) */
} hcn_msg;

/* What an envelope is made of, by name: a call site sets what it needs and
 * the rest stays zero (no rsvp, no expects, empty body, no metadata, no
 * capabilities, no blob). */
typedef struct hcn_msg_spec {
    hcn_msg_kind kind;
    uint64_t id;
    const char *source; /* "node@process:package:publisher" */
    const char *target;
    const char *rsvp; /* NULL = none */
    /* strlen of source, target and rsvp when the caller knows it (an
     * address is never empty); 0: hcn_msg_new measures it */
    size_t source_len, target_len, rsvp_len;
    bool inherit;
    bool has_expects;
    uint64_t expects; /* seconds, with has_expects */
    const void *body;
    size_t body_len;
    const char *metadata; /* NULL = none */
    const hcn_cap *caps;
    size_t ncaps;
    hcn_blob *blob; /* NULL = none */
} hcn_msg_spec;

/* Build an envelope in one allocation, copying every input of *spec (its
 * caps are copied; its blob gains a reference).  Never fails (aborts when
 * out of memory).  The caller owns the one reference. */
hcn_msg *hcn_msg_new(const hcn_msg_spec *spec);
/* hcn_msg_new with the spec written in place:
 *   HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = m->id, .source = a, ...) */
#define HCN_MSG_NEW(...) hcn_msg_new(&(const hcn_msg_spec){__VA_ARGS__})
/* A SEND_ERROR envelope for request `orig` (gains a reference). */
hcn_msg *hcn_msg_send_error(hcn_msg *orig, int kind);
hcn_msg *hcn_msg_ref(hcn_msg *m);
void hcn_msg_unref(hcn_msg *m);

/* The process-id part of an address string (after '@'). */
static inline const char *hcn_addr_pid(const char *addr)
{
    const char *a = addr;
    while (*a && *a != '@')
        a++;
    return *a ? a + 1 : addr;
}

/* ------------------------------------------------------------ mailboxes */

struct hcw_lane; /* worker/lane.h */
struct hcn_mb_lane;

/* A process's incoming queue.  Bounded in requests (responses and send
 * errors are always accepted: the receiver asked for them).  Push never
 * blocks; pop blocks until a message, a deadline or close. */
typedef struct hcn_mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hcn_msg *head, *tail;
    atomic_uint count;
    atomic_uint nreq; /* requests queued or drained but not yet taken */
    uint32_t max_req;
    int64_t spin_max_ns; /* longest spin before parking */
    int64_t spin_ns;     /* current spin budget (receiver's thread only) */
    int waiting;         /* threads parked on cv */
    /* the receiver is a plain thread that spins before parking: arrival
     * stamps from the precise clock, as its spin budget is measured by them
     * (set by its first such pop; other mailboxes take the coarse clock) */
    atomic_bool fine_stamps;
    hcn_fiber *fiber; /* a process fiber waiting for a message (sched.c),
                       * NULL = none */
    bool closed;
    atomic_bool stopping; /* the receiver is to stop (reinstall) */
    /* hcn_mailbox_set_notify: called after a push, a close or a stop */
    void (*notify)(void *ctx, bool ending);
    void *notify_ctx;
    atomic_int notify_calls;   /* calls of notify under way */
    _Atomic uint32_t push_seq; /* the last number a push gave (never 0;
                                  written under mu) */
    /* the process's inbound lanes (hcn_mailbox_lane_add; under mu): their
     * unread requests count against max_req too */
    struct hcn_mb_lane *lanes_in;
    unsigned nlanes_in;
} hcn_mailbox;

/* spin_us: the longest a pop spins for a message before parking; the budget
 * adapts between 1/64 of it and all of it (see mailbox.c). */
void hcn_mailbox_init(hcn_mailbox *mb, uint32_t max_req, uint32_t spin_us);
/* Frees every queued message. */
void hcn_mailbox_fini(hcn_mailbox *mb);
/* Append m (takes the caller's reference on success).  HCC_EOK, HCC_EFULL
 * (request over the bound) or HCC_ECLOSED; on error the caller keeps m. */
int hcn_mailbox_push(hcn_mailbox *mb, hcn_msg *m);
/* The same, numbering m (m->seq: one more than the last push's, never 0,
 * wrapping) and telling the number in *seq (the caller may not read m once
 * it is pushed: the receiver may have taken and freed it). */
int hcn_mailbox_push_seq(hcn_mailbox *mb, hcn_msg *m, uint32_t *seq);
/* The inbound lanes (docs/lane-design.md §6): direction `dir` of `lane`
 * (worker/lane.h) brings this mailbox's process requests, at most `quota`
 * unread as the lane's words say (hcw_lane_backlog).  From add to remove
 * (the lane must stay mapped meanwhile), a request pushed is refused with
 * HCC_EFULL when nreq plus those backlogs reaches max_req, and each such
 * lane's `full` flag is raised while the sum after a push (or at a
 * refusal) reaches max_req, lowered when a push leaves it below.  Remove
 * is a no-op for a lane not added. */
void hcn_mailbox_lane_add(hcn_mailbox *mb, struct hcw_lane *lane, int dir,
                          uint32_t quota);
void hcn_mailbox_lane_remove(hcn_mailbox *mb, const struct hcw_lane *lane);
/* The requests waiting in the inbound lanes now, each clamped to its
 * quota (for `hyperc ps`). */
uint32_t hcn_mailbox_lane_backlog(hcn_mailbox *mb);
/* Wait for a message until `deadline_ns` (monotonic; <0 = no deadline).
 * Returns HCC_EOK with *out (caller owns the reference), HCC_ETIMEOUT or
 * HCC_ECLOSED.  On a plain thread it spins, then parks on the condition
 * variable; on a process fiber (sched.c) it suspends the fiber instead and
 * its scheduler thread runs other processes meanwhile. */
int hcn_mailbox_pop(hcn_mailbox *mb, int64_t deadline_ns, hcn_msg **out);
/* The same, through a stop (hcn_mailbox_stop): a call the receiver is
 * waiting on completes, and the stop takes effect at its next pop. */
int hcn_mailbox_pop_through(hcn_mailbox *mb, int64_t deadline_ns,
                            hcn_msg **out);
/* Refuse further pushes and wake the waiter; queued messages stay. */
void hcn_mailbox_close(hcn_mailbox *mb);
/* Whether the mailbox is closed (any thread; the answer may be stale by
 * the time the caller looks at it). */
bool hcn_mailbox_closed(hcn_mailbox *mb);
/* Reopen after close (restart); queued messages are kept. */
void hcn_mailbox_reopen(hcn_mailbox *mb);
/* Ask the receiver to stop while senders go on queueing: from now on pop
 * returns HCC_ECLOSED at once and drain hands out nothing, until resume.
 * Used to swap a process's binary without losing what was sent to it. */
void hcn_mailbox_stop(hcn_mailbox *mb);
void hcn_mailbox_resume(hcn_mailbox *mb);
static inline bool hcn_mailbox_stopping(hcn_mailbox *mb)
{
    return atomic_load_explicit(&mb->stopping, memory_order_acquire);
}
/* Put a list (head..tail, linked by ->next) back at the front, in order,
 * as it was when drained (each keeps its counted state). */
void hcn_mailbox_requeue(hcn_mailbox *mb, hcn_msg *head, hcn_msg *tail);
/* Move everything queued to the caller's list (*head..*tail, NULL if
 * empty) in one lock; requests stay counted against the bound until
 * hcn_mailbox_taken() is called for each. */
void hcn_mailbox_drain(hcn_mailbox *mb, hcn_msg **head, hcn_msg **tail);
/* A drained message is now taken by its process: uncount it. */
void hcn_mailbox_taken(hcn_mailbox *mb, hcn_msg *m);
/* Remove and return everything queued (a list via ->next). */
hcn_msg *hcn_mailbox_take_all(hcn_mailbox *mb);
/* From now on call fn(ctx, ending) on the pushing (closing, stopping)
 * thread after each push (ending false), close or stop (ending true), once
 * the mailbox's lock is released; fn must not wait for anything the
 * receiver holds.  fn NULL removes it, and returns once no call is under
 * way.  For the thread of an isolated process that parks waiting for its
 * worker rather than for the mailbox (isolate.c). */
void hcn_mailbox_set_notify(hcn_mailbox *mb, void (*fn)(void *ctx, bool ending),
                            void *ctx);

/* ------------------------------------------------------------ logging */

/* Kernel printout with printf formatting, shown at the node's level. */
void hcn_logf(hcn_node *n, int verbosity, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------ processes */

typedef enum hcn_proc_status {
    HCN_PROC_LOADED = 0, /* registered, buffering until run */
    HCN_PROC_RUNNING = 1,
    HCN_PROC_RESTARTING = 2,
    HCN_PROC_EXITED = 3, /* gone; sends to it fail */
} hcn_proc_status;

/* A runtime module: a process implemented by the node itself. */
typedef struct hcn_module_ops {
    /* Handle one message (the module owns the reference). */
    void (*handle)(hcn_proc *self, hcn_msg *m);
    /* Take m on the sending thread in place of the mailbox push (may be
     * NULL: everything goes through the mailbox and `handle`).  For a module
     * that passes its messages on to a thread of its own, this saves the hop
     * through its process thread.  hcn_route calls it from any thread, with
     * no lock held, possibly from several threads at once; messages the
     * kernel pushes to the mailbox itself (send errors) still reach
     * `handle`.  Returns HCC_EOK (m taken), HCC_EFULL (a request over the
     * module's bound) or HCC_ECLOSED; on error the caller keeps m, as with
     * hcn_mailbox_push. */
    int (*deliver)(hcn_proc *self, hcn_msg *m);
    /* Next monotonic deadline at which on_deadline must run, or -1. */
    int64_t (*next_deadline)(hcn_proc *self);
    void (*on_deadline)(hcn_proc *self, int64_t now);
    /* Shutdown has begun (called on the shutting-down thread, before any
     * mailbox closes): stop what the module runs besides its process
     * thread (listeners, connections, worker threads) and wait for it.
     * May be NULL. */
    void (*stop)(hcn_proc *self);
    /* Release the module's data at shutdown. */
    void (*fini)(hcn_proc *self);
} hcn_module_ops;

/* An on-exit request kept by the kernel: the envelope is built at exit. */
typedef struct hcn_exit_req {
    char *target;
    bool inherit;
    uint8_t *body;
    size_t body_len;
    char *metadata;
    hcn_blob *blob;
} hcn_exit_req;

typedef struct hcn_on_exit {
    int kind; /* HW_ON_EXIT_* */
    hcn_exit_req *reqs;
    size_t nreqs;
} hcn_on_exit;

void hcn_on_exit_fini(hcn_on_exit *o);
/* Deep copy. */
void hcn_on_exit_copy(hcn_on_exit *dst, const hcn_on_exit *src);

struct hcn_proc {
    UT_hash_handle hh;
    atomic_int refs;
    hcn_node *node;
    char *id;   /* "process:package:publisher" (table key) */
    char *addr; /* "node@process:package:publisher" */
    hcn_mailbox mb;

    pthread_mutex_t lock; /* guards everything below up to `thread` */
    hcn_capset caps;      /* capabilities held */
    hcn_capset offered;   /* capabilities received in messages */
    hcn_on_exit on_exit;
    bool public_;
    atomic_int status;    /* hcn_proc_status */
    atomic_int verbosity; /* terminal level of this process: -1 follows the
                           * node's, -100 is muted */

    /* runtime module, or guest */
    const hcn_module_ops *ops;
    void *mod;
    char *so_path;        /* guest: the shared object */
    char *pkg_dir;        /* guest: the package's pkg/ folder */
    atomic_bool isolated; /* guest: runs in a worker process (kernel/isolate.c);
                           * a reinstall changes it (pending_isolated) */
    int crashes;          /* instances that crashed (under lock) */
    char *last_crash;     /* how the last one did, NULL = never (under lock) */
    pthread_t thread;
    bool has_thread;            /* its life runs: on `thread`, or on a fiber */
    atomic_bool thread_claimed; /* `thread` is joined or detached by whoever
                                 * sets this first: the node's shutdown, or
                                 * the thread itself once the process has
                                 * left the node (nobody else would) */
    /* guest: its instance runs in the wasm host (set by hcn_isolate_run
     * before the instance starts; read by the lanes' LANE_OPEN) */
    atomic_bool in_wasm_host;
    bool on_fiber;    /* guest: on a fiber of the node's schedulers (sched.c),
                       * not on `thread` (set before it starts; changed by
                       * its own life under the node's life_mu: proc.c's
                       * carrier_move) */
    char *pending_so; /* guest: a reinstall's binary, taken at the
                       * next start (under lock) */
    char *pending_pkg_dir;   /* and its pkg/ folder */
    int pending_isolated;    /* and its manifest's say on isolated: 0, 1,
                              * or -1 for none (under lock) */
    atomic_int instance;     /* starts so far */
    atomic_int started_inst; /* the instance that has started (host.c:
                              * started), 0: none yet */
    int failures;            /* restarts counted in the give-up window */
    int64_t window_start_ns;
    int consecutive;    /* for backoff */
    atomic_bool reload; /* stop the instance and start the new binary */
    atomic_bool retire; /* stop the instance and leave the node */

    /* What `hyperc ps` and a reinstall are told (proc.c, host.c,
     * isolate.c).  Written by the process's own thread, read by others:
     * kept at the end, away from what senders touch per message. */
    atomic_int restarts; /* instances started again by on-exit Restart */
    /* Monotonic ns since when the guest has been in its own code (or a
     * blocking host call): set as receive hands it a message and as an
     * instance starts, 0 while it waits in receive or between instances
     * (host.c; receive stamps it with hcn_now_coarse_ns, to the tick). */
    _Atomic int64_t busy_since;
    /* Live tasks an in-process guest runtime reported (the native table's
     * `tasks`), -1 when it never did; a worker's own count is in its link
     * (`link`, below). */
    atomic_int tasks;
    /* The newest instance that ended before it started (0: none), and why
     * (start_failure, under lock). */
    atomic_int start_failed_inst;
    char *start_failure;
    /* Of the current instance (under lock, reset at each start): the last
     * printout at level 0 before it started, and why it ended when the
     * node knows (a crash, a binary that does not load). */
    char *early_words;
    char *end_why;
    /* An isolated instance's worker link while it runs (under lock), for
     * the live tasks the worker keeps there (isolate.c). */
    struct hcw_link *link;
    /* The instance whose worker takes lanes (its READY asked), 0: none
     * (isolate.c sets it, kernel/lanes.c reads it). */
    atomic_int lane_inst;
    /* An isolated instance's worker (its OS pid) while it runs, else 0:
     * for `hyperc ps` (isolate.c). */
    atomic_int worker_pid;
};

/* Whether p's current instance has started (bindings and init done; a
 * module always has). */
static inline bool hcn_proc_started(hcn_proc *p)
{
    int inst = atomic_load(&p->instance);
    return p->ops != NULL ||
           (inst > 0 && atomic_load(&p->started_inst) == inst);
}

/* Drop a reference; the last one frees the process. */
void hcn_proc_unref(hcn_proc *p);
hcn_proc *hcn_proc_ref(hcn_proc *p);
/* Effective terminal level for printouts of p. */
int hcn_proc_level(hcn_proc *p);

/* A request that will get no answer from its target (gone, or its
 * instance stopped while answering): a timeout send error goes back to
 * the sender now, if it expects a response.  Borrows m. */
void hcn_proc_fail_request(hcn_node *n, hcn_msg *m);

/* Run a guest process's life on its own thread (proc.c), or on a fiber of
 * the node's schedulers when it has them (n->sched) and p runs in-process. */
int hcn_proc_start_thread(hcn_proc *p);
/* A guest process's life: its instances, restarts and on-exit, until it
 * ends or the node shuts down (proc.c).  Runs on p's thread or fiber; the
 * caller holds a reference to p and counts the thread in the census.
 * true when the life went on elsewhere instead: a reinstall changed where
 * p runs (in the node or in a worker), and a fiber now carries what a
 * thread did or the other way round (then the thread, no longer p's,
 * detaches itself). */
bool hcn_proc_life(hcn_proc *p);
/* Start a runtime module's thread. */
int hcn_module_start_thread(hcn_proc *p);

/* ---------------------------------------------------------- the node */

/* The way out to other nodes.  The kernel sits below every module, so
 * the module that carries messages between nodes (net:distro:sys) hands
 * the kernel this hook when it is added, before any thread runs; while
 * `send` is NULL every other node is offline.  `send` runs on the routing
 * thread and must not block; it borrows m (taking a reference of its own
 * if it keeps it) and returns true when it took the message, else false
 * with the HW_SEND_ERROR_* kind the kernel gives the sender in *kind
 * (Offline is 0, so the kind cannot double as the answer). */
typedef struct hcn_remote {
    bool (*send)(void *ctx, hcn_msg *m, int *kind);
    void *ctx;
} hcn_remote;

/* Saves without a trip through the state module's thread.  The module
 * that stores state (state:distro:sys) hands the kernel this hook when it
 * is added, before any thread runs; while `submit` is NULL the host sends
 * every save to the module as a message.
 * - submit takes a SetState request envelope (as the host would route it:
 *   body {"SetState":"<process>"}, metadata the process id, the bytes as
 *   blob, rsvp the saving process) and the caller's reference; it never
 *   waits for a database commit.  The answer is routed to the rsvp once the
 *   bytes would survive the node being killed (or storing them failed), in
 *   the order submitted; the state module stores and answers before submit
 *   returns (one record in its log, statelog.h).
 * - flush makes sure nothing submitted waits for a thread that will not
 *   come: a store that leaves work for later does it (or hands it on)
 *   here.  With `wait`, it returns only once every save submitted is
 *   answered.  Any thread; every submitter calls flush before it waits for
 *   anything.  (The state module's has nothing left to do.)
 * - save, where not NULL, stores `bytes` as process pid's state before it
 *   returns, without a message either way: 0 once they would survive the
 *   node being killed, -1 with errno when storing them failed.  Ordered
 *   with submit's saves.  Any thread; blocks only on the store's lock.
 * - del, where save is not NULL, is the same for a delete of pid's state
 *   (0 also when there was none).
 * - slot_open, where not NULL, makes a state slot (src/worker/slot.h) for
 *   the isolated worker about to run process pid, putting first into the
 *   store what a slot pid had still held: a descriptor of the new slot's
 *   file (the caller's to close; the store keeps its own mapping), or -1
 *   (no slot: the worker saves by message).  From then on every save,
 *   delete and read of pid through the store first stores the slot's newer
 *   value.  slot_close, when that worker has ended: the slot's newer value
 *   is stored and the slot removed.  The process's thread, one run at a
 *   time per process. */
typedef struct hcn_store {
    void (*submit)(void *ctx, hcn_msg *m);
    void (*flush)(void *ctx, bool wait);
    int (*save)(void *ctx, const char *pid, const uint8_t *bytes, size_t len);
    int (*del)(void *ctx, const char *pid);
    int (*slot_open)(void *ctx, const char *pid);
    void (*slot_close)(void *ctx, const char *pid);
    void *ctx;
} hcn_store;

struct hcn_node {
    hc_node_config cfg;
    char *name;
    size_t name_len;   /* strlen(name), set with it */
    char *kernel_addr; /* name@kernel:distro:sys (the network capability's
                        * issuer) */
    char *home;
    char *run_dir; /* <home>/run: per-instance copies of .so files */
    int run_fd;    /* run_dir opened (O_NOFOLLOW); copies made under it */
    pthread_rwlock_t table_lock;
    hcn_proc *procs; /* uthash by id */
    hcn_log log;
    atomic_bool shutting_down;
    atomic_int translating; /* components being translated to native code
                             * now, or waiting for a CPU to be (isolate.c) */
    atomic_uint instance_seq;
    pthread_mutex_t life_mu;
    pthread_cond_t life_cv;
    /* refusal lines in the log: at most HCN_REFUSALS_PER_S a second, the
     * rest counted and said in one line (kernel.c) */
    pthread_mutex_t refuse_mu;
    int64_t refuse_window_ns;
    unsigned refuse_shown;
    uint64_t refuse_hidden;
    int live_threads;
    int threads_left; /* still in guest code after the shutdown's grace */
    struct hcn_node *kept_next; /* hc_node_free's list of nodes kept */
    char *state_db_path;
    struct hcn_control *ctl; /* the control socket (control/control.c) */
    char *worker_path;       /* hyperc-worker, NULL = not found */
    char *wasm_host_path;    /* the wasm host (host.mjs), NULL = not found */
    char *first_password;    /* the node password when this boot made it
                                (hc_node_first_password); else NULL */
    hcn_remote remote;       /* where messages for other nodes go */
    hcn_store store;         /* where saves go (state:distro:sys) */
    hcn_sched *sched;        /* the schedulers of in-process guests, NULL =
                              * a thread per process (cfg.schedulers 0) */
    struct hcn_lanes *lanes; /* lanes between isolated workers
                                (kernel/lanes.c) */
};

/* The node's modules (publisher sys) queue this many times --mailbox-max
 * requests. */
#define HCN_MODULE_MAILBOX_FACTOR 64u

/* Refusal lines (a message the kernel does not deliver) shown a second;
 * the others are counted. */
#define HCN_REFUSALS_PER_S 10u

/* Say how many refusal lines were held back since the last one shown (at
 * shutdown; routing says it when the next second begins). */
void hcn_refusals_flush(hcn_node *n);

/* The same, only once the second they were held back in has ended: so that
 * the count of a burst is said soon after it, not with the next refusal
 * (hc_node_tick). */
void hcn_refusals_flush_ended(hcn_node *n);

/* Look a process up by id ("p:k:pub") and take a reference; NULL if none. */
hcn_proc *hcn_node_find(hcn_node *n, const char *pid);

/* Register a new process entry (status LOADED, one reference held by the
 * table).  Returns it with an extra reference for the caller, or NULL with
 * *err = HCC_EEXISTS. */
hcn_proc *hcn_node_add_proc(hcn_node *n, const char *pid, bool public_,
                            int *err);
/* Remove p from the table (drops the table's reference). */
void hcn_node_remove_proc(hcn_node *n, hcn_proc *p);

/* Route an envelope from any thread; consumes the caller's reference.
 * Applies "our" aliasing (already done by builders), capability checks and
 * mailbox bounds; failures of requests that expect a response come back to
 * the sender at once as a send error of kind timeout (offline for other
 * nodes), and are logged. */
void hcn_route(hcn_node *n, hcn_msg *m);

/* hcn_route with the sender and target already known (borrowed references,
 * either may be NULL to look it up).  `from_hint` must be the process named
 * by m->source, `to_hint` the one named by m->target.  The number the
 * target's mailbox gave the envelope when it was pushed there, else 0 (not
 * delivered, or to a module's own delivery, or to another node). */
uint32_t hcn_route_ex(hcn_node *n, hcn_proc *from_hint, hcn_proc *to_hint,
                      hcn_msg *m);

/* ------------------------------------------------------------ lanes */

/* One lane of a process as `hyperc ps` shows it (hcn_lanes_list). */
typedef struct hcn_lane_info {
    uint32_t number;
    char *peer;   /* the other process's id (the caller frees it) */
    bool open;    /* false: closed, waiting for the workers to unmap it */
    bool send_ok; /* this process may send to the peer by it */
    bool recv_ok; /* and the peer to this one */
    bool mapped;  /* this process's worker has it */
    /* this process to the peer (docs/lane-design.md §3a): the peer's
     * mailbox number of the last message sent it by node, and the newest
     * the peer's worker has read (each as the lane's header says) */
    uint32_t sent_seq, peer_read_seq;
    /* the requests this process sent by lane that the peer has not taken
     * (clamped to the way's quota), and whether the way is marked full
     * (docs/lane-design.md §6) */
    uint32_t sent_unread;
    bool full;
} hcn_lane_info;

/* The node's lane table, made with the node and freed once every
 * instance has ended (node.c). */
void hcn_lanes_init(hcn_node *n);
void hcn_lanes_fini(hcn_node *n);
/* Whether lanes are opened at all: yes unless HYPERC_LANES=0 is in the
 * node's environment (docs/lane-design.md).  Read once. */
bool hcn_lanes_wanted(void);
/* The lanes of p: a malloc'd array in *out (free each peer, then it), its
 * length returned.  Any thread. */
size_t hcn_lanes_list(hcn_node *n, hcn_proc *p, hcn_lane_info **out);
/* Close every lane (the node's log level went to 3, where every routed
 * message is printed, and lanes would hide some).  Any thread. */
void hcn_lanes_close_all(hcn_node *n);

/* Whether a process id is one whose messages skip capability checks
 * (kernel, state, vfs, and the terminal injector). */
bool hcn_pid_exempt(const char *pid);

/* Grant `holder` a capability (kernel-side; copies). */
void hcn_grant(hcn_proc *holder, const char *issuer, const char *params);
/* Grant messaging for `target_pid` on this node. */
void hcn_grant_messaging(hcn_node *n, hcn_proc *holder, const char *target_pid);

/* A thread of the node starts/ends (for shutdown joins). */
void hcn_node_thread_begin(hcn_node *n);
void hcn_node_thread_end(hcn_node *n);

/* Sleep until deadline or node shutdown; returns false on shutdown.  On a
 * process fiber it suspends the fiber (and sees a shutdown within 50 ms). */
bool hcn_node_sleep_until(hcn_node *n, int64_t deadline_ns);

/* ------------------------------------------- schedulers (sched.c) */

/* M:N scheduling of in-process guest processes (`hyperc run --schedulers
 * N`, the online CPUs by default; 0 = a thread each): each process's life
 * (hcn_proc_life) runs on a fiber, a coroutine of the node with its own
 * stack; N workers, each run by a scheduler thread, run the ready fibers
 * from their run queues.  A fiber that would block waiting for its mailbox
 * (hcn_mailbox_pop) or sleeping (hcn_node_sleep_until) suspends instead;
 * a push to its mailbox makes it ready on the pushing thread's worker when
 * the pusher is itself a fiber (so a pair that talks settles on one
 * thread), else on the worker it last ran on, waking that thread.  A fiber
 * that computes or blocks elsewhere holds its thread (C cannot be
 * preempted): an idle worker takes ready fibers from the others' queues,
 * and a watchdog hands a worker held for 2 ms to another thread (a spare,
 * or a new one).  Runtime modules and isolated processes keep their
 * threads. */

/* Make `count` workers for n (n->sched); their scheduler threads and the
 * watchdog start with the first hcn_sched_spawn, so a node without
 * in-process guests has none (the threads count in the thread census).
 * Before any guest starts; with count 0 there is no scheduler (n->sched
 * stays NULL).  Cannot fail: a thread that cannot be made fails the spawn
 * that needed it. */
void hcn_sched_start(hcn_node *n, unsigned count);
/* Run p's life on a new fiber (takes a reference to p and counts it in the
 * census; both dropped when its life ends).  Any thread; the first call
 * starts the scheduler threads.  -1 when its stack cannot be mapped or a
 * scheduler thread cannot be made (nothing taken then). */
int hcn_sched_spawn(hcn_sched *s, hcn_proc *p);
/* Shutdown began: wake every scheduler thread and the watchdog; each
 * exits once no fiber is left.  Called by hc_node_shutdown after closing the
 * mailboxes. */
void hcn_sched_shutdown(hcn_sched *s);
/* Join the scheduler threads and the watchdog (once the census says they
 * ended), log how many hand-overs there were, and free s; with `leave`,
 * detach them instead and free nothing (a fiber is still busy after the
 * grace period). */
void hcn_sched_join(hcn_sched *s, bool leave);

/* The netpoller (Go's netpoll): descriptors that an idle scheduler thread
 * waits on as it parks, so that what arrives on them is read, and the
 * fibers it readies run, on that thread — one thread wake-up where a
 * reader thread of its own and then the scheduler thread would be two.
 * One scheduler thread at a time waits there (the others park as before);
 * while none does, nothing reads a descriptor for the netpoller: its
 * owner must keep watching it too, after registering it (epoll with
 * EPOLLEXCLUSIVE, so that the kernel wakes the netpoller alone when it
 * waits, and the owner otherwise; see net.c).  `ready` runs on a scheduler
 * thread between fibers, never for two descriptors at once, and must not
 * block for long (what it routes is readied on that thread's worker). */
typedef struct hcn_pollable hcn_pollable;
struct hcn_pollable {
    int fd;
    /* fd is readable (level-triggered: called again while it stays so);
     * false: stop watching it (as hcn_netpoll_del, without the wait). */
    bool (*ready)(hcn_pollable *p);
};
/* Watch p->fd for input (p stays the caller's and must outlive the watch):
 * a scheduler thread with nothing to run waits on it and calls `ready`, so
 * the caller needs no reader of its own.  While every thread runs fibers,
 * input waits for one to park, or for the watchdog to wake a sleeping one
 * to watch (within about two of its 1 ms ticks).  false when the node has
 * no scheduler threads running (no in-process guest has started) or the
 * watch cannot be made. */
bool hcn_netpoll_add(hcn_node *n, hcn_pollable *p);
/* Stop watching p->fd (also if `ready` already stopped it), without
 * waiting: a netpoller round that took p's event before the removal may
 * still call `ready` for p, until hcn_netpoll_passed(n, token) with the
 * token returned (0: none can).  The round is kicked out of its wait, so
 * it ends within a scheduling delay.  Until then p must stay valid and
 * p->fd open: when `ready` returns false the round removes p->fd by
 * number, which must not be another watch's yet.  Any thread, never
 * blocks; not from `ready`. */
uint32_t hcn_netpoll_remove(hcn_node *n, hcn_pollable *p);
/* true once no netpoller round that hcn_netpoll_remove's `token` named is
 * left: `ready` will not be called again for what it removed.  Any
 * thread, never blocks. */
bool hcn_netpoll_passed(hcn_node *n, uint32_t token);
/* hcn_netpoll_remove, then wait until it has passed: on return `ready`
 * does not run for p and will not be called again.  Blocks for the
 * round's end (the netpoller thread's scheduling delay).  Not from
 * `ready`, nor holding a lock that `ready` takes. */
void hcn_netpoll_del(hcn_node *n, hcn_pollable *p);

/* The fiber running on the calling thread, NULL on a plain thread (or on a
 * scheduler thread between fibers). */
hcn_fiber *hcn_fiber_self(void);
/* From fiber f (== hcn_fiber_self()): suspend it until hcn_fiber_claim and
 * hcn_fiber_ready make it ready again, or until `deadline_ns` (monotonic;
 * <0 = none) passes.  `mu` (may be NULL) is held by the caller and is
 * released once the fiber has left its stack, so whoever wakes f under
 * `mu` cannot resume it early; it is not taken again on return.  May
 * return on another thread than it was called on. */
void hcn_fiber_wait(hcn_fiber *f, pthread_mutex_t *mu, int64_t deadline_ns);
/* Claim the wake-up of f, waiting in hcn_fiber_wait: true for exactly one
 * claimer per wait (a push, a close, or its deadline), who must then call
 * hcn_fiber_ready(f).  Any thread; the caller holds the lock f waits
 * under, which keeps f waiting until it is claimed. */
bool hcn_fiber_claim(hcn_fiber *f);
/* Make claimed fiber f ready to run (see the scheduling above).  Any
 * thread, no lock held. */
void hcn_fiber_ready(hcn_fiber *f);
/* From fiber f: sleep until deadline_ns, or until the node shuts down
 * (seen within 50 ms).  Returns false on shutdown. */
bool hcn_fiber_sleep_until(hcn_fiber *f, hcn_node *n, int64_t deadline_ns);

/* The hyperc-worker executable: `configured` if given, else $HYPERC_WORKER,
 * else beside the running program, else where the build or the install put
 * it.  A malloc'd path, or NULL when none is there. */
char *hcn_worker_find(const char *configured);

/* The wasm host (src/wasm/host.mjs, run by Node.js): $HYPERC_WASM_HOST, else
 * in the share folder beside the running hyperc's bin folder, else where the
 * build or the install put it.  A malloc'd path, or NULL when none is
 * there. */
char *hcn_wasm_host_find(void);

/* Count a crash of p's instance and keep `why` (copied) as the last one's
 * reason, for `hyperc ps`.  Any thread. */
void hcn_proc_note_crash(hcn_proc *p, const char *why);
/* Keep `why` (copied) as the reason p's current instance ended, when it is
 * not a crash (a binary that does not load), for a reinstall's report.
 * Any thread. */
void hcn_proc_note_end(hcn_proc *p, const char *why);

/* The live tasks p's guest runtime reported last (a hyperprocess's
 * handlers in flight, init included), -1 when it never did (a raw-ABI
 * process, a wasm component, a runtime module).  Call with p->lock held
 * (isolate.c). */
int hcn_proc_live_tasks(hcn_proc *p);
/* Since when p's guest is in its own code (monotonic ns; 0: waiting for a
 * message), for `hyperc ps` and the shutdown's list: busy_since, or for an
 * instance whose worker takes lanes (which hands the guest lane messages
 * the node does not see) the worker's word in its link's header, clamped
 * to [0, now].  Call with p->lock held (isolate.c). */
int64_t hcn_proc_busy_since(hcn_proc *p, int64_t now);

#endif
