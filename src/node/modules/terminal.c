/* terminal:terminal:sys: the node owner's injector.  Requests injected from
 * the shell (hyperc inject) are sent from this address; their answers come
 * back here and are handed to the waiting control connection by id.  Like
 * Hyperware's terminal it may message any process (capability-exempt). */
#include "modules.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct inject_wait {
    UT_hash_handle hh;
    uint64_t id;
    hcn_msg *answer; /* response or send error */
    bool done;
} inject_wait;

typedef struct terminal_mod {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    inject_wait *waits;
} terminal_mod;

static void terminal_handle(hcn_proc *self, hcn_msg *m)
{
    terminal_mod *t = self->mod;
    if (m->kind == HCN_MSG_REQUEST) {
        hcn_msg_unref(m);
        return;
    }
    pthread_mutex_lock(&t->mu);
    inject_wait *w;
    HASH_FIND(hh, t->waits, &m->id, sizeof m->id, w);
    if (w && !w->done) {
        w->answer = m;
        w->done = true;
        m = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    pthread_cond_broadcast(&t->cv);
    hcn_msg_unref(m);
}

static void terminal_fini(hcn_proc *self)
{
    terminal_mod *t = self->mod;
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
    self->mod = NULL;
}

static const hcn_module_ops terminal_ops = {
    .handle = terminal_handle,
    .fini = terminal_fini,
};

int hcn_mod_terminal_add(hcn_node *n, char *err, size_t errlen)
{
    hcn_proc *p = hcn_node_add_proc(n, "terminal:terminal:sys", true, NULL);
    terminal_mod *t = hcn_xcalloc(1, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->ops = &terminal_ops;
    p->mod = t;
    hcn_proc_unref(p);
    return 0;
}

int hcn_inject(hcn_node *n, hcn_msg *m, int64_t timeout_ms, hcn_msg **resp)
{
    *resp = NULL;
    if (!m->has_expects) {
        hcn_route(n, m);
        return HCC_EOK;
    }
    hcn_proc *term = hcn_node_find(n, "terminal:terminal:sys");
    terminal_mod *t = term->mod; /* the table keeps it until hc_node_free */
    hcn_proc_unref(term);
    inject_wait *w = hcn_xcalloc(1, sizeof *w);
    w->id = m->id;
    pthread_mutex_lock(&t->mu);
    HASH_ADD(hh, t->waits, id, sizeof w->id, w);
    pthread_mutex_unlock(&t->mu);
    hcn_route(n, m);
    if (timeout_ms > 31536000000LL)
        timeout_ms = 31536000000LL;
    int64_t deadline = hcn_now_ns() + timeout_ms * 1000000;
    pthread_mutex_lock(&t->mu);
    while (!w->done && !atomic_load(&n->shutting_down)) {
        int64_t now = hcn_now_ns();
        if (now >= deadline)
            break;
        /* Wake at least every 200 ms to notice shutdown. */
        int64_t until = deadline < now + 200000000 ? deadline : now + 200000000;
        struct timespec ts = {.tv_sec = until / 1000000000,
                              .tv_nsec = until % 1000000000};
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    HASH_DEL(t->waits, w);
    pthread_mutex_unlock(&t->mu);
    hcn_msg *a = w->answer;
    free(w);
    if (a == NULL)
        return HCC_ETIMEOUT;
    if (a->kind == HCN_MSG_SEND_ERROR) {
        int rc =
            a->err_kind == HW_SEND_ERROR_OFFLINE ? HCC_EOFFLINE : HCC_ETIMEOUT;
        hcn_msg_unref(a);
        return rc;
    }
    *resp = a;
    return HCC_EOK;
}
