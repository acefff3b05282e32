/* state:distro:sys: each process's state as one SQLite row (WAL), keyed by
 * process id, with a redo log in front (statelog.h).  Request and reply
 * shapes are Hyperware's StateAction and StateResponse.
 *
 * A save reaches the module either as a message (Hyperware's way, and the
 * synchronous set-state) or through the kernel's store hook (hcn_store, on
 * the saving process's own thread: submit, a guest's asynchronous save,
 * answered by message; save, one made at once, with no message).  Either
 * way it is one record appended to the log (a copy into its mapping, or one
 * write(2)) and answered or returned then: the bytes are in the kernel's page
 * cache, so an answered save survives the node being killed.  A delete is a
 * record too.  The module's thread drains the log into SQLite in groups (each
 * process's newest record, one transaction, synchronous=FULL so the group is on
 * the disk before its log file is dropped) once the current file passes
 * STATE_DRAIN_BYTES, and when the node stops; at start, before any process
 * runs, whatever the log holds is committed first.  A read is answered
 * from the log's newest record of the process when it has one, else from
 * SQLite.
 *
 * An isolated worker saves without a message: into its state slot
 * (src/worker/slot.h), a file made here when it starts (store.slot_open).
 * Every save, delete and read of that process takes the slot's newer value
 * into the log first, as do the worker's end (store.slot_close) and the
 * module's start (files a killed node left). */
#include "modkit.h"
#include "modules.h"
#include "statelog.h"

#include "../../worker/slot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uthash.h>

/* The current log file's size past which the module's thread drains it
 * (the environment's HYPERC_STATE_DRAIN_BYTES, for tests that want drains
 * under load, replaces it). */
#define STATE_DRAIN_BYTES (1u << 20)

/* An isolated worker's state slot (src/worker/slot.h): the node's
 * mapping, the newest sequence number put into the log, and the last one
 * that did not check (said once).  A closed slot's worker has ended but its
 * value could not be put into the log yet: it stays, and every save,
 * delete and read of the process tries again first (and fails while it
 * cannot), so that nothing older is stored after it.  Each slot has its
 * own lock, held from its drain to the record that follows it
 * (slot_before, slot_after), so a slot whose worker makes its drains
 * dear (a megabyte copied and checked, a value that does not check) holds
 * up only its own process's saves; the module's slot_mu is held only to
 * find, add or take out a slot, and counts the references. */
typedef struct slot_ent {
    char *pid;
    char *path;
    uint8_t *map;
    pthread_mutex_t mu; /* drained, bad, closed; the drain and its record */
    uint64_t drained, bad;
    bool closed;
    bool gone;     /* out of the table (set under both locks) */
    unsigned refs; /* slot_get's, under slot_mu; freed at the last put when
                    * gone */
    UT_hash_handle hh;
} slot_ent;

typedef struct state_mod {
    hcn_node *node;
    hcn_proc *self;
    /* the connection and its statements: the module's thread only (and
     * the node's start and stop, before and after it runs) */
    sqlite3 *db;
    sqlite3_stmt *get, *set, *del, *begin, *commit, *rollback;
    hcn_slog *log;
    size_t drain_bytes;      /* STATE_DRAIN_BYTES or the environment's */
    atomic_bool drain_asked; /* a "Flush" is on its way to the thread */
    /* the slots by process id, and their references: slot_mu */
    char *slot_dir;
    pthread_mutex_t slot_mu;
    slot_ent *slots;
    atomic_int nslots;
} state_mod;

/* Answer m with `body` (and blob): successes only when an answer is
 * expected, errors always (as Hyperware's state module does). */
static void reply(hcn_proc *self, hcn_msg *m, const char *body, bool is_err,
                  hcn_blob *blob)
{
    HCN_MOD_REPLY(self, m, .when = is_err ? HCN_MOD_ALWAYS : HCN_MOD_IF_ASKED,
                  .body = body, .with_metadata = !is_err, .blob = blob);
}

