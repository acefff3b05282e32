/* Internal to hyperc: helpers shared by the node and the guest runtime
 * (error table, name and address validation).  Not installed; the prefix
 * hcc_ marks these symbols internal. */
#ifndef HYPERC_COMMON_H
#define HYPERC_COMMON_H

#include <stdbool.h>
#include <stddef.h>

/* The one error table: code, name, message.  0 is success. */
#define HCC_ERR_MAP(XX)                                                        \
    XX(OK, "success")                                                          \
    XX(NOMEM, "out of memory")                                                 \
    XX(INVAL, "invalid argument")                                              \
    XX(NOTFOUND, "not found")                                                  \
    XX(EXISTS, "already exists")                                               \
    XX(FULL, "mailbox full")                                                   \
    XX(DENIED, "capability missing")                                           \
    XX(CLOSED, "closed")                                                       \
    XX(TIMEOUT, "timed out")                                                   \
    XX(OFFLINE, "node offline")                                                \
    XX(IO, "input/output error")                                               \
    XX(PARSE, "malformed input")                                               \
    XX(MISSING_NODE_ID, "address has no node id before '@'")                   \
    XX(TOO_MANY_ATS, "address has more than one '@'")                          \
    XX(MISSING_FIELD, "id needs non-empty process:package:publisher parts")    \
    XX(TOO_MANY_COLONS, "id has too many ':'")                                 \
    XX(NOT_HYPERMAP_SAFE,                                                      \
       "name is not hypermap-safe (a-z, 0-9, '-' and, in node and "            \
       "publisher names, '.')")                                                \
    XX(ABI, "process built against another ABI version")                       \
    XX(SHUTDOWN, "node is shutting down")

typedef enum hcc_err {
#define HCC_ERR_ENUM(name, msg) HCC_E##name,
    HCC_ERR_MAP(HCC_ERR_ENUM)
#undef HCC_ERR_ENUM
        HCC_E_COUNT
} hcc_err;

/* "NOTFOUND" etc.; "UNKNOWN" for codes outside the table. */
const char *hcc_err_name(int err);
/* Human-readable message; "unknown error" outside the table. */
const char *hcc_strerror(int err);

/* Hypermap-safe checks as Hyperware applies them: process and package names
 * match ^[a-z0-9-]+$, node and publisher names ^[a-z0-9.-]+$. */
bool hcc_name_safe(const char *s, size_t len, bool allow_dot);

/* Split "process:package:publisher" (len bytes at s) into three non-empty
 * parts; offs receives the start and length of each.  Returns HCC_EOK,
 * HCC_EMISSING_FIELD or HCC_ETOO_MANY_COLONS.  With `check`, also requires
 * every part hypermap-safe (HCC_ENOT_HYPERMAP_SAFE). */
int hcc_process_id_split(const char *s, size_t len, bool check,
                         size_t offs[3][2]);

/* Split "node@process:package:publisher": *at receives the index of '@'.
 * Errors: HCC_EMISSING_NODE_ID, HCC_ETOO_MANY_ATS, then those of
 * hcc_process_id_split; with `check`, the node must be hypermap-safe too. */
int hcc_address_split(const char *s, bool check, size_t *at, size_t offs[3][2]);

#endif
