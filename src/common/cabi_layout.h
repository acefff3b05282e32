/* The canonical ABI's memory layouts (wasm32) of the types of interface
 * `standard` that its imports carry, as byte offsets: one table for
 * both sides of the conversion.  The guest's binding (src/guest/abi_wasm.c,
 * built for wasm32) checks its cw_* structs against it with static
 * assertions; the wasm host's side (src/wasm/cabi.c, built natively,
 * 64-bit) reads and writes a component's linear memory at these offsets,
 * never through C pointers.  docs/wasm.md has the same table.
 *
 * Every offset is from the start of the value; a string or list is a u32
 * pointer then a u32 length, an option a u8 tag (0 none, 1 some) then its
 * value, a variant a u8 tag then its payload. */
#ifndef HYPERC_COMMON_CABI_LAYOUT_H
#define HYPERC_COMMON_CABI_LAYOUT_H

/* string, list<T>: (ptr, len) */
#define CW_LIST_SIZE 8u
#define CW_LIST_PTR 0u
#define CW_LIST_LEN 4u

/* process-id: three strings */
#define CW_PID_SIZE 24u
#define CW_PID_NAME 0u
#define CW_PID_PACKAGE 8u
#define CW_PID_PUBLISHER 16u

/* address: node, process-id */
#define CW_ADDR_SIZE 32u
#define CW_ADDR_NODE 0u
#define CW_ADDR_PROCESS 8u

/* option<string>, option<list<u8>> */
#define CW_OPT_LIST_SIZE 12u
#define CW_OPT_LIST_VAL 4u

/* lazy-load-blob: mime option<string>, bytes */
#define CW_BLOB_SIZE 20u
#define CW_BLOB_MIME 0u
#define CW_BLOB_BYTES 12u

/* option<lazy-load-blob> */
#define CW_OPT_BLOB_SIZE 24u
#define CW_OPT_BLOB_VAL 4u

/* capability: issuer address, params string (elements of a list, align 4) */
#define CW_CAP_SIZE 40u
#define CW_CAP_ALIGN 4u
#define CW_CAP_ISSUER 0u
#define CW_CAP_PARAMS 32u

/* option<u64> (align 8) */
#define CW_OPT_U64_SIZE 16u
#define CW_OPT_U64_VAL 8u

/* request (align 8) */
#define CW_REQUEST_SIZE 56u
#define CW_REQUEST_INHERIT 0u
#define CW_REQUEST_EXPECTS 8u
#define CW_REQUEST_BODY 24u
#define CW_REQUEST_METADATA 32u
#define CW_REQUEST_CAPS 44u

/* response */
#define CW_RESPONSE_SIZE 32u
#define CW_RESPONSE_INHERIT 0u
#define CW_RESPONSE_BODY 4u
#define CW_RESPONSE_METADATA 12u
#define CW_RESPONSE_CAPS 24u

/* message (align 8): kind (0 request, 1 response), payload; a response's
 * payload is the response then its option<context> */
#define CW_MESSAGE_SIZE 64u
#define CW_MESSAGE_PAYLOAD 8u
#define CW_MESSAGE_CONTEXT (CW_MESSAGE_PAYLOAD + CW_RESPONSE_SIZE)

/* send-error (align 8): kind (0 offline, 1 timeout), target, message,
 * option<lazy-load-blob> */
#define CW_SEND_ERROR_SIZE 128u
#define CW_SEND_ERROR_TARGET 4u
#define CW_SEND_ERROR_MESSAGE 40u
#define CW_SEND_ERROR_BLOB 104u

/* tuple<address, message>: the ok payload of receive and
 * send-and-await-response */
#define CW_SOURCE_MESSAGE_MESSAGE 32u

/* receive's result<tuple<address, message>, tuple<send-error,
 * option<context>>> and send-and-await-response's result<tuple<address,
 * message>, send-error> (align 8): is-err, payload */
#define CW_RESULT_PAYLOAD 8u
#define CW_RECEIVE_RESULT_SIZE 152u
#define CW_RECEIVE_ERR_CONTEXT (CW_RESULT_PAYLOAD + CW_SEND_ERROR_SIZE)
#define CW_AWAIT_RESULT_SIZE 136u

/* send-request's parameters, passed by pointer (more than 16 flat values),
 * and send-requests' elements (align 8): target, request, option<context>,
 * option<lazy-load-blob> */
#define CW_SEND_PARAMS_SIZE 128u
#define CW_SEND_PARAMS_TARGET 0u
#define CW_SEND_PARAMS_REQUEST 32u
#define CW_SEND_PARAMS_CONTEXT 88u
#define CW_SEND_PARAMS_BLOB 100u

/* send-and-await-response's parameters (align 8): target, request,
 * option<lazy-load-blob> */
#define CW_AWAIT_PARAMS_SIZE 112u
#define CW_AWAIT_PARAMS_TARGET 0u
#define CW_AWAIT_PARAMS_REQUEST 32u
#define CW_AWAIT_PARAMS_BLOB 88u

/* tuple<address, request, option<lazy-load-blob>>: the elements of
 * on-exit's `requests` (align 8) */
#define CW_EXIT_REQUEST_SIZE 112u
#define CW_EXIT_REQUEST_ALIGN 8u
#define CW_EXIT_REQUEST_TARGET 0u
#define CW_EXIT_REQUEST_REQUEST 32u
#define CW_EXIT_REQUEST_BLOB 88u

/* on-exit: kind (0 none, 1 restart, 2 requests), its list of exit
 * requests */
#define CW_ON_EXIT_SIZE 12u
#define CW_ON_EXIT_REQUESTS 4u

/* tuple<process-id, string>: spawn's grant-capabilities (align 4) */
#define CW_GRANT_SIZE 32u
#define CW_GRANT_PROCESS 0u
#define CW_GRANT_PARAMS 24u

/* spawn's result<process-id, spawn-error>: is-err, then the process-id or
 * the spawn-error (a u8: 0 name-taken, 1 no-file-at-path) */
#define CW_SPAWN_RESULT_SIZE 28u
#define CW_SPAWN_RESULT_PAYLOAD 4u

#endif