static void reply_err(hcn_proc *self, hcn_msg *m, const char *variant,
                      const char *key, const char *val)
{
    json_t *j = json_pack("{s{s{ss}}}", "Err", variant, key, val);
    char *s = json_dumps(j, JSON_COMPACT);
    reply(self, m, s, true, NULL);
    free(s);
    json_decref(j);
}

static bool source_allowed(hcn_proc *self, const hcn_msg *m)
{
    if (!hcn_mod_from_local(self, m))
        return false;
    const char *pkg = strchr(hcn_addr_pid(m->source), ':');
    return pkg && (strcmp(pkg, ":distro:sys") == 0 ||
                   strcmp(pkg, ":terminal:sys") == 0);
}

/* ------------------------------------------------------------ the log */

static bool step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

/* Commit the log's draining group (each process's newest record) in one
 * transaction and retire it.  The module's thread (or start and stop).
 * false with a message in why (the group stays for the next drain). */
static bool commit_draining(state_mod *s, char *why, size_t whylen)
{
    const hcn_slog_rec *r;
    size_t n;
    hcn_slog_draining(s->log, &r, &n);
    if (n) {
        bool ok = step_done(s->begin);
        for (size_t i = 0; ok && i < n; i++) {
            if (r[i].kind == HCN_SLOG_DEL) {
                sqlite3_bind_text(s->del, 1, r[i].pid, -1, SQLITE_STATIC);
                ok = step_done(s->del);
                sqlite3_clear_bindings(s->del);
                continue;
            }
            sqlite3_bind_text(s->set, 1, r[i].pid, -1, SQLITE_STATIC);
            /* a zero-length blob is bound as a blob, not NULL */
            sqlite3_bind_blob(s->set, 2,
                              r[i].len ? (const void *)r[i].bytes : "",
                              (int)r[i].len, SQLITE_STATIC);
            sqlite3_bind_int64(s->set, 3, r[i].ms);
            ok = step_done(s->set);
            sqlite3_clear_bindings(s->set);
        }
        if (ok)
            ok = step_done(s->commit);
        if (!ok) {
            snprintf(why, whylen, "%s", sqlite3_errmsg(s->db));
            step_done(s->rollback);
            return false;
        }
    }
    if (hcn_slog_retire(s->log) != 0) {
        snprintf(why, whylen, "cannot drop a state log file: %s",
                 strerror(errno));
        return false;
    }
    return true;
}

/* Rotate the log and commit what it held.  The module's thread (or
 * stop). */
static void drain(state_mod *s)
{
    char why[512];
    atomic_store(&s->drain_asked, false);
    if (hcn_slog_rotate(s->log) < 0)
        snprintf(why, sizeof why, "cannot start a state log file: %s",
                 strerror(errno));
    else if (commit_draining(s, why, sizeof why))
        return;
    hcn_mod_log(s->self, 0, "state: draining the log into SQLite: %s", why);
}

/* Append a save (HCN_SLOG_SET) or delete (HCN_SLOG_DEL, no bytes) for
 * pid; asks the module's thread to drain when the file is full.  0, or -1
 * with errno.  Any thread. */
static int log_append(state_mod *s, hcn_slog_kind kind, const char *pid,
                      const uint8_t *bytes, size_t len)
{
    size_t size = 0;
    int rc = hcn_slog_append(s->log, kind, pid, bytes, len, &size);
    int e = errno;
    if (rc == 0 && size >= s->drain_bytes && s->self != NULL &&
        !atomic_exchange(&s->drain_asked, true)) {
        hcn_msg *f =
            HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .source = s->self->addr,
                        .target = s->self->addr, .body = "\"Flush\"",
                        .body_len = 7);
        if (hcn_mailbox_push(&s->self->mb, f) != HCC_EOK)
            hcn_msg_unref(f); /* closing: fini drains */
    }
    errno = e;
    return rc;
}

/* ------------------------------------------------------------ slots */

/* A slot's file name: the process id in hex (any id is a safe name; ids
 * over SLOT_PID_MAX bytes get no slot). */
#define SLOT_PID_MAX 120
static char *slot_path(state_mod *s, const char *pid)
{
    size_t n = strlen(pid);
    char *name = hcn_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++)
        snprintf(name + 2 * i, 3, "%02x", (unsigned char)pid[i]);
    char *path = hcn_xasprintf("%s/%s", s->slot_dir, name);
    free(name);
    return path;
}

