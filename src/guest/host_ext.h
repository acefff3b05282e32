/* Internal to libhyperc: what the guest runtime uses of the native
 * binding's extensions (src/abi/native.h) beyond the process ABI.  Each is a
 * no-op where the host lacks it (a wasm32 build, an older node). */
#ifndef HYPERC_GUEST_HOST_EXT_H
#define HYPERC_GUEST_HOST_EXT_H

#include "hyperc/abi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keep the current prompting message; a handle > 0, or 0 (none, or the host
 * cannot). */
int hp__prompting_hold(void);
/* Make a held prompting message current again (0: nothing happens). */
void hp__prompting_set(int handle);
/* Drop a hold (0: nothing happens). */
void hp__prompting_release(int handle);
/* Tell the node this process will say when it has started (before the
 * first receive), then that it has (its bindings and init done). */
void hp__started(bool done);
/* Tell the node how many tasks are alive (for `hyperc ps`; a store). */
void hp__tasks(size_t live);
/* Start saving the state; its answer comes as the response to `context`
 * (body "SetState") or a send error.  false: the host cannot (save with
 * hw_set_state). */
bool hp__set_state_start(const uint8_t *bytes, size_t len,
                         const hw_bytes *context, uint64_t timeout_s);
/* Save the state at once where the host can (hwn_host.set_state_now): 1
 * saved, 0 failed (the host logged why), -1 the host cannot (save with
 * hp__set_state_start or hw_set_state). */
int hp__set_state_now(const uint8_t *bytes, size_t len);

/* hw_receive, borrowing where the host can: true when *out was lent (valid
 * until the next receive, not to be released: the runtime copies what it
 * keeps before then), false when *out is owned (hw_receive_result_fini). */
bool hp__receive(hw_receive_result *out);

#endif
