/* Internal to the node's net room: the transport framing of Hyperware's
 * TCP links, read incrementally (frame.c).  A message is a big-endian u32
 * plaintext length (not encrypted), then chunks, each a big-endian u16
 * ciphertext length and the ciphertext of at most 65,519 plaintext bytes
 * under the receive cipher.  Pure: bytes in, messages out, no I/O, so that
 * it can be fuzzed.  Prefix hcnn_. */
#ifndef HYPERC_NODE_NET_FRAME_H
#define HYPERC_NODE_NET_FRAME_H

#include "noise.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* hyperdrive's MESSAGE_MAX_SIZE: the longest message either side sends. */
#define HCNN_MESSAGE_MAX 10485800u

/* A message being read. */
typedef struct hcnn_reader {
    bool have_len;
    uint8_t *msg; /* msg_len bytes, msg_got of them decrypted */
    size_t msg_len, msg_got;
} hcnn_reader;

/* Read from p[0..n) with the receive cipher rx.  Returns 1 when a message
 * is complete (*msg and *len: the caller's to free), 0 when more bytes are
 * needed, -1 when the stream is broken (*why: a sentence; the connection
 * must end).  *used is set to the bytes consumed in every case; call again
 * with the rest after a 1. */
int hcnn_reader_step(hcnn_reader *r, hcnn_cipher *rx, const uint8_t *p,
                     size_t n, size_t *used, uint8_t **msg, size_t *len,
                     const char **why);
void hcnn_reader_fini(hcnn_reader *r);

/* The frame of a message of n plaintext bytes: 4 + n + 18 per chunk. */
size_t hcnn_frame_size(size_t n);
/* Write the frame of p[0..n) into out (hcnn_frame_size(n) bytes) under
 * the send cipher tx.  false when the cipher fails or n is over
 * HCNN_MESSAGE_MAX. */
bool hcnn_frame_write(hcnn_cipher *tx, const uint8_t *p, size_t n,
                      uint8_t *out);

/* WebSocket links carry a message differently: the plaintext is the u32
 * length then the message, cut into chunks of at most 65,519 bytes, each
 * encrypted and sent as one binary WebSocket message (the length is inside
 * the first).  Read one such WebSocket message ct[0..n): 1 when the
 * message is complete (*msg, *len: the caller's to free), 0 when more are
 * needed, -1 when the stream is broken (*why). */
int hcnn_reader_ws(hcnn_reader *r, hcnn_cipher *rx, const uint8_t *ct, size_t n,
                   uint8_t **msg, size_t *len, const char **why);
/* Write p[0..n) as WebSocket chunks: each ciphertext through sink (the
 * caller makes each one binary WebSocket message).  false when the cipher
 * fails or n is 0 or over HCNN_MESSAGE_MAX. */
bool hcnn_frame_write_ws(hcnn_cipher *tx, const uint8_t *p, size_t n,
                         void (*sink)(void *arg, const uint8_t *ct, size_t len),
                         void *arg);

#endif
