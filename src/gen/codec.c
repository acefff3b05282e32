/* Generated JSON codecs: for each composite type of the model, an encoder
 * on hp_jw writing what serde_json writes and a decoder on hp_jv accepting
 * what serde_json accepts (docs/gen-design.md §2), and the deep copy the
 * state is kept with.  The generated file is compiled in the same
 * translation unit as the user's source, after it. */
#include "emit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

hcg_kind hcg_type_kind(const hcg_model *m, int id)
{
    return hcg_model_type(m, id)->kind;
}

const char *hcg_type_c(const hcg_model *m, int id)
{
    return hcg_model_type(m, id)->c;
}

bool hcg_composite(const hcg_model *m, int id)
{
    const hcg_type *t = hcg_model_type(m, id);
    return t && t->kind >= HCG_UNIT;
}

bool hcg_clonable(const hcg_model *m, int id)
{
    hcg_kind k = hcg_type_kind(m, id);
    return hcg_composite(m, id) && k != HCG_ENUM && k != HCG_UNIT;
}

char *hcg_fname(const hcg_model *m, int id)
{
    char *s = strdup(hcg_type_c(m, id));
    if (s == NULL)
        abort();
    for (char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c))
            *c = '_';
    return s;
}

/* What generated code returns when encoding or decoding fails: -1 in the
 * codec functions; the dispatcher sets its own. */
static const char *ret_fail = "-1";

