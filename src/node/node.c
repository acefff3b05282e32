/* The node's life: hc_node_new registers the runtime modules from one
 * table, hc_node_start opens the control socket and starts every process's
 * thread (modules first), hc_node_shutdown stops them in the reverse
 * order.  This file is the top of the node: it knows every room (kernel,
 * modules, http, control, package); none of them knows it.  A new module
 * (net:distro:sys, say) is one line in `modules` below. */
#include "control/control.h"
#include "http/http.h"
#include "kernel/kernel.h"
#include "net/net.h"
#include "modules/modules.h"
#include "package/package.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The runtime modules, in the order they are added.  Each add registers a
 * process entry; hc_node_start starts their threads before any guest's,
 * and shutdown calls their ops' stop, then closes their mailboxes after
 * the guests'.  kernel:distro:sys is a source only: kernel commands are
 * not served yet, so requests to it get a timeout error as for an unknown
 * id. */
static int (*const modules[])(hcn_node *n, char *err, size_t errlen) = {
    hcn_mod_state_add,    hcn_mod_vfs_add,         hcn_mod_timer_add,
    hcn_mod_terminal_add, hcn_mod_http_client_add, hcn_mod_homepage_add,
    hcn_mod_http_add,     hcn_mod_net_add,
};

void hc_node_config_default(hc_node_config *c)
{
    memset(c, 0, sizeof *c);
    c->name = "local.os";
    c->home = "hyperc-home";
    c->http_port = 0;
    c->http_login_lifetime_s = 30u * 24 * 3600;
    c->http_max_body = 16u << 20;
    c->http_max_header = 64u << 10;
    c->http_max_connections = 1024;
    c->http_idle_timeout_s = 60;
    c->http_request_timeout_s = 30;
    c->ws_max_connections = 128;
    c->ws_queue_max = 100;
    c->http_body_budget = 256u << 20;
    c->http_max_connections_per_addr = 128;
    c->ws_max_connections_per_addr = 64;
    c->http_server_timeout_max_s = 300;
    c->ws_ping_interval_s = 30;
    c->verbosity = 0;
    c->mailbox_max = 1024;
    c->spin_us = 50;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    c->schedulers = cpus > 0 ? (uint32_t)cpus : 1;
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
    c->cpu_ms_per_message = 30000;
    c->isolate = true;
    c->worker_max_memory = 1ull << 30;
    c->worker_max_files = 64;
    c->net_port = -1;
    c->net_ws_port = -1;
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
    /* The home holds the node's secrets and the code it loads: a home
     * others can write is refused (one the node makes is 0700). */
    char why[768];
    if (hcn_dir_private(cfg->home, true, why, sizeof why) != 0) {
        snprintf(err, errlen, "refusing the home directory: %s", why);
        return NULL;
    }
    hcn_node *n = hcn_xcalloc(1, sizeof *n);
    n->cfg = *cfg;
    n->name = hcn_xstrdup(cfg->name);
    n->name_len = strlen(n->name);
    n->cfg.name = n->name;
    n->kernel_addr = hcn_xasprintf("%s@kernel:distro:sys", n->name);
    char *abs = realpath(cfg->home, NULL);
    n->home = abs ? abs : hcn_xstrdup(cfg->home);
    n->cfg.home = n->home;
    n->run_dir = hcn_xasprintf("%s/run", n->home);
    n->worker_path = hcn_worker_find(cfg->worker_path);
    n->cfg.worker_path = n->worker_path;
    n->wasm_host_path = hcn_wasm_host_find();
    n->state_db_path = hcn_xasprintf("%s/state/state.sqlite", n->home);
    pthread_rwlock_init(&n->table_lock, NULL);
    pthread_mutex_init(&n->life_mu, NULL);
    pthread_mutex_init(&n->refuse_mu, NULL);
    hcn_lanes_init(n);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->life_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&n->shutting_down, false);
    n->run_fd = -1;
    if (hcn_mkdirs(n->run_dir) != 0 ||
        hcn_log_open(&n->log, n->home, cfg->verbosity, cfg->log_max_bytes,
                     cfg->log_files) != 0) {
        snprintf(err, errlen, "cannot write in home directory %s: %s", n->home,
                 strerror(errno));
        hc_node_free(n);
        return NULL;
    }
    /* Instances are copied into run/ by name relative to this descriptor
     * (proc.c), so a link planted in its place later changes nothing. */
    if (hcn_dir_private(n->run_dir, false, why, sizeof why) != 0) {
        snprintf(err, errlen, "refusing the home directory: %s", why);
        hc_node_free(n);
        return NULL;
    }
    n->run_fd =
        open(n->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (n->run_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", n->run_dir,
                 strerror(errno));
        hc_node_free(n);
        return NULL;
    }
    for (size_t i = 0; i < sizeof modules / sizeof modules[0]; i++) {
        if (modules[i](n, err, errlen) != 0) {
            hc_node_free(n);
            return NULL;
        }
    }
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
                 hcn_control_path(n) ? hcn_control_path(n) : "?",
                 strerror(errno));
        return -1;
    }
    hcn_sched_start(n, n->cfg.schedulers);
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

