/* Caller stubs (hyperc gen --callers): <iface>_caller_utils.h and .c, the
 * callee's types under its prefix and one typed function per request
 * handler and kind (local, remote). */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- caller utils */

/* The interface's C prefix: the WIT interface name with '-' as '_'
 * ("my-process" -> "my_process"); the caller frees it. */
static char *callers_prefix(const hcg_model *m)
{
    char *p = hcg_wit_interface_name(m);
    for (char *c = p; *c; c++)
        if (*c == '-')
            *c = '_';
    return p;
}

/* The model with its records, enums, enumerators and generic types under
 * the interface's prefix, so that a caller's own names never clash with
 * the callee's: everything but the types shared with *m, the types a copy
 * (the caller frees them: hcg_types_free(r.types, r.ntypes)). */
static hcg_model renamed_model(const hcg_model *m, const char *prefix)
{
    hcg_model r = *m;
    r.types = hcg_types_copy(m->types, m->ntypes);
    char *up = hcg_upper(prefix);
    for (size_t i = 0; i < r.ntypes; i++) {
        hcg_type *t = &r.types[i];
        if (!hcg_composite(&r, (int)i) || t->kind == HCG_UNIT)
            continue;
        /* a skipped field is not on the wire: a caller's copy has none */
        size_t kept = 0;
        for (size_t j = 0; j < t->nfields; j++) {
            if (t->fields[j].skip)
                free(t->fields[j].name);
            else
                t->fields[kept++] = t->fields[j];
        }
        t->nfields = kept;
        hcg_buf c = {0};
        hcg_buf_add(&c, "%s_%s", prefix, t->name ? t->name : t->c);
        free(t->c);
        t->c = hcg_buf_take(&c);
        for (size_t j = 0; j < t->nvariants; j++) {
            hcg_buf v = {0};
            hcg_buf_add(&v, "%s_%s", up, t->variants[j].c);
            free(t->variants[j].c);
            t->variants[j].c = hcg_buf_take(&v);
        }
        for (size_t j = 0; j < t->ncases; j++) {
            hcg_buf v = {0};
            hcg_buf_add(&v, "%s_%s", up, t->cases[j].c);
            free(t->cases[j].c);
            t->cases[j].c = hcg_buf_take(&v);
        }
    }
    free(up);
    return r;
}

static void field_line(hcg_buf *b, const char *ct, const char *name,
                       const char *ind)
{
    hcg_buf_add(b, "%s%s%s%s;\n", ind, ct, ct[strlen(ct) - 1] == '*' ? "" : " ",
                name);
}

