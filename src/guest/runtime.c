/* libhyperc's hyperprocess runtime (include/hyperc/runtime.h): the
 * process's life around the generated codecs and variant table.  Single
 * threaded; everything goes through the process ABI. */
#include "hyperc/runtime.h"

#include "coro.h"
#include "host_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#define HPR_SAVE_TIMER_CONTEXT "hyperc:save-timer"
#define HPR_LOG_LINE_MAX 4096
#define HPR_LOG_FILE_DEFAULT_MAX (1024u * 1024u)

static struct hpr {
    const hp_process_impl *impl;
    hw_address our;
    hp_arena arena; /* for loading the state, before any task */
    bool state_new;
    /* tasks */
    struct hp_task *cur; /* running now */
    struct hp_task *ready_head, *ready_tail;
    struct hp_task *init_task;
    size_t live, max_tasks, stack;
    /* saving */
    char *last_saved;    /* the bytes saved last (OnDiff), NUL-terminated */
    uint64_t since_save; /* completed triggers since the last save */
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
} rt;

typedef enum hpr_task_kind {
    HPR_TASK_REQUEST, /* answers a request */
    HPR_TASK_INIT,    /* the app's init */
    HPR_TASK_SPAWNED, /* hp_task_spawn */
    HPR_TASK_WS,      /* a WebSocket client event */
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
    hw_address source; /* owned copy */
    int prompting;     /* the held prompting message (0: none) */
    /* a request: its body (in the arena) and whether it wants an answer */
    const char *body;
    size_t body_len;
    bool expects_response;
    /* a spawned task */
    void (*fn)(void *arg);
    void *arg;
    bool detached;
    hp_task *joiner; /* waiting in hp_task_join */
    /* a WebSocket client event */
    uint32_t ws_channel;
    hp_ws_message_type ws_type;
    hw_blob ws_blob;
    /* waiting */
    hpr_wait *waits; /* outstanding calls */
    size_t pending;
    bool waiting;
    bool finished;
    hp_task *next_ready;
};

static const char *const refusal_names[] = {
    "Ok",        "BadJson",      "UnknownVariant",
    "Forbidden", "BadArguments", "HandlerFailed",
};

const char *hp_refusal_name(hp_refusal r)
{
    if ((unsigned)r < sizeof refusal_names / sizeof refusal_names[0])
        return refusal_names[r];
    return "Unknown";
}

/* ------------------------------------------------------------ arena, who */

hp_arena *hp_message_arena(void)
{
    return rt.cur ? &rt.cur->arena : NULL;
}

void *hp_alloc(size_t n)
{
    hp_arena *a = hp_message_arena();
    return a ? hp_arena_alloc(a, n) : NULL;
}

char *hp_strdup(const char *s)
{
    hp_arena *a = hp_message_arena();
    return a && s ? hp_arena_strdup(a, s) : NULL;
}

char *hp_sprintf(const char *fmt, ...)
{
    hp_arena *a = hp_message_arena();
    if (a == NULL)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    char *s = hp_arena_vsprintf(a, fmt, ap);
    va_end(ap);
    return s;
}

const hw_address *hp_source(void)
{
    return rt.cur && rt.cur->source.node ? &rt.cur->source : &rt.our;
}

const hw_address *hp_our(void)
{
    return &rt.our;
}

bool hp_state_is_new(void)
{
    return rt.state_new;
}

/* ------------------------------------------------------------------ sends */

static void addr_set(hw_address *a, char *node, const char *proc,
                     const char *pkg, const char *pub)
{
    a->node = node;
    a->process.process_name = (char *)proc;
    a->process.package_name = (char *)pkg;
    a->process.publisher_node = (char *)pub;
}

/* A request to our node's module `proc:distro:sys` (or any process id). */
static void send_to(const char *proc, const char *pkg, const char *pub,
                    const char *body, bool expects, uint64_t timeout_s,
                    const char *context, const uint8_t *blob, size_t blob_len)
{
    hw_address to;
    addr_set(&to, rt.our.node, proc, pkg, pub);
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = expects;
    req.expects_response = timeout_s;
    req.body.ptr = (uint8_t *)body;
    req.body.len = strlen(body);
    hw_bytes ctx = {(uint8_t *)context, context ? strlen(context) : 0};
    hw_blob b;
    memset(&b, 0, sizeof b);
    b.bytes.ptr = (uint8_t *)blob;
    b.bytes.len = blob_len;
    hw_send_request(&to, &req, context ? &ctx : NULL, blob ? &b : NULL);
}

