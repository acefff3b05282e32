/* Internal to the node's net room (src/node/net/): what travels between
 * nodes, in msgpack exactly as Hyperware's rmp-serde writes it —
 * KernelMessage and the handshake's HandshakePayload (docs/node.md,
 * "Networking"; tests/rmpref is the reference).  Structs are arrays of
 * their fields, addresses their strings, bytes arrays of integers (bin is
 * accepted too, as rmp-serde 1.2 and later accept it), integers in their
 * shortest form, Message a one-key map {"Request": ...} or
 * {"Response": [response, context]}.  Prefix hcnn_.
 *
 * Decoding takes bytes from another node: it checks the structure before
 * msgpack-c allocates anything, refuses what rmp-serde would refuse
 * (wrong shapes, lengths, types, strings that are not UTF-8) and what a C
 * string cannot hold (a NUL inside a string), and says why. */
#ifndef HYPERC_NODE_NET_WIRE_H
#define HYPERC_NODE_NET_WIRE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A capability carried with a message, and its issuer's signature. */
typedef struct hcnn_cap {
    char *issuer; /* an address string */
    char *params; /* a JSON text */
    uint8_t *sig;
    size_t sig_len;
} hcnn_cap;

/* A KernelMessage.  Decoded ones own every pointer (hcnn_kmsg_fini);
 * encoded ones are only read. */
typedef struct hcnn_kmsg {
    uint64_t id;
    char *source, *target; /* address strings */
    char *rsvp;            /* NULL: none */
    bool is_response;
    bool inherit;
    bool has_expects; /* requests: expects_response, seconds */
    uint64_t expects;
    uint8_t *body;
    size_t body_len;
    char *metadata; /* NULL: none */
    hcnn_cap *caps;
    size_t ncaps;
    bool has_context; /* responses: the context */
    uint8_t *context;
    size_t context_len;
    bool has_blob;
    char *blob_mime; /* NULL: none */
    uint8_t *blob;
    size_t blob_len;
} hcnn_kmsg;

/* Append m's msgpack to sb (which aborts when out of memory, as msgpack-c's
 * buffers do through the node's allocator). */
void hcnn_kmsg_encode(const hcnn_kmsg *m, msgpack_sbuffer *sb);
/* Decode exactly one KernelMessage from p[0..n) into *out (zeroed first).
 * true, or false with a sentence in err and *out left empty. */
bool hcnn_kmsg_decode(const uint8_t *p, size_t n, hcnn_kmsg *out, char *err,
                      size_t errlen);
void hcnn_kmsg_fini(hcnn_kmsg *m);

/* The handshake's payload: [protocol_version, name, signature,
 * proxy_request]. */
typedef struct hcnn_hs_payload {
    uint64_t version;
    char *name;
    uint8_t *sig;
    size_t sig_len;
    bool proxy_request;
} hcnn_hs_payload;

void hcnn_hs_payload_encode(const hcnn_hs_payload *h, msgpack_sbuffer *sb);
bool hcnn_hs_payload_decode(const uint8_t *p, size_t n, hcnn_hs_payload *out,
                            char *err, size_t errlen);
void hcnn_hs_payload_fini(hcnn_hs_payload *h);

/* What a node sends a router before its handshake, to be spliced to
 * another node: [protocol_version, source, signature, target]; the
 * signature is the source's networking key over target ‖ router's name. */
typedef struct hcnn_routing_request {
    uint64_t version;
    char *source;
    uint8_t *sig;
    size_t sig_len;
    char *target;
} hcnn_routing_request;

void hcnn_routing_request_encode(const hcnn_routing_request *q,
                                 msgpack_sbuffer *sb);
bool hcnn_routing_request_decode(const uint8_t *p, size_t n,
                                 hcnn_routing_request *out, char *err,
                                 size_t errlen);
void hcnn_routing_request_fini(hcnn_routing_request *q);

/* An HnsUpdate: what a name resolves to, as hns-indexer sends it:
 * [name, public_key, [ip...], {transport: port}, [router...]]. */
typedef struct hcnn_hns {
    char *name;
    char *public_key; /* hex, 0x optional */
    char **ips;
    size_t nips;
    char **port_names; /* "tcp", "ws", ... */
    uint16_t *ports;
    size_t nports;
    char **routers;
    size_t nrouters;
} hcnn_hns;

void hcnn_hns_fini(hcnn_hns *h);

/* NetAction, the requests net:distro:sys answers, in its rmp-serde form. */
#define HCNN_NET_ACTION_MAP(XX)                                                \
    XX(CONNECTION_REQUEST, "ConnectionRequest")                                \
    XX(HNS_UPDATE, "HnsUpdate")                                                \
    XX(HNS_BATCH_UPDATE, "HnsBatchUpdate")                                     \
    XX(GET_PEERS, "GetPeers")                                                  \
    XX(GET_PEER, "GetPeer")                                                    \
    XX(GET_DIAGNOSTICS, "GetDiagnostics")                                      \
    XX(SIGN, "Sign")                                                           \
    XX(VERIFY, "Verify")

typedef enum hcnn_net_action_kind {
#define HCNN_NA_ENUM(name, text) HCNN_NA_##name,
    HCNN_NET_ACTION_MAP(HCNN_NA_ENUM)
#undef HCNN_NA_ENUM
} hcnn_net_action_kind;

typedef struct hcnn_net_action {
    hcnn_net_action_kind kind;
    char *text;    /* ConnectionRequest's node, GetPeer's name, Verify's
                      from (an address string) */
    hcnn_hns *hns; /* HnsUpdate (one) or HnsBatchUpdate */
    size_t nhns;
    uint8_t *sig; /* Verify's signature */
    size_t sig_len;
} hcnn_net_action;

/* NetAction::ConnectionRequest(from), what a router sends a node it routes
 * for: {"ConnectionRequest": from}. */
void hcnn_connection_request_encode(const char *from, msgpack_sbuffer *sb);
/* Decode one NetAction from p[0..n); false with a sentence in err. */
bool hcnn_net_action_decode(const uint8_t *p, size_t n, hcnn_net_action *out,
                            char *err, size_t errlen);
void hcnn_net_action_fini(hcnn_net_action *a);

/* An Identity as NetResponse carries it: [name, networking_key, routing],
 * routing {"Direct": [ip, {transport: port}]} when ip is set, else
 * {"Routers": [router...]}.  Ports 0 are left out. */
typedef struct hcnn_identity {
    const char *name;
    const char *networking_key; /* hex */
    const char *ip;             /* NULL: routers */
    uint16_t tcp_port, ws_port;
    char *const *routers;
    size_t nrouters;
} hcnn_identity;

void hcnn_identity_pack(msgpack_packer *pk, const hcnn_identity *id);

#endif
