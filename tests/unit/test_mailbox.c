/* Bounded mailboxes (mailbox.c): FIFO order, the request bound, deadlines,
 * close waking a blocked pop, reopen, take_all, stop/requeue/resume, the
 * notify function. */
#include "unit_helpers.h"

#include <pthread.h>

#define SRC "local.os@a:pkg:sys"
#define DST "local.os@b:pkg:sys"

static hcn_msg *req(uint64_t id)
{
    return ut_req(id, SRC, DST, NULL, false, 0, "q", NULL);
}

static hcn_msg *resp(uint64_t id)
{
    return ut_resp(id, DST, SRC, "r", NULL);
}

static void fifo_order(void **state)
{
    (void)state;
    uint32_t spins[] = {0, 50};
    for (size_t s = 0; s < 2; s++) {
        hcn_mailbox mb;
        hcn_mailbox_init(&mb, 100, spins[s]);
        for (uint64_t i = 1; i <= 20; i++)
            assert_int_equal(
                hcn_mailbox_push(&mb, i % 4 == 0 ? resp(i) : req(i)), HCC_EOK);
        assert_int_equal(atomic_load(&mb.count), 20);
        assert_int_equal(mb.nreq, 15);
        for (uint64_t i = 1; i <= 20; i++) {
            hcn_msg *m = NULL;
            assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
            assert_int_equal(m->id, i);
            assert_null(m->next);
            assert_int_equal(m->kind,
                             i % 4 == 0 ? HCN_MSG_RESPONSE : HCN_MSG_REQUEST);
            hcn_msg_unref(m);
        }
        assert_int_equal(atomic_load(&mb.count), 0);
        assert_int_equal(mb.nreq, 0);
        hcn_mailbox_fini(&mb);
    }
}

/* Each push gets the next number (never 0, wrapping), told to the pusher
 * and kept on the envelope; a refused push takes none. */
static void pushes_are_numbered(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 1, 0);
    uint32_t seq = 0;
    assert_int_equal(hcn_mailbox_push_seq(&mb, req(1), &seq), HCC_EOK);
    assert_int_equal(seq, 1);
    hcn_msg *over = req(2);
    assert_int_equal(hcn_mailbox_push_seq(&mb, over, &seq), HCC_EFULL);
    hcn_msg_unref(over);
    assert_int_equal(hcn_mailbox_push_seq(&mb, resp(3), &seq), HCC_EOK);
    assert_int_equal(seq, 2);
    atomic_store(&mb.push_seq, UINT32_MAX);
    assert_int_equal(hcn_mailbox_push_seq(&mb, resp(4), &seq), HCC_EOK);
    assert_int_equal(seq, 1);
    uint32_t want[] = {1, 2, 1};
    for (int i = 0; i < 3; i++) {
        hcn_msg *m = NULL;
        assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
        assert_int_equal(m->seq, want[i]);
        hcn_msg_unref(m);
    }
    hcn_mailbox_fini(&mb);
}

static void request_bound(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 3, 0);
    for (uint64_t i = 1; i <= 3; i++)
        assert_int_equal(hcn_mailbox_push(&mb, req(i)), HCC_EOK);
    /* The 4th request is refused; the caller keeps its reference. */
    hcn_msg *over = req(4);
    assert_int_equal(hcn_mailbox_push(&mb, over), HCC_EFULL);
    assert_int_equal(atomic_load(&over->refs), 1);
    assert_null(over->next);
    /* Responses and send errors are still accepted: the receiver asked for
     * them. */
    assert_int_equal(hcn_mailbox_push(&mb, resp(5)), HCC_EOK);
    hcn_msg *e = hcn_msg_send_error(over, HW_SEND_ERROR_TIMEOUT);
    assert_int_equal(e->kind, HCN_MSG_SEND_ERROR);
    assert_int_equal(e->id, 4);
    assert_ptr_equal(e->orig, over);
    assert_string_equal(e->target, SRC); /* the sender (no rsvp) */
    assert_string_equal(e->source, DST);
    assert_int_equal(hcn_mailbox_push(&mb, e), HCC_EOK);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hcn_mailbox_push(&mb, resp(100 + (uint64_t)i)),
                         HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, over), HCC_EFULL);
    assert_int_equal(mb.nreq, 3);
    assert_int_equal(atomic_load(&mb.count), 15);
    /* Popping a request makes room for exactly one more. */
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
    assert_int_equal(m->id, 1);
    hcn_msg_unref(m);
    assert_int_equal(hcn_mailbox_push(&mb, over), HCC_EOK);
    hcn_msg *again = req(6);
    assert_int_equal(hcn_mailbox_push(&mb, again), HCC_EFULL);
    hcn_msg_unref(again);
    /* Popping a response frees no request slot. */
    hcn_msg *all = hcn_mailbox_take_all(&mb);
    int count = 0;
    while (all) {
        hcn_msg *next = all->next;
        hcn_msg_unref(all);
        all = next;
        count++;
    }
    assert_int_equal(count, 15);
    hcn_mailbox_fini(&mb);
}

