/* The serde_json-compatible JSON writer (include/hyperc/json.h). */
#include "hyperc/json.h"

#include "../common/swar.h"
#include "coro.h"   /* HP_ASAN */
#include "rt_int.h" /* the instance */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Buffers of finished writers, kept for the next ones: a request's or
 * reply's text is written and dropped at every call, and its first
 * realloc and its free cost more than the writing of a small text.  Up to
 * JW_POOL_MAX of at most JW_POOL_CAP bytes; the process's runtime is one
 * thread (as every other part of it).  None kept under AddressSanitizer,
 * so that a use of a finished writer's text is reported. */
#ifdef HP_ASAN
#define JW_POOL_MAX 0
#else
#define JW_POOL_MAX 2
#endif
#define JW_POOL_CAP ((size_t)1024)

/* per instance (rt_int.h) */
#define jw_pool (hp__inst()->jw_pool)
#define jw_npool (hp__inst()->jw_npool)
_Static_assert(JW_POOL_MAX + 1 <= HP__JW_POOL_SLOTS, "the instance's pool");

void hp_jw_init(hp_jw *w)
{
    memset(w, 0, sizeof *w);
}

void hp_jw_fini(hp_jw *w)
{
    if (w->buf != NULL && w->cap <= JW_POOL_CAP && jw_npool < JW_POOL_MAX) {
        jw_pool[jw_npool].buf = w->buf;
        jw_pool[jw_npool].cap = w->cap;
        jw_npool++;
    } else {
        free(w->buf);
    }
    memset(w, 0, sizeof *w);
}

bool hp_jw_ok(const hp_jw *w)
{
    return !w->failed;
}

static bool reserve(hp_jw *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->len + n + 1 <= w->cap)
        return true;
    if (w->buf == NULL && jw_npool > 0) { /* a finished writer's buffer */
        jw_npool--;
        w->buf = jw_pool[jw_npool].buf;
        w->cap = jw_pool[jw_npool].cap;
        if (w->len + n + 1 <= w->cap)
            return true;
    }
    size_t cap = w->cap ? w->cap : 64;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *nb = realloc(w->buf, cap);
    if (nb == NULL) {
        w->failed = true;
        return false;
    }
    w->buf = nb;
    w->cap = cap;
    return true;
}

void hp_jw_raw(hp_jw *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

void hp_jw_null(hp_jw *w)
{
    hp_jw_raw(w, "null", 4);
}

void hp_jw_bool(hp_jw *w, bool v)
{
    if (v)
        hp_jw_raw(w, "true", 4);
    else
        hp_jw_raw(w, "false", 5);
}

/* "00" to "99": two digits a division (a state's counters and times have
 * a dozen or more digits; a division a digit was 6% of a saving node's
 * samples, docs/benchmarks.md). */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536"
    "37383940414243444546474849505152535455565758596061626364656667686970717273"
    "7475767778798081828384858687888990919293949596979899";

/* v's decimal digits, ending at end (exclusive); returns the first. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + 2 * r, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + 2 * v, 2);
    } else {
        *--p = (char)('0' + v);
    }
    return p;
}

void hp_jw_u64(hp_jw *w, uint64_t v)
{
    char tmp[24];
    char *p = u64_digits(v, tmp + sizeof tmp);
    hp_jw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

void hp_jw_i64(hp_jw *w, int64_t v)
{
    char tmp[24];
    /* the magnitude in unsigned arithmetic: INT64_MIN has no positive */
    uint64_t m = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = u64_digits(m, tmp + sizeof tmp);
    if (v < 0)
        *--p = '-';
    hp_jw_raw(w, p, (size_t)(tmp + sizeof tmp - p));
}

/* ------------------------------------------------------------------ UTF-8 */

bool hp_utf8_valid(const char *str, size_t n)
{
    return hcc_utf8_valid((const unsigned char *)str, n);
}

/* Whether any of the eight bytes at p needs an escape in a JSON string. */
static bool escape_in8(const char *p)
{
    uint64_t x = hcc_swar_load(p);
    return hcc_swar_any_below(x, 0x20) || hcc_swar_any_eq(x, '"') ||
           hcc_swar_any_eq(x, '\\');
}

int hp_jw_string(hp_jw *w, const char *s, size_t n)
{
    if (!hp_utf8_valid(s, n))
        return -1;
    (void)reserve(w, n + 2); /* room for it without escapes, at once (a
                                failure fails the writer, as hp_jw_raw) */
    hp_jw_raw(w, "\"", 1);
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < n; i++) {
        /* eight bytes that need no escape at a time */
        while (n - i >= 8 && !escape_in8(s + i))
            i += 8;
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                /* serde_json writes other control characters as \u00xx,
                 * lower-case hex */
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (esc) {
            hp_jw_raw(w, s + run, i - run);
            hp_jw_raw(w, esc, strlen(esc));
            run = i + 1;
        }
    }
    hp_jw_raw(w, s + run, n - run);
    hp_jw_raw(w, "\"", 1);
    return 0;
}

/* ----------------------------------------------------------------- floats */

