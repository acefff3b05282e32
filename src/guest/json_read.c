/* JSON reading for generated decoders: yajl tokenizes, this file builds a
 * tree in the message's arena (include/hyperc/json.h). */
#include "hyperc/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define MAX_DEPTH 128 /* serde_json's recursion limit */

/* A member while its container is open: a linked list in the arena. */
typedef struct node {
    struct node *next;
    const char *key;
    hp_jv *val;
} node;

typedef struct frame {
    hp_jv *v;
    node *head, *tail;
    const char *pending_key;
} frame;

typedef struct pctx {
    hp_arena *a;
    frame stack[MAX_DEPTH + 1];
    int depth;
    hp_jv *root;
    const char *err;
} pctx;

static hp_jv *new_value(pctx *c, hp_jv_kind kind)
{
    hp_jv *v = hp_arena_alloc(c->a, sizeof *v);
    if (v)
        v->kind = kind;
    else
        c->err = "out of memory";
    return v;
}

/* Attach v to the open container (or make it the root). */
static int add(pctx *c, hp_jv *v)
{
    if (v == NULL)
        return 0;
    if (c->depth == 0) {
        c->root = v;
        return 1;
    }
    frame *f = &c->stack[c->depth - 1];
    node *nd = hp_arena_alloc(c->a, sizeof *nd);
    if (nd == NULL) {
        c->err = "out of memory";
        return 0;
    }
    nd->val = v;
    nd->key = f->pending_key;
    f->pending_key = NULL;
    if (f->tail)
        f->tail->next = nd;
    else
        f->head = nd;
    f->tail = nd;
    f->v->len++;
    return 1;
}

static int on_null(void *ctx)
{
    pctx *c = ctx;
    return add(c, new_value(c, HP_JV_NULL));
}

static int on_bool(void *ctx, int b)
{
    pctx *c = ctx;
    hp_jv *v = new_value(c, HP_JV_BOOL);
    if (v)
        v->b = b != 0;
    return add(c, v);
}

static int on_number(void *ctx, const char *s, size_t n)
{
    pctx *c = ctx;
    hp_jv *v = new_value(c, HP_JV_NUMBER);
    if (v) {
        v->str = hp_arena_strndup(c->a, s, n);
        v->len = n;
    }
    return v && v->str ? add(c, v) : 0;
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
    pctx *c = ctx;
    if (memchr(s, 0, n) != NULL) {
        c->err = "strings with \\u0000 cannot be read into C strings";
        return 0;
    }
    /* yajl lets overlong forms and surrogates through; Rust's str (and so
     * serde) does not */
    if (!hp_utf8_valid((const char *)s, n)) {
        c->err = "invalid UTF-8 in a string";
        return 0;
    }
    hp_jv *v = new_value(c, HP_JV_STRING);
    if (v) {
        v->str = hp_arena_strndup(c->a, (const char *)s, n);
        v->len = n;
    }
    return v && v->str ? add(c, v) : 0;
}

static int open_container(pctx *c, hp_jv_kind kind)
{
    if (c->depth >= MAX_DEPTH) {
        c->err = "recursion limit exceeded (more than 128 levels)";
        return 0;
    }
    hp_jv *v = new_value(c, kind);
    if (v == NULL || !add(c, v))
        return 0;
    frame *f = &c->stack[c->depth++];
    memset(f, 0, sizeof *f);
    f->v = v;
    return 1;
}

static int close_container(pctx *c)
{
    frame *f = &c->stack[--c->depth];
    hp_jv *v = f->v;
    if (v->len) {
        v->items = hp_arena_alloc(c->a, v->len * sizeof *v->items);
        if (v->kind == HP_JV_OBJECT)
            v->keys = hp_arena_alloc(c->a, v->len * sizeof *v->keys);
        if (v->items == NULL || (v->kind == HP_JV_OBJECT && !v->keys)) {
            c->err = "out of memory";
            return 0;
        }
        size_t i = 0;
        for (node *nd = f->head; nd; nd = nd->next, i++) {
            v->items[i] = nd->val;
            if (v->keys)
                v->keys[i] = nd->key;
        }
    }
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, HP_JV_OBJECT);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t n)
{
    pctx *c = ctx;
    if (memchr(s, 0, n) != NULL) {
        c->err = "keys with \\u0000 cannot be read into C strings";
        return 0;
    }
    if (!hp_utf8_valid((const char *)s, n)) {
        c->err = "invalid UTF-8 in a key";
        return 0;
    }
    c->stack[c->depth - 1].pending_key =
        hp_arena_strndup(c->a, (const char *)s, n);
    return c->stack[c->depth - 1].pending_key != NULL;
}

static int on_end(void *ctx)
{
    return close_container(ctx);
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, HP_JV_ARRAY);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

hp_jv *hp_json_parse(hp_arena *a, const char *text, size_t n, const char **err)
{
    pctx c = {.a = a};
    yajl_handle h = yajl_alloc(&callbacks, NULL, &c);
    if (h == NULL) {
        *err = "out of memory";
        return NULL;
    }
    yajl_status st = yajl_parse(h, (const unsigned char *)text, n);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    hp_jv *root = NULL;
    if (st == yajl_status_ok && c.root) {
        root = c.root;
    } else if (c.err) {
        *err = c.err;
    } else {
        unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)text, n);
        /* yajl's message ends with a newline; drop it */
        const char *msg = e ? (const char *)e : "malformed JSON";
        size_t ml = strlen(msg);
        while (ml && (msg[ml - 1] == '\n' || msg[ml - 1] == ' '))
            ml--;
        *err = hp_arena_strndup(a, msg, ml);
        if (*err == NULL)
            *err = "malformed JSON";
        if (e)
            yajl_free_error(h, e);
    }
    yajl_free(h);
    return root;
}

