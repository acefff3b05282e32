/* Internal to the node: the toolkit every runtime module uses (modkit.c),
 * whichever room it lives in (modules/, http/, later net/): answering a
 * request by Hyperware's rule, the guard that keeps other nodes out, and
 * the module's own printouts.  Any thread: a module may answer from a
 * worker thread of its own (http-server's loop, http-client's transfers). */
#ifndef HYPERC_NODE_MODKIT_H
#define HYPERC_NODE_MODKIT_H

#include "../kernel/kernel.h"

#include <stdarg.h>

/* When a module answers a request.  Hyperware's modules differ: most
 * answer a request that expects a response or names an rsvp; state
 * answers its errors always, vfs its errors only when a response is
 * expected. */
typedef enum hcn_mod_when {
    HCN_MOD_IF_ASKED = 0, /* expects a response, or names an rsvp */
    HCN_MOD_IF_EXPECTS,   /* expects a response */
    HCN_MOD_ALWAYS,
} hcn_mod_when;

/* An answer, by name; unset fields are zero (empty body, no metadata, no
 * blob, HCN_MOD_IF_ASKED). */
typedef struct hcn_mod_answer {
    hcn_mod_when when;
    const char *body;   /* text, usually JSON; NULL = empty */
    bool with_metadata; /* the request's metadata goes back with it */
    hcn_blob *blob;     /* borrowed: the answer takes its own reference */
} hcn_mod_answer;

/* Answer request m (borrowed) from module `self`: a response with m's id
 * to m's rsvp, else to its source, when a->when says so.  Returns whether
 * one was sent. */
bool hcn_mod_reply(hcn_proc *self, const hcn_msg *m, const hcn_mod_answer *a);
#define HCN_MOD_REPLY(self, m, ...)                                            \
    hcn_mod_reply((self), (m), &(const hcn_mod_answer){__VA_ARGS__})

/* Send a response with request id `id` from module `self` to `to` (an
 * address), whenever the module decides: a timer that fires, a transfer
 * that completes.  `body` NULL = empty; blob borrowed. */
void hcn_mod_respond(hcn_proc *self, uint64_t id, const char *to,
                     const char *body, hcn_blob *blob);

/* Whether m comes from a process of this node (its source is "<our
 * name>@..."): the modules that ignore other nodes check it first. */
bool hcn_mod_from_local(const hcn_proc *self, const hcn_msg *m);

/* A printout of module `self` at `verbosity` (0-3), printf-style: always
 * in the node's log file, on the terminal as the module's level says. */
void hcn_mod_log(hcn_proc *self, int verbosity, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same with a va_list, for a module's own printf-style wrapper. */
void hcn_mod_vlog(hcn_proc *self, int verbosity, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
