/* The state module's redo log: see statelog.h for the format and the
 * rules.  One mutex (mu) covers the current file's descriptor, size and
 * generation and both maps; a record is written under it (a copy into the
 * mapping, or one pwritev), so the file's order and the maps' "newest"
 * agree. */
#include "statelog.h"

#include "../../common/le.h"
#include "../base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <libdeflate.h>
#include <uthash.h>

#define FILE_MAGIC 0x4c534348u /* "HCSL" */
#define REC_MAGIC 0x52534348u  /* "HCSR" */
#define VERSION 1u
#define FILE_HDR 24
#define REC_HDR 24
#define PID_MAX 0xffffu
#define VALUE_MAX 0x7fffffffu

typedef struct entry {
    char *pid;
    hcn_slog_kind kind;
    uint8_t *buf;
    size_t len, cap;
    int64_t ms;
    UT_hash_handle hh;
} entry;

struct hcn_slog {
    pthread_mutex_t mu;
    int fd[2];
    /* each file mapped (MAP_SHARED, HCN_SLOG_MAP_BYTES) or NULL; a file
     * whose first HCN_SLOG_MAP_BYTES are allocated (mapped_ok) takes the
     * records that fit there by a copy into the mapping */
    uint8_t *map[2];
    bool mapped_ok[2];
    uint64_t gen[2]; /* 0: the file has no records to read back */
    int cur;         /* the file appends go to; -1 until the first retire */
    _Atomic uint64_t cur_gen;
    size_t size; /* the current file's size */
    uint64_t last_gen;
    entry *pending, *draining;
    hcn_slog_rec *recs; /* the draining group as an array */
    size_t nrecs;
    bool draining_retired; /* a retire has run since the last rotate */
};

/* CRC-32 of a record: its generation, header after the CRC, id, value.
 * libdeflate's CRC-32 is zlib's (the same polynomial and bit order: logs
 * written with either replay with the other), computed with carry-less
 * multiplication where the CPU has it: 5-6 times zlib's speed on a saved
 * state's few hundred bytes (docs/benchmarks.md). */
static uint32_t rec_crc(uint64_t gen, const uint8_t *hdr, const char *pid,
                        size_t pid_len, const void *bytes, size_t len)
{
    uint8_t g[8];
    hcc_le_put64(g, gen);
    uint32_t c = libdeflate_crc32(0, g, sizeof g);
    c = libdeflate_crc32(c, hdr + 8, REC_HDR - 8);
    c = libdeflate_crc32(c, pid, pid_len);
    if (len)
        c = libdeflate_crc32(c, bytes, len);
    return c;
}

static void file_hdr(uint8_t *h, uint64_t gen)
{
    memset(h, 0, FILE_HDR);
    hcc_le_put32(h, FILE_MAGIC);
    hcc_le_put32(h + 4, VERSION);
    hcc_le_put64(h + 8, gen);
    hcc_le_put32(h + 16, libdeflate_crc32(0, h, 16));
}

/* Make e pid's newest record (under mu, or before any other thread). */
static void entry_set(entry **map, const char *pid, hcn_slog_kind kind,
                      const void *bytes, size_t len, int64_t ms)
{
    entry *e;
    HASH_FIND_STR(*map, pid, e);
    if (e == NULL) {
        e = hcn_xcalloc(1, sizeof *e);
        e->pid = hcn_xstrdup(pid);
        HASH_ADD_KEYPTR(hh, *map, e->pid, strlen(e->pid), e);
    }
    if (len > e->cap) {
        free(e->buf);
        e->buf = hcn_xmalloc(len);
        e->cap = len;
    }
    if (len)
        memcpy(e->buf, bytes, len);
    e->len = len;
    e->kind = kind;
    e->ms = ms;
}

static void map_free(entry **map)
{
    entry *e, *t;
    HASH_ITER(hh, *map, e, t)
    {
        HASH_DEL(*map, e);
        free(e->pid);
        free(e->buf);
        free(e);
    }
}

static int read_all(int fd, uint8_t **out, size_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -1;
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *b = hcn_xmalloc(n ? n : 1);
    while (got < n) {
        ssize_t r = pread(fd, b + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(b);
            errno = e;
            return -1;
        }
        got += (size_t)r;
    }
    *out = b;
    *len = n;
    return 0;
}

