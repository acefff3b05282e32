/* Internal to hyperc: helpers shared by the node and the guest runtime
 * (error table, name and address validation).  Not installed; the prefix
 * hcc_ marks these symbols internal. */
#ifndef HYPERC_COMMON_H
#define HYPERC_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The one error table: code, name, message.  0 is success.  Every code
 * is one that some function of the node or the guest returns; its message
 * is what hc_strerror prints. */
#define HCC_ERR_MAP(XX)                                                        \
    XX(OK, "success")                                                          \
    XX(EXISTS, "already exists")                                               \
    XX(FULL, "mailbox full")                                                   \
    XX(CLOSED, "closed")                                                       \
    XX(TIMEOUT, "timed out")                                                   \
    XX(OFFLINE, "node offline")                                                \
    XX(MISSING_NODE_ID, "address has no node id before '@'")                   \
    XX(TOO_MANY_ATS, "address has more than one '@'")                          \
    XX(MISSING_FIELD, "id needs non-empty process:package:publisher parts")    \
    XX(TOO_MANY_COLONS, "id has too many ':'")                                 \
    XX(NOT_HYPERMAP_SAFE,                                                      \
       "name is not hypermap-safe (a-z, 0-9, '-' and, in node and "            \
       "publisher names, '.')")                                                \
    XX(ABI, "process built against another ABI version")

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

/* WsMessageType, in process_lib's order: its name on the wire (JSON) and
 * its WebSocket opcode (RFC 6455).  The one table for the node's server
 * and client and the guest runtime (whose public hp_ws_message_type has
 * the same values). */
#define HCC_WS_TYPE_MAP(XX)                                                    \
    XX(TEXT, "Text", 0x1)                                                      \
    XX(BINARY, "Binary", 0x2)                                                  \
    XX(PING, "Ping", 0x9)                                                      \
    XX(PONG, "Pong", 0xA)                                                      \
    XX(CLOSE, "Close", 0x8)

typedef enum hcc_ws_type {
#define HCC_WS_TYPE_ENUM(name, text, opcode) HCC_WS_##name,
    HCC_WS_TYPE_MAP(HCC_WS_TYPE_ENUM)
#undef HCC_WS_TYPE_ENUM
        HCC_WS_TYPE_COUNT
} hcc_ws_type;

/* "Text" etc.; NULL outside the table. */
const char *hcc_ws_type_name(int type);
/* The type named `name` (len bytes), or -1. */
int hcc_ws_type_parse(const char *name, size_t len);
/* The type's opcode; 0 outside the table. */
unsigned hcc_ws_type_opcode(int type);
/* The type of a WebSocket opcode, or -1. */
int hcc_ws_type_of_opcode(unsigned opcode);

/* The WebSocketPush action (ws_push.c): {"WebSocketPush":{"channel_id":N,
 * "message_type":"Type"}}, which goes with every WebSocket message, from
 * the server to a process and back.  Written and read without a JSON
 * tree. */

/* Room for the longest WebSocketPush body, with its NUL. */
#define HCC_WS_PUSH_BODY_MAX 80
/* Write the body for channel N and message type `type` (an hcc_ws_type;
 * anything else is written as Close) into out, HCC_WS_PUSH_BODY_MAX bytes,
 * NUL-terminated, byte for byte as the snprintf of it before; returns its
 * length. */
size_t hcc_ws_push_body(char *out, uint32_t channel, int type);
/* Read a body of that shape: matched byte for byte when it is exactly as
 * hcc_ws_push_body writes it, else with yajl's callbacks (no tree).  True only
 * for that one shape: an object with one key, WebSocketPush, whose object
 * has channel_id and message_type once each and nothing else, N an integer
 * from 0 to UINT32_MAX, Type a WsMessageType name (*type its
 * hcc_ws_type); blanks anywhere JSON has them.  Any other body, valid or
 * not, gives false, and is for the caller to parse in full (a JSON tree),
 * which reads the bodies taken here as this does. */
bool hcc_ws_push_read(const char *body, size_t len, uint32_t *channel,
                      int *type);
/* Parse body (len bytes) with yajl: `callbacks` (a const yajl_callbacks *)
 * are called with ctx; yajl's memory comes from a buffer on the stack, so
 * a short body needs no malloc.  True when the body is one JSON object or
 * array (anything else is refused) and every callback accepted its token;
 * false at once for a body with \v or \f, which yajl takes for blanks and
 * JSON does not.  yajl's defaults: no
 * comments, UTF-8 checked, nothing after the value. */
bool hcc_yajl_parse_short(const void *callbacks, void *ctx, const char *body,
                          size_t len);

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

/* The instruction a signal interrupted, from the handler's ucontext
 * argument (x86_64, aarch64); 0 where unknown. */
#include <stdint.h>
uintptr_t hcc_signal_pc(const void *ucontext);

/* Whether b[0..n) is exactly one complete msgpack value in which no array
 * or map announces more elements than the bytes left could hold (each
 * takes at least one), and no reserved byte (0xc1) appears.  msgpack-c
 * allocates an array's elements when it reads the array's header: checked
 * first, that allocation is bounded by the input's size.  Used by the
 * worker protocol and the node's network codec before msgpack-c sees
 * bytes from the other side. */
bool hcc_msgpack_check(const uint8_t *b, size_t n);

/* The length (2 to 4) of the well-formed UTF-8 sequence of a non-ASCII
 * lead byte at s[0] with n bytes available (n >= 1), 1 for ASCII, 0 when
 * it is not one: truncated, overlong, a surrogate or past U+10FFFF (the
 * rules of Rust's str and RFC 3629). */
size_t hcc_utf8_seq(const uint8_t *s, size_t n);
/* Whether s[0..n) is well-formed UTF-8 (hcc_utf8_seq at every step; ASCII
 * eight bytes at a time).  One validator for the node and the runtime. */
bool hcc_utf8_valid(const uint8_t *s, size_t n);
/* s[0..n) made UTF-8 as Rust's String::from_utf8_lossy makes it (and
 * WHATWG's decoder): each ill-formed sequence's maximal subpart (its lead
 * byte and the continuation bytes that could still have completed it,
 * at least one byte) replaced with U+FFFD.  Written to out (room for 3 n
 * bytes at most) unless out is NULL; returns its length either way. */
size_t hcc_utf8_lossy(const uint8_t *s, size_t n, uint8_t *out);

#endif
