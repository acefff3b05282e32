/* The imports of `standard` in the canonical ABI without Node-API
 * (src/wasm/cabi.c): a byte array as the component's linear memory, a bump
 * allocator as its cabi_realloc, and a host table that records what it is
 * given.  Results
 * are read back at cabi_layout.h's offsets; parameters are laid out by the
 * test at the same offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/abi_types.h"
#include "common/cabi_layout.h"
#include "wasm/cabi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void hcw_die(const char *why)
{
    fprintf(stderr, "hcw_die: %s\n", why ? why : "(null)");
    abort();
}

/* ------------------------------------------------------- the guest */

#define MEM_SIZE 65536u
#define HEAP 32768u /* cabi_realloc's answers from here */
#define DATA 8192u  /* the test's own strings and lists from here */

static uint8_t mem[MEM_SIZE];

typedef enum { AL_OK, AL_FAIL, AL_MISALIGN, AL_OUTSIDE } alloc_mode;

typedef struct fake {
    hca_guest g;
    size_t len;                /* the memory's length as g->mem says it */
    bool mem_fails;            /* g->mem raises a trap and returns NULL */
    alloc_mode mode;           /* what cabi_realloc answers */
    uint32_t heap;             /* its next free byte */
    int allocs;                /* its calls */
    int empties;               /* of which of 0 bytes */
    uint32_t bad_at, bad_size; /* AL_MISALIGN: the answer to an align > 1 */
    uint32_t data;             /* the test's next free byte */
    int traps;
    char trap[320];
} fake;

static fake F;

static uint8_t *f_mem(hca_guest *g, size_t *len)
{
    assert_ptr_equal(g, &F.g);
    if (F.mem_fails) {
        g->trap(g, NULL, "no memory");
        return NULL;
    }
    *len = F.len;
    return mem;
}

static bool f_alloc(hca_guest *g, uint32_t align, uint32_t size, uint32_t *out)
{
    F.allocs++;
    F.empties += size == 0;
    if (F.mode == AL_FAIL) {
        g->trap(g, NULL, "cabi_realloc trapped");
        return false;
    }
    uint32_t at = (F.heap + align - 1) & ~(align - 1);
    F.heap = at + size;
    if (F.mode == AL_OUTSIDE && size > 0)
        at = (uint32_t)F.len - 1;
    if (F.mode == AL_MISALIGN && align > 1) {
        at += 2;
        F.bad_at = at;
        F.bad_size = size;
    }
    *out = at;
    return true;
}

static void f_trap(hca_guest *g, const char *what, const char *why)
{
    F.traps++;
    if (what == NULL)
        snprintf(F.trap, sizeof F.trap, "%s", why);
    else
        snprintf(F.trap, sizeof F.trap, "%s: %s", what, why);
}

/* ------------------------------------------------------- the host */

/* One request or response as the host got it, copied. */
typedef struct snap {
    char target[200]; /* node@process:package:publisher */
    bool inherit, has_expects;
    uint64_t expects;
    char body[64];
    size_t body_len;
    bool has_meta;
    char meta[64];
    size_t ncaps;
    char cap_issuer[2][200], cap_params[2][64];
    bool has_ctx;
    char ctx[64];
    size_t ctx_len;
    bool has_blob, blob_has_mime;
    char blob_mime[64], blob_bytes[64];
    size_t blob_len;
} snap;

typedef struct host {
    hwn_host t;
    int receives, sends, responses, awaits, prints;
    char print[320];
    uint8_t print_level;
    hw_receive_result next; /* what receive gives (moved out) */
    hw_await_result await;  /* what send-and-await gives (moved out) */
    int await_rc;
    snap got[4]; /* the sends, in order (the last one past 4 kept last) */
    bool has_blob, has_last;
    hw_blob blob, last; /* what get-blob and last-blob copy out */
    int blob_calls;
    /* the rest of `standard`: what each gives (moved out), what each got */
    int ours, get_states, set_states, clears, get_exits, set_exits, spawns,
        saves, drops, our_caps_calls;
    hw_address our;
    bool has_state, state_ok;
    hw_bytes state;
    char set_bytes[64];
    size_t set_len;
    hw_on_exit exit; /* what get-on-exit gives */
    int exit_kind;   /* what set-on-exit or spawn got */
    size_t exit_len;
    snap exit_req[2];
    bool has_name, is_public;
    char name[64], path[64];
    size_t ngrants;
    char grant_pid[2][100], grant_params[2][64];
    hw_spawn_error spawn_err;
    hw_process_id child;
    snap caps;               /* what spawn, save or drop got */
    hw_capability_list mine; /* what our-capabilities gives */
} host;

static host H;

static void take_bytes(const hw_bytes *b, char *out, size_t *len)
{
    assert_true(b->len < 64);
    memcpy(out, b->ptr, b->len);
    out[b->len] = 0;
    *len = b->len;
}

static void take_caps(snap *s, const hw_capability_list *c)
{
    s->ncaps = c->len;
    for (size_t i = 0; i < c->len && i < 2; i++) {
        hw_address_format(&c->ptr[i].issuer, s->cap_issuer[i], 200);
        snprintf(s->cap_params[i], 64, "%s", c->ptr[i].params);
    }
}

static void take_blob(snap *s, const hw_blob *b)
{
    s->has_blob = b != NULL;
    if (b == NULL)
        return;
    s->blob_has_mime = b->mime != NULL;
    if (b->mime)
        snprintf(s->blob_mime, 64, "%s", b->mime);
    take_bytes(&b->bytes, s->blob_bytes, &s->blob_len);
}

static snap *next_snap(void)
{
    int n = H.sends + H.responses + H.awaits;
    snap *s = &H.got[n < 4 ? n : 3];
    memset(s, 0, sizeof *s);
    return s;
}

/* What a request and a response have in common. */
static void take_parts(snap *s, bool inherit, const hw_bytes *body,
                       const char *metadata, const hw_capability_list *caps)
{
    s->inherit = inherit;
    take_bytes(body, s->body, &s->body_len);
    s->has_meta = metadata != NULL;
    if (metadata)
        snprintf(s->meta, 64, "%s", metadata);
    take_caps(s, caps);
}

static void take_request(snap *s, const hw_address *target, const hw_request *r)
{
    hw_address_format(target, s->target, sizeof s->target);
    s->has_expects = r->has_expects_response;
    s->expects = r->expects_response;
    take_parts(s, r->inherit, &r->body, r->metadata, &r->capabilities);
}

static void h_print(void *ctx, uint8_t level, const char *msg)
{
    assert_ptr_equal(ctx, &H);
    H.prints++;
    H.print_level = level;
    snprintf(H.print, sizeof H.print, "%s", msg);
}

static void h_receive(void *ctx, hw_receive_result *out)
{
    assert_ptr_equal(ctx, &H);
    H.receives++;
    *out = H.next;
    memset(&H.next, 0, sizeof H.next);
}

static bool h_has_blob(void *ctx)
{
    assert_ptr_equal(ctx, &H);
    return H.has_blob;
}

/* get-blob's and last-blob's answer: a copy of *from if has. */
static bool give_blob(void *ctx, bool has, const hw_blob *from, hw_blob *out)
{
    assert_ptr_equal(ctx, &H);
    H.blob_calls++;
    memset(out, 0, sizeof *out);
    if (!has)
        return false;
    out->mime = from->mime ? strdup(from->mime) : NULL;
    out->bytes.len = from->bytes.len;
    out->bytes.ptr = malloc(from->bytes.len + 1);
    memcpy(out->bytes.ptr, from->bytes.ptr, from->bytes.len);
    return true;
}

static bool h_get_blob(void *ctx, hw_blob *out)
{
    return give_blob(ctx, H.has_blob, &H.blob, out);
}

static bool h_last_blob(void *ctx, hw_blob *out)
{
    return give_blob(ctx, H.has_last, &H.last, out);
}

static void h_send_request(void *ctx, const hw_address *target,
                           const hw_request *req, const hw_bytes *context,
                           const hw_blob *blob)
{
    assert_ptr_equal(ctx, &H);
    snap *s = next_snap();
    H.sends++;
    take_request(s, target, req);
    s->has_ctx = context != NULL;
    if (context)
        take_bytes(context, s->ctx, &s->ctx_len);
    take_blob(s, blob);
}

static void h_send_response(void *ctx, const hw_response *resp,
                            const hw_blob *blob)
{
    assert_ptr_equal(ctx, &H);
    snap *s = next_snap();
    H.responses++;
    take_parts(s, resp->inherit, &resp->body, resp->metadata,
               &resp->capabilities);
    take_blob(s, blob);
}

