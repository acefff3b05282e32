/* Guest side of the wasm32 ABI binding: every hw_* function of
 * include/hyperc/abi.h over the component imports of interface `standard`
 * of hyperware:process@1.0.0 (src/wasm/hyperware.wit), in the component
 * model's canonical ABI, and the exports `init` and `cabi_realloc`.
 *
 * The canonical ABI passes a function's parameters as flat core values
 * (strings and lists as pointer + length, options and variants as a
 * discriminant then the joined payload), or, when there are more than 16, as
 * one pointer to a tuple in memory; a result of more than one core value is
 * written by the host into memory the caller gives (a "return pointer").
 * The cw_* structs below are those memory layouts: on wasm32 C's own layout
 * rules give the canonical ABI's sizes and offsets, and each is pinned by a
 * static assertion (docs/wasm.md has the table).
 *
 * Memory the host hands over (the strings and lists of a result) is
 * allocated through our cabi_realloc, which is malloc: the hw_* outputs take
 * those blocks over where the layouts agree (byte lists), and copy where C
 * needs another shape (NUL-terminated strings, one-block addresses).
 *
 * What the native binding has beyond the ABI (host_ext.h: prompting
 * handles, the started signal, a save that does not block) has no import in
 * the component world: here each says "the host cannot", and the runtime
 * does without (as on a Hyperware node). */
#include "../common/abi_types.h"
#include "../common/cabi_layout.h"
#include "coro.h"
#include "host_ext.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__wasm32__)
#error "abi_wasm.c is the wasm32 binding; native builds use abi_native.c"
#endif

/* ------------------------------------------------- canonical layouts */

typedef struct cw_list {
    void *ptr;
    size_t len;
} cw_list; /* string, list<T> */
typedef struct cw_pid {
    cw_list process_name, package_name, publisher_node;
} cw_pid;
typedef struct cw_addr {
    cw_list node;
    cw_pid process;
} cw_addr;
typedef struct cw_opt_list {
    uint8_t some;
    cw_list val;
} cw_opt_list; /* option<string>, option<list<u8>> */
typedef struct cw_blob {
    cw_opt_list mime;
    cw_list bytes;
} cw_blob;
typedef struct cw_opt_blob {
    uint8_t some;
    cw_blob blob;
} cw_opt_blob;
typedef struct cw_cap {
    cw_addr issuer;
    cw_list params;
} cw_cap;
typedef struct cw_opt_u64 {
    uint8_t some;
    uint64_t val;
} cw_opt_u64;
typedef struct cw_request {
    uint8_t inherit;
    cw_opt_u64 expects_response;
    cw_list body;
    cw_opt_list metadata;
    cw_list capabilities; /* of cw_cap */
} cw_request;
typedef struct cw_response {
    uint8_t inherit;
    cw_list body;
    cw_opt_list metadata;
    cw_list capabilities;
} cw_response;
typedef struct cw_message {
    uint8_t kind; /* 0 request, 1 response */
    union {
        cw_request request;
        struct {
            cw_response response;
            cw_opt_list context;
        } response;
    } u;
} cw_message;
typedef struct cw_send_error {
    uint8_t kind; /* 0 offline, 1 timeout */
    cw_addr target;
    cw_message message;
    cw_opt_blob blob;
} cw_send_error;
typedef struct cw_source_message {
    cw_addr source;
    cw_message message;
} cw_source_message;
typedef struct cw_receive_result {
    uint8_t is_err;
    union {
        cw_source_message ok;
        struct {
            cw_send_error error;
            cw_opt_list context;
        } err;
    } u;
} cw_receive_result;
typedef struct cw_await_result {
    uint8_t is_err;
    union {
        cw_source_message ok;
        cw_send_error err;
    } u;
} cw_await_result;
typedef struct cw_exit_request { /* tuple<address, request, option<blob>> */
    cw_addr target;
    cw_request request;
    cw_opt_blob blob;
} cw_exit_request;
typedef struct cw_on_exit {
    uint8_t kind;     /* 0 none, 1 restart, 2 requests */
    cw_list requests; /* of cw_exit_request */
} cw_on_exit;
typedef struct cw_send_params { /* send-request's parameters; send-requests'
                                   elements */
    cw_addr target;
    cw_request request;
    cw_opt_list context;
    cw_opt_blob blob;
} cw_send_params;
typedef struct cw_await_params {
    cw_addr target;
    cw_request request;
    cw_opt_blob blob;
} cw_await_params;
typedef struct cw_grant {
    cw_pid process;
    cw_list params;
} cw_grant;
typedef struct cw_spawn_result {
    uint8_t is_err;
    union {
        cw_pid ok;
        uint8_t err; /* 0 name-taken, 1 no-file-at-path */
    } u;
} cw_spawn_result;