/* Digits and decimal exponent of the shortest decimal that reads back as v
 * (v finite, > 0): digits d1..dn without trailing zeros, and kk such that
 * v = 0.d1..dn x 10^kk.  For each length p, the correctly rounded p-digit
 * candidate is tried, then its neighbours one unit away in the last digit
 * (the rounding interval is lopsided at powers of two); the first length
 * with a candidate that round-trips wins, the closest candidate first. */
static void shortest(double v, bool single, char *digits, int *kk)
{
    int maxp = single ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        char e[40];
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        /* e = "d.ddde[+-]XX" */
        char mant[24];
        int m = 0;
        const char *c = e;
        for (; *c && *c != 'e'; c++)
            if (*c != '.')
                mant[m++] = *c;
        mant[m] = 0;
        int exp10 = atoi(c + 1);
        for (int delta = 0; delta < 3; delta++) {
            char cand[24];
            int cexp = exp10;
            memcpy(cand, mant, (size_t)m + 1);
            if (delta > 0) {
                /* +1 or -1 in the last digit, with carries */
                int step = delta == 1 ? 1 : -1;
                int k = m - 1;
                while (k >= 0) {
                    int d = cand[k] - '0' + step;
                    if (d >= 0 && d <= 9) {
                        cand[k] = (char)('0' + d);
                        break;
                    }
                    cand[k] = step > 0 ? '0' : '9';
                    k--;
                }
                if (k < 0) {
                    if (step < 0)
                        continue; /* 0.99.. below 1 digit-length: skip */
                    memmove(cand + 1, cand, (size_t)m + 1);
                    cand[0] = '1';
                    cand[m] = 0; /* keep p digits */
                    cexp++;
                }
                if (cand[0] == '0')
                    continue;
            }
            char text[48];
            snprintf(text, sizeof text, "%c.%se%d", cand[0],
                     cand[1] ? cand + 1 : "0", cexp);
            bool same = single ? strtof(text, NULL) == (float)v
                               : strtod(text, NULL) == v;
            if (same) {
                int len = (int)strlen(cand);
                while (len > 1 && cand[len - 1] == '0')
                    len--;
                cand[len] = 0;
                strcpy(digits, cand);
                *kk = cexp + 1;
                return;
            }
        }
    }
    /* unreachable for finite v: 17 (9) digits always round-trip */
    snprintf(digits, 24, "0");
    *kk = 1;
}

static void write_float(hp_jw *w, double v, bool single)
{
    if (!isfinite(v)) {
        hp_jw_null(w);
        return;
    }
    char out[64];
    size_t o = 0;
    if (signbit(v)) {
        out[o++] = '-';
        v = -v;
    }
    if (v == 0) {
        memcpy(out + o, "0.0", 3);
        hp_jw_raw(w, out, o + 3);
        return;
    }
    char d[24];
    int kk;
    shortest(v, single, d, &kk);
    int n = (int)strlen(d);
    int hi = single ? 13 : 16, lo = single ? -6 : -5;
    if (kk >= n && kk <= hi) {
        memcpy(out + o, d, (size_t)n);
        o += (size_t)n;
        for (int i = 0; i < kk - n; i++)
            out[o++] = '0';
        out[o++] = '.';
        out[o++] = '0';
    } else if (kk > 0 && kk <= hi) {
        memcpy(out + o, d, (size_t)kk);
        o += (size_t)kk;
        out[o++] = '.';
        memcpy(out + o, d + kk, (size_t)(n - kk));
        o += (size_t)(n - kk);
    } else if (kk > lo && kk <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -kk; i++)
            out[o++] = '0';
        memcpy(out + o, d, (size_t)n);
        o += (size_t)n;
    } else {
        out[o++] = d[0];
        if (n > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)(n - 1));
            o += (size_t)(n - 1);
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%d", kk - 1);
    }
    hp_jw_raw(w, out, o);
}

void hp_jw_f64(hp_jw *w, double v)
{
    write_float(w, v, false);
}

void hp_jw_f32(hp_jw *w, float v)
{
    write_float(w, (double)v, true);
}

void hp_jw_bytes(hp_jw *w, const hw_bytes *b)
{
    hp_jw_raw(w, "[", 1);
    for (size_t i = 0; i < b->len; i++) {
        if (i)
            hp_jw_raw(w, ",", 1);
        hp_jw_u64(w, b->ptr[i]);
    }
    hp_jw_raw(w, "]", 1);
}

int hp_jw_address(hp_jw *w, const hw_address *a)
{
    /* a zeroed address has no text form: not written */
    if (a->node == NULL || a->process.process_name == NULL ||
        a->process.package_name == NULL || a->process.publisher_node == NULL)
        return -1;
    char buf[512];
    size_t n = hw_address_format(a, buf, sizeof buf);
    if (n >= sizeof buf)
        return -1;
    return hp_jw_string(w, buf, n);
}

/* ------------------------------------------------ char, 128-bit, keys */

int hp_jw_char(hp_jw *w, hp_char c)
{
    char u[4];
    size_t n;
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return -1;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    }
    return hp_jw_string(w, u, n);
}

