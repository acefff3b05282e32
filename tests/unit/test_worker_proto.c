/* The worker protocol's codec (src/worker/proto.c): every ABI type through
 * a frame and back, full and minimal, compared field by field and released
 * with the hw_*_fini functions; a few frames against hand-computed msgpack
 * bytes, which pin the wire format; hostile frames (truncated, wrong types
 * at every position of a request, over the limit, not an array, ...); and
 * frames over a socket pair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/abi_types.h"
#include "worker/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------ comparing */

static void eq_str(const char *a, const char *b)
{
    if (a == NULL || b == NULL) {
        assert_true(a == NULL && b == NULL);
        return;
    }
    assert_string_equal(a, b);
}

/* b was decoded: its ptr is never NULL. */
static void eq_bytes(const hw_bytes *a, const hw_bytes *b)
{
    assert_int_equal(a->len, b->len);
    assert_non_null(b->ptr);
    if (a->len)
        assert_memory_equal(a->ptr, b->ptr, a->len);
}

static void eq_pid(const hw_process_id *a, const hw_process_id *b)
{
    eq_str(a->process_name, b->process_name);
    eq_str(a->package_name, b->package_name);
    eq_str(a->publisher_node, b->publisher_node);
}

/* b was decoded: one allocation starting at node. */
static void eq_addr(const hw_address *a, const hw_address *b)
{
    eq_str(a->node, b->node);
    eq_pid(&a->process, &b->process);
    assert_ptr_equal(b->process.process_name, b->node + strlen(b->node) + 1);
    assert_ptr_equal(b->process.package_name,
                     b->process.process_name + strlen(b->process.process_name) +
                         1);
    assert_ptr_equal(b->process.publisher_node,
                     b->process.package_name + strlen(b->process.package_name) +
                         1);
}

static void eq_blob(const hw_blob *a, const hw_blob *b)
{
    eq_str(a->mime, b->mime);
    eq_bytes(&a->bytes, &b->bytes);
}

static void eq_caps(const hw_capability *a, size_t na,
                    const hw_capability_list *b)
{
    assert_int_equal(na, b->len);
    if (na == 0)
        assert_null(b->ptr);
    for (size_t i = 0; i < na; i++) {
        eq_addr(&a[i].issuer, &b->ptr[i].issuer);
        eq_str(a[i].params, b->ptr[i].params);
    }
}

static void eq_request(const hw_request *a, const hw_request *b)
{
    assert_int_equal(a->inherit, b->inherit);
    assert_int_equal(a->has_expects_response, b->has_expects_response);
    if (a->has_expects_response)
        assert_int_equal(a->expects_response, b->expects_response);
    else
        assert_int_equal(b->expects_response, 0);
    eq_bytes(&a->body, &b->body);
    eq_str(a->metadata, b->metadata);
    eq_caps(a->capabilities.ptr, a->capabilities.len, &b->capabilities);
}

static void eq_response(const hw_response *a, const hw_response *b)
{
    assert_int_equal(a->inherit, b->inherit);
    eq_bytes(&a->body, &b->body);
    eq_str(a->metadata, b->metadata);
    eq_caps(a->capabilities.ptr, a->capabilities.len, &b->capabilities);
}

static void eq_message(const hw_message *a, const hw_message *b)
{
    assert_int_equal(a->kind, b->kind);
    if (a->kind == HW_MESSAGE_REQUEST) {
        eq_request(&a->request, &b->request);
        assert_false(b->has_context);
        assert_null(b->context.ptr);
    } else {
        eq_response(&a->response, &b->response);
        assert_int_equal(a->has_context, b->has_context);
        if (a->has_context)
            eq_bytes(&a->context, &b->context);
        else
            assert_null(b->context.ptr);
    }
}

static void eq_send_error(const hw_send_error *a, const hw_send_error *b)
{
    assert_int_equal(a->kind, b->kind);
    eq_addr(&a->target, &b->target);
    eq_message(&a->message, &b->message);
    assert_int_equal(a->has_blob, b->has_blob);
    if (a->has_blob)
        eq_blob(&a->blob, &b->blob);
}

static void eq_on_exit(const hw_on_exit *a, const hw_on_exit *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->requests_len, b->requests_len);
    for (size_t i = 0; i < a->requests_len; i++) {
        const hw_outgoing_request *x = &a->requests[i], *y = &b->requests[i];
        eq_addr(&x->target, &y->target);
        eq_request(&x->request, &y->request);
        assert_int_equal(x->has_context, y->has_context);
        if (x->has_context)
            eq_bytes(&x->context, &y->context);
        assert_int_equal(x->has_blob, y->has_blob);
        if (x->has_blob)
            eq_blob(&x->blob, &y->blob);
    }
}

/* ------------------------------------------------------------ values */

static uint8_t body_bytes[] = {0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d, 0x00};
static uint8_t ctx_bytes[] = {1, 2, 3, 4, 5};
static uint8_t blob_bytes[300]; /* over 255: a bin 16 */

static hw_capability caps2[] = {
    {{"node.os", {"proc", "pkg", "pub.os"}}, "\"messaging\""},
    {{"other.os", {"p2", "k2", "u2.os"}}, "{\"root\":true}"},
};

/* A request with every field set. */
static hw_request full_request(void)
{
    hw_request r = {0};
    r.inherit = true;
    r.has_expects_response = true;
    r.expects_response = 1ull << 40;
    r.body = (hw_bytes){body_bytes, sizeof body_bytes};
    r.metadata = "{\"m\":1}";
    r.capabilities = (hw_capability_list){caps2, 2};
    return r;
}

static hw_response full_response(void)
{
    hw_response r = {0};
    r.inherit = true;
    r.body = (hw_bytes){body_bytes, sizeof body_bytes};
    r.metadata = "caf\xc3\xa9";
    r.capabilities = (hw_capability_list){caps2, 1};
    return r;
}

static const hw_address addr_a = {"a.os", {"x", "y", "z.os"}};
/* empty strings are valid on the wire */
static const hw_address addr_e = {"", {"", "", ""}};

/* ------------------------------------------------------------ helpers */

/* Parse what f holds into in; check op and argument count. */
static void reparse(hcw_frame *f, hcw_in *in, int op, size_t nargs)
{
    size_t len;
    const uint8_t *p = hcw_frame_bytes(f, &len);
    char err[128] = "";
    int rc = hcw_frame_parse(in, p, len, err, sizeof err);
    if (rc != 1)
        fail_msg("parse: %s", err);
    assert_int_equal(in->op, op);
    assert_int_equal(in->nargs, nargs);
    assert_int_equal(in->next, 0);
}

/* Parse a frame given as its body: 1 or -1. */
/* in holds no frame (none read yet, or the last read failed): no op and
 * nothing to get. */
static void assert_no_frame(hcw_in *in)
{
    assert_int_equal(in->op, 0);
    assert_int_equal(in->nargs, 0);
    assert_false(hcw_get_nil(in));
}

static int parse_body(hcw_in *in, const uint8_t *body, size_t n)
{
    uint8_t *p = malloc(n + 4);
    assert_non_null(p);
    p[0] = (uint8_t)n;
    p[1] = (uint8_t)(n >> 8);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 24);
    memcpy(p + 4, body, n);
    char err[128] = "";
    int rc = hcw_frame_parse(in, p, n + 4, err, sizeof err);
    if (rc != 1)
        assert_true(err[0] != 0);
    free(p);
    return rc;
}

static void assert_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            fail_msg("byte %zu of the output is not zero", i);
}

static void assert_frame(hcw_frame *f, const uint8_t *body, size_t n)
{
    size_t len;
    const uint8_t *p = hcw_frame_bytes(f, &len);
    assert_int_equal(len, n + 4);
    uint8_t hdr[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16),
                      (uint8_t)(n >> 24)};
    assert_memory_equal(p, hdr, 4);
    assert_memory_equal(p + 4, body, n);
}

/* ------------------------------------------------------------ tests */

static void op_names(void **state)
{
    (void)state;
    assert_string_equal(hcw_op_name(HCW_PRINT), "PRINT");
    assert_string_equal(hcw_op_name(23), "SET_STATE_START");
    assert_string_equal(hcw_op_name(HCW_HELLO), "HELLO");
    assert_string_equal(hcw_op_name(70), "EXIT");
    assert_null(hcw_op_name(0));
    assert_null(hcw_op_name(24));
    assert_null(hcw_op_name(63));
    assert_string_equal(hcw_op_name(71), "TRAP");
    assert_string_equal(hcw_op_name(72), "DELIVER");
    assert_string_equal(hcw_op_name(26), "LANE_DROP");
    assert_null(hcw_op_name(25));
    assert_string_equal(hcw_op_name(73), "LANE_OPEN");
    assert_string_equal(hcw_op_name(74), "LANE_CLOSE");
    assert_null(hcw_op_name(75));
    assert_string_equal(hcw_op_name(27), "SYNC");
    assert_string_equal(hcw_op_name(HCW_LRESP), "LRESP");
    assert_null(hcw_op_name(-1));
}