/* Each layout against the table the host's side shares (cabi_layout.h). */
#define CW_LAYOUT(T, size, align)                                              \
    _Static_assert(sizeof(T) == (size) && alignof(T) == (align),               \
                   #T " has the canonical ABI's layout")
#define CW_AT(T, field, off)                                                   \
    _Static_assert(offsetof(T, field) == (off),                                \
                   #T "." #field " at its canonical offset")
CW_LAYOUT(cw_list, CW_LIST_SIZE, 4);
CW_AT(cw_list, ptr, CW_LIST_PTR);
CW_AT(cw_list, len, CW_LIST_LEN);
CW_LAYOUT(cw_pid, CW_PID_SIZE, 4);
CW_AT(cw_pid, process_name, CW_PID_NAME);
CW_AT(cw_pid, package_name, CW_PID_PACKAGE);
CW_AT(cw_pid, publisher_node, CW_PID_PUBLISHER);
CW_LAYOUT(cw_addr, CW_ADDR_SIZE, 4);
CW_AT(cw_addr, node, CW_ADDR_NODE);
CW_AT(cw_addr, process, CW_ADDR_PROCESS);
CW_LAYOUT(cw_opt_list, CW_OPT_LIST_SIZE, 4);
CW_AT(cw_opt_list, val, CW_OPT_LIST_VAL);
CW_LAYOUT(cw_blob, CW_BLOB_SIZE, 4);
CW_AT(cw_blob, mime, CW_BLOB_MIME);
CW_AT(cw_blob, bytes, CW_BLOB_BYTES);
CW_LAYOUT(cw_opt_blob, CW_OPT_BLOB_SIZE, 4);
CW_AT(cw_opt_blob, blob, CW_OPT_BLOB_VAL);
CW_LAYOUT(cw_cap, CW_CAP_SIZE, CW_CAP_ALIGN);
CW_AT(cw_cap, issuer, CW_CAP_ISSUER);
CW_AT(cw_cap, params, CW_CAP_PARAMS);
CW_LAYOUT(cw_opt_u64, CW_OPT_U64_SIZE, 8);
CW_AT(cw_opt_u64, val, CW_OPT_U64_VAL);
CW_LAYOUT(cw_request, CW_REQUEST_SIZE, 8);
CW_AT(cw_request, inherit, CW_REQUEST_INHERIT);
CW_AT(cw_request, expects_response, CW_REQUEST_EXPECTS);
CW_AT(cw_request, body, CW_REQUEST_BODY);
CW_AT(cw_request, metadata, CW_REQUEST_METADATA);
CW_AT(cw_request, capabilities, CW_REQUEST_CAPS);
CW_LAYOUT(cw_response, CW_RESPONSE_SIZE, 4);
CW_AT(cw_response, inherit, CW_RESPONSE_INHERIT);
CW_AT(cw_response, body, CW_RESPONSE_BODY);
CW_AT(cw_response, metadata, CW_RESPONSE_METADATA);
CW_AT(cw_response, capabilities, CW_RESPONSE_CAPS);
CW_LAYOUT(cw_message, CW_MESSAGE_SIZE, 8);
CW_AT(cw_message, u, CW_MESSAGE_PAYLOAD);
CW_AT(cw_message, u.response.context, CW_MESSAGE_CONTEXT);
CW_LAYOUT(cw_send_error, CW_SEND_ERROR_SIZE, 8);
CW_AT(cw_send_error, target, CW_SEND_ERROR_TARGET);
CW_AT(cw_send_error, message, CW_SEND_ERROR_MESSAGE);
CW_AT(cw_send_error, blob, CW_SEND_ERROR_BLOB);
CW_AT(cw_source_message, message, CW_SOURCE_MESSAGE_MESSAGE);
CW_LAYOUT(cw_receive_result, CW_RECEIVE_RESULT_SIZE, 8);
CW_AT(cw_receive_result, u, CW_RESULT_PAYLOAD);
CW_AT(cw_receive_result, u.err.context, CW_RECEIVE_ERR_CONTEXT);
CW_LAYOUT(cw_await_result, CW_AWAIT_RESULT_SIZE, 8);
CW_AT(cw_await_result, u, CW_RESULT_PAYLOAD);
CW_LAYOUT(cw_exit_request, CW_EXIT_REQUEST_SIZE, CW_EXIT_REQUEST_ALIGN);
CW_AT(cw_exit_request, target, CW_EXIT_REQUEST_TARGET);
CW_AT(cw_exit_request, request, CW_EXIT_REQUEST_REQUEST);
CW_AT(cw_exit_request, blob, CW_EXIT_REQUEST_BLOB);
CW_LAYOUT(cw_on_exit, CW_ON_EXIT_SIZE, 4);
CW_AT(cw_on_exit, requests, CW_ON_EXIT_REQUESTS);
CW_LAYOUT(cw_send_params, CW_SEND_PARAMS_SIZE, 8);
CW_AT(cw_send_params, target, CW_SEND_PARAMS_TARGET);
CW_AT(cw_send_params, request, CW_SEND_PARAMS_REQUEST);
CW_AT(cw_send_params, context, CW_SEND_PARAMS_CONTEXT);
CW_AT(cw_send_params, blob, CW_SEND_PARAMS_BLOB);
CW_LAYOUT(cw_await_params, CW_AWAIT_PARAMS_SIZE, 8);
CW_AT(cw_await_params, target, CW_AWAIT_PARAMS_TARGET);
CW_AT(cw_await_params, request, CW_AWAIT_PARAMS_REQUEST);
CW_AT(cw_await_params, blob, CW_AWAIT_PARAMS_BLOB);
CW_LAYOUT(cw_grant, CW_GRANT_SIZE, 4);
CW_AT(cw_grant, process, CW_GRANT_PROCESS);
CW_AT(cw_grant, params, CW_GRANT_PARAMS);
CW_LAYOUT(cw_spawn_result, CW_SPAWN_RESULT_SIZE, 4);
CW_AT(cw_spawn_result, u, CW_SPAWN_RESULT_PAYLOAD);

/* ------------------------------------------------------------ imports */

#define CW_IMPORT(name)                                                        \
    __attribute__((import_module("hyperware:process/standard@1.0.0"),          \
                   import_name(name)))

CW_IMPORT("print-to-terminal")
void cw_print_to_terminal(uint32_t verbosity, const char *ptr, size_t len);
CW_IMPORT("our") void cw_our(cw_addr *ret);
CW_IMPORT("get-on-exit") void cw_get_on_exit(cw_on_exit *ret);
CW_IMPORT("set-on-exit")
void cw_set_on_exit(uint32_t kind, const void *ptr, size_t len);
CW_IMPORT("get-state") void cw_get_state(cw_opt_list *ret);
CW_IMPORT("set-state") void cw_set_state(const void *ptr, size_t len);
CW_IMPORT("clear-state") void cw_clear_state(void);
CW_IMPORT("spawn")
void cw_spawn(uint32_t name_some, const char *name, size_t name_len,
              const char *path, size_t path_len, uint32_t exit_kind,
              const void *exit_ptr, size_t exit_len, const void *req_ptr,
              size_t req_len, const void *grant_ptr, size_t grant_len,
              uint32_t public_, cw_spawn_result *ret);
CW_IMPORT("save-capabilities")
void cw_save_capabilities(const void *ptr, size_t len);
CW_IMPORT("drop-capabilities")
void cw_drop_capabilities(const void *ptr, size_t len);
CW_IMPORT("our-capabilities") void cw_our_capabilities(cw_list *ret);
CW_IMPORT("receive") void cw_receive(cw_receive_result *ret);
CW_IMPORT("has-blob") uint32_t cw_has_blob(void);
CW_IMPORT("get-blob") void cw_get_blob(cw_opt_blob *ret);
CW_IMPORT("last-blob") void cw_last_blob(cw_opt_blob *ret);
CW_IMPORT("send-request") void cw_send_request(const cw_send_params *args);
CW_IMPORT("send-requests")
void cw_send_requests(const cw_send_params *ptr, size_t len);
CW_IMPORT("send-response")
void cw_send_response(uint32_t inherit, const void *body, size_t body_len,
                      uint32_t meta_some, const char *meta, size_t meta_len,
                      const void *caps, size_t caps_len, uint32_t blob_some,
                      uint32_t mime_some, const char *mime, size_t mime_len,
                      const void *bytes, size_t bytes_len);
CW_IMPORT("send-and-await-response")
void cw_send_and_await_response(const cw_await_params *args,
                                cw_await_result *ret);

/* --------------------------------------------------- cabi_realloc */

/* What the host gets for an allocation of 0 bytes: never freed, never
 * written (a list of length 0 has no bytes). */
static alignas(16) uint8_t cw_empty[16];

__attribute__((export_name("cabi_realloc"))) void *
cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size);

void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size)
{
    (void)old_size;
    (void)align; /* malloc's 16 covers every canonical alignment (<= 8) */
    if (old == cw_empty)
        old = NULL;
    if (new_size == 0) {
        free(old);
        return cw_empty;
    }
    void *p = realloc(old, new_size);
    if (p == NULL)
        __builtin_trap(); /* the host cannot be told "no memory" */
    return p;
}

