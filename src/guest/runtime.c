/* libhyperc's hyperprocess runtime (include/hyperc/runtime.h): the
 * process's life around the generated codecs and variant table.  This file:
 * the arena and who asks, sends, dispatch and the main loop; the rest is in
 * rt_*.c (rt_int.h says which). */
#include "rt_int.h"

static const char *const refusal_names[] = {
#define HP_REFUSAL_TEXT(name, text, status) text,
    HP_REFUSAL_MAP(HP_REFUSAL_TEXT)
#undef HP_REFUSAL_TEXT
};

static const unsigned short refusal_statuses[] = {
#define HP_REFUSAL_STATUS(name, text, status) status,
    HP_REFUSAL_MAP(HP_REFUSAL_STATUS)
#undef HP_REFUSAL_STATUS
};

const char *hp_refusal_name(hp_refusal r)
{
    if ((unsigned)r < sizeof refusal_names / sizeof refusal_names[0])
        return refusal_names[r];
    return "Unknown";
}

unsigned hp_refusal_http_status(hp_refusal r)
{
    if ((unsigned)r < sizeof refusal_statuses / sizeof refusal_statuses[0])
        return refusal_statuses[r];
    return 400;
}

/* ------------------------------------------------------------ arena, who */

hp_arena *hp_message_arena(void)
{
    return hpr_rt.cur ? &hpr_rt.cur->arena : NULL;
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
    return hpr_rt.cur && hpr_rt.cur->source.node ? &hpr_rt.cur->source
                                                 : &hpr_rt.our;
}

const hw_address *hp_our(void)
{
    return &hpr_rt.our;
}

bool hp_state_is_new(void)
{
    return hpr_rt.state_new;
}

/* ------------------------------------------------------------------ sends */

void hpr_addr_set(hw_address *a, char *node, const char *proc, const char *pkg,
                  const char *pub)
{
    a->node = node;
    a->process.process_name = (char *)proc;
    a->process.package_name = (char *)pkg;
    a->process.publisher_node = (char *)pub;
}

/* A request to our node's module `proc:distro:sys` (or any process id). */
void hpr_send_to(const char *proc, const char *pkg, const char *pub,
                 const char *body, bool expects, uint64_t timeout_s,
                 const char *context, const uint8_t *blob, size_t blob_len)
{
    hw_address to;
    hpr_addr_set(&to, hpr_rt.our.node, proc, pkg, pub);
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
void hpr_error_body(hp_jw *w, const char *kind, const char *msg)
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
        hpr_error_body(out, k, err);
        if (hpr_rt.impl == im)
            hp_log_info("refused a request: %s: %s", k, err ? err : "");
    }
    return r;
}

_Static_assert((int)HP_WS_TEXT == (int)HCC_WS_TEXT &&
                   (int)HP_WS_BINARY == (int)HCC_WS_BINARY &&
                   (int)HP_WS_PING == (int)HCC_WS_PING &&
                   (int)HP_WS_PONG == (int)HCC_WS_PONG &&
                   (int)HP_WS_CLOSE == (int)HCC_WS_CLOSE,
               "hp_ws_message_type follows HCC_WS_TYPE_MAP");

/* A WsMessageType from its JSON ("Text", ...); -1 if it is not one. */
int hpr_ws_type_of(const hp_jv *t)
{
    if (t == NULL || t->kind != HP_JV_STRING)
        return -1;
    return hcc_ws_type_parse(t->str, strlen(t->str));
}

/* ------------------------------------------------------------- main loop */

/* A WebSocket event from http-client:distro:sys (a connection this process
 * opened): {"WebSocketPush":{"channel_id":N,"message_type":"Text"}} with
 * the payload as blob, or {"WebSocketClose":{"channel_id":N}}.  NULL when
 * the message is not one, or nothing handles it. */
static hp_task *ws_client_task(hw_receive_result *r)
{
    const hp_process_impl *im = hpr_rt.impl;
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
    int type =
        push ? hpr_ws_type_of(hp_jv_get(push, "message_type")) : HP_WS_CLOSE;
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
    hp_task *t = hpr_task_new(HPR_TASK_WS, &r->source);
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
                http ? "message from http-server" : "request",
                hpr_rt.max_tasks);
    if (!r->message.request.has_expects_response)
        return;
    hp_jw w;
    hp_jw_init(&w);
    char msg[96];
    snprintf(msg, sizeof msg, "too many tasks (limit %zu); try again later",
             hpr_rt.max_tasks);
    hpr_error_body(&w, hp_refusal_name(HP_REFUSAL_BUSY), msg);
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

/* A message from http-server to a process that bound no path (it serves no
 * HTTP): answered 404 if it wants an answer, logged. */
