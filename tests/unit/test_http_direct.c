/* http-server:distro:sys's pushes written on their senders' threads
 * (ws_direct_push in src/node/http/server.c), driven step by step through
 * hcn_http_probe_*: a WebSocket on a loopback TCP socket whose client reads
 * only when told, so that the server's socket fills and a frame goes out
 * in part.  What the loop writes meanwhile (a pong, later pushes, a Close)
 * must come after that frame's end, every frame whole and in order. */
#include "unit_helpers.h"

#include "node/http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define APP "app:unit:sys"
#define APP_ADDR UT_NODE "@" APP
#define SERVER UT_NODE "@http-server:distro:sys"
#define PUSH_LEN 60000

typedef struct fixture {
    char *home;
    hc_node *node;
    hcn_proc *app;
    struct hcn_http *srv;
    int fd; /* the client's end */
    unsigned long channel;
    uint8_t *in; /* what the client has read, not yet parsed */
    size_t in_len;
} fixture;

static void action(fixture *f, const char *body, hcn_blob *blob)
{
    hcn_http_probe_msg(f->srv,
                       ut_req(1, APP_ADDR, SERVER, NULL, false, 0, body, blob));
}

/* Push number i: "push <i>" padded with '.' to PUSH_LEN bytes. */
static hcn_msg *push_msg(fixture *f, int i)
{
    uint8_t *b = malloc(PUSH_LEN);
    assert_non_null(b);
    memset(b, '.', PUSH_LEN);
    int l = snprintf((char *)b, 32, "push %d", i);
    b[l] = '.';
    hcn_blob *blob = hcn_blob_new(NULL, b, PUSH_LEN);
    free(b);
    char body[128];
    snprintf(body, sizeof body,
             "{\"WebSocketPush\":{\"channel_id\":%lu,\"message_type\":"
             "\"Text\"}}",
             f->channel);
    hcn_msg *m = ut_req(2, APP_ADDR, SERVER, NULL, false, 0, body, blob);
    hcn_blob_unref(blob);
    return m;
}

/* Everything the client can read now, kept in f->in. */
static void client_read(fixture *f)
{
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(f->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0)
            return;
        uint8_t *ni = realloc(f->in, f->in_len + (size_t)n);
        assert_non_null(ni);
        memcpy(ni + f->in_len, buf, (size_t)n);
        f->in = ni;
        f->in_len += (size_t)n;
    }
}

/* The next whole server frame (opcode, payload copied to *data), reading
 * and running the server's loop until it comes. */
static int next_frame(fixture *f, uint8_t **data, size_t *len)
{
    for (int round = 0; round < 2000; round++) {
        if (f->in_len >= 2) {
            const uint8_t *b = f->in;
            assert_int_equal(b[0] & 0x70, 0);    /* no reserved bit */
            assert_int_equal(b[0] & 0x80, 0x80); /* final */
            assert_int_equal(b[1] & 0x80, 0);    /* not masked */
            size_t n = b[1] & 0x7F, at = 2;
            bool have = true;
            if (n == 126) {
                have = f->in_len >= 4;
                n = have ? (size_t)b[2] << 8 | b[3] : 0;
                at = 4;
            } else if (n == 127) {
                have = f->in_len >= 10;
                n = 0;
                for (int i = 0; have && i < 8; i++)
                    n = n << 8 | b[2 + i];
                at = 10;
            }
            if (have && f->in_len >= at + n) {
                int op = b[0] & 0x0F;
                *data = malloc(n + 1);
                assert_non_null(*data);
                memcpy(*data, b + at, n);
                *len = n;
                memmove(f->in, f->in + at + n, f->in_len - at - n);
                f->in_len -= at + n;
                return op;
            }
        }
        hcn_http_probe_run(f->srv);
        client_read(f);
        if (round > 100)
            usleep(1000);
    }
    fail_msg("no whole frame from the server (%zu bytes waiting)", f->in_len);
    return -1;
}

