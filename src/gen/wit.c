/* WIT files as `kit b --hyperapp` writes them, from the front end's model:
 * the interface (type definitions and one <fn>-signature-<kind> record per
 * handler and kind) and the world files.  The formats, including kit's
 * quirks (type order by substring dependencies, the unindented `use`
 * line, world files without a final newline), are described in
 * docs/gen-design.md §3.3. */
#include "gen.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool wit_keyword(const char *s)
{
    static const char *const kw[] = {
        "use",    "type",    "resource",    "func",      "record", "enum",
        "flags",  "variant", "static",      "interface", "world",  "import",
        "export", "package", "constructor", "include",   "with",   "as",
        "from",   "list",    "option",      "result",    "tuple",  "future",
        "stream", "own",     "borrow",      "u8",        "u16",    "u32",
        "u64",    "s8",      "s16",         "s32",       "s64",    "f32",
        "f64",    "char",    "bool",        "string"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strcmp(s, kw[i]) == 0)
            return true;
    return false;
}

/* kebab name as a WIT identifier: keywords get '%'. */
static char *ident(const char *kebab)
{
    size_t n = strlen(kebab);
    char *o = malloc(n + 2);
    if (o == NULL)
        abort();
    sprintf(o, "%s%s", wit_keyword(kebab) ? "%" : "", kebab);
    return o;
}

static char *kebab_stripped(const char *name)
{
    return hcg_wit_name(name[0] == '_' ? name + 1 : name);
}

/* kebab -> PascalCase, kit's to_pascal_case. */
static char *pascal(const char *kebab)
{
    char *o = strdup(kebab);
    if (o == NULL)
        abort();
    size_t k = 0;
    bool up = true;
    for (const char *c = kebab; *c; c++) {
        if (*c == '-') {
            up = true;
            continue;
        }
        o[k++] = up ? (char)toupper((unsigned char)*c) : *c;
        up = false;
    }
    o[k] = 0;
    return o;
}

typedef struct wctx {
    const hcg_model *m;
    json_t *used; /* kebab names of custom types used by signatures */
    json_t *defs; /* kebab name -> definition text */
    json_t *refs; /* kebab name -> the custom types its definition names */
} wctx;

/* The WIT spelling of type node `id`; custom types are noted in `used`. */
static char *wit_type(wctx *w, int id, json_t *used)
{
    const hcg_type *t = hcg_model_type(w->m, id);
    hcg_buf b = {0};
    if (t == NULL) {
        hcg_buf_add(&b, "_");
    } else if (t->kind == HCG_BYTES) {
        hcg_buf_add(&b, "list<u8>");
    } else if (t->kind == HCG_UNIT) {
        hcg_buf_add(&b, "_");
    } else if (t->kind == HCG_CHAR) {
        hcg_buf_add(&b, "char");
    } else if (t->kind == HCG_U128 || t->kind == HCG_S128) {
        /* kit: WIT has no 128-bit integers; string (the JSON stays a
         * number) */
        hcg_buf_add(&b, "string");
    } else if (t->kind == HCG_JSON) {
        /* serde_json::Value: kit's `value`, a use of the type of that name
         * (a record `value` if the source has one, else kit's inferred
         * alias, defined as string) */
        hcg_buf_add(&b, "value");
        if (used)
            json_object_set_new(used, "value", json_true());
    } else if (t->kind == HCG_RECORD || t->kind == HCG_ENUM ||
               t->kind == HCG_VARIANT || t->kind == HCG_ALIAS) {
        char *kb = hcg_wit_name(t->name);
        char *id_ = ident(kb);
        hcg_buf_add(&b, "%s", id_);
        if (used)
            json_object_set_new(used, kb, json_true());
        free(kb);
        free(id_);
    } else if (t->kind == HCG_LIST || t->kind == HCG_OPTION) {
        char *e = wit_type(w, t->elem, used);
        hcg_buf_add(&b, "%s<%s>", hcg_kind_name(t->kind), e);
        free(e);
    } else if (t->kind == HCG_MAP) {
        char *k = wit_type(w, t->key, used);
        char *v = wit_type(w, t->elem, used);
        hcg_buf_add(&b, "list<tuple<%s, %s>>", k, v);
        free(k);
        free(v);
    } else if (t->kind == HCG_TUPLE) {
        hcg_buf_add(&b, "tuple<");
        for (size_t i = 0; i < t->nitems; i++) {
            char *e = wit_type(w, t->items[i], used);
            hcg_buf_add(&b, "%s%s", i ? ", " : "", e);
            free(e);
        }
        hcg_buf_add(&b, ">");
    } else if (t->kind == HCG_RESULT) {
        char *ok = wit_type(w, t->ok, used);
        char *err = wit_type(w, t->err, used);
        bool uo = strcmp(ok, "_") == 0, ue = strcmp(err, "_") == 0;
        if (uo && ue)
            hcg_buf_add(&b, "result");
        else if (ue)
            hcg_buf_add(&b, "result<%s>", ok);
        else if (uo)
            hcg_buf_add(&b, "result<_, %s>", err);
        else
            hcg_buf_add(&b, "result<%s, %s>", ok, err);
        free(ok);
        free(err);
    } else {
        /* scalars, string, address */
        hcg_buf_add(&b, "%s", hcg_kind_name(t->kind));
    }
    return hcg_buf_take(&b);
}

