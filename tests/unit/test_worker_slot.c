/* State slots (src/worker/slot.h): a value put by the worker is taken by
 * the node whole and once; the halves alternate; a value that does not
 * check (length, sequence number, CRC) is refused with a reason and never
 * read past the half; a value read while the worker writes is whole or
 * not taken; a file that is not a slot is not mapped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "worker/slot.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static int slot_fd(void)
{
    int fd = memfd_create("slot", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(hcw_slot_format(fd), 0);
    return fd;
}

static void put_then_take(void **state)
{
    (void)state;
    int fd = slot_fd();
    uint8_t *w = hcw_slot_map(fd), *n = hcw_slot_map(fd);
    assert_non_null(w);
    assert_non_null(n);
    uint8_t *v;
    size_t len;
    uint64_t seq;
    char why[160];
    /* nothing yet */
    assert_int_equal(hcw_slot_seq(w), 0);
    assert_int_equal(hcw_slot_take(n, 0, &v, &len, &seq, why, sizeof why), 0);
    assert_true(hcw_slot_put(w, 1, "one", 3));
    assert_true(hcw_slot_put(w, 2, "second", 6));
    assert_int_equal(hcw_slot_take(n, 0, &v, &len, &seq, why, sizeof why), 1);
    assert_int_equal(seq, 2);
    assert_int_equal(len, 6);
    assert_memory_equal(v, "second", 6);
    free(v);
    /* once taken (drained up to 2), nothing newer */
    hcw_slot_set_drained(n, 2);
    assert_int_equal(hcw_slot_drained(w), 2);
    assert_int_equal(
        hcw_slot_take(n, hcw_slot_drained(n), &v, &len, &seq, why, sizeof why),
        0);
    /* an empty value is a value */
    assert_true(hcw_slot_put(w, 3, NULL, 0));
    assert_int_equal(hcw_slot_take(n, 2, &v, &len, &seq, why, sizeof why), 1);
    assert_int_equal(seq, 3);
    assert_int_equal(len, 0);
    assert_null(v);
    /* the largest fits; one more byte does not, and writes nothing */
    uint8_t *big = malloc(HCW_SLOT_VALUE_MAX + 1);
    memset(big, 'x', HCW_SLOT_VALUE_MAX + 1);
    assert_false(hcw_slot_put(w, 4, big, HCW_SLOT_VALUE_MAX + 1));
    assert_int_equal(hcw_slot_seq(n), 3);
    assert_true(hcw_slot_put(w, 4, big, HCW_SLOT_VALUE_MAX));
    assert_int_equal(hcw_slot_take(n, 3, &v, &len, &seq, why, sizeof why), 1);
    assert_int_equal(len, HCW_SLOT_VALUE_MAX);
    assert_memory_equal(v, big, len);
    free(v);
    free(big);
    /* the node's count of stored saves by message */
    assert_int_equal(hcw_slot_starts(w), 0);
    hcw_slot_started(n);
    hcw_slot_started(n);
    assert_int_equal(hcw_slot_starts(w), 2);
    hcw_slot_unmap(w);
    hcw_slot_unmap(n);
    close(fd);
}

/* The published half as the worker could leave it: bad CRC, length,
 * sequence number; each refused with a reason, the others untouched. */
