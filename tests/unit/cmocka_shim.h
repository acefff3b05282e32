/* A stand-in for the few cmocka macros test_coro.c uses, for
 * scripts/test-aarch64.sh, which cross-builds that test where no cmocka for
 * the target is installed.  Not for the normal build. */
#ifndef HYPERC_CMOCKA_SHIM_H
#define HYPERC_CMOCKA_SHIM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define shim_fail(...)                                                         \
    do {                                                                       \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                        \
        fprintf(stderr, __VA_ARGS__);                                          \
        fprintf(stderr, "\n");                                                 \
        exit(1);                                                               \
    } while (0)
#define fail_msg(...) shim_fail(__VA_ARGS__)
#define assert_true(c)                                                         \
    do {                                                                       \
        if (!(c))                                                              \
            shim_fail("%s is false", #c);                                      \
    } while (0)
#define assert_false(c) assert_true(!(c))
#define assert_int_equal(a, b)                                                 \
    do {                                                                       \
        intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                       \
        if (a_ != b_)                                                          \
            shim_fail("%jd != %jd (%s, %s)", a_, b_, #a, #b);                  \
    } while (0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_null(p) assert_true((p) == NULL)
#define assert_ptr_not_equal(a, b) assert_true((const void *)(a) != (b))

struct CMUnitTest {
    const char *name;
    void (*fn)(void **);
};
#define cmocka_unit_test(f) ((struct CMUnitTest){#f, f})
#define cmocka_run_group_tests(t, setup, teardown)                             \
    shim_run(t, sizeof(t) / sizeof((t)[0]))

static inline int shim_run(const struct CMUnitTest *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("[ RUN      ] %s\n", t[i].name);
        fflush(stdout);
        t[i].fn(NULL);
        printf("[       OK ] %s\n", t[i].name);
    }
    printf("[  PASSED  ] %zu test(s).\n", n);
    return 0;
}

#endif