/* ------------------------------------------- lifting (host -> guest) */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        __builtin_trap();
    return p;
}

/* Release a block the host allocated (cw_empty is not one). */
static void cw_free(void *p)
{
    if (p != cw_empty)
        free(p);
}

/* A host string as a C string: the block taken over, one byte longer. */
static char *lift_str(cw_list s)
{
    if (s.len == 0 || s.ptr == cw_empty) {
        cw_free(s.ptr);
        char *e = xmalloc(1);
        e[0] = '\0';
        return e;
    }
    char *p = realloc(s.ptr, s.len + 1);
    if (p == NULL)
        __builtin_trap();
    p[s.len] = '\0';
    return p;
}

static char *lift_opt_str(cw_opt_list o)
{
    return o.some ? lift_str(o.val) : NULL;
}

/* A host byte list as hw_bytes: the block taken over (never NULL). */
static hw_bytes lift_bytes(cw_list l)
{
    hw_bytes b = {l.ptr, l.len};
    if (l.len == 0 || l.ptr == cw_empty) {
        cw_free(l.ptr);
        b.ptr = xmalloc(1);
        b.len = 0;
    }
    return b;
}

static void lift_pid(cw_pid *c, hw_process_id *out)
{
    if (hcc_process_id_from_parts(c->process_name.ptr, c->process_name.len,
                                  c->package_name.ptr, c->package_name.len,
                                  c->publisher_node.ptr, c->publisher_node.len,
                                  out) != 0)
        __builtin_trap();
    cw_free(c->process_name.ptr);
    cw_free(c->package_name.ptr);
    cw_free(c->publisher_node.ptr);
}

