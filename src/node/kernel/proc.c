/* Process lifecycle: a thread per process; loading a private instance of the
 * shared object; on-exit (none, restart with backoff and give-up, requests);
 * runtime module threads; spawn. */
#include "kernel_int.h"

#include "../../common/abi_types.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------- guest instances */

/* Copy the file `in` to `out`: in the kernel (copy_file_range, no buffer of
 * ours), or through a heap buffer where the kernel cannot (another file
 * system on an old kernel).  Not a buffer on the thread's stack: the pages
 * of a process thread's stack it touches stay resident as long as the
 * process lives (64 KiB of them per process, when it was). */
static bool copy_file(int in, int out)
{
    for (;;) {
        ssize_t r = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (r == 0)
            return true;
        if (r > 0)
            continue;
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != ENOSYS && errno != EINVAL &&
            errno != EOPNOTSUPP)
            return false;
        break; /* nothing copied yet: copy_file_range fails at once */
    }
    enum { BUF = 64 * 1024 };
    char *buf = hcn_xmalloc(BUF);
    bool ok = true;
    for (;;) {
        ssize_t r = read(in, buf, BUF);
        if (r == 0)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || write(out, buf, (size_t)r) != r) {
            ok = false;
            break;
        }
    }
    free(buf);
    return ok;
}

/* Copy the shared object to a private file and dlopen it: the dynamic loader
 * shares one instance per file, and two processes of the same binary must
 * share nothing.  The copy is made fresh (O_EXCL, O_NOFOLLOW) under the
 * run/ directory's descriptor, so a file or link planted in its place is
 * never written through; run/ itself was found private (ours, not a link,
 * not writable by others) when the node booted.
 * The copy is unlinked once mapped. */
