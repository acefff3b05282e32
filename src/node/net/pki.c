/* The PKI (net_int.h): name -> identity, from the peers file (JSON) and
 * from HnsUpdates, resolved as hyperdrive resolves them (the first ip
 * makes a direct node; no ip, its routers). */
#include "net_int.h"

#include "../../common/common.h"

#include <jansson.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <uthash.h>

typedef struct entry {
    UT_hash_handle hh;
    hcnn_peer_id id;
    bool from_file; /* else from an HnsUpdate: kept when the file changes */
} entry;

struct hcnn_pki {
    pthread_mutex_t mu;
    entry *map;
    char *file;           /* NULL: none */
    struct timespec seen; /* the file's mtime when last read */
    int64_t checked_ms;   /* when the mtime was last looked at (monotonic) */
};

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        abort();
    return d;
}

void hcnn_peer_id_fini(hcnn_peer_id *p)
{
    free(p->name);
    free(p->ip);
    for (size_t i = 0; i < p->nrouters; i++)
        free(p->routers[i]);
    free(p->routers);
    memset(p, 0, sizeof *p);
}

static void copy_id(hcnn_peer_id *d, const hcnn_peer_id *s)
{
    *d = *s;
    d->name = dup_str(s->name);
    d->ip = dup_str(s->ip);
    d->routers = NULL;
    if (s->nrouters) {
        d->routers = calloc(s->nrouters, sizeof *d->routers);
        if (d->routers == NULL)
            abort();
        for (size_t i = 0; i < s->nrouters; i++)
            d->routers[i] = dup_str(s->routers[i]);
    }
}

