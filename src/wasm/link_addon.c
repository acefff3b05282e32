/* The wasm host's end of a shared-memory worker link (src/worker/link.h),
 * as a Node-API addon, `hyperc_link.node` beside host.mjs.
 *
 * A native worker waits for the node by spinning on its shared-memory
 * rings before it sleeps on a futex, so a node that answers at once costs
 * it no wake-up.  A host in JavaScript cannot map the node's memfd nor wait
 * on a futex in it; over a socket it can only sleep in a blocking read, and
 * each message wakes it (docs/benchmarks.md, "The host reads the node's
 * rings").  This addon gives host.mjs the worker's end of the same rings,
 * through link.c itself (the same spin and sleep as hyperc-worker's):
 *
 *   open(fd)          take the link in fd (a memfd the node made); true, or
 *                     throws an Error saying why.  The host then dies with
 *                     the node (PR_SET_PDEATHSIG, and a wait gives up when
 *                     the parent is gone).
 *   read(buf, off)    the bytes that have come into the Uint8Array buf
 *                     from off (at least one, waiting for it): their
 *                     count; 0 when the node is gone.  Throws when the
 *                     ring's positions are impossible.
 *   write(buf, len)   the first len bytes of buf (whole frames, or the
 *                     parts of one in order), waiting for room; throws an
 *                     Error with code EPIPE when the node is gone.
 *
 * The host uses it from its main thread only; the link is one per
 * process. */
#include "../worker/link.h"

#include <errno.h>
#include <node_api.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static hcw_link *the_link;
static pid_t parent; /* the node, when the link was opened */

/* A wait goes on while the node that started us lives. */
static bool node_alive(void *ctx)
{
    (void)ctx;
    return getppid() == parent;
}

static napi_value fail(napi_env env, const char *code, const char *msg)
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
        fail(env, NULL, "not a Uint8Array");
        return false;
    }
    napi_typedarray_type t;
    void *data;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, v, &t, n, &data, &ab, &off) != napi_ok ||
        t != napi_uint8_array) {
        fail(env, NULL, "not a Uint8Array");
        return false;
    }
    *p = data;
    return true;
}

static bool u32_arg(napi_env env, napi_value v, uint32_t *out)
{
    if (napi_get_value_uint32(env, v, out) != napi_ok) {
        fail(env, NULL, "not a number");
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
        return fail(env, NULL, "the link is open already");
    /* as hyperc-worker: never outlive the node */
    parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return fail(env, "EPIPE", "the node is gone");
    char err[256] = "";
    the_link = hcw_link_shm_open((int)fd, err, sizeof err);
    if (the_link == NULL)
        return fail(env, NULL, err);
    hcw_link_watch(the_link, node_alive, NULL);
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
    if (the_link == NULL)
        return fail(env, NULL, "the link is not open");
    if (off >= n)
        return fail(env, NULL, "no room to read into");
    char err[256] = "";
    long got = hcw_link_read_some(the_link, p + off, n - off, err, sizeof err);
    if (got < 0)
        return fail(env, "EPROTO", err);
    napi_value r;
    napi_create_uint32(env, (uint32_t)got, &r);
    return r;
}

static napi_value link_write(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    uint8_t *p;
    size_t n;
    uint32_t len;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok ||
        argc < 2 || !bytes_arg(env, argv[0], &p, &n) ||
        !u32_arg(env, argv[1], &len))
        return NULL;
    if (the_link == NULL)
        return fail(env, NULL, "the link is not open");
    if (len > n)
        return fail(env, NULL, "more bytes than the buffer has");
    if (hcw_link_send_bytes(the_link, p, len) != 0)
        return fail(env, errno == EPROTO ? "EPROTO" : "EPIPE",
                    errno == EPROTO ? "the node's ring positions are impossible"
                                    : "the node is gone");
    return NULL;
}

static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor fns[] = {
        {"open", NULL, link_open, NULL, NULL, NULL, napi_default, NULL},
        {"read", NULL, link_read, NULL, NULL, NULL, napi_default, NULL},
        {"write", NULL, link_write, NULL, NULL, NULL, napi_default, NULL},
    };
    if (napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) !=
        napi_ok)
        return NULL;
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
