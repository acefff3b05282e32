/* The per-process pairing rules of host.c (runtime.md §3.1-§3.3), driven
 * in-process: the test thread calls the host table of process A and plays
 * B and C by popping B's and C's mailboxes and routing envelopes to A.
 * No process thread runs; the node is never started. */
#include "unit_helpers.h"

#include <pthread.h>

#define PID_A "alice:pair:test"
#define PID_B "bob:pair:test"
#define PID_C "carol:pair:test"
#define PID_D "dave:pair:test" /* not public, nobody holds messaging */
#define ADDR_A UT_NODE "@" PID_A
#define ADDR_B UT_NODE "@" PID_B
#define ADDR_C UT_NODE "@" PID_C

typedef struct fx {
    char *home;
    hc_node *n;
    hcn_proc *a, *b, *c, *d;
    hcn_host h;
    hwn_host *t;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->n = ut_node_new(f->home, 64);
    f->a = ut_add_proc(f->n, PID_A, false);
    f->b = ut_add_proc(f->n, PID_B, false);
    f->c = ut_add_proc(f->n, PID_C, false);
    f->d = ut_add_proc(f->n, PID_D, false);
    hcn_proc *abc[3] = {f->a, f->b, f->c};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3; k++)
            hcn_grant_messaging(f->n, abc[i], abc[k]->id);
    hcn_host_init(&f->h, f->a);
    f->t = &f->h.table;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    hcn_host_fini(&f->h);
    hcn_proc_unref(f->a);
    hcn_proc_unref(f->b);
    hcn_proc_unref(f->c);
    hcn_proc_unref(f->d);
    hc_node_free(f->n);
    ut_rm_rf(f->home);
    free(f->home);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ helpers */

/* A watchdog that closes A's mailbox if a blocking host call takes too
 * long; the host then longjmps to h.kill, which the callers catch. */
typedef struct watchdog {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool cancel;
    bool fired;
    hcn_mailbox *mb;
    int64_t deadline;
} watchdog;

static void *watchdog_main(void *arg)
{
    watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->cancel && hcn_now_ns() < w->deadline) {
        struct timespec ts = {.tv_sec = w->deadline / 1000000000,
                              .tv_nsec = w->deadline % 1000000000};
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    if (!w->cancel) {
        w->fired = true;
        hcn_mailbox_close(w->mb);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void watchdog_start(watchdog *w, hcn_mailbox *mb, int64_t ms)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->mb = mb;
    w->deadline = ut_ms_from_now(ms);
    assert_int_equal(pthread_create(&w->thread, NULL, watchdog_main, w), 0);
}

/* Stops the watchdog; returns whether it had fired. */
static bool watchdog_stop(watchdog *w)
{
    pthread_mutex_lock(&w->mu);
    w->cancel = true;
    pthread_mutex_unlock(&w->mu);
    pthread_cond_signal(&w->cv);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (w->fired)
        hcn_mailbox_reopen(w->mb);
    return w->fired;
}

/* receive(), failing the test if nothing comes within `ms`. */
static void a_recv_within(fx *f, hw_receive_result *out, int64_t ms)
{
    static watchdog w;
    watchdog_start(&w, &f->a->mb, ms);
    if (setjmp(f->h.kill) != 0) {
        watchdog_stop(&w);
        fail_msg("receive() returned nothing within %lld ms", (long long)ms);
    }
    f->t->receive(f->t->ctx, out);
    watchdog_stop(&w);
}

static void a_recv(fx *f, hw_receive_result *out)
{
    a_recv_within(f, out, 5000);
}

static int await_within(fx *f, const char *target, const hw_request *req,
                        const hw_blob *blob, hw_await_result *out, int64_t ms)
{
    static watchdog w;
    hw_address t;
    assert_int_equal(hw_address_parse(target, &t), 0);
    watchdog_start(&w, &f->a->mb, ms);
    if (setjmp(f->h.kill) != 0) {
        watchdog_stop(&w);
        fail_msg("send_and_await_response() blocked for %lld ms",
                 (long long)ms);
    }
    int rc = f->t->send_and_await_response(f->t->ctx, &t, req, blob, out);
    watchdog_stop(&w);
    hw_address_fini(&t);
    return rc;
}

static hw_request mkreq(bool inherit, int64_t expects, const char *body)
{
    hw_request r;
    memset(&r, 0, sizeof r);
    r.inherit = inherit;
    r.has_expects_response = expects >= 0;
    r.expects_response = expects >= 0 ? (uint64_t)expects : 0;
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    return r;
}

static hw_blob mkblob(const char *mime, const char *bytes)
{
    hw_blob b = {.mime = (char *)mime,
                 .bytes = {(uint8_t *)bytes, strlen(bytes)}};
    return b;
}

/* send_request from A.  expects < 0: none.  ctx / blob may be NULL. */
static void a_send(fx *f, const char *target, bool inherit, int64_t expects,
                   const char *body, const char *ctx, const hw_blob *blob)
{
    hw_address t;
    if (hw_address_parse(target, &t) != 0)
        fail_msg("bad target %s", target);
    hw_request r = mkreq(inherit, expects, body);
    hw_bytes c = {(uint8_t *)ctx, ctx ? strlen(ctx) : 0};
    f->t->send_request(f->t->ctx, &t, &r, ctx ? &c : NULL, blob);
    hw_address_fini(&t);
}

static void a_respond(fx *f, bool inherit, const char *body,
                      const hw_blob *blob)
{
    hw_response r;
    memset(&r, 0, sizeof r);
    r.inherit = inherit;
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    f->t->send_response(f->t->ctx, &r, blob);
}

/* Route a request to A from `src_addr` (B or C). */
static void to_a_req(fx *f, uint64_t id, const char *src, const char *rsvp,
                     bool expects, const char *body, hcn_blob *blob)
{
    hcn_route(f->n, ut_req(id, src, ADDR_A, rsvp, expects, 5, body, blob));
}

static void to_a_resp(fx *f, uint64_t id, const char *src, const char *body,
                      hcn_blob *blob)
{
    hcn_route(f->n, ut_resp(id, src, ADDR_A, body, blob));
}

static void assert_request(const hw_receive_result *r, const char *source,
                           const char *body)
{
    assert_false(r->is_err);
    assert_int_equal(r->message.kind, HW_MESSAGE_REQUEST);
    assert_string_equal(ut_fmt(&r->source), source);
    ut_assert_bytes(&r->message.request.body, body);
}

static void assert_response(const hw_receive_result *r, const char *source,
                            const char *body, const char *ctx)
{
    assert_false(r->is_err);
    assert_int_equal(r->message.kind, HW_MESSAGE_RESPONSE);
    assert_string_equal(ut_fmt(&r->source), source);
    ut_assert_bytes(&r->message.response.body, body);
    if (ctx) {
        assert_true(r->message.has_context);
        ut_assert_bytes(&r->message.context, ctx);
    } else {
        assert_false(r->message.has_context);
    }
}

static hcn_msg *b_pop_req(fx *f);

/* receive_lent(): as a_recv; returns whether *out was lent. */
static bool a_recv_lent(fx *f, hw_receive_result *out)
{
    static watchdog w;
    watchdog_start(&w, &f->a->mb, 5000);
    if (setjmp(f->h.kill) != 0) {
        watchdog_stop(&w);
        fail_msg("receive_lent() returned nothing within 5000 ms");
    }
    bool lent = f->t->receive_lent(f->t->ctx, out);
    watchdog_stop(&w);
    return lent;
}

static unsigned ncontexts(fx *f)
{
    return HASH_COUNT(f->h.contexts);
}

/* The deadlines waiting: in the spans' FIFOs and in the heap. */
static size_t ndeadlines(fx *f)
{
    size_t n = f->h.heap_len;
    for (unsigned q = 0; q < f->h.ndlq; q++)
        for (const hcn_ctx_entry *e = f->h.dlq[q].head; e; e = e->dl_next)
            n++;
    return n;
}

/* receive_lent lends a request's or response's parts (source, body,
 * metadata, the response's context) until the next receive, however the
 * process sends meanwhile; send errors come as copies.  Under
 * AddressSanitizer a part released early, or never, fails the test. */
static void receive_lent_lends_until_next_receive(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 5, "q", "ctx-lent", NULL);
    hcn_msg *q = ut_pop(f->b, 1000);
    to_a_resp(f, q->id, ADDR_B, "answer", NULL);
    hcn_msg_unref(q);
    to_a_req(f, 0, ADDR_C, NULL, false, "from-c", NULL);
    hw_receive_result r;
    assert_true(a_recv_lent(f, &r));
    assert_response(&r, ADDR_B, "answer", "ctx-lent");
    assert_null(r.message.response.metadata);
    assert_int_equal(r.message.response.capabilities.len, 0);
    /* sending reuses released context entries: the lent context stays */
    for (int i = 0; i < 4; i++) {
        a_send(f, "our@" PID_B, false, 5, "more", "other-context!", NULL);
        hcn_msg_unref(ut_pop(f->b, 1000));
    }
    assert_response(&r, ADDR_B, "answer", "ctx-lent");
    assert_true(a_recv_lent(f, &r));
    assert_request(&r, ADDR_C, "from-c");
    assert_false(r.message.request.has_expects_response);
    assert_string_equal(r.source.process.process_name, "carol");
    assert_string_equal(r.source.process.package_name, "pair");
    assert_string_equal(r.source.process.publisher_node, "test");
    /* an owned receive ends the lending too; a send error is a copy */
    a_send(f, "our@nobody:pair:test", false, 30, "hi", "cx", NULL);
    assert_false(a_recv_lent(f, &r));
    assert_true(r.is_err);
    assert_true(r.has_context);
    ut_assert_bytes(&r.context, "cx");
    hw_receive_result_fini(&r);
    /* a request with capabilities attached is a copy as well */
    hcn_cap cap = {.issuer = ADDR_C, .params = "\"messaging\""};
    hcn_route(f->n,
              HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 9, .source = ADDR_C,
                          .target = ADDR_A, .body = "caps", .body_len = 4,
                          .caps = &cap, .ncaps = 1));
    assert_false(a_recv_lent(f, &r));
    assert_request(&r, ADDR_C, "caps");
    assert_int_equal(r.message.request.capabilities.len, 1);
    hw_receive_result_fini(&r);
    /* lent again, and left lent: host fini releases it */
    to_a_req(f, 0, ADDR_B, NULL, false, "last", NULL);
    assert_true(a_recv_lent(f, &r));
    assert_request(&r, ADDR_B, "last");
}