/* C definitions of the (renamed) types, each after what it holds by value. */
static void emit_type(hcg_buf *b, const hcg_model *m, int id, char *done)
{
    if (id < 0 || !hcg_composite(m, id) || done[id])
        return;
    done[id] = 1;
    const hcg_type *t = hcg_model_type(m, id);
    hcg_kind k = hcg_type_kind(m, id);
    const char *c = hcg_type_c(m, id);
    if (k == HCG_UNIT)
        return;
    if (k == HCG_ENUM) {
        hcg_buf_add(b, "typedef enum %s {\n", c);
        for (size_t i = 0; i < t->nvariants; i++)
            hcg_buf_add(b, "    %s = %lld,\n", t->variants[i].c,
                        t->variants[i].value);
        hcg_buf_add(b, "} %s;\n\n", c);
        return;
    }
    if (k == HCG_RECORD) {
        /* skipped fields are not on the wire: a caller never sees them */
        size_t nw = 0;
        for (size_t i = 0; i < t->nfields; i++)
            if (!t->fields[i].skip)
                emit_type(b, m, t->fields[i].type, done);
        hcg_buf_add(b, "struct %s {\n", c);
        for (size_t i = 0; i < t->nfields; i++)
            if (!t->fields[i].skip) {
                field_line(b, hcg_wire_c(m, t->fields[i].type),
                           t->fields[i].name, "    ");
                nw++;
            }
        if (nw == 0)
            hcg_buf_add(b, "    uint8_t unused_;\n");
        hcg_buf_add(b, "};\n\n");
        return;
    }
    if (k == HCG_VARIANT) {
        emit_type(b, m, t->tag, done);
        bool data = false;
        for (size_t i = 0; i < t->ncases; i++)
            if (t->cases[i].member) {
                emit_type(b, m, t->cases[i].type, done);
                data = true;
            }
        hcg_buf_add(b, "struct %s {\n", c);
        field_line(b, hcg_type_c(m, t->tag), t->tag_field, "    ");
        if (data) {
            hcg_buf_add(b, "    union {\n");
            for (size_t i = 0; i < t->ncases; i++)
                if (t->cases[i].member)
                    field_line(b, hcg_wire_c(m, t->cases[i].type),
                               t->cases[i].member, "        ");
            hcg_buf_add(b, "    };\n");
        }
        hcg_buf_add(b, "};\n\n");
        return;
    }
    if (k == HCG_ALIAS) {
        emit_type(b, m, t->elem, done);
        const char *tc = hcg_wire_c(m, t->elem);
        hcg_buf_add(b, "typedef %s%s%s;\n\n", tc,
                    tc[strlen(tc) - 1] == '*' ? "" : " ", c);
        return;
    }
    if (k == HCG_LIST) {
        int e = t->elem;
        if (hcg_type_kind(m, e) != HCG_RECORD)
            emit_type(b, m, e, done); /* records are declared ahead */
        hcg_buf_add(b, "typedef struct {\n");
        char ptr[300];
        const char *ec = hcg_wire_c(m, e);
        snprintf(ptr, sizeof ptr, "%s%s*", ec,
                 ec[strlen(ec) - 1] == '*' ? "" : " ");
        field_line(b, ptr, "ptr", "    ");
        hcg_buf_add(b, "    size_t len;\n} %s;\n\n", c);
    } else if (k == HCG_OPTION) {
        emit_type(b, m, t->elem, done);
        hcg_buf_add(b, "typedef struct {\n    bool some;\n");
        field_line(b, hcg_wire_c(m, t->elem), "value", "    ");
        hcg_buf_add(b, "} %s;\n\n", c);
    } else if (k == HCG_RESULT) {
        emit_type(b, m, t->ok, done);
        emit_type(b, m, t->err, done);
        hcg_buf_add(b, "typedef struct {\n    bool ok;\n    union {\n");
        field_line(b, hcg_wire_c(m, t->ok), "value", "        ");
        field_line(b, hcg_wire_c(m, t->err), "error", "        ");
        hcg_buf_add(b, "    };\n} %s;\n\n", c);
    } else if (k == HCG_MAP) {
        emit_type(b, m, t->key, done);
        emit_type(b, m, t->elem, done);
        hcg_buf_add(b, "typedef struct {\n    struct {\n");
        field_line(b, hcg_wire_c(m, t->key), "key", "        ");
        field_line(b, hcg_wire_c(m, t->elem), "value", "        ");
        hcg_buf_add(b, "    } *ptr;\n    size_t len;\n} %s;\n\n", c);
    } else if (k == HCG_TUPLE) {
        for (size_t i = 0; i < t->nitems; i++)
            emit_type(b, m, t->items[i], done);
        hcg_buf_add(b, "typedef struct {\n");
        for (size_t i = 0; i < t->nitems; i++) {
            char f[32];
            snprintf(f, sizeof f, "_%zu", i);
            field_line(b, hcg_wire_c(m, t->items[i]), f, "    ");
        }
        hcg_buf_add(b, "} %s;\n\n", c);
    }
}

/* Whether a decoded value of type id holds nothing in the arena it was
 * decoded in (scalars, enums, unit, and records, tuples, options, results
 * and variants of such), so that a stub may give the reply's memory back
 * once the value is out; strings, bytes, addresses, JSON, lists and maps
 * point into the arena.  -1 (no data) holds nothing. */
static bool value_is_flat(const hcg_model *m, int id, int depth)
{
    if (id < 0)
        return true;
    if (depth > 64)
        return false; /* deeper than any real type: the safe answer */
    id = hcg_unalias(m, id);
    const hcg_type *t = hcg_model_type(m, id);
    if (t == NULL)
        return false;
    switch (t->kind) {
    case HCG_STRING:
    case HCG_BYTES:
    case HCG_ADDRESS:
    case HCG_JSON:
    case HCG_LIST:
    case HCG_MAP:
    case HCG_ALIAS: return false;
    case HCG_RECORD:
        for (size_t i = 0; i < t->nfields; i++)
            if (!t->fields[i].skip &&
                !value_is_flat(m, t->fields[i].type, depth + 1))
                return false;
        return true;
    case HCG_OPTION: return value_is_flat(m, t->elem, depth + 1);
    case HCG_RESULT:
        return value_is_flat(m, t->ok, depth + 1) &&
               value_is_flat(m, t->err, depth + 1);
    case HCG_TUPLE:
        for (size_t i = 0; i < t->nitems; i++)
            if (!value_is_flat(m, t->items[i], depth + 1))
                return false;
        return true;
    case HCG_VARIANT:
        for (size_t i = 0; i < t->ncases; i++)
            if (!value_is_flat(m, t->cases[i].type, depth + 1))
                return false;
        return true;
    default: return true; /* numbers, bool, char, u128/s128, unit, enums */
    }
}

