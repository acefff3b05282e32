/* Tasks under test: handlers that wait (sleep, call other instances of
 * this process through its own generated stubs, fan out, cancel), run as
 * coroutine tasks while the process goes on handling messages.  Instances
 * a, b and c of this binary run in package ttasks. */
#include <hyperc/hyperprocess.h>

/* Its own stubs are generated from this file: the generator reads it
 * without them (it skips function bodies, where they are used). */
#ifndef HYPERC_GEN
#include "tasker_caller_utils.h"
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef HP_LIST(char *) name_list;
typedef HP_LIST(uint64_t) u64_list;

typedef struct tasker_state {
    uint64_t served;
    uint64_t init_got;
} tasker_state;

HYPERPROCESS(tasker_state, .name = "tasker", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "ttasks-v0",
             .max_tasks = 20000, .task_stack_kib = 32);

static hw_address peer(const char *name)
{
    hw_address a = {.node = hp_our()->node,
                    .process = {(char *)name, "ttasks", "test.os"}};
    return a;
}

static char *outcome(hp_rpc_error e, uint64_t v)
{
    if (e.kind == HP_RPC_OK)
        return hp_sprintf("Ok %" PRIu64, v);
    return hp_sprintf("%s: %s", hp_rpc_kind_name(e.kind), e.message);
}

/* Instance a asks b at start: init waits, messages are served meanwhile. */
HP_INIT
static void init(tasker_state *s)
{
    if (strcmp(hp_our()->process.process_name, "a") != 0)
        return;
    hw_address b = peer("b");
    tasker_sleep_then_result r = sleep_then_local_rpc(&b, 5000, 7);
    s->init_got = r.err.kind == HP_RPC_OK ? r.value : 0;
    hp_log_info("init got %" PRIu64, s->init_got);
}

HP_LOCAL
static uint64_t ping(tasker_state *s)
{
    return ++s->served;
}

/* One hp_log_debug line (shown and kept by the node at verbosity 3 only). */
HP_LOCAL
static uint64_t debug_line(tasker_state *s, const char *text)
{
    hp_log_debug("said: %s", text);
    return ++s->served;
}

HP_LOCAL
static uint64_t init_result(const tasker_state *s)
{
    return s->init_got;
}

/* Wait ms, then answer tag. */
HP_LOCAL
static uint64_t sleep_then(tasker_state *s, uint64_t ms, uint64_t tag)
{
    (void)s;
    hp_sleep_ms(ms);
    return tag;
}

/* Hold the process's thread ms milliseconds, as a handler stuck in a long
 * computation or a synchronous call does: no task switch, so requests
 * queue in its mailbox meanwhile. */
HP_LOCAL
static uint64_t block(tasker_state *s, uint64_t ms)
{
    (void)s;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return ms;
}

/* Call `target`'s sleep_then(ms, tag) with a timeout. */
HP_LOCAL
static char *ask(tasker_state *s, const char *target, uint64_t ms, uint64_t tag,
                 uint64_t timeout_s)
{
    (void)s;
    hw_address to = peer(target);
    hp_rpc_opts o = {.timeout_s = timeout_s};
    tasker_sleep_then_result r = sleep_then_local_rpc_opt(&to, ms, tag, &o);
    return outcome(r.err, r.value);
}

/* n calls to target: Ping (a number: the stub keeps nothing of the reply)
 * or, when `text`, WhoAfter(0) (a string, in the task's arena), back to an
 * arena mark after each when `restore`; the bytes the task's arena holds
 * at the end. */
HP_LOCAL
static uint64_t call_loop(tasker_state *s, const char *target, uint64_t n,
                          bool restore, bool text)
{
    (void)s;
    hw_address to = peer(target);
    for (uint64_t i = 0; i < n; i++) {
        hp_arena_mark m = hp_arena_save(hp_message_arena());
        hp_rpc_error e = text ? tasker_who_after_local_rpc(&to, 0).err
                              : tasker_ping_local_rpc(&to).err;
        if (e.kind != HP_RPC_OK)
            return 0;
        if (restore)
            hp_arena_restore(hp_message_arena(), m);
    }
    return hp_message_arena()->total;
}

/* A -> B -> C ...: each hop adds one. */
HP_LOCAL
static uint64_t chain(tasker_state *s, const name_list *hops, uint64_t v)
{
    (void)s;
    if (hops->len == 0)
        return v;
    hw_address to = peer(hops->ptr[0]);
    tasker_name_list rest = {hops->ptr + 1, hops->len - 1};
    tasker_chain_result r = chain_local_rpc(&to, &rest, v + 1);
    return r.err.kind == HP_RPC_OK ? r.value : UINT64_MAX;
}

