/* The node's Ed25519 networking key (src/node/net/ident.c) against RFC 8032's
 * test vectors (tests/vectors/ed25519_rfc8032.txt): a key file holding a
 * vector's secret gives its public key, signs its message into its
 * signature byte for byte, and the check accepts that signature and
 * refuses an altered message, signature or key.  Then the key of a first
 * boot: made, kept 0600 in a 0700 folder, the same at the next load; a file
 * that holds no Ed25519 key is refused; and the PKI's hex keys, with or
 * without 0x (src/node/net/pki.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/net/net_int.h"
#include "unit_helpers.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ vectors */

#define MAX_VECS 8
#define MAX_MSG 1024

typedef struct vec {
    uint8_t secret[32], pub[32], sig[HCNN_SIG];
    uint8_t msg[MAX_MSG];
    size_t msg_len;
    char pub_hex[2 * HCNN_PUBKEY + 1];
} vec;

/* Read every block of the file (each begins with secret=); how many. */
static int load(vec *v, int max)
{
    FILE *f = fopen(HYPERC_ED25519_VECTORS, "r");
    assert_non_null(f);
    char line[2 * MAX_MSG + 64];
    int n = -1;
    const char *key, *val;
    while (ut_vector_line(f, line, sizeof line, &key, &val)) {
        if (strcmp(key, "secret") == 0) {
            n++;
            assert_true(n < max);
            memset(&v[n], 0, sizeof v[n]);
            assert_int_equal(ut_unhex(val, v[n].secret, 32), 32);
            continue;
        }
        assert_true(n >= 0);
        if (strcmp(key, "public") == 0) {
            assert_int_equal(ut_unhex(val, v[n].pub, 32), 32);
            assert_int_equal(strlen(val), 2 * HCNN_PUBKEY);
            memcpy(v[n].pub_hex, val, 2 * HCNN_PUBKEY + 1);
        } else if (strcmp(key, "message") == 0) {
            v[n].msg_len = ut_unhex(val, v[n].msg, MAX_MSG);
        } else if (strcmp(key, "signature") == 0) {
            assert_int_equal(ut_unhex(val, v[n].sig, HCNN_SIG), HCNN_SIG);
        } else {
            fail_msg("unknown field %s", key);
        }
    }
    fclose(f);
    return n + 1;
}

/* ------------------------------------------------------------ helpers */

/* Write key as <dir>/networking_key.pem, the node's form (PKCS#8 PEM). */
static void write_key(const char *dir, EVP_PKEY *key)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/networking_key.pem", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL),
                     1);
    assert_int_equal(fclose(f), 0);
}

/* ---------------------------------------------------------------- tests */

static void rfc8032_vectors(void **state)
{
    (void)state;
    vec *v = calloc(MAX_VECS, sizeof *v);
    assert_non_null(v);
    int n = load(v, MAX_VECS);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++) {
        char *dir = ut_mkdtemp();
        EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL,
                                                   v[i].secret, 32);
        assert_non_null(k);
        write_key(dir, k);
        EVP_PKEY_free(k);
        char err[256] = "";
        hcnn_ident *id = hcnn_ident_load(dir, err, sizeof err);
        assert_non_null(id);
        /* its public key, raw and as the node writes it in identity.json */
        assert_memory_equal(hcnn_ident_pub(id), v[i].pub, 32);
        char hex[2 * HCNN_PUBKEY + 1];
        hcnn_ident_pub_hex(id, hex);
        assert_string_equal(hex, v[i].pub_hex);
        /* the signature, byte for byte (Ed25519 is deterministic) */
        uint8_t sig[HCNN_SIG];
        assert_true(hcnn_ident_sign(id, v[i].msg, v[i].msg_len, sig));
        assert_memory_equal(sig, v[i].sig, HCNN_SIG);
        hcnn_ident_free(id);
        ut_rm_rf(dir);
        free(dir);

        /* the check accepts it ... */
        assert_true(hcnn_ed25519_verify(v[i].pub, v[i].msg, v[i].msg_len,
                                        v[i].sig, HCNN_SIG));
        /* ... and nothing altered: one more byte of message, a changed
         * byte of it, a flipped bit anywhere in the signature, a signature
         * one byte short, another vector's key */
        uint8_t m[MAX_MSG + 1];
        memcpy(m, v[i].msg, v[i].msg_len);
        m[v[i].msg_len] = 0;
        assert_false(hcnn_ed25519_verify(v[i].pub, m, v[i].msg_len + 1,
                                         v[i].sig, HCNN_SIG));
        if (v[i].msg_len) {
            m[0] ^= 1;
            assert_false(hcnn_ed25519_verify(v[i].pub, m, v[i].msg_len,
                                             v[i].sig, HCNN_SIG));
        }
        for (int b = 0; b < HCNN_SIG * 8; b += 37) {
            uint8_t bad[HCNN_SIG];
            memcpy(bad, v[i].sig, HCNN_SIG);
            bad[b / 8] ^= (uint8_t)(1u << (b % 8));
            assert_false(hcnn_ed25519_verify(v[i].pub, v[i].msg, v[i].msg_len,
                                             bad, HCNN_SIG));
        }
        assert_false(hcnn_ed25519_verify(v[i].pub, v[i].msg, v[i].msg_len,
                                         v[i].sig, HCNN_SIG - 1));
        assert_false(hcnn_ed25519_verify(v[(i + 1) % n].pub, v[i].msg,
                                         v[i].msg_len, v[i].sig, HCNN_SIG));
    }
    free(v);
}

