/* The generated process around the type codecs (codec.c): the Request
 * and Response unions with their codecs, one call function per request
 * variant, the variant table the runtime dispatches by, the state's
 * functions, the process descriptor hpg_impl and hw_init. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------- request/response unions */

/* A generated static function's prototype (marked unused, as not every
 * process calls every function) and the opening of its definition. */
static void open_fn(hcg_buf *b, const char *sig)
{
    hcg_buf_add(b, "%s __attribute__((unused));\n\n%s\n{\n", sig, sig);
}

/* "    case HPG_REQ_<NAME>:" for handler h. */
static void case_label(hcg_buf *b, const hcg_handler *h)
{
    char *u = hcg_upper(h->name);
    hcg_buf_add(b, "    case HPG_REQ_%s:\n", u);
    free(u);
}

/* The Request and Response tagged unions (framework.md §4: one variant per
 * request handler, named CamelCase from the function), with their codecs:
 *   hpg_request_decode   {"Variant": args} | "Variant"  -> hpg_request
 *   hpg_request_args_decode   args of a known variant   -> hpg_request
 *   hpg_request_encode   hpg_request -> what serde_json writes
 *   hpg_response_encode / hpg_response_decode   the raw return value */
void hcg_emit_unions(hcg_buf *b, const hcg_model *m)
{
    hcg_buf_add(b, "/* The requests this process answers: one variant per "
                   "request handler. */\n");
    hcg_buf_add(b, "typedef enum hpg_request_tag {\n    HPG_REQ_NONE_ = 0,\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        char *u = hcg_upper(h->name);
        hcg_buf_add(b, "    HPG_REQ_%s,\n", u);
        free(u);
    }
    hcg_buf_add(b, "} hpg_request_tag;\n\n");
    hcg_buf_add(b, "static const char *const hpg_request_names[] "
                   "__attribute__((unused)) = {\n    \"\",\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (hcg_handler_is_request(h))
            hcg_buf_add(b, "    \"%s\",\n", h->variant);
    }
    hcg_buf_add(b, "};\n\n");
    /* Request: the arguments of each variant */
    hcg_buf_add(b, "typedef struct hpg_request {\n    hpg_request_tag tag;\n"
                   "    union {\n        uint8_t none_;\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const hcg_param *params = h->params;
        if (h->nparams <= 1)
            continue;
        hcg_buf_add(b, "        struct {\n");
        for (size_t k = 1; k < h->nparams; k++) {
            const hcg_param *p = &params[k];
            const char *ct = hcg_wire_c(m, p->wire);
            hcg_buf_add(b, "            %s%s%s;\n", ct,
                        ct[strlen(ct) - 1] == '*' ? "" : " ", p->name);
        }
        hcg_buf_add(b, "        } %s;\n", h->name);
    }
    hcg_buf_add(b, "    };\n} hpg_request;\n\n");
    /* Response: the return value of each variant */
    hcg_buf_add(b, "typedef struct hpg_response {\n    hpg_request_tag tag;\n"
                   "    union {\n        uint8_t none_;\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *ct = hcg_wire_c(m, h->returns_wire);
        hcg_buf_add(b, "        %s%s%s;\n", ct,
                    ct[strlen(ct) - 1] == '*' ? "" : " ", h->name);
    }
    hcg_buf_add(b, "    };\n} hpg_response;\n\n");

    /* arguments of a known variant: none -> absent or null, one -> the
     * value, several -> an array of exactly that many */
    open_fn(b, "static int hpg_request_args_decode(hp_arena *a, "
               "hpg_request_tag tag, const hp_jv *args, hpg_request *out, "
               "const char **err)");
    hcg_buf_add(b, "    (void)a;\n    memset(out, 0, sizeof *out);\n"
                   "    out->tag = tag;\n    switch (tag) {\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *variant = h->variant;
        const char *name = h->name;
        case_label(b, h);
        const hcg_param *params = h->params;
        size_t np = h->nparams - 1;
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
            const hcg_param *p = &params[k + 1];
            hcg_buf_add(&expect, "%s%s", k ? ", " : "", p->name);
        }
        if (np == 1) {
            hcg_buf_add(b,
                        "        if (args == NULL) {\n            *err = \"%s "
                        "takes an argument: {\\\"%s\\\": %s}\";\n"
                        "            return -1;\n        }\n",
                        variant, variant, expect.s);
            const hcg_param *p = &params[1];
            char ctx[200], lv[200];
            snprintf(ctx, sizeof ctx, "argument '%s' of %s", p->name, variant);
            snprintf(lv, sizeof lv, "out->%s.%s", name, p->name);
            hcg_dec(b, m, p->wire, "args", lv, ctx, "        ");
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
                const hcg_param *p = &params[k + 1];
                char ctx[200], jx[48], lv[200];
                snprintf(ctx, sizeof ctx, "argument '%s' of %s", p->name,
                         variant);
                snprintf(jx, sizeof jx, "args->items[%zu]", k);
                snprintf(lv, sizeof lv, "out->%s.%s", name, p->name);
                hcg_dec(b, m, p->wire, jx, lv, ctx, "        ");
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
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *variant = h->variant;
        const char *name = h->name;
        case_label(b, h);
        const hcg_param *params = h->params;
        size_t np = h->nparams - 1;
        size_t vl = strlen(variant);
        if (np == 0) {
            hcg_buf_add(b, "        hp_jw_raw(w, \"\\\"%s\\\"\", %zu);\n",
                        variant, vl + 2);
        } else {
            hcg_buf_add(b, "        hp_jw_raw(w, \"{\\\"%s\\\":%s\", %zu);\n",
                        variant, np > 1 ? "[" : "", vl + 4 + (np > 1));
            for (size_t k = 0; k < np; k++) {
                const hcg_param *p = &params[k + 1];
                char expr[200];
                snprintf(expr, sizeof expr, "r->%s.%s", name, p->name);
                if (k)
                    hcg_buf_add(b, "        hp_jw_raw(w, \",\", 1);\n");
                hcg_enc(b, m, p->wire, expr, "        ");
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
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        case_label(b, h);
        char expr[200];
        snprintf(expr, sizeof expr, "r->%s", h->name);
        hcg_enc(b, m, h->returns_wire, expr, "        ");
        hcg_buf_add(b, "        return hp_jw_ok(w) ? 0 : -1;\n");
    }
    hcg_buf_add(b, "    default:\n        return -1;\n    }\n}\n\n");

    open_fn(b, "static int hpg_response_decode(hp_arena *a, const hp_jv "
               "*j, hpg_request_tag tag, hpg_response *out, const char "
               "**err)");
    hcg_buf_add(b, "    (void)a;\n    (void)j;\n"
                   "    memset(out, 0, sizeof *out);\n    out->tag = tag;\n"
                   "    switch (tag) {\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        case_label(b, h);
        char ctx[200], lv[200];
        snprintf(ctx, sizeof ctx, "the result of %s", h->variant);
        snprintf(lv, sizeof lv, "out->%s", h->name);
        hcg_dec(b, m, h->returns_wire, "j", lv, ctx, "        ");
        hcg_buf_add(b, "        return 0;\n");
    }
    hcg_buf_add(b, "    default:\n        *err = \"unknown request "
                   "variant\";\n        return -1;\n    }\n}\n\n");
}

static int cmp_variant(const void *x, const void *y)
{
    const hcg_handler *const *a = x, *const *b = y;
    return strcmp((*a)->variant, (*b)->variant);
}

/* One call function per request variant (decode the arguments, call the
 * handler, encode its result) and the table the runtime dispatches by,
 * sorted by variant name; then the state's functions and the process
 * descriptor hpg_impl (runtime.h). */
static void gen_impl(hcg_buf *b, const hcg_model *m)
{
    const char *state = m->state;
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *name = h->name;
        char *u = hcg_upper(name);
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
        const char *rc = hcg_wire_c(m, h->returns_wire);
        hcg_buf_add(b, "    p.%s = (%s)%s((%s *)st", name, rc, h->c_name,
                    state);
        const hcg_param *params = h->params;
        for (size_t k = 1; k < h->nparams; k++) {
            const hcg_param *p = &params[k];
            const char *pt = p->type;
            int wire = p->wire;
            bool ptr = hcg_composite(m, wire) && pt[strlen(pt) - 1] == '*';
            hcg_buf_add(b, ", %sq.%s.%s", ptr ? "&" : "", name, p->name);
        }
        hcg_buf_add(b, ");\n");
        hcg_buf_add(b,
                    "    if (hpg_response_encode(w, &p) != 0) {\n        *err "
                    "= \"%s returned a value that cannot be written as JSON "
                    "(an invalid UTF-8 string, or an enum value without a "
                    "name)\";\n        return "
                    "HP_REFUSAL_HANDLER_FAILED;\n    }\n",
                    h->variant);
        hcg_buf_add(b, "    return HP_REFUSAL_OK;\n}\n\n");
    }
    /* the table, sorted by variant name */
    size_t n = 0;
    const hcg_handler **sorted = calloc(m->nhandlers + 1, sizeof *sorted);
    if (sorted == NULL)
        abort();
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (hcg_handler_is_request(h))
            sorted[n++] = h;
    }
    qsort(sorted, n, sizeof *sorted, cmp_variant);
    /* HTTP: parameter names and whether each takes query text as is */
    for (size_t k = 0; k < n; k++) {
        const hcg_handler *h = sorted[k];
        const hcg_param *params = h->params;
        size_t np = h->nparams - 1;
        if (np == 0 || !hcg_handler_has(h, HCG_H_HTTP))
            continue;
        hcg_buf_add(b, "static const char *const hpg_pn_%s[] = {", h->name);
        for (size_t q = 0; q < np; q++)
            hcg_buf_add(b, "%s\"%s\"", q ? ", " : "", params[q + 1].name);
        hcg_buf_add(b, "};\nstatic const bool hpg_ps_%s[] = {", h->name);
        for (size_t q = 0; q < np; q++) {
            hcg_kind kd = hcg_type_kind(m, hcg_unalias(m, params[q + 1].wire));
            bool text = kd == HCG_STRING || kd == HCG_ADDRESS ||
                        kd == HCG_ENUM || kd == HCG_CHAR;
            hcg_buf_add(b, "%s%s", q ? ", " : "", text ? "true" : "false");
        }
        hcg_buf_add(b, "};\n");
    }
    hcg_buf_add(b, "static const hp_variant hpg_variants[] = {\n");
    for (size_t k = 0; k < n; k++) {
        const hcg_handler *h = sorted[k];
        hcg_buf src = {0};
        if (hcg_handler_has(h, HCG_H_LOCAL) || hcg_handler_has(h, HCG_H_REMOTE))
            hcg_buf_add(&src, "HP_FROM_LOCAL");
        if (hcg_handler_has(h, HCG_H_REMOTE))
            hcg_buf_add(&src, "%sHP_FROM_REMOTE", src.len ? " | " : "");
        if (hcg_handler_has(h, HCG_H_HTTP))
            hcg_buf_add(&src, "%sHP_FROM_HTTP", src.len ? " | " : "");
        size_t order = 0;
        for (size_t q = 0; q < m->nhandlers; q++)
            if (&m->handlers[q] == h)
                order = q;
        size_t np = h->nparams - 1;
        bool http = hcg_handler_has(h, HCG_H_HTTP);
        const char *meth = h->method, *path = h->path;
        hcg_buf_add(b, "    {\"%s\", %s, hpg_call_%s, ", h->variant, src.s,
                    h->name);
        if (http && meth)
            hcg_buf_add(b, "\"%s\", ", meth);
        else
            hcg_buf_add(b, "NULL, ");
        if (http && path)
            hcg_buf_add(b, "\"%s\", ", path);
        else
            hcg_buf_add(b, "NULL, ");
        if (http && np)
            hcg_buf_add(b, "hpg_pn_%s, hpg_ps_%s, %zu, %zu},\n", h->name,
                        h->name, np, order);
        else
            hcg_buf_add(b, "NULL, NULL, %zu, %zu},\n", np, order);
        free(src.s);
    }
    if (n == 0)
        hcg_buf_add(b, "    {\"\", 0, NULL, NULL, NULL, NULL, NULL, 0, 0},\n");
    hcg_buf_add(b, "};\n\n");
    free(sorted);

    /* the state */
    int sid = m->state_wire;
    char *sf = hcg_fname(m, sid);
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
    const char *migrate = m->process.migrate;
    if (migrate)
        hcg_buf_add(b,
                    "static bool hpg_migrate(hp_arena *a, uint32_t from, "
                    "const hp_jv *stored, void *out, const char **why)\n{\n"
                    "    return %s(a, from, stored, (%s *)out, why);\n}\n\n",
                    migrate, state);
    const char *init = NULL, *ws = NULL, *wsc = NULL;
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (hcg_handler_has(h, HCG_H_INIT))
            init = h->c_name;
        if (hcg_handler_has(h, HCG_H_WS))
            ws = h->c_name;
        if (hcg_handler_has(h, HCG_H_WS_CLIENT))
            wsc = h->c_name;
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
    /* the HTTP runtime when anything is bound (hpr_bind_all) or served */
    const hcg_params *pp = &m->process;
    bool http = ws || pp->nendpoints || pp->has_ui || pp->ui_path || pp->icon ||
                pp->widget;
    for (size_t i = 0; i < m->nhandlers; i++)
        http = http || hcg_handler_has(&m->handlers[i], HCG_H_HTTP);
    hcg_buf_add(b, "    .ws = %s,\n    .ws_client = %s,\n",
                ws ? "hpg_ws" : "NULL", wsc ? "hpg_ws_client" : "NULL");
    hcg_buf_add(b, "    .http = %s,\n};\n",
                http ? "&hp__http_runtime" : "NULL");
}

