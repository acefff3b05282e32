/* The wasm host's end of a shared-memory worker link (src/worker/link.h),
 * as a Node-API addon, `hyperc_link.node` beside host.mjs.
 *
 * A native worker waits for the node by spinning on its shared-memory
 * rings before it sleeps on a futex, so a node that answers at once costs
 * it no wake-up.  A host in JavaScript cannot map the node's memfd nor wait
 * on a futex in it; over a socket it can only sleep in a blocking read, and
 * each message wakes it (docs/benchmarks.md, "The host reads the node's
 * rings").  This addon gives host.mjs the worker's end of the same rings,
 * through link.c itself (the same spin and sleep as hyperc-worker's), and,
 * once the component is loaded, the worker's binding (src/worker/binding.h:
 * the messages delivered ahead, the blobs, the prompting message), so that
 * the two kinds of process speak the protocol through one implementation
 * (docs/wasm-lanes.md):
 *
 *   open(fd)          take the link in fd (a memfd the node made); true, or
 *                     throws an Error saying why.  The host then dies with
 *                     the node (PR_SET_PDEATHSIG, and a wait gives up when
 *                     the parent is gone).
 *   read(buf, off)    before ready: the bytes that have come into the
 *                     Uint8Array buf from off (at least one, waiting for
 *                     them): their count; 0 when the node is gone.  Throws
 *                     when the ring's positions are impossible.
 *   write(buf, len)   before ready: the first len bytes of buf (whole
 *                     frames, or the parts of one in order), waiting for
 *                     room; throws an Error with code EPIPE when the node
 *                     is gone.
 *   ready(pid)        send READY and hand the link to the binding; pid is
 *                     the process's id (HELLO's), for its messages.  READY
 *                     asks for lanes (docs/lane-design.md) when the node
 *                     gave a socket for them as fd 4 and the kernel has
 *                     futex_waitv: then the binding maps the lanes the node
 *                     opens and a receive waits on them too.  Returns
 *                     whether it asked.
 *   send(buf, len)    after ready: the first len bytes of buf, whole frames
 *                     of calls without results (SEND_REQUEST and
 *                     SEND_RESPONSE made through the binding's table, the
 *                     others sent as they are; DONE, TRAP and FAIL end the
 *                     life and are not counted as calls).
 *   call(buf, len, into)  after ready: the one frame in buf, a call with
 *                     results (RECEIVE and SEND_AND_AWAIT through the
 *                     table), and its REPLY's body (the frame after its
 *                     length, as the node would send it to a host without
 *                     lanes: [REPLY, results...]): written into the
 *                     Uint8Array into when it fits, and its length
 *                     returned; else returned as a Uint8Array of its own.
 *                     (the cold calls; every call under jco's glue alone,
 *                     HYPERC_WASM_GENERIC)
 *   bind(memory, realloc, args) and the hot imports in the canonical ABI
 *                     (receive, sendRequest(s), sendResponse,
 *                     sendAndAwait, hasBlob, getBlob, lastBlob): after
 *                     ready, straight between the component's memory and
 *                     the binding (link_cabi.c).
 *
 * After ready, a broken link or a node that broke the protocol ends the
 * host at once (hcw_die, as it ends a worker).  A frame of the host's own
 * that the addon cannot take (its bug) is thrown.  The host uses it from
 * its main thread only; the link is one per process. */
#include "link_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static hcw_link *the_link;
static pid_t parent; /* the node, when the link was opened */

/* What the binding needs of its process (binding.h). */
struct hcw_worker hcw_w;
hwn_host hcl_table;       /* the binding's, once ready */
bool hcl_bound;           /* ready: the binding has the link */
static hcw_in js_in;      /* a frame of the host's, decoded */
static hcw_frame *js_out; /* a REPLY for the host, encoded */

_Noreturn void hcw_die(const char *why)
{
    if (why)
        fprintf(stderr, "hyperc wasm host (%s): %s\n",
                hcw_w.pid ? hcw_w.pid : "?", why);
    _exit(121); /* as hyperc-worker (HCW_EXIT_PROTOCOL) */
}