static int h_send_and_await(void *ctx, const hw_address *target,
                            const hw_request *req, const hw_blob *blob,
                            hw_await_result *out)
{
    assert_ptr_equal(ctx, &H);
    snap *s = next_snap();
    H.awaits++;
    take_request(s, target, req);
    take_blob(s, blob);
    *out = H.await;
    memset(&H.await, 0, sizeof H.await);
    return H.await_rc;
}

static void h_our(void *ctx, hw_address *out)
{
    assert_ptr_equal(ctx, &H);
    H.ours++;
    *out = H.our;
    memset(&H.our, 0, sizeof H.our);
}

static bool h_get_state(void *ctx, hw_bytes *out)
{
    assert_ptr_equal(ctx, &H);
    H.get_states++;
    if (!H.has_state)
        return false;
    *out = H.state;
    memset(&H.state, 0, sizeof H.state);
    return true;
}

static bool h_set_state(void *ctx, const uint8_t *b, size_t len)
{
    assert_ptr_equal(ctx, &H);
    H.set_states++;
    take_bytes(&(hw_bytes){(uint8_t *)b, len}, H.set_bytes, &H.set_len);
    return H.state_ok;
}

static bool h_clear_state(void *ctx)
{
    assert_ptr_equal(ctx, &H);
    H.clears++;
    return H.state_ok;
}

static void h_get_on_exit(void *ctx, hw_on_exit *out)
{
    assert_ptr_equal(ctx, &H);
    H.get_exits++;
    *out = H.exit;
    memset(&H.exit, 0, sizeof H.exit);
}

/* An on-exit as the host got it: its kind, and its first two requests. */
static void take_on_exit(const hw_on_exit *o)
{
    H.exit_kind = (int)o->kind;
    H.exit_len = o->requests_len;
    for (size_t i = 0; i < o->requests_len && i < 2; i++) {
        const hw_outgoing_request *r = &o->requests[i];
        snap *s = &H.exit_req[i];
        memset(s, 0, sizeof *s);
        take_request(s, &r->target, &r->request);
        take_blob(s, r->has_blob ? &r->blob : NULL);
    }
}

static void h_set_on_exit(void *ctx, const hw_on_exit *o)
{
    assert_ptr_equal(ctx, &H);
    H.set_exits++;
    take_on_exit(o);
}

static void take_cap_array(const hw_capability *c, size_t n)
{
    memset(&H.caps, 0, sizeof H.caps);
    take_caps(&H.caps, &(hw_capability_list){(hw_capability *)c, n});
}

static hw_spawn_error h_spawn(void *ctx, const char *name, const char *path,
                              const hw_on_exit *on_exit,
                              const hw_capability *req, size_t req_len,
                              const hw_process_id *procs,
                              const char *const *params, size_t n, bool public_,
                              hw_process_id *out)
{
    assert_ptr_equal(ctx, &H);
    H.spawns++;
    H.has_name = name != NULL;
    snprintf(H.name, sizeof H.name, "%s", name ? name : "");
    snprintf(H.path, sizeof H.path, "%s", path);
    take_on_exit(on_exit);
    take_cap_array(req, req_len);
    H.ngrants = n;
    for (size_t i = 0; i < n && i < 2; i++) {
        snprintf(H.grant_pid[i], 100, "%s:%s:%s", procs[i].process_name,
                 procs[i].package_name, procs[i].publisher_node);
        snprintf(H.grant_params[i], 64, "%s", params[i]);
    }
    H.is_public = public_;
    *out = H.child;
    memset(&H.child, 0, sizeof H.child);
    return H.spawn_err;
}

static void h_save_caps(void *ctx, const hw_capability *c, size_t n)
{
    assert_ptr_equal(ctx, &H);
    H.saves++;
    take_cap_array(c, n);
}

static void h_drop_caps(void *ctx, const hw_capability *c, size_t n)
{
    assert_ptr_equal(ctx, &H);
    H.drops++;
    take_cap_array(c, n);
}

static void h_our_caps(void *ctx, hw_capability_list *out)
{
    assert_ptr_equal(ctx, &H);
    H.our_caps_calls++;
    *out = H.mine;
    memset(&H.mine, 0, sizeof H.mine);
}

/* What the host was to give and did not (a call that trapped first). */
static void host_fini(void)
{
    hw_receive_result_fini(&H.next);
    hw_await_result_fini(&H.await);
    hw_address_fini(&H.our);
    hw_bytes_fini(&H.state);
    hw_on_exit_fini(&H.exit);
    hw_process_id_fini(&H.child);
    hw_capability_list_fini(&H.mine);
}

static hw_blob lent[2]; /* get-blob's and last-blob's, lent */
static bool lent_has[2];

static const hw_blob *f_lend(hca_guest *g, bool last)
{
    return lent_has[last] ? &lent[last] : NULL;
}

static int setup(void **state)
{
    memset(mem, 0xAA, sizeof mem); /* nothing written reads as zero */
    memset(&F, 0, sizeof F);
    F.len = MEM_SIZE;
    F.heap = HEAP;
    F.data = DATA;
    host_fini();
    memset(&H, 0, sizeof H);
    H.t.abi_version = HW_ABI_VERSION;
    H.t.size = sizeof H.t;
    H.t.ctx = &H;
    H.t.print_to_terminal = h_print;
    H.t.receive = h_receive;
    H.t.has_blob = h_has_blob;
    H.t.get_blob = h_get_blob;
    H.t.last_blob = h_last_blob;
    H.t.send_request = h_send_request;
    H.t.send_response = h_send_response;
    H.t.send_and_await_response = h_send_and_await;
    H.t.our = h_our;
    H.t.get_state = h_get_state;
    H.t.set_state = h_set_state;
    H.t.clear_state = h_clear_state;
    H.t.get_on_exit = h_get_on_exit;
    H.t.set_on_exit = h_set_on_exit;
    H.t.spawn = h_spawn;
    H.t.save_capabilities = h_save_caps;
    H.t.drop_capabilities = h_drop_caps;
    H.t.our_capabilities = h_our_caps;
    hca_guest_init(&F.g, &H.t, f_mem, f_alloc, f_trap);
    memset(lent_has, 0, sizeof lent_has);
    return 0;
}

static int teardown(void **state)
{
    hca_guest_fini(&F.g);
    host_fini();
    return 0;
}

/* ------------------------------------------- building the host's values */

static hw_address addr(const char *node, const char *proc, const char *pkg,
                       const char *pub)
{
    hw_address a;
    assert_int_equal(hcc_address_from_parts(node, strlen(node), proc,
                                            strlen(proc), pkg, strlen(pkg), pub,
                                            strlen(pub), &a),
                     0);
    return a;
}

static hw_bytes bytes(const char *s)
{
    size_t n = strlen(s);
    hw_bytes b = {malloc(n + 1), n};
    memcpy(b.ptr, s, n);
    return b;
}

static hw_capability_list caps2(void)
{
    hw_capability_list c = {calloc(2, sizeof(hw_capability)), 2};
    c.ptr[0].issuer = addr("a.os", "vfs", "distro", "sys");
    c.ptr[0].params = strdup("\"read\"");
    c.ptr[1].issuer = addr("b.os", "http-server", "distro", "sys");
    c.ptr[1].params = strdup("\"messaging\"");
    return c;
}

/* ------------------------------------------------- reading the memory */

static uint8_t rd8(uint32_t at)
{
    return mem[at];
}

static uint32_t rd32(uint32_t at)
{
    uint32_t v;
    memcpy(&v, mem + at, 4);
    return v;
}

static uint64_t rd64(uint32_t at)
{
    uint64_t v;
    memcpy(&v, mem + at, 8);
    return v;
}

/* The string or list at `at` equals s (n bytes). */
static void is_list(uint32_t at, const char *s, size_t n)
{
    uint32_t p = rd32(at + CW_LIST_PTR), len = rd32(at + CW_LIST_LEN);
    assert_int_equal(len, n);
    assert_true((uint64_t)p + len <= MEM_SIZE);
    if (n > 0)
        assert_memory_equal(mem + p, s, n);
}

static void is_str(uint32_t at, const char *s)
{
    is_list(at, s, strlen(s));
}

/* fn (is_str, wr_str) on each string of the address at `at`. */
static void addr_strs(void (*fn)(uint32_t, const char *), uint32_t at,
                      const char *node, const char *proc, const char *pkg,
                      const char *pub)
{
    fn(at + CW_ADDR_NODE, node);
    fn(at + CW_ADDR_PROCESS + CW_PID_NAME, proc);
    fn(at + CW_ADDR_PROCESS + CW_PID_PACKAGE, pkg);
    fn(at + CW_ADDR_PROCESS + CW_PID_PUBLISHER, pub);
}

