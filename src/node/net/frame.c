/* Hyperware's TCP transport framing (frame.h). */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK HCNN_MAX_PAYLOAD

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* A message begins: its big-endian u32 length at p.  NULL, or why the
 * stream is broken. */
static const char *begin(hcnn_reader *r, const uint8_t *p)
{
    size_t l = get_be(p, 4);
    if (l > HCNN_MESSAGE_MAX)
        return "a message length over 10,485,800 bytes";
    if (l == 0)
        return "an empty message";
    uint8_t *m = malloc(l);
    if (m == NULL)
        return "no memory for a message";
    free(r->msg);
    r->msg = m;
    r->msg_len = l;
    r->msg_got = 0;
    r->have_len = true;
    return NULL;
}

/* 1 with the message handed over when it is whole, else 0. */
static int finish(hcnn_reader *r, uint8_t **msg, size_t *len)
{
    if (r->msg_got < r->msg_len)
        return 0;
    *msg = r->msg;
    *len = r->msg_len;
    r->msg = NULL;
    r->have_len = false;
    r->msg_len = r->msg_got = 0;
    return 1;
}

int hcnn_reader_step(hcnn_reader *r, hcnn_cipher *rx, const uint8_t *p,
                     size_t n, size_t *used, uint8_t **msg, size_t *len,
                     const char **why)
{
    size_t at = 0;
    *used = 0;
    if (!r->have_len) {
        if (n < 4)
            return 0;
        if ((*why = begin(r, p)) != NULL)
            return -1;
        at = 4;
    }
    while (r->msg_got < r->msg_len) {
        if (n - at < 2)
            break;
        size_t ct = get_be(p + at, 2);
        if (ct < HCNN_TAG || ct - HCNN_TAG > r->msg_len - r->msg_got) {
            *used = at;
            *why = "a chunk that runs past its message";
            return -1;
        }
        if (n - at < 2 + ct)
            break;
        if (hcnn_cipher_decrypt(rx, NULL, 0, p + at + 2, ct,
                                r->msg + r->msg_got) != HCNN_OK) {
            *used = at;
            *why = "a chunk that fails authentication (replayed, altered or "
                   "out of order)";
            return -1;
        }
        r->msg_got += ct - HCNN_TAG;
        at += 2 + ct;
    }
    *used = at;
    return finish(r, msg, len);
}

void hcnn_reader_fini(hcnn_reader *r)
{
    free(r->msg);
    memset(r, 0, sizeof *r);
}

size_t hcnn_frame_size(size_t n)
{
    size_t chunks = (n + CHUNK - 1) / CHUNK;
    return 4 + n + chunks * (2 + HCNN_TAG);
}

bool hcnn_frame_write(hcnn_cipher *tx, const uint8_t *p, size_t n, uint8_t *out)
{
    if (n == 0 || n > HCNN_MESSAGE_MAX)
        return false;
    put_be(out, n, 4);
    size_t o = 4;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t k = n - at < CHUNK ? n - at : CHUNK;
        put_be(out + o, k + HCNN_TAG, 2);
        if (hcnn_cipher_encrypt(tx, NULL, 0, p + at, k, out + o + 2) != HCNN_OK)
            return false;
        o += 2 + k + HCNN_TAG;
    }
    return true;
}

int hcnn_reader_ws(hcnn_reader *r, hcnn_cipher *rx, const uint8_t *ct, size_t n,
                   uint8_t **msg, size_t *len, const char **why)
{
    if (n < HCNN_TAG || n - HCNN_TAG > HCNN_MAX_MSG) {
        /* hyperdrive decrypts into 65,535 bytes: no frame is longer */
        *why = "a WebSocket frame that is not one encrypted chunk";
        return -1;
    }
    uint8_t *pt = malloc(n - HCNN_TAG + 1);
    if (pt == NULL) {
        *why = "no memory for a frame";
        return -1;
    }
    if (hcnn_cipher_decrypt(rx, NULL, 0, ct, n, pt) != HCNN_OK) {
        free(pt);
        *why = "a chunk that fails authentication (replayed, altered or out "
               "of order)";
        return -1;
    }
    size_t k = n - HCNN_TAG, at = 0;
    if (!r->have_len) {
        *why = k < 4 ? "a first chunk shorter than its length prefix"
                     : begin(r, pt);
        if (*why) {
            free(pt);
            return -1;
        }
        at = 4;
    }
    if (k - at > r->msg_len - r->msg_got) {
        free(pt);
        *why = "a chunk that runs past its message";
        return -1;
    }
    memcpy(r->msg + r->msg_got, pt + at, k - at);
    r->msg_got += k - at;
    free(pt);
    return finish(r, msg, len);
}

bool hcnn_frame_write_ws(hcnn_cipher *tx, const uint8_t *p, size_t n,
                         void (*sink)(void *arg, const uint8_t *ct, size_t len),
                         void *arg)
{
    if (n == 0 || n > HCNN_MESSAGE_MAX)
        return false;
    uint8_t *pt = malloc(CHUNK), *ct = malloc(CHUNK + HCNN_TAG);
    bool ok = pt && ct;
    /* the plaintext stream is the u32 length, then the message */
    size_t total = 4 + n;
    for (size_t at = 0; ok && at < total; at += CHUNK) {
        size_t k = total - at < CHUNK ? total - at : CHUNK;
        if (at == 0) {
            put_be(pt, n, 4);
            memcpy(pt + 4, p, k - 4);
        } else {
            memcpy(pt, p + at - 4, k);
        }
        ok = hcnn_cipher_encrypt(tx, NULL, 0, pt, k, ct) == HCNN_OK;
        if (ok)
            sink(arg, ct, k + HCNN_TAG);
    }
    free(pt);
    free(ct);
    return ok;
}
