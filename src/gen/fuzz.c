/* The libFuzzer harness (hyperc gen --fuzz) over every generated decoder
 * of a process. */
#include "emit.h"

#include <stdlib.h>
#include <string.h>

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
char *hcg_fuzz(const hcg_model *m, const char *source_path)
{
    hcg_buf b = {0};
    char *proc = hcg_process(m, source_path);
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
    size_t n = m->ntypes, ncase = 0;
    hcg_buf cases = {0};
    char dec[300], enc[300], tag[200];
    for (size_t i = 0; i < n; i++) {
        if (!hcg_composite(m, (int)i))
            continue;
        char *f = hcg_fname(m, (int)i);
        snprintf(dec, sizeof dec, "hpg_dec_%s(a, %%s, &%%s, &err)", f);
        snprintf(enc, sizeof enc, "hpg_enc_%s(%%s, &%%s)", f);
        gen_fixpoint(&b, f, hcg_type_c(m, (int)i), dec, enc);
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
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        char *u = hcg_upper(h->name);
        snprintf(tag, sizeof tag, "response_%s", h->name);
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
