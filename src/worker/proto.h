/* Internal to hyperc: the worker protocol, version 6 — how a process that
 * runs outside the node (an isolated native worker today, a wasm host
 * later) carries each call of the process ABI to the node and gets its
 * answer.  docs/worker-protocol.md is the specification; this header is
 * its C codec, used by the node (src/node/kernel/isolate.c) and by the worker
 * (src/worker/).  Prefix hcw_.
 *
 * A frame is a u32 little-endian length, then that many bytes: one msgpack
 * array [op, args...].  Types inside follow the spec (an address is
 * [node, [process, package, publisher]], bytes are msgpack bin, an option
 * is nil or the value, ...).
 *
 * Writing: hcw_frame_begin(f, op, nargs), then exactly nargs hcw_put_*
 * calls (each ABI type counts as one), then hcw_frame_send.  Reading:
 * hcw_frame_recv fills a hcw_in whose op and args are then read in order
 * with hcw_get_*; a get that finds another type (or no argument left)
 * returns false and leaves the output zeroed; outputs are allocated as the
 * host allocates ABI outputs (src/common/abi_types.c), so the matching
 * hw_*_fini releases them.  Nothing here is thread-safe: one frame, one
 * thread. */
#ifndef HYPERC_WORKER_PROTO_H
#define HYPERC_WORKER_PROTO_H

#include "hyperc/abi.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HCW_PROTO_VERSION 7
/* The largest frame either side sends or accepts (a message body and its
 * blob, with room for the rest). */
#define HCW_MAX_FRAME (256u * 1024 * 1024)
/* The highest prompting handle a worker may hold (PROMPTING_HOLD): as many
 * tasks as a process may have waiting at once, with room. */
#define HCW_MAX_HELD (1u << 20)
/* The most features a READY may name, and the longest name (version 5).
 * The one defined: HCW_FEATURE_LANES (version 6), the worker takes lanes
 * (LANE_OPEN, LANE_CLOSE; docs/lane-design.md). */
#define HCW_FEATURE_LANES "lanes"
#define HCW_MAX_FEATURES 32
#define HCW_MAX_FEATURE_LEN 64

/* The operations.  Calls go from the process (worker) to the node; those
 * marked "->" get one HCW_REPLY with the results listed, the others get
 * none.  The control operations open and close a worker's life. */