static void *load_instance(hcn_proc *p, char *err, size_t errlen)
{
    unsigned seq = atomic_fetch_add(&p->node->instance_seq, 1);
    char *name = hcn_xasprintf("%s.%u.so", p->id, seq);
    int dir = p->node->run_fd;
    void *dl = NULL;
    bool made = false;
    int in = open(p->so_path, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (in < 0) {
        snprintf(err, errlen, "cannot open %s: %s", p->so_path,
                 strerror(errno));
        goto done;
    }
    for (int attempt = 0; attempt < 2 && out < 0; attempt++) {
        out = openat(dir, name,
                     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
        /* a copy left by a node that died before unlinking it, or
         * something planted: the name is ours, the entry goes */
        if (out < 0 && errno == EEXIST && attempt == 0)
            unlinkat(dir, name, 0);
    }
    if (out < 0) {
        snprintf(err, errlen, "cannot write %s/%s: %s", p->node->run_dir, name,
                 strerror(errno));
        goto done;
    }
    made = true;
    if (!copy_file(in, out)) {
        snprintf(err, errlen, "cannot copy %s: %s", p->so_path,
                 strerror(errno));
        goto done;
    }
    /* by its path (what backtraces show; the loader matches loaded objects
     * by name, and this one is unique): run/ was found private at boot */
    char *via = hcn_xasprintf("%s/%s", p->node->run_dir, name);
    dl = dlopen(via, RTLD_NOW | RTLD_LOCAL);
    free(via);
    if (dl == NULL)
        snprintf(err, errlen, "cannot load %s: %s", p->so_path, dlerror());
done:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    if (made)
        unlinkat(dir, name, 0);
    free(name);
    return dl;
}

/* Whether p runs in the node's own process (not in a worker): a wasm
 * component always runs in the wasm host, a worker. */
static bool in_process(const hcn_proc *p)
{
    size_t n = strlen(p->so_path);
    return !p->isolated && !(n > 5 && strcmp(p->so_path + n - 5, ".wasm") == 0);
}

static hcn_run_end run_instance(hcn_proc *p)
{
    if (!in_process(p))
        return hcn_isolate_run(p);
    char err[512];
    void *dl = load_instance(p, err, sizeof err);
    if (dl == NULL) {
        hcn_logf(p->node, 0, "%s: %s", p->id, err);
        hcn_proc_note_end(p, err);
        return HCN_RUN_LOAD_FAILED;
    }
    hwn_entry_fn entry;
    *(void **)&entry = dlsym(dl, HWN_ENTRY_SYMBOL);
    if (entry == NULL) {
        hcn_logf(p->node, 0,
                 "%s: %s exports no %s (not built against libhyperc?)", p->id,
                 p->so_path, HWN_ENTRY_SYMBOL);
        hcn_proc_note_end(p, "its binary exports no " HWN_ENTRY_SYMBOL
                             " (not built against libhyperc?)");
        dlclose(dl);
        return HCN_RUN_LOAD_FAILED;
    }
    /* A process that takes the runtime from the node says which (a process
     * built before carries its own and says nothing). */
    const uint32_t *rt_abi = dlsym(dl, HWN_RUNTIME_SYMBOL);
    if (rt_abi != NULL && *rt_abi != HWN_RUNTIME_ABI) {
        char why[160];
        snprintf(why, sizeof why,
                 "its binary was built for libhyperc runtime ABI %u, this "
                 "node has %u: rebuild it with this hyperc",
                 (unsigned)*rt_abi, (unsigned)HWN_RUNTIME_ABI);
        hcn_logf(p->node, 0, "%s: %s", p->id, why);
        hcn_proc_note_end(p, why);
        dlclose(dl);
        return HCN_RUN_LOAD_FAILED;
    }
    hcn_host *h = hcn_xmalloc(sizeof *h);
    hcn_host_init(h, p);
    hcn_fault_instance_text(h, dl);
    hcn_run_end end;
    hcn_fault_enter(h);
    hcn_kill_point_mark(h);
    int jumped = sigsetjmp(h->kill, 1);
    if (jumped == 0) {
        int rc = entry(&h->table, p->addr);
        hcn_fault_leave(h, 0);
        if (rc != 0) {
            hcn_logf(p->node, 0, "%s: %s", p->id, hcc_strerror(HCC_EABI));
            hcn_proc_note_end(p, hcc_strerror(HCC_EABI));
            end = HCN_RUN_LOAD_FAILED;
        } else {
            end = HCN_RUN_RETURNED;
        }
    } else {
        hcn_fault_leave(h, jumped);
        /* Also an overflow when a call that overflowed was still running
         * when the process was stopped. */
        if (jumped == HCN_KILL_OVERFLOW || h->ovf_state != HCN_OVF_NONE) {
            hcn_logf(p->node, 0,
                     "process %s: task stack overflow (guard page hit)", p->id);
            hcn_proc_note_crash(p, "task stack overflow (guard page hit)");
            hcn_logf(p->node, 2, "process %s: fault at %#lx in %s code", p->id,
                     (unsigned long)h->ovf_addr,
                     h->ovf_outside ? "library or host" : "the process's");
            end = HCN_RUN_OVERFLOW;
        } else {
            end = HCN_RUN_KILLED;
        }
    }
    h->crashed = end == HCN_RUN_OVERFLOW;
    hcn_host_fini(h);
    free(h);
    /* A killed guest's memory is still referenced from its globals; keep
     * the instance mapped so that it stays reachable, as a wasm instance
     * is dropped whole rather than unwound. */
    if (end != HCN_RUN_KILLED && end != HCN_RUN_OVERFLOW)
        dlclose(dl);
    return end;
}

/* Send the on-exit requests of p, from p, without expects-response. */
static void send_exit_requests(hcn_proc *p, const hcn_on_exit *o)
{
    for (size_t i = 0; i < o->nreqs; i++) {
        const hcn_exit_req *r = &o->reqs[i];
        hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST,
                                 .id = hcn_random_u64(), .source = p->addr,
                                 .target = r->target, .inherit = r->inherit,
                                 .body = r->body, .body_len = r->body_len,
                                 .metadata = r->metadata, .blob = r->blob);
        hcn_route(p->node, m);
    }
}

/* Everything still queued for a process that is gone: requests that wait
 * for an answer get a timeout error, as Hyperware does for dead targets. */
void hcn_proc_fail_request(hcn_node *n, hcn_msg *m)
{
    if (m->kind != HCN_MSG_REQUEST || !m->has_expects)
        return;
    hcn_msg *e = hcn_msg_send_error(m, HW_SEND_ERROR_TIMEOUT);
    hcn_proc *to = hcn_node_find(n, hcn_addr_pid(e->target));
    if (to == NULL || hcn_mailbox_push(&to->mb, e) != HCC_EOK)
        hcn_msg_unref(e);
    hcn_proc_unref(to);
}

static void fail_queued(hcn_proc *p)
{
    hcn_msg *m = hcn_mailbox_take_all(&p->mb);
    while (m) {
        hcn_msg *next = m->next;
        m->next = NULL;
        hcn_proc_fail_request(p->node, m);
        hcn_msg_unref(m);
        m = next;
    }
}

/* A reinstall's new binary and package folder, taken on the process's own
 * thread between instances (nothing else reads them while it runs). */
static void take_pending(hcn_proc *p)
{
    pthread_mutex_lock(&p->lock);
    if (p->pending_so) {
        free(p->so_path);
        p->so_path = p->pending_so;
        p->pending_so = NULL;
    }
    if (p->pending_pkg_dir) {
        free(p->pkg_dir);
        p->pkg_dir = p->pending_pkg_dir;
        p->pending_pkg_dir = NULL;
    }
    if (p->pending_isolated >= 0) {
        atomic_store(&p->isolated, p->pending_isolated != 0);
        p->pending_isolated = -1;
    }
    pthread_mutex_unlock(&p->lock);
}

static void *proc_main(void *arg);

/* Whether p's life is to go on another carrier now: in-process on a
 * thread of its own while the node has schedulers (a fiber would do), or
 * in a worker while on a fiber (a worker's life waits on its link and its
 * child for as long as it runs, and would hold the fiber's scheduler
 * thread all that time).  A reinstall makes either: its manifest entry's
 * in_process changed, or its binary became a component. */
static bool carrier_wrong(const hcn_proc *p)
{
    if (p->on_fiber)
        return !in_process(p);
    return p->node->sched != NULL && in_process(p);
}

typedef enum { MOVE_NOT, MOVE_DONE, MOVE_STOP } move_end;

/* Carry p's life on to a new thread (from a fiber) or fiber (from a
 * thread), which starts it again from the top of hcn_proc_life.  on_fiber,
 * thread and thread_claimed change under the node's life_mu, after a look
 * at shutting_down: the shutdown sets that before it takes the lock, and
 * reads them after (node.c), so it either sees the move or the move does
 * not happen (MOVE_STOP: the node is stopping; this life ends here).  A
 * thread that hands over lets go of itself (claimed and detached) before
 * the fiber exists, so that a move back to a thread later starts with
 * thread_claimed down for the new one.  MOVE_NOT: it could not move
 * (logged); the life goes on where it is. */
static move_end carrier_move(hcn_proc *p)
{
    hcn_node *n = p->node;
    bool to_thread = p->on_fiber;
    int rc = 0;
    if (to_thread)
        hcn_node_thread_begin(n); /* the new thread's, ahead of it */
    pthread_mutex_lock(&n->life_mu);
    if (atomic_load(&n->shutting_down)) {
        pthread_mutex_unlock(&n->life_mu);
        if (to_thread)
            hcn_node_thread_end(n);
        return MOVE_STOP;
    }
    if (to_thread) {
        hcn_proc_ref(p);
        p->on_fiber = false;
        atomic_store(&p->thread_claimed, false);
        rc = pthread_create(&p->thread, NULL, proc_main, p);
        if (rc != 0)
            p->on_fiber = true;
    } else {
        p->on_fiber = true;
    }
    pthread_mutex_unlock(&n->life_mu);
    if (to_thread && rc != 0) {
        hcn_proc_unref(p);
        hcn_node_thread_end(n);
    } else if (!to_thread) {
        if (!atomic_exchange(&p->thread_claimed, true))
            pthread_detach(pthread_self());
        /* counts the fiber in the census and takes its own reference */
        rc = hcn_sched_spawn(n->sched, p);
        if (rc != 0) {
            pthread_mutex_lock(&n->life_mu);
            p->on_fiber = false;
            pthread_mutex_unlock(&n->life_mu);
            /* refused as the schedulers stop: this life ends here (this
             * thread, let go of, ends on its own) */
            if (atomic_load(&n->shutting_down))
                return MOVE_STOP;
        }
    }
    if (rc != 0) {
        hcn_logf(n, 0, "%s: cannot move it to a %s; it goes on on its %s",
                 p->id, to_thread ? "thread of its own" : "fiber",
                 to_thread ? "fiber" : "thread");
        return MOVE_NOT;
    }
    hcn_logf(n, 2, "%s now runs on a %s", p->id,
             to_thread ? "thread of its own"
                       : "fiber of the node's schedulers");
    return MOVE_DONE;
}

/* Revoke every capability p issued, from every process (on-exit None). */
static void revoke_issued(hcn_proc *p)
{
    hcn_node *n = p->node;
    pthread_rwlock_rdlock(&n->table_lock);
    for (hcn_proc *q = n->procs; q; q = q->hh.next) {
        pthread_mutex_lock(&q->lock);
        hcn_capset_remove_issuer(&q->caps, p->addr);
        pthread_mutex_unlock(&q->lock);
    }
    pthread_rwlock_unlock(&n->table_lock);
}

static void set_status(hcn_proc *p, int status)
{
    atomic_store(&p->status, status);
}

/* Decide the wait before the next restart; false = give up. */
static bool restart_delay(hcn_proc *p, int64_t uptime_ns, int64_t *delay_ns)
{
    const hc_node_config *c = &p->node->cfg;
    int64_t now = hcn_now_ns();
    int64_t base = (int64_t)c->restart_base_ms * 1000000;
    int64_t cap = (int64_t)c->restart_max_ms * 1000000;
    /* Current backoff for the healthy-run rule. */
    int64_t backoff = p->consecutive == 0 ? 0 : base << (p->consecutive - 1);
    if (backoff > cap || backoff < 0)
        backoff = cap;
    int64_t healthy = 5 * backoff;
    if (healthy > 3000LL * 1000000000)
        healthy = 3000LL * 1000000000;
    if (p->consecutive > 0 && uptime_ns >= healthy)
        p->consecutive = 0;
    int64_t window = (int64_t)c->restart_window_ms * 1000000;
    if (p->failures == 0 || now - p->window_start_ns > window) {
        p->failures = 0;
        p->window_start_ns = now;
    }
    p->failures++;
    if (c->restart_give_up > 0 && (uint32_t)p->failures >= c->restart_give_up)
        return false;
    int k = p->consecutive++;
    if (k == 0) {
        *delay_ns = 0;
    } else {
        int64_t d = base << (k - 1 > 40 ? 40 : k - 1);
        *delay_ns = d > cap || d < 0 ? cap : d;
    }
    return true;
}

/* A new instance begins: what `hyperc ps` says of the last one goes. */
static void instance_begin(hcn_proc *p, int64_t now)
{
    pthread_mutex_lock(&p->lock);
    free(p->early_words);
    free(p->end_why);
    p->early_words = p->end_why = NULL;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->tasks, -1);
    atomic_store(&p->busy_since, now); /* in its init until it receives */
}