/* A wait goes on while the node that started us lives. */
static bool node_alive(void *ctx)
{
    (void)ctx;
    return getppid() == parent;
}

napi_value hcl_fail(napi_env env, const char *code, const char *msg)
{
    napi_throw_error(env, code, msg);
    return NULL;
}

/* The Uint8Array argument i: its bytes and length; false (thrown) if it
 * is not one. */
static bool bytes_arg(napi_env env, napi_value v, uint8_t **p, size_t *n)
{
    bool is;
    if (napi_is_typedarray(env, v, &is) != napi_ok || !is) {
        hcl_fail(env, NULL, "not a Uint8Array");
        return false;
    }
    napi_typedarray_type t;
    void *data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, v, &t, n, &data, &ab, &off) != napi_ok ||
        t != napi_uint8_array) {
        hcl_fail(env, NULL, "not a Uint8Array");
        return false;
    }
    *p = data;
    return true;
}

static bool u32_arg(napi_env env, napi_value v, uint32_t *out)
{
    if (napi_get_value_uint32(env, v, out) != napi_ok) {
        hcl_fail(env, NULL, "not a number");
        return false;
    }
    return true;
}

/* The arguments (Uint8Array buf, u32 len, more...) of a call that takes
 * the first len bytes of buf: argv (want of them) filled, *p and *len set;
 * false (thrown) if they are not that, or len is more than buf has. */
static bool bytes_len_args(napi_env env, napi_callback_info info, size_t want,
                           napi_value *argv, uint8_t **p, uint32_t *len)
{
    size_t argc = want;
    size_t n;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < want) {
        hcl_fail(env, NULL, "too few arguments");
        return false;
    }
    if (!bytes_arg(env, argv[0], p, &n) || !u32_arg(env, argv[1], len))
        return false;
    if (*len > n) {
        hcl_fail(env, NULL, "more bytes than the buffer has");
        return false;
    }
    return true;
}

static napi_value link_open(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    uint32_t fd;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 1 || !u32_arg(env, argv[0], &fd))
        return NULL;
    if (the_link != NULL)
        return hcl_fail(env, NULL, "the link is open already");
    /* as hyperc-worker: never outlive the node */
    parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return hcl_fail(env, "EPIPE", "the node is gone");
    char err[256] = "";
    the_link = hcw_link_shm_open((int)fd, err, sizeof err);
    if (the_link == NULL)
        return hcl_fail(env, NULL, err);
    hcw_link_watch(the_link, node_alive, NULL);
    /* a peer host answers in 10-20 µs: spin for it (link.h) */
    hcw_link_spin_grow(the_link, true);
    napi_value t;
    napi_get_boolean(env, true, &t);
    return t;
}

static napi_value link_read(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    uint8_t *p;
    size_t n;
    uint32_t off;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 2 || !bytes_arg(env, argv[0], &p, &n) ||
        !u32_arg(env, argv[1], &off))
        return NULL;
    if (the_link == NULL || hcl_bound)
        return hcl_fail(env, NULL, "the link is not open, or is the binding's");
    if (off >= n)
        return hcl_fail(env, NULL, "no room to read into");
    char err[256] = "";
    long got = hcw_link_read_some(the_link, p + off, n - off, err, sizeof err);
    if (got < 0)
        return hcl_fail(env, "EPROTO", err);
    napi_value r;
    napi_create_uint32(env, (uint32_t)got, &r);
    return r;
}

static napi_value link_write(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    uint8_t *p;
    uint32_t len;
    if (!bytes_len_args(env, info, 2, argv, &p, &len))
        return NULL;
    if (the_link == NULL || hcl_bound)
        return hcl_fail(env, NULL, "the link is not open, or is the binding's");
    if (hcw_link_send_bytes(the_link, p, len) != 0)
        return hcl_fail(env, errno == EPROTO ? "EPROTO" : "EPIPE",
                        errno == EPROTO
                            ? "the node's ring positions are impossible"
                            : "the node is gone");
    return NULL;
}