/* ---------------------------------------------------------------- ids */

static void request_with_expects_gets_rsvp_and_fresh_id(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 5, "ping1", "k1", NULL);
    a_send(f, "our@" PID_B, false, 7, "ping2", NULL, NULL);
    a_send(f, UT_NODE "@" PID_B, false, -1, "ff", NULL, NULL);
    hcn_msg *m1 = ut_pop(f->b, 1000), *m2 = ut_pop(f->b, 1000),
            *m3 = ut_pop(f->b, 1000);
    assert_int_equal(m1->kind, HCN_MSG_REQUEST);
    assert_string_equal(m1->source, ADDR_A);
    assert_string_equal(m1->target, ADDR_B); /* "our" resolved */
    assert_non_null(m1->rsvp);
    assert_string_equal(m1->rsvp, ADDR_A);
    assert_true(m1->has_expects);
    assert_int_equal(m1->expects, 5);
    assert_false(m1->inherit);
    assert_null(m1->blob);
    ut_assert_body(m1, "ping1");
    assert_non_null(m2->rsvp);
    assert_string_equal(m2->rsvp, ADDR_A);
    assert_int_equal(m2->expects, 7);
    assert_true(m1->id != m2->id);
    /* Fire and forget: no rsvp, no context entry. */
    assert_null(m3->rsvp);
    assert_false(m3->has_expects);
    ut_assert_body(m3, "ff");
    assert_true(m3->id != m1->id && m3->id != m2->id);
    assert_int_equal(ncontexts(f), 2);
    hcn_ctx_entry *e;
    HASH_FIND(hh, f->h.contexts, &m1->id, sizeof m1->id, e);
    assert_non_null(e);
    HASH_FIND(hh, f->h.contexts, &m3->id, sizeof m3->id, e);
    assert_null(e);
    hcn_msg_unref(m1);
    hcn_msg_unref(m2);
    hcn_msg_unref(m3);
    ut_assert_empty(f->b, 20);
}

static void many_requests_have_distinct_ids(void **state)
{
    fx *f = *state;
    enum { N = 40 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++)
        a_send(f, "our@" PID_B, false, 30, "p", NULL, NULL);
    for (int i = 0; i < N; i++) {
        hcn_msg *m = ut_pop(f->b, 1000);
        ids[i] = m->id;
        for (int k = 0; k < i; k++)
            assert_true(ids[k] != ids[i]);
        hcn_msg_unref(m);
    }
    assert_int_equal(ncontexts(f), N);
    assert_int_equal(ndeadlines(f), N);
}

/* ------------------------------------------------------------ responses */

static void response_delivered_with_context(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 5, "one", "ctx-one", NULL);
    a_send(f, "our@" PID_B, false, 5, "two", NULL, NULL);
    a_send(f, "our@" PID_B, false, 5, "three", "", NULL);
    hcn_msg *q1 = ut_pop(f->b, 1000), *q2 = ut_pop(f->b, 1000),
            *q3 = ut_pop(f->b, 1000);
    /* Answer out of order: each response gets its own context back. */
    hcn_blob *rb = hcn_blob_new("text/plain", "rb", 2);
    to_a_resp(f, q2->id, ADDR_B, "r2", NULL);
    to_a_resp(f, q1->id, ADDR_B, "r1", rb);
    to_a_resp(f, q3->id, ADDR_B, "r3", NULL);
    hcn_blob_unref(rb);
    hw_receive_result r;
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "r2", NULL); /* sent without context */
    assert_false(f->t->has_blob(f->t->ctx));
    hw_receive_result_fini(&r);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "r1", "ctx-one");
    assert_true(f->t->has_blob(f->t->ctx));
    hw_blob b;
    assert_true(f->t->get_blob(f->t->ctx, &b));
    ut_assert_bytes(&b.bytes, "rb");
    assert_string_equal(b.mime, "text/plain");
    hw_blob_fini(&b);
    hw_receive_result_fini(&r);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "r3", ""); /* an empty context is a context */
    hw_receive_result_fini(&r);
    assert_int_equal(ncontexts(f), 0);
    assert_int_equal(ndeadlines(f), 0);
    hcn_msg_unref(q1);
    hcn_msg_unref(q2);
    hcn_msg_unref(q3);
}

