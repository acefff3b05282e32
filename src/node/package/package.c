/* Packages in Hyperware's layout: metadata.json at the root, pkg/manifest.json
 * listing the processes, pkg/ holding their binaries (shared objects here). */
#include "package.h"
#include "../modules/modules.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* A required field of an object, of a given type. */
static json_t *field(json_t *obj, const char *key, json_type type,
                     const char *where, char *err, size_t errlen)
{
    json_t *v = json_object_get(obj, key);
    static const char *const tn[] = {"an object",  "an array", "a string",
                                     "an integer", "a number", "true",
                                     "false",      "null"};
    if (v == NULL) {
        fail(err, errlen, "%s: missing field \"%s\"", where, key);
        return NULL;
    }
    bool ok =
        json_typeof(v) == type || (type == JSON_TRUE && json_is_boolean(v));
    if (!ok) {
        fail(err, errlen, "%s: field \"%s\" must be %s, not %s", where, key,
             type == JSON_TRUE ? "a boolean" : tn[type], json_type_name(v));
        return NULL;
    }
    return v;
}

static int parse_caps(json_t *arr, const char *where, const char *key,
                      hc_manifest_cap **out, size_t *len, char *err,
                      size_t errlen)
{
    *out = NULL;
    *len = 0;
    size_t n = json_array_size(arr);
    if (n == 0)
        return 0;
    *out = hcn_xcalloc(n, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        const char *pid = NULL;
        char *params = NULL;
        if (json_is_string(e)) {
            pid = json_string_value(e);
            params = hcn_xstrdup("\"messaging\"");
        } else if (json_is_object(e) &&
                   json_is_string(json_object_get(e, "process")) &&
                   json_object_get(e, "params") != NULL) {
            pid = json_string_value(json_object_get(e, "process"));
            params =
                json_dumps(json_object_get(e, "params"),
                           JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        } else {
            return fail(err, errlen,
                        "%s: %s[%zu] must be a process id string or "
                        "{\"process\": id, \"params\": JSON}",
                        where, key, i);
        }
        int rc = hc_process_id_check(pid);
        if (rc != 0) {
            free(params);
            return fail(err, errlen, "%s: %s[%zu]: '%s': %s", where, key, i,
                        pid, hc_strerror(rc));
        }
        (*out)[*len].process = hcn_xstrdup(pid);
        (*out)[*len].params = params;
        (*len)++;
    }
    return 0;
}

static int parse_entry(json_t *e, size_t i, hc_manifest_entry *out, char *err,
                       size_t errlen)
{
    char where[64];
    snprintf(where, sizeof where, "pkg/manifest.json[%zu]", i);
    if (!json_is_object(e))
        return fail(err, errlen, "%s must be an object, not %s", where,
                    json_type_name(e));
    json_t *name, *path, *onx, *net, *rc, *gc, *pub;
    if (!(name = field(e, "process_name", JSON_STRING, where, err, errlen)) ||
        !(path =
              field(e, "process_wasm_path", JSON_STRING, where, err, errlen)))
        return -1;
    onx = json_object_get(e, "on_exit");
    if (onx == NULL)
        return fail(err, errlen, "%s: missing field \"on_exit\"", where);
    if (!(net =
              field(e, "request_networking", JSON_TRUE, where, err, errlen)) ||
        !(rc = field(e, "request_capabilities", JSON_ARRAY, where, err,
                     errlen)) ||
        !(gc =
              field(e, "grant_capabilities", JSON_ARRAY, where, err, errlen)) ||
        !(pub = field(e, "public", JSON_TRUE, where, err, errlen)))
        return -1;
    const char *pn = json_string_value(name);
    if (!hcc_name_safe(pn, strlen(pn), false))
        return fail(err, errlen,
                    "%s: process_name '%s' is not hypermap-safe (a-z, 0-9, "
                    "'-')",
                    where, pn);
    out->process_name = hcn_xstrdup(pn);
    out->process_wasm_path = hcn_xstrdup(json_string_value(path));
    if (json_is_string(onx) && strcmp(json_string_value(onx), "None") == 0) {
        out->on_exit = HW_ON_EXIT_NONE;
    } else if (json_is_string(onx) &&
               strcmp(json_string_value(onx), "Restart") == 0) {
        out->on_exit = HW_ON_EXIT_RESTART;
    } else if (json_is_object(onx) &&
               json_is_array(json_object_get(onx, "Requests"))) {
        out->on_exit = HW_ON_EXIT_REQUESTS;
        out->on_exit_requests =
            json_dumps(json_object_get(onx, "Requests"), JSON_COMPACT);
    } else {
        return fail(err, errlen,
                    "%s: on_exit must be \"None\", \"Restart\" or "
                    "{\"Requests\": [...]}",
                    where);
    }
    out->request_networking = json_is_true(net);
    out->public_ = json_is_true(pub);
    json_t *inp = json_object_get(e, "in_process");
    if (inp != NULL && !json_is_boolean(inp))
        return fail(err, errlen, "%s: \"in_process\" must be true or false",
                    where);
    out->in_process = json_is_true(inp);
    if (parse_caps(rc, where, "request_capabilities",
                   &out->request_capabilities, &out->request_capabilities_len,
                   err, errlen) != 0 ||
        parse_caps(gc, where, "grant_capabilities", &out->grant_capabilities,
                   &out->grant_capabilities_len, err, errlen) != 0)
        return -1;
    return 0;
}

int hc_package_parse(const char *metadata_json, const char *manifest_json,
                     hc_package *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *meta = json_loads(metadata_json, 0, &je);
    if (meta == NULL)
        return fail(err, errlen, "metadata.json:%d:%d: %s", je.line, je.column,
                    je.text);
    int rc = -1;
    json_t *man = NULL;
    json_t *props =
        field(meta, "properties", JSON_OBJECT, "metadata.json", err, errlen);
    json_t *pkg, *publ, *ver;
    if (props == NULL ||
        !(pkg = field(props, "package_name", JSON_STRING,
                      "metadata.json properties", err, errlen)) ||
        !(publ = field(props, "publisher", JSON_STRING,
                       "metadata.json properties", err, errlen)) ||
        !(ver = field(props, "current_version", JSON_STRING,
                      "metadata.json properties", err, errlen)))
        goto out;
    const char *pk = json_string_value(pkg), *pb = json_string_value(publ);
    if (!hcc_name_safe(pk, strlen(pk), false)) {
        fail(err, errlen,
             "metadata.json: package_name '%s' is not hypermap-safe (a-z, "
             "0-9, '-')",
             pk);
        goto out;
    }
    if (!hcc_name_safe(pb, strlen(pb), true)) {
        fail(err, errlen,
             "metadata.json: publisher '%s' is not hypermap-safe (a-z, 0-9, "
             "'-', '.')",
             pb);
        goto out;
    }
    if (strcmp(pb, "sys") == 0) {
        fail(err, errlen,
             "metadata.json: publisher 'sys' is reserved for the node's own "
             "runtime (its processes skip capability checks)");
        goto out;
    }
    out->package_name = hcn_xstrdup(pk);
    out->publisher = hcn_xstrdup(pb);
    out->version = hcn_xstrdup(json_string_value(ver));
    man = json_loads(manifest_json, 0, &je);
    if (man == NULL) {
        fail(err, errlen, "pkg/manifest.json:%d:%d: %s", je.line, je.column,
             je.text);
        goto out;
    }
    if (!json_is_array(man)) {
        fail(err, errlen,
             "pkg/manifest.json must be an array of process entries, not %s",
             json_type_name(man));
        goto out;
    }
    size_t n = json_array_size(man);
    out->entries = n ? hcn_xcalloc(n, sizeof *out->entries) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (parse_entry(json_array_get(man, i), i, &out->entries[i], err,
                        errlen) != 0) {
            out->entries_len = i + 1;
            goto out;
        }
        out->entries_len = i + 1;
        for (size_t k = 0; k < i; k++)
            if (strcmp(out->entries[k].process_name,
                       out->entries[i].process_name) == 0) {
                fail(err, errlen,
                     "pkg/manifest.json[%zu]: process_name '%s' is already "
                     "used by entry %zu",
                     i, out->entries[i].process_name, k);
                goto out;
            }
    }
    rc = 0;
out:
    json_decref(meta);
    json_decref(man);
    if (rc != 0)
        hc_package_fini(out);
    return rc;
}

