/* hyperc gen front end: reads a hyperprocess source with libclang and builds
 * the model (hcg_model, gen.h: HYPERPROCESS parameters, handlers, types),
 * reporting every rule violation in one run in compiler style. */
#include "gen.h"

#include <clang-c/Index.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ diagnostics */

void hcg_diag_add(hcg_diags *d, const char *file, unsigned line, unsigned col,
                  bool error, const char *fmt, ...)
{
    if (d->len == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        hcg_diag *nv = realloc(d->v, d->cap * sizeof *nv);
        if (nv == NULL)
            abort();
        d->v = nv;
    }
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcg_diag *g = &d->v[d->len++];
    g->file = strdup(file ? file : "");
    g->line = line;
    g->col = col;
    g->error = error;
    g->text = strdup(buf);
    if (g->file == NULL || g->text == NULL)
        abort();
    if (error)
        d->errors++;
}

static int diag_cmp(const void *a, const void *b)
{
    const hcg_diag *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return strcmp(x->text, y->text);
}

void hcg_diags_print(hcg_diags *d, FILE *out)
{
    if (d->len > 1)
        qsort(d->v, d->len, sizeof *d->v, diag_cmp);
    for (size_t i = 0; i < d->len; i++) {
        const hcg_diag *g = &d->v[i];
        fprintf(out, "%s:%u:%u: %s: %s\n", g->file, g->line, g->col,
                g->error ? "error" : "warning", g->text);
    }
    if (d->errors)
        fprintf(out, "%zu error%s generated.\n", d->errors,
                d->errors == 1 ? "" : "s");
}

void hcg_diags_fini(hcg_diags *d)
{
    for (size_t i = 0; i < d->len; i++) {
        free(d->v[i].file);
        free(d->v[i].text);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ names */

char *hcg_variant_name(const char *name)
{
    size_t n = strlen(name);
    char *out = malloc(n + 1);
    if (out == NULL)
        abort();
    size_t o = 0;
    bool up = true;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '_') {
            up = true;
            continue;
        }
        out[o++] = up ? (char)toupper((unsigned char)name[i]) : name[i];
        up = false;
    }
    out[o] = 0;
    return out;
}

