/* The network's WebSocket links (src/node/net/ws.c) and their chunk
 * framing (frame.c): the upgrade both ways against RFC 6455's published
 * key/accept pair, fed whole and byte by byte; refusals (no key, wrong
 * version, not GET, a wrong accept, a 404); frames both ways through a
 * client/server pair (the client masks); RFC 6455 §5.7's example frames;
 * a ping answered; what breaks a link (text, close, an unmasked client
 * frame, a message over the limit); transport messages of every size cut
 * into encrypted WebSocket chunks and read back; and each chunk refusal. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/net/frame.h"
#include "node/net/ws.h"

#include <stdlib.h>
#include <string.h>

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void sink(void *arg, const uint8_t *p, size_t n)
{
    buf *b = arg;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void buf_clear(buf *b)
{
    b->n = 0;
}

static const char RFC_KEY_REQ[] =
    "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
    "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

/* Feed a request to a server link in pieces of step bytes (0: whole). */
static int serve(hcnn_ws *w, const char *req, size_t step, buf *out,
                 const char **why)
{
    size_t n = strlen(req), at = 0;
    int rc = 0;
    while (at < n && rc == 0) {
        size_t k = step == 0 || n - at < step ? n - at : step;
        size_t used;
        rc = hcnn_ws_upgrade(w, (const uint8_t *)req + at, k, &used, sink, out,
                             why);
        if (rc == 0)
            assert_int_equal(used, k);
        at += k;
    }
    return rc;
}

static void server_upgrade(void **state)
{
    (void)state;
    for (size_t step = 0; step < 3; step++) {
        hcnn_ws *w = hcnn_ws_new(false);
        buf out = {0};
        const char *why = NULL;
        assert_int_equal(serve(w, RFC_KEY_REQ, step, &out, &why), 1);
        sink(&out, (const uint8_t *)"", 1);
        assert_non_null(strstr((char *)out.p, "HTTP/1.1 101 "));
        /* RFC 6455 1.3's example answer */
        assert_non_null(strstr((char *)out.p, "Sec-WebSocket-Accept: "
                                              "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        free(out.p);
        hcnn_ws_free(w);
    }
    static const struct {
        const char *req, *why;
    } bad[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a WebSocket upgrade"},
        {"POST / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
         "not a WebSocket upgrade"},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         "without version 13 or a key"},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 8\r\n\r\n",
         "without version 13 or a key"},
        {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
         "without version 13 or a key"},
        {"\x16\x03\x01\x02\x00 not http", "not HTTP/1.1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hcnn_ws *w = hcnn_ws_new(false);
        buf out = {0};
        const char *why = NULL;
        assert_int_equal(serve(w, bad[i].req, 0, &out, &why), -1);
        assert_non_null(strstr(why, bad[i].why));
        assert_true(out.n > 12 && memcmp(out.p, "HTTP/1.1 400", 12) == 0);
        free(out.p);
        hcnn_ws_free(w);
    }
    /* headers that never end */
    hcnn_ws *w = hcnn_ws_new(false);
    buf out = {0};
    const char *why = NULL;
    int rc = serve(w, "GET / HTTP/1.1\r\n", 0, &out, &why);
    char line[100];
    memset(line, 'a', sizeof line);
    memcpy(line + 90, ": b\r\n\0", 6);
    for (int i = 0; i < 200 && rc == 0; i++)
        rc = serve(w, line, 0, &out, &why);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(why, "over 8 KiB"));
    free(out.p);
    hcnn_ws_free(w);
}

/* A client and a server link, upgraded through each other. */
static void pair(hcnn_ws **c, hcnn_ws **s)
{
    *c = hcnn_ws_new(true);
    *s = hcnn_ws_new(false);
    buf req = {0}, rep = {0};
    hcnn_ws_request(*c, "127.0.0.1", 8080, sink, &req);
    size_t used;
    const char *why = NULL;
    assert_int_equal(hcnn_ws_upgrade(*s, req.p, req.n, &used, sink, &rep, &why),
                     1);
    assert_int_equal(used, req.n);
    /* the answer byte by byte */
    int rc = 0;
    for (size_t i = 0; i < rep.n; i++) {
        rc = hcnn_ws_upgrade(*c, rep.p + i, 1, &used, sink, &rep, &why);
        if (rc != 0) {
            assert_int_equal(i, rep.n - 1);
            break;
        }
    }
    assert_int_equal(rc, 1);
    free(req.p);
    free(rep.p);
}