static napi_value link_ready(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    char pid[512];
    size_t pidlen;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 1 ||
        napi_get_value_string_utf8(env, argv[0], pid, sizeof pid, &pidlen) !=
            napi_ok)
        return hcl_fail(env, NULL, "ready(pid) wants a string");
    if (the_link == NULL || hcl_bound)
        return hcl_fail(env, NULL, "the link is not open, or ready already");
    hcw_w.link = the_link;
    hcw_w.out = hcw_frame_new();
    hcw_in_init(&hcw_w.in);
    hcw_w.pid = strdup(pid);
    hcw_in_init(&js_in);
    js_out = hcw_frame_new();
    if (hcw_w.pid == NULL)
        hcw_die("out of memory");
    hcw_binding_init(&hcl_table);
    hcl_bound = true;
    struct stat st;
    bool lanes = fstat(HCW_LANE_FD, &st) == 0 && S_ISSOCK(st.st_mode) &&
                 hcw_lanes_probe();
    const char *features[] = {HCW_FEATURE_LANES};
    hcw_frame_begin(hcw_w.out, HCW_READY, 2);
    hcw_put_u64(hcw_w.out, HCW_PROTO_VERSION);
    hcw_put_strs(hcw_w.out, features, lanes ? 1 : 0);
    if (hcw_link_send(hcw_w.link, hcw_w.out) != 0)
        hcw_die(NULL);
    hcw_link_set_busy(hcw_w.link, true); /* in its init until it receives */
    napi_value r;
    napi_get_boolean(env, lanes, &r);
    return r;
}

/* Decode the host's frame at p (n bytes, its length first) into js_in;
 * false (thrown) when it is broken.  Trusted (no hcc_msgpack_check): the
 * frame's structure is host.mjs's, packed from lengths it measured, never
 * the component's bytes as they are (those are only inside its strings and
 * byte lists). */
static bool js_frame(napi_env env, const uint8_t *p, size_t n)
{
    char err[128];
    uint32_t len = 0;
    if (n >= 4)
        memcpy(&len, p, 4); /* little-endian: this host's order */
    if (n < 4 || len != n - 4) {
        hcl_fail(env, "EPROTO", "a frame whose length is not its size");
        return false;
    }
    uint8_t *body = hcw_in_body(&js_in, len);
    if (body == NULL)
        hcw_die("out of memory");
    memcpy(body, p + 4, len);
    if (hcw_in_decode(&js_in, len, true, err, sizeof err) != 1) {
        hcl_fail(env, "EPROTO", err);
        return false;
    }
    return true;
}

static bool bad_args(napi_env env, const char *op)
{
    char msg[96];
    snprintf(msg, sizeof msg, "the host's %s frame has the wrong arguments",
             op);
    hcl_fail(env, "EPROTO", msg);
    return false;
}

/* SEND_REQUEST [address, request, bin|nil, blob|nil] through the table. */
static bool js_send_request(napi_env env)
{
    hw_address target = {0};
    hw_request req = {0};
    hw_bytes ctx = {0};
    hw_blob blob = {0};
    bool has_ctx, has_blob;
    bool ok = js_in.nargs == 4 && hcw_get_address(&js_in, &target) &&
              hcw_get_request_view(&js_in, &req) &&
              hcw_get_bytes_opt(&js_in, &has_ctx, &ctx) &&
              hcw_get_blob_opt(&js_in, &has_blob, &blob);
    if (ok)
        hcl_table.send_request(NULL, &target, &req, has_ctx ? &ctx : NULL,
                               has_blob ? &blob : NULL);
    hw_address_fini(&target);
    hcw_request_view_fini(&req);
    hw_bytes_fini(&ctx);
    hw_blob_fini(&blob);
    return ok || bad_args(env, "SEND_REQUEST");
}