/* --------------------------------------------------------------- logging */

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* A blocking request to vfs:distro:sys (setup and rotation only); true when
 * the reply is not {"Err":...}.  The reply's blob, if wanted, in *blob. */
static bool vfs_call(const char *body, const uint8_t *data, size_t len,
                     hw_blob *blob_out)
{
    hw_address to;
    addr_set(&to, rt.our.node, "vfs", "distro", "sys");
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = true;
    req.expects_response = 5;
    req.body.ptr = (uint8_t *)body;
    req.body.len = strlen(body);
    hw_blob b;
    memset(&b, 0, sizeof b);
    b.bytes.ptr = (uint8_t *)data;
    b.bytes.len = len;
    hw_await_result r;
    if (hw_send_and_await_response(&to, &req, data ? &b : NULL, &r) != 0)
        return false;
    bool ok = !r.is_err && r.message.kind == HW_MESSAGE_RESPONSE &&
              !(r.message.response.body.len >= 6 &&
                memcmp(r.message.response.body.ptr, "{\"Err\"", 6) == 0);
    if (ok && blob_out)
        ok = hw_last_blob(blob_out);
    hw_await_result_fini(&r);
    return ok;
}

/* Keep the file under its size: drop the older half (as process_lib's
 * logging does). */
static void log_file_trim(void)
{
    char body[600];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Read\"}",
             rt.log_path);
    hw_blob old;
    memset(&old, 0, sizeof old);
    if (!vfs_call(body, NULL, 0, &old)) {
        rt.file_size = 0; /* try again after another max bytes */
        rt.trim_pending = false;
        return;
    }
    size_t half = old.bytes.len / 2;
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Write\"}",
             rt.log_path);
    if (vfs_call(body, old.bytes.ptr + half, old.bytes.len - half, NULL))
        rt.file_size = old.bytes.len - half;
    else
        rt.file_size = 0;
    hw_blob_fini(&old);
    rt.trim_pending = false;
}

static void log_file_append(const char *line, size_t n)
{
    char body[600];
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Append\"}",
             rt.log_path);
    send_to("vfs", "distro", "sys", body, false, 0, NULL, (const uint8_t *)line,
            n);
    rt.file_size += n;
    /* trimmed between messages: a blocking request inside a handler would
     * change the message the handler's reply answers */
    if (rt.file_size > rt.file_max)
        rt.trim_pending = true;
}

void hp_log_init(hp_log_level file, hp_log_level terminal,
                 uint64_t max_file_bytes)
{
    rt.file_level = file;
    rt.term_level = terminal;
    rt.file_max = max_file_bytes ? max_file_bytes : HPR_LOG_FILE_DEFAULT_MAX;
    rt.log_ready = true;
    rt.log_file = false;
    free(rt.log_path);
    rt.log_path = NULL;
    /* /<package>:<publisher>/log/<process>.log, as process_lib names it */
    char drive[400], body[600];
    snprintf(drive, sizeof drive, "/%s:%s/log", rt.our.process.package_name,
             rt.our.process.publisher_node);
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"CreateDrive\"}",
             drive);
    if (!vfs_call(body, NULL, 0, NULL)) {
        hp_log(HP_LOG_WARN,
               "logging: vfs:distro:sys did not create %s (does "
               "pkg/manifest.json list \"vfs:distro:sys\" in "
               "request_capabilities?); logging to the terminal only",
               drive);
        return;
    }
    size_t plen = strlen(drive) + strlen(rt.our.process.process_name) + 6;
    rt.log_path = malloc(plen);
    if (rt.log_path == NULL)
        return;
    snprintf(rt.log_path, plen, "%s/%s.log", drive,
             rt.our.process.process_name);
    snprintf(body, sizeof body,
             "{\"path\":\"%s\",\"action\":{\"OpenFile\":{\"create\":true}}}",
             rt.log_path);
    if (!vfs_call(body, NULL, 0, NULL)) {
        hp_log(HP_LOG_WARN,
               "logging: vfs:distro:sys did not open %s; logging to the "
               "terminal only",
               rt.log_path);
        return;
    }
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Len\"}",
             rt.log_path);
    rt.file_size = 0;
    hw_address to;
    addr_set(&to, rt.our.node, "vfs", "distro", "sys");
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = true;
    req.expects_response = 5;
    req.body.ptr = (uint8_t *)body;
    req.body.len = strlen(body);
    hw_await_result r;
    if (hw_send_and_await_response(&to, &req, NULL, &r) == 0) {
        /* {"Len":N} */
        if (!r.is_err && r.message.kind == HW_MESSAGE_RESPONSE) {
            const char *t = (const char *)r.message.response.body.ptr;
            size_t n = r.message.response.body.len;
            if (n > 7 && memcmp(t, "{\"Len\":", 7) == 0)
                rt.file_size = strtoull(t + 7, NULL, 10);
        }
        hw_await_result_fini(&r);
    }
    rt.log_file = true;
}