/* The process id a slot's file name spells, or NULL (not one). */
static char *slot_pid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n % 2 || strspn(name, "0123456789abcdef") != n)
        return NULL;
    char *pid = hcn_xmalloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        sscanf(name + 2 * i, "%2x", &v);
        pid[i] = (char)v;
    }
    pid[n / 2] = '\0';
    if (strlen(pid) != n / 2) {
        free(pid);
        return NULL;
    }
    return pid;
}

/* Put the slot's value newer than *drained into the log as pid's, and
 * mark it drained.  false when there is one and it could not be put (said
 * in the node's log, errno set).  A value that does not check is said
 * once (*bad keeps its sequence number; bad may be NULL) and passed over:
 * it is that process's own state alone.  The slot's lock held, or the
 * module's start or stop. */
static bool slot_drain(state_mod *s, const char *pid, uint8_t *map,
                       uint64_t *drained, uint64_t *bad)
{
    uint64_t published = hcw_slot_seq(map);
    if (published <= *drained || (bad != NULL && published == *bad))
        return true;
    uint8_t *v;
    size_t len;
    uint64_t seq;
    char why[160];
    int r = hcw_slot_take(map, *drained, &v, &len, &seq, why, sizeof why);
    if (r < 0) {
        hcn_logf(s->node, 0, "state: %s's state slot: %s; not stored", pid,
                 why);
        if (bad != NULL)
            *bad = published;
    }
    if (r <= 0)
        return true;
    int rc = log_append(s, HCN_SLOG_SET, pid, v, len);
    int err = errno;
    free(v);
    if (rc != 0) {
        hcn_logf(s->node, 0, "state: storing %s's state slot: %s", pid,
                 strerror(err));
        errno = err;
        return false;
    }
    *drained = seq;
    hcw_slot_set_drained(map, seq);
    return true;
}

/* Into the table (its lock taken here): false when pid has a slot
 * already, and then nothing is added. */
static bool slot_add(state_mod *s, const char *pid, char *path, uint8_t *map,
                     bool closed)
{
    slot_ent *e = hcn_xcalloc(1, sizeof *e);
    e->pid = hcn_xstrdup(pid);
    e->path = path;
    e->map = map;
    pthread_mutex_init(&e->mu, NULL);
    e->drained = hcw_slot_drained(map);
    e->closed = closed;
    pthread_mutex_lock(&s->slot_mu);
    slot_ent *old;
    HASH_FIND_STR(s->slots, pid, old);
    if (old == NULL) {
        HASH_ADD_KEYPTR(hh, s->slots, e->pid, strlen(e->pid), e);
        atomic_fetch_add(&s->nslots, 1);
    }
    pthread_mutex_unlock(&s->slot_mu);
    if (old != NULL) {
        pthread_mutex_destroy(&e->mu);
        free(e->pid);
        free(e);
    }
    return old == NULL;
}

/* pid's slot with a reference taken, or NULL.  Any thread. */
static slot_ent *slot_get(state_mod *s, const char *pid)
{
    pthread_mutex_lock(&s->slot_mu);
    slot_ent *e;
    HASH_FIND_STR(s->slots, pid, e);
    if (e != NULL)
        e->refs++;
    pthread_mutex_unlock(&s->slot_mu);
    return e;
}

/* slot_get's reference given back: the last one of a slot out of the
 * table unmaps and frees it (the file stays). */
static void slot_put(state_mod *s, slot_ent *e)
{
    pthread_mutex_lock(&s->slot_mu);
    bool last = --e->refs == 0 && e->gone;
    pthread_mutex_unlock(&s->slot_mu);
    if (!last)
        return;
    pthread_mutex_destroy(&e->mu);
    hcw_slot_unmap(e->map);
    free(e->pid);
    free(e->path);
    free(e);
}