char *hcg_wit_name(const char *name)
{
    /* kit's to_kebab_case: a name with '_' has each '_' turned into '-' and
     * is otherwise kept; a name without gets '-' before each upper-case
     * letter but the first, lower-cased.  Names that do not come out as WIT
     * identifiers are reported by the caller. */
    size_t n = strlen(name);
    char *out = malloc(2 * n + 1);
    if (out == NULL)
        abort();
    size_t o = 0;
    bool underscores = strchr(name, '_') != NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (underscores) {
            out[o++] = c == '_' ? '-' : (char)c;
        } else if (isupper(c)) {
            if (i > 0)
                out[o++] = '-';
            out[o++] = (char)tolower(c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
    return out;
}

/* -------------------------------------------------------------- libclang */

typedef struct fe {
    CXTranslationUnit tu;
    CXFile main;
    const char *path;
    hcg_diags *d;
    hcg_model *model; /* being built; the caller's when returned */
    size_t handlers_cap, types_cap;
    CXCursor process_cur;
    bool have_process;
    unsigned proc_line, proc_col;
    json_t *busy;   /* types being resolved (recursion check) */
    json_t *funcs;  /* unmarked functions: name -> {n, ret, out} */
    bool bad_param; /* the compiler refused a HYPERPROCESS parameter */
} fe;

static void loc_of(CXCursor c, unsigned *line, unsigned *col)
{
    CXFile f;
    clang_getExpansionLocation(clang_getCursorLocation(c), &f, line, col, NULL);
}

static bool in_main(fe *f, CXCursor c)
{
    CXFile file;
    clang_getExpansionLocation(clang_getCursorLocation(c), &file, NULL, NULL,
                               NULL);
    return file && clang_File_isEqual(file, f->main);
}

/* A heap copy of a libclang string, which is disposed of. */
static char *take_string(CXString s)
{
    char *out = strdup(clang_getCString(s));
    clang_disposeString(s);
    if (out == NULL)
        abort();
    return out;
}

static char *spelling(CXCursor c)
{
    return take_string(clang_getCursorSpelling(c));
}

static char *type_spelling(CXType t)
{
    return take_string(clang_getTypeSpelling(t));
}

typedef struct ann_list {
    char *v[16];
    int n;
} ann_list;

static enum CXChildVisitResult collect_ann(CXCursor c, CXCursor parent,
                                           CXClientData data)
{
    (void)parent;
    ann_list *a = data;
    if (clang_getCursorKind(c) == CXCursor_AnnotateAttr && a->n < 16) {
        char *s = spelling(c);
        if (strncmp(s, "hyperc:", 7) == 0)
            a->v[a->n++] = s;
        else
            free(s);
    }
    return CXChildVisit_Continue;
}

static void anns_fini(ann_list *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
}

/* The initializer tree of HYPERPROCESS as JSON: designated initializers
 * become objects (with their keys' locations in "_at"), positional ones
 * arrays, constants strings or integers, references {"ref": name}. */
typedef struct kids {
    CXCursor v[64];
    int n;
} kids;

static enum CXChildVisitResult collect_kids(CXCursor c, CXCursor parent,
                                            CXClientData data)
{
    (void)parent;
    kids *k = data;
    if (k->n < 64)
        k->v[k->n++] = c;
    return CXChildVisit_Continue;
}

/* Where the user wrote c: the spelling location when it is in the main file
 * (arguments of HYPERPROCESS are), else the expansion location. */
static CXFile main_file;

static void user_loc(CXCursor c, unsigned *line, unsigned *col)
{
    CXFile f;
    CXSourceLocation l = clang_getCursorLocation(c);
    clang_getSpellingLocation(l, &f, line, col, NULL);
    if (f && main_file && clang_File_isEqual(f, main_file))
        return;
    clang_getExpansionLocation(l, &f, line, col, NULL);
}

static json_t *init_json(CXCursor c)
{
    enum CXCursorKind kind = clang_getCursorKind(c);
    if (kind == CXCursor_InitListExpr) {
        kids k = {.n = 0};
        clang_visitChildren(c, collect_kids, &k);
        json_t *obj = NULL, *arr = NULL, *at = NULL;
        for (int i = 0; i < k.n; i++) {
            kids sub = {.n = 0};
            clang_visitChildren(k.v[i], collect_kids, &sub);
            if (clang_getCursorKind(k.v[i]) == CXCursor_UnexposedExpr &&
                sub.n == 2 &&
                clang_getCursorKind(sub.v[0]) == CXCursor_MemberRef) {
                if (obj == NULL) {
                    obj = json_object();
                    at = json_object();
                }
                char *key = spelling(sub.v[0]);
                unsigned line, col;
                user_loc(k.v[i], &line, &col);
                if (json_object_get(obj, key) != NULL)
                    json_object_set_new(obj, "_dup", json_string(key));
                json_object_set_new(obj, key, init_json(sub.v[1]));
                json_object_set_new(at, key, json_pack("[ii]", line, col));
                free(key);
            } else {
                if (arr == NULL)
                    arr = json_array();
                json_array_append_new(arr, init_json(k.v[i]));
            }
        }
        if (obj) {
            json_object_set_new(obj, "_at", at);
            if (arr)
                json_object_set_new(obj, "_positional", arr);
            return obj;
        }
        return arr ? arr : json_array();
    }
    if (kind == CXCursor_DeclRefExpr) {
        char *n = spelling(c);
        json_t *r = json_pack("{ss}", "ref", n);
        free(n);
        return r;
    }
    if (kind != CXCursor_CompoundLiteralExpr) {
        CXEvalResult ev = clang_Cursor_Evaluate(c);
        if (ev) {
            json_t *out = NULL;
            CXEvalResultKind ek = clang_EvalResult_getKind(ev);
            if (ek == CXEval_StrLiteral)
                out = json_string(clang_EvalResult_getAsStr(ev));
            else if (ek == CXEval_Int)
                out = json_integer(clang_EvalResult_getAsLongLong(ev));
            clang_EvalResult_dispose(ev);
            if (out)
                return out;
        }
    }
    /* Casts, parentheses, & and compound literals: look through. */
    kids k = {.n = 0};
    clang_visitChildren(c, collect_kids, &k);
    for (int i = k.n - 1; i >= 0; i--) {
        enum CXCursorKind ck = clang_getCursorKind(k.v[i]);
        if (ck == CXCursor_TypeRef)
            continue;
        return init_json(k.v[i]);
    }
    return json_null();
}

/* ---------------------------------------------------- process parameters */

static void perr(fe *f, json_t *obj, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void perr(fe *f, json_t *obj, const char *key, const char *fmt, ...)
{
    unsigned line = f->proc_line, col = f->proc_col;
    json_t *at = key ? json_object_get(json_object_get(obj, "_at"), key) : NULL;
    if (at) {
        line = (unsigned)json_integer_value(json_array_get(at, 0));
        col = (unsigned)json_integer_value(json_array_get(at, 1));
    }
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcg_diag_add(f->d, f->path, line, col, true, "%s", buf);
}

static bool wit_ident(const char *s)
{
    /* [a-z][a-z0-9]*(-[a-z][a-z0-9]*)* */
    bool start = true;
    for (const char *c = s; *c; c++) {
        if (start) {
            if (!(*c >= 'a' && *c <= 'z'))
                return false;
            start = false;
        } else if (*c == '-') {
            start = true;
        } else if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9'))) {
            return false;
        }
    }
    return !start;
}

static char *dup(const char *s)
{
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

/* Grow *v (of *cap elements of `size`) to hold n + 1. */
static void reserve(void *v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return;
    *cap = *cap ? *cap * 2 : 8;
    void *nv = realloc(*(void **)v, *cap * size);
    if (nv == NULL)
        abort();
    *(void **)v = nv;
}

static hcg_binding binding_config(json_t *cfg, bool http)
{
    /* Rust's default(): authenticated true, everything else off. */
    hcg_binding b = {.authenticated = true};
    json_t *v = json_object_get(cfg, "authenticated");
    if (v)
        b.authenticated = json_integer_value(v) != 0;
    b.secure_subdomain =
        json_integer_value(json_object_get(cfg, "secure_subdomain")) != 0;
    if (http) {
        b.local_only =
            json_integer_value(json_object_get(cfg, "local_only")) != 0;
        const char *sc =
            json_string_value(json_object_get(cfg, "static_content"));
        b.static_content = sc ? dup(sc) : NULL;
    } else {
        b.extension =
            json_integer_value(json_object_get(cfg, "extension")) != 0;
    }
    return b;
}

static void check_process(fe *f, json_t *raw, hcg_params *p)
{
    if (!json_is_object(raw)) {
        perr(f, NULL, NULL,
             "HYPERPROCESS parameters must be written .key = value");
        return;
    }
    if (json_object_get(raw, "_positional"))
        perr(f, NULL, NULL,
             "HYPERPROCESS parameters must be written .key = value");
    p->designated = true;
    const char *dup_key = json_string_value(json_object_get(raw, "_dup"));
    if (dup_key)
        perr(f, raw, dup_key, "duplicate parameter '%s'", dup_key);
    static const char *const required[] = {"name", "endpoints", "save_config",
                                           "wit_world"};
    /* after an unknown parameter the compiler dropped the initializer:
     * that one error says it all */
    for (size_t i = 0; i < 4 && !f->bad_param; i++)
        if (json_object_get(raw, required[i]) == NULL)
            perr(f, NULL, NULL, "missing required parameter '%s'", required[i]);
    static const char *const strings[] = {"name", "icon", "widget", "ui_path",
                                          "wit_world"};
    char **slots[] = {&p->name, &p->icon, &p->widget, &p->ui_path,
                      &p->wit_world};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(raw, strings[i]);
        if (v == NULL)
            continue;
        if (!json_is_string(v))
            perr(f, raw, strings[i], "parameter '%s' must be a string literal",
                 strings[i]);
        else
            *slots[i] = dup(json_string_value(v));
    }
    const char *world = p->wit_world;
    if (world && !wit_ident(world))
        perr(f, raw, "wit_world",
             "wit_world '%s' is not a WIT identifier (lowercase words of "
             "a-z and 0-9 joined by '-', each starting with a letter)",
             world);
    json_t *ui = json_object_get(raw, "ui");
    if (json_is_object(ui)) {
        p->has_ui = true;
        p->ui = binding_config(ui, true);
    }
    json_t *sc = json_object_get(raw, "save_config");
    if (sc) {
        static const char *const kinds[] = {
            NULL,    "Never", "EveryMessage", "EveryNMessage", "EveryNSeconds",
            "OnDiff"};
        json_int_t k = json_integer_value(json_object_get(sc, "kind"));
        json_int_t n = json_integer_value(json_object_get(sc, "n"));
        if (!json_is_object(sc) || k < 1 || k > 5) {
            perr(f, raw, "save_config",
                 "save_config must be HP_SAVE_NEVER, HP_SAVE_EVERY_MESSAGE, "
                 "HP_SAVE_EVERY_N_MESSAGE(n), HP_SAVE_EVERY_N_SECONDS(n) or "
                 "HP_SAVE_ON_DIFF");
        } else {
            if ((k == 3 || k == 4) && n <= 0)
                perr(f, raw, "save_config", "%s needs n > 0", kinds[k]);
            p->save_kind = kinds[k];
            p->save_n = (k == 3 || k == 4) ? n : 0;
        }
    }
    /* state versions: .state_version = N, .migrate = HP_MIGRATE(fn) */
    json_t *ver = json_object_get(raw, "state_version");
    json_int_t version = 0;
    if (ver && (!json_is_integer(ver) || json_integer_value(ver) < 0 ||
                json_integer_value(ver) > 0xffffffffLL))
        perr(f, raw, "state_version",
             "state_version must be an integer constant from 0 to "
             "4294967295");
    else if (ver)
        version = json_integer_value(ver);
    p->state_version = version;
    json_t *mig = json_object_get(raw, "migrate");
    const char *mname = json_string_value(json_object_get(mig, "ref"));
    if (mig && !json_is_null(mig) && mname == NULL) {
        perr(f, raw, "migrate",
             "migrate must be HP_MIGRATE(function) naming a function of this "
             "file");
    } else if (mname) {
        json_t *fn = json_object_get(f->funcs, mname);
        const char *st = f->model->state;
        char want[300];
        snprintf(want, sizeof want,
                 "bool %s(hp_arena *a, uint32_t from_version, const hp_jv "
                 "*stored, %s *out, const char **why)",
                 mname, st ? st : "State");
        if (fn == NULL)
            perr(f, raw, "migrate", "migrate: no function '%s' in this file",
                 mname);
        else if (json_integer_value(json_object_get(fn, "n")) != 5 ||
                 strcmp(json_string_value(json_object_get(fn, "ret")),
                        "_Bool") != 0)
            perr(f, raw, "migrate", "migrate: '%s' must be %s", mname, want);
        else
            p->migrate = dup(mname);
    }
    if (version > 0 && mname == NULL)
        perr(f, raw, "state_version",
             "state_version %lld without migrate: a stored state of another "
             "version could never be loaded (add .migrate = HP_MIGRATE(fn))",
             (long long)version);
    json_t *ml = json_object_get(raw, "manual_logging");
    p->manual_logging = json_integer_value(ml) != 0;
    json_t *eps = json_object_get(raw, "endpoints");
    if (eps && !json_is_array(eps)) {
        perr(f, raw, "endpoints",
             "endpoints must be HP_ENDPOINTS(...) or HP_NO_ENDPOINTS");
    } else {
        size_t i, cap = 0;
        json_t *b;
        json_array_foreach(eps, i, b)
        {
            json_int_t kind = json_integer_value(json_object_get(b, "kind"));
            if (kind == 0)
                break; /* the sentinel */
            const char *path = json_string_value(json_object_get(b, "path"));
            if (path == NULL || path[0] != '/') {
                perr(f, raw, "endpoints",
                     "endpoint path '%s' must be a string starting with '/'",
                     path ? path : "(none)");
                continue;
            }
            for (size_t k = 0; k < p->nendpoints; k++)
                if (strcmp(p->endpoints[k].path, path) == 0)
                    perr(f, raw, "endpoints", "duplicate endpoint path '%s'",
                         path);
            bool http = kind == 1;
            reserve(&p->endpoints, &cap, p->nendpoints, sizeof *p->endpoints);
            p->endpoints[p->nendpoints++] = (hcg_endpoint){
                .http = http,
                .path = dup(path),
                .config = binding_config(
                    json_object_get(b, http ? "http" : "ws"), http)};
        }
    }
}

/* ------------------------------------------------------------------ types */

/* The supported types, docs/gen-design.md §2.  Each distinct C type becomes
 * a node (hcg_type, gen.h) of the model's type table, after the types it
 * holds; nodes refer to each other by index. */

typedef struct ty_at {
    fe *f;
    unsigned line, col;
    const char *what; /* "parameter 'x' of 'h'" etc. */
} ty_at;

static int type_ref(ty_at *at, CXType t);

static void ty_err(ty_at *at, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ty_err(ty_at *at, const char *fmt, ...)
{
    char buf[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcg_diag_add(at->f->d, at->f->path, at->line, at->col, true, "%s (%s)", buf,
                 at->what);
}

static CXType unsugar(CXType t)
{
    while (t.kind == CXType_Elaborated)
        t = clang_Type_getNamedType(t);
    return t;
}

typedef struct fields {
    CXCursor v[64];
    int n;
} fields;

static enum CXVisitorResult collect_field(CXCursor c, CXClientData data)
{
    fields *fl = data;
    if (fl->n < 64)
        fl->v[fl->n++] = c;
    return CXVisit_Continue;
}

static bool decl_annotated(CXCursor decl, const char *ann)
{
    ann_list a = {.n = 0};
    clang_visitChildren(decl, collect_ann, &a);
    bool yes = false;
    for (int i = 0; i < a.n; i++)
        yes |= strcmp(a.v[i], ann) == 0;
    anns_fini(&a);
    return yes;
}

/* The generic the struct decl is an instance of (HP_LIST...), by its
 * marker; false when none. */
static bool generic_kind(CXCursor decl, hcg_kind *out)
{
    static const hcg_kind kinds[] = {HCG_LIST, HCG_OPTION, HCG_RESULT,
                                     HCG_MAP,  HCG_TUPLE,  HCG_UNIT};
    for (size_t i = 0; i < 6; i++) {
        char ann[32];
        snprintf(ann, sizeof ann, "hyperc:%s", hcg_kind_name(kinds[i]));
        if (decl_annotated(decl, ann)) {
            *out = kinds[i];
            return true;
        }
    }
    return false;
}

static CXCursor field_named(fields *fl, const char *name)
{
    for (int i = 0; i < fl->n; i++) {
        char *n = spelling(fl->v[i]);
        bool eq = strcmp(n, name) == 0;
        free(n);
        if (eq)
            return fl->v[i];
    }
    return clang_getNullCursor();
}

/* Append node (taken over) to the type table; its index. */
static int add_node(fe *f, hcg_type node)
{
    hcg_model *m = f->model;
    reserve(&m->types, &f->types_cap, m->ntypes, sizeof *m->types);
    m->types[m->ntypes] = node;
    return (int)m->ntypes++;
}

/* The index of the type whose C spelling is key, or -1. */
static int find_type(fe *f, const char *key)
{
    for (size_t i = f->model->ntypes; i-- > 0;)
        if (strcmp(f->model->types[i].c, key) == 0)
            return (int)i;
    return -1;
}

/* Enumerator wire names: strip UPPER(enum)_ when every enumerator has it;
 * an ALL_CAPS rest becomes CamelCase. */
static char *wire_name(const char *c, const char *prefix)
{
    const char *rest = c;
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl && strncmp(c, prefix, pl) == 0)
        rest = c + pl;
    bool caps = true;
    for (const char *p = rest; *p; p++)
        caps &= !islower((unsigned char)*p);
    char *o = strdup(rest);
    if (o == NULL)
        abort();
    if (!caps)
        return o;
    for (char *p = o; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *out = hcg_variant_name(o);
    free(o);
    return out;
}

typedef struct enums {
    CXCursor v[256];
    int n;
} enums;

static enum CXChildVisitResult collect_enum(CXCursor c, CXCursor parent,
                                            CXClientData data)
{
    (void)parent;
    enums *e = data;
    if (clang_getCursorKind(c) == CXCursor_EnumConstantDecl && e->n < 256)
        e->v[e->n++] = c;
    return CXChildVisit_Continue;
}

static int enum_node(ty_at *at, CXCursor decl, const char *name,
                     const char *key)
{
    enums e = {.n = 0};
    clang_visitChildren(decl, collect_enum, &e);
    char prefix[160];
    snprintf(prefix, sizeof prefix, "%s_", name);
    for (char *p = prefix; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    bool all = e.n > 0;
    for (int i = 0; i < e.n; i++) {
        char *n = spelling(e.v[i]);
        all &= strncmp(n, prefix, strlen(prefix)) == 0 &&
               strlen(n) > strlen(prefix);
        free(n);
    }
    hcg_enumerator *vars = calloc((size_t)e.n + 1, sizeof *vars);
    if (vars == NULL)
        abort();
    for (int i = 0; i < e.n; i++) {
        char *n = spelling(e.v[i]);
        long long v = clang_getEnumConstantDeclValue(e.v[i]);
        ann_list a = {.n = 0};
        clang_visitChildren(e.v[i], collect_ann, &a);
        char *w = NULL;
        for (int k = 0; k < a.n; k++)
            if (w == NULL && strncmp(a.v[k], "hyperc:name=", 12) == 0)
                w = strdup(a.v[k] + 12);
        anns_fini(&a);
        bool named = w != NULL;
        if (w == NULL)
            w = wire_name(n, all ? prefix : NULL);
        for (int k = 0; k < i; k++)
            if (vars[k].value == v)
                ty_err(at, "enum '%s': '%s' and '%s' have the same value", name,
                       vars[k].c, n);
        vars[i] =
            (hcg_enumerator){.c = n, .wire = w, .value = v, .named = named};
    }
    return add_node(at->f, (hcg_type){.kind = HCG_ENUM,
                                      .c = dup(key),
                                      .name = dup(name),
                                      .variants = vars,
                                      .nvariants = (size_t)e.n});
}

static int record_node(ty_at *at, CXType t, const char *name, const char *key)
{
    fe *f = at->f;
    json_object_set_new(f->busy, key, json_true());
    fields fl = {.n = 0};
    clang_Type_visitFields(t, collect_field, &fl);
    hcg_field *out = calloc((size_t)fl.n + 1, sizeof *out);
    if (out == NULL)
        abort();
    size_t nout = 0;
    for (int i = 0; i < fl.n; i++) {
        char *fname = spelling(fl.v[i]);
        char what[512];
        snprintf(what, sizeof what, "field '%s' of '%s', %s", fname, name,
                 at->what);
        ty_at sub = {f, at->line, at->col, what};
        if (fname[0] == 0)
            ty_err(at, "struct '%s' has an unnamed member", name);
        else if (decl_annotated(fl.v[i], "hyperc:skip"))
            out[nout++] =
                (hcg_field){.name = dup(fname), .type = -1, .skip = true};
        else if (clang_Cursor_isBitField(fl.v[i]))
            ty_err(at, "field '%s' of '%s' is a bit-field", fname, name);
        else {
            int ft = type_ref(&sub, clang_getCursorType(fl.v[i]));
            out[nout++] = (hcg_field){.name = dup(fname), .type = ft};
        }
        free(fname);
    }
    json_object_del(f->busy, key);
    return add_node(f, (hcg_type){.kind = HCG_RECORD,
                                  .c = dup(key),
                                  .name = dup(name),
                                  .fields = out,
                                  .nfields = nout});
}

/* An HP_ALIAS typedef: a node named as the typedef, naming its target. */
static int alias_node(ty_at *at, CXCursor td, const char *name)
{
    fe *f = at->f;
    int known = find_type(f, name);
    if (known >= 0)
        return known;
    if (json_object_get(f->busy, name)) {
        ty_err(at, "'%s' contains itself; WIT has no recursive types", name);
        return -1;
    }
    json_object_set_new(f->busy, name, json_true());
    int target = type_ref(at, clang_getTypedefDeclUnderlyingType(td));
    json_object_del(f->busy, name);
    if (target < 0)
        return -1;
    return add_node(f, (hcg_type){.kind = HCG_ALIAS,
                                  .c = dup(name),
                                  .name = dup(name),
                                  .elem = target});
}

/* An HP_VARIANT struct: { tag_enum tag; union { T case_a; ... }; }. */
static int variant_node(ty_at *at, CXType t, const char *name, const char *key)
{
    fe *f = at->f;
    fields fl = {.n = 0};
    clang_Type_visitFields(t, collect_field, &fl);
    CXType tag_t = fl.n >= 1
                       ? clang_getCanonicalType(clang_getCursorType(fl.v[0]))
                       : (CXType){.kind = CXType_Invalid};
    CXType un_t = fl.n == 2
                      ? clang_getCanonicalType(clang_getCursorType(fl.v[1]))
                      : (CXType){.kind = CXType_Invalid};
    bool un_ok =
        fl.n == 1 || (un_t.kind == CXType_Record &&
                      clang_getCursorKind(clang_getTypeDeclaration(un_t)) ==
                          CXCursor_UnionDecl);
    if (tag_t.kind != CXType_Enum || fl.n > 2 || !un_ok) {
        ty_err(at,
               "HP_VARIANT '%s' must hold an enum (the tag) and then an "
               "anonymous union of the cases' data, nothing else",
               name);
        return -1;
    }
    json_object_set_new(f->busy, key, json_true());
    int tag = type_ref(at, clang_getCursorType(fl.v[0]));
    fields um = {.n = 0};
    if (fl.n == 2)
        clang_Type_visitFields(un_t, collect_field, &um);
    const hcg_type *te = hcg_model_type(f->model, tag);
    size_t n = te ? te->nvariants : 0;
    hcg_case *cases = calloc(n + 1, sizeof *cases);
    bool *used = calloc((size_t)um.n + 1, sizeof *used);
    if (cases == NULL || used == NULL)
        abort();
    /* the prefix stripped: the tag enum's (ENUMNAME_), else the struct's */
    char ep[160], sp[160];
    snprintf(ep, sizeof ep, "%s_", te ? te->name : "");
    snprintf(sp, sizeof sp, "%s_", name);
    for (char *p = ep; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    for (char *p = sp; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    bool all_e = n > 0, all_s = n > 0;
    for (size_t i = 0; i < n; i++) {
        const char *c = te->variants[i].c;
        all_e &= strncmp(c, ep, strlen(ep)) == 0 && strlen(c) > strlen(ep);
        all_s &= strncmp(c, sp, strlen(sp)) == 0 && strlen(c) > strlen(sp);
    }
    const char *prefix = all_e ? ep : all_s ? sp : "";
    for (size_t i = 0; i < n; i++) {
        const hcg_enumerator *e = &te->variants[i];
        char *member = dup(e->c + strlen(prefix));
        for (char *p = member; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        /* the wire name: HP_NAME as for the enum, else from the rest */
        char *wire = e->named ? dup(e->wire)
                              : wire_name(e->c, prefix[0] ? prefix : NULL);
        cases[i] = (hcg_case){.c = dup(e->c), .wire = wire, .type = -1};
        for (int k = 0; k < um.n; k++) {
            char *mn = spelling(um.v[k]);
            if (strcmp(mn, member) == 0) {
                char what[512];
                snprintf(what, sizeof what, "case %s of '%s', %s", wire, name,
                         at->what);
                ty_at sub = {f, at->line, at->col, what};
                cases[i].member = dup(mn);
                cases[i].type = type_ref(&sub, clang_getCursorType(um.v[k]));
                used[k] = true;
            }
            free(mn);
        }
        free(member);
    }
    for (int k = 0; k < um.n; k++)
        if (!used[k]) {
            char *mn = spelling(um.v[k]);
            ty_err(at,
                   "union member '%s' of HP_VARIANT '%s' matches no "
                   "enumerator of its tag (a case's member is named as the "
                   "enumerator without its prefix '%s', in lower case)",
                   mn, name, prefix);
            free(mn);
        }
    free(used);
    json_object_del(f->busy, key);
    return add_node(f, (hcg_type){.kind = HCG_VARIANT,
                                  .c = dup(key),
                                  .name = dup(name),
                                  .tag = tag,
                                  .tag_field = spelling(fl.v[0]),
                                  .cases = cases,
                                  .ncases = n});
}

static int generic_node(ty_at *at, CXType t, hcg_kind g, const char *key)
{
    fe *f = at->f;
    fields fl = {.n = 0};
    clang_Type_visitFields(t, collect_field, &fl);
    hcg_type node = {.kind = g, .c = dup(key)};
    if (g == HCG_UNIT)
        return add_node(f, node);
    json_object_set_new(f->busy, key, json_true());
    if (g == HCG_LIST || g == HCG_MAP) {
        CXCursor ptr = field_named(&fl, "ptr");
        CXType elem = clang_getPointeeType(clang_getCursorType(ptr));
        if (g == HCG_MAP) {
            fields kv = {.n = 0};
            clang_Type_visitFields(elem, collect_field, &kv);
            elem = clang_getCursorType(field_named(&kv, "value"));
            node.key =
                type_ref(at, clang_getCursorType(field_named(&kv, "key")));
            const hcg_type *kt =
                hcg_model_type(f->model, hcg_unalias(f->model, node.key));
            if (kt && kt->kind != HCG_STRING && !hcg_kind_signed(kt->kind) &&
                !hcg_kind_unsigned(kt->kind)) {
                ty_err(at,
                       "a map's keys must be strings (char *) or integers "
                       "(int8_t..uint64_t), not '%s'",
                       kt->c);
                node.key = -1;
            }
        }
        node.elem = type_ref(at, elem);
    } else if (g == HCG_OPTION) {
        int v = type_ref(at, clang_getCursorType(field_named(&fl, "value")));
        node.elem = v;
        if (v >= 0 && f->model->types[v].kind == HCG_OPTION)
            hcg_diag_add(f->d, f->path, at->line, at->col, false,
                         "an option of an option: Some(None) and None are "
                         "both null on the wire (%s)",
                         at->what);
    } else if (g == HCG_RESULT) {
        /* { bool ok; union { T value; E error; }; } */
        CXType ok = {.kind = CXType_Invalid}, err = ok;
        for (int i = 0; i < fl.n; i++) {
            CXType ft = unsugar(clang_getCursorType(fl.v[i]));
            if (clang_getCanonicalType(ft).kind != CXType_Record)
                continue;
            fields u = {.n = 0};
            clang_Type_visitFields(ft, collect_field, &u);
            ok = clang_getCursorType(field_named(&u, "value"));
            err = clang_getCursorType(field_named(&u, "error"));
        }
        node.ok = type_ref(at, ok);
        node.err = type_ref(at, err);
    } else { /* tuple: _0, _1, ... */
        node.items = calloc((size_t)fl.n + 1, sizeof *node.items);
        if (node.items == NULL)
            abort();
        for (int i = 0; i < fl.n; i++)
            node.items[node.nitems++] =
                type_ref(at, clang_getCursorType(fl.v[i]));
    }
    json_object_del(f->busy, key);
    return add_node(f, node);
}

/* The kind a stdint (or hyperc) typedef name stands for; false if none. */
static bool stdint_kind(const char *name, hcg_kind *out)
{
    static const struct {
        const char *name;
        hcg_kind kind;
    } map[] = {{"int8_t", HCG_S8},      {"int16_t", HCG_S16},
               {"int32_t", HCG_S32},    {"int64_t", HCG_S64},
               {"uint8_t", HCG_U8},     {"uint16_t", HCG_U16},
               {"uint32_t", HCG_U32},   {"uint64_t", HCG_U64},
               {"hw_bytes", HCG_BYTES}, {"hw_address", HCG_ADDRESS},
               {"hp_char", HCG_CHAR},   {"hp_u128", HCG_U128},
               {"hp_i128", HCG_S128},   {"hp_json", HCG_JSON}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].name) == 0) {
            *out = map[i].kind;
            return true;
        }
    return false;
}

/* The node of a scalar kind (its C spelling is the kind's name). */
static int scalar(fe *f, hcg_kind kind)
{
    int id = find_type(f, hcg_kind_name(kind));
    if (id >= 0)
        return id;
    return add_node(f, (hcg_type){.kind = kind, .c = dup(hcg_kind_name(kind))});
}

static int type_ref(ty_at *at, CXType t)
{
    fe *f = at->f;
    t = unsugar(t);
    if (t.kind == CXType_Invalid) {
        ty_err(at, "a type the generator cannot read");
        return -1;
    }
    /* Typedef chain: stdint names decide integer widths; the first typedef
     * of a struct or enum names it. */
    char *tdname = NULL;
    while (t.kind == CXType_Typedef) {
        char *n = spelling(clang_getTypeDeclaration(t));
        hcg_kind k;
        if (stdint_kind(n, &k)) {
            free(n);
            free(tdname);
            return scalar(f, k);
        }
        if (decl_annotated(clang_getTypeDeclaration(t), "hyperc:alias")) {
            int id = alias_node(at, clang_getTypeDeclaration(t), n);
            free(n);
            free(tdname);
            return id;
        }
        if (tdname == NULL)
            tdname = n;
        else
            free(n);
        t = unsugar(
            clang_getTypedefDeclUnderlyingType(clang_getTypeDeclaration(t)));
    }
    CXType c = clang_getCanonicalType(t);
    char *cs = type_spelling(c);
    int id = -1;
    int known = find_type(f, cs);
    if (known >= 0) {
        id = known;
        goto out;
    }
    if (json_object_get(f->busy, cs)) {
        ty_err(at, "'%s' contains itself; WIT has no recursive types", cs);
        goto out;
    }
    switch (c.kind) {
    case CXType_Bool: id = scalar(f, HCG_BOOL); break;
    case CXType_SChar: id = scalar(f, HCG_S8); break;
    case CXType_UChar: id = scalar(f, HCG_U8); break;
    case CXType_Short: id = scalar(f, HCG_S16); break;
    case CXType_UShort: id = scalar(f, HCG_U16); break;
    case CXType_Int: id = scalar(f, HCG_S32); break;
    case CXType_UInt: id = scalar(f, HCG_U32); break;
    case CXType_LongLong: id = scalar(f, HCG_S64); break;
    case CXType_ULongLong: id = scalar(f, HCG_U64); break;
    case CXType_Int128: id = scalar(f, HCG_S128); break;
    case CXType_UInt128: id = scalar(f, HCG_U128); break;
    case CXType_Float: id = scalar(f, HCG_F32); break;
    case CXType_Double: id = scalar(f, HCG_F64); break;
    case CXType_Char_S:
    case CXType_Char_U:
        ty_err(at, "plain 'char' is not a number type here (its signedness "
                   "varies): use int8_t or uint8_t");
        break;
    case CXType_Long:
    case CXType_ULong:
        ty_err(at,
               "'%s' has another width on wasm32: use int64_t or uint64_t "
               "(or int32_t/uint32_t)",
               tdname ? tdname : cs);
        break;
    case CXType_Pointer: {
        CXType pt = clang_getCanonicalType(clang_getPointeeType(c));
        if (pt.kind == CXType_Char_S || pt.kind == CXType_Char_U)
            id = scalar(f, HCG_STRING);
        else
            ty_err(at,
                   "'%s': the only pointers carried are strings (char *); "
                   "use HP_LIST or a struct",
                   cs);
        break;
    }
    case CXType_Record: {
        CXCursor decl = clang_getTypeDeclaration(c);
        if (clang_getCursorKind(decl) == CXCursor_UnionDecl) {
            ty_err(at,
                   "'%s' is a union; use an enum and a struct, or "
                   "HP_RESULT",
                   cs);
            break;
        }
        hcg_kind g;
        bool generic = generic_kind(decl, &g);
        if (generic && (strstr(cs, "(unnamed") || strstr(cs, "(anonymous"))) {
            /* generated code must be able to name the type */
            char up[16];
            size_t k = 0;
            const char *gn = hcg_kind_name(g);
            for (; gn[k] && k < sizeof up - 1; k++)
                up[k] = (char)toupper((unsigned char)gn[k]);
            up[k] = 0;
            ty_err(at,
                   "name this HP_%s instance with a typedef (typedef "
                   "HP_...(...) my_name;) before using it",
                   up);
            break;
        }
        if (generic) {
            id = generic_node(at, c, g, cs);
            break;
        }
        char *tag = spelling(decl);
        const char *name = tdname ? tdname : tag;
        if (name[0] == 0)
            ty_err(at, "an anonymous struct needs a typedef name");
        else if (decl_annotated(decl, "hyperc:variant"))
            id = variant_node(at, c, name, cs);
        else
            id = record_node(at, c, name, cs);
        free(tag);
        break;
    }
    case CXType_Enum: {
        CXCursor decl = clang_getTypeDeclaration(c);
        char *tag = spelling(decl);
        id = enum_node(at, decl, tdname ? tdname : tag, cs);
        free(tag);
        break;
    }
    case CXType_ConstantArray:
    case CXType_IncompleteArray:
        ty_err(at, "'%s' is a C array; use HP_LIST (WIT has no fixed arrays)",
               cs);
        break;
    default:
        ty_err(at,
               "'%s' is not a supported type (docs/gen-design.md §2 lists "
               "them)",
               cs);
    }
out:
    free(cs);
    free(tdname);
    return id;
}

/* A request handler's parameter: by value, or const T * for a struct or
 * generic T (the same wire type as T). */
static int param_type(ty_at *at, CXType t)
{
    CXType u = unsugar(t);
    if (u.kind == CXType_Pointer) {
        CXType pt = clang_getPointeeType(u);
        if (clang_getCanonicalType(pt).kind == CXType_Record &&
            clang_isConstQualifiedType(pt))
            return type_ref(at, pt);
    }
    return type_ref(at, t);
}

/* --------------------------------------------------------------- handlers */

static void add_handler(fe *f, CXCursor c, ann_list *a)
{
    /* a handler declared before (or after) its definition is the
     * definition's, which carries the markers of every declaration */
    if (!clang_isCursorDefinition(c) &&
        !clang_Cursor_isNull(clang_getCursorDefinition(c)))
        return;
    hcg_handler h = {.returns_wire = -1};
    loc_of(c, &h.line, &h.col);
    unsigned line = h.line, col = h.col;
    h.c_name = spelling(c);
    const char *method = NULL, *path = NULL, *logical = NULL;
    for (int i = 0; i < a->n; i++) {
        const char *s = a->v[i] + 7;
        if (strncmp(s, "http.method=", 12) == 0)
            method = s + 12;
        else if (strncmp(s, "http.path=", 10) == 0)
            path = s + 10;
        else if (strncmp(s, "name=", 5) == 0)
            logical = s + 5;
        else {
            bool known = false;
            for (hcg_hkind k = HCG_H_INIT; k <= HCG_H_WS_CLIENT; k++)
                if (strcmp(s, hcg_hkind_name(k)) == 0) {
                    known = true;
                    if (!hcg_handler_has(&h, k))
                        h.kinds[h.nkinds++] = k;
                }
            if (!known)
                hcg_diag_add(f->d, f->path, line, col, true,
                             "unknown marker '%s'", a->v[i]);
        }
    }
    h.name = dup(logical ? logical : h.c_name);
    const char *name = h.name;
    bool request = hcg_handler_is_request(&h);
    int nargs = clang_Cursor_getNumArguments(c);
    h.params = calloc(nargs > 0 ? (size_t)nargs : 1, sizeof *h.params);
    if (h.params == NULL)
        abort();
    for (int i = 0; i < nargs; i++) {
        CXCursor arg = clang_Cursor_getArgument(c, (unsigned)i);
        hcg_param *p = &h.params[h.nparams++];
        p->name = spelling(arg);
        p->type = type_spelling(clang_getCursorType(arg));
        p->wire = -1;
        if (request && i > 0) {
            char what[384];
            snprintf(what, sizeof what, "parameter '%s' of '%s'", p->name,
                     name);
            ty_at ta = {f, line, col, what};
            p->has_wire = true;
            p->wire = param_type(&ta, clang_getCursorType(arg));
        }
    }
    h.returns = type_spelling(clang_getCursorResultType(c));
    if (request && strcmp(h.returns, "void") != 0) {
        char what[384];
        snprintf(what, sizeof what, "return value of '%s'", name);
        ty_at ta = {f, line, col, what};
        h.has_returns_wire = true;
        h.returns_wire = type_ref(&ta, clang_getCursorResultType(c));
    }
    h.variant = hcg_variant_name(name);
    h.method = method ? dup(method) : NULL;
    h.path = path ? dup(path) : NULL;
    h.variadic = clang_Cursor_isVariadic(c);
    h.prototype_only = !clang_isCursorDefinition(c);
    hcg_model *m = f->model;
    reserve(&m->handlers, &f->handlers_cap, m->nhandlers, sizeof *m->handlers);
    m->handlers[m->nhandlers++] = h;
}

static enum CXChildVisitResult top(CXCursor c, CXCursor parent,
                                   CXClientData data)
{
    (void)parent;
    fe *f = data;
    enum CXCursorKind kind = clang_getCursorKind(c);
    if (kind != CXCursor_VarDecl && kind != CXCursor_TypedefDecl &&
        kind != CXCursor_FunctionDecl)
        return CXChildVisit_Continue;
    if (!in_main(f, c))
        return CXChildVisit_Continue;
    ann_list a = {.n = 0};
    if (clang_Cursor_hasAttrs(c))
        clang_visitChildren(c, collect_ann, &a);
    if (kind == CXCursor_VarDecl && a.n &&
        strcmp(a.v[0], "hyperc:process") == 0) {
        unsigned line, col;
        loc_of(c, &line, &col);
        if (f->have_process) {
            hcg_diag_add(f->d, f->path, line, col, true,
                         "a second HYPERPROCESS (one per process; the first "
                         "is at line %u)",
                         f->proc_line);
        } else {
            f->have_process = true;
            f->process_cur = c;
            f->proc_line = line;
            f->proc_col = col;
        }
    } else if (kind == CXCursor_TypedefDecl && a.n &&
               strcmp(a.v[0], "hyperc:state") == 0) {
        char *t = type_spelling(clang_getTypedefDeclUnderlyingType(c));
        free(f->model->state);
        f->model->state = dup(t);
        CXType canon =
            clang_getCanonicalType(clang_getTypedefDeclUnderlyingType(c));
        unsigned line, col;
        loc_of(c, &line, &col);
        if (canon.kind != CXType_Record) {
            hcg_diag_add(f->d, f->path, line, col, true,
                         "the state type '%s' must be a struct", t);
        } else {
            ty_at ta = {f, line, col, "the state"};
            f->model->has_state_wire = true;
            f->model->state_wire =
                type_ref(&ta, clang_getTypedefDeclUnderlyingType(c));
        }
        free(t);
    } else if (kind == CXCursor_FunctionDecl && a.n) {
        add_handler(f, c, &a);
    } else if (kind == CXCursor_FunctionDecl) {
        char *n = spelling(c);
        /* for .migrate: its arity, result and the type of `out` */
        int na = clang_Cursor_getNumArguments(c);
        char *ret =
            type_spelling(clang_getCanonicalType(clang_getCursorResultType(c)));
        char *out =
            na >= 4 ? type_spelling(clang_getCanonicalType(
                          clang_getCursorType(clang_Cursor_getArgument(c, 3))))
                    : strdup("");
        json_object_set_new(f->funcs, n,
                            json_pack("{sisssssb}", "n", na, "ret", ret, "out",
                                      out ? out : "", "def",
                                      clang_isCursorDefinition(c)));
        free(ret);
        free(out);
        if (strcmp(n, "hw_init") == 0 && clang_isCursorDefinition(c)) {
            unsigned line, col;
            loc_of(c, &line, &col);
            hcg_diag_add(f->d, f->path, line, col, true,
                         "a hyperprocess must not define hw_init: the "
                         "generated code does");
        }
        free(n);
    }
    anns_fini(&a);
    return CXChildVisit_Continue;
}

/* ------------------------------------------------------ handler rules */

static void herr(fe *f, const hcg_handler *h, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void herr(fe *f, const hcg_handler *h, const char *fmt, ...)
{
    char buf[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcg_diag_add(f->d, f->path, h->line, h->col, true, "%s", buf);
}

/* A name that reaches WIT as kit spells it (leading '_' stripped) must be a
 * WIT identifier; kit writes such a name as it comes (My_Type: `My-Type`),
 * which no WIT reader takes. */
static void wit_name_check(fe *f, const hcg_handler *h, const char *what,
                           const char *name, const char *of)
{
    char *w = hcg_wit_name(name[0] == '_' ? name + 1 : name);
    if (!wit_ident(w))
        herr(f, h,
             "%s '%s'%s%s%s gives the WIT name '%s', which is not a WIT "
             "identifier (use snake_case: lower-case words, each starting "
             "with a letter%s)",
             what, name, of ? " of '" : "", of ? of : "", of ? "'" : "", w,
             strcmp(what, "case") == 0 ? "; or HP_NAME(\"...\")" : "");
    free(w);
}

/* The names of the types a request handler's WIT signature reaches, each
 * type checked once (seen). */
static void wit_names_of(fe *f, const hcg_handler *h, int id, char *seen)
{
    const hcg_type *t = hcg_model_type(f->model, id);
    if (t == NULL || seen[id])
        return;
    seen[id] = 1;
    switch (t->kind) {
    case HCG_RECORD:
        wit_name_check(f, h, "type", t->name, NULL);
        for (size_t i = 0; i < t->nfields; i++)
            if (!t->fields[i].skip) {
                wit_name_check(f, h, "field", t->fields[i].name, t->name);
                wit_names_of(f, h, t->fields[i].type, seen);
            }
        break;
    case HCG_ENUM:
        wit_name_check(f, h, "type", t->name, NULL);
        for (size_t i = 0; i < t->nvariants; i++)
            wit_name_check(f, h, "case", t->variants[i].wire, t->name);
        break;
    case HCG_VARIANT:
        wit_name_check(f, h, "type", t->name, NULL);
        for (size_t i = 0; i < t->ncases; i++) {
            wit_name_check(f, h, "case", t->cases[i].wire, t->name);
            if (t->cases[i].member)
                wit_names_of(f, h, t->cases[i].type, seen);
        }
        break;
    case HCG_ALIAS:
        wit_name_check(f, h, "type", t->name, NULL);
        wit_names_of(f, h, t->elem, seen);
        break;
    case HCG_LIST:
    case HCG_OPTION: wit_names_of(f, h, t->elem, seen); break;
    case HCG_MAP:
        wit_names_of(f, h, t->key, seen);
        wit_names_of(f, h, t->elem, seen);
        break;
    case HCG_RESULT:
        wit_names_of(f, h, t->ok, seen);
        wit_names_of(f, h, t->err, seen);
        break;
    case HCG_TUPLE:
        for (size_t i = 0; i < t->nitems; i++)
            wit_names_of(f, h, t->items[i], seen);
        break;
    default: break;
    }
}

/* Every name the WIT signatures carry: the parameters of the handlers that
 * get one (local, remote, http) and the types they reach. */
static void check_wit_names(fe *f)
{
    hcg_model *m = f->model;
    char *seen = calloc(m->ntypes + 1, 1);
    if (seen == NULL)
        abort();
    for (size_t i = 0; i < m->nhandlers; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_has(h, HCG_H_LOCAL) &&
            !hcg_handler_has(h, HCG_H_REMOTE) &&
            !hcg_handler_has(h, HCG_H_HTTP))
            continue;
        for (size_t k = 1; k < h->nparams; k++) {
            if (!h->params[k].has_wire)
                continue;
            wit_name_check(f, h, "parameter", h->params[k].name, h->name);
            wit_names_of(f, h, h->params[k].wire, seen);
        }
        if (h->has_returns_wire)
            wit_names_of(f, h, h->returns_wire, seen);
    }
    free(seen);
}

/* The first parameter must be the state: S * or const S *. */
static bool state_param_ok(const char *state, const char *type)
{
    char a[256], b[256];
    snprintf(a, sizeof a, "%s *", state);
    snprintf(b, sizeof b, "const %s *", state);
    return strcmp(type, a) == 0 || strcmp(type, b) == 0;
}

static void check_handlers(fe *f)
{
    const char *state = f->model->state;
    int inits = 0, ws = 0, wsc = 0, requests = 0;
    for (size_t i = 0; i < f->model->nhandlers; i++) {
        const hcg_handler *h = &f->model->handlers[i];
        const char *name = h->name;
        const hcg_param *params = h->params;
        size_t np = h->nparams;
        const char *ret = h->returns;
        size_t nk = h->nkinds;
        if (h->prototype_only)
            herr(f, h, "handler '%s' is declared but not defined here", name);
        if (h->variadic)
            herr(f, h, "handler '%s' must not be variadic", name);
        if (nk == 0) {
            herr(f, h,
                 "'%s' has handler attributes but no handler kind (init, "
                 "http, local, remote, ws or ws_client)",
                 name);
            continue;
        }
        if (state && (np == 0 || !state_param_ok(state, params[0].type)))
            herr(f, h,
                 "the first parameter of '%s' must be the state ('%s *' or "
                 "'const %s *')",
                 name, state, state);
        bool special = hcg_handler_has(h, HCG_H_INIT) ||
                       hcg_handler_has(h, HCG_H_WS) ||
                       hcg_handler_has(h, HCG_H_WS_CLIENT);
        if (special && nk > 1)
            herr(f, h,
                 "'%s': init, ws and ws_client handlers cannot be combined "
                 "with other kinds",
                 name);
        if (hcg_handler_has(h, HCG_H_INIT)) {
            if (++inits == 2)
                herr(f, h,
                     "a second init handler ('%s'); there is one per "
                     "process",
                     name);
            if (np != 1 || strcmp(ret, "void") != 0)
                herr(f, h, "init handler '%s' must be 'void %s(%s *state)'",
                     name, h->c_name, state ? state : "State");
        } else if (hcg_handler_has(h, HCG_H_WS) ||
                   hcg_handler_has(h, HCG_H_WS_CLIENT)) {
            bool client = hcg_handler_has(h, HCG_H_WS_CLIENT);
            if (++(*(client ? &wsc : &ws)) == 2)
                herr(f, h,
                     "a second %s handler ('%s'); there is one per "
                     "process",
                     client ? "ws_client" : "ws", name);
            const char *want[3] = {"uint32_t", "hp_ws_message_type",
                                   "const hw_blob *"};
            bool ok = np == 4 && strcmp(ret, "void") == 0;
            for (size_t k = 0; ok && k < 3; k++)
                ok = strcmp(params[k + 1].type, want[k]) == 0;
            if (!ok)
                herr(f, h,
                     "%s handler '%s' must be 'void %s(%s *state, uint32_t "
                     "channel_id, hp_ws_message_type type, const hw_blob "
                     "*blob)'",
                     client ? "ws_client" : "ws", name, h->c_name,
                     state ? state : "State");
        } else {
            requests++;
            if (strcmp(ret, "void") == 0)
                herr(f, h,
                     "request handler '%s' returns void; it must return a "
                     "value (the caller waits for a response)",
                     name);
        }
        if (!hcg_handler_has(h, HCG_H_HTTP) && (h->method || h->path))
            herr(f, h, "'%s' has an HTTP method or path but is not http", name);
        const char *method = h->method;
        static const char *const methods[] = {
            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
        if (method) {
            bool ok = false;
            for (size_t k = 0; k < 7; k++)
                ok |= strcasecmp(method, methods[k]) == 0;
            if (!ok)
                herr(f, h,
                     "unknown HTTP method '%s' (GET, POST, PUT, DELETE, PATCH, "
                     "HEAD or OPTIONS)",
                     method);
        }
        /* WIT naming rules for the logical name. */
        if (strpbrk(name, "0123456789"))
            herr(f, h,
                 "handler name '%s' contains a digit, which WIT names cannot "
                 "(use HP_NAME(\"...\") or rename it)",
                 name);
        char *wit = hcg_wit_name(name);
        if (strcasestr(name, "stream"))
            herr(f, h, "handler name '%s' contains 'stream', reserved in WIT",
                 name);
        else if (!strpbrk(name, "0123456789") && !wit_ident(wit))
            herr(f, h,
                 "handler name '%s' gives the WIT name '%s', which is not a "
                 "WIT identifier (use snake_case, or HP_NAME(\"...\"))",
                 name, wit);
        free(wit);
        /* Variant collisions among request handlers. */
        const char *variant = h->variant;
        for (size_t k = 0; k < i; k++) {
            const hcg_handler *o = &f->model->handlers[k];
            if (strcmp(o->variant, variant) == 0)
                herr(f, h, "'%s' and '%s' both map to variant '%s'", o->name,
                     name, variant);
            const char *om = o->method;
            const char *op = o->path;
            const char *mp = h->path;
            if (op && mp && strcmp(op, mp) == 0 &&
                ((om == NULL && method == NULL) ||
                 (om && method && strcasecmp(om, method) == 0)))
                herr(f, h, "'%s' and '%s' are both routed to %s %s", o->name,
                     name, om ? om : "(any method)", mp);
        }
    }
    if (requests == 0)
        hcg_diag_add(f->d, f->path, f->proc_line ? f->proc_line : 1,
                     f->proc_col ? f->proc_col : 1, true,
                     "a hyperprocess needs at least one http, local or remote "
                     "handler");
}

static void collect_inclusion(CXFile file, CXSourceLocation *stack,
                              unsigned len, CXClientData data)
{
    (void)stack;
    (void)len;
    CXString n = clang_getFileName(file);
    const char *s = clang_getCString(n);
    if (s) {
        hcg_model *m = data;
        char **v = realloc(m->inputs, (m->ninputs + 1) * sizeof *v);
        if (v == NULL)
            abort();
        m->inputs = v;
        m->inputs[m->ninputs++] = dup(s);
    }
    clang_disposeString(n);
}

/* The byte ranges of the main file's function bodies. */
typedef struct bodies {
    CXFile main;
    unsigned (*v)[2];
    size_t n;
} bodies;

static enum CXChildVisitResult body_of(CXCursor c, CXCursor parent,
                                       CXClientData data)
{
    (void)parent;
    bodies *b = data;
    if (clang_getCursorKind(c) != CXCursor_CompoundStmt)
        return CXChildVisit_Continue;
    CXSourceRange r = clang_getCursorExtent(c);
    CXFile f;
    unsigned lo, hi;
    clang_getExpansionLocation(clang_getRangeStart(r), &f, NULL, NULL, &lo);
    clang_getExpansionLocation(clang_getRangeEnd(r), NULL, NULL, NULL, &hi);
    if (f == NULL || b->main == NULL || !clang_File_isEqual(f, b->main))
        return CXChildVisit_Continue;
    unsigned(*v)[2] = realloc(b->v, (b->n + 1) * sizeof *v);
    if (v == NULL)
        abort();
    b->v = v;
    b->v[b->n][0] = lo;
    b->v[b->n][1] = hi;
    b->n++;
    return CXChildVisit_Continue;
}

static enum CXChildVisitResult collect_bodies(CXCursor c, CXCursor parent,
                                              CXClientData data)
{
    (void)parent;
    if (clang_getCursorKind(c) == CXCursor_FunctionDecl)
        clang_visitChildren(c, body_of, data);
    return CXChildVisit_Continue;
}

static bool in_body(const bodies *b, CXFile f, unsigned off)
{
    if (f == NULL || b->main == NULL || !clang_File_isEqual(f, b->main))
        return false;
    for (size_t i = 0; i < b->n; i++)
        if (off >= b->v[i][0] && off < b->v[i][1])
            return true;
    return false;
}

hcg_model *hcg_frontend(const char *path, const char *const *args, int nargs,
                        hcg_diags *d)
{
    CXIndex idx = clang_createIndex(0, 0);
    CXTranslationUnit tu = NULL;
    enum CXErrorCode rc = clang_parseTranslationUnit2(
        idx, path, args, nargs, NULL, 0, CXTranslationUnit_KeepGoing, &tu);
    if (rc != CXError_Success || tu == NULL) {
        hcg_diag_add(d, path, 1, 1, true, "cannot read this file (%d)",
                     (int)rc);
        clang_disposeIndex(idx);
        return NULL;
    }
    /* The compiler's own diagnostics come first, in its words; those inside
     * function bodies are the compiler's business, not the generator's
     * (a process may use its own generated stubs, which do not exist yet
     * when it is read). */
    bodies bd = {.main = clang_getFile(tu, path)};
    bool bad_param = false;
    clang_visitChildren(clang_getTranslationUnitCursor(tu), collect_bodies,
                        &bd);
    unsigned nd = clang_getNumDiagnostics(tu);
    for (unsigned i = 0; i < nd; i++) {
        CXDiagnostic g = clang_getDiagnostic(tu, i);
        enum CXDiagnosticSeverity sev = clang_getDiagnosticSeverity(g);
        CXFile dfile;
        unsigned doff;
        clang_getExpansionLocation(clang_getDiagnosticLocation(g), &dfile, NULL,
                                   NULL, &doff);
        if (sev >= CXDiagnostic_Warning && !in_body(&bd, dfile, doff)) {
            CXFile file;
            unsigned line, col;
            clang_getExpansionLocation(clang_getDiagnosticLocation(g), &file,
                                       &line, &col, NULL);
            CXString fn = clang_getFileName(file);
            CXString txt = clang_getDiagnosticSpelling(g);
            const char *t = clang_getCString(txt);
            char unknown[128];
            size_t tl = strlen(t);
            static const char stub_missing[] =
                "_caller_utils.h' file not found";
            if (tl > sizeof stub_missing &&
                strcmp(t + tl - (sizeof stub_missing - 1), stub_missing) == 0) {
                /* another process's stubs, not built yet: the generator
                 * reads no function body, and the compiler (which gets
                 * the stubs' folder) reports it if they are still missing */
            } else if (sscanf(
                           t,
                           "field designator '%127[^']' does not refer to any "
                           "field in type 'const hp_process_decl'",
                           unknown) == 1) {
                bad_param = true;
                hcg_diag_add(d, file ? clang_getCString(fn) : path, line, col,
                             true,
                             "unknown HYPERPROCESS parameter '%s' (the "
                             "parameters: name, icon, widget, ui, ui_path, "
                             "endpoints, save_config, wit_world, "
                             "state_version, migrate, manual_logging, "
                             "max_tasks, task_stack_kib)",
                             unknown);
            } else {
                hcg_diag_add(d, file ? clang_getCString(fn) : path, line, col,
                             sev >= CXDiagnostic_Error, "%s", t);
            }
            clang_disposeString(fn);
            clang_disposeString(txt);
        }
        clang_disposeDiagnostic(g);
    }
    free(bd.v);
    fe f = {.tu = tu, .path = path, .d = d, .bad_param = bad_param};
    f.main = clang_getFile(tu, path);
    main_file = f.main;
    f.model = calloc(1, sizeof *f.model);
    if (f.model == NULL)
        abort();
    f.model->file = dup(path);
    f.busy = json_object();
    f.funcs = json_object();
    clang_visitChildren(clang_getTranslationUnitCursor(tu), top, &f);
    if (!f.have_process) {
        hcg_diag_add(d, path, 1, 1, true,
                     "no HYPERPROCESS(State, ...) in this file");
    } else {
        kids k = {.n = 0};
        clang_visitChildren(f.process_cur, collect_kids, &k);
        json_t *raw = NULL;
        for (int i = 0; i < k.n; i++)
            if (clang_getCursorKind(k.v[i]) == CXCursor_InitListExpr)
                raw = init_json(k.v[i]);
        if (raw == NULL)
            raw = json_object();
        f.model->has_process = true;
        check_process(&f, raw, &f.model->process);
        json_decref(raw);
    }
    check_handlers(&f);
    check_wit_names(&f);
    /* every file the front end read, for build dependencies */
    clang_getInclusions(tu, collect_inclusion, f.model);
    json_decref(f.busy);
    json_decref(f.funcs);
    clang_disposeTranslationUnit(tu);
    clang_disposeIndex(idx);
    return f.model;
}