static void caps_fini(hc_manifest_cap *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].process);
        free(c[i].params);
    }
    free(c);
}

void hc_package_fini(hc_package *p)
{
    for (size_t i = 0; i < p->entries_len; i++) {
        hc_manifest_entry *e = &p->entries[i];
        free(e->process_name);
        free(e->process_wasm_path);
        free(e->on_exit_requests);
        caps_fini(e->request_capabilities, e->request_capabilities_len);
        caps_fini(e->grant_capabilities, e->grant_capabilities_len);
    }
    free(p->entries);
    free(p->package_name);
    free(p->publisher);
    free(p->version);
    memset(p, 0, sizeof *p);
}

/* on_exit Requests as the manifest writes them:
 * [["node@p:k:pub", {Request}, {LazyLoadBlob}|null], ...] */
static int exit_requests(hcn_node *n, const char *json, hcn_on_exit *o,
                         const char *pid, char *err, size_t errlen)
{
    json_error_t je;
    json_t *arr = json_loads(json, 0, &je);
    size_t cnt = json_array_size(arr);
    o->kind = HW_ON_EXIT_REQUESTS;
    o->reqs = cnt ? hcn_xcalloc(cnt, sizeof *o->reqs) : NULL;
    int rc = 0;
    for (size_t i = 0; i < cnt; i++) {
        json_t *t = json_array_get(arr, i);
        const char *addr = json_string_value(json_array_get(t, 0));
        json_t *req = json_array_get(t, 1);
        json_t *body = json_object_get(req, "body");
        if (!json_is_array(t) || addr == NULL || !json_is_object(req) ||
            !json_is_array(body) || hc_address_check(addr) != 0) {
            rc = fail(err, errlen,
                      "%s: on_exit Requests[%zu] must be [\"node@p:k:pub\", "
                      "{\"inherit\", \"body\": [bytes], ...}, blob|null]",
                      pid, i);
            break;
        }
        hcn_exit_req *r = &o->reqs[o->nreqs++];
        if (strncmp(addr, "our@", 4) == 0)
            r->target = hcn_xasprintf("%s@%s", n->name, addr + 4);
        else
            r->target = hcn_xstrdup(addr);
        r->inherit = json_is_true(json_object_get(req, "inherit"));
        r->body_len = json_array_size(body);
        r->body = hcn_xmalloc(r->body_len);
        for (size_t k = 0; k < r->body_len; k++)
            r->body[k] = (uint8_t)json_integer_value(json_array_get(body, k));
        const char *md = json_string_value(json_object_get(req, "metadata"));
        r->metadata = md ? hcn_xstrdup(md) : NULL;
        json_t *blob = json_array_get(t, 2);
        json_t *bytes = json_object_get(blob, "bytes");
        if (json_is_array(bytes)) {
            size_t bl = json_array_size(bytes);
            uint8_t *b = hcn_xmalloc(bl);
            for (size_t k = 0; k < bl; k++)
                b[k] = (uint8_t)json_integer_value(json_array_get(bytes, k));
            r->blob = hcn_blob_new(
                json_string_value(json_object_get(blob, "mime")), b, bl);
            free(b);
        }
    }
    json_decref(arr);
    return rc;
}

