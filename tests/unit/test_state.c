/* The state module state:distro:sys end to end in a started node
 * (runtime.md §6): StateAction requests from the kernel's fake source with
 * the rsvp of a fake process, Hyperware's replies and errors, sources other
 * than the kernel ignored, persistence across node restarts, and the host's
 * get/set/clear-state path. */
#include "unit_helpers.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include "node/modules/statelog.h"
#include "worker/slot.h"

#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>

#define KERNEL UT_NODE "@kernel:distro:sys"
#define STATE UT_NODE "@state:distro:sys"
#define PID_F "fake:state:test"
#define ADDR_F UT_NODE "@" PID_F
#define OCTET "application/octet-stream"

typedef struct fx {
    char *home;
    hc_node *n;
    hcn_proc *fake;
    uint64_t next_id;
} fx;

static void start(fx *f)
{
    f->n = ut_node_started(f->home, 64);
    /* Registered after start: no thread runs it, the test pops for it. */
    f->fake = ut_add_proc(f->n, PID_F, false);
}

static void stop(fx *f)
{
    hc_node_shutdown(f->n);
    hcn_proc_unref(f->fake);
    f->fake = NULL;
    hc_node_free(f->n);
    f->n = NULL;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->next_id = 100;
    start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->n)
        stop(f);
    ut_rm_rf(f->home);
    free(f->home);
    free(f);
    return 0;
}

/* A request to state from `source`, rsvp the fake process; returns its
 * id. */
static uint64_t state_req_from(fx *f, const char *source, const char *body,
                               const void *blob, size_t blob_len,
                               bool with_blob)
{
    hcn_blob *b = with_blob ? hcn_blob_new(NULL, blob, blob_len) : NULL;
    uint64_t id = f->next_id++;
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = source,
                    .target = STATE, .rsvp = ADDR_F, .has_expects = true,
                    .expects = 5, .body = body, .body_len = strlen(body),
                    .metadata = PID_F, .blob = b);
    hcn_blob_unref(b);
    hcn_route(f->n, m);
    return id;
}

static uint64_t state_req(fx *f, const char *body, const char *blob)
{
    return state_req_from(f, KERNEL, body, blob, blob ? strlen(blob) : 0,
                          blob != NULL);
}

/* The fake's next message: state's response to `id`. */
static hcn_msg *reply_to(fx *f, uint64_t id)
{
    hcn_msg *m = ut_pop(f->fake, 5000);
    assert_int_equal(m->kind, HCN_MSG_RESPONSE);
    if (m->id != id) {
        uint64_t got = m->id;
        hcn_msg_unref(m);
        fail_msg("reply to id %llu, expected %llu", (unsigned long long)got,
                 (unsigned long long)id);
    }
    assert_string_equal(m->source, STATE);
    assert_string_equal(m->target, ADDR_F);
    return m;
}

/* Asserts a body equal to `json` as parsed JSON. */
static void assert_json_body(const hcn_msg *m, const char *json)
{
    char *body = hcn_xstrndup((const char *)m->body, m->body_len);
    char *a = hcn_json_canonical(body);
    char *b = hcn_json_canonical(json);
    assert_non_null(b);
    if (a == NULL || strcmp(a, b) != 0) {
        free(a);
        free(b);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", body);
        free(body);
        fail_msg("body %s, expected %s", msg, json);
    }
    free(a);
    free(b);
    free(body);
}

