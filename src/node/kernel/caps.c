/* Capability sets.  Params are kept as canonical JSON so that equality of
 * the parsed JSON (Hyperware's rule) is string equality here. */
#include "kernel.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

char *hcn_json_canonical(const char *json)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    if (v == NULL)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(v);
    return s;
}

static ssize_t find(const hcn_capset *s, const char *issuer, const char *p)
{
    for (size_t i = 0; i < s->len; i++)
        if (strcmp(s->v[i].issuer, issuer) == 0 &&
            strcmp(s->v[i].params, p) == 0)
            return (ssize_t)i;
    return -1;
}

static void set_sig(hcn_cap *c, const uint8_t *sig, size_t sig_len)
{
    uint8_t *copy = NULL;
    if (sig_len != 0) {
        copy = hcn_xmalloc(sig_len);
        memcpy(copy, sig, sig_len);
    }
    free(c->sig);
    c->sig = copy;
    c->sig_len = sig_len;
}

int hcn_capset_add(hcn_capset *s, const char *issuer, const char *params)
{
    return hcn_capset_add_signed(s, issuer, params, NULL, 0);
}

int hcn_capset_add_signed(hcn_capset *s, const char *issuer, const char *params,
                          const uint8_t *sig, size_t sig_len)
{
    char *canon = hcn_json_canonical(params);
    if (canon == NULL)
        return -1;
    ssize_t at = find(s, issuer, canon);
    if (at >= 0) {
        free(canon);
        if (sig_len != 0)
            set_sig(&s->v[at], sig, sig_len);
        return 0;
    }
    if (s->len == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        hcn_cap *nv = realloc(s->v, s->cap * sizeof *nv);
        if (nv == NULL)
            abort();
        s->v = nv;
    }
    s->v[s->len].issuer = hcn_xstrdup(issuer);
    s->v[s->len].params = canon;
    s->v[s->len].sig = NULL;
    s->v[s->len].sig_len = 0;
    set_sig(&s->v[s->len], sig, sig_len);
    s->len++;
    return 1;
}

static void remove_at(hcn_capset *s, size_t i)
{
    free(s->v[i].issuer);
    free(s->v[i].params);
    free(s->v[i].sig);
    s->v[i] = s->v[s->len - 1];
    s->len--;
}

int hcn_capset_remove(hcn_capset *s, const char *issuer, const char *params)
{
    char *canon = hcn_json_canonical(params);
    if (canon == NULL)
        return 0;
    ssize_t i = find(s, issuer, canon);
    free(canon);
    if (i < 0)
        return 0;
    remove_at(s, (size_t)i);
    return 1;
}

bool hcn_capset_has(const hcn_capset *s, const char *issuer,
                    const char *canon_params)
{
    return find(s, issuer, canon_params) >= 0;
}

const hcn_cap *hcn_capset_get(const hcn_capset *s, const char *issuer,
                              const char *canon_params)
{
    ssize_t i = find(s, issuer, canon_params);
    return i >= 0 ? &s->v[i] : NULL;
}

bool hcn_capset_has_messaging(const hcn_capset *s, const char *target)
{
    return find(s, target, "\"messaging\"") >= 0;
}

size_t hcn_capset_remove_issuer(hcn_capset *s, const char *issuer_addr)
{
    size_t n = 0;
    for (size_t i = 0; i < s->len;) {
        if (strcmp(s->v[i].issuer, issuer_addr) == 0) {
            remove_at(s, i);
            n++;
        } else {
            i++;
        }
    }
    return n;
}

void hcn_capset_fini(hcn_capset *s)
{
    for (size_t i = 0; i < s->len; i++) {
        free(s->v[i].issuer);
        free(s->v[i].params);
        free(s->v[i].sig);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}
