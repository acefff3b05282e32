/* Noise_XX_25519_ChaChaPoly_BLAKE2s (noise.h): the Noise specification's
 * symmetric and handshake states for the XX pattern, on OpenSSL 3. */
#include "noise.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>

static const char PROTOCOL_NAME[] = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

const char *hcnn_err_name(hcnn_err e)
{
    switch (e) {
#define HCNN_ERR_NAME(name, text)                                              \
    case HCNN_##name: return #name;
        HCNN_ERR_MAP(HCNN_ERR_NAME)
#undef HCNN_ERR_NAME
    }
    return "?";
}

const char *hcnn_err_text(hcnn_err e)
{
    switch (e) {
#define HCNN_ERR_TEXT(name, text)                                              \
    case HCNN_##name: return text;
        HCNN_ERR_MAP(HCNN_ERR_TEXT)
#undef HCNN_ERR_TEXT
    }
    return "?";
}

/* ------------------------------------------------------------ primitives */

/* out = BLAKE2s-256(a || b) */
static hcnn_err hash2(const uint8_t *a, size_t alen, const uint8_t *b,
                      size_t blen, uint8_t out[HCNN_KEY])
{
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = x && EVP_DigestInit_ex(x, EVP_blake2s256(), NULL) == 1 &&
              EVP_DigestUpdate(x, a, alen) == 1 &&
              (blen == 0 || EVP_DigestUpdate(x, b, blen) == 1) &&
              EVP_DigestFinal_ex(x, out, &n) == 1 && n == HCNN_KEY;
    EVP_MD_CTX_free(x);
    return ok ? HCNN_OK : HCNN_CRYPTO;
}

static hcnn_err hmac(const uint8_t key[HCNN_KEY], const uint8_t *data,
                     size_t len, uint8_t out[HCNN_KEY])
{
    unsigned int n = 0;
    if (HMAC(EVP_blake2s256(), key, HCNN_KEY, data, len, out, &n) == NULL ||
        n != HCNN_KEY)
        return HCNN_CRYPTO;
    return HCNN_OK;
}

/* The specification's HKDF with two outputs. */
static hcnn_err hkdf2(const uint8_t ck[HCNN_KEY], const uint8_t *ikm,
                      size_t ikm_len, uint8_t out1[HCNN_KEY],
                      uint8_t out2[HCNN_KEY])
{
    uint8_t temp[HCNN_KEY], buf[HCNN_KEY + 1];
    hcnn_err e = hmac(ck, ikm, ikm_len, temp);
    if (e == HCNN_OK) {
        buf[0] = 0x01;
        e = hmac(temp, buf, 1, out1);
    }
    if (e == HCNN_OK) {
        memcpy(buf, out1, HCNN_KEY);
        buf[HCNN_KEY] = 0x02;
        e = hmac(temp, buf, sizeof buf, out2);
    }
    OPENSSL_cleanse(temp, sizeof temp);
    OPENSSL_cleanse(buf, sizeof buf);
    return e;
}

static EVP_PKEY *x25519_private(const uint8_t key[HCNN_KEY])
{
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, key, HCNN_KEY);
}

static hcnn_err x25519_public(const uint8_t key[HCNN_KEY],
                              uint8_t pub[HCNN_KEY])
{
    EVP_PKEY *k = x25519_private(key);
    size_t n = HCNN_KEY;
    bool ok =
        k && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == HCNN_KEY;
    EVP_PKEY_free(k);
    return ok ? HCNN_OK : HCNN_CRYPTO;
}

/* out = X25519(priv, pub).  OpenSSL refuses an all-zero result (a peer
 * key of small order): a handshake error, as it should be. */