/* What a manifest entry asks and grants, for its process p: messaging
 * itself, its request_capabilities (and networking), and the capabilities
 * it grants to processes already on the node (others are logged and
 * skipped). */
static void grant_entry(hcn_node *n, hcn_proc *p, const hc_manifest_entry *e)
{
    hcn_grant_messaging(n, p, p->id);
    for (size_t k = 0; k < e->request_capabilities_len; k++) {
        char *issuer =
            hcn_xasprintf("%s@%s", n->name, e->request_capabilities[k].process);
        hcn_grant(p, issuer, e->request_capabilities[k].params);
        free(issuer);
    }
    if (e->request_networking) {
        hcn_grant(p, n->kernel_addr, "\"network\"");
    }
    for (size_t k = 0; k < e->grant_capabilities_len; k++) {
        hcn_proc *q = hcn_node_find(n, e->grant_capabilities[k].process);
        if (q == NULL) {
            hcn_logf(n, 0,
                     "%s: grant_capabilities names %s, which is not on this "
                     "node; skipped",
                     p->id, e->grant_capabilities[k].process);
            continue;
        }
        hcn_grant(q, p->addr, e->grant_capabilities[k].params);
        hcn_proc_unref(q);
    }
}

/* Read and parse dir's metadata.json and pkg/manifest.json into pkg. */
static int read_package(const char *dir, hc_package *pkg, char *err,
                        size_t errlen)
{
    char *mpath = hcn_xasprintf("%s/metadata.json", dir);
    char *fpath = hcn_xasprintf("%s/pkg/manifest.json", dir);
    char *meta = hcn_read_file(mpath, NULL);
    char *man = hcn_read_file(fpath, NULL);
    int rc = -1;
    memset(pkg, 0, sizeof *pkg);
    if (meta == NULL || man == NULL)
        fail(err, errlen, "%s: cannot read %s", dir,
             meta == NULL ? "metadata.json" : "pkg/manifest.json");
    else
        rc = hc_package_parse(meta, man, pkg, err, errlen);
    free(meta);
    free(man);
    free(mpath);
    free(fpath);
    return rc;
}

