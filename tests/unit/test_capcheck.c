/* Capability checks and bounds of hcn_route (kernel.c), runtime.md §3.3 and
 * §4: messaging capability or a public target for local senders, exempt
 * runtime sources, responses checked too, full mailboxes, and the
 * immediate timeout error a refused request that expects a response earns
 * its sender. */
#include "unit_helpers.h"

#define PID_A "alice:cap:test"
#define PID_B "bob:cap:test"
#define PID_P "pub:cap:test"
#define ADDR_A UT_NODE "@" PID_A
#define ADDR_B UT_NODE "@" PID_B
#define ADDR_P UT_NODE "@" PID_P

typedef struct fx {
    char *home;
    hc_node *n;
    hcn_proc *a, *b, *p;
} fx;

enum { MAILBOX_MAX = 3 };

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->n = ut_node_new(f->home, MAILBOX_MAX);
    f->a = ut_add_proc(f->n, PID_A, false);
    f->b = ut_add_proc(f->n, PID_B, false);
    f->p = ut_add_proc(f->n, PID_P, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hcn_proc_unref(f->a);
    hcn_proc_unref(f->b);
    hcn_proc_unref(f->p);
    hc_node_free(f->n);
    ut_rm_rf(f->home);
    free(f->home);
    free(f);
    return 0;
}

static uint64_t next_id = 1000;

/* Route a request; returns its id. */
static uint64_t route_req(fx *f, const char *src, const char *dst,
                          const char *rsvp, bool expects, const char *body)
{
    uint64_t id = next_id++;
    hcn_route(f->n, ut_req(id, src, dst, rsvp, expects, 5, body, NULL));
    return id;
}

static void assert_delivered(hcn_proc *to, uint64_t id, int kind,
                             const char *body)
{
    hcn_msg *m = ut_pop(to, 500);
    assert_int_equal(m->id, id);
    assert_int_equal(m->kind, kind);
    ut_assert_body(m, body);
    hcn_msg_unref(m);
}

/* The sender got a send error for request `id` of `kind`, naming
 * `target`. */
static void assert_bounced(hcn_proc *sender, uint64_t id, int kind,
                           const char *target, const char *body)
{
    hcn_msg *e = ut_pop(sender, 500);
    assert_int_equal(e->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(e->id, id);
    assert_int_equal(e->err_kind, kind);
    assert_string_equal(e->target, sender->addr);
    assert_string_equal(e->source, target);
    assert_non_null(e->orig); /* the failed request itself */
    assert_int_equal(e->orig->kind, HCN_MSG_REQUEST);
    assert_string_equal(e->orig->target, target);
    ut_assert_body(e->orig, body);
    hcn_msg_unref(e);
}

static void non_public_without_messaging_refused(void **state)
{
    fx *f = *state;
    uint64_t id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "knock");
    ut_assert_empty(f->b, 30);
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, ADDR_B, "knock");
    /* Without expects: refused silently. */
    route_req(f, ADDR_A, ADDR_B, NULL, false, "knock");
    ut_assert_empty(f->b, 30);
    ut_assert_empty(f->a, 30);
}

static void public_target_accepted(void **state)
{
    fx *f = *state;
    uint64_t id = route_req(f, ADDR_A, ADDR_P, ADDR_A, true, "hello");
    assert_delivered(f->p, id, HCN_MSG_REQUEST, "hello");
    ut_assert_empty(f->a, 30);
}

static void messaging_capability_accepted(void **state)
{
    fx *f = *state;
    hcn_grant_messaging(f->n, f->a, PID_B);
    uint64_t id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "hello");
    assert_delivered(f->b, id, HCN_MSG_REQUEST, "hello");
    ut_assert_empty(f->a, 30);
    /* The capability is one-way: B still cannot message A. */
    id = route_req(f, ADDR_B, ADDR_A, ADDR_B, true, "back");
    ut_assert_empty(f->a, 30);
    assert_bounced(f->b, id, HW_SEND_ERROR_TIMEOUT, ADDR_A, "back");
    /* Dropping it (remove_issuer, as on revocation) refuses again. */
    pthread_mutex_lock(&f->a->lock);
    assert_int_equal(hcn_capset_remove_issuer(&f->a->caps, ADDR_B), 1);
    pthread_mutex_unlock(&f->a->lock);
    id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "again");
    ut_assert_empty(f->b, 30);
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, ADDR_B, "again");
}

