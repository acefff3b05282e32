/* The system calls of wasi-libc, answered inside a wasm32 process.
 *
 * wasi-libc implements the C library on WASI preview 1's system calls
 * (`__wasi_*`, one import each).  A Hyperware node gives a component
 * interface `standard` and WASI 0.2, not preview 1, and bridging the two
 * takes an adapter module of some 100 KB.  A hyperc process needs only a
 * handful of them, so they are defined here, which keeps libc's own
 * definitions (and their preview 1 imports) out of the link:
 *
 *  - clock_time_get: wasi:clocks/wall-clock and monotonic-clock 0.2.0;
 *  - poll_oneoff on clocks only (sleep, nanosleep, usleep): a pollable of
 *    monotonic-clock 0.2.0's subscribe-duration, blocked on (wasi:io/poll);
 *  - random_get: wasi:random/random 0.2.0;
 *  - fd_write to 1 or 2 (printf, fprintf to stderr, a failed assert): each
 *    line to the terminal through print-to-terminal (stdout at level 1,
 *    stderr at 0); other descriptors are EBADF;
 *  - fd_seek, fd_close, fd_fdstat_get: what stdio asks of its streams;
 *  - proc_exit: exit() traps, which ends the process as a crash does
 *    (on-exit applies).
 *
 * A libc function that needs any other system call brings libc's own
 * bridge in, and with it preview 1 imports: src/wasm/componentize.mjs then
 * refuses the module, naming them, so the build tells rather than the node
 * at install time. */
#include "hyperc/abi.h"

#include <stdint.h>
#include <string.h>
#include <wasi/api.h>

#if !defined(__wasm32__)
#error "wasi_shim.c is for wasm32"
#endif

typedef struct cw_datetime {
    uint64_t seconds;
    uint32_t nanoseconds;
} cw_datetime;
_Static_assert(sizeof(cw_datetime) == 16, "datetime is 16 bytes");

__attribute__((import_module("wasi:clocks/wall-clock@0.2.0"),
               import_name("now"))) void
cw_wall_now(cw_datetime *ret);
__attribute__((import_module("wasi:clocks/monotonic-clock@0.2.0"),
               import_name("now"))) uint64_t
cw_monotonic_now(void);
__attribute__((import_module("wasi:random/random@0.2.0"),
               import_name("get-random-u64"))) uint64_t
cw_random_u64(void);
/* own<pollable>, ready `ns` nanoseconds from now */
__attribute__((import_module("wasi:clocks/monotonic-clock@0.2.0"),
               import_name("subscribe-duration"))) uint32_t
cw_subscribe_duration(uint64_t ns);
__attribute__((import_module("wasi:io/poll@0.2.0"),
               import_name("[method]pollable.block"))) void
cw_pollable_block(uint32_t pollable);
__attribute__((import_module("wasi:io/poll@0.2.0"),
               import_name("[resource-drop]pollable"))) void
cw_pollable_drop(uint32_t pollable);

__wasi_errno_t __wasi_clock_time_get(__wasi_clockid_t id,
                                     __wasi_timestamp_t precision,
                                     __wasi_timestamp_t *out)
{
    (void)precision;
    if (id == __WASI_CLOCKID_REALTIME) {
        cw_datetime t;
        cw_wall_now(&t);
        *out = t.seconds * 1000000000ull + t.nanoseconds;
        return 0;
    }
    if (id == __WASI_CLOCKID_MONOTONIC) {
        *out = cw_monotonic_now();
        return 0;
    }
    return __WASI_ERRNO_NOTSUP;
}

/* Clock subscriptions only: block until the earliest is due, and report
 * it (and any other due by then).  A file descriptor subscription is
 * ENOTSUP: a component has none. */