static void set_get_delete(void **state)
{
    fx *f = *state;
    uint64_t id = state_req(f, "{\"SetState\":\"app:pkg:pub.os\"}", "hello");
    hcn_msg *r = reply_to(f, id);
    ut_assert_body(r, "\"SetState\"");
    assert_null(r->blob);
    /* Success replies carry the request's metadata. */
    assert_non_null(r->metadata);
    assert_string_equal(r->metadata, PID_F);
    hcn_msg_unref(r);

    id = state_req(f, "{\"GetState\":\"app:pkg:pub.os\"}", NULL);
    r = reply_to(f, id);
    ut_assert_body(r, "\"GetState\"");
    ut_assert_blob(r->blob, "hello");
    assert_non_null(r->blob->mime);
    assert_string_equal(r->blob->mime, OCTET);
    hcn_msg_unref(r);

    /* Overwrite, whole. */
    id = state_req(f, "{\"SetState\":\"app:pkg:pub.os\"}", "hi");
    hcn_msg_unref(reply_to(f, id));
    id = state_req(f, "{\"GetState\":\"app:pkg:pub.os\"}", NULL);
    r = reply_to(f, id);
    ut_assert_blob(r->blob, "hi");
    hcn_msg_unref(r);

    /* Keyed by process id. */
    id = state_req(f, "{\"GetState\":\"other:pkg:pub.os\"}", NULL);
    r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"other:pkg:pub.os\"}}}");
    assert_null(r->blob);
    hcn_msg_unref(r);

    id = state_req(f, "{\"DeleteState\":\"app:pkg:pub.os\"}", NULL);
    r = reply_to(f, id);
    ut_assert_body(r, "\"DeleteState\"");
    hcn_msg_unref(r);
    id = state_req(f, "{\"GetState\":\"app:pkg:pub.os\"}", NULL);
    r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"app:pkg:pub.os\"}}}");
    hcn_msg_unref(r);
}

static void binary_empty_and_large_states(void **state)
{
    fx *f = *state;
    /* Bytes with NULs and high bits. */
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)(255 - i);
    uint64_t id = state_req_from(f, KERNEL, "{\"SetState\":\"bin:pkg:pub\"}",
                                 bin, sizeof bin, true);
    hcn_msg_unref(reply_to(f, id));
    id = state_req(f, "{\"GetState\":\"bin:pkg:pub\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    assert_non_null(r->blob);
    assert_int_equal(r->blob->len, sizeof bin);
    assert_memory_equal(r->blob->bytes, bin, sizeof bin);
    hcn_msg_unref(r);
    /* An empty state is a state, not NotFound. */
    id = state_req(f, "{\"SetState\":\"empty:pkg:pub\"}", "");
    r = reply_to(f, id);
    ut_assert_body(r, "\"SetState\"");
    hcn_msg_unref(r);
    id = state_req(f, "{\"GetState\":\"empty:pkg:pub\"}", NULL);
    r = reply_to(f, id);
    ut_assert_body(r, "\"GetState\"");
    assert_non_null(r->blob);
    assert_int_equal(r->blob->len, 0);
    hcn_msg_unref(r);
    /* 4 MiB, whole. */
    size_t big = 4u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    id = state_req_from(f, KERNEL, "{\"SetState\":\"big:pkg:pub\"}", buf, big,
                        true);
    hcn_msg_unref(reply_to(f, id));
    id = state_req(f, "{\"GetState\":\"big:pkg:pub\"}", NULL);
    r = reply_to(f, id);
    assert_non_null(r->blob);
    assert_int_equal(r->blob->len, big);
    assert_memory_equal(r->blob->bytes, buf, big);
    hcn_msg_unref(r);
    free(buf);
}

