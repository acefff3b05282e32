/* libhyperc runtime: HTTP requests from http-server (routing, arguments, status
 * and headers) and WebSocket events (server and client).  Internal (rt_int.h).
 */
#include "rt_int.h"

/* ------------------------------------------------------------------- HTTP */

bool hp_http_is_request(void)
{
    return hpr_rt.cur && hpr_rt.cur->kind == HPR_TASK_HTTP;
}

const char *hp_http_method(void)
{
    return hp_http_is_request() ? hpr_rt.cur->http_method : NULL;
}

const char *hp_http_path(void)
{
    return hp_http_is_request() ? hpr_rt.cur->http_path : NULL;
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
    return hp_http_is_request()
               ? jv_lookup(hpr_rt.cur->http_headers, name, true)
               : NULL;
}

const char *hp_http_query(const char *name)
{
    return hp_http_is_request() ? jv_lookup(hpr_rt.cur->http_query, name, false)
                                : NULL;
}

void hp_http_set_status(uint16_t status)
{
    if (hp_http_is_request())
        hpr_rt.cur->http_status = status;
}

void hp_http_set_header(const char *name, const char *value)
{
    hp_task *t = hpr_rt.cur;
    if (!hp_http_is_request() || name == NULL || value == NULL)
        return;
    for (size_t i = 0; i < t->nresp; i++)
        if (strcasecmp(t->resp_headers[i].name, name) == 0) {
            t->resp_headers[i].value = hp_arena_strdup(&t->hdr_arena, value);
            return;
        }
    if (t->nresp == t->capresp) {
        size_t cap = t->capresp ? t->capresp * 2 : 8;
        struct hpr_header *v =
            hp_arena_alloc(&t->hdr_arena, cap * sizeof *t->resp_headers);
        if (v == NULL)
            return;
        if (t->nresp)
            memcpy(v, t->resp_headers, t->nresp * sizeof *v);
        t->resp_headers = v;
        t->capresp = cap;
    }
    t->resp_headers[t->nresp].name = hp_arena_strdup(&t->hdr_arena, name);
    t->resp_headers[t->nresp].value = hp_arena_strdup(&t->hdr_arena, value);
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
void hpr_http_dispatch(hp_task *t, hp_jw *w)
{
    const hp_process_impl *im = hpr_rt.impl;
    hp_arena *a = &t->arena;
    const hp_variant **by_order =
        hp_arena_alloc(a, (im->variants_len + 1) * sizeof *by_order);
    size_t n = 0;
    for (size_t i = 0; i < im->variants_len && by_order; i++)
        if (im->variants[i].sources & HP_FROM_HTTP)
            by_order[n++] = &im->variants[i];
    if (by_order == NULL) {
        t->http_status = 500;
        hpr_error_body(w, hp_refusal_name(HP_REFUSAL_HANDLER_FAILED),
                       "out of memory");
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
                hpr_error_body(w, "BadJson",
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
                hpr_error_body(w, hp_refusal_name(HP_REFUSAL_BAD_ARGUMENTS),
                               err);
                return;
            }
        }
        rc = hit->call(a, im->state, args, w, &err);
    } else if (allow[0]) {
        t->http_status = 405;
        hp_http_set_header("Allow", allow);
        hpr_error_body(w, "MethodNotAllowed",
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
            hpr_error_body(w, "NotFound",
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
        hpr_error_body(w, hp_refusal_name(rc), err);
        hp_log_info("refused an HTTP request: %s: %s", hp_refusal_name(rc),
                    err);
    }
}

/* The answer to http-server: {"status":S,"headers":{...}} with the body as
 * blob. */
void hpr_http_answer(hp_task *t, const hp_jw *body)
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
    return hpr_rt.cur && hpr_rt.cur->kind == HPR_TASK_WS_SERVER
               ? hpr_rt.cur->ws_path
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
             (unsigned)channel_id, hcc_ws_type_name(type));
    hpr_send_to("http-server", "distro", "sys", body, false, 0, NULL,
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
    hpr_send_to("http-server", "distro", "sys", body, false, 0, NULL, NULL, 0);
    return true;
}

/* A request from http-server:distro:sys: an HTTP request for a handler,
 * or a WebSocket event of a binding.  NULL when it is neither (logged) or
 * nothing handles it. */
hp_task *hpr_http_server_task(hw_receive_result *r)
{
    const hp_process_impl *im = hpr_rt.impl;
    hp_task *t = hpr_task_new(HPR_TASK_HTTP, &r->source);
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
        int type = hpr_ws_type_of(hp_jv_get(push, "message_type"));
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
        hpr_task_free(t);
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
        hpr_task_free(t);
        return NULL;
    }
    return t;
}