static void is_addr(uint32_t at, const char *node, const char *proc,
                    const char *pkg, const char *pub)
{
    addr_strs(is_str, at, node, proc, pkg, pub);
}

/* caps2's list, at `at`. */
static void is_caps2(uint32_t at)
{
    assert_int_equal(rd32(at + CW_LIST_LEN), 2);
    uint32_t p = rd32(at + CW_LIST_PTR);
    assert_int_equal(p % CW_CAP_ALIGN, 0);
    is_addr(p + CW_CAP_ISSUER, "a.os", "vfs", "distro", "sys");
    is_str(p + CW_CAP_PARAMS, "\"read\"");
    is_addr(p + CW_CAP_SIZE + CW_CAP_ISSUER, "b.os", "http-server", "distro",
            "sys");
    is_str(p + CW_CAP_SIZE + CW_CAP_PARAMS, "\"messaging\"");
}

/* ------------------------------------------------- writing the memory */

static void wr8(uint32_t at, uint8_t v)
{
    mem[at] = v;
}

static void wr32(uint32_t at, uint32_t v)
{
    memcpy(mem + at, &v, 4);
}

static void wr64(uint32_t at, uint64_t v)
{
    memcpy(mem + at, &v, 8);
}

/* n bytes of s in the test's region: their address. */
static uint32_t data(const void *s, size_t n)
{
    uint32_t p = F.data;
    memcpy(mem + p, s, n);
    F.data += (uint32_t)n + 8 - (uint32_t)n % 8;
    return p;
}

static void wr_list(uint32_t at, const void *s, size_t n)
{
    wr32(at + CW_LIST_PTR, data(s, n));
    wr32(at + CW_LIST_LEN, (uint32_t)n);
}

static void wr_str(uint32_t at, const char *s)
{
    wr_list(at, s, strlen(s));
}

static void wr_addr(uint32_t at, const char *node, const char *proc,
                    const char *pkg, const char *pub)
{
    addr_strs(wr_str, at, node, proc, pkg, pub);
}

/* One capability list of one: its (ptr, len) at `at`. */
static void wr_caps1(uint32_t at)
{
    uint8_t cap[CW_CAP_SIZE] = {0};
    uint32_t p = data(cap, sizeof cap);
    wr_addr(p + CW_CAP_ISSUER, "c.os", "kv", "distro", "sys");
    wr_str(p + CW_CAP_PARAMS, "{\"db\":1}");
    wr32(at + CW_LIST_PTR, p);
    wr32(at + CW_LIST_LEN, 1);
}

/* A request at `at`: inherit, expects-response 30, body, metadata (NULL:
 * none), one capability. */
static void wr_request(uint32_t at, const char *body, const char *meta)
{
    wr8(at + CW_REQUEST_INHERIT, 1);
    wr8(at + CW_REQUEST_EXPECTS, 1);
    wr64(at + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL, 30);
    wr_str(at + CW_REQUEST_BODY, body);
    wr8(at + CW_REQUEST_METADATA, meta != NULL);
    if (meta)
        wr_str(at + CW_REQUEST_METADATA + CW_OPT_LIST_VAL, meta);
    wr_caps1(at + CW_REQUEST_CAPS);
}

/* The request wr_request wrote, as the host got it. */
static void got_request(const snap *s, const char *body, const char *meta)
{
    assert_true(s->inherit);
    assert_true(s->has_expects);
    assert_int_equal(s->expects, 30);
    assert_int_equal(s->body_len, strlen(body));
    assert_string_equal(s->body, body);
    assert_int_equal(s->has_meta, meta != NULL);
    if (meta)
        assert_string_equal(s->meta, meta);
    assert_int_equal(s->ncaps, 1);
    assert_string_equal(s->cap_issuer[0], "c.os@kv:distro:sys");
    assert_string_equal(s->cap_params[0], "{\"db\":1}");
}

/* send-request's parameters at p: target t.os@proc:pkg:pub, wr_request's
 * request, context "ctx", blob (mime, "blob!"). */
static void wr_send_params(uint32_t p, const char *node, const char *body,
                           const char *meta)
{
    wr_addr(p + CW_SEND_PARAMS_TARGET, node, "proc", "pkg", "pub.os");
    wr_request(p + CW_SEND_PARAMS_REQUEST, body, meta);
    wr8(p + CW_SEND_PARAMS_CONTEXT, 1);
    wr_list(p + CW_SEND_PARAMS_CONTEXT + CW_OPT_LIST_VAL, "ctx", 3);
    uint32_t b = p + CW_SEND_PARAMS_BLOB;
    wr8(b, 1);
    wr8(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME, 1);
    wr_str(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME + CW_OPT_LIST_VAL, "text/plain");
    wr_list(b + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, "blob!", 5);
}

#define RET 1024u   /* a result area */
#define PARAMS 256u /* a call's parameters */

/* ---------------------------------------------------------- receive */

static void test_receive_request(void **state)
{
    hw_receive_result *r = &H.next;
    r->source = addr("src.os", "chat", "chat-pkg", "dev.os");
    r->message.kind = HW_MESSAGE_REQUEST;
    r->message.request.inherit = true;
    r->message.request.has_expects_response = true;
    r->message.request.expects_response = 0x123456789ull;
    r->message.request.body = bytes("{\"Hello\":1}");
    r->message.request.metadata = strdup("{\"m\":true}");
    r->message.request.capabilities = caps2();
    assert_true(hca_receive(&F.g, RET));
    assert_int_equal(H.receives, 1);
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.prints, 0);
    assert_int_equal(rd8(RET), 0); /* ok */
    is_addr(RET + CW_RESULT_PAYLOAD, "src.os", "chat", "chat-pkg", "dev.os");
    uint32_t m = RET + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE;
    assert_int_equal(rd8(m), 0); /* request */
    uint32_t q = m + CW_MESSAGE_PAYLOAD;
    assert_int_equal(rd8(q + CW_REQUEST_INHERIT), 1);
    assert_int_equal(rd8(q + CW_REQUEST_EXPECTS), 1);
    assert_int_equal(rd64(q + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL),
                     0x123456789ull);
    is_str(q + CW_REQUEST_BODY, "{\"Hello\":1}");
    assert_int_equal(rd8(q + CW_REQUEST_METADATA), 1);
    is_str(q + CW_REQUEST_METADATA + CW_OPT_LIST_VAL, "{\"m\":true}");
    is_caps2(q + CW_REQUEST_CAPS);
    /* every string and list its own allocation, inside the heap */
    assert_int_equal(F.allocs, 4 + 1 + 1 + 1 + 2 * 5);
    assert_int_equal(F.empties, 0);
    assert_true(rd32(q + CW_REQUEST_BODY) >= HEAP);
}

static void test_receive_response(void **state)
{
    hw_receive_result *r = &H.next;
    r->source = addr("src.os", "p", "k", "u.os");
    r->message.kind = HW_MESSAGE_RESPONSE;
    r->message.response.inherit = true;
    r->message.response.body = (hw_bytes){NULL, 0};
    r->message.has_context = true;
    r->message.context = bytes("the-context");
    assert_true(hca_receive(&F.g, RET));
    assert_int_equal(F.traps, 0);
    assert_int_equal(rd8(RET), 0);
    is_addr(RET + CW_RESULT_PAYLOAD, "src.os", "p", "k", "u.os");
    uint32_t m = RET + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE;
    assert_int_equal(rd8(m), 1); /* response */
    uint32_t s = m + CW_MESSAGE_PAYLOAD;
    assert_int_equal(rd8(s + CW_RESPONSE_INHERIT), 1);
    is_list(s + CW_RESPONSE_BODY, "", 0);
    assert_int_equal(rd8(s + CW_RESPONSE_METADATA), 0);
    assert_int_equal(rd32(s + CW_RESPONSE_CAPS + CW_LIST_LEN), 0);
    assert_int_equal(rd8(m + CW_MESSAGE_CONTEXT), 1);
    is_str(m + CW_MESSAGE_CONTEXT + CW_OPT_LIST_VAL, "the-context");
    /* the empty body and the empty capability list: one allocation of 0
     * bytes, shared */
    assert_int_equal(F.empties, 1);
    assert_int_equal(rd32(s + CW_RESPONSE_BODY + CW_LIST_PTR),
                     rd32(s + CW_RESPONSE_CAPS + CW_LIST_PTR));
    assert_int_equal(F.allocs, 4 + 1 + 1);
}

