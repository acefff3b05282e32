/* libhyperc runtime: tasks on coroutines, and their calls to other processes
 * (contexts, waits, fan-outs, sleeps).  Internal (rt_int.h). */
#include "rt_int.h"

#include "../common/abi_types.h"

#include <stddef.h>

/* ------------------------------------------------------------------ tasks */

bool hpr_is_module(const hw_address *a, const char *proc)
{
    return strcmp(a->process.package_name, "distro") == 0 &&
           strcmp(a->process.publisher_node, "sys") == 0 &&
           (proc == NULL || strcmp(a->process.process_name, proc) == 0);
}

/* uthash frees a table when its last entry goes and allocates it again
 * (buckets and all) with the next: with one call at a time, at every
 * call.  This entry (id all NULs, no task: no context of ours has that
 * id) stays in the table from the first call on, so it never empties. */
static void waits_anchor(void)
{
    hpr_wait *a = calloc(1, sizeof *a);
    if (a != NULL)
        HASH_ADD(hh, hpr_waits, id, 36, a);
}

void hpr_ready_push(hp_task *t)
{
    t->next_ready = NULL;
    if (hpr_rt.ready_tail)
        hpr_rt.ready_tail->next_ready = t;
    else
        hpr_rt.ready_head = t;
    hpr_rt.ready_tail = t;
}

/* Ended tasks kept for the next ones (a task per request: no calloc,
 * arena chunk or free per message); beyond this many they are freed.
 * Finished waits likewise.  Under AddressSanitizer none are kept, so that
 * a use of an ended task's or wait's record is reported. */
#ifdef HP_ASAN
#define TASK_POOL_MAX 0
#define WAIT_POOL_MAX 0
#else
#define TASK_POOL_MAX 32
#define WAIT_POOL_MAX 128
#endif
/* An arena that grew past this is freed whole, not kept with the record. */
#define TASK_POOL_ARENA_MAX ((size_t)16 * 1024)

static void wait_release(hpr_wait *w)
{
    if (hpr_rt.nwait_pool + 1 <= WAIT_POOL_MAX) {
        w->next_of_task = hpr_rt.wait_pool;
        hpr_rt.wait_pool = w;
        hpr_rt.nwait_pool++;
    } else {
        free(w);
    }
}

/* Empty an arena for the record's next task: its first chunk is kept if
 * it stayed small. */
static void arena_recycle(hp_arena *a)
{
    if (a->total <= TASK_POOL_ARENA_MAX)
        hp_arena_reset(a);
    else
        hp_arena_fini(a);
}

void hpr_task_free(hp_task *t)
{
    for (hpr_wait *w = t->waits, *nx; w; w = nx) {
        nx = w->next_of_task;
        HASH_DEL(hpr_waits, w);
        wait_release(w);
    }
    if (t->source_heap)
        hw_address_fini(&t->source);
    if (t->kind == HPR_TASK_WS || t->kind == HPR_TASK_WS_SERVER)
        hw_blob_fini(&t->ws_blob);
    hp__prompting_release(t->prompting);
    hp__coro_free(t->co);
    /* Init ran once (and deep): a process idle after it keeps neither its
     * stack nor its record. */
    bool keep = t->kind != HPR_TASK_INIT;
    if (!keep)
        hp__coro_cache_release();
    if (keep && hpr_rt.ntask_pool + 1 <= TASK_POOL_MAX) {
        arena_recycle(&t->arena);
        arena_recycle(&t->hdr_arena);
        t->next_pool = hpr_rt.task_pool;
        hpr_rt.task_pool = t;
        hpr_rt.ntask_pool++;
    } else {
        hp_arena_fini(&t->arena);
        hp_arena_fini(&t->hdr_arena);
        free(t);
    }
    hp__tasks(--hpr_rt.live);
}

/* A copy of the (host-validated) source in t: in t's own buffer when it
 * fits, else one malloc'd block. */
static void source_copy(hp_task *t, const hw_address *source)
{
    const hw_process_id *pid = &source->process;
    const char *src[4] = {source->node, pid->process_name, pid->package_name,
                          pid->publisher_node};
    size_t len[4], total = 0;
    for (int i = 0; i < 4; i++)
        total += (len[i] = strlen(src[i])) + 1;
    if (total > sizeof t->source_buf) {
        t->source_heap =
            hcc_address_from_parts(src[0], len[0], src[1], len[1], src[2],
                                   len[2], src[3], len[3], &t->source) == 0;
        if (!t->source_heap)
            memset(&t->source, 0, sizeof t->source);
        return;
    }
    char *dst[4];
    char *p = t->source_buf;
    for (int i = 0; i < 4; i++) {
        dst[i] = p;
        memcpy(p, src[i], len[i] + 1);
        p += len[i] + 1;
    }
    hpr_addr_set(&t->source, dst[0], dst[1], dst[2], dst[3]);
}