static void errors(void **state)
{
    fx *f = *state;
    uint64_t id = state_req(f, "{\"SetState\":\"app:pkg:pub\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"BadBytes\":{\"action\":\"SetState\"}}}");
    assert_null(r->metadata); /* errors carry no metadata */
    hcn_msg_unref(r);
    /* Nothing was stored by the failed SetState. */
    id = state_req(f, "{\"GetState\":\"app:pkg:pub\"}", NULL);
    r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"app:pkg:pub\"}}}");
    hcn_msg_unref(r);

    static const char *const bad[] = {
        "not json",
        "",
        "{}",
        "[]",
        "\"GetState\"",
        "{\"GetState\": 5}",
        "{\"GetState\": null}",
        "{\"Frobnicate\": \"app:pkg:pub\"}",
        "{\"GetState\": \"app:pkg:pub\", \"SetState\": \"app:pkg:pub\"}",
        "{\"getstate\": \"app:pkg:pub\"}",
        "{\"GetState\": \"app:pkg:pub\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id = state_req(f, bad[i], NULL);
        r = reply_to(f, id);
        char *body = hcn_xstrndup((const char *)r->body, r->body_len);
        json_error_t je;
        json_t *j = json_loads(body, 0, &je);
        json_t *err = json_object_get(json_object_get(j, "Err"), "BadJson");
        if (!json_is_string(json_object_get(err, "error")) ||
            json_object_size(json_object_get(j, "Err")) != 1 ||
            json_object_size(j) != 1) {
            json_decref(j);
            hcn_msg_unref(r);
            fail_msg("for body '%s' got '%s', expected "
                     "{\"Err\":{\"BadJson\":{\"error\":...}}}",
                     bad[i], body);
        }
        json_decref(j);
        free(body);
        hcn_msg_unref(r);
    }
}

static void other_sources_ignored(void **state)
{
    fx *f = *state;
    hcn_proc *st = hcn_node_find(f->n, "state:distro:sys");
    assert_non_null(st);
    /* Pushed straight into state's mailbox (routing would refuse some of
     * them first): a process of another package, another node's kernel,
     * and a lookalike package. */
    static const char *const sources[] = {
        ADDR_F,
        "other.os@kernel:distro:sys",
        UT_NODE "@kernel:distro:sysx",
        UT_NODE "@kernel:distro-x:sys",
    };
    const char *evil = "{\"SetState\":\"victim:pkg:pub\"}";
    for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
        hcn_blob *b = hcn_blob_new(NULL, "evil", 4);
        hcn_msg *m =
            HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 1 + i,
                        .source = sources[i], .target = STATE, .rsvp = ADDR_F,
                        .has_expects = true, .expects = 5, .body = evil,
                        .body_len = strlen(evil), .blob = b);
        hcn_blob_unref(b);
        assert_int_equal(hcn_mailbox_push(&st->mb, m), HCC_EOK);
    }
    hcn_proc_unref(st);
    /* Through routing too, with messaging granted. */
    hcn_grant_messaging(f->n, f->fake, "state:distro:sys");
    state_req_from(f, ADDR_F, "{\"GetState\":\"victim:pkg:pub\"}", NULL, 0,
                   false);
    /* The first answer the fake sees is the kernel's request's: none of the
     * others was answered, and nothing was stored. */
    uint64_t id = state_req(f, "{\"GetState\":\"victim:pkg:pub\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"victim:pkg:pub\"}}}");
    hcn_msg_unref(r);
    ut_assert_empty(f->fake, 50);
    /* Other distro:sys and terminal:terminal:sys sources are accepted, as
     * in Hyperware. */
    id = state_req_from(f, UT_NODE "@terminal:terminal:sys",
                        "{\"GetState\":\"victim:pkg:pub\"}", NULL, 0, false);
    hcn_msg_unref(reply_to(f, id));
}

static void persists_across_restart(void **state)
{
    fx *f = *state;
    uint64_t id = state_req(f, "{\"SetState\":\"keep:pkg:pub\"}", "kept");
    hcn_msg_unref(reply_to(f, id));
    id = state_req(f, "{\"SetState\":\"gone:pkg:pub\"}", "gone");
    hcn_msg_unref(reply_to(f, id));
    id = state_req(f, "{\"DeleteState\":\"gone:pkg:pub\"}", NULL);
    hcn_msg_unref(reply_to(f, id));
    stop(f);
    start(f);
    id = state_req(f, "{\"GetState\":\"keep:pkg:pub\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    ut_assert_body(r, "\"GetState\"");
    ut_assert_blob(r->blob, "kept");
    hcn_msg_unref(r);
    id = state_req(f, "{\"GetState\":\"gone:pkg:pub\"}", NULL);
    r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"gone:pkg:pub\"}}}");
    hcn_msg_unref(r);
}

