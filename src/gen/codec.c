/* Generated JSON codecs: for each composite type of the model, an encoder
 * on hp_jw writing what serde_json writes and a decoder on hp_jv accepting
 * what serde_json accepts (docs/gen-design.md §2).  The generated file is
 * compiled in the same translation unit as the user's source, after it. */
#include "gen.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static json_t *node(json_t *types, int id)
{
    return json_array_get(types, (size_t)id);
}

static const char *kind(json_t *types, int id)
{
    return json_string_value(json_object_get(node(types, id), "kind"));
}

static const char *ctype(json_t *types, int id)
{
    return json_string_value(json_object_get(node(types, id), "c"));
}

static bool composite(json_t *types, int id)
{
    static const char *const k[] = {"record", "enum", "list",  "option",
                                    "result", "map",  "tuple", "unit"};
    const char *kd = kind(types, id);
    for (size_t i = 0; kd && i < sizeof k / sizeof k[0]; i++)
        if (strcmp(kd, k[i]) == 0)
            return true;
    return false;
}

/* Types with a generated deep copy (enums and unit copy by value). */
static bool clonable(json_t *types, int id)
{
    const char *k = kind(types, id);
    return composite(types, id) && strcmp(k, "enum") != 0 &&
           strcmp(k, "unit") != 0;
}

/* The C identifier part for type id: "struct point" -> "struct_point". */
static char *fname(json_t *types, int id)
{
    char *s = strdup(ctype(types, id));
    if (s == NULL)
        abort();
    for (char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c))
            *c = '_';
    return s;
}

static int ival(json_t *o, const char *k)
{
    return (int)json_integer_value(json_object_get(o, k));
}

/* What generated code returns when encoding or decoding fails: -1 in the
 * codec functions; the dispatcher sets its own. */
static const char *ret_fail = "-1";

