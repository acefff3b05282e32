/* Internal to hyperc: the native binding of the process ABI.
 *
 * A native process is a shared object that exports hwn_entry and
 * HWN_RUNTIME_SYMBOL and takes the guest runtime (libhyperc) from the
 * executable that loads it (the node, the worker), which exports it; a
 * process built before that carries the runtime itself and exports
 * hwn_entry alone (docs/architecture.md, Instances).  The node calls it on the
 * process's thread with a table of host functions; the guest side
 * (src/guest/abi_native.c) implements every hw_* function of
 * include/hyperc/abi.h by calling through that table.  Each entry has the
 * contract of the hw_* function of the same name, with the host's per-process
 * context as first argument.  Nothing else crosses between node and guest. */
#ifndef HYPERC_ABI_NATIVE_H
#define HYPERC_ABI_NATIVE_H

#include "hyperc/abi.h"

#include <stddef.h>

#define HWN_ENTRY_SYMBOL "hwn_entry"

typedef struct hwn_host {
    uint32_t abi_version; /* HW_ABI_VERSION of the node */
    uint32_t size;        /* sizeof(hwn_host) of the node */
    void *ctx;
    void (*print_to_terminal)(void *ctx, uint8_t verbosity, const char *msg);
    void (*our)(void *ctx, hw_address *out);
    void (*get_on_exit)(void *ctx, hw_on_exit *out);
    void (*set_on_exit)(void *ctx, const hw_on_exit *on_exit);
    bool (*get_state)(void *ctx, hw_bytes *out);
    bool (*set_state)(void *ctx, const uint8_t *bytes, size_t len);
    bool (*clear_state)(void *ctx);
    hw_spawn_error (*spawn)(void *ctx, const char *name, const char *path,
                            const hw_on_exit *on_exit,
                            const hw_capability *req_caps, size_t req_len,
                            const hw_process_id *grant_procs,
                            const char *const *grant_params, size_t grants_len,
                            bool public_, hw_process_id *out);
    void (*save_capabilities)(void *ctx, const hw_capability *caps, size_t len);
    void (*drop_capabilities)(void *ctx, const hw_capability *caps, size_t len);
    void (*our_capabilities)(void *ctx, hw_capability_list *out);
    void (*receive)(void *ctx, hw_receive_result *out);
    bool (*has_blob)(void *ctx);
    bool (*get_blob)(void *ctx, hw_blob *out);
    bool (*last_blob)(void *ctx, hw_blob *out);
    void (*send_request)(void *ctx, const hw_address *target,
                         const hw_request *req, const hw_bytes *context,
                         const hw_blob *blob);
    void (*send_response)(void *ctx, const hw_response *resp,
                          const hw_blob *blob);
    int (*send_and_await_response)(void *ctx, const hw_address *target,
                                   const hw_request *req, const hw_blob *blob,
                                   hw_await_result *out);

    /* Entries below have no counterpart in the process ABI; they belong to
     * the native binding.  Added later: a guest uses one only when `size`
     * shows the node's table has it (HWN_HAS). */

    /* Register [lo, lo + len), the PROT_NONE guard below one of the
     * guest's coroutine stacks.  A fault there on the process's thread is
     * reported as a task stack overflow and stops the process (on-exit
     * applies).  The upper half of the range may be opened by the node so
     * that a library or host call that overflowed can finish first.
     * Returns a handle >= 0, or -1 if refused. */
    int (*guard_add)(void *ctx, const void *lo, size_t len);
    /* Forget a guard registered by guard_add (before it is unmapped). */
    void (*guard_remove)(void *ctx, int handle);

    /* The prompting message (the one send-response answers), for tasks:
     * prompting_hold keeps the current one and returns a handle > 0 (0 when
     * there is none); prompting_set makes a held one current again, so that
     * a task resumed for any reason answers its own request;
     * prompting_release drops a hold.  Handles are per process. */
    int (*prompting_hold)(void *ctx);
    void (*prompting_set)(void *ctx, int handle);
    void (*prompting_release)(void *ctx, int handle);

    /* When the process has started, for those who wait for it (`hyperc
     * run` prints its ready line then; a reinstall returns then).  Without
     * these, a process has started at its first receive.  started(ctx,
     * false) says the guest will tell (at its entry, before any receive);
     * started(ctx, true) tells (a hyperprocess: its bindings made and its
     * init done). */
    void (*started)(void *ctx, bool done);

    /* set_state without the wait: the node starts saving `bytes` as the
     * process's state and the outcome comes to receive as the response to
     * `context` (body "SetState", from state:distro:sys) or a send error
     * after timeout_s.  Saves are applied in the order started.  Before a
     * reinstall stops the instance, the answers to saves under way are
     * still delivered, so that their tasks can answer. */
    void (*set_state_start)(void *ctx, const uint8_t *bytes, size_t len,
                            const hw_bytes *context, uint64_t timeout_s);

    /* How many tasks the guest runtime has alive (a hyperprocess's
     * handlers in flight, its init included), told as the count changes,
     * for `hyperc ps`.  A store: it never blocks and sends nothing. */
    void (*tasks)(void *ctx, uint32_t live);

    /* receive, lending: as receive, but where it returns true *out is the
     * host's, not the guest's: its strings and byte lists stay valid and
     * unchanged until the process's next receive or receive_lent (and only
     * until then), the guest reads them only and never releases them
     * (no hw_receive_result_fini).  Where it returns false *out is the
     * guest's as receive's (the host lends what is common: a request or a
     * response without capabilities, not a send error; the worker's
     * binding, a message that came by lane).  NULL where the host lends
     * nothing: use receive. */
    bool (*receive_lent)(void *ctx, hw_receive_result *out);

    /* End the process with a trap of a wasm component's (a component
     * translated to native code: docs/wasm-native.md): the node logs
     * `message` (and `stack`, "" when there is none) as the wasm host's
     * traps are logged and applies on-exit.  Never returns.  NULL where the
     * host has no such report (then the caller aborts). */
    void (*trap)(void *ctx, const char *message, const char *stack);

    /* set_state at once, where the node's store keeps a save when it is
     * handed over (the state module's log: a record written under a lock,
     * which survives the node being killed): 1 when `bytes` are the
     * process's saved state on return, 0 when storing them failed (the
     * node logs why), -1 when the node cannot save at once (save with
     * set_state_start or set_state).  Ordered with set_state_start's saves
     * (each is stored when started).  The process's thread; blocks only on
     * the store's lock, never on a database commit.  The node answers -1
     * while messages wait for the process, so that saves made while they
     * are handled are grouped.  The worker's binding writes the value into
     * the process's state slot (src/worker/slot.h) when the node gave it
     * one, and answers -1 without one, for a value over the slot's size, or
     * while a set_state_start is not stored yet.  NULL where the host has
     * no such store. */
    int (*set_state_now)(void *ctx, const uint8_t *bytes, size_t len);
} hwn_host;

