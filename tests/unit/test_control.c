/* The control socket (control.c) of a started node: frames of a 4-byte
 * big-endian length and a JSON object; ops ps, verbosity and inject; bad
 * frames close the connection; inject's expects_response is honoured
 * without overflowing however large it is. */
#include "unit_helpers.h"

#include <jansson.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct fx {
    char *home;
    hc_node *n;
    int fd;
} fx;

static int client_connect(fx *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = hc_node_control_path(f->n);
    assert_non_null(path);
    assert_true(strlen(path) < sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->n = ut_node_started(f->home, 64);
    f->fd = client_connect(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->fd >= 0)
        close(f->fd);
    hc_node_shutdown(f->n);
    hc_node_free(f->n);
    ut_rm_rf(f->home);
    free(f->home);
    free(f);
    return 0;
}

static void send_raw(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static void send_frame(int fd, const char *json)
{
    size_t len = strlen(json);
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    send_raw(fd, hdr, 4);
    send_raw(fd, json, len);
}

/* Read exactly n bytes within ms; returns 0, or -1 on EOF/timeout. */
static int read_n(int fd, void *buf, size_t n, int ms)
{
    uint8_t *p = buf;
    int64_t deadline = ut_ms_from_now(ms);
    while (n) {
        int left = (int)((deadline - hcn_now_ns()) / 1000000);
        if (left <= 0)
            return -1;
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        if (poll(&pf, 1, left) <= 0)
            return -1;
        ssize_t r = recv(fd, p, n, 0);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The next reply as JSON; fails the test if none comes within ms. */
static json_t *reply(int fd, int ms)
{
    uint8_t hdr[4];
    if (read_n(fd, hdr, 4, ms) != 0)
        fail_msg("no reply frame within %d ms", ms);
    uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                   (uint32_t)hdr[2] << 8 | hdr[3];
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    assert_int_equal(read_n(fd, buf, len, ms), 0);
    json_error_t e;
    json_t *j = json_loadb(buf, len, 0, &e);
    free(buf);
    assert_true(json_is_object(j));
    assert_true(json_is_boolean(json_object_get(j, "ok")));
    return j;
}

static json_t *call(fx *f, const char *json, int ms)
{
    send_frame(f->fd, json);
    return reply(f->fd, ms);
}

static void assert_ok(json_t *j, bool ok)
{
    if (json_is_true(json_object_get(j, "ok")) != ok) {
        char *s = json_dumps(j, JSON_COMPACT);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", s);
        free(s);
        fail_msg("reply %s, expected ok=%d", msg, ok);
    }
}

static void assert_error_has(json_t *j, const char *frag)
{
    assert_ok(j, false);
    const char *e = json_string_value(json_object_get(j, "error"));
    assert_non_null(e);
    if (strstr(e, frag) == NULL)
        fail_msg("error '%s' lacks '%s'", e, frag);
}

static void ps_lists_modules(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "{\"op\": \"ps\"}", 5000);
    assert_ok(j, true);
    json_t *list = json_object_get(j, "processes");
    assert_true(json_is_array(list));
    bool state_seen = false, timer_public = false;
    size_t i;
    json_t *p;
    json_array_foreach(list, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        assert_non_null(id);
        assert_non_null(json_string_value(json_object_get(p, "status")));
        if (strcmp(id, "state:distro:sys") == 0)
            state_seen = true;
        if (strcmp(id, "timer:distro:sys") == 0)
            timer_public = json_is_true(json_object_get(p, "public"));
    }
    assert_true(state_seen);
    assert_true(timer_public);
    json_decref(j);
}

static void unknown_and_missing_ops(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "{\"op\": \"frobnicate\"}", 5000);
    assert_error_has(j, "frobnicate");
    json_decref(j);
    j = call(f, "{}", 5000);
    assert_error_has(j, "unknown op");
    json_decref(j);
    /* The connection stays usable. */
    j = call(f, "{\"op\": \"ps\"}", 5000);
    assert_ok(j, true);
    json_decref(j);
}

static void verbosity(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "{\"op\": \"verbosity\", \"level\": 2}", 5000);
    assert_ok(j, true);
    json_decref(j);
    assert_int_equal(f->n->log.level, 2);
    j = call(f, "{\"op\": \"verbosity\", \"level\": 0}", 5000);
    assert_ok(j, true);
    json_decref(j);
    assert_int_equal(f->n->log.level, 0);
    j = call(f, "{\"op\": \"verbosity\", \"level\": 4}", 5000);
    assert_ok(j, false);
    json_decref(j);
    j = call(f, "{\"op\": \"verbosity\", \"level\": \"1\"}", 5000);
    assert_ok(j, false);
    json_decref(j);
    j = call(f, "{\"op\": \"verbosity\", \"level\": -1}", 5000);
    assert_ok(j, false); /* the node's own level must be 0..3 */
    json_decref(j);
    j = call(f,
             "{\"op\": \"verbosity\", \"level\": 3, \"process\": "
             "\"timer:distro:sys\"}",
             5000);
    assert_ok(j, true);
    json_decref(j);
    hcn_proc *t = hcn_node_find(f->n, "timer:distro:sys");
    assert_int_equal(atomic_load(&t->verbosity), 3);
    hcn_proc_unref(t);
    j = call(f,
             "{\"op\": \"verbosity\", \"level\": 1, \"process\": "
             "\"nobody:x:y\"}",
             5000);
    assert_error_has(j, "nobody:x:y");
    json_decref(j);
}

static void inject_to_state(void **state)
{
    fx *f = *state;
    /* base64("hello") */
    json_t *j = call(f,
                     "{\"op\": \"inject\", \"process\": \"state:distro:sys\", "
                     "\"body\": \"{\\\"SetState\\\":\\\"a:b:c\\\"}\", "
                     "\"blob_b64\": \"aGVsbG8=\", \"expects_response\": 5}",
                     8000);
    assert_ok(j, true);
    assert_string_equal(json_string_value(json_object_get(j, "body")),
                        "\"SetState\"");
    assert_string_equal(json_string_value(json_object_get(j, "source")),
                        UT_NODE "@state:distro:sys");
    json_decref(j);
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"state:distro:sys\", "
             "\"node\": \"our\", \"body\": "
             "\"{\\\"GetState\\\":\\\"a:b:c\\\"}\", \"expects_response\": 5}",
             8000);
    assert_ok(j, true);
    json_t *blob = json_object_get(j, "blob");
    assert_true(json_is_object(blob));
    assert_string_equal(json_string_value(json_object_get(blob, "text")),
                        "hello");
    assert_string_equal(json_string_value(json_object_get(blob, "b64")),
                        "aGVsbG8=");
    assert_string_equal(json_string_value(json_object_get(blob, "mime")),
                        "application/octet-stream");
    json_decref(j);
}

