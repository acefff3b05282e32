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
        hcg_buf_add(
            b,
            "%sif ((%s) == NULL || hp_jw_string(w, (%s), strlen(%s)) != 0)\n"
            "%s    return %s;\n",
            ind, expr, expr, expr, ind, ret_fail);
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

/* ---------------------------------------------------------------- dispatch */

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

/* The request dispatcher, as the Rust framework routes (framework.md):
 * the body is {"Variant": args} (or "Variant" without args); local
 * callers reach local and remote handlers, other nodes remote ones only,
 * http-server the http ones.  Arguments: none -> absent or null, one ->
 * the value, several -> an array.  On success the handler's return value
 * is written to w as is. */
static void gen_dispatch(hcg_buf *b, json_t *model)
{
    json_t *types = json_object_get(model, "types");
    json_t *handlers = json_object_get(model, "handlers");
    const char *state = json_string_value(json_object_get(model, "state"));
    if (state == NULL)
        return;
    hcg_buf_add(b, "/* Who sent a request, for dispatch. */\n");
    hcg_buf_add(
        b, "enum hpg_source { HPG_FROM_LOCAL, HPG_FROM_REMOTE, HPG_FROM_HTTP "
           "};\n\n");
    hcg_buf_add(b,
                "/* Why a request was refused (the error reply's kind). */\n");
    hcg_buf_add(b, "enum hpg_refusal {\n    HPG_OK = 0,\n    HPG_BAD_JSON,\n"
                   "    HPG_UNKNOWN_VARIANT,\n    HPG_FORBIDDEN,\n"
                   "    HPG_BAD_ARGUMENTS,\n    HPG_ENCODE_FAILED,\n};\n\n");
    hcg_buf_add(
        b,
        "static int hpg_dispatch(hp_arena *a, %s *state, enum hpg_source "
        "src, const char *body, size_t len, hp_jw *w, const char **err) "
        "__attribute__((unused));\n\n",
        state);
    hcg_buf_add(
        b,
        "static int hpg_dispatch(hp_arena *a, %s *state, enum hpg_source "
        "src, const char *body, size_t len, hp_jw *w, const char **err)\n{\n",
        state);
    hcg_buf_add(b, "    (void)state;\n    (void)w;\n");
    hcg_buf_add(b, "    const char *perr = NULL;\n");
    hcg_buf_add(b, "    hp_jv *j = hp_json_parse(a, body, len, &perr);\n");
    hcg_buf_add(
        b, "    if (j == NULL) {\n        *err = hp_jd_wrap(a, \"the request "
           "is not JSON\", perr);\n        return HPG_BAD_JSON;\n    }\n");
    hcg_buf_add(b,
                "    const char *v = NULL;\n    const hp_jv *args = NULL;\n");
    hcg_buf_add(
        b,
        "    if (j->kind == HP_JV_STRING) {\n        v = j->str;\n"
        "    } else if (j->kind == HP_JV_OBJECT && j->len == 1) {\n"
        "        v = j->keys[0];\n        args = j->items[0];\n    } else {\n");
    /* the list of variants each source may call, for messages */
    hcg_buf_add(b, "        *err = \"expected {\\\"Variant\\\": arguments} or "
                   "\\\"Variant\\\"\";\n        return HPG_BAD_JSON;\n    }\n");
    for (int sidx = 0; sidx < 3; sidx++) {
        hcg_buf list = {0};
        size_t i;
        json_t *h;
        json_array_foreach(handlers, i, h)
        {
            bool ok = sidx == 0 ? has_kind(h, "local") || has_kind(h, "remote")
                      : sidx == 1 ? has_kind(h, "remote")
                                  : has_kind(h, "http");
            if (ok)
                hcg_buf_add(&list, "%s%s", list.len ? ", " : "",
                            json_string_value(json_object_get(h, "variant")));
        }
        hcg_buf_add(b, "    static const char *const allowed_%d = \"%s\";\n",
                    sidx, list.s ? list.s : "");
        free(list.s);
    }
    hcg_buf_add(b,
                "    const char *allowed = src == HPG_FROM_LOCAL ? allowed_0 : "
                "src == HPG_FROM_REMOTE ? allowed_1 : allowed_2;\n");
    size_t i;
    json_t *h;
    json_array_foreach(handlers, i, h)
    {
        if (!is_request(h))
            continue;
        const char *variant = json_string_value(json_object_get(h, "variant"));
        const char *cname = json_string_value(json_object_get(h, "c_name"));
        hcg_buf_add(b, "    if (strcmp(v, \"%s\") == 0) {\n", variant);
        hcg_buf cond = {0};
        if (has_kind(h, "local") || has_kind(h, "remote"))
            hcg_buf_add(&cond, "src == HPG_FROM_LOCAL");
        if (has_kind(h, "remote"))
            hcg_buf_add(&cond, "%ssrc == HPG_FROM_REMOTE",
                        cond.len ? " || " : "");
        if (has_kind(h, "http"))
            hcg_buf_add(&cond, "%ssrc == HPG_FROM_HTTP",
                        cond.len ? " || " : "");
        hcg_buf_add(b, "        if (!(%s)) {\n", cond.s);
        hcg_buf_add(
            b,
            "            *err = hp_arena_sprintf(a, \"%s may not be called "
            "from %%s; you may call: %%s\", src == HPG_FROM_LOCAL ? \"this "
            "node\" : src == HPG_FROM_REMOTE ? \"another node\" : \"HTTP\", "
            "allowed);\n            return HPG_FORBIDDEN;\n        }\n",
            variant);
        free(cond.s);
        json_t *params = json_object_get(h, "params");
        size_t np = json_array_size(params) - 1;
        /* locals for the arguments */
        hcg_buf call = {0};
        for (size_t k = 0; k < np; k++) {
            json_t *p = json_array_get(params, k + 1);
            const char *pt = json_string_value(json_object_get(p, "type"));
            int wire = (int)json_integer_value(json_object_get(p, "wire"));
            bool ptr = composite(types, wire) && pt[strlen(pt) - 1] == '*';
            if (ptr)
                hcg_buf_add(b,
                            "        %s a%zu;\n        memset(&a%zu, 0, sizeof "
                            "a%zu);\n",
                            ctype(types, wire), k, k, k);
            else
                hcg_buf_add(b,
                            "        %s a%zu;\n        memset(&a%zu, 0, sizeof "
                            "a%zu);\n",
                            pt, k, k, k);
            hcg_buf_add(&call, ", %sa%zu", ptr ? "&" : "", k);
        }
        if (np == 0) {
            hcg_buf_add(
                b,
                "        if (args != NULL && args->kind != HP_JV_NULL) {\n"
                "            *err = \"%s takes no arguments (send "
                "\\\"%s\\\" or {\\\"%s\\\": null})\";\n"
                "            return HPG_BAD_ARGUMENTS;\n        }\n",
                variant, variant, variant);
        } else if (np == 1) {
            hcg_buf_add(
                b,
                "        if (args == NULL) {\n            *err = \"%s takes "
                "an argument: {\\\"%s\\\": value}\";\n"
                "            return HPG_BAD_ARGUMENTS;\n        }\n",
                variant, variant);
            json_t *p = json_array_get(params, 1);
            char ctx[160];
            snprintf(ctx, sizeof ctx, "argument '%s' of %s",
                     json_string_value(json_object_get(p, "name")), variant);
            ret_fail = "HPG_BAD_ARGUMENTS";
            dec(b, types, (int)json_integer_value(json_object_get(p, "wire")),
                "args", "a0", ctx, "        ");
            ret_fail = "-1";
        } else {
            hcg_buf_add(
                b,
                "        if (args == NULL || args->kind != HP_JV_ARRAY || "
                "args->len != %zu) {\n"
                "            *err = \"%s takes %zu arguments as an array: "
                "{\\\"%s\\\": [...]}\";\n"
                "            return HPG_BAD_ARGUMENTS;\n        }\n",
                np, variant, np, variant);
            for (size_t k = 0; k < np; k++) {
                json_t *p = json_array_get(params, k + 1);
                char ctx[160], jx[48], lv[32];
                snprintf(ctx, sizeof ctx, "argument '%s' of %s",
                         json_string_value(json_object_get(p, "name")),
                         variant);
                snprintf(jx, sizeof jx, "args->items[%zu]", k);
                snprintf(lv, sizeof lv, "a%zu", k);
                ret_fail = "HPG_BAD_ARGUMENTS";
                dec(b, types,
                    (int)json_integer_value(json_object_get(p, "wire")), jx, lv,
                    ctx, "        ");
                ret_fail = "-1";
            }
        }
        const char *ret = json_string_value(json_object_get(h, "returns"));
        hcg_buf_add(b, "        %s r = %s(state%s);\n", ret, cname,
                    call.s ? call.s : "");
        free(call.s);
        ret_fail = "(*err = \"the handler's return value could not be "
                   "written as JSON\", HPG_ENCODE_FAILED)";
        enc(b, types,
            (int)json_integer_value(json_object_get(h, "returns_wire")), "r",
            "        ");
        ret_fail = "-1";
        hcg_buf_add(b, "        return HPG_OK;\n    }\n");
    }
    hcg_buf_add(
        b, "    *err = hp_arena_sprintf(a, \"unknown request variant '%%s'; "
           "you may call: %%s\", v, allowed);\n");
    hcg_buf_add(b, "    return HPG_UNKNOWN_VARIANT;\n}\n");
}