static void task_main(void *arg);

hp_task *hpr_task_new(hpr_task_kind kind, const hw_address *source)
{
    if (hpr_rt.live >= hpr_rt.max_tasks)
        return NULL;
    hp_task *t = hpr_rt.task_pool;
    if (t != NULL) {
        hpr_rt.task_pool = t->next_pool;
        hpr_rt.ntask_pool--;
        /* all but the arenas (emptied, a chunk kept) and the source
         * buffer (overwritten below) */
        hp_arena a = t->arena, h = t->hdr_arena;
        memset(t, 0, offsetof(hp_task, source_buf));
        memset((char *)t + offsetof(hp_task, prompting), 0,
               sizeof *t - offsetof(hp_task, prompting));
        t->arena = a;
        t->hdr_arena = h;
    } else {
        t = calloc(1, sizeof *t);
        if (t == NULL)
            return NULL;
        hp_arena_init(&t->arena);
        hp_arena_init(&t->hdr_arena);
    }
    t->kind = kind;
    t->co = hp__coro_create(hpr_rt.stack, task_main, t);
    if (t->co == NULL) {
        hp_arena_fini(&t->arena);
        hp_arena_fini(&t->hdr_arena);
        free(t);
        return NULL;
    }
    if (source)
        source_copy(t, source);
    hp__tasks(++hpr_rt.live);
    return t;
}

/* Wait until every outstanding call of the current task has its outcome
 * (or a cancel, or a joined task's end). */
static void task_wait(void)
{
    hp_task *t = hpr_rt.cur;
    if (t->hold_due) { /* others run before it resumes: keep its message */
        t->prompting = hp__prompting_hold();
        t->hold_due = false;
    }
    t->waiting = true;
    hp__coro_yield();
    t->waiting = false;
}

void hpr_task_park(void)
{
    task_wait();
}

void hpr_task_wake(hp_task *t)
{
    if (t->waiting && t->pending == 0)
        hpr_ready_push(t);
}

void hpr_reply(hp_task *t, hp_refusal rc, const hp_jw *w)
{
    if (!t->expects_response)
        return;
    hw_response resp;
    memset(&resp, 0, sizeof resp);
    resp.body.ptr = (uint8_t *)(w->buf ? w->buf : "");
    resp.body.len = w->len;
    if (rc != HP_REFUSAL_OK)
        resp.metadata = "{\"hyperc\":\"error\"}";
    hw_send_response(&resp, NULL);
}

static void task_main(void *arg)
{
    hp_task *t = arg;
    const hp_process_impl *im = hpr_rt.impl;
    switch (t->kind) {
    case HPR_TASK_REQUEST: {
        /* on_request sends http-server's messages elsewhere */
        unsigned src = t->from;
        hp_jw w;
        hp_jw_init(&w);
        hp_refusal rc =
            hp_process_dispatch(im, &t->arena, src, t->body, t->body_len, &w);
        /* saved after the handler completed, awaits included, and before
         * the answer: a caller that has the answer finds the state stored */
        if (rc == HP_REFUSAL_OK)
            hpr_state_trigger();
        hpr_reply(t, rc, &w);
        hp_jw_fini(&w);
        break;
    }
    case HPR_TASK_INIT:
        if (hpr_rt.http)
            hpr_rt.http->bind_all();
        if (im->init)
            im->init(im->state);
        /* init's changes are saved if there are any (Rust's OnDiff misses
         * them: framework.md §10) */
        if (im->decl->save_config.kind != HP_SAVE_KIND_NEVER)
            hpr_state_save(true);
        hp__started(true);
        break;
    case HPR_TASK_SPAWNED: t->fn(t->arg); break;
    case HPR_TASK_WS:
        im->ws_client(im->state, t->ws_channel, t->ws_type, &t->ws_blob);
        hpr_state_trigger();
        break;
    case HPR_TASK_WS_SERVER:
        im->ws(im->state, t->ws_channel, t->ws_type, &t->ws_blob);
        hpr_state_trigger();
        break;
    case HPR_TASK_HTTP: {
        hp_jw w;
        hp_jw_init(&w);
        t->http_status = 200;
        hpr_rt.http->dispatch(t, &w); /* HTTP tasks come from it */
        if (t->http_status < 400)
            hpr_state_trigger();
        if (t->expects_response)
            hpr_rt.http->answer(t, &w);
        hp_jw_fini(&w);
        break;
    }
    }
    t->finished = true;
    if (t->joiner)
        hpr_ready_push(t->joiner);
}