/* Hand-computed msgpack: these pin the wire format. */
static void exact_bytes(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();

    hcw_frame_begin(f, HCW_PRINT, 2);
    hcw_put_u64(f, 1);
    hcw_put_str(f, "hi");
    static const uint8_t print[] = {0x93, 0x01, 0x01, 0xa2, 'h', 'i'};
    assert_frame(f, print, sizeof print);

    hcw_frame_begin(f, HCW_REPLY, 1);
    hcw_put_address(f, &(hw_address){"n", {"p", "k", "u"}});
    static const uint8_t our[] = {0x92, 0x42, 0x92, 0xa1, 'n',  0x93,
                                  0xa1, 'p',  0xa1, 'k',  0xa1, 'u'};
    assert_frame(f, our, sizeof our);

    /* LANE_CLOSE's list of ids: an array of unsigned integers */
    static const uint64_t ids[] = {1, 300};
    hcw_frame_begin(f, HCW_LANE_CLOSE, 5);
    hcw_put_u64(f, 7);
    hcw_put_u64(f, 0);
    hcw_put_u64(f, 0);
    hcw_put_u64(f, 0);
    hcw_put_u64s(f, ids, 2);
    static const uint8_t close_[] = {0x96, 0x4a, 0x07, 0x00, 0x00, 0x00,
                                     0x92, 0x01, 0xcd, 0x01, 0x2c};
    assert_frame(f, close_, sizeof close_);
    hcw_frame_begin(f, HCW_REPLY, 1);
    hcw_put_u64s(f, NULL, 0);
    static const uint8_t none[] = {0x92, 0x42, 0x90};
    assert_frame(f, none, sizeof none);

    /* a minimal request: no expects-response, empty body, no metadata, no
     * caps; no context, no blob */
    hw_request r = {0};
    hcw_frame_begin(f, HCW_SEND_REQUEST, 4);
    hcw_put_address(f, &(hw_address){"n", {"p", "k", "u"}});
    hcw_put_request(f, &r);
    hcw_put_bytes_opt(f, false, NULL);
    hcw_put_blob_opt(f, NULL);
    static const uint8_t send[] = {0x95, 0x10, 0x92, 0xa1, 'n',  0x93, 0xa1,
                                   'p',  0xa1, 'k',  0xa1, 'u',  0x95, 0xc2,
                                   0xc0, 0xc4, 0x00, 0xc0, 0x90, 0xc0, 0xc0};
    assert_frame(f, send, sizeof send);

    /* expects-response 300 (uint 16), a body, metadata, a blob with mime */
    r.inherit = true;
    r.has_expects_response = true;
    r.expects_response = 300;
    r.body = (hw_bytes){(uint8_t *)"ab", 2};
    r.metadata = "m";
    hw_blob b = {"t", {(uint8_t *)"\x01", 1}};
    hcw_frame_begin(f, HCW_SEND_AND_AWAIT, 3);
    hcw_put_address(f, &(hw_address){"n", {"p", "k", "u"}});
    hcw_put_request(f, &r);
    hcw_put_blob_opt(f, &b);
    static const uint8_t await[] = {
        0x94, 0x12, 0x92, 0xa1, 'n',  0x93, 0xa1, 'p',  0xa1, 'k',
        0xa1, 'u',  0x95, 0xc3, 0xcd, 0x01, 0x2c, 0xc4, 0x02, 'a',
        'b',  0xa1, 'm',  0x90, 0x92, 0xa1, 't',  0xc4, 0x01, 0x01};
    assert_frame(f, await, sizeof await);

    hcw_frame_begin(f, HCW_REPLY, 1);
    hcw_put_bin(f, "\x01\x02\x03", 3);
    static const uint8_t state_[] = {0x92, 0x42, 0xc4, 0x03, 1, 2, 3};
    assert_frame(f, state_, sizeof state_);

    hcw_frame_begin(f, HCW_DONE, 1);
    hcw_put_i64(f, -1);
    static const uint8_t done[] = {0x92, 0x43, 0xff};
    assert_frame(f, done, sizeof done);

    /* a response message with a context and no blob, as RECEIVE's reply */
    hw_receive_result rr = {0};
    rr.source = (hw_address){"n", {"p", "k", "u"}};
    rr.message.kind = HW_MESSAGE_RESPONSE;
    rr.message.has_context = true;
    rr.message.context = (hw_bytes){(uint8_t *)"c", 1};
    hcw_frame_begin(f, HCW_REPLY, 2);
    hcw_put_receive_result(f, &rr);
    hcw_put_blob_opt(f, NULL);
    static const uint8_t recv[] = {0x93, 0x42, 0x93, 0x00, 0x92, 0xa1, 'n',
                                   0x93, 0xa1, 'p',  0xa1, 'k',  0xa1, 'u',
                                   0x93, 0x01, 0x94, 0xc2, 0xc4, 0x00, 0xc0,
                                   0x90, 0xc4, 0x01, 'c',  0xc0};
    assert_frame(f, recv, sizeof recv);

    /* on-exit restart */
    hcw_frame_begin(f, HCW_SET_ON_EXIT, 1);
    hcw_put_on_exit(f, &(hw_on_exit){HW_ON_EXIT_RESTART, NULL, 0});
    static const uint8_t onexit[] = {0x92, 0x04, 0x92, 0x01, 0x90};
    assert_frame(f, onexit, sizeof onexit);

    /* crash: SIGSEGV at 0x1000, one pc, one module */
    uint64_t pcs[] = {0x10};
    hcw_module mods[] = {{"a", 0}};
    hcw_frame_begin(f, HCW_CRASH, 1);
    hcw_put_crash(f, &(hcw_crash){11, 0x1000, true, pcs, 1, mods, 1});
    static const uint8_t crash[] = {0x92, 0x45, 0x95, 0x0b, 0xcd,
                                    0x10, 0x00, 0xc3, 0x91, 0x10,
                                    0x91, 0x92, 0xa1, 'a',  0x00};
    assert_frame(f, crash, sizeof crash);

    /* HELLO; a 32-byte string is a str 8 */
    const char *s32 = "0123456789abcdef0123456789abcdef";
    hcw_frame_begin(f, HCW_HELLO, 4);
    hcw_put_u64(f, 2);
    hcw_put_str(f, "o");
    hcw_put_str(f, s32);
    hcw_put_str(f, NULL);
    uint8_t hello[6 + 2 + 2 + 32 + 1];
    size_t k = 0;
    hello[k++] = 0x95;
    hello[k++] = 0x40;
    hello[k++] = 0x02;
    hello[k++] = 0xa1;
    hello[k++] = 'o';
    hello[k++] = 0xd9;
    hello[k++] = 32;
    memcpy(hello + k, s32, 32);
    k += 32;
    hello[k++] = 0xc0;
    assert_frame(f, hello, k);

    /* SYNC (lanes): `0`, or [address, u64 id, bool expects] */
    hcw_frame_begin(f, HCW_SYNC, 1);
    hcw_put_prompting(f, &(hcw_prompting){.none = true});
    static const uint8_t sync_none[] = {0x92, 0x1b, 0x00};
    assert_frame(f, sync_none, sizeof sync_none);
    hcw_frame_begin(f, HCW_SYNC, 1);
    hcw_put_prompting(f, &(hcw_prompting){
                             .source = {"n", {"p", "k", "u"}},
                             .id = (1ull << 63) | 5,
                             .expects = true,
                         });
    static const uint8_t sync_stub[] = {
        0x92, 0x1b, 0x93, 0x92, 0xa1, 'n',  0x93, 0xa1, 'p',  0xa1, 'k', 0xa1,
        'u',  0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc3};
    assert_frame(f, sync_stub, sizeof sync_stub);

    hcw_frame_free(f);
}