static void what_does_not_check_is_refused(void **state)
{
    (void)state;
    int fd = slot_fd();
    uint8_t *m = hcw_slot_map(fd);
    assert_non_null(m);
    uint8_t *v;
    size_t len;
    uint64_t seq;
    char why[160];
    uint8_t *half1 = m + HCW_SLOT_HEAD_BYTES + HCW_SLOT_HALF_BYTES;
    assert_true(hcw_slot_put(m, 1, "value", 5));
    half1[HCW_SLOT_HALF_HEAD] ^= 1; /* the value's first byte */
    assert_int_equal(hcw_slot_take(m, 0, &v, &len, &seq, why, sizeof why), -1);
    assert_non_null(strstr(why, "is not whole"));
    assert_null(v);
    assert_true(hcw_slot_put(m, 1, "value", 5)); /* whole again */
    assert_int_equal(hcw_slot_take(m, 0, &v, &len, &seq, why, sizeof why), 1);
    free(v);
    /* a length past the half */
    half1[8] = 0xff, half1[9] = 0xff, half1[10] = 0xff, half1[11] = 0x7f;
    assert_int_equal(hcw_slot_take(m, 0, &v, &len, &seq, why, sizeof why), -1);
    /* the half holds another sequence number than the header says */
    assert_true(hcw_slot_put(m, 3, "three", 5)); /* into half 1 */
    half1[0] = 5;
    assert_int_equal(hcw_slot_take(m, 2, &v, &len, &seq, why, sizeof why), -1);
    hcw_slot_unmap(m);
    close(fd);
}

/* A writer going on while the node reads: every value taken is one the
 * writer published whole (its length and bytes say which), never a mix of
 * two; a take that keeps meeting new values says so.  The writer runs in
 * bursts, so that reads both race it and find it still. */
typedef struct {
    uint8_t *map;
    atomic_bool stop;
    uint64_t last;
} race;

static size_t race_len(uint64_t seq)
{
    return 1 + (size_t)(seq * 7919 % 3000);
}

static void *race_writer(void *arg)
{
    race *r = arg;
    static uint8_t buf[3001];
    uint64_t seq = 0;
    while (!atomic_load(&r->stop)) {
        seq++;
        memset(buf, (int)(seq & 0xff), race_len(seq));
        hcw_slot_put(r->map, seq, buf, race_len(seq));
        if (seq % 64 >= 48)
            sched_yield();
    }
    r->last = seq;
    return NULL;
}

static void a_value_is_taken_whole_while_written(void **state)
{
    (void)state;
    int fd = slot_fd();
    race r = {.map = hcw_slot_map(fd)};
    uint8_t *n = hcw_slot_map(fd);
    assert_non_null(r.map);
    assert_non_null(n);
    atomic_init(&r.stop, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, race_writer, &r), 0);
    size_t taken = 0, moved = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        uint8_t *v;
        size_t len;
        uint64_t seq;
        char why[160];
        int got = hcw_slot_take(n, 0, &v, &len, &seq, why, sizeof why);
        if (got == 1) {
            taken++;
            assert_int_equal(len, race_len(seq));
            for (size_t i = 0; i < len; i++)
                if (v[i] != (uint8_t)(seq & 0xff))
                    fail_msg("value %llu: byte %zu is %u",
                             (unsigned long long)seq, i, v[i]);
            free(v);
        } else if (got < 0) {
            moved++;
            assert_non_null(strstr(why, "changed under every one"));
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - t0.tv_sec) * 1000000000L +
                 (now.tv_nsec - t0.tv_nsec) <
             300000000L);
    atomic_store(&r.stop, true);
    pthread_join(t, NULL);
    print_message("taken %zu, moved on %zu, written %llu\n", taken, moved,
                  (unsigned long long)r.last);
    assert_true(taken > 0);
    hcw_slot_unmap(r.map);
    hcw_slot_unmap(n);
    close(fd);
}

static void a_file_that_is_not_a_slot_is_not_mapped(void **state)
{
    (void)state;
    int fd = memfd_create("not", MFD_CLOEXEC);
    assert_true(fd >= 0);
    errno = 0;
    assert_null(hcw_slot_map(fd)); /* empty */
    assert_int_equal(errno, EINVAL);
    assert_int_equal(ftruncate(fd, HCW_SLOT_FILE_BYTES), 0);
    errno = 0;
    assert_null(hcw_slot_map(fd)); /* the size, but no magic */
    assert_int_equal(errno, EINVAL);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_then_take),
        cmocka_unit_test(what_does_not_check_is_refused),
        cmocka_unit_test(a_value_is_taken_whole_while_written),
        cmocka_unit_test(a_file_that_is_not_a_slot_is_not_mapped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