/* Run every ready task until each waits or ends. */
void hpr_run_ready(void)
{
    while (hpr_rt.ready_head) {
        hp_task *t = hpr_rt.ready_head;
        hpr_rt.ready_head = t->next_ready;
        if (hpr_rt.ready_head == NULL)
            hpr_rt.ready_tail = NULL;
        /* the task answers its own request, whatever came meanwhile */
        hp__prompting_set(t->prompting);
        hpr_rt.cur = t;
        hp__coro_resume(t->co);
        hpr_rt.cur = NULL;
        if (t->finished && (t->kind != HPR_TASK_SPAWNED || t->detached))
            hpr_task_free(t);
    }
}

hp_task *hp_task_current(void)
{
    return hpr_rt.cur;
}

hp_task *hp_task_spawn(void (*fn)(void *arg), void *arg)
{
    hp_task *t = hpr_task_new(HPR_TASK_SPAWNED, hp_source());
    if (t == NULL)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    /* it answers nothing, but sends on behalf of the spawner */
    t->prompting = hpr_rt.cur ? hp__prompting_hold() : 0;
    hpr_ready_push(t);
    return t;
}

void hp_task_join(hp_task *t)
{
    if (t == NULL || hpr_rt.cur == NULL || t == hpr_rt.cur)
        return;
    if (!t->finished) {
        t->joiner = hpr_rt.cur;
        task_wait();
    }
    hpr_task_free(t);
}

void hp_task_detach(hp_task *t)
{
    if (t == NULL)
        return;
    if (t->finished)
        hpr_task_free(t);
    else
        t->detached = true;
}

/* ------------------------------------------------------------ rpc calls */

static const char *const rpc_kind_names[] = {
#define HP_RPC_KIND_TEXT(name, text) text,
    HP_RPC_KIND_MAP(HP_RPC_KIND_TEXT)
#undef HP_RPC_KIND_TEXT
};

const char *hp_rpc_kind_name(hp_rpc_kind k)
{
    if ((unsigned)k < sizeof rpc_kind_names / sizeof rpc_kind_names[0])
        return rpc_kind_names[k];
    return "Unknown";
}

static hp_rpc_error rpc_err(hp_rpc_kind k, const char *msg)
{
    hp_rpc_error e = {k, msg};
    return e;
}

/* 64 random bits: splitmix64 over a seed taken once from the system
 * (getentropy costs a system call, and a call is made per request). */
