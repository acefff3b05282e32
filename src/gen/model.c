/* The front end's model (gen.h): names of kinds, the handler predicates,
 * its release, deep copies of types, and the JSON form printed by
 * `hyperc gen --model`. */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
#define HCG_KIND_TEXT(name, text) [HCG_##name] = text,
    HCG_KIND_MAP(HCG_KIND_TEXT)
#undef HCG_KIND_TEXT
};

const char *hcg_kind_name(hcg_kind k)
{
    return kind_names[k];
}

bool hcg_kind_signed(hcg_kind k)
{
    return k >= HCG_S8 && k <= HCG_S64;
}

bool hcg_kind_unsigned(hcg_kind k)
{
    return k >= HCG_U8 && k <= HCG_U64;
}

int hcg_kind_bits(hcg_kind k)
{
    switch (k) {
    case HCG_S8:
    case HCG_U8: return 8;
    case HCG_S16:
    case HCG_U16: return 16;
    case HCG_S32:
    case HCG_U32:
    case HCG_F32: return 32;
    case HCG_S64:
    case HCG_U64:
    case HCG_F64: return 64;
    default: return 0;
    }
}

static const char *const hkind_names[] = {
#define HCG_HKIND_TEXT(name, text) [HCG_H_##name] = text,
    HCG_HKIND_MAP(HCG_HKIND_TEXT)
#undef HCG_HKIND_TEXT
};

const char *hcg_hkind_name(hcg_hkind k)
{
    return hkind_names[k];
}

bool hcg_handler_has(const hcg_handler *h, hcg_hkind k)
{
    for (size_t i = 0; i < h->nkinds; i++)
        if (h->kinds[i] == k)
            return true;
    return false;
}

bool hcg_handler_is_request(const hcg_handler *h)
{
    return hcg_handler_has(h, HCG_H_HTTP) || hcg_handler_has(h, HCG_H_LOCAL) ||
           hcg_handler_has(h, HCG_H_REMOTE);
}

const hcg_type *hcg_model_type(const hcg_model *m, int id)
{
    return id >= 0 && (size_t)id < m->ntypes ? &m->types[id] : NULL;
}

int hcg_unalias(const hcg_model *m, int id)
{
    const hcg_type *t;
    while ((t = hcg_model_type(m, id)) != NULL && t->kind == HCG_ALIAS)
        id = t->elem;
    return id;
}

/* ---------------------------------------------------------------- release */

static void type_fini(hcg_type *t)
{
    free(t->c);
    free(t->name);
    for (size_t i = 0; i < t->nfields; i++)
        free(t->fields[i].name);
    free(t->fields);
    for (size_t i = 0; i < t->nvariants; i++) {
        free(t->variants[i].c);
        free(t->variants[i].wire);
    }
    free(t->variants);
    free(t->items);
    free(t->tag_field);
    for (size_t i = 0; i < t->ncases; i++) {
        free(t->cases[i].c);
        free(t->cases[i].wire);
        free(t->cases[i].member);
    }
    free(t->cases);
}

void hcg_types_free(hcg_type *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        type_fini(&t[i]);
    free(t);
}

static void handler_fini(hcg_handler *h)
{
    free(h->name);
    free(h->c_name);
    free(h->variant);
    free(h->returns);
    for (size_t i = 0; i < h->nparams; i++) {
        free(h->params[i].name);
        free(h->params[i].type);
    }
    free(h->params);
    free(h->method);
    free(h->path);
}

static void params_fini(hcg_params *p)
{
    free(p->name);
    free(p->icon);
    free(p->widget);
    free(p->ui_path);
    free(p->wit_world);
    free(p->ui.static_content);
    free(p->migrate);
    for (size_t i = 0; i < p->nendpoints; i++) {
        free(p->endpoints[i].path);
        free(p->endpoints[i].config.static_content);
    }
    free(p->endpoints);
}

void hcg_model_free(hcg_model *m)
{
    if (m == NULL)
        return;
    free(m->file);
    free(m->state);
    params_fini(&m->process);
    for (size_t i = 0; i < m->nhandlers; i++)
        handler_fini(&m->handlers[i]);
    free(m->handlers);
    hcg_types_free(m->types, m->ntypes);
    for (size_t i = 0; i < m->ninputs; i++)
        free(m->inputs[i]);
    free(m->inputs);
    free(m);
}