static void lift_addr(cw_addr *c, hw_address *out)
{
    if (hcc_address_from_parts(
            c->node.ptr, c->node.len, c->process.process_name.ptr,
            c->process.process_name.len, c->process.package_name.ptr,
            c->process.package_name.len, c->process.publisher_node.ptr,
            c->process.publisher_node.len, out) != 0)
        __builtin_trap();
    cw_free(c->node.ptr);
    cw_free(c->process.process_name.ptr);
    cw_free(c->process.package_name.ptr);
    cw_free(c->process.publisher_node.ptr);
}

static void lift_blob(cw_blob *c, hw_blob *out)
{
    out->mime = lift_opt_str(c->mime);
    out->bytes = lift_bytes(c->bytes);
}

static void lift_caps(cw_list l, hw_capability_list *out)
{
    cw_cap *c = l.ptr;
    out->len = l.len;
    out->ptr = xmalloc(l.len * sizeof *out->ptr);
    for (size_t i = 0; i < l.len; i++) {
        lift_addr(&c[i].issuer, &out->ptr[i].issuer);
        out->ptr[i].params = lift_str(c[i].params);
    }
    cw_free(l.ptr);
}

static void lift_request(cw_request *c, hw_request *out)
{
    out->inherit = c->inherit;
    out->has_expects_response = c->expects_response.some;
    out->expects_response =
        c->expects_response.some ? c->expects_response.val : 0;
    out->body = lift_bytes(c->body);
    out->metadata = lift_opt_str(c->metadata);
    lift_caps(c->capabilities, &out->capabilities);
}