void hp_logv(hp_log_level level, const char *fmt, va_list ap)
{
    if ((unsigned)level > HP_LOG_DEBUG)
        level = HP_LOG_DEBUG;
    hp_log_level term = rt.log_ready ? rt.term_level : HP_LOG_INFO;
    bool to_term = level <= term;
    bool to_file = rt.log_file && level <= rt.file_level && !rt.log_busy;
    if (!to_term && !to_file)
        return;
    char line[HPR_LOG_LINE_MAX];
    int n = snprintf(line, sizeof line, "%s %s: ", level_names[level],
                     rt.our.process.process_name ? rt.our.process.process_name
                                                 : "?");
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (to_term) {
        line[len] = '\0';
        /* error, warn -> 0; info, debug -> 1 (Rust's default mapping) */
        hw_print_to_terminal(level <= HP_LOG_WARN ? 0 : 1, line);
    }
    if (to_file) {
        /* the file's lines carry the time, as tracing's do */
        char file_line[HPR_LOG_LINE_MAX + 40];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        int t = (int)strftime(file_line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
        t += snprintf(file_line + t, 16, ".%06ldZ ", ts.tv_nsec / 1000);
        memcpy(file_line + t, line, len);
        file_line[t + (int)len] = '\n';
        rt.log_busy = true;
        log_file_append(file_line, (size_t)t + len + 1);
        rt.log_busy = false;
    }
}

void hp_log(hp_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hp_logv(level, fmt, ap);
    va_end(ap);
}

/* ----------------------------------------------------------------- state */

/* The stored form: {"hyperc_state":<version>,"state":<the state's JSON>}. */
static bool state_encode(hp_jw *w)
{
    const hp_process_impl *im = rt.impl;
    char head[64];
    int n = snprintf(head, sizeof head, "{\"hyperc_state\":%u,\"state\":",
                     (unsigned)im->decl->state_version);
    hp_jw_raw(w, head, (size_t)n);
    if (im->state_encode(w, im->state) != 0)
        return false;
    hp_jw_raw(w, "}", 1);
    return hp_jw_ok(w);
}

static bool state_save(bool only_if_changed)
{
    hp_jw w;
    hp_jw_init(&w);
    bool ok = state_encode(&w);
    if (!ok) {
        hp_log_error("the state could not be written as JSON (an invalid "
                     "UTF-8 string, or an enum value without a name?); not "
                     "saved");
    } else if (!only_if_changed || rt.last_saved == NULL ||
               strcmp(rt.last_saved, w.buf) != 0) {
        if (hw_set_state((const uint8_t *)w.buf, w.len)) {
            free(rt.last_saved);
            rt.last_saved = w.buf; /* keep the writer's buffer */
            w.buf = NULL;
            rt.since_save = 0;
        } else {
            hp_log_error("saving the state failed; trying again after the "
                         "next message");
            ok = false;
        }
    } else {
        rt.since_save = 0;
    }
    hp_jw_fini(&w);
    return ok;
}

bool hp_state_save_now(void)
{
    return rt.impl != NULL && state_save(false);
}

static void timer_arm(void)
{
    uint64_t s = rt.impl->decl->save_config.n;
    char body[64];
    snprintf(body, sizeof body, "{\"SetTimer\":%llu}",
             (unsigned long long)(s * 1000));
    send_to("timer", "distro", "sys", body, true, s + 30,
            HPR_SAVE_TIMER_CONTEXT, NULL, 0);
    rt.timer_armed = true;
}

/* A trigger: a request handler, ws event or init completed. */
static void state_trigger(void)
{
    const hp_save_config *sc = &rt.impl->decl->save_config;
    rt.since_save++;
    switch (sc->kind) {
    case HP_SAVE_KIND_EVERY_MESSAGE: state_save(false); break;
    case HP_SAVE_KIND_EVERY_N_MESSAGE:
        if (sc->n == 0 || rt.since_save >= sc->n)
            state_save(false);
        break;
    case HP_SAVE_KIND_ON_DIFF: state_save(true); break;
    case HP_SAVE_KIND_EVERY_N_SECONDS:
        if (rt.timer_broken) /* no timer: the next best thing */
            state_save(true);
        break;
    case HP_SAVE_KIND_NEVER:
    default: break;
    }
}

static void refuse_to_start(const char *why)
{
    hp_log_error("%s; not starting, and leaving the stored state as it is "
                 "(declare .state_version and .migrate to convert it)",
                 why);
    hw_on_exit none;
    memset(&none, 0, sizeof none);
    none.kind = HW_ON_EXIT_NONE;
    hw_set_on_exit(&none);
}

/* Load the stored state into impl->state; false when the process must not
 * start. */
static bool state_load(void)
{
    const hp_process_impl *im = rt.impl;
    hw_bytes stored;
    if (!hw_get_state(&stored)) {
        rt.state_new = true;
        return true;
    }
    const char *perr = "out of memory";
    void *tmp = hp_arena_alloc(&rt.arena, im->state_size);
    hp_jv *j =
        hp_json_parse(&rt.arena, (const char *)stored.ptr, stored.len, &perr);
    const hp_jv *ver = j ? hp_jv_get(j, "hyperc_state") : NULL;
    const hp_jv *body = j ? hp_jv_get(j, "state") : NULL;
    uint64_t version = 0;
    bool enveloped =
        ver != NULL && body != NULL && j->len == 2 &&
        hp_jd_uint(&rt.arena, ver, UINT32_MAX, "u32", &version, &perr) == 0;
    bool ok = false;
    char why[600];
    if (tmp == NULL) {
        snprintf(why, sizeof why, "out of memory loading the state");
    } else if (j == NULL) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes) is not JSON: %s", stored.len,
                 perr);
    } else if (!enveloped) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes) has no hyperc version "
                 "envelope",
                 stored.len);
    } else if (version != im->decl->state_version) {
        snprintf(why, sizeof why,
                 "the stored state has version %llu; this build has %u",
                 (unsigned long long)version,
                 (unsigned)im->decl->state_version);
    } else if (im->state_decode(&rt.arena, body, tmp, &perr) != 0) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes, version %llu) does not decode "
                 "as %s: %s",
                 stored.len, (unsigned long long)version, im->state_type, perr);
    } else {
        ok = true;
    }
    bool migrated = false;
    if (!ok && tmp != NULL && im->migrate != NULL) {
        const char *mwhy = "the migration refused it";
        memset(tmp, 0, im->state_size);
        if (im->migrate(&rt.arena, enveloped ? (uint32_t)version : 0,
                        enveloped ? body : j, tmp, &mwhy)) {
            hp_log_info("state migrated from version %llu to %u",
                        (unsigned long long)(enveloped ? version : 0),
                        (unsigned)im->decl->state_version);
            ok = migrated = true;
        } else {
            size_t n = strlen(why);
            snprintf(why + n, sizeof why - n, "; migration failed: %s", mwhy);
        }
    }
    if (ok && im->state_clone(im->state, tmp) != 0) {
        snprintf(why, sizeof why, "out of memory copying the stored state");
        ok = false;
    }
    hw_bytes_fini(&stored);
    hp_arena_reset(&rt.arena);
    if (!ok) {
        refuse_to_start(why);
        return false;
    }
    if (migrated)
        state_save(false);
    else {
        /* what is stored, so that an unchanged state is not written again */
        hp_jw w;
        hp_jw_init(&w);
        if (state_encode(&w)) {
            rt.last_saved = w.buf;
            w.buf = NULL;
        }
        hp_jw_fini(&w);
    }
    return true;
}

