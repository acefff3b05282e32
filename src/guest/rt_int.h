/* Internal to libhyperc's runtime, not installed: what its files share.
 * runtime.c (the arena, sends, dispatch and the main loop), rt_log.c
 * (logging), rt_state.c (state and save policies), rt_task.c (tasks and
 * their calls), rt_http.c (HTTP requests and WebSocket events) and
 * rt_bind.c (what a process binds as it starts).  Single threaded, as the
 * process is; everything goes through the process ABI. */
#ifndef HYPERC_RT_INT_H
#define HYPERC_RT_INT_H

#include "hyperc/runtime.h"

#include "../common/common.h"

#include "coro.h"
#include "host_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../common/hash.h" /* uthash, with its hash */

#define HPR_SAVE_TIMER_CONTEXT "hyperc:save-timer"
#define HPR_LOG_LINE_MAX 4096
#define HPR_LOG_FILE_DEFAULT_MAX (1024u * 1024u)

/* The process's runtime: one per process (runtime.c). */
struct hpr {
    const hp_process_impl *impl;
    /* the HTTP runtime (rt_http.c): the impl's, or set by the first
     * hp_http_bind/hp_ws_bind; NULL when the process serves no HTTP */
    const struct hp__http_runtime *http;
    hw_address our;
    hp_arena arena; /* for loading the state, before any task */
    bool state_new;
    /* tasks */
    struct hp_task *cur; /* running now */
    struct hp_task *ready_head, *ready_tail;
    struct hp_task *init_task;
    size_t live, max_tasks, stack;
    /* records kept for reuse (rt_task.c): ended tasks, each with its
     * arena's first chunk, and finished waits */
    struct hp_task *task_pool;
    size_t ntask_pool;
    struct hpr_wait *wait_pool;
    size_t nwait_pool;
    /* saving */
    char *last_saved;    /* the bytes saved last (OnDiff), NUL-terminated */
    uint64_t since_save; /* completed triggers since the last save */
    uint64_t save_seq;   /* saves started so far */
    bool saving;         /* a task's save is under way (rt_state.c) */
    struct hpr_save_group *save_next; /* tasks waiting for the next save */
    bool timer_armed;
    bool timer_broken;
    /* logging */
    bool log_ready;
    bool log_file;
    hp_log_level file_level, term_level;
    uint64_t file_max, file_size;
    char *log_path;
    bool log_busy;     /* a log write is under way: no recursion */
    bool trim_pending; /* the log file is over its size */
};

/* The runtime of the instance running on this thread (hp__inst()). */
#define hpr_rt (hp__inst()->rt)

typedef enum hpr_task_kind {
    HPR_TASK_REQUEST,   /* answers a request */
    HPR_TASK_INIT,      /* the app's init */
    HPR_TASK_SPAWNED,   /* hp_task_spawn */
    HPR_TASK_WS,        /* a WebSocket client event */
    HPR_TASK_HTTP,      /* an HTTP request from http-server */
    HPR_TASK_WS_SERVER, /* a WebSocket event from http-server */
} hpr_task_kind;

/* One outstanding request of a task, found by its context (a UUIDv4). */
typedef struct hpr_wait {
    char id[37];
    hp_task *task;
    hp_rpc_call_spec *spec; /* where the outcome goes */
    struct hpr_wait *next_of_task;
    UT_hash_handle hh;
} hpr_wait;

struct hp_task {
    hpr_task_kind kind;
    hp__coro *co;
    hp_arena arena;
    hw_address source; /* owned copy: in source_buf, or malloc'd (one block
                        * from source.node) when source_heap */
    bool source_heap;
    char source_buf[160];
    int prompting; /* the held prompting message (0: none) */
    /* its prompting message is the host's current one and not yet held:
     * a request's task until it first waits (it runs first after the
     * receive that brought it), which then holds it */
    bool hold_due;
    /* a request: its body (in the arena), whether it wants an answer, and
     * where it came from (HP_FROM_LOCAL or HP_FROM_REMOTE, told by the
     * receive that brought it) */
    const char *body;
    size_t body_len;
    bool expects_response;
    unsigned from;
    /* a spawned task */
    void (*fn)(void *arg);
    void *arg;
    bool detached;
    hp_task *joiner; /* waiting in hp_task_join */
    /* a WebSocket event (client or server) */
    uint32_t ws_channel;
    hp_ws_message_type ws_type;
    hw_blob ws_blob;
    const char *ws_path; /* server events: the binding's path */
    /* an HTTP request: what came, and the answer being built */
    const char *http_method, *http_path, *http_url;
    const hp_jv *http_headers, *http_query;
    uint16_t http_status;
    struct hpr_header {
        const char *name, *value;
    } * resp_headers;
    size_t nresp, capresp;
    hp_arena hdr_arena; /* the headers above (apart from the task's arena,
                         * which the handler may restore to a mark) */
    /* waiting */
    hpr_wait *waits; /* outstanding calls */
    size_t pending;
    bool waiting;
    bool finished;
    hp_task *next_ready;
    hp_task *next_saver; /* in a save group (rt_state.c) */
    hp_task *next_pool;  /* in hpr_rt.task_pool */
};

