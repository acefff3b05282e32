/* The kernel: the process table, routing with capability checks and bounded
 * mailboxes.  The node's life (new, start, shutdown) is in ../node.c. */
#include "kernel.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void hcn_logf(hcn_node *n, int verbosity, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcn_log_write(&n->log, "kernel", verbosity, n->log.level, buf);
}

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
    free(p->last_crash);
    free(p->start_failure);
    free(p->early_words);
    free(p->end_why);
    free(p->pkg_dir);
    free(p->pending_so);
    free(p->pending_pkg_dir);
    free(p);
}

void hcn_proc_note_crash(hcn_proc *p, const char *why)
{
    pthread_mutex_lock(&p->lock);
    p->crashes++;
    free(p->last_crash);
    p->last_crash = hcn_xstrdup(why);
    free(p->end_why);
    p->end_why = hcn_xstrdup(why);
    pthread_mutex_unlock(&p->lock);
}

void hcn_proc_note_end(hcn_proc *p, const char *why)
{
    pthread_mutex_lock(&p->lock);
    free(p->end_why);
    p->end_why = hcn_xstrdup(why);
    pthread_mutex_unlock(&p->lock);
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
    atomic_init(&p->tasks, -1);
    p->pending_isolated = -1;
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
    /* by the first letter: routing asks this for every message, and most
     * senders are none of the four */
    switch (pid[0]) {
    case 'k': return strcmp(pid, "kernel:distro:sys") == 0;
    case 's': return strcmp(pid, "state:distro:sys") == 0;
    case 'v': return strcmp(pid, "vfs:distro:sys") == 0;
    case 't': return strcmp(pid, "terminal:terminal:sys") == 0;
    default: return false;
    }
}

/* ------------------------------------------------------------- routing */

/* Whether addr is on node `name` (nl bytes long). */
static bool node_is_n(const char *addr, const char *name, size_t nl)
{
    return strncmp(addr, name, nl) == 0 && addr[nl] == '@';
}

static bool node_is(const char *addr, const char *name)
{
    return node_is_n(addr, name, strlen(name));
}

/* Send the sender of request m a send error at once, if it waits for an
 * answer (Hyperware's throw_timeout).  Consumes nothing. */
static const char full_why[] = "target mailbox is full";

/* Whether this refusal's line is shown: HCN_REFUSALS_PER_S a second; when
 * a new second begins, one line says how many were held back. */
static bool refusal_shown(hcn_node *n)
{
    int64_t now = hcn_now_ns();
    pthread_mutex_lock(&n->refuse_mu);
    if (now - n->refuse_window_ns >= 1000000000) {
        uint64_t hidden = n->refuse_hidden;
        n->refuse_window_ns = now;
        n->refuse_shown = 0;
        n->refuse_hidden = 0;
        if (hidden)
            hcn_logf(n, 0,
                     "%llu more refusals not shown (at most %u lines a "
                     "second)",
                     (unsigned long long)hidden, HCN_REFUSALS_PER_S);
    }
    bool show = n->refuse_shown < HCN_REFUSALS_PER_S;
    if (show)
        n->refuse_shown++;
    else
        n->refuse_hidden++;
    pthread_mutex_unlock(&n->refuse_mu);
    return show;
}

/* Say the count of refusals held back: all of them, or (ended_only) only
 * once the second they were held back in has ended (the window stays: the
 * next refusal starts a new one, with nothing left to say of this one). */
static void refusals_say(hcn_node *n, bool ended_only)
{
    int64_t now = ended_only ? hcn_now_ns() : 0;
    pthread_mutex_lock(&n->refuse_mu);
    uint64_t hidden = 0;
    if (!ended_only || now - n->refuse_window_ns >= 1000000000) {
        hidden = n->refuse_hidden;
        n->refuse_hidden = 0;
    }
    pthread_mutex_unlock(&n->refuse_mu);
    if (hidden)
        hcn_logf(n, 0,
                 "%llu more refusals not shown (at most %u lines a "
                 "second)",
                 (unsigned long long)hidden, HCN_REFUSALS_PER_S);
}

void hcn_refusals_flush(hcn_node *n)
{
    refusals_say(n, false);
}

void hcn_refusals_flush_ended(hcn_node *n)
{
    refusals_say(n, true);
}

/* A request that expects a response and found its target's mailbox full:
 * the node answers for the target at once, in the framework's error shape
 * (kind Busy), rather than let the caller wait for a timeout.  Hyperware
 * has no such bound (its sends wait for room); a hyperc extension, as the
 * bound itself.  A sender on another node gets the answer over the network,
 * as the target's response.  Returns whether an answer went. */