static void prompting_restored_after_response(void **state)
{
    fx *f = *state;
    /* C asks A. */
    to_a_req(f, 777, ADDR_C, ADDR_C, true, "from-c", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "from-c");
    hw_receive_result_fini(&r);
    /* A asks B on C's behalf. */
    a_send(f, "our@" PID_B, false, 5, "sub", "sub-ctx", NULL);
    hcn_msg *q = ut_pop(f->b, 1000);
    /* Meanwhile B asks A something else: that becomes the prompting
     * message... */
    to_a_req(f, 888, ADDR_B, ADDR_B, true, "from-b", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_B, "from-b");
    hw_receive_result_fini(&r);
    /* ...until B's answer to A arrives, which restores C's request. */
    to_a_resp(f, q->id, ADDR_B, "sub-answer", NULL);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "sub-answer", "sub-ctx");
    hw_receive_result_fini(&r);
    a_respond(f, false, "answer-for-c", NULL);
    hcn_msg *ans = ut_pop(f->c, 1000);
    assert_int_equal(ans->kind, HCN_MSG_RESPONSE);
    assert_int_equal(ans->id, 777);
    assert_string_equal(ans->source, ADDR_A);
    assert_string_equal(ans->target, ADDR_C);
    assert_null(ans->rsvp);
    ut_assert_body(ans, "answer-for-c");
    hcn_msg_unref(ans);
    hcn_msg_unref(q);
    ut_assert_empty(f->b, 20);
}

static void response_goes_to_rsvp(void **state)
{
    fx *f = *state;
    /* A request from C naming B as rsvp (no expects: the rsvp alone makes
     * it the prompting message). */
    to_a_req(f, 999, ADDR_C, ADDR_B, false, "rsvp-b", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "rsvp-b");
    hw_receive_result_fini(&r);
    a_respond(f, false, "to-b", NULL);
    hcn_msg *m = ut_pop(f->b, 1000);
    assert_int_equal(m->kind, HCN_MSG_RESPONSE);
    assert_int_equal(m->id, 999);
    assert_string_equal(m->target, ADDR_B);
    assert_string_equal(m->source, ADDR_A);
    ut_assert_body(m, "to-b");
    hcn_msg_unref(m);
    ut_assert_empty(f->c, 20);
}

/* Envelopes keep their addresses' lengths (hcn_msg_new measures what its
 * caller did not give; the host gives its own and the target's): a
 * response's target takes the request's rsvp length, a request's rsvp
 * that is its source shares its bytes, a send error takes the failed
 * request's, and an address too long to keep is measured again. */
static void envelopes_keep_address_lengths(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 5, "q", NULL, NULL);
    hcn_msg *m = ut_pop(f->b, 1000);
    assert_int_equal(m->source_len, strlen(ADDR_A));
    assert_int_equal(m->target_len, strlen(ADDR_B));
    assert_int_equal(m->rsvp_len, strlen(ADDR_A));
    assert_ptr_equal(m->rsvp, m->source);
    hcn_msg *e = hcn_msg_send_error(m, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(e->target, ADDR_A);
    assert_int_equal(e->target_len, strlen(ADDR_A));
    assert_int_equal(e->source_len, strlen(ADDR_B));
    hcn_msg_unref(e);
    hcn_msg_unref(m);
    /* C's request naming B as rsvp: A's answer goes to B, measured right */
    to_a_req(f, 77, ADDR_C, ADDR_B, false, "q", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    a_respond(f, false, "a", NULL);
    m = ut_pop(f->b, 1000);
    assert_string_equal(m->target, ADDR_B);
    assert_int_equal(m->target_len, strlen(ADDR_B));
    assert_int_equal(m->source_len, strlen(ADDR_A));
    assert_null(m->rsvp);
    assert_int_equal(m->rsvp_len, 0);
    hcn_msg_unref(m);
    /* a length given wins over measuring; one past 65535 is kept as 0 */
    size_t big = 70000;
    char *lng = malloc(big + 1);
    assert_non_null(lng);
    memset(lng, 'x', big);
    lng[big] = 0;
    m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 1, .source = lng,
                    .target = ADDR_B, .target_len = strlen(ADDR_B),
                    .rsvp = ADDR_C);
    assert_int_equal(m->source_len, 0);
    assert_int_equal(strlen(m->source), big);
    assert_int_equal(m->target_len, strlen(ADDR_B));
    assert_int_equal(m->rsvp_len, strlen(ADDR_C));
    assert_string_equal(m->rsvp, ADDR_C);
    hcn_msg *e2 = hcn_msg_send_error(m, HW_SEND_ERROR_OFFLINE);
    assert_int_equal(e2->target_len, strlen(ADDR_C)); /* to the rsvp */
    hcn_msg_unref(e2);
    hcn_msg_unref(m);
    free(lng);
}

static void response_without_prompting_is_dropped(void **state)
{
    fx *f = *state;
    a_respond(f, false, "nobody", NULL);
    ut_assert_empty(f->b, 20);
    ut_assert_empty(f->c, 20);
    /* A fire-and-forget request does not make one either. */
    to_a_req(f, 5, ADDR_C, NULL, false, "ff", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "ff");
    hw_receive_result_fini(&r);
    a_respond(f, false, "nobody", NULL);
    ut_assert_empty(f->c, 20);
}

static void unmatched_response_dropped(void **state)
{
    fx *f = *state;
    /* One real context outstanding, so the ids below do not match it. */
    a_send(f, "our@" PID_B, false, 30, "q", "real", NULL);
    hcn_msg *q = ut_pop(f->b, 1000);
    /* A response and a send error nobody waits for, and a response with
     * the id of a request A *received* (ids of received requests are not
     * contexts). */
    to_a_req(f, 4444, ADDR_C, ADDR_C, true, "prompt", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "prompt");
    hw_receive_result_fini(&r);
    to_a_resp(f, q->id + 1, ADDR_B, "stray", NULL);
    hcn_msg *e = HCN_MSG_NEW(.kind = HCN_MSG_SEND_ERROR, .id = q->id ^ 0xff,
                             .source = ADDR_B, .target = ADDR_A);
    e->err_kind = HW_SEND_ERROR_TIMEOUT;
    hcn_route(f->n, e);
    to_a_resp(f, 4444, ADDR_C, "echo", NULL);
    to_a_req(f, 5, ADDR_C, NULL, false, "after", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "after");
    hw_receive_result_fini(&r);
    assert_int_equal(ncontexts(f), 1);
    /* The real one still matches. */
    to_a_resp(f, q->id, ADDR_B, "real-answer", NULL);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "real-answer", "real");
    hw_receive_result_fini(&r);
    /* A second answer with the same id is now unmatched: dropped. */
    to_a_resp(f, q->id, ADDR_B, "duplicate", NULL);
    to_a_req(f, 6, ADDR_C, NULL, false, "after2", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "after2");
    hw_receive_result_fini(&r);
    hcn_msg_unref(q);
}

static void unmatched_response_alone_never_returns(void **state)
{
    fx *f = *state;
    to_a_resp(f, 31337, ADDR_B, "stray", NULL);
    /* receive() must keep waiting: the watchdog closes the mailbox after
     * 300 ms and the host jumps to h.kill. */
    static watchdog w;
    hw_receive_result r;
    memset(&r, 0, sizeof r);
    watchdog_start(&w, &f->a->mb, 300);
    volatile bool returned = false;
    if (setjmp(f->h.kill) == 0) {
        f->t->receive(f->t->ctx, &r);
        returned = true;
    }
    watchdog_stop(&w);
    if (returned) {
        hw_receive_result_fini(&r);
        fail_msg("receive() returned for an unmatched response");
    }
    assert_int_equal(atomic_load(&f->a->mb.count), 0); /* it was consumed */
}

/* ------------------------------------------------------------- inherit */