static hcnn_err dh(const uint8_t priv[HCNN_KEY], const uint8_t pub[HCNN_KEY],
                   uint8_t out[HCNN_KEY])
{
    EVP_PKEY *k = x25519_private(priv);
    EVP_PKEY *peer =
        EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, HCNN_KEY);
    EVP_PKEY_CTX *x = k ? EVP_PKEY_CTX_new(k, NULL) : NULL;
    size_t n = HCNN_KEY;
    bool ok = x && peer && EVP_PKEY_derive_init(x) == 1 &&
              EVP_PKEY_derive_set_peer(x, peer) == 1 &&
              EVP_PKEY_derive(x, out, &n) == 1 && n == HCNN_KEY;
    EVP_PKEY_CTX_free(x);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(k);
    return ok ? HCNN_OK : HCNN_CRYPTO;
}

/* 32 zero bits, then the nonce as a little-endian u64. */
static void nonce12(uint64_t n, uint8_t iv[12])
{
    memset(iv, 0, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (uint8_t)(n >> (8 * i));
}

/* --------------------------------------------------------- cipher state */

/* ChaCha20-Poly1305, fetched from OpenSSL's default provider once:
 * EVP_chacha20_poly1305() makes every init look it up again (a locked
 * hash-table search and reference counting per message). */
static EVP_CIPHER *aead;
static pthread_once_t aead_once = PTHREAD_ONCE_INIT;

static void aead_fetch(void)
{
    aead = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
}

static const EVP_CIPHER *chacha(void)
{
    pthread_once(&aead_once, aead_fetch);
    return aead ? aead : EVP_chacha20_poly1305();
}

/* The context for one message of c, its nonce set: the one c keeps (a
 * transport cipher after its first message: no key set-up, no allocation),
 * or one keyed now, which c keeps from now on if it may, else *own (the
 * caller frees it).  NULL on a failure. */
static EVP_CIPHER_CTX *cipher_ctx(hcnn_cipher *c, bool enc,
                                  const uint8_t iv[12], bool *own)
{
    *own = false;
    if (c->keep && c->ctx && c->ctx_of == c && c->ctx_enc == enc)
        return EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, iv, enc) == 1
                   ? c->ctx
                   : NULL;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (x == NULL || EVP_CipherInit_ex(x, chacha(), NULL, c->k, iv, enc) != 1) {
        EVP_CIPHER_CTX_free(x);
        return NULL;
    }
    if (c->keep && c->ctx == NULL) {
        c->ctx = x;
        c->ctx_of = c;
        c->ctx_enc = enc;
    } else {
        *own = true;
    }
    return x;
}

hcnn_err hcnn_cipher_encrypt(hcnn_cipher *c, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t len, uint8_t *out)
{
    if (len > HCNN_MAX_PAYLOAD || adlen > HCNN_MAX_MSG)
        return HCNN_TOO_BIG;
    if (!c->has_key) {
        if (len)
            memmove(out, pt, len);
        return HCNN_OK;
    }
    if (c->n == UINT64_MAX)
        return HCNN_NONCE;
    uint8_t iv[12];
    nonce12(c->n, iv);
    bool own;
    EVP_CIPHER_CTX *x = cipher_ctx(c, true, iv, &own);
    int m = 0, f = 0;
    bool ok =
        x &&
        (adlen == 0 || EVP_EncryptUpdate(x, NULL, &m, ad, (int)adlen) == 1) &&
        EVP_EncryptUpdate(x, out, &m, pt, (int)len) == 1 &&
        EVP_EncryptFinal_ex(x, out + m, &f) == 1 && (size_t)(m + f) == len &&
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, HCNN_TAG, out + len) == 1;
    if (own)
        EVP_CIPHER_CTX_free(x);
    if (!ok)
        return HCNN_CRYPTO;
    c->n++;
    return HCNN_OK;
}

