/* The worker's lanes (docs/lane-design.md): what LANE_OPEN hands it and
 * LANE_CLOSE takes back.  The node sends both among its frames; the worker
 * handles them wherever it reads the node's frames (binding.c), so they
 * never reach the guest.  Nothing is sent or read by lane yet: a lane is
 * mapped, kept and unmapped. */
#include "worker_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

typedef struct wlane {
    uint32_t number;
    int side;
    hcw_lane *lane; /* NULL: the slot is free */
    hw_address peer;
    bool send_ok, recv_ok;
    uint32_t quota;
} wlane;

static struct {
    wlane v[HCW_LANES_MAX];
    hcw_frame *out;    /* LANE_DROP, apart from the guest's calls' frame */
    bool active;       /* a LANE_OPEN has come */
    uint32_t read_seq; /* the newest mailbox number read from the node */
} lanes;

void hcw_lanes_note_read(uint32_t seq)
{
    if (seq == 0 || (int32_t)(seq - lanes.read_seq) <= 0)
        return;
    lanes.read_seq = seq;
    for (size_t i = 0; i < HCW_LANES_MAX; i++)
        if (lanes.v[i].lane)
            hcw_lane_set_read_seq(lanes.v[i].lane, 1 - lanes.v[i].side, seq);
}

bool hcw_lanes_active(void)
{
    return lanes.active;
}

bool hcw_lanes_probe(void)
{
    /* no waiters is EINVAL where the call exists, ENOSYS where it does not */
    long rc = syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0);
    return rc == -1 && errno == EINVAL;
}

static void drop(uint32_t number, const char *why)
{
    if (lanes.out == NULL)
        lanes.out = hcw_frame_new();
    hcw_frame_begin(lanes.out, HCW_LANE_DROP, 2);
    hcw_put_u64(lanes.out, number);
    hcw_put_str(lanes.out, why);
    if (hcw_link_send(hcw_w.link, lanes.out) != 0)
        hcw_die(NULL);
}

static wlane *find(uint32_t number)
{
    for (size_t i = 0; i < HCW_LANES_MAX; i++)
        if (lanes.v[i].lane && lanes.v[i].number == number)
            return &lanes.v[i];
    return NULL;
}

static void lane_open(hcw_in *in)
{
    lanes.active = true;
    uint64_t number, side, quota;
    bool send_ok, recv_ok;
    hw_address peer;
    if (!hcw_get_u64(in, &number) || number > UINT32_MAX ||
        !hcw_get_address(in, &peer))
        hcw_die("a malformed LANE_OPEN from the node");
    if (!hcw_get_u64(in, &side) || side > 1 || !hcw_get_bool(in, &send_ok) ||
        !hcw_get_bool(in, &recv_ok) || !hcw_get_u64(in, &quota) ||
        quota > UINT32_MAX) {
        hw_address_fini(&peer);
        hcw_die("a malformed LANE_OPEN from the node");
    }
    /* its descriptor is taken from fd 4 whatever happens, so that the next
     * lane's is the next message there */
    char err[160];
    hcw_lane *l = hcw_lane_receive(HCW_LANE_FD, (uint32_t)number, (int)side,
                                   err, sizeof err);
    wlane *slot = NULL;
    for (size_t i = 0; l && slot == NULL && i < HCW_LANES_MAX; i++)
        if (lanes.v[i].lane == NULL)
            slot = &lanes.v[i];
    if (l && find((uint32_t)number)) {
        snprintf(err, sizeof err, "lane %u is open already", (unsigned)number);
        hcw_lane_free(l);
        l = NULL;
    } else if (l && slot == NULL) {
        snprintf(err, sizeof err, "more than %d lanes", HCW_LANES_MAX);
        hcw_lane_free(l);
        l = NULL;
    }
    if (l == NULL) {
        hw_address_fini(&peer);
        drop((uint32_t)number, err);
        return;
    }
    /* what this worker has read from the node so far, for the peer's
     * switch to the lane (docs/lane-design.md §3a) */
    hcw_lane_set_read_seq(l, 1 - (int)side, lanes.read_seq);
    *slot = (wlane){.number = (uint32_t)number,
                    .side = (int)side,
                    .lane = l,
                    .peer = peer,
                    .send_ok = send_ok,
                    .recv_ok = recv_ok,
                    .quota = (uint32_t)quota};
}

static void lane_close(hcw_in *in)
{
    uint64_t number;
    if (!hcw_get_u64(in, &number) || number > UINT32_MAX)
        hcw_die("a malformed LANE_CLOSE from the node");
    /* the rest (why, where the readers stopped, the adopted ids) matters
     * once lanes carry messages */
    wlane *w = find((uint32_t)number);
    if (w) {
        hcw_lane_free(w->lane);
        hw_address_fini(&w->peer);
        memset(w, 0, sizeof *w);
    }
    /* told even for a lane this worker refused: the node counts answers */
    drop((uint32_t)number, NULL);
}

bool hcw_lanes_ctl(hcw_in *in)
{
    switch (in->op) {
    case HCW_LANE_OPEN: lane_open(in); return true;
    case HCW_LANE_CLOSE: lane_close(in); return true;
    default: return false;
    }
}
