/* libFuzzer: the network's transport frame reader (src/node/net/frame.c),
 * which reads what other nodes send after the handshake.  The input is fed
 * as a byte stream in pieces whose sizes come from its first byte; a
 * second pass writes the input as proper frames (cut where its bytes say)
 * and reads them back, which must give the same bytes.  Nothing may read
 * out of bounds, leak, or loop. */
#include "node/net/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void key(hcnn_cipher *c)
{
    memset(c, 0, sizeof *c);
    memset(c->k, 7, sizeof c->k);
    c->has_key = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = (size_t)data[0] * 37 + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    /* 1: hostile bytes */
    hcnn_cipher rx;
    key(&rx);
    hcnn_reader r = {0};
    uint8_t *buf = malloc(n + 1);
    size_t have = 0, fed = 0;
    while (fed < n) {
        size_t k = n - fed < step ? n - fed : step;
        memcpy(buf + have, p + fed, k);
        have += k;
        fed += k;
        size_t used, len;
        uint8_t *msg;
        const char *why;
        int rc = hcnn_reader_step(&r, &rx, buf, have, &used, &msg, &len, &why);
        if (used > have)
            abort();
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc == 1)
            free(msg);
        if (rc < 0)
            break;
    }
    hcnn_reader_fini(&r);
    free(buf);
    /* 2: the input as a proper message, read back whole */
    if (n == 0)
        return 0;
    hcnn_cipher tx;
    key(&tx);
    key(&rx);
    size_t fs = hcnn_frame_size(n);
    uint8_t *f = malloc(fs);
    if (!hcnn_frame_write(&tx, p, n, f))
        abort();
    hcnn_reader r2 = {0};
    size_t at = 0, got = 0;
    while (at < fs) {
        size_t k = fs - at < step ? fs - at : step;
        /* the reader sees what came so far, from the last unread byte */
        size_t used, len;
        uint8_t *msg;
        const char *why;
        int rc = hcnn_reader_step(&r2, &rx, f + got, at + k - got, &used, &msg,
                                  &len, &why);
        if (rc < 0)
            abort();
        got += used;
        at += k;
        if (rc == 1) {
            if (len != n || memcmp(msg, p, n) != 0)
                abort();
            free(msg);
        }
    }
    hcnn_reader_fini(&r2);
    free(f);
    return 0;
}