char *hcg_codecs(json_t *model)
{
    json_t *types = json_object_get(model, "types");
    hcg_buf b = {0};
    const char *file = json_string_value(json_object_get(model, "file"));
    const char *base = strrchr(file, '/');
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b, "#include <hyperc/json.h>\n\n#include <stdint.h>\n#include "
                    "<stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n");
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
    gen_dispatch(&b, model);
    return b.s;
}

/* ------------------------------------------------------------ the process */

/* A whole process: the user's source, the codecs and dispatcher, and the
 * process's life (hw_init): run the init handler, then answer each request
 * through the dispatcher; refused requests get an error reply
 * {"HypercError":{"kind":...,"message":...}} instead of silence. */
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
    const char *state = json_string_value(json_object_get(model, "state"));
    const char *init = NULL;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(model, "handlers"), i, h)
    {
        if (has_kind(h, "init"))
            init = json_string_value(json_object_get(h, "c_name"));
    }
    hcg_buf_add(&b, "static const char *const hpg_refusal_names[] = {\"Ok\", "
                    "\"BadJson\", \"UnknownVariant\", \"Forbidden\", "
                    "\"BadArguments\", \"EncodeFailed\"};\n\n");
    hcg_buf_add(&b,
                "static void hpg_answer(const char *text, size_t len)\n{\n");
    hcg_buf_add(&b, "    hw_response r;\n    memset(&r, 0, sizeof r);\n");
    hcg_buf_add(&b,
                "    r.body.ptr = (uint8_t *)text;\n    r.body.len = len;\n");
    hcg_buf_add(&b, "    hw_send_response(&r, NULL);\n}\n\n");
    json_t *types = json_object_get(model, "types");
    int sid = (int)json_integer_value(json_object_get(model, "state_wire"));
    char *sf = fname(types, sid);
    json_t *sc =
        json_object_get(json_object_get(model, "process"), "save_config");
    const char *policy = json_string_value(json_object_get(sc, "kind"));
    long long every = (long long)json_integer_value(json_object_get(sc, "n"));
    if (policy == NULL)
        policy = "Never";
    bool seconds = strcmp(policy, "EveryNSeconds") == 0;
    if (seconds)
        policy = "EveryMessage"; /* see the notice printed at start */
    /* saving: the state's JSON through the state module */
    hcg_buf_add(&b,
                "static void hpg_save(const %s *s, bool only_if_changed) "
                "__attribute__((unused));\n\n",
                state);
    hcg_buf_add(&b,
                "static void hpg_save(const %s *s, bool only_if_changed)\n{\n",
                state);
    hcg_buf_add(&b,
                "    static char *last; /* what was saved last (OnDiff) */\n");
    hcg_buf_add(&b, "    hp_jw w;\n    hp_jw_init(&w);\n");
    hcg_buf_add(&b, "    if (hpg_enc_%s(&w, s) != 0 || !hp_jw_ok(&w)) {\n", sf);
    hcg_buf_add(&b, "        hw_print_to_terminal(0, \"the state could not be "
                    "written as JSON; not saved\");\n");
    hcg_buf_add(
        &b, "    } else if (!only_if_changed || last == NULL || strcmp(last, "
            "w.buf) != 0) {\n");
    hcg_buf_add(&b,
                "        if (hw_set_state((const uint8_t *)w.buf, w.len)) {\n");
    hcg_buf_add(&b,
                "            free(last);\n            last = strdup(w.buf);\n");
    hcg_buf_add(
        &b, "        } else {\n            hw_print_to_terminal(0, \"saving "
            "the state failed\");\n        }\n    }\n");
    hcg_buf_add(&b, "    hp_jw_fini(&w);\n}\n\n");
    hcg_buf_add(&b, "void hw_init(const char *our)\n{\n");
    /* Static: the node stops a process inside hw_receive without unwinding
     * (abi.h), so what must stay reachable lives in the instance's data. */
    hcg_buf_add(&b, "    static %s state;\n", state);
    hcg_buf_add(&b, "    static hw_address me;\n    static hp_arena a;\n");
    hcg_buf_add(&b, "    hw_our(&me);\n");
    hcg_buf_add(&b, "    char line[256];\n");
    hcg_buf_add(&b,
                "    snprintf(line, sizeof line, \"%%s: started\", our);\n");
    hcg_buf_add(&b, "    hw_print_to_terminal(1, line);\n");
    hcg_buf_add(&b, "    hp_arena_init(&a);\n");
    /* the stored state, if any; one that does not decode is never
     * overwritten: the process does not start */
    hcg_buf_add(&b, "    hw_bytes stored;\n    if (hw_get_state(&stored)) {\n");
    hcg_buf_add(&b, "        const char *perr = \"out of memory\";\n");
    hcg_buf_add(&b, "        %s tmp;\n        memset(&tmp, 0, sizeof tmp);\n",
                state);
    hcg_buf_add(
        &b, "        hp_jv *j = hp_json_parse(&a, (const char *)stored.ptr, "
            "stored.len, &perr);\n");
    hcg_buf_add(
        &b,
        "        if (j == NULL || hpg_dec_%s(&a, j, &tmp, &perr) != 0 || "
        "hpg_clone_%s(&state, &tmp) != 0) {\n",
        sf, sf);
    hcg_buf_add(
        &b,
        "            snprintf(line, sizeof line, \"the stored state does "
        "not decode as %s (%%s): not starting, and leaving the stored "
        "state as it is\", perr);\n",
        state);
    hcg_buf_add(&b, "            hw_print_to_terminal(0, line);\n");
    hcg_buf_add(&b,
                "            hw_on_exit none;\n            memset(&none, 0, "
                "sizeof none);\n            none.kind = HW_ON_EXIT_NONE;\n"
                "            hw_set_on_exit(&none);\n");
    hcg_buf_add(&b, "            hw_bytes_fini(&stored);\n            "
                    "hp_arena_fini(&a);\n            hw_address_fini(&me);\n"
                    "            return;\n        }\n");
    hcg_buf_add(&b,
                "        hw_bytes_fini(&stored);\n        hp_arena_reset(&a);\n"
                "    }\n");
    if (seconds)
        hcg_buf_add(
            &b, "    hw_print_to_terminal(0, \"save_config EveryNSeconds is "
                "not implemented yet: the state is saved after every "
                "message\");\n");
    if (init)
        hcg_buf_add(&b, "    %s(&state);\n", init);
    if (strcmp(policy, "OnDiff") == 0)
        hcg_buf_add(&b, "    hpg_save(&state, true);\n");
    hcg_buf_add(&b,
                "    unsigned long long handled = 0;\n    (void)handled;\n");
    hcg_buf_add(&b, "    for (;;) {\n");
    hcg_buf_add(&b, "        hw_receive_result r;\n        hw_receive(&r);\n");
    hcg_buf_add(
        &b, "        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) "
            "{\n");
    hcg_buf_add(&b, "            enum hpg_source src = HPG_FROM_LOCAL;\n");
    hcg_buf_add(&b, "            if (strcmp(r.source.node, me.node) != 0)\n"
                    "                src = HPG_FROM_REMOTE;\n");
    hcg_buf_add(
        &b, "            else if (strcmp(r.source.process.process_name, "
            "\"http-server\") == 0 && strcmp(r.source.process.package_name, "
            "\"distro\") == 0 && strcmp(r.source.process.publisher_node, "
            "\"sys\") == 0)\n                src = HPG_FROM_HTTP;\n");
    hcg_buf_add(&b, "            hp_jw w;\n            hp_jw_init(&w);\n");
    hcg_buf_add(&b, "            const char *err = NULL;\n");
    hcg_buf_add(
        &b, "            int rc = hpg_dispatch(&a, &state, src, (const char "
            "*)r.message.request.body.ptr, r.message.request.body.len, &w, "
            "&err);\n");
    hcg_buf_add(&b, "            if (rc != HPG_OK) {\n");
    hcg_buf_add(
        &b,
        "                hp_jw_fini(&w);\n                hp_jw_init(&w);\n");
    hcg_buf_add(&b, "                hp_jw_raw(&w, "
                    "\"{\\\"HypercError\\\":{\\\"kind\\\":\\\"\", 24);\n");
    hcg_buf_add(&b, "                hp_jw_raw(&w, hpg_refusal_names[rc], "
                    "strlen(hpg_refusal_names[rc]));\n");
    hcg_buf_add(
        &b, "                hp_jw_raw(&w, \"\\\",\\\"message\\\":\", 12);\n");
    hcg_buf_add(&b,
                "                if (hp_jw_string(&w, err, strlen(err)) != 0)\n"
                "                    hp_jw_raw(&w, \"\\\"\\\"\", 2);\n");
    hcg_buf_add(&b, "                hp_jw_raw(&w, \"}}\", 2);\n");
    hcg_buf_add(
        &b, "                snprintf(line, sizeof line, \"refused a request: "
            "%%s\", err);\n                hw_print_to_terminal(1, line);\n");
    hcg_buf_add(&b, "            }\n");
    if (strcmp(policy, "EveryMessage") == 0)
        hcg_buf_add(&b, "            if (rc == HPG_OK)\n                "
                        "hpg_save(&state, false);\n");
    else if (strcmp(policy, "EveryNMessage") == 0)
        hcg_buf_add(
            &b,
            "            if (rc == HPG_OK && ++handled %% %lldULL == 0)\n"
            "                hpg_save(&state, false);\n",
            every);
    else if (strcmp(policy, "OnDiff") == 0)
        hcg_buf_add(&b, "            if (rc == HPG_OK)\n                "
                        "hpg_save(&state, true);\n");
    hcg_buf_add(&b,
                "            if (r.message.request.has_expects_response)\n");
    hcg_buf_add(&b,
                "                hpg_answer(w.buf ? w.buf : \"\", w.len);\n");
    hcg_buf_add(
        &b, "            hp_jw_fini(&w);\n            hp_arena_reset(&a);\n");
    hcg_buf_add(&b,
                "        }\n        hw_receive_result_fini(&r);\n    }\n}\n");
    free(sf);
    return b.s;
}
