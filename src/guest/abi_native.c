/* Guest side of the native ABI binding: every hw_* import calls through the
 * host table handed to hwn_entry (entry_native.c, in each process), kept in
 * the running instance (hp__inst()). */
#include "../abi/native.h"
#include "coro.h"
#include "host_ext.h"
#include "rt_int.h"

#include <stddef.h>

#define host (hp__inst()->hwn)

static int guard_add(const void *lo, size_t len)
{
    return host ? host->guard_add(host->ctx, lo, len) : -1;
}

static void guard_remove(int handle)
{
    if (host)
        host->guard_remove(host->ctx, handle);
}

int hp__prompting_hold(void)
{
    return host && HWN_HAS(host, prompting_release)
               ? host->prompting_hold(host->ctx)
               : 0;
}

void hp__prompting_set(int handle)
{
    if (handle > 0 && host && HWN_HAS(host, prompting_release))
        host->prompting_set(host->ctx, handle);
}

void hp__prompting_release(int handle)
{
    if (handle > 0 && host && HWN_HAS(host, prompting_release))
        host->prompting_release(host->ctx, handle);
}

bool hp__set_state_start(const uint8_t *bytes, size_t len,
                         const hw_bytes *context, uint64_t timeout_s)
{
    if (host == NULL || !HWN_HAS(host, set_state_start))
        return false;
    host->set_state_start(host->ctx, bytes, len, context, timeout_s);
    return true;
}

int hp__set_state_now(const uint8_t *bytes, size_t len)
{
    if (host == NULL || !HWN_HAS(host, set_state_now) ||
        host->set_state_now == NULL)
        return -1;
    return host->set_state_now(host->ctx, bytes, len);
}

void hp__started(bool done)
{
    if (host && HWN_HAS(host, started))
        host->started(host->ctx, done);
}

void hp__tasks(size_t live)
{
    if (host && HWN_HAS(host, tasks))
        host->tasks(host->ctx, live > UINT32_MAX ? UINT32_MAX : (uint32_t)live);
}

int hp__instance_run(hp__instance *inst, size_t size, uint32_t runtime_abi,
                     const hwn_host *h, const char *our,
                     void (*init)(const char *our))
{
    if (h == NULL || h->abi_version != HW_ABI_VERSION ||
        h->size < HWN_MIN_SIZE || size != sizeof *inst ||
        runtime_abi != HWN_RUNTIME_ABI)
        return -1;
    /* from here on this thread runs inst (the node's scheduler keeps it so
     * at each switch to the process's fiber, on whichever thread) */
    hwn_instance_exchange(inst);
    inst->hwn = h;
    if (HWN_HAS(h, guard_remove))
        hp__coro_set_guard_hooks(guard_add, guard_remove);
    init(our);
    hp__coro_set_guard_hooks(NULL, NULL);
    inst->hwn = NULL;
    return 0;
}

void hw_print_to_terminal(uint8_t verbosity, const char *message)
{
    host->print_to_terminal(host->ctx, verbosity, message);
}

void hw_our(hw_address *out)
{
    host->our(host->ctx, out);
}

void hw_get_on_exit(hw_on_exit *out)
{
    host->get_on_exit(host->ctx, out);
}

void hw_set_on_exit(const hw_on_exit *on_exit)
{
    host->set_on_exit(host->ctx, on_exit);
}

bool hw_get_state(hw_bytes *out)
{
    return host->get_state(host->ctx, out);
}

bool hw_set_state(const uint8_t *bytes, size_t len)
{
    return host->set_state(host->ctx, bytes, len);
}

bool hw_clear_state(void)
{
    return host->clear_state(host->ctx);
}

hw_spawn_error hw_spawn(const char *name, const char *wasm_path,
                        const hw_on_exit *on_exit,
                        const hw_capability *request_capabilities,
                        size_t request_capabilities_len,
                        const hw_process_id *grant_processes,
                        const char *const *grant_params, size_t grants_len,
                        bool public_, hw_process_id *out)
{
    return host->spawn(host->ctx, name, wasm_path, on_exit,
                       request_capabilities, request_capabilities_len,
                       grant_processes, grant_params, grants_len, public_, out);
}

void hw_save_capabilities(const hw_capability *caps, size_t len)
{
    host->save_capabilities(host->ctx, caps, len);
}

void hw_drop_capabilities(const hw_capability *caps, size_t len)
{
    host->drop_capabilities(host->ctx, caps, len);
}

void hw_our_capabilities(hw_capability_list *out)
{
    host->our_capabilities(host->ctx, out);
}

void hw_receive(hw_receive_result *out)
{
    host->receive(host->ctx, out);
}

bool hp__receive(hw_receive_result *out)
{
    const hwn_host *h = host;
    if (HWN_HAS(h, receive_lent) && h->receive_lent != NULL)
        return h->receive_lent(h->ctx, out);
    h->receive(h->ctx, out);
    return false;
}

bool hw_has_blob(void)
{
    return host->has_blob(host->ctx);
}

bool hw_get_blob(hw_blob *out)
{
    return host->get_blob(host->ctx, out);
}

bool hw_last_blob(hw_blob *out)
{
    return host->last_blob(host->ctx, out);
}

void hw_send_request(const hw_address *target, const hw_request *request,
                     const hw_bytes *context, const hw_blob *blob)
{
    host->send_request(host->ctx, target, request, context, blob);
}

void hw_send_requests(const hw_outgoing_request *requests, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        const hw_outgoing_request *r = &requests[i];
        host->send_request(host->ctx, &r->target, &r->request,
                           r->has_context ? &r->context : NULL,
                           r->has_blob ? &r->blob : NULL);
    }
}

void hw_send_response(const hw_response *response, const hw_blob *blob)
{
    host->send_response(host->ctx, response, blob);
}

int hw_send_and_await_response(const hw_address *target,
                               const hw_request *request, const hw_blob *blob,
                               hw_await_result *out)
{
    return host->send_and_await_response(host->ctx, target, request, blob, out);
}