char *hcg_codecs(const hcg_model *m)
{
    hcg_buf b = {0};
    const char *file = m->file;
    const char *base = strrchr(file, '/');
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b, "#include <hyperc/runtime.h>\n\n#include <stdint.h>\n"
                    "#include <stdio.h>\n#include <stdlib.h>\n"
                    "#include <string.h>\n\n");
    hcg_emit_type_codecs(&b, m);
    hcg_emit_unions(&b, m);
    if (m->state)
        gen_impl(&b, m);
    return b.s;
}

/* ------------------------------------------------------------ the process */

/* A whole process: the user's source, then the codecs, the unions, the
 * variant table and the descriptor, and hw_init handing it to libhyperc's
 * runtime (hp_process_main), which loads the state, sets up logging, runs
 * init and answers requests, refused ones with an error reply. */
char *hcg_process(const hcg_model *m, const char *source_path)
{
    hcg_buf b = {0};
    const char *file = m->file;
    const char *base = strrchr(file, '/');
    hcg_buf_add(&b, "/* Generated by hyperc gen from %s; do not edit. */\n",
                base ? base + 1 : file);
    hcg_buf_add(&b, "#include \"%s\"\n\n", source_path);
    char *codecs = hcg_codecs(m);
    /* drop the codecs' own first line (the same notice) */
    const char *rest = strchr(codecs, '\n');
    hcg_buf_add(&b, "%s\n", rest ? rest + 1 : codecs);
    free(codecs);
    hcg_buf_add(&b, "void hw_init(const char *our)\n{\n    (void)our;\n"
                    "    hp_process_main(&hpg_impl);\n}\n");
    return b.s;
}