/* SEND_RESPONSE [response, blob|nil] through the table. */
static bool js_send_response(napi_env env)
{
    hw_response resp = {0};
    hw_blob blob = {0};
    bool has_blob;
    bool ok = js_in.nargs == 2 && hcw_get_response_view(&js_in, &resp) &&
              hcw_get_blob_opt(&js_in, &has_blob, &blob);
    if (ok)
        hcl_table.send_response(NULL, &resp, has_blob ? &blob : NULL);
    hcw_response_view_fini(&resp);
    hw_blob_fini(&blob);
    return ok || bad_args(env, "SEND_RESPONSE");
}

static napi_value link_send(napi_env env, napi_callback_info info)
{
    napi_value argv[2];
    uint8_t *p;
    uint32_t len;
    if (!bytes_len_args(env, info, 2, argv, &p, &len))
        return NULL;
    if (!hcl_bound)
        return hcl_fail(env, NULL, "send before ready");
    for (size_t off = 0; off < len;) {
        uint32_t body;
        if (len - off < 4)
            return hcl_fail(env, "EPROTO", "a frame cut short");
        memcpy(&body, p + off, 4); /* little-endian: this host's order */
        if (body > len - off - 4)
            return hcl_fail(env, "EPROTO", "a frame cut short");
        size_t whole = 4 + (size_t)body;
        if (!js_frame(env, p + off, whole))
            return NULL;
        switch (js_in.op) {
        case HCW_SEND_REQUEST:
            if (!js_send_request(env))
                return NULL;
            break;
        case HCW_SEND_RESPONSE:
            if (!js_send_response(env))
                return NULL;
            break;
        case HCW_DONE:
        case HCW_TRAP:
        case HCW_FAIL: /* the end: not a call the node serves */
            if (hcw_link_send_bytes(hcw_w.link, p + off, whole) != 0)
                hcw_die(NULL);
            break;
        case HCW_RECEIVE:
        case HCW_SEND_AND_AWAIT:
        case HCW_READY:
            return hcl_fail(env, "EPROTO",
                            "a call with results sent by send()");
        default: hcw_binding_send_raw(p + off, whole, 1);
        }
        off += whole;
    }
    return NULL;
}

/* js_out's body for the host: into `into` when it fits (its length),
 * else a Uint8Array of its own. */
static napi_value give_reply(napi_env env, napi_value into, const uint8_t *p,
                             size_t n)
{
    uint8_t *dst;
    size_t cap;
    napi_value r;
    if (!bytes_arg(env, into, &dst, &cap))
        return NULL;
    if (n <= cap) {
        memcpy(dst, p, n);
        napi_create_uint32(env, (uint32_t)n, &r);
        return r;
    }
    void *data;
    napi_value ab;
    if (napi_create_arraybuffer(env, n, &data, &ab) != napi_ok ||
        napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &r) != napi_ok)
        return hcl_fail(env, NULL, "out of memory");
    if (n)
        memcpy(data, p, n);
    return r;
}

/* The REPLY encoded in js_out, given as give_reply does. */
static napi_value give_js_out(napi_env env, napi_value into)
{
    size_t n;
    const uint8_t *p = hcw_frame_finish(js_out, &n);
    if (p == NULL)
        return hcl_fail(env, "EMSGSIZE", "a REPLY over the frame limit");
    return give_reply(env, into, p + 4, n - 4);
}

/* The blob of a REPLY's result: nil after an error, else the one the
 * guest has now (or nil). */
static void put_result_blob(bool is_err)
{
    hcw_put_blob_opt(js_out, is_err ? NULL : hcw_binding_blob());
}

static napi_value js_receive(napi_env env, napi_value into)
{
    if (js_in.nargs != 0) {
        bad_args(env, "RECEIVE");
        return NULL;
    }
    hw_receive_result r;
    hcl_table.receive(NULL, &r);
    hcw_frame_begin(js_out, HCW_REPLY, 2);
    hcw_put_receive_result(js_out, &r);
    put_result_blob(r.is_err);
    hw_receive_result_fini(&r);
    return give_js_out(env, into);
}

