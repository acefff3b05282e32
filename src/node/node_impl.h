/* Internal to the hyperc node: every type and function shared between the
 * node's source files.  Prefix hcn_ marks these internal; the node's public
 * API is include/hyperc/node.h (prefix hc_).
 *
 * Threads: each process (guest or runtime module) runs on its own thread and
 * owns its host state (hcn_host) alone.  Routing (hcn_route) runs on the
 * sending thread: it looks the target up under the table's read lock and
 * pushes into the target's mailbox, which never blocks.  So no process,
 * however slow, can stall another's sends. */
#ifndef HYPERC_NODE_IMPL_H
#define HYPERC_NODE_IMPL_H

#include "../abi/native.h"
#include "../common/common.h"
#include "hyperc/node.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <uthash.h>

typedef struct hcn_node hcn_node;
typedef struct hcn_proc hcn_proc;
typedef struct hcn_host hcn_host;

/* ---------------------------------------------------------------- util */

/* Monotonic clock in nanoseconds. */
int64_t hcn_now_ns(void);
/* Wall clock in milliseconds since the epoch. */
int64_t hcn_wall_ms(void);
/* A random u64 from the OS (getrandom); used to seed per-thread PRNGs. */
uint64_t hcn_random_u64(void);
/* xorshift64* step; *state must be non-zero. */
uint64_t hcn_rng_next(uint64_t *state);
/* malloc/calloc/strdup that abort on OOM (the node does not run degraded
 * when the machine has no memory left, as Redis and h2o do). */
void *hcn_xmalloc(size_t n);
void *hcn_xcalloc(size_t n, size_t m);
char *hcn_xstrdup(const char *s);
char *hcn_xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; caller frees. */
char *hcn_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole file into a fresh NUL-terminated buffer; NULL on error. */
char *hcn_read_file(const char *path, size_t *len);
/* mkdir -p; 0 or -1 with errno. */
int hcn_mkdirs(const char *path);

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
 * that equality is string equality, as Hyperware compares parsed JSON. */
typedef struct hcn_cap {
    char *issuer; /* full address string */
    char *params; /* canonical JSON */
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
} hcn_msg_kind;

/* The envelope {id, source, target, rsvp, message, blob}.  Immutable after
 * hcn_route (except `next`, used by the one mailbox it sits in), and shared
 * by reference: the receiver's prompting message and the sender's context
 * entry may point at the same envelope. */
typedef struct hcn_msg {
    atomic_int refs;
    struct hcn_msg *next;
    uint64_t id;
    uint8_t kind;     /* hcn_msg_kind */
    uint8_t err_kind; /* HW_SEND_ERROR_* for HCN_MSG_SEND_ERROR */
    bool inherit;
    bool has_expects;
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
    int64_t arrived;      /* monotonic ns when it entered the mailbox */
} hcn_msg;

/* Build an envelope in one allocation, copying every input.  `caps` is
 * copied; `blob` gains a reference. */
hcn_msg *hcn_msg_new(hcn_msg_kind kind, uint64_t id, const char *source,
                     const char *target, const char *rsvp, bool inherit,
                     bool has_expects, uint64_t expects, const void *body,
                     size_t body_len, const char *metadata, const hcn_cap *caps,
                     size_t ncaps, hcn_blob *blob);
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
    int waiting;
    bool closed;
    atomic_bool stopping; /* the receiver is to stop (reinstall) */
} hcn_mailbox;

/* spin_us: the longest a pop spins for a message before parking; the budget
 * adapts between 1/64 of it and all of it (see mailbox.c). */
void hcn_mailbox_init(hcn_mailbox *mb, uint32_t max_req, uint32_t spin_us);
/* Frees every queued message. */
void hcn_mailbox_fini(hcn_mailbox *mb);
/* Append m (takes the caller's reference on success).  HCC_EOK, HCC_EFULL
 * (request over the bound) or HCC_ECLOSED; on error the caller keeps m. */
int hcn_mailbox_push(hcn_mailbox *mb, hcn_msg *m);
/* Wait for a message until `deadline_ns` (monotonic; <0 = no deadline).
 * Returns HCC_EOK with *out (caller owns the reference), HCC_ETIMEOUT or
 * HCC_ECLOSED. */
int hcn_mailbox_pop(hcn_mailbox *mb, int64_t deadline_ns, hcn_msg **out);
/* The same, through a stop (hcn_mailbox_stop): a call the receiver is
 * waiting on completes, and the stop takes effect at its next pop. */