/* Definitions of every named type the model knows, with the custom types
 * each names (ordered_types keeps those the signatures reach), as kit
 * builds them: the definition line unindented, its fields or cases at 4
 * (the file indents every line by 4 more).  A struct is a `record`
 * (skipped fields left out: they are not on the wire), an enum whose cases
 * carry no data an `enum`, one with data a `variant`, an alias
 * `type x = T;`. */
static void collect_defs(wctx *w)
{
    for (size_t i = 0; i < w->m->ntypes; i++) {
        const hcg_type *t = &w->m->types[i];
        if (t->kind != HCG_RECORD && t->kind != HCG_ENUM &&
            t->kind != HCG_VARIANT && t->kind != HCG_ALIAS)
            continue;
        char *kb = hcg_wit_name(t->name);
        char *id_ = ident(kb);
        json_t *refs = json_object();
        hcg_buf b = {0};
        if (t->kind == HCG_ALIAS) {
            char *tt = wit_type(w, t->elem, refs);
            hcg_buf_add(&b, "type %s = %s;", id_, tt);
            free(tt);
        } else if (t->kind == HCG_RECORD) {
            size_t n = 0;
            for (size_t j = 0; j < t->nfields; j++) {
                const hcg_field *fl = &t->fields[j];
                if (fl->skip)
                    continue;
                char *fk = kebab_stripped(fl->name);
                char *fid = ident(fk);
                char *ft = wit_type(w, fl->type, refs);
                hcg_buf_add(&b, "%s    %s: %s", n++ ? ",\n" : "", fid, ft);
                free(ft);
                free(fk);
                free(fid);
            }
            char *body = hcg_buf_take(&b);
            b = (hcg_buf){0};
            if (n == 0)
                hcg_buf_add(&b, "record %s {}", id_);
            else
                hcg_buf_add(&b, "record %s {\n%s\n}", id_, body);
            free(body);
        } else {
            bool data = false;
            size_t n = t->kind == HCG_ENUM ? t->nvariants : t->ncases;
            for (size_t j = 0; j < n && t->kind == HCG_VARIANT; j++)
                data |= t->cases[j].member != NULL;
            const char *kw = data ? "variant" : "enum";
            if (n == 0) {
                hcg_buf_add(&b, "%s %s {}", kw, id_);
            } else {
                hcg_buf_add(&b, "%s %s {\n", kw, id_);
                for (size_t j = 0; j < n; j++) {
                    const char *wire = t->kind == HCG_ENUM ? t->variants[j].wire
                                                           : t->cases[j].wire;
                    char *ck = hcg_wit_name(wire);
                    char *cid = ident(ck);
                    hcg_buf_add(&b, "%s    %s", j ? ",\n" : "", cid);
                    if (t->kind == HCG_VARIANT && t->cases[j].member) {
                        char *ct = wit_type(w, t->cases[j].type, refs);
                        hcg_buf_add(&b, "(%s)", ct);
                        free(ct);
                    }
                    free(ck);
                    free(cid);
                }
                hcg_buf_add(&b, "\n}");
            }
        }
        json_object_set_new(w->defs, kb, json_string(b.s));
        json_object_set_new(w->refs, kb, refs);
        free(b.s);
        free(kb);
        free(id_);
    }
}

