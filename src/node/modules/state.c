/* state:distro:sys: each process's state as one SQLite row (WAL), keyed by
 * process id.  Request and reply shapes are Hyperware's StateAction and
 * StateResponse.
 *
 * Saves are committed in groups.  A save reaches the module either as a
 * message (Hyperware's way, and the synchronous set-state) or through the
 * kernel's store hook (hcn_store: a guest's asynchronous save, queued
 * without waking this thread).  Both join one queue; whoever flushes it
 * (the saving process's own thread before it waits, or this thread)
 * becomes the committer: it takes everything queued, writes each process's
 * newest bytes once (older queued saves of the same process are
 * superseded), commits one transaction and only then answers every save
 * of the group.  So an answered save is in the database file's WAL (the
 * kernel's page cache): it survives the node being killed. */
#include "modkit.h"
#include "modules.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* Rounds a committer makes for other processes' saves before it hands
 * the rest to the module's thread (so no process thread commits for
 * others for long). */
#define STATE_COMMIT_ROUNDS 8

/* A save waiting for its commit: the SetState request (a reference) and
 * the process it is for. */
typedef struct queued {
    hcn_msg *m;
    char *pid;
    struct queued *next;
} queued;

typedef struct state_mod {
    hcn_proc *self;
    /* the connection and its statements: used under db_mu */
    pthread_mutex_t db_mu;
    sqlite3 *db;
    sqlite3_stmt *get, *set, *del, *begin, *commit, *rollback;
    /* the saves waiting for a commit (linked by next), under mu */
    pthread_mutex_t mu;
    pthread_cond_t idle_cv; /* signalled when a committer stops */
    struct queued *q_head, *q_tail;
    bool committing;
    bool handoff_sent; /* a "Flush" is on its way to the module's thread */
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

/* ------------------------------------------------------- group commits */

/* One process's newest save in a group. */
typedef struct newest {
    const char *pid;
    const hcn_msg *m;
    UT_hash_handle hh;
} newest;

static bool step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

/* Write each process's newest bytes of the group `list` in one
 * transaction, then answer every save of it and drop the references.
 * Any thread; takes db_mu. */
static void commit_group(state_mod *s, queued *list)
{
    size_t n = 0;
    for (queued *q = list; q; q = q->next)
        n++;
    newest *slots = hcn_xcalloc(n, sizeof *slots), *by_pid = NULL;
    size_t used = 0;
    for (queued *q = list; q; q = q->next) {
        newest *e;
        HASH_FIND_STR(by_pid, q->pid, e);
        if (e == NULL) {
            e = &slots[used++];
            e->pid = q->pid;
            HASH_ADD_KEYPTR(hh, by_pid, e->pid, strlen(e->pid), e);
        }
        e->m = q->m; /* queued later: newer */
    }
    char why[512] = "";
    pthread_mutex_lock(&s->db_mu);
    int64_t now = hcn_wall_ms();
    bool ok = step_done(s->begin);
    for (size_t i = 0; ok && i < used; i++) {
        const hcn_msg *m = slots[i].m;
        sqlite3_bind_text(s->set, 1, slots[i].pid, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s->set, 2, m->blob->bytes, (int)m->blob->len,
                          SQLITE_STATIC);
        sqlite3_bind_int64(s->set, 3, now);
        ok = step_done(s->set);
        sqlite3_clear_bindings(s->set);
    }
    if (ok)
        ok = step_done(s->commit);
    if (!ok) {
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
        step_done(s->rollback);
    }
    pthread_mutex_unlock(&s->db_mu);
    HASH_CLEAR(hh, by_pid);
    free(slots);
    for (queued *q = list, *nx; q; q = nx) {
        nx = q->next;
        if (ok)
            reply(s->self, q->m, "\"SetState\"", false, NULL);
        else
            reply_err(s->self, q->m, "DatabaseError", "error", why);
        hcn_msg_unref(q->m);
        free(q->pid);
        free(q);
    }
}

/* Queue m (the reference moves to the queue) as a save for pid. */
static void enqueue(state_mod *s, hcn_msg *m, const char *pid)
{
    queued *q = hcn_xcalloc(1, sizeof *q);
    q->m = m;
    q->pid = hcn_xstrdup(pid);
    pthread_mutex_lock(&s->mu);
    if (s->q_tail)
        s->q_tail->next = q;
    else
        s->q_head = q;
    s->q_tail = q;
    pthread_mutex_unlock(&s->mu);
}

/* hcn_store.submit: the metadata names the process. */
static void store_submit(void *ctx, hcn_msg *m)
{
    enqueue(ctx, m, m->metadata);
}

/* Ask the module's thread to commit what is left (a committer gave up
 * after its rounds); under mu. */
static void hand_off(state_mod *s)
{
    if (s->handoff_sent)
        return;
    hcn_msg *f = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .source = s->self->addr,
                             .target = s->self->addr, .body = "\"Flush\"",
                             .body_len = 7);
    if (hcn_mailbox_push(&s->self->mb, f) == HCC_EOK)
        s->handoff_sent = true;
    else
        hcn_msg_unref(f); /* closing: fini commits the rest */
}