/* A stub's parameter list after the target: scalars and strings by value,
 * composites as const pointers. */
static void stub_params(hcg_buf *b, const hcg_model *m, const hcg_handler *h)
{
    const hcg_param *params = h->params;
    for (size_t k = 1; k < h->nparams; k++) {
        const hcg_param *p = &params[k];
        int w = p->wire;
        const char *ct = hcg_wire_c(m, w);
        const char *n = p->name;
        /* an alias of a scalar or string is passed as what it names */
        int u = hcg_unalias(m, w);
        if (u != w && !hcg_composite(m, u))
            w = u; /* ct stays the alias's name */
        if (hcg_composite(m, w))
            hcg_buf_add(b, ", const %s *%s", ct, n);
        else if (hcg_type_kind(m, w) == HCG_STRING)
            hcg_buf_add(b, ", const char *%s", n);
        else if (hcg_type_kind(m, w) == HCG_BYTES ||
                 hcg_type_kind(m, w) == HCG_ADDRESS)
            hcg_buf_add(b, ", const %s *%s", ct, n);
        else
            hcg_buf_add(b, ", %s %s", ct, n);
    }
}

static const hcg_hkind stub_kinds[] = {HCG_H_LOCAL, HCG_H_REMOTE};

/* The header of the caller stubs: the callee's types under its prefix, a
 * result type per request handler, and <prefix>_<fn>_<local|remote>_rpc
 * (with short aliases <fn>_<kind>_rpc). */
char *hcg_callers_h(const hcg_model *model)
{
    char *prefix = callers_prefix(model);
    hcg_model r = renamed_model(model, prefix);
    const hcg_model *m = &r;
    const char *file = m->file;
    const char *base = strrchr(file, '/');
    char *up = hcg_upper(prefix);
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
    size_t n = m->ntypes;
    /* records first declared, so lists may point at them */
    for (size_t i = 0; i < n; i++)
        if (hcg_type_kind(m, (int)i) == HCG_RECORD ||
            hcg_type_kind(m, (int)i) == HCG_VARIANT)
            hcg_buf_add(&b, "typedef struct %s %s;\n", hcg_type_c(m, (int)i),
                        hcg_type_c(m, (int)i));
    hcg_buf_add(&b, "\n");
    char *done = calloc(n + 1, 1);
    if (done == NULL)
        abort();
    /* the types the request handlers reach, in order of first use */
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const hcg_param *params = h->params;
        for (size_t k = 1; k < h->nparams; k++)
            emit_type(&b, m, params[k].wire, done);
        emit_type(&b, m, h->returns_wire, done);
    }
    /* then the rest (the stubs' source has codecs for every type) */
    for (size_t k = 0; k < n; k++)
        emit_type(&b, m, (int)k, done);
    free(done);
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *name = h->name;
        hcg_buf_add(&b, "/* %s: the result of %s, or why there is none. */\n",
                    h->variant, name);
        hcg_buf_add(&b,
                    "typedef struct %s_%s_result {\n    hp_rpc_error err;\n",
                    prefix, name);
        field_line(&b, hcg_wire_c(m, h->returns_wire), "value", "    ");
        hcg_buf_add(&b, "} %s_%s_result;\n\n", prefix, name);
        for (int s = 0; s < 2; s++) {
            if (!hcg_handler_has(h, stub_kinds[s]))
                continue;
            hcg_buf_add(&b,
                        "/* %s on `hpg_target` (a %s process) with the "
                        "default timeout (30 s);\n * _opt takes options.  "
                        "The calling task waits; the process serves other\n"
                        " * messages meanwhile.  From a task only. */\n",
                        h->variant, prefix);
            hcg_buf_add(
                &b, "%s_%s_result %s_%s_%s_rpc(const hw_address *hpg_target",
                prefix, name, prefix, name, hcg_hkind_name(stub_kinds[s]));
            stub_params(&b, m, h);
            hcg_buf_add(&b, ");\n");
            hcg_buf_add(&b,
                        "%s_%s_result %s_%s_%s_rpc_opt(const hw_address "
                        "*hpg_target",
                        prefix, name, prefix, name,
                        hcg_hkind_name(stub_kinds[s]));
            stub_params(&b, m, h);
            hcg_buf_add(&b, ", const hp_rpc_opts *hpg_opts);\n\n");
        }
    }
    hcg_buf_add(&b, "#ifndef HYPERC_NO_SHORT_RPC_NAMES\n");
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        for (int s = 0; s < 2; s++)
            if (hcg_handler_has(h, stub_kinds[s]))
                hcg_buf_add(&b,
                            "#define %s_%s_rpc %s_%s_%s_rpc\n"
                            "#define %s_%s_rpc_opt %s_%s_%s_rpc_opt\n",
                            h->name, hcg_hkind_name(stub_kinds[s]), prefix,
                            h->name, hcg_hkind_name(stub_kinds[s]), h->name,
                            hcg_hkind_name(stub_kinds[s]), prefix, h->name,
                            hcg_hkind_name(stub_kinds[s]));
    }
    hcg_buf_add(&b, "#endif\n\n#endif\n");
    free(up);
    free(prefix);
    hcg_types_free(r.types, r.ntypes);
    return b.s;
}