/* Instance `inst` ended (`end`, not a stop by the node) before it started:
 * keep why, for a reinstall waiting on it and for `hyperc ps` (the log has
 * said it already: the crash, the load failure, the guest's own words). */
static void note_start_failure(hcn_proc *p, int inst, hcn_run_end end)
{
    pthread_mutex_lock(&p->lock);
    char *why;
    if (end == HCN_RUN_RETURNED)
        why = p->early_words ? hcn_xasprintf("exited before it started; it "
                                             "said: %s",
                                             p->early_words)
                             : hcn_xstrdup("exited before it started");
    else if (end == HCN_RUN_LOAD_FAILED)
        why = hcn_xasprintf("failed to load: %s",
                            p->end_why ? p->end_why : "(see the log)");
    else
        why = hcn_xasprintf("crashed as it started: %s",
                            p->end_why ? p->end_why : "(see the log)");
    free(p->start_failure);
    p->start_failure = why;
    pthread_mutex_unlock(&p->lock);
    atomic_store(&p->start_failed_inst, inst);
}

/* Wait out a restart's backoff, in steps: a reinstall meanwhile ends the
 * wait (once it has both asked the reload and stopped the mailbox, in that
 * order: package.c), and its new binary starts now rather than after a
 * backoff that may be minutes long.  false on shutdown. */
