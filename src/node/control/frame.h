/* Internal to the hyperc node, shared with the hyperc command (src/cli): the
 * frames of the control socket <home>/node.sock.  A frame is a 4-byte
 * big-endian length and that many bytes of JSON (an object or an array);
 * one request or one reply per frame.  Both ends refuse a frame longer than
 * HCN_CTL_MAX_FRAME.  Not an installed header. */
#ifndef HYPERC_NODE_CONTROL_FRAME_H
#define HYPERC_NODE_CONTROL_FRAME_H

#include <jansson.h>
#include <stddef.h>

/* The longest frame body either end reads or writes (64 MiB). */
#define HCN_CTL_MAX_FRAME (64u * 1024 * 1024)

/* What hcn_ctl_read_frame and hcn_ctl_write_frame report. */
typedef enum hcn_ctl_status {
    HCN_CTL_OK = 0,
    /* the peer closed (or the socket failed) before a whole frame */
    HCN_CTL_CLOSED = -1,
    /* a frame over the limit, not JSON, or no memory for it */
    HCN_CTL_BAD = -2,
} hcn_ctl_status;

/* Read exactly n bytes (retrying on EINTR): 0, or -1 on end of file or an
 * error. */
int hcn_ctl_read_full(int fd, void *buf, size_t n);
/* Write exactly n bytes (send, no SIGPIPE; retrying on EINTR): 0 or -1. */
int hcn_ctl_write_full(int fd, const void *buf, size_t n);

/* Read one frame.  HCN_CTL_OK with *out the JSON (caller's reference);
 * otherwise *out is NULL and err says why in a sentence (a frame over the
 * limit is not read: the stream is then out of step, close it). */
hcn_ctl_status hcn_ctl_read_frame(int fd, json_t **out, char *err,
                                  size_t errlen);

/* Write j as one frame.  HCN_CTL_BAD (nothing written, err says why) when
 * it would be over the limit; HCN_CTL_CLOSED when the socket fails. */
hcn_ctl_status hcn_ctl_write_frame(int fd, const json_t *j, char *err,
                                   size_t errlen);

#endif