static bool answer_busy(hcn_node *n, hcn_msg *m, hcn_proc *to)
{
    if (m->kind != HCN_MSG_REQUEST || !m->has_expects)
        return false;
    const char *back = m->rsvp ? m->rsvp : m->source;
    bool remote = !node_is(back, n->name);
    hcn_proc *from = remote ? NULL : hcn_node_find(n, hcn_addr_pid(back));
    if (!remote && from == NULL)
        return false;
    char *body = hcn_xasprintf(
        "{\"HypercError\":{\"kind\":\"Busy\",\"message\":\"the mailbox of "
        "%s is full (%u requests queued): this request was not delivered; "
        "try again later\"}}",
        hcn_addr_pid(m->target), to->mb.max_req);
    hcn_msg *r =
        HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = m->id, .source = m->target,
                    .target = back, .body = body, .body_len = strlen(body));
    free(body);
    if (remote) {
        hcn_route(n, r);
        return true;
    }
    if (hcn_mailbox_push(&from->mb, r) != HCC_EOK)
        hcn_msg_unref(r);
    hcn_proc_unref(from);
    return true;
}

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

/* Whether process p may talk with other nodes (send, and be sent to): a
 * runtime module, or a process holding the kernel's network capability
 * (a manifest's "request_networking"), as in Hyperware. */
static bool proc_networks(hcn_node *n, hcn_proc *p)
{
    if (p->ops != NULL) /* a runtime module (net answers peers) */
        return true;
    pthread_mutex_lock(&p->lock);
    bool ok = hcn_capset_has(&p->caps, n->kernel_addr, "\"network\"");
    pthread_mutex_unlock(&p->lock);
    return ok;
}

/* Whether m carries the messaging capability for the process at `addr`
 * (params compared as canonical JSON, as the capability sets do). */
static bool carries_messaging(const hcn_msg *m, const char *addr)
{
    for (size_t i = 0; i < m->ncaps; i++) {
        if (strcmp(m->caps[i].issuer, addr) != 0)
            continue;
        if (strcmp(m->caps[i].params, "\"messaging\"") == 0)
            return true;
        char *canon = hcn_json_canonical(m->caps[i].params);
        bool ok = canon != NULL && strcmp(canon, "\"messaging\"") == 0;
        free(canon);
        if (ok)
            return true;
    }
    return false;
}

static bool may_network(hcn_node *n, hcn_proc *hint, const char *spid)
{
    hcn_proc *from = hint ? hcn_proc_ref(hint) : hcn_node_find(n, spid);
    bool ok = from != NULL && proc_networks(n, from);
    hcn_proc_unref(from);
    return ok;
}

/* At terminal level 3 the kernel prints every message it routes, as
 * Hyperware's event-loop printouts do: formatted only then, so below that
 * level it costs one comparison per message. */
static void trace_route(hcn_node *n, const hcn_msg *m)
{
    if (m->kind == HCN_MSG_SEND_ERROR) {
        hcn_logf(n, 3, "send error (%s) for request %llu: %s -> %s",
                 m->err_kind == HW_SEND_ERROR_TIMEOUT ? "timeout" : "offline",
                 (unsigned long long)m->id, m->source, m->target);
        return;
    }
    char body[84];
    size_t k = 0;
    for (size_t i = 0; i < m->body_len && k < 80; i++) {
        uint8_t c = m->body[i];
        body[k++] = c >= 0x20 && c < 0x7f ? (char)c : '.';
    }
    if (k < m->body_len)
        body[k++] = '~'; /* cut */
    body[k] = '\0';
    char expects[32] = "";
    if (m->has_expects)
        snprintf(expects, sizeof expects, ", expects %llu s",
                 (unsigned long long)m->expects);
    hcn_logf(n, 3, "%s %llu: %s -> %s (%zu bytes%s%s): %s", kind_name(m),
             (unsigned long long)m->id, m->source, m->target, m->body_len,
             expects, m->blob ? ", blob" : "", body);
}

void hcn_route(hcn_node *n, hcn_msg *m)
{
    hcn_route_ex(n, NULL, NULL, m);
}

