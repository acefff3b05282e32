/* A hyperprocess served over HTTP and WebSocket by the node's http-server:
 * path-less and routed handlers, query parameters, request headers,
 * response status and headers, WebSocket events and broadcast, and a UI
 * folder. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    char *title;
    uint32_t qty;
} item;

typedef HP_LIST(item) item_list;

typedef struct webapp_state {
    item_list items;
    uint64_t ws_messages;
    uint64_t ws_opens, ws_closes; /* events the handler heard */
} webapp_state;

HYPERPROCESS(
    webapp_state, .name = "webapp", .icon = "PHN2Zy8+",
    .ui = HP_UI(.authenticated = false),
    .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api", .authenticated = false),
                              HP_WS_BINDING("/ws", .authenticated = false)),
    .save_config = HP_SAVE_NEVER, .wit_world = "tweb-v0", .max_tasks = 2);

/* POST /api {"Add":[2,3]} -> 5 (what Rust clients send).  The numbers are
 * the client's: the sum saturates at INT64_MAX / INT64_MIN rather than
 * overflow (undefined behaviour, which stops a sanitized node). */
HP_HTTP
static int64_t add(webapp_state *s, int64_t a, int64_t b)
{
    (void)s;
    int64_t sum;
    if (__builtin_add_overflow(a, b, &sum))
        return a > 0 ? INT64_MAX : INT64_MIN;
    return sum;
}

/* GET /api/items */
HP_HTTP_ROUTE("GET", "/api/items")
static item_list list_items(const webapp_state *s)
{
    return s->items;
}

/* POST /api/items with the item as the body; 201 */
HP_HTTP_ROUTE("POST", "/api/items")
static uint64_t add_item(webapp_state *s, const item *it)
{
    item *v = realloc(s->items.ptr, (s->items.len + 1) * sizeof *v);
    if (v == NULL)
        return s->items.len;
    s->items.ptr = v;
    v[s->items.len].title = strdup(it->title ? it->title : "");
    v[s->items.len].qty = it->qty;
    s->items.len++;
    hp_http_set_status(201);
    hp_http_set_header("Location", "/api/items");
    return s->items.len;
}

/* GET /api/search?q=..&limit=.. */
HP_HTTP_ROUTE("GET", "/api/search")
static char *search(const webapp_state *s, const char *q, uint32_t limit)
{
    size_t found = 0;
    for (size_t i = 0; i < s->items.len && found < limit; i++)
        found += strstr(s->items.ptr[i].title, q) != NULL;
    return hp_sprintf("%zu match '%s' (limit %u)", found, q, (unsigned)limit);
}

/* any method on /api/whoami: the request as the handler sees it */
HP_HTTP_PATH("/api/whoami")
static char *whoami(webapp_state *s)
{
    (void)s;
    const char *h = hp_http_header("x-test");
    hp_http_set_header("X-Reply", "yes");
    return hp_sprintf("%s %s %s", hp_http_method(), hp_http_path(),
                      h ? h : "-");
}

/* GET /api/slow?ms=..: the request as seen after a wait */
HP_HTTP_ROUTE("GET", "/api/slow")
static char *slow(webapp_state *s, uint64_t ms)
{
    (void)s;
    hp_sleep_ms(ms);
    const char *h = hp_http_header("x-test");
    hp_http_set_header("X-After", h ? h : "-");
    return hp_sprintf("%s %s %s", hp_http_method(), hp_http_path(),
                      h ? h : "-");
}

/* WebSocket: welcome on open, echo each text, broadcast counts */
HP_WS
static void on_ws(webapp_state *s, uint32_t channel_id, hp_ws_message_type type,
                  const hw_blob *blob)
{
    if (type == HP_WS_CLOSE) {
        s->ws_closes++;
        return;
    }
    if (type == HP_WS_OPEN) {
        s->ws_opens++;
        const char *hello = hp_sprintf("welcome %s", hp_ws_path());
        hp_ws_push(channel_id, HP_WS_TEXT, hello, strlen(hello));
        return;
    }
    if (type != HP_WS_TEXT)
        return;
    s->ws_messages++;
    const char *echo = hp_sprintf("echo %.*s", (int)blob->bytes.len,
                                  (const char *)blob->bytes.ptr);
    hp_ws_push(channel_id, HP_WS_TEXT, echo, strlen(echo));
    const char *all =
        hp_sprintf("all %llu", (unsigned long long)s->ws_messages);
    hp_ws_broadcast("/ws", HP_WS_TEXT, all, strlen(all));
}

/* What the WebSocket handler heard, and the open channels of `path` */
HP_HTTP_ROUTE("GET", "/api/ws-stats")
static char *ws_stats(const webapp_state *s, const char *path)
{
    uint32_t ids[16];
    size_t n = hp_ws_channels(path[0] ? path : NULL, ids, 16);
    char *list = "";
    for (size_t i = 0; i < n && i < 16; i++)
        list = hp_sprintf("%s%s%u", list, i ? "," : "", (unsigned)ids[i]);
    return hp_sprintf("opens=%llu closes=%llu open=%zu [%s]",
                      (unsigned long long)s->ws_opens,
                      (unsigned long long)s->ws_closes, n, list);
}

/* Bind (or unbind) an HTTP path at run time with Rust's default config
 * (authenticated), or a WebSocket path unauthenticated: "Ok" or the
 * error. */
HP_HTTP_ROUTE("POST", "/api/bind")
static char *bind_path(webapp_state *s, const char *path, bool ws, bool unbind)
{
    (void)s;
    hp_ws_config w = {.authenticated = false};
    hp_rpc_error e = ws ? unbind ? hp_ws_unbind(path) : hp_ws_bind(path, &w)
                     : unbind ? hp_http_unbind(path)
                              : hp_http_bind(path, NULL);
    return e.kind == HP_RPC_OK
               ? "Ok"
               : hp_sprintf("%s: %s", hp_rpc_kind_name(e.kind), e.message);
}