static void lift_response(cw_response *c, hw_response *out)
{
    out->inherit = c->inherit;
    out->body = lift_bytes(c->body);
    out->metadata = lift_opt_str(c->metadata);
    lift_caps(c->capabilities, &out->capabilities);
}

static void lift_message(cw_message *c, hw_message *out)
{
    if (c->kind == 0) {
        out->kind = HW_MESSAGE_REQUEST;
        lift_request(&c->u.request, &out->request);
    } else {
        out->kind = HW_MESSAGE_RESPONSE;
        lift_response(&c->u.response.response, &out->response);
        out->has_context = c->u.response.context.some;
        if (out->has_context)
            out->context = lift_bytes(c->u.response.context.val);
    }
}

static void lift_send_error(cw_send_error *c, hw_send_error *out)
{
    out->kind = c->kind == 0 ? HW_SEND_ERROR_OFFLINE : HW_SEND_ERROR_TIMEOUT;
    lift_addr(&c->target, &out->target);
    lift_message(&c->message, &out->message);
    out->has_blob = c->blob.some;
    if (out->has_blob)
        lift_blob(&c->blob.blob, &out->blob);
}

/* ------------------------------------------- lowering (guest -> host) */

/* Everything a lowering allocates (arrays of canonical records) goes on
 * one list, released after the call. */
typedef struct cw_temps {
    void **ptr;
    size_t len, cap;
} cw_temps;

static void *temp_alloc(cw_temps *t, size_t n)
{
    if (t->len == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 8;
        t->ptr = realloc(t->ptr, t->cap * sizeof *t->ptr);
        if (t->ptr == NULL)
            __builtin_trap();
    }
    void *p = xmalloc(n);
    t->ptr[t->len++] = p;
    return p;
}

static void temps_free(cw_temps *t)
{
    for (size_t i = 0; i < t->len; i++)
        free(t->ptr[i]);
    free(t->ptr);
}

static cw_list lower_str(const char *s)
{
    return (cw_list){(void *)s, s ? strlen(s) : 0};
}

static cw_opt_list lower_opt_str(const char *s)
{
    return s ? (cw_opt_list){1, lower_str(s)} : (cw_opt_list){0, {0, 0}};
}

static cw_list lower_bytes(const hw_bytes *b)
{
    return (cw_list){b->ptr, b->len};
}

static cw_pid lower_pid(const hw_process_id *p)
{
    return (cw_pid){lower_str(p->process_name), lower_str(p->package_name),
                    lower_str(p->publisher_node)};
}

static cw_addr lower_addr(const hw_address *a)
{
    return (cw_addr){lower_str(a->node), lower_pid(&a->process)};
}