/* The generation of a file's contents, 0 when its header does not check
 * (an empty file: nothing to read back). */
static uint64_t hdr_gen(const uint8_t *b, size_t n)
{
    if (n < FILE_HDR || hcc_le_get32(b) != FILE_MAGIC ||
        hcc_le_get32(b + 4) != VERSION ||
        hcc_le_get32(b + 16) != libdeflate_crc32(0, b, 16))
        return 0;
    return hcc_le_get64(b + 8);
}

/* Each intact record of a file, in order, into the draining map. */
static void replay(hcn_slog *l, const uint8_t *b, size_t n, uint64_t gen)
{
    size_t off = FILE_HDR;
    while (n - off >= REC_HDR) {
        const uint8_t *h = b + off;
        uint32_t vlen = hcc_le_get32(h + 8);
        size_t plen = (size_t)h[12] | (size_t)h[13] << 8;
        hcn_slog_kind kind = h[14];
        if (hcc_le_get32(h) != REC_MAGIC || plen == 0 || vlen > VALUE_MAX ||
            (kind != HCN_SLOG_SET && kind != HCN_SLOG_DEL) ||
            (kind == HCN_SLOG_DEL && vlen) ||
            n - off - REC_HDR < plen + (size_t)vlen)
            return;
        const char *pid = (const char *)h + REC_HDR;
        const uint8_t *val = h + REC_HDR + plen;
        if (hcc_le_get32(h + 4) != rec_crc(gen, h, pid, plen, val, vlen) ||
            memchr(pid, 0, plen))
            return;
        char *key = hcn_xmalloc(plen + 1);
        memcpy(key, pid, plen);
        key[plen] = '\0';
        entry_set(&l->draining, key, kind, val, vlen,
                  (int64_t)hcc_le_get64(h + 16));
        free(key);
        off += REC_HDR + plen + vlen;
    }
}

static void build_recs(hcn_slog *l)
{
    free(l->recs);
    l->nrecs = HASH_COUNT(l->draining);
    l->recs = hcn_xcalloc(l->nrecs ? l->nrecs : 1, sizeof *l->recs);
    size_t i = 0;
    for (entry *e = l->draining; e; e = e->hh.next)
        l->recs[i++] = (hcn_slog_rec){.pid = e->pid,
                                      .kind = e->kind,
                                      .bytes = e->buf,
                                      .len = e->len,
                                      .ms = e->ms};
}

hcn_slog *hcn_slog_open(const char *base, char *err, size_t errlen)
{
    hcn_slog *l = hcn_xcalloc(1, sizeof *l);
    l->fd[0] = l->fd[1] = -1;
    l->cur = -1;
    pthread_mutex_init(&l->mu, NULL);
    uint8_t *data[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char *path = hcn_xasprintf("%s.%d", base, i);
        l->fd[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l->fd[i] < 0 || read_all(l->fd[i], &data[i], &len[i]) != 0) {
            snprintf(err, errlen, "cannot open or read the state log %s: %s",
                     path, strerror(errno));
            free(path);
            free(data[0]);
            hcn_slog_close(l);
            return NULL;
        }
        free(path);
        l->gen[i] = hdr_gen(data[i], len[i]);
        void *m = mmap(NULL, HCN_SLOG_MAP_BYTES, PROT_READ | PROT_WRITE,
                       MAP_SHARED, l->fd[i], 0);
        l->map[i] = m == MAP_FAILED ? NULL : m; /* else: write(2) only */
    }
    /* older generation first: the newer file's records win */
    int first = l->gen[1] && (!l->gen[0] || l->gen[1] < l->gen[0]) ? 1 : 0;
    for (int k = 0; k < 2; k++) {
        int i = k ? 1 - first : first;
        if (l->gen[i])
            replay(l, data[i], len[i], l->gen[i]);
        if (l->gen[i] > l->last_gen)
            l->last_gen = l->gen[i];
        free(data[i]);
    }
    build_recs(l);
    return l;
}

void hcn_slog_close(hcn_slog *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < 2; i++) {
        if (l->map[i])
            munmap(l->map[i], HCN_SLOG_MAP_BYTES);
        if (l->fd[i] >= 0)
            close(l->fd[i]);
    }
    map_free(&l->pending);
    map_free(&l->draining);
    free(l->recs);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* Write all of iov at off; -1 with errno on an error or a short write. */
