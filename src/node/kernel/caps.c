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

int hcn_capset_add(hcn_capset *s, const char *issuer, const char *params)
{
    char *canon = hcn_json_canonical(params);
    if (canon == NULL)
        return -1;
    if (find(s, issuer, canon) >= 0) {
        free(canon);
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
    s->len++;
    return 1;
}

static void remove_at(hcn_capset *s, size_t i)
{
    free(s->v[i].issuer);
    free(s->v[i].params);
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
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}
