/* Internal to hyperc gen: the front end's model and diagnostics.  Prefix
 * hcg_.  The model is a JSON value (jansson) so that every later stage and
 * the tests (`hyperc gen --model`) read the same thing. */
#ifndef HYPERC_GEN_H
#define HYPERC_GEN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A growing NUL-terminated string for the writers (buf.c). */
typedef struct hcg_buf {
    char *s;
    size_t len, cap;
} hcg_buf;

/* Append printf-formatted text; aborts when out of memory. */
void hcg_buf_add(hcg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text (never NULL; "" when nothing was added); the caller frees it. */
char *hcg_buf_take(hcg_buf *b);

typedef struct hcg_diag {
    char *file;
    unsigned line, col;
    bool error; /* else a warning */
    char *text;
} hcg_diag;

typedef struct hcg_diags {
    hcg_diag *v;
    size_t len, cap;
    size_t errors;
} hcg_diags;

void hcg_diag_add(hcg_diags *d, const char *file, unsigned line, unsigned col,
                  bool error, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Sort by (file, line, col, text) and print as `file:line:col: error: ...`,
 * then "N errors generated." when there were errors. */
void hcg_diags_print(hcg_diags *d, FILE *out);
void hcg_diags_fini(hcg_diags *d);

/* Read `path` with libclang (args: extra compiler flags such as -I) and
 * build the model:
 *   {"file", "state": "<type>", "process": {name, icon, widget, ui, ui_path,
 *    endpoints: [{kind, path, config}], save_config: {kind, n}, wit_world},
 *    "handlers": [{name, c_name, variant, kinds: [...], method, path,
 *    params: [{name, type}], returns, line, col}]}
 * Every rule violation is added to *d; the model is returned even with
 * errors (NULL only if the file could not be parsed at all). */
json_t *hcg_frontend(const char *path, const char *const *args, int nargs,
                     hcg_diags *d);

/* CamelCase variant of a snake_case name ("get_count" -> "GetCount"). */
char *hcg_variant_name(const char *name);
/* kebab-case WIT name ("get_count" -> "get-count"). */
char *hcg_wit_name(const char *name);

/* WIT as kit writes it (wit.c).  The interface's kebab name (from the state
 * type), the interface file's text, and a world file's text (no final
 * newline, as kit).  Callers free the strings. */
char *hcg_wit_interface_name(json_t *model);
char *hcg_wit_interface(json_t *model);
char *hcg_wit_world(const char *world, const char *iface, bool types_world);
/* A world file that exists already, rewritten as kit rewrites it: its
 * imports kept and ours appended, its includes kept (sorted). */
char *hcg_wit_world_merge(const char *existing, const char *world,
                          const char *iface, bool types_world);

/* The TypeScript client as kit writes target/ui/caller-utils.ts (ts.c).
 * kit derives it from the WIT files of the package's api directory, so the
 * writer reads WIT text: pass every .wit file of api/ (stem = its name
 * without ".wit"); world files are recognised and skipped as kit does.
 * Interfaces with the same namespace name are merged, namespaces follow
 * the files' order.  Returns the text, or NULL when kit writes no file:
 * *err NULL when no interface has an http handler, else a malloc'd
 * message (a type name kit refuses). */
typedef struct hcg_wit_file {
    const char *stem;
    const char *text;
} hcg_wit_file;
char *hcg_ts_from_wit(const hcg_wit_file *files, size_t n, char **err);
/* The same for the processes of one package, from their models (their
 * interface files as wit.c writes them), in package order. */
char *hcg_ts(json_t *const *models, size_t n, char **err);

/* C source of the JSON codecs of every composite type in the model
 * (codec.c): static hpg_enc_<type>(hp_jw *, const T *) and
 * hpg_dec_<type>(hp_arena *, const hp_jv *, T *, const char **err), <type>
 * being the C spelling with non-identifier characters as '_'. */
char *hcg_codecs(json_t *model);
/* A whole process: #include of the source, codecs, dispatcher and
 * hw_init (codec.c). */
char *hcg_process(json_t *model, const char *source_path);
/* Caller stubs for the model's request handlers (codec.c): the header and
 * source of <iface>_caller_utils, whose types carry the interface's prefix
 * so that callers' own names never clash; `header` is the name the source
 * includes.  hcg_callers_basename gives "<iface>_caller_utils". */
char *hcg_callers_h(json_t *model);
char *hcg_callers_c(json_t *model, const char *header);
char *hcg_callers_basename(json_t *model);
/* A libFuzzer harness over every generated decoder of the model (codec.c):
 * the process's code without hw_init, and LLVMFuzzerTestOneInput. */
char *hcg_fuzz(json_t *model, const char *source_path);

#endif