/* The stubs' source: the codecs of the renamed types, the Request and
 * Response unions, and one function per (handler, kind). */
char *hcg_callers_c(const hcg_model *model, const char *header)
{
    char *prefix = callers_prefix(model);
    hcg_model r = renamed_model(model, prefix);
    r.state = NULL; /* no process descriptor here */
    const hcg_model *m = &r;
    hcg_buf b = {0};
    char *codecs = hcg_codecs(m);
    /* the notice line, then the header, then the codecs */
    const char *rest = strchr(codecs, '\n');
    hcg_buf_add(&b, "%.*s\n#include \"%s\"\n\n", (int)(rest - codecs), codecs,
                header);
    hcg_buf_add(&b, "%s\n", rest + 1);
    free(codecs);
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        const char *name = h->name;
        char *u = hcg_upper(name);
        const hcg_param *params = h->params;
        for (int s = 0; s < 2; s++) {
            if (!hcg_handler_has(h, stub_kinds[s]))
                continue;
            hcg_buf_add(&b,
                        "%s_%s_result %s_%s_%s_rpc_opt(const hw_address "
                        "*hpg_target",
                        prefix, name, prefix, name,
                        hcg_hkind_name(stub_kinds[s]));
            stub_params(&b, m, h);
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
            for (size_t k = 1; k < h->nparams; k++) {
                const hcg_param *p = &params[k];
                int w = p->wire;
                const char *pn = p->name;
                if (!hcg_composite(m, hcg_unalias(m, w)))
                    w = hcg_unalias(m, w); /* passed as what it names */
                hcg_kind kd = hcg_type_kind(m, w);
                if (hcg_composite(m, w) || kd == HCG_BYTES || kd == HCG_ADDRESS)
                    hcg_buf_add(&b, "    hpg_q.%s.%s = *%s;\n", name, pn, pn);
                else if (kd == HCG_STRING)
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
                h->variant);
            hcg_buf_add(&b, "    hp_arena *hpg_a;\n    const hp_jv *hpg_j;\n");
            /* A value holding nothing in the arena: the reply's tree is
             * given back once decoded, so a task calling in a loop does not
             * grow its arena by a reply each time. */
            bool flat =
                !h->has_returns_wire || value_is_flat(m, h->returns_wire, 0);
            if (flat)
                hcg_buf_add(&b, "    hp_arena *hpg_ma = hp_message_arena();\n"
                                "    hp_arena_mark hpg_m = {0};\n"
                                "    if (hpg_ma != NULL)\n"
                                "        hpg_m = hp_arena_save(hpg_ma);\n");
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
            if (flat)
                hcg_buf_add(&b, "    if (hpg_ma != NULL)\n"
                                "        hp_arena_restore(hpg_ma, hpg_m);\n");
            hcg_buf_add(&b,
                        "    hpg_r.value = hpg_p.%s;\n    return hpg_r;\n}\n\n",
                        name);
            hcg_buf_add(
                &b, "%s_%s_result %s_%s_%s_rpc(const hw_address *hpg_target",
                prefix, name, prefix, name, hcg_hkind_name(stub_kinds[s]));
            stub_params(&b, m, h);
            hcg_buf_add(&b, ")\n{\n    return %s_%s_%s_rpc_opt(hpg_target",
                        prefix, name, hcg_hkind_name(stub_kinds[s]));
            for (size_t k = 1; k < h->nparams; k++)
                hcg_buf_add(&b, ", %s", params[k].name);
            hcg_buf_add(&b, ", NULL);\n}\n\n");
        }
        free(u);
    }
    free(prefix);
    hcg_types_free(r.types, r.ntypes);
    return b.s;
}

/* The stubs' file names: <prefix>_caller_utils.{h,c} (caller frees). */
char *hcg_callers_basename(const hcg_model *m)
{
    char *p = callers_prefix(m);
    hcg_buf b = {0};
    hcg_buf_add(&b, "%s_caller_utils", p);
    free(p);
    return b.s;
}