static bool backoff_wait(hcn_proc *p, int64_t deadline)
{
    for (;;) {
        if (atomic_load(&p->reload) && hcn_mailbox_stopping(&p->mb)) {
            atomic_store(&p->reload, false);
            p->consecutive = 0;
            p->failures = 0;
            hcn_mailbox_resume(&p->mb);
            hcn_logf(p->node, 1, "%s reinstalled", p->id);
            return true;
        }
        int64_t now = hcn_now_ns();
        if (now >= deadline)
            return true;
        int64_t step = now + 50 * 1000000LL;
        if (!hcn_node_sleep_until(p->node, step < deadline ? step : deadline))
            return false;
    }
}

/* ------------------------------------------------ the thread's allocator */

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

/* jemalloc's mallctl when the node runs on jemalloc, else NULL; looked up
 * rather than linked so that the node builds and runs without it. */
static mallctl_fn mallctl_get(void)
{
    static _Atomic(mallctl_fn) fn;
    static atomic_bool looked;
    if (!atomic_load_explicit(&looked, memory_order_acquire)) {
        mallctl_fn f;
        *(void **)&f = dlsym(RTLD_DEFAULT, "mallctl");
        atomic_store_explicit(&fn, f, memory_order_relaxed);
        atomic_store_explicit(&looked, true, memory_order_release);
    }
    return atomic_load_explicit(&fn, memory_order_relaxed);
}

