/* The kernel: the process table, routing with capability checks and bounded
 * mailboxes, and the node's life (new, start, shutdown). */
#include "node_impl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ----------------------------------------------------------- processes */

hcn_proc *hcn_proc_ref(hcn_proc *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void hcn_proc_unref(hcn_proc *p)
{
    if (p == NULL ||
        atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (p->ops && p->ops->fini)
        p->ops->fini(p);
    hcn_mailbox_fini(&p->mb);
    hcn_capset_fini(&p->caps);
    hcn_capset_fini(&p->offered);
    hcn_on_exit_fini(&p->on_exit);
    pthread_mutex_destroy(&p->lock);
    free(p->id);
    free(p->addr);
    free(p->so_path);
    free(p->pkg_dir);
    free(p->pending_so);
    free(p->pending_pkg_dir);
    free(p);
}

int hcn_proc_level(hcn_proc *p)
{
    int v = atomic_load_explicit(&p->verbosity, memory_order_relaxed);
    return v != -1 ? v : p->node->log.level;
}

int hc_node_set_verbosity(hc_node *n, const char *pid, int level)
{
    hcn_proc *p = hcn_node_find(n, pid);
    if (p == NULL)
        return -1;
    atomic_store(&p->verbosity, level);
    hcn_proc_unref(p);
    return 0;
}

void hcn_on_exit_fini(hcn_on_exit *o)
{
    for (size_t i = 0; i < o->nreqs; i++) {
        free(o->reqs[i].target);
        free(o->reqs[i].body);
        free(o->reqs[i].metadata);
        hcn_blob_unref(o->reqs[i].blob);
    }
    free(o->reqs);
    memset(o, 0, sizeof *o);
}

void hcn_on_exit_copy(hcn_on_exit *dst, const hcn_on_exit *src)
{
    dst->kind = src->kind;
    dst->nreqs = src->nreqs;
    dst->reqs = src->nreqs ? hcn_xcalloc(src->nreqs, sizeof *dst->reqs) : NULL;
    for (size_t i = 0; i < src->nreqs; i++) {
        const hcn_exit_req *s = &src->reqs[i];
        hcn_exit_req *d = &dst->reqs[i];
        d->target = hcn_xstrdup(s->target);
        d->inherit = s->inherit;
        d->body_len = s->body_len;
        d->body = hcn_xmalloc(s->body_len);
        if (s->body_len)
            memcpy(d->body, s->body, s->body_len);
        d->metadata = s->metadata ? hcn_xstrdup(s->metadata) : NULL;
        d->blob = hcn_blob_ref(s->blob);
    }
}

hcn_proc *hcn_node_find(hcn_node *n, const char *pid)
{
    hcn_proc *p;
    pthread_rwlock_rdlock(&n->table_lock);
    HASH_FIND_STR(n->procs, pid, p);
    if (p)
        hcn_proc_ref(p);
    pthread_rwlock_unlock(&n->table_lock);
    return p;
}

hcn_proc *hcn_node_add_proc(hcn_node *n, const char *pid, bool public_,
                            int *err)
{
    hcn_proc *p = hcn_xcalloc(1, sizeof *p);
    atomic_init(&p->refs, 2); /* the table's and the caller's */
    p->node = n;
    p->id = hcn_xstrdup(pid);
    p->addr = hcn_xasprintf("%s@%s", n->name, pid);
    p->public_ = public_;
    p->verbosity = -1;
    pthread_mutex_init(&p->lock, NULL);
    /* The node's own modules (publisher sys) serve every process at once:
     * a burst from one (10,000 timers from as many tasks) must not be
     * refused by a bound meant for one process's backlog. */
    size_t idlen = strlen(pid);
    uint32_t bound = n->cfg.mailbox_max;
    if (idlen > 4 && strcmp(pid + idlen - 4, ":sys") == 0)
        bound = bound > UINT32_MAX / HCN_MODULE_MAILBOX_FACTOR
                    ? UINT32_MAX
                    : bound * HCN_MODULE_MAILBOX_FACTOR;
    hcn_mailbox_init(&p->mb, bound, n->cfg.spin_us);
    pthread_rwlock_wrlock(&n->table_lock);
    hcn_proc *old;
    HASH_FIND_STR(n->procs, pid, old);
    if (old) {
        pthread_rwlock_unlock(&n->table_lock);
        atomic_store(&p->refs, 1);
        hcn_proc_unref(p);
        if (err)
            *err = HCC_EEXISTS;
        return NULL;
    }
    HASH_ADD_KEYPTR(hh, n->procs, p->id, strlen(p->id), p);
    pthread_rwlock_unlock(&n->table_lock);
    return p;
}

void hcn_node_remove_proc(hcn_node *n, hcn_proc *p)
{
    bool removed = false;
    pthread_rwlock_wrlock(&n->table_lock);
    hcn_proc *cur;
    HASH_FIND_STR(n->procs, p->id, cur);
    if (cur == p) {
        HASH_DEL(n->procs, p);
        removed = true;
    }
    pthread_rwlock_unlock(&n->table_lock);
    if (removed)
        hcn_proc_unref(p);
}

void hcn_grant(hcn_proc *holder, const char *issuer, const char *params)
{
    pthread_mutex_lock(&holder->lock);
    hcn_capset_add(&holder->caps, issuer, params);
    pthread_mutex_unlock(&holder->lock);
}

void hcn_grant_messaging(hcn_node *n, hcn_proc *holder, const char *target)
{
    char *issuer = hcn_xasprintf("%s@%s", n->name, target);
    hcn_grant(holder, issuer, "\"messaging\"");
    free(issuer);
}

bool hcn_pid_exempt(const char *pid)
{
    return strcmp(pid, "kernel:distro:sys") == 0 ||
           strcmp(pid, "state:distro:sys") == 0 ||
           strcmp(pid, "vfs:distro:sys") == 0 ||
           strcmp(pid, "terminal:terminal:sys") == 0;
}

/* ------------------------------------------------------------- routing */

static bool node_is(const char *addr, const char *name)
{
    size_t nl = strlen(name);
    return strncmp(addr, name, nl) == 0 && addr[nl] == '@';
}

/* Send the sender of request m a send error at once, if it waits for an
 * answer (Hyperware's throw_timeout).  Consumes nothing. */
static void bounce(hcn_node *n, hcn_msg *m, int kind)
{
    if (m->kind != HCN_MSG_REQUEST || !m->has_expects)
        return;
    hcn_msg *e = hcn_msg_send_error(m, kind);
    hcn_proc *to = NULL;
    if (node_is(e->target, n->name))
        to = hcn_node_find(n, hcn_addr_pid(e->target));
    if (to == NULL || hcn_mailbox_push(&to->mb, e) != HCC_EOK)
        hcn_msg_unref(e);
    hcn_proc_unref(to);
}

static const char *kind_name(const hcn_msg *m)
{
    return m->kind == HCN_MSG_REQUEST ? "request" : "response";
}

void hcn_route(hcn_node *n, hcn_msg *m)
{
    hcn_route_ex(n, NULL, NULL, m);
}

void hcn_route_ex(hcn_node *n, hcn_proc *from_hint, hcn_proc *to_hint,
                  hcn_msg *m)
{
    if (!node_is(m->target, n->name)) {
        /* Node-to-node networking is not part of this node yet: every other
         * node is offline, as for a peer missing from the PKI. */
        hcn_logf(n, 1, "%s %s -> %s: node offline (no networking)",
                 kind_name(m), m->source, m->target);
        bounce(n, m, HW_SEND_ERROR_OFFLINE);
        hcn_msg_unref(m);
        return;
    }
    const char *spid = hcn_addr_pid(m->source);
    const char *tpid = hcn_addr_pid(m->target);
    hcn_proc *to = to_hint ? hcn_proc_ref(to_hint) : hcn_node_find(n, tpid);
    const char *why = NULL;
    if (to == NULL) {
        why = "no such process";
    } else if (!hcn_pid_exempt(spid) && node_is(m->source, n->name)) {
        hcn_proc *from =
            from_hint ? hcn_proc_ref(from_hint) : hcn_node_find(n, spid);
        if (from == NULL) {
            why = "sender is not a process of this node";
        } else if (!to->public_) {
            pthread_mutex_lock(&from->lock);
            bool ok = hcn_capset_has_messaging(&from->caps, to->addr);
            pthread_mutex_unlock(&from->lock);
            if (!ok)
                why = "sender lacks the messaging capability for the target "
                      "(and the target is not public)";
        }
        hcn_proc_unref(from);
    }
    if (why == NULL) {
        if (atomic_load(&to->status) == HCN_PROC_EXITED)
            why = "target process has exited";
    }
    if (why == NULL) {
        int rc = hcn_mailbox_push(&to->mb, m);
        if (rc == HCC_EOK) {
            hcn_proc_unref(to);
            return;
        }
        why = rc == HCC_EFULL ? "target mailbox is full"
                              : "target process is stopping";
    }
    hcn_logf(n, 0, "%s %s -> %s refused: %s%s", kind_name(m), m->source,
             m->target, why,
             m->kind == HCN_MSG_REQUEST && m->has_expects
                 ? "; sender gets a timeout error"
                 : "");
    if (m->kind == HCN_MSG_RESPONSE && to != NULL) {
        /* The target waits for this answer: tell it now rather than let it
         * time out later. */
        hcn_msg *e =
            hcn_msg_new(HCN_MSG_SEND_ERROR, m->id, m->source, m->target, NULL,
                        false, false, 0, "", 0, NULL, NULL, 0, NULL);
        e->err_kind = HW_SEND_ERROR_TIMEOUT;
        if (hcn_mailbox_push(&to->mb, e) != HCC_EOK)
            hcn_msg_unref(e);
    }
    bounce(n, m, HW_SEND_ERROR_TIMEOUT);
    hcn_proc_unref(to);
    hcn_msg_unref(m);
}

/* ------------------------------------------------------- thread census */

void hcn_node_thread_begin(hcn_node *n)
{
    pthread_mutex_lock(&n->life_mu);
    n->live_threads++;
    pthread_mutex_unlock(&n->life_mu);
}

void hcn_node_thread_end(hcn_node *n)
{
    pthread_mutex_lock(&n->life_mu);
    n->live_threads--;
    pthread_mutex_unlock(&n->life_mu);
    pthread_cond_broadcast(&n->life_cv);
}

bool hcn_node_sleep_until(hcn_node *n, int64_t deadline)
{
    pthread_mutex_lock(&n->life_mu);
    while (!atomic_load(&n->shutting_down) && hcn_now_ns() < deadline) {
        struct timespec ts = {.tv_sec = deadline / 1000000000,
                              .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&n->life_cv, &n->life_mu, &ts);
    }
    pthread_mutex_unlock(&n->life_mu);
    return !atomic_load(&n->shutting_down);
}

/* ------------------------------------------------------------ the node */

void hc_node_config_default(hc_node_config *c)
{
    memset(c, 0, sizeof *c);
    c->name = "local.os";
    c->home = "hyperc-home";
    c->http_port = 0;
    c->http_max_body = 16u << 20;
    c->http_max_header = 64u << 10;
    c->http_max_connections = 1024;
    c->http_idle_timeout_s = 60;
    c->http_request_timeout_s = 30;
    c->ws_max_connections = 128;
    c->ws_queue_max = 100;
    c->verbosity = 0;
    c->mailbox_max = 1024;
    c->spin_us = 50;
    c->restart_base_ms = 1000;
    c->restart_max_ms = 600000;
    c->restart_give_up = 8;
    c->restart_window_ms = 600000;
    c->shutdown_grace_s = 5;
    c->log_max_bytes = 16000000;
    c->log_files = 4;
    c->vfs_max_file_bytes = 64u << 20;
    c->http_client_timeout_ms = 60000;
    c->http_client_max_response_bytes = 64u << 20;
    c->http_client_max_ws = 128;
}

hc_node *hc_node_new(const hc_node_config *cfg, char *err, size_t errlen)
{
    if (hcc_name_safe(cfg->name, strlen(cfg->name), true) == false) {
        snprintf(err, errlen,
                 "node name '%s' is not hypermap-safe (a-z, 0-9, '-', '.')",
                 cfg->name);
        return NULL;
    }
    if (hcn_mkdirs(cfg->home) != 0) {
        snprintf(err, errlen, "cannot create home directory %s: %s", cfg->home,
                 strerror(errno));
        return NULL;
    }
    hcn_node *n = hcn_xcalloc(1, sizeof *n);
    n->cfg = *cfg;
    n->name = hcn_xstrdup(cfg->name);
    n->cfg.name = n->name;
    char *abs = realpath(cfg->home, NULL);
    n->home = abs ? abs : hcn_xstrdup(cfg->home);
    n->cfg.home = n->home;
    n->run_dir = hcn_xasprintf("%s/run", n->home);
    n->state_db_path = hcn_xasprintf("%s/state/state.sqlite", n->home);
    n->ctl_fd = -1;
    pthread_rwlock_init(&n->table_lock, NULL);
    pthread_mutex_init(&n->ctl_mu, NULL);
    pthread_mutex_init(&n->life_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->life_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&n->shutting_down, false);
    if (hcn_mkdirs(n->run_dir) != 0 ||
        hcn_log_open(&n->log, n->home, cfg->verbosity, cfg->log_max_bytes,
                     cfg->log_files) != 0) {
        snprintf(err, errlen, "cannot write in home directory %s: %s", n->home,
                 strerror(errno));
        hc_node_free(n);
        return NULL;
    }
    if (hcn_mod_state_add(n) != 0) {
        snprintf(err, errlen, "cannot open the state database %s",
                 n->state_db_path);
        hc_node_free(n);
        return NULL;
    }
    if (hcn_mod_vfs_add(n) != 0) {
        snprintf(err, errlen, "cannot create the vfs directory %s/vfs: %s",
                 n->home, strerror(errno));
        hc_node_free(n);
        return NULL;
    }
    hcn_mod_timer_add(n);
    hcn_mod_terminal_add(n);
    hcn_mod_http_client_add(n);
    hcn_mod_homepage_add(n);
    if (hcn_mod_http_add(n, err, errlen) != 0) {
        hc_node_free(n);
        return NULL;
    }
    /* kernel:distro:sys is a source only: kernel commands are not served
     * yet, so requests to it get a timeout error as for an unknown id. */
    return n;
}

int hc_node_load_package(hc_node *n, const char *dir, char *err, size_t errlen)
{
    return hcn_load_package(n, dir, err, errlen);
}

int hc_node_start(hc_node *n, char *err, size_t errlen)
{
    if (hcn_control_start(n) != 0) {
        snprintf(err, errlen, "cannot open control socket %s: %s",
                 n->ctl_path ? n->ctl_path : "?", strerror(errno));
        return -1;
    }
    /* Modules first, then the run signal to every loaded process. */
    pthread_rwlock_rdlock(&n->table_lock);
    size_t count = HASH_COUNT(n->procs), k = 0;
    hcn_proc **all = hcn_xcalloc(count, sizeof *all);
    for (hcn_proc *p = n->procs; p; p = p->hh.next)
        all[k++] = hcn_proc_ref(p);
    pthread_rwlock_unlock(&n->table_lock);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < count; i++) {
            hcn_proc *p = all[i];
            bool module = p->ops != NULL;
            if ((pass == 0) != module || (!module && p->so_path == NULL))
                continue; /* an entry with nothing to run (tests' fakes) */
            int rc =
                module ? hcn_module_start_thread(p) : hcn_proc_start_thread(p);
            if (rc != 0)
                hcn_logf(n, 0, "cannot start a thread for %s", p->id);
        }
    }
    for (size_t i = 0; i < count; i++)
        hcn_proc_unref(all[i]);
    free(all);
    hcn_logf(n, 0, "node %s running, home %s", n->name, n->home);
    return 0;
}