/* A save queued through the kernel's store hook (hcn_store), as a guest's
 * host queues one. */
static uint64_t queue_save(fx *f, const char *pid, const char *bytes)
{
    hcn_blob *b = hcn_blob_new(NULL, bytes, strlen(bytes));
    char body[128];
    snprintf(body, sizeof body, "{\"SetState\":\"%s\"}", pid);
    uint64_t id = f->next_id++;
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = KERNEL,
                    .target = STATE, .rsvp = ADDR_F, .has_expects = true,
                    .expects = 5, .body = body, .body_len = strlen(body),
                    .metadata = pid, .blob = b);
    hcn_blob_unref(b);
    f->n->store.submit(f->n->store.ctx, m);
    return id;
}

static void assert_stored(fx *f, const char *pid, const char *want)
{
    char body[128];
    snprintf(body, sizeof body, "{\"GetState\":\"%s\"}", pid);
    uint64_t id = state_req(f, body, NULL);
    hcn_msg *r = reply_to(f, id);
    ut_assert_body(r, "\"GetState\"");
    ut_assert_blob(r->blob, want);
    hcn_msg_unref(r);
}

/* Saves through the store hook are each written to the log and answered
 * at once, in the order submitted, without a flush; a read sees each
 * process's newest bytes; a save submitted just before shutdown is in
 * SQLite after it. */