static void inherit_forwarding(void **state)
{
    fx *f = *state;
    hcn_blob *cb = hcn_blob_new("text/plain", "c-blob", 6);
    to_a_req(f, 4242, ADDR_C, ADDR_C, true, "please", cb);
    hcn_blob_unref(cb);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "please");
    hw_receive_result_fini(&r);
    /* Forward to B with inherit, no expects: keeps C's id and rsvp and
     * carries C's blob; A waits for nothing. */
    a_send(f, "our@" PID_B, true, -1, "fwd", NULL, NULL);
    hcn_msg *m = ut_pop(f->b, 1000);
    assert_int_equal(m->id, 4242);
    assert_string_equal(m->source, ADDR_A);
    assert_non_null(m->rsvp);
    assert_string_equal(m->rsvp, ADDR_C);
    assert_true(m->inherit);
    assert_false(m->has_expects);
    ut_assert_body(m, "fwd");
    ut_assert_blob(m->blob, "c-blob");
    assert_string_equal(m->blob->mime, "text/plain");
    assert_int_equal(ncontexts(f), 0);
    /* B answers the rsvp directly: the response reaches C with C's id. */
    hcn_route(f->n, ut_resp(m->id, ADDR_B, m->rsvp, "done", NULL));
    hcn_msg *ans = ut_pop(f->c, 1000);
    assert_int_equal(ans->id, 4242);
    assert_int_equal(ans->kind, HCN_MSG_RESPONSE);
    hcn_msg_unref(ans);
    hcn_msg_unref(m);
    /* Inherit plus expects: the id is still C's, but the rsvp is A and A
     * keeps a context for it. */
    a_send(f, "our@" PID_B, true, 5, "fwd2", "fctx", NULL);
    m = ut_pop(f->b, 1000);
    assert_int_equal(m->id, 4242);
    assert_string_equal(m->rsvp, ADDR_A);
    assert_true(m->has_expects);
    ut_assert_blob(m->blob, "c-blob");
    assert_int_equal(ncontexts(f), 1);
    to_a_resp(f, 4242, ADDR_B, "sub", NULL);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "sub", "fctx");
    hw_receive_result_fini(&r);
    hcn_msg_unref(m);
    /* The forwarded rsvp is the prompting message's rsvp, not its source:
     * C asks on behalf of B (rsvp B)... */
    to_a_req(f, 4343, ADDR_C, ADDR_B, true, "for-b", NULL);
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    a_send(f, "our@" PID_B, true, -1, "fwd3", NULL, NULL);
    m = ut_pop(f->b, 1000);
    assert_int_equal(m->id, 4343);
    assert_non_null(m->rsvp);
    assert_string_equal(m->rsvp, ADDR_B);
    hcn_msg_unref(m);
    /* ...and a prompting request without rsvp forwards none. */
    to_a_req(f, 4444, ADDR_C, NULL, true, "no-rsvp", NULL);
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    a_send(f, "our@" PID_B, true, -1, "fwd4", NULL, NULL);
    m = ut_pop(f->b, 1000);
    assert_int_equal(m->id, 4444);
    assert_null(m->rsvp);
    hcn_msg_unref(m);
}

static void inherit_without_prompting(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, true, -1, "orphan", NULL, NULL);
    hcn_msg *m = ut_pop(f->b, 1000);
    assert_null(m->rsvp);
    assert_null(m->blob);
    assert_true(m->inherit);
    uint64_t id1 = m->id;
    hcn_msg_unref(m);
    a_send(f, "our@" PID_B, true, -1, "orphan", NULL, NULL);
    m = ut_pop(f->b, 1000);
    assert_true(m->id != id1); /* fresh ids, nothing to inherit */
    hcn_msg_unref(m);
}