/* Out of the table (e->mu held, and a reference: slot_put frees it). */
static void slot_drop(state_mod *s, slot_ent *e)
{
    pthread_mutex_lock(&s->slot_mu);
    HASH_DEL(s->slots, e);
    e->gone = true;
    atomic_fetch_sub(&s->nslots, 1);
    pthread_mutex_unlock(&s->slot_mu);
}

/* A slot's file left at path (by a node that was killed): its newer value
 * into the log, then the file away.  A value that cannot be put there
 * yet keeps the file, as a closed slot (path becomes its).  The
 * module's start. */
static void slot_recover(state_mod *s, const char *pid, char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    uint8_t *map = fd >= 0 ? hcw_slot_map(fd) : NULL;
    int err = errno;
    if (fd >= 0)
        close(fd);
    if (fd < 0 && err == ENOENT) {
        free(path);
        return;
    }
    if (map == NULL) {
        hcn_logf(s->node, 0, "state: %s is not a state slot (%s); removed",
                 path, strerror(err));
    } else {
        uint64_t d = hcw_slot_drained(map);
        if (!slot_drain(s, pid, map, &d, NULL)) {
            if (!slot_add(s, pid, path, map, true)) { /* (one file an id) */
                hcw_slot_unmap(map);
                free(path);
            }
            return;
        }
        hcw_slot_unmap(map);
    }
    unlink(path);
    free(path);
}

/* Drain a slot and take it out (e->mu held, and a reference): true when
 * gone, false when its value could not be put into the log (then it
 * stays, closed). */
static bool slot_remove(state_mod *s, slot_ent *e)
{
    if (e->gone)
        return true;
    if (!slot_drain(s, e->pid, e->map, &e->drained, &e->bad)) {
        e->closed = true;
        return false;
    }
    unlink(e->path);
    slot_drop(s, e);
    return true;
}

/* Take pid's slot out, as slot_remove: false when it stays. */
static bool slot_remove_pid(state_mod *s, const char *pid)
{
    slot_ent *e = slot_get(s, pid);
    if (e == NULL)
        return true;
    pthread_mutex_lock(&e->mu);
    bool gone = slot_remove(s, e);
    pthread_mutex_unlock(&e->mu);
    slot_put(s, e);
    return gone;
}

/* hcn_store.slot_open */
static int store_slot_open(void *ctx, const char *pid)
{
    state_mod *s = ctx;
    if (strlen(pid) > SLOT_PID_MAX)
        return -1;
    if (!slot_remove_pid(s, pid)) {
        hcn_logf(s->node, 0,
                 "state: no state slot for %s while its last one's value is "
                 "not stored; it saves by message",
                 pid);
        return -1;
    }
    char *path = slot_path(s, pid);
    int fd =
        open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    uint8_t *map = NULL;
    if (fd >= 0 &&
        (hcw_slot_format(fd) != 0 || (map = hcw_slot_map(fd)) == NULL)) {
        int err = errno;
        close(fd);
        unlink(path);
        fd = -1;
        errno = err;
    }
    if (fd < 0) {
        hcn_logf(s->node, 0,
                 "state: cannot make a state slot for %s: %s; it saves by "
                 "message",
                 pid, strerror(errno));
        free(path);
        return -1;
    }
    /* one run at a time per process: no slot can have come meanwhile */
    if (!slot_add(s, pid, path, map, false)) {
        hcn_logf(s->node, 0,
                 "state: %s has a state slot already; this one saves by "
                 "message",
                 pid);
        hcw_slot_unmap(map);
        close(fd);
        unlink(path);
        free(path);
        return -1;
    }
    return fd;
}

/* hcn_store.slot_close */
static void store_slot_close(void *ctx, const char *pid)
{
    /* (kept, closed, when it cannot be stored) */
    slot_remove_pid(ctx, pid);
}

/* Before a save, delete or read of pid: when it has a slot, the slot's
 * newer value goes into the log first, and the slot's lock stays held
 * until slot_after (the slot returned, or NULL when there is none), so
 * that the caller's own record follows it.  *ok false (errno set) when
 * that value could not be put there: then the caller must store nothing
 * and fail, or an older value would follow a newer one. */