static void inject_errors(void **state)
{
    fx *f = *state;
    json_t *j = call(f, "{\"op\": \"inject\"}", 5000);
    assert_error_has(j, "process");
    json_decref(j);
    j = call(f, "{\"op\": \"inject\", \"process\": \"Bad:x:y\"}", 5000);
    assert_error_has(j, "bad process id");
    json_decref(j);
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"a:b:c\", \"node\": "
             "\"Bad Node\"}",
             5000);
    assert_error_has(j, "bad node");
    json_decref(j);
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"a:b:c\", "
             "\"body_b64\": \"!!!\"}",
             5000);
    assert_error_has(j, "base64");
    json_decref(j);
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"a:b:c\", "
             "\"blob_b64\": \"abc\"}",
             5000);
    assert_error_has(j, "base64");
    json_decref(j);
    /* A missing target is named at once, not after the wait. */
    int64_t t0 = hcn_now_ns();
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"nobody:x:y\", "
             "\"body\": \"x\", \"expects_response\": 30}",
             5000);
    assert_error_has(j, "no process nobody:x:y on this node");
    json_decref(j);
    assert_true(hcn_now_ns() - t0 < 3000000000LL);
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"a:b:c\", \"node\": "
             "\"far.os\", \"expects_response\": 30}",
             5000);
    assert_error_has(j, "offline");
    json_decref(j);
    /* Fire and forget: sent. */
    j = call(f,
             "{\"op\": \"inject\", \"process\": \"nobody:x:y\", "
             "\"node\": \"far.os\"}",
             5000);
    assert_ok(j, true);
    assert_true(json_is_true(json_object_get(j, "sent")));
    json_decref(j);
}

static void bad_frames_close_the_connection(void **state)
{
    fx *f = *state;
    /* Not JSON. */
    send_frame(f->fd, "{nope");
    uint8_t b;
    assert_int_equal(read_n(f->fd, &b, 1, 3000), -1);
    close(f->fd);
    /* Longer than the 64 MiB limit. */
    f->fd = client_connect(f);
    uint8_t big[4] = {0x7f, 0xff, 0xff, 0xff};
    send_raw(f->fd, big, 4);
    assert_int_equal(read_n(f->fd, &b, 1, 3000), -1);
    close(f->fd);
    /* A JSON array is not an op: answered, not closed. */
    f->fd = client_connect(f);
    json_t *j = call(f, "[1, 2]", 5000);
    assert_ok(j, false);
    json_decref(j);
    /* Several clients at once. */
    int other = client_connect(f);
    send_frame(other, "{\"op\": \"ps\"}");
    send_frame(f->fd, "{\"op\": \"ps\"}");
    j = reply(other, 5000);
    assert_ok(j, true);
    json_decref(j);
    j = reply(f->fd, 5000);
    assert_ok(j, true);
    json_decref(j);
    close(other);
}

/* expects_response is seconds the injector waits.  Huge values must not
 * overflow (control.c: expects * 1000; modules/terminal.c: timeout_ms *
 * 1000000, both int64), which is undefined behaviour (UBSan aborts the
 * node).  The target is missing, so the answer is an immediate timeout. */
static void huge_expects_response(void **state)
{
    fx *f = *state;
    static const char *const frames[] = {
        "{\"op\": \"inject\", \"process\": \"nobody:x:y\", "
        "\"node\": \"elsewhere.os\", \"expects_response\": 10000000000}",
        "{\"op\": \"inject\", \"process\": \"nobody:x:y\", "
        "\"node\": \"elsewhere.os\", "
        "\"expects_response\": 9223372036854775807}",
    };
    /* (another node: the request goes out, and fails at once) */
    for (size_t i = 0; i < 2; i++) {
        int64_t t0 = hcn_now_ns();
        json_t *j = call(f, frames[i], 5000);
        assert_error_has(j, "offline");
        json_decref(j);
        assert_true(hcn_now_ns() - t0 < 3000000000LL);
    }
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(ps_lists_modules),
        T(unknown_and_missing_ops),
        T(verbosity),
        T(inject_to_state),
        T(inject_errors),
        T(bad_frames_close_the_connection),
        T(huge_expects_response), /* last: UBSan aborts here today */
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
