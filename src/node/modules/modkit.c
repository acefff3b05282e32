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

bool hcn_mod_reply(hcn_proc *self, const hcn_msg *m, const hcn_mod_answer *a)
{
    if (!answer_due(m, a->when))
        return false;
    const char *body = a->body ? a->body : "";
    hcn_msg *r =
        HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = m->id, .source = self->addr,
                    .target = m->rsvp ? m->rsvp : m->source, .body = body,
                    .body_len = strlen(body),
                    .metadata = a->with_metadata ? m->metadata : NULL,
                    .blob = a->blob);
    hcn_route(self->node, r);
    return true;
}

void hcn_mod_respond(hcn_proc *self, uint64_t id, const char *to,
                     const char *body, hcn_blob *blob)
{
    if (body == NULL)
        body = "";
    hcn_msg *r = HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = id,
                             .source = self->addr, .target = to, .body = body,
                             .body_len = strlen(body), .blob = blob);
    hcn_route(self->node, r);
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
