/* A worker that speaks only the start of the worker protocol, to test the
 * node's side of it (tests/blackbox/test_isolation.py, run with
 * HYPERC_WORKER pointing here): it takes HELLO on its link (fd 3) and
 * answers with the READY that FAKE_WORKER_READY names, then waits for the
 * node to end it.
 *
 *   old       [READY, 4, []]: another protocol version
 *   short     [READY, version]: no features (version 4's layout)
 *   features  [READY, version, 33 features]: more than a READY may name */
#include "worker/link.h"
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char err[256];
    hcw_link *l = hcw_link_shm_open(3, err, sizeof err);
    if (l == NULL) {
        fprintf(stderr, "fake_worker: %s\n", err);
        return 1;
    }
    hcw_in in;
    hcw_in_init(&in);
    if (hcw_link_recv(l, &in, err, sizeof err) != 1 || in.op != HCW_HELLO) {
        fprintf(stderr, "fake_worker: no HELLO\n");
        return 1;
    }
    const char *mode = getenv("FAKE_WORKER_READY");
    hcw_frame *f = hcw_frame_new();
    if (mode && strcmp(mode, "old") == 0) {
        hcw_frame_begin(f, HCW_READY, 2);
        hcw_put_u64(f, 4);
        hcw_put_strs(f, NULL, 0);
    } else if (mode && strcmp(mode, "short") == 0) {
        hcw_frame_begin(f, HCW_READY, 1);
        hcw_put_u64(f, HCW_PROTO_VERSION);
    } else if (mode && strcmp(mode, "features") == 0) {
        const char *names[HCW_MAX_FEATURES + 1];
        for (size_t i = 0; i < HCW_MAX_FEATURES + 1; i++)
            names[i] = "feature";
        hcw_frame_begin(f, HCW_READY, 2);
        hcw_put_u64(f, HCW_PROTO_VERSION);
        hcw_put_strs(f, names, HCW_MAX_FEATURES + 1);
    } else {
        fprintf(stderr, "fake_worker: FAKE_WORKER_READY: old, short or "
                        "features\n");
        return 2;
    }
    if (hcw_link_send(l, f) != 0)
        return 1;
    for (;;)
        pause();
}