static void refuse_unserved(hw_receive_result *r)
{
    hp_log_warn("dropped a message from http-server: this process binds no "
                "HTTP or WebSocket path");
    if (!r->message.request.has_expects_response)
        return;
    static const char head[] = "{\"status\":404,\"headers\":{}}";
    hw_response resp;
    memset(&resp, 0, sizeof resp);
    resp.body.ptr = (uint8_t *)head;
    resp.body.len = sizeof head - 1;
    hw_blob blob;
    memset(&blob, 0, sizeof blob);
    blob.bytes.ptr = (uint8_t *)"";
    hw_send_response(&resp, &blob);
}

static void on_request(hw_receive_result *r, bool lent)
{
    bool local = strcmp(r->source.node, hpr_rt.our.node) == 0;
    /* one look at the package and publisher for both modules */
    bool sys = local && hpr_is_module(&r->source, NULL);
    const char *from = r->source.process.process_name;
    bool http = sys && strcmp(from, "http-server") == 0;
    if (hpr_rt.live >= hpr_rt.max_tasks) {
        refuse_busy(r, http);
        return;
    }
    hp_task *t;
    if (sys && strcmp(from, "http-client") == 0) {
        t = ws_client_task(r);
    } else if (http && hpr_rt.http == NULL) {
        refuse_unserved(r);
        return;
    } else if (http) {
        t = hpr_rt.http->server_task(r);
    } else {
        /* a lent source is copied into the task's record; an owned one
         * the task takes (one block: abi_types.c) */
        t = hpr_task_new(HPR_TASK_REQUEST, lent ? &r->source : NULL);
        if (t == NULL) {
            refuse_busy(r, false); /* out of memory for a task */
            return;
        }
        if (!lent) {
            t->source = r->source;
            t->source_heap = true;
            memset(&r->source, 0, sizeof r->source);
        }
        size_t n = r->message.request.body.len;
        const char *in = n ? (const char *)r->message.request.body.ptr : "";
        char *body = hp_arena_strndup(&t->arena, in, n);
        t->body = body ? body : "";
        t->body_len = body ? n : 0;
        t->expects_response = r->message.request.has_expects_response;
        t->from = local ? HP_FROM_LOCAL : HP_FROM_REMOTE;
    }
    if (t == NULL)
        return;
    /* the host's current prompting message is this one until the next
     * receive, and t runs first (the ready list is empty at a receive):
     * t holds it only if it waits (task_wait), which most handlers never
     * do; no host calls for the others */
    t->hold_due = true;
    hpr_ready_push(t);
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
        hpr_rt.timer_armed = false;
        if (r->is_err) {
            hpr_rt.timer_broken = true;
            hp_log_error("save_config EveryNSeconds: timer:distro:sys did "
                         "not answer (does the manifest grant it "
                         "messaging?); saving after every message that "
                         "changes the state instead");
            return;
        }
        if (hpr_rt.since_save > 0)
            hpr_state_save(false);
        hpr_timer_arm();
        return;
    }
    hpr_wait *w = NULL;
    if (has && c->len >= 36)
        HASH_FIND(hh, hpr_waits, c->ptr, 36, w);
    if (w && w->task == NULL)
        w = NULL; /* the table's anchor (rt_task.c) */
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
        hpr_wait_complete(w, r);
        return;
    }
    hp_log_debug("dropped a %s nobody waits for (late, or cancelled)",
                 r->is_err ? "send error" : "response");
}

void hp_process_main(const hp_process_impl *im)
{
    memset(&hpr_rt, 0, sizeof hpr_rt);
    hp__started(false); /* said when init is done */
    hpr_rt.impl = im;
    hpr_rt.http = im->http;
    hpr_rt.max_tasks = im->decl->max_tasks ? im->decl->max_tasks : 16384;
    hpr_rt.stack = (size_t)im->decl->task_stack_kib * 1024;
    hw_our(&hpr_rt.our);
    hp_arena_init(&hpr_rt.arena);
    if (!hpr_state_load()) {
        hp_arena_fini(&hpr_rt.arena);
        hw_address_fini(&hpr_rt.our);
        return;
    }
    if (!im->decl->manual_logging)
        hp_log_init(HP_LOG_DEBUG, HP_LOG_INFO, 0);
    hp_log_debug("started%s", hpr_rt.state_new ? " with a new state" : "");
    if (im->decl->save_config.kind == HP_SAVE_KIND_EVERY_N_SECONDS)
        hpr_timer_arm();
    {
        /* init (bindings, then the app's init) runs as a task: messages
         * arriving while it waits are handled, not lost */
        hp_task *t = hpr_task_new(HPR_TASK_INIT, &hpr_rt.our);
        if (t == NULL) {
            hp_log_error("cannot start init: out of memory");
            hp__started(true);
        } else {
            hpr_rt.init_task = t;
            hpr_ready_push(t);
        }
    }
    for (;;) {
        hpr_run_ready();
        /* a lent message stays valid until the next receive: whatever of
         * it a task keeps is copied before (into its record or arena) */
        hw_receive_result r;
        bool lent = hp__receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST)
            on_request(&r, lent);
        else
            on_outcome(&r);
        if (!lent)
            hw_receive_result_fini(&r);
        if (hpr_rt.trim_pending)
            hpr_log_file_trim();
    }
}