int hcn_load_package(hcn_node *n, const char *dir, char *err, size_t errlen)
{
    int rc = -1;
    hc_package pkg = {0};
    if (read_package(dir, &pkg, err, errlen) != 0)
        goto out;
    char *pkgdir = hcn_xasprintf("%s/pkg", dir);
    char *abs = realpath(pkgdir, NULL);
    free(pkgdir);
    pkgdir = abs;
    /* Register every process first, so that grants can name them. */
    hcn_proc **procs = hcn_xcalloc(pkg.entries_len + 1, sizeof *procs);
    rc = 0;
    for (size_t i = 0; i < pkg.entries_len && rc == 0; i++) {
        hc_manifest_entry *e = &pkg.entries[i];
        char *pid = hcn_xasprintf("%s:%s:%s", e->process_name, pkg.package_name,
                                  pkg.publisher);
        const char *rel = e->process_wasm_path;
        while (*rel == '/')
            rel++;
        char *so = hcn_xasprintf("%s/%s", pkgdir ? pkgdir : dir, rel);
        struct stat st;
        int aerr;
        if (strstr(rel, "..") != NULL || stat(so, &st) != 0) {
            rc = fail(err, errlen, "%s: process_wasm_path '%s': no file at %s",
                      pid, e->process_wasm_path, so);
            free(so);
        } else if ((procs[i] = hcn_node_add_proc(n, pid, e->public_, &aerr)) ==
                   NULL) {
            rc = fail(err, errlen,
                      "%s: a process with this id is already "
                      "loaded",
                      pid);
            free(so);
        } else {
            procs[i]->so_path = so;
            procs[i]->isolated = n->cfg.isolate && !e->in_process;
            procs[i]->pkg_dir = pkgdir ? hcn_xstrdup(pkgdir) : NULL;
            procs[i]->on_exit.kind = e->on_exit;
            if (e->on_exit == HW_ON_EXIT_REQUESTS)
                rc = exit_requests(n, e->on_exit_requests, &procs[i]->on_exit,
                                   pid, err, errlen);
        }
        free(pid);
    }
    for (size_t i = 0; i < pkg.entries_len && rc == 0; i++)
        grant_entry(n, procs[i], &pkg.entries[i]);
    for (size_t i = 0; i < pkg.entries_len; i++)
        if (procs[i]) {
            if (rc != 0)
                hcn_node_remove_proc(n, procs[i]);
            hcn_proc_unref(procs[i]);
        }
    free(procs);
    if (rc == 0) {
        /* Its pkg/ folder becomes the read-only drive /<package_id>/pkg. */
        char *pkg_id = hcn_xasprintf("%s:%s", pkg.package_name, pkg.publisher);
        hcn_vfs_add_package(n, pkg_id, pkgdir);
        free(pkg_id);
        hcn_logf(n, 1, "loaded package %s:%s (%zu processes)", pkg.package_name,
                 pkg.publisher, pkg.entries_len);
    }
    free(pkgdir);
out:
    hc_package_fini(&pkg);
    return rc;
}

/* ------------------------------------------------------------ reinstall */

/* Whether process id `pid` belongs to package "pkg:pub" (suffix). */
static bool in_package(const char *pid, const char *pkg_id)
{
    const char *c = strchr(pid, ':');
    return c && strcmp(c + 1, pkg_id) == 0;
}

/* Wait (polling, as the control thread may) until every process in `v`
 * has started (bindings and init done) an instance after `before[i]`, or
 * stopped, or left — 10 s, and up to 5 minutes while the node translates
 * components to native code; the ids that did not go into `slow`.  A process
 * whose first instance after `before[i]` ended before it started (it crashed,
 * its init returned, its state did not load) goes into `failed`, with why:
 * {"process": id, "reason": text}. */
