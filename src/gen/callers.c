/* Caller stubs (hyperc gen --callers): <iface>_caller_utils.h and .c, the
 * callee's types under its prefix and one typed function per request
 * handler and kind (local, remote). */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

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
    char *up = hcg_upper(prefix);
    size_t i;
    json_t *t;
    json_array_foreach(types, i, t)
    {
        const char *k = hcg_type_kind(types, (int)i);
        if (!hcg_composite(types, (int)i) || strcmp(k, "unit") == 0)
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
    if (id < 0 || !hcg_composite(types, id) || done[id])
        return;
    done[id] = 1;
    json_t *t = hcg_type_node(types, id);
    const char *k = hcg_type_kind(types, id);
    const char *c = hcg_type_c(types, id);
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
            emit_type(b, types, hcg_ival(f, "type"), done);
        hcg_buf_add(b, "struct %s {\n", c);
        json_array_foreach(json_object_get(t, "fields"), i, f)
            field_line(b, hcg_wire_c(types, hcg_ival(f, "type")),
                       json_string_value(json_object_get(f, "name")), "    ");
        if (json_array_size(json_object_get(t, "fields")) == 0)
            hcg_buf_add(b, "    uint8_t unused_;\n");
        hcg_buf_add(b, "};\n\n");
        return;
    }
    if (strcmp(k, "list") == 0) {
        int e = hcg_ival(t, "elem");
        if (strcmp(hcg_type_kind(types, e), "record") != 0)
            emit_type(b, types, e, done); /* records are declared ahead */
        hcg_buf_add(b, "typedef struct {\n");
        char ptr[300];
        const char *ec = hcg_wire_c(types, e);
        snprintf(ptr, sizeof ptr, "%s%s*", ec,
                 ec[strlen(ec) - 1] == '*' ? "" : " ");
        field_line(b, ptr, "ptr", "    ");
        hcg_buf_add(b, "    size_t len;\n} %s;\n\n", c);
    } else if (strcmp(k, "option") == 0) {
        emit_type(b, types, hcg_ival(t, "elem"), done);
        hcg_buf_add(b, "typedef struct {\n    bool some;\n");
        field_line(b, hcg_wire_c(types, hcg_ival(t, "elem")), "value", "    ");
        hcg_buf_add(b, "} %s;\n\n", c);
    } else if (strcmp(k, "result") == 0) {
        emit_type(b, types, hcg_ival(t, "ok"), done);
        emit_type(b, types, hcg_ival(t, "err"), done);
        hcg_buf_add(b, "typedef struct {\n    bool ok;\n    union {\n");
        field_line(b, hcg_wire_c(types, hcg_ival(t, "ok")), "value",
                   "        ");
        field_line(b, hcg_wire_c(types, hcg_ival(t, "err")), "error",
                   "        ");
        hcg_buf_add(b, "    };\n} %s;\n\n", c);
    } else if (strcmp(k, "map") == 0) {
        emit_type(b, types, hcg_ival(t, "value"), done);
        hcg_buf_add(b, "typedef struct {\n    struct {\n        char *key;\n");
        field_line(b, hcg_wire_c(types, hcg_ival(t, "value")), "value",
                   "        ");
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
            field_line(b, hcg_wire_c(types, (int)json_integer_value(it)), f,
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
        int w = hcg_wire_of(p, "wire");
        const char *ct = hcg_wire_c(types, w);
        const char *n = hcg_hstr(p, "name");
        if (hcg_composite(types, w))
            hcg_buf_add(b, ", const %s *%s", ct, n);
        else if (strcmp(hcg_type_kind(types, w), "string") == 0)
            hcg_buf_add(b, ", const char *%s", n);
        else if (strcmp(hcg_type_kind(types, w), "bytes") == 0 ||
                 strcmp(hcg_type_kind(types, w), "address") == 0)
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
    size_t n = json_array_size(types);
    /* records first declared, so lists may point at them */
    for (size_t i = 0; i < n; i++)
        if (strcmp(hcg_type_kind(types, (int)i), "record") == 0)
            hcg_buf_add(&b, "typedef struct %s %s;\n",
                        hcg_type_c(types, (int)i), hcg_type_c(types, (int)i));
    hcg_buf_add(&b, "\n");
    char *done = calloc(n + 1, 1);
    if (done == NULL)
        abort();
    size_t i;
    json_t *h;
    /* the types the request handlers reach, in order of first use */
    json_array_foreach(handlers, i, h)
    {
        if (!hcg_is_request(h))
            continue;
        json_t *params = json_object_get(h, "params");
        for (size_t k = 1; k < json_array_size(params); k++)
            emit_type(&b, types, hcg_wire_of(json_array_get(params, k), "wire"),
                      done);
        emit_type(&b, types, hcg_wire_of(h, "returns_wire"), done);
    }
    /* then the rest (the stubs' source has codecs for every type) */
    for (size_t k = 0; k < n; k++)
        emit_type(&b, types, (int)k, done);
    free(done);
    json_array_foreach(handlers, i, h)
    {
        if (!hcg_is_request(h))
            continue;
        const char *name = hcg_hstr(h, "name");
        hcg_buf_add(&b, "/* %s: the result of %s, or why there is none. */\n",
                    hcg_hstr(h, "variant"), name);
        hcg_buf_add(&b,
                    "typedef struct %s_%s_result {\n    hp_rpc_error err;\n",
                    prefix, name);
        field_line(&b, hcg_wire_c(types, hcg_wire_of(h, "returns_wire")),
                   "value", "    ");
        hcg_buf_add(&b, "} %s_%s_result;\n\n", prefix, name);
        for (int s = 0; s < 2; s++) {
            if (!hcg_has_kind(h, stub_kinds[s]))
                continue;
            hcg_buf_add(&b,
                        "/* %s on `hpg_target` (a %s process) with the "
                        "default timeout (30 s);\n * _opt takes options.  "
                        "The calling task waits; the process serves other\n"
                        " * messages meanwhile.  From a task only. */\n",
                        hcg_hstr(h, "variant"), prefix);
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
        if (!hcg_is_request(h))
            continue;
        for (int s = 0; s < 2; s++)
            if (hcg_has_kind(h, stub_kinds[s]))
                hcg_buf_add(&b,
                            "#define %s_%s_rpc %s_%s_%s_rpc\n"
                            "#define %s_%s_rpc_opt %s_%s_%s_rpc_opt\n",
                            hcg_hstr(h, "name"), stub_kinds[s], prefix,
                            hcg_hstr(h, "name"), stub_kinds[s],
                            hcg_hstr(h, "name"), stub_kinds[s], prefix,
                            hcg_hstr(h, "name"), stub_kinds[s]);
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
        if (!hcg_is_request(h))
            continue;
        const char *name = hcg_hstr(h, "name");
        char *u = hcg_upper(name);
        json_t *params = json_object_get(h, "params");
        for (int s = 0; s < 2; s++) {
            if (!hcg_has_kind(h, stub_kinds[s]))
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
                int w = hcg_wire_of(p, "wire");
                const char *pn = hcg_hstr(p, "name");
                const char *kd = hcg_type_kind(types, w);
                if (hcg_composite(types, w) || strcmp(kd, "bytes") == 0 ||
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
                hcg_hstr(h, "variant"));
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
                            hcg_hstr(json_array_get(params, k), "name"));
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
