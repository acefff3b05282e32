/* The control socket <home>/node.sock: how `hyperc inject` and friends reach
 * a running node.  Frames are a 4-byte big-endian length and a JSON object
 * (control/frame.c, which the CLI shares); one request and one reply per
 * frame.  Local only: the socket file is mode 0600 in the owner's home
 * directory. */
#include "control.h"
#include "../modules/modules.h"
#include "../package/package.h"
#include "frame.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The control socket's state, hung on the node (n->ctl) by start. */
struct hcn_control {
    int fd; /* the listening socket, -1 when closed */
    char *path;
    pthread_t thread; /* accepts */
    bool has_thread;
    pthread_mutex_t mu; /* guards conns */
    int *conns;         /* open connection sockets, -1 = free slot */
    size_t nconns;
};

static char *b64_encode(const uint8_t *p, size_t n)
{
    char *out = hcn_xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* Decode base64; NULL if invalid. */
static uint8_t *b64_decode(const char *s, size_t *n)
{
    size_t len = strlen(s);
    if (len % 4 != 0)
        return NULL;
    uint8_t *out = hcn_xmalloc(len / 4 * 3 + 1);
    int r = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
    if (r < 0) {
        free(out);
        return NULL;
    }
    size_t pad = 0;
    if (len >= 1 && s[len - 1] == '=')
        pad++;
    if (len >= 2 && s[len - 2] == '=')
        pad++;
    *n = (size_t)r - pad;
    return out;
}

static json_t *error_reply(const char *fmt, const char *detail)
{
    char buf[512];
    snprintf(buf, sizeof buf, fmt, detail ? detail : "");
    return json_pack("{sbss}", "ok", 0, "error", buf);
}

/* Whether bytes can go as a text field: UTF-8 without a NUL byte (a C
 * string, and what jansson's reader takes by default, as `hyperc inject`
 * reads the reply); else they go as base64 only. */
static bool utf8_ok(const uint8_t *p, size_t n)
{
    if (n > 0 && memchr(p, 0, n) != NULL)
        return false;
    json_t *s = json_stringn((const char *)p, n);
    bool ok = s != NULL;
    json_decref(s);
    return ok;
}

static json_t *bytes_json(const uint8_t *p, size_t n, const char *key_text,
                          const char *key_b64, json_t *obj)
{
    if (utf8_ok(p, n))
        json_object_set_new(obj, key_text, json_stringn((const char *)p, n));
    char *b = b64_encode(p, n);
    json_object_set_new(obj, key_b64, json_string(b));
    free(b);
    return obj;
}

static json_t *do_inject(hcn_node *n, json_t *req)
{
    const char *process = json_string_value(json_object_get(req, "process"));
    const char *node = json_string_value(json_object_get(req, "node"));
    if (process == NULL)
        return error_reply("inject needs \"process\": "
                           "\"process:package:publisher\"%s",
                           NULL);
    int rc = hc_process_id_check(process);
    if (rc != 0)
        return error_reply("bad process id: %s", hc_strerror(rc));
    if (node == NULL || strcmp(node, "our") == 0)
        node = n->name;
    else if (!hcc_name_safe(node, strlen(node), true))
        return error_reply("bad node name '%s'", node);
    /* Body: text, or base64 for bytes. */
    const char *body_text = json_string_value(json_object_get(req, "body"));
    const char *body_b64 = json_string_value(json_object_get(req, "body_b64"));
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (body_b64) {
        body = b64_decode(body_b64, &body_len);
        if (body == NULL)
            return error_reply("body_b64 is not base64%s", NULL);
    } else if (body_text) {
        body_len = strlen(body_text);
        body = (uint8_t *)hcn_xstrndup(body_text, body_len);
    }
    hcn_blob *blob = NULL;
    const char *blob_b64 = json_string_value(json_object_get(req, "blob_b64"));
    if (blob_b64) {
        size_t bl;
        uint8_t *bb = b64_decode(blob_b64, &bl);
        if (bb == NULL) {
            free(body);
            return error_reply("blob_b64 is not base64%s", NULL);
        }
        blob = hcn_blob_new(json_string_value(json_object_get(req, "mime")), bb,
                            bl);
        free(bb);
    }
    json_t *exp = json_object_get(req, "expects_response");
    bool has_expects = json_is_integer(exp) && json_integer_value(exp) > 0;
    uint64_t expects = has_expects ? (uint64_t)json_integer_value(exp) : 0;
    if (expects > 31536000) /* a year, as the host caps contexts */
        expects = 31536000;
    if (strcmp(node, n->name) == 0) {
        hcn_proc *p = hcn_node_find(n, process);
        if (p == NULL) {
            free(body);
            hcn_blob_unref(blob);
            return error_reply("no process %s on this node (`hyperc ps` "
                               "lists them)",
                               process);
        }
        hcn_proc_unref(p);
    }
    const char *metadata = json_string_value(json_object_get(req, "metadata"));
    char *src = hcn_xasprintf("%s@terminal:terminal:sys", n->name);
    char *dst = hcn_xasprintf("%s@%s", node, process);
    hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = hcn_random_u64(),
                             .source = src, .target = dst,
                             .rsvp = has_expects ? src : NULL,
                             .has_expects = has_expects, .expects = expects,
                             .body = body, .body_len = body_len,
                             .metadata = metadata, .blob = blob);
    free(src);
    free(dst);
    free(body);
    hcn_blob_unref(blob);
    hcn_logf(n, 2, "terminal: injecting a request into %s", process);
    hcn_msg *resp;
    /* expects_response is the injector's own deadline, as for a process. */
    rc = hcn_inject(n, m, (int64_t)expects * 1000, &resp);
    if (rc != HCC_EOK)
        return json_pack("{sbss}", "ok", 0, "error",
                         rc == HCC_EOFFLINE ? "offline" : "timeout");
    if (resp == NULL)
        return json_pack("{sbsb}", "ok", 1, "sent", 1);
    json_t *out = json_pack("{sbss}", "ok", 1, "source", resp->source);
    bytes_json(resp->body, resp->body_len, "body", "body_b64", out);
    if (resp->metadata)
        json_object_set_new(out, "metadata", json_string(resp->metadata));
    if (resp->blob) {
        json_t *b = json_object();
        json_object_set_new(b, "mime",
                            resp->blob->mime ? json_string(resp->blob->mime)
                                             : json_null());
        bytes_json(resp->blob->bytes, resp->blob->len, "text", "b64", b);
        json_object_set_new(out, "blob", b);
    } else {
        json_object_set_new(out, "blob", json_null());
    }
    hcn_msg_unref(resp);
    return out;
}