const hp_jv *hp_jv_get(const hp_jv *obj, const char *key)
{
    if (obj == NULL || obj->kind != HP_JV_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

/* --------------------------------------------------- decoding helpers */

const char *hp_jv_kind_name(const hp_jv *j)
{
    static const char *const names[] = {"null",     "a boolean", "a number",
                                        "a string", "an array",  "an object"};
    return j && j->kind <= HP_JV_OBJECT ? names[j->kind] : "nothing";
}

static int expect(hp_arena *a, const hp_jv *j, const char *what,
                  const char **err)
{
    *err = hp_arena_sprintf(a, "expected %s, got %s", what, hp_jv_kind_name(j));
    if (*err == NULL)
        *err = "out of memory";
    return -1;
}

const char *hp_jd_wrap(hp_arena *a, const char *ctx, const char *err)
{
    const char *s = hp_arena_sprintf(a, "%s: %s", ctx, err);
    return s ? s : err;
}

int hp_jd_bool(hp_arena *a, const hp_jv *j, bool *out, const char **err)
{
    if (j == NULL || j->kind != HP_JV_BOOL)
        return expect(a, j, "a boolean", err);
    *out = j->b;
    return 0;
}

static bool integer_token(const hp_jv *j)
{
    return j && j->kind == HP_JV_NUMBER && strpbrk(j->str, ".eE") == NULL;
}

int hp_jd_int(hp_arena *a, const hp_jv *j, int64_t min, int64_t max,
              const char *type, int64_t *out, const char **err)
{
    if (!integer_token(j)) {
        char what[48];
        snprintf(what, sizeof what, "an integer (%s)", type);
        return expect(a, j, what, err);
    }
    errno = 0;
    long long v = strtoll(j->str, NULL, 10);
    if (errno == ERANGE || v < min || v > max) {
        *err = hp_arena_sprintf(a, "%s is out of range for %s (%lld..%lld)",
                                j->str, type, (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_jd_uint(hp_arena *a, const hp_jv *j, uint64_t max, const char *type,
               uint64_t *out, const char **err)
{
    if (!integer_token(j)) {
        char what[48];
        snprintf(what, sizeof what, "an integer (%s)", type);
        return expect(a, j, what, err);
    }
    errno = 0;
    unsigned long long v = strtoull(j->str, NULL, 10);
    if (j->str[0] == '-' || errno == ERANGE || v > max) {
        *err = hp_arena_sprintf(a, "%s is out of range for %s (0..%llu)",
                                j->str, type, (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_jd_float(hp_arena *a, const hp_jv *j, bool single, double *out,
                const char **err)
{
    if (j == NULL || j->kind != HP_JV_NUMBER)
        return expect(a, j, single ? "a number (f32)" : "a number (f64)", err);
    double v = strtod(j->str, NULL);
    if (isinf(v) && !single) {
        *err = hp_arena_sprintf(a, "%s is out of range for f64", j->str);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_jd_string(hp_arena *a, const hp_jv *j, const char **out,
                 const char **err)
{
    if (j == NULL || j->kind != HP_JV_STRING)
        return expect(a, j, "a string", err);
    *out = j->str;
    return 0;
}

int hp_jd_bytes(hp_arena *a, const hp_jv *j, hw_bytes *out, const char **err)
{
    if (j == NULL || j->kind != HP_JV_ARRAY)
        return expect(a, j, "an array of bytes", err);
    out->len = j->len;
    out->ptr = hp_arena_alloc(a, j->len ? j->len : 1);
    if (out->ptr == NULL) {
        *err = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < j->len; i++) {
        uint64_t v;
        if (hp_jd_uint(a, j->items[i], 255, "u8", &v, err) != 0) {
            *err = hp_jd_wrap(a, "byte list", *err);
            return -1;
        }
        out->ptr[i] = (uint8_t)v;
    }
    return 0;
}

int hp_jd_address(hp_arena *a, const hp_jv *j, hw_address *out,
                  const char **err)
{
    if (j == NULL || j->kind != HP_JV_STRING)
        return expect(a, j, "an address string", err);
    hw_address tmp;
    if (hw_address_parse(j->str, &tmp) != 0) {
        *err = hp_arena_sprintf(a,
                                "'%s' is not an address "
                                "(node@process:package:publisher)",
                                j->str);
        return -1;
    }
    out->node = hp_arena_strdup(a, tmp.node);
    out->process.process_name = hp_arena_strdup(a, tmp.process.process_name);
    out->process.package_name = hp_arena_strdup(a, tmp.process.package_name);
    out->process.publisher_node =
        hp_arena_strdup(a, tmp.process.publisher_node);
    hw_address_fini(&tmp);
    if (!out->node || !out->process.process_name ||
        !out->process.package_name || !out->process.publisher_node) {
        *err = "out of memory";
        return -1;
    }
    return 0;
}