/* SYNC's argument read back, and what is not one refused. */
static void sync_prompting(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hcw_prompting p;

    hcw_frame_begin(f, HCW_SYNC, 1);
    hcw_put_prompting(f, &(hcw_prompting){.none = true});
    reparse(f, &in, HCW_SYNC, 1);
    assert_true(hcw_get_prompting(&in, &p));
    assert_true(p.none);

    hcw_frame_begin(f, HCW_SYNC, 1);
    hcw_put_prompting(
        f,
        &(hcw_prompting){.source = addr_a, .id = UINT64_MAX, .expects = false});
    reparse(f, &in, HCW_SYNC, 1);
    assert_true(hcw_get_prompting(&in, &p));
    assert_false(p.none);
    assert_string_equal(p.source.node, "a.os");
    assert_string_equal(p.source.process.process_name, "x");
    assert_string_equal(p.source.process.package_name, "y");
    assert_string_equal(p.source.process.publisher_node, "z.os");
    assert_true(p.id == UINT64_MAX);
    assert_false(p.expects);
    hw_address_fini(&p.source);
    assert_false(hcw_get_prompting(&in, &p)); /* nothing left */

    static const struct {
        uint8_t b[24];
        size_t n;
    } bad[] = {
        {{0x92, 0x1b, 0x01}, 3},             /* 1, not 0 */
        {{0x92, 0x1b, 0xc0}, 3},             /* nil */
        {{0x92, 0x1b, 0xff}, 3},             /* -1 */
        {{0x92, 0x1b, 0x92, 0x01, 0xc3}, 5}, /* two elements */
        {{0x92, 0x1b, 0x93, 0x92, 0xa1, 'n', 0x93, 0xa1, 'p', 0xa1, 'k', 0xa1,
          'u', 0x01, 0x01},
         15}, /* expects not a bool */
        {{0x92, 0x1b, 0x93, 0x92, 0xa1, 'n', 0x93, 0xa1, 'p', 0xa1, 'k', 0xa1,
          'u', 0xc3, 0xc3},
         15},                                      /* the id not an integer */
        {{0x92, 0x1b, 0x93, 0xc0, 0x01, 0xc3}, 6}, /* no address */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_body(&in, bad[i].b, bad[i].n), 1);
        assert_false(hcw_get_prompting(&in, &p));
        assert_zero(&p, sizeof p);
        assert_int_equal(in.next, 0); /* not consumed */
    }
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* [u64...] (LANE_CLOSE's adopted ids): read back whole, empty as NULL, and
 * refused over the limit or with anything but unsigned integers. */
static void u64_lists(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    const uint64_t ids[] = {1, UINT64_MAX, 1ull << 63};
    hcw_frame_begin(f, HCW_LANE_CLOSE, 4);
    hcw_put_u64s(f, ids, 3);
    hcw_put_u64s(f, NULL, 0);
    hcw_put_u64s(f, ids, 3);
    hcw_put_strs(f, (const char *const[]){"1"}, 1);
    reparse(f, &in, HCW_LANE_CLOSE, 4);
    uint64_t *v;
    size_t n;
    assert_true(hcw_get_u64s(&in, 3, &v, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(v, ids, sizeof ids);
    free(v);
    assert_true(hcw_get_u64s(&in, 3, &v, &n));
    assert_int_equal(n, 0);
    assert_null(v);
    assert_false(hcw_get_u64s(&in, 2, &v, &n)); /* over the limit */
    assert_null(v);
    assert_int_equal(n, 0);
    assert_true(hcw_get_u64s(&in, 3, &v, &n));
    free(v);
    assert_false(hcw_get_u64s(&in, 3, &v, &n)); /* strings */
    assert_false(hcw_get_u64s(&in, 3, &v, &n)); /* none left */
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void round_trip_scalars(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hcw_frame_begin(f, HCW_SPAWN, 11);
    hcw_put_nil(f);
    hcw_put_bool(f, true);
    hcw_put_bool(f, false);
    hcw_put_u64(f, UINT64_MAX);
    hcw_put_i64(f, INT64_MIN);
    hcw_put_i64(f, 42);
    hcw_put_str(f, "caf\xc3\xa9");
    hcw_put_str(f, NULL);
    hcw_put_bin(f, NULL, 0);
    hcw_put_bytes_opt(f, true, &(hw_bytes){ctx_bytes, sizeof ctx_bytes});
    hcw_put_bytes_opt(f, false, NULL);
    assert_int_equal(hcw_frame_send(f, -1), -1); /* -1: not a descriptor */
    reparse(f, &in, HCW_SPAWN, 11);

    bool b = true;
    uint64_t u;
    int64_t i;
    char *s;
    hw_bytes by;
    bool has;
    assert_false(hcw_get_bool(&in, &b)); /* a nil */
    assert_false(b);
    assert_int_equal(in.next, 0);
    assert_true(hcw_get_nil(&in));
    assert_false(hcw_get_nil(&in));
    assert_true(hcw_get_bool(&in, &b));
    assert_true(b);
    assert_true(hcw_get_bool(&in, &b));
    assert_false(b);
    assert_false(hcw_get_i64(&in, &i)); /* UINT64_MAX is no i64 */
    assert_true(hcw_get_u64(&in, &u));
    assert_true(u == UINT64_MAX);
    assert_false(hcw_get_u64(&in, &u)); /* negative */
    assert_true(hcw_get_i64(&in, &i));
    assert_true(i == INT64_MIN);
    assert_true(hcw_get_i64(&in, &i));
    assert_int_equal(i, 42);
    assert_true(hcw_get_str(&in, &s));
    assert_string_equal(s, "caf\xc3\xa9");
    free(s);
    assert_true(hcw_get_str(&in, &s));
    assert_null(s);
    assert_false(hcw_get_str(&in, &s)); /* a bin */
    assert_true(hcw_get_bin(&in, &by));
    assert_int_equal(by.len, 0);
    assert_non_null(by.ptr);
    hw_bytes_fini(&by);
    assert_true(hcw_get_bytes_opt(&in, &has, &by));
    assert_true(has);
    eq_bytes(&(hw_bytes){ctx_bytes, sizeof ctx_bytes}, &by);
    hw_bytes_fini(&by);
    assert_false(hcw_get_bin(&in, &by)); /* nil is not a bin */
    assert_true(hcw_get_bytes_opt(&in, &has, &by));
    assert_false(has);
    assert_null(by.ptr);
    /* nothing left */
    assert_false(hcw_get_nil(&in));
    assert_false(hcw_get_bool(&in, &b));
    assert_false(hcw_get_str(&in, &s));
    assert_null(s);
    assert_int_equal(in.next, 11);
    hcw_in_fini(&in);
    /* nothing read at all */
    assert_false(hcw_get_u64(&in, &u));
    hcw_frame_free(f);
}

static void round_trip_ids(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hw_process_id pids[] = {{"a", "b", "c.os"}, {"", "", ""}, {"x", "y", "z"}};
    const char *strs[] = {"\"messaging\"", "", "{\"x\":[1,2]}"};
    hcw_frame_begin(f, HCW_REPLY, 8);
    hcw_put_address(f, &addr_a);
    hcw_put_address(f, &addr_e);
    hcw_put_process_id(f, &pids[0]);
    hcw_put_process_ids(f, pids, 3);
    hcw_put_process_ids(f, NULL, 0);
    hcw_put_strs(f, strs, 3);
    hcw_put_strs(f, NULL, 0);
    hcw_put_caps(f, caps2, 2);
    reparse(f, &in, HCW_REPLY, 8);

    hw_address a;
    hw_process_id p;
    assert_false(hcw_get_process_id(&in, &p)); /* an address */
    assert_zero(&p, sizeof p);
    assert_true(hcw_get_address(&in, &a));
    eq_addr(&addr_a, &a);
    hw_address_fini(&a);
    assert_true(hcw_get_address(&in, &a));
    eq_addr(&addr_e, &a);
    hw_address_fini(&a);
    assert_false(hcw_get_address(&in, &a)); /* a process id */
    assert_zero(&a, sizeof a);
    assert_true(hcw_get_process_id(&in, &p));
    eq_pid(&pids[0], &p);
    assert_ptr_equal(p.package_name, p.process_name + 2);
    hw_process_id_fini(&p);

    hw_process_id *pv;
    size_t n;
    assert_true(hcw_get_process_ids(&in, &pv, &n));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        eq_pid(&pids[i], &pv[i]);
        hw_process_id_fini(&pv[i]);
    }
    free(pv);
    assert_true(hcw_get_process_ids(&in, &pv, &n));
    assert_int_equal(n, 0);
    free(pv);

    char **sv;
    assert_false(hcw_get_process_ids(&in, &pv, &n)); /* strings */
    assert_null(pv);
    assert_int_equal(n, 0);
    assert_true(hcw_get_strs(&in, &sv, &n));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(sv[i], strs[i]);
        free(sv[i]);
    }
    free(sv);
    assert_true(hcw_get_strs(&in, &sv, &n));
    assert_int_equal(n, 0);
    free(sv);

    hw_capability_list cl;
    assert_true(hcw_get_caps(&in, &cl));
    eq_caps(caps2, 2, &cl);
    hw_capability_list_fini(&cl);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void round_trip_messages(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hw_request rq = full_request(), rq0 = {0};
    hw_response rs = full_response(), rs0 = {0};
    hw_message m1 = {.kind = HW_MESSAGE_REQUEST, .request = rq};
    hw_message m2 = {.kind = HW_MESSAGE_RESPONSE,
                     .response = rs,
                     .has_context = true,
                     .context = {ctx_bytes, sizeof ctx_bytes}};
    hw_message m3 = {.kind = HW_MESSAGE_RESPONSE, .response = rs0};
    hw_blob b1 = {"text/plain", {blob_bytes, sizeof blob_bytes}};
    hw_blob b0 = {NULL, {NULL, 0}};
    hcw_frame_begin(f, HCW_REPLY, 10);
    hcw_put_request(f, &rq);
    hcw_put_request(f, &rq0);
    hcw_put_response(f, &rs);
    hcw_put_response(f, &rs0);
    hcw_put_message(f, &m1);
    hcw_put_message(f, &m2);
    hcw_put_message(f, &m3);
    hcw_put_blob_opt(f, &b1);
    hcw_put_blob_opt(f, &b0);
    hcw_put_blob_opt(f, NULL);
    reparse(f, &in, HCW_REPLY, 10);

    hw_request r;
    hw_response p;
    hw_message m;
    hw_blob b;
    bool has;
    assert_false(hcw_get_response(&in, &p)); /* 5 elements, not 4 */
    assert_zero(&p, sizeof p);
    assert_true(hcw_get_request(&in, &r));
    eq_request(&rq, &r);
    hcc_request_fini(&r);
    assert_zero(&r, sizeof r);
    assert_true(hcw_get_request(&in, &r));
    eq_request(&rq0, &r);
    hcc_request_fini(&r);
    assert_false(hcw_get_request(&in, &r));
    assert_zero(&r, sizeof r);
    assert_true(hcw_get_response(&in, &p));
    eq_response(&rs, &p);
    hcc_response_fini(&p);
    assert_true(hcw_get_response(&in, &p));
    eq_response(&rs0, &p);
    hcc_response_fini(&p);
    /* the same with the body lent from the frame: equal, and the body
     * inside the decoded frame, not a copy */
    size_t after = in.next;
    in.next = 0;
    assert_false(hcw_get_response_view(&in, &p));
    assert_zero(&p, sizeof p);
    assert_true(hcw_get_request_view(&in, &r));
    eq_request(&rq, &r);
    assert_true(r.body.len > 0);
    hw_request r2;
    in.next--; /* read again: the same bytes, where a copy would differ */
    assert_true(hcw_get_request_view(&in, &r2));
    assert_true(r.body.ptr == r2.body.ptr);
    hcw_request_view_fini(&r2);
    hcw_request_view_fini(&r);
    assert_zero(&r, sizeof r);
    assert_true(hcw_get_request_view(&in, &r));
    eq_request(&rq0, &r);
    assert_non_null(r.body.ptr); /* never NULL, even when empty */
    hcw_request_view_fini(&r);
    assert_false(hcw_get_request_view(&in, &r));
    assert_zero(&r, sizeof r);
    assert_true(hcw_get_response_view(&in, &p));
    eq_response(&rs, &p);
    hcw_response_view_fini(&p);
    assert_true(hcw_get_response_view(&in, &p));
    eq_response(&rs0, &p);
    assert_non_null(p.body.ptr);
    hcw_response_view_fini(&p);
    assert_int_equal(in.next, after);
    assert_true(hcw_get_message(&in, &m));
    eq_message(&m1, &m);
    hw_message_fini(&m);
    assert_true(hcw_get_message(&in, &m));
    eq_message(&m2, &m);
    hw_message_fini(&m);
    assert_true(hcw_get_message(&in, &m));
    eq_message(&m3, &m);
    hw_message_fini(&m);
    assert_true(hcw_get_blob_opt(&in, &has, &b));
    assert_true(has);
    eq_blob(&b1, &b);
    hw_blob_fini(&b);
    assert_true(hcw_get_blob_opt(&in, &has, &b));
    assert_true(has);
    eq_blob(&b0, &b);
    hw_blob_fini(&b);
    assert_true(hcw_get_blob_opt(&in, &has, &b));
    assert_false(has);
    assert_zero(&b, sizeof b);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void round_trip_on_exit(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hw_outgoing_request reqs[2] = {0};
    reqs[0].target = addr_a;
    reqs[0].request = full_request();
    reqs[0].has_context = true;
    reqs[0].context = (hw_bytes){ctx_bytes, sizeof ctx_bytes};
    reqs[0].has_blob = true;
    reqs[0].blob = (hw_blob){"application/json", {blob_bytes, 3}};
    reqs[1].target = addr_e;
    reqs[1].has_context = true;
    reqs[1].context = (hw_bytes){NULL, 0};
    reqs[1].has_blob = true;
    reqs[1].blob = (hw_blob){NULL, {blob_bytes, sizeof blob_bytes}};
    hw_on_exit o2 = {HW_ON_EXIT_REQUESTS, reqs, 2};
    hw_on_exit o0 = {HW_ON_EXIT_NONE, NULL, 0};
    hw_on_exit o1 = {HW_ON_EXIT_RESTART, reqs, 2}; /* list not sent */
    hw_on_exit oe = {HW_ON_EXIT_REQUESTS, NULL, 0};
    hcw_frame_begin(f, HCW_REPLY, 4);
    hcw_put_on_exit(f, &o2);
    hcw_put_on_exit(f, &o0);
    hcw_put_on_exit(f, &o1);
    hcw_put_on_exit(f, &oe);
    reparse(f, &in, HCW_REPLY, 4);
    hw_on_exit o;
    assert_true(hcw_get_on_exit(&in, &o));
    eq_on_exit(&o2, &o);
    hw_on_exit_fini(&o);
    assert_true(hcw_get_on_exit(&in, &o));
    eq_on_exit(&o0, &o);
    assert_null(o.requests);
    hw_on_exit_fini(&o);
    assert_true(hcw_get_on_exit(&in, &o));
    assert_int_equal(o.kind, HW_ON_EXIT_RESTART);
    assert_int_equal(o.requests_len, 0);
    hw_on_exit_fini(&o);
    assert_true(hcw_get_on_exit(&in, &o));
    eq_on_exit(&oe, &o);
    hw_on_exit_fini(&o);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void round_trip_results(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hw_request rq = full_request();
    hw_send_error se = {0};
    se.kind = HW_SEND_ERROR_TIMEOUT;
    se.target = addr_a;
    se.message.kind = HW_MESSAGE_REQUEST;
    se.message.request = rq;
    se.has_blob = true;
    se.blob = (hw_blob){"image/png", {blob_bytes, sizeof blob_bytes}};
    hw_send_error se0 = {0};
    se0.target = addr_e;
    se0.message.kind = HW_MESSAGE_REQUEST;

    hw_receive_result ok = {0};
    ok.source = addr_a;
    ok.message.kind = HW_MESSAGE_RESPONSE;
    ok.message.response = full_response();
    ok.message.has_context = true;
    ok.message.context = (hw_bytes){ctx_bytes, 2};
    hw_receive_result err = {0};
    err.is_err = true;
    err.error = se;
    err.has_context = true;
    err.context = (hw_bytes){ctx_bytes, sizeof ctx_bytes};
    hw_receive_result err0 = {0};
    err0.is_err = true;
    err0.error = se0;

    hw_await_result aok = {0};
    aok.source = addr_e;
    aok.message.kind = HW_MESSAGE_REQUEST;
    aok.message.request = rq;
    hw_await_result aerr = {0};
    aerr.is_err = true;
    aerr.error = se;

    hcw_frame_begin(f, HCW_REPLY, 7);
    hcw_put_send_error(f, &se);
    hcw_put_send_error(f, &se0);
    hcw_put_receive_result(f, &ok);
    hcw_put_receive_result(f, &err);
    hcw_put_receive_result(f, &err0);
    hcw_put_await_result(f, &aok);
    hcw_put_await_result(f, &aerr);
    reparse(f, &in, HCW_REPLY, 7);

    hw_send_error e;
    assert_true(hcw_get_send_error(&in, &e));
    eq_send_error(&se, &e);
    hw_send_error_fini(&e);
    assert_true(hcw_get_send_error(&in, &e));
    eq_send_error(&se0, &e);
    assert_false(e.has_blob);
    hw_send_error_fini(&e);

    hw_receive_result r;
    hw_await_result a;
    assert_true(hcw_get_receive_result(&in, &r));
    assert_false(r.is_err);
    eq_addr(&ok.source, &r.source);
    eq_message(&ok.message, &r.message);
    assert_false(r.has_context);
    hw_receive_result_fini(&r);
    assert_false(hcw_get_await_result(&in, &a)); /* [1, err, ctx] */
    assert_true(hcw_get_receive_result(&in, &r));
    assert_true(r.is_err);
    eq_send_error(&se, &r.error);
    assert_true(r.has_context);
    eq_bytes(&err.context, &r.context);
    assert_null(r.source.node);
    hw_receive_result_fini(&r);
    assert_true(hcw_get_receive_result(&in, &r));
    assert_true(r.is_err);
    eq_send_error(&se0, &r.error);
    assert_false(r.has_context);
    assert_null(r.context.ptr);
    hw_receive_result_fini(&r);

    assert_true(hcw_get_await_result(&in, &a));
    assert_false(a.is_err);
    eq_addr(&aok.source, &a.source);
    eq_message(&aok.message, &a.message);
    hw_await_result_fini(&a);
    assert_false(hcw_get_receive_result(&in, &r)); /* [1, err]: 2 */
    assert_zero(&r, sizeof r);
    assert_true(hcw_get_await_result(&in, &a));
    assert_true(a.is_err);
    eq_send_error(&se, &a.error);
    hw_await_result_fini(&a);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

static void round_trip_crash(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    uint64_t pcs[] = {0x7f0000001234, 0x55550000abcd, 1, UINT64_MAX};
    hcw_module mods[] = {{"/opt/p/pkg/app.so", 0x7f0000000000},
                         {"/lib/x86_64-linux-gnu/libc.so.6", 0x7f1000000000}};
    hcw_crash c1 = {11, 0xdeadbeef, true, pcs, 4, mods, 2};
    hcw_crash c0 = {-2147483647 - 1, 0, false, NULL, 0, NULL, 0};
    hcw_frame_begin(f, HCW_CRASH, 2);
    hcw_put_crash(f, &c1);
    hcw_put_crash(f, &c0);
    reparse(f, &in, HCW_CRASH, 2);
    hcw_crash c;
    assert_true(hcw_get_crash(&in, &c));
    assert_int_equal(c.code, 11);
    assert_true(c.addr == 0xdeadbeef);
    assert_true(c.stack_overflow);
    assert_int_equal(c.npcs, 4);
    for (size_t i = 0; i < 4; i++)
        assert_true(c.pcs[i] == pcs[i]);
    assert_int_equal(c.nmodules, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(c.modules[i].path, mods[i].path);
        assert_true(c.modules[i].base == mods[i].base);
    }
    hcw_crash_fini(&c);
    assert_zero(&c, sizeof c);
    assert_true(hcw_get_crash(&in, &c));
    assert_int_equal(c.code, INT32_MIN);
    assert_int_equal(c.addr, 0);
    assert_false(c.stack_overflow);
    assert_int_equal(c.npcs, 0);
    assert_int_equal(c.nmodules, 0);
    hcw_crash_fini(&c);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* -------------------------------------------------------------- hostile */

static void truncated(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    hw_request rq = full_request();
    hw_blob b = {"t", {blob_bytes, 40}};
    hcw_frame_begin(f, HCW_SEND_REQUEST, 4);
    hcw_put_address(f, &addr_a);
    hcw_put_request(f, &rq);
    hcw_put_bytes_opt(f, true, &(hw_bytes){ctx_bytes, 3});
    hcw_put_blob_opt(f, &b);
    size_t len;
    const uint8_t *p = hcw_frame_bytes(f, &len);
    char err[128];
    for (size_t k = 0; k < len; k++) {
        /* the frame cut short, its length unchanged */
        assert_int_equal(hcw_frame_parse(&in, p, k, err, sizeof err), -1);
        /* and with its length saying so: the msgpack is cut */
        if (k >= 4)
            assert_int_equal(parse_body(&in, p + 4, k - 4), -1);
        assert_no_frame(&in);
    }
    /* one byte too many */
    assert_int_equal(parse_body(&in, p + 4, len - 4), 1);
    uint8_t *q = malloc(len + 1);
    memcpy(q, p + 4, len - 4);
    q[len - 4] = 0xc0;
    assert_int_equal(parse_body(&in, q, len - 3), -1);
    free(q);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* A request's elements, each valid, and for each some wrong values. */
#define ADDR 0x92, 0xa1, 'n', 0x93, 0xa1, 'p', 0xa1, 'k', 0xa1, 'u'
typedef struct piece {
    uint8_t b[40];
    size_t n;
} piece;
#define P(...)                                                                 \
    {                                                                          \
        {__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})                        \
    }

static const piece good[5] = {
    P(0xc3),                                          /* inherit */
    P(0x1e),                                          /* expects 30 */
    P(0xc4, 0x02, 'h', 'i'),                          /* body */
    P(0xa2, '{', '}'),                                /* metadata */
    P(0x92, 0x92, ADDR, 0xa1, 'x', 0x92, ADDR, 0xa0), /* two caps */
};

static const piece bad[5][8] = {
    {P(0x01), P(0xa1, 't'), P(0xc0), P(0x90)},
    {P(0xc3), P(0xff), P(0xa1, '1'), P(0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
     P(0xd0, 0x80)},
    {P(0xa2, 'h', 'i'), P(0xc0), P(0x01), P(0x91, 0x01)},
    {P(0xc4, 0x01, 'x'), P(0x01), P(0xa3, 'a', 0x00, 'b'), P(0xc2)},
    {P(0xc0), P(0x91, 0x01), P(0x92, 0x92, ADDR, 0xa1, 'x', 0x92, ADDR, 0xc0),
     P(0x92, 0x92, ADDR, 0xa1, 'x', 0x91, ADDR),
     P(0x91, 0x92, 0x92, 0xa1, 'n', 0x92, 0xa1, 'p', 0xa1, 'k', 0xa0),
     P(0x91, 0x93, ADDR, 0xa0, 0xa0),
     P(0x91, 0x92, 0x92, 0xc0, 0x93, 0xa1, 'p', 0xa1, 'k', 0xa1, 'u', 0xa0),
     P(0x92, 0x92, ADDR, 0xa0, 0x92, ADDR, 0xc4, 0x00)},
};

/* [op, request] with element `at` replaced by `with` (NULL: all good);
 * n elements of the request (5, or fewer/more). */
static size_t build_request_frame(uint8_t *out, int at, const piece *with,
                                  size_t n)
{
    size_t k = 0;
    out[k++] = 0x92;
    out[k++] = 0x42;
    out[k++] = (uint8_t)(0x90 | n);
    for (size_t i = 0; i < n; i++) {
        const piece *pc = (int)i == at ? with : &good[i % 5];
        memcpy(out + k, pc->b, pc->n);
        k += pc->n;
    }
    return k;
}

static void wrong_types_in_request(void **state)
{
    (void)state;
    hcw_in in;
    hcw_in_init(&in);
    uint8_t buf[256];
    hw_request r;
    hw_message m;
    size_t n = build_request_frame(buf, -1, NULL, 5);
    assert_int_equal(parse_body(&in, buf, n), 1);
    assert_true(hcw_get_request(&in, &r));
    assert_int_equal(r.capabilities.len, 2);
    assert_true(r.has_expects_response);
    assert_int_equal(r.expects_response, 30);
    hcc_request_fini(&r);
    int tried = 0;
    for (int at = 0; at < 5; at++) {
        for (int j = 0; j < 8 && bad[at][j].n; j++) {
            n = build_request_frame(buf, at, &bad[at][j], 5);
            assert_int_equal(parse_body(&in, buf, n), 1);
            memset(&r, 0xa5, sizeof r);
            if (hcw_get_request(&in, &r))
                fail_msg("element %d, wrong value %d accepted", at, j);
            assert_zero(&r, sizeof r);
            assert_int_equal(in.next, 0);
            memset(&r, 0xa5, sizeof r);
            if (hcw_get_request_view(&in, &r))
                fail_msg("element %d, wrong value %d accepted (view)", at, j);
            assert_zero(&r, sizeof r);
            assert_int_equal(in.next, 0);
            /* nested in a message too */
            uint8_t msg[300] = {0x92, 0x42, 0x92, 0x00};
            memcpy(msg + 4, buf + 2, n - 2);
            assert_int_equal(parse_body(&in, msg, n + 2), 1);
            assert_false(hcw_get_message(&in, &m));
            assert_zero(&m, sizeof m);
            tried++;
        }
    }
    assert_int_equal(tried, 25);
    /* 4 and 6 elements */
    for (size_t k = 4; k <= 6; k += 2) {
        n = build_request_frame(buf, -1, NULL, k);
        assert_int_equal(parse_body(&in, buf, n), 1);
        assert_false(hcw_get_request(&in, &r));
        assert_zero(&r, sizeof r);
    }
    hcw_in_fini(&in);
}

/* Frames that parse, with arguments no get accepts. */
static void wrong_values(void **state)
{
    (void)state;
    hcw_in in;
    hcw_in_init(&in);
    hw_message m;
    hw_on_exit o;
    hw_send_error e;
    hw_receive_result r;
    hw_await_result a;
    hcw_crash c;
    hw_blob b;
    bool has;
    char **sv;
    size_t n;
    static const uint8_t req0[] = {0x95, 0xc2, 0xc0, 0xc4, 0x00, 0xc0, 0x90};
    uint8_t f[128];
#define FRAME(...)                                                             \
    do {                                                                       \
        static const uint8_t body_[] = {__VA_ARGS__};                          \
        assert_int_equal(parse_body(&in, body_, sizeof body_), 1);             \
    } while (0)
    /* message tag 2; a request message with a context; a response one
     * without */
    FRAME(0x92, 0x42, 0x92, 0x02, 0x95, 0xc2, 0xc0, 0xc4, 0x00, 0xc0, 0x90);
    assert_false(hcw_get_message(&in, &m));
    FRAME(0x92, 0x42, 0x93, 0x00, 0x95, 0xc2, 0xc0, 0xc4, 0x00, 0xc0, 0x90,
          0xc0);
    assert_false(hcw_get_message(&in, &m));
    FRAME(0x92, 0x42, 0x92, 0x01, 0x94, 0xc2, 0xc4, 0x00, 0xc0, 0x90);
    assert_false(hcw_get_message(&in, &m));
    FRAME(0x92, 0x42, 0x92, 0xff, 0x94, 0xc2, 0xc4, 0x00, 0xc0, 0x90);
    assert_false(hcw_get_message(&in, &m));
    assert_zero(&m, sizeof m);
    /* on-exit kind 3; kind 0 with a request; kind 2 with a bad one */
    FRAME(0x92, 0x42, 0x92, 0x03, 0x90);
    assert_false(hcw_get_on_exit(&in, &o));
    size_t k = 0;
    uint8_t head[] = {0x92, 0x42, 0x92, 0x00, 0x91, 0x94, ADDR};
    memcpy(f, head, sizeof head);
    k = sizeof head;
    memcpy(f + k, req0, sizeof req0);
    k += sizeof req0;
    f[k++] = 0xc0;
    f[k++] = 0xc0;
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_false(hcw_get_on_exit(&in, &o));
    f[3] = 0x02;
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_true(hcw_get_on_exit(&in, &o));
    hw_on_exit_fini(&o);
    f[k - 1] = 0x92; /* a blob [nil, 1]: not a bin */
    f[k++] = 0xc0;
    f[k++] = 0x01;
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_false(hcw_get_on_exit(&in, &o));
    assert_zero(&o, sizeof o);
    /* two requests, the second's context a str */
    k = 0;
    uint8_t head2[] = {0x92, 0x42, 0x92, 0x02, 0x92};
    memcpy(f, head2, sizeof head2);
    k = sizeof head2;
    for (int i = 0; i < 2; i++) {
        uint8_t t[] = {0x94, ADDR};
        memcpy(f + k, t, sizeof t);
        k += sizeof t;
        memcpy(f + k, req0, sizeof req0);
        k += sizeof req0;
        f[k++] = i ? 0xa0 : 0xc4;
        if (!i)
            f[k++] = 0x00;
        f[k++] = 0xc0;
    }
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_false(hcw_get_on_exit(&in, &o));
    /* send-error kind 2 */
    k = 0;
    uint8_t se[] = {0x92, 0x42, 0x94, 0x02, ADDR, 0x92, 0x00};
    memcpy(f, se, sizeof se);
    k = sizeof se;
    memcpy(f + k, req0, sizeof req0);
    k += sizeof req0;
    f[k++] = 0xc0;
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_false(hcw_get_send_error(&in, &e));
    f[3] = 0x01;
    assert_int_equal(parse_body(&in, f, k), 1);
    assert_true(hcw_get_send_error(&in, &e));
    hw_send_error_fini(&e);
    /* receive-result tag 2, and an ok with a broken message */
    FRAME(0x92, 0x42, 0x93, 0x02, ADDR, 0x92, 0x00, 0x95, 0xc2, 0xc0, 0xc4,
          0x00, 0xc0, 0x90);
    assert_false(hcw_get_receive_result(&in, &r));
    FRAME(0x92, 0x42, 0x93, 0x00, ADDR, 0x92, 0x00, 0x95, 0xc2, 0xc0, 0xc4,
          0x00, 0xc0, 0x91, 0x01);
    assert_false(hcw_get_receive_result(&in, &r));
    assert_false(hcw_get_await_result(&in, &a));
    assert_zero(&r, sizeof r);
    assert_zero(&a, sizeof a);
    FRAME(0x92, 0x42, 0x90);
    assert_false(hcw_get_await_result(&in, &a));
    /* crash: code over i32, a pc negative, a module path nil */
    FRAME(0x92, 0x45, 0x95, 0xce, 0x80, 0x00, 0x00, 0x00, 0x00, 0xc2, 0x90,
          0x90);
    assert_false(hcw_get_crash(&in, &c));
    FRAME(0x92, 0x45, 0x95, 0x01, 0x00, 0xc2, 0x92, 0x01, 0xff, 0x90);
    assert_false(hcw_get_crash(&in, &c));
    FRAME(0x92, 0x45, 0x95, 0x01, 0x00, 0xc2, 0x91, 0x01, 0x92, 0x92, 0xa1, 'a',
          0x00, 0x92, 0xc0, 0x00);
    assert_false(hcw_get_crash(&in, &c));
    assert_zero(&c, sizeof c);
    /* blob: three elements; mime a bin */
    FRAME(0x92, 0x42, 0x93, 0xc0, 0xc4, 0x00, 0xc0);
    assert_false(hcw_get_blob_opt(&in, &has, &b));
    FRAME(0x92, 0x42, 0x92, 0xc4, 0x00, 0xc4, 0x00);
    assert_false(hcw_get_blob_opt(&in, &has, &b));
    assert_false(has);
    assert_zero(&b, sizeof b);
    /* strs: a nil and an int after good ones */
    FRAME(0x92, 0x42, 0x93, 0xa1, 'a', 0xa1, 'b', 0xc0);
    assert_false(hcw_get_strs(&in, &sv, &n));
    assert_null(sv);
    FRAME(0x92, 0x42, 0x92, 0xa1, 'a', 0x01);
    assert_false(hcw_get_strs(&in, &sv, &n));
    hw_process_id *pv;
    FRAME(0x92, 0x42, 0x92, 0x93, 0xa1, 'a', 0xa1, 'b', 0xa1, 'c', 0x92, 0xa1,
          'a', 0xa1, 'b');
    assert_false(hcw_get_process_ids(&in, &pv, &n));
    assert_null(pv);
#undef FRAME
    hcw_in_fini(&in);
}

static void broken_frames(void **state)
{
    (void)state;
    hcw_in in;
    hcw_in_init(&in);
    char err[128];
    /* over the limit */
    uint32_t big = HCW_MAX_FRAME + 1;
    uint8_t over[8] = {(uint8_t)big,
                       (uint8_t)(big >> 8),
                       (uint8_t)(big >> 16),
                       (uint8_t)(big >> 24),
                       0x91,
                       0x01};
    err[0] = 0;
    assert_int_equal(hcw_frame_parse(&in, over, 6, err, sizeof err), -1);
    assert_true(strstr(err, "limit") != NULL);
    /* the frame a worker sends: must be an array with an integer op */
    static const struct {
        uint8_t b[12];
        size_t n;
    } bodies[] = {
        {{0}, 0},                                   /* empty */
        {{0x01}, 1},                                /* an int */
        {{0xc0}, 1},                                /* nil */
        {{0xa2, 'h', 'i'}, 3},                      /* a str */
        {{0x81, 0x01, 0x02}, 3},                    /* a map */
        {{0x90}, 1},                                /* [] */
        {{0x92, 0xa1, 'x', 0x01}, 4},               /* ["x", 1] */
        {{0x92, 0xc0, 0x01}, 3},                    /* [nil, 1] */
        {{0x91, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 10}, /* [0.0] */
        {{0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 10}, /* op over INT_MAX */
        {{0x91, 0x01, 0x01}, 3},                    /* trailing byte */
        {{0x92, 0x01}, 2},                          /* short array */
        {{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}, 6},  /* 4G elements claimed */
        {{0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01}, 6},  /* a huge map claimed */
        {{0x92, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xf0}, 7}, /* a huge bin */
        {{0x92, 0x01, 0xc1}, 3},                         /* never used */
        {{0x92, 0x01, 0xc7, 0x05, 0x01}, 5},             /* a cut ext */
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        if (parse_body(&in, bodies[i].b, bodies[i].n) != -1)
            fail_msg("broken frame %zu accepted", i);
        assert_no_frame(&in);
    }
    /* nested deeper than msgpack-c's stack: refused, not crashed */
    uint8_t deep[80];
    deep[0] = 0x92;
    deep[1] = 0x01;
    for (int i = 2; i < 79; i++)
        deep[i] = 0x91;
    deep[79] = 0xc0;
    assert_int_equal(parse_body(&in, deep, sizeof deep), -1);
    /* a negative op and an ext argument are fine as a frame */
    static const uint8_t odd[] = {0x92, 0xff, 0xd4, 0x01, 0x02};
    assert_int_equal(parse_body(&in, odd, sizeof odd), 1);
    assert_int_equal(in.op, -1);
    assert_int_equal(in.nargs, 1);
    bool b;
    assert_false(hcw_get_bool(&in, &b));
    hcw_in_fini(&in);
}

static void send_errors(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    size_t len;
    assert_null(hcw_frame_bytes(f, &len));
    assert_int_equal(len, 0);
    errno = 0;
    assert_int_equal(hcw_frame_send(f, sv[0]), -1); /* nothing begun */
    assert_int_equal(errno, EINVAL);
    hcw_frame_begin(f, HCW_PRINT, 2);
    hcw_put_u64(f, 0);
    errno = 0;
    assert_int_equal(hcw_frame_send(f, sv[0]), -1); /* one put missing */
    assert_int_equal(errno, EINVAL);
    /* over the limit: the bytes are not read */
    static const uint8_t small[1];
    hcw_frame_begin(f, HCW_SET_STATE, 1);
    hcw_put_bin(f, small, (size_t)HCW_MAX_FRAME + 1);
    errno = 0;
    assert_int_equal(hcw_frame_send(f, sv[0]), -1);
    assert_int_equal(errno, EMSGSIZE);
    /* the peer gone: an error, no SIGPIPE */
    close(sv[1]);
    hcw_frame_begin(f, HCW_CLEAR_STATE, 0);
    assert_int_equal(hcw_frame_send(f, sv[0]), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[0]);
    hcw_frame_free(f);
}

static void socket_pair(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    hcw_frame *f = hcw_frame_new();
    hw_request rq = full_request();
    hcw_frame_begin(f, HCW_SEND_REQUEST, 4);
    hcw_put_address(f, &addr_a);
    hcw_put_request(f, &rq);
    hcw_put_bytes_opt(f, true, &(hw_bytes){ctx_bytes, 4});
    hcw_put_blob_opt(f, &(hw_blob){"t", {blob_bytes, sizeof blob_bytes}});
    assert_int_equal(hcw_frame_send(f, sv[0]), 0);
    hcw_frame_begin(f, HCW_DONE, 1);
    hcw_put_i64(f, 0);
    assert_int_equal(hcw_frame_send(f, sv[0]), 0);
    close(sv[0]);

    hcw_in in;
    hcw_in_init(&in);
    char err[128] = "";
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), 1);
    assert_int_equal(in.op, HCW_SEND_REQUEST);
    assert_int_equal(in.nargs, 4);
    hw_address a;
    hw_request r;
    hw_bytes ctx;
    hw_blob b;
    bool has;
    assert_true(hcw_get_address(&in, &a));
    eq_addr(&addr_a, &a);
    hw_address_fini(&a);
    assert_true(hcw_get_request(&in, &r));
    eq_request(&rq, &r);
    hcc_request_fini(&r);
    assert_true(hcw_get_bytes_opt(&in, &has, &ctx));
    assert_true(has);
    eq_bytes(&(hw_bytes){ctx_bytes, 4}, &ctx);
    hw_bytes_fini(&ctx);
    assert_true(hcw_get_blob_opt(&in, &has, &b));
    assert_true(has);
    eq_blob(&(hw_blob){"t", {blob_bytes, sizeof blob_bytes}}, &b);
    hw_blob_fini(&b);
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), 1);
    assert_int_equal(in.op, HCW_DONE);
    int64_t rc = 1;
    assert_true(hcw_get_i64(&in, &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), 0);
    assert_no_frame(&in);
    close(sv[1]);

    /* half a frame: a length, then 3 of its 10 bytes */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static const uint8_t half[] = {10, 0, 0, 0, 0x92, 0x43, 0x00};
    assert_int_equal(write(sv[0], half, sizeof half), (ssize_t)sizeof half);
    close(sv[0]);
    err[0] = 0;
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), -1);
    assert_true(err[0] != 0);
    close(sv[1]);
    /* half a length */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(write(sv[0], half, 2), 2);
    close(sv[0]);
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), -1);
    close(sv[1]);
    /* a length over the limit: refused before reading the body */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(write(sv[0], huge, 4), 4);
    errno = 0;
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), -1);
    assert_int_equal(errno, EMSGSIZE);
    close(sv[0]);
    close(sv[1]);
    /* a well-framed body that is not a frame */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    static const uint8_t notarr[] = {1, 0, 0, 0, 0x01};
    assert_int_equal(write(sv[0], notarr, 5), 5);
    close(sv[0]);
    assert_int_equal(hcw_frame_recv(&in, sv[1], err, sizeof err), -1);
    close(sv[1]);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* The frame buffer is reused; a big frame's buffer is given back. */
static void reuse(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    size_t n = 3u << 20;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7);
    hcw_frame_begin(f, HCW_SET_STATE, 1);
    hcw_put_bin(f, big, n);
    reparse(f, &in, HCW_SET_STATE, 1);
    hw_bytes b;
    assert_true(hcw_get_bin(&in, &b));
    eq_bytes(&(hw_bytes){big, n}, &b);
    hw_bytes_fini(&b);
    hcw_frame_begin(f, HCW_PRINT, 2);
    hcw_put_u64(f, 1);
    hcw_put_str(f, "hi");
    static const uint8_t print[] = {0x93, 0x01, 0x01, 0xa2, 'h', 'i'};
    assert_frame(f, print, sizeof print);
    free(big);
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* The decoder's buffers serve frame after frame (hcw_in_body,
 * hcw_in_decode), a big frame's given back; a trusted frame (the node's, as
 * the worker reads it) skips the structure check but a broken one is still
 * refused. */