/* Whether type id reaches a JSON value (kit then defines `value`). */
static bool reaches_json(const hcg_model *m, int id, char *seen)
{
    const hcg_type *t = hcg_model_type(m, id);
    if (t == NULL || seen[id])
        return false;
    seen[id] = 1;
    switch (t->kind) {
    case HCG_JSON: return true;
    case HCG_RECORD:
        for (size_t i = 0; i < t->nfields; i++)
            if (!t->fields[i].skip && reaches_json(m, t->fields[i].type, seen))
                return true;
        return false;
    case HCG_VARIANT:
        for (size_t i = 0; i < t->ncases; i++)
            if (t->cases[i].member && reaches_json(m, t->cases[i].type, seen))
                return true;
        return false;
    case HCG_TUPLE:
        for (size_t i = 0; i < t->nitems; i++)
            if (reaches_json(m, t->items[i], seen))
                return true;
        return false;
    case HCG_RESULT:
        return reaches_json(m, t->ok, seen) || reaches_json(m, t->err, seen);
    case HCG_MAP:
        return reaches_json(m, t->key, seen) || reaches_json(m, t->elem, seen);
    case HCG_LIST:
    case HCG_OPTION:
    case HCG_ALIAS: return reaches_json(m, t->elem, seen);
    default: return false;
    }
}

