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

json_t *hcg_type_node(json_t *types, int id)
{
    return json_array_get(types, (size_t)id);
}

const char *hcg_type_kind(json_t *types, int id)
{
    return json_string_value(json_object_get(hcg_type_node(types, id), "kind"));
}

const char *hcg_type_c(json_t *types, int id)
{
    return json_string_value(json_object_get(hcg_type_node(types, id), "c"));
}

bool hcg_composite(json_t *types, int id)
{
    static const char *const k[] = {"record", "enum", "list",  "option",
                                    "result", "map",  "tuple", "unit"};
    const char *kd = hcg_type_kind(types, id);
    for (size_t i = 0; kd && i < sizeof k / sizeof k[0]; i++)
        if (strcmp(kd, k[i]) == 0)
            return true;
    return false;
}

/* Types with a generated deep copy (enums and unit copy by value). */
bool hcg_clonable(json_t *types, int id)
{
    const char *k = hcg_type_kind(types, id);
    return hcg_composite(types, id) && strcmp(k, "enum") != 0 &&
           strcmp(k, "unit") != 0;
}

/* The C identifier part for type id: "struct point" -> "struct_point". */
char *hcg_fname(json_t *types, int id)
{
    char *s = strdup(hcg_type_c(types, id));
    if (s == NULL)
        abort();
    for (char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c))
            *c = '_';
    return s;
}

int hcg_ival(json_t *o, const char *k)
{
    return (int)json_integer_value(json_object_get(o, k));
}

/* What generated code returns when encoding or decoding fails: -1 in the
 * codec functions; the dispatcher sets its own. */
static const char *ret_fail = "-1";

/* Statements encoding the value `expr` of type id. */
void hcg_enc(hcg_buf *b, json_t *types, int id, const char *expr,
             const char *ind)
{
    const char *k = hcg_type_kind(types, id);
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
        char *f = hcg_fname(types, id);
        hcg_buf_add(b, "%sif (hpg_enc_%s(w, &(%s)) != 0)\n%s    return %s;\n",
                    ind, f, expr, ind, ret_fail);
        free(f);
    }
}

/* Statements decoding JSON `j` into the lvalue `lv` of type id; a failure
 * returns -1 with *err prefixed by `ctx` (a C string literal's content). */
void hcg_dec(hcg_buf *b, json_t *types, int id, const char *j, const char *lv,
             const char *ctx, const char *ind)
{
    const char *k = hcg_type_kind(types, id);
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
        char *f = hcg_fname(types, id);
        hcg_buf_add(b, "%sif (hpg_dec_%s(a, %s, &(%s), err))%s", ind, f, j, lv,
                    fail);
        free(f);
    }
}

static void gen_record(hcg_buf *b, json_t *types, int id, const char *f,
                       const char *ct)
{
    json_t *t = hcg_type_node(types, id);
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
        hcg_enc(b, types, hcg_ival(fl, "type"), expr, "    ");
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
        hcg_dec(b, types, hcg_ival(fl, "type"), jx, lv, ctx, "        ");
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
        int ft = hcg_ival(fl, "type");
        bool opt = strcmp(hcg_type_kind(types, ft), "option") == 0;
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
        hcg_dec(b, types, ft, jx, lv, ctx, "        ");
        hcg_buf_add(b, "    }\n");
    }
    hcg_buf_add(b, "    return 0;\n}\n\n");
}