static void logged_saves(void **state)
{
    fx *f = *state;
    assert_non_null(f->n->store.submit);
    static const char *const pids[] = {"a:s:t", "b:s:t", "a:s:t",
                                       "a:s:t", "b:s:t", "a:s:t"};
    static const char *const vals[] = {"a1", "b1", "a2", "a3", "b2", "a4"};
    uint64_t ids[6];
    for (int i = 0; i < 6; i++)
        ids[i] = queue_save(f, pids[i], vals[i]);
    for (int i = 0; i < 6; i++) {
        hcn_msg *r = reply_to(f, ids[i]);
        ut_assert_body(r, "\"SetState\"");
        assert_string_equal(r->metadata, pids[i]);
        hcn_msg_unref(r);
    }
    assert_stored(f, "a:s:t", "a4");
    assert_stored(f, "b:s:t", "b2");
    /* a delete is logged too: gone for a read, then saved again */
    uint64_t id = state_req(f, "{\"DeleteState\":\"b:s:t\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    ut_assert_body(r, "\"DeleteState\"");
    hcn_msg_unref(r);
    id = state_req(f, "{\"GetState\":\"b:s:t\"}", NULL);
    r = reply_to(f, id);
    assert_json_body(r, "{\"Err\":{\"NotFound\":{\"process_id\":"
                        "\"b:s:t\"}}}");
    hcn_msg_unref(r);
    queue_save(f, "b:s:t", "b3");
    stop(f);
    /* what the stop drained is in SQLite, the log is empty */
    char *db_path = hcn_xasprintf("%s/state/state.sqlite", f->home);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT value FROM state WHERE "
                                        "process_id='b:s:t'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_bytes(st, 0), 2);
    assert_memory_equal(sqlite3_column_blob(st, 0), "b3", 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(db_path);
    char *base = hcn_xasprintf("%s/state/state.sqlite.log", f->home);
    char err[256];
    hcn_slog *l = hcn_slog_open(base, err, sizeof err);
    assert_non_null(l);
    const hcn_slog_rec *recs;
    size_t nrecs;
    hcn_slog_draining(l, &recs, &nrecs);
    assert_int_equal(nrecs, 0);
    hcn_slog_close(l);
    free(base);
    start(f);
    assert_stored(f, "a:s:t", "a4");
    assert_stored(f, "b:s:t", "b3");
}

/* Saves through the store's `save` (a host's set_state_now) are stored
 * before it returns, with no message: a read sees them, in order with
 * saves submitted as messages; an empty state is a save, not a delete; an
 * id the log cannot hold is refused with errno; a stop drains them into
 * SQLite. */
static void saves_at_once(void **state)
{
    fx *f = *state;
    assert_non_null(f->n->store.save);
    void *c = f->n->store.ctx;
    assert_int_equal(f->n->store.save(c, "a:s:t", (const uint8_t *)"a1", 2), 0);
    uint64_t id = queue_save(f, "a:s:t", "a2");
    assert_int_equal(f->n->store.save(c, "b:s:t", (const uint8_t *)"b1", 2), 0);
    hcn_msg *r = reply_to(f, id);
    ut_assert_body(r, "\"SetState\"");
    hcn_msg_unref(r);
    assert_stored(f, "a:s:t", "a2");
    assert_int_equal(f->n->store.save(c, "a:s:t", (const uint8_t *)"a3", 2), 0);
    assert_stored(f, "a:s:t", "a3");
    assert_stored(f, "b:s:t", "b1");
    assert_int_equal(f->n->store.save(c, "e:s:t", NULL, 0), 0);
    assert_stored(f, "e:s:t", "");
    char *huge = calloc(1, 70000);
    assert_non_null(huge);
    memset(huge, 'x', 69999);
    errno = 0;
    assert_int_equal(f->n->store.save(c, huge, (const uint8_t *)"z", 1), -1);
    assert_int_equal(errno, EINVAL);
    free(huge);
    stop(f);
    start(f);
    assert_stored(f, "a:s:t", "a3");
    assert_stored(f, "b:s:t", "b1");
    assert_stored(f, "e:s:t", "");
}

/* A host (the node's side of the ABI) for the fake process; hcn_host_fini
 * and free undo it. */
static hcn_host *host_new(fx *f)
{
    hcn_host *h = calloc(1, sizeof *h);
    assert_non_null(h);
    hcn_host_init(h, f->fake);
    return h;
}

/* The host side: get/set/clear-state of a process go to the state module
 * as the kernel, keyed by the process's id. */
static void host_state_calls(void **state)
{
    fx *f = *state;
    hcn_host *h = host_new(f);
    hwn_host *t = &h->table;
    hw_bytes out;
    assert_false(t->get_state(t->ctx, &out));
    assert_null(out.ptr);
    assert_true(t->set_state(t->ctx, (const uint8_t *)"abc", 3));
    assert_true(t->get_state(t->ctx, &out));
    ut_assert_bytes(&out, "abc");
    hw_bytes_fini(&out);
    assert_true(t->set_state(t->ctx, NULL, 0)); /* empty state */
    assert_true(t->get_state(t->ctx, &out));
    assert_int_equal(out.len, 0);
    hw_bytes_fini(&out);
    /* Stored under the process id, visible to a kernel request. */
    assert_true(t->set_state(t->ctx, (const uint8_t *)"xyz", 3));
    uint64_t id = state_req(f, "{\"GetState\":\"" PID_F "\"}", NULL);
    hcn_msg *r = reply_to(f, id);
    ut_assert_blob(r->blob, "xyz");
    hcn_msg_unref(r);
    /* set_state_now: stored when it returns; -1 (save by message) while a
     * message waits for the process */
    assert_int_equal(t->set_state_now(t->ctx, (const uint8_t *)"now", 3), 1);
    assert_true(t->get_state(t->ctx, &out));
    ut_assert_bytes(&out, "now");
    hw_bytes_fini(&out);
    hcn_msg *q =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 77, .source = KERNEL,
                    .target = ADDR_F, .body = "\"Ping\"", .body_len = 6);
    assert_int_equal(hcn_mailbox_push(&f->fake->mb, q), HCC_EOK);
    assert_int_equal(t->set_state_now(t->ctx, (const uint8_t *)"later", 5), -1);
    q = ut_pop(f->fake, 5000);
    assert_int_equal(q->id, 77);
    /* ... or one the process took from its mailbox but was not handed */
    h->deferred_head = h->deferred_tail = q;
    assert_int_equal(t->set_state_now(t->ctx, (const uint8_t *)"later", 5), -1);
    h->deferred_head = h->deferred_tail = NULL;
    hcn_msg_unref(q);
    assert_true(t->get_state(t->ctx, &out));
    ut_assert_bytes(&out, "now");
    hw_bytes_fini(&out);
    assert_true(t->clear_state(t->ctx));
    assert_false(t->get_state(t->ctx, &out));
    /* State calls leave the blob and the prompting message alone. */
    assert_false(t->has_blob(t->ctx));
    assert_null(h->prompting);
    assert_int_equal(HASH_COUNT(h->contexts), 0);
    hcn_host_fini(h);
    free(h);
}