#define HCW_OP_MAP(XX)                                                         \
    /* calls: the entries of the native binding (src/abi/native.h) */          \
    XX(PRINT, 1)              /* [u8 verbosity, str] */                        \
    XX(OUR, 2)                /* -> [address] */                               \
    XX(GET_ON_EXIT, 3)        /* -> [on-exit] */                               \
    XX(SET_ON_EXIT, 4)        /* [on-exit] */                                  \
    XX(GET_STATE, 5)          /* -> [bin | nil] */                             \
    XX(SET_STATE, 6)          /* [bin] -> [bool] */                            \
    XX(CLEAR_STATE, 7)        /* -> [bool] */                                  \
    XX(SPAWN, 8)              /* [str|nil name, str path, on-exit, caps,       \
                                 [process-id...], [str...], bool public]       \
                                 -> [u8 spawn-error, process-id | nil] */      \
    XX(SAVE_CAPS, 9)          /* [caps] */                                     \
    XX(DROP_CAPS, 10)         /* [caps] */                                     \
    XX(OUR_CAPS, 11)          /* -> [caps] */                                  \
    XX(RECEIVE, 12)           /* -> [receive-result, blob | nil] */            \
    XX(HAS_BLOB, 13)          /* -> [bool] (a worker may answer it itself) */  \
    XX(GET_BLOB, 14)          /* -> [blob | nil] (also) */                     \
    XX(LAST_BLOB, 15)         /* -> [blob | nil] (also) */                     \
    XX(SEND_REQUEST, 16)      /* [address, request, bin|nil ctx, blob|nil] */  \
    XX(SEND_RESPONSE, 17)     /* [response, blob | nil] */                     \
    XX(SEND_AND_AWAIT, 18)    /* [address, request, blob | nil]                \
                                 -> [i32 rc, await-result | nil,               \
                                     blob | nil] */                            \
    XX(PROMPTING_HOLD, 19)    /* [i32 handle], chosen by the worker */         \
    XX(PROMPTING_SET, 20)     /* [i32 handle] */                               \
    XX(PROMPTING_RELEASE, 21) /* [i32 handle] */                               \
    XX(STARTED, 22)           /* [bool done] */                                \
    XX(SET_STATE_START, 23)   /* [bin, bin|nil ctx, u64 timeout_s] */          \
    XX(LANE_DROP, 26)         /* [u32 lane, str|nil why]: the lane is          \
                                 unmapped (nil: after LANE_CLOSE), or          \
                                 refused or broken (why) */                    \
    XX(SYNC, 27)              /* [prompting] or [prompting | nil, blob]        \
                                 (lanes): the node's prompting message         \
                                 becomes none or a lane's stub (nil: stays);   \
                                 its last blob becomes blob */                 \
    /* control */                                                              \
    XX(HELLO, 64)     /* node -> worker: [u32 version, str our, str binary,    \
                         str process id] */                                    \
    XX(READY, 65)     /* worker -> node: [u32 version, [str feature...]]       \
                         (loaded; init runs) */                                \
    XX(REPLY, 66)     /* node -> worker: the results of the last call */       \
    XX(DONE, 67)      /* worker -> node: [i32 rc] the entry returned */        \
    XX(FAIL, 68)      /* worker -> node: [str why] could not load or start */  \
    XX(CRASH, 69)     /* worker -> node: [crash] a fatal signal */             \
    XX(EXIT, 70)      /* worker -> node: [crash] exit() called by the guest */ \
    XX(TRAP, 71)      /* wasm host -> node: [str message, str stack] a trap */ \
    XX(DELIVER, 72)   /* node -> worker: [receive-result, blob | nil] a        \
                         message delivered ahead: the answer to a RECEIVE      \
                         still to come */                                      \
    XX(LANE_OPEN, 73) /* node -> worker (lanes): [u32 lane, address peer,      \
                         u8 my_ring, bool send_ok, bool recv_ok,               \
                         u32 quota, bool peer_host]; the memfd came on fd 4    \
                         before it */                                          \
    XX(LANE_CLOSE, 74) /* node -> worker (lanes): [u32 lane, u8 why,           \
                          u32 taken_to, u32 drained_to, [u64 adopted...]] */   \
    XX(NEED, 76)   /* node -> worker (lanes): [] the node's next item can be   \
                      taken only by a RECEIVE that waits for it */             \
    XX(FORGET, 77) /* node -> worker (lanes): [u64 id (bit 63 set)] the node   \
                      filed a context of its own under this id (inherited):    \
                      the worker's lane context of that id, if any, is gone */ \
    /* in a lane (docs/lane-design.md), from one worker to the other */        \
    XX(LREQ, 96)  /* [u64 id (bit 63 set), u64 | nil expects, bin body,        \
                     str | nil metadata, blob | nil] (hcw_frame_lreq) */       \
    XX(LRESP, 97) /* [u64 id, bin body, str | nil metadata, blob | nil] */

typedef enum hcw_op {
#define HCW_OP_ENUM(name, code) HCW_##name = code,
    HCW_OP_MAP(HCW_OP_ENUM)
#undef HCW_OP_ENUM
} hcw_op;

/* "PRINT" etc.; NULL for a code outside the table. */
const char *hcw_op_name(int op);

/* Write a sentence into err (errlen bytes; nothing when err is NULL or
 * errlen 0): how proto.c, link.c and lane.c say what went wrong. */
void hcw_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What a worker says about its end: a fatal signal (CRASH) or exit()
 * (EXIT).  pcs are return addresses, innermost first; modules map them to
 * files.  In the spec: [i32 signal|status, u64 addr, bool stack_overflow,
 * [u64 pc...], [[str path, u64 base]...]]. */