/* -------------------------------------------------------------- dispatch */

static int variant_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const hp_variant *)elem)->name);
}

static const char *allowed_list(const hp_process_impl *im, hp_arena *a,
                                unsigned source)
{
    size_t n = 0;
    for (size_t i = 0; i < im->variants_len; i++)
        if (im->variants[i].sources & source)
            n += strlen(im->variants[i].name) + 2;
    char *s = hp_arena_alloc(a, n + 8);
    if (s == NULL)
        return "";
    s[0] = '\0';
    for (size_t i = 0; i < im->variants_len; i++) {
        if (!(im->variants[i].sources & source))
            continue;
        if (s[0])
            strcat(s, ", ");
        strcat(s, im->variants[i].name);
    }
    if (s[0] == '\0')
        strcpy(s, "(none)");
    return s;
}

static const char *source_name(unsigned source)
{
    return source == HP_FROM_LOCAL    ? "this node"
           : source == HP_FROM_REMOTE ? "another node"
                                      : "HTTP";
}

static hp_refusal dispatch(const hp_process_impl *im, hp_arena *a,
                           unsigned source, const char *body, size_t len,
                           hp_jw *out, const char **err)
{
    const char *perr = NULL;
    hp_jv *j = hp_json_parse(a, body, len, &perr);
    if (j == NULL) {
        *err = hp_jd_wrap(a, "the request is not JSON", perr);
        return HP_REFUSAL_BAD_JSON;
    }
    const char *v;
    const hp_jv *args = NULL;
    if (j->kind == HP_JV_STRING) {
        v = j->str;
    } else if (j->kind == HP_JV_OBJECT && j->len == 1) {
        v = j->keys[0];
        args = j->items[0];
    } else {
        *err = hp_arena_sprintf(
            a,
            "expected {\"Variant\": arguments} or "
            "\"Variant\", got %s%s",
            j->kind == HP_JV_OBJECT ? "an object with " : "",
            j->kind == HP_JV_OBJECT ? hp_arena_sprintf(a, "%zu keys", j->len)
                                    : hp_jv_kind_name(j));
        return HP_REFUSAL_BAD_JSON;
    }
    const hp_variant *var = bsearch(v, im->variants, im->variants_len,
                                    sizeof *im->variants, variant_cmp);
    if (var == NULL) {
        *err = hp_arena_sprintf(
            a, "unknown request variant '%s'; you may call: %s", v,
            allowed_list(im, a, source));
        return HP_REFUSAL_UNKNOWN_VARIANT;
    }
    if (!(var->sources & source)) {
        *err = hp_arena_sprintf(
            a, "%s may not be called from %s; you may call: %s", var->name,
            source_name(source), allowed_list(im, a, source));
        return HP_REFUSAL_FORBIDDEN;
    }
    return var->call(a, im->state, args, out, err);
}