static _Thread_local bool thread_cache_off;

static void thread_cache_set(bool on)
{
    mallctl_fn f = mallctl_get();
    if (f == NULL)
        return;
    bool v = on;
    if (f("thread.tcache.enabled", NULL, NULL, &v, sizeof v) == 0)
        thread_cache_off = !on;
}

void hcn_thread_cache_off(void)
{
    if (!thread_cache_off)
        thread_cache_set(false);
}

void hcn_thread_cache_on(void)
{
    if (thread_cache_off)
        thread_cache_set(true);
}

bool hcn_proc_life(hcn_proc *p)
{
    hcn_node *n = p->node;
    const char *gave_up = NULL;
    for (;;) {
        take_pending(p);
        if (carrier_wrong(p)) {
            move_end m = carrier_move(p);
            if (m == MOVE_DONE)
                return true;
            if (m == MOVE_STOP)
                break;
        }
        set_status(p, HCN_PROC_RUNNING);
        int64_t started = hcn_now_ns();
        instance_begin(p, started);
        int inst = atomic_fetch_add(&p->instance, 1) + 1;
        hcn_run_end end = run_instance(p);
        atomic_store(&p->busy_since, 0);
        if (atomic_load(&n->shutting_down))
            break;
        if (end != HCN_RUN_KILLED && atomic_load(&p->started_inst) != inst)
            note_start_failure(p, inst, end);
        if (atomic_exchange(&p->retire, false)) {
            hcn_logf(n, 1, "%s removed (no longer in its package)", p->id);
            goto gone;
        }
        if (atomic_exchange(&p->reload, false)) {
            /* Reinstalled: the next instance loads the new binary and
             * takes what was queued meanwhile. */
            p->consecutive = 0;
            p->failures = 0;
            hcn_mailbox_resume(&p->mb);
            hcn_logf(n, 1, "%s reinstalled", p->id);
            continue;
        }
        if (end == HCN_RUN_KILLED)
            break;
        pthread_mutex_lock(&p->lock);
        hcn_on_exit o;
        hcn_on_exit_copy(&o, &p->on_exit);
        pthread_mutex_unlock(&p->lock);
        const char *how = end == HCN_RUN_LOAD_FAILED ? "failed to start"
                          : end == HCN_RUN_OVERFLOW || end == HCN_RUN_CRASHED
                              ? "crashed"
                              : "exited";
        if (o.kind == HW_ON_EXIT_RESTART) {
            int64_t delay;
            if (!restart_delay(p, hcn_now_ns() - started, &delay)) {
                gave_up = how;
                hcn_on_exit_fini(&o);
                goto gone;
            }
            hcn_logf(n, 0, "%s %s; restarting in %lld ms", p->id, how,
                     (long long)(delay / 1000000));
            hcn_on_exit_fini(&o);
            atomic_fetch_add(&p->restarts, 1);
            set_status(p, HCN_PROC_RESTARTING);
            if (!backoff_wait(p, hcn_now_ns() + delay))
                break;
            continue;
        }
        hcn_logf(n, 1, "%s %s", p->id, how);
        if (o.kind == HW_ON_EXIT_REQUESTS)
            send_exit_requests(p, &o);
        hcn_on_exit_fini(&o);
    gone:
        set_status(p, HCN_PROC_EXITED);
        hcn_mailbox_close(&p->mb);
        fail_queued(p);
        revoke_issued(p);
        hcn_node_remove_proc(n, p);
        /* told after it has left the table: whoever reads the line and
         * then lists the processes does not see it any more */
        if (gave_up != NULL)
            hcn_logf(n, 0,
                     "%s %s %d times within %u ms: giving up, not "
                     "restarting it again",
                     p->id, gave_up, p->failures, n->cfg.restart_window_ms);
        break;
    }
    set_status(p, HCN_PROC_EXITED);
    return false;
}

