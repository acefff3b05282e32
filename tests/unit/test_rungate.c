/* The run gate: processes registered from a package do not run until the
 * node starts them, and messages sent to them before that are kept and
 * handled once they run (runtime.md §5).  Boots the tpkg test package. */
#include "unit_helpers.h"

#define PID_T "tester:tpkg:test.os"

static void queued_before_run_is_handled_after(void **state)
{
    (void)state;
    char *home = ut_mkdtemp();
    hc_node *n = ut_node_new(home, 64);
    char err[512] = "";
    if (hc_node_load_package(n, HYPERC_TEST_PACKAGES "/tpkg", err,
                             sizeof err) != 0)
        fail_msg("load: %s", err);
    hcn_proc *t = ut_add_proc(n, PID_T, true);
    hcn_proc *a = hcn_node_find(n, "a:tpkg:test.os");
    assert_non_null(a);
    assert_int_equal(atomic_load(&a->status), HCN_PROC_LOADED);

    char *src = ut_addr(PID_T), *dst = ut_addr("a:tpkg:test.os");
    hcn_route(n, ut_req(7, src, dst, src, true, 5, "echo early", NULL));
    /* Not running yet: the request waits in a's mailbox, unanswered. */
    assert_int_equal(atomic_load(&a->mb.count), 1);
    ut_assert_empty(t, 200);
    assert_int_equal(atomic_load(&a->status), HCN_PROC_LOADED);

    if (hc_node_start(n, err, sizeof err) != 0)
        fail_msg("start: %s", err);
    hcn_msg *r = ut_pop(t, 5000);
    assert_int_equal(r->kind, HCN_MSG_RESPONSE);
    assert_int_equal(r->id, 7);
    ut_assert_body(r, "early");
    assert_int_equal(atomic_load(&a->status), HCN_PROC_RUNNING);
    hcn_msg_unref(r);

    hc_node_shutdown(n);
    hcn_proc_unref(a);
    hcn_proc_unref(t);
    hc_node_free(n);
    free(src);
    free(dst);
    ut_rm_rf(home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(queued_before_run_is_handled_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
