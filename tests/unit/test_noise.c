/* The Noise XX state machine (src/node/net/noise.c) against published test
 * vectors (tests/vectors/noise_xx_25519_chachapoly_blake2s.txt, four
 * blocks: with and without payloads and prologue): every handshake message
 * written byte for byte as the vector says and read back by the other side,
 * then the transport messages with the split ciphers.  Then what must fail:
 * an altered message, messages out of order, a short message, a peer key of
 * small order, nonces, and a handshake of two fresh sides agreeing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/net/noise.h"
#include "unit_helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ vectors */

#define MAX_MSGS 8
#define MAX_HEX 4096

typedef struct vec {
    uint8_t init_static[32], resp_static[32], init_e[32], resp_e[32];
    uint8_t prologue[64];
    size_t prologue_len;
    uint8_t payload[MAX_MSGS][MAX_HEX / 2], ct[MAX_MSGS][MAX_HEX / 2];
    size_t payload_len[MAX_MSGS], ct_len[MAX_MSGS];
    int nmsgs;
} vec;

/* Read every block of the file; returns how many. */
static int load(vec *v, int max)
{
    FILE *f = fopen(HYPERC_NOISE_VECTORS, "r");
    assert_non_null(f);
    char line[2 * MAX_HEX + 64];
    int n = -1;
    const char *key, *val;
    while (ut_vector_line(f, line, sizeof line, &key, &val)) {
        if (strcmp(key, "handshake") == 0) {
            assert_string_equal(val, "Noise_XX_25519_ChaChaPoly_BLAKE2s");
            n++;
            assert_true(n < max);
            memset(&v[n], 0, sizeof v[n]);
            continue;
        }
        assert_true(n >= 0);
        vec *b = &v[n];
        int k;
        char what[32];
        if (strcmp(key, "init_static") == 0)
            ut_unhex(val, b->init_static, 32);
        else if (strcmp(key, "resp_static") == 0)
            ut_unhex(val, b->resp_static, 32);
        else if (strcmp(key, "gen_init_ephemeral") == 0)
            ut_unhex(val, b->init_e, 32);
        else if (strcmp(key, "gen_resp_ephemeral") == 0)
            ut_unhex(val, b->resp_e, 32);
        else if (strcmp(key, "prologue") == 0)
            b->prologue_len = ut_unhex(val, b->prologue, sizeof b->prologue);
        else if (sscanf(key, "msg_%d_%31s", &k, what) == 2 && k >= 0 &&
                 k < MAX_MSGS) {
            if (strcmp(what, "payload") == 0)
                b->payload_len[k] = ut_unhex(val, b->payload[k], MAX_HEX / 2);
            else if (strcmp(what, "ciphertext") == 0)
                b->ct_len[k] = ut_unhex(val, b->ct[k], MAX_HEX / 2);
            else
                fail_msg("unknown field %s", key);
            if (k + 1 > b->nmsgs)
                b->nmsgs = k + 1;
        } else {
            fail_msg("unknown field %s", key);
        }
    }
    fclose(f);
    return n + 1;
}