static void fire_and_forget_does_not_replace_prompting(void **state)
{
    fx *f = *state;
    to_a_req(f, 111, ADDR_C, ADDR_C, true, "needs-answer", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    to_a_req(f, 222, ADDR_B, NULL, false, "just-fyi", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_B, "just-fyi");
    assert_false(r.message.request.has_expects_response);
    hw_receive_result_fini(&r);
    /* Hyperware's quirk: the answer goes to the previous requester. */
    a_respond(f, false, "late-answer", NULL);
    hcn_msg *m = ut_pop(f->c, 1000);
    assert_int_equal(m->id, 111);
    ut_assert_body(m, "late-answer");
    hcn_msg_unref(m);
    ut_assert_empty(f->b, 20);
    /* An inherit forward now reuses 111, not 222. */
    a_send(f, "our@" PID_B, true, -1, "fwd", NULL, NULL);
    m = ut_pop(f->b, 1000);
    assert_int_equal(m->id, 111);
    hcn_msg_unref(m);
}

/* --------------------------------------------------------- send errors */

static void missing_target_gives_immediate_timeout(void **state)
{
    fx *f = *state;
    hw_blob bl = mkblob("application/x-test", "bb");
    int64_t t0 = hcn_now_ns();
    a_send(f, "our@nobody:pair:test", false, 30, "hi", "cx", &bl);
    hw_receive_result r;
    a_recv_within(f, &r, 2000);
    assert_true(hcn_now_ns() - t0 < 2000000000LL);
    assert_true(r.is_err);
    assert_int_equal(r.error.kind, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(ut_fmt(&r.error.target), UT_NODE "@nobody:pair:test");
    assert_int_equal(r.error.message.kind, HW_MESSAGE_REQUEST);
    ut_assert_bytes(&r.error.message.request.body, "hi");
    assert_true(r.error.message.request.has_expects_response);
    assert_int_equal(r.error.message.request.expects_response, 30);
    assert_true(r.error.has_blob);
    ut_assert_bytes(&r.error.blob.bytes, "bb");
    assert_string_equal(r.error.blob.mime, "application/x-test");
    assert_true(r.has_context);
    ut_assert_bytes(&r.context, "cx");
    hw_receive_result_fini(&r);
    assert_int_equal(ncontexts(f), 0);
    assert_int_equal(ndeadlines(f), 0);
}

static void denied_target_gives_immediate_timeout(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_D, false, 30, "denied", NULL, NULL);
    hw_receive_result r;
    a_recv_within(f, &r, 2000);
    assert_true(r.is_err);
    assert_int_equal(r.error.kind, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(ut_fmt(&r.error.target), UT_NODE "@" PID_D);
    ut_assert_bytes(&r.error.message.request.body, "denied");
    assert_false(r.has_context);
    hw_receive_result_fini(&r);
    ut_assert_empty(f->d, 20);
}

static void other_node_gives_offline(void **state)
{
    fx *f = *state;
    a_send(f, "faraway.os@" PID_B, false, 30, "remote", "rc", NULL);
    hw_receive_result r;
    a_recv_within(f, &r, 2000);
    assert_true(r.is_err);
    assert_int_equal(r.error.kind, HW_SEND_ERROR_OFFLINE);
    assert_string_equal(ut_fmt(&r.error.target), "faraway.os@" PID_B);
    assert_true(r.has_context);
    ut_assert_bytes(&r.context, "rc");
    hw_receive_result_fini(&r);
}

static void failures_without_expects_are_silent(void **state)
{
    fx *f = *state;
    a_send(f, "our@nobody:pair:test", false, -1, "x", NULL, NULL);
    a_send(f, "our@" PID_D, false, -1, "x", NULL, NULL);
    a_send(f, "faraway.os@" PID_B, false, -1, "x", NULL, NULL);
    to_a_req(f, 9, ADDR_C, NULL, false, "after", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "after");
    hw_receive_result_fini(&r);
    assert_int_equal(atomic_load(&f->a->mb.count), 0);
}

static void deadline_timeout(void **state)
{
    fx *f = *state;
    hw_blob bl = mkblob(NULL, "slow-blob");
    int64_t t0 = hcn_now_ns();
    a_send(f, "our@" PID_B, false, 1, "slow", "late", &bl);
    hcn_msg *q = ut_pop(f->b, 1000);
    hw_receive_result r;
    a_recv_within(f, &r, 4000);
    int64_t waited = hcn_now_ns() - t0;
    if (waited < 1000000000LL || waited > 4000000000LL)
        fail_msg("timeout error after %lld ms, expected ~1000",
                 (long long)(waited / 1000000));
    assert_true(r.is_err);
    assert_int_equal(r.error.kind, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(ut_fmt(&r.error.target), ADDR_B);
    ut_assert_bytes(&r.error.message.request.body, "slow");
    assert_int_equal(r.error.message.request.expects_response, 1);
    assert_true(r.error.has_blob);
    assert_null(r.error.blob.mime);
    ut_assert_bytes(&r.error.blob.bytes, "slow-blob");
    assert_true(r.has_context);
    ut_assert_bytes(&r.context, "late");
    hw_receive_result_fini(&r);
    assert_int_equal(ncontexts(f), 0);
    /* B's answer after the timeout is dropped. */
    to_a_resp(f, q->id, ADDR_B, "too-late", NULL);
    to_a_req(f, 10, ADDR_C, NULL, false, "after", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "after");
    hw_receive_result_fini(&r);
    hcn_msg_unref(q);
}

static void deadlines_expire_in_order(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 2, "two", "two", NULL);
    a_send(f, "our@" PID_B, false, 1, "one", "one", NULL);
    a_send(f, "our@" PID_B, false, 0, "zero", "zero", NULL);
    a_send(f, "our@" PID_B, false, 60, "sixty", "sixty", NULL);
    hw_receive_result r;
    const char *order[] = {"zero", "one", "two"};
    for (int i = 0; i < 3; i++) {
        a_recv_within(f, &r, 4000);
        assert_true(r.is_err);
        assert_int_equal(r.error.kind, HW_SEND_ERROR_TIMEOUT);
        ut_assert_bytes(&r.context, order[i]);
        hw_receive_result_fini(&r);
    }
    assert_int_equal(ncontexts(f), 1);
    assert_int_equal(ndeadlines(f), 1);
}

/* More spans than the host has FIFOs for (HCN_DLQ_MAX): the fifth new
 * span's deadline waits in the heap, and the timeouts still come in the
 * order of their deadlines, a span's in the order sent; a request answered
 * in time leaves its FIFO without a timeout. */
static void deadlines_of_more_spans_than_fifos(void **state)
{
    fx *f = *state;
    _Static_assert(HCN_DLQ_MAX == 4, "the spans below assume 4 FIFOs");
    static const int64_t spans[] = {2, 0, 1, 3, 0, 4, 1, 2};
    enum { N = sizeof spans / sizeof spans[0], ANSWERED = 3 };
    uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        char c[2] = {(char)('0' + i), 0};
        a_send(f, "our@" PID_B, false, spans[i], "p", c, NULL);
        hcn_msg *m = b_pop_req(f);
        ids[i] = m->id;
        hcn_msg_unref(m);
    }
    assert_int_equal(ndeadlines(f), N);
    assert_int_equal(f->h.heap_len, 1);
    /* (arrival is stamped with the coarse clock, which may lag by a few
     * ms: the answer comes well after the span-0 deadlines) */
    usleep(50000);
    to_a_resp(f, ids[ANSWERED], ADDR_B, "answer", NULL);
    static const char want[] = "14R26075";
    char got[N + 1] = "";
    for (int k = 0; k < N; k++) {
        hw_receive_result r;
        a_recv_within(f, &r, 6000);
        if (r.is_err) {
            assert_int_equal(r.error.kind, HW_SEND_ERROR_TIMEOUT);
            assert_int_equal(r.context.len, 1);
            got[k] = (char)r.context.ptr[0];
        } else {
            got[k] = 'R';
        }
        hw_receive_result_fini(&r);
    }
    if (strcmp(got, want) != 0)
        fail_msg("received in the order %s, expected %s", got, want);
    assert_int_equal(ncontexts(f), 0);
    assert_int_equal(ndeadlines(f), 0);
}

static void timeout_restores_prompting(void **state)
{
    fx *f = *state;
    to_a_req(f, 1212, ADDR_C, ADDR_C, true, "c-asks", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    a_send(f, "our@" PID_B, false, 1, "sub", NULL, NULL);
    hcn_msg_unref(b_pop_req(f));
    /* B's request replaces the prompting message... */
    to_a_req(f, 3434, ADDR_B, ADDR_B, true, "b-asks", NULL);
    a_recv(f, &r);
    assert_request(&r, ADDR_B, "b-asks");
    hw_receive_result_fini(&r);
    /* ...until the timeout of "sub" restores C's (prompting when "sub" was
     * sent). */
    a_recv_within(f, &r, 4000);
    bool is_err = r.is_err;
    hw_receive_result_fini(&r);
    assert_true(is_err);
    a_respond(f, false, "for-c", NULL);
    hcn_msg *m = ut_pop(f->c, 1000);
    assert_int_equal(m->id, 1212);
    hcn_msg_unref(m);
    ut_assert_empty(f->b, 20);
}

/* ---------------------------------------------------------------- blobs */

static hcn_msg *b_pop_req(fx *f)
{
    hcn_msg *m = ut_pop(f->b, 1000);
    assert_int_equal(m->kind, HCN_MSG_REQUEST);
    return m;
}

static void blob_rules(void **state)
{
    fx *f = *state;
    hw_blob y = mkblob("m/y", "Y");
    hw_blob out;
    /* Nothing received yet. */
    assert_false(f->t->has_blob(f->t->ctx));
    assert_false(f->t->get_blob(f->t->ctx, &out));
    assert_false(f->t->last_blob(f->t->ctx, &out));
    /* A request with blob X. */
    hcn_blob *x = hcn_blob_new("m/x", "X", 1);
    to_a_req(f, 1, ADDR_C, ADDR_C, true, "with-x", x);
    hcn_blob_unref(x);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    assert_true(f->t->has_blob(f->t->ctx));
    assert_true(f->t->get_blob(f->t->ctx, &out));
    ut_assert_bytes(&out.bytes, "X");
    assert_string_equal(out.mime, "m/x");
    hw_blob_fini(&out);
    assert_true(f->t->last_blob(f->t->ctx, &out));
    ut_assert_bytes(&out.bytes, "X");
    hw_blob_fini(&out);

    /* Outgoing requests: explicit wins; inherit attaches the last blob;
     * otherwise none. */
    a_send(f, "our@" PID_B, true, -1, "inh-explicit", NULL, &y);
    a_send(f, "our@" PID_B, true, -1, "inh-none", NULL, NULL);
    a_send(f, "our@" PID_B, false, -1, "plain-none", NULL, NULL);
    a_send(f, "our@" PID_B, false, -1, "plain-explicit", NULL, &y);
    hcn_msg *m = b_pop_req(f);
    ut_assert_blob(m->blob, "Y");
    assert_string_equal(m->blob->mime, "m/y");
    hcn_msg_unref(m);
    m = b_pop_req(f);
    ut_assert_blob(m->blob, "X");
    hcn_msg_unref(m);
    m = b_pop_req(f);
    assert_null(m->blob);
    hcn_msg_unref(m);
    m = b_pop_req(f);
    ut_assert_blob(m->blob, "Y");
    hcn_msg_unref(m);

    /* Outgoing responses: inherit attaches the last blob and ignores the
     * explicit one. */
    a_respond(f, true, "resp-inherit", &y);
    m = ut_pop(f->c, 1000);
    ut_assert_blob(m->blob, "X");
    assert_string_equal(m->blob->mime, "m/x");
    hcn_msg_unref(m);
    a_respond(f, false, "resp-explicit", &y);
    m = ut_pop(f->c, 1000);
    ut_assert_blob(m->blob, "Y");
    hcn_msg_unref(m);
    a_respond(f, false, "resp-none", NULL);
    m = ut_pop(f->c, 1000);
    assert_null(m->blob);
    hcn_msg_unref(m);

    /* A blob-less message: has_blob/get_blob say no, last_blob keeps X. */
    to_a_req(f, 2, ADDR_C, ADDR_C, true, "no-blob", NULL);
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    assert_false(f->t->has_blob(f->t->ctx));
    memset(&out, 0x5a, sizeof out);
    assert_false(f->t->get_blob(f->t->ctx, &out));
    assert_null(out.mime); /* zeroed on failure */
    assert_null(out.bytes.ptr);
    assert_true(f->t->last_blob(f->t->ctx, &out));
    ut_assert_bytes(&out.bytes, "X");
    hw_blob_fini(&out);
    /* ...and inherit still attaches it. */
    a_send(f, "our@" PID_B, true, -1, "inh-after", NULL, NULL);
    m = b_pop_req(f);
    ut_assert_blob(m->blob, "X");
    hcn_msg_unref(m);
    a_respond(f, true, "resp-inherit-after", NULL);
    m = ut_pop(f->c, 1000);
    assert_int_equal(m->id, 2);
    ut_assert_blob(m->blob, "X");
    hcn_msg_unref(m);

    /* A response with a blob replaces it; a blob without mime exports a
     * NULL mime; an empty blob is still a blob. */
    a_send(f, "our@" PID_B, false, 5, "q", NULL, NULL);
    m = b_pop_req(f);
    hcn_blob *w = hcn_blob_new(NULL, "", 0);
    to_a_resp(f, m->id, ADDR_B, "r", w);
    hcn_blob_unref(w);
    hcn_msg_unref(m);
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    assert_true(f->t->has_blob(f->t->ctx));
    assert_true(f->t->get_blob(f->t->ctx, &out));
    assert_null(out.mime);
    assert_int_equal(out.bytes.len, 0);
    hw_blob_fini(&out);
    assert_true(f->t->last_blob(f->t->ctx, &out));
    assert_int_equal(out.bytes.len, 0);
    hw_blob_fini(&out);
}

/* ---------------------------------------------------- send and await */

/* The id the host draws next from the PRNG state st (white box: its ids
 * have bit 63 clear, the other half being a worker's own). */
static uint64_t fresh_id_after(uint64_t *st)
{
    return hcn_rng_next(st) & ~(UINT64_C(1) << 63);
}

/* Every request id the host draws has bit 63 clear. */
static void fresh_ids_leave_bit_63(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 64; i++) {
        a_send(f, "our@" PID_B, false, 30, "r", "ctx", NULL);
        hcn_msg *q = b_pop_req(f);
        assert_int_equal(q->id >> 63, 0);
        hcn_msg_unref(q);
    }
}

static void await_defers_other_messages(void **state)
{
    fx *f = *state;
    /* C's request is the prompting message throughout. */
    to_a_req(f, 50, ADDR_C, ADDR_C, true, "c-asks", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    /* An earlier request A is still waiting for. */
    a_send(f, "our@" PID_B, false, 30, "r0", "ctx-r0", NULL);
    hcn_msg *q0 = b_pop_req(f);
    /* The next fresh id (the host's PRNG, white box). */
    uint64_t st = f->h.rng;
    uint64_t next_id = fresh_id_after(&st);
    /* Queue: m1, the answer to r0, m2, the awaited answer, m3. */
    to_a_req(f, 61, ADDR_C, NULL, false, "m1", NULL);
    to_a_resp(f, q0->id, ADDR_B, "resp0", NULL);
    to_a_req(f, 62, ADDR_B, ADDR_B, true, "m2", NULL);
    hcn_blob *ab = hcn_blob_new(NULL, "ab", 2);
    to_a_resp(f, next_id, ADDR_B, "awaited", ab);
    hcn_blob_unref(ab);
    to_a_req(f, 63, ADDR_C, NULL, false, "m3", NULL);

    hw_request req = mkreq(false, 5, "sa");
    hw_await_result out;
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 3000), 0);
    assert_false(out.is_err);
    assert_string_equal(ut_fmt(&out.source), ADDR_B);
    assert_int_equal(out.message.kind, HW_MESSAGE_RESPONSE);
    ut_assert_bytes(&out.message.response.body, "awaited");
    assert_false(out.message.has_context);
    hw_await_result_fini(&out);
    assert_true(f->t->has_blob(f->t->ctx));
    hcn_msg *sent = b_pop_req(f);
    assert_int_equal(sent->id, next_id);
    assert_string_equal(sent->rsvp, ADDR_A);
    ut_assert_body(sent, "sa");
    hcn_msg_unref(sent);
    assert_int_equal(ncontexts(f), 1); /* r0 only */

    /* The others come out of receive() in arrival order. */
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "m1");
    hw_receive_result_fini(&r);
    a_recv(f, &r);
    assert_response(&r, ADDR_B, "resp0", "ctx-r0");
    hw_receive_result_fini(&r);
    /* resp0 restored C's request as the prompting message. */
    a_respond(f, false, "for-c", NULL);
    hcn_msg *m = ut_pop(f->c, 1000);
    assert_int_equal(m->id, 50);
    hcn_msg_unref(m);
    a_recv(f, &r);
    assert_request(&r, ADDR_B, "m2");
    hw_receive_result_fini(&r);
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "m3");
    hw_receive_result_fini(&r);
    assert_null(f->h.deferred_head);
    assert_int_equal(ncontexts(f), 0);
    hcn_msg_unref(q0);
}

