/* The node's log file: every printout at every level, rotated at a size
 * cap with a bounded number of files. */
#include "unit_helpers.h"

#include <sys/stat.h>

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void log_rotates_and_stays_bounded(void **state)
{
    (void)state;
    char *home = ut_mkdtemp();
    hcn_log l;
    assert_int_equal(hcn_log_open(&l, home, 0, 2000, 3), 0);
    char line[128];
    for (int i = 0; i < 400; i++) {
        snprintf(line, sizeof line, "line %d of the rotation test", i);
        /* level 3 is never shown at level -1: the file gets it anyway */
        hcn_log_write(&l, "tester:pkg:pub", 3, -1, line);
    }
    hcn_log_close(&l);
    char *p0 = hcn_xasprintf("%s/log/node.log", home);
    char *p1 = hcn_xasprintf("%s/log/node.log.1", home);
    char *p2 = hcn_xasprintf("%s/log/node.log.2", home);
    char *p3 = hcn_xasprintf("%s/log/node.log.3", home);
    assert_true(file_size(p0) >= 0 && file_size(p0) < 2000);
    assert_true(file_size(p1) >= 2000 && file_size(p1) < 2200);
    assert_true(file_size(p2) >= 2000);
    assert_int_equal(file_size(p3), -1); /* only 3 files in all */
    char *last = hcn_read_file(file_size(p0) > 0 ? p0 : p1, NULL);
    assert_non_null(strstr(last, "line 399 of the rotation test"));
    assert_non_null(strstr(last, "[3] tester:pkg:pub:"));
    free(last);
    /* Reopening continues the current file and counts its size. */
    assert_int_equal(hcn_log_open(&l, home, 0, 2000, 3), 0);
    assert_int_equal((long)l.size, file_size(p0));
    hcn_log_close(&l);
    free(p0);
    free(p1);
    free(p2);
    free(p3);
    ut_rm_rf(home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(log_rotates_and_stays_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