int hc_node_translating(hc_node *n)
{
    return atomic_load(&n->translating);
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

void hc_node_tick(hc_node *n)
{
    hcn_refusals_flush_ended(n);
}

void hc_node_shutdown(hc_node *n)
{
    if (atomic_exchange(&n->shutting_down, true))
        return;
    hcn_refusals_flush(n);
    hcn_logf(n, 0, "node %s shutting down", n->name);
    pthread_cond_broadcast(&n->life_cv);
    hcn_control_stop(n);
    size_t count;
    hcn_proc **all = snapshot(n, &count);
    for (size_t i = 0; i < count; i++)
        if (all[i]->ops != NULL && all[i]->ops->stop != NULL)
            all[i]->ops->stop(all[i]);
    /* Guests first, so that what they say on the way out still routes. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < count; i++)
            if ((all[i]->ops != NULL) == (pass == 1))
                hcn_mailbox_close(&all[i]->mb);
    if (n->sched != NULL)
        hcn_sched_shutdown(n->sched);
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
    n->threads_left = left;
    pthread_mutex_unlock(&n->life_mu);
    /* the processes still in their own code, for the line below */
    char busy[512] = "";
    size_t used = 0;
    int64_t now = hcn_now_ns();
    for (size_t i = 0; left > 0 && i < count; i++) {
        if (all[i]->ops != NULL || used >= sizeof busy)
            continue;
        pthread_mutex_lock(&all[i]->lock);
        int64_t since = hcn_proc_busy_since(all[i], now);
        pthread_mutex_unlock(&all[i]->lock);
        if (since == 0)
            continue;
        int w = snprintf(busy + used, sizeof busy - used, "%s%s",
                         used ? ", " : "", all[i]->id);
        used += w > 0 ? (size_t)w : 0;
    }
    for (size_t i = 0; i < count; i++) {
        hcn_proc *p = all[i];
        /* on_fiber under life_mu: a process's life moves between a thread
         * and a fiber under it (proc.c, carrier_move) */
        pthread_mutex_lock(&n->life_mu);
        bool on_fiber = p->on_fiber;
        pthread_mutex_unlock(&n->life_mu);
        if (p->has_thread && !on_fiber &&
            !atomic_exchange(&p->thread_claimed, true)) {
            if (left == 0)
                pthread_join(p->thread, NULL);
            else
                pthread_detach(p->thread);
            p->has_thread = false;
        }
        p->has_thread = false;
        hcn_proc_unref(p);
    }
    free(all);
    if (n->sched != NULL) {
        hcn_sched_join(n->sched, left > 0);
        if (left == 0) /* else it stays, as the node does (hc_node_free) */
            n->sched = NULL;
    }
    if (left > 0)
        hcn_logf(n, 0,
                 "%d thread(s) still busy after %u s (in their own code: "
                 "%s); leaving them",
                 left, n->cfg.shutdown_grace_s, busy[0] ? busy : "none seen");
    else
        hcn_logf(n, 1, "all processes stopped");
}

/* The nodes whose shutdown left threads in guest code: kept whole until
 * the program exits, reachable from here. */
static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static hc_node *nodes_kept;

void hc_node_free(hc_node *n)
{
    if (n == NULL)
        return;
    if (n->threads_left > 0) {
        /* Such a thread may still come back to the node (a send, a save,
         * a log line, its mailbox): nothing of it is freed.  What the
         * state module had not yet committed stays in its log and is
         * committed at the next start. */
        pthread_mutex_lock(&kept_mu);
        n->kept_next = nodes_kept;
        nodes_kept = n;
        pthread_mutex_unlock(&kept_mu);
        return;
    }
    hcn_lanes_fini(n); /* every instance has ended: their references */
    hcn_proc *p, *tmp;
    pthread_rwlock_wrlock(&n->table_lock);
    HASH_ITER(hh, n->procs, p, tmp)
    {
        HASH_DEL(n->procs, p);
        hcn_proc_unref(p);
    }
    pthread_rwlock_unlock(&n->table_lock);
    hcn_log_close(&n->log);
    if (n->run_fd >= 0)
        close(n->run_fd);
    pthread_rwlock_destroy(&n->table_lock);
    hcn_control_free(n);
    pthread_mutex_destroy(&n->life_mu);
    pthread_cond_destroy(&n->life_cv);
    free(n->name);
    free(n->kernel_addr);
    free(n->home);
    free(n->run_dir);
    free(n->worker_path);
    free(n->wasm_host_path);
    free(n->first_password);
    free(n->state_db_path);
    free(n);
}

const char *hc_node_control_path(const hc_node *n)
{
    return hcn_control_path(n);
}

const char *hc_node_first_password(const hc_node *n)
{
    return n->first_password;
}
