/* The node's drain of a lane ring whose reader has ended (kernel/lanes.c,
 * hcn_lane_drain): what the writer left becomes request envelopes, in
 * order, for the reader's next instance; anything a lane may not carry
 * ends the drain and is named. */
#include "unit_helpers.h"
#include "worker/lane.h"

#define FROM "n.os@a:p:u"
#define TO "n.os@b:p:u"
#define LANE_ID(k) ((1ull << 63) | (k))

typedef struct fx {
    hcw_lane *lane;
    hcw_link *writer; /* side 0: writes ring 0 */
    hcw_link *reader; /* side 1, the node's view of the ended reader */
    hcw_frame *f;
    hcn_msg *head, *tail;
    char why[200];
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    assert_non_null(x);
    int fd;
    x->lane = hcw_lane_new(7, &fd);
    assert_non_null(x->lane);
    close(fd);
    x->writer = hcw_lane_view(x->lane, 0);
    x->reader = hcw_lane_view(x->lane, 1);
    x->f = hcw_frame_new();
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    while (x->head) {
        hcn_msg *n = x->head->next;
        hcn_msg_unref(x->head);
        x->head = n;
    }
    hcw_frame_free(x->f);
    hcw_lane_free(x->lane);
    free(x);
    return 0;
}

/* Write an LREQ into ring 0 as a worker would. */
static void lreq(fx *x, uint64_t id, const hw_request *r, const hw_blob *b)
{
    hcw_frame_lreq(x->f, id, r, b);
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
}

/* Write an LRESP [id, body, nil, nil] into ring 0. */
static void lresp(fx *x, uint64_t id, const char *body)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    hcw_frame_lresp(x->f, id, &r, NULL);
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
}

static hw_request note(const char *body)
{
    hw_request r = {0};
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    return r;
}

/* The fixture, with an LREQ "ok" written first: what a refused frame
 * after it leaves (refused). */
static fx *ok_first(void **state)
{
    fx *x = *state;
    hw_request ok = note("ok");
    lreq(x, LANE_ID(1), &ok, NULL);
    return x;
}

static size_t drain(fx *x)
{
    return hcn_lane_drain(x->reader, FROM, TO, &x->head, &x->tail, x->why,
                          sizeof x->why);
}

static void body_is(const hcn_msg *m, const char *s)
{
    assert_int_equal(m->body_len, strlen(s));
    assert_memory_equal(m->body, s, strlen(s));
}

static void left_frames_become_requests_in_order(void **state)
{
    fx *x = *state;
    hw_request a = note("first");
    lreq(x, LANE_ID(1), &a, NULL);
    hw_request b = note("second");
    b.has_expects_response = true;
    b.expects_response = 30;
    b.metadata = "meta";
    uint8_t bytes[] = {1, 2, 3};
    hw_blob blob = {.mime = "application/x", .bytes = {bytes, 3}};
    lreq(x, LANE_ID(2), &b, &blob);
    hw_request c = note("");
    lreq(x, LANE_ID(3), &c, NULL);
    /* the reader never took any: it stopped at 0 */
    assert_int_equal(hcw_link_rx_resync(x->reader), 0);
    assert_int_equal(drain(x), 3);
    assert_string_equal(x->why, "");
    hcn_msg *m = x->head;
    assert_int_equal(m->kind, HCN_MSG_REQUEST);
    assert_true(m->id == LANE_ID(1));
    assert_string_equal(m->source, FROM);
    assert_string_equal(m->target, TO);
    assert_null(m->rsvp);
    assert_false(m->has_expects);
    assert_null(m->blob);
    body_is(m, "first");
    m = m->next;
    assert_true(m->id == LANE_ID(2));
    assert_string_equal(m->rsvp, FROM); /* it expects a response */
    assert_true(m->has_expects);
    assert_int_equal(m->expects, 30);
    assert_string_equal(m->metadata, "meta");
    assert_non_null(m->blob);
    assert_string_equal(m->blob->mime, "application/x");
    assert_int_equal(m->blob->len, 3);
    assert_memory_equal(m->blob->bytes, bytes, 3);
    body_is(m, "second");
    m = m->next;
    body_is(m, "");
    assert_ptr_equal(m, x->tail);
    assert_null(m->next);
    /* the drain read to the end; nothing more comes */
    assert_true(hcw_link_rx_pos(x->reader) > 0);
    assert_int_equal(drain(x), 0);
}

static void only_what_the_reader_left(void **state)
{
    fx *x = *state;
    hw_request a = note("taken");
    lreq(x, LANE_ID(1), &a, NULL);
    hw_request b = note("left");
    lreq(x, LANE_ID(2), &b, NULL);
    /* the reader took the first before it ended (its head moved) */
    hcw_in in;
    hcw_in_init(&in);
    char err[100];
    assert_int_equal(hcw_link_try_recv(x->reader, &in, err, sizeof err), 1);
    hcw_in_fini(&in);
    uint32_t taken = hcw_link_rx_resync(x->reader);
    assert_true(taken > 0);
    assert_int_equal(drain(x), 1);
    body_is(x->head, "left");
}