static void other_capabilities_do_not_count(void **state)
{
    fx *f = *state;
    /* Messaging for another process, another capability from B, and
     * messaging for B on another node do not let A message B. */
    hcn_grant_messaging(f->n, f->a, PID_P);
    hcn_grant(f->a, ADDR_B, "\"read\"");
    hcn_grant(f->a, "other.os@" PID_B, "\"messaging\"");
    hcn_grant(f->a, ADDR_B, "{\"messaging\":true}");
    uint64_t id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "x");
    ut_assert_empty(f->b, 30);
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, ADDR_B, "x");
    /* messaging spelled with whitespace is still messaging */
    hcn_grant(f->a, ADDR_B, "  \"messaging\"\n");
    id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "y");
    assert_delivered(f->b, id, HCN_MSG_REQUEST, "y");
}

static void exempt_sources_accepted(void **state)
{
    fx *f = *state;
    static const char *const exempt[] = {
        UT_NODE "@kernel:distro:sys",
        UT_NODE "@state:distro:sys",
        UT_NODE "@vfs:distro:sys",
        UT_NODE "@terminal:terminal:sys",
    };
    for (size_t i = 0; i < sizeof exempt / sizeof exempt[0]; i++) {
        uint64_t id = route_req(f, exempt[i], ADDR_B, ADDR_A, true, "sys");
        assert_delivered(f->b, id, HCN_MSG_REQUEST, "sys");
        /* Responses too. */
        hcn_route(f->n, ut_resp(id, exempt[i], ADDR_B, "sys-r", NULL));
        assert_delivered(f->b, id, HCN_MSG_RESPONSE, "sys-r");
    }
    assert_true(hcn_pid_exempt("kernel:distro:sys"));
    assert_false(hcn_pid_exempt("timer:distro:sys"));
    assert_false(hcn_pid_exempt(PID_A));
    assert_false(hcn_pid_exempt("kernel:distro:sy"));
}

static void non_exempt_runtime_source_checked(void **state)
{
    fx *f = *state;
    /* timer:distro:sys is registered and public, but not exempt: as a
     * sender it needs messaging for a non-public target. */
    uint64_t id = route_req(f, UT_NODE "@timer:distro:sys", ADDR_B,
                            UT_NODE "@timer:distro:sys", false, "tick");
    ut_assert_empty(f->b, 30);
    (void)id;
}

static void unknown_local_sender_refused(void **state)
{
    fx *f = *state;
    /* A sender that is not in the process table is refused even for a
     * public target; its rsvp (A) gets the error. */
    uint64_t id =
        route_req(f, UT_NODE "@ghost:cap:test", ADDR_P, ADDR_A, true, "boo");
    ut_assert_empty(f->p, 30);
    hcn_msg *e = ut_pop(f->a, 500);
    assert_int_equal(e->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(e->id, id);
    assert_int_equal(e->err_kind, HW_SEND_ERROR_TIMEOUT);
    hcn_msg_unref(e);
}

static void missing_and_exited_targets(void **state)
{
    fx *f = *state;
    hcn_grant_messaging(f->n, f->a, PID_B);
    uint64_t id =
        route_req(f, ADDR_A, UT_NODE "@nobody:cap:test", ADDR_A, true, "void");
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, UT_NODE "@nobody:cap:test",
                   "void");
    /* An exited process refuses too. */
    pthread_mutex_lock(&f->b->lock);
    f->b->status = HCN_PROC_EXITED;
    pthread_mutex_unlock(&f->b->lock);
    id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "late");
    ut_assert_empty(f->b, 30);
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, ADDR_B, "late");
    /* A closed (stopping) mailbox too. */
    pthread_mutex_lock(&f->b->lock);
    f->b->status = HCN_PROC_RUNNING;
    pthread_mutex_unlock(&f->b->lock);
    hcn_mailbox_close(&f->b->mb);
    id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "closing");
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, ADDR_B, "closing");
    hcn_mailbox_reopen(&f->b->mb);
    ut_assert_empty(f->b, 30);
}