hcnn_err hcnn_cipher_decrypt(hcnn_cipher *c, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t len, uint8_t *out)
{
    if (len > HCNN_MAX_MSG || adlen > HCNN_MAX_MSG)
        return HCNN_TOO_BIG;
    if (!c->has_key) {
        if (len)
            memmove(out, ct, len);
        return HCNN_OK;
    }
    if (len < HCNN_TAG)
        return HCNN_SHORT;
    if (c->n == UINT64_MAX)
        return HCNN_NONCE;
    uint8_t iv[12], tag[HCNN_TAG];
    nonce12(c->n, iv);
    size_t body = len - HCNN_TAG;
    memcpy(tag, ct + body, HCNN_TAG); /* out may overwrite ct */
    bool own;
    EVP_CIPHER_CTX *x = cipher_ctx(c, false, iv, &own);
    int m = 0, f = 0;
    bool ok =
        x &&
        (adlen == 0 || EVP_DecryptUpdate(x, NULL, &m, ad, (int)adlen) == 1) &&
        EVP_DecryptUpdate(x, out, &m, ct, (int)body) == 1 &&
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, HCNN_TAG, tag) == 1;
    bool auth = ok && EVP_DecryptFinal_ex(x, out + m, &f) == 1;
    if (own)
        EVP_CIPHER_CTX_free(x);
    if (!ok)
        return HCNN_CRYPTO;
    if (!auth) {
        OPENSSL_cleanse(out, body);
        return HCNN_DECRYPT;
    }
    c->n++;
    return HCNN_OK;
}

void hcnn_cipher_wipe(hcnn_cipher *c)
{
    if (c->ctx && c->ctx_of == c)
        EVP_CIPHER_CTX_free(c->ctx); /* (which cleanses its key) */
    OPENSSL_cleanse(c, sizeof *c);
}

/* ------------------------------------------------------ symmetric state */

static hcnn_err mix_hash(hcnn_handshake *hs, const uint8_t *data, size_t len)
{
    return hash2(hs->h, HCNN_KEY, data, len, hs->h);
}

static hcnn_err mix_key(hcnn_handshake *hs, const uint8_t *ikm)
{
    uint8_t k[HCNN_KEY];
    hcnn_err e = hkdf2(hs->ck, ikm, HCNN_KEY, hs->ck, k);
    if (e == HCNN_OK) {
        memcpy(hs->c.k, k, HCNN_KEY);
        hs->c.n = 0;
        hs->c.has_key = true;
    }
    OPENSSL_cleanse(k, sizeof k);
    return e;
}

static hcnn_err mix_dh(hcnn_handshake *hs, const uint8_t *priv,
                       const uint8_t *pub)
{
    uint8_t shared[HCNN_KEY];
    hcnn_err e = dh(priv, pub, shared);
    if (e == HCNN_OK)
        e = mix_key(hs, shared);
    OPENSSL_cleanse(shared, sizeof shared);
    return e;
}

/* EncryptAndHash: out gets len (+16 with a key) bytes. */
static hcnn_err encrypt_and_hash(hcnn_handshake *hs, const uint8_t *pt,
                                 size_t len, uint8_t *out, size_t *outlen)
{
    hcnn_err e = hcnn_cipher_encrypt(&hs->c, hs->h, HCNN_KEY, pt, len, out);
    if (e != HCNN_OK)
        return e;
    *outlen = len + (hs->c.has_key ? HCNN_TAG : 0);
    return mix_hash(hs, out, *outlen);
}

static hcnn_err decrypt_and_hash(hcnn_handshake *hs, const uint8_t *ct,
                                 size_t len, uint8_t *out)
{
    uint8_t h[HCNN_KEY];
    memcpy(h, hs->h, HCNN_KEY); /* the hash before, as the AD */
    hcnn_err e = mix_hash(hs, ct, len);
    if (e == HCNN_OK)
        e = hcnn_cipher_decrypt(&hs->c, h, HCNN_KEY, ct, len, out);
    return e;
}

/* ------------------------------------------------------ handshake state */

