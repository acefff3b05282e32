/* The WebSocketPush action, {"WebSocketPush":{"channel_id":N,
 * "message_type":"Type"}}: written and read without a JSON tree, for the
 * node's http-server and the guest runtime (common.h).  It goes with every
 * WebSocket message, both ways.  And yajl's parse of a short body with its
 * memory on the stack (hcc_yajl_parse_short).  yajl tokenizes; nothing here
 * parses JSON itself, except that the body exactly as written here is
 * matched byte for byte first. */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* ------------------------------------------------------------ writing */

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

size_t hcc_ws_push_body(char *out, uint32_t channel, int type)
{
    static const char head[] = "{\"WebSocketPush\":{\"channel_id\":";
    static const char mid[] = ",\"message_type\":\"";
    const char *name = hcc_ws_type_name(type);
    if (name == NULL)
        name = hcc_ws_type_name(HCC_WS_CLOSE);
    char digits[10];
    size_t nd = 0;
    do {
        digits[sizeof digits - 1 - nd++] = (char)('0' + channel % 10);
        channel /= 10;
    } while (channel);
    char *p = put(out, head, sizeof head - 1);
    p = put(p, digits + sizeof digits - nd, nd);
    p = put(p, mid, sizeof mid - 1);
    p = put(p, name, strlen(name));
    p = put(p, "\"}}", 4); /* with the NUL */
    return (size_t)(p - out) - 1;
}

/* ------------------------------------------------------------ reading */

/* yajl's allocations for one short body, from a buffer on the stack: a
 * parse allocates its handle, lexer and buffers (five mallocs and frees
 * for every message otherwise).  Beyond the buffer, malloc. */
typedef struct bump {
    size_t used;
    _Alignas(16) unsigned char buf[2048];
} bump;

typedef struct bump_head {
    size_t size;
    size_t pad; /* keeps what follows 16-byte aligned */
} bump_head;

static bool bump_owns(bump *b, void *p)
{
    return (unsigned char *)p >= b->buf &&
           (unsigned char *)p < b->buf + sizeof b->buf;
}

static void *bump_malloc(void *ctx, size_t n)
{
    bump *b = ctx;
    size_t need = sizeof(bump_head) + ((n + 15) & ~(size_t)15);
    if (need > sizeof b->buf - b->used)
        return malloc(n);
    bump_head *h = (bump_head *)(void *)(b->buf + b->used);
    h->size = n;
    b->used += need;
    return h + 1;
}

static void bump_free(void *ctx, void *p)
{
    if (p != NULL && !bump_owns(ctx, p))
        free(p);
}

static void *bump_realloc(void *ctx, void *p, size_t n)
{
    bump *b = ctx;
    if (p == NULL)
        return bump_malloc(ctx, n);
    if (!bump_owns(b, p))
        return realloc(p, n);
    size_t old = ((bump_head *)p)[-1].size;
    if (n <= old)
        return p;
    void *q = bump_malloc(ctx, n);
    if (q != NULL)
        memcpy(q, p, old);
    return q;
}

/* The reader's state: yajl's callbacks see the tokens in order, and any
 * token outside the one shape stops the parse. */
typedef struct push_read {
    int depth; /* maps open */
    int want;  /* the value the last key names: 0 WebSocketPush's object,
                  1 channel_id, 2 message_type, -1 none */
    bool outer, done, have_id, have_type;
    uint32_t id;
    int type;
} push_read;

static int push_fail(void *ctx)
{
    (void)ctx;
    return 0;
}

static int push_bool(void *ctx, int b)
{
    (void)b;
    return push_fail(ctx);
}

static int push_start_map(void *ctx)
{
    push_read *r = ctx;
    bool ok = r->depth == 0 ? !r->outer : r->depth == 1 && r->want == 0;
    if (!ok)
        return 0;
    r->depth++;
    r->want = -1;
    return 1;
}

static bool key_is(const unsigned char *k, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(k, lit, n) == 0;
}

static int push_key(void *ctx, const unsigned char *k, size_t n)
{
    push_read *r = ctx;
    if (r->want != -1)
        return 0;
    if (r->depth == 1 && !r->outer && key_is(k, n, "WebSocketPush")) {
        r->outer = true;
        r->want = 0;
    } else if (r->depth == 2 && !r->have_id && key_is(k, n, "channel_id")) {
        r->have_id = true;
        r->want = 1;
    } else if (r->depth == 2 && !r->have_type && key_is(k, n, "message_type")) {
        r->have_type = true;
        r->want = 2;
    } else {
        return 0;
    }
    return 1;
}

/* The number as written: only decimal digits (yajl has checked the
 * grammar, so no leading zero), at most UINT32_MAX. */