typedef struct hcw_module {
    char *path;    /* a loaded object (the guest's binary, a library) */
    uint64_t base; /* where it is loaded (dl_iterate_phdr's dlpi_addr) */
} hcw_module;

/* DELIVER's and RECEIVE's REPLY to a worker with lanes carry `u8 flags`
 * (docs/lane-design.md §10, step 5): taking the item sets the node's
 * prompting message (a request with expects or rsvp, an answer paired with
 * a context of the node's, a timeout of one); with that, the message it
 * sets is none (an answer or timeout whose request was sent with nothing
 * prompting). */
#define HCW_ITEM_PROMPTS 1u
#define HCW_ITEM_PROMPTS_NONE 2u

/* SYNC's argument (a worker with lanes): `0`, the node's prompting message
 * becomes none; or [address source, u64 id, bool expects], it becomes a
 * stub of the request `id` (bit 63 set) from `source`, a lane's peer,
 * answered to `source` when `expects`. */
typedef struct hcw_prompting {
    bool none;
    hw_address source; /* (not none) */
    uint64_t id;
    bool expects;
} hcw_prompting;

typedef struct hcw_crash {
    int32_t code;        /* CRASH: the signal; EXIT: the status */
    uint64_t addr;       /* CRASH: the faulting address, 0 if none; for
                            SIGSYS the refused system call's number */
    bool stack_overflow; /* a task stack's guard page was hit */
    uint64_t *pcs;
    size_t npcs;
    hcw_module *modules;
    size_t nmodules;
} hcw_crash;

void hcw_crash_fini(hcw_crash *c);

/* ------------------------------------------------------------- writing */

typedef struct hcw_frame hcw_frame;

/* A frame buffer, reused frame after frame; aborts when out of memory. */
hcw_frame *hcw_frame_new(void);
void hcw_frame_free(hcw_frame *f);
/* Start a frame [op, nargs arguments...] (forgets any frame not sent). */
void hcw_frame_begin(hcw_frame *f, hcw_op op, size_t nargs);
/* Send the frame: length and bytes, all of it (EINTR retried).  0, or -1
 * with errno (EMSGSIZE when over HCW_MAX_FRAME). */
int hcw_frame_send(hcw_frame *f, int fd);
/* The complete frame's bytes (length included) to send by other means
 * (link.c); NULL with errno as hcw_frame_send. */
const uint8_t *hcw_frame_finish(hcw_frame *f, size_t *len);
/* The frame's bytes so far, for tests. */
const uint8_t *hcw_frame_bytes(const hcw_frame *f, size_t *len);

void hcw_put_nil(hcw_frame *f);
void hcw_put_bool(hcw_frame *f, bool v);
void hcw_put_u64(hcw_frame *f, uint64_t v);
void hcw_put_i64(hcw_frame *f, int64_t v);
void hcw_put_str(hcw_frame *f, const char *s); /* NULL: nil */
void hcw_put_bin(hcw_frame *f, const void *p, size_t n);
void hcw_put_bytes_opt(hcw_frame *f, bool has, const hw_bytes *b);
void hcw_put_address(hcw_frame *f, const hw_address *a);
void hcw_put_process_id(hcw_frame *f, const hw_process_id *p);
void hcw_put_blob_opt(hcw_frame *f, const hw_blob *b); /* NULL: nil */
void hcw_put_caps(hcw_frame *f, const hw_capability *caps, size_t n);
void hcw_put_request(hcw_frame *f, const hw_request *r);
void hcw_put_response(hcw_frame *f, const hw_response *r);
/* A lane's frames, flat (docs/lane-design.md §9, lane layout 3): LREQ
 * [id, expects, body, metadata, blob] and LRESP [id, body, metadata,
 * blob], a request or response with neither inherit nor capabilities (a
 * lane carries neither: the caller has seen to that; they are not
 * written).  Each begins f and puts the whole frame; its integers take
 * msgpack's unsigned forms, which hcw_get_lane_frame reads. */