static void refused(fx *x, const char *said);

/* An LREQ that expects a response is a request answered to its writer. */
static void a_request_with_expects_is_answered_to_the_writer(void **state)
{
    fx *x = *state;
    hw_request r = note("ask");
    r.has_expects_response = true;
    r.expects_response = 5;
    lreq(x, LANE_ID(9), &r, NULL);
    assert_int_equal(drain(x), 1);
    assert_string_equal(x->why, "");
    hcn_msg *m = x->head;
    assert_int_equal(m->kind, HCN_MSG_REQUEST);
    assert_true(m->id == LANE_ID(9));
    assert_true(m->has_expects);
    assert_int_equal(m->expects, 5);
    assert_string_equal(m->rsvp, FROM);
    assert_string_equal(m->source, FROM);
    assert_string_equal(m->target, TO);
    assert_false(m->inherit);
    body_is(m, "ask");
}

/* The writer's answers to the ended reader's lane requests are skipped:
 * nobody waits for them any more; the requests around them are kept. */
static void responses_are_skipped(void **state)
{
    fx *x = *state;
    hw_request a = note("before");
    lreq(x, LANE_ID(1), &a, NULL);
    lresp(x, LANE_ID(40), "an answer");
    lresp(x, LANE_ID(41), "another");
    hw_request b = note("after");
    lreq(x, LANE_ID(2), &b, NULL);
    lresp(x, LANE_ID(42), "last");
    assert_int_equal(drain(x), 2);
    assert_string_equal(x->why, "");
    body_is(x->head, "before");
    body_is(x->head->next, "after");
    assert_ptr_equal(x->head->next, x->tail);
    /* read to the end, the answers too */
    assert_int_equal(drain(x), 0);
    assert_string_equal(x->why, "");
}

/* Send the forged frame in x->f, an LREQ "after" behind it, and drain:
 * the forged frame ends the drain after "ok" (refused). */
static void forged_then_refused(fx *x)
{
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
    hw_request after = note("after");
    lreq(x, LANE_ID(3), &after, NULL);
    refused(x, "not LREQ");
}

static void a_short_lresp_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hcw_frame_begin(x->f, HCW_LRESP, 1);
    hcw_put_u64(x->f, LANE_ID(2));
    forged_then_refused(x);
}

/* An LRESP of four arguments whose body is a string: read whole like any
 * lane frame, so it ends the drain too (it is not a frame a worker
 * writes). */
static void a_broken_lresp_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hcw_frame_begin(x->f, HCW_LRESP, 4);
    hcw_put_u64(x->f, LANE_ID(2));
    hcw_put_str(x->f, "not bytes");
    hcw_put_nil(x->f);
    hcw_put_nil(x->f);
    forged_then_refused(x);
}

/* Each refused frame ends the drain; what came before it is kept. */
static void refused(fx *x, const char *said)
{
    assert_int_equal(drain(x), 1);
    body_is(x->head, "ok");
    assert_non_null(strstr(x->why, said));
}

/* An LREQ in lane layout 2's shape, [id, request, blob] (a request as
 * the worker's link writes it, with its inherit and capabilities), or one
 * whose expects is not a number: neither is an LREQ of layout 3. */
static void a_nested_lreq_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hw_request r = note("nested");
    hcw_frame_begin(x->f, HCW_LREQ, 3);
    hcw_put_u64(x->f, LANE_ID(2));
    hcw_put_request(x->f, &r);
    hcw_put_nil(x->f);
    forged_then_refused(x);
}

static void an_lreq_with_a_string_for_expects_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hcw_frame_begin(x->f, HCW_LREQ, 5);
    hcw_put_u64(x->f, LANE_ID(2));
    hcw_put_str(x->f, "5");
    hcw_put_bin(x->f, "b", 1);
    hcw_put_nil(x->f);
    hcw_put_nil(x->f);
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
    refused(x, "not LREQ");
}

static void a_node_id_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hw_request r = note("a node's id");
    lreq(x, 12345, &r, NULL);
    refused(x, "bit 63");
}

static void another_op_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hcw_frame_begin(x->f, HCW_SEND_REQUEST, 1);
    hcw_put_u64(x->f, 1);
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
    refused(x, "not LREQ");
}

static void a_short_lreq_ends_the_drain(void **state)
{
    fx *x = ok_first(state);
    hcw_frame_begin(x->f, HCW_LREQ, 1);
    hcw_put_u64(x->f, LANE_ID(2));
    assert_int_equal(hcw_link_try_send(x->writer, x->f), 1);
    refused(x, "not LREQ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(left_frames_become_requests_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(only_what_the_reader_left, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_nested_lreq_ends_the_drain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            an_lreq_with_a_string_for_expects_ends_the_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(a_node_id_ends_the_drain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(another_op_ends_the_drain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_short_lreq_ends_the_drain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_request_with_expects_is_answered_to_the_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(responses_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(a_short_lresp_ends_the_drain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_broken_lresp_ends_the_drain, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