int hcn_mailbox_pop_through(hcn_mailbox *mb, int64_t deadline_ns,
                            hcn_msg **out);
/* Refuse further pushes and wake the waiter; queued messages stay. */
void hcn_mailbox_close(hcn_mailbox *mb);
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

/* ------------------------------------------------------------- logging */

typedef struct hcn_log {
    pthread_mutex_t mu;
    FILE *file; /* <home>/log/node.log, every printout at every level */
    char *path;
    uint64_t size, max_bytes; /* rotate at max_bytes (0 = never) */
    uint32_t files;           /* node.log plus files-1 rotated ones */
    int level;                /* default terminal verbosity */
    bool color;
} hcn_log;

/* Open <home>/log/node.log for appending; it rotates at max_bytes, keeping
 * `files` files in all (node.log, node.log.1, ...). */
int hcn_log_open(hcn_log *l, const char *home, int level, uint64_t max_bytes,
                 uint32_t files);
void hcn_log_close(hcn_log *l);
/* A printout from `who` (a process id or "kernel") at `verbosity`: written
 * to the log file always, to stderr when verbosity <= `shown_level`. */
void hcn_log_write(hcn_log *l, const char *who, int verbosity, int shown_level,
                   const char *text);
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
    /* Next monotonic deadline at which on_deadline must run, or -1. */
    int64_t (*next_deadline)(hcn_proc *self);
    void (*on_deadline)(hcn_proc *self, int64_t now);
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
    char *so_path; /* guest: the shared object */
    char *pkg_dir; /* guest: the package's pkg/ folder */
    pthread_t thread;
    bool has_thread;
    char *pending_so;        /* guest: a reinstall's binary, taken at the
                              * next start (under lock) */
    char *pending_pkg_dir;   /* and its pkg/ folder */
    atomic_int instance;     /* starts so far */
    atomic_int started_inst; /* the instance that has started (host.c:
                              * started), 0: none yet */
    int failures;            /* restarts counted in the give-up window */
    int64_t window_start_ns;
    int consecutive;    /* for backoff */
    atomic_bool reload; /* stop the instance and start the new binary */
    atomic_bool retire; /* stop the instance and leave the node */
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

/* spawn, on behalf of the guest of h (proc.c). */
hw_spawn_error hcn_spawn(hcn_host *h, const char *name, const char *path,
                         const hw_on_exit *on_exit, const hw_capability *rc,
                         size_t rc_len, const hw_process_id *gp,
                         const char *const *gparams, size_t g_len, bool public_,
                         hw_process_id *out);

/* A request that will get no answer from its target (gone, or its
 * instance stopped while answering): a timeout send error goes back to
 * the sender now, if it expects a response.  Borrows m. */
void hcn_proc_fail_request(hcn_node *n, hcn_msg *m);

/* Run a guest process's life on its own thread (proc.c). */
int hcn_proc_start_thread(hcn_proc *p);
/* Start a runtime module's thread. */
int hcn_module_start_thread(hcn_proc *p);

/* ---------------------------------------------------------- the node */

struct hcn_node {
    hc_node_config cfg;
    char *name;
    char *home;
    char *run_dir; /* <home>/run: per-instance copies of .so files */
    pthread_rwlock_t table_lock;
    hcn_proc *procs; /* uthash by id */
    hcn_log log;
    atomic_bool shutting_down;
    atomic_uint instance_seq;
    pthread_mutex_t life_mu;
    pthread_cond_t life_cv;
    int live_threads;
    char *state_db_path;
    /* control socket */
    int ctl_fd;
    char *ctl_path;
    pthread_t ctl_thread;
    bool has_ctl_thread;
    pthread_mutex_t ctl_mu; /* guards ctl_conns */
    int *ctl_conns;         /* open connection sockets, -1 = free slot */
    size_t ctl_nconns;
    hcn_proc *terminal;    /* terminal:terminal:sys, the injector */
    struct hcn_http *http; /* http-server:distro:sys (mod_http.c) */
};

/* The node's modules (publisher sys) queue this many times --mailbox-max
 * requests. */
#define HCN_MODULE_MAILBOX_FACTOR 64u

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
 * by m->source, `to_hint` the one named by m->target. */
void hcn_route_ex(hcn_node *n, hcn_proc *from_hint, hcn_proc *to_hint,
                  hcn_msg *m);

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

/* Sleep until deadline or node shutdown; returns false on shutdown. */
bool hcn_node_sleep_until(hcn_node *n, int64_t deadline_ns);

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
    size_t heap_idx;
    uint8_t small[32]; /* holds a context of up to 32 bytes */
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