static bool proc_settled(hcn_proc *p)
{
    int st = atomic_load(&p->status);
    return !p->has_thread || st == HCN_PROC_EXITED ||
           st == HCN_PROC_RESTARTING || hcn_proc_started(p);
}

int hc_node_wait_started(hc_node *n, int timeout_ms, char *pending,
                         size_t pendlen)
{
    int64_t deadline = hcn_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        bool all = true;
        size_t used = 0;
        if (pendlen)
            pending[0] = '\0';
        pthread_rwlock_rdlock(&n->table_lock);
        for (hcn_proc *p = n->procs; p; p = p->hh.next) {
            if (proc_settled(p))
                continue;
            all = false;
            if (used < pendlen) {
                int w = snprintf(pending + used, pendlen - used, "%s%s",
                                 used ? ", " : "", p->id);
                used += w > 0 ? (size_t)w : 0;
            }
        }
        pthread_rwlock_unlock(&n->table_lock);
        if (all)
            return 0;
        if (hcn_now_ns() >= deadline)
            return -1;
        usleep(2000);
    }
}

static hcn_proc **snapshot(hcn_node *n, size_t *count)
{
    pthread_rwlock_rdlock(&n->table_lock);
    *count = HASH_COUNT(n->procs);
    hcn_proc **all = hcn_xcalloc(*count, sizeof *all);
    size_t k = 0;
    for (hcn_proc *p = n->procs; p; p = p->hh.next)
        all[k++] = hcn_proc_ref(p);
    pthread_rwlock_unlock(&n->table_lock);
    return all;
}

