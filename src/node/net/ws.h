/* Internal to the node's net room: Hyperware's WebSocket links (ws.c) —
 * the HTTP upgrade, both roles (http-parser), and RFC 6455 framing
 * (wslay's event API), over byte buffers the caller moves to and from
 * its socket.  Pure: no I/O, so that it can be fuzzed.  One link per
 * object, one thread at a time.  Prefix hcnn_. */
#ifndef HYPERC_NODE_NET_WS_H
#define HYPERC_NODE_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Where bytes to send go (appended to the connection's output). */
typedef void (*hcnn_sink)(void *arg, const uint8_t *p, size_t n);

/* The largest WebSocket message a link accepts: hyperdrive decrypts each
 * frame into 65,535 bytes, so 65,535 + the 16-byte tag. */
#define HCNN_WS_MSG_MAX 65551u

typedef struct hcnn_ws hcnn_ws;

/* A link for the dialing side (client: masks its frames, sends the
 * upgrade request) or the accepting side.  Never NULL (aborts on OOM). */
hcnn_ws *hcnn_ws_new(bool client);
void hcnn_ws_free(hcnn_ws *w);

/* Client: write the upgrade request for ws://host:port/ through sink. */
void hcnn_ws_request(hcnn_ws *w, const char *host, unsigned port,
                     hcnn_sink sink, void *arg);

/* Advance the upgrade with p[0..n): 1 when the link is open (*used bytes
 * were the upgrade's; what follows is frames), 0 when more bytes are
 * needed (all consumed), -1 when it failed (*why: a sentence; the
 * connection must end).  The accepting side writes its answer through
 * sink: 101, or 400 before a -1. */
int hcnn_ws_upgrade(hcnn_ws *w, const uint8_t *p, size_t n, size_t *used,
                    hcnn_sink sink, void *arg, const char **why);

/* Read frames from p[0..n) (all consumed).  Binary messages wait for
 * hcnn_ws_next; pings are answered (at the next flush), pongs ignored.
 * 0, or -1 when the link is broken (*why): a text or close frame, a
 * message over HCNN_WS_MSG_MAX, a protocol error. */
int hcnn_ws_recv(hcnn_ws *w, const uint8_t *p, size_t n, const char **why);
/* The next binary message received: true with *msg (the caller's to
 * free) and *len; false when none waits. */
bool hcnn_ws_next(hcnn_ws *w, uint8_t **msg, size_t *len);

/* Queue p[0..n) as one binary message (copied). */
void hcnn_ws_send(hcnn_ws *w, const uint8_t *p, size_t n);
/* Queue a ping (hyperdrive's keep-alive). */
void hcnn_ws_ping(hcnn_ws *w);
/* Write every queued frame through sink.  false when the link cannot
 * send any more (a fatal error, or a close was sent). */
bool hcnn_ws_flush(hcnn_ws *w, hcnn_sink sink, void *arg);

#endif