static slot_ent *slot_before(state_mod *s, const char *pid, bool *ok)
{
    *ok = true;
    if (atomic_load(&s->nslots) == 0)
        return NULL;
    for (;;) {
        slot_ent *e = slot_get(s, pid);
        if (e == NULL)
            return NULL;
        pthread_mutex_lock(&e->mu);
        if (e->gone) { /* taken out meanwhile (drained): look again */
            pthread_mutex_unlock(&e->mu);
            slot_put(s, e);
            continue;
        }
        *ok = slot_drain(s, e->pid, e->map, &e->drained, &e->bad);
        if (*ok && e->closed) /* stored at last: away */
            slot_remove(s, e);
        return e;
    }
}

static void slot_after(state_mod *s, slot_ent *e)
{
    if (e == NULL)
        return;
    pthread_mutex_unlock(&e->mu);
    slot_put(s, e);
}

/* The files a node left in the slots' folder (it was killed, or a worker
 * still ran when it stopped): their newer values into the log.  The
 * module's start, once the log takes records. */
static void slots_recover_all(state_mod *s)
{
    DIR *d = opendir(s->slot_dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *pid = slot_pid(de->d_name);
        char *path = hcn_xasprintf("%s/%s", s->slot_dir, de->d_name);
        if (pid != NULL) {
            slot_recover(s, pid, path); /* takes path */
        } else {
            hcn_logf(s->node, 0,
                     "state: %s is not a state slot's name; removed", path);
            unlink(path);
            free(path);
        }
        free(pid);
    }
    closedir(d);
}

/* The module's stop: every slot's newer value into the log; the files
 * stay (a worker that still runs may write once more: the next start
 * takes that). */
static void slots_fini(state_mod *s)
{
    for (;;) {
        pthread_mutex_lock(&s->slot_mu);
        slot_ent *e = s->slots;
        if (e != NULL)
            e->refs++;
        pthread_mutex_unlock(&s->slot_mu);
        if (e == NULL)
            break;
        pthread_mutex_lock(&e->mu);
        if (!e->gone) {
            slot_drain(s, e->pid, e->map, &e->drained, &e->bad);
            slot_drop(s, e);
        }
        pthread_mutex_unlock(&e->mu);
        slot_put(s, e);
    }
}

/* ------------------------------------------------------------ saves */

/* A record in the log for pid (a save, or with kind DEL a delete), no
 * message either way: hcn_store.save and .del. */
static int store_record(state_mod *s, const char *pid, hcn_slog_kind kind,
                        const uint8_t *bytes, size_t len)
{
    bool ok;
    slot_ent *held = slot_before(s, pid, &ok);
    int rc = ok ? log_append(s, kind, pid, bytes, len) : -1;
    int err = errno;
    slot_after(s, held);
    errno = err;
    return rc;
}

/* Append a save (blob) or delete (blob NULL) for pid and answer m once it
 * is written.  Any thread. */
static void log_and_answer(state_mod *s, hcn_msg *m, const char *pid,
                           const hcn_blob *blob)
{
    int rc = blob ? store_record(s, pid, HCN_SLOG_SET, blob->bytes, blob->len)
                  : store_record(s, pid, HCN_SLOG_DEL, NULL, 0);
    if (rc == 0)
        reply(s->self, m, blob ? "\"SetState\"" : "\"DeleteState\"", false,
              NULL);
    else
        reply_err(s->self, m, "DatabaseError", "error", strerror(errno));
}

/* hcn_store.submit: the metadata names the process. */
static void store_submit(void *ctx, hcn_msg *m)
{
    log_and_answer(ctx, m, m->metadata, m->blob);
    hcn_msg_unref(m);
}

static int store_save(void *ctx, const char *pid, const uint8_t *bytes,
                      size_t len)
{
    return store_record(ctx, pid, HCN_SLOG_SET, bytes, len);
}

static int store_del(void *ctx, const char *pid)
{
    return store_record(ctx, pid, HCN_SLOG_DEL, NULL, 0);
}

/* hcn_store.flush: a save is written (and answered) when submitted. */
static void store_flush(void *ctx, bool wait)
{
    (void)ctx;
    (void)wait;
}

