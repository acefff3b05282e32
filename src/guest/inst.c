/* The running instance (rt_int.h, hp__inst): a thread-local pointer the
 * host sets, or one instance for the whole program where nobody does (a
 * runtime linked statically into a test, a wasm32 component). */
#include "rt_int.h"

#if defined(__wasm__)

static hp__instance the_instance;

hp__instance *hp__inst(void)
{
    return &the_instance;
}

#else

#include "../abi/native.h"

static hp__instance fallback;

#if defined(__x86_64__)
__thread hp__instance *hp__running = &fallback;
#else
static __thread hp__instance *hp__running
    __attribute__((tls_model("initial-exec"))) = &fallback;

__attribute__((noinline)) hp__instance *hp__inst(void)
{
    return hp__running;
}
#endif

void *hwn_instance_exchange(void *inst)
{
    hp__instance *old = hp__running;
    hp__running = inst != NULL ? inst : &fallback;
    return old != &fallback ? old : NULL;
}

#endif