static void wait_restarted(hcn_proc **v, const int *before, size_t nv,
                           json_t *slow, json_t *failed)
{
    int64_t deadline = hcn_now_ns() + 10LL * 1000000000;
    /* a component's first translation to native code (seconds, the
     * compiler's) does not count in those 10 s, up to 5 minutes */
    int64_t translating_deadline = hcn_now_ns() + 300LL * 1000000000;
    for (size_t i = 0; i < nv; i++) {
        hcn_proc *p = v[i];
        for (;;) {
            bool left = atomic_load(&p->status) == HCN_PROC_EXITED;
            int inst = atomic_load(&p->instance);
            bool restarted = inst > before[i] && !atomic_load(&p->reload) &&
                             !hcn_mailbox_stopping(&p->mb) &&
                             (hcn_proc_started(p) ||
                              atomic_load(&p->status) != HCN_PROC_RUNNING);
            /* read after the status: a failure is noted before the status
             * changes (proc.c), so a status changed by a failed start is
             * never seen without its failure */
            if (before[i] >= 0 &&
                atomic_load(&p->start_failed_inst) > before[i]) {
                pthread_mutex_lock(&p->lock);
                json_array_append_new(
                    failed, json_pack("{ssss}", "process", p->id, "reason",
                                      p->start_failure ? p->start_failure
                                                       : "did not start"));
                pthread_mutex_unlock(&p->lock);
                break;
            }
            if (left || (before[i] >= 0 && restarted))
                break;
            int64_t now = hcn_now_ns();
            /* the 10 s of a start begin again when translations end */
            if (atomic_load(&p->node->translating) > 0 &&
                now < translating_deadline &&
                deadline < now + 10LL * 1000000000)
                deadline = now + 10LL * 1000000000;
            if (now > deadline) {
                json_array_append_new(slow, json_string(p->id));
                break;
            }
            usleep(5000);
        }
    }
}

/* What an install is to do, all checked before anything changes. */
typedef struct install_plan {
    hc_package pkg;
    char *pkgdir;       /* the package's pkg/ folder, a real path */
    char *pkg_id;       /* "package:publisher" */
    char **sos;         /* per manifest entry: its binary (taken when placed) */
    hcn_on_exit *exits; /* per entry: its on-exit (taken when placed) */
} install_plan;

static void plan_fini(install_plan *pl)
{
    for (size_t i = 0; pl->sos && i < pl->pkg.entries_len; i++)
        free(pl->sos[i]);
    for (size_t i = 0; pl->exits && i < pl->pkg.entries_len; i++)
        hcn_on_exit_fini(&pl->exits[i]);
    free(pl->sos);
    free(pl->exits);
    free(pl->pkg_id);
    free(pl->pkgdir);
    hc_package_fini(&pl->pkg);
}

/* Read the package at dir and check everything an install needs: its
 * pkg/ folder, every entry's binary, every on-exit request.  0, or -1 with
 * a message in err (the plan is released by plan_fini either way). */
static int plan_read(hcn_node *n, const char *dir, install_plan *pl, char *err,
                     size_t errlen)
{
    if (read_package(dir, &pl->pkg, err, errlen) != 0)
        return -1;
    char *rel_pkg = hcn_xasprintf("%s/pkg", dir);
    pl->pkgdir = realpath(rel_pkg, NULL);
    free(rel_pkg);
    if (pl->pkgdir == NULL)
        return fail(err, errlen, "%s: no pkg/ folder", dir);
    hc_package *pkg = &pl->pkg;
    pl->pkg_id = hcn_xasprintf("%s:%s", pkg->package_name, pkg->publisher);
    pl->sos = hcn_xcalloc(pkg->entries_len + 1, sizeof *pl->sos);
    for (size_t i = 0; i < pkg->entries_len; i++) {
        const char *rel = pkg->entries[i].process_wasm_path;
        while (*rel == '/')
            rel++;
        pl->sos[i] = hcn_xasprintf("%s/%s", pl->pkgdir, rel);
        struct stat st;
        if (strstr(rel, "..") != NULL || stat(pl->sos[i], &st) != 0 ||
            !S_ISREG(st.st_mode))
            return fail(err, errlen,
                        "%s:%s: process_wasm_path '%s': no file at %s",
                        pkg->entries[i].process_name, pl->pkg_id,
                        pkg->entries[i].process_wasm_path, pl->sos[i]);
    }
    pl->exits = hcn_xcalloc(pkg->entries_len + 1, sizeof *pl->exits);
    for (size_t i = 0; i < pkg->entries_len; i++) {
        hc_manifest_entry *e = &pkg->entries[i];
        pl->exits[i].kind = e->on_exit;
        if (e->on_exit == HW_ON_EXIT_REQUESTS) {
            char *pid = hcn_xasprintf("%s:%s", e->process_name, pl->pkg_id);
            int bad = exit_requests(n, e->on_exit_requests, &pl->exits[i], pid,
                                    err, errlen);
            free(pid);
            if (bad)
                return -1;
        }
    }
    return 0;
}

