/* The runtime modules' toolkit: answers, the local-source guard, logging. */
#include "modkit.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool answer_due(const hcn_msg *m, hcn_mod_when when)
{
    switch (when) {
    case HCN_MOD_ALWAYS: return true;
    case HCN_MOD_IF_EXPECTS: return m->has_expects;
    case HCN_MOD_IF_ASKED: break;
    }
    return m->has_expects || m->rsvp != NULL;
}

/* One response from module `self`: id, to, body (NULL = empty), metadata
 * (NULL = none), blob (borrowed). */
static void send_answer(hcn_proc *self, uint64_t id, const char *to,
                        const char *body, const char *metadata, hcn_blob *blob)
{
    if (body == NULL)
        body = "";
    hcn_msg *r =
        HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = id, .source = self->addr,
                    .target = to, .body = body, .body_len = strlen(body),
                    .metadata = metadata, .blob = blob);
    hcn_route(self->node, r);
}

bool hcn_mod_reply(hcn_proc *self, const hcn_msg *m, const hcn_mod_answer *a)
{
    if (!answer_due(m, a->when))
        return false;
    send_answer(self, m->id, m->rsvp ? m->rsvp : m->source, a->body,
                a->with_metadata ? m->metadata : NULL, a->blob);
    return true;
}

void hcn_mod_respond(hcn_proc *self, uint64_t id, const char *to,
                     const char *body, hcn_blob *blob)
{
    send_answer(self, id, to, body, NULL, blob);
}

bool hcn_mod_from_local(const hcn_proc *self, const hcn_msg *m)
{
    const char *name = self->node->name;
    size_t nl = strlen(name);
    return strncmp(m->source, name, nl) == 0 && m->source[nl] == '@';
}

void hcn_mod_vlog(hcn_proc *self, int verbosity, const char *fmt, va_list ap)
{
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    hcn_log_write(&self->node->log, self->id, verbosity, hcn_proc_level(self),
                  line);
}

void hcn_mod_log(hcn_proc *self, int verbosity, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hcn_mod_vlog(self, verbosity, fmt, ap);
    va_end(ap);
}
