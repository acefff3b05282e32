/* homepage:homepage:sys: the tiles apps put on the node's home page, with
 * the request and response shapes of Hyperware's homepage package (its
 * homepage:sys-v2 WIT interface, serde JSON): "Add", "Remove",
 * "RemoveOther", "GetApps", "GetPushSubscription", "SetStylesheet".
 *
 * Tiles live in memory only, keyed by the sender's process id, and are
 * listed sorted by that id, as Hyperware's BTreeMap does; like Hyperware's
 * they do not survive a restart, so an app adds its tile each time it
 * starts.  Not public: a process needs messaging for homepage:homepage:sys
 * (request_capabilities), and to get the answer of GetApps it must be public
 * or grant homepage:homepage:sys messaging, as for any runtime module. */
#include "modkit.h"
#include "modules.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HOMEPAGE_PID "homepage:homepage:sys"

typedef struct tile {
    UT_hash_handle hh;
    char *id; /* the sender's process id (key) */
    char *label, *icon, *path, *widget;
    uint32_t order;
} tile;

typedef struct homepage_mod {
    pthread_mutex_t mu; /* tiles: the module's thread, and the home page's
                           readers (hcn_homepage_apps) */
    tile *tiles;
} homepage_mod;

/* Hyperware's homepage marks these as favorites by default. */
static const char *const default_faves[] = {"main:app-store:sys",
                                            "settings:settings:sys"};

static void tile_free(tile *t)
{
    free(t->id);
    free(t->label);
    free(t->icon);
    free(t->path);
    free(t->widget);
    free(t);
}

static char *opt_string(json_t *v)
{
    return json_is_string(v) ? hcn_xstrdup(json_string_value(v)) : NULL;
}

/* An option<string> field: absent or null is None; anything else that is
 * not a string makes the request malformed. */
static bool opt_ok(json_t *v)
{
    return v == NULL || json_is_null(v) || json_is_string(v);
}

static void log_line(hcn_proc *self, int level, const char *text)
{
    hcn_mod_log(self, level, "%s", text);
}

static void add_tile(hcn_proc *self, const char *src_pid, json_t *arg)
{
    homepage_mod *h = self->mod;
    json_t *label = json_object_get(arg, "label");
    json_t *icon = json_object_get(arg, "icon");
    json_t *path = json_object_get(arg, "path");
    json_t *widget = json_object_get(arg, "widget");
    if (!json_is_object(arg) || !json_is_string(label) || !opt_ok(icon) ||
        !opt_ok(path) || !opt_ok(widget)) {
        log_line(self, 1,
                 "homepage: Add needs {\"label\": string, \"icon\", \"path\", "
                 "\"widget\": string or null}; ignored");
        return;
    }
    tile *t;
    HASH_FIND_STR(h->tiles, src_pid, t);
    /* Hyperware numbers a tile by the count of tiles when it is added
     * (itself included when it replaces its own). */
    uint32_t order = (uint32_t)HASH_COUNT(h->tiles);
    if (t) {
        HASH_DEL(h->tiles, t);
        tile_free(t);
    }
    t = hcn_xcalloc(1, sizeof *t);
    t->id = hcn_xstrdup(src_pid);
    t->label = hcn_xstrdup(json_string_value(label));
    t->icon = opt_string(icon);
    t->widget = opt_string(widget);
    if (json_is_string(path)) {
        const char *p = json_string_value(path);
        t->path = hcn_xasprintf("/%s/%s", src_pid, p[0] == '/' ? p + 1 : p);
    }
    t->order = order;
    HASH_ADD_KEYPTR(hh, h->tiles, t->id, strlen(t->id), t);
}

static void remove_tile(hcn_proc *self, const char *pid)
{
    homepage_mod *h = self->mod;
    tile *t;
    HASH_FIND_STR(h->tiles, pid, t);
    if (t) {
        HASH_DEL(h->tiles, t);
        tile_free(t);
    }
}

static int by_id(const tile *a, const tile *b)
{
    return strcmp(a->id, b->id);
}

