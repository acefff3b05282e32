/* The worker's binding as a library (hyperc_wbinding: binding.c,
 * lane_table.c, prompt.c): the host table whose every entry carries its
 * call to the node over the worker protocol, the worker's lanes and the
 * prompting message.  hyperc-worker embeds it (main.c); so can another
 * program that speaks the protocol for a guest of its own.  Prefix hcw_.
 *
 * What the embedder provides (the library defines neither):
 *
 *  - hcw_w, below: the link to the node, opened (hcw_link_shm_open or
 *    hcw_link_socket), and the frames `out` (hcw_frame_new) and `in`
 *    (hcw_in_init), set before any function of the library is called.  The
 *    embedder owns them and never frees them while the library may run; the
 *    library writes each frame it sends into `out`, reads each into `in`,
 *    and counts its frames in `sent`.  A frame the embedder sends the node
 *    itself after READY is counted in `sent` too (but for the one that tells
 *    the end: DONE, FAIL, TRAP, CRASH, EXIT), so that a lane's switch waits
 *    until the node has served it.  When it asks for lanes (READY with
 *    HCW_FEATURE_LANES, only if hcw_lanes_probe said yes), the node's
 *    socket for them is HCW_LANE_FD.
 *  - hcw_die: ends the process (it does not return) when the node has
 *    gone or broke the protocol; why is NULL or a line for stderr.
 *    Called on the library's thread, from within any of its functions.
 *
 * One thread: every function of the library, and every entry of its table,
 * is called on one thread, the one the guest runs on (the library keeps
 * plain statics and waits on the link there). */
#ifndef HYPERC_WORKER_BINDING_H
#define HYPERC_WORKER_BINDING_H

#include "../abi/native.h"
#include "lane.h"
#include "link.h"
#include "proto.h"

#include <stdbool.h>

/* The process's link to the node (the embedder's; see above). */
struct hcw_worker {
    hcw_link *link;
    uint32_t sent;   /* frames sent the node since READY (a lane's switch
                        waits until the node has served them all) */
    hcw_frame *out;  /* the frame being written */
    hcw_in in;       /* the last frame read */
    const char *pid; /* the process's id, from HELLO */
    uint8_t *slot;   /* the state slot the node handed over, mapped
                        (slot.h; hyperc-worker's --state-slot), or NULL:
                        every save goes by message.  Set before the guest
                        runs. */
};
extern struct hcw_worker hcw_w;
/* Give up: the node is gone or broke the protocol (the embedder's). */
_Noreturn void hcw_die(const char *why);

/* Fill the host table whose every entry carries its call to the node
 * (binding.c).  guard_add and guard_remove are left NULL: the embedder sets
 * them when its guest has native task stacks (hyperc-worker: fault.c's). */
void hcw_binding_init(hwn_host *t);
/* For an embedder whose guest's calls come already encoded as frames (the
 * wasm host: host.mjs packs them), on the library's thread after READY.
 * The calls that go through the table (receive, the sends) are decoded and
 * made through it; the others are sent as they are:
 *
 * hcw_binding_send_raw sends `frame` (len bytes: nframes whole frames, each
 * its length first), calls the node answers with no REPLY, counted in
 * hcw_w.sent.  hcw_binding_call_raw sends one such frame, a call with
 * results, and reads the node's REPLY into hcw_w.in, setting aside the
 * messages delivered meanwhile for the next receives; it returns &hcw_w.in
 * (valid until the library reads again).  Both end the process (hcw_die)
 * when the node has gone or answers with another operation. */
void hcw_binding_send_raw(const uint8_t *frame, size_t len, uint32_t nframes);
hcw_in *hcw_binding_call_raw(const uint8_t *frame, size_t len);
/* The blob of the message the guest has now (hw_has_blob's, hw_get_blob's
 * bytes), borrowed until the next receive or send-and-await; NULL when it
 * has none. */
const hw_blob *hcw_binding_blob(void);
/* The last blob that came with a message (hw_last_blob's), borrowed as
 * hcw_binding_blob's; NULL when none has come yet. */
const hw_blob *hcw_binding_last_blob(void);

/* Whether this kernel has futex_waitv, which a worker with lanes waits
 * with: a worker without it does not ask for lanes (lane_table.c). */
bool hcw_lanes_probe(void);

#endif
