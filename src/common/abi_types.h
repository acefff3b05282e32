/* Internal to hyperc: builders for ABI output types (see abi_types.c for the
 * layout convention the hw_*_fini functions rely on). */
#ifndef HYPERC_ABI_TYPES_H
#define HYPERC_ABI_TYPES_H

#include "hyperc/abi.h"

/* Build *out as one allocation from the four parts.  0, or -1 on OOM. */
int hcc_address_from_parts(const char *node, size_t nlen, const char *proc,
                           size_t plen, const char *pkg, size_t klen,
                           const char *publ, size_t ulen, hw_address *out);

/* Build *out as one allocation from the three parts.  0, or -1 on OOM. */
int hcc_process_id_from_parts(const char *proc, size_t plen, const char *pkg,
                              size_t klen, const char *publ, size_t ulen,
                              hw_process_id *out);

/* Parse "process:package:publisher" (unchecked names) into one allocation.
 * 0, or -1 if malformed or on OOM. */
int hcc_process_id_from_str(const char *s, hw_process_id *out);

/* Release a request or response built as the host builds outputs (each
 * pointer field its own block) and zero it; safe on a zeroed struct.  The
 * ABI has no hw_* function for these two alone. */
void hcc_request_fini(hw_request *r);
void hcc_response_fini(hw_response *r);

#endif