static void responses_do_not_free_request_slots(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 1, 0);
    assert_int_equal(hcn_mailbox_push(&mb, resp(1)), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, req(2)), HCC_EOK);
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
    assert_int_equal(m->id, 1);
    hcn_msg_unref(m);
    hcn_msg *r = req(3);
    assert_int_equal(hcn_mailbox_push(&mb, r), HCC_EFULL);
    hcn_msg_unref(r);
    hcn_mailbox_fini(&mb); /* frees the queued request (ASan checks) */
}

static void zero_bound_refuses_every_request(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 0, 0);
    hcn_msg *r = req(1);
    assert_int_equal(hcn_mailbox_push(&mb, r), HCC_EFULL);
    hcn_msg_unref(r);
    assert_int_equal(hcn_mailbox_push(&mb, resp(2)), HCC_EOK);
    hcn_mailbox_fini(&mb);
}

static void pop_deadline(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 10, 50);
    hcn_msg *m = (hcn_msg *)0x1;
    /* A deadline in the past returns at once. */
    int64_t t0 = hcn_now_ns();
    assert_int_equal(hcn_mailbox_pop(&mb, t0 - 1000000, &m), HCC_ETIMEOUT);
    assert_true(hcn_now_ns() - t0 < 500000000);
    assert_int_equal(hcn_mailbox_pop(&mb, 0, &m), HCC_ETIMEOUT);
    /* 300 ms: waits at least that long, and not much longer. */
    t0 = hcn_now_ns();
    assert_int_equal(hcn_mailbox_pop(&mb, t0 + 300000000, &m), HCC_ETIMEOUT);
    int64_t waited = hcn_now_ns() - t0;
    if (waited < 300000000 || waited > 3000000000)
        fail_msg("pop waited %lld ns for a 300 ms deadline", (long long)waited);
    /* A queued message is returned even with a past deadline. */
    assert_int_equal(hcn_mailbox_push(&mb, req(7)), HCC_EOK);
    assert_int_equal(hcn_mailbox_pop(&mb, 0, &m), HCC_EOK);
    assert_int_equal(m->id, 7);
    hcn_msg_unref(m);
    hcn_mailbox_fini(&mb);
}

typedef struct popper {
    hcn_mailbox *mb;
    int64_t deadline;
    int rc;
    hcn_msg *m;
    int64_t returned_at;
} popper;

static void *pop_thread(void *arg)
{
    popper *p = arg;
    p->rc = hcn_mailbox_pop(p->mb, p->deadline, &p->m);
    p->returned_at = hcn_now_ns();
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void close_wakes_blocked_pop(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 10, 0);
    popper p = {.mb = &mb, .deadline = -1, .rc = -12345};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
    sleep_ms(150);
    int64_t closed_at = hcn_now_ns();
    hcn_mailbox_close(&mb);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.rc, HCC_ECLOSED);
    assert_true(p.returned_at >= closed_at);
    /* Closed: pushes are refused, the caller keeps the message. */
    hcn_msg *r = req(1);
    assert_int_equal(hcn_mailbox_push(&mb, r), HCC_ECLOSED);
    hcn_msg *s = resp(2);
    assert_int_equal(hcn_mailbox_push(&mb, s), HCC_ECLOSED);
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_ECLOSED);
    /* Reopen: pushes work again. */
    hcn_mailbox_reopen(&mb);
    assert_int_equal(hcn_mailbox_push(&mb, r), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, s), HCC_EOK);
    /* Close keeps what was queued: it still pops, then ECLOSED. */
    hcn_mailbox_close(&mb);
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
    assert_int_equal(m->id, 1);
    hcn_msg_unref(m);
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_EOK);
    assert_int_equal(m->id, 2);
    hcn_msg_unref(m);
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_ECLOSED);
    hcn_mailbox_fini(&mb);
}

