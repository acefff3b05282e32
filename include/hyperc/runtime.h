/* libhyperc's runtime for hyperprocesses: the process's life (state load and
 * save policies, logging, the request loop with error replies), the message
 * arena, logging, and the descriptor that `hyperc gen` fills in.
 *
 * Everything here runs on the process's single thread and talks to the node
 * only through the process ABI (abi.h).  Included by hyperprocess.h; apps
 * use the hp_log_*, hp_alloc/hp_strdup/hp_sprintf, hp_source and hp_our
 * functions; the hp_process_impl part is for generated code. */
#ifndef HYPERC_RUNTIME_H
#define HYPERC_RUNTIME_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperc/abi.h"
#include "hyperc/arena.h"
#include "hyperc/hyperprocess.h"
#include "hyperc/json.h"

/* ------------------------------------------------------------ for apps */

/* Memory that lives until the reply to the current message has been sent
 * (in init: until init returns).  Handlers return strings and lists
 * allocated here; the runtime frees them.  NULL when out of memory.  Outside
 * a handler or init these return NULL. */
void *hp_alloc(size_t n);
char *hp_strdup(const char *s);
char *hp_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The current message's arena (NULL outside a handler or init), for the
 * hp_arena_* functions and generated decoders. */
hp_arena *hp_message_arena(void);

/* Who sent the message being handled.  In init it is the process itself.
 * Owned by the runtime; valid until the handler returns. */
const hw_address *hp_source(void);

/* This process's address; valid for the process's life. */
const hw_address *hp_our(void);

/* True when no stored state was found at start (the state was zeroed). */
bool hp_state_is_new(void);

/* Log levels, as the Rust framework's tracing levels. */
typedef enum hp_log_level {
    HP_LOG_ERROR = 0,
    HP_LOG_WARN = 1,
    HP_LOG_INFO = 2,
    HP_LOG_DEBUG = 3,
} hp_log_level;

/* Set up logging: events at `terminal` and more severe go to the terminal
 * (error and warn at verbosity 0, info and debug at 1, as Rust's
 * init_logging maps them; a debug line below `terminal` goes to the
 * terminal at level 3, shown and kept only at verbosity 3); events at `file`
 * and more severe are appended to the per-process log file
 * /<package>:<publisher>/log/<process>.log through vfs:distro:sys, which keeps
 * it under `max_file_bytes` (0 = 1 MiB) by dropping its older half.  The
 * generated init calls hp_log_init(HP_LOG_DEBUG, HP_LOG_INFO, 0) unless the
 * process declares .manual_logging.  Before it is called, hp_log_* print to the
 * terminal only (info and more severe).  Never blocks: file writes are requests
 * that expect no response. */
void hp_log_init(hp_log_level file, hp_log_level terminal,
                 uint64_t max_file_bytes);
/* Log one event (printf format; a newline is added).  Long lines are cut at
 * 4 KiB. */