static void await_keeps_prompting(void **state)
{
    fx *f = *state;
    to_a_req(f, 70, ADDR_C, ADDR_C, true, "c-asks", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    uint64_t st = f->h.rng;
    uint64_t next_id = fresh_id_after(&st);
    to_a_resp(f, next_id, ADDR_B, "sub", NULL);
    hw_request req = mkreq(false, 5, "sa");
    hw_await_result out;
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 3000), 0);
    assert_false(out.is_err);
    hw_await_result_fini(&out);
    a_respond(f, false, "for-c", NULL);
    hcn_msg *m = ut_pop(f->c, 1000);
    assert_int_equal(m->id, 70);
    hcn_msg_unref(m);
}

static void await_refusals(void **state)
{
    fx *f = *state;
    hw_await_result out;
    /* No expects_response: -1, nothing sent, nothing written. */
    hw_request req = mkreq(false, -1, "no-expects");
    memset(&out, 0x5a, sizeof out);
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 3000), -1);
    assert_false(out.is_err);
    assert_null(out.source.node);
    ut_assert_empty(f->b, 20);
    /* To itself: -1 as well. */
    req = mkreq(false, 5, "self");
    assert_int_equal(await_within(f, "our@" PID_A, &req, NULL, &out, 3000), -1);
    assert_int_equal(await_within(f, ADDR_A, &req, NULL, &out, 3000), -1);
    assert_int_equal(atomic_load(&f->a->mb.count), 0);
    assert_int_equal(ncontexts(f), 0);
}