static void gen_enum(hcg_buf *b, json_t *types, int id, const char *f,
                     const char *ct)
{
    json_t *t = hcg_type_node(types, id);
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
    json_t *t = hcg_type_node(types, id);
    const char *k = hcg_type_kind(types, id);
    hcg_buf_add(b, "static int hpg_enc_%s(hp_jw *w, const %s *v)\n{\n", f, ct);
    if (strcmp(k, "list") == 0) {
        hcg_buf_add(b, "    hp_jw_raw(w, \"[\", 1);\n");
        hcg_buf_add(b, "    for (size_t i = 0; i < v->len; i++) {\n");
        hcg_buf_add(b, "        if (i)\n            hp_jw_raw(w, \",\", 1);\n");
        hcg_enc(b, types, hcg_ival(t, "elem"), "v->ptr[i]", "        ");
        hcg_buf_add(b, "    }\n    hp_jw_raw(w, \"]\", 1);\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(
            b, "    if (!v->some) {\n        hp_jw_null(w);\n        return "
               "0;\n    }\n");
        hcg_enc(b, types, hcg_ival(t, "elem"), "v->value", "    ");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(
            b,
            "    if (v->ok) {\n        hp_jw_raw(w, \"{\\\"Ok\\\":\", 6);\n");
        hcg_enc(b, types, hcg_ival(t, "ok"), "v->value", "        ");
        hcg_buf_add(
            b, "    } else {\n        hp_jw_raw(w, \"{\\\"Err\\\":\", 7);\n");
        hcg_enc(b, types, hcg_ival(t, "err"), "v->error", "        ");
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
        hcg_enc(b, types, hcg_ival(t, "value"), "v->ptr[i].value", "        ");
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
            hcg_enc(b, types, (int)json_integer_value(it), expr, "    ");
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
        hcg_dec(b, types, hcg_ival(t, "elem"), "j->items[i]", "out->ptr[i]",
                "list item", "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(
            b, "    if (j->kind == HP_JV_NULL) {\n        out->some = "
               "false;\n        return 0;\n    }\n    out->some = true;\n");
        hcg_dec(b, types, hcg_ival(t, "elem"), "j", "out->value",
                "option value", "    ");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(
            b, "    if (j->len != 1 || (strcmp(j->keys[0], \"Ok\") != 0 && "
               "strcmp(j->keys[0], \"Err\") != 0)) {\n");
        hcg_buf_add(b, "        *err = \"expected {\\\"Ok\\\": ...} or "
                       "{\\\"Err\\\": ...}\";\n        return -1;\n    }\n");
        hcg_buf_add(b, "    out->ok = strcmp(j->keys[0], \"Ok\") == 0;\n");
        hcg_buf_add(b, "    if (out->ok) {\n");
        hcg_dec(b, types, hcg_ival(t, "ok"), "j->items[0]", "out->value", "Ok",
                "        ");
        hcg_buf_add(b, "    } else {\n");
        hcg_dec(b, types, hcg_ival(t, "err"), "j->items[0]", "out->error",
                "Err", "        ");
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
        hcg_dec(b, types, hcg_ival(t, "value"), "j->items[i]",
                "out->ptr[k].value", "map value", "        ");
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
            hcg_dec(b, types, (int)json_integer_value(it), jx, lv, ctx, "    ");
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
    const char *k = hcg_type_kind(types, id);
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
    } else if (hcg_composite(types, id) && strcmp(k, "enum") != 0 &&
               strcmp(k, "unit") != 0) {
        char *f = hcg_fname(types, id);
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
    json_t *t = hcg_type_node(types, id);
    const char *k = hcg_type_kind(types, id);
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
            cln(b, types, hcg_ival(fl, "type"), d, sr, "    ");
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
            cln(b, types, hcg_ival(t, "value"), "dst->ptr[i].value",
                "src->ptr[i].value", "        ");
        } else {
            hcg_buf_add(b, "        dst->ptr[i] = src->ptr[i];\n");
            cln(b, types, hcg_ival(t, "elem"), "dst->ptr[i]", "src->ptr[i]",
                "        ");
        }
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "option") == 0) {
        hcg_buf_add(b, "    if (src->some) {\n");
        cln(b, types, hcg_ival(t, "elem"), "dst->value", "src->value",
            "        ");
        hcg_buf_add(b, "    }\n");
    } else if (strcmp(k, "result") == 0) {
        hcg_buf_add(b, "    if (src->ok) {\n");
        cln(b, types, hcg_ival(t, "ok"), "dst->value", "src->value",
            "        ");
        hcg_buf_add(b, "    } else {\n");
        cln(b, types, hcg_ival(t, "err"), "dst->error", "src->error",
            "        ");
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

/* The C type a value of wire type id is held in (union members, stubs). */
const char *hcg_wire_c(json_t *types, int id)
{
    static const char *const map[][2] = {
        {"bool", "bool"},      {"s8", "int8_t"},          {"s16", "int16_t"},
        {"s32", "int32_t"},    {"s64", "int64_t"},        {"u8", "uint8_t"},
        {"u16", "uint16_t"},   {"u32", "uint32_t"},       {"u64", "uint64_t"},
        {"f32", "float"},      {"f64", "double"},         {"string", "char *"},
        {"bytes", "hw_bytes"}, {"address", "hw_address"},
    };
    const char *k = hcg_type_kind(types, id);
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(k, map[i][0]) == 0)
            return map[i][1];
    return hcg_type_c(types, id);
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
void hcg_emit_type_codecs(hcg_buf *b, json_t *model)
{
    json_t *types = json_object_get(model, "types");
    size_t n = json_array_size(types);
    /* prototypes, so that types may refer to each other in any order */
    for (size_t i = 0; i < n; i++) {
        if (!hcg_composite(types, (int)i))
            continue;
        char *f = hcg_fname(types, (int)i);
        const char *ct = hcg_type_c(types, (int)i);
        hcg_buf_add(b,
                    "static int hpg_enc_%s(hp_jw *w, const %s *v) "
                    "__attribute__((unused));\n",
                    f, ct);
        hcg_buf_add(
            b,
            "static int hpg_dec_%s(hp_arena *a, const hp_jv *j, %s *out, "
            "const char **err) __attribute__((unused));\n",
            f, ct);
        if (hcg_clonable(types, (int)i))
            hcg_buf_add(b,
                        "static int hpg_clone_%s(%s *dst, const %s *src) "
                        "__attribute__((unused));\n",
                        f, ct, ct);
        free(f);
    }
    hcg_buf_add(b, "\n");
    for (size_t i = 0; i < n; i++) {
        if (!hcg_composite(types, (int)i))
            continue;
        char *f = hcg_fname(types, (int)i);
        const char *ct = hcg_type_c(types, (int)i);
        const char *k = hcg_type_kind(types, (int)i);
        if (strcmp(k, "record") == 0)
            gen_record(b, types, (int)i, f, ct);
        else if (strcmp(k, "enum") == 0)
            gen_enum(b, types, (int)i, f, ct);
        else
            gen_generic(b, types, (int)i, f, ct);
        if (hcg_clonable(types, (int)i))
            gen_clone(b, types, (int)i, f, ct);
        free(f);
    }
}
