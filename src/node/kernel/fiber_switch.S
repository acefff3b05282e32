/* Internal to the node: the context switch of process fibers (sched.c).
 * It is the guest's coroutine switch (src/guest/coro_switch_<arch>.S,
 * documented there) assembled again under the node's own names, so that
 * the node and a guest runtime linked beside it never share a symbol:
 *
 * void hcn__fiber_switch(void **save_sp, void *to_sp)
 * hcn__fiber_trampoline: a new fiber's first frame calls entry(arg). */
#define hp__coro_switch hcn__fiber_switch
#define hp__coro_trampoline hcn__fiber_trampoline
#if defined(__x86_64__)
#include "../../guest/coro_switch_x86_64.S"
#elif defined(__aarch64__)
#include "../../guest/coro_switch_aarch64.S"
#else
#error "hyperc fibers: x86_64 and aarch64 only"
#endif