/* Tasks whose changes the next save carries: while one save is under way,
 * every task that saves joins the one group after it; a single save of
 * the state as it is then answers them all (rt_state.c). */
typedef struct hpr_save_group {
    hp_task *first, *last; /* linked by next_saver; first leads the save */
    bool only_if_changed;  /* every member asked only for a save on change */
    bool taken;            /* its save has begun */
    bool done;
    bool ok;
    unsigned refs; /* members still to read the outcome */
} hpr_save_group;

/* The current task waits until hpr_task_wake (it has no calls out). */
void hpr_task_park(void);
/* Make a parked task ready again (once per park). */
void hpr_task_wake(hp_task *t);

/* Outstanding calls of every task, by context (rt_task.c). */
#define hpr_waits (hp__inst()->waits)

/* ---- runtime.c */
/* Point a at node@proc:pkg:pub (borrows the strings). */
void hpr_addr_set(hw_address *a, char *node, const char *proc, const char *pkg,
                  const char *pub);
/* Send body to our node's proc:pkg:pub, optionally expecting a response
 * within timeout_s under `context`, with an optional blob. */
void hpr_send_to(const char *proc, const char *pkg, const char *pub,
                 const char *body, bool expects, uint64_t timeout_s,
                 const char *context, const uint8_t *blob, size_t blob_len);
/* {"HypercError":{"kind":...,"message":...}} into w (what it held is
 * dropped). */
void hpr_error_body(hp_jw *w, const char *kind, const char *msg);
/* One request to the node's module `proc` (http-server, http-client...),
 * waited for (timeout_s): HP_RPC_OK when it answered {"Ok": ...}, else
 * HP_RPC_REJECTED with "<who>: <its answer><hint>", or the call's error.
 * From a task; the message lives in the task's arena. */
hp_rpc_error hpr_module_action(const char *proc, const char *body,
                               const void *blob, size_t blob_len,
                               uint64_t timeout_s, const char *who,
                               const char *hint);
/* The hp_ws_message_type a WsMessageType JSON string names, or -1. */
int hpr_ws_type_of(const hp_jv *t);

/* ---- rt_log.c */
/* Cut the log file back under its size when it went over (outside a
 * write). */
void hpr_log_file_trim(void);

/* ---- rt_state.c */
/* Load the stored state (migrating it) into the app's state; false when
 * it cannot be loaded (the process must not start). */
bool hpr_state_load(void);
/* Save the state now (only when it changed since the last save, if
 * asked); false when the save failed (logged). */
bool hpr_state_save(bool only_if_changed);
/* A handler completed: save as the policy says. */
void hpr_state_trigger(void);
/* Arm the EveryNSeconds timer if the policy has one and it is not armed. */
void hpr_timer_arm(void);

/* ---- rt_task.c */
/* Whether a is the module proc:distro:sys (any process of distro:sys when
 * proc is NULL); the node is not looked at. */
bool hpr_is_module(const hw_address *a, const char *proc);
/* A new task of a kind for a message from source (copied); NULL at the
 * task limit. */
hp_task *hpr_task_new(hpr_task_kind kind, const hw_address *source);
void hpr_task_free(hp_task *t);
/* Make t runnable. */
void hpr_ready_push(hp_task *t);
/* Run every ready task until each waits or ends. */
void hpr_run_ready(void);
/* Answer t's request: rc and the body w (or the refusal's error body). */
void hpr_reply(hp_task *t, hp_refusal rc, const hp_jw *w);
/* The outcome of a call found by its context: a response (parsed into the
 * task's arena) or a send error. */
void hpr_wait_complete(hpr_wait *w, const hw_receive_result *r);
/* Save bytes as the state from the running task, which waits for the
 * answer while the process serves others: 1 stored, 0 not (logged), -1
 * cannot here (outside a task, or the host lacks it: use hw_set_state). */
int hpr_state_save_wait(const uint8_t *bytes, size_t len);