/* The processes an install waits for, each with the instance it had (-1:
 * it is to leave, 0: it is new); each holds a reference. */
typedef struct install_waits {
    hcn_proc **procs;
    int *before;
    size_t n, cap;
} install_waits;

static void waits_add(install_waits *w, hcn_proc *p, int before)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->procs = realloc(w->procs, w->cap * sizeof *w->procs);
        w->before = realloc(w->before, w->cap * sizeof *w->before);
        if (w->procs == NULL || w->before == NULL)
            abort();
    }
    w->procs[w->n] = hcn_proc_ref(p);
    w->before[w->n++] = before;
}

/* Whether process id `pid` is one of the manifest's entries. */
static bool plan_lists(const install_plan *pl, const char *pid)
{
    for (size_t e = 0; e < pl->pkg.entries_len; e++) {
        size_t l = strlen(pl->pkg.entries[e].process_name);
        if (strncmp(pid, pl->pkg.entries[e].process_name, l) == 0 &&
            pid[l] == ':')
            return true;
    }
    return false;
}

/* The package's processes no longer in its manifest (spawned children
 * too: their parents spawn them again from the new binary) leave: a
 * running one at its next receive (waited for), the others now.  Their
 * ids go to `removed`. */
static void retire_unlisted(hcn_node *n, const install_plan *pl,
                            json_t *removed, install_waits *w)
{
    pthread_rwlock_rdlock(&n->table_lock);
    hcn_proc **all = hcn_xcalloc(HASH_COUNT(n->procs) + 1, sizeof *all);
    size_t nall = 0;
    for (hcn_proc *p = n->procs; p; p = p->hh.next)
        if (p->ops == NULL && in_package(p->id, pl->pkg_id))
            all[nall++] = hcn_proc_ref(p);
    pthread_rwlock_unlock(&n->table_lock);
    for (size_t i = 0; i < nall; i++) {
        hcn_proc *p = all[i];
        if (!plan_lists(pl, p->id)) {
            json_array_append_new(removed, json_string(p->id));
            if (p->has_thread) {
                atomic_store(&p->retire, true);
                hcn_mailbox_stop(&p->mb);
                waits_add(w, p, -1);
            } else {
                hcn_node_remove_proc(n, p);
            }
        }
        hcn_proc_unref(p);
    }
    free(all);
}

/* Entry i of the manifest takes its place: a new process joins the table
 * (*fresh, not started yet), a present one takes the new binary at its
 * next start, which a running one makes now (waited for).  Its id goes to
 * `added` or `again`.  Returns the process (a reference), or NULL with a
 * message in err when its id was taken meanwhile. */