static void client_refusals(void **state)
{
    (void)state;
    static const char *answers[] = {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: "
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", /* another key's */
    };
    for (size_t i = 0; i < 2; i++) {
        hcnn_ws *c = hcnn_ws_new(true);
        buf req = {0};
        hcnn_ws_request(c, "::1", 9, sink, &req);
        sink(&req, (const uint8_t *)"", 1);
        assert_non_null(strstr((char *)req.p, "Host: [::1]:9\r\n"));
        size_t used;
        const char *why = NULL;
        assert_int_equal(hcnn_ws_upgrade(c, (const uint8_t *)answers[i],
                                         strlen(answers[i]), &used, sink, &req,
                                         &why),
                         -1);
        assert_non_null(why);
        free(req.p);
        hcnn_ws_free(c);
    }
}

static void frames_both_ways(void **state)
{
    (void)state;
    hcnn_ws *c, *s;
    pair(&c, &s);
    buf wire = {0};
    static const size_t sizes[] = {1, 125, 126, 65535, 65536, HCNN_WS_MSG_MAX};
    uint8_t *data = malloc(HCNN_WS_MSG_MAX);
    for (size_t i = 0; i < HCNN_WS_MSG_MAX; i++)
        data[i] = (uint8_t)(i * 7);
    for (int dir = 0; dir < 2; dir++) {
        hcnn_ws *from = dir ? s : c, *to = dir ? c : s;
        buf_clear(&wire);
        for (size_t i = 0; i < 6; i++)
            hcnn_ws_send(from, data, sizes[i]);
        assert_true(hcnn_ws_flush(from, sink, &wire));
        /* client frames are masked: the payload is not on the wire as is */
        if (dir == 0)
            assert_null(memmem(wire.p, wire.n, data + 1000, 64));
        const char *why = NULL;
        for (size_t at = 0; at < wire.n; at += 4093) {
            size_t k = wire.n - at < 4093 ? wire.n - at : 4093;
            assert_int_equal(hcnn_ws_recv(to, wire.p + at, k, &why), 0);
        }
        for (size_t i = 0; i < 6; i++) {
            uint8_t *m;
            size_t n;
            assert_true(hcnn_ws_next(to, &m, &n));
            assert_int_equal(n, sizes[i]);
            assert_memory_equal(m, data, n);
            free(m);
        }
        uint8_t *m;
        size_t n;
        assert_false(hcnn_ws_next(to, &m, &n));
    }
    /* an empty message (wslay hands it over with no buffer) */
    buf_clear(&wire);
    hcnn_ws_send(c, data, 0);
    assert_true(hcnn_ws_flush(c, sink, &wire));
    {
        const char *why0 = NULL;
        uint8_t *m0;
        size_t n0 = 1;
        assert_int_equal(hcnn_ws_recv(s, wire.p, wire.n, &why0), 0);
        assert_true(hcnn_ws_next(s, &m0, &n0));
        assert_int_equal(n0, 0);
        free(m0);
    }
    /* a ping is answered with a pong at the next flush */
    buf_clear(&wire);
    hcnn_ws_ping(s);
    assert_true(hcnn_ws_flush(s, sink, &wire));
    const char *why = NULL;
    assert_int_equal(hcnn_ws_recv(c, wire.p, wire.n, &why), 0);
    buf_clear(&wire);
    assert_true(hcnn_ws_flush(c, sink, &wire));
    assert_true(wire.n >= 2);
    assert_int_equal(wire.p[0], 0x8a); /* FIN + pong */
    assert_int_equal(hcnn_ws_recv(s, wire.p, wire.n, &why), 0);
    free(data);
    free(wire.p);
    hcnn_ws_free(c);
    hcnn_ws_free(s);
}