static void test_receive_send_error(void **state)
{
    hw_receive_result *r = &H.next;
    r->is_err = true;
    r->error.kind = HW_SEND_ERROR_TIMEOUT;
    r->error.target = addr("gone.os", "proc", "pkg", "pub.os");
    r->error.message.kind = HW_MESSAGE_REQUEST;
    r->error.message.request.has_expects_response = true;
    r->error.message.request.expects_response = 5;
    r->error.message.request.body = bytes("ping");
    r->error.has_blob = true;
    r->error.blob.mime = strdup("application/octet-stream");
    r->error.blob.bytes = bytes("BLOB");
    r->has_context = true;
    r->context = bytes("c2");
    assert_true(hca_receive(&F.g, RET));
    assert_int_equal(F.traps, 0);
    assert_int_equal(rd8(RET), 1); /* err */
    uint32_t e = RET + CW_RESULT_PAYLOAD;
    assert_int_equal(rd8(e), 1); /* timeout */
    is_addr(e + CW_SEND_ERROR_TARGET, "gone.os", "proc", "pkg", "pub.os");
    uint32_t m = e + CW_SEND_ERROR_MESSAGE;
    assert_int_equal(rd8(m), 0);
    uint32_t q = m + CW_MESSAGE_PAYLOAD;
    assert_int_equal(rd8(q + CW_REQUEST_INHERIT), 0);
    assert_int_equal(rd8(q + CW_REQUEST_EXPECTS), 1);
    assert_int_equal(rd64(q + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL), 5);
    is_str(q + CW_REQUEST_BODY, "ping");
    assert_int_equal(rd8(q + CW_REQUEST_METADATA), 0);
    assert_int_equal(rd32(q + CW_REQUEST_CAPS + CW_LIST_LEN), 0);
    uint32_t b = e + CW_SEND_ERROR_BLOB;
    assert_int_equal(rd8(b), 1);
    assert_int_equal(rd8(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME), 1);
    is_str(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME + CW_OPT_LIST_VAL,
           "application/octet-stream");
    is_str(b + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, "BLOB");
    assert_int_equal(rd8(RET + CW_RECEIVE_ERR_CONTEXT), 1);
    is_str(RET + CW_RECEIVE_ERR_CONTEXT + CW_OPT_LIST_VAL, "c2");
}

/* A string from the host that is not UTF-8: U+FFFD for the ill-formed
 * byte, and one line in the log. */
static void test_receive_lossy(void **state)
{
    hw_receive_result *r = &H.next;
    r->source = addr("src.os", "p", "k", "u.os");
    r->message.kind = HW_MESSAGE_REQUEST;
    r->message.request.body = bytes("b");
    r->message.request.metadata = strdup("a\xff"
                                         "b");
    assert_true(hca_receive(&F.g, RET));
    assert_int_equal(F.traps, 0);
    uint32_t q = RET + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE +
                 CW_MESSAGE_PAYLOAD;
    assert_int_equal(rd8(q + CW_REQUEST_METADATA), 1);
    is_str(q + CW_REQUEST_METADATA + CW_OPT_LIST_VAL, "a\xEF\xBF\xBD"
                                                      "b");
    assert_int_equal(H.prints, 1);
    assert_int_equal(H.print_level, 1);
    assert_string_equal(H.print,
                        "hyperc component: receive: 1 string not UTF-8 "
                        "from the node, each ill-formed sequence given as "
                        "U+FFFD");
}

/* ------------------------------------------------------------ sends */

static void test_send_request(void **state)
{
    wr_send_params(PARAMS, "t.os", "{\"Go\":null}", "{\"k\":2}");
    assert_true(hca_send_request(&F.g, PARAMS));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.sends, 1);
    const snap *s = &H.got[0];
    assert_string_equal(s->target, "t.os@proc:pkg:pub.os");
    got_request(s, "{\"Go\":null}", "{\"k\":2}");
    assert_true(s->has_ctx);
    assert_int_equal(s->ctx_len, 3);
    assert_string_equal(s->ctx, "ctx");
    assert_true(s->has_blob);
    assert_true(s->blob_has_mime);
    assert_string_equal(s->blob_mime, "text/plain");
    assert_int_equal(s->blob_len, 5);
    assert_string_equal(s->blob_bytes, "blob!");
    /* and without the options */
    wr8(PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_EXPECTS, 0);
    wr8(PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_METADATA, 0);
    wr8(PARAMS + CW_SEND_PARAMS_CONTEXT, 0);
    wr8(PARAMS + CW_SEND_PARAMS_BLOB, 0);
    assert_true(hca_send_request(&F.g, PARAMS));
    assert_int_equal(H.sends, 2);
    s = &H.got[1];
    assert_false(s->has_expects);
    assert_false(s->has_meta);
    assert_false(s->has_ctx);
    assert_false(s->has_blob);
    assert_string_equal(s->body, "{\"Go\":null}");
}

static void test_send_requests(void **state)
{
    uint32_t p = 2048;
    wr_send_params(p, "one.os", "1", NULL);
    wr_send_params(p + CW_SEND_PARAMS_SIZE, "two.os", "22", "{}");
    assert_true(hca_send_requests(&F.g, p, 2));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.sends, 2);
    assert_string_equal(H.got[0].target, "one.os@proc:pkg:pub.os");
    got_request(&H.got[0], "1", NULL);
    assert_string_equal(H.got[1].target, "two.os@proc:pkg:pub.os");
    got_request(&H.got[1], "22", "{}");
    assert_string_equal(H.got[1].blob_bytes, "blob!");
}

/* send-response's flat parameters, with a blob without mime. */
static void flat_response(uint32_t a[14])
{
    uint8_t cap[CW_CAP_SIZE] = {0};
    memset(a, 0, 14 * sizeof *a);
    a[0] = 1;
    a[1] = data("{\"Ok\":7}", 8);
    a[2] = 8;
    a[3] = 1;
    a[4] = data("{\"r\":0}", 7);
    a[5] = 7;
    a[6] = data(cap, sizeof cap);
    a[7] = 1;
    wr_addr(a[6] + CW_CAP_ISSUER, "c.os", "kv", "distro", "sys");
    wr_str(a[6] + CW_CAP_PARAMS, "{\"db\":1}");
    a[8] = 1;
    a[9] = 0;
    a[12] = data("xyz", 3);
    a[13] = 3;
}

static void test_send_response(void **state)
{
    uint32_t a[14];
    flat_response(a);
    assert_true(hca_send_response(&F.g, a));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.responses, 1);
    const snap *s = &H.got[0];
    assert_true(s->inherit);
    assert_string_equal(s->body, "{\"Ok\":7}");
    assert_true(s->has_meta);
    assert_string_equal(s->meta, "{\"r\":0}");
    assert_int_equal(s->ncaps, 1);
    assert_string_equal(s->cap_issuer[0], "c.os@kv:distro:sys");
    assert_string_equal(s->cap_params[0], "{\"db\":1}");
    assert_true(s->has_blob);
    assert_false(s->blob_has_mime);
    assert_string_equal(s->blob_bytes, "xyz");
    /* with a mime, then without metadata and blob */
    a[9] = 1;
    a[10] = data("image/png", 9);
    a[11] = 9;
    assert_true(hca_send_response(&F.g, a));
    assert_true(H.got[1].blob_has_mime);
    assert_string_equal(H.got[1].blob_mime, "image/png");
    a[3] = 0;
    a[8] = 0;
    assert_true(hca_send_response(&F.g, a));
    assert_false(H.got[2].has_meta);
    assert_false(H.got[2].has_blob);
    assert_int_equal(H.responses, 3);
}

static void test_send_and_await(void **state)
{
    uint32_t p = PARAMS;
    wr_addr(p + CW_AWAIT_PARAMS_TARGET, "far.os", "echo", "e", "pub.os");
    wr_request(p + CW_AWAIT_PARAMS_REQUEST, "ask", NULL);
    wr8(p + CW_AWAIT_PARAMS_BLOB, 1);
    wr8(p + CW_AWAIT_PARAMS_BLOB + CW_OPT_BLOB_VAL + CW_BLOB_MIME, 0);
    wr_list(p + CW_AWAIT_PARAMS_BLOB + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, "zz",
            2);
    H.await.source = addr("far.os", "echo", "e", "pub.os");
    H.await.message.kind = HW_MESSAGE_RESPONSE;
    H.await.message.response.body = bytes("pong");
    H.await.message.response.capabilities = caps2();
    assert_true(hca_send_and_await(&F.g, p, RET));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.awaits, 1);
    const snap *s = &H.got[0];
    assert_string_equal(s->target, "far.os@echo:e:pub.os");
    got_request(s, "ask", NULL);
    assert_true(s->has_blob);
    assert_false(s->blob_has_mime);
    assert_string_equal(s->blob_bytes, "zz");
    assert_int_equal(rd8(RET), 0);
    is_addr(RET + CW_RESULT_PAYLOAD, "far.os", "echo", "e", "pub.os");
    uint32_t m = RET + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE;
    assert_int_equal(rd8(m), 1);
    assert_int_equal(rd8(m + CW_MESSAGE_PAYLOAD + CW_RESPONSE_INHERIT), 0);
    is_str(m + CW_MESSAGE_PAYLOAD + CW_RESPONSE_BODY, "pong");
    is_caps2(m + CW_MESSAGE_PAYLOAD + CW_RESPONSE_CAPS);
    assert_int_equal(rd8(m + CW_MESSAGE_CONTEXT), 0);
}

