/* Internal to the node: what the HTTP room (src/node/http/) offers the
 * rest of the node: http-server:distro:sys (server.c, with util.c and
 * auth.c) and http-client:distro:sys (client.c).  Their own shared pieces
 * are in http_int.h. */
#ifndef HYPERC_NODE_HTTP_H
#define HYPERC_NODE_HTTP_H

#include "../kernel/kernel.h"

#include <http_parser.h>

/* http-client:distro:sys: registers the module (0; the signature of the
 * node's module table). */
int hcn_mod_http_client_add(hcn_node *n, char *err, size_t errlen);

/* http-client:distro:sys (client.c): HttpClientAction as serde
 * reads it. */
typedef enum hcn_hc_kind {
    HCN_HC_HTTP,
    HCN_HC_WS_OPEN,
    HCN_HC_WS_PUSH,
    HCN_HC_WS_CLOSE,
} hcn_hc_kind;

typedef struct hcn_hc_header {
    char *name, *value;
} hcn_hc_header;

typedef struct hcn_hc_request {
    hcn_hc_kind kind;
    char *method;  /* Http */
    char *version; /* Http; NULL = none */
    char *url;     /* Http, WebSocketOpen */
    hcn_hc_header *headers;
    size_t nheaders;
    bool has_timeout; /* Http: the optional "timeout" (seconds) */
    uint64_t timeout_s;
    uint32_t channel_id;      /* WebSocket* */
    hcc_ws_type message_type; /* WebSocketPush */
} hcn_hc_request;

/* Parse a request body; 0, or -1 (Hyperware's MalformedRequest).  Release
 * a parsed request with hcn_hc_request_fini. */
int hcn_hc_parse(const void *body, size_t len, hcn_hc_request *out);
void hcn_hc_request_fini(hcn_hc_request *r);
/* Check an Http request as Hyperware does before sending it: NULL when it
 * may go, else the error reply (`{"Err":{"BadMethod":...}}`, BadUrl,
 * BadVersion), which the caller frees. */
char *hcn_hc_check_http(const hcn_hc_request *r);
/* A response header name as Hyperware reports it ("content-type" ->
 * "Content-Type"); caller frees. */
char *hcn_hc_header_case(const char *name, size_t len);
/* http-client's reading of a WebSocket upgrade answer (client.c), byte in:
 * init, feed what the server sent until DONE (*used: the bytes of it that
 * were the answer; the rest are frames) or BAD (malformed, or longer than
 * 16 KiB), then ask whether it accepts the key's expected
 * Sec-WebSocket-Accept; fini frees.  Internal; also for fuzzing. */
typedef struct hcn_hc_upgrade {
    http_parser p;
    http_parser_settings st;
    char field[64];
    size_t flen;
    char *accept; /* Sec-WebSocket-Accept (owned) */
    bool upgrade_ok;
    bool in_value;
    bool done;
    int which; /* 0 none, 1 upgrade, 2 sec-websocket-accept */
    char value[256];
    size_t vlen;
    size_t total;
} hcn_hc_upgrade;

enum { HCN_HC_UPGRADE_MORE, HCN_HC_UPGRADE_DONE, HCN_HC_UPGRADE_BAD };

void hcn_hc_upgrade_init(hcn_hc_upgrade *u);
int hcn_hc_upgrade_feed(hcn_hc_upgrade *u, const char *buf, size_t n,
                        size_t *used);
bool hcn_hc_upgrade_accepted(const hcn_hc_upgrade *u, const char *want);
void hcn_hc_upgrade_fini(hcn_hc_upgrade *u);

/* Internal, for fuzzing: what an open outgoing WebSocket does with `bytes`
 * from the server (frames, read through the connection's own wslay
 * callbacks, messages delivered to `owner` as from module process `self`
 * of node n), on the calling thread; no socket. */
void hcn_hc_ws_probe(hcn_node *n, hcn_proc *self, const char *owner,
                     uint64_t max_bytes, const uint8_t *bytes, size_t len);

/* http-server:distro:sys: registers the module, listens on cfg.http_port
 * (when > 0) and starts its libuv thread; 0, or -1 with a message. */
int hcn_mod_http_add(hcn_node *n, char *err, size_t errlen);
/* Stop the server's thread and close every connection (shutdown). */
void hcn_mod_http_stop(hcn_node *n);

#endif
