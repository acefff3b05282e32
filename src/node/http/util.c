/* http-server:distro:sys, the parts without sockets: the router (bound paths
 * as Hyperware's route_recognizer matches them), path formatting, URL and
 * query decoding, lossy UTF-8, peer addresses. */
#include "http_int.h"
#include "../../common/common.h"
#include "../../common/swar.h"
#include "../base/base.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

/* ------------------------------------------------------------ routing */

static char **split_segments(const char *path, size_t *n)
{
    if (*path == '/')
        path++;
    size_t count = 1;
    for (const char *p = path; *p; p++)
        count += *p == '/';
    char **v = hcn_xcalloc(count, sizeof *v);
    const char *s = path;
    for (size_t i = 0; i < count; i++) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        v[i] = hcn_xstrndup(s, len);
        s += len + (e ? 1 : 0);
    }
    *n = count;
    return v;
}

static void free_segments(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void *hcn_http_router_add(hcn_http_router *r, const char *pattern, void *data)
{
    const char *p = *pattern == '/' ? pattern + 1 : pattern;
    for (size_t i = 0; i < r->len; i++) {
        const char *q = r->v[i].pattern;
        if (*q == '/')
            q++;
        if (strcmp(p, q) == 0) {
            void *old = r->v[i].data;
            r->v[i].data = data;
            return old;
        }
    }
    if (r->len == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        hcn_http_route *nv = realloc(r->v, r->cap * sizeof *nv);
        if (nv == NULL)
            abort();
        r->v = nv;
    }
    hcn_http_route *rt = &r->v[r->len++];
    memset(rt, 0, sizeof *rt);
    rt->pattern = hcn_xstrdup(pattern);
    rt->segs = split_segments(pattern, &rt->nsegs);
    for (size_t i = 0; i < rt->nsegs; i++) {
        if (rt->segs[i][0] == ':')
            rt->ndyn++;
        else if (rt->segs[i][0] == '*')
            rt->nstar++;
        else
            rt->nstatic++;
    }
    rt->data = data;
    return NULL;
}

/* Whether path segments [from, to) joined by '/' are at least one
 * character: more than one segment, or one that is not empty. */
static bool star_fits(char **ps, size_t from, size_t to)
{
    return to > from + 1 || (to == from + 1 && ps[from][0] != 0);
}

/* Match rt against the path segments ps[0..np) without backtracking: a
 * table computed from the pattern's end, row r saying for each path index
 * whether segments r.. of the pattern match the path from there.  Each
 * row costs O(np) ('*' through a running "some later index matches"),
 * so a match is O(nsegs * np), linear in the path whatever the pattern.
 * Only the rows that follow a '*' are kept, to choose each star's extent
 * afterwards as the old recursive matcher did: the longest that lets the
 * rest match.  On a match, span[2k] and span[2k+1] are the path segments
 * [start, end) that pattern segment k took. */
static bool route_match(const hcn_http_route *rt, char **ps, size_t np,
                        size_t *span)
{
    size_t ns = rt->nsegs;
    if (rt->nstar == 0) {
        /* No star: one path segment per pattern segment. */
        if (ns != np)
            return false;
        for (size_t k = 0; k < ns; k++) {
            const char *seg = rt->segs[k];
            if (seg[0] == ':' ? ps[k][0] == 0 : strcmp(seg, ps[k]) != 0)
                return false;
            span[2 * k] = k;
            span[2 * k + 1] = k + 1;
        }
        return true;
    }
    size_t w = np + 1;
    uint8_t *next = hcn_xmalloc(w), *cur = hcn_xmalloc(w);
    uint8_t *kept = hcn_xmalloc(rt->nstar * w); /* rows after each star */
    memset(next, 0, w);
    next[np] = 1;
    size_t star = rt->nstar;
    for (size_t r = ns; r-- > 0;) {
        const char *seg = rt->segs[r];
        if (seg[0] == '*') {
            memcpy(kept + --star * w, next, w);
            /* cur[i]: some j > i with star_fits(i, j) and next[j]. */
            bool later = false; /* next[j] for some j >= i + 2 */
            cur[np] = 0;
            for (size_t i = np; i-- > 0;) {
                if (i + 2 <= np && next[i + 2])
                    later = true;
                cur[i] = (ps[i][0] != 0 && next[i + 1]) || later;
            }
        } else {
            cur[np] = 0;
            for (size_t i = 0; i < np; i++)
                cur[i] =
                    next[i + 1] &&
                    (seg[0] == ':' ? ps[i][0] != 0 : strcmp(seg, ps[i]) == 0);
        }
        uint8_t *t = next;
        next = cur;
        cur = t;
    }
    bool ok = next[0] != 0;
    if (ok) {
        /* Walk forward: a star takes the most segments it can. */
        size_t i = 0;
        star = 0;
        for (size_t r = 0; r < ns; r++) {
            span[2 * r] = i;
            if (rt->segs[r][0] == '*') {
                const uint8_t *row = kept + star++ * w;
                size_t j = np;
                while (!(row[j] && star_fits(ps, i, j)))
                    j--;
                i = j;
            } else {
                i++;
            }
            span[2 * r + 1] = i;
        }
    }
    free(next);
    free(cur);
    free(kept);
    return ok;
}

/* route_recognizer's Metadata order: > 0 when a ranks above b. */
static int rank(const hcn_http_route *a, const hcn_http_route *b)
{
    if (a->nstar != b->nstar)
        return a->nstar < b->nstar ? 1 : -1;
    if (a->ndyn != b->ndyn)
        return a->ndyn < b->ndyn ? 1 : -1;
    if (a->nstatic != b->nstatic)
        return a->nstatic > b->nstatic ? 1 : -1;
    return 0;
}

const hcn_http_route *hcn_http_router_match(const hcn_http_router *r,
                                            const char *path, json_t *params)
{
    size_t np;
    char **ps = split_segments(path, &np);
    const hcn_http_route *best = NULL;
    size_t *span = NULL, *best_span = NULL;
    for (size_t i = 0; i < r->len; i++) {
        const hcn_http_route *rt = &r->v[i];
        if (best && rank(rt, best) <= 0)
            continue;
        span = hcn_xcalloc(2 * rt->nsegs + 1, sizeof *span);
        if (route_match(rt, ps, np, span)) {
            best = rt;
            free(best_span);
            best_span = span;
        } else {
            free(span);
        }
    }
    for (size_t k = 0; best && params && k < best->nsegs; k++) {
        const char *seg = best->segs[k];
        if (seg[0] != ':' && seg[0] != '*')
            continue;
        /* The segments it took, joined by '/'. */
        size_t from = best_span[2 * k], to = best_span[2 * k + 1], vl = 0;
        for (size_t j = from; j < to; j++)
            vl += strlen(ps[j]) + (j > from);
        char *v = hcn_xmalloc(vl + 1), *o = v;
        for (size_t j = from; j < to; j++) {
            if (j > from)
                *o++ = '/';
            size_t l = strlen(ps[j]);
            memcpy(o, ps[j], l);
            o += l;
        }
        *o = 0;
        size_t ll;
        char *lossy = hcn_http_utf8_lossy((const uint8_t *)v, vl, &ll);
        json_object_set_new(params, seg + 1, json_stringn(lossy, ll));
        free(lossy);
        free(v);
    }
    free(best_span);
    free_segments(ps, np);
    return best;
}

void hcn_http_router_fini(hcn_http_router *r, void (*free_data)(void *))
{
    for (size_t i = 0; i < r->len; i++) {
        free(r->v[i].pattern);
        free_segments(r->v[i].segs, r->v[i].nsegs);
        if (free_data && r->v[i].data)
            free_data(r->v[i].data);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

char *hcn_http_normalize(const char *path, size_t len)
{
    if (len > 0 && path[len - 1] == '/')
        len--;
    return hcn_xstrndup(path, len);
}

char *hcn_http_format_path(const char *pid, const char *path)
{
    char *norm = hcn_http_normalize(path, strlen(path));
    if (strcmp(pid, "homepage:homepage:sys") == 0)
        return norm;
    char *out = hcn_xasprintf("/%s%s%s", pid, path[0] == '/' ? "" : "/", norm);
    free(norm);
    return out;
}

char *hcn_http_secure_subdomain(const char *pid)
{
    const char *pkg = strchr(pid, ':');
    pkg = pkg ? pkg + 1 : pid;
    char *out = hcn_xstrdup(pkg);
    for (char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c))
            *c = '-';
    return out;
}

/* ---------------------------------------------------------- decoding */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *hcn_http_url_decode(const char *s, size_t len, bool plus)
{
    uint8_t *raw = hcn_xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            raw[o++] = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else if (plus && s[i] == '+') {
            raw[o++] = ' ';
        } else {
            raw[o++] = (uint8_t)s[i];
        }
    }
    size_t ol;
    char *out = hcn_http_utf8_lossy(raw, o, &ol);
    free(raw);
    return out;
}

void hcn_http_parse_query(const char *q, size_t len, json_t *obj)
{
    size_t i = 0;
    while (i < len) {
        size_t e = i;
        while (e < len && q[e] != '&')
            e++;
        if (e > i) {
            size_t eq = i;
            while (eq < e && q[eq] != '=')
                eq++;
            char *k = hcn_http_url_decode(q + i, eq - i, true);
            char *v = eq < e ? hcn_http_url_decode(q + eq + 1, e - eq - 1, true)
                             : hcn_xstrdup("");
            json_object_set_new(obj, k, json_string(v));
            free(k);
            free(v);
        }
        i = e + 1;
    }
}

/* ------------------------------------------------------------ output */

void hcn_http_out_reserve(hcn_http_out *o, size_t n)
{
    if (o->len + n + 1 <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + n + 1)
        cap *= 2;
    o->buf = hcn_xrealloc(o->buf, cap);
    o->cap = cap;
}

void hcn_http_out_raw(hcn_http_out *o, const void *s, size_t n)
{
    hcn_http_out_reserve(o, n);
    if (n)
        memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

void hcn_http_out_str(hcn_http_out *o, const char *s)
{
    hcn_http_out_raw(o, s, strlen(s));
}

void hcn_http_out_u64(hcn_http_out *o, uint64_t v)
{
    char d[20];
    size_t k = sizeof d;
    do {
        d[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    hcn_http_out_raw(o, d + k, sizeof d - k);
}

/* Whether the 8 bytes of v need no escape in a JSON string: none below
 * 0x20, no '"', no '\\'. */
static bool out_plain8(uint64_t v)
{
    return !hcc_swar_any_below(v, 0x20) && !hcc_swar_any_eq(v, '"') &&
           !hcc_swar_any_eq(v, '\\');
}

void hcn_http_out_jstr(hcn_http_out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* Worst case: every byte as \u00XX. */
    hcn_http_out_reserve(o, n * 6 + 2);
    char *w = o->buf + o->len;
    *w++ = '"';
    for (size_t i = 0; i < n;) {
        if (n - i >= 8) {
            /* 8 bytes at a time while none needs an escape */
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (out_plain8(v)) {
                memcpy(w, &v, 8);
                w += 8;
                i += 8;
                continue;
            }
        }
        unsigned char ch = (unsigned char)s[i++];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            *w++ = (char)ch;
            continue;
        }
        *w++ = '\\';
        switch (ch) {
        case '"':
        case '\\': *w++ = (char)ch; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[ch >> 4];
            *w++ = hex[ch & 15];
        }
    }
    *w++ = '"';
    o->len = (size_t)(w - o->buf);
    o->buf[o->len] = 0;
}

void hcn_http_out_json(hcn_http_out *o, const json_t *obj)
{
    if (json_is_object(obj) && json_object_size(obj) == 0) {
        hcn_http_out_raw(o, "{}", 2);
        return;
    }
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        abort();
    hcn_http_out_str(o, s);
    free(s);
}

char *hcn_http_utf8_lossy(const uint8_t *s, size_t len, size_t *outlen)
{
    char *out = hcn_xmalloc(len * 3 + 1);
    size_t o = hcc_utf8_lossy(s, len, (uint8_t *)out);
    out[o] = 0;
    if (outlen)
        *outlen = o;
    return out;
}

/* ------------------------------------------------- HttpResponse, read */

/* hcn_http_answer_read's state. */
typedef struct answer_read {
    hcn_http_answer *a;
    int depth; /* maps open */
    int want;  /* the value the last key names: 0 status, 1 headers, 2 a
                  header's value, -1 none */
    bool have_status, have_headers, failed;
} answer_read;

static int answer_fail(void *ctx)
{
    (void)ctx;
    return 0;
}

static int answer_bool(void *ctx, int b)
{
    (void)b;
    return answer_fail(ctx);
}

/* Keep s[0..n) (valid UTF-8, no NUL) in the answer's text; NULL when it
 * does not fit or is not such a string. */
static const char *answer_keep(hcn_http_answer *a, const unsigned char *s,
                               size_t n)
{
    if (n + 1 > sizeof a->text - a->used || memchr(s, 0, n) ||
        !hcc_utf8_valid(s, n))
        return NULL;
    char *t = a->text + a->used;
    memcpy(t, s, n);
    t[n] = 0;
    a->used += n + 1;
    return t;
}

static int answer_start_map(void *ctx)
{
    answer_read *r = ctx;
    if (r->depth == 0 ? r->have_status || r->have_headers
                      : !(r->depth == 1 && r->want == 1))
        return 0;
    r->depth++;
    r->want = -1;
    return 1;
}

static int answer_key(void *ctx, const unsigned char *k, size_t n)
{
    answer_read *r = ctx;
    hcn_http_answer *a = r->a;
    if (r->want != -1)
        return 0;
    if (r->depth == 1) {
        if (n == 6 && memcmp(k, "status", 6) == 0 && !r->have_status) {
            r->have_status = true;
            r->want = 0;
            return 1;
        }
        if (n == 7 && memcmp(k, "headers", 7) == 0 && !r->have_headers) {
            r->have_headers = true;
            r->want = 1;
            return 1;
        }
        return 0;
    }
    if (a->nheaders == HCN_HTTP_ANSWER_HEADERS)
        return 0;
    const char *name = answer_keep(a, k, n);
    if (name == NULL)
        return 0;
    for (size_t i = 0; i < a->nheaders; i++)
        if (strcmp(a->names[i], name) == 0)
            return 0; /* a name twice: jansson keeps the last value */
    a->names[a->nheaders] = name;
    r->want = 2;
    return 1;
}

/* The status as written: decimal digits only (yajl has checked the
 * grammar), at most 18 of them. */
static int answer_number(void *ctx, const char *s, size_t n)
{
    answer_read *r = ctx;
    if (r->depth != 1 || r->want != 0 || n == 0 || n > 18)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    r->a->status = v;
    r->want = -1;
    return 1;
}

static int answer_string(void *ctx, const unsigned char *s, size_t n)
{
    answer_read *r = ctx;
    hcn_http_answer *a = r->a;
    if (r->depth != 2 || r->want != 2)
        return 0;
    const char *v = answer_keep(a, s, n);
    if (v == NULL)
        return 0;
    a->values[a->nheaders++] = v;
    r->want = -1;
    return 1;
}

static int answer_end_map(void *ctx)
{
    answer_read *r = ctx;
    if (r->want != -1)
        return 0;
    r->depth--;
    return 1;
}

static const yajl_callbacks answer_callbacks = {
    .yajl_null = answer_fail,
    .yajl_boolean = answer_bool,
    .yajl_number = answer_number,
    .yajl_string = answer_string,
    .yajl_start_map = answer_start_map,
    .yajl_map_key = answer_key,
    .yajl_end_map = answer_end_map,
    .yajl_start_array = answer_fail,
    .yajl_end_array = answer_fail,
};

/* JSON's blanks from *p on skipped (not yajl's \v and \f). */
static const unsigned char *answer_blanks(const unsigned char *p,
                                          const unsigned char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string without escapes and control bytes at *pp: its bytes in *s, *n,
 * *pp past it; false when there is none such. */
static bool answer_plain_str(const unsigned char **pp, const unsigned char *e,
                             const unsigned char **s, size_t *n)
{
    const unsigned char *p = *pp;
    if (p == e || *p != '"')
        return false;
    const unsigned char *b = ++p;
    while (p < e && *p != '"') {
        if (*p < 0x20 || *p == '\\')
            return false;
        p++;
    }
    if (p == e)
        return false;
    *s = b;
    *n = (size_t)(p - b);
    *pp = p + 1;
    return true;
}

/* An object's key at *pp (a plain string), then its colon: the key in *k,
 * *kn, *pp at the value (blanks skipped); false when there is none such. */
static bool answer_plain_key(const unsigned char **pp, const unsigned char *e,
                             const unsigned char **k, size_t *kn)
{
    const unsigned char *p = *pp;
    if (!answer_plain_str(&p, e, k, kn))
        return false;
    p = answer_blanks(p, e);
    if (p == e || *p++ != ':')
        return false;
    *pp = answer_blanks(p, e);
    return true;
}

/* The headers object at *pp (past its '{') into a; false when it is not
 * the plain shape. */
static bool answer_scan_headers(const unsigned char **pp,
                                const unsigned char *e, hcn_http_answer *a)
{
    const unsigned char *p = answer_blanks(*pp, e);
    if (p < e && *p == '}') {
        *pp = p + 1;
        return true;
    }
    for (;;) {
        const unsigned char *k, *v;
        size_t kn, vn;
        if (!answer_plain_key(&p, e, &k, &kn) ||
            !answer_plain_str(&p, e, &v, &vn) ||
            a->nheaders == HCN_HTTP_ANSWER_HEADERS)
            return false;
        const char *name = answer_keep(a, k, kn);
        if (name == NULL)
            return false;
        for (size_t i = 0; i < a->nheaders; i++)
            if (strcmp(a->names[i], name) == 0)
                return false;
        const char *value = answer_keep(a, v, vn);
        if (value == NULL)
            return false;
        a->names[a->nheaders] = name;
        a->values[a->nheaders++] = value;
        p = answer_blanks(p, e);
        if (p == e)
            return false;
        if (*p == '}') {
            *pp = p + 1;
            return true;
        }
        if (*p++ != ',')
            return false;
        p = answer_blanks(p, e);
    }
}

/* hcn_http_answer_read's first try, without yajl: the plain shape with no
 * backslash anywhere in its strings, JSON's blanks only, the status
 * without a leading zero, fraction or exponent.  True only where the yajl
 * reading below takes the body and reads the same; false for anything
 * else (a half filled), for that reading to decide. */
static bool answer_scan(const char *body, size_t len, hcn_http_answer *a)
{
    const unsigned char *p = (const unsigned char *)body, *e = p + len;
    bool have_status = false, have_headers = false;
    p = answer_blanks(p, e);
    if (p == e || *p++ != '{')
        return false;
    for (;;) {
        const unsigned char *k;
        size_t kn;
        p = answer_blanks(p, e);
        if (!answer_plain_key(&p, e, &k, &kn))
            return false;
        if (kn == 6 && memcmp(k, "status", 6) == 0 && !have_status) {
            have_status = true;
            const unsigned char *d = p;
            uint64_t v = 0; /* 19 digits fit (and are refused below) */
            while (p < e && *p >= '0' && *p <= '9' && p - d < 19)
                v = v * 10 + (uint64_t)(*p++ - '0');
            size_t nd = (size_t)(p - d);
            if (nd == 0 || nd > 18 || (nd > 1 && *d == '0') ||
                (p < e && (*p == '.' || *p == 'e' || *p == 'E' ||
                           (*p >= '0' && *p <= '9'))))
                return false;
            a->status = (int64_t)v;
        } else if (kn == 7 && memcmp(k, "headers", 7) == 0 && !have_headers) {
            have_headers = true;
            if (p == e || *p++ != '{' || !answer_scan_headers(&p, e, a))
                return false;
        } else {
            return false;
        }
        p = answer_blanks(p, e);
        if (p == e)
            return false;
        if (*p == '}')
            break;
        if (*p++ != ',')
            return false;
    }
    return answer_blanks(p + 1, e) == e && have_status && have_headers;
}

bool hcn_http_answer_read(const char *body, size_t len, hcn_http_answer *a)
{
    a->status = 0;
    a->nheaders = a->used = 0;
    if (body == NULL)
        return false;
    if (answer_scan(body, len, a))
        return true;
    a->status = 0;
    a->nheaders = a->used = 0;
    /* a \u escape is left to jansson: it refuses a lone surrogate, which
     * yajl turns into a character */
    if (memmem(body, len, "\\u", 2))
        return false;
    answer_read r = {.a = a, .want = -1};
    return hcc_yajl_parse_short(&answer_callbacks, &r, body, len) &&
           r.depth == 0 && r.have_status && r.have_headers;
}

/* -------------------------------------------------------------- peers */

bool hcn_http_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return true;
        /* Rust's IpAddr::is_loopback is false for an IPv4-mapped address;
         * here a mapped 127.x is loopback too (a dual-stack socket). */
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
               in6->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

void hcn_http_addr_key(const struct sockaddr *sa, uint8_t key[17])
{
    memset(key, 0, 17);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            key[0] = 4;
            memcpy(key + 1, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, in6->sin6_addr.s6_addr, 8);
        }
    }
}

void hcn_http_format_addr(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(out, n, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(out, n, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, n, "?");
    }
}

bool hcn_http_is_proxy_header(const char *name)
{
    static const char *const names[] = {
        "forwarded",           "via",
        "x-real-ip",           "x-client-ip",
        "x-cluster-client-ip", "true-client-ip",
        "cf-connecting-ip",    "forwarded-for",
        "x-originating-ip",
    };
    /* The name folded: lowercase, '_' as '-', blanks around it dropped. */
    char buf[64];
    while (*name == ' ' || *name == '\t')
        name++;
    size_t n = strlen(name);
    while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
        n--;
    if (n >= sizeof buf)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = (char)tolower((unsigned char)name[i]);
        buf[i] = ch == '_' ? '-' : ch;
    }
    buf[n] = 0;
    if (strncmp(buf, "x-forwarded-", 12) == 0)
        return true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(buf, names[i]) == 0)
            return true;
    return false;
}
