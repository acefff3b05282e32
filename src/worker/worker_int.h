/* Internal to hyperc-worker (src/worker/): what its files share.  Prefix
 * hcw_ as the protocol's. */
#ifndef HYPERC_WORKER_INT_H
#define HYPERC_WORKER_INT_H

#include "../abi/native.h"
#include "lane.h"
#include "link.h"
#include "proto.h"

#include <stdbool.h>

/* The link to the node: its shared memory, or a stream socket. */
#define HCW_FD 3

/* Exit statuses of the worker itself (not the guest's). */
enum {
    HCW_EXIT_PROTOCOL = 121, /* the node went away or broke the protocol */
};

/* The worker's one process: single-threaded, so plain globals. */
struct hcw_worker {
    hcw_link *link;
    uint32_t sent;  /* frames sent the node since READY (a lane's switch
                       waits until the node has served them all) */
    hcw_frame *out; /* the frame being written */
    hcw_in in;      /* the last frame read */
    hwn_host table;
    const char *pid;
    bool in_guest; /* the guest's entry is running */
};
extern struct hcw_worker hcw_w;

/* Fill the host table whose every entry carries its call to the node
 * (binding.c). */
void hcw_binding_init(hwn_host *t);
/* Install the fatal-signal handlers (on an alternate stack) and the exit
 * hook that tell the node how the guest ended (fault.c). */
void hcw_fault_init(void);
/* Install the seccomp filter: from then on a system call the worker does
 * not need traps (SIGSYS, told by fault.c).  socket_link: the link on
 * HCW_FD is a socket (recvmsg is allowed on it).  0, or -1 with why in
 * err (sandbox.c). */
int hcw_sandbox_init(bool socket_link, char *err, size_t errlen);
/* The task-stack guards the guest registers (the binding's guard_add and
 * guard_remove stay in the worker; fault.c reads them). */
int hcw_guard_add(const void *lo, size_t len);
void hcw_guard_remove(int handle);
/* Whether this kernel has futex_waitv, which a worker with lanes waits
 * with: a worker without it does not ask for lanes (lane_table.c). */
bool hcw_lanes_probe(void);
/* Handle the node's lane frame in `in` (LANE_OPEN: the memfd is taken from
 * fd 4 and mapped; LANE_CLOSE: unmapped), answering LANE_DROP when a lane
 * is refused or closed.  false when `in` is no lane frame.  The guest's
 * thread, wherever a frame of the node's is read (binding.c). */
bool hcw_lanes_ctl(hcw_in *in);
/* The worker read from the node an item its mailbox numbered seq (0: a
 * timeout, none): the newest such number goes into each lane it reads, for
 * the peer (docs/lane-design.md §3a). */
void hcw_lanes_note_read(uint32_t seq);
/* Where each lane's inbound ring ended when the worker read an item of the
 * node's: the lane's frames before it go to the guest first, those after
 * it after the item (docs/lane-design.md §3a). */
typedef struct hcw_lane_snap {
    struct {
        uint32_t number; /* the lane in that slot then, 0: none */
        uint32_t pos;
    } m[HCW_LANES_MAX];
} hcw_lane_snap;
void hcw_lanes_snapshot(hcw_lane_snap *snap);
/* A request without a response to a lane's peer, sent by lane if it may
 * go so now (no inherit, expects, capabilities, context or blob; the lane
 * open and permitted; every frame the worker sent served, and the peer has
 * read all it was sent by node; room in the ring).  false: send it by
 * node. */
bool hcw_lanes_send_note(const hw_address *target, const hw_request *req,
                         const hw_bytes *context, const hw_blob *blob);
/* A frame just sent the node may have sent target (NULL: any process,
 * as a response does) something by node: a lane to it waits until the node
 * has served that frame before it carries anything. */
void hcw_lanes_sent_by_node(const hw_address *target);
/* The slot of the next lane (in turn) with a frame for the guest; with
 * snap, only a frame before the lane's mark there.  -1: none. */
int hcw_lanes_next(const hcw_lane_snap *snap);
/* Take lane i's next frame for the guest into *out (the guest's to free).
 * false when it was no request a lane carries: the lane is given up (the
 * node told why), and nothing taken. */
bool hcw_lanes_take(int i, hw_receive_result *out);
/* Wait until the node's ring or a lane has something; true when it is
 * the node's ring (or after HCW_LINK_CHECK_MS with nothing: false). */
bool hcw_lanes_wait(void);
/* Whether the node has handed this worker a lane (LANE_OPEN came, even
 * one it refused): from then on it is served as a lane worker, which
 * sends RECEIVE only to take an item (docs/worker-protocol.md, "Lanes"). */
bool hcw_lanes_active(void);
/* Give up: the node is gone or broke the protocol. */
_Noreturn void hcw_die(const char *why);

#endif