static void other_node_is_offline(void **state)
{
    fx *f = *state;
    uint64_t id = route_req(f, ADDR_A, "far.os@" PID_B, ADDR_A, true, "hi");
    assert_bounced(f->a, id, HW_SEND_ERROR_OFFLINE, "far.os@" PID_B, "hi");
    route_req(f, ADDR_A, "far.os@" PID_B, NULL, false, "hi");
    ut_assert_empty(f->a, 30);
}

/* A way out to other nodes (what net:distro:sys hands the kernel): only a
 * sender with the network capability reaches it; it gets messages for
 * other nodes, none for ours, and what it refuses goes
 * back to the sender with its kind. */
typedef struct fake_remote {
    hcn_msg *got[4];
    size_t n;
    bool refuse;
    int answer;
} fake_remote;

static bool fake_remote_send(void *ctx, hcn_msg *m, int *kind)
{
    fake_remote *r = ctx;
    if (r->refuse) {
        *kind = r->answer;
        return false;
    }
    assert_true(r->n < 4);
    r->got[r->n++] = hcn_msg_ref(m);
    return true;
}

static void other_node_goes_out_the_remote_way(void **state)
{
    fx *f = *state;
    fake_remote r = {0};
    hcn_node *n = (hcn_node *)f->n;
    n->remote = (hcn_remote){.send = fake_remote_send, .ctx = &r};
    /* without the network capability: a timeout at once, nothing goes out */
    uint64_t id = route_req(f, ADDR_A, "far.os@" PID_B, ADDR_A, true, "no");
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, "far.os@" PID_B, "no");
    assert_int_equal(r.n, 0);
    hcn_grant(f->a, UT_NODE "@kernel:distro:sys", "\"network\"");
    id = route_req(f, ADDR_A, "far.os@" PID_B, ADDR_A, true, "out");
    route_req(f, ADDR_A, ADDR_P, NULL, false, "local");
    assert_int_equal(r.n, 1);
    assert_int_equal(r.got[0]->id, id);
    assert_string_equal(r.got[0]->target, "far.os@" PID_B);
    ut_assert_body(r.got[0], "out");
    ut_assert_empty(f->a, 30);
    assert_delivered(f->p, next_id - 1, HCN_MSG_REQUEST, "local");
    /* refused by the way out: the sender gets the kind it gave, Offline
     * (0) as well as Timeout */
    r.refuse = true;
    r.answer = HW_SEND_ERROR_TIMEOUT;
    id = route_req(f, ADDR_A, "far.os@" PID_B, ADDR_A, true, "again");
    assert_bounced(f->a, id, HW_SEND_ERROR_TIMEOUT, "far.os@" PID_B, "again");
    r.answer = HW_SEND_ERROR_OFFLINE;
    id = route_req(f, ADDR_A, "far.os@" PID_B, ADDR_A, true, "gone");
    assert_bounced(f->a, id, HW_SEND_ERROR_OFFLINE, "far.os@" PID_B, "gone");
    assert_int_equal(r.n, 1);
    n->remote = (hcn_remote){0};
    hcn_msg_unref(r.got[0]);
}