static void await_errors(void **state)
{
    fx *f = *state;
    hw_await_result out;
    /* A missing target fails at once. */
    hw_request req = mkreq(false, 30, "lost");
    hw_blob bl = mkblob(NULL, "lost-blob");
    int64_t t0 = hcn_now_ns();
    assert_int_equal(
        await_within(f, "our@nobody:pair:test", &req, &bl, &out, 3000), 0);
    assert_true(hcn_now_ns() - t0 < 2000000000LL);
    assert_true(out.is_err);
    assert_int_equal(out.error.kind, HW_SEND_ERROR_TIMEOUT);
    assert_string_equal(ut_fmt(&out.error.target), UT_NODE "@nobody:pair:test");
    ut_assert_bytes(&out.error.message.request.body, "lost");
    assert_true(out.error.has_blob);
    ut_assert_bytes(&out.error.blob.bytes, "lost-blob");
    hw_await_result_fini(&out);
    /* No answer: a timeout after the deadline. */
    req = mkreq(false, 1, "slow");
    t0 = hcn_now_ns();
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 4000), 0);
    int64_t waited = hcn_now_ns() - t0;
    if (waited < 1000000000LL || waited > 4000000000LL)
        fail_msg("await timed out after %lld ms, expected ~1000",
                 (long long)(waited / 1000000));
    assert_true(out.is_err);
    assert_int_equal(out.error.kind, HW_SEND_ERROR_TIMEOUT);
    ut_assert_bytes(&out.error.message.request.body, "slow");
    hw_await_result_fini(&out);
    assert_int_equal(ncontexts(f), 0);
    hcn_msg *q = b_pop_req(f);
    hcn_msg_unref(q);
}

/* ------------------------------------------- answers queued in time */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Hyperware's timeout is a task that pushes the Timeout error into the
 * process's queue at the deadline, so a response that arrived before the
 * deadline is ahead of it and wins even if the process calls receive()
 * only later (runtime.md §3.1, §3.3). */
static void response_queued_before_deadline_wins(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 1, "quick", "k", NULL);
    hcn_msg *q = b_pop_req(f);
    to_a_resp(f, q->id, ADDR_B, "in-time", NULL);
    hcn_msg_unref(q);
    /* A is busy past the deadline before it calls receive(). */
    sleep_ms(1300);
    hw_receive_result r;
    a_recv(f, &r);
    if (r.is_err) {
        hw_receive_result_fini(&r);
        fail_msg("got a timeout error although the response arrived "
                 "~1 s before the deadline");
    }
    assert_response(&r, ADDR_B, "in-time", "k");
    hw_receive_result_fini(&r);
    assert_int_equal(ncontexts(f), 0);
}

typedef struct delayed {
    fx *f;
    int ms;
    uint64_t id;
    const char *body;
} delayed;

static void *delayed_resp_main(void *arg)
{
    delayed *d = arg;
    sleep_ms(d->ms);
    to_a_resp(d->f, d->id, ADDR_B, d->body, NULL);
    return NULL;
}

/* The same through send-and-await: a response to an earlier request that
 * arrives (in time) while the process awaits another answer is kept for
 * receive(), and receive() must hand it over even if its deadline has
 * passed by then. */
static void deferred_response_before_deadline_wins(void **state)
{
    fx *f = *state;
    a_send(f, "our@" PID_B, false, 1, "r0", "ctx-r0", NULL);
    hcn_msg *q0 = b_pop_req(f);
    to_a_resp(f, q0->id, ADDR_B, "resp0", NULL); /* well in time */
    uint64_t st = f->h.rng;
    delayed d = {f, 1300, fresh_id_after(&st), "awaited"};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, delayed_resp_main, &d), 0);
    hw_request req = mkreq(false, 10, "sa");
    hw_await_result out;
    int rc = await_within(f, "our@" PID_B, &req, NULL, &out, 5000);
    pthread_join(t, NULL);
    assert_int_equal(rc, 0);
    assert_false(out.is_err);
    ut_assert_bytes(&out.message.response.body, "awaited");
    hw_await_result_fini(&out);
    hw_receive_result r;
    hcn_msg_unref(q0);
    a_recv(f, &r);
    if (r.is_err) {
        hw_receive_result_fini(&r);
        fail_msg("got a timeout error for r0 although its response was "
                 "deferred before the deadline");
    }
    assert_response(&r, ADDR_B, "resp0", "ctx-r0");
    hw_receive_result_fini(&r);
}

/* Hyperware's send-and-await first looks for the awaited id among the
 * messages it already set aside (get_specific_message_for_process).  With
 * inherit, an awaited id can be one whose answer was set aside by an
 * earlier await. */
static void await_finds_answer_already_deferred(void **state)
{
    fx *f = *state;
    to_a_req(f, 500, ADDR_C, ADDR_C, true, "c-asks", NULL);
    hw_receive_result r;
    a_recv(f, &r);
    hw_receive_result_fini(&r);
    /* Forward with inherit + expects: id 500, A waits for it. */
    a_send(f, "our@" PID_B, true, 5, "fwd", NULL, NULL);
    hcn_msg *q = b_pop_req(f);
    assert_int_equal(q->id, 500);
    hcn_msg_unref(q);
    /* B's answer to 500 arrives while A awaits something else. */
    uint64_t st = f->h.rng;
    uint64_t next_id = fresh_id_after(&st);
    to_a_resp(f, 500, ADDR_B, "answer-500", NULL);
    to_a_resp(f, next_id, ADDR_B, "other", NULL);
    hw_request req = mkreq(false, 5, "other-q");
    hw_await_result out;
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 3000), 0);
    ut_assert_bytes(&out.message.response.body, "other");
    hw_await_result_fini(&out);
    assert_non_null(f->h.deferred_head); /* answer-500 is set aside */
    /* Now await with inherit: the id is 500 again, and its answer is
     * already here. */
    req = mkreq(true, 1, "again-500");
    assert_int_equal(await_within(f, "our@" PID_B, &req, NULL, &out, 3000), 0);
    if (out.is_err) {
        hw_await_result_fini(&out);
        fail_msg("send_and_await timed out although the answer for its id "
                 "was already set aside");
    }
    ut_assert_bytes(&out.message.response.body, "answer-500");
    hw_await_result_fini(&out);
}

/* -------------------------------------------- capabilities, metadata */

static hw_capability mkcap(const char *issuer, const char *params)
{
    hw_capability c;
    memset(&c, 0, sizeof c);
    assert_int_equal(hw_address_parse(issuer, &c.issuer), 0);
    c.params = (char *)params;
    return c;
}

static void capabilities_filtered_on_send(void **state)
{
    fx *f = *state;
    hw_capability caps[4] = {
        mkcap("our@" PID_A, "{ \"b\": 1, \"a\": 2 }"), /* issued by A */
        mkcap(ADDR_B, "\"messaging\""),                /* held by A */
        mkcap("our@" PID_D, "\"messaging\""),          /* not held */
        mkcap("our@" PID_A, "not json"),               /* bad params */
    };
    hw_address t;
    assert_int_equal(hw_address_parse("our@" PID_B, &t), 0);
    hw_request r = mkreq(false, -1, "with-caps");
    r.capabilities.ptr = caps;
    r.capabilities.len = 4;
    r.metadata = (char *)"{\"meta\": true}";
    f->t->send_request(f->t->ctx, &t, &r, NULL, NULL);
    hw_address_fini(&t);
    for (int i = 0; i < 4; i++)
        hw_address_fini(&caps[i].issuer);
    hcn_msg *m = b_pop_req(f);
    assert_int_equal(m->ncaps, 2);
    assert_string_equal(m->caps[0].issuer, ADDR_A);
    assert_string_equal(m->caps[0].params, "{\"a\":2,\"b\":1}");
    assert_string_equal(m->caps[1].issuer, ADDR_B);
    assert_string_equal(m->caps[1].params, "\"messaging\"");
    /* metadata passes through untouched */
    assert_non_null(m->metadata);
    assert_string_equal(m->metadata, "{\"meta\": true}");
    hcn_msg_unref(m);
}

