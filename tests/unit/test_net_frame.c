/* The network's transport framing (src/node/net/frame.c): messages of every
 * size class (one chunk, exactly one chunk, two, a megabyte, the limit)
 * written and read back whole, fed all at once, byte by byte and in uneven
 * pieces; and what must end a connection: a length over the limit, an
 * empty message, a chunk longer than what is left of its message, one
 * shorter than a tag, an altered chunk, a replayed chunk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/net/frame.h"

#include <stdlib.h>
#include <string.h>

static void key_pair(hcnn_cipher *tx, hcnn_cipher *rx)
{
    memset(tx, 0, sizeof *tx);
    memset(tx->k, 0x42, sizeof tx->k);
    tx->has_key = true;
    *rx = *tx;
}

/* Feed buf in pieces of `step` bytes (0: all at once); the messages read
 * are compared with want (count of them, each of len). */
static void read_back(hcnn_cipher *rx, const uint8_t *buf, size_t n,
                      size_t step, const uint8_t *want, size_t len,
                      int count)
{
    hcnn_reader r = {0};
    uint8_t *pending = malloc(n + 1);
    size_t have = 0, fed = 0;
    int got = 0;
    while (fed < n || have > 0) {
        size_t k = step == 0 ? n - fed : (n - fed < step ? n - fed : step);
        memcpy(pending + have, buf + fed, k);
        have += k;
        fed += k;
        for (;;) {
            size_t used, mlen;
            uint8_t *msg;
            const char *why = NULL;
            int rc = hcnn_reader_step(&r, rx, pending, have, &used, &msg,
                                      &mlen, &why);
            assert_true(rc >= 0);
            memmove(pending, pending + used, have - used);
            have -= used;
            if (rc == 0)
                break;
            assert_int_equal(mlen, len);
            assert_memory_equal(msg, want, len);
            free(msg);
            got++;
        }
        if (k == 0)
            break;
    }
    assert_int_equal(got, count);
    assert_int_equal(have, 0);
    hcnn_reader_fini(&r);
    free(pending);
}

static void sizes(void **state)
{
    (void)state;
    static const size_t lens[] = {1, 100, 65519, 65520, 131038, 131039,
                                  1000000, HCNN_MESSAGE_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        uint8_t *p = malloc(n);
        for (size_t j = 0; j < n; j++)
            p[j] = (uint8_t)(j * 31 + i);
        size_t fs = hcnn_frame_size(n);
        uint8_t *f = malloc(2 * fs);
        hcnn_cipher tx, rx;
        key_pair(&tx, &rx);
        /* two messages back to back */
        assert_true(hcnn_frame_write(&tx, p, n, f));
        assert_true(hcnn_frame_write(&tx, p, n, f + fs));
        read_back(&rx, f, 2 * fs, 0, p, n, 2);
        if (n <= 131039) {
            key_pair(&tx, &rx);
            hcnn_frame_write(&tx, p, n, f);
            read_back(&rx, f, fs, 1, p, n, 1);
            key_pair(&tx, &rx);
            hcnn_frame_write(&tx, p, n, f);
            read_back(&rx, f, fs, 7919, p, n, 1);
        }
        free(f);
        free(p);
    }
    /* over the limit or empty: not written */
    hcnn_cipher tx, rx;
    key_pair(&tx, &rx);
    uint8_t b[64];
    assert_false(hcnn_frame_write(&tx, b, 0, b));
    assert_false(hcnn_frame_write(&tx, b, HCNN_MESSAGE_MAX + 1, b));
}

static int refuse(const uint8_t *p, size_t n, hcnn_cipher *rx,
                  const char *want)
{
    hcnn_reader r = {0};
    size_t used, len;
    uint8_t *msg;
    const char *why = NULL;
    int rc = hcnn_reader_step(&r, rx, p, n, &used, &msg, &len, &why);
    if (rc == 1)
        free(msg);
    if (want) {
        assert_int_equal(rc, -1);
        assert_non_null(strstr(why, want));
    }
    hcnn_reader_fini(&r);
    return rc;
}

static void refusals(void **state)
{
    (void)state;
    hcnn_cipher tx, rx;
    key_pair(&tx, &rx);
    static const uint8_t over[] = {0x00, 0xa0, 0x00, 0x29}; /* 10485801 */
    refuse(over, sizeof over, &rx, "over 10,485,800");
    static const uint8_t empty[] = {0, 0, 0, 0};
    refuse(empty, sizeof empty, &rx, "an empty message");
    /* a 5-byte message whose chunk claims 100 bytes */
    static const uint8_t past[] = {0, 0, 0, 5, 0, 100};
    refuse(past, sizeof past, &rx, "runs past its message");
    /* a chunk shorter than a tag */
    static const uint8_t tiny[] = {0, 0, 0, 5, 0, 15};
    refuse(tiny, sizeof tiny, &rx, "runs past its message");
    /* altered, then replayed */
    uint8_t f[64];
    assert_true(hcnn_frame_write(&tx, (const uint8_t *)"hello", 5, f));
    size_t fs = hcnn_frame_size(5);
    f[8] ^= 1;
    hcnn_cipher rx2 = rx;
    refuse(f, fs, &rx2, "fails authentication");
    f[8] ^= 1;
    rx2 = rx;
    assert_int_equal(refuse(f, fs, &rx2, NULL), 1);
    refuse(f, fs, &rx2, "fails authentication"); /* the same again */
    /* incomplete input asks for more and consumes only whole parts */
    hcnn_reader r = {0};
    size_t used, len;
    uint8_t *msg;
    const char *why;
    rx2 = rx;
    assert_int_equal(hcnn_reader_step(&r, &rx2, f, 3, &used, &msg, &len, &why),
                     0);
    assert_int_equal(used, 0);
    assert_int_equal(hcnn_reader_step(&r, &rx2, f, 7, &used, &msg, &len, &why),
                     0);
    assert_int_equal(used, 4);
    hcnn_reader_fini(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes),
        cmocka_unit_test(refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