__wasi_errno_t __wasi_poll_oneoff(const __wasi_subscription_t *in,
                                  __wasi_event_t *out, __wasi_size_t n,
                                  __wasi_size_t *nevents)
{
    if (n == 0)
        return __WASI_ERRNO_INVAL;
    uint64_t now_mono = cw_monotonic_now();
    cw_datetime wall;
    cw_wall_now(&wall);
    uint64_t now_real = wall.seconds * 1000000000ull + wall.nanoseconds;
    uint64_t wait = UINT64_MAX;
    for (__wasi_size_t i = 0; i < n; i++) {
        if (in[i].u.tag != __WASI_EVENTTYPE_CLOCK)
            return __WASI_ERRNO_NOTSUP;
        const __wasi_subscription_clock_t *c = &in[i].u.u.clock;
        uint64_t d = c->timeout;
        if (c->flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) {
            uint64_t now =
                c->id == __WASI_CLOCKID_REALTIME ? now_real : now_mono;
            d = c->timeout > now ? c->timeout - now : 0;
        }
        if (d < wait)
            wait = d;
    }
    if (wait > 0) {
        uint32_t p = cw_subscribe_duration(wait);
        cw_pollable_block(p);
        cw_pollable_drop(p);
    }
    /* every subscription due within the wait */
    __wasi_size_t k = 0;
    for (__wasi_size_t i = 0; i < n; i++) {
        const __wasi_subscription_clock_t *c = &in[i].u.u.clock;
        uint64_t d = c->timeout;
        if (c->flags & __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME) {
            uint64_t now =
                c->id == __WASI_CLOCKID_REALTIME ? now_real : now_mono;
            d = c->timeout > now ? c->timeout - now : 0;
        }
        if (d > wait)
            continue;
        memset(&out[k], 0, sizeof out[k]);
        out[k].userdata = in[i].userdata;
        out[k].type = __WASI_EVENTTYPE_CLOCK;
        k++;
    }
    *nevents = k;
    return 0;
}

__wasi_errno_t __wasi_random_get(uint8_t *buf, __wasi_size_t len)
{
    while (len > 0) {
        uint64_t r = cw_random_u64();
        size_t n = len < sizeof r ? len : sizeof r;
        memcpy(buf, &r, n);
        buf += n;
        len -= n;
    }
    return 0;
}

/* Bytes written to stdout or stderr since the last newline. */
typedef struct line_buf {
    char text[1024];
    size_t len;
} line_buf;
static line_buf out_lines[2];

static void line_flush(line_buf *l, uint8_t verbosity)
{
    l->text[l->len] = '\0';
    hw_print_to_terminal(verbosity, l->text);
    l->len = 0;
}

__wasi_errno_t __wasi_fd_write(__wasi_fd_t fd, const __wasi_ciovec_t *iovs,
                               size_t iovs_len, __wasi_size_t *written)
{
    if (fd != 1 && fd != 2)
        return __WASI_ERRNO_BADF;
    line_buf *l = &out_lines[fd - 1];
    uint8_t verbosity = fd == 2 ? 0 : 1;
    size_t total = 0;
    for (size_t i = 0; i < iovs_len; i++) {
        for (size_t k = 0; k < iovs[i].buf_len; k++) {
            char c = (char)iovs[i].buf[k];
            if (c == '\n') {
                line_flush(l, verbosity);
            } else {
                if (l->len == sizeof l->text - 1)
                    line_flush(l, verbosity);
                l->text[l->len++] = c == '\0' ? ' ' : c;
            }
        }
        total += iovs[i].buf_len;
    }
    *written = (__wasi_size_t)total;
    return 0;
}

__wasi_errno_t __wasi_fd_seek(__wasi_fd_t fd, __wasi_filedelta_t offset,
                              __wasi_whence_t whence,
                              __wasi_filesize_t *newoffset)
{
    (void)fd, (void)offset, (void)whence, (void)newoffset;
    return __WASI_ERRNO_SPIPE; /* the terminal is not seekable */
}

__wasi_errno_t __wasi_fd_close(__wasi_fd_t fd)
{
    (void)fd;
    return 0;
}

__wasi_errno_t __wasi_fd_fdstat_get(__wasi_fd_t fd, __wasi_fdstat_t *stat)
{
    if (fd > 2)
        return __WASI_ERRNO_BADF;
    memset(stat, 0, sizeof *stat);
    stat->fs_filetype = __WASI_FILETYPE_CHARACTER_DEVICE;
    stat->fs_rights_base = __WASI_RIGHTS_FD_WRITE;
    return 0;
}

_Noreturn void __wasi_proc_exit(__wasi_exitcode_t code)
{
    (void)code;
    for (int i = 0; i < 2; i++)
        if (out_lines[i].len)
            line_flush(&out_lines[i], i == 1 ? 0 : 1);
    __builtin_trap();
}
