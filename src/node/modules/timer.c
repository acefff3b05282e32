/* timer:distro:sys: {"SetTimer": ms} is answered with an empty response
 * after ms milliseconds.  Public, as in Hyperware; ignores other nodes. */
#include "modkit.h"
#include "modules.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct timer_ent {
    int64_t due;
    uint64_t id;
    char *reply_to;
} timer_ent;

typedef struct timer_mod {
    timer_ent *heap;
    size_t len, cap;
} timer_mod;

static void t_swap(timer_ent *a, timer_ent *b)
{
    timer_ent t = *a;
    *a = *b;
    *b = t;
}

static void t_push(timer_mod *t, timer_ent e)
{
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        timer_ent *nh = realloc(t->heap, t->cap * sizeof *nh);
        if (nh == NULL)
            abort();
        t->heap = nh;
    }
    size_t i = t->len++;
    t->heap[i] = e;
    while (i > 0 && t->heap[(i - 1) / 2].due > t->heap[i].due) {
        t_swap(&t->heap[(i - 1) / 2], &t->heap[i]);
        i = (i - 1) / 2;
    }
}

static timer_ent t_pop(timer_mod *t)
{
    timer_ent top = t->heap[0];
    t->heap[0] = t->heap[--t->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->len && t->heap[l].due < t->heap[m].due)
            m = l;
        if (r < t->len && t->heap[r].due < t->heap[m].due)
            m = r;
        if (m == i)
            break;
        t_swap(&t->heap[i], &t->heap[m]);
        i = m;
    }
    return top;
}

static void fire(hcn_proc *self, uint64_t id, const char *to)
{
    hcn_mod_respond(self, id, to, NULL, NULL);
}

static void timer_handle(hcn_proc *self, hcn_msg *m)
{
    timer_mod *t = self->mod;
    if (m->kind != HCN_MSG_REQUEST || !hcn_mod_from_local(self, m)) {
        hcn_msg_unref(m);
        return;
    }
    json_error_t je;
    json_t *body =
        json_loadb((const char *)m->body, m->body_len, JSON_DECODE_ANY, &je);
    json_t *ms = json_object_get(body, "SetTimer");
    const char *to = m->rsvp ? m->rsvp : m->source;
    if (json_is_integer(ms) && json_integer_value(ms) >= 0) {
        json_int_t v = json_integer_value(ms);
        if (v == 0) {
            fire(self, m->id, to);
        } else {
            int64_t now = hcn_now_ns();
            /* A timer further away than the clock can count never fires. */
            int64_t due = (INT64_MAX - now) / 1000000 < v
                              ? INT64_MAX
                              : now + (int64_t)v * 1000000;
            timer_ent e = {
                .due = due, .id = m->id, .reply_to = hcn_xstrdup(to)};
            t_push(t, e);
        }
    } else if (json_is_string(body) &&
               strcmp(json_string_value(body), "Debug") == 0) {
        hcn_mod_log(self, 0, "timer service active timers (%zu)", t->len);
    } else {
        hcn_mod_log(self, 1,
                    "timer service received a request with an invalid "
                    "body (expected {\"SetTimer\": ms})");
    }
    json_decref(body);
    hcn_msg_unref(m);
}

static int64_t timer_next(hcn_proc *self)
{
    timer_mod *t = self->mod;
    return t->len ? t->heap[0].due : -1;
}

static void timer_due(hcn_proc *self, int64_t now)
{
    timer_mod *t = self->mod;
    while (t->len && t->heap[0].due <= now) {
        timer_ent e = t_pop(t);
        fire(self, e.id, e.reply_to);
        free(e.reply_to);
    }
}

static void timer_fini(hcn_proc *self)
{
    timer_mod *t = self->mod;
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->len; i++)
        free(t->heap[i].reply_to);
    free(t->heap);
    free(t);
    self->mod = NULL;
}

static const hcn_module_ops timer_ops = {
    .handle = timer_handle,
    .next_deadline = timer_next,
    .on_deadline = timer_due,
    .fini = timer_fini,
};

int hcn_mod_timer_add(hcn_node *n, char *err, size_t errlen)
{
    hcn_proc *p = hcn_node_add_proc(n, "timer:distro:sys", true, NULL);
    p->ops = &timer_ops;
    p->mod = hcn_xcalloc(1, sizeof(timer_mod));
    hcn_proc_unref(p);
    return 0;
}