/* ---- rt_http.c */
/* What the rest of the runtime reaches the HTTP part through (hpr_rt.http),
 * so that a process that serves no HTTP links none of it. */
struct hp__http_runtime {
    hp_task *(*server_task)(hw_receive_result *r); /* hpr_http_server_task */
    void (*dispatch)(hp_task *t, hp_jw *w);        /* hpr_http_dispatch */
    void (*answer)(hp_task *t, const hp_jw *body); /* hpr_http_answer */
    void (*bind_all)(void);                        /* hpr_bind_all */
};
/* A task for an http-server request or WebSocket event; NULL when the
 * message was answered here (refused, or at the task limit). */
hp_task *hpr_http_server_task(hw_receive_result *r);
/* Run the handler an HTTP request routes to, its answer into w. */
void hpr_http_dispatch(hp_task *t, hp_jw *w);
/* Send the HTTP response for t's request (status, headers, body). */
void hpr_http_answer(hp_task *t, const hp_jw *body);

/* ---- rt_bind.c */
/* Bind the process's endpoints, handler paths, UI and homepage tile (run
 * in the init task, before the app's init). */
void hpr_bind_all(void);

/* ---- inst.c: the instance */
/* The coroutine scheduler's state (coro_native.c). */
typedef struct hp__coro_state {
    hp__coro *current; /* running now, NULL on the scheduler */
    void *sched_sp;    /* the scheduler's stack pointer while one runs */
    hp__coro *cache;   /* freed coroutines kept for reuse */
    unsigned ncache;
    hp__coro_guard_add_fn guard_add;
    hp__coro_guard_remove_fn guard_remove;
    /* the scheduler's stack as AddressSanitizer knows it (HP_ASAN only;
     * kept in every build so that the layout does not depend on it) */
    const void *sched_stack_lo;
    size_t sched_stack_size;
} hp__coro_state;

/* Buffers kept by json_write.c (its JW_POOL_MAX is at most this). */
#define HP__JW_POOL_SLOTS 3

struct hwn_host;
struct hpr_channel;

/* Every mutable thing of libhyperc's runtime, one per instance of a
 * process, so that one copy of the runtime's code serves every instance
 * of every process in the node (docs/architecture.md, Instances).  Its
 * storage is the instance's own (entry_native.c: a static of the process's
 * shared object); its layout is part of HWN_RUNTIME_ABI. */
typedef struct hp__instance {
    const struct hwn_host *hwn; /* abi_native.c: the host table */
    struct hpr rt;              /* runtime.c */
    hpr_wait *waits;            /* rt_task.c: calls out, by context */
    uint64_t rand_state;        /* rt_task.c: the UUID generator */
    bool rand_seeded;
    char id_next[37];             /* rt_task.c: the next call's id */
    struct hpr_channel *channels; /* rt_http.c: WebSocket channels */
    struct {
        char *buf;
        size_t cap;
    } jw_pool[HP__JW_POOL_SLOTS]; /* json_write.c */
    int jw_npool;
    hp__coro_state coro; /* coro_native.c */
} hp__instance;

/* The instance running on this thread: the one the host entered last
 * (hp__instance_run, and the node at every switch to a process's fiber),
 * or a process-wide one where nobody set any (a runtime linked statically
 * into a test, wasm32).  Within an instance it is the same pointer whatever
 * the thread, so callers may keep it; what no caller may keep is the
 * thread-local slot's address, as a fiber may resume on another thread.  So
 * on x86_64 it is read with one %fs-relative load the compiler cannot
 * split (the asm may be merged with another of the same function, which
 * then yields the same instance), elsewhere by a call that is never
 * inlined. */
#if defined(__x86_64__) && !defined(__wasm__)
extern __thread hp__instance *hp__running
    __attribute__((visibility("hidden"), tls_model("initial-exec")));
static inline hp__instance *hp__inst(void)
{
    hp__instance *i;
    __asm__("movq hp__running@gottpoff(%%rip), %0\n\t"
            "movq %%fs:(%0), %0"
            : "=r"(i));
    return i;
}
#else
hp__instance *hp__inst(void) __attribute__((const));
#endif

/* Run an instance (a process's hwn_entry, entry_native.c): check the host's
 * table h, make inst (zeroed, of size bytes, laid out for runtime_abi) the
 * running instance, call init(our) (the process's hw_init) and return 0
 * when it returns; -1 at once when h, size or runtime_abi do not fit this
 * runtime. */
int hp__instance_run(hp__instance *inst, size_t size, uint32_t runtime_abi,
                     const struct hwn_host *h, const char *our,
                     void (*init)(const char *our));

#endif