static void *proc_main(void *arg)
{
    hcn_proc *p = arg;
    pthread_setname_np(pthread_self(), "hc-proc"); /* top -H, perf, gdb */
    hcn_thread_cache_off(); /* until it has work: hcn_thread_cache_on */
    hcn_fault_thread_begin();
    /* true: its life went on on a fiber, and this thread has let go of
     * itself (carrier_move) */
    bool moved = hcn_proc_life(p);
    hcn_fault_thread_end();
    /* gone from the node's table (on-exit None, given up, removed): the
     * shutdown will not join this thread, so it lets go of itself */
    hcn_proc *same = hcn_node_find(p->node, p->id);
    if (!moved && same != p && !atomic_exchange(&p->thread_claimed, true))
        pthread_detach(pthread_self());
    if (same)
        hcn_proc_unref(same);
    hcn_node_thread_end(p->node);
    hcn_proc_unref(p);
    return NULL;
}

int hcn_proc_start_thread(hcn_proc *p)
{
    if (p->node->sched != NULL && in_process(p)) {
        p->has_thread = true;
        p->on_fiber = true;
        if (hcn_sched_spawn(p->node->sched, p) != 0) {
            p->has_thread = p->on_fiber = false;
            return -1;
        }
        return 0;
    }
    hcn_node_thread_begin(p->node);
    hcn_proc_ref(p);
    p->has_thread = true;
    if (pthread_create(&p->thread, NULL, proc_main, p) != 0) {
        p->has_thread = false;
        hcn_proc_unref(p);
        hcn_node_thread_end(p->node);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------- module threads */

static void *module_main(void *arg)
{
    hcn_proc *p = arg;
    pthread_setname_np(pthread_self(), "hc-module"); /* top -H, perf, gdb */
    set_status(p, HCN_PROC_RUNNING);
    for (;;) {
        int64_t deadline =
            p->ops->next_deadline ? p->ops->next_deadline(p) : -1;
        hcn_msg *m;
        int rc = hcn_mailbox_pop(&p->mb, deadline, &m);
        if (rc == HCC_ECLOSED)
            break;
        if (rc == HCC_EOK)
            p->ops->handle(p, m);
        if (p->ops->on_deadline)
            p->ops->on_deadline(p, hcn_now_ns());
    }
    hcn_node_thread_end(p->node);
    hcn_proc_unref(p);
    return NULL;
}

int hcn_module_start_thread(hcn_proc *p)
{
    hcn_node_thread_begin(p->node);
    hcn_proc_ref(p);
    p->has_thread = true;
    if (pthread_create(&p->thread, NULL, module_main, p) != 0) {
        p->has_thread = false;
        hcn_proc_unref(p);
        hcn_node_thread_end(p->node);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- spawn */

hw_spawn_error hcn_spawn(hcn_host *h, const char *name, const char *path,
                         const hw_on_exit *on_exit, const hw_capability *rc,
                         size_t rc_len, const hw_process_id *gp,
                         const char *const *gparams, size_t g_len, bool public_,
                         hw_process_id *out)
{
    hcn_proc *parent = h->proc;
    hcn_node *n = h->node;
    memset(out, 0, sizeof *out);
    const char *pkg = strchr(parent->id, ':') + 1;
    char *pname =
        name ? hcn_xstrdup(name)
             : hcn_xasprintf("%llu", (unsigned long long)hcn_random_u64());
    char *pid = hcn_xasprintf("%s:%s", pname, pkg);
    free(pname);
    hw_spawn_error result = HW_SPAWN_OK;
    char *so = NULL;
    if (hc_process_id_check(pid) != 0) {
        hcn_logf(n, 0, "spawn from %s: '%s' is not a hypermap-safe id",
                 parent->id, pid);
        result = HW_SPAWN_NAME_TAKEN;
        goto out;
    }
    while (*path == '/')
        path++;
    so = hcn_xasprintf("%s/%s", parent->pkg_dir ? parent->pkg_dir : ".", path);
    struct stat st;
    if (strstr(path, "..") != NULL || stat(so, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        result = HW_SPAWN_NO_FILE_AT_PATH;
        goto out;
    }
    int err;
    hcn_proc *child = hcn_node_add_proc(n, pid, public_, &err);
    if (child == NULL) {
        result = HW_SPAWN_NAME_TAKEN;
        goto out;
    }
    child->so_path = so;
    so = NULL;
    child->isolated = parent->isolated;
    child->pkg_dir = parent->pkg_dir ? hcn_xstrdup(parent->pkg_dir) : NULL;
    child->on_exit.kind = on_exit ? (int)on_exit->kind : HW_ON_EXIT_NONE;
    /* Requested capabilities: only those the parent holds. */
    for (size_t i = 0; i < rc_len; i++) {
        char issuer[512];
        hw_address_format(&rc[i].issuer, issuer, sizeof issuer);
        char *canon = rc[i].params ? hcn_json_canonical(rc[i].params) : NULL;
        if (strncmp(issuer, "our@", 4) == 0) {
            char *full = hcn_xasprintf("%s@%s", n->name, issuer + 4);
            snprintf(issuer, sizeof issuer, "%s", full);
            free(full);
        }
        /* another node's passes on with its signature (copied, so that
         * the two processes' locks are never held together) */
        uint8_t *sig = NULL;
        size_t sig_len = 0;
        pthread_mutex_lock(&parent->lock);
        const hcn_cap *held =
            canon ? hcn_capset_get(&parent->caps, issuer, canon) : NULL;
        if (held != NULL && held->sig_len != 0) {
            sig = hcn_xmalloc(held->sig_len);
            memcpy(sig, held->sig, held->sig_len);
            sig_len = held->sig_len;
        }
        bool ok = held != NULL;
        pthread_mutex_unlock(&parent->lock);
        if (ok) {
            pthread_mutex_lock(&child->lock);
            hcn_capset_add_signed(&child->caps, issuer, canon, sig, sig_len);
            pthread_mutex_unlock(&child->lock);
        }
        free(sig);
        free(canon);
    }
    /* Grants: capabilities issued by the child. */
    for (size_t i = 0; i < g_len; i++) {
        char target[512];
        snprintf(target, sizeof target, "%s:%s:%s", gp[i].process_name,
                 gp[i].package_name, gp[i].publisher_node);
        hcn_proc *q = hcn_node_find(n, target);
        if (q) {
            hcn_grant(q, child->addr,
                      gparams[i] ? gparams[i] : "\"messaging\"");
            hcn_proc_unref(q);
        }
    }
    /* Mutual messaging, and each process may message itself. */
    hcn_grant_messaging(n, child, child->id);
    hcn_grant_messaging(n, child, parent->id);
    hcn_grant_messaging(n, parent, child->id);
    if (hcn_proc_start_thread(child) != 0) {
        hcn_node_remove_proc(n, child);
        hcn_proc_unref(child);
        result = HW_SPAWN_NAME_TAKEN;
        goto out;
    }
    if (hcc_process_id_from_str(child->id, out) != 0)
        abort();
    hcn_logf(n, 1, "%s spawned %s", parent->id, child->id);
    hcn_proc_unref(child);
out:
    free(so);
    free(pid);
    return result;
}