/* Sleep requests to several targets at once, each its own outcome. */
HP_LOCAL
static name_list fanout(tasker_state *s, const name_list *targets,
                        const u64_list *ms, uint64_t timeout_s)
{
    (void)s;
    size_t n = targets->len < ms->len ? targets->len : ms->len;
    hp_rpc_call_spec *c = hp_alloc((n ? n : 1) * sizeof *c);
    hw_address *to = hp_alloc((n ? n : 1) * sizeof *to);
    for (size_t i = 0; i < n; i++) {
        to[i] = peer(targets->ptr[i]);
        c[i].target = &to[i];
        c[i].body =
            hp_sprintf("{\"SleepThen\":[%" PRIu64 ",%zu]}", ms->ptr[i], i);
        c[i].len = strlen(c[i].body);
    }
    hp_rpc_opts o = {.timeout_s = timeout_s};
    hp_rpc_fanout(c, n, &o);
    name_list out = {hp_alloc((n ? n : 1) * sizeof(char *)), n};
    for (size_t i = 0; i < n; i++)
        out.ptr[i] = c[i].err.kind == HP_RPC_OK
                         ? hp_sprintf("Ok %s", c[i].reply->str)
                         : outcome(c[i].err, 0);
    return out;
}

/* Two calls with contexts of the caller's own: each comes back with its
 * outcome. */
HP_LOCAL
static name_list contexts(tasker_state *s, const char *target)
{
    (void)s;
    hw_address to = peer(target);
    static const char *const mine[] = {"first", "second"};
    hp_rpc_call_spec c[2];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 2; i++) {
        c[i].target = &to;
        c[i].body = hp_sprintf("{\"SleepThen\":[%d,%d]}", 100 - 90 * i, i);
        c[i].len = strlen(c[i].body);
        c[i].context = (const uint8_t *)mine[i];
        c[i].context_len = strlen(mine[i]);
    }
    hp_rpc_fanout(c, 2, NULL);
    name_list out = {hp_alloc(2 * sizeof(char *)), 2};
    for (int i = 0; i < 2; i++)
        out.ptr[i] = hp_sprintf("%s %.*s", c[i].reply ? c[i].reply->str : "-",
                                (int)c[i].context_back.len,
                                (const char *)c[i].context_back.ptr);
    return out;
}

typedef struct sleeper {
    uint64_t ms;
    hp_rpc_error err;
} sleeper;

static void sleep_task(void *arg)
{
    sleeper *z = arg;
    z->err = hp_sleep_ms(z->ms);
}

/* A sub-task sleeps ms; after 50 ms it is cancelled and joined. */
HP_LOCAL
static char *cancel_sleep(tasker_state *s, uint64_t ms)
{
    (void)s;
    sleeper *z = hp_alloc(sizeof *z);
    z->ms = ms;
    hp_task *t = hp_task_spawn(sleep_task, z);
    hp_sleep_ms(50);
    bool was = hp_task_cancel(t);
    hp_task_join(t);
    return hp_sprintf("%s %s", was ? "cancelled" : "not-waiting",
                      hp_rpc_kind_name(z->err.kind));
}

/* Who sent this, before and after a wait. */
HP_LOCAL
static char *who_after(tasker_state *s, uint64_t ms)
{
    (void)s;
    char before[300], after[300];
    hw_address_format(hp_source(), before, sizeof before);
    hp_sleep_ms(ms);
    hw_address_format(hp_source(), after, sizeof after);
    return hp_sprintf("%s|%s", before, after);
}

/* n sub-tasks waiting at once (each sleeps ms); returns how many slept. */
HP_LOCAL
static uint64_t flood(tasker_state *s, uint64_t n, uint64_t ms)
{
    (void)s;
    sleeper *z = hp_alloc((n ? n : 1) * sizeof *z);
    hp_task **t = hp_alloc((n ? n : 1) * sizeof *t);
    uint64_t started = 0, ok = 0;
    for (uint64_t i = 0; i < n; i++) {
        z[i].ms = ms;
        t[i] = hp_task_spawn(sleep_task, &z[i]);
        started += t[i] != NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        if (t[i]) {
            hp_task_join(t[i]);
            ok += z[i].err.kind == HP_RPC_OK;
            if (z[i].err.kind != HP_RPC_OK)
                hp_log_info("flood: sleep %" PRIu64 ": %s %s", i,
                            hp_rpc_kind_name(z[i].err.kind),
                            z[i].err.message ? z[i].err.message : "");
        }
    hp_log_info("flood: %" PRIu64 " started, %" PRIu64 " slept", started, ok);
    return ok;
}
