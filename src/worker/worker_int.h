/* Internal to hyperc-worker (src/worker/): what the executable's files
 * (main.c, fault.c, sandbox.c, scribble.c) share.  The binding they embed
 * is binding.h.  Prefix hcw_ as the protocol's. */
#ifndef HYPERC_WORKER_INT_H
#define HYPERC_WORKER_INT_H

#include "binding.h"

#include <stdbool.h>

/* The link to the node: its shared memory, or a stream socket. */
#define HCW_FD 3

/* Exit statuses of the worker itself (not the guest's). */
enum {
    HCW_EXIT_PROTOCOL = 121, /* the node went away or broke the protocol */
};

/* The guest's entry is running (main.c; fault.c tells an exit() then). */
extern bool hcw_in_guest;
/* Install the fatal-signal handlers (on an alternate stack) and the exit
 * hook that tell the node how the guest ended (fault.c). */
void hcw_fault_init(void);
/* Install the seccomp filter: from then on a system call the worker does
 * not need traps (SIGSYS, told by fault.c).  socket_link: the link on
 * HCW_FD is a socket (recvmsg is allowed on it).  0, or -1 with why in
 * err (sandbox.c). */
int hcw_sandbox_init(bool socket_link, char *err, size_t errlen);
/* The task-stack guards the guest registers (main.c puts them in the
 * binding's table as guard_add and guard_remove; fault.c reads them). */
int hcw_guard_add(const void *lo, size_t len);
void hcw_guard_remove(int handle);
/* The tests' hook (scribble.c, exported): write on the lane to `peer` (an
 * address) what no honest worker writes, `what` one of "tail", "head",
 * "len-cap", "len-ring", "state", "state-closed", "counters", "op",
 * "junk", "lresp", "lresp=ID" (ID in hex, bit 63 set).  0 done, -1 no lane
 * to peer, -2 no such scribble, -3 no room for the frame. */
int hcw_test_lane_scribble(const char *peer, const char *what);
/* The tests' hook (scribble.c, exported): the id of the last request the
 * peer sent by lane and of one of this worker's to it still waiting (each
 * 0: none).  0, or -1 without a lane to peer. */
int hcw_test_lane_ids(const char *peer, uint64_t *last_in, uint64_t *pending);
#endif