static void run_vector(const vec *v)
{
    hcnn_handshake ini, res;
    assert_int_equal(hcnn_handshake_init(&ini, true, v->init_static,
                                         v->prologue, v->prologue_len),
                     HCNN_OK);
    assert_int_equal(hcnn_handshake_init(&res, false, v->resp_static,
                                         v->prologue, v->prologue_len),
                     HCNN_OK);
    assert_int_equal(hcnn_handshake_set_ephemeral(&ini, v->init_e), HCNN_OK);
    assert_int_equal(hcnn_handshake_set_ephemeral(&res, v->resp_e), HCNN_OK);
    uint8_t out[HCNN_MAX_MSG], back[HCNN_MAX_MSG];
    size_t n, m;
    assert_true(v->nmsgs >= 3);
    for (int k = 0; k < 3; k++) {
        hcnn_handshake *w = k % 2 == 0 ? &ini : &res;
        hcnn_handshake *r = k % 2 == 0 ? &res : &ini;
        assert_true(hcnn_handshake_writes(w));
        assert_false(hcnn_handshake_writes(r));
        assert_int_equal(hcnn_handshake_write(w, v->payload[k],
                                              v->payload_len[k], out,
                                              sizeof out, &n),
                         HCNN_OK);
        assert_int_equal(n, v->ct_len[k]);
        assert_memory_equal(out, v->ct[k], n);
        assert_int_equal(hcnn_handshake_read(r, out, n, back, sizeof back, &m),
                         HCNN_OK);
        assert_int_equal(m, v->payload_len[k]);
        if (m)
            assert_memory_equal(back, v->payload[k], m);
    }
    /* each knows the other's static key */
    assert_memory_equal(hcnn_handshake_remote_static(&res),
                        hcnn_handshake_static_pub(&ini), 32);
    assert_memory_equal(hcnn_handshake_remote_static(&ini),
                        hcnn_handshake_static_pub(&res), 32);
    hcnn_cipher is, ir, rs, rr;
    assert_int_equal(hcnn_handshake_split(&ini, &is, &ir), HCNN_OK);
    assert_int_equal(hcnn_handshake_split(&res, &rs, &rr), HCNN_OK);
    /* transport: writers alternate, the initiator first */
    for (int k = 3; k < v->nmsgs; k++) {
        bool from_ini = (k - 3) % 2 == 0;
        hcnn_cipher *enc = from_ini ? &is : &rs;
        hcnn_cipher *dec = from_ini ? &rr : &ir;
        assert_int_equal(hcnn_cipher_encrypt(enc, NULL, 0, v->payload[k],
                                             v->payload_len[k], out),
                         HCNN_OK);
        assert_int_equal(v->payload_len[k] + HCNN_TAG, v->ct_len[k]);
        assert_memory_equal(out, v->ct[k], v->ct_len[k]);
        assert_int_equal(
            hcnn_cipher_decrypt(dec, NULL, 0, out, v->ct_len[k], back),
            HCNN_OK);
        assert_memory_equal(back, v->payload[k], v->payload_len[k]);
    }
    hcnn_cipher_wipe(&is);
    hcnn_cipher_wipe(&ir);
    hcnn_cipher_wipe(&rs);
    hcnn_cipher_wipe(&rr);
}

static void vectors(void **state)
{
    (void)state;
    vec *v = calloc(8, sizeof *v);
    assert_non_null(v);
    int n = load(v, 8);
    assert_int_equal(n, 4);
    int with_prologue = 0, with_payload = 0;
    for (int i = 0; i < n; i++) {
        run_vector(&v[i]);
        with_prologue += v[i].prologue_len > 0;
        with_payload += v[i].payload_len[0] > 0;
    }
    assert_true(with_prologue > 0 && with_prologue < n);
    assert_true(with_payload > 0 && with_payload < n);
    free(v);
}

/* -------------------------------------------------------------- failures */

/* Two fresh sides through messages 0..k-1; returns the sizes. */
static void fresh_pair(hcnn_handshake *ini, hcnn_handshake *res)
{
    assert_int_equal(hcnn_handshake_init(ini, true, NULL, NULL, 0), HCNN_OK);
    assert_int_equal(hcnn_handshake_init(res, false, NULL, NULL, 0), HCNN_OK);
}

static void fresh_agree(void **state)
{
    (void)state;
    hcnn_handshake ini, res;
    fresh_pair(&ini, &res);
    /* two fresh static keys differ */
    assert_memory_not_equal(hcnn_handshake_static_pub(&ini),
                            hcnn_handshake_static_pub(&res), 32);
    uint8_t msg[HCNN_MAX_MSG], pl[HCNN_MAX_MSG];
    size_t n, m;
    const char *said[3] = {"", "responder's payload", "initiator's payload"};
    for (int k = 0; k < 3; k++) {
        hcnn_handshake *w = k % 2 == 0 ? &ini : &res;
        hcnn_handshake *r = k % 2 == 0 ? &res : &ini;
        assert_int_equal(hcnn_handshake_write(w, (const uint8_t *)said[k],
                                              strlen(said[k]), msg, sizeof msg,
                                              &n),
                         HCNN_OK);
        /* Hyperware's sizes: 32; 32 + 48 + payload + 16; 48 + payload + 16 */
        static const size_t fixed[3] = {32, 96, 64};
        assert_int_equal(n, fixed[k] + strlen(said[k]));
        assert_int_equal(hcnn_handshake_read(r, msg, n, pl, sizeof pl, &m),
                         HCNN_OK);
        assert_int_equal(m, strlen(said[k]));
        assert_memory_equal(pl, said[k], m);
    }
    hcnn_cipher is, ir, rs, rr;
    assert_int_equal(hcnn_handshake_split(&ini, &is, &ir), HCNN_OK);
    assert_int_equal(hcnn_handshake_split(&res, &rs, &rr), HCNN_OK);
    assert_memory_equal(is.k, rr.k, 32);
    assert_memory_equal(ir.k, rs.k, 32);
    assert_memory_not_equal(is.k, ir.k, 32);
    /* a full-size transport payload, in place */
    memset(msg, 0xab, HCNN_MAX_PAYLOAD);
    assert_int_equal(
        hcnn_cipher_encrypt(&is, NULL, 0, msg, HCNN_MAX_PAYLOAD, msg), HCNN_OK);
    assert_int_equal(hcnn_cipher_decrypt(&rr, NULL, 0, msg, HCNN_MAX_MSG, msg),
                     HCNN_OK);
    for (size_t i = 0; i < HCNN_MAX_PAYLOAD; i++)
        assert_int_equal(msg[i], 0xab);
    /* one byte more is refused */
    assert_int_equal(
        hcnn_cipher_encrypt(&is, NULL, 0, msg, HCNN_MAX_PAYLOAD + 1, msg),
        HCNN_TOO_BIG);
    hcnn_cipher_wipe(&is);
    hcnn_cipher_wipe(&ir);
    hcnn_cipher_wipe(&rs);
    hcnn_cipher_wipe(&rr);
}