static void bounce_goes_to_rsvp(void **state)
{
    fx *f = *state;
    /* The kernel's fake source with rsvp A (as get/set-state do): the
     * error goes to the rsvp. */
    uint64_t id = route_req(f, UT_NODE "@kernel:distro:sys",
                            UT_NODE "@nobody:cap:test", ADDR_A, true, "k");
    hcn_msg *e = ut_pop(f->a, 500);
    assert_int_equal(e->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(e->id, id);
    assert_string_equal(e->target, ADDR_A);
    hcn_msg_unref(e);
}

static void responses_are_checked(void **state)
{
    fx *f = *state;
    /* A may message B; B holds nothing for A, and A is not public. */
    hcn_grant_messaging(f->n, f->a, PID_B);
    uint64_t id = route_req(f, ADDR_A, ADDR_B, ADDR_A, true, "q");
    assert_delivered(f->b, id, HCN_MSG_REQUEST, "q");
    hcn_route(f->n, ut_resp(id, ADDR_B, ADDR_A, "answer", NULL));
    /* The response is refused; A, which waits for it, gets a send error
     * for the id at once instead of timing out later. */
    hcn_msg *e = ut_pop(f->a, 500);
    assert_int_equal(e->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(e->id, id);
    assert_int_equal(e->err_kind, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(e->target, ADDR_A);
    hcn_msg_unref(e);
    ut_assert_empty(f->a, 30);
    ut_assert_empty(f->b, 30); /* the responder hears nothing */
    /* With the capability the response goes through. */
    hcn_grant_messaging(f->n, f->b, PID_A);
    hcn_route(f->n, ut_resp(id, ADDR_B, ADDR_A, "answer", NULL));
    assert_delivered(f->a, id, HCN_MSG_RESPONSE, "answer");
    /* A response to a public process needs nothing. */
    hcn_route(f->n, ut_resp(77, ADDR_A, ADDR_P, "to-pub", NULL));
    assert_delivered(f->p, 77, HCN_MSG_RESPONSE, "to-pub");
    /* A response to a missing process is dropped quietly. */
    hcn_route(f->n, ut_resp(78, ADDR_A, UT_NODE "@nobody:cap:test", "x", NULL));
    ut_assert_empty(f->a, 30);
}

static void full_mailbox_bounces_requests(void **state)
{
    fx *f = *state;
    uint64_t ids[MAILBOX_MAX];
    for (int i = 0; i < MAILBOX_MAX; i++)
        ids[i] = route_req(f, ADDR_A, ADDR_P, ADDR_A, true, "fill");
    ut_assert_empty(f->a, 20);
    /* Full: a request with expects is answered at once, for the target,
     * with the framework's Busy error... */
    uint64_t over = route_req(f, ADDR_A, ADDR_P, ADDR_A, true, "over");
    hcn_msg *busy = ut_pop(f->a, 500);
    assert_int_equal(busy->kind, HCN_MSG_RESPONSE);
    assert_int_equal(busy->id, over);
    assert_string_equal(busy->source, ADDR_P);
    char want[200];
    snprintf(want, sizeof want,
             "{\"HypercError\":{\"kind\":\"Busy\",\"message\":\"the "
             "mailbox of %s is full (%d requests queued): this request was "
             "not delivered; try again later\"}}",
             PID_P, MAILBOX_MAX);
    ut_assert_body(busy, want);
    hcn_msg_unref(busy);
    /* ...one without is dropped silently... */
    route_req(f, ADDR_A, ADDR_P, NULL, false, "over2");
    ut_assert_empty(f->a, 20);
    /* ...and responses still get in. */
    hcn_grant_messaging(f->n, f->a, PID_P);
    hcn_route(f->n, ut_resp(4242, ADDR_A, ADDR_P, "resp", NULL));
    for (int i = 0; i < MAILBOX_MAX; i++)
        assert_delivered(f->p, ids[i], HCN_MSG_REQUEST, "fill");
    assert_delivered(f->p, 4242, HCN_MSG_RESPONSE, "resp");
    ut_assert_empty(f->p, 20);
    /* Drained: requests are accepted again. */
    uint64_t id = route_req(f, ADDR_A, ADDR_P, ADDR_A, true, "room");
    assert_delivered(f->p, id, HCN_MSG_REQUEST, "room");
}

static void mailbox_bound_comes_from_config(void **state)
{
    fx *f = *state;
    assert_int_equal(f->a->mb.max_req, MAILBOX_MAX);
    hc_node_config cfg;
    hc_node_config_default(&cfg);
    assert_true(cfg.mailbox_max > 0);
}

/* Write `text` to dir/rel (dir/pkg must exist for pkg/ files). */
static void write_file(const char *dir, const char *rel, const char *text)
{
    char *path = hcn_xasprintf("%s/%s", dir, rel);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    free(path);
}

/* Make a package directory publishing `pname` in package:publisher;
 * returns the directory (caller frees after ut_rm_rf). */
static char *make_package(const char *package, const char *publisher,
                          const char *pname)
{
    char *dir = ut_mkdtemp();
    char *pkg = hcn_xasprintf("%s/pkg", dir);
    assert_int_equal(hcn_mkdirs(pkg), 0);
    free(pkg);
    char *meta = hcn_xasprintf(
        "{\"properties\": {\"package_name\": \"%s\", \"publisher\": \"%s\", "
        "\"current_version\": \"1.0.0\"}}",
        package, publisher);
    write_file(dir, "metadata.json", meta);
    free(meta);
    char *man = hcn_xasprintf(
        "[{\"process_name\": \"%s\", \"process_wasm_path\": \"/p.so\", "
        "\"on_exit\": \"None\", \"request_networking\": false, "
        "\"request_capabilities\": [], \"grant_capabilities\": [], "
        "\"public\": false}]",
        pname);
    write_file(dir, "pkg/manifest.json", man);
    free(man);
    write_file(dir, "pkg/p.so", ""); /* never loaded: the node is not run */
    return dir;
}

/* The ids whose messages skip every capability check must not be taken by
 * a package: kernel:distro:sys and vfs:distro:sys are not in the process
 * table, so a package named distro:sys could register them and then message
 * any process (and read or write any process's state). */
static void package_cannot_claim_exempt_id(void **state)
{
    fx *f = *state;
    static const char *const names[] = {"kernel", "vfs", "state"};
    char taken[256] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *dir = make_package("distro", "sys", names[i]);
        char err[512] = "";
        int rc = hc_node_load_package(f->n, dir, err, sizeof err);
        ut_rm_rf(dir);
        free(dir);
        char *pid = hcn_xasprintf("%s:distro:sys", names[i]);
        hcn_proc *p = hcn_node_find(f->n, pid);
        if (rc == 0 && p != NULL && p->so_path != NULL)
            snprintf(taken + strlen(taken), sizeof taken - strlen(taken), " %s",
                     pid);
        else
            assert_int_equal(rc, -1);
        hcn_proc_unref(p);
        free(pid);
    }
    if (taken[0])
        fail_msg("packages registered ids exempt from capability checks:%s",
                 taken);
}

/* An ordinary package loads (the test above is not failing for another
 * reason). */
static void ordinary_package_loads(void **state)
{
    fx *f = *state;
    char *dir = make_package("app", "pub.os", "worker");
    char err[512] = "";
    int rc = hc_node_load_package(f->n, dir, err, sizeof err);
    ut_rm_rf(dir);
    free(dir);
    if (rc != 0)
        fail_msg("load: %s", err);
    hcn_proc *p = hcn_node_find(f->n, "worker:app:pub.os");
    assert_non_null(p);
    /* Each process may message itself. */
    assert_true(hcn_capset_has_messaging(&p->caps, p->addr));
    hcn_proc_unref(p);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(non_public_without_messaging_refused),
        T(public_target_accepted),
        T(messaging_capability_accepted),
        T(other_capabilities_do_not_count),
        T(exempt_sources_accepted),
        T(non_exempt_runtime_source_checked),
        T(unknown_local_sender_refused),
        T(missing_and_exited_targets),
        T(other_node_is_offline),
        T(other_node_goes_out_the_remote_way),
        T(bounce_goes_to_rsvp),
        T(responses_are_checked),
        T(full_mailbox_bounces_requests),
        T(mailbox_bound_comes_from_config),
        T(package_cannot_claim_exempt_id),
        T(ordinary_package_loads),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
