/* Internal to hyperc: lanes, shared-memory rings between two isolated
 * workers (docs/lane-design.md), made by the node and handed to each
 * worker over its fd 4.  Prefix hcw_lane_.
 *
 * A lane is one sealed memfd of the layout a worker link has (link.c): a
 * page of header, then two rings of HCW_LANE_RING_BYTES.  The header, all
 * little-endian u32:
 *
 *   0    magic 0x656e616c ("lane"), layout 1, ring size R, lane number
 *        (written once by the node, before anyone else maps it)
 *   16   state: HCW_LANE_STATE_OPEN, _CLOSING, _CLOSED (written by the node)
 *   64   ring 0's producer line, 128 its consumer line (link.c)
 *   192  ring 1's lines, 256
 *   320  direction 0's words (side 0's process to side 1's), 384
 *        direction 1's: last_seq (the node), read_seq (the reader's
 *        worker; docs/lane-design.md §3a), req_written (the writer's
 *        worker), full (the node; §6)
 *   448  direction 0's req_taken (the reader's worker), 512 direction 1's
 *   4096 ring 0's bytes, then ring 1's
 *
 * Side s writes ring s and reads ring 1 - s (the node's LANE_OPEN will
 * say which side a worker is).  Every header word is advice: either
 * worker can write it, so each reads it once, checks it, and keeps its
 * own copy of what it uses. */
#ifndef HYPERC_WORKER_LANE_H
#define HYPERC_WORKER_LANE_H

#include "link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of each of a lane's rings (a power of two); a lane's frame is at
 * most a quarter of it, length included (HCW_LANE_MAX_FRAME). */
#define HCW_LANE_RING_BYTES (64u * 1024)
#define HCW_LANE_MAX_FRAME (HCW_LANE_RING_BYTES / 4)
/* The most lanes a worker holds at once: the node opens no more for it,
 * counting those it has not dropped yet. */
#define HCW_LANES_MAX 64
/* The worker's descriptor on which the node hands it lanes: one end of a
 * SOCK_SEQPACKET socket pair, whose other end the node only sends on. */
#define HCW_LANE_FD 4

/* The state word. */
enum {
    HCW_LANE_STATE_OPEN = 1,    /* frames may be sent */
    HCW_LANE_STATE_CLOSING = 2, /* take no more: a side is ending */
    HCW_LANE_STATE_CLOSED = 3,  /* both fall back to the node */
};

typedef struct hcw_lane hcw_lane;

/* The node's lane number `number`: a new memfd (MFD_CLOEXEC, sealed
 * against shrinking, growing and further seals), its header written with
 * the state HCW_LANE_STATE_OPEN, and the node's own mapping.  *fd_out is the
 * memfd to hand both workers (hcw_lane_send); the caller closes it.  NULL
 * with errno. */
hcw_lane *hcw_lane_new(uint32_t number, int *fd_out);
/* A worker's side (0 or 1) of the lane in the memfd fd, which must be lane
 * number `number`: its size (fstat) and header are checked, it is mapped,
 * and fd is closed.  NULL with a sentence in err (fd is then closed too:
 * a descriptor of a lane that is refused is of no use). */
hcw_lane *hcw_lane_map(int fd, uint32_t number, int side, char *err,
                       size_t errlen);
/* The node: send lane `number`'s memfd over sock (its end of a worker's
 * fd 4) as one message: the number, 4 bytes little-endian, with the memfd
 * in SCM_RIGHTS.  Never waits.  0, or -1 with errno (EAGAIN: the
 * worker's queue is full). */
int hcw_lane_send(int sock, uint32_t number, int memfd);
/* The worker: take one message from sock (HCW_LANE_FD) without waiting
 * (MSG_DONTWAIT | MSG_CMSG_CLOEXEC): it must be lane `number` and carry
 * one descriptor, which is checked and mapped as hcw_lane_map does and
 * closed.  NULL with a sentence in err: nothing waits, the node closed the
 * socket, a message of another shape or lane, or a bad mapping; any
 * descriptor that came is closed. */
hcw_lane *hcw_lane_receive(int sock, uint32_t number, int side, char *err,
                           size_t errlen);

/* A worker's side of the lane: its rings (link.h: hcw_link_try_send,
 * hcw_link_try_recv, hcw_link_wait_any).  Owned by the lane. */
hcw_link *hcw_lane_link(hcw_lane *l);
/* The node's view of side `side` (0 or 1): to drain ring 1 - side when
 * that ring's reader has ended.  NULL for a worker's lane. */
hcw_link *hcw_lane_view(hcw_lane *l, int side);
uint32_t hcw_lane_number(const hcw_lane *l);
/* The state word as it is now: a value that is not a state reads as
 * HCW_LANE_STATE_CLOSED (the header is advice). */
uint32_t hcw_lane_state(const hcw_lane *l);
/* The state word as it is, whatever it holds (a worker tells a value that
 * is no state, which only a scribbling worker writes: a breach). */
uint32_t hcw_lane_state_word(const hcw_lane *l);
/* The whole mapping and its length (hcw_test_lane_scribble, scribble.c). */
uint8_t *hcw_lane_mapping(const hcw_lane *l, size_t *len);
/* The node: set the state; HCW_LANE_STATE_CLOSING and _CLOSED also wake both
 * rings' readers, so that they look at it. */
void hcw_lane_set_state(hcw_lane *l, uint32_t state);
/* Direction d's words (from side d's process to side 1 - d's):
 * last_seq, the number the reader's mailbox gave the last message side d's
 * process sent it by node (the node writes it after each such push); and
 * read_seq, the highest such number the reader's worker has read from the
 * node (it writes it).  Advice, like every header word. */
void hcw_lane_set_last_seq(hcw_lane *l, int d, uint32_t v);
uint32_t hcw_lane_last_seq(const hcw_lane *l, int d);
void hcw_lane_set_read_seq(hcw_lane *l, int d, uint32_t v);
uint32_t hcw_lane_read_seq(const hcw_lane *l, int d);
/* Direction d's requests (docs/lane-design.md §6), each a count modulo
 * 2^32 from 0: req_written, the LREQs side d's worker has put in ring d
 * (it writes it after each); req_taken, those the reader's worker has
 * handed its guest (it writes it at each). */
void hcw_lane_set_req_written(hcw_lane *l, int d, uint32_t v);
uint32_t hcw_lane_req_written(const hcw_lane *l, int d);
void hcw_lane_set_req_taken(hcw_lane *l, int d, uint32_t v);
uint32_t hcw_lane_req_taken(const hcw_lane *l, int d);
/* The requests waiting in direction d as those words say, clamped to
 * [0, quota]: what the node counts (either worker may write them). */
uint32_t hcw_lane_backlog(const hcw_lane *l, int d, uint32_t quota);
/* Direction d's `full` flag: the node raises it while the reader's mailbox
 * and inbound lanes hold its bound of requests, and the writer then sends
 * its requests by node.  Set stores only when the value changes. */
void hcw_lane_set_full(hcw_lane *l, int d, bool full);
bool hcw_lane_full(const hcw_lane *l, int d);
/* Unmap and release.  NULL is ignored. */
void hcw_lane_free(hcw_lane *l);

#endif
