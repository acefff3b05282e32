/* hyperc process ABI: a C mirror of interface `standard` of
 * hyperware:process@1.0.0, the only door between a process (guest) and the
 * node (host).
 *
 * Every WIT type of the interface has a C type here and every WIT function a
 * C function, named `hw_` + the WIT name with '-' turned into '_'.  Guest code
 * calls nothing else of the host: no node globals, no threads of the node, no
 * sockets or files of the node.  The same process source can therefore run in
 * hyperc's native node (a shared object loaded by the node), later in an
 * isolated worker, and compiled to wasm32 on a real Hyperware node.
 *
 * Conventions for every declaration below:
 *  - Strings are UTF-8 and NUL-terminated.  An optional string is a pointer
 *    that may be NULL (= none).
 *  - Byte lists are hw_bytes {ptr, len}.  Those the host writes always have
 *    a non-NULL ptr, even when len is 0; those given to the host may be
 *    {NULL, 0}.
 *  - Inputs (const pointers) stay owned by the caller.  The host copies what
 *    it keeps before the call returns, so the caller may free or reuse the
 *    memory right after.
 *  - Outputs are written into a caller-provided struct and are owned by the
 *    caller afterwards: release them with the matching hw_*_fini() function,
 *    exactly once.  An output is only written (and only needs fini) when the
 *    function reports success; on failure the struct is left zeroed.
 *  - All functions are called from the process's own single thread (a
 *    process is single-threaded from its own point of view).  Only
 *    hw_receive() and hw_send_and_await_response() block, plus the state
 *    functions, which wait for the state module (at most 5 s).
 *  - When the node stops a process (node shutdown, kill) while it is blocked
 *    in a host call, that call does not return: the process's stack is
 *    discarded, as a wasm instance is dropped.  Do not rely on code after a
 *    blocking call to release resources at shutdown.
 *
 * Where Hyperware traps the guest on a host error (set-state failing,
 * send-and-await-response without expects-response), hyperc returns an error
 * code instead; these places are marked "Deviation".
 *
 * The process's entry point is hw_init() (the WIT export `init`), which the
 * process defines and the node calls once the process is run.  The process
 * lives as long as hw_init() runs. */
#ifndef HYPERC_ABI_H
#define HYPERC_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version of this header's native binding; the node refuses a process built
 * against another major version. */
#define HW_ABI_VERSION 1

/* ------------------------------------------------------------------ types */

/* list<u8> */
typedef struct hw_bytes {
    uint8_t *ptr;
    size_t len;
} hw_bytes;

/* process-id: process-name:package-name:publisher-node */
typedef struct hw_process_id {
    char *process_name;
    char *package_name;
    char *publisher_node;
} hw_process_id;

/* package-id: package-name:publisher-node */
typedef struct hw_package_id {
    char *package_name;
    char *publisher_node;
} hw_package_id;

/* address: node@process-id.  The node "our" names the local node. */
typedef struct hw_address {
    char *node;
    hw_process_id process;
} hw_address;

/* lazy-load-blob: bytes that travel beside a message body. */
typedef struct hw_blob {
    char *mime; /* option<string>: NULL = none */
    hw_bytes bytes;
} hw_blob;

/* capability: issuer + params, a JSON text ("\"messaging\"" for messaging). */
typedef struct hw_capability {
    hw_address issuer;
    char *params;
} hw_capability;

/* list<capability> */
typedef struct hw_capability_list {
    hw_capability *ptr;
    size_t len;
} hw_capability_list;

/* request */
typedef struct hw_request {
    bool inherit;
    /* option<u64> expects-response, in seconds */
    bool has_expects_response;
    uint64_t expects_response;
    hw_bytes body;
    char *metadata; /* option<json>: NULL = none */
    hw_capability_list capabilities;
} hw_request;

/* response */
typedef struct hw_response {
    bool inherit;
    hw_bytes body;
    char *metadata; /* option<json>: NULL = none */
    hw_capability_list capabilities;
} hw_response;

typedef enum hw_message_kind {
    HW_MESSAGE_REQUEST = 0,
    HW_MESSAGE_RESPONSE = 1,
} hw_message_kind;

/* message: request(request) | response(tuple<response, option<context>>).
 * `context` is only meaningful for responses: the context the process gave
 * when it sent the request this response answers. */
typedef struct hw_message {
    hw_message_kind kind;
    hw_request request;   /* valid when kind == HW_MESSAGE_REQUEST */
    hw_response response; /* valid when kind == HW_MESSAGE_RESPONSE */
    bool has_context;
    hw_bytes context;
} hw_message;

