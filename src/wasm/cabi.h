/* Internal to hyperc: every import of interface `standard` that hyperc's
 * wasm32 guest makes (src/guest/abi_wasm.c), in the canonical ABI, between
 * a component's linear memory and a host table (src/abi/native.h), with no
 * Node-API in it (cabi.c).  The wasm host's addon (link_cabi.c) is one
 * embedder, for the hot imports (receive, the sends, the blobs; jco's glue
 * and host.mjs serve the others there): its memory is a WebAssembly.Memory
 * and its cabi_realloc a JavaScript function; a component translated to C
 * (docs/wasm-native.md) is another, with a plain byte array and a C call,
 * and calls all of them.  Prefix hca_.
 *
 * Each call's semantics are those the wasm host gives the import (host.mjs
 * under jco's glue, with the worker's host table, src/worker/binding.c),
 * with cabi.c's checks and trap messages: what the host returns is
 * released (hw_*_fini) once lowered.  Every call with a result area but
 * get-blob and last-blob checks it before it asks the host (a result that
 * cannot be written has nothing done for it); a host answer outside the
 * interface (an on-exit kind or a spawn-error it does not have, a spawn that
 * succeeded without a process id) ends the process (hcw_die), as a malformed
 * REPLY from the node does.
 *
 * Each hca_guest is one component's: its memory, its cabi_realloc, how its
 * calls trap, and the state its calls reuse.  One thread at a time.
 *
 * Every hca_ call but hca_has_blob returns true when done, false when the
 * call traps: g->trap has been called, or g->mem or g->alloc failed (and
 * raised the trap themselves).  What the calls check and how they lower is
 * cabi.c's head.
 *
 * What the embedder provides besides: hcw_die (src/worker/binding.h), which
 * ends the process when memory runs out or a result cannot fit a 32-bit
 * memory (an embedder of the worker's binding has it already). */
#ifndef HYPERC_WASM_CABI_H
#define HYPERC_WASM_CABI_H

#include "../abi/native.h"
#include "hyperc/arena.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hca_guest hca_guest;
struct hca_alloc; /* (cabi.c's) */

struct hca_guest {
    /* The host's calls: host->fn(host->ctx, ...). */
    const hwn_host *host;
    /* The memory's base and length now (they may change after an alloc:
     * the memory grew); NULL: it cannot say (and has raised the trap). */
    uint8_t *(*mem)(hca_guest *g, size_t *len);
    /* The guest's cabi_realloc(0, 0, align, size), its answer in *out
     * (checked by the caller against the memory and align); false: it
     * failed (and has raised the trap: the guest's own, or an Error). */
    bool (*alloc)(hca_guest *g, uint32_t align, uint32_t size, uint32_t *out);
    /* Raise the trap of the call of import `what`, for reason `why`: the
     * message is "what: why", or why alone when what is NULL.  It may
     * return (the addon throws an Error and the hca_ call returns false) or
     * not (a compiled component unwinds). */
    void (*trap)(hca_guest *g, const char *what, const char *why);
    /* Optional (NULL: get-blob and last-blob copy through host->get_blob
     * and host->last_blob): the blob that host->get_blob (last:
     * host->last_blob) would give, lent until the host's next receive or
     * send, or NULL when there is none. */
    const hw_blob *(*lend_blob)(hca_guest *g, bool last);
    void *data; /* the embedder's */

    /* Private: the NUL-terminated copies of a call's strings and its
     * capability arrays (released at the next call), and the lowering's
     * list of allocations, reused call after call. */
    hp_arena arena;
    struct hca_alloc *allocs;
    size_t allocs_cap;
};

/* Set g's fields (host, mem, alloc, trap; lend_blob and data NULL) and its
 * state empty.  A static hca_guest with its public fields set and the rest
 * zero is initialised too. */
void hca_guest_init(hca_guest *g, const hwn_host *host,
                    uint8_t *(*mem)(hca_guest *g, size_t *len),
                    bool (*alloc)(hca_guest *g, uint32_t align, uint32_t size,
                                  uint32_t *out),
                    void (*trap)(hca_guest *g, const char *what,
                                 const char *why));
