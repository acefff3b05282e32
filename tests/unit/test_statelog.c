/* The state module's redo log (src/node/modules/statelog.c) on its own:
 * records read back after a close without a drain (as after a kill), each
 * process's newest winning; a torn or damaged record ends its file's
 * replay, as does the zero-filled rest of a file or a record left from an
 * older generation; rotations and retires
 * while writer threads append lose no record; a record past the file's
 * mapped part is written with write(2) and read back the same; reads see the
 * newest record until it is retired; a log an earlier node wrote
 * (tests/vectors/statelog_v1.txt) replays. */
#include "unit_helpers.h"

#include "node/modules/statelog.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

typedef struct fx {
    char *home;
    char *base;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->base = hcn_xasprintf("%s/state.log", f->home);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ut_rm_rf(f->home);
    free(f->home);
    free(f->base);
    free(f);
    return 0;
}

/* Open, checking that the draining group read back holds exactly `want`
 * ("pid=value" for a set, "pid!" for a delete, any order, NULL-ended). */
static hcn_slog *open_expect(fx *f, const char *const *want)
{
    char err[256] = "";
    hcn_slog *l = hcn_slog_open(f->base, err, sizeof err);
    assert_non_null(l);
    const hcn_slog_rec *r;
    size_t n;
    hcn_slog_draining(l, &r, &n);
    size_t nwant = 0;
    while (want[nwant])
        nwant++;
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++) {
        char got[256];
        if (r[i].kind == HCN_SLOG_DEL)
            snprintf(got, sizeof got, "%s!", r[i].pid);
        else
            snprintf(got, sizeof got, "%s=%.*s", r[i].pid, (int)r[i].len,
                     (const char *)r[i].bytes);
        bool found = false;
        for (size_t k = 0; k < nwant; k++)
            found |= strcmp(got, want[k]) == 0;
        if (!found)
            fail_msg("read back %s, not expected", got);
    }
    return l;
}

static void put(hcn_slog *l, const char *pid, const char *v)
{
    assert_int_equal(hcn_slog_append(l, HCN_SLOG_SET, pid, v, strlen(v), NULL),
                     0);
}

static void assert_get(hcn_slog *l, const char *pid, const char *want)
{
    hcn_slog_kind kind;
    uint8_t *b;
    size_t len;
    if (want == NULL) {
        assert_false(hcn_slog_get(l, pid, &kind, &b, &len));
        return;
    }
    assert_true(hcn_slog_get(l, pid, &kind, &b, &len));
    if (strcmp(want, "!") == 0) {
        assert_int_equal(kind, HCN_SLOG_DEL);
    } else {
        assert_int_equal(kind, HCN_SLOG_SET);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(b, want, len);
    }
    free(b);
}

/* Records survive a close without a retire (what a kill leaves), newest
 * per process; after a retire nothing is read back; appending before the
 * first retire is refused. */
static void replay_newest(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_append(l, HCN_SLOG_SET, "a:p:q", "x", 1, NULL),
                     -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "a:p:q", "a1");
    put(l, "b:p:q", "b1");
    put(l, "a:p:q", "a2");
    put(l, "c:p:q", "c1");
    assert_int_equal(hcn_slog_append(l, HCN_SLOG_DEL, "c:p:q", NULL, 0, NULL),
                     0);
    put(l, "e:p:q", ""); /* an empty state */
    assert_get(l, "a:p:q", "a2");
    assert_get(l, "c:p:q", "!");
    assert_get(l, "e:p:q", "");
    assert_get(l, "z:p:q", NULL);
    hcn_slog_close(l);
    static const char *const want[] = {"a:p:q=a2", "b:p:q=b1", "c:p:q!",
                                       "e:p:q=", NULL};
    l = open_expect(f, want);
    assert_get(l, "a:p:q", "a2"); /* read back, not retired: visible */
    assert_int_equal(hcn_slog_retire(l), 0);
    assert_get(l, "a:p:q", NULL);
    hcn_slog_close(l);
    hcn_slog_close(open_expect(f, none));
}

static size_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/* A record cut short (a kill in the middle of its write) or with a byte
 * changed ends the replay of its file: the records before it are read
 * back, none after it. */