void hp_log(hp_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void hp_logv(hp_log_level level, const char *fmt, va_list ap);
#define hp_log_error(...) hp_log(HP_LOG_ERROR, __VA_ARGS__)
#define hp_log_warn(...) hp_log(HP_LOG_WARN, __VA_ARGS__)
#define hp_log_info(...) hp_log(HP_LOG_INFO, __VA_ARGS__)
#define hp_log_debug(...) hp_log(HP_LOG_DEBUG, __VA_ARGS__)

/* Save the state now, whatever the save policy (e.g. before a risky step).
 * Returns false when it could not be encoded or stored (logged). */
bool hp_state_save_now(void);

/* ------------------------------------------------------ calling others */

/* How a call to another process ended: the one table of kinds and their
 * names (hp_rpc_kind_name).
 *   OK        it answered
 *   TIMEOUT   no reply within the timeout
 *   OFFLINE   the target's node is not reachable
 *   DECODE    the reply is not what the callee's signature says
 *   BUILD     the request could not be made or sent
 *   REJECTED  the callee answered with an error reply
 *   CANCELLED hp_task_cancel ended the wait */
#define HP_RPC_KIND_MAP(XX)                                                    \
    XX(OK, "Ok")                                                               \
    XX(TIMEOUT, "Timeout")                                                     \
    XX(OFFLINE, "Offline")                                                     \
    XX(DECODE, "Decode")                                                       \
    XX(BUILD, "Build")                                                         \
    XX(REJECTED, "Rejected")                                                   \
    XX(CANCELLED, "Cancelled")

typedef enum hp_rpc_kind {
#define HP_RPC_KIND_ENUM(name, text) HP_RPC_##name,
    HP_RPC_KIND_MAP(HP_RPC_KIND_ENUM)
#undef HP_RPC_KIND_ENUM
} hp_rpc_kind;

/* kind + a human-readable message (static or in the message arena; NULL
 * when kind is HP_RPC_OK). */
typedef struct hp_rpc_error {
    hp_rpc_kind kind;
    const char *message;
} hp_rpc_error;

/* Per-call options; a NULL pointer or zero fields take the defaults. */
typedef struct hp_rpc_opts {
    uint64_t timeout_s; /* 0 = 30 s */
} hp_rpc_opts;

#define HP_RPC_DEFAULT_TIMEOUT_S 30

/* The kind's name ("Timeout", ...). */
const char *hp_rpc_kind_name(hp_rpc_kind k);

/* Send `body` (JSON) as a request to `target` and wait for the reply; used
 * by the generated caller stubs.  On HP_RPC_OK *reply is the reply's JSON
 * and *arena the arena it lives in (the calling task's: freed when the task
 * ends).  Must be called from a task (a handler, init, or hp_task_spawn).
 * The task waits; the process goes on handling other messages meanwhile;
 * the task resumes exactly once, with the reply, a timeout, an offline
 * error or a cancel (hp_task_cancel).  A reply arriving after that is
 * discarded.  An error reply of a hyperc process ({"HypercError":...})
 * gives HP_RPC_REJECTED with its kind and message. */
hp_rpc_error hp_rpc_call(const hw_address *target, const char *body, size_t len,
                         const hp_rpc_opts *opts, hp_arena **arena,
                         const hp_jv **reply);

/* One call of a fan-out: fill target and body; hp_rpc_fanout sets err and
 * reply (in the calling task's arena). */
typedef struct hp_rpc_call_spec {
    const hw_address *target;
    const char *body;
    size_t len;
    /* optional: bytes of the caller's own that travel in the request's
     * context (after the runtime's correlation id) and come back */
    const uint8_t *context;
    size_t context_len;
    /* optional: a blob sent with the request */
    const uint8_t *blob;
    size_t blob_len;
    const char *blob_mime;
    /* out */
    hp_rpc_error err;
    const hp_jv *reply;
    hw_bytes context_back; /* the caller's context bytes, from the reply
                              (task's arena; empty if none) */
    hw_bytes blob_back;    /* the reply's blob (task's arena; empty if none) */
} hp_rpc_call_spec;

/* Send every call, then wait until each has its own outcome (a reply, a
 * timeout, offline, a cancel).  From a task only; calls[i].err is
 * HP_RPC_BUILD for the calls that could not be sent. */
void hp_rpc_fanout(hp_rpc_call_spec *calls, size_t n, const hp_rpc_opts *opts);

/* ------------------------------------------------------------------- HTTP */

/* The HTTP request the current task answers (an HP_HTTP handler called
 * through http-server:distro:sys); NULL or false outside one.  Strings live
 * in the task's arena.  The path is the URL's path without the process id
 * segment ("/api/count"). */
bool hp_http_is_request(void);
const char *hp_http_method(void);
const char *hp_http_path(void);
/* A request header (the name compared without case), or NULL. */
const char *hp_http_header(const char *name);
/* A query parameter (URL-decoded), or NULL. */
const char *hp_http_query(const char *name);
/* The answer's status (default 200) and headers (Content-Type defaults to
 * application/json).  Copied; no effect outside an HTTP request. */
void hp_http_set_status(uint16_t status);
void hp_http_set_header(const char *name, const char *value);

/* ------------------------------------------------------------- WebSockets */

/* The binding path of the current HP_WS event ("/ws"), or NULL. */
const char *hp_ws_path(void);
/* Send to one client channel of this process's WebSocket bindings; false if
 * it could not be sent (the node answers WsChannelNotFound for a channel
 * that is not ours; that comes later and is logged). */
bool hp_ws_push(uint32_t channel_id, hp_ws_message_type type, const void *data,
                size_t len);
/* Send to every open channel of `path` (NULL: of every path); returns how
 * many. */
size_t hp_ws_broadcast(const char *path, hp_ws_message_type type,
                       const void *data, size_t len);
/* Close a channel. */
bool hp_ws_close(uint32_t channel_id);
/* The open channels of the WebSocket binding `path` ("/ws"; NULL: of every
 * binding), in the order they opened (Rust's get_server() channel list):
 * up to max ids into out; returns how many there are (more than max when
 * out was too small).  A channel is open from its HP_WS_OPEN event until
 * its close. */
size_t hp_ws_channels(const char *path, uint32_t *out, size_t max);

/* Bind and unbind paths at run time, as the endpoints of HYPERPROCESS are
 * bound at start (paths relative to the process: "/extra").  cfg NULL is
 * Rust's default (authenticated, not local-only); a given config is taken
 * as written.  From a task: each waits for http-server's answer and
 * returns HP_RPC_OK, HP_RPC_REJECTED with its refusal, or the call's
 * error.  HTTP requests on a bound path reach the HP_HTTP handlers,
 * WebSocket events the HP_WS handler. */
struct hp_http_config;
struct hp_ws_config;
hp_rpc_error hp_http_bind(const char *path, const struct hp_http_config *cfg);
hp_rpc_error hp_http_unbind(const char *path);
hp_rpc_error hp_ws_bind(const char *path, const struct hp_ws_config *cfg);
hp_rpc_error hp_ws_unbind(const char *path);

/* Outgoing WebSockets through http-client:distro:sys (the process needs
 * its messaging capability).  Open connects to url (ws:// or wss://) as
 * channel_id, the caller's choice, with headers (NULL, or name/value
 * pairs ending with NULL); the channel's frames and its close reach the
 * HP_WS_CLIENT handler.  Push sends a frame, close ends the connection.
 * From a task: each waits for http-client's answer and returns HP_RPC_OK,
 * HP_RPC_REJECTED with http-client's error ({"WsOpenFailed":...}, an
 * unknown channel), or the call's error (HP_RPC_BUILD: a URL or header
 * that is not UTF-8). */
hp_rpc_error hp_ws_client_open(const char *url, const char *const *headers,
                               uint32_t channel_id);
hp_rpc_error hp_ws_client_push(uint32_t channel_id, hp_ws_message_type type,
                               const void *data, size_t len);
hp_rpc_error hp_ws_client_close(uint32_t channel_id);

/* ------------------------------------------------------------------ tasks */

/* Every handler and init runs as a task: a coroutine on the process's one
 * thread that runs uninterrupted until it waits (hp_rpc_call and the stubs,
 * hp_rpc_fanout, hp_sleep_ms, hp_task_join); while it waits, other messages
 * are handled.  Each task has its own message arena and its own
 * hp_source(), and answers its own request whatever happened meanwhile. */
typedef struct hp_task hp_task;

/* The task running now (NULL outside tasks). */
hp_task *hp_task_current(void);

/* Start fn(arg) as a new task; it first runs when the current task waits or
 * ends.  Returns NULL when the task limit is reached or memory is out.  The
 * handle stays valid until hp_task_join or hp_task_detach; exactly one of
 * them must be called. */
hp_task *hp_task_spawn(void (*fn)(void *arg), void *arg);
/* Wait (from a task) until t has finished, then free it. */
void hp_task_join(hp_task *t);
/* Let t free itself when it finishes. */
void hp_task_detach(hp_task *t);

/* End t's current wait now: its pending calls (or sleep) end with
 * HP_RPC_CANCELLED, and their replies, if they come, are discarded.
 * Returns whether t was waiting on calls or a sleep. */
bool hp_task_cancel(hp_task *t);

/* Wait `ms` milliseconds (timer:distro:sys) from a task; HP_RPC_OK, or
 * HP_RPC_CANCELLED, or HP_RPC_TIMEOUT if the timer did not answer within
 * 60 s after the time. */
hp_rpc_error hp_sleep_ms(uint64_t ms);

/* --------------------------------------------------- for generated code */

/* Where a request came from, for the per-variant source rules of
 * framework.md: local callers reach local and remote handlers, other nodes
 * remote ones, http-server the http ones. */
enum {
    HP_FROM_LOCAL = 1u << 0,
    HP_FROM_REMOTE = 1u << 1,
    HP_FROM_HTTP = 1u << 2,
};

/* Why a request was refused: the kind in the error reply
 * {"HypercError":{"kind":...,"message":...}}, one table of kinds, their
 * names (hp_refusal_name) and the HTTP status an answer to an HTTP request
 * carries with it (hp_refusal_http_status; the node's http-server passes a
 * process's error reply on with the same status).  BUSY: the task limit is
 * reached.  NOT_FOUND and METHOD_NOT_ALLOWED: an HTTP request that no
 * handler's path or method takes. */
#define HP_REFUSAL_MAP(XX)                                                     \
    XX(OK, "Ok", 200)                                                          \
    XX(BAD_JSON, "BadJson", 400)                                               \
    XX(UNKNOWN_VARIANT, "UnknownVariant", 400)                                 \
    XX(FORBIDDEN, "Forbidden", 403)                                            \
    XX(BAD_ARGUMENTS, "BadArguments", 400)                                     \
    XX(HANDLER_FAILED, "HandlerFailed", 500)                                   \
    XX(BUSY, "Busy", 503)                                                      \
    XX(NOT_FOUND, "NotFound", 404)                                             \
    XX(METHOD_NOT_ALLOWED, "MethodNotAllowed", 405)

typedef enum hp_refusal {
#define HP_REFUSAL_ENUM(name, text, status) HP_REFUSAL_##name,
    HP_REFUSAL_MAP(HP_REFUSAL_ENUM)
#undef HP_REFUSAL_ENUM
} hp_refusal;

/* The kind's name as written in error replies ("BadJson", ...). */
const char *hp_refusal_name(hp_refusal r);
/* The HTTP status of an answer that refuses with kind r (400 for a value
 * outside the table). */
unsigned hp_refusal_http_status(hp_refusal r);

/* One request variant.  `call` decodes `args` (NULL when the request was
 * the bare string "Variant"), calls the handler and writes its result to
 * `out`; on failure it returns HP_REFUSAL_BAD_ARGUMENTS or
 * HP_REFUSAL_HANDLER_FAILED with *err set (arena or static text). */
typedef struct hp_variant {
    const char *name;
    unsigned sources; /* HP_FROM_* bits */
    hp_refusal (*call)(hp_arena *a, void *state, const hp_jv *args, hp_jw *out,
                       const char **err);
    /* HTTP: the method and path of its HP_HTTP markers (NULL: none), its
     * parameter names and whether each takes query text as it is (strings,
     * addresses, enums), and its place in the source (first match wins) */
    const char *http_method;
    const char *http_path;
    const char *const *param_names;
    const bool *param_text;
    size_t nparams;
    size_t order;
} hp_variant;

/* The generated part of a hyperprocess.  `decl` is the app's
 * HYPERPROCESS(...) object.  The state functions are generated codecs:
 * state_decode allocates in the arena; state_clone deep-copies onto the
 * heap (returns nonzero when out of memory); state_free frees what a clone
 * allocated.  `migrate`, when the app declares one, converts a stored state
 * of another version (`stored` = its JSON, NULL if the bytes were not JSON;
 * version 0 = no version recorded) into `out`, allocating in `a`; it
 * returns false with *why set to refuse. */
typedef struct hp_process_impl {
    const hp_process_decl *decl;
    const char *state_type;
    size_t state_size;
    void *state; /* static storage of state_size bytes */
    int (*state_encode)(hp_jw *w, const void *s);
    int (*state_decode)(hp_arena *a, const hp_jv *j, void *out,
                        const char **err);
    int (*state_clone)(void *dst, const void *src);
    void (*state_free)(void *s);
    bool (*migrate)(hp_arena *a, uint32_t from_version, const hp_jv *stored,
                    void *out, const char **why);
    void (*init)(void *state);
    const hp_variant *variants; /* sorted by name */
    size_t variants_len;
    void (*ws)(void *state, uint32_t channel_id, hp_ws_message_type type,
               const hw_blob *blob);
    void (*ws_client)(void *state, uint32_t channel_id, hp_ws_message_type type,
                      const hw_blob *blob);
    /* &hp__http_runtime when the process serves HTTP or WebSocket (an
     * endpoint, the UI, a homepage tile, an HP_HTTP handler, an HP_WS
     * handler); NULL otherwise, and then the HTTP part of the runtime is
     * not linked into the process unless it calls hp_http_bind or
     * hp_ws_bind itself. */
    const struct hp__http_runtime *http;
} hp_process_impl;

/* The HTTP part of the runtime (serving http-server's requests and
 * WebSocket events, binding the paths), for hp_process_impl.http only. */
extern const struct hp__http_runtime hp__http_runtime;

/* The process's life, called by the generated hw_init; returns only when the
 * process must not run (a stored state that does not decode), after setting
 * on-exit None.  Steps: load the state (or migrate it), logging, the user's
 * init, then the request loop, saving by the declared policy. */
void hp_process_main(const hp_process_impl *impl);

/* Handle one request body as the request loop does, without the ABI: for
 * tests and fuzzers.  Writes the reply (the result or an error object) to
 * `out`; returns the refusal kind. */
hp_refusal hp_process_dispatch(const hp_process_impl *impl, hp_arena *a,
                               unsigned source, const char *body, size_t len,
                               hp_jw *out);

#endif