/* tuple<address, request, option<lazy-load-blob>>, used by on-exit and
 * send-requests. */
typedef struct hw_outgoing_request {
    hw_address target;
    hw_request request;
    bool has_context; /* send-requests only; ignored by on-exit */
    hw_bytes context;
    bool has_blob;
    hw_blob blob;
} hw_outgoing_request;

typedef enum hw_on_exit_kind {
    HW_ON_EXIT_NONE = 0,
    HW_ON_EXIT_RESTART = 1,
    HW_ON_EXIT_REQUESTS = 2,
} hw_on_exit_kind;

/* on-exit: none | restart | requests(list<tuple<address, request,
 * option<lazy-load-blob>>>) */
typedef struct hw_on_exit {
    hw_on_exit_kind kind;
    hw_outgoing_request *requests; /* kind == HW_ON_EXIT_REQUESTS */
    size_t requests_len;
} hw_on_exit;

typedef enum hw_send_error_kind {
    HW_SEND_ERROR_OFFLINE = 0,
    HW_SEND_ERROR_TIMEOUT = 1,
} hw_send_error_kind;

/* send-error: the request that failed, as it was sent, with its blob. */
typedef struct hw_send_error {
    hw_send_error_kind kind;
    hw_address target;
    hw_message message;
    bool has_blob;
    hw_blob blob;
} hw_send_error;

typedef enum hw_spawn_error {
    HW_SPAWN_OK = 0,
    HW_SPAWN_NAME_TAKEN = 1,
    HW_SPAWN_NO_FILE_AT_PATH = 2,
} hw_spawn_error;

/* Result of receive(): result<tuple<address, message>,
 * tuple<send-error, option<context>>>.  On error, `error.message` is the
 * request that failed and `context` the context given when sending it. */
typedef struct hw_receive_result {
    bool is_err;
    /* ok */
    hw_address source;
    hw_message message;
    /* err */
    hw_send_error error;
    bool has_context;
    hw_bytes context;
} hw_receive_result;

/* Result of send-and-await-response: result<tuple<address, message>,
 * send-error>. */
typedef struct hw_await_result {
    bool is_err;
    hw_address source;   /* ok */
    hw_message message;  /* ok */
    hw_send_error error; /* err */
} hw_await_result;

/* -------------------------------------------------------- the export */

/* Defined by the process: its whole life.  `our` is the process's address as
 * a string (node@process:package:publisher), owned by the host and valid
 * until hw_init returns.  Returning ends the process; its on-exit setting
 * then applies. */
void hw_init(const char *our);

/* ------------------------------------------------------------ imports */

/* print-to-terminal: a printout at `verbosity` (0 always shown, 1 debug,
 * 2 super-debug, 3 event loop).  The node prefixes it with the process's
 * package and publisher, shows it if the level allows, and always writes it
 * to the node's log file.  Does not block on a slow terminal for long. */
void hw_print_to_terminal(uint8_t verbosity, const char *message);

/* our: this process's address.  Writes *out; caller owns it
 * (hw_address_fini). */
void hw_our(hw_address *out);

/* get-on-exit: the current on-exit setting.  Caller owns *out
 * (hw_on_exit_fini). */
void hw_get_on_exit(hw_on_exit *out);

/* set-on-exit: replace the on-exit setting; the node copies it. */
void hw_set_on_exit(const hw_on_exit *on_exit);

/* get-state: the state stored for this process.  Returns true and writes
 * *out (caller owns it: hw_bytes_fini) when there is state; false when there
 * is none or the state module did not answer within 5 s.
 * Unlike Hyperware, the current message's blob is left as it was. */
bool hw_get_state(hw_bytes *out);

/* set-state: store `bytes` as this process's whole state (copied).
 * Deviation: returns false when the state module failed or did not answer
 * within 5 s, where Hyperware traps. */
bool hw_set_state(const uint8_t *bytes, size_t len);

/* clear-state: delete this process's state.  Deviation: returns false on
 * failure instead of trapping. */
bool hw_clear_state(void);

/* spawn: start a new process from a shared object of this process's package
 * (`wasm_path`, relative to the package's pkg/ folder).  The child is named
 * `name` (or a random u64 when NULL) in this process's package.
 * request_capabilities are kept only where this process holds them;
 * each grant gives the named process a capability issued by the child with
 * the given params.  On HW_SPAWN_OK writes the child's id to *out (caller
 * owns it: hw_process_id_fini).  Inputs stay owned by the caller. */
