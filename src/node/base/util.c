/* Small helpers of the node: clocks, randomness, allocation, files. */
#include "base.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t hcn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t hcn_now_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t hcn_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t hcn_random_u64(void)
{
    uint64_t v = 0;
    while (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        if (errno != EINTR)
            abort();
    }
    return v;
}

uint64_t hcn_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void oom(void)
{
    fputs("hyperc: out of memory\n", stderr);
    abort();
}

void *hcn_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *hcn_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

void *hcn_xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (p == NULL)
        oom();
    return p;
}

char *hcn_xstrdup(const char *s)
{
    return hcn_xstrndup(s, strlen(s));
}

char *hcn_xstrndup(const char *s, size_t n)
{
    char *p = hcn_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *hcn_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = hcn_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

char *hcn_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = hcn_xmalloc(cap);
    for (;;) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap)
            break;
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (nb == NULL) {
            free(buf);
            fclose(f);
            return NULL;
        }
        buf = nb;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int hcn_mkdirs(const char *path)
{
    char *p = hcn_xstrdup(path);
    for (char *c = p + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *c = '/';
    }
    int rc = mkdir(p, 0700);
    free(p);
    return (rc != 0 && errno != EEXIST) ? -1 : 0;
}

int hcn_dir_private(const char *path, bool follow_link, char *err,
                    size_t errlen)
{
    struct stat st;
    int rc = follow_link ? stat(path, &st) : lstat(path, &st);
    if (rc != 0) {
        snprintf(err, errlen, "cannot examine %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "%s is a symbolic link; the node makes this directory "
                 "itself (remove the link)",
                 path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", path);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen,
                 "%s belongs to another user (uid %u); the node keeps its "
                 "secrets and code there, so it must be yours",
                 path, (unsigned)st.st_uid);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errlen,
                 "%s can be written by %s (mode %04o); the node keeps its "
                 "secrets and code there: run `chmod go-w %s` (or 0700), or "
                 "choose another home",
                 path,
                 (st.st_mode & S_IWGRP) && (st.st_mode & S_IWOTH)
                     ? "its group and others"
                 : (st.st_mode & S_IWGRP) ? "its group"
                                          : "others",
                 (unsigned)(st.st_mode & 07777), path);
        return -1;
    }
    return 0;
}

void hcn_ws_accept(const char *key, char out[HCN_WS_ACCEPT_LEN + 1])
{
    char *cat = hcn_xasprintf("%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(cat, strlen(cat), md, &n, EVP_sha1(), NULL) != 1)
        abort();
    free(cat);
    EVP_EncodeBlock((unsigned char *)out, md, (int)n); /* 28 + NUL */
}
