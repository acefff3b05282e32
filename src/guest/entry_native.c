/* The part of libhyperc each native process links (hyperc_add_process):
 * its entry point and its instance's runtime state.  The runtime's code is
 * the host's (the node and the worker export it), shared by every instance
 * of every process; this object is all a process carries of it
 * (docs/architecture.md, Instances). */
#include "../abi/native.h"
#include "rt_int.h"

/* The runtime's state of this instance: each instance is its own copy of
 * the shared object, so its own .bss. */
static hp__instance instance;

__attribute__((visibility("default"))) extern const uint32_t hwn_runtime_abi;
__attribute__((visibility("default"))) int hwn_entry(const hwn_host *h,
                                                     const char *our);

const uint32_t hwn_runtime_abi = HWN_RUNTIME_ABI;

int hwn_entry(const hwn_host *h, const char *our)
{
    return hp__instance_run(&instance, sizeof instance, HWN_RUNTIME_ABI, h, our,
                            hw_init);
}