void hp_jw_u128(hp_jw *w, hp_u128 v)
{
    char tmp[40];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    hp_jw_raw(w, tmp + i, sizeof tmp - i);
}

void hp_jw_i128(hp_jw *w, hp_i128 v)
{
    if (v < 0) {
        hp_jw_raw(w, "-", 1);
        /* the magnitude of the most negative value fits the unsigned type */
        hp_jw_u128(w, (hp_u128)0 - (hp_u128)v);
    } else {
        hp_jw_u128(w, (hp_u128)v);
    }
}

void hp_jw_key_i64(hp_jw *w, int64_t v)
{
    hp_jw_raw(w, "\"", 1);
    hp_jw_i64(w, v);
    hp_jw_raw(w, "\"", 1);
}

void hp_jw_key_u64(hp_jw *w, uint64_t v)
{
    hp_jw_raw(w, "\"", 1);
    hp_jw_u64(w, v);
    hp_jw_raw(w, "\"", 1);
}

/* ------------------------------------------------- serde_json::Value */

/* Members of an object in serde_json's Map order (a BTreeMap): sorted by
 * key bytes; among equal keys the last one, whose value a BTreeMap keeps. */
static int key_order(const void *x, const void *y)
{
    /* pointers into one array of key values: equal keys keep their
     * document order */
    const hp_jv *const *p = x, *const *q = y;
    int c = strcmp((*p)->str, (*q)->str);
    if (c)
        return c;
    return *p < *q ? -1 : *p > *q;
}

static int write_number(hp_jw *w, hp_arena *a, const hp_jv *j, const char **err)
{
    const char *s = j->str;
    bool integer = strpbrk(s, ".eE") == NULL;
    bool neg = s[0] == '-';
    if (integer) {
        /* serde_json: a non-negative integer that fits u64 stays one, a
         * negative one that fits i64 too (`-0` does not: it is -0.0) */
        errno = 0;
        if (!neg) {
            unsigned long long u = strtoull(s, NULL, 10);
            if (errno != ERANGE) {
                hp_jw_u64(w, u);
                return 0;
            }
        } else {
            long long v = strtoll(s, NULL, 10);
            if (errno != ERANGE && v != 0) {
                hp_jw_i64(w, v);
                return 0;
            }
        }
    }
    double d = strtod(s, NULL);
    if (isinf(d)) {
        *err = hp_arena_sprintf(a, "%s is out of range for f64", s);
        if (*err == NULL)
            *err = "number out of range";
        return -1;
    }
    hp_jw_f64(w, d);
    return 0;
}

int hp_jw_value(hp_jw *w, hp_arena *a, const hp_jv *j, const char **err)
{
    switch (j->kind) {
    case HP_JV_NULL: hp_jw_null(w); return 0;
    case HP_JV_BOOL: hp_jw_bool(w, j->b); return 0;
    case HP_JV_NUMBER: return write_number(w, a, j, err);
    case HP_JV_STRING:
        if (hp_jw_string(w, j->str, j->len) != 0) {
            *err = "invalid UTF-8 in a string";
            return -1;
        }
        return 0;
    case HP_JV_ARRAY:
        hp_jw_raw(w, "[", 1);
        for (size_t i = 0; i < j->len; i++) {
            if (i)
                hp_jw_raw(w, ",", 1);
            if (hp_jw_value(w, a, j->items[i], err) != 0)
                return -1;
        }
        hp_jw_raw(w, "]", 1);
        return 0;
    case HP_JV_OBJECT: break;
    }
    /* sort (key, position) pairs: an array of key values pointing at the
     * keys, each index recovered from its place in the array */
    size_t n = j->len;
    hp_jv *keys = hp_arena_alloc(a, (n ? n : 1) * sizeof *keys);
    const hp_jv **order = hp_arena_alloc(a, (n ? n : 1) * sizeof *order);
    if (keys == NULL || order == NULL) {
        *err = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        keys[i] = (hp_jv){.kind = HP_JV_STRING, .str = j->keys[i]};
        order[i] = &keys[i];
    }
    qsort(order, n, sizeof *order, key_order);
    hp_jw_raw(w, "{", 1);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(order[i]->str, order[i + 1]->str) == 0)
            continue; /* a later member has the same key */
        size_t at = (size_t)(order[i] - keys);
        if (!first)
            hp_jw_raw(w, ",", 1);
        first = false;
        if (hp_jw_string(w, j->keys[at], strlen(j->keys[at])) != 0) {
            *err = "invalid UTF-8 in a key";
            return -1;
        }
        hp_jw_raw(w, ":", 1);
        if (hp_jw_value(w, a, j->items[at], err) != 0)
            return -1;
    }
    hp_jw_raw(w, "}", 1);
    return 0;
}

int hp_jw_json(hp_jw *w, const hp_json *v)
{
    if (v->text == NULL) {
        hp_jw_null(w);
        return 0;
    }
    hp_arena a;
    hp_arena_init(&a);
    const char *err = NULL;
    hp_jv *j = hp_json_parse(&a, v->text, strlen(v->text), &err);
    int rc = j ? hp_jw_value(w, &a, j, &err) : -1;
    hp_arena_fini(&a);
    return rc;
}
