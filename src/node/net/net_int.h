/* Internal to the node's net room (src/node/net/): what its files share —
 * the node's networking identity and the PKI.  Prefix hcnn_. */
#ifndef HYPERC_NODE_NET_INT_H
#define HYPERC_NODE_NET_INT_H

#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "wire.h"

#define HCNN_PUBKEY 32
#define HCNN_SIG 64

/* ------------------------------------------------------------- identity */

/* The node's Ed25519 networking key (ident.c).  Opaque. */
typedef struct hcnn_ident hcnn_ident;

/* Load <dir>/networking_key.pem, or make a new key there (mode 0600, the
 * directory 0700) when there is none.  NULL with a sentence in err. */
hcnn_ident *hcnn_ident_load(const char *dir, char *err, size_t errlen);
void hcnn_ident_free(hcnn_ident *id);
/* The public key, and as lowercase hex without 0x (65 bytes with NUL). */
const uint8_t *hcnn_ident_pub(const hcnn_ident *id);
void hcnn_ident_pub_hex(const hcnn_ident *id, char out[2 * HCNN_PUBKEY + 1]);
/* Sign msg; false only if OpenSSL fails.  Any thread. */
bool hcnn_ident_sign(const hcnn_ident *id, const uint8_t *msg, size_t len,
                     uint8_t sig[HCNN_SIG]);
/* Whether sig is pub's Ed25519 signature of msg. */
bool hcnn_ed25519_verify(const uint8_t pub[HCNN_PUBKEY], const uint8_t *msg,
                         size_t len, const uint8_t *sig, size_t sig_len);

/* ------------------------------------------------------------------ PKI */

/* What the node knows of another node: hyperdrive's HnsUpdate, resolved
 * (the first ip; ports by transport name; routers when it has no ip). */
typedef struct hcnn_peer_id {
    char *name;
    uint8_t key[HCNN_PUBKEY];
    bool has_key; /* the key was 64 hex digits (else nothing verifies) */
    char *ip;     /* NULL: indirect (routers) */
    uint16_t tcp_port, ws_port; /* 0: not offered */
    char **routers;
    size_t nrouters;
} hcnn_peer_id;

void hcnn_peer_id_fini(hcnn_peer_id *p);

/* The PKI: name -> identity, filled from a peers file and from HnsUpdate
 * messages.  Thread-safe (one mutex). */
typedef struct hcnn_pki hcnn_pki;

hcnn_pki *hcnn_pki_new(const char *file);
void hcnn_pki_free(hcnn_pki *k);
/* A copy of name's entry into *out (hcnn_peer_id_fini it; out NULL: only
 * whether it is known), true; false when unknown.  Reloads the peers file first
 * when it changed (checked at most every 250 ms). */
bool hcnn_pki_get(hcnn_pki *k, const char *name, hcnn_peer_id *out);
/* Add or replace an entry from an HnsUpdate in JSON (the peers file's
 * form) or decoded from msgpack; the entry is copied.  0, or -1 with err. */
int hcnn_pki_put(hcnn_pki *k, const hcnn_peer_id *p, char *err, size_t errlen);
/* Add or replace name's entry from an HnsUpdate (net:distro:sys's
 * NetAction).  Such entries stay when the peers file changes.  0, or -1
 * with err (a name that is not hypermap-safe). */
int hcnn_pki_put_hns(hcnn_pki *k, const hcnn_hns *h, char *err, size_t errlen);
/* Load the peers file now: a JSON array of HnsUpdates
 * ({"name", "public_key", "ips", "ports": {"tcp", "ws"}, "routers"}).
 * 0, or -1 with err (the PKI keeps what it had). */
int hcnn_pki_reload(hcnn_pki *k, char *err, size_t errlen);
/* How many entries. */
size_t hcnn_pki_count(hcnn_pki *k);
/* Fill *out from hex (with or without 0x): true when 32 bytes. */
bool hcnn_key_from_hex(const char *hex, uint8_t out[HCNN_PUBKEY]);

#endif