static void altered_and_out_of_order(void **state)
{
    (void)state;
    hcnn_handshake ini, res;
    fresh_pair(&ini, &res);
    uint8_t msg[512], pl[512];
    size_t n, m;
    /* the responder cannot write first, the initiator cannot read first */
    assert_int_equal(hcnn_handshake_write(&res, NULL, 0, msg, sizeof msg, &n),
                     HCNN_ORDER);
    assert_int_equal(hcnn_handshake_read(&ini, msg, 32, pl, sizeof pl, &m),
                     HCNN_ORDER);
    /* a short first message */
    assert_int_equal(hcnn_handshake_read(&res, msg, 31, pl, sizeof pl, &m),
                     HCNN_SHORT);
    fresh_pair(&ini, &res);
    assert_int_equal(hcnn_handshake_write(&ini, NULL, 0, msg, sizeof msg, &n),
                     HCNN_OK);
    assert_int_equal(hcnn_handshake_read(&res, msg, n, pl, sizeof pl, &m),
                     HCNN_OK);
    assert_int_equal(hcnn_handshake_write(&res, (const uint8_t *)"x", 1, msg,
                                          sizeof msg, &n),
                     HCNN_OK);
    /* one bit flipped in the encrypted static key: authentication fails */
    msg[40] ^= 1;
    assert_int_equal(hcnn_handshake_read(&ini, msg, n, pl, sizeof pl, &m),
                     HCNN_DECRYPT);
    /* split before the end */
    hcnn_cipher a, b;
    assert_int_equal(hcnn_handshake_split(&res, &a, &b), HCNN_ORDER);
    /* a payload too big for one message; an output too small */
    hcnn_handshake x;
    assert_int_equal(hcnn_handshake_init(&x, true, NULL, NULL, 0), HCNN_OK);
    static uint8_t big[HCNN_MAX_MSG + 1];
    static uint8_t out[HCNN_MAX_MSG + 64];
    assert_int_equal(
        hcnn_handshake_write(&x, big, HCNN_MAX_MSG - 31, out, sizeof out, &n),
        HCNN_TOO_BIG);
    assert_int_equal(hcnn_handshake_write(&x, big, 10, out, 41, &n),
                     HCNN_SPACE);
    hcnn_handshake_wipe(&x);
}

/* A peer ephemeral key of small order (here all zeros) gives an all-zero
 * shared secret: refused. */
static void small_order_key(void **state)
{
    (void)state;
    hcnn_handshake ini, res;
    fresh_pair(&ini, &res);
    uint8_t msg[512], pl[512];
    size_t n, m;
    memset(msg, 0, 32);
    assert_int_equal(hcnn_handshake_read(&res, msg, 32, pl, sizeof pl, &m),
                     HCNN_OK);
    assert_int_equal(hcnn_handshake_write(&res, NULL, 0, msg, sizeof msg, &n),
                     HCNN_CRYPTO);
    hcnn_handshake_wipe(&ini);
    hcnn_handshake_wipe(&res);
}

/* Nonces: a replayed message fails (the receiver's nonce moved on); a
 * failed decryption does not advance the nonce; the last nonce is
 * reserved.  The same with ciphers that keep their context. */