/* Per-instance host state of a guest process; only its thread touches it. */
struct hcn_host {
    hcn_proc *proc;
    hcn_node *node;
    hwn_host table;
    hcn_msg *prompting;
    hcn_blob *last_blob;
    bool last_blobbed;
    hcn_ctx_entry *contexts;
    hcn_ctx_entry **heap;
    size_t heap_len, heap_cap;
    hcn_msg *deferred_head, *deferred_tail;
    uint64_t rng;
    hcn_ctx_entry *spare; /* released entries kept for reuse */
    unsigned nspare;
    hcn_proc *peers[8]; /* recently messaged processes (references) */
    unsigned peer_next;
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
    /* The mailbox closed while the process waited in a synchronous call:
     * that call fails so the guest can unwind; the next wait stops it. */
    bool closing_seen;
    bool start_told; /* the guest said it will tell when it has started */
    size_t saves;    /* set_state_start answers not yet delivered */
    bool started;    /* it has (or received, not having said) */
    /* Prompting messages the guest's tasks hold (prompting_hold); a NULL
     * slot is free. */
    hcn_msg **held;
    size_t nheld;
};

void hcn_host_init(hcn_host *h, hcn_proc *p);
void hcn_host_fini(hcn_host *h);

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
/* Around the guest's run on this thread: from enter to leave, a fault in
 * one of h's guards stops the instance by a jump to h->kill with
 * HCN_KILL_OVERFLOW.  leave gets the sigsetjmp value; after a jump it puts
 * the thread's sanitizer and memory state back in order. */
void hcn_fault_enter(hcn_host *h);
void hcn_fault_leave(hcn_host *h, int jumped);

/* Send a request from a host-internal source on behalf of h's process and
 * wait for the answer, as get/set/clear-state do (source
 * our@kernel:distro:sys, rsvp the process).  Returns HCC_EOK with *resp (a
 * response envelope, caller's reference) or HCC_ETIMEOUT. */
int hcn_host_kernel_call(hcn_host *h, const char *target_pid, const char *body,
                         hcn_blob *blob, uint64_t timeout_s, hcn_msg **resp);

/* -------------------------------------------------------- runtime modules */

int hcn_mod_state_add(hcn_node *n);
int hcn_mod_timer_add(hcn_node *n);
int hcn_mod_terminal_add(hcn_node *n);
int hcn_mod_vfs_add(hcn_node *n);
int hcn_mod_http_client_add(hcn_node *n);
int hcn_mod_homepage_add(hcn_node *n);

/* http-client:distro:sys (mod_http_client.c): HttpClientAction as serde
 * reads it. */
typedef enum hcn_hc_kind {
    HCN_HC_HTTP,
    HCN_HC_WS_OPEN,
    HCN_HC_WS_PUSH,
    HCN_HC_WS_CLOSE,
} hcn_hc_kind;

/* WsMessageType, in process_lib's order. */
typedef enum hcn_ws_type {
    HCN_WS_TEXT,
    HCN_WS_BINARY,
    HCN_WS_PING,
    HCN_WS_PONG,
    HCN_WS_CLOSE,
} hcn_ws_type;

typedef struct hcn_hc_header {
    char *name, *value;
} hcn_hc_header;

typedef struct hcn_hc_request {
    hcn_hc_kind kind;
    char *method;  /* Http */
    char *version; /* Http; NULL = none */
    char *url;     /* Http, WebSocketOpen */
    hcn_hc_header *headers;
    size_t nheaders;
    bool has_timeout; /* Http: the optional "timeout" (seconds) */
    uint64_t timeout_s;
    uint32_t channel_id;      /* WebSocket* */
    hcn_ws_type message_type; /* WebSocketPush */
} hcn_hc_request;

/* Parse a request body; 0, or -1 (Hyperware's MalformedRequest).  Release
 * a parsed request with hcn_hc_request_fini. */
int hcn_hc_parse(const void *body, size_t len, hcn_hc_request *out);
void hcn_hc_request_fini(hcn_hc_request *r);
/* Check an Http request as Hyperware does before sending it: NULL when it
 * may go, else the error reply (`{"Err":{"BadMethod":...}}`, BadUrl,
 * BadVersion), which the caller frees. */
char *hcn_hc_check_http(const hcn_hc_request *r);
/* A response header name as Hyperware reports it ("content-type" ->
 * "Content-Type"); caller frees. */