static void decoder_reuse(void **state)
{
    (void)state;
    hcw_frame *f = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    char err[128];
    for (int round = 0; round < 3; round++) {
        size_t n = round == 1 ? 200000 : 40;
        uint8_t *bytes = calloc(1, n);
        assert_non_null(bytes);
        bytes[n - 1] = (uint8_t)round;
        hcw_frame_begin(f, HCW_SET_STATE, 1);
        hcw_put_bin(f, bytes, n);
        size_t len;
        const uint8_t *p = hcw_frame_finish(f, &len);
        assert_non_null(p);
        for (int trusted = 0; trusted < 2; trusted++) {
            uint8_t *body = hcw_in_body(&in, len - 4);
            assert_non_null(body);
            memcpy(body, p + 4, len - 4);
            assert_int_equal(
                hcw_in_decode(&in, len - 4, trusted, err, sizeof err), 1);
            assert_int_equal(in.op, HCW_SET_STATE);
            hw_bytes b;
            assert_true(hcw_get_bin(&in, &b));
            eq_bytes(&(hw_bytes){bytes, n}, &b);
            hw_bytes_fini(&b);
        }
        free(bytes);
    }
    static const uint8_t broken[][3] = {
        {0x92, 0x01, 0xc1}, /* never used */
        {0x93, 0x01, 0x02}, /* an element short */
        {0xc0, 0xc0, 0xc0}, /* not one value, not an array */
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++)
        for (int trusted = 0; trusted < 2; trusted++) {
            uint8_t *body = hcw_in_body(&in, 3);
            assert_non_null(body);
            memcpy(body, broken[i], 3);
            err[0] = 0;
            assert_int_equal(hcw_in_decode(&in, 3, trusted, err, sizeof err),
                             -1);
            assert_true(err[0] != 0);
            assert_no_frame(&in);
        }
    hcw_in_fini(&in);
    hcw_frame_free(f);
}