/* The host refuses (Hyperware's trap): the message alone. */
static void test_send_and_await_refused(void **state)
{
    uint32_t p = PARAMS;
    wr_addr(p + CW_AWAIT_PARAMS_TARGET, "far.os", "echo", "e", "pub.os");
    wr_request(p + CW_AWAIT_PARAMS_REQUEST, "ask", NULL);
    wr8(p + CW_AWAIT_PARAMS_BLOB, 0);
    H.await_rc = -3;
    assert_false(hca_send_and_await(&F.g, p, RET));
    assert_int_equal(H.awaits, 1);
    assert_int_equal(F.traps, 1);
    assert_string_equal(F.trap, "send-and-await-response failed (-3)");
    assert_int_equal(F.allocs, 0);
}

/* ------------------------------------------------------------ blobs */

static void is_blob_some(uint32_t at, const char *mime, const char *b)
{
    assert_int_equal(rd8(at), 1);
    uint32_t v = at + CW_OPT_BLOB_VAL;
    assert_int_equal(rd8(v + CW_BLOB_MIME), mime != NULL);
    if (mime)
        is_str(v + CW_BLOB_MIME + CW_OPT_LIST_VAL, mime);
    is_str(v + CW_BLOB_BYTES, b);
}

static void test_blobs_copied(void **state)
{
    assert_false(hca_has_blob(&F.g));
    assert_true(hca_get_blob(&F.g, RET));
    assert_int_equal(rd8(RET), 0);
    H.has_blob = true;
    H.blob = (hw_blob){strdup("text/html"), bytes("<p>")};
    H.has_last = true;
    H.last = (hw_blob){NULL, bytes("older")};
    assert_true(hca_has_blob(&F.g));
    assert_true(hca_get_blob(&F.g, RET));
    is_blob_some(RET, "text/html", "<p>");
    assert_true(hca_last_blob(&F.g, RET + 64));
    is_blob_some(RET + 64, NULL, "older");
    assert_int_equal(H.blob_calls, 3);
    assert_int_equal(F.traps, 0);
    hw_blob_fini(&H.blob);
    hw_blob_fini(&H.last);
}

static void test_blobs_lent(void **state)
{
    F.g.lend_blob = f_lend;
    uint8_t png[] = {0x89, 'P', 'N', 'G'};
    lent[1] = (hw_blob){"image/png", {png, sizeof png}};
    lent_has[1] = true;
    assert_true(hca_get_blob(&F.g, RET));
    assert_int_equal(rd8(RET), 0);
    assert_true(hca_last_blob(&F.g, RET));
    assert_int_equal(rd8(RET), 1);
    is_str(RET + CW_OPT_BLOB_VAL + CW_BLOB_MIME + CW_OPT_LIST_VAL, "image/png");
    is_list(RET + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, (const char *)png, 4);
    assert_int_equal(H.blob_calls, 0); /* lent, not copied */
}

/* ------------------------------------------------------------ traps */

static void test_trap_outside(void **state)
{
    /* a body that runs past the memory's end */
    wr_send_params(PARAMS, "t.os", "body", NULL);
    uint32_t b = PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_BODY;
    wr32(b + CW_LIST_PTR, MEM_SIZE - 6);
    wr32(b + CW_LIST_LEN, 10);
    assert_false(hca_send_request(&F.g, PARAMS));
    assert_int_equal(H.sends, 0);
    assert_int_equal(F.traps, 1);
    assert_string_equal(F.trap, "send-request: 10 bytes at 65530, outside "
                                "the component's memory (65536 bytes)");
    /* parameters that do */
    assert_false(hca_send_request(&F.g, MEM_SIZE - 64));
    assert_string_equal(F.trap, "send-request: 128 bytes at 65472, outside "
                                "the component's memory (65536 bytes)");
    /* a list of them that does */
    assert_false(hca_send_requests(&F.g, 0, 1000));
    assert_string_equal(F.trap, "send-requests: 128000 bytes at 0, outside "
                                "the component's memory (65536 bytes)");
    /* a result area that does: nothing received */
    assert_false(hca_receive(&F.g, MEM_SIZE - 100));
    assert_int_equal(H.receives, 0);
    assert_string_equal(F.trap, "receive: a result area at 65436, outside "
                                "the component's memory (65536 bytes)");
    assert_false(hca_get_blob(&F.g, MEM_SIZE - 8));
    assert_string_equal(F.trap, "get-blob: a result area of 24 bytes at "
                                "65528, outside the component's memory "
                                "(65536 bytes)");
    assert_false(hca_send_and_await(&F.g, PARAMS, MEM_SIZE));
    assert_int_equal(H.awaits, 0);
    assert_string_equal(F.trap,
                        "send-and-await-response: a result area at 65536, "
                        "outside the component's memory (65536 bytes)");
    assert_int_equal(F.traps, 6);
    assert_int_equal(H.sends, 0);
}

static void test_trap_tag(void **state)
{
    wr_send_params(PARAMS, "t.os", "body", "{}");
    wr8(PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_METADATA, 2);
    assert_false(hca_send_request(&F.g, PARAMS));
    assert_int_equal(H.sends, 0);
    assert_string_equal(F.trap, "send-request: a tag 2 of a type with 2 cases");
    wr8(PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_METADATA, 1);
    wr8(PARAMS + CW_SEND_PARAMS_BLOB, 7);
    assert_false(hca_send_request(&F.g, PARAMS));
    assert_string_equal(F.trap, "send-request: a tag 7 of a type with 2 cases");
    uint32_t a[14];
    flat_response(a);
    a[3] = 3;
    assert_false(hca_send_response(&F.g, a));
    assert_string_equal(F.trap,
                        "send-response: a tag 3 of a type with 2 cases");
    a[3] = 1;
    a[9] = 5;
    assert_false(hca_send_response(&F.g, a));
    assert_string_equal(F.trap,
                        "send-response: a tag 5 of a type with 2 cases");
    assert_int_equal(H.responses, 0);
    assert_int_equal(F.traps, 4);
}

static void test_trap_strings(void **state)
{
    wr_send_params(PARAMS, "t.os", "body", NULL);
    uint32_t node = PARAMS + CW_SEND_PARAMS_TARGET + CW_ADDR_NODE;
    uint32_t p = data("t\xc3(", 3); /* a lead byte without its follower */
    wr32(node + CW_LIST_PTR, p);
    wr32(node + CW_LIST_LEN, 3);
    assert_false(hca_send_request(&F.g, PARAMS));
    char want[200];
    snprintf(want, sizeof want,
             "send-request: a string of 3 bytes at %u that is not UTF-8", p);
    assert_string_equal(F.trap, want);
    wr32(node + CW_LIST_PTR, data("t\0s", 3));
    assert_false(hca_send_request(&F.g, PARAMS));
    assert_string_equal(F.trap, "send-request: a string with a NUL "
                                "character, which the node cannot carry");
    assert_int_equal(H.sends, 0);
    /* the body is bytes: any will do */
    wr_list(PARAMS + CW_SEND_PARAMS_REQUEST + CW_REQUEST_BODY, "\xff\0", 2);
    wr_str(node, "t.os");
    assert_true(hca_send_request(&F.g, PARAMS));
    assert_int_equal(H.got[0].body_len, 2);
    assert_int_equal(F.traps, 2);
}

/* A message whose lowering needs allocations (caps2 has align 4). */
static void next_with_caps(void)
{
    hw_receive_result *r = &H.next;
    r->source = addr("src.os", "p", "k", "u.os");
    r->message.kind = HW_MESSAGE_REQUEST;
    r->message.request.body = bytes("b");
    r->message.request.capabilities = caps2();
}