static cw_list lower_caps(cw_temps *t, const hw_capability *caps, size_t n)
{
    cw_cap *c = temp_alloc(t, n * sizeof *c);
    for (size_t i = 0; i < n; i++) {
        c[i].issuer = lower_addr(&caps[i].issuer);
        c[i].params = lower_str(caps[i].params);
    }
    return (cw_list){c, n};
}

static cw_opt_blob lower_opt_blob(const hw_blob *b)
{
    cw_opt_blob o = {0};
    if (b) {
        o.some = 1;
        o.blob.mime = lower_opt_str(b->mime);
        o.blob.bytes = lower_bytes(&b->bytes);
    }
    return o;
}

static cw_request lower_request(cw_temps *t, const hw_request *r)
{
    cw_request c = {0};
    c.inherit = r->inherit;
    c.expects_response.some = r->has_expects_response;
    c.expects_response.val = r->has_expects_response ? r->expects_response : 0;
    c.body = lower_bytes(&r->body);
    c.metadata = lower_opt_str(r->metadata);
    c.capabilities = lower_caps(t, r->capabilities.ptr, r->capabilities.len);
    return c;
}

static cw_on_exit lower_on_exit(cw_temps *t, const hw_on_exit *o)
{
    cw_on_exit c = {(uint8_t)o->kind, {0, 0}};
    if (o->kind == HW_ON_EXIT_REQUESTS) {
        cw_exit_request *e = temp_alloc(t, o->requests_len * sizeof *e);
        for (size_t i = 0; i < o->requests_len; i++) {
            const hw_outgoing_request *r = &o->requests[i];
            e[i].target = lower_addr(&r->target);
            e[i].request = lower_request(t, &r->request);
            e[i].blob = lower_opt_blob(r->has_blob ? &r->blob : NULL);
        }
        c.requests = (cw_list){e, o->requests_len};
    }
    return c;
}

static void lower_send(cw_temps *t, cw_send_params *p, const hw_address *target,
                       const hw_request *request, const hw_bytes *context,
                       const hw_blob *blob)
{
    memset(p, 0, sizeof *p);
    p->target = lower_addr(target);
    p->request = lower_request(t, request);
    if (context) {
        p->context.some = 1;
        p->context.val = lower_bytes(context);
    }
    p->blob = lower_opt_blob(blob);
}

/* ------------------------------------------------------ the export */

/* This process's address as init gave it (for the self-call check of
 * send-and-await-response). */
static hw_address cw_our_addr;

__attribute__((export_name("init"))) void cw_init(char *ptr, size_t len);

void cw_init(char *ptr, size_t len)
{
    char *our = lift_str((cw_list){ptr, len});
    if (hw_address_parse(our, &cw_our_addr) != 0)
        memset(&cw_our_addr, 0, sizeof cw_our_addr);
    hw_init(our);
    hw_address_fini(&cw_our_addr);
    free(our);
}

/* ------------------------------------------- the binding's extensions */

int hp__prompting_hold(void)
{
    return 0;
}

void hp__prompting_set(int handle)
{
    (void)handle;
}

void hp__prompting_release(int handle)
{
    (void)handle;
}

bool hp__set_state_start(const uint8_t *bytes, size_t len,
                         const hw_bytes *context, uint64_t timeout_s)
{
    (void)bytes, (void)len, (void)context, (void)timeout_s;
    return false;
}

int hp__set_state_now(const uint8_t *bytes, size_t len)
{
    (void)bytes, (void)len;
    return -1;
}

void hp__started(bool done)
{
    (void)done;
}

void hp__tasks(size_t live)
{
    (void)live; /* no such import in process-v1: `hyperc ps` shows none */
}

bool hp__receive(hw_receive_result *out)
{
    hw_receive(out); /* lifted into the guest's own copies */
    return false;
}

/* -------------------------------------------------------- functions */

void hw_print_to_terminal(uint8_t verbosity, const char *message)
{
    cw_print_to_terminal(verbosity, message, strlen(message));
}