static void nonces_with(bool keep)
{
    hcnn_cipher s = {.has_key = true, .keep = keep},
                r = {.has_key = true, .keep = keep};
    memset(s.k, 7, 32);
    memset(r.k, 7, 32);
    uint8_t a[64], b[64], pt[64];
    assert_int_equal(
        hcnn_cipher_encrypt(&s, NULL, 0, (const uint8_t *)"one", 3, a),
        HCNN_OK);
    assert_int_equal(
        hcnn_cipher_encrypt(&s, NULL, 0, (const uint8_t *)"two", 3, b),
        HCNN_OK);
    assert_int_equal(hcnn_cipher_decrypt(&r, NULL, 0, b, 19, pt), HCNN_DECRYPT);
    assert_int_equal(r.n, 0);
    assert_int_equal(hcnn_cipher_decrypt(&r, NULL, 0, a, 19, pt), HCNN_OK);
    assert_memory_equal(pt, "one", 3);
    assert_int_equal(hcnn_cipher_decrypt(&r, NULL, 0, a, 19, pt), HCNN_DECRYPT);
    assert_int_equal(hcnn_cipher_decrypt(&r, NULL, 0, b, 19, pt), HCNN_OK);
    assert_int_equal(hcnn_cipher_decrypt(&r, NULL, 0, b, 15, pt), HCNN_SHORT);
    s.n = UINT64_MAX;
    assert_int_equal(hcnn_cipher_encrypt(&s, NULL, 0, pt, 1, a), HCNN_NONCE);
    assert_string_equal(hcnn_err_name(HCNN_NONCE), "NONCE");
    assert_non_null(strstr(hcnn_err_text(HCNN_DECRYPT), "authentication"));
    hcnn_cipher_wipe(&s);
    hcnn_cipher_wipe(&r);
}

static void nonces(void **state)
{
    (void)state;
    nonces_with(false);
    nonces_with(true);
}

/* A cipher that keeps its context writes what one keying a context per
 * message writes, message after message, with and without associated
 * data; it reads them back after a refused message; a copy made after
 * the first message keeps working apart from it. */
static void kept_context(void **state)
{
    (void)state;
    hcnn_cipher once = {.has_key = true},
                kept = {.has_key = true, .keep = true};
    hcnn_cipher rx = {.has_key = true, .keep = true};
    for (int i = 0; i < 32; i++)
        once.k[i] = kept.k[i] = rx.k[i] = (uint8_t)(3 * i + 1);
    uint8_t pt[300], a[320], b[320], back[320];
    const uint8_t ad[5] = {1, 2, 3, 4, 5};
    for (int k = 0; k < 12; k++) {
        size_t len = (size_t)(k * 23 + k % 3);
        for (size_t i = 0; i < len; i++)
            pt[i] = (uint8_t)(i * 7 + (size_t)k);
        size_t adlen = k % 2 ? sizeof ad : 0;
        assert_int_equal(hcnn_cipher_encrypt(&once, ad, adlen, pt, len, a),
                         HCNN_OK);
        assert_int_equal(hcnn_cipher_encrypt(&kept, ad, adlen, pt, len, b),
                         HCNN_OK);
        assert_memory_equal(a, b, len + HCNN_TAG);
        if (k == 5) { /* altered: refused, and the next still reads */
            b[0] ^= 0x80;
            assert_int_equal(
                hcnn_cipher_decrypt(&rx, ad, adlen, b, len + HCNN_TAG, back),
                HCNN_DECRYPT);
            b[0] ^= 0x80;
        }
        assert_int_equal(
            hcnn_cipher_decrypt(&rx, ad, adlen, b, len + HCNN_TAG, back),
            HCNN_OK);
        assert_memory_equal(back, pt, len);
    }
    assert_non_null(kept.ctx);
    hcnn_cipher copy = kept; /* a copy: its own context per message */
    assert_int_equal(hcnn_cipher_encrypt(&once, NULL, 0, pt, 9, a), HCNN_OK);
    assert_int_equal(hcnn_cipher_encrypt(&copy, NULL, 0, pt, 9, b), HCNN_OK);
    assert_memory_equal(a, b, 9 + HCNN_TAG);
    assert_int_equal(hcnn_cipher_encrypt(&kept, NULL, 0, pt, 9, b), HCNN_OK);
    assert_memory_equal(a, b, 9 + HCNN_TAG);
    hcnn_cipher_wipe(&copy); /* leaves kept's context alone */
    assert_int_equal(hcnn_cipher_encrypt(&once, NULL, 0, pt, 9, a), HCNN_OK);
    assert_int_equal(hcnn_cipher_encrypt(&kept, NULL, 0, pt, 9, b), HCNN_OK);
    assert_memory_equal(a, b, 9 + HCNN_TAG);
    hcnn_cipher_wipe(&once);
    hcnn_cipher_wipe(&kept);
    hcnn_cipher_wipe(&rx);
    assert_null(kept.ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors),
        cmocka_unit_test(fresh_agree),
        cmocka_unit_test(altered_and_out_of_order),
        cmocka_unit_test(small_order_key),
        cmocka_unit_test(nonces),
        cmocka_unit_test(kept_context),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