hp_refusal hp_process_dispatch(const hp_process_impl *im, hp_arena *a,
                               unsigned source, const char *body, size_t len,
                               hp_jw *out)
{
    const char *err = "refused";
    hp_refusal r = dispatch(im, a, source, body, len, out, &err);
    if (r != HP_REFUSAL_OK) {
        hp_jw_fini(out);
        hp_jw_init(out);
        hp_jw_raw(out, "{\"HypercError\":{\"kind\":\"", 24);
        const char *k = hp_refusal_name(r);
        hp_jw_raw(out, k, strlen(k));
        hp_jw_raw(out, "\",\"message\":", 12);
        if (err == NULL || hp_jw_string(out, err, strlen(err)) != 0)
            hp_jw_raw(out, "\"\"", 2);
        hp_jw_raw(out, "}}", 2);
        if (rt.impl == im)
            hp_log_info("refused a request: %s: %s", k, err ? err : "");
    }
    return r;
}

/* ------------------------------------------------------------------ tasks */

static bool is_module(const hw_address *a, const char *proc)
{
    return strcmp(a->process.process_name, proc) == 0 &&
           strcmp(a->process.package_name, "distro") == 0 &&
           strcmp(a->process.publisher_node, "sys") == 0;
}

static hpr_wait *waits; /* by id */

static void ready_push(hp_task *t)
{
    t->next_ready = NULL;
    if (rt.ready_tail)
        rt.ready_tail->next_ready = t;
    else
        rt.ready_head = t;
    rt.ready_tail = t;
}

static void task_free(hp_task *t)
{
    for (hpr_wait *w = t->waits, *nx; w; w = nx) {
        nx = w->next_of_task;
        HASH_DEL(waits, w);
        free(w);
    }
    hp_arena_fini(&t->arena);
    if (t->source.node)
        hw_address_fini(&t->source);
    if (t->kind == HPR_TASK_WS)
        hw_blob_fini(&t->ws_blob);
    hp__prompting_release(t->prompting);
    hp__coro_free(t->co);
    free(t);
    rt.live--;
}

static void task_main(void *arg);

static hp_task *task_new(hpr_task_kind kind, const hw_address *source)
{
    if (rt.live >= rt.max_tasks)
        return NULL;
    hp_task *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->kind = kind;
    t->co = hp__coro_create(rt.stack, task_main, t);
    if (t->co == NULL) {
        free(t);
        return NULL;
    }
    hp_arena_init(&t->arena);
    if (source) {
        char buf[600];
        hw_address_format(source, buf, sizeof buf);
        if (hw_address_parse(buf, &t->source) != 0)
            memset(&t->source, 0, sizeof t->source);
    }
    rt.live++;
    return t;
}