static json_t *do_verbosity(hcn_node *n, json_t *req)
{
    json_t *lv = json_object_get(req, "level");
    if (!json_is_integer(lv) || json_integer_value(lv) < -1 ||
        json_integer_value(lv) > 3)
        return error_reply("verbosity needs \"level\": 0..3 (or -1 to follow "
                           "the node's level)%s",
                           NULL);
    int level = (int)json_integer_value(lv);
    const char *process = json_string_value(json_object_get(req, "process"));
    if (process == NULL) {
        if (level < 0)
            return error_reply("the node's level must be 0..3%s", NULL);
        n->log.level = level;
        if (level >= 3)
            hcn_lanes_close_all(n); /* every routed message is printed */
        return json_pack("{sb}", "ok", 1);
    }
    hcn_proc *p = hcn_node_find(n, process);
    if (p == NULL)
        return error_reply("no process %s on this node", process);
    p->verbosity = level;
    hcn_proc_unref(p);
    return json_pack("{sb}", "ok", 1);
}

/* An integer, or null when negative (not known). */
static json_t *int_or_null(json_int_t v)
{
    return v < 0 ? json_null() : json_integer(v);
}

/* One process as `hyperc ps` shows it; p->lock held.  in_lanes: the
 * requests waiting in its inbound lanes (hcn_mailbox_lane_backlog), queued
 * as the mailbox's are. */
