/* libhyperc runtime: HTTP requests from http-server (routing, arguments, status
 * and headers) and WebSocket events (server and client).  Internal (rt_int.h).
 */
#include "rt_int.h"

#include <ctype.h>

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

/* Whether two parameter names are the same but for case, '_' and '-'
 * ("note_id", "noteId", "note-id"). */
static bool same_name_loosely(const char *x, const char *y)
{
    for (;;) {
        while (*x == '_' || *x == '-')
            x++;
        while (*y == '_' || *y == '-')
            y++;
        if (*x == 0 || *y == 0)
            return *x == *y;
        if (tolower((unsigned char)*x) != tolower((unsigned char)*y))
            return false;
        x++, y++;
    }
}

/* The query parameter of a handler parameter: by its C name, else by the
 * same name spelled otherwise (the TypeScript client sends the WIT name
 * in snake_case, which is the C name for snake_case names). */
static const char *query_param(const hp_jv *query, const char *name)
{
    const char *q = jv_lookup(query, name, false);
    if (q || query == NULL || query->kind != HP_JV_OBJECT)
        return q;
    for (size_t i = 0; i < query->len; i++)
        if (same_name_loosely(query->keys[i], name) &&
            query->items[i]->kind == HP_JV_STRING)
            return query->items[i]->str;
    return NULL;
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
        const char *q = query_param(t->http_query, v->param_names[i]);
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

/* Whether `path` is "/api/<name>" for the variant `variant`: the path kit's
 * WIT comment and TypeScript client give a handler that declares none
 * ("// HTTP: POST /api/get-count").  The name is compared with the variant
 * without its '-' and without case, so that kit's kebab-case ("get-count",
 * "get-2fa") is found from the variant ("GetCount", "Get2fa"). */
static bool implicit_path_is(const char *variant, const char *path)
{
    if (strncmp(path, "/api/", 5) != 0)
        return false;
    const char *p = path + 5, *v = variant;
    while (*p && *v) {
        if (*p == '-') {
            p++;
            continue;
        }
        if (tolower((unsigned char)*p) != tolower((unsigned char)*v))
            return false;
        p++, v++;
    }
    return *p == 0 && *v == 0;
}

/* The path of a handler as the 404 lists it: its own, else "/api/" + the
 * kebab-case of its variant. */
static const char *route_path(hp_arena *a, const hp_variant *v)
{
    if (v->http_path)
        return v->http_path;
    size_t n = strlen(v->name);
    char *out = hp_arena_alloc(a, 5 + 2 * n + 1);
    if (out == NULL)
        return "/api/?";
    memcpy(out, "/api/", 5);
    size_t o = 5;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v->name[i];
        if (isupper(c) && i > 0)
            out[o++] = '-';
        out[o++] = (char)tolower(c);
    }
    out[o] = 0;
    return out;
}

/* The 404 of a request no handler takes: what it asked, the routes of
 * this process (method or ANY, and path, in source order), and the
 * variants a {"Variant": arguments} body reaches. */
static const char *not_found_message(hp_arena *a, const hp_task *t,
                                     const hp_variant *const *by_order,
                                     size_t n)
{
    const hw_process_id *me = &hpr_rt.our.process;
    const char *m = hp_arena_sprintf(
        a, "no handler for %s %s; the routes of /%s:%s:%s are", t->http_method,
        t->http_path, me->process_name, me->package_name, me->publisher_node);
    for (size_t i = 0; i < n && m; i++)
        m = hp_arena_sprintf(a, "%s%s %s %s", m, i ? "," : "",
                             by_order[i]->http_method ? by_order[i]->http_method
                                                      : "ANY",
                             route_path(a, by_order[i]));
    if (n == 0 && m)
        m = hp_arena_sprintf(a, "%s none (no HP_HTTP handler)", m);
    for (size_t i = 0; i < n && m; i++)
        m = hp_arena_sprintf(a, "%s%s%s", m,
                             i ? ", "
                               : "; a body {\"Variant\": arguments} "
                                 "on any of its paths calls ",
                             by_order[i]->name);
    return m ? m : "no handler for this request";
}

/* Route an HTTP request: a handler is found by its path (the one it
 * declares, else "/api/<its name>") and method (405 with Allow when only
 * the method is wrong), its arguments from the body (the value, an array,
 * or the {"Variant": args} envelope) or else from the query; otherwise a
 * body {"Variant": args} reaches any HTTP handler (what Rust clients
 * send); otherwise 404 listing the routes. */
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
    /* declared paths first, then the implicit "/api/<name>" ones */
    for (int pass = 0; pass < 2 && hit == NULL && allow[0] == 0; pass++)
        for (size_t i = 0; i < n; i++) {
            const hp_variant *v = by_order[i];
            bool at = pass == 0 ? v->http_path != NULL &&
                                      strcmp(v->http_path, t->http_path) == 0
                                : v->http_path == NULL &&
                                      implicit_path_is(v->name, t->http_path);
            if (!at)
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
        t->http_status =
            (uint16_t)hp_refusal_http_status(HP_REFUSAL_METHOD_NOT_ALLOWED);
        hp_http_set_header("Allow", allow);
        hpr_error_body(w, hp_refusal_name(HP_REFUSAL_METHOD_NOT_ALLOWED),
                       hp_arena_sprintf(a, "%s %s: use %s", t->http_method,
                                        t->http_path, allow));
        return;
    } else if (t->body_len > 0) {
        rc = hp_process_dispatch(im, a, HP_FROM_HTTP, t->body, t->body_len, w);
        if (rc != HP_REFUSAL_OK) {
            t->http_status = (uint16_t)hp_refusal_http_status(rc);
            return; /* the error body is written */
        }
        return;
    } else {
        t->http_status = (uint16_t)hp_refusal_http_status(HP_REFUSAL_NOT_FOUND);
        hpr_error_body(w, hp_refusal_name(HP_REFUSAL_NOT_FOUND),
                       not_found_message(a, t, by_order, n));
        return;
    }
    if (rc != HP_REFUSAL_OK) {
        t->http_status = (uint16_t)hp_refusal_http_status(rc);
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
    bool closed; /* its Close frame came: the WebSocketClose that follows
                    is not a second close */
    UT_hash_handle hh;
} hpr_channel;