hw_spawn_error hw_spawn(const char *name, const char *wasm_path,
                        const hw_on_exit *on_exit,
                        const hw_capability *request_capabilities,
                        size_t request_capabilities_len,
                        const hw_process_id *grant_processes,
                        const char *const *grant_params, size_t grants_len,
                        bool public_, hw_process_id *out);

/* save-capabilities: keep capabilities this process was sent.  Unlike
 * Hyperware, only capabilities that arrived attached to a message this
 * process received, or that it issued itself, are saved; others are ignored
 * with a printout. */
void hw_save_capabilities(const hw_capability *caps, size_t len);

/* drop-capabilities: give up these capabilities. */
void hw_drop_capabilities(const hw_capability *caps, size_t len);

/* our-capabilities: every capability this process holds.  Caller owns *out
 * (hw_capability_list_fini). */
void hw_our_capabilities(hw_capability_list *out);

/* receive: block until the next message, or until a request this process
 * sent with expects-response times out or fails.  Caller owns *out
 * (hw_receive_result_fini).  Responses and errors for requests this process
 * is not waiting for (late, or never expected) are dropped before they get
 * here. */
void hw_receive(hw_receive_result *out);

/* has-blob: whether the message last received carried a blob. */
bool hw_has_blob(void);

/* get-blob: the blob of the message last received.  Returns true and writes
 * *out (caller owns it: hw_blob_fini) if it had one. */
bool hw_get_blob(hw_blob *out);

/* last-blob: the most recent blob received by this process, from whichever
 * message.  Returns true and writes *out (hw_blob_fini) if there is one. */
bool hw_last_blob(hw_blob *out);

/* send-request: send `request` to `target`, fire and forget unless
 * request->has_expects_response.  With expects-response, exactly one of a
 * response or a send-error for it later comes out of hw_receive() (given
 * back with `context`, which may be NULL), unless the process exits first.
 * With inherit, the request reuses the current message's id and rsvp (its
 * response goes to whoever is waiting for the current message) and, when
 * `blob` is NULL, carries the last blob.  A failure to deliver (unknown
 * target, missing capability, full mailbox) comes back as a send-error of
 * kind timeout, at once.  All inputs stay owned by the caller. */
void hw_send_request(const hw_address *target, const hw_request *request,
                     const hw_bytes *context, const hw_blob *blob);

/* send-requests: hw_send_request for each element, in order. */
void hw_send_requests(const hw_outgoing_request *requests, size_t len);

/* send-response: answer the current prompting message (the last request
 * received that expected a response or carried an rsvp, or the request whose
 * response was just received).  With inherit, the last blob is attached and
 * `blob` is ignored.  With no prompting message the response is dropped with
 * a printout.  Inputs stay owned by the caller. */
void hw_send_response(const hw_response *response, const hw_blob *blob);

/* send-and-await-response: send a request and block until its response or
 * error.  Other messages arriving meanwhile are kept, in order, for later
 * hw_receive() calls.  Returns 0 and writes *out (caller owns it:
 * hw_await_result_fini) when a response or send-error was obtained.
 * Deviation: returns -1 without sending, leaving *out zeroed, when the request
 * has no expects-response or targets this process itself (Hyperware traps). */
int hw_send_and_await_response(const hw_address *target,
                               const hw_request *request, const hw_blob *blob,
                               hw_await_result *out);

/* ------------------------------------------------ releasing outputs */

/* Each releases what the host wrote into the struct and zeroes it.  Safe on
 * a zeroed struct. */
void hw_bytes_fini(hw_bytes *b);
void hw_process_id_fini(hw_process_id *p);
void hw_address_fini(hw_address *a);
void hw_blob_fini(hw_blob *b);
void hw_capability_list_fini(hw_capability_list *l);
void hw_message_fini(hw_message *m);
void hw_on_exit_fini(hw_on_exit *o);
void hw_send_error_fini(hw_send_error *e);
void hw_receive_result_fini(hw_receive_result *r);
void hw_await_result_fini(hw_await_result *r);

/* ------------------------------------------------ convenience */

/* Parse "node@process:package:publisher" into *out (caller owns it:
 * hw_address_fini).  Returns 0, or -1 with *out untouched if the string is
 * not a valid address.  Pure guest-side helper; calls no host function. */
int hw_address_parse(const char *s, hw_address *out);

/* Format an address as "node@process:package:publisher" into buf (size n,
 * always NUL-terminated).  Returns the length the full string needs. */
size_t hw_address_format(const hw_address *a, char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* HYPERC_ABI_H */