void hw_our(hw_address *out)
{
    cw_addr r;
    cw_our(&r);
    lift_addr(&r, out);
}

void hw_get_on_exit(hw_on_exit *out)
{
    cw_on_exit r;
    cw_get_on_exit(&r);
    memset(out, 0, sizeof *out);
    out->kind = r.kind == 0   ? HW_ON_EXIT_NONE
                : r.kind == 1 ? HW_ON_EXIT_RESTART
                              : HW_ON_EXIT_REQUESTS;
    if (r.kind == 2) {
        cw_exit_request *e = r.requests.ptr;
        out->requests_len = r.requests.len;
        out->requests = xmalloc(r.requests.len * sizeof *out->requests);
        memset(out->requests, 0, r.requests.len * sizeof *out->requests);
        for (size_t i = 0; i < r.requests.len; i++) {
            hw_outgoing_request *o = &out->requests[i];
            lift_addr(&e[i].target, &o->target);
            lift_request(&e[i].request, &o->request);
            o->has_blob = e[i].blob.some;
            if (o->has_blob)
                lift_blob(&e[i].blob.blob, &o->blob);
        }
        cw_free(r.requests.ptr);
    }
}

void hw_set_on_exit(const hw_on_exit *on_exit)
{
    cw_temps t = {0};
    cw_on_exit c = lower_on_exit(&t, on_exit);
    cw_set_on_exit(c.kind, c.requests.ptr, c.requests.len);
    temps_free(&t);
}

bool hw_get_state(hw_bytes *out)
{
    cw_opt_list r;
    cw_get_state(&r);
    if (!r.some)
        return false;
    *out = lift_bytes(r.val);
    return true;
}

bool hw_set_state(const uint8_t *bytes, size_t len)
{
    cw_set_state(bytes, len); /* Hyperware traps when it fails */
    return true;
}

bool hw_clear_state(void)
{
    cw_clear_state();
    return true;
}

hw_spawn_error hw_spawn(const char *name, const char *wasm_path,
                        const hw_on_exit *on_exit,
                        const hw_capability *request_capabilities,
                        size_t request_capabilities_len,
                        const hw_process_id *grant_processes,
                        const char *const *grant_params, size_t grants_len,
                        bool public_, hw_process_id *out)
{
    cw_temps t = {0};
    hw_on_exit none = {HW_ON_EXIT_NONE, NULL, 0};
    cw_on_exit ex = lower_on_exit(&t, on_exit ? on_exit : &none);
    cw_list req =
        lower_caps(&t, request_capabilities, request_capabilities_len);
    cw_grant *g = temp_alloc(&t, grants_len * sizeof *g);
    for (size_t i = 0; i < grants_len; i++) {
        g[i].process = lower_pid(&grant_processes[i]);
        g[i].params = lower_str(grant_params[i]);
    }
    cw_spawn_result r;
    cw_spawn(name != NULL, name, name ? strlen(name) : 0, wasm_path,
             strlen(wasm_path), ex.kind, ex.requests.ptr, ex.requests.len,
             req.ptr, req.len, g, grants_len, public_, &r);
    temps_free(&t);
    if (r.is_err)
        return r.u.err == 0 ? HW_SPAWN_NAME_TAKEN : HW_SPAWN_NO_FILE_AT_PATH;
    lift_pid(&r.u.ok, out);
    return HW_SPAWN_OK;
}

void hw_save_capabilities(const hw_capability *caps, size_t len)
{
    cw_temps t = {0};
    cw_list l = lower_caps(&t, caps, len);
    cw_save_capabilities(l.ptr, l.len);
    temps_free(&t);
}

void hw_drop_capabilities(const hw_capability *caps, size_t len)
{
    cw_temps t = {0};
    cw_list l = lower_caps(&t, caps, len);
    cw_drop_capabilities(l.ptr, l.len);
    temps_free(&t);
}

void hw_our_capabilities(hw_capability_list *out)
{
    cw_list r;
    cw_our_capabilities(&r);
    lift_caps(r, out);
}