static json_t *opt_json(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* One App record as serde writes homepage::App. */
static json_t *app_json(const tile *t)
{
    const char *pkg = strchr(t->id, ':');
    const char *pub = pkg ? strchr(pkg + 1, ':') : NULL;
    json_t *a = json_object();
    json_object_set_new(a, "id", json_string(t->id));
    json_object_set_new(
        a, "process",
        json_stringn(t->id, pkg ? (size_t)(pkg - t->id) : strlen(t->id)));
    json_object_set_new(a, "package_name",
                        json_stringn(pkg ? pkg + 1 : "",
                                     pkg && pub ? (size_t)(pub - pkg - 1) : 0));
    json_object_set_new(a, "publisher", json_string(pub ? pub + 1 : ""));
    json_object_set_new(a, "path", opt_json(t->path));
    json_object_set_new(a, "label", json_string(t->label));
    json_object_set_new(a, "base64_icon", opt_json(t->icon));
    json_object_set_new(a, "widget", opt_json(t->widget));
    json_object_set_new(a, "order", json_integer(t->order));
    bool fave = false;
    for (size_t i = 0; i < sizeof default_faves / sizeof *default_faves; i++)
        fave = fave || strcmp(default_faves[i], t->id) == 0;
    json_object_set_new(a, "favorite", json_boolean(fave));
    return a;
}

/* The tiles as GetApps lists them, sorted by process id (h->mu held). */
static json_t *apps_list(homepage_mod *h)
{
    HASH_SORT(h->tiles, by_id);
    json_t *list = json_array();
    for (tile *t = h->tiles; t; t = t->hh.next)
        json_array_append_new(list, app_json(t));
    return list;
}

static void respond(hcn_proc *self, hcn_msg *m, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    HCN_MOD_REPLY(self, m, .when = HCN_MOD_IF_ASKED, .body = s);
    free(s);
}

/* Whether m carries the capability {issuer: our homepage, params: cap}, or
 * comes from the kernel or the injector (which act with every right). */
static bool has_cap(hcn_proc *self, const hcn_msg *m, const char *cap)
{
    const char *spid = hcn_addr_pid(m->source);
    if (strcmp(spid, "kernel:distro:sys") == 0 ||
        strcmp(spid, "terminal:terminal:sys") == 0)
        return true;
    char *want = hcn_xasprintf("\"%s\"", cap);
    bool ok = false;
    for (size_t i = 0; i < m->ncaps && !ok; i++) {
        if (strcmp(m->caps[i].issuer, self->addr) != 0)
            continue;
        char *canon = hcn_json_canonical(m->caps[i].params);
        ok = canon && strcmp(canon, want) == 0;
        free(canon);
    }
    free(want);
    return ok;
}

static void homepage_handle(hcn_proc *self, hcn_msg *m)
{
    homepage_mod *h = self->mod;
    if (m->kind != HCN_MSG_REQUEST || !hcn_mod_from_local(self, m)) {
        hcn_msg_unref(m);
        return;
    }
    const char *src = hcn_addr_pid(m->source);
    json_error_t je;
    json_t *body =
        json_loadb((const char *)m->body, m->body_len, JSON_DECODE_ANY, &je);
    const char *variant = NULL;
    json_t *arg = NULL;
    if (json_is_string(body)) {
        variant = json_string_value(body);
    } else if (json_is_object(body) && json_object_size(body) == 1) {
        void *it = json_object_iter(body);
        variant = json_object_iter_key(it);
        arg = json_object_iter_value(it);
    }
    pthread_mutex_lock(&h->mu);
    if (variant == NULL) {
        log_line(self, 1,
                 "homepage: request is not a homepage Request; "
                 "ignored");
    } else if (strcmp(variant, "Add") == 0 && arg) {
        add_tile(self, src, arg);
    } else if (strcmp(variant, "Remove") == 0 && !arg) {
        remove_tile(self, src);
    } else if (strcmp(variant, "RemoveOther") == 0 && json_is_string(arg)) {
        if (has_cap(self, m, "RemoveOther"))
            remove_tile(self, json_string_value(arg));
        else
            log_line(self, 1,
                     "homepage: RemoveOther without the RemoveOther "
                     "capability; ignored");
    } else if (strcmp(variant, "GetApps") == 0 && !arg) {
        respond(self, m, json_pack("{so}", "GetApps", apps_list(h)));
    } else if (strcmp(variant, "GetPushSubscription") == 0 && !arg) {
        respond(self, m, json_pack("{so}", "PushSubscription", json_null()));
    } else if (strcmp(variant, "SetStylesheet") == 0 && json_is_string(arg)) {
        log_line(self, 1,
                 "homepage: SetStylesheet is not supported by this "
                 "node (no home page is served); ignored");
    } else {
        log_line(self, 1,
                 "homepage: request is not a homepage Request; "
                 "ignored");
    }
    pthread_mutex_unlock(&h->mu);
    json_decref(body);
    hcn_msg_unref(m);
}

char *hcn_homepage_apps(hcn_node *n)
{
    hcn_proc *p = hcn_node_find(n, HOMEPAGE_PID);
    if (p == NULL)
        return NULL;
    homepage_mod *h = p->mod;
    char *s = NULL;
    if (h) {
        pthread_mutex_lock(&h->mu);
        json_t *list = apps_list(h);
        pthread_mutex_unlock(&h->mu);
        s = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(list);
    }
    hcn_proc_unref(p);
    return s;
}

static void homepage_fini(hcn_proc *self)
{
    homepage_mod *h = self->mod;
    if (h == NULL)
        return;
    tile *t, *tmp;
    HASH_ITER(hh, h->tiles, t, tmp)
    {
        HASH_DEL(h->tiles, t);
        tile_free(t);
    }
    pthread_mutex_destroy(&h->mu);
    free(h);
    self->mod = NULL;
}

static const hcn_module_ops homepage_ops = {
    .handle = homepage_handle,
    .fini = homepage_fini,
};

int hcn_mod_homepage_add(hcn_node *n, char *err, size_t errlen)
{
    hcn_proc *p = hcn_node_add_proc(n, HOMEPAGE_PID, false, NULL);
    p->ops = &homepage_ops;
    homepage_mod *h = hcn_xcalloc(1, sizeof(homepage_mod));
    pthread_mutex_init(&h->mu, NULL);
    p->mod = h;
    hcn_proc_unref(p);
    return 0;
}