static void torn_tail(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    char *path = hcn_xasprintf("%s.0", f->base);
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "a:p:q", "first");
    put(l, "b:p:q", "second");
    put(l, "c:p:q", "third");
    hcn_slog_close(l);
    /* where the records end: the file header, then each record's header,
     * process id and value (the file is longer: allocated, zero-filled) */
    size_t two = 24 + (24 + 5 + 5) + (24 + 5 + 6);
    size_t three = two + 24 + 5 + 5;
    assert_true(file_size(path) >= three);
    /* torn: every length short of the whole third record */
    for (size_t cut = two + 1; cut < three; cut += 3) {
        assert_int_equal(truncate(path, (off_t)cut), 0);
        static const char *const want[] = {"a:p:q=first", "b:p:q=second", NULL};
        hcn_slog_close(open_expect(f, want));
    }
    /* damaged: one byte of the first record's value */
    l = open_expect(f,
                    (const char *const[]){"a:p:q=first", "b:p:q=second", NULL});
    hcn_slog_close(l);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "F", 1, 24 + 24 + 5), 1);
    close(fd);
    hcn_slog_close(open_expect(f, none));
    /* and the retire after a torn tail starts a clean file */
    l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "d:p:q", "fourth");
    hcn_slog_close(l);
    hcn_slog_close(open_expect(f, (const char *const[]){"d:p:q=fourth", NULL}));
    free(path);
}

/* A rotation moves the records to the draining group, later appends go
 * to the other file and win over it at the next open (a kill before the
 * retire); reads see pending first, then draining. */
static void rotation_order(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    assert_int_equal(hcn_slog_rotate(l), 0); /* nothing to drain */
    put(l, "a:p:q", "a1");
    put(l, "b:p:q", "b1");
    assert_int_equal(hcn_slog_rotate(l), 2);
    put(l, "a:p:q", "a2");
    assert_get(l, "a:p:q", "a2");
    assert_get(l, "b:p:q", "b1");
    /* not retired: a second rotate keeps the same group */
    assert_int_equal(hcn_slog_rotate(l), 2);
    hcn_slog_close(l);
    l = open_expect(f, (const char *const[]){"a:p:q=a2", "b:p:q=b1", NULL});
    assert_int_equal(hcn_slog_retire(l), 0);
    /* several rounds of rotate and retire, then a kill between them */
    for (int i = 0; i < 5; i++) {
        char v[16];
        snprintf(v, sizeof v, "c%d", i);
        put(l, "c:p:q", v);
        assert_int_equal(hcn_slog_rotate(l), 1);
        if (i < 4)
            assert_int_equal(hcn_slog_retire(l), 0);
    }
    put(l, "d:p:q", "d1");
    hcn_slog_close(l);
    hcn_slog_close(
        open_expect(f, (const char *const[]){"c:p:q=c4", "d:p:q=d1", NULL}));
}

/* A dropped file keeps its old records after its zeroed header; when it
 * becomes current again, the new generation's records overwrite the first
 * of them and the rest are not read back (their CRC is for an older
 * generation). */
static void stale_records_not_replayed(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "a:p:q", "a1"); /* file 0 */
    put(l, "b:p:q", "b1");
    put(l, "c:p:q", "c1");
    assert_int_equal(hcn_slog_rotate(l), 3); /* to file 1 */
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "x:p:q", "x1");
    assert_int_equal(hcn_slog_rotate(l), 1); /* back to file 0 */
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "a:p:q", "a2"); /* the same size as a1: b1 and c1 follow */
    hcn_slog_close(l);
    l = open_expect(f, (const char *const[]){"a:p:q=a2", NULL});
    assert_int_equal(hcn_slog_retire(l), 0);
    hcn_slog_close(l);
    hcn_slog_close(open_expect(f, none));
}

/* Records too big for what is left of the mapped part go to the file
 * with write(2), and the small ones after them too; all read back. */
static void past_the_mapping(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    size_t big = HCN_SLOG_MAP_BYTES - 1000;
    char *v = malloc(big);
    assert_non_null(v);
    memset(v, 'b', big);
    put(l, "s:p:q", "small");
    assert_int_equal(hcn_slog_append(l, HCN_SLOG_SET, "b:p:q", v, big, NULL),
                     0);
    assert_int_equal(hcn_slog_append(l, HCN_SLOG_SET, "c:p:q", v, 2000, NULL),
                     0); /* does not fit what is left */
    put(l, "s:p:q", "after");
    hcn_slog_close(l);
    char err[256];
    l = hcn_slog_open(f->base, err, sizeof err);
    assert_non_null(l);
    const hcn_slog_rec *r;
    size_t n;
    hcn_slog_draining(l, &r, &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(r[i].pid, "s:p:q") == 0) {
            assert_int_equal(r[i].len, 5);
            assert_memory_equal(r[i].bytes, "after", 5);
        } else {
            size_t want = strcmp(r[i].pid, "b:p:q") == 0 ? big : 2000;
            assert_int_equal(r[i].len, want);
            assert_memory_equal(r[i].bytes, v, want);
        }
    }
    hcn_slog_close(l);
    free(v);
}

#define WRITERS 4
#define PER_WRITER 3000

typedef struct writer {
    hcn_slog *l;
    char pid[32];
} writer;