static void rfc_examples_and_breaks(void **state)
{
    (void)state;
    hcnn_ws *c, *s;
    const char *why = NULL;
    /* RFC 6455 5.7: a 256-byte binary message in one unmasked frame, as a
     * server sends it */
    pair(&c, &s);
    uint8_t f[4 + 256] = {0x82, 0x7e, 0x01, 0x00};
    for (int i = 0; i < 256; i++)
        f[4 + i] = (uint8_t)i;
    assert_int_equal(hcnn_ws_recv(c, f, sizeof f, &why), 0);
    uint8_t *m;
    size_t n;
    assert_true(hcnn_ws_next(c, &m, &n));
    assert_int_equal(n, 256);
    assert_memory_equal(m, f + 4, 256);
    free(m);
    /* 5.7: an unmasked ping "Hello" to the client: a pong comes back */
    static const uint8_t ping[] = {0x89, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_int_equal(hcnn_ws_recv(c, ping, sizeof ping, &why), 0);
    buf wire = {0};
    assert_true(hcnn_ws_flush(c, sink, &wire));
    assert_int_equal(wire.p[0], 0x8a);
    assert_int_equal(wire.p[1], 0x85); /* masked, 5 bytes */
    /* 5.7: a masked text "Hello" from a client: text breaks the link */
    static const uint8_t text[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                   0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(hcnn_ws_recv(s, text, sizeof text, &why), -1);
    assert_non_null(strstr(why, "a text frame"));
    hcnn_ws_free(c);
    hcnn_ws_free(s);
    /* an unmasked frame from a client */
    pair(&c, &s);
    static const uint8_t unmasked[] = {0x82, 0x02, 1, 2};
    assert_int_equal(hcnn_ws_recv(s, unmasked, sizeof unmasked, &why), -1);
    hcnn_ws_free(c);
    hcnn_ws_free(s);
    /* a close frame */
    pair(&c, &s);
    static const uint8_t close[] = {0x88, 0x80, 1, 2, 3, 4};
    assert_int_equal(hcnn_ws_recv(s, close, sizeof close, &why), -1);
    assert_non_null(strstr(why, "closed"));
    hcnn_ws_free(c);
    hcnn_ws_free(s);
    /* a message one byte over the limit */
    pair(&c, &s);
    uint8_t *big = calloc(1, HCNN_WS_MSG_MAX + 1);
    hcnn_ws_send(c, big, HCNN_WS_MSG_MAX + 1);
    buf_clear(&wire);
    assert_true(hcnn_ws_flush(c, sink, &wire));
    assert_int_equal(hcnn_ws_recv(s, wire.p, wire.n, &why), -1);
    free(big);
    free(wire.p);
    hcnn_ws_free(c);
    hcnn_ws_free(s);
}

static void key_pair(hcnn_cipher *tx, hcnn_cipher *rx)
{
    memset(tx, 0, sizeof *tx);
    memset(tx->k, 0x24, sizeof tx->k);
    tx->has_key = true;
    *rx = *tx;
}

typedef struct chunks {
    uint8_t *p[200];
    size_t n[200];
    size_t count;
} chunks;

static void chunk_sink(void *arg, const uint8_t *ct, size_t len)
{
    chunks *c = arg;
    assert_true(c->count < 200);
    c->p[c->count] = malloc(len);
    memcpy(c->p[c->count], ct, len);
    c->n[c->count++] = len;
}

static void chunks_free(chunks *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->p[i]);
    c->count = 0;
}

static void transport_chunks(void **state)
{
    (void)state;
    /* 65515 + 4 fills one chunk exactly; 65516 needs two */
    static const size_t sizes[] = {1, 65515, 65516, 1000000, HCNN_MESSAGE_MAX};
    uint8_t *data = malloc(HCNN_MESSAGE_MAX);
    for (size_t i = 0; i < HCNN_MESSAGE_MAX; i++)
        data[i] = (uint8_t)(i * 13 + 1);
    for (size_t i = 0; i < 5; i++) {
        hcnn_cipher tx, rx;
        key_pair(&tx, &rx);
        chunks ch = {.count = 0};
        assert_true(hcnn_frame_write_ws(&tx, data, sizes[i], chunk_sink, &ch));
        assert_int_equal(ch.count, (sizes[i] + 4 + 65518) / 65519);
        hcnn_reader r = {0};
        for (size_t k = 0; k < ch.count; k++) {
            assert_true(ch.n[k] <= HCNN_WS_MSG_MAX);
            uint8_t *msg;
            size_t len;
            const char *why = NULL;
            int rc =
                hcnn_reader_ws(&r, &rx, ch.p[k], ch.n[k], &msg, &len, &why);
            assert_int_equal(rc, k + 1 == ch.count ? 1 : 0);
            if (rc == 1) {
                assert_int_equal(len, sizes[i]);
                assert_memory_equal(msg, data, len);
                free(msg);
            }
        }
        hcnn_reader_fini(&r);
        chunks_free(&ch);
    }
    hcnn_cipher tx, rx;
    key_pair(&tx, &rx);
    assert_false(hcnn_frame_write_ws(&tx, data, 0, chunk_sink, NULL));
    assert_false(
        hcnn_frame_write_ws(&tx, data, HCNN_MESSAGE_MAX + 1, chunk_sink, NULL));
    free(data);
}

static int refuse_ws(hcnn_cipher *rx, const uint8_t *pt, size_t n,
                     const char *want)
{
    hcnn_cipher tx = *rx;
    uint8_t ct[70000];
    if (n > 0)
        assert_int_equal(hcnn_cipher_encrypt(&tx, NULL, 0, pt, n, ct), HCNN_OK);
    hcnn_reader r = {0};
    uint8_t *msg;
    size_t len;
    const char *why = NULL;
    int rc = hcnn_reader_ws(&r, rx, ct, n + 16, &msg, &len, &why);
    if (rc == 1)
        free(msg);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(why, want));
    hcnn_reader_fini(&r);
    return rc;
}