static uint64_t rand64(void)
{
    hp__instance *in = hp__inst();
    uint64_t state = in->rand_state;
    if (!in->rand_seeded) {
        if (getentropy(&state, sizeof state) != 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                    (uint64_t)(uintptr_t)&state;
        }
        in->rand_seeded = true;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    in->rand_state = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A fresh UUIDv4 as 36 characters (the correlation id of a request). */
static void uuid4(char out[37])
{
    uint8_t b[16];
    uint64_t x = rand64(), y = rand64();
    memcpy(b, &x, 8);
    memcpy(b + 8, &y, 8);
    b[6] = (uint8_t)((b[6] & 0x0F) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3F) | 0x80);
    static const char hex[] = "0123456789abcdef";
    /* where byte i's two digits go: 8-4-4-4-12 */
    static const unsigned char at[16] = {0,  2,  4,  6,  9,  11, 14, 16,
                                         19, 21, 24, 26, 28, 30, 32, 34};
    for (int i = 0; i < 16; i++) {
        out[at[i]] = hex[b[i] >> 4];
        out[at[i] + 1] = hex[b[i] & 15];
    }
    out[8] = out[13] = out[18] = out[23] = '-';
    out[36] = '\0';
}

/* The next call's correlation id: a UUIDv4 drawn at the process's first
 * call, its last 12 hex digits then counted up (an odometer) for each
 * call, so that ids stay unique within the process's life without 128
 * fresh bits formatted per call; drawn again if the count wraps (after
 * 2^48 calls).  Ids of an earlier life of the process (a reply that comes
 * after a restart) differ by their random part. */
#define id_next (hp__inst()->id_next)

static void id_take(char out[37])
{
    if (id_next[0] == '\0')
        uuid4(id_next);
    memcpy(out, id_next, 37);
    for (int i = 35; i >= 24; i--) {
        char c = id_next[i];
        if (c == 'f') {
            id_next[i] = '0'; /* carry into the digit before */
            continue;
        }
        id_next[i] = c == '9' ? 'a' : (char)(c + 1);
        return;
    }
    uuid4(id_next); /* all 12 wrapped */
}

/* Register a wait of the running task for spec's outcome; its context
 * (our correlation id, then the caller's own bytes) into *ctx.  NULL when
 * out of memory (spec->err says so). */
static hpr_wait *wait_add(hp_rpc_call_spec *spec, hw_bytes *ctx)
{
    hp_task *t = hpr_rt.cur;
    hpr_wait *w = hpr_rt.wait_pool;
    if (w != NULL) {
        hpr_rt.wait_pool = w->next_of_task;
        hpr_rt.nwait_pool--;
        memset(w, 0, sizeof *w);
    } else {
        w = calloc(1, sizeof *w);
    }
    if (w == NULL) {
        spec->err = rpc_err(HP_RPC_BUILD, "out of memory");
        return NULL;
    }
    id_take(w->id);
    w->task = t;
    w->spec = spec;
    ctx->ptr = (uint8_t *)w->id;
    ctx->len = 36;
    if (spec->context_len > 0) {
        uint8_t *both = hp_arena_alloc(&t->arena, 36 + spec->context_len);
        if (both == NULL) {
            wait_release(w);
            spec->err = rpc_err(HP_RPC_BUILD, "out of memory");
            return NULL;
        }
        memcpy(both, w->id, 36);
        memcpy(both + 36, spec->context, spec->context_len);
        ctx->ptr = both;
        ctx->len = 36 + spec->context_len;
    }
    if (hpr_waits == NULL)
        waits_anchor();
    HASH_ADD(hh, hpr_waits, id, 36, w);
    w->next_of_task = t->waits;
    t->waits = w;
    t->pending++;
    return w;
}

static bool wait_send(hp_rpc_call_spec *spec, uint64_t timeout)
{
    hw_bytes ctx;
    if (wait_add(spec, &ctx) == NULL)
        return false;
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = true;
    req.expects_response = timeout;
    req.body.ptr = (uint8_t *)spec->body;
    req.body.len = spec->len;
    hw_blob blob;
    memset(&blob, 0, sizeof blob);
    blob.mime = (char *)spec->blob_mime;
    blob.bytes.ptr = (uint8_t *)spec->blob;
    blob.bytes.len = spec->blob_len;
    hw_send_request(spec->target, &req, &ctx, spec->blob ? &blob : NULL);
    return true;
}

static void wait_unlink(hpr_wait *w);

int hpr_state_save_wait(const uint8_t *bytes, size_t len)
{
    if (hpr_rt.cur == NULL)
        return -1;
    hw_address state;
    hpr_addr_set(&state, hpr_rt.our.node, "state", "distro", "sys");
    hp_rpc_call_spec spec = {.target = &state, .body = "", .len = 0};
    hw_bytes ctx;
    hpr_wait *w = wait_add(&spec, &ctx);
    if (w == NULL)
        return 0;
    if (!hp__set_state_start(bytes, len, &ctx, 5)) {
        wait_unlink(w);
        return -1;
    }
    task_wait();
    if (spec.err.kind != HP_RPC_OK || spec.reply == NULL ||
        spec.reply->kind != HP_JV_STRING ||
        strcmp(spec.reply->str, "SetState") != 0) {
        hp_log_error("set-state: %s",
                     spec.err.kind != HP_RPC_OK && spec.err.message
                         ? spec.err.message
                         : "the state module refused it");
        return 0;
    }
    return 1;
}

static void wait_unlink(hpr_wait *w)
{
    hp_task *t = w->task;
    for (hpr_wait **pp = &t->waits; *pp; pp = &(*pp)->next_of_task)
        if (*pp == w) {
            *pp = w->next_of_task;
            break;
        }
    HASH_DEL(hpr_waits, w);
    wait_release(w);
    if (--t->pending == 0 && t->waiting)
        hpr_ready_push(t);
}

/* The outcome of a call found by its context: a response (parsed into the
 * task's arena) or a send error. */
void hpr_wait_complete(hpr_wait *w, const hw_receive_result *r)
{
    hp_rpc_call_spec *s = w->spec;
    hp_arena *a = &w->task->arena;
    const hw_address *to = s->target;
    if (r->is_err) {
        bool offline = r->error.kind == HW_SEND_ERROR_OFFLINE;
        s->err.kind = offline ? HP_RPC_OFFLINE : HP_RPC_TIMEOUT;
        s->err.message = hp_arena_sprintf(
            a, offline ? "%s@%s:%s:%s is offline" : "no reply from %s@%s:%s:%s",
            to->node, to->process.process_name, to->process.package_name,
            to->process.publisher_node);
    } else {
        const char *perr = NULL;
        hp_jv *j = hp_json_parse(a, (const char *)r->message.response.body.ptr,
                                 r->message.response.body.len, &perr);
        const hp_jv *he = j ? hp_jv_get(j, "HypercError") : NULL;
        if (r->message.response.body.len == 0 && j == NULL) {
            s->err = rpc_err(HP_RPC_OK, NULL); /* an empty reply (timers) */
        } else if (j == NULL) {
            s->err.kind = HP_RPC_DECODE;
            s->err.message = hp_jd_wrap(a, "the reply is not JSON", perr);
        } else if (he != NULL && j->len == 1) {
            const hp_jv *k = hp_jv_get(he, "kind");
            const hp_jv *m = hp_jv_get(he, "message");
            s->err.kind = HP_RPC_REJECTED;
            s->err.message = hp_arena_sprintf(
                a, "%s: %s", k && k->kind == HP_JV_STRING ? k->str : "?",
                m && m->kind == HP_JV_STRING ? m->str : "");
        } else {
            s->err = rpc_err(HP_RPC_OK, NULL);
            s->reply = j;
        }
    }
    wait_unlink(w);
}

bool hp_task_cancel(hp_task *t)
{
    if (t == NULL || t->waits == NULL)
        return false;
    while (t->waits) {
        hpr_wait *w = t->waits;
        w->spec->err = rpc_err(HP_RPC_CANCELLED, "the wait was cancelled");
        wait_unlink(w);
    }
    return true;
}

void hp_rpc_fanout(hp_rpc_call_spec *calls, size_t n, const hp_rpc_opts *opts)
{
    uint64_t timeout =
        opts && opts->timeout_s ? opts->timeout_s : HP_RPC_DEFAULT_TIMEOUT_S;
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        calls[i].reply = NULL;
        calls[i].context_back.ptr = (uint8_t *)"";
        calls[i].context_back.len = 0;
        calls[i].blob_back.ptr = (uint8_t *)"";
        calls[i].blob_back.len = 0;
        calls[i].err = rpc_err(HP_RPC_BUILD, NULL);
        if (hpr_rt.cur == NULL) {
            calls[i].err.message = "calls are made from a task (a handler, "
                                   "init or hp_task_spawn)";
        } else if (calls[i].target == NULL || calls[i].target->node == NULL ||
                   calls[i].target->process.process_name == NULL ||
                   calls[i].target->process.package_name == NULL ||
                   calls[i].target->process.publisher_node == NULL) {
            calls[i].err.message = "no target address";
        } else if (wait_send(&calls[i], timeout)) {
            sent++;
        }
    }
    if (sent > 0)
        task_wait();
}

