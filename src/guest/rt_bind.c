/* libhyperc runtime: what a process binds as it starts: endpoints, handler
 * paths, the UI folder and the homepage tile.  Internal (rt_int.h). */
#include "rt_int.h"

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
    for (const hp_binding *b = hpr_rt.impl->decl->endpoints; b && b->kind;
         b++) {
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

/* The pattern of everything under a dynamic HTTP endpoint ("/api" ->
 * "/api/ *path", without the space), so that a request for a path under it
 * that no handler declares reaches the process, which answers 404 with its
 * routes, and not the UI's index.html (http-server's fallback to the
 * process's "/" binding).  NULL for a WebSocket, static or "/" endpoint,
 * or one that has ':' or '*' segments already. */
static const char *subtree_of(hp_arena *a, const hp_binding *b)
{
    if (b->kind != HP_BINDING_HTTP || b->http.static_content != NULL)
        return NULL;
    size_t l = strlen(b->path);
    while (l > 0 && b->path[l - 1] == '/')
        l--;
    if (l == 0 || strstr(b->path, "/:") || strstr(b->path, "/*"))
        return NULL;
    return hp_arena_sprintf(a, "%.*s/*path", (int)l, b->path);
}

/* Serve the package's UI folder: every file bound as static content (GET),
 * index.html also at "/" (as process_lib's serve_ui). */
static void serve_ui(hw_address *http, hw_address *vfs)
{
    const hp_process_decl *d = hpr_rt.impl->decl;
    hp_arena *a = hp_message_arena();
    const char *dir = d->ui_path ? d->ui_path : "ui";
    const char *root =
        hp_arena_sprintf(a, "/%s:%s/pkg/%s", hpr_rt.our.process.package_name,
                         hpr_rt.our.process.publisher_node, dir);
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
void hpr_bind_all(void)
{
    const hp_process_impl *im = hpr_rt.impl;
    const hp_process_decl *d = im->decl;
    hp_arena *a = hp_message_arena();
    hw_address http, vfs;
    hpr_addr_set(&http, hpr_rt.our.node, "http-server", "distro", "sys");
    hpr_addr_set(&vfs, hpr_rt.our.node, "vfs", "distro", "sys");
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
            hpr_send_to("homepage", "homepage", "sys", w.buf, false, 0, NULL,
                        NULL, 0);
        hp_jw_fini(&w);
    }
    /* endpoints (a dynamic one also with everything under it), then
     * handler paths not bound by them */
    size_t n = 0;
    for (const hp_binding *b = d->endpoints; b && b->kind; b++)
        n += 1 + (subtree_of(a, b) != NULL);
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
        const char *sub = subtree_of(a, b);
        if (sub) {
            c[k].body = bind_body(a, sub, &b->http, false);
            what[k++] = sub;
        }
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

/* ------------------------------------------------- binding at run time */

hp_rpc_error hpr_module_action(const char *proc, const char *body,
                               const void *blob, size_t blob_len,
                               uint64_t timeout_s, const char *who,
                               const char *hint)
{
    hp_arena *a = hp_message_arena();
    hw_address to;
    hpr_addr_set(&to, hpr_rt.our.node, proc, "distro", "sys");
    hp_rpc_call_spec c = {.target = &to, .body = body, .len = strlen(body)};
    c.blob = blob;
    c.blob_len = blob ? blob_len : 0;
    hp_rpc_fanout(&c, 1, &(hp_rpc_opts){.timeout_s = timeout_s});
    if (c.err.kind == HP_RPC_OK && !(c.reply && hp_jv_get(c.reply, "Ok"))) {
        hp_jw w;
        hp_jw_init(&w);
        const char *err = NULL;
        if (c.reply == NULL || hp_jw_value(&w, a, c.reply, &err) != 0)
            hp_jw_raw(&w, "?", 1);
        c.err.kind = HP_RPC_REJECTED;
        c.err.message =
            hp_arena_sprintf(a, "%s: %s%s", who, w.buf ? w.buf : "?", hint);
        hp_jw_fini(&w);
    }
    return c.err;
}

/* One action for http-server about `what` (a path). */
static hp_rpc_error server_action(const char *body, const char *what)
{
    if (body == NULL) {
        hp_rpc_error e = {
            HP_RPC_BUILD,
            hp_arena_sprintf(hp_message_arena(), "%s: not a UTF-8 path", what)};
        return e;
    }
    /* http-server's requests for these paths are served from now on */
    hpr_rt.http = &hp__http_runtime;
    return hpr_module_action(
        "http-server", body, NULL, 0, 5,
        hp_arena_sprintf(hp_message_arena(), "http-server refused %s", what),
        " (does the manifest grant http-server:distro:sys messaging?)");
}

/* {"<Action>":{"path":"<path>"<rest>}} with the path escaped; NULL if it
 * is not UTF-8. */
static char *path_action(const char *action, const char *path, const char *rest)
{
    hp_jw p;
    hp_jw_init(&p);
    char *out = NULL;
    if (hp_jw_string(&p, path, strlen(path)) == 0)
        out = hp_arena_sprintf(hp_message_arena(), "{\"%s\":{\"path\":%s%s}}",
                               action, p.buf, rest);
    hp_jw_fini(&p);
    return out;
}

hp_rpc_error hp_http_bind(const char *path, const hp_http_config *cfg)
{
    return server_action(bind_body(hp_message_arena(), path, cfg, false), path);
}

hp_rpc_error hp_http_unbind(const char *path)
{
    return server_action(path_action("Unbind", path, ""), path);
}

hp_rpc_error hp_ws_bind(const char *path, const hp_ws_config *cfg)
{
    bool auth = cfg ? cfg->authenticated : true;
    bool ext = cfg ? cfg->extension : false;
    char *body =
        cfg && cfg->secure_subdomain
            ? path_action("WebSocketSecureBind", path,
                          ext ? ",\"extension\":true" : ",\"extension\":false")
            : path_action("WebSocketBind", path,
                          hp_arena_sprintf(hp_message_arena(),
                                           ",\"authenticated\":%s,"
                                           "\"extension\":%s",
                                           auth ? "true" : "false",
                                           ext ? "true" : "false"));
    return server_action(body, path);
}

hp_rpc_error hp_ws_unbind(const char *path)
{
    return server_action(path_action("WebSocketUnbind", path, ""), path);
}