static void test_trap_alloc(void **state)
{
    next_with_caps();
    F.mode = AL_MISALIGN;
    assert_false(hca_receive(&F.g, RET));
    char want[300];
    snprintf(want, sizeof want,
             "receive: cabi_realloc gave %u bytes at %u, outside the "
             "component's memory (65536 bytes) or not aligned to 4",
             F.bad_size, F.bad_at);
    assert_int_equal(F.bad_size, 2 * CW_CAP_SIZE);
    assert_string_equal(F.trap, want);
    assert_int_equal(rd8(RET), 0xAA); /* nothing written */

    teardown(state);
    setup(state);
    next_with_caps();
    F.mode = AL_OUTSIDE;
    assert_false(hca_receive(&F.g, RET));
    /* the first string, the source's node */
    assert_string_equal(F.trap, "receive: cabi_realloc gave 6 bytes at "
                                "65535, outside the component's memory "
                                "(65536 bytes) or not aligned to 1");
    assert_int_equal(rd8(RET), 0xAA);

    teardown(state);
    setup(state);
    next_with_caps();
    F.mode = AL_FAIL;
    assert_false(hca_receive(&F.g, RET));
    assert_int_equal(F.allocs, 1); /* none after the failed one */
    assert_int_equal(F.traps, 1);
    assert_string_equal(F.trap, "cabi_realloc trapped");
    assert_int_equal(rd8(RET), 0xAA);

    teardown(state);
    setup(state);
    F.mem_fails = true;
    assert_false(hca_receive(&F.g, RET));
    assert_int_equal(H.receives, 0);
    assert_string_equal(F.trap, "no memory");
}

/* The guest's state is reused: many calls, each lifted anew. */
static void test_reuse(void **state)
{
    for (int i = 0; i < 200; i++) {
        char node[32];
        snprintf(node, sizeof node, "n%d.os", i);
        F.data = DATA;
        wr_send_params(PARAMS, node, "body", "{}");
        assert_true(hca_send_request(&F.g, PARAMS));
        char want[64];
        snprintf(want, sizeof want, "%s@proc:pkg:pub.os", node);
        assert_string_equal(H.got[H.sends < 4 ? H.sends - 1 : 3].target, want);
        next_with_caps();
        F.heap = HEAP;
        assert_true(hca_receive(&F.g, RET));
        is_caps2(RET + CW_RESULT_PAYLOAD + CW_SOURCE_MESSAGE_MESSAGE +
                 CW_MESSAGE_PAYLOAD + CW_REQUEST_CAPS);
    }
    assert_int_equal(F.traps, 0);
}

/* ------------------------------------------- the rest of `standard` */

#define OUTSIDE "outside the component's memory (65536 bytes)"

static void test_print(void **state)
{
    uint32_t p = data("hello, node", 11);
    assert_true(hca_print(&F.g, 2, p, 11));
    assert_int_equal(H.prints, 1);
    assert_int_equal(H.print_level, 2);
    assert_string_equal(H.print, "hello, node");
    assert_true(hca_print(&F.g, 255, p, 5));
    assert_int_equal(H.print_level, 255);
    assert_string_equal(H.print, "hello");
    assert_int_equal(F.traps, 0);
    assert_false(hca_print(&F.g, 256, p, 5));
    assert_string_equal(F.trap, "print-to-terminal: a verbosity 256, outside "
                                "a u8 (0 to 255)");
    assert_false(hca_print(&F.g, 0, data("a\0b", 3), 3));
    assert_string_equal(F.trap, "print-to-terminal: a string with a NUL "
                                "character, which the node cannot carry");
    assert_false(hca_print(&F.g, 0, MEM_SIZE - 2, 5));
    assert_string_equal(F.trap,
                        "print-to-terminal: 5 bytes at 65534, " OUTSIDE);
    assert_int_equal(H.prints, 2);
    assert_int_equal(F.traps, 3);
}

static void test_our(void **state)
{
    H.our = addr("me.os", "app", "app-pkg", "dev.os");
    assert_true(hca_our(&F.g, RET));
    assert_int_equal(H.ours, 1);
    assert_int_equal(F.traps, 0);
    is_addr(RET, "me.os", "app", "app-pkg", "dev.os");
    assert_int_equal(F.allocs, 4);
    /* a result area outside: the host is not asked */
    assert_false(hca_our(&F.g, MEM_SIZE - 16));
    assert_string_equal(F.trap,
                        "our: a result area of 32 bytes at 65520, " OUTSIDE);
    assert_int_equal(H.ours, 1);
}

static void test_result_area(void **state)
{
    /* an embedder's own result: inside, the memory's bytes there */
    assert_ptr_equal(hca_result_area(&F.g, "now", RET, 16), mem + RET);
    assert_ptr_equal(hca_result_area(&F.g, "now", MEM_SIZE - 16, 16),
                     mem + MEM_SIZE - 16);
    assert_int_equal(F.traps, 0);
    /* one byte past the end: the trap, as the hca_ calls say it */
    assert_null(hca_result_area(&F.g, "now", MEM_SIZE - 15, 16));
    assert_int_equal(F.traps, 1);
    assert_string_equal(F.trap,
                        "now: a result area of 16 bytes at 65521, " OUTSIDE);
}

static void test_state(void **state)
{
    assert_true(hca_get_state(&F.g, RET));
    assert_int_equal(rd8(RET), 0);
    assert_int_equal(rd32(RET + CW_OPT_LIST_VAL), 0xAAAAAAAAu); /* none */
    H.has_state = true;
    H.state = (hw_bytes){malloc(3), 3};
    memcpy(H.state.ptr, "s\0t", 3);
    assert_true(hca_get_state(&F.g, RET + 64));
    assert_int_equal(rd8(RET + 64), 1);
    is_list(RET + 64 + CW_OPT_LIST_VAL, "s\0t", 3);
    assert_int_equal(H.get_states, 2);
    assert_int_equal(F.allocs, 1);
    /* set-state: any bytes; clear-state */
    H.state_ok = true;
    uint8_t st[] = {0, 1, 0xff, 'x'};
    uint32_t p = data(st, sizeof st);
    assert_true(hca_set_state(&F.g, p, 4));
    assert_int_equal(H.set_states, 1);
    assert_int_equal(H.set_len, 4);
    assert_memory_equal(H.set_bytes, st, 4);
    assert_true(hca_clear_state(&F.g));
    assert_int_equal(H.clears, 1);
    assert_int_equal(F.traps, 0);
    /* the host could not: Hyperware's trap, its message alone */
    H.state_ok = false;
    assert_false(hca_set_state(&F.g, p, 2));
    assert_string_equal(F.trap,
                        "set-state failed: the node could not save the state");
    assert_int_equal(H.set_len, 2);
    assert_false(hca_clear_state(&F.g));
    assert_string_equal(
        F.trap, "clear-state failed: the node could not clear the state");
    assert_int_equal(H.clears, 2);
    /* bytes or a result area outside: the host is not asked */
    assert_false(hca_set_state(&F.g, MEM_SIZE, 1));
    assert_string_equal(F.trap, "set-state: 1 bytes at 65536, " OUTSIDE);
    assert_int_equal(H.set_states, 2);
    assert_false(hca_get_state(&F.g, MEM_SIZE - 4));
    assert_string_equal(F.trap, "get-state: a result area of 12 bytes at "
                                "65532, " OUTSIDE);
    assert_int_equal(H.get_states, 2);
    assert_int_equal(F.traps, 4);
}

/* An exit request for the host to give: to node@proc:pkg:pub.os, inherit,
 * expects-response 30, body, metadata (NULL: none), caps2 (caps) or none,
 * a blob (text/plain, "blob!") or none; a context, which on-exit drops. */
static void host_exit_request(hw_outgoing_request *r, const char *node,
                              const char *body, const char *meta, bool caps,
                              bool blob)
{
    memset(r, 0, sizeof *r);
    r->target = addr(node, "proc", "pkg", "pub.os");
    r->request.inherit = true;
    r->request.has_expects_response = true;
    r->request.expects_response = 30;
    r->request.body = bytes(body);
    r->request.metadata = meta ? strdup(meta) : NULL;
    if (caps)
        r->request.capabilities = caps2();
    r->has_context = true;
    r->context = bytes("dropped");
    r->has_blob = blob;
    if (blob)
        r->blob = (hw_blob){strdup("text/plain"), bytes("blob!")};
}

