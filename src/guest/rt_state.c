/* libhyperc runtime: state: loading (with versions and migration) and saving by
 * policy.  Internal (rt_int.h). */
#include "rt_int.h"

/* ----------------------------------------------------------------- state */

/* The stored form: {"hyperc_state":<version>,"state":<the state's JSON>}. */
static bool state_encode(hp_jw *w)
{
    const hp_process_impl *im = hpr_rt.impl;
    static const char head[] = "{\"hyperc_state\":";
    hp_jw_raw(w, head, sizeof head - 1);
    hp_jw_u64(w, im->decl->state_version);
    hp_jw_raw(w, ",\"state\":", 9);
    if (im->state_encode(w, im->state) != 0)
        return false;
    hp_jw_raw(w, "}", 1);
    return hp_jw_ok(w);
}

static bool save_once(bool only_if_changed)
{
    hp_jw w;
    hp_jw_init(&w);
    bool ok = state_encode(&w);
    if (!ok) {
        hp_log_error("the state could not be written as JSON (an invalid "
                     "UTF-8 string, or an enum value without a name?); not "
                     "saved");
    } else if (!only_if_changed || hpr_rt.last_saved == NULL ||
               strcmp(hpr_rt.last_saved, w.buf) != 0) {
        /* What is being saved counts as saved from now on: a task that
         * saves while this one waits compares with it, and its save comes
         * after this one (the state module takes them in order). */
        free(hpr_rt.last_saved);
        hpr_rt.last_saved = w.buf; /* keep the writer's buffer */
        size_t len = w.len;
        w.buf = NULL;
        hpr_rt.since_save = 0;
        uint64_t mine = ++hpr_rt.save_seq;
        const uint8_t *bytes = (const uint8_t *)hpr_rt.last_saved;
        /* At once where the node's store keeps a save when handed over
         * and nothing else is waiting to run here (the node also looks at
         * the process's mailbox); else from a task: it waits, the process
         * serves the others meanwhile, and their saves join the next
         * group (save_grouped): one save for many messages. */
        int r = hpr_rt.ready_head == NULL ? hp__set_state_now(bytes, len) : -1;
        if (r < 0)
            r = hpr_state_save_wait(bytes, len);
        if (r < 0)
            r = hw_set_state(bytes, len) ? 1 : 0;
        if (r == 0) {
            hp_log_error("saving the state failed; trying again after the "
                         "next message");
            ok = false;
            if (hpr_rt.save_seq == mine) { /* no later save: redo it */
                free(hpr_rt.last_saved);
                hpr_rt.last_saved = NULL;
            }
        }
    } else {
        hpr_rt.since_save = 0;
    }
    hp_jw_fini(&w);
    return ok;
}

/* A save from a task while another task's save is under way: join the
 * group that the next save answers, and wait for it; the group's first
 * member, woken when the save before it ends, makes that save.  So the
 * saves of many messages handled meanwhile are one save of the newest
 * state, and one is under way at a time, in order. */
static bool save_grouped(bool only_if_changed, bool *led)
{
    hp_task *me = hpr_rt.cur;
    hpr_save_group *g = hpr_rt.save_next;
    if (g == NULL) {
        g = calloc(1, sizeof *g);
        if (g == NULL) {
            hp_log_error("out of memory saving the state; trying again "
                         "after the next message");
            *led = false;
            return false;
        }
        g->only_if_changed = true;
        hpr_rt.save_next = g;
    }
    g->only_if_changed = g->only_if_changed && only_if_changed;
    me->next_saver = NULL;
    if (g->last)
        g->last->next_saver = me;
    else
        g->first = me;
    g->last = me;
    g->refs++;
    while (!g->done && !(g->taken && g->first == me))
        hpr_task_park();
    bool ok;
    *led = !g->done;
    if (g->done) {
        ok = g->ok;
    } else { /* lead: the save before ended and handed the group over */
        ok = save_once(g->only_if_changed);
        g->ok = ok;
        g->done = true;
        for (hp_task *t = g->first; t; t = t->next_saver)
            if (t != me)
                hpr_task_wake(t);
    }
    if (--g->refs == 0)
        free(g);
    return ok;
}

/* The save under way ended: the next group's leader goes on (saving stays
 * set for it), or nothing is under way. */
static void save_pass_on(void)
{
    hpr_save_group *g = hpr_rt.save_next;
    if (g == NULL) {
        hpr_rt.saving = false;
        return;
    }
    hpr_rt.save_next = NULL;
    g->taken = true;
    hpr_task_wake(g->first);
}

bool hpr_state_save(bool only_if_changed)
{
    /* outside a task: at once (set_state_now, else hw_set_state) */
    if (hpr_rt.cur == NULL)
        return save_once(only_if_changed);
    bool ok, led = true;
    if (hpr_rt.saving) {
        ok = save_grouped(only_if_changed, &led);
    } else {
        hpr_rt.saving = true;
        ok = save_once(only_if_changed);
    }
    if (led)
        save_pass_on();
    return ok;
}

