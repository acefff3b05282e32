/* The fuzz targets' node: one node in a temporary home (started or not), booted
 * on first use and stopped at exit (its home removed), with fake processes (no
 * thread) whose mailboxes the harness empties after each input.  A header of
 * static functions: each target is one file. */
#ifndef HYPERC_FUZZ_NODE_H
#define HYPERC_FUZZ_NODE_H

#include "hyperc/node.h"
#include "node/kernel/kernel.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FZ_NODE "fuzz.os"

static hc_node *fz_node;
static char fz_home[64];

static int fz_rm_cb(const char *path, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void (*fz_before_stop)(void);

static void fz_cleanup(void)
{
    if (fz_node == NULL)
        return;
    if (fz_before_stop)
        fz_before_stop();
    hc_node_shutdown(fz_node);
    hc_node_free(fz_node);
    fz_node = NULL;
    nftw(fz_home, fz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The node, made on the first call and started when `start`; `password`
 * is the login's (NULL: made at first boot). */
static hcn_node *fz_boot(const char *password, bool start)
{
    if (fz_node)
        return (hcn_node *)fz_node;
    snprintf(fz_home, sizeof fz_home, "/tmp/hcfuzz-XXXXXX");
    if (mkdtemp(fz_home) == NULL)
        abort();
    hc_node_config cfg;
    hc_node_config_default(&cfg);
    cfg.name = FZ_NODE;
    cfg.home = fz_home;
    cfg.mailbox_max = 64;
    cfg.spin_us = 0;
    cfg.verbosity = 0;
    cfg.shutdown_grace_s = 2;
    cfg.http_password = password;
    char err[256] = "";
    fz_node = hc_node_new(&cfg, err, sizeof err);
    if (fz_node == NULL ||
        (start && hc_node_start(fz_node, err, sizeof err) != 0)) {
        fprintf(stderr, "fuzz node: %s\n", err);
        abort();
    }
    atexit(fz_cleanup);
    return (hcn_node *)fz_node;
}

/* A fake process (no thread; the node keeps it). */
static hcn_proc *fz_proc(const char *pid, bool public_)
{
    int err = 0;
    hcn_proc *p = hcn_node_add_proc((hcn_node *)fz_node, pid, public_, &err);
    if (p == NULL) {
        fprintf(stderr, "fuzz node: cannot add %s\n", pid);
        abort();
    }
    hcn_proc_unref(p);
    return p;
}

/* Take everything waiting in p's mailbox; each message to `seen` (may be
 * NULL) before it is freed. */
static void fz_drain(hcn_proc *p, void (*seen)(hcn_msg *m, void *arg),
                     void *arg)
{
    hcn_msg *m;
    while (hcn_mailbox_pop(&p->mb, 0, &m) == HCC_EOK) {
        if (seen)
            seen(m, arg);
        hcn_msg_unref(m);
    }
}

#endif
