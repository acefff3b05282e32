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
static __thread hp__instance *running
    __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) hp__instance *hp__inst(void)
{
    hp__instance *i = running;
    return i != NULL ? i : &fallback;
}

void *hwn_instance_exchange(void *inst)
{
    hp__instance *old = running;
    running = inst;
    return old;
}

#endif