hcnn_err hcnn_handshake_init(hcnn_handshake *hs, bool initiator,
                             const uint8_t *static_key, const uint8_t *prologue,
                             size_t prologue_len)
{
    memset(hs, 0, sizeof *hs);
    hs->initiator = initiator;
    /* the name is longer than a hash: h = HASH(name) */
    hcnn_err e = hash2((const uint8_t *)PROTOCOL_NAME, sizeof PROTOCOL_NAME - 1,
                       NULL, 0, hs->h);
    if (e != HCNN_OK)
        return e;
    memcpy(hs->ck, hs->h, HCNN_KEY);
    e = mix_hash(hs, prologue, prologue_len);
    if (e != HCNN_OK)
        return e;
    if (static_key)
        memcpy(hs->s, static_key, HCNN_KEY);
    else if (RAND_priv_bytes(hs->s, HCNN_KEY) != 1)
        return HCNN_CRYPTO;
    return x25519_public(hs->s, hs->s_pub);
}

hcnn_err hcnn_handshake_set_ephemeral(hcnn_handshake *hs,
                                      const uint8_t key[HCNN_KEY])
{
    memcpy(hs->e, key, HCNN_KEY);
    hs->has_e = true;
    return x25519_public(hs->e, hs->e_pub);
}

const uint8_t *hcnn_handshake_static_pub(const hcnn_handshake *hs)
{
    return hs->s_pub;
}

