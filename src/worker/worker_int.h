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
/* Whether the node has handed this worker a lane (LANE_OPEN came, even
 * one it refused): from then on it is served as a lane worker, which
 * sends RECEIVE only to take an item (docs/worker-protocol.md, "Lanes"). */
bool hcw_lanes_active(void);
/* Give up: the node is gone or broke the protocol. */
_Noreturn void hcw_die(const char *why);

#endif