/* Free g's state (g may be initialised again). */
void hca_guest_fini(hca_guest *g);

/* The `size` bytes at ret in the memory now, for an import of the
 * embedder's own to write its result into; NULL when they are not all in
 * the memory (the trap of import `what` is raised, with the message the
 * hca_ calls give). */
uint8_t *hca_result_area(hca_guest *g, const char *what, uint32_t ret,
                         uint32_t size);

/* receive: the next message (host->receive), lowered at ret. */
bool hca_receive(hca_guest *g, uint32_t ret);
/* send-request: its parameters, at params. */
bool hca_send_request(hca_guest *g, uint32_t params);
/* send-requests: the list (ptr, len) of send-request's parameters, each
 * sent in turn (one host->send_request each). */
bool hca_send_requests(hca_guest *g, uint32_t ptr, uint32_t len);
/* send-response: its 14 flat parameters, in order: inherit, body (ptr,
 * len), metadata (some, ptr, len), capabilities (ptr, len), blob (some,
 * mime some, mime ptr, mime len, bytes ptr, bytes len). */
bool hca_send_response(hca_guest *g, const uint32_t flat[14]);
/* send-and-await-response: its parameters at params, its result lowered
 * at ret. */
bool hca_send_and_await(hca_guest *g, uint32_t params, uint32_t ret);
/* has-blob (host->has_blob): never traps. */
bool hca_has_blob(hca_guest *g);
/* get-blob, last-blob: option<lazy-load-blob> lowered at ret. */
bool hca_get_blob(hca_guest *g, uint32_t ret);
bool hca_last_blob(hca_guest *g, uint32_t ret);

/* print-to-terminal: verbosity (a u8: over 255 traps) and the message
 * (ptr, len). */
bool hca_print(hca_guest *g, uint32_t level, uint32_t ptr, uint32_t len);
/* our: the process's address (host->our) lowered at ret. */
bool hca_our(hca_guest *g, uint32_t ret);
/* get-state: option<list<u8>> (host->get_state) lowered at ret. */
bool hca_get_state(hca_guest *g, uint32_t ret);
/* set-state: the list<u8> (ptr, len); clear-state.  Each traps with
 * "set-state failed: the node could not save the state" ("clear-state
 * failed: the node could not clear the state") when the host returns
 * false, as Hyperware traps. */
bool hca_set_state(hca_guest *g, uint32_t ptr, uint32_t len);
bool hca_clear_state(hca_guest *g);
/* get-on-exit: the on-exit (host->get_on_exit) lowered at ret. */
bool hca_get_on_exit(hca_guest *g, uint32_t ret);
/* set-on-exit: its flat parameters: kind (0 none, 1 restart, 2 requests)
 * and the list (ptr, len) of tuple<address, request,
 * option<lazy-load-blob>>, read for kind 2 only. */
bool hca_set_on_exit(hca_guest *g, uint32_t kind, uint32_t ptr, uint32_t len);
/* spawn: its 13 flat parameters then its result's address, 14 in all, in
 * order: name (some, ptr, len), wasm-path (ptr, len), on-exit (kind, ptr,
 * len), request-capabilities (ptr, len), grant-capabilities (ptr, len; of
 * tuple<process-id, string>), public; ret, where result<process-id,
 * spawn-error> is lowered. */
bool hca_spawn(hca_guest *g, const uint32_t flat[14]);
/* save-capabilities, drop-capabilities: the list<capability> (ptr, len). */
bool hca_save_capabilities(hca_guest *g, uint32_t ptr, uint32_t len);
bool hca_drop_capabilities(hca_guest *g, uint32_t ptr, uint32_t len);
/* our-capabilities: list<capability> (host->our_capabilities) lowered at
 * ret. */
bool hca_our_capabilities(hca_guest *g, uint32_t ret);

#endif