/* Whether a signature of the interface reaches a JSON value. */
static bool uses_json(const hcg_model *m)
{
    char *seen = calloc(m->ntypes + 1, 1);
    if (seen == NULL)
        abort();
    bool yes = false;
    for (size_t i = 0; i < m->nhandlers && !yes; i++) {
        const hcg_handler *h = &m->handlers[i];
        if (!hcg_handler_is_request(h))
            continue;
        for (size_t k = 1; k < h->nparams && !yes; k++)
            yes = reaches_json(m, h->params[k].wire, seen);
        if (!yes && h->has_returns_wire)
            yes = reaches_json(m, h->returns_wire, seen);
    }
    free(seen);
    return yes;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted keys of a JSON object (borrowed strings). */
static const char **sorted_keys(json_t *o, size_t *n)
{
    *n = json_object_size(o);
    const char **v = calloc(*n + 1, sizeof *v);
    if (v == NULL)
        abort();
    size_t i = 0;
    const char *k;
    json_t *val;
    json_object_foreach(o, k, val) v[i++] = k;
    qsort(v, *n, sizeof *v, cmp_str);
    return v;
}

/* The types kit defines: those the signatures name and, through their
 * definitions, the types those name (never a type only the state or a
 * WebSocket handler reaches, even when its name is a substring of a
 * definition). */
static json_t *reached_types(wctx *w)
{
    json_t *reach = json_object();
    json_t *queue = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(w->used, k, v)
        json_array_append_new(queue, json_string(k));
    for (size_t i = 0; i < json_array_size(queue); i++) {
        const char *name = json_string_value(json_array_get(queue, i));
        if (json_object_get(reach, name) ||
            json_object_get(w->defs, name) == NULL)
            continue;
        json_object_set_new(reach, name, json_true());
        json_object_foreach(json_object_get(w->refs, name), k, v)
            json_array_append_new(queue, json_string(k));
    }
    json_decref(queue);
    return reach;
}

/* Needed types (closure of `used` through substring matches among the
 * reached ones) in kit's order: Kahn's algorithm over "T mentions D",
 * smallest name first, so dependents come before their dependencies;
 * leftovers sorted last. */
static json_t *ordered_types(wctx *w, json_t *reach)
{
    json_t *needed = json_object(); /* name -> array of deps */
    size_t nk;
    const char **keys = sorted_keys(reach, &nk);
    json_t *queue = json_array();
    size_t nu;
    const char **used = sorted_keys(w->used, &nu);
    for (size_t i = 0; i < nu; i++)
        json_array_append_new(queue, json_string(used[i]));
    free(used);
    for (size_t ti = 0; ti < json_array_size(queue); ti++) {
        const char *name = json_string_value(json_array_get(queue, ti));
        const char *def = json_string_value(json_object_get(w->defs, name));
        if (def == NULL || json_object_get(needed, name))
            continue;
        json_t *deps = json_array();
        for (size_t k = 0; k < nk; k++)
            if (strcmp(keys[k], name) != 0 && strstr(def, keys[k])) {
                json_array_append_new(deps, json_string(keys[k]));
                json_array_append_new(queue, json_string(keys[k]));
            }
        json_object_set_new(needed, name, deps);
    }
    json_decref(queue);
    free(keys);
    json_t *indeg = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(needed, k, v)
        json_object_set_new(indeg, k, json_integer(0));
    json_object_foreach(needed, k, v)
    {
        size_t i;
        json_t *d;
        json_array_foreach(v, i, d)
        {
            json_t *c = json_object_get(indeg, json_string_value(d));
            if (c)
                json_integer_set(c, json_integer_value(c) + 1);
        }
    }
    json_t *out = json_array();
    json_t *done = json_object();
    for (;;) {
        /* the smallest name with in-degree 0 not yet taken */
        size_t n;
        const char **names = sorted_keys(indeg, &n);
        const char *pick = NULL;
        for (size_t i = 0; i < n && !pick; i++)
            if (!json_object_get(done, names[i]) &&
                json_integer_value(json_object_get(indeg, names[i])) == 0)
                pick = names[i];
        if (pick == NULL) {
            for (size_t i = 0; i < n; i++)
                if (!json_object_get(done, names[i]))
                    json_array_append_new(out, json_string(names[i]));
            free(names);
            break;
        }
        json_array_append_new(out, json_string(pick));
        json_object_set_new(done, pick, json_true());
        size_t i;
        json_t *d;
        json_array_foreach(json_object_get(needed, pick), i, d)
        {
            json_t *c = json_object_get(indeg, json_string_value(d));
            if (c)
                json_integer_set(c, json_integer_value(c) - 1);
        }
        free(names);
    }
    json_decref(done);
    json_decref(indeg);
    json_decref(needed);
    return out;
}

char *hcg_wit_interface_name(const hcg_model *model)
{
    const char *st = model->state;
    if (st == NULL)
        st = "state";
    char *base = strdup(st);
    if (base == NULL)
        abort();
    size_t n = strlen(base);
    /* kit strips a trailing "State"; the C spelling of the same is
     * "_state". */
    if (n > 5 && strcmp(base + n - 5, "State") == 0)
        base[n - 5] = 0;
    else if (n > 6 && strcmp(base + n - 6, "_state") == 0)
        base[n - 6] = 0;
    char *kb = hcg_wit_name(base);
    free(base);
    return kb;
}

static char *signature(wctx *w, const hcg_handler *h, const char *kind)
{
    char *kb = hcg_wit_name(h->name);
    hcg_buf b = {0};
    hcg_buf_add(&b, "    // Function signature for: %s (%s)", kb, kind);
    if (strcmp(kind, "http") == 0) {
        const char *m = h->method;
        const char *p = h->path;
        char *mu = strdup(m ? m : "POST");
        if (mu == NULL)
            abort();
        for (char *c = mu; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        if (p)
            hcg_buf_add(&b, "\n    // HTTP: %s %s%s", mu,
                        p[0] == '/' ? "" : "/", p);
        else
            hcg_buf_add(&b, "\n    // HTTP: %s /api/%s", mu, kb);
        free(mu);
    }
    size_t np = h->nparams;
    hcg_buf args = {0}, tuple = {0}, snake = {0};
    for (size_t i = 1; i < np; i++) {
        const hcg_param *p = &h->params[i];
        char *pk = kebab_stripped(p->name);
        char *pid = ident(pk);
        char *pt = wit_type(w, p->wire, w->used);
        hcg_buf_add(&args, "%s%s: %s", i > 1 ? ", " : "", pid, pt);
        hcg_buf_add(&tuple, "%s%s", i > 1 ? ", " : "", pt);
        char *sn = strdup(pid);
        if (sn == NULL)
            abort();
        for (char *c = sn; *c; c++)
            if (*c == '-')
                *c = '_';
        hcg_buf_add(&snake, "%s%s", i > 1 ? ", " : "", sn);
        free(sn);
        free(pk);
        free(pid);
        free(pt);
    }
    bool json_fmt = strcmp(kind, "http") != 0;
    char *pc = pascal(kb);
    if (np > 1) {
        hcg_buf_add(&b, "\n    // args: (%s)", args.s);
        if (json_fmt)
            hcg_buf_add(&b,
                        np == 2 ? "\n    // json fmt: {\"%s\": %s}"
                                : "\n    // json fmt: {\"%s\": [%s]}",
                        pc, snake.s);
    } else {
        hcg_buf_add(&b, "\n    // args: none");
        if (json_fmt)
            hcg_buf_add(&b, "\n    // json fmt: {\"%s\": null}", pc);
    }
    hcg_buf_add(&b, "\n    record %s-signature-%s {\n        target: %s", kb,
                kind, json_fmt ? "address" : "string");
    if (np > 1)
        hcg_buf_add(&b, ",\n        arg-types: tuple<%s>", tuple.s);
    char *rt = wit_type(w, h->returns_wire, w->used);
    hcg_buf_add(&b, ",\n        returning: %s\n    }", rt);
    free(rt);
    free(pc);
    free(args.s);
    free(tuple.s);
    free(snake.s);
    free(kb);
    return hcg_buf_take(&b);
}

char *hcg_wit_interface(const hcg_model *model)
{
    wctx w = {.m = model,
              .used = json_object(),
              .defs = json_object(),
              .refs = json_object()};
    collect_defs(&w);
    /* Signature records, then sorted as whole strings. */
    json_t *sigs = json_array();
    for (size_t i = 0; i < model->nhandlers; i++) {
        const hcg_handler *h = &model->handlers[i];
        static const hcg_hkind kinds[] = {HCG_H_HTTP, HCG_H_LOCAL,
                                          HCG_H_REMOTE};
        for (size_t k = 0; k < 3; k++) {
            for (size_t j = 0; j < h->nkinds; j++) {
                if (h->kinds[j] == kinds[k]) {
                    char *s = signature(&w, h, hcg_hkind_name(kinds[k]));
                    json_array_append_new(sigs, json_string(s));
                    free(s);
                }
            }
        }
    }
    size_t i;
    size_t ns = json_array_size(sigs);
    const char **sv = calloc(ns + 1, sizeof *sv);
    if (sv == NULL)
        abort();
    for (i = 0; i < ns; i++)
        sv[i] = json_string_value(json_array_get(sigs, i));
    qsort(sv, ns, sizeof *sv, cmp_str);
    json_t *reach = reached_types(&w);
    json_t *order = ordered_types(&w, reach);
    hcg_buf c = {0};
    hcg_buf_add(&c, "    use standard.{address};\n");
    if (uses_json(model) && json_object_get(reach, "value") == NULL)
        hcg_buf_add(&c, "\n    // Arbitrary JSON value; encoded as string for "
                        "WIT 1.0 (TS: unknown, Rust: serde_json::Value)\n"
                        "    type value = string;\n");
    if (json_array_size(order)) {
        hcg_buf_add(&c, "\n");
        json_t *name;
        json_array_foreach(order, i, name)
        {
            const char *def = json_string_value(
                json_object_get(w.defs, json_string_value(name)));
            if (i)
                hcg_buf_add(&c, "\n\n");
            /* every non-empty line indented 4 more */
            const char *line = def;
            while (*line) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                hcg_buf_add(&c, "%s%.*s%s", len ? "    " : "", (int)len, line,
                            nl ? "\n" : "");
                line += len + (nl ? 1 : 0);
            }
        }
        hcg_buf_add(&c, "\n");
    }
    if (ns) {
        hcg_buf_add(&c, "\n");
        for (i = 0; i < ns; i++)
            hcg_buf_add(&c, "%s%s", i ? "\n\n" : "", sv[i]);
    }
    /* trim, as kit does (which is why `use` ends up unindented) */
    char *start = c.s;
    while (*start && isspace((unsigned char)*start))
        start++;
    size_t end = strlen(start);
    while (end && isspace((unsigned char)start[end - 1]))
        end--;
    char *iface = hcg_wit_interface_name(model);
    char *iid = ident(iface);
    hcg_buf f = {0};
    hcg_buf_add(&f, "interface %s {\n%.*s\n}\n", iid, (int)end, start);
    free(iid);
    free(iface);
    free(c.s);
    free(sv);
    json_decref(sigs);
    json_decref(order);
    json_decref(w.used);
    json_decref(w.defs);
    json_decref(w.refs);
    json_decref(reach);
    return hcg_buf_take(&f);
}

char *hcg_wit_world(const char *world, const char *iface, bool types_world)
{
    hcg_buf b = {0};
    hcg_buf_add(&b, "world %s%s {\n    import %s;\n    include %s;\n}",
                types_world ? "types-" : "", world, iface,
                types_world ? "lib" : "process-v1");
    return hcg_buf_take(&b);
}

/* kit's rewrite of an existing world file (rewrite_wit/generate_wit_file):
 * the imports already there first, ours appended unless present (compared
 * trimmed), the include lines kept as a set (process-v1 if there were none;
 * `include lib;` always in a types- world), sorted; no final newline. */
char *hcg_wit_world_merge(const char *existing, const char *world,
                          const char *iface, bool types_world)
{
    hcg_buf imports = {0};
    char **incs = NULL;
    size_t ninc = 0;
    char mine[300];
    snprintf(mine, sizeof mine, "import %s;", iface);
    bool have_mine = false;
    const char *p = existing;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        /* trim */
        const char *s = p;
        size_t m = n;
        while (m && (*s == ' ' || *s == '\t' || *s == '\r')) {
            s++;
            m--;
        }
        while (m && (s[m - 1] == ' ' || s[m - 1] == '\t' || s[m - 1] == '\r'))
            m--;
        if (m > 7 && strncmp(s, "import ", 7) == 0) {
            hcg_buf_add(&imports, "%s    %.*s", imports.len ? "\n" : "", (int)m,
                        s);
            if (m == strlen(mine) && strncmp(s, mine, m) == 0)
                have_mine = true;
        } else if (m > 8 && strncmp(s, "include ", 8) == 0) {
            bool dup = false;
            for (size_t k = 0; k < ninc; k++)
                if (strlen(incs[k]) == m && strncmp(incs[k], s, m) == 0)
                    dup = true;
            if (!dup) {
                incs = realloc(incs, (ninc + 1) * sizeof *incs);
                if (incs == NULL)
                    abort();
                incs[ninc] = strndup(s, m);
                if (incs[ninc++] == NULL)
                    abort();
            }
        }
        p = e ? e + 1 : NULL;
    }
    if (!have_mine)
        hcg_buf_add(&imports, "%s    %s", imports.len ? "\n" : "", mine);
    const char *need = types_world ? "include lib;" : NULL;
    if (!types_world && ninc == 0)
        need = "include process-v1;";
    if (need) {
        bool dup = false;
        for (size_t k = 0; k < ninc; k++)
            if (strcmp(incs[k], need) == 0)
                dup = true;
        if (!dup) {
            incs = realloc(incs, (ninc + 1) * sizeof *incs);
            if (incs == NULL || (incs[ninc++] = strdup(need)) == NULL)
                abort();
        }
    }
    qsort(incs, ninc, sizeof *incs, cmp_str);
    hcg_buf b = {0};
    hcg_buf_add(&b, "world %s%s {\n%s\n", types_world ? "types-" : "", world,
                imports.s ? imports.s : "");
    for (size_t k = 0; k < ninc; k++) {
        hcg_buf_add(&b, "    %s\n", incs[k]);
        free(incs[k]);
    }
    hcg_buf_add(&b, "}");
    free(incs);
    free(imports.s);
    return hcg_buf_take(&b);
}