static json_t *ps_entry(hcn_proc *p, int64_t now, uint32_t in_lanes)
{
    static const char *const names[] = {"loaded", "running", "restarting",
                                        "exited"};
    int status = atomic_load(&p->status) & 3;
    bool guest = p->ops == NULL;
    /* ms in its own code since its last receive (0: waiting for a
     * message); null for a module, or a process not running */
    json_int_t busy = -1;
    if (guest && status == HCN_PROC_RUNNING) {
        int64_t since = hcn_proc_busy_since(p, now);
        busy = since > 0 && now > since ? (now - since) / 1000000 : 0;
    }
    const char *failure = NULL;
    if (guest &&
        atomic_load(&p->start_failed_inst) > atomic_load(&p->started_inst))
        failure = p->start_failure;
    return json_pack(
        "{sssssbsbsisisIsbsisosososo}", "id", p->id, "status", names[status],
        "public", p->public_, "started", hcn_proc_started(p), "starts",
        atomic_load(&p->instance), "restarts", atomic_load(&p->restarts),
        "queued", (json_int_t)atomic_load(&p->mb.nreq) + in_lanes, "isolated",
        p->isolated, "crashes", p->crashes, "last_crash",
        p->last_crash ? json_string(p->last_crash) : json_null(),
        "start_failure", failure ? json_string(failure) : json_null(), "tasks",
        int_or_null(guest ? hcn_proc_live_tasks(p) : -1), "busy_ms",
        int_or_null(busy));
}

/* The lanes of p (kernel/lanes.c), for `hyperc ps --json`. */
static json_t *ps_lanes(hcn_node *n, hcn_proc *p)
{
    hcn_lane_info *v;
    size_t k = hcn_lanes_list(n, p, &v);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++) {
        json_array_append_new(
            list,
            json_pack("{sIsssssbsbsbsIsIsIsb}", "lane", (json_int_t)v[i].number,
                      "peer", v[i].peer, "state",
                      v[i].open ? "open" : "closing", "send", v[i].send_ok,
                      "receive", v[i].recv_ok, "mapped", v[i].mapped,
                      "sent_seq", (json_int_t)v[i].sent_seq, "peer_read_seq",
                      (json_int_t)v[i].peer_read_seq, "sent_unread",
                      (json_int_t)v[i].sent_unread, "full", v[i].full));
        free(v[i].peer);
    }
    free(v);
    return list;
}

static json_t *do_ps(hcn_node *n)
{
    json_t *list = json_array();
    int64_t now = hcn_now_ns();
    pthread_rwlock_rdlock(&n->table_lock);
    for (hcn_proc *p = n->procs; p; p = p->hh.next) {
        uint32_t in_lanes = hcn_mailbox_lane_backlog(&p->mb);
        pthread_mutex_lock(&p->lock);
        json_t *e = ps_entry(p, now, in_lanes);
        pthread_mutex_unlock(&p->lock);
        int wpid = atomic_load(&p->worker_pid);
        json_object_set_new(e, "worker_pid",
                            wpid > 0 ? json_integer(wpid) : json_null());
        json_object_set_new(e, "lanes", ps_lanes(n, p));
        json_array_append_new(list, e);
    }
    pthread_rwlock_unlock(&n->table_lock);
    /* components being translated to native code now (their first start) */
    return json_pack("{sbsosi}", "ok", 1, "processes", list, "translating",
                     (json_int_t)atomic_load(&n->translating));
}

static json_t *do_install(hcn_node *n, json_t *req)
{
    const char *dir = json_string_value(json_object_get(req, "dir"));
    if (dir == NULL || dir[0] != '/')
        return error_reply("install needs \"dir\": the absolute path of a "
                           "package folder (metadata.json, pkg/)%s",
                           NULL);
    json_t *report = json_object();
    char err[1024];
    if (hcn_install_package(n, dir, report, err, sizeof err) != 0) {
        json_decref(report);
        return json_pack("{sbss}", "ok", 0, "error", err);
    }
    json_object_set_new(report, "ok", json_true());
    return report;
}

typedef struct conn_arg {
    hcn_node *n;
    int fd;
} conn_arg;

/* Track open connections so that stopping the node can end them. */
static void conn_track(hcn_node *n, int fd, bool add)
{
    pthread_mutex_lock(&n->ctl->mu);
    size_t i;
    for (i = 0; i < n->ctl->nconns; i++)
        if (n->ctl->conns[i] == (add ? -1 : fd))
            break;
    if (add && i == n->ctl->nconns) {
        int *nc = realloc(n->ctl->conns, (n->ctl->nconns + 1) * sizeof *nc);
        if (nc == NULL)
            abort();
        n->ctl->conns = nc;
        n->ctl->nconns++;
    }
    if (i < n->ctl->nconns)
        n->ctl->conns[i] = add ? fd : -1;
    pthread_mutex_unlock(&n->ctl->mu);
}