static int write_at(int fd, struct iovec *iov, int n, size_t total, off_t off)
{
    ssize_t w;
    do
        w = pwritev(fd, iov, n, off);
    while (w < 0 && errno == EINTR);
    if (w == (ssize_t)total)
        return 0;
    if (w >= 0)
        errno = ENOSPC; /* short: the disk is full */
    return -1;
}

/* Start file i (dropped) for generation gen: its mapped part allocated on
 * the disk first (so a copy into the mapping never meets a full disk: no
 * SIGBUS), then its header.  -1 with errno when the header cannot be
 * written. */
static int start_file(hcn_slog *l, int i, uint64_t gen)
{
    l->mapped_ok[i] =
        l->map[i] != NULL && fallocate(l->fd[i], 0, 0, HCN_SLOG_MAP_BYTES) == 0;
    uint8_t h[FILE_HDR];
    file_hdr(h, gen);
    struct iovec iov = {h, FILE_HDR};
    return write_at(l->fd[i], &iov, 1, FILE_HDR, 0);
}

int hcn_slog_append(hcn_slog *l, hcn_slog_kind kind, const char *pid,
                    const void *bytes, size_t len, size_t *size)
{
    size_t plen = strlen(pid);
    if (plen == 0 || plen > PID_MAX || len > VALUE_MAX ||
        (kind == HCN_SLOG_DEL && len)) {
        errno = EINVAL;
        return -1;
    }
    int64_t ms = hcn_wall_ms();
    uint8_t h[REC_HDR] = {0};
    hcc_le_put32(h, REC_MAGIC);
    hcc_le_put32(h + 8, (uint32_t)len);
    h[12] = (uint8_t)plen;
    h[13] = (uint8_t)(plen >> 8);
    h[14] = (uint8_t)kind;
    hcc_le_put64(h + 16, (uint64_t)ms);
    struct iovec iov[3] = {
        {h, REC_HDR}, {(void *)pid, plen}, {(void *)bytes, len}};
    size_t total = REC_HDR + plen + len;
    /* the CRC outside the lock, for the generation as it is now (a
     * rotation in between is rare: then once more) */
    uint64_t gen = atomic_load(&l->cur_gen);
    hcc_le_put32(h + 4, rec_crc(gen, h, pid, plen, bytes, len));
    pthread_mutex_lock(&l->mu);
    while (l->cur >= 0 && atomic_load(&l->cur_gen) != gen) {
        gen = atomic_load(&l->cur_gen);
        hcc_le_put32(h + 4, rec_crc(gen, h, pid, plen, bytes, len));
    }
    if (l->cur < 0) {
        pthread_mutex_unlock(&l->mu);
        errno = EAGAIN;
        return -1;
    }
    int fd = l->fd[l->cur];
    bool mapped = l->mapped_ok[l->cur];
    if (mapped && l->size <= HCN_SLOG_MAP_BYTES &&
        total <= HCN_SLOG_MAP_BYTES - l->size) {
        /* into the file's pages in the kernel's page cache: as durable
         * as a write(2) once copied, without the system call */
        uint8_t *at = l->map[l->cur] + l->size;
        memcpy(at, h, REC_HDR);
        memcpy(at + REC_HDR, pid, plen);
        if (len)
            memcpy(at + REC_HDR + plen, bytes, len);
    } else if (write_at(fd, iov, len ? 3 : 2, total, (off_t)l->size) != 0) {
        int e = errno;
        /* nothing of a record that was not all written is read back: its
         * header zeroed, and the file cut back to before it (not into
         * the mapped part, which must stay in the file) */
        static const uint8_t zero[REC_HDR];
        struct iovec z = {(void *)zero, REC_HDR};
        size_t keep = mapped && l->size < HCN_SLOG_MAP_BYTES
                          ? HCN_SLOG_MAP_BYTES
                          : l->size;
        if (write_at(fd, &z, 1, REC_HDR, (off_t)l->size) != 0 ||
            ftruncate(fd, (off_t)keep) != 0) {
            /* then its CRC does not check: replay stops there */
        }
        pthread_mutex_unlock(&l->mu);
        errno = e;
        return -1;
    }
    l->size += total;
    entry_set(&l->pending, pid, kind, bytes, len, ms);
    if (size)
        *size = l->size;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

bool hcn_slog_get(hcn_slog *l, const char *pid, hcn_slog_kind *kind,
                  uint8_t **bytes, size_t *len)
{
    pthread_mutex_lock(&l->mu);
    entry *e;
    HASH_FIND_STR(l->pending, pid, e);
    if (e == NULL)
        HASH_FIND_STR(l->draining, pid, e);
    if (e) {
        *kind = e->kind;
        *len = e->len;
        *bytes = NULL;
        if (e->len) {
            *bytes = hcn_xmalloc(e->len);
            memcpy(*bytes, e->buf, e->len);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return e != NULL;
}

int hcn_slog_rotate(hcn_slog *l)
{
    if (l->cur < 0) {
        errno = EAGAIN;
        return -1;
    }
    if (!l->draining_retired)
        return (int)l->nrecs; /* the last group is not in the store yet */
    pthread_mutex_lock(&l->mu);
    bool none = l->pending == NULL;
    pthread_mutex_unlock(&l->mu);
    if (none)
        return 0;
    /* the other file is empty (retired): start it, then switch to it */
    int next = 1 - l->cur;
    uint64_t gen = l->last_gen + 1;
    if (start_file(l, next, gen) != 0)
        return -1;
    pthread_mutex_lock(&l->mu);
    l->last_gen = gen;
    l->gen[next] = gen;
    l->cur = next;
    atomic_store(&l->cur_gen, gen);
    l->size = FILE_HDR;
    l->draining = l->pending;
    l->pending = NULL;
    l->draining_retired = false;
    build_recs(l);
    pthread_mutex_unlock(&l->mu);
    return (int)l->nrecs;
}

void hcn_slog_draining(hcn_slog *l, const hcn_slog_rec **recs, size_t *n)
{
    *recs = l->recs;
    *n = l->draining_retired ? 0 : l->nrecs;
}

/* Make file i read back nothing.  A mapped file keeps its pages (in the
 * page cache and the mapping, so the next generation's copies into them
 * take no page faults): its header is zeroed, so nothing after it is
 * read back (the records left behind carry an older generation in their
 * CRC, so they would not check either), and what grew past the mapped
 * part is cut.  Otherwise it is truncated. */
static int drop_file(hcn_slog *l, int i)
{
    if (l->map[i] == NULL) {
        if (ftruncate(l->fd[i], 0) != 0)
            return -1;
    } else {
        static const uint8_t zero[FILE_HDR];
        struct iovec iov = {(void *)zero, FILE_HDR};
        struct stat st;
        if (write_at(l->fd[i], &iov, 1, FILE_HDR, 0) != 0 ||
            fstat(l->fd[i], &st) != 0 ||
            ((size_t)st.st_size > HCN_SLOG_MAP_BYTES &&
             ftruncate(l->fd[i], HCN_SLOG_MAP_BYTES) != 0))
            return -1;
    }
    l->gen[i] = 0;
    return 0;
}

int hcn_slog_retire(hcn_slog *l)
{
    if (l->cur >= 0 && l->draining_retired)
        return 0;
    if (l->cur < 0) {
        /* after the open: both files are read back and in the store;
         * drop the older first (a kill in between leaves the newer, whose
         * records are the newest anyway), then start file 0 */
        int first = l->gen[1] && l->gen[1] < l->gen[0] ? 1 : 0;
        for (int k = 0; k < 2; k++) {
            int i = k ? 1 - first : first;
            if (drop_file(l, i) != 0)
                return -1;
        }
        uint64_t gen = l->last_gen + 1;
        if (start_file(l, 0, gen) != 0)
            return -1;
        pthread_mutex_lock(&l->mu);
        l->last_gen = gen;
        l->gen[0] = gen;
        l->cur = 0;
        atomic_store(&l->cur_gen, gen);
        l->size = FILE_HDR;
    } else {
        int old = 1 - l->cur;
        if (drop_file(l, old) != 0)
            return -1;
        pthread_mutex_lock(&l->mu);
    }
    map_free(&l->draining);
    free(l->recs);
    l->recs = NULL;
    l->nrecs = 0;
    l->draining_retired = true;
    pthread_mutex_unlock(&l->mu);
    return 0;
}