/* ------------------------------------------------------------ requests */

static void get_state(state_mod *s, hcn_msg *m, const char *pid)
{
    hcn_slog_kind kind;
    uint8_t *bytes;
    size_t len;
    bool ok;
    slot_after(s, slot_before(s, pid, &ok)); /* a slot's newer value first */
    if (!ok) {
        reply_err(s->self, m, "DatabaseError", "error", strerror(errno));
        return;
    }
    if (hcn_slog_get(s->log, pid, &kind, &bytes, &len)) {
        if (kind == HCN_SLOG_DEL) {
            reply_err(s->self, m, "NotFound", "process_id", pid);
            return;
        }
        hcn_blob *b = hcn_blob_new("application/octet-stream", bytes, len);
        free(bytes);
        reply(s->self, m, "\"GetState\"", false, b);
        hcn_blob_unref(b);
        return;
    }
    sqlite3_bind_text(s->get, 1, pid, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s->get);
    if (rc == SQLITE_ROW) {
        hcn_blob *b = hcn_blob_new("application/octet-stream",
                                   sqlite3_column_blob(s->get, 0),
                                   (size_t)sqlite3_column_bytes(s->get, 0));
        sqlite3_reset(s->get);
        reply(s->self, m, "\"GetState\"", false, b);
        hcn_blob_unref(b);
        return;
    }
    char why[512];
    snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
    sqlite3_reset(s->get);
    if (rc == SQLITE_DONE)
        reply_err(s->self, m, "NotFound", "process_id", pid);
    else
        reply_err(s->self, m, "DatabaseError", "error", why);
}

static void state_handle(hcn_proc *self, hcn_msg *m)
{
    state_mod *s = self->mod;
    if (m->kind == HCN_MSG_REQUEST && strcmp(m->source, self->addr) == 0) {
        drain(s); /* the log's file is full */
        hcn_msg_unref(m);
        return;
    }
    if (m->kind != HCN_MSG_REQUEST) {
        hcn_msg_unref(m);
        return;
    }
    if (!source_allowed(self, m)) {
        hcn_mod_log(self, 1,
                    "state: got a request from a process that is not the "
                    "kernel or the terminal; ignored");
        hcn_msg_unref(m);
        return;
    }
    json_error_t je;
    json_t *body =
        json_loadb((const char *)m->body, m->body_len, JSON_DECODE_ANY, &je);
    const char *action = NULL;
    const char *pid = NULL;
    if (json_is_object(body) && json_object_size(body) == 1) {
        action = json_object_iter_key(json_object_iter(body));
        pid = json_string_value(json_object_iter_value(json_object_iter(body)));
    }
    if (action == NULL || pid == NULL ||
        (strcmp(action, "GetState") && strcmp(action, "SetState") &&
         strcmp(action, "DeleteState"))) {
        reply_err(self, m, "BadJson", "error",
                  "expected {\"GetState\"|\"SetState\"|\"DeleteState\": "
                  "\"process:package:publisher\"}");
    } else if (strcmp(action, "SetState") == 0) {
        if (m->blob == NULL)
            reply_err(self, m, "BadBytes", "action", "SetState");
        else
            log_and_answer(s, m, pid, m->blob);
    } else if (strcmp(action, "DeleteState") == 0) {
        log_and_answer(s, m, pid, NULL);
    } else {
        get_state(s, m, pid);
    }
    json_decref(body);
    hcn_msg_unref(m);
}

static void db_close(state_mod *s)
{
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->set);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_finalize(s->rollback);
    sqlite3_close(s->db);
    hcn_slog_close(s->log);
}

static void state_fini(hcn_proc *self)
{
    state_mod *s = self->mod;
    if (s == NULL)
        return;
    if (self->node->store.ctx == s)
        memset(&self->node->store, 0, sizeof self->node->store);
    slots_fini(s);
    drain(s); /* what was logged last goes into SQLite too */
    db_close(s);
    pthread_mutex_destroy(&s->slot_mu);
    free(s->slot_dir);
    free(s);
    self->mod = NULL;
}

static const hcn_module_ops state_ops = {
    .handle = state_handle,
    .fini = state_fini,
};