static void expect_push(fixture *f, int i)
{
    uint8_t *d;
    size_t n;
    int op = next_frame(f, &d, &n);
    char want[32];
    int wl = snprintf(want, sizeof want, "push %d.", i);
    if (op != 1 || n != PUSH_LEN || memcmp(d, want, (size_t)wl) != 0)
        fail_msg("expected push %d, got opcode %d, %zu bytes '%.20s'", i, op, n,
                 (const char *)d);
    for (size_t k = (size_t)wl; k < n; k++)
        if (d[k] != '.')
            fail_msg("push %d: byte %zu is %u", i, k, d[k]);
    free(d);
}

static void expect_control(fixture *f, int opcode, const char *payload)
{
    uint8_t *d;
    size_t n;
    int op = next_frame(f, &d, &n);
    assert_int_equal(op, opcode);
    if (payload) {
        assert_int_equal(n, strlen(payload));
        assert_memory_equal(d, payload, n);
    }
    free(d);
}

/* A masked client frame. */
static void client_send(fixture *f, int opcode, const char *payload)
{
    size_t n = strlen(payload);
    uint8_t fr[2 + 4 + 125];
    assert_true(n <= 125);
    fr[0] = (uint8_t)(0x80 | opcode);
    fr[1] = (uint8_t)(0x80 | n);
    static const uint8_t mask[4] = {1, 2, 3, 4};
    memcpy(fr + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        fr[6 + i] = (uint8_t)payload[i] ^ mask[i % 4];
    assert_int_equal(send(f->fd, fr, 6 + n, MSG_NOSIGNAL), (ssize_t)(6 + n));
}

/* A loopback TCP connection: the server's end to the probe (a small send
 * buffer, so that it fills), the client's end kept (a small receive one). */
static void tcp_pair(fixture *f)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    f->fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16384;
    setsockopt(f->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    assert_int_equal(connect(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    int s = accept(l, NULL, NULL);
    assert_true(s >= 0);
    close(l);
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(hcn_http_probe_connect(f->srv, s, true), 0);
}

/* A node, a server, a WebSocket of APP open on /ws (f->channel). */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->home = ut_mkdtemp();
    f->node = ut_node_started(f->home, 64);
    f->app = ut_add_proc(f->node, APP, true);
    char err[256] = "";
    f->srv = hcn_http_probe_new((hcn_node *)f->node, err, sizeof err);
    if (f->srv == NULL)
        fail_msg("hcn_http_probe_new: %s", err);
    action(f,
           "{\"WebSocketBind\":{\"path\":\"/ws\",\"authenticated\":false,"
           "\"extension\":false}}",
           NULL);
    tcp_pair(f);
    static const char req[] = "GET /" APP "/ws HTTP/1.1\r\nHost: localhost\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n";
    assert_int_equal(send(f->fd, req, sizeof req - 1, MSG_NOSIGNAL),
                     (ssize_t)(sizeof req - 1));
    for (int i = 0; i < 2000 && f->channel == 0; i++) {
        hcn_http_probe_run(f->srv);
        hcn_msg *m;
        while (hcn_mailbox_pop(&f->app->mb, 0, &m) == HCC_EOK) {
            const char *c =
                m->body ? memmem(m->body, m->body_len, "\"channel_id\":", 13)
                        : NULL;
            if (c && memmem(m->body, m->body_len, "WebSocketOpen", 13))
                f->channel = strtoul(c + 13, NULL, 10);
            hcn_msg_unref(m);
        }
        if (f->channel == 0)
            usleep(1000);
    }
    assert_true(f->channel != 0);
    /* the 101 */
    char *end = NULL;
    for (int i = 0; i < 2000 && end == NULL; i++) {
        hcn_http_probe_run(f->srv);
        client_read(f);
        end = f->in ? memmem(f->in, f->in_len, "\r\n\r\n", 4) : NULL;
        if (end == NULL)
            usleep(1000);
    }
    assert_non_null(end);
    assert_memory_equal(f->in, "HTTP/1.1 101", 12);
    size_t hl = (size_t)(end + 4 - (char *)f->in);
    memmove(f->in, f->in + hl, f->in_len - hl);
    f->in_len -= hl;
    /* the gate opens once the 101 is through */
    for (int i = 0; i < 5; i++)
        hcn_http_probe_run(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->fd >= 0)
        close(f->fd);
    hcn_http_probe_free(f->srv);
    hcn_msg *m;
    while (hcn_mailbox_pop(&f->app->mb, 0, &m) == HCC_EOK)
        hcn_msg_unref(m);
    hcn_proc_unref(f->app);
    hc_node_shutdown(f->node);
    hc_node_free(f->node);
    ut_rm_rf(f->home);
    free(f->home);
    free(f->in);
    free(f);
    return 0;
}

/* Pushes on the sender's thread until one goes out in part: its number;
 * the pushes before it went out whole.  *begun is that push's message. */
static int fill(fixture *f, hcn_msg **begun)
{
    for (int i = 0; i < 20; i++) /* the last writes' callbacks */
        hcn_http_probe_run(f->srv);
    for (int i = 0; i < 200; i++) {
        hcn_msg *m = push_msg(f, i);
        int r = hcn_http_probe_deliver(f->srv, m);
        if (r == 1) {
            *begun = m;
            return i;
        }
        if (r != 0)
            fail_msg("push %d not written on the sender's thread (%d) before "
                     "the socket filled",
                     i, r);
    }
    fail_msg("the socket never filled");
    return -1;
}

/* A frame begun on the sender's thread is ended before anything the loop
 * writes: a pong it answers meanwhile, the pushes that come after (the
 * gate is closed), a Close; the begun push, handed to the loop, is not
 * written twice; the gate opens again once the socket is clear. */
static void frame_begun_is_ended_first(void **state)
{
    fixture *f = *state;
    hcn_msg *begun = NULL;
    int k = fill(f, &begun);
    /* the loop answers a ping before it takes the begun push */
    client_send(f, 0x9, "pp");
    for (int i = 0; i < 20; i++) {
        hcn_http_probe_run(f->srv);
        usleep(1000);
    }
    hcn_http_probe_msg(f->srv, begun);
    /* later pushes find the gate closed and go the loop's way */
    for (int i = k + 1; i < k + 4; i++) {
        hcn_msg *m = push_msg(f, i);
        assert_int_equal(hcn_http_probe_deliver(f->srv, m), -1);
        hcn_http_probe_msg(f->srv, m);
    }
    for (int i = 0; i <= k; i++)
        expect_push(f, i);
    expect_control(f, 0xA, "pp");
    for (int i = k + 1; i < k + 4; i++)
        expect_push(f, i);
    /* all through: the next push is written on the sender's thread
     * (whole, or begun if it is more than the socket takes) */
    for (int i = 0; i < 20; i++)
        hcn_http_probe_run(f->srv);
    hcn_msg *m = push_msg(f, k + 4);
    int r = hcn_http_probe_deliver(f->srv, m);
    assert_true(r == 0 || r == 1);
    if (r == 1)
        hcn_http_probe_msg(f->srv, m);
    expect_push(f, k + 4);
    /* a Close after a begun frame comes after its end */
    k = fill(f, &begun);
    hcn_http_probe_msg(f->srv, begun);
    char body[64];
    snprintf(body, sizeof body, "{\"WebSocketClose\":%lu}", f->channel);
    action(f, body, NULL);
    m = push_msg(f, k + 1);
    assert_int_equal(hcn_http_probe_deliver(f->srv, m), -1);
    hcn_msg_unref(m);
    for (int i = 0; i <= k; i++)
        expect_push(f, i);
    expect_control(f, 0x8, NULL);
    assert_int_equal(f->in_len, 0);
}

/* The client goes away while a frame's end waits: the connection closes,
 * the begun push then handed to the loop finds no channel (and nothing is
 * left allocated: the sanitizers' leak check). */
static void frame_begun_then_client_gone(void **state)
{
    fixture *f = *state;
    hcn_msg *begun = NULL;
    (void)fill(f, &begun);
    close(f->fd);
    f->fd = -1;
    size_t open = 1;
    for (int i = 0; i < 2000 && open > 0; i++) {
        open = hcn_http_probe_run(f->srv);
        if (open)
            usleep(1000);
    }
    assert_int_equal(open, 0);
    hcn_msg *m = push_msg(f, 1000);
    assert_int_equal(hcn_http_probe_deliver(f->srv, m), -1);
    hcn_msg_unref(m);
    hcn_http_probe_msg(f->srv, begun);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(frame_begun_is_ended_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(frame_begun_then_client_gone, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