/* Wait until every outstanding call of the current task has its outcome
 * (or a cancel, or a joined task's end). */
static void task_wait(void)
{
    hp_task *t = rt.cur;
    t->waiting = true;
    hp__coro_yield();
    t->waiting = false;
}

static void reply(hp_task *t, hp_refusal rc, const hp_jw *w)
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
    const hp_process_impl *im = rt.impl;
    switch (t->kind) {
    case HPR_TASK_REQUEST: {
        unsigned src = HP_FROM_LOCAL;
        if (strcmp(t->source.node, rt.our.node) != 0)
            src = HP_FROM_REMOTE;
        else if (is_module(&t->source, "http-server"))
            src = HP_FROM_HTTP;
        hp_jw w;
        hp_jw_init(&w);
        hp_refusal rc =
            hp_process_dispatch(im, &t->arena, src, t->body, t->body_len, &w);
        /* saved after the handler completed, awaits included, and before
         * the answer: a caller that has the answer finds the state stored */
        if (rc == HP_REFUSAL_OK)
            state_trigger();
        reply(t, rc, &w);
        hp_jw_fini(&w);
        break;
    }
    case HPR_TASK_INIT:
        im->init(im->state);
        /* init's changes are saved if there are any (Rust's OnDiff misses
         * them: framework.md §10) */
        if (im->decl->save_config.kind != HP_SAVE_KIND_NEVER)
            state_save(true);
        break;
    case HPR_TASK_SPAWNED: t->fn(t->arg); break;
    case HPR_TASK_WS:
        im->ws_client(im->state, t->ws_channel, t->ws_type, &t->ws_blob);
        state_trigger();
        break;
    }
    t->finished = true;
    if (t->joiner)
        ready_push(t->joiner);
}

/* Run every ready task until each waits or ends. */
static void run_ready(void)
{
    while (rt.ready_head) {
        hp_task *t = rt.ready_head;
        rt.ready_head = t->next_ready;
        if (rt.ready_head == NULL)
            rt.ready_tail = NULL;
        /* the task answers its own request, whatever came meanwhile */
        hp__prompting_set(t->prompting);
        rt.cur = t;
        hp__coro_resume(t->co);
        rt.cur = NULL;
        if (t->finished && (t->kind != HPR_TASK_SPAWNED || t->detached))
            task_free(t);
    }
}

hp_task *hp_task_current(void)
{
    return rt.cur;
}

hp_task *hp_task_spawn(void (*fn)(void *arg), void *arg)
{
    hp_task *t = task_new(HPR_TASK_SPAWNED, hp_source());
    if (t == NULL)
        return NULL;
    t->fn = fn;
    t->arg = arg;
    /* it answers nothing, but sends on behalf of the spawner */
    t->prompting = rt.cur ? hp__prompting_hold() : 0;
    ready_push(t);
    return t;
}

void hp_task_join(hp_task *t)
{
    if (t == NULL || rt.cur == NULL || t == rt.cur)
        return;
    if (!t->finished) {
        t->joiner = rt.cur;
        task_wait();
    }
    task_free(t);
}

void hp_task_detach(hp_task *t)
{
    if (t == NULL)
        return;
    if (t->finished)
        task_free(t);
    else
        t->detached = true;
}

/* ------------------------------------------------------------ rpc calls */