/* Hold the state module's thread (its mailbox stopped: requests queue,
 * none is handled) and let it go again. */
static hcn_proc *module_hold(fx *f)
{
    hcn_proc *sp = hcn_node_find(f->n, "state:distro:sys");
    assert_non_null(sp);
    hcn_mailbox_stop(&sp->mb);
    assert_int_equal(pthread_join(sp->thread, NULL), 0);
    return sp;
}

static void module_release(hcn_proc *sp)
{
    hcn_mailbox_resume(&sp->mb);
    assert_int_equal(hcn_module_start_thread(sp), 0);
    hcn_proc_unref(sp);
}

/* set-state and clear-state are stored when they return, without waiting
 * for the module's thread: a request held up there would time out and be
 * stored after the saves made since. */
static void host_state_calls_while_module_held(void **state)
{
    fx *f = *state;
    hcn_host *h = host_new(f);
    hwn_host *t = &h->table;
    hw_bytes out;
    hcn_proc *sp = module_hold(f);
    int64_t t0 = hcn_now_ns();
    assert_true(t->set_state(t->ctx, (const uint8_t *)"old", 3));
    assert_int_equal(t->set_state_now(t->ctx, (const uint8_t *)"new", 3), 1);
    assert_true(hcn_now_ns() - t0 < 2000000000); /* no wait for an answer */
    assert_int_equal(atomic_load(&sp->mb.count), 0);
    module_release(sp);
    assert_true(t->get_state(t->ctx, &out));
    ut_assert_bytes(&out, "new");
    hw_bytes_fini(&out);
    sp = module_hold(f);
    assert_true(t->clear_state(t->ctx));
    assert_int_equal(atomic_load(&sp->mb.count), 0);
    module_release(sp);
    assert_false(t->get_state(t->ctx, &out));
    /* and they survive a restart */
    assert_true(t->set_state(t->ctx, (const uint8_t *)"kept", 4));
    hcn_host_fini(h);
    free(h);
    stop(f);
    start(f);
    assert_stored(f, PID_F, "kept");
}

/* Slots in use at once: two workers each publishing into its own slot
 * while the node saves, reads and deletes those processes on other
 * threads, and a third process's slot opened and closed over and over.
 * Each slot's lock orders its drains with the records that follow; at the
 * end each slot's last value, drained by its close, is what is stored. */
#define PAR_ROUNDS 2000

static pthread_barrier_t par_go; /* every thread starts at once */

typedef struct par_arg {
    fx *f;
    const char *pid;
    uint8_t *map; /* the worker's side (NULL: the node's side, or cycling) */
} par_arg;

