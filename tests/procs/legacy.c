/* legacy: a process as built before the runtime was shared (docs/
 * architecture.md, Instances): libhyperc linked in whole, every symbol of it
 * hidden, hwn_entry its only export and no hwn_runtime_abi.  Its runtime is
 * its own copy, state and all (the copy's process-wide instance: nobody sets
 * its thread-local, so every thread finds that one).  It answers each
 * request with "legacy: " and the body, through its own hw_* functions. */
#include "abi/native.h"
#include "guest/rt_int.h"

#include <stdio.h>
#include <string.h>

__attribute__((visibility("default"))) int hwn_entry(const hwn_host *h,
                                                     const char *our);

int hwn_entry(const hwn_host *h, const char *our)
{
    if (h == NULL || h->abi_version != HW_ABI_VERSION || h->size < HWN_MIN_SIZE)
        return -1;
    hp__inst()->hwn = h;
    hw_init(our);
    return 0;
}

void hw_init(const char *our)
{
    (void)our;
    hw_print_to_terminal(0, "legacy: running on its own runtime");
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            char body[256];
            int n = snprintf(body, sizeof body, "legacy: %.*s",
                             (int)r.message.request.body.len,
                             (const char *)r.message.request.body.ptr);
            hw_response resp = {0};
            resp.body.ptr = (uint8_t *)body;
            resp.body.len =
                (size_t)n < sizeof body ? (size_t)n : sizeof body - 1;
            hw_send_response(&resp, NULL);
        }
        hw_receive_result_fini(&r);
    }
}