bool hp_state_save_now(void)
{
    return hpr_rt.impl != NULL && hpr_state_save(false);
}

void hpr_timer_arm(void)
{
    uint64_t s = hpr_rt.impl->decl->save_config.n;
    char body[64];
    snprintf(body, sizeof body, "{\"SetTimer\":%llu}",
             (unsigned long long)(s * 1000));
    hpr_send_to("timer", "distro", "sys", body, true, s + 30,
                HPR_SAVE_TIMER_CONTEXT, NULL, 0);
    hpr_rt.timer_armed = true;
}

/* A trigger: a request handler, ws event or init completed. */
void hpr_state_trigger(void)
{
    const hp_save_config *sc = &hpr_rt.impl->decl->save_config;
    hpr_rt.since_save++;
    switch (sc->kind) {
    case HP_SAVE_KIND_EVERY_MESSAGE: hpr_state_save(false); break;
    case HP_SAVE_KIND_EVERY_N_MESSAGE:
        if (sc->n == 0 || hpr_rt.since_save >= sc->n)
            hpr_state_save(false);
        break;
    case HP_SAVE_KIND_ON_DIFF: hpr_state_save(true); break;
    case HP_SAVE_KIND_EVERY_N_SECONDS:
        if (hpr_rt.timer_broken) /* no timer: the next best thing */
            hpr_state_save(true);
        break;
    case HP_SAVE_KIND_NEVER:
    default: break;
    }
}

static void refuse_to_start(const char *why)
{
    hp_log_error("%s; not starting, and leaving the stored state as it is "
                 "(declare .state_version and .migrate to convert it)",
                 why);
    hw_on_exit none;
    memset(&none, 0, sizeof none);
    none.kind = HW_ON_EXIT_NONE;
    hw_set_on_exit(&none);
}

/* Load the stored state into impl->state; false when the process must not
 * start. */
bool hpr_state_load(void)
{
    const hp_process_impl *im = hpr_rt.impl;
    hw_bytes stored;
    if (!hw_get_state(&stored)) {
        hpr_rt.state_new = true;
        return true;
    }
    const char *perr = "out of memory";
    void *tmp = hp_arena_alloc(&hpr_rt.arena, im->state_size);
    hp_jv *j = hp_json_parse(&hpr_rt.arena, (const char *)stored.ptr,
                             stored.len, &perr);
    const hp_jv *ver = j ? hp_jv_get(j, "hyperc_state") : NULL;
    const hp_jv *body = j ? hp_jv_get(j, "state") : NULL;
    uint64_t version = 0;
    bool enveloped =
        ver != NULL && body != NULL && j->len == 2 &&
        hp_jd_uint(&hpr_rt.arena, ver, UINT32_MAX, "u32", &version, &perr) == 0;
    bool ok = false;
    char why[600];
    if (tmp == NULL) {
        snprintf(why, sizeof why, "out of memory loading the state");
    } else if (j == NULL) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes) is not JSON: %s", stored.len,
                 perr);
    } else if (!enveloped) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes) has no hyperc version "
                 "envelope",
                 stored.len);
    } else if (version != im->decl->state_version) {
        snprintf(why, sizeof why,
                 "the stored state has version %llu; this build has %u",
                 (unsigned long long)version,
                 (unsigned)im->decl->state_version);
    } else if (im->state_decode(&hpr_rt.arena, body, tmp, &perr) != 0) {
        snprintf(why, sizeof why,
                 "the stored state (%zu bytes, version %llu) does not decode "
                 "as %s: %s",
                 stored.len, (unsigned long long)version, im->state_type, perr);
    } else {
        ok = true;
    }
    bool migrated = false;
    if (!ok && tmp != NULL && im->migrate != NULL) {
        const char *mwhy = "the migration refused it";
        memset(tmp, 0, im->state_size);
        if (im->migrate(&hpr_rt.arena, enveloped ? (uint32_t)version : 0,
                        enveloped ? body : j, tmp, &mwhy)) {
            hp_log_info("state migrated from version %llu to %u",
                        (unsigned long long)(enveloped ? version : 0),
                        (unsigned)im->decl->state_version);
            ok = migrated = true;
        } else {
            size_t n = strlen(why);
            snprintf(why + n, sizeof why - n, "; migration failed: %s", mwhy);
        }
    }
    if (ok && im->state_clone(im->state, tmp) != 0) {
        snprintf(why, sizeof why, "out of memory copying the stored state");
        ok = false;
    }
    hw_bytes_fini(&stored);
    hp_arena_reset(&hpr_rt.arena);
    if (!ok) {
        refuse_to_start(why);
        return false;
    }
    if (migrated)
        hpr_state_save(false);
    else {
        /* what is stored, so that an unchanged state is not written again */
        hp_jw w;
        hp_jw_init(&w);
        if (state_encode(&w)) {
            hpr_rt.last_saved = w.buf;
            w.buf = NULL;
        }
        hp_jw_fini(&w);
    }
    return true;
}