bool hcnn_key_from_hex(const char *hex, uint8_t out[HCNN_PUBKEY])
{
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
        hex += 2;
    if (strlen(hex) != 2 * HCNN_PUBKEY)
        return false;
    for (int i = 0; i < HCNN_PUBKEY; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1 ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
            !strchr("0123456789abcdefABCDEF", hex[2 * i + 1]))
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

hcnn_pki *hcnn_pki_new(const char *file)
{
    hcnn_pki *k = calloc(1, sizeof *k);
    if (k == NULL)
        abort();
    pthread_mutex_init(&k->mu, NULL);
    k->file = dup_str(file);
    return k;
}

/* Drop every entry, or only those the file gave. */
static void clear(hcnn_pki *k, bool file_only)
{
    entry *e, *t;
    HASH_ITER(hh, k->map, e, t)
    {
        if (file_only && !e->from_file)
            continue;
        HASH_DEL(k->map, e);
        hcnn_peer_id_fini(&e->id);
        free(e);
    }
}

void hcnn_pki_free(hcnn_pki *k)
{
    if (k == NULL)
        return;
    clear(k, false);
    free(k->file);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* Insert a copy (the lock held). */
static void put_locked(hcnn_pki *k, const hcnn_peer_id *p, bool from_file)
{
    entry *e;
    HASH_FIND_STR(k->map, p->name, e);
    if (e) {
        HASH_DEL(k->map, e);
        hcnn_peer_id_fini(&e->id);
        free(e);
    }
    e = calloc(1, sizeof *e);
    if (e == NULL)
        abort();
    copy_id(&e->id, p);
    e->from_file = from_file;
    HASH_ADD_KEYPTR(hh, k->map, e->id.name, strlen(e->id.name), e);
}

static int check_id(const hcnn_peer_id *p, char *err, size_t errlen)
{
    if (p->name == NULL || !hcc_name_safe(p->name, strlen(p->name), true)) {
        snprintf(err, errlen,
                 "a node name must be hypermap-safe (a-z, 0-9, "
                 "'-', '.')");
        return -1;
    }
    if (p->ip == NULL && p->nrouters == 0) {
        snprintf(err, errlen, "%s: neither ips (with ports) nor routers",
                 p->name);
        return -1;
    }
    return 0;
}

int hcnn_pki_put(hcnn_pki *k, const hcnn_peer_id *p, char *err, size_t errlen)
{
    if (check_id(p, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&k->mu);
    put_locked(k, p, false);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

int hcnn_pki_put_hns(hcnn_pki *k, const hcnn_hns *h, char *err, size_t errlen)
{
    /* as hyperdrive ingests a log: the first ip makes a direct node (with
     * its ports), none makes an indirect one (its routers) */
    if (!hcc_name_safe(h->name, strlen(h->name), true)) {
        snprintf(err, errlen,
                 "HnsUpdate for '%s': a node name must be "
                 "hypermap-safe",
                 h->name);
        return -1;
    }
    hcnn_peer_id p = {.name = h->name};
    p.has_key = hcnn_key_from_hex(h->public_key, p.key);
    if (h->nips > 0) {
        p.ip = h->ips[0];
        for (size_t i = 0; i < h->nports; i++) {
            if (strcmp(h->port_names[i], "tcp") == 0)
                p.tcp_port = h->ports[i];
            else if (strcmp(h->port_names[i], "ws") == 0)
                p.ws_port = h->ports[i];
        }
    } else {
        p.routers = h->routers;
        p.nrouters = h->nrouters;
    }
    pthread_mutex_lock(&k->mu);
    put_locked(k, &p, false);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

/* One HnsUpdate in JSON into *out. */
static int from_json(json_t *o, hcnn_peer_id *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *key = json_string_value(json_object_get(o, "public_key"));
    json_t *ips = json_object_get(o, "ips");
    json_t *ports = json_object_get(o, "ports");
    json_t *routers = json_object_get(o, "routers");
    if (!json_is_object(o) || name == NULL || key == NULL ||
        (ips && !json_is_array(ips)) || (ports && !json_is_object(ports)) ||
        (routers && !json_is_array(routers))) {
        snprintf(err, errlen,
                 "each peer is {\"name\": NODE, \"public_key\": HEX, \"ips\": "
                 "[IP], \"ports\": {\"tcp\": N, \"ws\": N}, \"routers\": "
                 "[NODE]}");
        return -1;
    }
    out->name = dup_str(name);
    out->has_key = hcnn_key_from_hex(key, out->key);
    if (json_array_size(ips) > 0) {
        const char *ip = json_string_value(json_array_get(ips, 0));
        if (ip == NULL) {
            snprintf(err, errlen, "%s: ips holds strings", name);
            hcnn_peer_id_fini(out);
            return -1;
        }
        out->ip = dup_str(ip);
        const char *pk;
        json_t *pv;
        json_object_foreach(ports, pk, pv)
        {
            json_int_t v = json_integer_value(pv);
            if (!json_is_integer(pv) || v < 0 || v > 65535) {
                snprintf(err, errlen, "%s: port %s is not 0..65535", name, pk);
                hcnn_peer_id_fini(out);
                return -1;
            }
            if (strcmp(pk, "tcp") == 0)
                out->tcp_port = (uint16_t)v;
            else if (strcmp(pk, "ws") == 0)
                out->ws_port = (uint16_t)v;
        }
    } else if (json_array_size(routers) > 0) {
        size_t n = json_array_size(routers);
        out->routers = calloc(n, sizeof *out->routers);
        if (out->routers == NULL)
            abort();
        for (size_t i = 0; i < n; i++) {
            const char *r = json_string_value(json_array_get(routers, i));
            if (r == NULL) {
                snprintf(err, errlen, "%s: routers holds node names", name);
                hcnn_peer_id_fini(out);
                return -1;
            }
            out->routers[out->nrouters++] = dup_str(r);
        }
    }
    if (check_id(out, err, errlen) != 0) {
        hcnn_peer_id_fini(out);
        return -1;
    }
    return 0;
}

/* Read the file into a fresh map and swap it in (the lock held). */
static int reload_locked(hcnn_pki *k, char *err, size_t errlen)
{
    if (k->file == NULL)
        return 0;
    struct stat st;
    if (stat(k->file, &st) != 0) {
        if (errno == ENOENT) {
            /* not written yet: no peers from it; read once it appears */
            clear(k, true);
            memset(&k->seen, 0, sizeof k->seen);
            return 0;
        }
        snprintf(err, errlen, "cannot read the peers file %s: %s", k->file,
                 strerror(errno));
        return -1;
    }
    json_error_t je;
    json_t *root = json_load_file(k->file, 0, &je);
    if (!json_is_array(root)) {
        snprintf(err, errlen, "%s: %s", k->file,
                 root ? "not a JSON array of peers" : je.text);
        json_decref(root);
        return -1;
    }
    size_t i;
    json_t *v;
    hcnn_peer_id *ids = calloc(json_array_size(root) + 1, sizeof *ids);
    if (ids == NULL)
        abort();
    int rc = 0;
    json_array_foreach(root, i, v)
    {
        char why[200];
        if (from_json(v, &ids[i], why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: peer %zu: %s", k->file, i, why);
            rc = -1;
            break;
        }
    }
    size_t n = rc == 0 ? json_array_size(root) : i;
    if (rc == 0) {
        clear(k, true);
        for (size_t j = 0; j < n; j++)
            put_locked(k, &ids[j], true);
        k->seen = st.st_mtim;
    }
    for (size_t j = 0; j < n; j++)
        hcnn_peer_id_fini(&ids[j]);
    free(ids);
    json_decref(root);
    return rc;
}

int hcnn_pki_reload(hcnn_pki *k, char *err, size_t errlen)
{
    pthread_mutex_lock(&k->mu);
    int rc = reload_locked(k, err, errlen);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

bool hcnn_pki_get(hcnn_pki *k, const char *name, hcnn_peer_id *out)
{
    pthread_mutex_lock(&k->mu);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (k->file && now - k->checked_ms >= 250) {
        k->checked_ms = now;
        struct stat st;
        if (stat(k->file, &st) == 0 &&
            (st.st_mtim.tv_sec != k->seen.tv_sec ||
             st.st_mtim.tv_nsec != k->seen.tv_nsec)) {
            char err[256];
            if (reload_locked(k, err, sizeof err) != 0)
                k->seen = st.st_mtim; /* said once by the caller's log */
        }
    }
    entry *e;
    HASH_FIND_STR(k->map, name, e);
    if (e && out)
        copy_id(out, &e->id);
    pthread_mutex_unlock(&k->mu);
    return e != NULL;
}

size_t hcnn_pki_count(hcnn_pki *k)
{
    pthread_mutex_lock(&k->mu);
    size_t n = HASH_COUNT(k->map);
    pthread_mutex_unlock(&k->mu);
    return n;
}