uint32_t hcn_route_ex(hcn_node *n, hcn_proc *from_hint, hcn_proc *to_hint,
                      hcn_msg *m)
{
    if (n->log.level >= 3)
        trace_route(n, m);
    /* a local address's process id is right after the node's name; a
     * hint is a process of this node, so its address needs no look */
    size_t nl = n->name_len;
    bool src_local = from_hint != NULL || node_is_n(m->source, n->name, nl);
    if (to_hint == NULL && !node_is_n(m->target, n->name, nl)) {
        /* Another node's: through the way out if a module gave one; without
         * one, every other node is offline, as for a peer missing from the
         * PKI. */
        int kind = HW_SEND_ERROR_OFFLINE;
        const char *spid = hcn_addr_pid(m->source);
        if (n->remote.send != NULL && src_local && !hcn_pid_exempt(spid) &&
            !may_network(n, from_hint, spid)) {
            /* as Hyperware: no network capability, a timeout at once */
            hcn_logf(n, 0,
                     "%s %s -> %s refused: sender lacks the network "
                     "capability (manifest: \"request_networking\": true)%s",
                     kind_name(m), m->source, m->target,
                     m->kind == HCN_MSG_REQUEST && m->has_expects
                         ? "; sender gets a timeout error"
                         : "");
            bounce(n, m, HW_SEND_ERROR_TIMEOUT);
            hcn_msg_unref(m);
            return 0;
        }
        if (n->remote.send != NULL) {
            if (n->remote.send(n->remote.ctx, m, &kind)) {
                hcn_msg_unref(m);
                return 0;
            }
        } else {
            hcn_logf(n, 1, "%s %s -> %s: node offline (no networking)",
                     kind_name(m), m->source, m->target);
        }
        bounce(n, m, kind);
        hcn_msg_unref(m);
        return 0;
    }
    const char *spid = src_local ? m->source + nl + 1 : hcn_addr_pid(m->source);
    hcn_proc *to =
        to_hint ? hcn_proc_ref(to_hint) : hcn_node_find(n, m->target + nl + 1);
    const char *why = NULL;
    if (to == NULL) {
        why = "no such process";
    } else if (src_local && !hcn_pid_exempt(spid)) {
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
    } else if (!src_local && m->kind != HCN_MSG_SEND_ERROR &&
               !proc_networks(n, to)) {
        /* from another node: as Hyperware, dropped unless the target may
         * network (the remote sender times out) */
        if (refusal_shown(n)) /* another node may send many */
            hcn_logf(n, 0,
                     "%s %s -> %s dropped: the target lacks the network "
                     "capability to hear from other nodes (manifest: "
                     "\"request_networking\": true)",
                     kind_name(m), m->source, m->target);
        hcn_proc_unref(to);
        hcn_msg_unref(m);
        return 0;
    } else if (!src_local && m->kind == HCN_MSG_REQUEST && !to->public_ &&
               !carries_messaging(m, to->addr)) {
        /* from another node to a process that is not public: only with the
         * messaging capability for it, carried in the request (net keeps
         * one our node issued only with our valid signature).  Stricter
         * than Hyperware, which lets any node reach a networking process.
         * Responses and send errors are not checked: they answer the
         * process's own requests. */
        if (refusal_shown(n))
            hcn_logf(n, 0,
                     "%s %s -> %s dropped: the target is not public and the "
                     "request carries no messaging capability for it (issuer "
                     "%s, params \"messaging\"); the sender times out",
                     kind_name(m), m->source, m->target, to->addr);
        hcn_proc_unref(to);
        hcn_msg_unref(m);
        return 0;
    }
    if (why == NULL) {
        if (atomic_load(&to->status) == HCN_PROC_EXITED)
            why = "target process has exited";
    }
    if (why == NULL) {
        uint32_t seq = 0;
        int rc = to->ops && to->ops->deliver
                     ? to->ops->deliver(to, m)
                     : hcn_mailbox_push_seq(&to->mb, m, &seq);
        if (rc == HCC_EOK) {
            hcn_proc_unref(to);
            return seq;
        }
        why = rc == HCC_EFULL ? full_why : "target process is stopping";
    }
    bool busy = why == full_why;
    if (refusal_shown(n))
        hcn_logf(n, 0, "%s %s -> %s refused: %s%s", kind_name(m), m->source,
                 m->target, why,
                 m->kind == HCN_MSG_REQUEST && m->has_expects
                     ? busy ? "; the sender is answered Busy"
                            : "; sender gets a timeout error"
                     : "");
    if (busy && answer_busy(n, m, to)) {
        hcn_proc_unref(to);
        hcn_msg_unref(m);
        return 0;
    }
    if (m->kind == HCN_MSG_RESPONSE && to != NULL) {
        /* The target waits for this answer: tell it now rather than let it
         * time out later. */
        hcn_msg *e = HCN_MSG_NEW(.kind = HCN_MSG_SEND_ERROR, .id = m->id,
                                 .source = m->source, .target = m->target);
        e->err_kind = HW_SEND_ERROR_TIMEOUT;
        if (hcn_mailbox_push(&to->mb, e) != HCC_EOK)
            hcn_msg_unref(e);
    }
    bounce(n, m, HW_SEND_ERROR_TIMEOUT);
    hcn_proc_unref(to);
    hcn_msg_unref(m);
    return 0;
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
    /* broadcast before the unlock: once the count is seen at 0 the node
     * may be freed (hc_node_free), its condition variable with it */
    pthread_mutex_lock(&n->life_mu);
    n->live_threads--;
    pthread_cond_broadcast(&n->life_cv);
    pthread_mutex_unlock(&n->life_mu);
}

bool hcn_node_sleep_until(hcn_node *n, int64_t deadline)
{
    hcn_fiber *f = hcn_fiber_self();
    if (f != NULL)
        return hcn_fiber_sleep_until(f, n, deadline);
    pthread_mutex_lock(&n->life_mu);
    while (!atomic_load(&n->shutting_down) && hcn_now_ns() < deadline) {
        struct timespec ts = {.tv_sec = deadline / 1000000000,
                              .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&n->life_cv, &n->life_mu, &ts);
    }
    pthread_mutex_unlock(&n->life_mu);
    return !atomic_load(&n->shutting_down);
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