/* A capability issued by another node keeps that node's signature from
 * the message that offered it, through save, to the messages that show it:
 * the net module sends it back with it (ours carry none: net signs them). */
static void another_nodes_capability_keeps_its_signature(void **state)
{
    fx *f = *state;
    uint8_t sig[64];
    for (size_t i = 0; i < sizeof sig; i++)
        sig[i] = (uint8_t)(i * 7 + 1);
#define FOREIGN "other.os@" PID_B
    hcn_cap offered[2] = {
        {.issuer = (char *)FOREIGN,
         .params = (char *)"\"messaging\"",
         .sig = sig,
         .sig_len = sizeof sig},
        {.issuer = (char *)"other.os@" PID_C, .params = (char *)"\"x\""},
    };
    hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 8, .source = ADDR_C,
                             .target = ADDR_A, .body = "caps", .body_len = 4,
                             .caps = offered, .ncaps = 2);
    /* the envelope holds its own copy */
    assert_int_equal(m->caps[0].sig_len, sizeof sig);
    assert_ptr_not_equal(m->caps[0].sig, sig);
    assert_memory_equal(m->caps[0].sig, sig, sizeof sig);
    assert_null(m->caps[1].sig);
    assert_int_equal(m->caps[1].sig_len, 0);
    hcn_route(f->n, m);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "caps");
    hw_receive_result_fini(&r);
    hw_capability save[2] = {mkcap(FOREIGN, "\"messaging\""),
                             mkcap("other.os@" PID_C, "\"x\"")};
    f->t->save_capabilities(f->t->ctx, save, 2);
    pthread_mutex_lock(&f->a->lock);
    const hcn_cap *held = hcn_capset_get(&f->a->caps, FOREIGN, "\"messaging\"");
    assert_non_null(held);
    assert_int_equal(held->sig_len, sizeof sig);
    assert_memory_equal(held->sig, sig, sizeof sig);
    held = hcn_capset_get(&f->a->caps, "other.os@" PID_C, "\"x\"");
    assert_non_null(held);
    assert_null(held->sig);
    pthread_mutex_unlock(&f->a->lock);
    /* shown to B: with the signature */
    hw_address t;
    assert_int_equal(hw_address_parse("our@" PID_B, &t), 0);
    hw_request q = mkreq(false, -1, "shows");
    q.capabilities.ptr = save;
    q.capabilities.len = 2;
    f->t->send_request(f->t->ctx, &t, &q, NULL, NULL);
    hw_address_fini(&t);
    for (int i = 0; i < 2; i++)
        hw_address_fini(&save[i].issuer);
    hcn_msg *got = b_pop_req(f);
    assert_int_equal(got->ncaps, 2);
    assert_string_equal(got->caps[0].issuer, FOREIGN);
    assert_int_equal(got->caps[0].sig_len, sizeof sig);
    assert_memory_equal(got->caps[0].sig, sig, sizeof sig);
    assert_int_equal(got->caps[1].sig_len, 0);
    hcn_msg_unref(got);
#undef FOREIGN
}

static void capabilities_offered_saved_dropped(void **state)
{
    fx *f = *state;
    hcn_cap offered = {.issuer = (char *)ADDR_C, .params = (char *)"\"z\""};
    hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 7, .source = ADDR_C,
                             .target = ADDR_A, .body = "caps", .body_len = 4,
                             .metadata = "md", .caps = &offered, .ncaps = 1);
    hcn_route(f->n, m);
    hw_receive_result r;
    a_recv(f, &r);
    assert_request(&r, ADDR_C, "caps");
    assert_string_equal(r.message.request.metadata, "md");
    assert_int_equal(r.message.request.capabilities.len, 1);
    assert_string_equal(ut_fmt(&r.message.request.capabilities.ptr[0].issuer),
                        ADDR_C);
    assert_string_equal(r.message.request.capabilities.ptr[0].params, "\"z\"");
    hw_receive_result_fini(&r);
    /* Save the offered one, one A issues itself, and a forged one. */
    hw_capability save[3] = {
        mkcap(ADDR_C, " \"z\" "),
        mkcap("our@" PID_A, "\"self\""),
        mkcap("our@" PID_D, "\"messaging\""),
    };
    f->t->save_capabilities(f->t->ctx, save, 3);
    hw_capability_list held;
    f->t->our_capabilities(f->t->ctx, &held);
    bool z = false, self = false, forged = false;
    for (size_t i = 0; i < held.len; i++) {
        const char *iss = ut_fmt(&held.ptr[i].issuer);
        if (strcmp(iss, ADDR_C) == 0 &&
            strcmp(held.ptr[i].params, "\"z\"") == 0)
            z = true;
        if (strcmp(iss, ADDR_A) == 0 &&
            strcmp(held.ptr[i].params, "\"self\"") == 0)
            self = true;
        if (strcmp(iss, UT_NODE "@" PID_D) == 0)
            forged = true;
    }
    hw_capability_list_fini(&held);
    assert_true(z);
    assert_true(self);
    assert_false(forged);
    /* Drop: gone afterwards. */
    f->t->drop_capabilities(f->t->ctx, save, 1);
    pthread_mutex_lock(&f->a->lock);
    char *canon = hcn_json_canonical("\"z\"");
    bool still = hcn_capset_has(&f->a->caps, ADDR_C, canon);
    free(canon);
    pthread_mutex_unlock(&f->a->lock);
    assert_false(still);
    /* An issuer named our@: the node's own name, as when it was saved. */
    f->t->drop_capabilities(f->t->ctx, save + 1, 1);
    pthread_mutex_lock(&f->a->lock);
    canon = hcn_json_canonical("\"self\"");
    still = hcn_capset_has(&f->a->caps, ADDR_A, canon);
    free(canon);
    pthread_mutex_unlock(&f->a->lock);
    assert_false(still);
    for (int i = 0; i < 3; i++)
        hw_address_fini(&save[i].issuer);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(request_with_expects_gets_rsvp_and_fresh_id),
        T(many_requests_have_distinct_ids),
        T(response_delivered_with_context),
        T(prompting_restored_after_response),
        T(response_goes_to_rsvp),
        T(envelopes_keep_address_lengths),
        T(response_without_prompting_is_dropped),
        T(unmatched_response_dropped),
        T(unmatched_response_alone_never_returns),
        T(inherit_forwarding),
        T(inherit_without_prompting),
        T(fire_and_forget_does_not_replace_prompting),
        T(missing_target_gives_immediate_timeout),
        T(denied_target_gives_immediate_timeout),
        T(other_node_gives_offline),
        T(failures_without_expects_are_silent),
        T(deadline_timeout),
        T(deadlines_expire_in_order),
        T(deadlines_of_more_spans_than_fifos),
        T(timeout_restores_prompting),
        T(blob_rules),
        T(fresh_ids_leave_bit_63),
        T(await_defers_other_messages),
        T(await_keeps_prompting),
        T(await_refusals),
        T(await_errors),
        T(response_queued_before_deadline_wins),
        T(deferred_response_before_deadline_wins),
        T(await_finds_answer_already_deferred),
        T(capabilities_filtered_on_send),
        T(capabilities_offered_saved_dropped),
        T(another_nodes_capability_keeps_its_signature),
        T(receive_lent_lends_until_next_receive),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
