/* Internal to the node: the bottom room (src/node/base/) that every other
 * room of the node uses and that uses none of them: clocks, randomness,
 * allocation that aborts on OOM, files, and the node's log file.  Prefix
 * hcn_ like the rest of the node library; not installed. */
#ifndef HYPERC_NODE_BASE_H
#define HYPERC_NODE_BASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- util */

/* Monotonic clock in nanoseconds. */
int64_t hcn_now_ns(void);
/* The same clock as of its last update (CLOCK_MONOTONIC_COARSE): never
 * ahead of hcn_now_ns, behind it by about a tick (a few ms) and sometimes
 * more (its resolution is no bound: 5 ms seen with a 4 ms tick on a VM), at
 * a fraction of the cost; for what is shown in milliseconds and stamps
 * that may be early, never for a deadline. */
int64_t hcn_now_coarse_ns(void);
/* Wall clock in milliseconds since the epoch. */
int64_t hcn_wall_ms(void);
/* A random u64 from the OS (getrandom); used to seed per-thread PRNGs. */
uint64_t hcn_random_u64(void);
/* xorshift64* step; *state must be non-zero. */
uint64_t hcn_rng_next(uint64_t *state);
/* malloc/calloc/strdup that abort on OOM (the node does not run degraded
 * when the machine has no memory left, as Redis and h2o do). */
void *hcn_xmalloc(size_t n);
void *hcn_xcalloc(size_t n, size_t m);
void *hcn_xrealloc(void *p, size_t n);
char *hcn_xstrdup(const char *s);
char *hcn_xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; caller frees. */
char *hcn_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Read a whole file into a fresh NUL-terminated buffer; NULL on error. */
char *hcn_read_file(const char *path, size_t *len);
/* mkdir -p; 0 or -1 with errno.  Directories it makes are 0700. */
int hcn_mkdirs(const char *path);
/* Whether `path` is a directory that only this user can change: owned by
 * the effective user, not writable by its group or others, and (when
 * follow_link is false) not itself a symbolic link.  0, or -1 with a
 * sentence in err naming the path and what to do. */
int hcn_dir_private(const char *path, bool follow_link, char *err,
                    size_t errlen);
/* The Sec-WebSocket-Accept answer to a Sec-WebSocket-Key (RFC 6455
 * 4.2.2): base64(SHA-1(key ‖ the protocol's GUID)), 28 characters. */
#define HCN_WS_ACCEPT_LEN 28
void hcn_ws_accept(const char *key, char out[HCN_WS_ACCEPT_LEN + 1]);

/* ------------------------------------------------------------- logging */

typedef struct hcn_log {
    pthread_mutex_t mu;
    FILE *file; /* <home>/log/node.log, every printout at every level */
    char *path;
    uint64_t size, max_bytes; /* rotate at max_bytes (0 = never) */
    uint32_t files;           /* node.log plus files-1 rotated ones */
    atomic_int level;         /* default terminal verbosity (set at run time
                                 by the control socket's verbosity) */
    bool color;
} hcn_log;

/* Open <home>/log/node.log for appending; it rotates at max_bytes, keeping
 * `files` files in all (node.log, node.log.1, ...). */
int hcn_log_open(hcn_log *l, const char *home, int level, uint64_t max_bytes,
                 uint32_t files);
void hcn_log_close(hcn_log *l);
/* A printout from `who` (a process id or "kernel") at `verbosity`: written
 * to the log file always, to stderr when verbosity <= `shown_level`. */
void hcn_log_write(hcn_log *l, const char *who, int verbosity, int shown_level,
                   const char *text);

#endif