static void *write_loop(void *arg)
{
    writer *w = arg;
    for (int i = 1; i <= PER_WRITER; i++) {
        char v[16];
        int n = snprintf(v, sizeof v, "%d", i);
        if (hcn_slog_append(w->l, HCN_SLOG_SET, w->pid, v, (size_t)n, NULL))
            return (void *)1;
    }
    return NULL;
}

/* Writers append while the test drains again and again (rotate, read the
 * group as a store would, retire): no process's drained value ever goes
 * back, and the store plus what a reopen reads back ends at each writer's
 * last record. */
static void rotation_while_appending(void **state)
{
    fx *f = *state;
    static const char *const none[] = {NULL};
    hcn_slog *l = open_expect(f, none);
    assert_int_equal(hcn_slog_retire(l), 0);
    writer w[WRITERS];
    pthread_t t[WRITERS];
    int stored[WRITERS] = {0};
    for (int i = 0; i < WRITERS; i++) {
        w[i].l = l;
        snprintf(w[i].pid, sizeof w[i].pid, "w%d:p:q", i);
        assert_int_equal(pthread_create(&t[i], NULL, write_loop, &w[i]), 0);
    }
    int drains = 0;
    bool done = false;
    while (!done) {
        done = true;
        for (int i = 0; i < WRITERS; i++)
            done &= stored[i] == PER_WRITER;
        int n = hcn_slog_rotate(l);
        assert_true(n >= 0);
        const hcn_slog_rec *r;
        size_t k;
        hcn_slog_draining(l, &r, &k);
        assert_int_equal(k, (size_t)n);
        for (size_t j = 0; j < k; j++) {
            int who = r[j].pid[1] - '0';
            char v[16];
            snprintf(v, sizeof v, "%.*s", (int)r[j].len,
                     (const char *)r[j].bytes);
            int val = atoi(v);
            assert_true(val > stored[who]); /* never back */
            stored[who] = val;
        }
        assert_int_equal(hcn_slog_retire(l), 0);
        drains++;
        if (drains == 50) /* enough: what came since stays in the log */
            break;
    }
    for (int i = 0; i < WRITERS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    for (int i = 0; i < WRITERS; i++)
        assert_get(l, w[i].pid, stored[i] == PER_WRITER ? NULL : "3000");
    hcn_slog_close(l);
    char err[256];
    l = hcn_slog_open(f->base, err, sizeof err);
    assert_non_null(l);
    const hcn_slog_rec *r;
    size_t k;
    hcn_slog_draining(l, &r, &k);
    for (size_t j = 0; j < k; j++) {
        int who = r[j].pid[1] - '0';
        char v[16];
        snprintf(v, sizeof v, "%.*s", (int)r[j].len, (const char *)r[j].bytes);
        assert_true(atoi(v) > stored[who]);
        stored[who] = atoi(v);
    }
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(stored[i], PER_WRITER);
    hcn_slog_close(l);
}

/* A log written by the node at 2031e0a (zlib's crc32; the vector file
 * says what it holds) is read back whole: the CRC the node computes now is
 * the same CRC-32, so a node upgraded over a log left by a kill loses no
 * acknowledged save. */
static void earlier_log_replays(void **state)
{
    fx *f = *state;
    FILE *v = fopen(HYPERC_STATELOG_VECTORS, "r");
    assert_non_null(v);
    char line[4096];
    const char *key, *val;
    int files = 0;
    while (ut_vector_line(v, line, sizeof line, &key, &val)) {
        assert_true(strcmp(key, "file0") == 0 || strcmp(key, "file1") == 0);
        uint8_t bytes[2048];
        size_t n = ut_unhex(val, bytes, sizeof bytes);
        assert_int_equal(n * 2, strlen(val));
        char *path = hcn_xasprintf("%s.%c", f->base, key[4]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, bytes, n), (ssize_t)n);
        close(fd);
        free(path);
        files++;
    }
    fclose(v);
    assert_int_equal(files, 2);
    static const char *const want[] = {
        "counter:counter:template.os="
        "{\"hyperc_state\":1,\"state\":{\"count\":42}}",
        "chat:chat:template.os="
        "{\"hyperc_state\":2,\"state\":{\"log\":[\"h\\u00e9llo\"]}}",
        "gone:gone:template.os!", "empty:empty:template.os=", NULL};
    hcn_slog *l = open_expect(f, want);
    assert_get(l, "counter:counter:template.os",
               "{\"hyperc_state\":1,\"state\":{\"count\":42}}");
    /* appending after the replay continues the generations */
    assert_int_equal(hcn_slog_retire(l), 0);
    put(l, "counter:counter:template.os", "43");
    hcn_slog_close(l);
    hcn_slog_close(open_expect(
        f, (const char *const[]){"counter:counter:template.os=43", NULL}));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(replay_newest),       T(torn_tail),
        T(rotation_order),      T(stale_records_not_replayed),
        T(past_the_mapping),    T(rotation_while_appending),
        T(earlier_log_replays),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