static const char *const rpc_kind_names[] = {
    "Ok", "Timeout", "Offline", "Decode", "Build", "Rejected", "Cancelled",
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
    static uint64_t state;
    static bool seeded;
    if (!seeded) {
        if (getentropy(&state, sizeof state) != 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            state = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                    (uint64_t)(uintptr_t)&state;
        }
        seeded = true;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
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
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* Send one request of the current task with a fresh context. */
static bool wait_send(hp_rpc_call_spec *spec, uint64_t timeout)
{
    hp_task *t = rt.cur;
    hpr_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        spec->err = rpc_err(HP_RPC_BUILD, "out of memory");
        return false;
    }
    uuid4(w->id);
    w->task = t;
    w->spec = spec;
    hw_request req;
    memset(&req, 0, sizeof req);
    req.has_expects_response = true;
    req.expects_response = timeout;
    req.body.ptr = (uint8_t *)spec->body;
    req.body.len = spec->len;
    /* the context: our correlation id, then the caller's own bytes */
    hw_bytes ctx = {(uint8_t *)w->id, 36};
    if (spec->context_len > 0) {
        uint8_t *both = hp_arena_alloc(&t->arena, 36 + spec->context_len);
        if (both == NULL) {
            free(w);
            spec->err = rpc_err(HP_RPC_BUILD, "out of memory");
            return false;
        }
        memcpy(both, w->id, 36);
        memcpy(both + 36, spec->context, spec->context_len);
        ctx.ptr = both;
        ctx.len = 36 + spec->context_len;
    }
    HASH_ADD(hh, waits, id, 36, w);
    w->next_of_task = t->waits;
    t->waits = w;
    t->pending++;
    hw_send_request(spec->target, &req, &ctx, NULL);
    return true;
}

static void wait_unlink(hpr_wait *w)
{
    hp_task *t = w->task;
    for (hpr_wait **pp = &t->waits; *pp; pp = &(*pp)->next_of_task)
        if (*pp == w) {
            *pp = w->next_of_task;
            break;
        }
    HASH_DEL(waits, w);
    free(w);
    if (--t->pending == 0 && t->waiting)
        ready_push(t);
}

/* The outcome of a call found by its context: a response (parsed into the
 * task's arena) or a send error. */
static void wait_complete(hpr_wait *w, const hw_receive_result *r)
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
        calls[i].err = rpc_err(HP_RPC_BUILD, NULL);
        if (rt.cur == NULL) {
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
    addr_set(&timer, rt.our.node, "timer", "distro", "sys");
    char body[64];
    snprintf(body, sizeof body, "{\"SetTimer\":%llu}", (unsigned long long)ms);
    hp_rpc_call_spec c = {.target = &timer, .body = body, .len = strlen(body)};
    hp_rpc_opts o = {.timeout_s = ms / 1000 + 5};
    hp_rpc_fanout(&c, 1, &o);
    return c.err;
}

/* ------------------------------------------------------------- main loop */

/* A WebSocket event from http-client:distro:sys (a connection this process
 * opened): {"WebSocketPush":{"channel_id":N,"message_type":"Text"}} with
 * the payload as blob, or {"WebSocketClose":{"channel_id":N}}.  NULL when
 * the message is not one, or nothing handles it. */
static hp_task *ws_client_task(hw_receive_result *r)
{
    const hp_process_impl *im = rt.impl;
    static const char *const types[] = {"Text", "Binary", "Ping", "Pong",
                                        "Close"};
    hp_arena a;
    hp_arena_init(&a);
    const char *perr = NULL;
    hp_jv *j = hp_json_parse(&a, (const char *)r->message.request.body.ptr,
                             r->message.request.body.len, &perr);
    const hp_jv *push = j ? hp_jv_get(j, "WebSocketPush") : NULL;
    const hp_jv *close = j ? hp_jv_get(j, "WebSocketClose") : NULL;
    const hp_jv *ev = push ? push : close;
    const hp_jv *ch = ev ? hp_jv_get(ev, "channel_id") : NULL;
    uint64_t channel = 0;
    int type = push ? -1 : HP_WS_CLOSE;
    if (push) {
        const hp_jv *t = hp_jv_get(push, "message_type");
        for (int k = 0; t && t->kind == HP_JV_STRING && k < 5; k++)
            if (strcmp(t->str, types[k]) == 0)
                type = k;
    }
    bool ok = ch != NULL && type >= 0 &&
              hp_jd_uint(&a, ch, UINT32_MAX, "u32", &channel, &perr) == 0;
    hp_arena_fini(&a);
    if (!ok) {
        hp_log_info("dropped a message from http-client that is not a "
                    "WebSocket event (expected {\"WebSocketPush\":{...}} or "
                    "{\"WebSocketClose\":{...}})");
        return NULL;
    }
    if (im->ws_client == NULL) {
        hp_log_debug("dropped a WebSocket client event: no HP_WS_CLIENT "
                     "handler");
        return NULL;
    }
    hp_task *t = task_new(HPR_TASK_WS, &r->source);
    if (t == NULL) {
        hp_log_error("dropped a WebSocket client event: too many tasks");
        return NULL;
    }
    t->ws_channel = (uint32_t)channel;
    t->ws_type = (hp_ws_message_type)type;
    if (!hw_get_blob(&t->ws_blob))
        memset(&t->ws_blob, 0, sizeof t->ws_blob);
    return t;
}

static void on_request(hw_receive_result *r)
{
    hp_task *t;
    if (strcmp(r->source.node, rt.our.node) == 0 &&
        is_module(&r->source, "http-client")) {
        t = ws_client_task(r);
    } else {
        t = task_new(HPR_TASK_REQUEST, &r->source);
        if (t == NULL) {
            /* the answer is given here, without a task */
            hp_log_warn("refused a request: too many tasks (limit %zu)",
                        rt.max_tasks);
            if (r->message.request.has_expects_response) {
                char msg[200];
                int n = snprintf(msg, sizeof msg,
                                 "{\"HypercError\":{\"kind\":\"Busy\","
                                 "\"message\":\"too many tasks (limit %zu); "
                                 "try again later\"}}",
                                 rt.max_tasks);
                hw_response resp;
                memset(&resp, 0, sizeof resp);
                resp.body.ptr = (uint8_t *)msg;
                resp.body.len = (size_t)n;
                resp.metadata = "{\"hyperc\":\"error\"}";
                hw_send_response(&resp, NULL);
            }
            return;
        }
        size_t n = r->message.request.body.len;
        char *body = hp_arena_alloc(&t->arena, n + 1);
        if (body && n)
            memcpy(body, r->message.request.body.ptr, n);
        t->body = body ? body : "";
        t->body_len = body ? n : 0;
        t->expects_response = r->message.request.has_expects_response;
    }
    if (t == NULL)
        return;
    t->prompting = hp__prompting_hold();
    ready_push(t);
}

static bool context_is(const hw_bytes *c, const char *s)
{
    size_t n = strlen(s);
    return c->len == n && memcmp(c->ptr, s, n) == 0;
}

/* A response or send error: to the task waiting for it, to the save
 * timer, or dropped (a late reply, after a timeout or a cancel). */
static void on_outcome(hw_receive_result *r)
{
    bool has = r->is_err ? r->has_context : r->message.has_context;
    const hw_bytes *c = r->is_err ? &r->context : &r->message.context;
    if (has && context_is(c, HPR_SAVE_TIMER_CONTEXT)) {
        rt.timer_armed = false;
        if (r->is_err) {
            rt.timer_broken = true;
            hp_log_error("save_config EveryNSeconds: timer:distro:sys did "
                         "not answer (does the manifest grant it "
                         "messaging?); saving after every message that "
                         "changes the state instead");
            return;
        }
        if (rt.since_save > 0)
            state_save(false);
        timer_arm();
        return;
    }
    hpr_wait *w = NULL;
    if (has && c->len >= 36)
        HASH_FIND(hh, waits, c->ptr, 36, w);
    if (w) {
        /* the caller's own context bytes, given back */
        hp_rpc_call_spec *sp = w->spec;
        sp->context_back.len = c->len - 36;
        sp->context_back.ptr = (uint8_t *)"";
        if (c->len > 36) {
            uint8_t *back = hp_arena_alloc(&w->task->arena, c->len - 36);
            if (back) {
                memcpy(back, c->ptr + 36, c->len - 36);
                sp->context_back.ptr = back;
            } else {
                sp->context_back.len = 0;
            }
        }
        wait_complete(w, r);
        return;
    }
    hp_log_debug("dropped a %s nobody waits for (late, or cancelled)",
                 r->is_err ? "send error" : "response");
}

void hp_process_main(const hp_process_impl *im)
{
    memset(&rt, 0, sizeof rt);
    rt.impl = im;
    rt.max_tasks = im->decl->max_tasks ? im->decl->max_tasks : 16384;
    rt.stack = (size_t)im->decl->task_stack_kib * 1024;
    hw_our(&rt.our);
    hp_arena_init(&rt.arena);
    if (!state_load()) {
        hp_arena_fini(&rt.arena);
        hw_address_fini(&rt.our);
        return;
    }
    if (!im->decl->manual_logging)
        hp_log_init(HP_LOG_DEBUG, HP_LOG_INFO, 0);
    hp_log_debug("started%s", rt.state_new ? " with a new state" : "");
    if (im->decl->save_config.kind == HP_SAVE_KIND_EVERY_N_SECONDS)
        timer_arm();
    if (im->init) {
        /* init runs as a task: messages arriving while it waits are
         * handled, not lost */
        hp_task *t = task_new(HPR_TASK_INIT, &rt.our);
        if (t == NULL) {
            hp_log_error("cannot start init: out of memory");
        } else {
            rt.init_task = t;
            ready_push(t);
        }
    }
    for (;;) {
        run_ready();
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST)
            on_request(&r);
        else
            on_outcome(&r);
        hw_receive_result_fini(&r);
        if (rt.trim_pending)
            log_file_trim();
    }
}