static int push_number(void *ctx, const char *s, size_t n)
{
    push_read *r = ctx;
    if (r->depth != 2 || r->want != 1 || n == 0 || n > 10)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return 0;
    r->id = (uint32_t)v;
    r->want = -1;
    return 1;
}

static int push_string(void *ctx, const unsigned char *s, size_t n)
{
    push_read *r = ctx;
    if (r->depth != 2 || r->want != 2)
        return 0;
    r->type = hcc_ws_type_parse((const char *)s, n);
    r->want = -1;
    return r->type >= 0;
}

static int push_end_map(void *ctx)
{
    push_read *r = ctx;
    if (r->want != -1 || (r->depth == 2 && !(r->have_id && r->have_type)))
        return 0;
    r->done = r->done || r->depth == 2;
    r->depth--;
    return 1;
}

static const yajl_callbacks push_callbacks = {
    .yajl_null = push_fail,
    .yajl_boolean = push_bool,
    .yajl_number = push_number,
    .yajl_string = push_string,
    .yajl_start_map = push_start_map,
    .yajl_map_key = push_key,
    .yajl_end_map = push_end_map,
    .yajl_start_array = push_fail,
    .yajl_end_array = push_fail,
};

bool hcc_yajl_parse_short(const void *callbacks, void *ctx, const char *body,
                          size_t len)
{
    /* yajl takes \v and \f for blanks, JSON (and jansson) does not (and
     * neither byte can stand in a JSON string unescaped) */
    if (body == NULL || memchr(body, '\v', len) || memchr(body, '\f', len))
        return false;
    /* yajl takes an unterminated token after the value for one still to
     * come and reports no trailing garbage: the body must end with the
     * object or array itself (blanks aside), which leaves a string (one
     * can end in '}' or ']'); a quote given after the body closes such a
     * string, and yajl then sees the garbage, where after a body that
     * ends with its value the quote only opens one (taken, as above) */
    size_t end = len;
    while (end > 0 && (body[end - 1] == ' ' || body[end - 1] == '\t' ||
                       body[end - 1] == '\n' || body[end - 1] == '\r'))
        end--;
    if (end == 0 || (body[end - 1] != '}' && body[end - 1] != ']'))
        return false;
    bump b;
    b.used = 0;
    yajl_alloc_funcs af = {bump_malloc, bump_realloc, bump_free, &b};
    yajl_handle y = yajl_alloc(callbacks, &af, ctx);
    if (y == NULL)
        return false;
    bool ok =
        yajl_parse(y, (const unsigned char *)body, len) == yajl_status_ok &&
        yajl_parse(y, (const unsigned char *)"\"", 1) == yajl_status_ok &&
        yajl_complete_parse(y) == yajl_status_ok;
    yajl_free(y);
    return ok;
}

/* The body exactly as hcc_ws_push_body writes it (what the node and the
 * guest runtime send), read by matching its bytes: true with *channel and
 * *type, false for any other body, for yajl to read. */
static bool push_read_written(const char *body, size_t len, uint32_t *channel,
                              int *type)
{
    static const char head[] = "{\"WebSocketPush\":{\"channel_id\":";
    static const char mid[] = ",\"message_type\":\"";
    const size_t hl = sizeof head - 1, ml = sizeof mid - 1;
    if (len < hl + 1 + ml + 3 || memcmp(body, head, hl) != 0)
        return false;
    const char *p = body + hl, *e = body + len;
    uint64_t v = 0;
    const char *d = p;
    while (p < e && *p >= '0' && *p <= '9' && p - d <= 10)
        v = v * 10 + (uint64_t)(*p++ - '0');
    size_t nd = (size_t)(p - d);
    if (nd == 0 || nd > 10 || (nd > 1 && *d == '0') || v > UINT32_MAX ||
        (size_t)(e - p) < ml + 3 || memcmp(p, mid, ml) != 0)
        return false;
    p += ml;
    /* the name, then "}} and the end */
    const char *q = memchr(p, '"', (size_t)(e - p));
    if (q == NULL || e - q != 3 || q[1] != '}' || q[2] != '}')
        return false;
    int t = hcc_ws_type_parse(p, (size_t)(q - p));
    if (t < 0)
        return false;
    *channel = (uint32_t)v;
    *type = t;
    return true;
}

bool hcc_ws_push_read(const char *body, size_t len, uint32_t *channel,
                      int *type)
{
    if (body != NULL && push_read_written(body, len, channel, type))
        return true;
    push_read r = {.want = -1};
    if (!hcc_yajl_parse_short(&push_callbacks, &r, body, len) || !r.done ||
        r.depth != 0)
        return false;
    *channel = r.id;
    *type = r.type;
    return true;
}