/* ----------------------------------------------------------- lane frames */

/* A lane frame as the generic puts (msgpack-c's packer) write it: what
 * hcw_frame_lreq / _lresp must write byte for byte. */
static void lane_by_puts(hcw_frame *f, hcw_op op, uint64_t id,
                         const uint64_t *expects, const uint8_t *body,
                         size_t blen, const char *meta, const hw_blob *blob)
{
    hcw_frame_begin(f, op, op == HCW_LREQ ? 5 : 4);
    hcw_put_u64(f, id);
    if (op == HCW_LREQ) {
        if (expects)
            hcw_put_u64(f, *expects);
        else
            hcw_put_nil(f);
    }
    hcw_put_bin(f, body, blen);
    hcw_put_str(f, meta);
    hcw_put_blob_opt(f, blob);
}

/* Write one lane frame both ways, compare the bytes, and read it back. */
static void lane_case(hcw_frame *a, hcw_frame *b, hcw_in *in, hcw_op op,
                      uint64_t id, const uint64_t *expects, const uint8_t *body,
                      size_t blen, const char *meta, const hw_blob *blob)
{
    hw_request r = {.has_expects_response = expects != NULL,
                    .expects_response = expects ? *expects : 0,
                    .body = {(uint8_t *)body, blen},
                    .metadata = (char *)meta};
    hw_response resp = {.body = {(uint8_t *)body, blen},
                        .metadata = (char *)meta};
    if (op == HCW_LREQ)
        hcw_frame_lreq(a, id, &r, blob);
    else
        hcw_frame_lresp(a, id, &resp, blob);
    lane_by_puts(b, op, id, expects, body, blen, meta, blob);
    size_t na, nb;
    const uint8_t *pa = hcw_frame_finish(a, &na);
    const uint8_t *pb = hcw_frame_finish(b, &nb);
    assert_non_null(pa);
    assert_non_null(pb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    char err[128];
    assert_int_equal(hcw_frame_parse(in, pa, na, err, sizeof err), 1);
    assert_int_equal(in->op, op);
    size_t rn;
    assert_non_null(hcw_in_raw(in, &rn)); /* (the wasm host's addon) */
    assert_int_equal(rn, na - 4);
    for (int view = 0; view < 2; view++) {
        in->next = 0;
        uint64_t gid;
        hw_request gr;
        hw_response gresp;
        bool has;
        hw_blob gb;
        assert_true(hcw_get_lane_frame(in, view, &gid, &gr, &gresp, &has, &gb));
        assert_true(gid == id);
        const hw_bytes *gbody = op == HCW_LREQ ? &gr.body : &gresp.body;
        eq_bytes(&(hw_bytes){(uint8_t *)body, blen}, gbody);
        eq_str(meta, op == HCW_LREQ ? gr.metadata : gresp.metadata);
        if (op == HCW_LREQ) {
            assert_int_equal(gr.has_expects_response, expects != NULL);
            if (expects)
                assert_true(gr.expects_response == *expects);
        }
        assert_int_equal(has, blob != NULL);
        if (blob)
            eq_blob(blob, &gb);
        hcw_lane_frame_fini(view, &gr, &gresp);
        hw_blob_fini(&gb);
    }
    /* read in place: the generic gets find no arguments */
    in->next = 0;
    uint64_t v;
    assert_false(hcw_get_u64(in, &v));
}

/* The lane frames (hcw_frame_lreq / _lresp, written with MsgPuck) are the
 * bytes msgpack-c's packer makes, across every length form of the body,
 * the metadata, the blob and the integers, and read back (in place) to the
 * same values. */
static void lane_frames(void **state)
{
    (void)state;
    hcw_frame *a = hcw_frame_new(), *b = hcw_frame_new();
    hcw_in in;
    hcw_in_init(&in);
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    static const size_t mlens[] = {0, 31, 32, 255, 256, 65536};
    size_t big = 70000;
    uint8_t *bytes = malloc(big);
    char *text = malloc(big + 1);
    assert_non_null(bytes);
    assert_non_null(text);
    for (size_t i = 0; i < big; i++) {
        bytes[i] = (uint8_t)(i * 7 + 3);
        text[i] = (char)('a' + i % 26);
    }
    uint64_t thirty = 30;
    for (int op = HCW_LREQ; op <= HCW_LRESP; op++)
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
            for (size_t j = 0; j <= sizeof mlens / sizeof mlens[0]; j++)
                for (int k = 0; k < 5; k++) {
                    const char *meta = NULL;
                    if (j < sizeof mlens / sizeof mlens[0]) {
                        text[mlens[j]] = 0;
                        meta = text;
                    }
                    /* no blob; no mime and no bytes; then a mime and
                     * bytes of each length form: fixstr and bin16,
                     * str8 and bin8, str16 and bin32 */
                    static const size_t nmime[] = {0, 0, 24, 40, 300};
                    static const size_t nbytes[] = {0, 0, 300, 200, 70000};
                    char mime[301];
                    memset(mime, 'm', sizeof mime - 1);
                    mime[nmime[k]] = 0;
                    hw_blob bl = {.mime = k >= 2 ? mime : NULL,
                                  .bytes = {bytes + 1, nbytes[k] - (k == 4)}};
                    lane_case(a, b, &in, op, 1ull << 63 | (i * 131 + j),
                              &thirty, bytes, lens[i], meta, k ? &bl : NULL);
                    if (meta)
                        text[mlens[j]] = (char)('a' + mlens[j] % 26);
                }
    /* every integer form, in the id and in expects */
    static const uint64_t ints[] = {
        0,     1,     127,        128,        255,        256,
        65535, 65536, UINT32_MAX, 1ull << 32, UINT64_MAX, 1ull << 63};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        lane_case(a, b, &in, HCW_LREQ, ints[i], &ints[i], bytes, 3, "m", NULL);
        lane_case(a, b, &in, HCW_LREQ, ints[i], NULL, bytes, 3, NULL, NULL);
        lane_case(a, b, &in, HCW_LRESP, ints[i], NULL, bytes, 3, NULL, NULL);
    }
    /* a body over the frame limit: not written (as the packers) */
    hw_request r = {.body = {bytes, (size_t)HCW_MAX_FRAME + 1}};
    hcw_frame_lreq(a, 1, &r, NULL);
    size_t n;
    assert_null(hcw_frame_finish(a, &n));
    assert_int_equal(errno, EMSGSIZE);
    free(bytes);
    free(text);
    hcw_in_fini(&in);
    hcw_frame_free(a);
    hcw_frame_free(b);
}

