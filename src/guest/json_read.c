/* JSON reading for generated decoders: yajl tokenizes, this file builds a
 * tree in the message's arena (include/hyperc/json.h). */
#include "hyperc/json.h"

#include "../common/swar.h"
#include "arena_int.h"

#include <math.h>
#include <stdint.h>
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

/* Frames kept in the parse's own stack frame; deeper texts move the stack
 * to the arena (most messages are a few levels deep). */
#define FRAMES_INLINE 16

/* What yajl allocates for one parse (its handle, lexer, state stack and
 * the lexer's 2 KiB buffer, which a top-level number at the text's end
 * takes) comes from the parse's own stack frame: no malloc or free per
 * message, and nothing left in the arena. */
#define SCRATCH_SIZE 2816

/* A block of the scratch: its size in front, then the bytes. */
typedef struct scratch_head {
    size_t size;
    size_t pad_; /* keeps the bytes after it 16-byte aligned */
} scratch_head;

typedef struct pctx {
    hp_arena *a;
    frame *stack; /* inline, or in the arena once deeper than FRAMES_INLINE */
    int cap;
    int depth;
    hp_jv *root;
    const char *err;
    size_t scratch_used;
    unsigned char *scratch_last; /* the newest block's bytes (realloc grows
                                  * it in place) */
    frame inline_frames[FRAMES_INLINE];
    _Alignas(16) unsigned char scratch[SCRATCH_SIZE];
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
    if (c->depth == c->cap) {
        int cap = MAX_DEPTH + 1;
        frame *st = hp_arena_alloc(c->a, (size_t)cap * sizeof *st);
        if (st == NULL) {
            c->err = "out of memory";
            return 0;
        }
        memcpy(st, c->stack, (size_t)c->depth * sizeof *st);
        c->stack = st;
        c->cap = cap;
    }
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

/* yajl's allocator for one parse: blocks from c->scratch while it lasts
 * (freed with the parse: free of one is a no-op), malloc beyond it. */
static bool in_scratch(const pctx *c, const void *p)
{
    uintptr_t b = (uintptr_t)p, lo = (uintptr_t)c->scratch;
    return b >= lo && b - lo < sizeof c->scratch;
}

static void *scratch_malloc(void *ctx, size_t n)
{
    pctx *c = ctx;
    size_t need = sizeof(scratch_head) + ((n + 15) & ~(size_t)15);
    if (n <= sizeof c->scratch && need <= sizeof c->scratch - c->scratch_used) {
        scratch_head *hd = (scratch_head *)(c->scratch + c->scratch_used);
        hd->size = need - sizeof *hd;
        c->scratch_used += need;
        c->scratch_last = (unsigned char *)(hd + 1);
        return hd + 1;
    }
    return malloc(n);
}

static void *scratch_realloc(void *ctx, void *p, size_t n)
{
    pctx *c = ctx;
    if (p == NULL)
        return scratch_malloc(ctx, n);
    if (!in_scratch(c, p))
        return realloc(p, n);
    scratch_head *hd = (scratch_head *)p - 1;
    if (n <= hd->size)
        return p;
    if (p == c->scratch_last) { /* the newest block: grow it if there is room */
        size_t start = (size_t)((unsigned char *)p - c->scratch);
        size_t size = (n + 15) & ~(size_t)15;
        if (n <= sizeof c->scratch && size <= sizeof c->scratch - start) {
            c->scratch_used = start + size;
            hd->size = size;
            return p;
        }
    }
    void *q = scratch_malloc(ctx, n);
    if (q)
        memcpy(q, p, hd->size);
    return q;
}

static void scratch_free(void *ctx, void *p)
{
    if (p != NULL && !in_scratch(ctx, p))
        free(p);
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

static int hex4(const char *s, size_t n, size_t at)
{
    if (at + 4 > n)
        return -1;
    int v = 0;
    for (size_t i = at; i < at + 4; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* yajl turns a \u escape of a lone leading surrogate into '?' (and a lone
 * trailing one into bytes the UTF-8 check refuses); serde_json refuses
 * both.  Escapes only occur inside strings, so every backslash of a valid
 * text starts one: each \uD800-\uDBFF must be followed by \uDC00-\uDFFF.
 * Returns the offending escape's offset, or -1. */
static long lone_surrogate(const char *s, size_t n)
{
    const char *p = s;
    while ((p = memchr(p, '\\', n - (size_t)(p - s))) != NULL) {
        size_t at = (size_t)(p - s);
        if (at + 1 >= n)
            return -1; /* yajl reports the truncated text */
        if (s[at + 1] != 'u') {
            p += 2;
            continue;
        }
        int hi = hex4(s, n, at + 2);
        if (hi >= 0xDC00 && hi <= 0xDFFF)
            return (long)at;
        if (hi >= 0xD800 && hi <= 0xDBFF) {
            int lo = at + 7 < n && s[at + 6] == '\\' && s[at + 7] == 'u'
                         ? hex4(s, n, at + 8)
                         : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return (long)at;
            p += 12;
            continue;
        }
        p += 6;
        if ((size_t)(p - s) > n)
            return -1;
    }
    return -1;
}

/* ---------------------------------------------------- the plain path */

/* Most texts a process reads are small and plain: printable ASCII without
 * escapes, a few levels deep.  Those are read here in one pass, without
 * yajl (whose handle, lexer and callbacks cost about 1,500 instructions on
 * a text like {"Pong":5}); anything else -- an escape, a byte outside
 * printable ASCII, whitespace other than JSON's four, more than
 * PLAIN_DEPTH levels, and every malformed text -- makes it give up, the
 * arena goes back to where it was, and yajl reads the text as before (so
 * its errors and limits stay the only ones).  What it accepts is strict
 * JSON that yajl accepts too, and the tree is the one yajl's callbacks
 * build above. */
#define PLAIN_DEPTH FRAMES_INLINE
/* Members of the open containers, innermost last; grows in the arena. */
#define PLAIN_SLOTS 32

typedef struct plain_slot {
    const char *key;
    hp_jv *val;
} plain_slot;

typedef struct plain {
    hp_arena *a;
    const char *p, *end;
    plain_slot *slots;
    size_t nslots, cap;
    plain_slot inline_slots[PLAIN_SLOTS];
} plain;

static void plain_ws(plain *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static bool plain_digit(plain *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

/* A value, all but its kind zero (the kind the caller sets); NULL when
 * out of memory. */
static hp_jv *plain_value(hp_arena *a)
{
    hp_jv *v = hpr_arena_take(a, sizeof *v);
    if (v != NULL)
        *v = (hp_jv){0};
    return v;
}

/* A string's bytes after its opening quote: into the arena, NUL-ended;
 * NULL to give up. */
static const char *plain_string(plain *c, size_t *len)
{
    const char *s = c->p;
    for (;;) {
        /* eight plain bytes at a time: printable ASCII but '"' and '\\' */
        while (c->end - c->p >= 8) {
            uint64_t x = hcc_swar_load(c->p);
            if (hcc_swar_any_below(x, 0x20) || hcc_swar_any_high(x) ||
                hcc_swar_any_eq(x, 0x7F) || hcc_swar_any_eq(x, '"') ||
                hcc_swar_any_eq(x, '\\'))
                break;
            c->p += 8;
        }
        /* then the word that stopped it (or the rest) a byte at a time:
         * the quote, or a byte that makes it give up, is in there */
        const char *stop = c->end - c->p >= 8 ? c->p + 8 : c->end;
        for (; c->p < stop; c->p++) {
            unsigned char ch = (unsigned char)*c->p;
            if (ch == '"') {
                *len = (size_t)(c->p - s);
                c->p++;
                return hpr_arena_strndup(c->a, s, *len);
            }
            if (ch < 0x20 || ch >= 0x7F || ch == '\\')
                return NULL;
        }
        if (c->p == c->end)
            return NULL;
    }
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool plain_number(plain *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (!plain_digit(c))
        return false;
    if (*c->p++ != '0')
        while (plain_digit(c))
            c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!plain_digit(c))
            return false;
        while (plain_digit(c))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!plain_digit(c))
            return false;
        while (plain_digit(c))
            c->p++;
    }
    return true;
}

static bool plain_word(plain *c, const char *w, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return false;
    c->p += n;
    return true;
}

static bool plain_push(plain *c, const char *key, hp_jv *v)
{
    if (c->nslots == c->cap) {
        size_t cap = c->cap * 2;
        plain_slot *s = hpr_arena_take(c->a, cap * sizeof *s);
        if (s == NULL)
            return false;
        memcpy(s, c->slots, c->nslots * sizeof *s);
        c->slots = s;
        c->cap = cap;
    }
    c->slots[c->nslots].key = key;
    c->slots[c->nslots].val = v;
    c->nslots++;
    return true;
}

/* A scalar at c->p (after whitespace): NULL to give up. */
static hp_jv *plain_scalar(plain *c)
{
    hp_jv *v = plain_value(c->a);
    if (v == NULL || c->p >= c->end)
        return NULL;
    const char *s = c->p;
    switch (*c->p) {
    case '"':
        c->p++;
        v->kind = HP_JV_STRING;
        v->str = plain_string(c, &v->len);
        return v->str ? v : NULL;
    case 't':
        v->kind = HP_JV_BOOL;
        v->b = true;
        return plain_word(c, "true", 4) ? v : NULL;
    case 'f': v->kind = HP_JV_BOOL; return plain_word(c, "false", 5) ? v : NULL;
    case 'n': v->kind = HP_JV_NULL; return plain_word(c, "null", 4) ? v : NULL;
    default:
        if (!plain_number(c))
            return NULL;
        v->kind = HP_JV_NUMBER;
        v->len = (size_t)(c->p - s);
        v->str = hpr_arena_strndup(c->a, s, v->len);
        return v->str ? v : NULL;
    }
}

/* Close the innermost container (its members are the slots from `first`
 * on). */
static bool plain_close(plain *c, hp_jv *v, size_t first)
{
    size_t n = c->nslots - first;
    v->len = n;
    if (n) {
        /* an object's keys in the same block, after its values */
        bool obj = v->kind == HP_JV_OBJECT;
        if (n > SIZE_MAX / (2 * sizeof(void *)))
            return false;
        void **blk = hpr_arena_take(c->a, (obj ? 2 : 1) * n * sizeof *blk);
        if (blk == NULL)
            return false;
        v->items = (hp_jv **)blk;
        if (obj)
            v->keys = (const char **)(blk + n);
        for (size_t i = 0; i < n; i++) {
            v->items[i] = c->slots[first + i].val;
            if (obj)
                v->keys[i] = c->slots[first + i].key;
        }
    }
    c->nslots = first;
    return true;
}

/* Tests set it to read every text with yajl, to compare the two paths
 * (tests/unit/test_json_read.c); nothing else touches it. */
bool hp__json_plain_off;

static hp_jv *plain_parse(hp_arena *a, const char *text, size_t n)
{
    if (hp__json_plain_off)
        return NULL;
    plain c;
    c.a = a;
    c.p = text;
    c.end = text + n;
    c.slots = c.inline_slots;
    c.nslots = 0;
    c.cap = PLAIN_SLOTS;
    struct {
        hp_jv *v;
        size_t first;
    } open[PLAIN_DEPTH];
    int depth = 0;
    hp_jv *root = NULL;
    plain_ws(&c);
    for (;;) {
        /* a value: where it goes is decided after it */
        const char *key = NULL;
        if (depth > 0 && open[depth - 1].v->kind == HP_JV_OBJECT) {
            size_t kl;
            if (c.p >= c.end || *c.p != '"')
                return NULL;
            c.p++;
            if ((key = plain_string(&c, &kl)) == NULL)
                return NULL;
            plain_ws(&c);
            if (c.p >= c.end || *c.p != ':')
                return NULL;
            c.p++;
            plain_ws(&c);
        }
        hp_jv *v;
        if (c.p < c.end && (*c.p == '{' || *c.p == '[')) {
            if (depth == PLAIN_DEPTH)
                return NULL;
            v = plain_value(a);
            if (v == NULL)
                return NULL;
            v->kind = *c.p == '{' ? HP_JV_OBJECT : HP_JV_ARRAY;
            c.p++;
            if (depth > 0 && !plain_push(&c, key, v))
                return NULL;
            if (depth == 0)
                root = v;
            open[depth].v = v;
            open[depth].first = c.nslots;
            depth++;
            plain_ws(&c);
            char closer = v->kind == HP_JV_OBJECT ? '}' : ']';
            if (c.p < c.end && *c.p == closer) {
                c.p++; /* empty */
                depth--;
            } else {
                continue;
            }
        } else {
            if ((v = plain_scalar(&c)) == NULL)
                return NULL;
            if (depth == 0)
                root = v;
            else if (!plain_push(&c, key, v))
                return NULL;
        }
        /* after a value: a comma, or the ends of containers */
        for (;;) {
            plain_ws(&c);
            if (depth == 0)
                return c.p == c.end ? root : NULL;
            hp_jv *in = open[depth - 1].v;
            if (c.p >= c.end)
                return NULL;
            if (*c.p == ',') {
                c.p++;
                plain_ws(&c);
                break;
            }
            if (*c.p != (in->kind == HP_JV_OBJECT ? '}' : ']'))
                return NULL;
            c.p++;
            if (!plain_close(&c, in, open[depth - 1].first))
                return NULL;
            depth--;
        }
    }
}

hp_jv *hp_json_parse(hp_arena *a, const char *text, size_t n, const char **err)
{
    hp_arena_mark m = hp_arena_save(a);
    hp_jv *got = plain_parse(a, text, n);
    if (got != NULL)
        return got;
    hp_arena_restore(a, m);
    long sur = lone_surrogate(text, n);
    if (sur >= 0) {
        *err = hp_arena_sprintf(a,
                                "lone surrogate \"%.6s\" in a string (at byte "
                                "%ld): not a Unicode character",
                                text + sur, sur);
        if (*err == NULL)
            *err = "lone surrogate in a string";
        return NULL;
    }
    pctx c; /* not zeroed whole: the frames and scratch are written
             * before they are read */
    c.a = a;
    c.stack = c.inline_frames;
    c.cap = FRAMES_INLINE;
    c.depth = 0;
    c.root = NULL;
    c.err = NULL;
    c.scratch_used = 0;
    c.scratch_last = NULL;
    yajl_alloc_funcs af = {scratch_malloc, scratch_realloc, scratch_free, &c};
    yajl_handle h = yajl_alloc(&callbacks, &af, &c);
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

/* An integer token's (yajl checked its syntax: -?digits) sign and
 * magnitude; false when the magnitude is over UINT64_MAX. */
static bool integer_value(const char *s, bool *neg, uint64_t *mag)
{
    *neg = *s == '-';
    s += *neg;
    uint64_t m = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (m > (UINT64_MAX - d) / 10)
            return false;
        m = m * 10 + d;
    }
    *mag = m;
    return true;
}

/* `-0`: serde_json reads it as the float -0.0, so no integer type takes it */
static bool minus_zero(const char *s)
{
    return s[0] == '-' && strspn(s + 1, "0") == strlen(s + 1);
}

static int minus_zero_error(const char **err)
{
    *err = "-0 is not an integer for serde_json (it reads it as the float "
           "-0.0)";
    return -1;
}

/* The common case first: a token of digits only (no sign, fraction or
 * exponent) whose value fits in 64 bits, read in one pass; false for
 * anything else, which the checks after it sort out. */
static bool plain_digits(const hp_jv *j, uint64_t *out)
{
    if (j == NULL || j->kind != HP_JV_NUMBER)
        return false;
    const char *s = j->str;
    if (*s < '0' || *s > '9')
        return false;
    /* 19 digits cannot overflow; a 20th is checked */
    uint64_t m = 0;
    for (int k = 0; k < 19 && *s >= '0' && *s <= '9'; k++, s++)
        m = m * 10 + (unsigned)(*s - '0');
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (m > (UINT64_MAX - d) / 10)
            return false;
        m = m * 10 + d;
    }
    *out = m;
    return *s == '\0';
}

int hp_jd_int(hp_arena *a, const hp_jv *j, int64_t min, int64_t max,
              const char *type, int64_t *out, const char **err)
{
    uint64_t u;
    if (plain_digits(j, &u) && u <= (uint64_t)INT64_MAX && (int64_t)u >= min &&
        (int64_t)u <= max) {
        *out = (int64_t)u;
        return 0;
    }
    if (!integer_token(j)) {
        char what[48];
        snprintf(what, sizeof what, "an integer (%s)", type);
        return expect(a, j, what, err);
    }
    if (minus_zero(j->str))
        return minus_zero_error(err);
    bool neg;
    uint64_t m;
    bool fits = integer_value(j->str, &neg, &m) &&
                m <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
    int64_t v = 0;
    if (fits)
        v = neg ? (m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m)
                : (int64_t)m;
    if (!fits || v < min || v > max) {
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
    uint64_t u;
    if (plain_digits(j, &u) && u <= max) {
        *out = u;
        return 0;
    }
    if (!integer_token(j)) {
        char what[48];
        snprintf(what, sizeof what, "an integer (%s)", type);
        return expect(a, j, what, err);
    }
    if (minus_zero(j->str))
        return minus_zero_error(err);
    bool neg;
    uint64_t v;
    if (!integer_value(j->str, &neg, &v) || neg || v > max) {
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

/* ------------------------------------------- char, 128-bit, JSON, keys */

int hp_jd_char(hp_arena *a, const hp_jv *j, hp_char *out, const char **err)
{
    if (j == NULL || j->kind != HP_JV_STRING)
        return expect(a, j, "a character (a string of one)", err);
    /* the string is valid UTF-8 (checked when parsed): one sequence */
    const unsigned char *s = (const unsigned char *)j->str;
    size_t n = s[0] < 0x80 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    if (j->len == 0 || j->len != n) {
        *err = hp_arena_sprintf(a,
                                "expected a character, got a string of %zu "
                                "bytes",
                                j->len);
        return -1;
    }
    hp_char c = n == 1   ? s[0]
                : n == 2 ? s[0] & 0x1Fu
                : n == 3 ? s[0] & 0x0Fu
                         : s[0] & 0x07u;
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[i] & 0x3Fu);
    *out = c;
    return 0;
}

/* The digits of an integer token as a magnitude; false when it has more
 * than the type can hold (over max). */
static bool magnitude(const char *d, hp_u128 max, hp_u128 *out)
{
    hp_u128 v = 0;
    for (; *d; d++) {
        unsigned k = (unsigned)(*d - '0');
        if (v > (max - k) / 10)
            return false;
        v = v * 10 + k;
    }
    *out = v;
    return true;
}

int hp_jd_u128(hp_arena *a, const hp_jv *j, hp_u128 *out, const char **err)
{
    if (!integer_token(j))
        return expect(a, j, "an integer (u128)", err);
    hp_u128 v;
    if (minus_zero(j->str))
        return minus_zero_error(err);
    if (j->str[0] == '-' || !magnitude(j->str, ~(hp_u128)0, &v)) {
        *err = hp_arena_sprintf(a, "%s is out of range for u128", j->str);
        return -1;
    }
    *out = v;
    return 0;
}

int hp_jd_i128(hp_arena *a, const hp_jv *j, hp_i128 *out, const char **err)
{
    if (!integer_token(j))
        return expect(a, j, "an integer (i128)", err);
    /* serde_json reads i128 with its own scanner, which takes `-0` as 0
     * (u128's refuses it) */
    bool neg = j->str[0] == '-';
    hp_u128 lim = ((hp_u128)1 << 127) - (neg ? 0 : 1), v;
    if (!magnitude(j->str + neg, lim, &v)) {
        *err = hp_arena_sprintf(a, "%s is out of range for i128", j->str);
        return -1;
    }
    *out = neg ? (hp_i128)(0 - v) : (hp_i128)v;
    return 0;
}

int hp_jd_json(hp_arena *a, const hp_jv *j, hp_json *out, const char **err)
{
    if (j == NULL)
        return expect(a, j, "a JSON value", err);
    hp_jw w;
    hp_jw_init(&w);
    int rc = hp_jw_value(&w, a, j, err);
    if (rc == 0 && !hp_jw_ok(&w)) {
        *err = "out of memory";
        rc = -1;
    }
    if (rc == 0) {
        out->text = hp_arena_strndup(a, w.buf, w.len);
        if (out->text == NULL) {
            *err = "out of memory";
            rc = -1;
        }
    }
    hp_jw_fini(&w);
    return rc;
}

/* serde_json reads an integer map key by parsing the (unescaped) key as
 * Rust's str::parse does: an optional sign ('+', or '-' for signed types),
 * then one or more ASCII digits, nothing else; leading zeros allowed. */
static int key_parse(hp_arena *a, const char *key, bool is_signed,
                     const char *type, bool *neg, hp_u128 *mag,
                     const char **err)
{
    const char *d = key;
    *neg = false;
    if (*d == '+') {
        d++;
    } else if (*d == '-' && is_signed) {
        *neg = true;
        d++;
    }
    if (*d == 0 || strspn(d, "0123456789") != strlen(d) ||
        !magnitude(d, ~(hp_u128)0 >> 1, mag)) {
        *err = hp_arena_sprintf(a, "expected an integer key (%s), got \"%s\"",
                                type, key);
        if (*err == NULL)
            *err = "expected an integer key";
        return -1;
    }
    return 0;
}

int hp_jd_key_int(hp_arena *a, const char *key, int64_t min, int64_t max,
                  const char *type, int64_t *out, const char **err)
{
    bool neg;
    hp_u128 m;
    if (key_parse(a, key, true, type, &neg, &m, err) != 0)
        return -1;
    hp_u128 lim = neg ? (hp_u128)0 - (hp_u128)(hp_i128)min : (hp_u128)max;
    if (m > lim) {
        *err =
            hp_arena_sprintf(a, "key \"%s\" is out of range for %s", key, type);
        return -1;
    }
    *out = neg ? (int64_t)(0 - (hp_i128)m) : (int64_t)m;
    return 0;
}

int hp_jd_key_uint(hp_arena *a, const char *key, uint64_t max, const char *type,
                   uint64_t *out, const char **err)
{
    bool neg;
    hp_u128 m;
    if (key_parse(a, key, false, type, &neg, &m, err) != 0)
        return -1;
    if (m > max) {
        *err =
            hp_arena_sprintf(a, "key \"%s\" is out of range for %s", key, type);
        return -1;
    }
    *out = (uint64_t)m;
    return 0;
}