/* Whether host table h (of h->size bytes) has entry `field`. */
#define HWN_HAS(h, field)                                                      \
    ((h)->size >= offsetof(hwn_host, field) + sizeof((h)->field))

/* The smallest table a guest accepts: every entry up to
 * send_and_await_response (the ABI functions). */
#define HWN_MIN_SIZE                                                           \
    (offsetof(hwn_host, send_and_await_response) +                             \
     sizeof(((hwn_host *)0)->send_and_await_response))

/* Exported by each native process.  Returns 0 after hw_init returned, or -1
 * at once if the host's ABI version does not fit or its table is smaller
 * than HWN_MIN_SIZE. */
typedef int (*hwn_entry_fn)(const hwn_host *host, const char *our);

/* Exported by each native process that takes the runtime from its host: a
 * const uint32_t, the HWN_RUNTIME_ABI it was built against (the layout of
 * the runtime's per-instance state and what the process calls of the
 * runtime).  A host loads such a process only if it equals its own. */
#define HWN_RUNTIME_SYMBOL "hwn_runtime_abi"
#define HWN_RUNTIME_ABI 1u

/* Make inst (the runtime's per-instance state, opaque to the host; NULL:
 * none) the one running on this thread and return the one before.  The
 * runtime sets it when the host enters an instance; a host that moves an
 * instance's thread of control between threads (the node's fibers) sets
 * it again at each switch in, with what it read at the switch out.  Defined
 * by the runtime the host exports (src/guest/inst.c). */
void *hwn_instance_exchange(void *inst);

#endif