static void chunk_refusals(void **state)
{
    (void)state;
    hcnn_cipher tx, rx;
    key_pair(&tx, &rx);
    static const uint8_t three[] = {0, 0, 1};
    refuse_ws(&rx, three, 3, "shorter than its length prefix");
    key_pair(&tx, &rx);
    static const uint8_t over[] = {0x00, 0xa0, 0x00, 0x29};
    refuse_ws(&rx, over, 4, "over 10,485,800");
    key_pair(&tx, &rx);
    static const uint8_t empty[] = {0, 0, 0, 0};
    refuse_ws(&rx, empty, 4, "an empty message");
    key_pair(&tx, &rx);
    static const uint8_t past[] = {0, 0, 0, 1, 'a', 'b'};
    refuse_ws(&rx, past, 6, "runs past its message");
    /* shorter than a tag; longer than one chunk */
    hcnn_reader r = {0};
    uint8_t *msg, junk[70000] = {0};
    size_t len;
    const char *why = NULL;
    assert_int_equal(hcnn_reader_ws(&r, &rx, junk, 15, &msg, &len, &why), -1);
    assert_int_equal(
        hcnn_reader_ws(&r, &rx, junk, HCNN_WS_MSG_MAX + 1, &msg, &len, &why),
        -1);
    /* an altered chunk, then a replayed one */
    key_pair(&tx, &rx);
    chunks ch = {.count = 0};
    assert_true(
        hcnn_frame_write_ws(&tx, (const uint8_t *)"hello", 5, chunk_sink, &ch));
    ch.p[0][3] ^= 1;
    hcnn_cipher rx2 = rx;
    assert_int_equal(
        hcnn_reader_ws(&r, &rx2, ch.p[0], ch.n[0], &msg, &len, &why), -1);
    assert_non_null(strstr(why, "fails authentication"));
    ch.p[0][3] ^= 1;
    assert_int_equal(
        hcnn_reader_ws(&r, &rx2, ch.p[0], ch.n[0], &msg, &len, &why), 1);
    free(msg);
    assert_int_equal(
        hcnn_reader_ws(&r, &rx2, ch.p[0], ch.n[0], &msg, &len, &why), -1);
    chunks_free(&ch);
    hcnn_reader_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(server_upgrade),
        cmocka_unit_test(client_refusals),
        cmocka_unit_test(frames_both_ways),
        cmocka_unit_test(rfc_examples_and_breaks),
        cmocka_unit_test(transport_chunks),
        cmocka_unit_test(chunk_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