static void stop_keeps_messages_for_the_next_receiver(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 10, 0);
    popper p = {.mb = &mb, .deadline = -1, .rc = -12345};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
    sleep_ms(100);
    /* A stop wakes the idle receiver... */
    hcn_mailbox_stop(&mb);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.rc, HCC_ECLOSED);
    /* ...while senders go on queueing, and nothing is handed out. */
    assert_int_equal(hcn_mailbox_push(&mb, req(1)), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, req(2)), HCC_EOK);
    hcn_msg *m, *head, *tail;
    assert_int_equal(hcn_mailbox_pop(&mb, -1, &m), HCC_ECLOSED);
    hcn_mailbox_drain(&mb, &head, &tail);
    assert_null(head);
    /* A call being waited on still completes through the stop. */
    assert_int_equal(hcn_mailbox_pop_through(&mb, -1, &m), HCC_EOK);
    assert_int_equal(m->id, 1);
    /* What the stopped receiver had set aside goes back to the front. */
    hcn_mailbox_requeue(&mb, m, m);
    assert_int_equal(atomic_load(&mb.count), 2);
    hcn_mailbox_resume(&mb);
    for (uint64_t i = 1; i <= 2; i++) {
        assert_int_equal(hcn_mailbox_pop(&mb, 0, &m), HCC_EOK);
        assert_int_equal(m->id, i);
        hcn_msg_unref(m);
    }
    assert_int_equal(atomic_load(&mb.count), 0);
    assert_int_equal(mb.nreq, 0);
    hcn_mailbox_fini(&mb);
}

static void close_wakes_pop_with_deadline(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 10, 0);
    popper p = {.mb = &mb, .deadline = ut_ms_from_now(10000), .rc = -12345};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
    sleep_ms(100);
    hcn_mailbox_close(&mb);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.rc, HCC_ECLOSED);
    assert_true(p.returned_at < p.deadline - 5000000000LL);
    hcn_mailbox_fini(&mb);
}

static void push_wakes_blocked_pop(void **state)
{
    (void)state;
    uint32_t spins[] = {0, 200};
    for (size_t s = 0; s < 2; s++) {
        hcn_mailbox mb;
        hcn_mailbox_init(&mb, 10, spins[s]);
        popper p = {.mb = &mb, .deadline = -1, .rc = -12345};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, pop_thread, &p), 0);
        sleep_ms(100);
        assert_int_equal(hcn_mailbox_push(&mb, req(42)), HCC_EOK);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(p.rc, HCC_EOK);
        assert_non_null(p.m);
        assert_int_equal(p.m->id, 42);
        hcn_msg_unref(p.m);
        hcn_mailbox_fini(&mb);
    }
}

typedef struct pusher {
    hcn_mailbox *mb;
    uint64_t base;
    int n;
} pusher;

static void *push_thread(void *arg)
{
    pusher *p = arg;
    for (int i = 0; i < p->n; i++) {
        hcn_msg *m = resp(p->base + (uint64_t)i);
        if (hcn_mailbox_push(p->mb, m) != HCC_EOK)
            hcn_msg_unref(m);
    }
    return NULL;
}

/* Several senders: nothing lost, and each sender's messages in order. */
static void concurrent_senders_keep_per_sender_order(void **state)
{
    (void)state;
    enum { SENDERS = 4, EACH = 2000 };
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 10, 50);
    pthread_t t[SENDERS];
    pusher ps[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        ps[i] = (pusher){&mb, (uint64_t)(i + 1) * 1000000, EACH};
        assert_int_equal(pthread_create(&t[i], NULL, push_thread, &ps[i]), 0);
    }
    uint64_t next[SENDERS] = {0};
    for (int k = 0; k < SENDERS * EACH; k++) {
        hcn_msg *m;
        assert_int_equal(hcn_mailbox_pop(&mb, ut_ms_from_now(10000), &m),
                         HCC_EOK);
        int s = (int)(m->id / 1000000) - 1;
        assert_in_range(s, 0, SENDERS - 1);
        assert_int_equal(m->id % 1000000, next[s]);
        next[s]++;
        hcn_msg_unref(m);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(next[i], EACH);
    }
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(&mb, 0, &m), HCC_ETIMEOUT);
    hcn_mailbox_fini(&mb);
}

