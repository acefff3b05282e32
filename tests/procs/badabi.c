/* badabi: a process that says it was built for a runtime ABI no hyperc has
 * (hwn_runtime_abi), which the node and the worker must refuse to run with a
 * clear error.  It links nothing of libhyperc: it never runs. */
#include <stdint.h>

__attribute__((visibility("default"))) const uint32_t hwn_runtime_abi = 0xBAD;

__attribute__((visibility("default"))) int hwn_entry(const void *h,
                                                     const char *our);

int hwn_entry(const void *h, const char *our)
{
    (void)h;
    (void)our;
    return 0;
}