void hc_node_shutdown(hc_node *n)
{
    if (atomic_exchange(&n->shutting_down, true))
        return;
    hcn_logf(n, 0, "node %s shutting down", n->name);
    pthread_cond_broadcast(&n->life_cv);
    hcn_control_stop(n);
    hcn_mod_http_stop(n);
    size_t count;
    hcn_proc **all = snapshot(n, &count);
    /* Guests first, so that what they say on the way out still routes. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < count; i++)
            if ((all[i]->ops != NULL) == (pass == 1))
                hcn_mailbox_close(&all[i]->mb);
    /* Wait for threads; one busy in guest code cannot be stopped, so after
     * the grace period the node goes on without it. */
    int64_t deadline =
        hcn_now_ns() + (int64_t)n->cfg.shutdown_grace_s * 1000000000;
    pthread_mutex_lock(&n->life_mu);
    while (n->live_threads > 0 && hcn_now_ns() < deadline) {
        struct timespec ts = {.tv_sec = deadline / 1000000000,
                              .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&n->life_cv, &n->life_mu, &ts);
    }
    int left = n->live_threads;
    pthread_mutex_unlock(&n->life_mu);
    for (size_t i = 0; i < count; i++) {
        hcn_proc *p = all[i];
        if (p->has_thread) {
            if (left == 0)
                pthread_join(p->thread, NULL);
            else
                pthread_detach(p->thread);
            p->has_thread = false;
        }
        hcn_proc_unref(p);
    }
    free(all);
    if (left > 0)
        hcn_logf(n, 0,
                 "%d process thread(s) still busy after %u s; leaving "
                 "them",
                 left, n->cfg.shutdown_grace_s);
    else
        hcn_logf(n, 1, "all processes stopped");
}