/* Statements encoding the value `expr` of type id. */
void hcg_enc(hcg_buf *b, const hcg_model *m, int id, const char *expr,
             const char *ind)
{
    hcg_kind k = hcg_type_kind(m, id);
    if (k == HCG_BOOL) {
        hcg_buf_add(b, "%shp_jw_bool(w, %s);\n", ind, expr);
    } else if (hcg_kind_signed(k)) {
        hcg_buf_add(b, "%shp_jw_i64(w, (int64_t)(%s));\n", ind, expr);
    } else if (hcg_kind_unsigned(k)) {
        hcg_buf_add(b, "%shp_jw_u64(w, (uint64_t)(%s));\n", ind, expr);
    } else if (k == HCG_F32) {
        hcg_buf_add(b, "%shp_jw_f32(w, (float)(%s));\n", ind, expr);
    } else if (k == HCG_F64) {
        hcg_buf_add(b, "%shp_jw_f64(w, (double)(%s));\n", ind, expr);
    } else if (k == HCG_STRING) {
        /* NULL is the empty string: a zeroed struct is Rust's Default */
        hcg_buf_add(
            b,
            "%sif ((%s) == NULL)\n%s    hp_jw_raw(w, \"\\\"\\\"\", 2);\n"
            "%selse if (hp_jw_string(w, (%s), strlen(%s)) != 0)\n"
            "%s    return %s;\n",
            ind, expr, ind, ind, expr, expr, ind, ret_fail);
    } else if (k == HCG_CHAR) {
        hcg_buf_add(b,
                    "%sif (hp_jw_char(w, (hp_char)(%s)) != 0)\n%s    return "
                    "%s;\n",
                    ind, expr, ind, ret_fail);
    } else if (k == HCG_U128) {
        hcg_buf_add(b, "%shp_jw_u128(w, (hp_u128)(%s));\n", ind, expr);
    } else if (k == HCG_S128) {
        hcg_buf_add(b, "%shp_jw_i128(w, (hp_i128)(%s));\n", ind, expr);
    } else if (k == HCG_JSON) {
        hcg_buf_add(b, "%sif (hp_jw_json(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, expr, ind, ret_fail);
    } else if (k == HCG_BYTES) {
        hcg_buf_add(b, "%shp_jw_bytes(w, &(%s));\n", ind, expr);
    } else if (k == HCG_ADDRESS) {
        hcg_buf_add(b,
                    "%sif (hp_jw_address(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, expr, ind, ret_fail);
    } else {
        char *f = hcg_fname(m, id);
        hcg_buf_add(b, "%sif (hpg_enc_%s(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, f, expr, ind, ret_fail);
        free(f);
    }
}

/* Statements decoding JSON `j` into the lvalue `lv` of type id; a failure
 * returns -1 with *err prefixed by `ctx` (a C string literal's content). */
void hcg_dec(hcg_buf *b, const hcg_model *m, int id, const char *j,
             const char *lv, const char *ctx, const char *ind)
{
    hcg_kind k = hcg_type_kind(m, id);
    /* the failure block, for an `if` at ind (fail) or at ind + 4 (fail4) */
    char fail[512], fail4[512];
    snprintf(fail, sizeof fail,
             " {\n%s    *err = hp_jd_wrap(a, \"%s\", *err);\n%s    return "
             "%s;\n%s}\n",
             ind, ctx, ind, ret_fail, ind);
    snprintf(fail4, sizeof fail4,
             " {\n%s        *err = hp_jd_wrap(a, \"%s\", *err);\n%s        "
             "return %s;\n%s    }\n",
             ind, ctx, ind, ret_fail, ind);
    if (k == HCG_BOOL) {
        hcg_buf_add(
            b, "%s{\n%s    bool t_;\n%s    if (hp_jd_bool(a, %s, &t_, err))%s",
            ind, ind, ind, j, fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (hcg_kind_signed(k)) {
        int bits = hcg_kind_bits(k);
        hcg_buf_add(b, "%s{\n%s    int64_t t_;\n", ind, ind);
        hcg_buf_add(
            b,
            "%s    if (hp_jd_int(a, %s, INT%d_MIN, INT%d_MAX, \"%s\", &t_, "
            "err))%s",
            ind, j, bits, bits, hcg_kind_name(k), fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (hcg_kind_unsigned(k)) {
        int bits = hcg_kind_bits(k);
        hcg_buf_add(b, "%s{\n%s    uint64_t t_;\n", ind, ind);
        hcg_buf_add(
            b, "%s    if (hp_jd_uint(a, %s, UINT%d_MAX, \"%s\", &t_, err))%s",
            ind, j, bits, hcg_kind_name(k), fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (k == HCG_F32 || k == HCG_F64) {
        hcg_buf_add(b, "%s{\n%s    double t_;\n", ind, ind);
        hcg_buf_add(b, "%s    if (hp_jd_float(a, %s, %s, &t_, err))%s", ind, j,
                    k == HCG_F32 ? "true" : "false", fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (k == HCG_STRING) {
        hcg_buf_add(b, "%s{\n%s    const char *t_;\n", ind, ind);
        hcg_buf_add(b, "%s    if (hp_jd_string(a, %s, &t_, err))%s", ind, j,
                    fail4);
        hcg_buf_add(b, "%s    %s = (char *)t_;\n%s}\n", ind, lv, ind);
    } else if (k == HCG_CHAR || k == HCG_U128 || k == HCG_S128) {
        const char *ct = k == HCG_CHAR   ? "hp_char"
                         : k == HCG_U128 ? "hp_u128"
                                         : "hp_i128";
        const char *fn = k == HCG_CHAR   ? "char"
                         : k == HCG_U128 ? "u128"
                                         : "i128";
        hcg_buf_add(b, "%s{\n%s    %s t_;\n", ind, ind, ct);
        hcg_buf_add(b, "%s    if (hp_jd_%s(a, %s, &t_, err))%s", ind, fn, j,
                    fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (k == HCG_BYTES || k == HCG_ADDRESS || k == HCG_JSON) {
        hcg_buf_add(b, "%sif (hp_jd_%s(a, %s, &(%s), err))%s", ind,
                    hcg_kind_name(k), j, lv, fail);
    } else {
        char *f = hcg_fname(m, id);
        hcg_buf_add(b, "%sif (hpg_dec_%s(a, %s, &(%s), err))%s", ind, f, j, lv,
                    fail);
        free(f);
    }
}

static void gen_record(hcg_buf *b, const hcg_model *m, int id, const char *f,
                       const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    const char *name = t->name;
    size_t nf = t->nfields;
    /* encoder */
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    hcg_buf_add(b, "    (void)v;\n    hp_jw_raw(w, \"{\", 1);\n");
    size_t written = 0;
    for (size_t i = 0; i < nf; i++) {
        const hcg_field *fl = &t->fields[i];
        const char *fn = fl->name;
        if (fl->skip)
            continue;
        char key[160], expr[160];
        bool comma = written++ > 0;
        snprintf(key, sizeof key, "%s\\\"%s\\\":", comma ? "," : "", fn);
        hcg_buf_add(b, "    hp_jw_raw(w, \"%s\", %zu);\n", key,
                    strlen(fn) + 3 + (comma ? 1 : 0));
        snprintf(expr, sizeof expr, "v->%s", fn);
        hcg_enc(b, m, fl->type, expr, "    ");
    }
    hcg_buf_add(b, "    hp_jw_raw(w, \"}\", 1);\n    return 0;\n}\n\n");
    /* decoder: an object (unknown keys ignored, duplicates refused, a
     * missing field is an error unless it is an option), or an array of
     * every field in order */
    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    /* skipped fields are zero, as serde's Default */
    for (size_t i = 0; i < nf; i++)
        if (t->fields[i].skip)
            hcg_buf_add(b, "    memset(&out->%s, 0, sizeof out->%s);\n",
                        t->fields[i].name, t->fields[i].name);
    size_t nw = 0;
    for (size_t i = 0; i < nf; i++)
        nw += !t->fields[i].skip;
    hcg_buf_add(b, "    if (j->kind == HP_JV_ARRAY) {\n");
    hcg_buf_add(b, "        if (j->len != %zu) {\n", nw);
    hcg_buf_add(
        b,
        "            *err = hp_arena_sprintf(a, \"expected %s as an object "
        "or an array of %zu fields, got an array of %%zu\", j->len);\n",
        name, nw);
    hcg_buf_add(b, "            return -1;\n        }\n");
    for (size_t i = 0, at = 0; i < nf; i++) {
        const hcg_field *fl = &t->fields[i];
        const char *fn = fl->name;
        if (fl->skip)
            continue;
        char jx[64], lv[160], ctx[160];
        snprintf(jx, sizeof jx, "j->items[%zu]", at++);
        snprintf(lv, sizeof lv, "out->%s", fn);
        snprintf(ctx, sizeof ctx, "field '%s' of %s", fn, name);
        hcg_dec(b, m, fl->type, jx, lv, ctx, "        ");
    }
    hcg_buf_add(b, "        return 0;\n    }\n");
    hcg_buf_add(b, "    if (j->kind != HP_JV_OBJECT) {\n");
    hcg_buf_add(
        b,
        "        *err = hp_arena_sprintf(a, \"expected %s (an object), got "
        "%%s\", hp_jv_kind_name(j));\n",
        name);
    hcg_buf_add(b, "        return -1;\n    }\n");
    for (size_t i = 0; i < nf; i++)
        if (!t->fields[i].skip)
            hcg_buf_add(b, "    const hp_jv *f%zu_ = NULL;\n", i);
    hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
    hcg_buf_add(b, "        const hp_jv **slot = NULL;\n");
    for (size_t i = 0, at = 0; i < nf; i++) {
        const hcg_field *fl = &t->fields[i];
        const char *fn = fl->name;
        if (fl->skip)
            continue;
        hcg_buf_add(b, "        %sif (strcmp(j->keys[i], \"%s\") == 0)\n",
                    at++ ? "else " : "", fn);
        hcg_buf_add(b, "            slot = &f%zu_;\n", i);
    }
    hcg_buf_add(b, "        if (slot == NULL)\n            continue;\n");
    hcg_buf_add(b, "        if (*slot != NULL) {\n");
    hcg_buf_add(
        b,
        "            *err = hp_arena_sprintf(a, \"duplicate field `%%s` in "
        "%s\", "
        "j->keys[i]);\n",
        name);
    hcg_buf_add(b, "            return -1;\n        }\n");
    hcg_buf_add(b, "        *slot = j->items[i];\n    }\n");
    for (size_t i = 0; i < nf; i++) {
        const hcg_field *fl = &t->fields[i];
        const char *fn = fl->name;
        int ft = fl->type;
        if (fl->skip)
            continue;
        bool opt = hcg_type_kind(m, hcg_unalias(m, ft)) == HCG_OPTION;
        char jx[32], lv[160], ctx[160];
        snprintf(jx, sizeof jx, "f%zu_", i);
        snprintf(lv, sizeof lv, "out->%s", fn);
        snprintf(ctx, sizeof ctx, "field '%s' of %s", fn, name);
        hcg_buf_add(b, "    if (f%zu_ == NULL) {\n", i);
        if (opt) {
            hcg_buf_add(b, "        out->%s.some = false;\n", fn);
        } else {
            hcg_buf_add(
                b,
                "        *err = \"missing field `%s` in %s\";\n        return "
                "-1;\n",
                fn, name);
        }
        hcg_buf_add(b, "    } else {\n");
        hcg_dec(b, m, ft, jx, lv, ctx, "        ");
        hcg_buf_add(b, "    }\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

static void gen_enum(hcg_buf *b, const hcg_model *m, int id, const char *f,
                     const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    const char *name = t->name;
    size_t nv = t->nvariants;
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    hcg_buf_add(b, "    switch (*v) {\n");
    for (size_t i = 0; i < nv; i++) {
        const hcg_enumerator *v = &t->variants[i];
        const char *wire = v->wire;
        hcg_buf_add(
            b, "    case %s:\n        hp_jw_raw(w, \"\\\"%s\\\"\", %zu);\n",
            v->c, wire, strlen(wire) + 2);
        hcg_buf_add(b, "        return 0;\n");
    }
    hcg_buf_add(
        b, "    }\n    return -1; /* not one of the enumerators */\n}\n\n");
    /* decoder: "Variant" or {"Variant": null} */
    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    hcg_buf_add(b, "    const char *s = NULL;\n");
    hcg_buf_add(b, "    if (j->kind == HP_JV_STRING)\n        s = j->str;\n");
    hcg_buf_add(b,
                "    else if (j->kind == HP_JV_OBJECT && j->len == 1 && "
                "j->items[0]->kind == HP_JV_NULL)\n        s = j->keys[0];\n");
    for (size_t i = 0; i < nv; i++) {
        const hcg_enumerator *v = &t->variants[i];
        hcg_buf_add(b, "    if (s && strcmp(s, \"%s\") == 0) {\n", v->wire);
        hcg_buf_add(b, "        *out = %s;\n        return 0;\n    }\n", v->c);
    }
    hcg_buf_add(
        b, "    *err = hp_arena_sprintf(a, \"expected a variant of %s (", name);
    for (size_t i = 0; i < nv; i++)
        hcg_buf_add(b, "%s%s", i ? ", " : "", t->variants[i].wire);
    hcg_buf_add(
        b, "), got %%s%%s%%s\", s ? \"'\" : hp_jv_kind_name(j), s ? s : \"\", "
           "s ? \"'\" : \"\");\n");
    hcg_buf_add(b, "    return -1;\n}\n\n");
}

/* A map's helpers: its keys' order, a qsort comparator over pointers to
 * its entries (a key is an entry's first member; equal keys keep their
 * order), and its value's encoder. */
static void gen_map_helpers(hcg_buf *b, const hcg_model *m, int id,
                            const char *f)
{
    const hcg_type *t = hcg_model_type(m, id);
    const char *kc = hcg_wire_c(m, t->key);
    hcg_kind kk = hcg_type_kind(m, hcg_unalias(m, t->key));
    hcg_buf_add(b, "static int hpg_kcmp_%s(%s const *x, %s const *y)\n{\n", f,
                kc, kc);
    if (kk == HCG_STRING)
        hcg_buf_add(b, "    return strcmp(*x, *y);\n}\n\n");
    else
        hcg_buf_add(b, "    return (*x > *y) - (*x < *y);\n}\n\n");
    hcg_buf_add(b,
                "static int hpg_ksort_%s(const void *p, const void *q)\n{\n"
                "    const void *x = *(const void *const *)p;\n"
                "    const void *y = *(const void *const *)q;\n"
                "    int c = hpg_kcmp_%s((%s const *)x, (%s const *)y);\n"
                "    if (c)\n        return c;\n"
                "    return x < y ? -1 : x > y;\n}\n\n",
                f, f, kc, kc);
    hcg_buf_add(b, "static int hpg_encv_%s(hp_jw *w, %s const *v)\n{\n", f,
                hcg_wire_c(m, t->elem));
    hcg_enc(b, m, t->elem, "(*v)", "    ");
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

static void gen_variant(hcg_buf *b, const hcg_model *m, int id, const char *f,
                        const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    const char *name = t->name, *tag = t->tag_field;
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    for (size_t i = 0; i < t->ncases; i++) {
        const hcg_case *c = &t->cases[i];
        hcg_buf_add(b, "    if (v->%s == %s) {\n", tag, c->c);
        if (c->member) {
            char expr[200];
            snprintf(expr, sizeof expr, "v->%s", c->member);
            hcg_buf_add(b, "        hp_jw_raw(w, \"{\\\"%s\\\":\", %zu);\n",
                        c->wire, strlen(c->wire) + 4);
            hcg_enc(b, m, c->type, expr, "        ");
            hcg_buf_add(b, "        hp_jw_raw(w, \"}\", 1);\n");
        } else {
            hcg_buf_add(b, "        hp_jw_raw(w, \"\\\"%s\\\"\", %zu);\n",
                        c->wire, strlen(c->wire) + 2);
        }
        hcg_buf_add(b, "        return 0;\n    }\n");
    }
    hcg_buf_add(b, "    (void)w;\n    return -1; /* not one of the cases */\n"
                   "}\n\n");
    /* decoder: "Case" for a case without data (also {"Case": null}),
     * {"Case": data} for the others, as serde's externally tagged enums */
    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    hcg_buf_add(b, "    const char *s = NULL;\n    const hp_jv *d = NULL;\n");
    hcg_buf_add(b, "    if (j->kind == HP_JV_STRING) {\n        s = j->str;\n"
                   "    } else if (j->kind == HP_JV_OBJECT && j->len == 1) {\n"
                   "        s = j->keys[0];\n        d = j->items[0];\n"
                   "    }\n");
    for (size_t i = 0; i < t->ncases; i++) {
        const hcg_case *c = &t->cases[i];
        hcg_buf_add(b, "    if (s && strcmp(s, \"%s\") == 0) {\n", c->wire);
        if (c->member) {
            hcg_buf_add(b,
                        "        if (d == NULL) {\n            *err = "
                        "\"variant %s of %s carries data: expected "
                        "{\\\"%s\\\": ...}\";\n            return -1;\n"
                        "        }\n",
                        c->wire, name, c->wire);
            hcg_buf_add(b, "        out->%s = %s;\n", tag, c->c);
            char lv[200], ctx[200];
            snprintf(lv, sizeof lv, "out->%s", c->member);
            snprintf(ctx, sizeof ctx, "variant %s of %s", c->wire, name);
            hcg_dec(b, m, c->type, "d", lv, ctx, "        ");
        } else {
            hcg_buf_add(b,
                        "        if (d != NULL && d->kind != HP_JV_NULL) {\n"
                        "            *err = \"variant %s of %s carries no "
                        "data: expected \\\"%s\\\"\";\n            "
                        "return -1;\n        }\n",
                        c->wire, name, c->wire);
            hcg_buf_add(b, "        out->%s = %s;\n", tag, c->c);
        }
        hcg_buf_add(b, "        return 0;\n    }\n");
    }
    hcg_buf_add(
        b, "    *err = hp_arena_sprintf(a, \"expected a variant of %s (", name);
    for (size_t i = 0; i < t->ncases; i++)
        hcg_buf_add(b, "%s%s", i ? ", " : "", t->cases[i].wire);
    hcg_buf_add(b, ") as \\\"Name\\\" or {\\\"Name\\\": data}, got "
                   "%%s%%s%%s\", s ? \"'\" : hp_jv_kind_name(j), s ? s : "
                   "\"\", s ? \"'\" : \"\");\n");
    hcg_buf_add(b, "    return -1;\n}\n\n");
}

static void gen_alias(hcg_buf *b, const hcg_model *m, int id, const char *f,
                      const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    hcg_enc(b, m, t->elem, "(*v)", "    ");
    hcg_buf_add(b, "    return 0;\n}\n\n");
    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    hcg_dec(b, m, t->elem, "j", "(*out)", t->name, "    ");
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

static void gen_generic(hcg_buf *b, const hcg_model *m, int id, const char *f,
                        const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    hcg_kind k = hcg_type_kind(m, id);
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    if (k == HCG_LIST) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"[\", 1);\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < v->len; i++) {\n");
        hcg_buf_add(b, "        if (i)\n            hp_jw_raw(w, \",\", 1);\n");
        hcg_enc(b, m, t->elem, "v->ptr[i]", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"]\", 1);\n");
    } else if (k == HCG_OPTION) {
        hcg_buf_add(
            b, "    if (!v->some) {\n        hp_jw_null(w);\n        return "
               "0;\n    }\n");
        hcg_enc(b, m, t->elem, "v->value", "    ");
    } else if (k == HCG_RESULT) {
        hcg_buf_add(
            b,
            "    if (v->ok) {\n        hp_jw_raw(w, \"{\\\"Ok\\\":\", 6);\n");
        hcg_enc(b, m, t->ok, "v->value", "        ");
        hcg_buf_add(
            b, "    } else {\n        hp_jw_raw(w, \"{\\\"Err\\\":\", 7);\n");
        hcg_enc(b, m, t->err, "v->error", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"}\", 1);\n");
    } else if (k == HCG_MAP) {
        hcg_kind kk = hcg_type_kind(m, hcg_unalias(m, t->key));
        /* in key order, as a BTreeMap; a repeated key keeps its last
         * value (the one a map built in order keeps) */
        hcg_buf_add(b, "    size_t n = v->len;\n");
        if (kk == HCG_STRING)
            hcg_buf_add(b, "    for (size_t i = 0; i < n; i++)\n        if "
                           "(v->ptr[i].key == NULL)\n            return "
                           "-1;\n");
        hcg_buf_add(b, "    bool sorted = true;\n");
        hcg_buf_add(b, "    for (size_t i = 1; i < n && sorted; i++)\n");
        hcg_buf_add(b,
                    "        sorted = hpg_kcmp_%s(&v->ptr[i - 1].key, "
                    "&v->ptr[i].key) < 0;\n",
                    f);
        hcg_buf_add(b, "    const void **ks = NULL;\n");
        hcg_buf_add(b, "    if (!sorted) {\n");
        hcg_buf_add(b, "        ks = malloc(n * sizeof *ks);\n");
        hcg_buf_add(b, "        if (ks == NULL)\n            return -1;\n");
        hcg_buf_add(b, "        for (size_t i = 0; i < n; i++)\n            "
                       "ks[i] = &v->ptr[i];\n");
        hcg_buf_add(b, "        qsort(ks, n, sizeof *ks, hpg_ksort_%s);\n", f);
        hcg_buf_add(b, "    }\n");
        hcg_buf_add(b, "    hp_jw_raw(w, \"{\", 1);\n");
        hcg_buf_add(b, "    bool first = true;\n");
        hcg_buf_add(b, "    for (size_t r = 0; r < n; r++) {\n");
        hcg_buf_add(b, "        size_t i = ks ? (size_t)((const char *)ks[r] "
                       "- (const char *)v->ptr) / sizeof *v->ptr : r;\n");
        hcg_buf_add(b,
                    "        if (ks && r + 1 < n && hpg_kcmp_%s(&v->ptr[i]."
                    "key, &v->ptr[(size_t)((const char *)ks[r + 1] - "
                    "(const char *)v->ptr) / sizeof *v->ptr].key) == 0)\n"
                    "            continue;\n",
                    f);
        hcg_buf_add(b, "        if (!first)\n            hp_jw_raw(w, \",\", "
                       "1);\n        first = false;\n");
        if (kk == HCG_STRING)
            hcg_buf_add(b, "        if (hp_jw_string(w, v->ptr[i].key, "
                           "strlen(v->ptr[i].key)) != 0) {\n            "
                           "free(ks);\n            return -1;\n        }\n");
        else if (hcg_kind_signed(kk))
            hcg_buf_add(b,
                        "        hp_jw_key_i64(w, (int64_t)v->ptr[i].key);\n");
        else
            hcg_buf_add(b,
                        "        hp_jw_key_u64(w, (uint64_t)v->ptr[i].key);\n");
        hcg_buf_add(b, "        hp_jw_raw(w, \":\", 1);\n");
        /* a failing value frees the order first */
        hcg_buf_add(b,
                    "        if (hpg_encv_%s(w, &v->ptr[i].value) != 0) {\n"
                    "            free(ks);\n            return -1;\n"
                    "        }\n",
                    f);
        hcg_buf_add(b, "    }\n    free(ks);\n    hp_jw_raw(w, \"}\", 1);\n");
    } else if (k == HCG_TUPLE) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"[\", 1);\n");
        for (size_t i = 0; i < t->nitems; i++) {
            char expr[32];
            snprintf(expr, sizeof expr, "v->_%zu", i);
            if (i)
                hcg_buf_add(b, "    hp_jw_raw(w, \",\", 1);\n");
            hcg_enc(b, m, t->items[i], expr, "    ");
        }
        hcg_buf_add(b, "    hp_jw_raw(w, \"]\", 1);\n");
    } else { /* unit */
        hcg_buf_add(b, "    (void)v;\n    hp_jw_null(w);\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");

    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    const char *want = k == HCG_LIST     ? "HP_JV_ARRAY"
                       : k == HCG_TUPLE  ? "HP_JV_ARRAY"
                       : k == HCG_MAP    ? "HP_JV_OBJECT"
                       : k == HCG_RESULT ? "HP_JV_OBJECT"
                       : k == HCG_UNIT   ? "HP_JV_NULL"
                                         : NULL;
    if (want) {
        const char *what = strcmp(want, "HP_JV_ARRAY") == 0    ? "an array"
                           : strcmp(want, "HP_JV_OBJECT") == 0 ? "an object"
                                                               : "null";
        hcg_buf_add(b, "    if (j->kind != %s) {\n", want);
        hcg_buf_add(
            b,
            "        *err = hp_arena_sprintf(a, \"expected %s, got %%s\", "
            "hp_jv_kind_name(j));\n        return -1;\n    }\n",
            what);
    }
    if (k == HCG_LIST) {
        hcg_buf_add(b, "    out->len = j->len;\n");
        hcg_buf_add(b,
                    "    out->ptr = hp_arena_alloc(a, (j->len ? j->len : 1) * "
                    "sizeof *out->ptr);\n");
        hcg_buf_add(b, "    if (out->ptr == NULL) {\n        *err = \"out of "
                       "memory\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
        hcg_dec(b, m, t->elem, "j->items[i]", "out->ptr[i]", "list item",
                "        ");
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_OPTION) {
        hcg_buf_add(
            b, "    if (j->kind == HP_JV_NULL) {\n        out->some = "
               "false;\n        return 0;\n    }\n    out->some = true;\n");
        hcg_dec(b, m, t->elem, "j", "out->value", "option value", "    ");
    } else if (k == HCG_RESULT) {
        hcg_buf_add(
            b, "    if (j->len != 1 || (strcmp(j->keys[0], \"Ok\") != 0 && "
               "strcmp(j->keys[0], \"Err\") != 0)) {\n");
        hcg_buf_add(b, "        *err = \"expected {\\\"Ok\\\": ...} or "
                       "{\\\"Err\\\": ...}\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    out->ok = strcmp(j->keys[0], \"Ok\") == 0;\n");
        hcg_buf_add(b, "    if (out->ok) {\n");
        hcg_dec(b, m, t->ok, "j->items[0]", "out->value", "Ok", "        ");
        hcg_buf_add(b, "    } else {\n");
        hcg_dec(b, m, t->err, "j->items[0]", "out->error", "Err", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_MAP) {
        hcg_buf_add(b, "    out->len = 0;\n");
        hcg_buf_add(b,
                    "    out->ptr = hp_arena_alloc(a, (j->len ? j->len : 1) * "
                    "sizeof *out->ptr);\n");
        hcg_buf_add(b, "    if (out->ptr == NULL) {\n        *err = \"out of "
                       "memory\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
        int kid = hcg_unalias(m, t->key);
        hcg_kind kk = hcg_type_kind(m, kid);
        if (kk == HCG_STRING) {
            hcg_buf_add(b, "        char *key = (char *)j->keys[i];\n");
        } else if (hcg_kind_signed(kk)) {
            int bits = hcg_kind_bits(kk);
            hcg_buf_add(b, "        int64_t key;\n");
            hcg_buf_add(b,
                        "        if (hp_jd_key_int(a, j->keys[i], INT%d_MIN, "
                        "INT%d_MAX, \"%s\", &key, err))\n            return "
                        "-1;\n",
                        bits, bits, hcg_kind_name(kk));
        } else {
            int bits = hcg_kind_bits(kk);
            hcg_buf_add(b, "        uint64_t key;\n");
            hcg_buf_add(b,
                        "        if (hp_jd_key_uint(a, j->keys[i], UINT%d_MAX, "
                        "\"%s\", &key, err))\n            return -1;\n",
                        bits, hcg_kind_name(kk));
        }
        hcg_buf_add(
            b, "        /* a repeated key: the last value wins, kept at the "
               "first key's place */\n");
        hcg_buf_add(b, "        size_t k = 0;\n");
        hcg_buf_add(b, "        out->ptr[out->len].key = (%s)key;\n",
                    hcg_wire_c(m, t->key));
        hcg_buf_add(b,
                    "        while (k < out->len && hpg_kcmp_%s(&out->ptr[k]."
                    "key, &out->ptr[out->len].key) != 0)\n            k++;\n",
                    f);
        hcg_buf_add(b, "        if (k == out->len)\n            out->len++;\n");
        hcg_dec(b, m, t->elem, "j->items[i]", "out->ptr[k].value", "map value",
                "        ");
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_TUPLE) {
        size_t n = t->nitems;
        hcg_buf_add(b, "    if (j->len != %zu) {\n", n);
        hcg_buf_add(
            b,
            "        *err = hp_arena_sprintf(a, \"expected a tuple of %zu, "
            "got %%zu items\", j->len);\n        return -1;\n    }\n",
            n);
        for (size_t i = 0; i < t->nitems; i++) {
            char jx[32], lv[32], ctx[32];
            snprintf(jx, sizeof jx, "j->items[%zu]", i);
            snprintf(lv, sizeof lv, "out->_%zu", i);
            snprintf(ctx, sizeof ctx, "tuple item %zu", i);
            hcg_dec(b, m, t->items[i], jx, lv, ctx, "    ");
        }
    } else {
        hcg_buf_add(b, "    (void)a;\n    (void)err;\n    (void)out;\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

/* ------------------------------------------------------------------ clones */

/* Statements deep-copying `src` (type id) into `dst` on the heap: the state
 * owns its memory, so what is decoded into the arena is copied into it. */
static void cln(hcg_buf *b, const hcg_model *m, int id, const char *dst,
                const char *src, const char *ind)
{
    hcg_kind k = hcg_type_kind(m, id);
    if (k == HCG_STRING) {
        hcg_buf_add(b,
                    "%sif ((%s) != NULL && ((%s) = strdup(%s)) == NULL)\n%s    "
                    "return -1;\n",
                    ind, src, dst, src, ind);
    } else if (k == HCG_BYTES) {
        hcg_buf_add(b, "%s(%s).len = (%s).len;\n", ind, dst, src);
        hcg_buf_add(b, "%s(%s).ptr = malloc((%s).len ? (%s).len : 1);\n", ind,
                    dst, src, src);
        hcg_buf_add(b, "%sif ((%s).ptr == NULL)\n%s    return -1;\n", ind, dst,
                    ind);
        hcg_buf_add(
            b, "%sif ((%s).len)\n%s    memcpy((%s).ptr, (%s).ptr, (%s).len);\n",
            ind, src, ind, dst, src, src);
    } else if (k == HCG_ADDRESS) {
        static const char *const parts[] = {"node", "process.process_name",
                                            "process.package_name",
                                            "process.publisher_node"};
        for (int i = 0; i < 4; i++)
            hcg_buf_add(
                b,
                "%sif (((%s).%s = strdup((%s).%s)) == NULL)\n%s    return "
                "-1;\n",
                ind, dst, parts[i], src, parts[i], ind);
    } else if (k == HCG_JSON) {
        hcg_buf_add(
            b,
            "%sif ((%s).text != NULL && ((%s).text = strdup((%s).text)) "
            "== NULL)\n%s    return -1;\n",
            ind, src, dst, src, ind);
    } else if (hcg_composite(m, id) && k != HCG_ENUM && k != HCG_UNIT) {
        char *f = hcg_fname(m, id);
        hcg_buf_add(
            b, "%sif (hpg_clone_%s(&(%s), &(%s)) != 0)\n%s    return -1;\n",
            ind, f, dst, src, ind);
        free(f);
    } else {
        hcg_buf_add(b, "%s%s = %s;\n", ind, dst, src);
    }
}

static void gen_clone(hcg_buf *b, const hcg_model *m, int id, const char *f,
                      const char *ct)
{
    const hcg_type *t = hcg_model_type(m, id);
    hcg_kind k = hcg_type_kind(m, id);
    hcg_buf_add(b, "static int hpg_clone_%s(%s *dst, const %s *src)\n{\n", f,
                ct, ct);
    hcg_buf_add(b, "    *dst = *src;\n");
    if (k == HCG_RECORD) {
        for (size_t i = 0; i < t->nfields; i++) {
            const hcg_field *fl = &t->fields[i];
            const char *fn = fl->name;
            if (fl->skip) {
                /* not part of the value: zero in the copy */
                hcg_buf_add(b, "    memset(&dst->%s, 0, sizeof dst->%s);\n", fn,
                            fn);
                continue;
            }
            char d[160], sr[160];
            snprintf(d, sizeof d, "dst->%s", fn);
            snprintf(sr, sizeof sr, "src->%s", fn);
            cln(b, m, fl->type, d, sr, "    ");
        }
    } else if (k == HCG_VARIANT) {
        for (size_t i = 0; i < t->ncases; i++) {
            const hcg_case *c = &t->cases[i];
            if (c->member == NULL)
                continue;
            char d[200], sr[200];
            snprintf(d, sizeof d, "dst->%s", c->member);
            snprintf(sr, sizeof sr, "src->%s", c->member);
            hcg_buf_add(b, "    if (src->%s == %s) {\n", t->tag_field, c->c);
            cln(b, m, c->type, d, sr, "        ");
            hcg_buf_add(b, "    }\n");
        }
    } else if (k == HCG_ALIAS) {
        cln(b, m, t->elem, "(*dst)", "(*src)", "    ");
    } else if (k == HCG_LIST || k == HCG_MAP) {
        hcg_buf_add(
            b, "    dst->ptr = malloc((src->len ? src->len : 1) * sizeof "
               "*dst->ptr);\n    if (dst->ptr == NULL)\n        return -1;\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < src->len; i++) {\n");
        if (k == HCG_MAP) {
            hcg_buf_add(b, "        dst->ptr[i] = src->ptr[i];\n");
            cln(b, m, t->key, "dst->ptr[i].key", "src->ptr[i].key", "        ");
            cln(b, m, t->elem, "dst->ptr[i].value", "src->ptr[i].value",
                "        ");
        } else {
            hcg_buf_add(b, "        dst->ptr[i] = src->ptr[i];\n");
            cln(b, m, t->elem, "dst->ptr[i]", "src->ptr[i]", "        ");
        }
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_OPTION) {
        hcg_buf_add(b, "    if (src->some) {\n");
        cln(b, m, t->elem, "dst->value", "src->value", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_RESULT) {
        hcg_buf_add(b, "    if (src->ok) {\n");
        cln(b, m, t->ok, "dst->value", "src->value", "        ");
        hcg_buf_add(b, "    } else {\n");
        cln(b, m, t->err, "dst->error", "src->error", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (k == HCG_TUPLE) {
        for (size_t i = 0; i < t->nitems; i++) {
            char d[32], sr[32];
            snprintf(d, sizeof d, "dst->_%zu", i);
            snprintf(sr, sizeof sr, "src->_%zu", i);
            cln(b, m, t->items[i], d, sr, "    ");
        }
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

/* The C type a value of wire type id is held in (union members, stubs). */
const char *hcg_wire_c(const hcg_model *m, int id)
{
    static const char *const held[] = {
        [HCG_BOOL] = "bool",      [HCG_S8] = "int8_t",
        [HCG_S16] = "int16_t",    [HCG_S32] = "int32_t",
        [HCG_S64] = "int64_t",    [HCG_U8] = "uint8_t",
        [HCG_U16] = "uint16_t",   [HCG_U32] = "uint32_t",
        [HCG_U64] = "uint64_t",   [HCG_F32] = "float",
        [HCG_F64] = "double",     [HCG_STRING] = "char *",
        [HCG_BYTES] = "hw_bytes", [HCG_ADDRESS] = "hw_address",
        [HCG_CHAR] = "hp_char",   [HCG_U128] = "hp_u128",
        [HCG_S128] = "hp_i128",   [HCG_JSON] = "hp_json",
    };
    hcg_kind k = hcg_type_kind(m, id);
    return k < HCG_UNIT ? held[k] : hcg_type_c(m, id);
}

/* "get_count" -> "GET_COUNT" (caller frees). */
char *hcg_upper(const char *s)
{
    char *u = strdup(s);
    if (u == NULL)
        abort();
    for (char *c = u; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return u;
}

/* The codecs of every composite type of the model: prototypes first, so
 * that types may refer to each other in any order, then encoder, decoder
 * and (but for enums and unit) deep copy of each. */
void hcg_emit_type_codecs(hcg_buf *b, const hcg_model *m)
{
    size_t n = m->ntypes;
    /* prototypes, so that types may refer to each other in any order */
    for (size_t i = 0; i < n; i++) {
        if (!hcg_composite(m, (int)i))
            continue;
        char *f = hcg_fname(m, (int)i);
        const char *ct = hcg_type_c(m, (int)i);
        hcg_buf_add(b,
                    "static int hpg_enc_%s(hp_jw *w, const %s *v) "
                    "__attribute__((unused));\n",
                    f, ct);
        hcg_buf_add(
            b,
            "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
            "const char **err) __attribute__((unused));\n",
            f, ct);
        if (hcg_clonable(m, (int)i))
            hcg_buf_add(b,
                        "static int hpg_clone_%s(%s *dst, const %s *src) "
                        "__attribute__((unused));\n",
                        f, ct, ct);
        free(f);
    }
    hcg_buf_add(b, "\n");
    for (size_t i = 0; i < n; i++) {
        if (!hcg_composite(m, (int)i))
            continue;
        char *f = hcg_fname(m, (int)i);
        const char *ct = hcg_type_c(m, (int)i);
        hcg_kind k = hcg_type_kind(m, (int)i);
        if (k == HCG_RECORD) {
            gen_record(b, m, (int)i, f, ct);
        } else if (k == HCG_ENUM) {
            gen_enum(b, m, (int)i, f, ct);
        } else if (k == HCG_VARIANT) {
            gen_variant(b, m, (int)i, f, ct);
        } else if (k == HCG_ALIAS) {
            gen_alias(b, m, (int)i, f, ct);
        } else {
            if (k == HCG_MAP)
                gen_map_helpers(b, m, (int)i, f);
            gen_generic(b, m, (int)i, f, ct);
        }
        if (hcg_clonable(m, (int)i))
            gen_clone(b, m, (int)i, f, ct);
        free(f);
    }
}