void hcw_frame_lreq(hcw_frame *f, uint64_t id, const hw_request *r,
                    const hw_blob *blob);
void hcw_frame_lresp(hcw_frame *f, uint64_t id, const hw_response *r,
                     const hw_blob *blob);
void hcw_put_message(hcw_frame *f, const hw_message *m);
void hcw_put_on_exit(hcw_frame *f, const hw_on_exit *o);
void hcw_put_send_error(hcw_frame *f, const hw_send_error *e);
void hcw_put_receive_result(hcw_frame *f, const hw_receive_result *r);
void hcw_put_await_result(hcw_frame *f, const hw_await_result *r);
/* [str...]; one argument. */
void hcw_put_strs(hcw_frame *f, const char *const *v, size_t n);
/* [u64...]; one argument. */
void hcw_put_u64s(hcw_frame *f, const uint64_t *v, size_t n);
/* [process-id...]; one argument. */
void hcw_put_process_ids(hcw_frame *f, const hw_process_id *v, size_t n);
void hcw_put_crash(hcw_frame *f, const hcw_crash *c);
/* SYNC's argument; one argument (below). */
void hcw_put_prompting(hcw_frame *f, const hcw_prompting *p);

/* ------------------------------------------------------------- reading */

typedef struct hcw_in {
    int op;       /* the frame's op (any number: check it) */
    size_t nargs; /* arguments after the op */
    size_t next;  /* the next argument hcw_get_* reads */
    void *impl;   /* the decoder's state (msgpack) */
} hcw_in;

/* An hcw_in keeps its decoder's buffers from frame to frame (reading a
 * frame releases the previous one); hcw_in_fini gives them back. */
void hcw_in_init(hcw_in *in);
/* Release the last frame read and the decoder's buffers (its strings and
 * bytes that were not taken by a get stay valid until the next frame is
 * read, or this, only where a get says "borrowed"). */
void hcw_in_fini(hcw_in *in);
/* Read one frame from fd into in (releasing the previous one): 1 read, 0
 * the other side closed before a frame began, -1 a broken frame (short,
 * over the limit, not a msgpack array starting with an integer op; errno
 * or a message in err). */
int hcw_frame_recv(hcw_in *in, int fd, char *err, size_t errlen);
/* Read by other means (link.c, frames that came through shared memory):
 * hcw_in_body releases the previous frame and gives a buffer of at least n
 * bytes for the next frame's body (after its length), reused frame after
 * frame (NULL when out of memory); the caller copies the body into it and
 * hcw_in_decode(in, n) decodes it: 1, or -1 with err.  `trusted` (the
 * worker reading the node's frames) skips the check that makes a hostile
 * frame's declared lengths harmless; the node never trusts a worker. */
uint8_t *hcw_in_body(hcw_in *in, size_t n);
int hcw_in_decode(hcw_in *in, size_t n, bool trusted, char *err, size_t errlen);
/* Read the rest of a frame's body from fd (blocking): bytes [have, len) of
 * body.  0, or -1 with err and errno (a read error, or EPROTO when the
 * other side closed first). */
int hcw_frame_body_read(int fd, uint8_t *body, size_t have, uint32_t len,
                        char *err, size_t errlen);
/* The body (after its length) of the frame in last read: its bytes,
 * borrowed until in reads again; NULL and *n 0 when none was read. */
const uint8_t *hcw_in_raw(const hcw_in *in, size_t *n);
/* Decode a frame from memory (tests, fuzzing): 1, or -1 with err. */
int hcw_frame_parse(hcw_in *in, const uint8_t *p, size_t n, char *err,
                    size_t errlen);

/* Each reads the next argument; false (and a zeroed *out) when it is not
 * of that type or none is left.  The allocated outputs are the caller's
 * (the hw_*_fini of their type, free() for strings and arrays). */
