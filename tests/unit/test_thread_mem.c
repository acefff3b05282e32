/* What an idle process thread keeps: hcn_fault_thread_trim gives back the
 * stack pages below the caller's frame (and the stack still works after),
 * and hcn_thread_cache_off/on turn the calling thread's jemalloc cache off
 * and on (when the test runs on jemalloc). */
#include "unit_helpers.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#define UT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UT_ASAN 1
#endif
#endif

#define DEEP (96 * 1024)

/* Resident pages of the calling thread's stack. */
static size_t stack_resident(void)
{
    pthread_attr_t a;
    void *lo;
    size_t sz;
    if (pthread_getattr_np(pthread_self(), &a) != 0)
        return 0;
    pthread_attr_getstack(&a, &lo, &sz);
    pthread_attr_destroy(&a);
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t np = sz / pg;
    unsigned char *v = malloc(np);
    size_t r = 0;
    if (v != NULL && mincore(lo, sz, v) == 0)
        for (size_t i = 0; i < np; i++)
            r += v[i] & 1;
    free(v);
    return r * pg;
}

/* Touch DEEP bytes of stack below the caller; the sum of what it wrote. */
__attribute__((noinline)) static unsigned touch_deep(unsigned seed)
{
    volatile unsigned char buf[DEEP];
    for (size_t i = 0; i < sizeof buf; i += 512)
        buf[i] = (unsigned char)(seed + i);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof buf; i += 512)
        sum += buf[i];
    return sum;
}

static unsigned expected_sum(unsigned seed)
{
    unsigned sum = 0;
    for (size_t i = 0; i < DEEP; i += 512)
        sum += (unsigned char)(seed + i);
    return sum;
}

typedef struct {
    bool trimmed, trimmed_without_begin;
    size_t deep, after;
    unsigned sum_before, sum_after;
} trim_result;

static void *trim_thread(void *arg)
{
    trim_result *r = arg;
    r->trimmed_without_begin = hcn_fault_thread_trim();
    hcn_fault_thread_begin();
    r->sum_before = touch_deep(7);
    r->deep = stack_resident();
    r->trimmed = hcn_fault_thread_trim();
    r->after = stack_resident();
    r->sum_after = touch_deep(9); /* into the pages given back */
    hcn_fault_thread_end();
    return NULL;
}

static void trim_gives_back_deep_pages(void **state)
{
    (void)state;
    trim_result r = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, trim_thread, &r), 0);
    pthread_join(t, NULL);
    /* a thread hcn_fault_thread_begin did not set up: nothing done */
    assert_false(r.trimmed_without_begin);
    assert_int_equal(r.sum_before, expected_sum(7));
    assert_int_equal(r.sum_after, expected_sum(9));
#ifdef UT_ASAN
    assert_false(r.trimmed); /* its fake stacks: left alone */
#else
    assert_true(r.deep >= DEEP);
    assert_true(r.trimmed);
    /* what stays: the frames above the caller, the thread's TLS and
     * descriptor, a page of margin */
    assert_true(r.after + DEEP - 16 * 1024 <= r.deep);
    assert_true(r.after <= 32 * 1024);
#endif
}

static void main_thread_is_not_trimmed(void **state)
{
    (void)state;
    assert_false(hcn_fault_thread_trim());
}

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

typedef struct {
    mallctl_fn ctl;
    int rc_off, rc_on;
    bool off, on;
} cache_result;

static void *cache_thread(void *arg)
{
    cache_result *r = arg;
    size_t len = sizeof(bool);
    hcn_thread_cache_off();
    r->rc_off = r->ctl("thread.tcache.enabled", &r->off, &len, NULL, 0);
    free(malloc(100)); /* allocates without it */
    hcn_thread_cache_on();
    hcn_thread_cache_on(); /* again: nothing more */
    r->rc_on = r->ctl("thread.tcache.enabled", &r->on, &len, NULL, 0);
    free(malloc(100));
    return NULL;
}

static void thread_cache_off_then_on(void **state)
{
    (void)state;
    cache_result r = {0};
    *(void **)&r.ctl = dlsym(RTLD_DEFAULT, "mallctl");
    if (r.ctl == NULL) {
        /* not on jemalloc: both do nothing */
        hcn_thread_cache_off();
        hcn_thread_cache_on();
        skip();
    }
    r.off = true; /* each the opposite of what is expected */
    r.on = false;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cache_thread, &r), 0);
    pthread_join(t, NULL);
    assert_int_equal(r.rc_off, 0);
    assert_int_equal(r.rc_on, 0);
    assert_false(r.off);
    assert_true(r.on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trim_gives_back_deep_pages),
        cmocka_unit_test(main_thread_is_not_trimmed),
        cmocka_unit_test(thread_cache_off_then_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
