/* A worker's resource limits (proto.h, hcw_limits_set): set by
 * hyperc-worker on itself and by the node on a wasm host.  Internal. */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int hcw_limits_set(pid_t pid, uint64_t files, uint64_t bytes, char *why,
                   size_t whylen)
{
    /* RLIMIT_CORE 1, not 0: a core_pattern that pipes to a program ignores
     * 0, while for 1 the kernel skips the dump (and a file of one byte is
     * below any core) */
    const struct {
        int resource;
        uint64_t value;
        const char *what;
    } lim[] = {
        {RLIMIT_CORE, 1, "core files"},
        {RLIMIT_NOFILE, files, "open files"},
        {RLIMIT_AS, bytes, "address space"},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++) {
        struct rlimit r;
        if (lim[i].value == 0)
            continue;
        if (prlimit(pid, lim[i].resource, NULL, &r) != 0)
            r.rlim_max = RLIM_INFINITY;
        rlim_t v = (rlim_t)lim[i].value;
        if (r.rlim_max != RLIM_INFINITY && v > r.rlim_max)
            v = r.rlim_max;
        r.rlim_cur = r.rlim_max = v;
        if (prlimit(pid, lim[i].resource, &r, NULL) != 0 && rc == 0) {
            snprintf(why, whylen, "cannot limit its %s: %s", lim[i].what,
                     strerror(errno));
            rc = -1;
        }
    }
    return rc;
}