/* A first boot makes the key, private to the node's user; the next load
 * finds the same key. */
static void made_once_and_kept(void **state)
{
    (void)state;
    char *home = ut_mkdtemp();
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/net", home);
    snprintf(path, sizeof path, "%s/networking_key.pem", dir);
    char err[256] = "";
    hcnn_ident *id = hcnn_ident_load(dir, err, sizeof err);
    assert_non_null(id);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    uint8_t pub[HCNN_PUBKEY], sig[HCNN_SIG];
    memcpy(pub, hcnn_ident_pub(id), HCNN_PUBKEY);
    static const uint8_t msg[] = "a Noise static key";
    assert_true(hcnn_ident_sign(id, msg, sizeof msg, sig));
    hcnn_ident_free(id);

    id = hcnn_ident_load(dir, err, sizeof err);
    assert_non_null(id);
    assert_memory_equal(hcnn_ident_pub(id), pub, HCNN_PUBKEY);
    uint8_t again[HCNN_SIG];
    assert_true(hcnn_ident_sign(id, msg, sizeof msg, again));
    assert_memory_equal(again, sig, HCNN_SIG);
    assert_true(hcnn_ed25519_verify(pub, msg, sizeof msg, sig, HCNN_SIG));
    hcnn_ident_free(id);

    /* another home, another key */
    char *home2 = ut_mkdtemp();
    id = hcnn_ident_load(home2, err, sizeof err);
    assert_non_null(id);
    assert_memory_not_equal(hcnn_ident_pub(id), pub, HCNN_PUBKEY);
    assert_false(hcnn_ed25519_verify(hcnn_ident_pub(id), msg, sizeof msg, sig,
                                     HCNN_SIG));
    hcnn_ident_free(id);
    ut_rm_rf(home2);
    free(home2);
    ut_rm_rf(home);
    free(home);
}

/* A key file that holds no Ed25519 private key is refused with its
 * reason, and left as it was. */
static void not_a_key_refused(void **state)
{
    (void)state;
    char *dir = ut_mkdtemp();
    EVP_PKEY *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    assert_non_null(x);
    write_key(dir, x);
    EVP_PKEY_free(x);
    char err[256] = "";
    assert_null(hcnn_ident_load(dir, err, sizeof err));
    assert_non_null(strstr(err, "is not an Ed25519 private key"));

    char path[4200];
    snprintf(path, sizeof path, "%s/networking_key.pem", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    err[0] = '\0';
    assert_null(hcnn_ident_load(dir, err, sizeof err));
    assert_non_null(strstr(err, "is not an Ed25519 private key"));
    f = fopen(path, "r");
    assert_non_null(f);
    char line[32] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "not a key\n");
    ut_rm_rf(dir);
    free(dir);
}

/* The PKI's keys: 64 hex digits, with or without 0x (hyperdrive's
 * net_key_string_to_hex); anything else is no key. */
static void hex_keys(void **state)
{
    (void)state;
    static const char hex[] =
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    uint8_t want[HCNN_PUBKEY], got[HCNN_PUBKEY];
    ut_unhex(hex, want, sizeof want);
    assert_true(hcnn_key_from_hex(hex, got));
    assert_memory_equal(got, want, HCNN_PUBKEY);
    char with0x[80];
    snprintf(with0x, sizeof with0x, "0x%s", hex);
    memset(got, 0, sizeof got);
    assert_true(hcnn_key_from_hex(with0x, got));
    assert_memory_equal(got, want, HCNN_PUBKEY);
    char upper[80];
    size_t n = strlen(hex);
    for (size_t i = 0; i < n; i++)
        upper[i] =
            (char)(hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 32 : hex[i]);
    upper[n] = '\0';
    assert_true(hcnn_key_from_hex(upper, got));
    assert_memory_equal(got, want, HCNN_PUBKEY);
    char shorter[80];
    snprintf(shorter, sizeof shorter, "%.62s", hex);
    assert_false(hcnn_key_from_hex(shorter, got));
    char longer[80];
    snprintf(longer, sizeof longer, "%s00", hex);
    assert_false(hcnn_key_from_hex(longer, got));
    char bad[80];
    snprintf(bad, sizeof bad, "%s", hex);
    bad[10] = 'g';
    assert_false(hcnn_key_from_hex(bad, got));
    assert_false(hcnn_key_from_hex("", got));
    assert_false(hcnn_key_from_hex("0x", got));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8032_vectors),
        cmocka_unit_test(made_once_and_kept),
        cmocka_unit_test(not_a_key_refused),
        cmocka_unit_test(hex_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
