/* Internal to the node's net room (src/node/net/): the Noise protocol
 * framework's XX handshake, Noise_XX_25519_ChaChaPoly_BLAKE2s, as
 * Hyperware's networking uses it (docs/architecture.md, "Networking"),
 * on OpenSSL 3's primitives (X25519, ChaCha20-Poly1305, BLAKE2s-256 and
 * HMAC over it).  Only the state machine is ours; it follows the Noise
 * specification (revision 34): symmetric state, handshake state with the
 * XX message patterns, split into one cipher state per direction.
 * Prefix hcnn_.
 *
 * XX:  -> e
 *      <- e, ee, s, es
 *      -> s, se
 *
 * Threads: a handshake or a cipher state is used by one thread at a time.
 * Nothing here does I/O: the caller moves the messages. */
#ifndef HYPERC_NODE_NET_NOISE_H
#define HYPERC_NODE_NET_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HCNN_KEY 32        /* X25519 keys, cipher keys, hashes */
#define HCNN_TAG 16        /* the AEAD tag */
#define HCNN_MAX_MSG 65535 /* the largest Noise message */
/* The largest payload of one transport message (65535 - 16). */
#define HCNN_MAX_PAYLOAD (HCNN_MAX_MSG - HCNN_TAG)

/* What can go wrong, one table: enum, name, sentence. */
#define HCNN_ERR_MAP(XX)                                                       \
    XX(OK, "ok")                                                               \
    XX(CRYPTO, "a cryptographic primitive failed (OpenSSL)")                   \
    XX(DECRYPT, "a message failed authentication (wrong key or altered)")      \
    XX(SHORT, "a message is shorter than its pattern requires")                \
    XX(TOO_BIG, "a message would exceed 65535 bytes")                          \
    XX(ORDER, "this side may not write or read that message now")              \
    XX(NONCE, "the cipher's nonce is exhausted")                               \
    XX(SPACE, "the output buffer is too small")

typedef enum hcnn_err {
#define HCNN_ERR_ENUM(name, text) HCNN_##name,
    HCNN_ERR_MAP(HCNN_ERR_ENUM)
#undef HCNN_ERR_ENUM
} hcnn_err;

/* "DECRYPT" etc.; and the sentence. */
const char *hcnn_err_name(hcnn_err e);
const char *hcnn_err_text(hcnn_err e);

/* One direction's cipher: a key and the next nonce.  A transport cipher
 * (from hcnn_handshake_split: `keep`) keys one OpenSSL context at its
 * first message and keeps it, setting only the nonce for each next one;
 * hcnn_cipher_wipe frees it.  A copy of the struct made after that first
 * message does not share the context (it keys one per message). */
typedef struct hcnn_cipher {
    uint8_t k[HCNN_KEY];
    uint64_t n;
    bool has_key;
    bool keep;                        /* keep a keyed context (above) */
    bool ctx_enc;                     /* ctx encrypts (else decrypts) */
    void *ctx;                        /* EVP_CIPHER_CTX keyed with k */
    const struct hcnn_cipher *ctx_of; /* the state that keyed ctx */
} hcnn_cipher;

/* Encrypt len bytes of pt with associated data ad into out (len + 16
 * bytes; out may be pt), advancing the nonce.  Without a key, copies. */
hcnn_err hcnn_cipher_encrypt(hcnn_cipher *c, const uint8_t *ad, size_t adlen,
                             const uint8_t *pt, size_t len, uint8_t *out);
/* Decrypt len bytes (>= 16 with a key) of ct into out (len - 16 bytes; out
 * may be ct).  The nonce advances only on success. */
hcnn_err hcnn_cipher_decrypt(hcnn_cipher *c, const uint8_t *ad, size_t adlen,
                             const uint8_t *ct, size_t len, uint8_t *out);
/* Forget the key (and free the context a transport cipher kept). */
void hcnn_cipher_wipe(hcnn_cipher *c);

/* An XX handshake in progress, on one side. */
typedef struct hcnn_handshake {
    bool initiator;
    int next; /* the message to write or read next: 0, 1, 2; 3 done */
    uint8_t h[HCNN_KEY];                  /* handshake hash */
    uint8_t ck[HCNN_KEY];                 /* chaining key */
    hcnn_cipher c;                        /* the symmetric state's cipher */
    uint8_t s[HCNN_KEY], s_pub[HCNN_KEY]; /* our static key pair */
    uint8_t e[HCNN_KEY], e_pub[HCNN_KEY]; /* our ephemeral key pair */
    bool has_e;
    uint8_t rs[HCNN_KEY], re[HCNN_KEY]; /* the peer's keys */
    bool has_rs, has_re;
} hcnn_handshake;

/* Start a handshake.  static_key: our static private key, or NULL for a
 * fresh one (Hyperware makes a fresh one per connection); prologue may be
 * empty (Hyperware's is).  The ephemeral key is made when it is needed,
 * unless hcnn_handshake_set_ephemeral gave one (test vectors). */
hcnn_err hcnn_handshake_init(hcnn_handshake *hs, bool initiator,
                             const uint8_t *static_key, const uint8_t *prologue,
                             size_t prologue_len);
/* Use this ephemeral private key instead of a random one (tests only). */
hcnn_err hcnn_handshake_set_ephemeral(hcnn_handshake *hs,
                                      const uint8_t key[HCNN_KEY]);
/* Our static public key (what Hyperware's payload signs). */
const uint8_t *hcnn_handshake_static_pub(const hcnn_handshake *hs);
/* Whether it is this side's turn to write (else to read). */
bool hcnn_handshake_writes(const hcnn_handshake *hs);
/* Write the next handshake message carrying payload into out (capacity
 * cap); *outlen its length. */
hcnn_err hcnn_handshake_write(hcnn_handshake *hs, const uint8_t *payload,
                              size_t plen, uint8_t *out, size_t cap,
                              size_t *outlen);
/* Read the peer's next handshake message; its payload into payload
 * (capacity cap), *plen its length. */
hcnn_err hcnn_handshake_read(hcnn_handshake *hs, const uint8_t *msg, size_t len,
                             uint8_t *payload, size_t cap, size_t *plen);
/* The peer's static public key, once read (NULL before). */
const uint8_t *hcnn_handshake_remote_static(const hcnn_handshake *hs);
/* After the third message: the two transport ciphers (the initiator sends
 * with the first, the responder with the second).  Wipes the handshake. */
hcnn_err hcnn_handshake_split(hcnn_handshake *hs, hcnn_cipher *send,
                              hcnn_cipher *recv);
/* Forget every key of the handshake. */
void hcnn_handshake_wipe(hcnn_handshake *hs);

#endif