static bool prepare(state_mod *s, const char *sql, sqlite3_stmt **out)
{
    return sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out,
                              NULL) == SQLITE_OK;
}

int hcn_mod_state_add(hcn_node *n, char *err, size_t errlen)
{
    snprintf(err, errlen, "cannot open the state database %s",
             n->state_db_path);
    char *dir = hcn_xasprintf("%s/state", n->home);
    int rc = hcn_mkdirs(dir);
    free(dir);
    if (rc != 0)
        return -1;
    state_mod *s = hcn_xcalloc(1, sizeof *s);
    s->node = n;
    pthread_mutex_init(&s->slot_mu, NULL);
    s->slot_dir = hcn_xasprintf("%s/state/slots", n->home);
    s->drain_bytes = STATE_DRAIN_BYTES;
    const char *env = getenv("HYPERC_STATE_DRAIN_BYTES");
    if (env && strtoull(env, NULL, 10) > 0)
        s->drain_bytes = (size_t)strtoull(env, NULL, 10);
    /* Exclusive locking: the node is the database's only user while it
     * runs, so a commit takes no file locks (six fcntl calls a commit in
     * the default mode) and the WAL index lives in the node's memory.
     * synchronous=FULL: a drain's commit is on the disk before the log
     * file it came from is dropped (drains are rare: one fsync per
     * STATE_DRAIN_BYTES of saves). */
    if (sqlite3_open_v2(n->state_db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(s->db,
                     "PRAGMA locking_mode=EXCLUSIVE;"
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=FULL;"
                     "CREATE TABLE IF NOT EXISTS state("
                     " process_id TEXT PRIMARY KEY,"
                     " value BLOB NOT NULL,"
                     " updated_ms INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (!prepare(s, "SELECT value FROM state WHERE process_id=?1", &s->get) ||
        !prepare(s,
                 "INSERT INTO state(process_id,value,updated_ms)"
                 " VALUES(?1,?2,?3) ON CONFLICT(process_id) DO"
                 " UPDATE SET value=excluded.value,"
                 " updated_ms=excluded.updated_ms",
                 &s->set) ||
        !prepare(s, "DELETE FROM state WHERE process_id=?1", &s->del) ||
        !prepare(s, "BEGIN IMMEDIATE", &s->begin) ||
        !prepare(s, "COMMIT", &s->commit) ||
        !prepare(s, "ROLLBACK", &s->rollback))
        goto fail;
    /* the log beside the database: what it holds (saves answered before
     * the node last ended) is committed before any process runs */
    char *base = hcn_xasprintf("%s.log", n->state_db_path);
    s->log = hcn_slog_open(base, err, errlen);
    free(base);
    if (s->log == NULL)
        goto fail_quiet;
    char why[512];
    if (!commit_draining(s, why, sizeof why)) {
        snprintf(err, errlen, "cannot replay the state log into %s: %s",
                 n->state_db_path, why);
        goto fail_quiet;
    }
    /* isolated workers' state slots: what the last run left in them is
     * newer than the log's records of the same process */
    if (hcn_mkdirs(s->slot_dir) != 0) {
        snprintf(err, errlen, "cannot make %s: %s", s->slot_dir,
                 strerror(errno));
        goto fail_quiet;
    }
    slots_recover_all(s);
    hcn_proc *p = hcn_node_add_proc(n, "state:distro:sys", false, NULL);
    p->ops = &state_ops;
    p->mod = s;
    s->self = p;
    n->store = (hcn_store){.submit = store_submit,
                           .flush = store_flush,
                           .save = store_save,
                           .del = store_del,
                           .slot_open = store_slot_open,
                           .slot_close = store_slot_close,
                           .ctx = s};
    hcn_proc_unref(p);
    if (errlen)
        err[0] = '\0';
    return 0;
fail:
    if (s->db)
        hcn_logf(n, 0, "state: %s", sqlite3_errmsg(s->db));
fail_quiet:
    db_close(s);
    pthread_mutex_destroy(&s->slot_mu);
    free(s->slot_dir);
    free(s);
    return -1;
}