static napi_value js_send_and_await(napi_env env, napi_value into)
{
    hw_address target = {0};
    hw_request req = {0};
    hw_blob blob = {0};
    bool has_blob;
    bool ok = js_in.nargs == 3 && hcw_get_address(&js_in, &target) &&
              hcw_get_request_view(&js_in, &req) &&
              hcw_get_blob_opt(&js_in, &has_blob, &blob);
    hw_await_result ar;
    memset(&ar, 0, sizeof ar);
    int rc = 0;
    if (ok)
        rc = hcl_table.send_and_await_response(NULL, &target, &req,
                                               has_blob ? &blob : NULL, &ar);
    hw_address_fini(&target);
    hcw_request_view_fini(&req);
    hw_blob_fini(&blob);
    if (!ok) {
        bad_args(env, "SEND_AND_AWAIT");
        return NULL;
    }
    hcw_frame_begin(js_out, HCW_REPLY, 3);
    hcw_put_i64(js_out, rc);
    if (rc != 0) {
        hcw_put_nil(js_out);
        hcw_put_nil(js_out);
    } else {
        hcw_put_await_result(js_out, &ar);
        put_result_blob(ar.is_err);
    }
    hw_await_result_fini(&ar);
    return give_js_out(env, into);
}

static napi_value link_call(napi_env env, napi_callback_info info)
{
    napi_value argv[3];
    uint8_t *p;
    uint32_t len;
    if (!bytes_len_args(env, info, 3, argv, &p, &len))
        return NULL;
    if (!hcl_bound)
        return hcl_fail(env, NULL, "call before ready");
    if (!js_frame(env, p, len))
        return NULL;
    switch (js_in.op) {
    case HCW_RECEIVE: return js_receive(env, argv[2]);
    case HCW_SEND_AND_AWAIT: return js_send_and_await(env, argv[2]);
    case HCW_SEND_REQUEST:
    case HCW_SEND_RESPONSE:
    case HCW_DONE:
    case HCW_TRAP:
    case HCW_FAIL:
    case HCW_READY:
        return hcl_fail(env, "EPROTO", "a call without results made by call()");
    default: break;
    }
    hcw_in *in = hcw_binding_call_raw(p, len);
    size_t bn;
    const uint8_t *body = hcw_in_raw(in, &bn);
    return give_reply(env, argv[2], body, bn);
}

static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor fns[] = {
        {"open", NULL, link_open, NULL, NULL, NULL, napi_default, NULL},
        {"read", NULL, link_read, NULL, NULL, NULL, napi_default, NULL},
        {"write", NULL, link_write, NULL, NULL, NULL, napi_default, NULL},
        {"ready", NULL, link_ready, NULL, NULL, NULL, napi_default, NULL},
        {"send", NULL, link_send, NULL, NULL, NULL, napi_default, NULL},
        {"call", NULL, link_call, NULL, NULL, NULL, napi_default, NULL},
        {"bind", NULL, hcl_cabi_bind, NULL, NULL, NULL, napi_default, NULL},
        {"receive", NULL, hcl_cabi_receive, NULL, NULL, NULL, napi_default,
         NULL},
        {"sendRequest", NULL, hcl_cabi_send_request, NULL, NULL, NULL,
         napi_default, NULL},
        {"sendRequests", NULL, hcl_cabi_send_requests, NULL, NULL, NULL,
         napi_default, NULL},
        {"sendResponse", NULL, hcl_cabi_send_response, NULL, NULL, NULL,
         napi_default, NULL},
        {"sendAndAwait", NULL, hcl_cabi_send_and_await, NULL, NULL, NULL,
         napi_default, NULL},
        {"hasBlob", NULL, hcl_cabi_has_blob, NULL, NULL, NULL, napi_default,
         NULL},
        {"getBlob", NULL, hcl_cabi_get_blob, NULL, NULL, NULL, napi_default,
         NULL},
        {"lastBlob", NULL, hcl_cabi_last_blob, NULL, NULL, NULL, napi_default,
         NULL},
    };
    if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) !=
        napi_ok)
        return NULL;
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
