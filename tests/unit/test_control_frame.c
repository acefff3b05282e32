/* The control socket's frame codec (node/control/frame.c), shared by the
 * node and the hyperc command: a round trip, a frame over the limit refused
 * on both sides with a sentence saying so, a connection that closes early,
 * and a frame that is not JSON. */
#include "unit_helpers.h"

#include "node/control/frame.h"

#include <errno.h>
#include <jansson.h>
#include <sys/socket.h>

typedef struct pair {
    int w, r; /* the writing and the reading end */
} pair;

static int setup(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pair *p = malloc(sizeof *p);
    assert_non_null(p);
    p->w = sv[0];
    p->r = sv[1];
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pair *p = *state;
    if (p->w >= 0)
        close(p->w);
    close(p->r);
    free(p);
    return 0;
}

/* Send raw bytes, then close the writing end. */
static void send_and_close(pair *p, const void *bytes, size_t n)
{
    assert_int_equal(hcn_ctl_write_full(p->w, bytes, n), 0);
    close(p->w);
    p->w = -1;
}

static void assert_has(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("'%s' does not say '%s'", text, part);
}

static void round_trip(void **state)
{
    pair *p = *state;
    json_t *a = json_pack("{sssi}", "op", "ps", "n", 1);
    json_t *b = json_pack("[sb]", "caf\xc3\xa9", 1);
    char err[256];
    assert_int_equal(hcn_ctl_write_frame(p->w, a, err, sizeof err), HCN_CTL_OK);
    assert_int_equal(hcn_ctl_write_frame(p->w, b, err, sizeof err), HCN_CTL_OK);
    json_t *got;
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_OK);
    assert_true(json_equal(got, a));
    json_decref(got);
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_OK);
    assert_true(json_equal(got, b));
    json_decref(got);
    /* the header is 4 bytes big-endian, the body compact JSON */
    assert_int_equal(hcn_ctl_write_frame(p->w, a, err, sizeof err), HCN_CTL_OK);
    uint8_t raw[64];
    const char *body = "{\"op\":\"ps\",\"n\":1}";
    size_t len = strlen(body);
    assert_int_equal(hcn_ctl_read_full(p->r, raw, 4 + len), 0);
    assert_memory_equal(raw, ((uint8_t[]){0, 0, 0, (uint8_t)len}), 4);
    assert_memory_equal(raw + 4, body, len);
    /* the peer gone at a frame boundary */
    close(p->w);
    p->w = -1;
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_CLOSED);
    assert_null(got);
    assert_string_equal(err, "the connection closed");
    json_decref(a);
    json_decref(b);
}

static void over_the_limit_is_refused(void **state)
{
    pair *p = *state;
    char err[256];
    /* reading: a length one over the limit, refused before any body */
    uint32_t len = HCN_CTL_MAX_FRAME + 1;
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    assert_int_equal(hcn_ctl_write_full(p->w, hdr, 4), 0);
    json_t *got = json_true();
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_BAD);
    assert_null(got);
    assert_has(err, "a frame of 67108865 bytes is over the control "
                    "socket's limit of 67108864 bytes");
    /* writing: a value whose text is over the limit, nothing sent */
    size_t n = HCN_CTL_MAX_FRAME;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    json_t *j = json_pack("[s%]", big, n); /* with its quotes: n + 4 */
    free(big);
    assert_non_null(j);
    assert_int_equal(hcn_ctl_write_frame(p->w, j, err, sizeof err),
                     HCN_CTL_BAD);
    json_decref(j);
    assert_has(err, "a frame of 67108868 bytes is over the control "
                    "socket's limit");
    uint8_t b;
    assert_int_equal(recv(p->r, &b, 1, MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void a_short_read(void **state)
{
    pair *p = *state;
    char err[256];
    json_t *got;
    /* a body of 3 bytes where the length says 10 */
    send_and_close(p, "\0\0\0\x0a{\"a", 7);
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_CLOSED);
    assert_null(got);
    assert_string_equal(err,
                        "the connection closed within a frame (3 of 10 bytes)");
}

static void a_short_header(void **state)
{
    pair *p = *state;
    char err[256];
    json_t *got;
    send_and_close(p, "\0\0", 2);
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_CLOSED);
    assert_null(got);
    assert_has(err, "within a frame's length (2 of 4 bytes)");
}

static void not_json(void **state)
{
    pair *p = *state;
    char err[256];
    json_t *got;
    assert_int_equal(hcn_ctl_write_full(p->w, "\0\0\0\x04nope", 8), 0);
    assert_int_equal(hcn_ctl_read_frame(p->r, &got, err, sizeof err),
                     HCN_CTL_BAD);
    assert_null(got);
    assert_has(err, "a frame is not JSON: ");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(round_trip),   T(over_the_limit_is_refused),
        T(a_short_read), T(a_short_header),
        T(not_json),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
