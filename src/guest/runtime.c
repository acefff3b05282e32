/* libhyperc's hyperprocess runtime (include/hyperc/runtime.h): the
 * process's life around the generated codecs and variant table.  Single
 * threaded; everything goes through the process ABI. */
#include "hyperc/runtime.h"

#include "coro.h"
#include "host_ext.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    /* waiting */
    hpr_wait *waits; /* outstanding calls */
    size_t pending;
    bool waiting;
    bool finished;
    hp_task *next_ready;
};

static const char *const refusal_names[] = {
    "Ok",           "BadJson",       "UnknownVariant", "Forbidden",
    "BadArguments", "HandlerFailed", "Busy",
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
 * the reply is not {"Err":...}.  The reply's blob, if wanted, in *blob; its
 * body, if wanted, in reply[cap] (NUL-terminated, cut to fit). */
static bool vfs_call(const char *body, const uint8_t *data, size_t len,
                     hw_blob *blob_out, char *reply, size_t cap)
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
    if (ok && reply && cap) {
        size_t n = r.message.response.body.len < cap - 1
                       ? r.message.response.body.len
                       : cap - 1;
        memcpy(reply, r.message.response.body.ptr, n);
        reply[n] = '\0';
    }
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
    if (!vfs_call(body, NULL, 0, &old, NULL, 0)) {
        rt.file_size = 0; /* try again after another max bytes */
        rt.trim_pending = false;
        return;
    }
    size_t half = old.bytes.len / 2;
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Write\"}",
             rt.log_path);
    if (vfs_call(body, old.bytes.ptr + half, old.bytes.len - half, NULL, NULL,
                 0))
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
    if (!vfs_call(body, NULL, 0, NULL, NULL, 0)) {
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
    if (!vfs_call(body, NULL, 0, NULL, NULL, 0)) {
        hp_log(HP_LOG_WARN,
               "logging: vfs:distro:sys did not open %s; logging to the "
               "terminal only",
               rt.log_path);
        return;
    }
    snprintf(body, sizeof body, "{\"path\":\"%s\",\"action\":\"Len\"}",
             rt.log_path);
    char reply[64];
    rt.file_size = 0;
    if (vfs_call(body, NULL, 0, NULL, reply, sizeof reply) &&
        strncmp(reply, "{\"Len\":", 7) == 0) /* {"Len":N} */
        rt.file_size = strtoull(reply + 7, NULL, 10);
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

/* {"HypercError":{"kind":...,"message":...}} into w (what it held is
 * dropped). */
static void error_body(hp_jw *w, const char *kind, const char *msg)
{
    hp_jw_fini(w);
    hp_jw_init(w);
    hp_jw_raw(w, "{\"HypercError\":{\"kind\":\"", 24);
    hp_jw_raw(w, kind, strlen(kind));
    hp_jw_raw(w, "\",\"message\":", 12);
    if (msg == NULL || hp_jw_string(w, msg, strlen(msg)) != 0)
        hp_jw_raw(w, "\"\"", 2);
    hp_jw_raw(w, "}}", 2);
}

hp_refusal hp_process_dispatch(const hp_process_impl *im, hp_arena *a,
                               unsigned source, const char *body, size_t len,
                               hp_jw *out)
{
    const char *err = "refused";
    hp_refusal r = dispatch(im, a, source, body, len, out, &err);
    if (r != HP_REFUSAL_OK) {
        const char *k = hp_refusal_name(r);
        error_body(out, k, err);
        if (rt.impl == im)
            hp_log_info("refused a request: %s: %s", k, err ? err : "");
    }
    return r;
}

static const char *const ws_type_names[] = {"Text", "Binary", "Ping", "Pong",
                                            "Close"};

/* A WsMessageType from its JSON ("Text", ...); -1 if it is not one. */
static int ws_type_of(const hp_jv *t)
{
    for (int k = 0; t && t->kind == HP_JV_STRING && k < 5; k++)
        if (strcmp(t->str, ws_type_names[k]) == 0)
            return k;
    return -1;
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
    if (t->kind == HPR_TASK_WS || t->kind == HPR_TASK_WS_SERVER)
        hw_blob_fini(&t->ws_blob);
    hp__prompting_release(t->prompting);
    hp__coro_free(t->co);
    free(t);
    rt.live--;
}

static void task_main(void *arg);
static void bind_all(void);
static void http_dispatch(hp_task *t, hp_jw *w);
static void http_answer(hp_task *t, const hp_jw *body);

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
        bind_all();
        if (im->init)
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
    case HPR_TASK_WS_SERVER:
        im->ws(im->state, t->ws_channel, t->ws_type, &t->ws_blob);
        state_trigger();
        break;
    case HPR_TASK_HTTP: {
        hp_jw w;
        hp_jw_init(&w);
        t->http_status = 200;
        http_dispatch(t, &w);
        if (t->http_status < 400)
            state_trigger();
        if (t->expects_response)
            http_answer(t, &w);
        hp_jw_fini(&w);
        break;
    }
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
    hw_blob blob;
    memset(&blob, 0, sizeof blob);
    blob.mime = (char *)spec->blob_mime;
    blob.bytes.ptr = (uint8_t *)spec->blob;
    blob.bytes.len = spec->blob_len;
    hw_send_request(spec->target, &req, &ctx, spec->blob ? &blob : NULL);
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
        calls[i].blob_back.ptr = (uint8_t *)"";
        calls[i].blob_back.len = 0;
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

/* ------------------------------------------------------------------- HTTP */

bool hp_http_is_request(void)
{
    return rt.cur && rt.cur->kind == HPR_TASK_HTTP;
}

const char *hp_http_method(void)
{
    return hp_http_is_request() ? rt.cur->http_method : NULL;
}

const char *hp_http_path(void)
{
    return hp_http_is_request() ? rt.cur->http_path : NULL;
}

static const char *jv_lookup(const hp_jv *obj, const char *name, bool nocase)
{
    if (obj == NULL || obj->kind != HP_JV_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if ((nocase ? strcasecmp(obj->keys[i], name)
                    : strcmp(obj->keys[i], name)) == 0 &&
            obj->items[i]->kind == HP_JV_STRING)
            return obj->items[i]->str;
    return NULL;
}

const char *hp_http_header(const char *name)
{
    return hp_http_is_request() ? jv_lookup(rt.cur->http_headers, name, true)
                                : NULL;
}

const char *hp_http_query(const char *name)
{
    return hp_http_is_request() ? jv_lookup(rt.cur->http_query, name, false)
                                : NULL;
}

void hp_http_set_status(uint16_t status)
{
    if (hp_http_is_request())
        rt.cur->http_status = status;
}

void hp_http_set_header(const char *name, const char *value)
{
    hp_task *t = rt.cur;
    if (!hp_http_is_request() || name == NULL || value == NULL)
        return;
    for (size_t i = 0; i < t->nresp; i++)
        if (strcasecmp(t->resp_headers[i].name, name) == 0) {
            t->resp_headers[i].value = hp_arena_strdup(&t->arena, value);
            return;
        }
    if (t->nresp == t->capresp) {
        size_t cap = t->capresp ? t->capresp * 2 : 8;
        struct hpr_header *v =
            hp_arena_alloc(&t->arena, cap * sizeof *t->resp_headers);
        if (v == NULL)
            return;
        if (t->nresp)
            memcpy(v, t->resp_headers, t->nresp * sizeof *v);
        t->resp_headers = v;
        t->capresp = cap;
    }
    t->resp_headers[t->nresp].name = hp_arena_strdup(&t->arena, name);
    t->resp_headers[t->nresp].value = hp_arena_strdup(&t->arena, value);
    t->nresp++;
}

static int variant_order_cmp(const void *a, const void *b)
{
    const hp_variant *x = *(const hp_variant *const *)a,
                     *y = *(const hp_variant *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* The arguments of v from the query parameters, as the JSON its decoder
 * reads: text parameters as strings, the others parsed as JSON. */
static const hp_jv *args_from_query(hp_task *t, const hp_variant *v,
                                    const char **err)
{
    if (v->nparams == 0)
        return NULL;
    hp_arena *a = &t->arena;
    hp_jv **vals = hp_arena_alloc(a, v->nparams * sizeof *vals);
    if (vals == NULL)
        return NULL;
    for (size_t i = 0; i < v->nparams; i++) {
        const char *q = jv_lookup(t->http_query, v->param_names[i], false);
        if (q == NULL) {
            *err = hp_arena_sprintf(a, "%s needs the query parameter '%s'",
                                    v->name, v->param_names[i]);
            return NULL;
        }
        const char *perr = NULL;
        hp_jv *j = NULL;
        if (!v->param_text)
            j = hp_json_parse(a, q, strlen(q), &perr);
        else if (!v->param_text[i])
            j = hp_json_parse(a, q, strlen(q), &perr);
        if (j == NULL) {
            j = hp_arena_alloc(a, sizeof *j);
            if (j == NULL)
                return NULL;
            j->kind = HP_JV_STRING;
            j->str = q;
            j->len = strlen(q);
        }
        vals[i] = j;
    }
    if (v->nparams == 1)
        return vals[0];
    hp_jv *arr = hp_arena_alloc(a, sizeof *arr);
    if (arr == NULL)
        return NULL;
    arr->kind = HP_JV_ARRAY;
    arr->items = vals;
    arr->len = v->nparams;
    return arr;
}

static uint16_t refusal_status(hp_refusal r)
{
    switch (r) {
    case HP_REFUSAL_OK: return 200;
    case HP_REFUSAL_FORBIDDEN: return 403;
    case HP_REFUSAL_HANDLER_FAILED: return 500;
    case HP_REFUSAL_BUSY: return 503;
    default: return 400;
    }
}

/* Route an HTTP request: a handler declared with a path is found by path
 * and method (405 with Allow when only the method is wrong), its arguments
 * from the body (the value, an array, or the {"Variant": args} envelope) or
 * else from the query; otherwise a body {"Variant": args} reaches any HTTP
 * handler (what Rust clients send); otherwise a parameter-less handler
 * without a path whose method fits, first in source order. */
static void http_dispatch(hp_task *t, hp_jw *w)
{
    const hp_process_impl *im = rt.impl;
    hp_arena *a = &t->arena;
    const hp_variant **by_order =
        hp_arena_alloc(a, (im->variants_len + 1) * sizeof *by_order);
    size_t n = 0;
    for (size_t i = 0; i < im->variants_len && by_order; i++)
        if (im->variants[i].sources & HP_FROM_HTTP)
            by_order[n++] = &im->variants[i];
    if (by_order == NULL) {
        t->http_status = 500;
        error_body(w, "HandlerFailed", "out of memory");
        return;
    }
    qsort(by_order, n, sizeof *by_order, variant_order_cmp);
    const hp_variant *hit = NULL;
    char allow[200] = "";
    for (size_t i = 0; i < n; i++) {
        const hp_variant *v = by_order[i];
        if (v->http_path == NULL || strcmp(v->http_path, t->http_path) != 0)
            continue;
        if (v->http_method && strcmp(v->http_method, t->http_method) != 0) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "",
                     v->http_method);
            continue;
        }
        hit = v;
        break;
    }
    const char *err = "refused";
    hp_refusal rc;
    if (hit) {
        const hp_jv *args = NULL;
        bool have = false;
        if (t->body_len > 0 && hit->nparams > 0) {
            const char *perr = NULL;
            hp_jv *j = hp_json_parse(a, t->body, t->body_len, &perr);
            if (j == NULL) {
                t->http_status = 400;
                error_body(w, "BadJson",
                           hp_jd_wrap(a, "the body is not JSON", perr));
                return;
            }
            /* the envelope of this variant, or the arguments themselves */
            const hp_jv *inner = hp_jv_get(j, hit->name);
            args = inner && j->len == 1 ? inner : j;
            have = true;
        }
        if (!have && hit->nparams > 0) {
            args = args_from_query(t, hit, &err);
            if (args == NULL) {
                t->http_status = 400;
                error_body(w, "BadArguments", err);
                return;
            }
        }
        rc = hit->call(a, im->state, args, w, &err);
    } else if (allow[0]) {
        t->http_status = 405;
        hp_http_set_header("Allow", allow);
        error_body(w, "MethodNotAllowed",
                   hp_arena_sprintf(a, "%s %s: use %s", t->http_method,
                                    t->http_path, allow));
        return;
    } else if (t->body_len > 0) {
        rc = hp_process_dispatch(im, a, HP_FROM_HTTP, t->body, t->body_len, w);
        if (rc != HP_REFUSAL_OK) {
            t->http_status = refusal_status(rc);
            return; /* the error body is written */
        }
        return;
    } else {
        const hp_variant *pl = NULL;
        for (size_t i = 0; i < n && !pl; i++) {
            const hp_variant *v = by_order[i];
            if (v->nparams == 0 && v->http_path == NULL &&
                (v->http_method == NULL ||
                 strcmp(v->http_method, t->http_method) == 0))
                pl = v;
        }
        if (pl == NULL) {
            t->http_status = 404;
            error_body(w, "NotFound",
                       hp_arena_sprintf(a,
                                        "no handler for %s %s (send "
                                        "{\"Variant\": arguments} as the "
                                        "body to call a handler)",
                                        t->http_method, t->http_path));
            return;
        }
        rc = pl->call(a, im->state, NULL, w, &err);
    }
    if (rc != HP_REFUSAL_OK) {
        t->http_status = refusal_status(rc);
        error_body(w, hp_refusal_name(rc), err);
        hp_log_info("refused an HTTP request: %s: %s", hp_refusal_name(rc),
                    err);
    }
}

/* The answer to http-server: {"status":S,"headers":{...}} with the body as
 * blob. */
static void http_answer(hp_task *t, const hp_jw *body)
{
    bool ctype = false;
    for (size_t i = 0; i < t->nresp; i++)
        ctype |= strcasecmp(t->resp_headers[i].name, "Content-Type") == 0;
    hp_jw h;
    hp_jw_init(&h);
    char head[48];
    int n = snprintf(head, sizeof head, "{\"status\":%u,\"headers\":{",
                     (unsigned)(t->http_status ? t->http_status : 200));
    hp_jw_raw(&h, head, (size_t)n);
    bool first = true;
    if (!ctype) {
        static const char ct[] = "\"Content-Type\":\"application/json\"";
        hp_jw_raw(&h, ct, sizeof ct - 1);
        first = false;
    }
    for (size_t i = 0; i < t->nresp; i++) {
        if (!first)
            hp_jw_raw(&h, ",", 1);
        first = false;
        const char *k = t->resp_headers[i].name, *v = t->resp_headers[i].value;
        if (hp_jw_string(&h, k, strlen(k)) != 0)
            hp_jw_raw(&h, "\"\"", 2);
        hp_jw_raw(&h, ":", 1);
        if (hp_jw_string(&h, v, strlen(v)) != 0)
            hp_jw_raw(&h, "\"\"", 2);
    }
    hp_jw_raw(&h, "}}", 2);
    hw_response resp;
    memset(&resp, 0, sizeof resp);
    resp.body.ptr = (uint8_t *)h.buf;
    resp.body.len = h.len;
    hw_blob blob;
    memset(&blob, 0, sizeof blob);
    blob.bytes.ptr = (uint8_t *)(body->buf ? body->buf : "");
    blob.bytes.len = body->len;
    hw_send_response(&resp, &blob);
    hp_jw_fini(&h);
}

/* "http://host/app:pkg:pub/api/x" -> "/api/x" ("/" when nothing follows). */
static const char *path_of_url(hp_arena *a, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? strchr(p + 3, '/') : url;
    if (p == NULL)
        return "/";
    const char *rest = strchr(p + 1, '/');
    if (rest == NULL)
        return "/";
    const char *q = strpbrk(rest, "?#");
    return hp_arena_strndup(a, rest, q ? (size_t)(q - rest) : strlen(rest));
}

/* ------------------------------------------------------------- WebSockets */

typedef struct hpr_channel {
    uint32_t id;
    char *path;
    UT_hash_handle hh;
} hpr_channel;

static hpr_channel *channels;

const char *hp_ws_path(void)
{
    return rt.cur && rt.cur->kind == HPR_TASK_WS_SERVER ? rt.cur->ws_path
                                                        : NULL;
}

bool hp_ws_push(uint32_t channel_id, hp_ws_message_type type, const void *data,
                size_t len)
{
    if ((unsigned)type > HP_WS_CLOSE)
        return false;
    char body[120];
    snprintf(body, sizeof body,
             "{\"WebSocketPush\":{\"channel_id\":%u,\"message_type\":\"%s\"}}",
             (unsigned)channel_id, ws_type_names[type]);
    send_to("http-server", "distro", "sys", body, false, 0, NULL,
            data ? (const uint8_t *)data : (const uint8_t *)"", len);
    return true;
}

size_t hp_ws_broadcast(const char *path, hp_ws_message_type type,
                       const void *data, size_t len)
{
    size_t n = 0;
    hpr_channel *c, *tmp;
    HASH_ITER(hh, channels, c, tmp)
    {
        if (path == NULL || strcmp(path, c->path) == 0)
            n += hp_ws_push(c->id, type, data, len);
    }
    return n;
}

bool hp_ws_close(uint32_t channel_id)
{
    char body[64];
    snprintf(body, sizeof body, "{\"WebSocketClose\":%u}",
             (unsigned)channel_id);
    send_to("http-server", "distro", "sys", body, false, 0, NULL, NULL, 0);
    return true;
}

/* A request from http-server:distro:sys: an HTTP request for a handler,
 * or a WebSocket event of a binding.  NULL when it is neither (logged) or
 * nothing handles it. */
static hp_task *http_server_task(hw_receive_result *r)
{
    const hp_process_impl *im = rt.impl;
    hp_task *t = task_new(HPR_TASK_HTTP, &r->source);
    if (t == NULL)
        return NULL;
    hp_arena *a = &t->arena;
    const char *perr = NULL;
    hp_jv *j = hp_json_parse(a, (const char *)r->message.request.body.ptr,
                             r->message.request.body.len, &perr);
    const hp_jv *http = j ? hp_jv_get(j, "Http") : NULL;
    const hp_jv *open = j ? hp_jv_get(j, "WebSocketOpen") : NULL;
    const hp_jv *push = j ? hp_jv_get(j, "WebSocketPush") : NULL;
    const hp_jv *close = j ? hp_jv_get(j, "WebSocketClose") : NULL;
    hw_blob blob;
    bool have_blob = hw_get_blob(&blob);
    if (http && http->kind == HP_JV_OBJECT) {
        const hp_jv *m = hp_jv_get(http, "method");
        const hp_jv *u = hp_jv_get(http, "url");
        t->http_method = m && m->kind == HP_JV_STRING ? m->str : "GET";
        t->http_url = u && u->kind == HP_JV_STRING ? u->str : "/";
        t->http_path = path_of_url(a, t->http_url);
        t->http_headers = hp_jv_get(http, "headers");
        t->http_query = hp_jv_get(http, "query_params");
        t->expects_response = r->message.request.has_expects_response;
        size_t n = have_blob ? blob.bytes.len : 0;
        char *body = hp_arena_alloc(a, n + 1);
        if (body && n)
            memcpy(body, blob.bytes.ptr, n);
        t->body = body ? body : "";
        t->body_len = body ? n : 0;
        if (have_blob)
            hw_blob_fini(&blob);
        return t;
    }
    t->kind = HPR_TASK_WS_SERVER;
    uint64_t ch = 0;
    bool ok = false;
    if (open) {
        const hp_jv *c = hp_jv_get(open, "channel_id");
        const hp_jv *p = hp_jv_get(open, "path");
        ok = c && p && p->kind == HP_JV_STRING &&
             hp_jd_uint(a, c, UINT32_MAX, "u32", &ch, &perr) == 0;
        if (ok) {
            t->ws_type = HP_WS_OPEN;
            t->ws_path = p->str;
            hpr_channel *e = calloc(1, sizeof *e);
            if (e && (e->path = strdup(p->str)) != NULL) {
                e->id = (uint32_t)ch;
                hpr_channel *old = NULL;
                HASH_FIND(hh, channels, &e->id, sizeof e->id, old);
                if (old) {
                    HASH_DEL(channels, old);
                    free(old->path);
                    free(old);
                }
                HASH_ADD(hh, channels, id, sizeof e->id, e);
            } else {
                free(e);
            }
        }
    } else if (push) {
        const hp_jv *c = hp_jv_get(push, "channel_id");
        int type = ws_type_of(hp_jv_get(push, "message_type"));
        ok = c && type >= 0 &&
             hp_jd_uint(a, c, UINT32_MAX, "u32", &ch, &perr) == 0;
        t->ws_type = (hp_ws_message_type)type;
    } else if (close) {
        ok = hp_jd_uint(a, close, UINT32_MAX, "u32", &ch, &perr) == 0;
        t->ws_type = HP_WS_CLOSE;
    }
    if (!ok) {
        hp_log_info("dropped a message from http-server that is neither an "
                    "HTTP request nor a WebSocket event");
        if (have_blob)
            hw_blob_fini(&blob);
        task_free(t);
        return NULL;
    }
    t->ws_channel = (uint32_t)ch;
    hpr_channel *e = NULL;
    HASH_FIND(hh, channels, &t->ws_channel, sizeof t->ws_channel, e);
    if (e && !t->ws_path)
        t->ws_path = hp_arena_strdup(a, e->path);
    if (close && e) {
        HASH_DEL(channels, e);
        free(e->path);
        free(e);
    }
    if (have_blob)
        t->ws_blob = blob;
    else
        memset(&t->ws_blob, 0, sizeof t->ws_blob);
    if (im->ws == NULL) {
        hp_log_debug("dropped a WebSocket event: no HP_WS handler");
        task_free(t);
        return NULL;
    }
    return t;
}

/* ------------------------------------------------------ binding at start */

static const char *mime_of(const char *name)
{
    static const char *const map[][2] = {
        {".html", "text/html"},     {".htm", "text/html"},
        {".js", "text/javascript"}, {".mjs", "text/javascript"},
        {".css", "text/css"},       {".json", "application/json"},
        {".svg", "image/svg+xml"},  {".png", "image/png"},
        {".jpg", "image/jpeg"},     {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},      {".ico", "image/x-icon"},
        {".webp", "image/webp"},    {".wasm", "application/wasm"},
        {".txt", "text/plain"},     {".woff2", "font/woff2"},
        {".woff", "font/woff"},     {".map", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(dot, map[i][0]) == 0)
            return map[i][1];
    return "application/octet-stream";
}

/* The Bind request of an HTTP path with config c (NULL: Rust's default). */
static char *bind_body(hp_arena *a, const char *path, const hp_http_config *c,
                       bool cache)
{
    bool auth = c ? c->authenticated : true;
    bool local = c ? c->local_only : false;
    hp_jw w;
    hp_jw_init(&w);
    if (hp_jw_string(&w, path, strlen(path)) != 0) {
        hp_jw_fini(&w);
        return NULL;
    }
    char *out;
    if (c && c->secure_subdomain)
        out = hp_arena_sprintf(a, "{\"SecureBind\":{\"path\":%s,\"cache\":%s}}",
                               w.buf, cache ? "true" : "false");
    else
        out = hp_arena_sprintf(a,
                               "{\"Bind\":{\"path\":%s,\"authenticated\":%s,"
                               "\"local_only\":%s,\"cache\":%s}}",
                               w.buf, auth ? "true" : "false",
                               local ? "true" : "false",
                               cache ? "true" : "false");
    hp_jw_fini(&w);
    return out;
}

/* Whether a Bind call succeeded; logs why not. */
static bool bind_ok(const hp_rpc_call_spec *c, const char *what)
{
    if (c->err.kind == HP_RPC_OK && c->reply && hp_jv_get(c->reply, "Ok"))
        return true;
    hp_log_error("binding %s failed: %s", what,
                 c->err.kind != HP_RPC_OK
                     ? hp_arena_sprintf(hp_message_arena(), "%s: %s",
                                        hp_rpc_kind_name(c->err.kind),
                                        c->err.message)
                     : "the http-server refused it (does the manifest grant "
                       "http-server:distro:sys messaging?)");
    return false;
}

static const hp_http_config *config_for(const char *path)
{
    const hp_binding *best = NULL;
    for (const hp_binding *b = rt.impl->decl->endpoints; b && b->kind; b++) {
        if (b->kind != HP_BINDING_HTTP)
            continue;
        size_t l = strlen(b->path);
        if (strncmp(path, b->path, l) == 0 &&
            (path[l] == '\0' || path[l] == '/' || l == 1) &&
            (best == NULL || l > strlen(best->path)))
            best = b;
        if (best == NULL)
            best = b;
    }
    return best ? &best->http : NULL;
}

/* Serve the package's UI folder: every file bound as static content (GET),
 * index.html also at "/" (as process_lib's serve_ui). */
static void serve_ui(hw_address *http, hw_address *vfs)
{
    const hp_process_decl *d = rt.impl->decl;
    hp_arena *a = hp_message_arena();
    const char *dir = d->ui_path ? d->ui_path : "ui";
    const char *root =
        hp_arena_sprintf(a, "/%s:%s/pkg/%s", rt.our.process.package_name,
                         rt.our.process.publisher_node, dir);
    /* a breadth-first walk with ReadDir */
    const char **todo = hp_arena_alloc(a, 256 * sizeof *todo);
    size_t head = 0, tail = 0, bound = 0;
    todo[tail++] = root;
    while (head < tail) {
        const char *cur = todo[head++];
        hp_rpc_call_spec rd = {.target = vfs};
        rd.body = hp_arena_sprintf(
            a, "{\"path\":\"%s\",\"action\":\"ReadDir\"}", cur);
        rd.len = strlen(rd.body);
        hp_rpc_fanout(&rd, 1, &(hp_rpc_opts){.timeout_s = 5});
        const hp_jv *list = rd.reply ? hp_jv_get(rd.reply, "ReadDir") : NULL;
        if (list == NULL || list->kind != HP_JV_ARRAY) {
            hp_log_error("ui: cannot read %s (a pkg/%s folder is needed; "
                         "does the manifest grant vfs:distro:sys?)",
                         cur, dir);
            return;
        }
        for (size_t i = 0; i < list->len; i++) {
            const hp_jv *p = hp_jv_get(list->items[i], "path");
            const hp_jv *ft = hp_jv_get(list->items[i], "file_type");
            if (p == NULL || p->kind != HP_JV_STRING)
                continue;
            const char *full = hp_arena_sprintf(a, "/%s", p->str);
            if (ft && ft->kind == HP_JV_STRING &&
                strcmp(ft->str, "Directory") == 0) {
                if (tail < 256)
                    todo[tail++] = full;
                continue;
            }
            hp_rpc_call_spec rf = {.target = vfs};
            rf.body = hp_arena_sprintf(
                a, "{\"path\":\"%s\",\"action\":\"Read\"}", full);
            rf.len = strlen(rf.body);
            hp_rpc_fanout(&rf, 1, &(hp_rpc_opts){.timeout_s = 5});
            if (rf.err.kind != HP_RPC_OK)
                continue;
            const char *rel = full + strlen(root);
            const char *mime = mime_of(rel);
            const char *paths[2] = {rel, NULL};
            const char *base = strrchr(rel, '/');
            if (base && strcmp(base, "/index.html") == 0)
                paths[1] = base == rel
                               ? "/"
                               : hp_arena_strndup(a, rel, (size_t)(base - rel));
            for (int k = 0; k < 2 && paths[k]; k++) {
                hp_rpc_call_spec b = {.target = http};
                b.body = bind_body(a, paths[k], d->ui, true);
                b.len = b.body ? strlen(b.body) : 0;
                b.blob = rf.blob_back.ptr;
                b.blob_len = rf.blob_back.len;
                b.blob_mime = mime;
                hp_rpc_fanout(&b, 1, &(hp_rpc_opts){.timeout_s = 5});
                bound += bind_ok(&b, paths[k]);
            }
        }
    }
    hp_log_debug("ui: %zu paths bound from %s", bound, root);
}

/* Endpoints, handler paths, the UI and the homepage tile, before the
 * user's init (framework.md §11), from the init task. */
static void bind_all(void)
{
    const hp_process_impl *im = rt.impl;
    const hp_process_decl *d = im->decl;
    hp_arena *a = hp_message_arena();
    hw_address http, vfs;
    addr_set(&http, rt.our.node, "http-server", "distro", "sys");
    addr_set(&vfs, rt.our.node, "vfs", "distro", "sys");
    if (d->icon || d->widget) {
        hp_jw w;
        hp_jw_init(&w);
        hp_jw_raw(&w, "{\"Add\":{\"label\":", 16);
        hp_jw_string(&w, d->name ? d->name : "", d->name ? strlen(d->name) : 0);
        hp_jw_raw(&w, ",\"icon\":", 8);
        if (d->icon)
            hp_jw_string(&w, d->icon, strlen(d->icon));
        else
            hp_jw_null(&w);
        hp_jw_raw(&w, d->ui ? ",\"path\":\"/\"" : ",\"path\":null",
                  d->ui ? 11 : 12);
        hp_jw_raw(&w, ",\"widget\":", 10);
        if (d->widget)
            hp_jw_string(&w, d->widget, strlen(d->widget));
        else
            hp_jw_null(&w);
        hp_jw_raw(&w, "}}", 2);
        if (hp_jw_ok(&w))
            send_to("homepage", "homepage", "sys", w.buf, false, 0, NULL, NULL,
                    0);
        hp_jw_fini(&w);
    }
    /* endpoints, then handler paths not bound by them */
    size_t n = 0;
    for (const hp_binding *b = d->endpoints; b && b->kind; b++)
        n++;
    for (size_t i = 0; i < im->variants_len; i++)
        n += im->variants[i].http_path != NULL;
    if (n == 0 && d->ui == NULL)
        return;
    hp_rpc_call_spec *c = hp_arena_alloc(a, (n ? n : 1) * sizeof *c);
    const char **what = hp_arena_alloc(a, (n ? n : 1) * sizeof *what);
    if (c == NULL || what == NULL)
        return;
    memset(c, 0, (n ? n : 1) * sizeof *c);
    size_t k = 0;
    for (const hp_binding *b = d->endpoints; b && b->kind; b++) {
        hp_jw p;
        hp_jw_init(&p);
        hp_jw_string(&p, b->path, strlen(b->path));
        if (b->kind == HP_BINDING_HTTP) {
            c[k].body =
                bind_body(a, b->path, &b->http, b->http.static_content != NULL);
            if (b->http.static_content) {
                c[k].blob = (const uint8_t *)b->http.static_content;
                c[k].blob_len = strlen(b->http.static_content);
                c[k].blob_mime =
                    b->http.static_mime ? b->http.static_mime : "text/plain";
            }
        } else if (b->ws.secure_subdomain) {
            c[k].body = hp_arena_sprintf(
                a, "{\"WebSocketSecureBind\":{\"path\":%s,\"extension\":%s}}",
                p.buf, b->ws.extension ? "true" : "false");
        } else {
            c[k].body = hp_arena_sprintf(
                a,
                "{\"WebSocketBind\":{\"path\":%s,\"authenticated\":%s,"
                "\"extension\":%s}}",
                p.buf, b->ws.authenticated ? "true" : "false",
                b->ws.extension ? "true" : "false");
        }
        hp_jw_fini(&p);
        what[k++] = b->path;
    }
    for (size_t i = 0; i < im->variants_len; i++) {
        const char *hp = im->variants[i].http_path;
        bool dup = false;
        for (size_t q = 0; hp && q < k; q++)
            dup |= strcmp(what[q], hp) == 0;
        if (hp == NULL || dup)
            continue;
        c[k].body = bind_body(a, hp, config_for(hp), false);
        what[k++] = hp;
    }
    for (size_t i = 0; i < k; i++) {
        c[i].target = &http;
        c[i].len = c[i].body ? strlen(c[i].body) : 0;
    }
    hp_rpc_fanout(c, k, &(hp_rpc_opts){.timeout_s = 5});
    size_t ok = 0;
    for (size_t i = 0; i < k; i++)
        ok += bind_ok(&c[i], what[i]);
    if (k)
        hp_log_debug("bound %zu of %zu paths", ok, k);
    if (d->ui)
        serve_ui(&http, &vfs);
}

/* ------------------------------------------------------------- main loop */

/* A WebSocket event from http-client:distro:sys (a connection this process
 * opened): {"WebSocketPush":{"channel_id":N,"message_type":"Text"}} with
 * the payload as blob, or {"WebSocketClose":{"channel_id":N}}.  NULL when
 * the message is not one, or nothing handles it. */
static hp_task *ws_client_task(hw_receive_result *r)
{
    const hp_process_impl *im = rt.impl;
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
    int type = push ? ws_type_of(hp_jv_get(push, "message_type")) : HP_WS_CLOSE;
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

/* No room for another task: a request that wants an answer gets Busy (an
 * HTTP request 503), a WebSocket event is dropped. */
static void refuse_busy(hw_receive_result *r, bool http)
{
    hp_log_warn("refused a %s: too many tasks (limit %zu)",
                http ? "message from http-server" : "request", rt.max_tasks);
    if (!r->message.request.has_expects_response)
        return;
    hp_jw w;
    hp_jw_init(&w);
    char msg[96];
    snprintf(msg, sizeof msg, "too many tasks (limit %zu); try again later",
             rt.max_tasks);
    error_body(&w, hp_refusal_name(HP_REFUSAL_BUSY), msg);
    hw_response resp;
    memset(&resp, 0, sizeof resp);
    hw_blob blob;
    memset(&blob, 0, sizeof blob);
    if (http) {
        static const char head[] = "{\"status\":503,\"headers\":{"
                                   "\"Content-Type\":\"application/json\"}}";
        resp.body.ptr = (uint8_t *)head;
        resp.body.len = sizeof head - 1;
        blob.bytes.ptr = (uint8_t *)(w.buf ? w.buf : "");
        blob.bytes.len = w.len;
    } else {
        resp.body.ptr = (uint8_t *)(w.buf ? w.buf : "");
        resp.body.len = w.len;
        resp.metadata = "{\"hyperc\":\"error\"}";
    }
    hw_send_response(&resp, http ? &blob : NULL);
    hp_jw_fini(&w);
}

static void on_request(hw_receive_result *r)
{
    bool local = strcmp(r->source.node, rt.our.node) == 0;
    bool http = local && is_module(&r->source, "http-server");
    if (rt.live >= rt.max_tasks) {
        refuse_busy(r, http);
        return;
    }
    hp_task *t;
    if (local && is_module(&r->source, "http-client")) {
        t = ws_client_task(r);
    } else if (http) {
        t = http_server_task(r);
    } else {
        t = task_new(HPR_TASK_REQUEST, &r->source);
        if (t == NULL) {
            refuse_busy(r, false); /* out of memory for a task */
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
        if (!r->is_err) {
            hw_blob b;
            if (hw_get_blob(&b)) {
                uint8_t *copy =
                    hp_arena_alloc(&w->task->arena, b.bytes.len + 1);
                if (copy) {
                    if (b.bytes.len)
                        memcpy(copy, b.bytes.ptr, b.bytes.len);
                    sp->blob_back.ptr = copy;
                    sp->blob_back.len = b.bytes.len;
                }
                hw_blob_fini(&b);
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
    {
        /* init (bindings, then the app's init) runs as a task: messages
         * arriving while it waits are handled, not lost */
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