const uint8_t *hcnn_handshake_remote_static(const hcnn_handshake *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

bool hcnn_handshake_writes(const hcnn_handshake *hs)
{
    /* the initiator writes messages 0 and 2, the responder message 1 */
    return hs->next < 3 && (hs->next % 2 == 0) == hs->initiator;
}

/* Append the ephemeral public key (made now unless set). */
static hcnn_err write_e(hcnn_handshake *hs, uint8_t *out, size_t *at)
{
    if (!hs->has_e) {
        uint8_t k[HCNN_KEY];
        if (RAND_priv_bytes(k, HCNN_KEY) != 1)
            return HCNN_CRYPTO;
        hcnn_err e = hcnn_handshake_set_ephemeral(hs, k);
        OPENSSL_cleanse(k, sizeof k);
        if (e != HCNN_OK)
            return e;
    }
    memcpy(out + *at, hs->e_pub, HCNN_KEY);
    *at += HCNN_KEY;
    return mix_hash(hs, hs->e_pub, HCNN_KEY);
}

hcnn_err hcnn_handshake_write(hcnn_handshake *hs, const uint8_t *payload,
                              size_t plen, uint8_t *out, size_t cap,
                              size_t *outlen)
{
    if (!hcnn_handshake_writes(hs))
        return HCNN_ORDER;
    /* what this message holds before its payload */
    static const size_t before[3] = {HCNN_KEY, HCNN_KEY + HCNN_KEY + HCNN_TAG,
                                     HCNN_KEY + HCNN_TAG};
    size_t need = before[hs->next] + plen + (hs->next == 0 ? 0 : HCNN_TAG);
    if (need > HCNN_MAX_MSG)
        return HCNN_TOO_BIG;
    if (need > cap)
        return HCNN_SPACE;
    size_t at = 0, n = 0;
    hcnn_err e = HCNN_OK;
    switch (hs->next) {
    case 0: /* -> e */ e = write_e(hs, out, &at); break;
    case 1: /* <- e, ee, s, es */
        e = write_e(hs, out, &at);
        if (e == HCNN_OK)
            e = mix_dh(hs, hs->e, hs->re);
        if (e == HCNN_OK)
            e = encrypt_and_hash(hs, hs->s_pub, HCNN_KEY, out + at, &n);
        at += n;
        if (e == HCNN_OK)
            e = mix_dh(hs, hs->s, hs->re);
        break;
    case 2: /* -> s, se */
        e = encrypt_and_hash(hs, hs->s_pub, HCNN_KEY, out + at, &n);
        at += n;
        if (e == HCNN_OK)
            e = mix_dh(hs, hs->s, hs->re);
        break;
    }
    if (e == HCNN_OK)
        e = encrypt_and_hash(hs, payload, plen, out + at, &n);
    if (e != HCNN_OK)
        return e;
    *outlen = at + n;
    hs->next++;
    return HCNN_OK;
}

hcnn_err hcnn_handshake_read(hcnn_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload, size_t cap, size_t *plen)
{
    if (hs->next >= 3 || hcnn_handshake_writes(hs))
        return HCNN_ORDER;
    if (len > HCNN_MAX_MSG)
        return HCNN_TOO_BIG;
    size_t at = 0;
    hcnn_err e = HCNN_OK;
    /* the tokens before the payload */
    if (hs->next == 0 || hs->next == 1) { /* e */
        if (len < HCNN_KEY)
            return HCNN_SHORT;
        memcpy(hs->re, msg, HCNN_KEY);
        hs->has_re = true;
        at = HCNN_KEY;
        e = mix_hash(hs, hs->re, HCNN_KEY);
    }
    if (e == HCNN_OK && hs->next == 1) /* ee */
        e = mix_dh(hs, hs->e, hs->re);
    if (e == HCNN_OK && hs->next >= 1) { /* s (encrypted: a key is set) */
        if (len - at < HCNN_KEY + HCNN_TAG)
            return HCNN_SHORT;
        e = decrypt_and_hash(hs, msg + at, HCNN_KEY + HCNN_TAG, hs->rs);
        at += HCNN_KEY + HCNN_TAG;
        if (e == HCNN_OK)
            hs->has_rs = true;
    }
    if (e == HCNN_OK && hs->next == 1) /* es, as the initiator */
        e = mix_dh(hs, hs->e, hs->rs);
    if (e == HCNN_OK && hs->next == 2) /* se, as the responder */
        e = mix_dh(hs, hs->e, hs->rs);
    if (e != HCNN_OK)
        return e;
    size_t rest = len - at;
    if (hs->c.has_key && rest < HCNN_TAG)
        return HCNN_SHORT;
    size_t out = hs->c.has_key ? rest - HCNN_TAG : rest;
    if (out > cap)
        return HCNN_SPACE;
    e = decrypt_and_hash(hs, msg + at, rest, payload);
    if (e != HCNN_OK)
        return e;
    *plen = out;
    hs->next++;
    return HCNN_OK;
}

hcnn_err hcnn_handshake_split(hcnn_handshake *hs, hcnn_cipher *send,
                              hcnn_cipher *recv)
{
    if (hs->next != 3)
        return HCNN_ORDER;
    uint8_t k1[HCNN_KEY], k2[HCNN_KEY];
    hcnn_err e = hkdf2(hs->ck, NULL, 0, k1, k2);
    if (e == HCNN_OK) {
        hcnn_cipher c1 = {.n = 0, .has_key = true, .keep = true};
        hcnn_cipher c2 = {.n = 0, .has_key = true, .keep = true};
        memcpy(c1.k, k1, HCNN_KEY);
        memcpy(c2.k, k2, HCNN_KEY);
        *send = hs->initiator ? c1 : c2;
        *recv = hs->initiator ? c2 : c1;
        hcnn_cipher_wipe(&c1);
        hcnn_cipher_wipe(&c2);
    }
    OPENSSL_cleanse(k1, sizeof k1);
    OPENSSL_cleanse(k2, sizeof k2);
    /* keep what a caller may still ask: the peer's static key */
    uint8_t rs[HCNN_KEY];
    bool has_rs = hs->has_rs;
    memcpy(rs, hs->rs, HCNN_KEY);
    hcnn_handshake_wipe(hs);
    memcpy(hs->rs, rs, HCNN_KEY);
    hs->has_rs = has_rs;
    hs->next = 3;
    return e;
}

void hcnn_handshake_wipe(hcnn_handshake *hs)
{
    bool initiator = hs->initiator;
    OPENSSL_cleanse(hs, sizeof *hs);
    hs->initiator = initiator;
    hs->next = 3;
}