static hcn_proc *place_entry(hcn_node *n, install_plan *pl, size_t i,
                             bool *fresh, json_t *added, json_t *again,
                             install_waits *w, char *err, size_t errlen)
{
    hc_manifest_entry *e = &pl->pkg.entries[i];
    char *pid = hcn_xasprintf("%s:%s", e->process_name, pl->pkg_id);
    hcn_proc *p = hcn_node_find(n, pid);
    hcn_on_exit o = pl->exits[i];
    memset(&pl->exits[i], 0, sizeof pl->exits[i]);
    if (p == NULL) {
        int aerr;
        p = hcn_node_add_proc(n, pid, e->public_, &aerr);
        if (p == NULL) { /* raced with a spawn of that name */
            hcn_on_exit_fini(&o);
            fail(err, errlen, "%s: the id was taken meanwhile", pid);
            free(pid);
            return NULL;
        }
        p->so_path = pl->sos[i];
        p->isolated = n->cfg.isolate && !e->in_process;
        pl->sos[i] = NULL;
        p->pkg_dir = hcn_xstrdup(pl->pkgdir);
        hcn_on_exit_fini(&p->on_exit);
        p->on_exit = o;
        *fresh = true;
        json_array_append_new(added, json_string(pid));
    } else {
        pthread_mutex_lock(&p->lock);
        free(p->pending_so);
        p->pending_so = pl->sos[i];
        pl->sos[i] = NULL;
        free(p->pending_pkg_dir);
        p->pending_pkg_dir = hcn_xstrdup(pl->pkgdir);
        p->pending_isolated = n->cfg.isolate && !e->in_process;
        hcn_on_exit_fini(&p->on_exit);
        p->on_exit = o;
        p->public_ = e->public_;
        pthread_mutex_unlock(&p->lock);
        json_array_append_new(again, json_string(pid));
        if (p->has_thread && atomic_load(&p->status) != HCN_PROC_EXITED) {
            waits_add(w, p, atomic_load(&p->instance));
            atomic_store(&p->reload, true);
            hcn_mailbox_stop(&p->mb);
        }
    }
    free(pid);
    return p;
}

/* hcn_install_package under its lock: plan, retire, place, grant, start,
 * wait. */
static int install_locked(hcn_node *n, const char *dir, json_t *report,
                          char *err, size_t errlen)
{
    install_plan pl = {0};
    if (plan_read(n, dir, &pl, err, errlen) != 0) {
        plan_fini(&pl);
        return -1;
    }
    json_t *added = json_array(), *again = json_array(),
           *removed = json_array(), *slow = json_array(),
           *failed = json_array();
    json_object_set_new(report, "package", json_string(pl.pkg_id));
    json_object_set_new(report, "installed", added);
    json_object_set_new(report, "reinstalled", again);
    json_object_set_new(report, "removed", removed);
    json_object_set_new(report, "not_restarted", slow);
    json_object_set_new(report, "failed", failed);

    size_t nentries = pl.pkg.entries_len;
    install_waits w = {0};
    retire_unlisted(n, &pl, removed, &w);
    hcn_proc **procs = hcn_xcalloc(nentries + 1, sizeof *procs);
    bool *fresh = hcn_xcalloc(nentries + 1, sizeof *fresh);
    int rc = 0;
    for (size_t i = 0; i < nentries && rc == 0; i++) {
        procs[i] =
            place_entry(n, &pl, i, &fresh[i], added, again, &w, err, errlen);
        rc = procs[i] ? 0 : -1;
    }
    for (size_t i = 0; i < nentries && rc == 0; i++)
        grant_entry(n, procs[i], &pl.pkg.entries[i]);
    hcn_vfs_add_package(n, pl.pkg_id, pl.pkgdir);
    /* New processes start (or, after a failure, leave again). */
    for (size_t i = 0; i < nentries; i++) {
        if (procs[i] && fresh[i] && rc == 0) {
            if (hcn_proc_start_thread(procs[i]) != 0)
                hcn_logf(n, 0, "cannot start a thread for %s", procs[i]->id);
            else
                waits_add(&w, procs[i], 0);
        } else if (procs[i] && fresh[i] && rc != 0) {
            hcn_node_remove_proc(n, procs[i]);
        }
        hcn_proc_unref(procs[i]);
    }
    wait_restarted(w.procs, w.before, w.n, slow, failed);
    for (size_t i = 0; i < w.n; i++)
        hcn_proc_unref(w.procs[i]);
    free(w.procs);
    free(w.before);
    free(procs);
    free(fresh);
    if (rc == 0)
        hcn_logf(n, 0,
                 "installed package %s (%zu new, %zu reinstalled, %zu "
                 "removed, %zu did not start)",
                 pl.pkg_id, json_array_size(added), json_array_size(again),
                 json_array_size(removed), json_array_size(failed));
    plan_fini(&pl);
    return rc;
}

int hcn_install_package(hcn_node *n, const char *dir, json_t *report, char *err,
                        size_t errlen)
{
    /* one install at a time (a watch and a hand-made install may race) */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    int rc = install_locked(n, dir, report, err, errlen);
    pthread_mutex_unlock(&mu);
    return rc;
}