void hw_receive(hw_receive_result *out)
{
    cw_receive_result r;
    cw_receive(&r);
    memset(out, 0, sizeof *out);
    out->is_err = r.is_err;
    if (!r.is_err) {
        lift_addr(&r.u.ok.source, &out->source);
        lift_message(&r.u.ok.message, &out->message);
    } else {
        lift_send_error(&r.u.err.error, &out->error);
        out->has_context = r.u.err.context.some;
        if (out->has_context)
            out->context = lift_bytes(r.u.err.context.val);
    }
}

bool hw_has_blob(void)
{
    return cw_has_blob() != 0;
}

static bool lift_opt_blob_out(cw_opt_blob *r, hw_blob *out)
{
    if (!r->some)
        return false;
    lift_blob(&r->blob, out);
    return true;
}

bool hw_get_blob(hw_blob *out)
{
    cw_opt_blob r;
    cw_get_blob(&r);
    return lift_opt_blob_out(&r, out);
}

bool hw_last_blob(hw_blob *out)
{
    cw_opt_blob r;
    cw_last_blob(&r);
    return lift_opt_blob_out(&r, out);
}

void hw_send_request(const hw_address *target, const hw_request *request,
                     const hw_bytes *context, const hw_blob *blob)
{
    cw_temps t = {0};
    cw_send_params p;
    lower_send(&t, &p, target, request, context, blob);
    cw_send_request(&p);
    temps_free(&t);
}

void hw_send_requests(const hw_outgoing_request *requests, size_t len)
{
    cw_temps t = {0};
    cw_send_params *p = temp_alloc(&t, len * sizeof *p);
    for (size_t i = 0; i < len; i++) {
        const hw_outgoing_request *r = &requests[i];
        lower_send(&t, &p[i], &r->target, &r->request,
                   r->has_context ? &r->context : NULL,
                   r->has_blob ? &r->blob : NULL);
    }
    cw_send_requests(p, len);
    temps_free(&t);
}

void hw_send_response(const hw_response *response, const hw_blob *blob)
{
    cw_temps t = {0};
    cw_list caps =
        lower_caps(&t, response->capabilities.ptr, response->capabilities.len);
    cw_opt_list meta = lower_opt_str(response->metadata);
    cw_opt_blob b = lower_opt_blob(blob);
    cw_send_response(response->inherit, response->body.ptr, response->body.len,
                     meta.some, meta.val.ptr, meta.val.len, caps.ptr, caps.len,
                     b.some, b.blob.mime.some, b.blob.mime.val.ptr,
                     b.blob.mime.val.len, b.blob.bytes.ptr, b.blob.bytes.len);
    temps_free(&t);
}

static bool addr_eq(const hw_address *a, const hw_address *b)
{
    return a->node && b->node && strcmp(a->node, b->node) == 0 &&
           strcmp(a->process.process_name, b->process.process_name) == 0 &&
           strcmp(a->process.package_name, b->process.package_name) == 0 &&
           strcmp(a->process.publisher_node, b->process.publisher_node) == 0;
}

int hw_send_and_await_response(const hw_address *target,
                               const hw_request *request, const hw_blob *blob,
                               hw_await_result *out)
{
    memset(out, 0, sizeof *out);
    /* where Hyperware traps, the ABI returns -1 */
    if (!request->has_expects_response || addr_eq(target, &cw_our_addr))
        return -1;
    cw_temps t = {0};
    cw_await_params p;
    memset(&p, 0, sizeof p);
    p.target = lower_addr(target);
    p.request = lower_request(&t, request);
    p.blob = lower_opt_blob(blob);
    cw_await_result r;
    cw_send_and_await_response(&p, &r);
    temps_free(&t);
    out->is_err = r.is_err;
    if (!r.is_err) {
        lift_addr(&r.u.ok.source, &out->source);
        lift_message(&r.u.ok.message, &out->message);
    } else {
        lift_send_error(&r.u.err, &out->error);
    }
    return 0;
}