bool hcw_get_nil(hcw_in *in); /* true and consumed if the next is nil */
bool hcw_get_bool(hcw_in *in, bool *out);
bool hcw_get_u64(hcw_in *in, uint64_t *out);
bool hcw_get_i64(hcw_in *in, int64_t *out);
bool hcw_get_str(hcw_in *in, char **out);    /* nil: *out NULL */
bool hcw_get_bin(hcw_in *in, hw_bytes *out); /* not nil */
bool hcw_get_bytes_opt(hcw_in *in, bool *has, hw_bytes *out);
bool hcw_get_address(hcw_in *in, hw_address *out);
bool hcw_get_process_id(hcw_in *in, hw_process_id *out);
bool hcw_get_blob_opt(hcw_in *in, bool *has, hw_blob *out);
bool hcw_get_caps(hcw_in *in, hw_capability_list *out);
bool hcw_get_request(hcw_in *in, hw_request *out);
bool hcw_get_response(hcw_in *in, hw_response *out);
/* The same with the body lent from the frame, not copied: valid until `in`
 * reads again; released with hcw_request_view_fini / _response_view_fini
 * (the rest is allocated as above). */
bool hcw_get_request_view(hcw_in *in, hw_request *out);
bool hcw_get_response_view(hcw_in *in, hw_response *out);
void hcw_request_view_fini(hw_request *r);
void hcw_response_view_fini(hw_response *r);
/* A lane's frame read (`in` holds an LREQ or an LRESP, none of its
 * arguments read yet; such a frame is read in place, so the other gets
 * find no arguments in it): its id, its request (LREQ: *req, inherit false, no
 * capabilities) or response (LRESP: *resp), its blob.  With view the body
 * is lent as hcw_get_request_view's (released with the _view_fini of its
 * kind), else copied; the metadata and the blob are the caller's.  false,
 * every output zeroed and nothing allocated, when the op or an argument is
 * not as hcw_frame_lreq / _lresp write them. */
bool hcw_get_lane_frame(hcw_in *in, bool view, uint64_t *id, hw_request *req,
                        hw_response *resp, bool *has_blob, hw_blob *blob);
/* Release the request and the response hcw_get_lane_frame gave with the
 * same view (a lent body is not freed); the blob is the caller's to
 * release. */
void hcw_lane_frame_fini(bool view, hw_request *req, hw_response *resp);
bool hcw_get_message(hcw_in *in, hw_message *out);
bool hcw_get_on_exit(hcw_in *in, hw_on_exit *out);
bool hcw_get_send_error(hcw_in *in, hw_send_error *out);
bool hcw_get_receive_result(hcw_in *in, hw_receive_result *out);
bool hcw_get_await_result(hcw_in *in, hw_await_result *out);
/* [str...] into a malloc'd array of malloc'd strings (free each, then
 * *out); *n their count. */
bool hcw_get_strs(hcw_in *in, char ***out, size_t *n);
/* [process-id...]: free with hw_process_id_fini on each, then free(*out). */
bool hcw_get_process_ids(hcw_in *in, hw_process_id **out, size_t *n);
/* [u64...] of at most max into a malloc'd array (free it; NULL when
 * empty), *n its count. */
bool hcw_get_u64s(hcw_in *in, size_t max, uint64_t **out, size_t *n);
bool hcw_get_crash(hcw_in *in, hcw_crash *out);
/* SYNC's argument; out->source is the caller's (hw_address_fini). */
bool hcw_get_prompting(hcw_in *in, hcw_prompting *out);

/* Set the resource limits of process pid (0: the caller's), soft and
 * hard, as a worker runs under them (docs/architecture.md, "Limits"): no
 * core files (RLIMIT_CORE 1), and unless 0, its open descriptors (files)
 * and its address space (bytes).  A value above pid's hard limit keeps that
 * one (the stricter).  Every limit is tried; 0, or -1 with a sentence
 * naming the first refused in why.  hyperc-worker calls it on itself from
 * its command line (`--limits FILES BYTES`), the node on a wasm host. */
int hcw_limits_set(pid_t pid, uint64_t files, uint64_t bytes, char *why,
                   size_t whylen);

#endif