/* ------------------------------------------------------------------ copies */

static char *dup(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

static void *dup_array(const void *v, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *d = malloc(n * size);
    if (d == NULL)
        abort();
    memcpy(d, v, n * size);
    return d;
}

hcg_type *hcg_types_copy(const hcg_type *t, size_t n)
{
    hcg_type *out = calloc(n ? n : 1, sizeof *out);
    if (out == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        hcg_type *o = &out[i];
        *o = t[i];
        o->c = dup(t[i].c);
        o->name = dup(t[i].name);
        o->fields = dup_array(t[i].fields, t[i].nfields, sizeof *o->fields);
        for (size_t k = 0; k < o->nfields; k++)
            o->fields[k].name = dup(t[i].fields[k].name);
        o->variants =
            dup_array(t[i].variants, t[i].nvariants, sizeof *o->variants);
        for (size_t k = 0; k < o->nvariants; k++) {
            o->variants[k].c = dup(t[i].variants[k].c);
            o->variants[k].wire = dup(t[i].variants[k].wire);
        }
        o->items = dup_array(t[i].items, t[i].nitems, sizeof *o->items);
        o->tag_field = dup(t[i].tag_field);
        o->cases = dup_array(t[i].cases, t[i].ncases, sizeof *o->cases);
        for (size_t k = 0; k < o->ncases; k++) {
            o->cases[k].c = dup(t[i].cases[k].c);
            o->cases[k].wire = dup(t[i].cases[k].wire);
            o->cases[k].member = dup(t[i].cases[k].member);
        }
    }
    return out;
}

/* -------------------------------------------------------------------- JSON */

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *binding_json(const hcg_binding *b, bool http)
{
    json_t *o = json_object();
    json_object_set_new(o, "authenticated", json_boolean(b->authenticated));
    json_object_set_new(o, "secure_subdomain",
                        json_boolean(b->secure_subdomain));
    if (http) {
        json_object_set_new(o, "local_only", json_boolean(b->local_only));
        json_object_set_new(o, "static_content",
                            str_or_null(b->static_content));
    } else {
        json_object_set_new(o, "extension", json_boolean(b->extension));
    }
    return o;
}

static json_t *params_json(const hcg_params *p)
{
    json_t *o = json_object();
    if (!p->designated)
        return o;
    const char *const keys[] = {"name", "icon", "widget", "ui_path",
                                "wit_world"};
    const char *const vals[] = {p->name, p->icon, p->widget, p->ui_path,
                                p->wit_world};
    for (size_t i = 0; i < 5; i++)
        if (vals[i])
            json_object_set_new(o, keys[i], json_string(vals[i]));
    json_object_set_new(o, "ui",
                        p->has_ui ? binding_json(&p->ui, true) : json_null());
    if (p->save_kind)
        json_object_set_new(o, "save_config",
                            json_pack("{sssI}", "kind", p->save_kind, "n",
                                      (json_int_t)p->save_n));
    json_object_set_new(o, "state_version",
                        json_integer((json_int_t)p->state_version));
    if (p->migrate)
        json_object_set_new(o, "migrate", json_string(p->migrate));
    json_object_set_new(o, "manual_logging", json_boolean(p->manual_logging));
    json_t *eps = json_array();
    for (size_t i = 0; i < p->nendpoints; i++) {
        const hcg_endpoint *e = &p->endpoints[i];
        json_array_append_new(
            eps,
            json_pack("{ssssso}", "kind", e->http ? "Http" : "Ws", "path",
                      e->path, "config", binding_json(&e->config, e->http)));
    }
    json_object_set_new(o, "endpoints", eps);
    return o;
}

static json_t *handler_json(const hcg_handler *h)
{
    json_t *kinds = json_array();
    for (size_t i = 0; i < h->nkinds; i++)
        json_array_append_new(kinds, json_string(hcg_hkind_name(h->kinds[i])));
    json_t *params = json_array();
    for (size_t i = 0; i < h->nparams; i++) {
        const hcg_param *p = &h->params[i];
        json_t *pj = json_pack("{ssss}", "name", p->name, "type", p->type);
        if (p->has_wire)
            json_object_set_new(pj, "wire", json_integer(p->wire));
        json_array_append_new(params, pj);
    }
    json_t *o = json_pack("{sssssssosssoso*so*sisi}", "name", h->name, "c_name",
                          h->c_name, "variant", h->variant, "kinds", kinds,
                          "returns", h->returns, "params", params, "method",
                          h->method ? json_string(h->method) : NULL, "path",
                          h->path ? json_string(h->path) : NULL, "line",
                          (int)h->line, "col", (int)h->col);
    if (h->has_returns_wire)
        json_object_set_new(o, "returns_wire", json_integer(h->returns_wire));
    if (h->variadic)
        json_object_set_new(o, "variadic", json_true());
    if (h->prototype_only)
        json_object_set_new(o, "prototype_only", json_true());
    return o;
}

static json_t *type_json(const hcg_type *t)
{
    json_t *o = json_pack("{ssss}", "kind", hcg_kind_name(t->kind), "c", t->c);
    switch (t->kind) {
    case HCG_RECORD: {
        json_t *fields = json_array();
        for (size_t i = 0; i < t->nfields; i++)
            json_array_append_new(
                fields,
                t->fields[i].skip
                    ? json_pack("{sssb}", "name", t->fields[i].name, "skip", 1)
                    : json_pack("{sssi}", "name", t->fields[i].name, "type",
                                t->fields[i].type));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "fields", fields);
        break;
    }
    case HCG_ENUM: {
        json_t *vars = json_array();
        for (size_t i = 0; i < t->nvariants; i++)
            json_array_append_new(
                vars, json_pack("{sssssI}", "c", t->variants[i].c, "wire",
                                t->variants[i].wire, "value",
                                (json_int_t)t->variants[i].value));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "variants", vars);
        break;
    }
    case HCG_LIST:
    case HCG_OPTION:
        json_object_set_new(o, "elem", json_integer(t->elem));
        break;
    case HCG_MAP:
        json_object_set_new(o, "key", json_integer(t->key));
        json_object_set_new(o, "value", json_integer(t->elem));
        break;
    case HCG_ALIAS:
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "target", json_integer(t->elem));
        break;
    case HCG_VARIANT: {
        json_t *cases = json_array();
        for (size_t i = 0; i < t->ncases; i++) {
            const hcg_case *c = &t->cases[i];
            json_t *cj = json_pack("{ssss}", "c", c->c, "wire", c->wire);
            if (c->member) {
                json_object_set_new(cj, "member", json_string(c->member));
                json_object_set_new(cj, "type", json_integer(c->type));
            }
            json_array_append_new(cases, cj);
        }
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "tag", json_integer(t->tag));
        json_object_set_new(o, "tag_field", json_string(t->tag_field));
        json_object_set_new(o, "cases", cases);
        break;
    }
    case HCG_RESULT:
        json_object_set_new(o, "ok", json_integer(t->ok));
        json_object_set_new(o, "err", json_integer(t->err));
        break;
    case HCG_TUPLE: {
        json_t *items = json_array();
        for (size_t i = 0; i < t->nitems; i++)
            json_array_append_new(items, json_integer(t->items[i]));
        json_object_set_new(o, "items", items);
        break;
    }
    default: break;
    }
    return o;
}

json_t *hcg_model_json(const hcg_model *m)
{
    json_t *o = json_pack("{ss}", "file", m->file);
    if (m->state)
        json_object_set_new(o, "state", json_string(m->state));
    if (m->has_state_wire)
        json_object_set_new(o, "state_wire", json_integer(m->state_wire));
    if (m->has_process)
        json_object_set_new(o, "process", params_json(&m->process));
    json_t *handlers = json_array();
    for (size_t i = 0; i < m->nhandlers; i++)
        json_array_append_new(handlers, handler_json(&m->handlers[i]));
    json_object_set_new(o, "handlers", handlers);
    json_t *types = json_array();
    for (size_t i = 0; i < m->ntypes; i++)
        json_array_append_new(types, type_json(&m->types[i]));
    json_object_set_new(o, "types", types);
    json_t *inputs = json_array();
    for (size_t i = 0; i < m->ninputs; i++)
        json_array_append_new(inputs, json_string(m->inputs[i]));
    json_object_set_new(o, "inputs", inputs);
    return o;
}