/* Statements encoding the value `expr` of type id. */
static void enc(hcg_buf *b, json_t *types, int id, const char *expr,
                const char *ind)
{
    const char *k = kind(types, id);
    if (strcmp(k, "bool") == 0) {
        hcg_buf_add(b, "%shp_jw_bool(w, %s);\n", ind, expr);
    } else if (k[0] == 's' && isdigit((unsigned char)k[1])) {
        hcg_buf_add(b, "%shp_jw_i64(w, (int64_t)(%s));\n", ind, expr);
    } else if (k[0] == 'u' && isdigit((unsigned char)k[1])) {
        hcg_buf_add(b, "%shp_jw_u64(w, (uint64_t)(%s));\n", ind, expr);
    } else if (strcmp(k, "f32") == 0) {
        hcg_buf_add(b, "%shp_jw_f32(w, (float)(%s));\n", ind, expr);
    } else if (strcmp(k, "f64") == 0) {
        hcg_buf_add(b, "%shp_jw_f64(w, (double)(%s));\n", ind, expr);
    } else if (strcmp(k, "string") == 0) {
        /* NULL is the empty string: a zeroed struct is Rust's Default */
        hcg_buf_add(
            b,
            "%sif ((%s) == NULL)\n%s    hp_jw_raw(w, \"\\\"\\\"\", 2);\n"
            "%selse if (hp_jw_string(w, (%s), strlen(%s)) != 0)\n"
            "%s    return %s;\n",
            ind, expr, ind, ind, expr, expr, ind, ret_fail);
    } else if (strcmp(k, "bytes") == 0) {
        hcg_buf_add(b, "%shp_jw_bytes(w, &(%s));\n", ind, expr);
    } else if (strcmp(k, "address") == 0) {
        hcg_buf_add(b,
                    "%sif (hp_jw_address(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, expr, ind, ret_fail);
    } else {
        char *f = fname(types, id);
        hcg_buf_add(b, "%sif (hpg_enc_%s(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, f, expr, ind, ret_fail);
        free(f);
    }
}

/* Statements decoding JSON `j` into the lvalue `lv` of type id; a failure
 * returns -1 with *err prefixed by `ctx` (a C string literal's content). */
static void dec(hcg_buf *b, json_t *types, int id, const char *j,
                const char *lv, const char *ctx, const char *ind)
{
    const char *k = kind(types, id);
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
    if (strcmp(k, "bool") == 0) {
        hcg_buf_add(
            b, "%s{\n%s    bool t_;\n%s    if (hp_jd_bool(a, %s, &t_, err))%s",
            ind, ind, ind, j, fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (k[0] == 's' && isdigit((unsigned char)k[1])) {
        int bits = atoi(k + 1);
        hcg_buf_add(b, "%s{\n%s    int64_t t_;\n", ind, ind);
        hcg_buf_add(
            b,
            "%s    if (hp_jd_int(a, %s, INT%d_MIN, INT%d_MAX, \"%s\", &t_, "
            "err))%s",
            ind, j, bits, bits, k, fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (k[0] == 'u' && isdigit((unsigned char)k[1])) {
        int bits = atoi(k + 1);
        hcg_buf_add(b, "%s{\n%s    uint64_t t_;\n", ind, ind);
        hcg_buf_add(
            b, "%s    if (hp_jd_uint(a, %s, UINT%d_MAX, \"%s\", &t_, err))%s",
            ind, j, bits, k, fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (strcmp(k, "f32") == 0 || strcmp(k, "f64") == 0) {
        hcg_buf_add(b, "%s{\n%s    double t_;\n", ind, ind);
        hcg_buf_add(b, "%s    if (hp_jd_float(a, %s, %s, &t_, err))%s", ind, j,
                    k[1] == '3' ? "true" : "false", fail4);
        hcg_buf_add(b, "%s    %s = t_;\n%s}\n", ind, lv, ind);
    } else if (strcmp(k, "string") == 0) {
        hcg_buf_add(b, "%s{\n%s    const char *t_;\n", ind, ind);
        hcg_buf_add(b, "%s    if (hp_jd_string(a, %s, &t_, err))%s", ind, j,
                    fail4);
        hcg_buf_add(b, "%s    %s = (char *)t_;\n%s}\n", ind, lv, ind);
    } else if (strcmp(k, "bytes") == 0 || strcmp(k, "address") == 0) {
        hcg_buf_add(b, "%sif (hp_jd_%s(a, %s, &(%s), err))%s", ind, k, j, lv,
                    fail);
    } else {
        char *f = fname(types, id);
        hcg_buf_add(b, "%sif (hpg_dec_%s(a, %s, &(%s), err))%s", ind, f, j, lv,
                    fail);
        free(f);
    }
}

static void gen_record(hcg_buf *b, json_t *types, int id, const char *f,
                       const char *ct)
{
    json_t *t = node(types, id);
    json_t *fields = json_object_get(t, "fields");
    const char *name = json_string_value(json_object_get(t, "name"));
    size_t nf = json_array_size(fields), i;
    json_t *fl;
    /* encoder */
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    hcg_buf_add(b, "    (void)v;\n    hp_jw_raw(w, \"{\", 1);\n");
    json_array_foreach(fields, i, fl)
    {
        const char *fn = json_string_value(json_object_get(fl, "name"));
        char key[160], expr[160];
        snprintf(key, sizeof key, "%s\\\"%s\\\":", i ? "," : "", fn);
        hcg_buf_add(b, "    hp_jw_raw(w, \"%s\", %zu);\n", key,
                    strlen(fn) + 3 + (i ? 1 : 0));
        snprintf(expr, sizeof expr, "v->%s", fn);
        enc(b, types, ival(fl, "type"), expr, "    ");
    }
    hcg_buf_add(b, "    hp_jw_raw(w, \"}\", 1);\n    return 0;\n}\n\n");
    /* decoder: an object (unknown keys ignored, duplicates refused, a
     * missing field is an error unless it is an option), or an array of
     * every field in order */
    hcg_buf_add(b,
                "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
                "const char **err)\n{\n",
                f, ct);
    hcg_buf_add(b, "    if (j->kind == HP_JV_ARRAY) {\n");
    hcg_buf_add(b, "        if (j->len != %zu) {\n", nf);
    hcg_buf_add(
        b,
        "            *err = hp_arena_sprintf(a, \"expected %s as an object "
        "or an array of %zu fields, got an array of %%zu\", j->len);\n",
        name, nf);
    hcg_buf_add(b, "            return -1;\n        }\n");
    json_array_foreach(fields, i, fl)
    {
        const char *fn = json_string_value(json_object_get(fl, "name"));
        char jx[64], lv[160], ctx[160];
        snprintf(jx, sizeof jx, "j->items[%zu]", i);
        snprintf(lv, sizeof lv, "out->%s", fn);
        snprintf(ctx, sizeof ctx, "field '%s' of %s", fn, name);
        dec(b, types, ival(fl, "type"), jx, lv, ctx, "        ");
    }
    hcg_buf_add(b, "        return 0;\n    }\n");
    hcg_buf_add(b, "    if (j->kind != HP_JV_OBJECT) {\n");
    hcg_buf_add(
        b,
        "        *err = hp_arena_sprintf(a, \"expected %s (an object), got "
        "%%s\", hp_jv_kind_name(j));\n",
        name);
    hcg_buf_add(b, "        return -1;\n    }\n");
    json_array_foreach(fields, i, fl)
        hcg_buf_add(b, "    const hp_jv *f%zu_ = NULL;\n", i);
    hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
    hcg_buf_add(b, "        const hp_jv **slot = NULL;\n");
    json_array_foreach(fields, i, fl)
    {
        const char *fn = json_string_value(json_object_get(fl, "name"));
        hcg_buf_add(b, "        %sif (strcmp(j->keys[i], \"%s\") == 0)\n",
                    i ? "else " : "", fn);
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
    json_array_foreach(fields, i, fl)
    {
        const char *fn = json_string_value(json_object_get(fl, "name"));
        int ft = ival(fl, "type");
        bool opt = strcmp(kind(types, ft), "option") == 0;
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
        dec(b, types, ft, jx, lv, ctx, "        ");
        hcg_buf_add(b, "    }\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

static void gen_enum(hcg_buf *b, json_t *types, int id, const char *f,
                     const char *ct)
{
    json_t *t = node(types, id);
    json_t *vars = json_object_get(t, "variants");
    const char *name = json_string_value(json_object_get(t, "name"));
    size_t i;
    json_t *v;
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    hcg_buf_add(b, "    switch (*v) {\n");
    json_array_foreach(vars, i, v)
    {
        const char *wire = json_string_value(json_object_get(v, "wire"));
        hcg_buf_add(
            b, "    case %s:\n        hp_jw_raw(w, \"\\\"%s\\\"\", %zu);\n",
            json_string_value(json_object_get(v, "c")), wire, strlen(wire) + 2);
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
    json_array_foreach(vars, i, v)
    {
        hcg_buf_add(b, "    if (s && strcmp(s, \"%s\") == 0) {\n",
                    json_string_value(json_object_get(v, "wire")));
        hcg_buf_add(b, "        *out = %s;\n        return 0;\n    }\n",
                    json_string_value(json_object_get(v, "c")));
    }
    hcg_buf_add(
        b, "    *err = hp_arena_sprintf(a, \"expected a variant of %s (", name);
    json_array_foreach(vars, i, v)
        hcg_buf_add(b, "%s%s", i ? ", " : "",
                    json_string_value(json_object_get(v, "wire")));
    hcg_buf_add(
        b, "), got %%s%%s%%s\", s ? \"'\" : hp_jv_kind_name(j), s ? s : \"\", "
           "s ? \"'\" : \"\");\n");
    hcg_buf_add(b, "    return -1;\n}\n\n");
}

static void gen_generic(hcg_buf *b, json_t *types, int id, const char *f,
                        const char *ct)
{
    json_t *t = node(types, id);
    const char *k = kind(types, id);
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    if (strcmp(k, "list") == 0) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"[\", 1);\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < v->len; i++) {\n");
        hcg_buf_add(b, "        if (i)\n            hp_jw_raw(w, \",\", 1);\n");
        enc(b, types, ival(t, "elem"), "v->ptr[i]", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"]\", 1);\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(
            b, "    if (!v->some) {\n        hp_jw_null(w);\n        return "
               "0;\n    }\n");
        enc(b, types, ival(t, "elem"), "v->value", "    ");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(
            b,
            "    if (v->ok) {\n        hp_jw_raw(w, \"{\\\"Ok\\\":\", 6);\n");
        enc(b, types, ival(t, "ok"), "v->value", "        ");
        hcg_buf_add(
            b, "    } else {\n        hp_jw_raw(w, \"{\\\"Err\\\":\", 7);\n");
        enc(b, types, ival(t, "err"), "v->error", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"}\", 1);\n");
    } else if (strcmp(k, "map") == 0) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"{\", 1);\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < v->len; i++) {\n");
        hcg_buf_add(b, "        if (i)\n            hp_jw_raw(w, \",\", 1);\n");
        hcg_buf_add(b,
                    "        if (v->ptr[i].key == NULL || hp_jw_string(w, "
                    "v->ptr[i].key, strlen(v->ptr[i].key)) != 0)\n            "
                    "return -1;\n");
        hcg_buf_add(b, "        hp_jw_raw(w, \":\", 1);\n");
        enc(b, types, ival(t, "value"), "v->ptr[i].value", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"}\", 1);\n");
    } else if (strcmp(k, "tuple") == 0) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"[\", 1);\n");
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(t, "items"), i, it)
        {
            char expr[32];
            snprintf(expr, sizeof expr, "v->_%zu", i);
            if (i)
                hcg_buf_add(b, "    hp_jw_raw(w, \",\", 1);\n");
            enc(b, types, (int)json_integer_value(it), expr, "    ");
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
    const char *want = strcmp(k, "list") == 0     ? "HP_JV_ARRAY"
                       : strcmp(k, "tuple") == 0  ? "HP_JV_ARRAY"
                       : strcmp(k, "map") == 0    ? "HP_JV_OBJECT"
                       : strcmp(k, "result") == 0 ? "HP_JV_OBJECT"
                       : strcmp(k, "unit") == 0   ? "HP_JV_NULL"
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
    if (strcmp(k, "list") == 0) {
        hcg_buf_add(b, "    out->len = j->len;\n");
        hcg_buf_add(b,
                    "    out->ptr = hp_arena_alloc(a, (j->len ? j->len : 1) * "
                    "sizeof *out->ptr);\n");
        hcg_buf_add(b, "    if (out->ptr == NULL) {\n        *err = \"out of "
                       "memory\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
        dec(b, types, ival(t, "elem"), "j->items[i]", "out->ptr[i]",
            "list item", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(
            b, "    if (j->kind == HP_JV_NULL) {\n        out->some = "
               "false;\n        return 0;\n    }\n    out->some = true;\n");
        dec(b, types, ival(t, "elem"), "j", "out->value", "option value",
            "    ");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(
            b, "    if (j->len != 1 || (strcmp(j->keys[0], \"Ok\") != 0 && "
               "strcmp(j->keys[0], \"Err\") != 0)) {\n");
        hcg_buf_add(b, "        *err = \"expected {\\\"Ok\\\": ...} or "
                       "{\\\"Err\\\": ...}\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    out->ok = strcmp(j->keys[0], \"Ok\") == 0;\n");
        hcg_buf_add(b, "    if (out->ok) {\n");
        dec(b, types, ival(t, "ok"), "j->items[0]", "out->value", "Ok",
            "        ");
        hcg_buf_add(b, "    } else {\n");
        dec(b, types, ival(t, "err"), "j->items[0]", "out->error", "Err",
            "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "map") == 0) {
        hcg_buf_add(b, "    out->len = 0;\n");
        hcg_buf_add(b,
                    "    out->ptr = hp_arena_alloc(a, (j->len ? j->len : 1) * "
                    "sizeof *out->ptr);\n");
        hcg_buf_add(b, "    if (out->ptr == NULL) {\n        *err = \"out of "
                       "memory\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < j->len; i++) {\n");
        hcg_buf_add(
            b, "        /* a repeated key: the last value wins, kept at the "
               "first key's place */\n");
        hcg_buf_add(b, "        size_t k = 0;\n");
        hcg_buf_add(b, "        while (k < out->len && strcmp(out->ptr[k].key, "
                       "j->keys[i]) != 0)\n            k++;\n");
        hcg_buf_add(
            b, "        if (k == out->len) {\n            out->ptr[k].key = "
               "(char *)j->keys[i];\n            out->len++;\n        }\n");
        dec(b, types, ival(t, "value"), "j->items[i]", "out->ptr[k].value",
            "map value", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "tuple") == 0) {
        size_t n = json_array_size(json_object_get(t, "items"));
        hcg_buf_add(b, "    if (j->len != %zu) {\n", n);
        hcg_buf_add(
            b,
            "        *err = hp_arena_sprintf(a, \"expected a tuple of %zu, "
            "got %%zu items\", j->len);\n        return -1;\n    }\n",
            n);
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(t, "items"), i, it)
        {
            char jx[32], lv[32], ctx[32];
            snprintf(jx, sizeof jx, "j->items[%zu]", i);
            snprintf(lv, sizeof lv, "out->_%zu", i);
            snprintf(ctx, sizeof ctx, "tuple item %zu", i);
            dec(b, types, (int)json_integer_value(it), jx, lv, ctx, "    ");
        }
    } else {
        hcg_buf_add(b, "    (void)a;\n    (void)err;\n    (void)out;\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

/* ------------------------------------------------------------------ clones */

/* Statements deep-copying `src` (type id) into `dst` on the heap: the state
 * owns its memory, so what is decoded into the arena is copied into it. */
static void cln(hcg_buf *b, json_t *types, int id, const char *dst,
                const char *src, const char *ind)
{
    const char *k = kind(types, id);
    if (strcmp(k, "string") == 0) {
        hcg_buf_add(b,
                    "%sif ((%s) != NULL && ((%s) = strdup(%s)) == NULL)\n%s    "
                    "return -1;\n",
                    ind, src, dst, src, ind);
    } else if (strcmp(k, "bytes") == 0) {
        hcg_buf_add(b, "%s(%s).len = (%s).len;\n", ind, dst, src);
        hcg_buf_add(b, "%s(%s).ptr = malloc((%s).len ? (%s).len : 1);\n", ind,
                    dst, src, src);
        hcg_buf_add(b, "%sif ((%s).ptr == NULL)\n%s    return -1;\n", ind, dst,
                    ind);
        hcg_buf_add(
            b, "%sif ((%s).len)\n%s    memcpy((%s).ptr, (%s).ptr, (%s).len);\n",
            ind, src, ind, dst, src, src);
    } else if (strcmp(k, "address") == 0) {
        static const char *const parts[] = {"node", "process.process_name",
                                            "process.package_name",
                                            "process.publisher_node"};
        for (int i = 0; i < 4; i++)
            hcg_buf_add(
                b,
                "%sif (((%s).%s = strdup((%s).%s)) == NULL)\n%s    return "
                "-1;\n",
                ind, dst, parts[i], src, parts[i], ind);
    } else if (composite(types, id) && strcmp(k, "enum") != 0 &&
               strcmp(k, "unit") != 0) {
        char *f = fname(types, id);
        hcg_buf_add(
            b, "%sif (hpg_clone_%s(&(%s), &(%s)) != 0)\n%s    return -1;\n",
            ind, f, dst, src, ind);
        free(f);
    } else {
        hcg_buf_add(b, "%s%s = %s;\n", ind, dst, src);
    }
}

static void gen_clone(hcg_buf *b, json_t *types, int id, const char *f,
                      const char *ct)
{
    json_t *t = node(types, id);
    const char *k = kind(types, id);
    hcg_buf_add(b, "static int hpg_clone_%s(%s *dst, const %s *src)\n{\n", f,
                ct, ct);
    hcg_buf_add(b, "    *dst = *src;\n");
    if (strcmp(k, "record") == 0) {
        size_t i;
        json_t *fl;
        json_array_foreach(json_object_get(t, "fields"), i, fl)
        {
            const char *fn = json_string_value(json_object_get(fl, "name"));
            char d[160], sr[160];
            snprintf(d, sizeof d, "dst->%s", fn);
            snprintf(sr, sizeof sr, "src->%s", fn);
            cln(b, types, ival(fl, "type"), d, sr, "    ");
        }
    } else if (strcmp(k, "list") == 0 || strcmp(k, "map") == 0) {
        hcg_buf_add(
            b, "    dst->ptr = malloc((src->len ? src->len : 1) * sizeof "
               "*dst->ptr);\n    if (dst->ptr == NULL)\n        return -1;\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < src->len; i++) {\n");
        if (strcmp(k, "map") == 0) {
            hcg_buf_add(b, "        dst->ptr[i] = src->ptr[i];\n");
            hcg_buf_add(
                b, "        if ((dst->ptr[i].key = strdup(src->ptr[i].key)) "
                   "== NULL)\n            return -1;\n");
            cln(b, types, ival(t, "value"), "dst->ptr[i].value",
                "src->ptr[i].value", "        ");
        } else {
            hcg_buf_add(b, "        dst->ptr[i] = src->ptr[i];\n");
            cln(b, types, ival(t, "elem"), "dst->ptr[i]", "src->ptr[i]",
                "        ");
        }
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(b, "    if (src->some) {\n");
        cln(b, types, ival(t, "elem"), "dst->value", "src->value", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(b, "    if (src->ok) {\n");
        cln(b, types, ival(t, "ok"), "dst->value", "src->value", "        ");
        hcg_buf_add(b, "    } else {\n");
        cln(b, types, ival(t, "err"), "dst->error", "src->error", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "tuple") == 0) {
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(t, "items"), i, it)
        {
            char d[32], sr[32];
            snprintf(d, sizeof d, "dst->_%zu", i);
            snprintf(sr, sizeof sr, "src->_%zu", i);
            cln(b, types, (int)json_integer_value(it), d, sr, "    ");
        }
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

/* ------------------------------------------------- request/response unions */

static bool has_kind(json_t *h, const char *k)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(h, "kinds"), i, v)
    {
        if (strcmp(json_string_value(v), k) == 0)
            return true;
    }
    return false;
}

static bool is_request(json_t *h)
{
    return has_kind(h, "http") || has_kind(h, "local") || has_kind(h, "remote");
}

static const char *hstr(json_t *h, const char *k)
{
    return json_string_value(json_object_get(h, k));
}

/* The C type a value of wire type id is held in (union members, stubs). */
static const char *wire_c(json_t *types, int id)
{
    static const char *const map[][2] = {
        {"bool", "bool"},      {"s8", "int8_t"},          {"s16", "int16_t"},
        {"s32", "int32_t"},    {"s64", "int64_t"},        {"u8", "uint8_t"},
        {"u16", "uint16_t"},   {"u32", "uint32_t"},       {"u64", "uint64_t"},
        {"f32", "float"},      {"f64", "double"},         {"string", "char *"},
        {"bytes", "hw_bytes"}, {"address", "hw_address"},
    };
    const char *k = kind(types, id);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(k, map[i][0]) == 0)
            return map[i][1];
    return ctype(types, id);
}

/* "get_count" -> "GET_COUNT" (caller frees). */
static char *upper(const char *s)
{
    char *u = strdup(s);
    if (u == NULL)
        abort();
    for (char *c = u; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    return u;
}

static int wire_of(json_t *o, const char *k)
{
    return (int)json_integer_value(json_object_get(o, k));
}

/* A generated static function's prototype (marked unused, as not every
 * process calls every function) and the opening of its definition. */
static void open_fn(hcg_buf *b, const char *sig)
{
    hcg_buf_add(b, "%s __attribute__((unused));\n\n%s\n{\n", sig, sig);
}

/* "    case HPG_REQ_<NAME>:" for handler h. */
static void case_label(hcg_buf *b, json_t *h)
{
    char *u = upper(hstr(h, "name"));
    hcg_buf_add(b, "    case HPG_REQ_%s:\n", u);
    free(u);
}

/* The Request and Response tagged unions (framework.md §4: one variant per
 * request handler, named CamelCase from the function), with their codecs:
 *   hpg_request_decode   {"Variant": args} | "Variant"  -> hpg_request
 *   hpg_request_args_decode   args of a known variant   -> hpg_request
 *   hpg_request_encode   hpg_request -> what serde_json writes
 *   hpg_response_encode / hpg_response_decode   the raw return value */
static void gen_unions(hcg_buf *b, json_t *model)
{
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    size_t i;
    json_t *h;
    hcg_buf_add(b, "/* The requests this process answers: one variant per "
                   "request handler. */\n");
    hcg_buf_add(b, "typedef enum hpg_request_tag {\n    HPG_REQ_NONE_ = 0,\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        char *u = upper(hstr(h, "name"));
        hcg_buf_add(b, "    HPG_REQ_%s,\n", u);
        free(u);
    }
    hcg_buf_add(b, "} hpg_request_tag;\n\n");
    hcg_buf_add(b, "static const char *const hpg_request_names[] "
                   "__attribute__((unused)) = {\n    \"\",\n");
    json_array_foreach(handlers, i, h)
    {
        if (is_request(h))
            hcg_buf_add(b, "    \"%s\",\n", hstr(h, "variant"));
    }
    hcg_buf_add(b, "};\n\n");
    /* Request: the arguments of each variant */
    hcg_buf_add(b, "typedef struct hpg_request {\n    hpg_request_tag tag;\n"
                   "    union {\n        uint8_t none_;\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        json_t *params = json_object_get(h, "params");
        if (json_array_size(params) <= 1)
            continue;
        hcg_buf_add(b, "        struct {\n");
        for (size_t k = 1; k < json_array_size(params); k++) {
            json_t *p = json_array_get(params, k);
            const char *ct = wire_c(types, wire_of(p, "wire"));
            hcg_buf_add(b, "            %s%s%s;\n", ct,
                        ct[strlen(ct) - 1] == '*' ? "" : " ", hstr(p, "name"));
        }
        hcg_buf_add(b, "        } %s;\n", hstr(h, "name"));
    }
    hcg_buf_add(b, "    };\n} hpg_request;\n\n");
    /* Response: the return value of each variant */
    hcg_buf_add(b, "typedef struct hpg_response {\n    hpg_request_tag tag;\n"
                   "    union {\n        uint8_t none_;\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *ct = wire_c(types, wire_of(h, "returns_wire"));
        hcg_buf_add(b, "        %s%s%s;\n", ct,
                    ct[strlen(ct) - 1] == '*' ? "" : " ", hstr(h, "name"));
    }
    hcg_buf_add(b, "    };\n} hpg_response;\n\n");

    /* arguments of a known variant: none -> absent or null, one -> the
     * value, several -> an array of exactly that many */
    open_fn(b, "static int hpg_request_args_decode(hp_arena *a, "
               "hpg_request_tag tag, const hp_jv *args, hpg_request *out, "
               "const char **err)");
    hcg_buf_add(b, "    (void)a;\n    memset(out, 0, sizeof *out);\n"
                   "    out->tag = tag;\n    switch (tag) {\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *variant = hstr(h, "variant");
        const char *name = hstr(h, "name");
        case_label(b, h);
        json_t *params = json_object_get(h, "params");
        size_t np = json_array_size(params) - 1;
        if (np == 0) {
            hcg_buf_add(
                b,
                "        if (args != NULL && args->kind != HP_JV_NULL) {\n"
                "            *err = \"%s takes no arguments: send "
                "\\\"%s\\\" or {\\\"%s\\\": null}\";\n"
                "            return -1;\n        }\n        return 0;\n",
                variant, variant, variant);
            continue;
        }
        hcg_buf_add(b, "    {\n");
        hcg_buf expect = {0};
        for (size_t k = 0; k < np; k++) {
            json_t *p = json_array_get(params, k + 1);
            hcg_buf_add(&expect, "%s%s", k ? ", " : "", hstr(p, "name"));
        }
        if (np == 1) {
            hcg_buf_add(b,
                        "        if (args == NULL) {\n            *err = \"%s "
                        "takes an argument: {\\\"%s\\\": %s}\";\n"
                        "            return -1;\n        }\n",
                        variant, variant, expect.s);
            json_t *p = json_array_get(params, 1);
            char ctx[200], lv[200];
            snprintf(ctx, sizeof ctx, "argument '%s' of %s", hstr(p, "name"),
                     variant);
            snprintf(lv, sizeof lv, "out->%s.%s", name, hstr(p, "name"));
            dec(b, types, wire_of(p, "wire"), "args", lv, ctx, "        ");
        } else {
            hcg_buf_add(b,
                        "        if (args == NULL || args->kind != "
                        "HP_JV_ARRAY || args->len != %zu) {\n"
                        "            *err = hp_arena_sprintf(a, \"%s takes "
                        "%zu arguments as an array: {\\\"%s\\\": [%s]}, got "
                        "%%s\", args == NULL ? \"none\" : args->kind == "
                        "HP_JV_ARRAY ? hp_arena_sprintf(a, \"%%zu\", "
                        "args->len) : hp_jv_kind_name(args));\n"
                        "            return -1;\n        }\n",
                        np, variant, np, variant, expect.s);
            for (size_t k = 0; k < np; k++) {
                json_t *p = json_array_get(params, k + 1);
                char ctx[200], jx[48], lv[200];
                snprintf(ctx, sizeof ctx, "argument '%s' of %s",
                         hstr(p, "name"), variant);
                snprintf(jx, sizeof jx, "args->items[%zu]", k);
                snprintf(lv, sizeof lv, "out->%s.%s", name, hstr(p, "name"));
                dec(b, types, wire_of(p, "wire"), jx, lv, ctx, "        ");
            }
        }
        free(expect.s);
        hcg_buf_add(b, "        return 0;\n    }\n");
    }
    hcg_buf_add(b, "    default:\n        break;\n    }\n"
                   "    *err = \"unknown request variant\";\n"
                   "    return -1;\n}\n\n");

    /* the envelope */
    open_fn(b, "static int hpg_request_decode(hp_arena *a, const hp_jv *j, "
               "hpg_request *out, const char **err)");
    hcg_buf_add(b, "    const char *v;\n    const hp_jv *args = NULL;\n"
                   "    if (j->kind == HP_JV_STRING) {\n        v = j->str;\n"
                   "    } else if (j->kind == HP_JV_OBJECT && j->len == 1) {\n"
                   "        v = j->keys[0];\n        args = j->items[0];\n"
                   "    } else {\n        *err = \"expected {\\\"Variant\\\": "
                   "arguments} or \\\"Variant\\\"\";\n        return -1;\n"
                   "    }\n");
    hcg_buf_add(b, "    for (size_t i = 1; i < sizeof hpg_request_names / "
                   "sizeof hpg_request_names[0]; i++)\n"
                   "        if (strcmp(v, hpg_request_names[i]) == 0)\n"
                   "            return hpg_request_args_decode(a, "
                   "(hpg_request_tag)i, args, out, err);\n");
    hcg_buf_add(b, "    *err = hp_arena_sprintf(a, \"unknown request variant "
                   "'%%s'\", v);\n    return -1;\n}\n\n");

    /* encoders */
    open_fn(b, "static int hpg_request_encode(hp_jw *w, const hpg_request "
               "*r)");
    hcg_buf_add(b, "    switch (r->tag) {\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *variant = hstr(h, "variant");
        const char *name = hstr(h, "name");
        case_label(b, h);
        json_t *params = json_object_get(h, "params");
        size_t np = json_array_size(params) - 1;
        size_t vl = strlen(variant);
        if (np == 0) {
            hcg_buf_add(b, "        hp_jw_raw(w, \"\\\"%s\\\"\", %zu);\n",
                        variant, vl + 2);
        } else {
            hcg_buf_add(b, "        hp_jw_raw(w, \"{\\\"%s\\\":%s\", %zu);\n",
                        variant, np > 1 ? "[" : "", vl + 4 + (np > 1));
            for (size_t k = 0; k < np; k++) {
                json_t *p = json_array_get(params, k + 1);
                char expr[200];
                snprintf(expr, sizeof expr, "r->%s.%s", name, hstr(p, "name"));
                if (k)
                    hcg_buf_add(b, "        hp_jw_raw(w, \",\", 1);\n");
                enc(b, types, wire_of(p, "wire"), expr, "        ");
            }
            hcg_buf_add(b, "        hp_jw_raw(w, \"%s}\", %d);\n",
                        np > 1 ? "]" : "", np > 1 ? 2 : 1);
        }
        hcg_buf_add(b, "        return hp_jw_ok(w) ? 0 : -1;\n");
    }
    hcg_buf_add(b, "    default:\n        return -1;\n    }\n}\n\n");

    open_fn(b, "static int hpg_response_encode(hp_jw *w, const "
               "hpg_response *r)");
    hcg_buf_add(b, "    switch (r->tag) {\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        case_label(b, h);
        char expr[200];
        snprintf(expr, sizeof expr, "r->%s", hstr(h, "name"));
        enc(b, types, wire_of(h, "returns_wire"), expr, "        ");
        hcg_buf_add(b, "        return hp_jw_ok(w) ? 0 : -1;\n");
    }
    hcg_buf_add(b, "    default:\n        return -1;\n    }\n}\n\n");

    open_fn(b, "static int hpg_response_decode(hp_arena *a, const hp_jv "
               "*j, hpg_request_tag tag, hpg_response *out, const char "
               "**err)");
    hcg_buf_add(b, "    (void)a;\n    (void)j;\n"
                   "    memset(out, 0, sizeof *out);\n    out->tag = tag;\n"
                   "    switch (tag) {\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        case_label(b, h);
        char ctx[200], lv[200];
        snprintf(ctx, sizeof ctx, "the result of %s", hstr(h, "variant"));
        snprintf(lv, sizeof lv, "out->%s", hstr(h, "name"));
        dec(b, types, wire_of(h, "returns_wire"), "j", lv, ctx, "        ");
        hcg_buf_add(b, "        return 0;\n");
    }
    hcg_buf_add(b, "    default:\n        *err = \"unknown request "
                   "variant\";\n        return -1;\n    }\n}\n\n");
}

static int cmp_variant(const void *x, const void *y)
{
    json_t *const *a = x, *const *b = y;
    return strcmp(hstr(*a, "variant"), hstr(*b, "variant"));
}

/* One call function per request variant (decode the arguments, call the
 * handler, encode its result) and the table the runtime dispatches by,
 * sorted by variant name; then the state's functions and the process
 * descriptor hpg_impl (runtime.h). */
static void gen_impl(hcg_buf *b, json_t *model)
{
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    const char *state = json_string_value(json_object_get(model, "state"));
    size_t i;
    json_t *h;
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *name = hstr(h, "name");
        char *u = upper(name);
        hcg_buf_add(b,
                    "static hp_refusal hpg_call_%s(hp_arena *a, void *st, "
                    "const hp_jv *args, hp_jw *w, const char **err)\n{\n",
                    name);
        hcg_buf_add(b, "    hpg_request q;\n");
        hcg_buf_add(b,
                    "    if (hpg_request_args_decode(a, HPG_REQ_%s, args, &q, "
                    "err) != 0)\n        return HP_REFUSAL_BAD_ARGUMENTS;\n",
                    u);
        hcg_buf_add(b,
                    "    hpg_response p;\n    memset(&p, 0, sizeof p);\n"
                    "    p.tag = HPG_REQ_%s;\n",
                    u);
        free(u);
        const char *rc = wire_c(types, wire_of(h, "returns_wire"));
        hcg_buf_add(b, "    p.%s = (%s)%s((%s *)st", name, rc,
                    hstr(h, "c_name"), state);
        json_t *params = json_object_get(h, "params");
        for (size_t k = 1; k < json_array_size(params); k++) {
            json_t *p = json_array_get(params, k);
            const char *pt = hstr(p, "type");
            int wire = wire_of(p, "wire");
            bool ptr = composite(types, wire) && pt[strlen(pt) - 1] == '*';
            hcg_buf_add(b, ", %sq.%s.%s", ptr ? "&" : "", name,
                        hstr(p, "name"));
        }
        hcg_buf_add(b, ");\n");
        hcg_buf_add(b,
                    "    if (hpg_response_encode(w, &p) != 0) {\n        *err "
                    "= \"%s returned a value that cannot be written as JSON "
                    "(an invalid UTF-8 string, or an enum value without a "
                    "name)\";\n        return "
                    "HP_REFUSAL_HANDLER_FAILED;\n    }\n",
                    hstr(h, "variant"));
        hcg_buf_add(b, "    return HP_REFUSAL_OK;\n}\n\n");
    }
    /* the table, sorted by variant name */
    size_t n = 0;
    json_t **sorted = calloc(json_array_size(handlers) + 1, sizeof *sorted);
    if (sorted == NULL)
        abort();
    json_array_foreach(handlers, i, h)
    {
        if (is_request(h))
            sorted[n++] = h;
    }
    qsort(sorted, n, sizeof *sorted, cmp_variant);
    /* HTTP: parameter names and whether each takes query text as is */
    for (size_t k = 0; k < n; k++) {
        h = sorted[k];
        json_t *params = json_object_get(h, "params");
        size_t np = json_array_size(params) - 1;
        if (np == 0 || !has_kind(h, "http"))
            continue;
        hcg_buf_add(b, "static const char *const hpg_pn_%s[] = {",
                    hstr(h, "name"));
        for (size_t q = 0; q < np; q++)
            hcg_buf_add(b, "%s\"%s\"", q ? ", " : "",
                        hstr(json_array_get(params, q + 1), "name"));
        hcg_buf_add(b, "};\nstatic const bool hpg_ps_%s[] = {",
                    hstr(h, "name"));
        for (size_t q = 0; q < np; q++) {
            const char *kd =
                kind(types, wire_of(json_array_get(params, q + 1), "wire"));
            bool text = strcmp(kd, "string") == 0 ||
                        strcmp(kd, "address") == 0 || strcmp(kd, "enum") == 0;
            hcg_buf_add(b, "%s%s", q ? ", " : "", text ? "true" : "false");
        }
        hcg_buf_add(b, "};\n");
    }
    hcg_buf_add(b, "static const hp_variant hpg_variants[] = {\n");
    for (size_t k = 0; k < n; k++) {
        h = sorted[k];
        hcg_buf src = {0};
        if (has_kind(h, "local") || has_kind(h, "remote"))
            hcg_buf_add(&src, "HP_FROM_LOCAL");
        if (has_kind(h, "remote"))
            hcg_buf_add(&src, "%sHP_FROM_REMOTE", src.len ? " | " : "");
        if (has_kind(h, "http"))
            hcg_buf_add(&src, "%sHP_FROM_HTTP", src.len ? " | " : "");
        size_t order = 0;
        for (size_t q = 0; q < json_array_size(handlers); q++)
            if (json_array_get(handlers, q) == h)
                order = q;
        size_t np = json_array_size(json_object_get(h, "params")) - 1;
        bool http = has_kind(h, "http");
        const char *meth = hstr(h, "method"), *path = hstr(h, "path");
        hcg_buf_add(b, "    {\"%s\", %s, hpg_call_%s, ", hstr(h, "variant"),
                    src.s, hstr(h, "name"));
        if (http && meth)
            hcg_buf_add(b, "\"%s\", ", meth);
        else
            hcg_buf_add(b, "NULL, ");
        if (http && path)
            hcg_buf_add(b, "\"%s\", ", path);
        else
            hcg_buf_add(b, "NULL, ");
        if (http && np)
            hcg_buf_add(b, "hpg_pn_%s, hpg_ps_%s, %zu, %zu},\n",
                        hstr(h, "name"), hstr(h, "name"), np, order);
        else
            hcg_buf_add(b, "NULL, NULL, %zu, %zu},\n", np, order);
        free(src.s);
    }
    if (n == 0)
        hcg_buf_add(b, "    {\"\", 0, NULL, NULL, NULL, NULL, NULL, 0, 0},\n");
    hcg_buf_add(b, "};\n\n");
    free(sorted);

    /* the state */
    int sid = wire_of(model, "state_wire");
    char *sf = fname(types, sid);
    hcg_buf_add(b, "static %s hpg_state;\n\n", state);
    hcg_buf_add(b,
                "static int hpg_state_encode(hp_jw *w, const void *s)\n{\n"
                "    return hpg_enc_%s(w, (const %s *)s);\n}\n\n",
                sf, state);
    hcg_buf_add(b,
                "static int hpg_state_decode(hp_arena *a, const hp_jv *j, "
                "void *out, const char **err)\n{\n"
                "    return hpg_dec_%s(a, j, (%s *)out, err);\n}\n\n",
                sf, state);
    hcg_buf_add(b,
                "static int hpg_state_clone(void *dst, const void *src)\n{\n"
                "    return hpg_clone_%s((%s *)dst, (const %s *)src);\n}\n\n",
                sf, state, state);
    free(sf);
    const char *migrate = json_string_value(
        json_object_get(json_object_get(model, "process"), "migrate"));
    if (migrate)
        hcg_buf_add(b,
                    "static bool hpg_migrate(hp_arena *a, uint32_t from, "
                    "const hp_jv *stored, void *out, const char **why)\n{\n"
                    "    return %s(a, from, stored, (%s *)out, why);\n}\n\n",
                    migrate, state);
    const char *init = NULL, *ws = NULL, *wsc = NULL;
    json_array_foreach(handlers, i, h)
    {
        if (has_kind(h, "init"))
            init = hstr(h, "c_name");
        if (has_kind(h, "ws"))
            ws = hstr(h, "c_name");
        if (has_kind(h, "ws_client"))
            wsc = hstr(h, "c_name");
    }
    if (init)
        hcg_buf_add(b,
                    "static void hpg_init(void *s)\n{\n    %s((%s *)s);\n}\n\n",
                    init, state);
    const char *wsn[2] = {ws, wsc}, *wsf[2] = {"hpg_ws", "hpg_ws_client"};
    for (int k = 0; k < 2; k++)
        if (wsn[k])
            hcg_buf_add(b,
                        "static void %s(void *s, uint32_t channel_id, "
                        "hp_ws_message_type type, const hw_blob *blob)\n{\n"
                        "    %s((%s *)s, channel_id, type, blob);\n}\n\n",
                        wsf[k], wsn[k], state);
    hcg_buf_add(b, "static const hp_process_impl hpg_impl "
                   "__attribute__((unused)) = {\n");
    hcg_buf_add(b, "    .decl = &hp__process,\n    .state_type = \"%s\",\n",
                state);
    hcg_buf_add(b, "    .state_size = sizeof(%s),\n    .state = &hpg_state,\n",
                state);
    hcg_buf_add(b, "    .state_encode = hpg_state_encode,\n"
                   "    .state_decode = hpg_state_decode,\n"
                   "    .state_clone = hpg_state_clone,\n");
    hcg_buf_add(b, "    .migrate = %s,\n", migrate ? "hpg_migrate" : "NULL");
    hcg_buf_add(b, "    .init = %s,\n", init ? "hpg_init" : "NULL");
    hcg_buf_add(b, "    .variants = hpg_variants,\n    .variants_len = %zu,\n",
                n);
    hcg_buf_add(b, "    .ws = %s,\n    .ws_client = %s,\n};\n",
                ws ? "hpg_ws" : "NULL", wsc ? "hpg_ws_client" : "NULL");
}

char *hcg_codecs(json_t *model)
{
    json_t *types = json_object_get(model, "types");
    hcg_buf b = {0};
    const char *file = json_string_value(json_object_get(model, "file"));
    const char *base = strrchr(file, '/');
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b, "#include <hyperc/runtime.h>\n\n#include <stdint.h>\n"
                    "#include <stdio.h>\n#include <stdlib.h>\n"
                    "#include <string.h>\n\n");
    size_t n = json_array_size(types);
    /* prototypes, so that types may refer to each other in any order */
    for (size_t i = 0; i < n; i++) {
        if (!composite(types, (int)i))
            continue;
        char *f = fname(types, (int)i);
        const char *ct = ctype(types, (int)i);
        hcg_buf_add(&b,
                    "static int hpg_enc_%s(hp_jw *w, const %s *v) "
                    "__attribute__((unused));\n",
                    f, ct);
        hcg_buf_add(
            &b,
            "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
            "const char **err) __attribute__((unused));\n",
            f, ct);
        if (clonable(types, (int)i))
            hcg_buf_add(&b,
                        "static int hpg_clone_%s(%s *dst, const %s *src) "
                        "__attribute__((unused));\n",
                        f, ct, ct);
        free(f);
    }
    hcg_buf_add(&b, "\n");
    for (size_t i = 0; i < n; i++) {
        if (!composite(types, (int)i))
            continue;
        char *f = fname(types, (int)i);
        const char *ct = ctype(types, (int)i);
        const char *k = kind(types, (int)i);
        if (strcmp(k, "record") == 0)
            gen_record(&b, types, (int)i, f, ct);
        else if (strcmp(k, "enum") == 0)
            gen_enum(&b, types, (int)i, f, ct);
        else
            gen_generic(&b, types, (int)i, f, ct);
        if (clonable(types, (int)i))
            gen_clone(&b, types, (int)i, f, ct);
        free(f);
    }
    gen_unions(&b, model);
    if (json_string_value(json_object_get(model, "state")))
        gen_impl(&b, model);
    return b.s;
}

/* ------------------------------------------------------------ the process */

/* A whole process: the user's source, then the codecs, the unions, the
 * variant table and the descriptor, and hw_init handing it to libhyperc's
 * runtime (hp_process_main), which loads the state, sets up logging, runs
 * init and answers requests, refused ones with an error reply. */
char *hcg_process(json_t *model, const char *source_path)
{
    hcg_buf b = {0};
    const char *file = json_string_value(json_object_get(model, "file"));
    const char *base = strrchr(file, '/');
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b, "#include \"%s\"\n\n", source_path);
    char *codecs = hcg_codecs(model);
    /* drop the codecs' own first line (the same notice) */
    const char *rest = strchr(codecs, '\n');
    hcg_buf_add(&b, "%s\n", rest ? rest + 1 : codecs);
    free(codecs);
    hcg_buf_add(&b, "void hw_init(const char *our)\n{\n    (void)our;\n"
                    "    hp_process_main(&hpg_impl);\n}\n");
    return b.s;
}

/* ----------------------------------------------------------- caller utils */

/* The interface's C prefix: the WIT interface name with '-' as '_'
 * ("my-process" -> "my_process"); the caller frees it. */
static char *callers_prefix(json_t *model)
{
    char *p = hcg_wit_interface_name(model);
    for (char *c = p; *c; c++)
        if (*c == '-')
            *c = '_';
    return p;
}

/* A copy of the model whose records, enums, enumerators and generic types
 * carry the interface's prefix, so that a caller's own names never clash
 * with the callee's. */
static json_t *renamed_model(json_t *model, const char *prefix)
{
    json_t *m = json_deep_copy(model);
    json_t *types = json_object_get(m, "types");
    char *up = upper(prefix);
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *k = kind(types, (int)i);
        if (!composite(types, (int)i) || strcmp(k, "unit") == 0)
            continue;
        const char *c = json_string_value(json_object_get(t, "c"));
        const char *name = json_string_value(json_object_get(t, "name"));
        char buf[512];
        snprintf(buf, sizeof buf, "%s_%s", prefix, name ? name : c);
        json_object_set_new(t, "c", json_string(buf));
        if (strcmp(k, "enum") == 0) {
            size_t j;
            json_t *v;
            json_array_foreach(json_object_get(t, "variants"), j, v)
            {
                snprintf(buf, sizeof buf, "%s_%s", up,
                         json_string_value(json_object_get(v, "c")));
                json_object_set_new(v, "c", json_string(buf));
            }
        }
    }
    free(up);
    return m;
}

static void field_line(hcg_buf *b, const char *ct, const char *name,
                       const char *ind)
{
    hcg_buf_add(b, "%s%s%s%s;\n", ind, ct, ct[strlen(ct) - 1] == '*' ? "" : " ",
                name);
}

/* C definitions of the (renamed) types, each after what it holds by value. */
static void emit_type(hcg_buf *b, json_t *types, int id, char *done)
{
    if (id < 0 || !composite(types, id) || done[id])
        return;
    done[id] = 1;
    json_t *t = node(types, id);
    const char *k = kind(types, id);
    const char *c = ctype(types, id);
    if (strcmp(k, "unit") == 0)
        return;
    if (strcmp(k, "enum") == 0) {
        hcg_buf_add(b, "typedef enum %s {\n", c);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(t, "variants"), i, v) hcg_buf_add(
            b, "    %s = %lld,\n", json_string_value(json_object_get(v, "c")),
            (long long)json_integer_value(json_object_get(v, "value")));
        hcg_buf_add(b, "} %s;\n\n", c);
        return;
    }
    if (strcmp(k, "record") == 0) {
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(t, "fields"), i, f)
            emit_type(b, types, ival(f, "type"), done);
        hcg_buf_add(b, "struct %s {\n", c);
        json_array_foreach(json_object_get(t, "fields"), i, f)
            field_line(b, wire_c(types, ival(f, "type")),
                       json_string_value(json_object_get(f, "name")), "    ");
        if (json_array_size(json_object_get(t, "fields")) == 0)
            hcg_buf_add(b, "    uint8_t unused_;\n");
        hcg_buf_add(b, "};\n\n");
        return;
    }
    if (strcmp(k, "list") == 0) {
        int e = ival(t, "elem");
        if (strcmp(kind(types, e), "record") != 0)
            emit_type(b, types, e, done); /* records are declared ahead */
        hcg_buf_add(b, "typedef struct {\n");
        char ptr[300];
        const char *ec = wire_c(types, e);
        snprintf(ptr, sizeof ptr, "%s%s*", ec,
                 ec[strlen(ec) - 1] == '*' ? "" : " ");
        field_line(b, ptr, "ptr", "    ");
        hcg_buf_add(b, "    size_t len;\n} %s;\n\n", c);
    } else if (strcmp(k, "option") == 0) {
        emit_type(b, types, ival(t, "elem"), done);
        hcg_buf_add(b, "typedef struct {\n    bool some;\n");
        field_line(b, wire_c(types, ival(t, "elem")), "value", "    ");
        hcg_buf_add(b, "} %s;\n\n", c);
    } else if (strcmp(k, "result") == 0) {
        emit_type(b, types, ival(t, "ok"), done);
        emit_type(b, types, ival(t, "err"), done);
        hcg_buf_add(b, "typedef struct {\n    bool ok;\n    union {\n");
        field_line(b, wire_c(types, ival(t, "ok")), "value", "        ");
        field_line(b, wire_c(types, ival(t, "err")), "error", "        ");
        hcg_buf_add(b, "    };\n} %s;\n\n", c);
    } else if (strcmp(k, "map") == 0) {
        emit_type(b, types, ival(t, "value"), done);
        hcg_buf_add(b, "typedef struct {\n    struct {\n        char *key;\n");
        field_line(b, wire_c(types, ival(t, "value")), "value", "        ");
        hcg_buf_add(b, "    } *ptr;\n    size_t len;\n} %s;\n\n", c);
    } else if (strcmp(k, "tuple") == 0) {
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(t, "items"), i, it)
            emit_type(b, types, (int)json_integer_value(it), done);
        hcg_buf_add(b, "typedef struct {\n");
        json_array_foreach(json_object_get(t, "items"), i, it)
        {
            char f[32];
            snprintf(f, sizeof f, "_%zu", i);
            field_line(b, wire_c(types, (int)json_integer_value(it)), f,
                       "    ");
        }
        hcg_buf_add(b, "} %s;\n\n", c);
    }
}

/* A stub's parameter list after the target: scalars and strings by value,
 * composites as const pointers. */
static void stub_params(hcg_buf *b, json_t *types, json_t *h)
{
    json_t *params = json_object_get(h, "params");
    for (size_t k = 1; k < json_array_size(params); k++) {
        json_t *p = json_array_get(params, k);
        int w = wire_of(p, "wire");
        const char *ct = wire_c(types, w);
        const char *n = hstr(p, "name");
        if (composite(types, w))
            hcg_buf_add(b, ", const %s *%s", ct, n);
        else if (strcmp(kind(types, w), "string") == 0)
            hcg_buf_add(b, ", const char *%s", n);
        else if (strcmp(kind(types, w), "bytes") == 0 ||
                 strcmp(kind(types, w), "address") == 0)
            hcg_buf_add(b, ", const %s *%s", ct, n);
        else
            hcg_buf_add(b, ", %s %s", ct, n);
    }
}

static const char *const stub_kinds[] = {"local", "remote"};

/* The header of the caller stubs: the callee's types under its prefix, a
 * result type per request handler, and <prefix>_<fn>_<local|remote>_rpc
 * (with short aliases <fn>_<kind>_rpc). */
char *hcg_callers_h(json_t *model0)
{
    char *prefix = callers_prefix(model0);
    json_t *model = renamed_model(model0, prefix);
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    const char *file = json_string_value(json_object_get(model, "file"));
    const char *base = strrchr(file, '/');
    char *up = upper(prefix);
    hcg_buf b = {0};
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b,
                "/* Typed calls to the %s process: each returns the "
                "handler's result, or an\n * error kind (timeout, offline, "
                "decode, build, rejected) with a message.\n * Results live "
                "in the calling handler's message arena. */\n",
                prefix);
    hcg_buf_add(&b, "#ifndef %s_CALLER_UTILS_H\n#define %s_CALLER_UTILS_H\n\n",
                up, up);
    hcg_buf_add(&b, "#include <hyperc/runtime.h>\n\n#include <stdbool.h>\n"
                    "#include <stddef.h>\n#include <stdint.h>\n\n");
    size_t n = json_array_size(types);
    /* records first declared, so lists may point at them */
    for (size_t i = 0; i < n; i++)
        if (strcmp(kind(types, (int)i), "record") == 0)
            hcg_buf_add(&b, "typedef struct %s %s;\n", ctype(types, (int)i),
                        ctype(types, (int)i));
    hcg_buf_add(&b, "\n");
    char *done = calloc(n + 1, 1);
    if (done == NULL)
        abort();
    size_t i;
    json_t *h;
    /* the types the request handlers reach, in order of first use */
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        json_t *params = json_object_get(h, "params");
        for (size_t k = 1; k < json_array_size(params); k++)
            emit_type(&b, types, wire_of(json_array_get(params, k), "wire"),
                      done);
        emit_type(&b, types, wire_of(h, "returns_wire"), done);
    }
    /* then the rest (the stubs' source has codecs for every type) */
    for (size_t k = 0; k < n; k++)
        emit_type(&b, types, (int)k, done);
    free(done);
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *name = hstr(h, "name");
        hcg_buf_add(&b, "/* %s: the result of %s, or why there is none. */\n",
                    hstr(h, "variant"), name);
        hcg_buf_add(&b,
                    "typedef struct %s_%s_result {\n    hp_rpc_error err;\n",
                    prefix, name);
        field_line(&b, wire_c(types, wire_of(h, "returns_wire")), "value",
                   "    ");
        hcg_buf_add(&b, "} %s_%s_result;\n\n", prefix, name);
        for (int s = 0; s < 2; s++) {
            if (!has_kind(h, stub_kinds[s]))
                continue;
            hcg_buf_add(&b,
                        "/* %s on `hpg_target` (a %s process) with the "
                        "default timeout (30 s);\n * _opt takes options.  "
                        "The calling task waits; the process serves other\n"
                        " * messages meanwhile.  From a task only. */\n",
                        hstr(h, "variant"), prefix);
            hcg_buf_add(
                &b, "%s_%s_result %s_%s_%s_rpc(const hw_address *hpg_target",
                prefix, name, prefix, name, stub_kinds[s]);
            stub_params(&b, types, h);
            hcg_buf_add(&b, ");\n");
            hcg_buf_add(&b,
                        "%s_%s_result %s_%s_%s_rpc_opt(const hw_address "
                        "*hpg_target",
                        prefix, name, prefix, name, stub_kinds[s]);
            stub_params(&b, types, h);
            hcg_buf_add(&b, ", const hp_rpc_opts *hpg_opts);\n\n");
        }
    }
    hcg_buf_add(&b, "#ifndef HYPERC_NO_SHORT_RPC_NAMES\n");
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        for (int s = 0; s < 2; s++)
            if (has_kind(h, stub_kinds[s]))
                hcg_buf_add(&b,
                            "#define %s_%s_rpc %s_%s_%s_rpc\n"
                            "#define %s_%s_rpc_opt %s_%s_%s_rpc_opt\n",
                            hstr(h, "name"), stub_kinds[s], prefix,
                            hstr(h, "name"), stub_kinds[s], hstr(h, "name"),
                            stub_kinds[s], prefix, hstr(h, "name"),
                            stub_kinds[s]);
    }
    hcg_buf_add(&b, "#endif\n\n#endif\n");
    free(up);
    free(prefix);
    json_decref(model);
    return b.s;
}

/* The stubs' source: the codecs of the renamed types, the Request and
 * Response unions, and one function per (handler, kind). */
char *hcg_callers_c(json_t *model0, const char *header)
{
    char *prefix = callers_prefix(model0);
    json_t *model = renamed_model(model0, prefix);
    json_object_del(model, "state"); /* no process descriptor here */
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    hcg_buf b = {0};
    char *codecs = hcg_codecs(model);
    /* the notice line, then the header, then the codecs */
    const char *rest = strchr(codecs, '\n');
    hcg_buf_add(&b, "%.*s\n#include \"%s\"\n\n", (int)(rest - codecs), codecs,
                header);
    hcg_buf_add(&b, "%s\n", rest + 1);
    free(codecs);
    size_t i;
    json_t *h;
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *name = hstr(h, "name");
        char *u = upper(name);
        json_t *params = json_object_get(h, "params");
        for (int s = 0; s < 2; s++) {
            if (!has_kind(h, stub_kinds[s]))
                continue;
            hcg_buf_add(&b,
                        "%s_%s_result %s_%s_%s_rpc_opt(const hw_address "
                        "*hpg_target",
                        prefix, name, prefix, name, stub_kinds[s]);
            stub_params(&b, types, h);
            hcg_buf_add(&b, ", const hp_rpc_opts *hpg_opts)\n{\n");
            hcg_buf_add(&b,
                        "    %s_%s_result hpg_r;\n    memset(&hpg_r, 0, sizeof "
                        "hpg_r);\n",
                        prefix, name);
            hcg_buf_add(&b,
                        "    hpg_request hpg_q;\n"
                        "    memset(&hpg_q, 0, sizeof hpg_q);\n"
                        "    hpg_q.tag = HPG_REQ_%s;\n",
                        u);
            for (size_t k = 1; k < json_array_size(params); k++) {
                json_t *p = json_array_get(params, k);
                int w = wire_of(p, "wire");
                const char *pn = hstr(p, "name");
                const char *kd = kind(types, w);
                if (composite(types, w) || strcmp(kd, "bytes") == 0 ||
                    strcmp(kd, "address") == 0)
                    hcg_buf_add(&b, "    hpg_q.%s.%s = *%s;\n", name, pn, pn);
                else if (strcmp(kd, "string") == 0)
                    hcg_buf_add(&b, "    hpg_q.%s.%s = (char *)%s;\n", name, pn,
                                pn);
                else
                    hcg_buf_add(&b, "    hpg_q.%s.%s = %s;\n", name, pn, pn);
            }
            hcg_buf_add(&b, "    hp_jw hpg_w;\n    hp_jw_init(&hpg_w);\n");
            hcg_buf_add(
                &b,
                "    if (hpg_request_encode(&hpg_w, &hpg_q) != 0) {\n"
                "        hp_jw_fini(&hpg_w);\n"
                "        hpg_r.err.kind = HP_RPC_BUILD;\n"
                "        hpg_r.err.message = \"the arguments of %s cannot "
                "be written as JSON (an invalid UTF-8 "
                "string?)\";\n        return hpg_r;\n    }\n",
                hstr(h, "variant"));
            hcg_buf_add(&b, "    hp_arena *hpg_a;\n    const hp_jv *hpg_j;\n");
            hcg_buf_add(&b,
                        "    hpg_r.err = hp_rpc_call(hpg_target, hpg_w.buf, "
                        "hpg_w.len, hpg_opts, &hpg_a, &hpg_j);\n"
                        "    hp_jw_fini(&hpg_w);\n");
            hcg_buf_add(&b,
                        "    if (hpg_r.err.kind != HP_RPC_OK)\n        return "
                        "hpg_r;\n");
            hcg_buf_add(&b,
                        "    hpg_response hpg_p;\n    const char *hpg_err = "
                        "\"\";\n    if (hpg_response_decode(hpg_a, hpg_j, "
                        "HPG_REQ_%s, &hpg_p, &hpg_err) != 0) {\n"
                        "        hpg_r.err.kind = HP_RPC_DECODE;\n"
                        "        hpg_r.err.message = hpg_err;\n"
                        "        return hpg_r;\n    }\n",
                        u);
            hcg_buf_add(&b,
                        "    hpg_r.value = hpg_p.%s;\n    return hpg_r;\n}\n\n",
                        name);
            hcg_buf_add(
                &b, "%s_%s_result %s_%s_%s_rpc(const hw_address *hpg_target",
                prefix, name, prefix, name, stub_kinds[s]);
            stub_params(&b, types, h);
            hcg_buf_add(&b, ")\n{\n    return %s_%s_%s_rpc_opt(hpg_target",
                        prefix, name, stub_kinds[s]);
            for (size_t k = 1; k < json_array_size(params); k++)
                hcg_buf_add(&b, ", %s",
                            hstr(json_array_get(params, k), "name"));
            hcg_buf_add(&b, ", NULL);\n}\n\n");
        }
        free(u);
    }
    free(prefix);
    json_decref(model);
    return b.s;
}

/* The stubs' file names: <prefix>_caller_utils.{h,c} (caller frees). */
char *hcg_callers_basename(json_t *model)
{
    char *p = callers_prefix(model);
    hcg_buf b = {0};
    hcg_buf_add(&b, "%s_caller_utils", p);
    free(p);
    return b.s;
}

/* ------------------------------------------------------------- fuzzing */

/* One checker, hpg_fz_<tag>, of a decoder and its encoder.  `dec` and `enc`
 * are C calls with two %s: the JSON and the value for dec, the writer and
 * the value for enc. */
static void gen_fixpoint(hcg_buf *b, const char *tag, const char *vtype,
                         const char *dec, const char *enc)
{
    char d1[400], d2[400], e1[400], e2[400];
    snprintf(d1, sizeof d1, dec, "j", "v");
    snprintf(d2, sizeof d2, dec, "j2", "v2");
    snprintf(e1, sizeof e1, enc, "&w1", "v");
    snprintf(e2, sizeof e2, enc, "&w2", "v2");
    hcg_buf_add(
        b,
        "static void hpg_fz_%s(hp_arena *a, const hp_jv *j)\n{\n"
        "    %s v, v2;\n    const char *err = NULL;\n"
        "    memset(&v, 0, sizeof v);\n    memset(&v2, 0, sizeof v2);\n"
        "    if (%s != 0)\n        return;\n"
        "    hp_jw w1, w2;\n    hp_jw_init(&w1);\n    hp_jw_init(&w2);\n"
        "    if (%s != 0 || !hp_jw_ok(&w1))\n"
        "        abort(); /* decoded but cannot be written */\n"
        "    const hp_jv *j2 = hp_json_parse(a, w1.buf, w1.len, "
        "&err);\n"
        "    if (j2 == NULL || %s != 0) {\n"
        "        /* only a float too large for its type may not read "
        "back: it was\n         * written as null, as serde_json "
        "writes non-finite floats */\n"
        "        if (strstr(w1.buf, \"null\") == NULL)\n"
        "            abort();\n"
        "    } else if (%s != 0 || w1.len != w2.len || "
        "memcmp(w1.buf, w2.buf, w1.len) != 0) {\n"
        "        abort(); /* not a fixed point */\n    }\n"
        "    hp_jw_fini(&w1);\n    hp_jw_fini(&w2);\n}\n\n",
        tag, vtype, d1, e1, d2, e2);
}

/* A libFuzzer harness over every generated decoder: the first input byte
 * picks the decoder (the request envelope, each type, each response), the
 * rest is the JSON.  Whatever decodes must encode, and encoding is a fixed
 * point: encode(decode(encode(v))) == encode(v). */
char *hcg_fuzz(json_t *model, const char *source_path)
{
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    hcg_buf b = {0};
    char *proc = hcg_process(model, source_path);
    /* the process without its hw_init */
    char *hw = strstr(proc, "void hw_init(const char *our)");
    if (hw)
        *hw = '\0';
    hcg_buf_add(&b, "%s", proc);
    free(proc);
    hcg_buf_add(&b, "/* The runtime links the ABI binding, whose entry calls "
                    "hw_init; never entered here. */\n"
                    "void hw_init(const char *our);\nvoid hw_init(const char "
                    "*our)\n{\n    (void)our;\n}\n\n");
    hcg_buf_add(&b, "int LLVMFuzzerTestOneInput(const uint8_t *data, size_t "
                    "size);\n\n");
    size_t n = json_array_size(types), ncase = 0;
    hcg_buf cases = {0};
    char dec[300], enc[300], tag[200];
    for (size_t i = 0; i < n; i++) {
        if (!composite(types, (int)i))
            continue;
        char *f = fname(types, (int)i);
        snprintf(dec, sizeof dec, "hpg_dec_%s(a, %%s, &%%s, &err)", f);
        snprintf(enc, sizeof enc, "hpg_enc_%s(%%s, &%%s)", f);
        gen_fixpoint(&b, f, ctype(types, (int)i), dec, enc);
        hcg_buf_add(&cases,
                    "    case %zu:\n        hpg_fz_%s(&a, j);\n"
                    "        break;\n",
                    ncase++, f);
        free(f);
    }
    gen_fixpoint(&b, "request", "hpg_request",
                 "hpg_request_decode(a, %s, &%s, &err)",
                 "hpg_request_encode(%s, &%s)");
    hcg_buf_add(&cases,
                "    case %zu:\n        hpg_fz_request(&a, j);\n"
                "        break;\n",
                ncase++);
    size_t i;
    json_t *h;
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        char *u = upper(hstr(h, "name"));
        snprintf(tag, sizeof tag, "response_%s", hstr(h, "name"));
        snprintf(dec, sizeof dec,
                 "hpg_response_decode(a, %%s, HPG_REQ_%s, &%%s, &err)", u);
        gen_fixpoint(&b, tag, "hpg_response", dec,
                     "hpg_response_encode(%s, &%s)");
        hcg_buf_add(&cases,
                    "    case %zu:\n        hpg_fz_%s(&a, j);\n"
                    "        break;\n",
                    ncase++, tag);
        free(u);
    }
    hcg_buf_add(&b,
                "int LLVMFuzzerTestOneInput(const uint8_t *data, size_t "
                "size)\n{\n    if (size < 1)\n        return 0;\n"
                "    hp_arena a;\n    hp_arena_init(&a);\n"
                "    const char *err = NULL;\n"
                "    const hp_jv *j = hp_json_parse(&a, (const char *)data + "
                "1, size - 1, &err);\n"
                "    if (j != NULL) {\n        switch (data[0] %% %zu) {\n%s"
                "        default:\n            break;\n        }\n    }\n"
                "    hp_arena_fini(&a);\n    return 0;\n}\n",
                ncase, cases.s);
    free(cases.s);
    return b.s;
}