static void take_all(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 2, 0);
    assert_null(hcn_mailbox_take_all(&mb));
    assert_int_equal(hcn_mailbox_push(&mb, req(1)), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, resp(2)), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, req(3)), HCC_EOK);
    hcn_msg *l = hcn_mailbox_take_all(&mb);
    uint64_t want = 1;
    for (hcn_msg *m = l; m;) {
        assert_int_equal(m->id, want++);
        hcn_msg *next = m->next;
        hcn_msg_unref(m);
        m = next;
    }
    assert_int_equal(want, 4);
    assert_int_equal(atomic_load(&mb.count), 0);
    assert_null(mb.head);
    assert_null(mb.tail);
    /* The request bound starts over. */
    assert_int_equal(hcn_mailbox_push(&mb, req(4)), HCC_EOK);
    assert_int_equal(hcn_mailbox_push(&mb, req(5)), HCC_EOK);
    hcn_msg *r = req(6);
    assert_int_equal(hcn_mailbox_push(&mb, r), HCC_EFULL);
    hcn_msg_unref(r);
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(&mb, 0, &m), HCC_EOK);
    assert_int_equal(m->id, 4);
    hcn_msg_unref(m);
    hcn_mailbox_fini(&mb); /* frees request 5 */
}

/* hcn_mailbox_set_notify: called after each push (ending false), close
 * and stop (ending true), with the message already there and the lock let
 * go (the function pops, which takes it); not after it is removed. */
typedef struct notes {
    hcn_mailbox *mb;
    int pushes, endings;
    uint64_t seen; /* the id the function popped */
} notes;

static void note(void *ctx, bool ending)
{
    notes *n = ctx;
    if (ending) {
        n->endings++;
        return;
    }
    n->pushes++;
    hcn_msg *m;
    assert_int_equal(hcn_mailbox_pop(n->mb, 0, &m), HCC_EOK);
    n->seen = m->id;
    hcn_msg_unref(m);
}

static void notify_after_push_close_and_stop(void **state)
{
    (void)state;
    hcn_mailbox mb;
    hcn_mailbox_init(&mb, 8, 0);
    notes n = {.mb = &mb};
    hcn_mailbox_set_notify(&mb, note, &n);
    assert_int_equal(hcn_mailbox_push(&mb, req(7)), HCC_EOK);
    assert_int_equal(n.pushes, 1);
    assert_int_equal(n.seen, 7);
    assert_int_equal(atomic_load(&mb.count), 0);
    hcn_mailbox_stop(&mb);
    assert_int_equal(n.endings, 1);
    hcn_mailbox_resume(&mb);
    hcn_mailbox_close(&mb);
    assert_int_equal(n.endings, 2);
    hcn_mailbox_reopen(&mb);
    hcn_mailbox_set_notify(&mb, NULL, NULL);
    assert_int_equal(hcn_mailbox_push(&mb, req(8)), HCC_EOK);
    hcn_mailbox_close(&mb);
    assert_int_equal(n.pushes, 1);
    assert_int_equal(n.endings, 2);
    assert_int_equal(atomic_load(&mb.count), 1);
    hcn_mailbox_fini(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fifo_order),
        cmocka_unit_test(pushes_are_numbered),
        cmocka_unit_test(request_bound),
        cmocka_unit_test(responses_do_not_free_request_slots),
        cmocka_unit_test(zero_bound_refuses_every_request),
        cmocka_unit_test(pop_deadline),
        cmocka_unit_test(close_wakes_blocked_pop),
        cmocka_unit_test(close_wakes_pop_with_deadline),
        cmocka_unit_test(push_wakes_blocked_pop),
        cmocka_unit_test(concurrent_senders_keep_per_sender_order),
        cmocka_unit_test(take_all),
        cmocka_unit_test(stop_keeps_messages_for_the_next_receiver),
        cmocka_unit_test(notify_after_push_close_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
