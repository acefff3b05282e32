/* Internal to hyperc gen: diagnostics, the model the front end builds
 * (C structs, written as JSON only for `hyperc gen --model`) and the
 * writers that read it.  Prefix hcg_.  Every char * a function returns is
 * malloc'd and the caller's to free; arguments are borrowed (read during
 * the call, never kept). */
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

/* Append printf-formatted text; aborts when out of memory.  A zeroed
 * hcg_buf is empty; b->s is the caller's (free it, or take it). */
void hcg_buf_add(hcg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The text (never NULL; "" when nothing was added); the caller frees it.
 * b is left as it was (its s is the text returned). */
char *hcg_buf_take(hcg_buf *b);
/* The whole text file at path (NUL-terminated; malloc'd, the caller
 * frees it), or NULL when it cannot be read. */
char *hcg_read_file(const char *path);

/* One diagnostic; its strings are owned by the hcg_diags holding it. */
typedef struct hcg_diag {
    char *file;
    unsigned line, col;
    bool error; /* else a warning */
    char *text;
} hcg_diag;

/* The diagnostics of a run; a zeroed hcg_diags is empty, hcg_diags_fini
 * releases it. */
typedef struct hcg_diags {
    hcg_diag *v;
    size_t len, cap;
    size_t errors;
} hcg_diags;

/* Add a diagnostic (file and the formatted text copied); aborts when out
 * of memory. */
void hcg_diag_add(hcg_diags *d, const char *file, unsigned line, unsigned col,
                  bool error, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Sort by (file, line, col, text) and print as `file:line:col: error: ...`,
 * then "N errors generated." when there were errors. */
void hcg_diags_print(hcg_diags *d, FILE *out);
/* Release what d holds and leave it empty (zeroed). */
void hcg_diags_fini(hcg_diags *d);

/* ------------------------------------------------------------ the model
 *
 * What the front end read from a hyperprocess source, as the writers read
 * it.  One hcg_model owns every string and array reachable from it (all
 * malloc'd); hcg_model_free releases the lot.  Types are referred to by
 * their index in the model's type table, -1 where the front end reported
 * an error instead of a type. */

/* The supported types, docs/gen-design.md §2: kind and its name in the
 * model's JSON (and in WIT for scalars).  The order is the enum's, which
 * hcg_composite relies on: HCG_UNIT and what follows are composite. */
#define HCG_KIND_MAP(XX)                                                       \
    XX(BOOL, "bool")                                                           \
    XX(S8, "s8")                                                               \
    XX(S16, "s16")                                                             \
    XX(S32, "s32")                                                             \
    XX(S64, "s64")                                                             \
    XX(U8, "u8")                                                               \
    XX(U16, "u16")                                                             \
    XX(U32, "u32")                                                             \
    XX(U64, "u64")                                                             \
    XX(F32, "f32")                                                             \
    XX(F64, "f64")                                                             \
    XX(STRING, "string")                                                       \
    XX(BYTES, "bytes")     /* hw_bytes */                                      \
    XX(ADDRESS, "address") /* hw_address */                                    \
    XX(CHAR, "char")       /* hp_char */                                       \
    XX(U128, "u128")       /* hp_u128 */                                       \
    XX(S128, "s128")       /* hp_i128 */                                       \
    XX(JSON, "json")       /* hp_json: serde_json::Value */                    \
    XX(UNIT, "unit")       /* HP_UNIT */                                       \
    XX(RECORD, "record")   /* a struct */                                      \
    XX(ENUM, "enum")                                                           \
    XX(LIST, "list")       /* HP_LIST */                                       \
    XX(OPTION, "option")   /* HP_OPTION */                                     \
    XX(RESULT, "result")   /* HP_RESULT */                                     \
    XX(MAP, "map")         /* HP_MAP, HP_MAP_KV */                             \
    XX(TUPLE, "tuple")     /* HP_TUPLE */                                      \
    XX(VARIANT, "variant") /* an HP_VARIANT struct */                          \
    XX(ALIAS, "alias")     /* an HP_ALIAS typedef */

typedef enum hcg_kind {
#define HCG_KIND_ENUM(name, text) HCG_##name,
    HCG_KIND_MAP(HCG_KIND_ENUM)
#undef HCG_KIND_ENUM
} hcg_kind;

/* The kind's name in the model's JSON and in WIT for scalars ("bool",
 * "s8".."u64", "f32", "f64", "string", "bytes", "address", "char", "u128",
 * "s128", "json", "unit", "record", "enum", "list", "option", "result",
 * "map", "tuple", "variant", "alias"); static. */
const char *hcg_kind_name(hcg_kind k);
/* HCG_S8..HCG_S64 and HCG_U8..HCG_U64. */
bool hcg_kind_signed(hcg_kind k);
bool hcg_kind_unsigned(hcg_kind k);
/* The width of an integer kind (8..64), of a float kind (32, 64); else 0. */
int hcg_kind_bits(hcg_kind k);

typedef struct hcg_field {
    char *name;
    int type;  /* -1 when skip */
    bool skip; /* HP_SKIP: neither written nor read (#[serde(skip)]) */
} hcg_field;

/* A case of an HP_VARIANT: its enumerator, and the union member carrying
 * its data (NULL and -1 for a case without data). */
typedef struct hcg_case {
    char *c;    /* the C enumerator */
    char *wire; /* the name on the wire */
    char *member;
    int type;
} hcg_case;

typedef struct hcg_enumerator {
    char *c;    /* the C enumerator */
    char *wire; /* the name on the wire (serde's variant name) */
    long long value;
    bool named; /* wire given by HP_NAME */
} hcg_enumerator;

/* A node of the type table; which members hold something depends on kind. */
typedef struct hcg_type {
    hcg_kind kind;
    char *c;    /* the canonical C spelling ("struct point", "int32_t") */
    char *name; /* records and enums: the typedef (else tag) name; else NULL */
    hcg_field *fields; /* record */
    size_t nfields;
    hcg_enumerator *variants; /* enum */
    size_t nvariants;
    int elem;        /* list, option: the element; map: the value; alias: the
                        type it names */
    int key;         /* map: the key type (string or an integer) */
    int tag;         /* variant: the tag's enum node */
    char *tag_field; /* variant: the tag member's name */
    hcg_case *cases; /* variant */
    size_t ncases;
    int ok;     /* result */
    int err;    /* result */
    int *items; /* tuple */
    size_t nitems;
} hcg_type;

/* The binding configuration of an endpoint or of the UI, Rust's
 * HttpBindingConfig / WsBindingConfig (default: authenticated only). */
typedef struct hcg_binding {
    bool authenticated;
    bool local_only; /* http */
    bool secure_subdomain;
    char *static_content; /* http; NULL: none */
    bool extension;       /* ws */
} hcg_binding;

typedef struct hcg_endpoint {
    bool http; /* else ws */
    char *path;
    hcg_binding config;
} hcg_endpoint;

/* HYPERPROCESS(...)'s parameters, as far as they were valid. */
typedef struct hcg_params {
    bool designated; /* written .key = value; when false nothing below was
                        read (and the JSON form is {}) */
    char *name, *icon, *widget, *ui_path, *wit_world; /* NULL: not given */
    bool has_ui;
    hcg_binding ui;        /* when has_ui (an http binding) */
    const char *save_kind; /* "Never", "EveryMessage", "EveryNMessage",
                              "EveryNSeconds", "OnDiff" (static); NULL */
    long long save_n;      /* EveryNMessage, EveryNSeconds; else 0 */
    long long state_version;
    char *migrate; /* the migration function; NULL: none */
    bool manual_logging;
    hcg_endpoint *endpoints;
    size_t nendpoints;
} hcg_params;

/* Handler kinds, from the markers. */
/* Handler kinds and their names (the markers' "hyperc:<name>"). */
#define HCG_HKIND_MAP(XX)                                                      \
    XX(INIT, "init")                                                           \
    XX(HTTP, "http")                                                           \
    XX(LOCAL, "local")                                                         \
    XX(REMOTE, "remote")                                                       \
    XX(WS, "ws")                                                               \
    XX(WS_CLIENT, "ws_client")

typedef enum hcg_hkind {
#define HCG_HKIND_ENUM(name, text) HCG_H_##name,
    HCG_HKIND_MAP(HCG_HKIND_ENUM)
#undef HCG_HKIND_ENUM
} hcg_hkind;

/* "init", "http", "local", "remote", "ws", "ws_client"; static. */
const char *hcg_hkind_name(hcg_hkind k);

typedef struct hcg_param {
    char *name;
    char *type;    /* the C spelling as written */
    bool has_wire; /* request handlers' parameters after the state */
    int wire;      /* the type carried (T for const T *); else -1 */
} hcg_param;

typedef struct hcg_handler {
    char *name;         /* the logical name (HP_NAME, else the function's) */
    char *c_name;       /* the C function */
    char *variant;      /* CamelCase of name */
    hcg_hkind kinds[6]; /* in the order first marked */
    size_t nkinds;
    char *returns;     /* the C spelling of the result type */
    hcg_param *params; /* the state first */
    size_t nparams;
    char *method, *path; /* http; NULL: not given */
    unsigned line, col;
    bool has_returns_wire; /* request handlers not returning void */
    int returns_wire;      /* the type returned; else -1 */
    bool variadic, prototype_only;
} hcg_handler;

typedef struct hcg_model {
    char *file;          /* the path read */
    char *state;         /* the state type's C spelling; NULL: no HP_STATE */
    bool has_state_wire; /* the state is a struct */
    int state_wire;      /* its type */
    bool has_process;    /* a HYPERPROCESS(...) was found */
    hcg_params process;
    hcg_handler *handlers; /* in source order */
    size_t nhandlers;
    hcg_type *types;
    size_t ntypes;
    char **inputs; /* every file read (the source and its headers) */
    size_t ninputs;
} hcg_model;

/* id with its aliases followed to the type they name. */
int hcg_unalias(const hcg_model *m, int id);

/* Whether h has kind k. */
bool hcg_handler_has(const hcg_handler *h, hcg_hkind k);
/* An http, local or remote handler: a variant of the Request union. */
bool hcg_handler_is_request(const hcg_handler *h);
/* The type of index id, or NULL when id is out of the table (-1). */
const hcg_type *hcg_model_type(const hcg_model *m, int id);

/* Read `path` with libclang (args: extra compiler flags such as -I) and
 * build the model.  Every rule violation is added to *d; the model is
 * returned even with errors (NULL only if the file could not be parsed at
 * all).  The caller frees it with hcg_model_free. */
hcg_model *hcg_frontend(const char *path, const char *const *args, int nargs,
                        hcg_diags *d);
/* Release m and everything it owns; NULL is ignored. */
void hcg_model_free(hcg_model *m);
/* The model as JSON (`hyperc gen --model`, printed with sorted keys):
 *   {"file", "state", "state_wire", "process": {name, icon, widget, ui,
 *    ui_path, endpoints: [{kind, path, config}], save_config: {kind, n},
 *    state_version, migrate, manual_logging, wit_world},
 *    "handlers": [{name, c_name, variant, kinds: [...], method, path,
 *    params: [{name, type, wire}], returns, returns_wire, line, col,
 *    variadic, prototype_only}],
 *    "types": [{kind, c, name, fields: [{name, type}],
 *    variants: [{c, wire, value}], elem | value (map) | ok, err | items}],
 *    "inputs": [...]}
 * with absent members left out.  A new reference (json_decref). */
json_t *hcg_model_json(const hcg_model *m);
/* Deep copies of n types into a new array, and their release (the array
 * too); for writers that rename types (callers.c). */
hcg_type *hcg_types_copy(const hcg_type *t, size_t n);
void hcg_types_free(hcg_type *t, size_t n);

/* CamelCase variant of a snake_case name ("get_count" -> "GetCount"); the
 * caller frees it. */
char *hcg_variant_name(const char *name);
/* kebab-case WIT name ("get_count" -> "get-count"); the caller frees it. */
char *hcg_wit_name(const char *name);

/* WIT as kit writes it (wit.c).  The interface's kebab name (from the state
 * type), the interface file's text, and a world file's text (no final
 * newline, as kit).  Callers free the strings. */
char *hcg_wit_interface_name(const hcg_model *model);
char *hcg_wit_interface(const hcg_model *model);
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
 * message (a type name kit refuses).  Without kit_exact, a GET or HEAD
 * function also sends its parameters in the query string (kit's loses
 * them), which is the one difference from kit's text. */
typedef struct hcg_wit_file {
    const char *stem;
    const char *text;
} hcg_wit_file;
char *hcg_ts_from_wit(const hcg_wit_file *files, size_t n, bool kit_exact,
                      char **err);
/* The same for the processes of one package, from their models (their
 * interface files as wit.c writes them), in package order; the models are
 * only read. */
char *hcg_ts(const hcg_model *const *models, size_t n, bool kit_exact,
             char **err);

/* The generated C writers read the model and return the text (the caller
 * frees it); they are meant for a model without errors.
 *
 * `hyperc gen --codecs` (process.c): the JSON codecs of every composite
 * type in the model (codec.c): static hpg_enc_<type>(hp_jw *, const T *)
 * and hpg_dec_<type>(hp_arena *, const hp_jv *, T *, const char **err),
 * <type> being the C spelling with non-identifier characters as '_', and
 * deep copies; then the Request/Response unions with their codecs; and,
 * when the model has a state, the call functions, the variant table and
 * the process descriptor hpg_impl. */
char *hcg_codecs(const hcg_model *model);
/* A whole process (process.c): #include of the source (source_path, as
 * written), hcg_codecs' code and hw_init. */
char *hcg_process(const hcg_model *model, const char *source_path);
/* Caller stubs for the model's request handlers (callers.c): the header and
 * source of <iface>_caller_utils, whose types carry the interface's prefix
 * so that callers' own names never clash; `header` is the name the source
 * includes.  hcg_callers_basename gives "<iface>_caller_utils". */
char *hcg_callers_h(const hcg_model *model);
char *hcg_callers_c(const hcg_model *model, const char *header);
char *hcg_callers_basename(const hcg_model *model);
/* A libFuzzer harness over every generated decoder of the model (fuzz.c):
 * the process's code without hw_init, and LLVMFuzzerTestOneInput. */
char *hcg_fuzz(const hcg_model *model, const char *source_path);

#endif