hp_rpc_error hp_rpc_call(const hw_address *target, const char *body, size_t len,
                         const hp_rpc_opts *opts, hp_arena **arena,
                         const hp_jv **reply)
{
    hp_rpc_call_spec c = {.target = target, .body = body, .len = len};
    *arena = hp_message_arena();
    *reply = NULL;
    hp_rpc_fanout(&c, 1, opts);
    if (c.err.kind == HP_RPC_TIMEOUT && c.err.message) {
        uint64_t timeout = opts && opts->timeout_s ? opts->timeout_s
                                                   : HP_RPC_DEFAULT_TIMEOUT_S;
        c.err.message =
            hp_arena_sprintf(*arena, "%s within %llu s", c.err.message,
                             (unsigned long long)timeout);
    }
    *reply = c.reply;
    return c.err;
}

hp_rpc_error hp_sleep_ms(uint64_t ms)
{
    hw_address timer;
    hpr_addr_set(&timer, hpr_rt.our.node, "timer", "distro", "sys");
    char body[64];
    snprintf(body, sizeof body, "{\"SetTimer\":%llu}", (unsigned long long)ms);
    hp_rpc_call_spec c = {.target = &timer, .body = body, .len = strlen(body)};
    /* the timer always answers; the margin is for a busy process, which
     * may take a while to get to a burst of due timers */
    hp_rpc_opts o = {.timeout_s = ms / 1000 + 60};
    hp_rpc_fanout(&c, 1, &o);
    return c.err;
}
