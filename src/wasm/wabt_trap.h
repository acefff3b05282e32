/* Internal to hyperc: what wabt's runtime calls at a trap of a component
 * run as native code.  wasm-rt-impl.c is built into libhyperc_component.a
 * with WASM_RT_TRAP_HANDLER=hcx_trap_handler and this header forced in;
 * component_entry.c defines the handler, which ends the process with TRAP
 * (docs/wasm-native.md). */
#ifndef HYPERC_WASM_WABT_TRAP_H
#define HYPERC_WASM_WABT_TRAP_H

#include <wasm-rt.h>

/* Never returns. */
_Noreturn void hcx_trap_handler(wasm_rt_trap_t code);

#endif