static void *par_worker(void *v)
{
    par_arg *a = v;
    char val[64];
    pthread_barrier_wait(&par_go);
    for (uint64_t i = 1; i <= PAR_ROUNDS; i++) {
        /* every tenth a big value: a long drain under the slot's lock */
        size_t len =
            i % 10 ? (size_t)snprintf(val, sizeof val, "w%" PRIu64, i) : 200000;
        uint8_t *big = len > sizeof val ? malloc(len) : NULL;
        if (big)
            memset(big, 'b', len);
        if (!hcw_slot_put(a->map, i, big ? big : (uint8_t *)val, len))
            abort();
        free(big);
    }
    return NULL;
}

static void *par_node(void *v)
{
    par_arg *a = v;
    void *c = a->f->n->store.ctx;
    pthread_barrier_wait(&par_go);
    for (int i = 0; i < PAR_ROUNDS; i++) {
        if (i % 50 == 49
                ? a->f->n->store.del(c, a->pid)
                : a->f->n->store.save(c, a->pid, (const uint8_t *)"n", 1))
            abort();
    }
    return NULL;
}

static void *par_cycle(void *v)
{
    par_arg *a = v;
    hcn_store *st = &a->f->n->store;
    pthread_barrier_wait(&par_go);
    for (int i = 0; i < PAR_ROUNDS / 4; i++) {
        int fd = st->slot_open(st->ctx, a->pid);
        if (fd < 0)
            abort();
        uint8_t *m = hcw_slot_map(fd);
        if (m == NULL || !hcw_slot_put(m, hcw_slot_seq(m) + 1, "c", 1))
            abort();
        hcw_slot_unmap(m);
        close(fd);
        st->slot_close(st->ctx, a->pid);
    }
    return NULL;
}

static void slots_in_parallel(void **state)
{
    fx *f = *state;
    hcn_store *st = &f->n->store;
    const char *pids[2] = {"a:s:t", "b:s:t"};
    int fds[2];
    par_arg w[2], nd[2], cy = {.f = f, .pid = "c:s:t"};
    pthread_t tw[2], tn[2], tc;
    assert_int_equal(pthread_barrier_init(&par_go, NULL, 6), 0);
    for (int k = 0; k < 2; k++) {
        fds[k] = st->slot_open(st->ctx, pids[k]);
        assert_true(fds[k] >= 0);
        w[k] = (par_arg){.f = f, .pid = pids[k], .map = hcw_slot_map(fds[k])};
        assert_non_null(w[k].map);
        nd[k] = (par_arg){.f = f, .pid = pids[k]};
        assert_int_equal(pthread_create(&tw[k], NULL, par_worker, &w[k]), 0);
        assert_int_equal(pthread_create(&tn[k], NULL, par_node, &nd[k]), 0);
    }
    assert_int_equal(pthread_create(&tc, NULL, par_cycle, &cy), 0);
    pthread_barrier_wait(&par_go);
    for (int i = 0; i < 200; i++) {
        /* reads through the module's thread meanwhile */
        char body[64];
        snprintf(body, sizeof body, "{\"GetState\":\"%s\"}", pids[i % 2]);
        hcn_msg_unref(reply_to(f, state_req(f, body, NULL)));
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(pthread_join(tw[k], NULL), 0);
        assert_int_equal(pthread_join(tn[k], NULL), 0);
    }
    assert_int_equal(pthread_join(tc, NULL), 0);
    pthread_barrier_destroy(&par_go);
    for (int k = 0; k < 2; k++) {
        char last[16];
        snprintf(last, sizeof last, "last-%d", k);
        assert_true(hcw_slot_put(w[k].map, PAR_ROUNDS + 1, last, strlen(last)));
        st->slot_close(st->ctx, pids[k]);
        hcw_slot_unmap(w[k].map);
        close(fds[k]);
        assert_stored(f, pids[k], last);
    }
    assert_stored(f, "c:s:t", "c");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(set_get_delete),
        T(binary_empty_and_large_states),
        T(errors),
        T(other_sources_ignored),
        T(persists_across_restart),
        T(host_state_calls),
        T(host_state_calls_while_module_held),
        T(logged_saves),
        T(saves_at_once),
        T(slots_in_parallel),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