/* Lane frames that check as msgpack but are not as the writers make them:
 * refused by hcw_get_lane_frame with nothing allocated (ASan: no leak);
 * and a trusted frame that starts as a lane frame is still checked before
 * it is read in place. */
static void lane_frames_refused(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[24];
        size_t n;
    } bad[] = {
        /* the id as a signed int64 (0xd3), not an unsigned form */
        {{0x96, 0x60, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 1, 0xc0, 0xc4, 0x00, 0xc0,
          0xc0},
         16},
        /* expects a string */
        {{0x96, 0x60, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 1, 0xa1, 'x', 0xc4, 0x00,
          0xc0, 0xc0},
         17},
        /* the body a string */
        {{0x95, 0x61, 0x01, 0xa1, 'x', 0xc0, 0xc0}, 7},
        /* metadata with a NUL in it */
        {{0x95, 0x61, 0x01, 0xc4, 0x01, 'b', 0xa2, 'a', 0x00, 0xc0}, 10},
        /* a blob of three */
        {{0x95, 0x61, 0x01, 0xc4, 0x00, 0xc0, 0x93, 0xc0, 0xc4, 0x00, 0xc0},
         11},
        /* a blob whose bytes are a string */
        {{0x95, 0x61, 0x01, 0xc4, 0x00, 0xc0, 0x92, 0xc0, 0xa0}, 9},
        /* an LRESP of three arguments */
        {{0x94, 0x61, 0x01, 0xc4, 0x00, 0xc0}, 6},
        /* an LREQ with a sixth */
        {{0x97, 0x60, 0x01, 0xc0, 0xc4, 0x00, 0xc0, 0xc0, 0xc0}, 9},
    };
    hcw_in in;
    hcw_in_init(&in);
    char err[128];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *body = hcw_in_body(&in, bad[i].n);
        assert_non_null(body);
        memcpy(body, bad[i].b, bad[i].n);
        assert_int_equal(hcw_in_decode(&in, bad[i].n, false, err, sizeof err),
                         1);
        uint64_t id;
        hw_request r;
        hw_response resp;
        bool has;
        hw_blob blob;
        assert_false(
            hcw_get_lane_frame(&in, false, &id, &r, &resp, &has, &blob));
        assert_true(id == 0 && r.body.ptr == NULL && r.metadata == NULL &&
                    resp.body.ptr == NULL && resp.metadata == NULL && !has &&
                    blob.mime == NULL && blob.bytes.ptr == NULL);
    }
    /* trusted, a whole LREQ: read in place as an untrusted one is */
    static const uint8_t whole[] = {0x96, 0x60, 0xcf, 0x80, 0,    0,    0,
                                    0,    0,    0,    7,    0x1e, 0xc4, 0x02,
                                    'h',  'i',  0xa1, 'm',  0xc0};
    uint8_t *wb = hcw_in_body(&in, sizeof whole);
    assert_non_null(wb);
    memcpy(wb, whole, sizeof whole);
    assert_int_equal(hcw_in_decode(&in, sizeof whole, true, err, sizeof err),
                     1);
    uint64_t wid;
    hw_request wr;
    hw_response wresp;
    bool whas;
    hw_blob wblob;
    assert_true(
        hcw_get_lane_frame(&in, true, &wid, &wr, &wresp, &whas, &wblob));
    assert_true(wid == (1ull << 63 | 7) && wr.has_expects_response &&
                wr.expects_response == 30 && !whas);
    eq_bytes(&(hw_bytes){(uint8_t *)"hi", 2}, &wr.body);
    eq_str("m", wr.metadata);
    hcw_lane_frame_fini(true, &wr, &wresp);
    /* trusted, an LREQ whose bin claims 255 bytes that are not there */
    static const uint8_t cut[] = {0x96, 0x60, 0x01, 0xc0, 0xc4, 0xff};
    for (int trusted = 0; trusted < 2; trusted++) {
        uint8_t *body = hcw_in_body(&in, sizeof cut);
        assert_non_null(body);
        memcpy(body, cut, sizeof cut);
        assert_int_equal(
            hcw_in_decode(&in, sizeof cut, trusted, err, sizeof err), -1);
    }
    hcw_in_fini(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(op_names),
        cmocka_unit_test(exact_bytes),
        cmocka_unit_test(sync_prompting),
        cmocka_unit_test(u64_lists),
        cmocka_unit_test(round_trip_scalars),
        cmocka_unit_test(round_trip_ids),
        cmocka_unit_test(round_trip_messages),
        cmocka_unit_test(round_trip_on_exit),
        cmocka_unit_test(round_trip_results),
        cmocka_unit_test(round_trip_crash),
        cmocka_unit_test(truncated),
        cmocka_unit_test(wrong_types_in_request),
        cmocka_unit_test(wrong_values),
        cmocka_unit_test(broken_frames),
        cmocka_unit_test(send_errors),
        cmocka_unit_test(socket_pair),
        cmocka_unit_test(reuse),
        cmocka_unit_test(decoder_reuse),
        cmocka_unit_test(lane_frames),
        cmocka_unit_test(lane_frames_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
