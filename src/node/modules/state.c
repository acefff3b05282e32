/* state:distro:sys: each process's state as one SQLite row (WAL), keyed by
 * process id.  Request and reply shapes are Hyperware's StateAction and
 * StateResponse. */
#include "modkit.h"
#include "modules.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct state_mod {
    sqlite3 *db;
    sqlite3_stmt *get, *set, *del;
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

static void state_handle(hcn_proc *self, hcn_msg *m)
{
    state_mod *s = self->mod;
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
    if (strcmp(action, "GetState") == 0) {
        sqlite3_reset(s->get);
        sqlite3_bind_text(s->get, 1, pid, -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(s->get);
        if (rc == SQLITE_ROW) {
            hcn_blob *b = hcn_blob_new("application/octet-stream",
                                       sqlite3_column_blob(s->get, 0),
                                       (size_t)sqlite3_column_bytes(s->get, 0));
            reply(self, m, "\"GetState\"", false, b);
            hcn_blob_unref(b);
        } else if (rc == SQLITE_DONE) {
            reply_err(self, m, "NotFound", "process_id", pid);
        } else {
            reply_err(self, m, "DatabaseError", "error", sqlite3_errmsg(s->db));
        }
        sqlite3_reset(s->get);
    } else if (strcmp(action, "SetState") == 0) {
        if (m->blob == NULL) {
            reply_err(self, m, "BadBytes", "action", "SetState");
            goto out;
        }
        sqlite3_reset(s->set);
        sqlite3_bind_text(s->set, 1, pid, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(s->set, 2, m->blob->bytes, (int)m->blob->len,
                          SQLITE_STATIC);
        sqlite3_bind_int64(s->set, 3, hcn_wall_ms());
        if (sqlite3_step(s->set) == SQLITE_DONE)
            reply(self, m, "\"SetState\"", false, NULL);
        else
            reply_err(self, m, "DatabaseError", "error", sqlite3_errmsg(s->db));
        sqlite3_reset(s->set);
    } else {
        sqlite3_reset(s->del);
        sqlite3_bind_text(s->del, 1, pid, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(s->del) == SQLITE_DONE)
            reply(self, m, "\"DeleteState\"", false, NULL);
        else
            reply_err(self, m, "DatabaseError", "error", sqlite3_errmsg(s->db));
        sqlite3_reset(s->del);
    }
out:
    json_decref(body);
    hcn_msg_unref(m);
}

static void state_fini(hcn_proc *self)
{
    state_mod *s = self->mod;
    if (s == NULL)
        return;
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->set);
    sqlite3_finalize(s->del);
    sqlite3_close(s->db);
    free(s);
    self->mod = NULL;
}

static const hcn_module_ops state_ops = {
    .handle = state_handle,
    .fini = state_fini,
};

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
    if (sqlite3_open_v2(n->state_db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                            SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_exec(s->db,
                     "PRAGMA journal_mode=WAL;"
                     "PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE IF NOT EXISTS state("
                     " process_id TEXT PRIMARY KEY,"
                     " value BLOB NOT NULL,"
                     " updated_ms INTEGER NOT NULL);",
                     NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM state WHERE process_id=?1",
                           -1, &s->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO state(process_id,value,updated_ms)"
                           " VALUES(?1,?2,?3) ON CONFLICT(process_id) DO"
                           " UPDATE SET value=excluded.value,"
                           " updated_ms=excluded.updated_ms",
                           -1, &s->set, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "DELETE FROM state WHERE process_id=?1", -1,
                           &s->del, NULL) != SQLITE_OK)
        goto fail;
    hcn_proc *p = hcn_node_add_proc(n, "state:distro:sys", false, NULL);
    p->ops = &state_ops;
    p->mod = s;
    hcn_proc_unref(p);
    if (errlen)
        err[0] = '\0';
    return 0;
fail:
    if (s->db)
        hcn_logf(n, 0, "state: %s", sqlite3_errmsg(s->db));
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->set);
    sqlite3_finalize(s->del);
    sqlite3_close(s->db);
    free(s);
    return -1;
}