/* The exit request at e as host_exit_request made it. */
static void is_exit_request(uint32_t e, const char *node, const char *body,
                            const char *meta, bool caps, bool blob)
{
    is_addr(e + CW_EXIT_REQUEST_TARGET, node, "proc", "pkg", "pub.os");
    uint32_t q = e + CW_EXIT_REQUEST_REQUEST;
    assert_int_equal(rd8(q + CW_REQUEST_INHERIT), 1);
    assert_int_equal(rd8(q + CW_REQUEST_EXPECTS), 1);
    assert_int_equal(rd64(q + CW_REQUEST_EXPECTS + CW_OPT_U64_VAL), 30);
    is_str(q + CW_REQUEST_BODY, body);
    assert_int_equal(rd8(q + CW_REQUEST_METADATA), meta != NULL);
    if (meta)
        is_str(q + CW_REQUEST_METADATA + CW_OPT_LIST_VAL, meta);
    if (caps)
        is_caps2(q + CW_REQUEST_CAPS);
    else
        assert_int_equal(rd32(q + CW_REQUEST_CAPS + CW_LIST_LEN), 0);
    uint32_t b = e + CW_EXIT_REQUEST_BLOB;
    assert_int_equal(rd8(b), blob);
    if (blob) {
        assert_int_equal(rd8(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME), 1);
        is_str(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME + CW_OPT_LIST_VAL,
               "text/plain");
        is_str(b + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, "blob!");
    }
}

static void test_get_on_exit(void **state)
{
    H.exit.kind = HW_ON_EXIT_NONE;
    assert_true(hca_get_on_exit(&F.g, RET));
    assert_int_equal(rd8(RET), 0);
    /* no payload written for none and restart */
    assert_int_equal(rd32(RET + CW_ON_EXIT_REQUESTS + CW_LIST_LEN),
                     0xAAAAAAAAu);
    H.exit.kind = HW_ON_EXIT_RESTART;
    assert_true(hca_get_on_exit(&F.g, RET + 64));
    assert_int_equal(rd8(RET + 64), 1);
    assert_int_equal(F.allocs, 0);
    H.exit.kind = HW_ON_EXIT_REQUESTS;
    H.exit.requests = calloc(2, sizeof *H.exit.requests);
    H.exit.requests_len = 2;
    host_exit_request(&H.exit.requests[0], "x.os", "first", NULL, true, true);
    host_exit_request(&H.exit.requests[1], "y.os", "second", "{}", false,
                      false);
    uint32_t r = RET + 128;
    F.heap = HEAP + 4; /* the list's alignment is cabi_realloc's to keep */
    assert_true(hca_get_on_exit(&F.g, r));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.get_exits, 3);
    assert_int_equal(rd8(r), 2);
    uint32_t l = r + CW_ON_EXIT_REQUESTS;
    assert_int_equal(rd32(l + CW_LIST_LEN), 2);
    uint32_t p = rd32(l + CW_LIST_PTR);
    assert_int_equal(p % CW_EXIT_REQUEST_ALIGN, 0);
    assert_true(p >= HEAP);
    is_exit_request(p, "x.os", "first", NULL, true, true);
    is_exit_request(p + CW_EXIT_REQUEST_SIZE, "y.os", "second", "{}", false,
                    false);
    /* a result area outside: the host is not asked */
    assert_false(hca_get_on_exit(&F.g, MEM_SIZE - 8));
    assert_string_equal(F.trap, "get-on-exit: a result area of 12 bytes at "
                                "65528, " OUTSIDE);
    assert_int_equal(H.get_exits, 3);
}

/* Two exit requests in the memory: their list's address. */
static uint32_t wr_exit_requests(void)
{
    uint8_t rec[2 * CW_EXIT_REQUEST_SIZE] = {0};
    uint32_t p = data(rec, sizeof rec);
    assert_int_equal(p % CW_EXIT_REQUEST_ALIGN, 0);
    wr_addr(p + CW_EXIT_REQUEST_TARGET, "x.os", "proc", "pkg", "pub.os");
    wr_request(p + CW_EXIT_REQUEST_REQUEST, "first", "{\"m\":1}");
    uint32_t b = p + CW_EXIT_REQUEST_BLOB;
    wr8(b, 1);
    wr8(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME, 1);
    wr_str(b + CW_OPT_BLOB_VAL + CW_BLOB_MIME + CW_OPT_LIST_VAL, "text/plain");
    wr_list(b + CW_OPT_BLOB_VAL + CW_BLOB_BYTES, "blob!", 5);
    uint32_t e = p + CW_EXIT_REQUEST_SIZE;
    wr_addr(e + CW_EXIT_REQUEST_TARGET, "y.os", "proc", "pkg", "pub.os");
    wr_request(e + CW_EXIT_REQUEST_REQUEST, "second", NULL);
    wr8(e + CW_EXIT_REQUEST_BLOB, 0);
    return p;
}

/* The host got wr_exit_requests' two (the first n of them). */
static void got_exit_requests(size_t n)
{
    assert_int_equal(H.exit_kind, HW_ON_EXIT_REQUESTS);
    assert_int_equal(H.exit_len, n);
    const snap *s = &H.exit_req[0];
    assert_string_equal(s->target, "x.os@proc:pkg:pub.os");
    got_request(s, "first", "{\"m\":1}");
    assert_true(s->has_blob);
    assert_true(s->blob_has_mime);
    assert_string_equal(s->blob_mime, "text/plain");
    assert_string_equal(s->blob_bytes, "blob!");
    if (n < 2)
        return;
    s = &H.exit_req[1];
    assert_string_equal(s->target, "y.os@proc:pkg:pub.os");
    got_request(s, "second", NULL);
    assert_false(s->has_blob);
}

static void test_set_on_exit(void **state)
{
    uint32_t p = wr_exit_requests();
    assert_true(hca_set_on_exit(&F.g, 2, p, 2));
    assert_int_equal(H.set_exits, 1);
    got_exit_requests(2);
    /* none and restart: the list is not read */
    assert_true(hca_set_on_exit(&F.g, 1, MEM_SIZE, 5));
    assert_int_equal(H.exit_kind, HW_ON_EXIT_RESTART);
    assert_int_equal(H.exit_len, 0);
    assert_true(hca_set_on_exit(&F.g, 0, MEM_SIZE, 5));
    assert_int_equal(H.exit_kind, HW_ON_EXIT_NONE);
    assert_int_equal(H.set_exits, 3);
    assert_int_equal(F.traps, 0);
    /* traps: the kind, the list, a tag inside */
    assert_false(hca_set_on_exit(&F.g, 3, p, 2));
    assert_string_equal(F.trap, "set-on-exit: a tag 3 of a type with 3 cases");
    assert_false(hca_set_on_exit(&F.g, 2, MEM_SIZE - CW_EXIT_REQUEST_SIZE, 2));
    assert_string_equal(F.trap, "set-on-exit: 224 bytes at 65424, " OUTSIDE);
    wr8(p + CW_EXIT_REQUEST_SIZE + CW_EXIT_REQUEST_BLOB, 2);
    assert_false(hca_set_on_exit(&F.g, 2, p, 2));
    assert_string_equal(F.trap, "set-on-exit: a tag 2 of a type with 2 cases");
    assert_int_equal(H.set_exits, 3);
    assert_int_equal(F.traps, 3);
}

/* spawn's flat parameters: name "child", wasm-path "child.wasm", on-exit
 * requests with the first of wr_exit_requests', one capability (c.os's,
 * wr_caps1), two grants, public, the result at RET. */
static uint32_t grants; /* the grants' list */

static void flat_spawn(uint32_t a[14])
{
    memset(a, 0, 14 * sizeof *a);
    a[0] = 1;
    a[1] = data("child", 5);
    a[2] = 5;
    a[3] = data("child.wasm", 10);
    a[4] = 10;
    a[5] = 2;
    a[6] = wr_exit_requests();
    a[7] = 1;
    uint8_t tmp[CW_LIST_SIZE] = {0};
    uint32_t t = data(tmp, sizeof tmp);
    wr_caps1(t);
    a[8] = rd32(t + CW_LIST_PTR);
    a[9] = rd32(t + CW_LIST_LEN);
    uint8_t g[2 * CW_GRANT_SIZE] = {0};
    grants = data(g, sizeof g);
    const char *proc[2] = {"one", "two"}, *params[2] = {"\"messaging\"", "{}"};
    for (int i = 0; i < 2; i++) {
        uint32_t e = grants + (uint32_t)i * CW_GRANT_SIZE;
        wr_str(e + CW_GRANT_PROCESS + CW_PID_NAME, proc[i]);
        wr_str(e + CW_GRANT_PROCESS + CW_PID_PACKAGE, "pkg");
        wr_str(e + CW_GRANT_PROCESS + CW_PID_PUBLISHER, "pub.os");
        wr_str(e + CW_GRANT_PARAMS, params[i]);
    }
    a[10] = grants;
    a[11] = 2;
    a[12] = 1;
    a[13] = RET;
}

