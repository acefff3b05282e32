/* Internal to hyperc: the native binding of the process ABI.
 *
 * A native process is a shared object that links the guest runtime
 * statically and exports one symbol, hwn_entry.  The node calls it on the
 * process's thread with a table of host functions; the guest side
 * (src/guest/abi_native.c) implements every hw_* function of
 * include/hyperc/abi.h by calling through that table.  Each entry has the
 * contract of the hw_* function of the same name, with the host's per-process
 * context as first argument.  Nothing else crosses between node and guest. */
#ifndef HYPERC_ABI_NATIVE_H
#define HYPERC_ABI_NATIVE_H

#include "hyperc/abi.h"

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
} hwn_host;

/* Exported by each native process.  Returns 0 after hw_init returned, or -1
 * at once if the host's ABI version or table size does not fit. */
typedef int (*hwn_entry_fn)(const hwn_host *host, const char *our);

#endif