void hc_node_free(hc_node *n)
{
    if (n == NULL)
        return;
    hcn_proc *p, *tmp;
    pthread_rwlock_wrlock(&n->table_lock);
    HASH_ITER(hh, n->procs, p, tmp)
    {
        HASH_DEL(n->procs, p);
        hcn_proc_unref(p);
    }
    pthread_rwlock_unlock(&n->table_lock);
    hcn_log_close(&n->log);
    pthread_rwlock_destroy(&n->table_lock);
    pthread_mutex_destroy(&n->ctl_mu);
    free(n->ctl_conns);
    pthread_mutex_destroy(&n->life_mu);
    pthread_cond_destroy(&n->life_cv);
    free(n->name);
    free(n->home);
    free(n->run_dir);
    free(n->state_db_path);
    free(n->ctl_path);
    free(n);
}

const char *hc_node_control_path(const hc_node *n)
{
    return n->ctl_path;
}

int hc_address_check(const char *addr)
{
    size_t at, offs[3][2];
    return -hcc_address_split(addr, true, &at, offs);
}

int hc_process_id_check(const char *pid)
{
    size_t offs[3][2];
    return -hcc_process_id_split(pid, strlen(pid), true, offs);
}

const char *hc_err_name(int err)
{
    return hcc_err_name(err);
}
const char *hc_strerror(int err)
{
    return hcc_strerror(err);
}