/* hcn_store.flush (the module's own thread passes mine = true: it keeps
 * committing until the queue is empty). */
static void flush(state_mod *s, bool wait, bool mine)
{
    pthread_mutex_lock(&s->mu);
    if (s->committing) {
        while (wait && (s->committing || s->q_head))
            pthread_cond_wait(&s->idle_cv, &s->mu);
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->committing = true;
    for (int round = 0; s->q_head; round++) {
        if (!mine && !wait && round == STATE_COMMIT_ROUNDS) {
            hand_off(s);
            break;
        }
        queued *list = s->q_head;
        s->q_head = s->q_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        commit_group(s, list);
        pthread_mutex_lock(&s->mu);
    }
    s->committing = false;
    pthread_cond_broadcast(&s->idle_cv);
    pthread_mutex_unlock(&s->mu);
}

static void store_flush(void *ctx, bool wait)
{
    flush(ctx, wait, false);
}

/* ------------------------------------------------------------ requests */

static void state_handle(hcn_proc *self, hcn_msg *m)
{
    state_mod *s = self->mod;
    if (m->kind == HCN_MSG_REQUEST && strcmp(m->source, self->addr) == 0) {
        /* a committer's hand-off */
        pthread_mutex_lock(&s->mu);
        s->handoff_sent = false;
        pthread_mutex_unlock(&s->mu);
        flush(s, false, true);
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
        goto out;
    }
    if (strcmp(action, "SetState") == 0) {
        if (m->blob == NULL) {
            reply_err(self, m, "BadBytes", "action", "SetState");
            goto out;
        }
        /* behind the saves already queued, answered once committed */
        enqueue(s, m, pid);
        m = NULL;
        flush(s, false, true);
        goto out;
    }
    /* a read or delete sees every save queued before it */
    flush(s, true, true);
    pthread_mutex_lock(&s->db_mu);
    if (strcmp(action, "GetState") == 0) {
        sqlite3_bind_text(s->get, 1, pid, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s->get);
        if (rc == SQLITE_ROW) {
            hcn_blob *b = hcn_blob_new("application/octet-stream",
                                       sqlite3_column_blob(s->get, 0),
                                       (size_t)sqlite3_column_bytes(s->get, 0));
            sqlite3_reset(s->get);
            pthread_mutex_unlock(&s->db_mu);
            reply(self, m, "\"GetState\"", false, b);
            hcn_blob_unref(b);
        } else {
            char why[512];
            snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
            sqlite3_reset(s->get);
            pthread_mutex_unlock(&s->db_mu);
            if (rc == SQLITE_DONE)
                reply_err(self, m, "NotFound", "process_id", pid);
            else
                reply_err(self, m, "DatabaseError", "error", why);
        }
    } else {
        sqlite3_bind_text(s->del, 1, pid, -1, SQLITE_TRANSIENT);
        bool ok = step_done(s->del);
        char why[512];
        snprintf(why, sizeof why, "%s", sqlite3_errmsg(s->db));
        pthread_mutex_unlock(&s->db_mu);
        if (ok)
            reply(self, m, "\"DeleteState\"", false, NULL);
        else
            reply_err(self, m, "DatabaseError", "error", why);
    }
out:
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
}

static void state_fini(hcn_proc *self)
{
    state_mod *s = self->mod;
    if (s == NULL)
        return;
    flush(s, true, true); /* what was queued last is committed too */
    if (self->node->store.ctx == s)
        memset(&self->node->store, 0, sizeof self->node->store);
    db_close(s);
    pthread_mutex_destroy(&s->db_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle_cv);
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
    /* Exclusive locking: the node is the database's only user while it
     * runs, so a commit takes no file locks (six fcntl calls a commit in
     * the default mode) and the WAL index lives in the node's memory. */
    if (sqlite3_open_v2(n->state_db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(s->db,
                     "PRAGMA locking_mode=EXCLUSIVE;"
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=NORMAL;"
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
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    hcn_proc *p = hcn_node_add_proc(n, "state:distro:sys", false, NULL);
    p->ops = &state_ops;
    p->mod = s;
    s->self = p;
    n->store =
        (hcn_store){.submit = store_submit, .flush = store_flush, .ctx = s};
    hcn_proc_unref(p);
    if (errlen)
        err[0] = '\0';
    return 0;
fail:
    if (s->db)
        hcn_logf(n, 0, "state: %s", sqlite3_errmsg(s->db));
    db_close(s);
    free(s);
    return -1;
}