static void *conn_main(void *arg)
{
    conn_arg *c = arg;
    char err[256];
    for (;;) {
        json_t *req;
        if (hcn_ctl_read_frame(c->fd, &req, err, sizeof err) != HCN_CTL_OK)
            break;
        const char *op = json_string_value(json_object_get(req, "op"));
        json_t *rep;
        if (op && strcmp(op, "inject") == 0)
            rep = do_inject(c->n, req);
        else if (op && strcmp(op, "verbosity") == 0)
            rep = do_verbosity(c->n, req);
        else if (op && strcmp(op, "ps") == 0)
            rep = do_ps(c->n);
        else if (op && strcmp(op, "install") == 0)
            rep = do_install(c->n, req);
        else
            rep = error_reply("unknown op '%s' (expected inject, verbosity, "
                              "ps or install)",
                              op ? op : "(none)");
        json_decref(req);
        hcn_ctl_status rc = hcn_ctl_write_frame(c->fd, rep, err, sizeof err);
        json_decref(rep);
        if (rc == HCN_CTL_BAD) { /* a reply over the limit: say so instead */
            rep = error_reply("the reply is not sent: %s", err);
            rc = hcn_ctl_write_frame(c->fd, rep, err, sizeof err);
            json_decref(rep);
        }
        if (rc != HCN_CTL_OK)
            break;
    }
    conn_track(c->n, c->fd, false);
    close(c->fd);
    hcn_node_thread_end(c->n);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    hcn_node *n = arg;
    for (;;) {
        int fd = accept4(n->ctl->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shutdown(2) on the listener ends the loop */
        }
        if (atomic_load(&n->shutting_down)) {
            close(fd);
            break;
        }
        conn_arg *c = hcn_xmalloc(sizeof *c);
        c->n = n;
        c->fd = fd;
        conn_track(n, fd, true);
        pthread_t t;
        hcn_node_thread_begin(n);
        if (pthread_create(&t, NULL, conn_main, c) != 0) {
            conn_track(n, fd, false);
            hcn_node_thread_end(n);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int hcn_control_start(hcn_node *n)
{
    hcn_control *c = hcn_xcalloc(1, sizeof *c);
    c->fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->path = hcn_xasprintf("%s/node.sock", n->home);
    n->ctl = c;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(n->ctl->path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sa.sun_path, n->ctl->path);
    /* A socket file left by a node that did not stop cleanly: reuse the
     * path unless a live node answers on it. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0) {
        close(probe);
        errno = EADDRINUSE;
        return -1;
    }
    if (probe >= 0)
        close(probe);
    unlink(n->ctl->path);
    n->ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (n->ctl->fd < 0)
        return -1;
    mode_t old = umask(0077);
    int rc = bind(n->ctl->fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(n->ctl->fd, 64) != 0) {
        close(n->ctl->fd);
        n->ctl->fd = -1;
        return -1;
    }
    if (pthread_create(&n->ctl->thread, NULL, accept_main, n) != 0) {
        close(n->ctl->fd);
        n->ctl->fd = -1;
        return -1;
    }
    n->ctl->has_thread = true;
    return 0;
}

void hcn_control_stop(hcn_node *n)
{
    if (n->ctl == NULL)
        return;
    if (n->ctl->fd >= 0) {
        shutdown(n->ctl->fd, SHUT_RDWR);
        if (n->ctl->has_thread)
            pthread_join(n->ctl->thread, NULL);
        n->ctl->has_thread = false;
        close(n->ctl->fd);
        n->ctl->fd = -1;
        unlink(n->ctl->path);
    }
    /* Wake connections blocked reading a client that says nothing. */
    pthread_mutex_lock(&n->ctl->mu);
    for (size_t i = 0; i < n->ctl->nconns; i++)
        if (n->ctl->conns[i] >= 0)
            shutdown(n->ctl->conns[i], SHUT_RDWR);
    pthread_mutex_unlock(&n->ctl->mu);
}

void hcn_control_free(hcn_node *n)
{
    hcn_control *c = n->ctl;
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->conns);
    free(c->path);
    free(c);
    n->ctl = NULL;
}

const char *hcn_control_path(const hcn_node *n)
{
    return n->ctl ? n->ctl->path : NULL;
}