static void test_spawn(void **state)
{
    uint32_t a[14];
    flat_spawn(a);
    assert_int_equal(
        hcc_process_id_from_parts("child", 5, "pkg", 3, "pub.os", 6, &H.child),
        0);
    H.spawn_err = HW_SPAWN_OK;
    assert_true(hca_spawn(&F.g, a));
    assert_int_equal(F.traps, 0);
    assert_int_equal(H.spawns, 1);
    assert_true(H.has_name);
    assert_string_equal(H.name, "child");
    assert_string_equal(H.path, "child.wasm");
    got_exit_requests(1);
    assert_int_equal(H.caps.ncaps, 1);
    assert_string_equal(H.caps.cap_issuer[0], "c.os@kv:distro:sys");
    assert_string_equal(H.caps.cap_params[0], "{\"db\":1}");
    assert_int_equal(H.ngrants, 2);
    assert_string_equal(H.grant_pid[0], "one:pkg:pub.os");
    assert_string_equal(H.grant_params[0], "\"messaging\"");
    assert_string_equal(H.grant_pid[1], "two:pkg:pub.os");
    assert_string_equal(H.grant_params[1], "{}");
    assert_true(H.is_public);
    assert_int_equal(rd8(RET), 0); /* ok */
    uint32_t r = RET + CW_SPAWN_RESULT_PAYLOAD;
    is_str(r + CW_PID_NAME, "child");
    is_str(r + CW_PID_PACKAGE, "pkg");
    is_str(r + CW_PID_PUBLISHER, "pub.os");
    /* no name, no on-exit, no capabilities, one grant, not public: the
     * errors */
    a[0] = 0;
    a[5] = 0;
    a[9] = 0;
    a[11] = 1;
    a[12] = 0;
    a[13] = RET + 64;
    H.spawn_err = HW_SPAWN_NAME_TAKEN;
    int allocs = F.allocs;
    assert_true(hca_spawn(&F.g, a));
    assert_false(H.has_name);
    assert_int_equal(H.exit_kind, HW_ON_EXIT_NONE);
    assert_int_equal(H.caps.ncaps, 0);
    assert_int_equal(H.ngrants, 1);
    assert_string_equal(H.grant_pid[0], "one:pkg:pub.os");
    assert_false(H.is_public);
    assert_int_equal(rd8(RET + 64), 1); /* err */
    assert_int_equal(rd8(RET + 64 + CW_SPAWN_RESULT_PAYLOAD), 0);
    H.spawn_err = HW_SPAWN_NO_FILE_AT_PATH;
    a[13] = RET + 128;
    assert_true(hca_spawn(&F.g, a));
    assert_int_equal(rd8(RET + 128), 1);
    assert_int_equal(rd8(RET + 128 + CW_SPAWN_RESULT_PAYLOAD), 1);
    assert_int_equal(F.allocs, allocs);
    assert_int_equal(H.spawns, 3);
    assert_int_equal(F.traps, 0);
}

static void test_spawn_traps(void **state)
{
    uint32_t a[14];
    flat_spawn(a);
    H.spawn_err = HW_SPAWN_NAME_TAKEN; /* (were the host asked) */
    a[0] = 2;
    assert_false(hca_spawn(&F.g, a));
    assert_string_equal(F.trap, "spawn: a tag 2 of a type with 2 cases");
    a[0] = 0;
    a[5] = 3;
    assert_false(hca_spawn(&F.g, a));
    assert_string_equal(F.trap, "spawn: a tag 3 of a type with 3 cases");
    a[5] = 2;
    uint32_t bad = data("\xc3(", 2);
    wr32(grants + CW_GRANT_SIZE + CW_GRANT_PARAMS + CW_LIST_PTR, bad);
    wr32(grants + CW_GRANT_SIZE + CW_GRANT_PARAMS + CW_LIST_LEN, 2);
    assert_false(hca_spawn(&F.g, a));
    char want[200];
    snprintf(want, sizeof want,
             "spawn: a string of 2 bytes at %u that is not UTF-8", bad);
    assert_string_equal(F.trap, want);
    a[11] = 1;
    a[10] = MEM_SIZE - 16;
    assert_false(hca_spawn(&F.g, a));
    assert_string_equal(F.trap, "spawn: 32 bytes at 65520, " OUTSIDE);
    a[10] = grants;
    a[13] = MEM_SIZE - 20;
    assert_false(hca_spawn(&F.g, a));
    assert_string_equal(F.trap,
                        "spawn: a result area of 28 bytes at 65516, " OUTSIDE);
    assert_int_equal(H.spawns, 0);
    assert_int_equal(F.traps, 5);
    /* and with all right again, it spawns */
    a[13] = RET;
    assert_true(hca_spawn(&F.g, a));
    assert_int_equal(H.spawns, 1);
    assert_int_equal(H.ngrants, 1);
}

static void test_capabilities(void **state)
{
    uint8_t c[2 * CW_CAP_SIZE] = {0};
    uint32_t p = data(c, sizeof c);
    wr_addr(p + CW_CAP_ISSUER, "c.os", "kv", "distro", "sys");
    wr_str(p + CW_CAP_PARAMS, "{\"db\":1}");
    uint32_t q = p + CW_CAP_SIZE;
    wr_addr(q + CW_CAP_ISSUER, "d.os", "vfs", "distro", "sys");
    wr_str(q + CW_CAP_PARAMS, "\"read\"");
    assert_true(hca_save_capabilities(&F.g, p, 2));
    assert_int_equal(H.saves, 1);
    assert_int_equal(H.caps.ncaps, 2);
    assert_string_equal(H.caps.cap_issuer[0], "c.os@kv:distro:sys");
    assert_string_equal(H.caps.cap_params[0], "{\"db\":1}");
    assert_string_equal(H.caps.cap_issuer[1], "d.os@vfs:distro:sys");
    assert_string_equal(H.caps.cap_params[1], "\"read\"");
    assert_true(hca_drop_capabilities(&F.g, q, 1));
    assert_int_equal(H.drops, 1);
    assert_int_equal(H.caps.ncaps, 1);
    assert_string_equal(H.caps.cap_issuer[0], "d.os@vfs:distro:sys");
    assert_true(hca_save_capabilities(&F.g, MEM_SIZE, 0));
    assert_int_equal(H.saves, 2);
    assert_int_equal(H.caps.ncaps, 0);
    /* our-capabilities: two, then none */
    H.mine = caps2();
    assert_true(hca_our_capabilities(&F.g, RET));
    is_caps2(RET);
    assert_true(hca_our_capabilities(&F.g, RET + 64));
    assert_int_equal(rd32(RET + 64 + CW_LIST_LEN), 0);
    assert_int_equal(F.empties, 1);
    assert_int_equal(H.our_caps_calls, 2);
    assert_int_equal(F.traps, 0);
    /* traps */
    assert_false(hca_save_capabilities(&F.g, MEM_SIZE - CW_CAP_SIZE, 2));
    assert_string_equal(F.trap,
                        "save-capabilities: 80 bytes at 65496, " OUTSIDE);
    wr_list(q + CW_CAP_PARAMS, "a\0", 2);
    assert_false(hca_drop_capabilities(&F.g, p, 2));
    assert_string_equal(F.trap, "drop-capabilities: a string with a NUL "
                                "character, which the node cannot carry");
    assert_false(hca_our_capabilities(&F.g, MEM_SIZE - 4));
    assert_string_equal(F.trap, "our-capabilities: a result area of 8 bytes "
                                "at 65532, " OUTSIDE);
    assert_int_equal(H.saves, 2);
    assert_int_equal(H.drops, 1);
    assert_int_equal(H.our_caps_calls, 2);
    assert_int_equal(F.traps, 3);
}

/* A test with the guest and the host set up afresh. */
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_receive_request),
        T(test_receive_response),
        T(test_receive_send_error),
        T(test_receive_lossy),
        T(test_send_request),
        T(test_send_requests),
        T(test_send_response),
        T(test_send_and_await),
        T(test_send_and_await_refused),
        T(test_blobs_copied),
        T(test_blobs_lent),
        T(test_trap_outside),
        T(test_trap_tag),
        T(test_trap_strings),
        T(test_trap_alloc),
        T(test_reuse),
        T(test_print),
        T(test_our),
        T(test_result_area),
        T(test_state),
        T(test_get_on_exit),
        T(test_set_on_exit),
        T(test_spawn),
        T(test_spawn_traps),
        T(test_capabilities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