#define channels (hp__inst()->channels)

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
    char body[HCC_WS_PUSH_BODY_MAX];
    hcc_ws_push_body(body, channel_id, (int)type);
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
        if (!c->closed && (path == NULL || strcmp(path, c->path) == 0))
            n += hp_ws_push(c->id, type, data, len);
    }
    return n;
}

size_t hp_ws_channels(const char *path, uint32_t *out, size_t max)
{
    size_t n = 0;
    hpr_channel *c, *tmp;
    HASH_ITER(hh, channels, c, tmp)
    {
        if (c->closed || (path && strcmp(path, c->path) != 0))
            continue;
        if (n < max && out)
            out[n] = c->id;
        n++;
    }
    return n;
}

/* ------------------------------------------------ outgoing WebSockets */

/* One request to http-client:distro:sys, waited for. */
static hp_rpc_error client_action(const char *body, const void *data,
                                  size_t len)
{
    return hpr_module_action("http-client", body, data, len, 30, "http-client",
                             "");
}

hp_rpc_error hp_ws_client_open(const char *url, const char *const *headers,
                               uint32_t channel_id)
{
    hp_jw w;
    hp_jw_init(&w);
    static const char head[] = "{\"WebSocketOpen\":{\"url\":";
    hp_jw_raw(&w, head, sizeof head - 1);
    bool ok = hp_jw_string(&w, url, strlen(url)) == 0;
    hp_jw_raw(&w, ",\"headers\":{", 12);
    for (size_t i = 0; ok && headers && headers[i] && headers[i + 1]; i += 2) {
        if (i)
            hp_jw_raw(&w, ",", 1);
        ok = hp_jw_string(&w, headers[i], strlen(headers[i])) == 0;
        hp_jw_raw(&w, ":", 1);
        ok =
            ok && hp_jw_string(&w, headers[i + 1], strlen(headers[i + 1])) == 0;
    }
    char tail[48];
    snprintf(tail, sizeof tail, "},\"channel_id\":%u}}", (unsigned)channel_id);
    hp_jw_raw(&w, tail, strlen(tail));
    hp_rpc_error e;
    if (!ok || !hp_jw_ok(&w)) {
        e.kind = HP_RPC_BUILD;
        e.message = "the URL or a header is not UTF-8";
    } else {
        e = client_action(w.buf, NULL, 0);
    }
    hp_jw_fini(&w);
    return e;
}

hp_rpc_error hp_ws_client_push(uint32_t channel_id, hp_ws_message_type type,
                               const void *data, size_t len)
{
    if ((unsigned)type > HP_WS_CLOSE) {
        hp_rpc_error e = {HP_RPC_BUILD, "not a WebSocket message type"};
        return e;
    }
    char body[HCC_WS_PUSH_BODY_MAX];
    hcc_ws_push_body(body, channel_id, (int)type);
    return client_action(body, data ? data : "", data ? len : 0);
}

hp_rpc_error hp_ws_client_close(uint32_t channel_id)
{
    char body[64];
    snprintf(body, sizeof body, "{\"WebSocketClose\":{\"channel_id\":%u}}",
             (unsigned)channel_id);
    return client_action(body, NULL, 0);
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
    const char *raw = (const char *)r->message.request.body.ptr;
    size_t raw_len = r->message.request.body.len;
    /* a WebSocket message, the event that comes most, without a tree; the
     * tree for everything else */
    uint32_t fast_ch = 0;
    int fast_type = 0;
    bool fast_push = hcc_ws_push_read(raw, raw_len, &fast_ch, &fast_type);
    hp_jv *j = fast_push ? NULL : hp_json_parse(a, raw, raw_len, &perr);
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
    } else if (fast_push) {
        ok = true;
        ch = fast_ch;
        t->ws_type = (hp_ws_message_type)fast_type;
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
    /* A client's close reaches the process twice, as on Hyperware: its
     * Close frame (a push) and the channel's end (WebSocketClose).  The
     * handler hears it once: at the first of the two. */
    bool repeat = close && e && e->closed;
    if ((push || fast_push) && t->ws_type == HP_WS_CLOSE && e) {
        if (e->closed)
            repeat = true;
        e->closed = true;
    }
    if (close && e) {
        HASH_DEL(channels, e);
        free(e->path);
        free(e);
    }
    if (repeat) {
        if (have_blob)
            hw_blob_fini(&blob);
        hpr_task_free(t);
        return NULL;
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

const struct hp__http_runtime hp__http_runtime = {
    .server_task = hpr_http_server_task,
    .dispatch = hpr_http_dispatch,
    .answer = hpr_http_answer,
    .bind_all = hpr_bind_all,
};