char *hcn_hc_header_case(const char *name, size_t len);
/* http-server:distro:sys: registers the module, listens on cfg.http_port
 * (when > 0) and starts its libuv thread; 0, or -1 with a message. */
int hcn_mod_http_add(hcn_node *n, char *err, size_t errlen);
/* Stop the server's thread and close every connection (shutdown). */
void hcn_mod_http_stop(hcn_node *n);

/* vfs:distro:sys (mod_vfs.c): VfsAction variants, in process_lib's order. */
typedef enum hcn_vfs_action {
    HCN_VFS_CREATE_DRIVE,
    HCN_VFS_CREATE_DIR,
    HCN_VFS_CREATE_DIR_ALL,
    HCN_VFS_CREATE_FILE,
    HCN_VFS_OPEN_FILE,
    HCN_VFS_CLOSE_FILE,
    HCN_VFS_WRITE,
    HCN_VFS_WRITE_ALL,
    HCN_VFS_APPEND,
    HCN_VFS_SYNC_ALL,
    HCN_VFS_READ,
    HCN_VFS_READ_DIR,
    HCN_VFS_READ_TO_END,
    HCN_VFS_READ_EXACT,
    HCN_VFS_READ_TO_STRING,
    HCN_VFS_SEEK,
    HCN_VFS_REMOVE_FILE,
    HCN_VFS_REMOVE_DIR,
    HCN_VFS_REMOVE_DIR_ALL,
    HCN_VFS_RENAME,
    HCN_VFS_METADATA,
    HCN_VFS_ADD_ZIP,
    HCN_VFS_COPY_FILE,
    HCN_VFS_LEN,
    HCN_VFS_SET_LEN,
    HCN_VFS_HASH,
} hcn_vfs_action;

/* A VfsRequest {path, action} as serde reads it. */
typedef struct hcn_vfs_request {
    hcn_vfs_action action;
    char *path;
    char *new_path; /* Rename, CopyFile */
    bool create;    /* OpenFile */
    uint64_t n;     /* ReadExact length, SetLen, Seek Start */
    int whence;     /* Seek: SEEK_SET, SEEK_END or SEEK_CUR */
    int64_t offset; /* Seek End / Current */
} hcn_vfs_request;

/* Parse a request body; 0, or -1 (Hyperware's MalformedRequest).  The
 * caller releases a parsed request with hcn_vfs_request_fini. */
int hcn_vfs_parse_request(const void *body, size_t len, hcn_vfs_request *out);
void hcn_vfs_request_fini(hcn_vfs_request *r);
/* Normalize a vfs path lexically ("/a:b//d/./x/../y" -> "a:b/d/y", no
 * leading '/'); NULL if ".." climbs above the vfs root.  Caller frees. */
char *hcn_vfs_normalize(const char *path);
/* Make a loaded package's pkg/ folder (a real path) its read-only drive
 * /<package_id>/pkg. */
void hcn_vfs_add_package(hcn_node *n, const char *package_id,
                         const char *pkg_dir);

/* Injector (terminal module): send `m` (a request from
 * our@terminal:terminal:sys) and wait up to timeout_ms for its answer.
 * Returns HCC_EOK with *resp (response envelope), HCC_ETIMEOUT/HCC_EOFFLINE
 * for a send error, or HCC_ETIMEOUT if nothing came. Fire-and-forget
 * requests (no expects) return HCC_EOK with *resp NULL at once. */
int hcn_inject(hcn_node *n, hcn_msg *m, int64_t timeout_ms, hcn_msg **resp);

/* Control socket (control.c). */
int hcn_control_start(hcn_node *n);
void hcn_control_stop(hcn_node *n);

/* Package loading (package.c), used by hc_node_load_package. */
int hcn_load_package(hcn_node *n, const char *dir, char *err, size_t errlen);
/* Install a package on a running node, or reinstall it: processes new to
 * the node start; present ones stop at their next receive (what was sent
 * to them stays queued, requests they were answering get a timeout error)
 * and start again from the new binary, keeping their state in
 * state:distro:sys; processes of the package no longer in its manifest
 * (spawned ones too) stop and leave.  Capabilities the manifest asks for
 * are granted (none are taken away).  Nothing changes when the package
 * does not parse or a binary is missing: -1 with a message in err.
 * Blocks until the restarted processes run again (at most 10 s; those
 * that did not are listed).  report gets package, installed, reinstalled,
 * removed and not_restarted.  Any thread but a process's own. */
struct json_t;
int hcn_install_package(hcn_node *n, const char *dir, struct json_t *report,
                        char *err, size_t errlen);

#endif
