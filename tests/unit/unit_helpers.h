/* Helpers shared by the unit tests: temporary node homes, envelopes, and
 * small assertions on envelope and ABI contents.  Header-only so that each
 * test stays one file for hyperc_unit_test(). */
#ifndef HYPERC_UNIT_HELPERS_H
#define HYPERC_UNIT_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/kernel/kernel_int.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UT_NODE "local.os"

static inline int ut_rm_cb(const char *path, const struct stat *sb, int flag,
                           struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove a directory tree (best effort). */
static inline void ut_rm_rf(const char *dir)
{
    if (dir)
        nftw(dir, ut_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh temporary directory; caller frees (after ut_rm_rf). */
static inline char *ut_mkdtemp(void)
{
    char *t = strdup("/tmp/hcunit-XXXXXX");
    assert_non_null(t);
    assert_non_null(mkdtemp(t));
    return t;
}

/* n bytes of a pseudo-random pattern that seed determines (xorshift), to
 * fill frames and rings with something a shifted or torn copy would not
 * match. */
static inline void ut_fill(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* Hex text to bytes (test vectors): how many; fails the test on odd
 * length, a non-hex pair or more than `cap` bytes. */
static inline size_t ut_unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s);
    assert_true(n % 2 == 0 && n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    return n / 2;
}

/* The next `key=value` line of a test-vector file (blank lines and lines
 * starting with '#' skipped), split in place in `line`; false at the end.
 * A line without '=' fails the test. */
static inline bool ut_vector_line(FILE *f, char *line, size_t n,
                                  const char **key, const char **val)
{
    while (fgets(line, (int)n, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *eq = strchr(line, '=');
        assert_non_null(eq);
        *eq = '\0';
        *key = line;
        *val = eq + 1;
        return true;
    }
    return false;
}

/* A node (not started) in `home` with a small mailbox bound and no spin. */
static inline hc_node *ut_node_new(const char *home, uint32_t mailbox_max)
{
    hc_node_config cfg;
    hc_node_config_default(&cfg);
    cfg.name = UT_NODE;
    cfg.home = home;
    cfg.mailbox_max = mailbox_max;
    cfg.spin_us = 0;
    cfg.verbosity = 0;
    cfg.shutdown_grace_s = 2;
    char err[256] = "";
    hc_node *n = hc_node_new(&cfg, err, sizeof err);
    if (n == NULL)
        fail_msg("hc_node_new: %s", err);
    return n;
}

/* ut_node_new, then hc_node_start (module threads and control socket). */
static inline hc_node *ut_node_started(const char *home, uint32_t mailbox_max)
{
    hc_node *n = ut_node_new(home, mailbox_max);
    char err[256] = "";
    if (hc_node_start(n, err, sizeof err) != 0)
        fail_msg("hc_node_start: %s", err);
    return n;
}

/* Register a fake process (no thread) and return it (caller's reference). */
static inline hcn_proc *ut_add_proc(hc_node *n, const char *pid, bool public_)
{
    int err = 0;
    hcn_proc *p = hcn_node_add_proc(n, pid, public_, &err);
    if (p == NULL)
        fail_msg("hcn_node_add_proc %s: %s", pid, hcc_err_name(err));
    return p;
}

static inline char *ut_addr(const char *pid)
{
    return hcn_xasprintf("%s@%s", UT_NODE, pid);
}

static inline hcn_msg *ut_req(uint64_t id, const char *source,
                              const char *target, const char *rsvp,
                              bool has_expects, uint64_t expects,
                              const char *body, hcn_blob *blob)
{
    return HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = source,
                       .target = target, .rsvp = rsvp,
                       .has_expects = has_expects, .expects = expects,
                       .body = body, .body_len = body ? strlen(body) : 0,
                       .blob = blob);
}

static inline hcn_msg *ut_resp(uint64_t id, const char *source,
                               const char *target, const char *body,
                               hcn_blob *blob)
{
    return HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = id, .source = source,
                       .target = target, .body = body,
                       .body_len = body ? strlen(body) : 0, .blob = blob);
}

static inline int64_t ut_ms_from_now(int64_t ms)
{
    return hcn_now_ns() + ms * 1000000;
}

/* Pop with a deadline `ms` from now; fails the test when nothing comes. */
static inline hcn_msg *ut_pop(hcn_proc *p, int64_t ms)
{
    hcn_msg *m = NULL;
    int rc = hcn_mailbox_pop(&p->mb, ut_ms_from_now(ms), &m);
    if (rc != HCC_EOK)
        fail_msg("expected a message in %s's mailbox, got %s", p->id,
                 hcc_err_name(rc));
    return m;
}

/* Asserts that p's mailbox stays empty for `ms`. */
static inline void ut_assert_empty(hcn_proc *p, int64_t ms)
{
    hcn_msg *m = NULL;
    int rc = hcn_mailbox_pop(&p->mb, ut_ms_from_now(ms), &m);
    if (rc == HCC_EOK) {
        char kind = m->kind == HCN_MSG_REQUEST    ? 'Q'
                    : m->kind == HCN_MSG_RESPONSE ? 'R'
                                                  : 'E';
        hcn_msg_unref(m);
        fail_msg("expected %s's mailbox empty, got a %c message", p->id, kind);
    }
    assert_int_equal(rc, HCC_ETIMEOUT);
}

static inline void ut_assert_body(const hcn_msg *m, const char *s)
{
    size_t n = strlen(s);
    if (m->body_len != n || (n && memcmp(m->body, s, n) != 0))
        fail_msg("body is '%.*s', expected '%s'", (int)m->body_len,
                 (const char *)m->body, s);
}

static inline void ut_assert_bytes(const hw_bytes *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len != n || (n && memcmp(b->ptr, s, n) != 0))
        fail_msg("bytes are '%.*s' (%zu), expected '%s'", (int)b->len,
                 b->ptr ? (const char *)b->ptr : "", b->len, s);
}

static inline void ut_assert_blob(const hcn_blob *b, const char *s)
{
    assert_non_null(b);
    size_t n = strlen(s);
    if (b->len != n || (n && memcmp(b->bytes, s, n) != 0))
        fail_msg("blob is '%.*s', expected '%s'", (int)b->len,
                 (const char *)b->bytes, s);
}

/* Format an ABI address into a static buffer (one at a time). */
static inline const char *ut_fmt(const hw_address *a)
{
    static char buf[512];
    hw_address_format(a, buf, sizeof buf);
    return buf;
}

#endif
