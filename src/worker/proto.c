/* The worker protocol's codec (proto.h; docs/worker-protocol.md).
 *
 * Writing packs with msgpack-c into one buffer that starts with 4 bytes
 * kept for the length.  Reading checks the frame's structure first (one
 * complete msgpack value, every array and map no longer than the bytes left
 * could hold), so that msgpack-c never allocates for elements that are not
 * there, then unpacks it into an object tree; each get walks one argument
 * of that tree and copies what it returns into blocks of its own, laid out
 * as src/common/abi_types.c lays out the ABI's outputs.  A lane's frames
 * (LREQ, LRESP: the exchanges between isolated processes) make no tree:
 * hcw_get_lane_frame reads the checked bytes in place with MsgPuck's
 * decoders, a fraction of msgpack-c's unpack on such a small frame, and
 * lane_frame writes them with MsgPuck's encoders into a buffer sized
 * first. */
#include "proto.h"

#include "../common/abi_types.h"
#include "../common/common.h"

#include <errno.h>
#include <limits.h>
#include <msgpack.h>
/* this unit holds MsgPuck's tables and its functions' bodies */
#define MP_SOURCE 1
#include <msgpuck.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR 4 /* the length before each frame */
/* A frame buffer that grew past this is given back at the next begin. */
#define KEEP_BUFFER (1u << 20)

static void oom(void)
{
    fputs("hyperc: worker protocol: out of memory\n", stderr);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void hcw_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *hcw_op_name(int op)
{
    switch (op) {
#define HCW_OP_CASE(name, code)                                                \
    case code: return #name;
        HCW_OP_MAP(HCW_OP_CASE)
#undef HCW_OP_CASE
    default: return NULL;
    }
}

void hcw_crash_fini(hcw_crash *c)
{
    free(c->pcs);
    for (size_t i = 0; i < c->nmodules; i++)
        free(c->modules[i].path);
    free(c->modules);
    memset(c, 0, sizeof *c);
}

/* ================================================================ writing */

struct hcw_frame {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t nargs; /* announced by begin */
    size_t nput;  /* put so far */
    bool begun;
    bool oversize; /* a string or byte list over HCW_MAX_FRAME was put */
};

/* frame_write's slow path, out of line so that the fast one saves no
 * registers. */
static __attribute__((noinline)) int
frame_grow_write(msgpack_sbuffer *sb, const char *buf, size_t len)
{
    if (msgpack_sbuffer_write(sb, buf, len) != 0)
        oom();
    return 0;
}

/* The packer's sink: most pieces are a type byte or an integer (1, 2, 3,
 * 5 or 9 bytes), copied without a call. */
static int frame_write(void *data, const char *buf, size_t len)
{
    msgpack_sbuffer *sb = data;
    if (len == 0)
        return 0;
    if (len > sb->alloc - sb->size)
        return frame_grow_write(sb, buf, len);
    char *d = sb->data + sb->size;
    switch (len) { /* the packer's fixed pieces: constant copies */
    case 1: d[0] = buf[0]; break;
    case 2: memcpy(d, buf, 2); break;
    case 3: memcpy(d, buf, 3); break;
    case 5: memcpy(d, buf, 5); break;
    case 9: memcpy(d, buf, 9); break;
    default: memcpy(d, buf, len); break;
    }
    sb->size += len;
    return 0;
}

hcw_frame *hcw_frame_new(void)
{
    hcw_frame *f = xcalloc(1, sizeof *f);
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, frame_write);
    return f;
}

void hcw_frame_free(hcw_frame *f)
{
    if (f == NULL)
        return;
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
}

/* Empty f's buffer for a new frame (one that grew large given back). */
static void frame_reset(hcw_frame *f)
{
    if (f->sb.alloc > KEEP_BUFFER) {
        msgpack_sbuffer_destroy(&f->sb);
        msgpack_sbuffer_init(&f->sb);
    }
    msgpack_sbuffer_clear(&f->sb);
}

void hcw_frame_begin(hcw_frame *f, hcw_op op, size_t nargs)
{
    frame_reset(f);
    static const char zero[HDR];
    frame_write(&f->sb, zero, HDR);
    f->nargs = nargs;
    f->nput = 0;
    f->begun = true;
    f->oversize = nargs >= UINT32_MAX;
    msgpack_pack_array(&f->pk, f->oversize ? 1 : nargs + 1);
    msgpack_pack_int64(&f->pk, (int64_t)op);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

const uint8_t *hcw_frame_bytes(const hcw_frame *f, size_t *len)
{
    if (!f->begun) {
        *len = 0;
        return NULL;
    }
    uint8_t *p = (uint8_t *)f->sb.data;
    size_t body = f->sb.size - HDR;
    put_le32(p, body > UINT32_MAX ? UINT32_MAX : (uint32_t)body);
    *len = f->sb.size;
    return p;
}

/* Write all of p (EINTR retried); a socket never raises SIGPIPE. */
static int write_full(int fd, const uint8_t *p, size_t n)
{
    bool sock = true;
    while (n > 0) {
        ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && errno == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

const uint8_t *hcw_frame_finish(hcw_frame *f, size_t *len)
{
    if (!f->begun || f->nput != f->nargs) {
        errno = EINVAL;
        return NULL;
    }
    if (f->oversize || f->sb.size - HDR > HCW_MAX_FRAME) {
        errno = EMSGSIZE;
        return NULL;
    }
    return hcw_frame_bytes(f, len);
}

int hcw_frame_send(hcw_frame *f, int fd)
{
    size_t len;
    const uint8_t *p = hcw_frame_finish(f, &len);
    return p ? write_full(fd, p, len) : -1;
}

/* The packers below write one value each and do not count arguments. */

static void p_nil(hcw_frame *f)
{
    msgpack_pack_nil(&f->pk);
}

static void p_bool(hcw_frame *f, bool v)
{
    if (v)
        msgpack_pack_true(&f->pk);
    else
        msgpack_pack_false(&f->pk);
}

static void p_u64(hcw_frame *f, uint64_t v)
{
    msgpack_pack_uint64(&f->pk, v);
}

static void p_array(hcw_frame *f, size_t n)
{
    if (n > UINT32_MAX) {
        f->oversize = true;
        n = 0;
    }
    msgpack_pack_array(&f->pk, n);
}

static void p_str(hcw_frame *f, const char *s)
{
    if (s == NULL) {
        p_nil(f);
        return;
    }
    size_t n = strlen(s);
    if (n > HCW_MAX_FRAME) {
        f->oversize = true;
        p_nil(f);
        return;
    }
    msgpack_pack_str_with_body(&f->pk, s, n);
}

static void p_bin(hcw_frame *f, const void *p, size_t n)
{
    if (n > HCW_MAX_FRAME) {
        f->oversize = true;
        n = 0;
    }
    msgpack_pack_bin(&f->pk, n);
    if (n)
        msgpack_pack_bin_body(&f->pk, p, n);
}

static void p_bytes_opt(hcw_frame *f, bool has, const hw_bytes *b)
{
    if (has && b != NULL)
        p_bin(f, b->ptr, b->len);
    else
        p_nil(f);
}

static void p_process_id(hcw_frame *f, const hw_process_id *p)
{
    p_array(f, 3);
    p_str(f, p->process_name);
    p_str(f, p->package_name);
    p_str(f, p->publisher_node);
}

static void p_address(hcw_frame *f, const hw_address *a)
{
    p_array(f, 2);
    p_str(f, a->node);
    p_process_id(f, &a->process);
}

static void p_blob_opt(hcw_frame *f, const hw_blob *b)
{
    if (b == NULL) {
        p_nil(f);
        return;
    }
    p_array(f, 2);
    p_str(f, b->mime);
    p_bin(f, b->bytes.ptr, b->bytes.len);
}

static void p_caps(hcw_frame *f, const hw_capability *caps, size_t n)
{
    if (caps == NULL)
        n = 0;
    p_array(f, n);
    for (size_t i = 0; i < n && !f->oversize; i++) {
        p_array(f, 2);
        p_address(f, &caps[i].issuer);
        p_str(f, caps[i].params);
    }
}

static void p_request(hcw_frame *f, const hw_request *r)
{
    p_array(f, 5);
    p_bool(f, r->inherit);
    if (r->has_expects_response)
        p_u64(f, r->expects_response);
    else
        p_nil(f);
    p_bin(f, r->body.ptr, r->body.len);
    p_str(f, r->metadata);
    p_caps(f, r->capabilities.ptr, r->capabilities.len);
}

static void p_response(hcw_frame *f, const hw_response *r)
{
    p_array(f, 4);
    p_bool(f, r->inherit);
    p_bin(f, r->body.ptr, r->body.len);
    p_str(f, r->metadata);
    p_caps(f, r->capabilities.ptr, r->capabilities.len);
}

static void p_message(hcw_frame *f, const hw_message *m)
{
    if (m->kind == HW_MESSAGE_RESPONSE) {
        p_array(f, 3);
        p_u64(f, 1);
        p_response(f, &m->response);
        p_bytes_opt(f, m->has_context, &m->context);
    } else {
        p_array(f, 2);
        p_u64(f, 0);
        p_request(f, &m->request);
    }
}

static void p_on_exit(hcw_frame *f, const hw_on_exit *o)
{
    p_array(f, 2);
    p_u64(f, (uint64_t)o->kind);
    size_t n = o->kind == HW_ON_EXIT_REQUESTS && o->requests != NULL
                   ? o->requests_len
                   : 0;
    p_array(f, n);
    for (size_t i = 0; i < n && !f->oversize; i++) {
        const hw_outgoing_request *r = &o->requests[i];
        p_array(f, 4);
        p_address(f, &r->target);
        p_request(f, &r->request);
        p_bytes_opt(f, r->has_context, &r->context);
        p_blob_opt(f, r->has_blob ? &r->blob : NULL);
    }
}

static void p_send_error(hcw_frame *f, const hw_send_error *e)
{
    p_array(f, 4);
    p_u64(f, (uint64_t)e->kind);
    p_address(f, &e->target);
    p_message(f, &e->message);
    p_blob_opt(f, e->has_blob ? &e->blob : NULL);
}

void hcw_put_nil(hcw_frame *f)
{
    f->nput++;
    p_nil(f);
}

void hcw_put_bool(hcw_frame *f, bool v)
{
    f->nput++;
    p_bool(f, v);
}

void hcw_put_u64(hcw_frame *f, uint64_t v)
{
    f->nput++;
    p_u64(f, v);
}

void hcw_put_i64(hcw_frame *f, int64_t v)
{
    f->nput++;
    msgpack_pack_int64(&f->pk, v);
}

void hcw_put_str(hcw_frame *f, const char *s)
{
    f->nput++;
    p_str(f, s);
}

void hcw_put_bin(hcw_frame *f, const void *p, size_t n)
{
    f->nput++;
    p_bin(f, p, n);
}

void hcw_put_bytes_opt(hcw_frame *f, bool has, const hw_bytes *b)
{
    f->nput++;
    p_bytes_opt(f, has, b);
}

void hcw_put_address(hcw_frame *f, const hw_address *a)
{
    f->nput++;
    p_address(f, a);
}

void hcw_put_process_id(hcw_frame *f, const hw_process_id *p)
{
    f->nput++;
    p_process_id(f, p);
}

void hcw_put_blob_opt(hcw_frame *f, const hw_blob *b)
{
    f->nput++;
    p_blob_opt(f, b);
}

void hcw_put_caps(hcw_frame *f, const hw_capability *caps, size_t n)
{
    f->nput++;
    p_caps(f, caps, n);
}

void hcw_put_request(hcw_frame *f, const hw_request *r)
{
    f->nput++;
    p_request(f, r);
}

void hcw_put_response(hcw_frame *f, const hw_response *r)
{
    f->nput++;
    p_response(f, r);
}

/* The length of s (0 for nil); *over when it is too long, which
 * lane_str writes as nil, as p_str does. */
static size_t lane_str_len(const char *s, bool *over)
{
    size_t n = s ? strlen(s) : 0;
    if (n > HCW_MAX_FRAME)
        *over = true;
    return n;
}

static char *lane_str(char *d, const char *s, size_t n)
{
    return s && n <= HCW_MAX_FRAME ? mp_encode_str(d, s, (uint32_t)n)
                                   : mp_encode_nil(d);
}

static size_t lane_str_size(const char *s, size_t n)
{
    return s && n <= HCW_MAX_FRAME ? mp_sizeof_str((uint32_t)n)
                                   : mp_sizeof_nil();
}

/* A lane frame (hcw_frame_lreq, _lresp) written with MsgPuck's encoders
 * into a buffer sized for it first: the bytes the p_ packers would write
 * (the same shortest forms), without a call a piece.  expects is NULL for
 * an LREQ that expects no response and for an LRESP. */
static void lane_frame(hcw_frame *f, hcw_op op, uint64_t id,
                       const uint64_t *expects, const hw_bytes *body,
                       const char *metadata, const hw_blob *blob)
{
    bool lreq = op == HCW_LREQ, over = false;
    size_t nb = body->len, nm = lane_str_len(metadata, &over), nmime = 0,
           nbb = 0;
    if (nb > HCW_MAX_FRAME) {
        over = true;
        nb = 0;
    }
    size_t need = mp_sizeof_array(lreq ? 6 : 5) + mp_sizeof_uint(op) +
                  mp_sizeof_uint(id) + mp_sizeof_bin((uint32_t)nb) +
                  lane_str_size(metadata, nm) + mp_sizeof_nil();
    if (lreq)
        need += expects ? mp_sizeof_uint(*expects) : mp_sizeof_nil();
    if (blob) {
        nmime = lane_str_len(blob->mime, &over);
        nbb = blob->bytes.len;
        if (nbb > HCW_MAX_FRAME) {
            over = true;
            nbb = 0;
        }
        need += mp_sizeof_array(2) + lane_str_size(blob->mime, nmime) +
                mp_sizeof_bin((uint32_t)nbb) - mp_sizeof_nil();
    }
    frame_reset(f);
    msgpack_sbuffer *sb = &f->sb;
    if (sb->alloc < HDR + need) {
        char *d = realloc(sb->data, HDR + need);
        if (d == NULL)
            oom();
        sb->data = d;
        sb->alloc = HDR + need;
    }
    char *d = sb->data + HDR;
    d = mp_encode_array(d, lreq ? 6 : 5);
    d = mp_encode_uint(d, op);
    d = mp_encode_uint(d, id);
    if (lreq)
        d = expects ? mp_encode_uint(d, *expects) : mp_encode_nil(d);
    d = mp_encode_bin(d, nb ? (const char *)body->ptr : "", (uint32_t)nb);
    d = lane_str(d, metadata, nm);
    if (blob) {
        d = mp_encode_array(d, 2);
        d = lane_str(d, blob->mime, nmime);
        d = mp_encode_bin(d, nbb ? (const char *)blob->bytes.ptr : "",
                          (uint32_t)nbb);
    } else {
        d = mp_encode_nil(d);
    }
    sb->size = (size_t)(d - sb->data);
    f->nargs = f->nput = lreq ? 5 : 4;
    f->begun = true;
    f->oversize = over;
}

void hcw_frame_lreq(hcw_frame *f, uint64_t id, const hw_request *r,
                    const hw_blob *blob)
{
    lane_frame(f, HCW_LREQ, id,
               r->has_expects_response ? &r->expects_response : NULL, &r->body,
               r->metadata, blob);
}

void hcw_frame_lresp(hcw_frame *f, uint64_t id, const hw_response *r,
                     const hw_blob *blob)
{
    lane_frame(f, HCW_LRESP, id, NULL, &r->body, r->metadata, blob);
}

void hcw_put_message(hcw_frame *f, const hw_message *m)
{
    f->nput++;
    p_message(f, m);
}

void hcw_put_on_exit(hcw_frame *f, const hw_on_exit *o)
{
    f->nput++;
    p_on_exit(f, o);
}

void hcw_put_send_error(hcw_frame *f, const hw_send_error *e)
{
    f->nput++;
    p_send_error(f, e);
}

void hcw_put_receive_result(hcw_frame *f, const hw_receive_result *r)
{
    f->nput++;
    if (r->is_err) {
        p_array(f, 3);
        p_u64(f, 1);
        p_send_error(f, &r->error);
        p_bytes_opt(f, r->has_context, &r->context);
    } else {
        p_array(f, 3);
        p_u64(f, 0);
        p_address(f, &r->source);
        p_message(f, &r->message);
    }
}

void hcw_put_await_result(hcw_frame *f, const hw_await_result *r)
{
    f->nput++;
    if (r->is_err) {
        p_array(f, 2);
        p_u64(f, 1);
        p_send_error(f, &r->error);
    } else {
        p_array(f, 3);
        p_u64(f, 0);
        p_address(f, &r->source);
        p_message(f, &r->message);
    }
}

void hcw_put_strs(hcw_frame *f, const char *const *v, size_t n)
{
    f->nput++;
    if (v == NULL)
        n = 0;
    p_array(f, n);
    for (size_t i = 0; i < n && !f->oversize; i++)
        p_str(f, v[i]);
}

void hcw_put_u64s(hcw_frame *f, const uint64_t *v, size_t n)
{
    f->nput++;
    if (v == NULL)
        n = 0;
    p_array(f, n);
    for (size_t i = 0; i < n; i++)
        p_u64(f, v[i]);
}

void hcw_put_process_ids(hcw_frame *f, const hw_process_id *v, size_t n)
{
    f->nput++;
    if (v == NULL)
        n = 0;
    p_array(f, n);
    for (size_t i = 0; i < n && !f->oversize; i++)
        p_process_id(f, &v[i]);
}

void hcw_put_prompting(hcw_frame *f, const hcw_prompting *p)
{
    f->nput++;
    if (p->none) {
        p_u64(f, 0);
        return;
    }
    p_array(f, 3);
    p_address(f, &p->source);
    p_u64(f, p->id);
    p_bool(f, p->expects);
}

void hcw_put_crash(hcw_frame *f, const hcw_crash *c)
{
    f->nput++;
    p_array(f, 5);
    msgpack_pack_int64(&f->pk, c->code);
    p_u64(f, c->addr);
    p_bool(f, c->stack_overflow);
    size_t npcs = c->pcs != NULL ? c->npcs : 0;
    p_array(f, npcs);
    for (size_t i = 0; i < npcs && !f->oversize; i++)
        p_u64(f, c->pcs[i]);
    size_t nmod = c->modules != NULL ? c->nmodules : 0;
    p_array(f, nmod);
    for (size_t i = 0; i < nmod && !f->oversize; i++) {
        p_array(f, 2);
        p_str(f, c->modules[i].path);
        p_u64(f, c->modules[i].base);
    }
}

/* ================================================================ reading */

/* A frame's decoder state, kept from frame to frame: the body buffer and
 * the zone the object tree is allocated in are reused, so that a frame
 * costs no allocation of its own (only what the gets copy out). */
typedef struct in_impl {
    uint8_t *buf; /* the frame's body; the tree points into it */
    size_t cap;   /* buf's size */
    size_t len;   /* the body's bytes, once parsed */
    msgpack_zone zone;
    msgpack_object obj;
    const msgpack_object *args; /* the arguments (after the op) */
    /* a lane frame's arguments, read in place (no tree: args is NULL) */
    const char *lane;
} in_impl;

/* A buffer that grew past this is given back at the next frame. */
#define KEEP_IN_BUFFER (64u * 1024)
/* The zone's chunk: a small frame's tree fits in one. */
#define IN_ZONE_CHUNK 4096

void hcw_in_init(hcw_in *in)
{
    memset(in, 0, sizeof *in);
}

void hcw_in_fini(hcw_in *in)
{
    in_impl *m = in->impl;
    if (m != NULL) {
        msgpack_zone_destroy(&m->zone);
        free(m->buf);
        free(m);
    }
    memset(in, 0, sizeof *in);
}

/* Release the last frame but keep the decoder's state for the next. */
static in_impl *in_reset(hcw_in *in)
{
    in_impl *m = in->impl;
    if (m == NULL) {
        m = xcalloc(1, sizeof *m);
        if (!msgpack_zone_init(&m->zone, IN_ZONE_CHUNK))
            oom();
    } else {
        msgpack_zone_clear(&m->zone);
        if (m->cap > KEEP_IN_BUFFER) {
            free(m->buf);
            m->buf = NULL;
            m->cap = 0;
        }
    }
    m->args = NULL;
    m->lane = NULL;
    m->len = 0;
    memset(in, 0, sizeof *in);
    in->impl = m;
    return m;
}

uint8_t *hcw_in_body(hcw_in *in, size_t n)
{
    in_impl *m = in_reset(in);
    if (n > m->cap) {
        size_t cap = n < 256 ? 256 : n;
        uint8_t *b = malloc(cap);
        if (b == NULL)
            return NULL;
        free(m->buf);
        m->buf = b;
        m->cap = cap;
    }
    if (m->buf == NULL) {
        m->buf = xmalloc(256);
        m->cap = 256;
    }
    return m->buf;
}

/* A lane frame (LREQ, LRESP) in the n bytes at b: kept for
 * hcw_get_lane_frame to read in place.  Whether it was one.  MsgPuck's
 * decoders trust their input, so the bytes are read only once
 * hcc_msgpack_check passed them (`checked`; a trusted frame's are checked
 * here when they start as a lane frame does). */
static bool lane_frame_at(hcw_in *in, in_impl *m, const uint8_t *b, size_t n,
                          bool checked)
{
    const char *p = (const char *)b;
    if (!checked &&
        (n < 2 || b[0] < 0x91 || b[0] > 0x9f ||
         (b[1] != HCW_LREQ && b[1] != HCW_LRESP) || !hcc_msgpack_check(b, n)))
        return false;
    if (n == 0 || mp_typeof(*p) != MP_ARRAY)
        return false;
    uint32_t k = mp_decode_array(&p);
    if (k == 0 || mp_typeof(*p) != MP_UINT)
        return false;
    uint64_t op = mp_decode_uint(&p);
    if (op != HCW_LREQ && op != HCW_LRESP)
        return false;
    in->op = (int)op;
    in->nargs = k - 1;
    in->next = 0;
    m->lane = p;
    m->len = n;
    return true;
}

/* Parse the n bytes in the body buffer (hcw_in_body) into in; `trusted`:
 * the structure check (hcc_msgpack_check) is skipped. */
static int parse_body(hcw_in *in, size_t n, bool trusted, char *err,
                      size_t errlen)
{
    in_impl *m = in->impl;
    const char *why = NULL;
    size_t off = 0;
    m->args = NULL;
    m->lane = NULL;
    if (!trusted && !hcc_msgpack_check(m->buf, n))
        why = "worker frame: not one well-formed msgpack value";
    else if (lane_frame_at(in, m, m->buf, n, !trusted))
        return 1;
    else {
        msgpack_unpack_return rc =
            msgpack_unpack((const char *)m->buf, n, &off, &m->zone, &m->obj);
        const msgpack_object *o = &m->obj;
        if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
            why = "worker frame: nested too deep or out of memory";
        else if (rc != MSGPACK_UNPACK_SUCCESS || off != n)
            why = "worker frame: not one well-formed msgpack value";
        else if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0)
            why = "worker frame: not an array [op, args...]";
        else {
            const msgpack_object *op = &o->via.array.ptr[0];
            if (op->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                op->via.u64 <= INT_MAX)
                in->op = (int)op->via.u64;
            else if (op->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                     op->via.i64 >= INT_MIN)
                in->op = (int)op->via.i64;
            else
                why = "worker frame: the op is not an integer";
        }
    }
    if (why != NULL) {
        in_reset(in);
        hcw_seterr(err, errlen, "%s", why);
        errno = EPROTO;
        return -1;
    }
    in->nargs = m->obj.via.array.size - 1;
    in->next = 0;
    m->args = m->obj.via.array.ptr + 1;
    m->len = n;
    return 1;
}

const uint8_t *hcw_in_raw(const hcw_in *in, size_t *n)
{
    const in_impl *m = in->impl;
    if (m == NULL || (m->args == NULL && m->lane == NULL)) {
        *n = 0;
        return NULL;
    }
    *n = m->len;
    return m->buf;
}

int hcw_in_decode(hcw_in *in, size_t n, bool trusted, char *err, size_t errlen)
{
    in_impl *m = in->impl;
    if (m == NULL || n > m->cap) {
        hcw_seterr(err, errlen, "worker frame: no body to decode");
        errno = EINVAL;
        return -1;
    }
    return parse_body(in, n, trusted, err, errlen);
}

int hcw_frame_parse(hcw_in *in, const uint8_t *p, size_t n, char *err,
                    size_t errlen)
{
    in_reset(in);
    if (n < HDR) {
        hcw_seterr(err, errlen,
                   "worker frame: %zu bytes, shorter than its length", n);
        errno = EPROTO;
        return -1;
    }
    uint32_t len = get_le32(p);
    if (len > HCW_MAX_FRAME) {
        hcw_seterr(err, errlen, "worker frame: %u bytes, over the limit of %u",
                   len, HCW_MAX_FRAME);
        errno = EMSGSIZE;
        return -1;
    }
    if (len != n - HDR) {
        hcw_seterr(err, errlen, "worker frame: length %u but %zu bytes follow",
                   len, n - HDR);
        errno = EPROTO;
        return -1;
    }
    uint8_t *body = hcw_in_body(in, len);
    if (body == NULL)
        oom();
    if (len)
        memcpy(body, p + HDR, len);
    return parse_body(in, len, false, err, errlen);
}

/* Read n bytes: n read, or fewer at end of file, or -1 on an error. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int hcw_frame_recv(hcw_in *in, int fd, char *err, size_t errlen)
{
    in_reset(in);
    uint8_t hdr[HDR];
    ssize_t r = read_full(fd, hdr, HDR);
    if (r < 0) {
        int e = errno;
        hcw_seterr(err, errlen, "worker frame: read: %s", strerror(e));
        errno = e;
        return -1;
    }
    if (r == 0)
        return 0;
    if (r < HDR) {
        hcw_seterr(err, errlen,
                   "worker frame: the connection closed in a length");
        errno = EPROTO;
        return -1;
    }
    uint32_t len = get_le32(hdr);
    if (len > HCW_MAX_FRAME) {
        hcw_seterr(err, errlen, "worker frame: %u bytes, over the limit of %u",
                   len, HCW_MAX_FRAME);
        errno = EMSGSIZE;
        return -1;
    }
    uint8_t *body = hcw_in_body(in, len);
    if (body == NULL) {
        hcw_seterr(err, errlen, "worker frame: no memory for %u bytes", len);
        errno = ENOMEM;
        return -1;
    }
    if (hcw_frame_body_read(fd, body, 0, len, err, errlen) != 0)
        return -1;
    return parse_body(in, len, false, err, errlen);
}

int hcw_frame_body_read(int fd, uint8_t *body, size_t have, uint32_t len,
                        char *err, size_t errlen)
{
    ssize_t r = read_full(fd, body + have, len - have);
    if (r >= 0 && have + (size_t)r == len)
        return 0;
    int e = r < 0 ? errno : EPROTO;
    if (r < 0)
        hcw_seterr(err, errlen, "worker frame: read: %s", strerror(e));
    else
        hcw_seterr(err, errlen,
                   "worker frame: the connection closed after %zu of %u bytes",
                   have + (size_t)r, len);
    errno = e;
    return -1;
}

/* ---------------------------------------------------- decoding one value
 *
 * Each d_* reads one object into *out.  On failure it releases what it
 * allocated and leaves *out zeroed. */

static bool is_nil(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NIL;
}

/* The elements of an array of exactly n (any n when n is SIZE_MAX). */
static const msgpack_object *d_array(const msgpack_object *o, size_t n,
                                     size_t *len)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return NULL;
    if (n != SIZE_MAX && o->via.array.size != n)
        return NULL;
    if (len != NULL)
        *len = o->via.array.size;
    /* an empty array has no element pointer; any non-NULL will do */
    return o->via.array.size ? o->via.array.ptr : o;
}

static bool d_bool(const msgpack_object *o, bool *out)
{
    *out = false;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *out = o->via.boolean;
    return true;
}

static bool d_u64(const msgpack_object *o, uint64_t *out)
{
    *out = 0;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

static bool d_i64(const msgpack_object *o, int64_t *out)
{
    *out = 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

/* A small unsigned tag: 0..max. */
static bool d_tag(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    return d_u64(o, out) && *out <= max;
}

/* A str without NUL bytes (the C side sees NUL-terminated strings). */
static bool d_strref(const msgpack_object *o, const char **p, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return false;
    *n = o->via.str.size;
    *p = *n ? o->via.str.ptr : "";
    return memchr(*p, 0, *n) == NULL;
}

/* A str, or nil (NULL) when nil_ok. */
static bool d_str(const msgpack_object *o, bool nil_ok, char **out)
{
    *out = NULL;
    if (is_nil(o))
        return nil_ok;
    const char *p;
    size_t n;
    if (!d_strref(o, &p, &n))
        return false;
    char *s = xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    *out = s;
    return true;
}

/* A bin, copied into its own block (never NULL, even when empty: the
 * ABI's outputs never are). */
static bool d_bin(const msgpack_object *o, hw_bytes *out)
{
    memset(out, 0, sizeof *out);
    if (o->type != MSGPACK_OBJECT_BIN)
        return false;
    size_t n = o->via.bin.size;
    out->ptr = xmalloc(n);
    if (n)
        memcpy(out->ptr, o->via.bin.ptr, n);
    out->len = n;
    return true;
}

/* A bin lent from the frame's body (valid until `in` reads again): no
 * copy.  Never a NULL ptr, as d_bin's. */
static bool d_bin_view(const msgpack_object *o, hw_bytes *out)
{
    static const uint8_t none[1];
    memset(out, 0, sizeof *out);
    if (o->type != MSGPACK_OBJECT_BIN)
        return false;
    const void *p = o->via.bin.size ? (const void *)o->via.bin.ptr : none;
    out->ptr = (uint8_t *)(uintptr_t)p;
    out->len = o->via.bin.size;
    return true;
}

static bool d_bytes_opt(const msgpack_object *o, bool *has, hw_bytes *out)
{
    *has = false;
    memset(out, 0, sizeof *out);
    if (is_nil(o))
        return true;
    if (!d_bin(o, out))
        return false;
    *has = true;
    return true;
}

static bool d_process_id(const msgpack_object *o, hw_process_id *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 3, NULL);
    const char *s[3];
    size_t n[3];
    if (e == NULL)
        return false;
    for (int i = 0; i < 3; i++)
        if (!d_strref(&e[i], &s[i], &n[i]))
            return false;
    if (hcc_process_id_from_parts(s[0], n[0], s[1], n[1], s[2], n[2], out) != 0)
        oom();
    return true;
}

static bool d_address(const msgpack_object *o, hw_address *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 2, NULL);
    if (e == NULL)
        return false;
    const msgpack_object *pe = d_array(&e[1], 3, NULL);
    const char *s[4];
    size_t n[4];
    if (pe == NULL || !d_strref(&e[0], &s[0], &n[0]))
        return false;
    for (int i = 0; i < 3; i++)
        if (!d_strref(&pe[i], &s[i + 1], &n[i + 1]))
            return false;
    if (hcc_address_from_parts(s[0], n[0], s[1], n[1], s[2], n[2], s[3], n[3],
                               out) != 0)
        oom();
    return true;
}

static bool d_blob(const msgpack_object *o, hw_blob *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 2, NULL);
    if (e == NULL)
        return false;
    if (!d_str(&e[0], true, &out->mime) || !d_bin(&e[1], &out->bytes)) {
        hw_blob_fini(out);
        return false;
    }
    return true;
}

static bool d_blob_opt(const msgpack_object *o, bool *has, hw_blob *out)
{
    *has = false;
    memset(out, 0, sizeof *out);
    if (is_nil(o))
        return true;
    if (!d_blob(o, out))
        return false;
    *has = true;
    return true;
}

static bool d_caps(const msgpack_object *o, hw_capability_list *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    const msgpack_object *e = d_array(o, SIZE_MAX, &n);
    if (e == NULL)
        return false;
    if (n == 0)
        return true;
    out->ptr = xcalloc(n, sizeof *out->ptr);
    out->len = n;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *c = d_array(&e[i], 2, NULL);
        if (c == NULL || !d_address(&c[0], &out->ptr[i].issuer) ||
            !d_str(&c[1], false, &out->ptr[i].params)) {
            hw_capability_list_fini(out);
            return false;
        }
    }
    return true;
}

/* view: the body is lent from the frame (hcw_get_request_view). */
static bool d_request_as(const msgpack_object *o, hw_request *out, bool view)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 5, NULL);
    if (e == NULL)
        return false;
    bool ok = d_bool(&e[0], &out->inherit);
    if (ok && !is_nil(&e[1])) {
        ok = d_u64(&e[1], &out->expects_response);
        out->has_expects_response = ok;
    }
    ok = ok && (view ? d_bin_view : d_bin)(&e[2], &out->body) &&
         d_str(&e[3], true, &out->metadata) &&
         d_caps(&e[4], &out->capabilities);
    if (!ok && view)
        hcw_request_view_fini(out);
    else if (!ok)
        hcc_request_fini(out);
    return ok;
}

static bool d_request(const msgpack_object *o, hw_request *out)
{
    return d_request_as(o, out, false);
}

static bool d_response_as(const msgpack_object *o, hw_response *out, bool view)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 4, NULL);
    if (e == NULL)
        return false;
    bool ok = d_bool(&e[0], &out->inherit) &&
              (view ? d_bin_view : d_bin)(&e[1], &out->body) &&
              d_str(&e[2], true, &out->metadata) &&
              d_caps(&e[3], &out->capabilities);
    if (!ok && view)
        hcw_response_view_fini(out);
    else if (!ok)
        hcc_response_fini(out);
    return ok;
}

static bool d_response(const msgpack_object *o, hw_response *out)
{
    return d_response_as(o, out, false);
}

static bool d_message(const msgpack_object *o, hw_message *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    const msgpack_object *e = d_array(o, SIZE_MAX, &n);
    uint64_t kind;
    if (e == NULL || n == 0 || !d_tag(&e[0], 1, &kind))
        return false;
    bool ok;
    if (kind == 0) {
        out->kind = HW_MESSAGE_REQUEST;
        ok = n == 2 && d_request(&e[1], &out->request);
    } else {
        out->kind = HW_MESSAGE_RESPONSE;
        ok = n == 3 && d_response(&e[1], &out->response) &&
             d_bytes_opt(&e[2], &out->has_context, &out->context);
    }
    if (!ok)
        hw_message_fini(out);
    return ok;
}

static bool d_on_exit(const msgpack_object *o, hw_on_exit *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 2, NULL);
    uint64_t kind;
    size_t n;
    if (e == NULL || !d_tag(&e[0], 2, &kind))
        return false;
    const msgpack_object *r = d_array(&e[1], SIZE_MAX, &n);
    if (r == NULL || (kind != HW_ON_EXIT_REQUESTS && n != 0))
        return false;
    out->kind = (hw_on_exit_kind)kind;
    if (n == 0)
        return true;
    out->requests = xcalloc(n, sizeof *out->requests);
    out->requests_len = n;
    for (size_t i = 0; i < n; i++) {
        hw_outgoing_request *q = &out->requests[i];
        const msgpack_object *t = d_array(&r[i], 4, NULL);
        if (t == NULL || !d_address(&t[0], &q->target) ||
            !d_request(&t[1], &q->request) ||
            !d_bytes_opt(&t[2], &q->has_context, &q->context) ||
            !d_blob_opt(&t[3], &q->has_blob, &q->blob)) {
            hw_on_exit_fini(out);
            return false;
        }
    }
    return true;
}

static bool d_send_error(const msgpack_object *o, hw_send_error *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 4, NULL);
    uint64_t kind;
    if (e == NULL || !d_tag(&e[0], 1, &kind))
        return false;
    out->kind = (hw_send_error_kind)kind;
    bool ok = d_address(&e[1], &out->target) &&
              d_message(&e[2], &out->message) &&
              d_blob_opt(&e[3], &out->has_blob, &out->blob);
    if (!ok)
        hw_send_error_fini(out);
    return ok;
}

static bool d_receive_result(const msgpack_object *o, hw_receive_result *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 3, NULL);
    uint64_t tag;
    if (e == NULL || !d_tag(&e[0], 1, &tag))
        return false;
    bool ok;
    if (tag == 0) {
        ok = d_address(&e[1], &out->source) && d_message(&e[2], &out->message);
    } else {
        out->is_err = true;
        ok = d_send_error(&e[1], &out->error) &&
             d_bytes_opt(&e[2], &out->has_context, &out->context);
    }
    if (!ok)
        hw_receive_result_fini(out);
    return ok;
}

static bool d_await_result(const msgpack_object *o, hw_await_result *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    const msgpack_object *e = d_array(o, SIZE_MAX, &n);
    uint64_t tag;
    if (e == NULL || n == 0 || !d_tag(&e[0], 1, &tag))
        return false;
    bool ok;
    if (tag == 0) {
        ok = n == 3 && d_address(&e[1], &out->source) &&
             d_message(&e[2], &out->message);
    } else {
        out->is_err = true;
        ok = n == 2 && d_send_error(&e[1], &out->error);
    }
    if (!ok)
        hw_await_result_fini(out);
    return ok;
}

typedef struct strs_out {
    char **v;
    size_t n;
} strs_out;

static bool d_strs(const msgpack_object *o, strs_out *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    const msgpack_object *e = d_array(o, SIZE_MAX, &n);
    if (e == NULL)
        return false;
    if (n == 0)
        return true;
    char **v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (!d_str(&e[i], false, &v[i])) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return false;
        }
    }
    out->v = v;
    out->n = n;
    return true;
}

typedef struct pids_out {
    hw_process_id *v;
    size_t n;
} pids_out;

static bool d_process_ids(const msgpack_object *o, pids_out *out)
{
    memset(out, 0, sizeof *out);
    size_t n;
    const msgpack_object *e = d_array(o, SIZE_MAX, &n);
    if (e == NULL)
        return false;
    if (n == 0)
        return true;
    hw_process_id *v = xcalloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        if (!d_process_id(&e[i], &v[i])) {
            for (size_t j = 0; j < i; j++)
                hw_process_id_fini(&v[j]);
            free(v);
            return false;
        }
    }
    out->v = v;
    out->n = n;
    return true;
}

static bool d_crash(const msgpack_object *o, hcw_crash *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *e = d_array(o, 5, NULL);
    int64_t code;
    size_t npcs = 0, nmod = 0;
    if (e == NULL || !d_i64(&e[0], &code) || code < INT32_MIN ||
        code > INT32_MAX || !d_u64(&e[1], &out->addr) ||
        !d_bool(&e[2], &out->stack_overflow))
        goto fail;
    out->code = (int32_t)code;
    const msgpack_object *pcs = d_array(&e[3], SIZE_MAX, &npcs);
    const msgpack_object *mods = d_array(&e[4], SIZE_MAX, &nmod);
    if (pcs == NULL || mods == NULL)
        goto fail;
    if (npcs) {
        out->pcs = xcalloc(npcs, sizeof *out->pcs);
        out->npcs = npcs;
        for (size_t i = 0; i < npcs; i++)
            if (!d_u64(&pcs[i], &out->pcs[i]))
                goto fail;
    }
    if (nmod) {
        out->modules = xcalloc(nmod, sizeof *out->modules);
        out->nmodules = nmod;
        for (size_t i = 0; i < nmod; i++) {
            const msgpack_object *m = d_array(&mods[i], 2, NULL);
            if (m == NULL || !d_str(&m[0], false, &out->modules[i].path) ||
                !d_u64(&m[1], &out->modules[i].base))
                goto fail;
        }
    }
    return true;
fail:
    hcw_crash_fini(out);
    return false;
}

/* ------------------------------------------------------------------ gets */

/* The next argument, or NULL when none is left. */
static const msgpack_object *next_arg(const hcw_in *in)
{
    const in_impl *m = in->impl;
    if (m == NULL || m->args == NULL || in->next >= in->nargs)
        return NULL;
    return &m->args[in->next];
}

/* A get: decode the next argument with d_fn into out; consumed only on
 * success. */
#define GET(in, out, call)                                                     \
    do {                                                                       \
        const msgpack_object *o_ = next_arg(in);                               \
        if (o_ == NULL || !(call)) {                                           \
            memset((out), 0, sizeof *(out));                                   \
            return false;                                                      \
        }                                                                      \
        (in)->next++;                                                          \
        return true;                                                           \
    } while (0)

bool hcw_get_nil(hcw_in *in)
{
    const msgpack_object *o = next_arg(in);
    if (o == NULL || !is_nil(o))
        return false;
    in->next++;
    return true;
}

bool hcw_get_bool(hcw_in *in, bool *out)
{
    GET(in, out, d_bool(o_, out));
}

bool hcw_get_u64(hcw_in *in, uint64_t *out)
{
    GET(in, out, d_u64(o_, out));
}

bool hcw_get_i64(hcw_in *in, int64_t *out)
{
    GET(in, out, d_i64(o_, out));
}

bool hcw_get_str(hcw_in *in, char **out)
{
    GET(in, out, d_str(o_, true, out));
}

bool hcw_get_bin(hcw_in *in, hw_bytes *out)
{
    GET(in, out, d_bin(o_, out));
}

bool hcw_get_bytes_opt(hcw_in *in, bool *has, hw_bytes *out)
{
    *has = false;
    GET(in, out, d_bytes_opt(o_, has, out));
}

bool hcw_get_address(hcw_in *in, hw_address *out)
{
    GET(in, out, d_address(o_, out));
}

bool hcw_get_process_id(hcw_in *in, hw_process_id *out)
{
    GET(in, out, d_process_id(o_, out));
}

bool hcw_get_blob_opt(hcw_in *in, bool *has, hw_blob *out)
{
    *has = false;
    GET(in, out, d_blob_opt(o_, has, out));
}

bool hcw_get_caps(hcw_in *in, hw_capability_list *out)
{
    GET(in, out, d_caps(o_, out));
}

bool hcw_get_request(hcw_in *in, hw_request *out)
{
    GET(in, out, d_request(o_, out));
}

bool hcw_get_response(hcw_in *in, hw_response *out)
{
    GET(in, out, d_response(o_, out));
}

bool hcw_get_request_view(hcw_in *in, hw_request *out)
{
    GET(in, out, d_request_as(o_, out, true));
}

bool hcw_get_response_view(hcw_in *in, hw_response *out)
{
    GET(in, out, d_response_as(o_, out, true));
}

void hcw_request_view_fini(hw_request *r)
{
    memset(&r->body, 0, sizeof r->body);
    hcc_request_fini(r);
}

void hcw_response_view_fini(hw_response *r)
{
    memset(&r->body, 0, sizeof r->body);
    hcc_response_fini(r);
}

/* A lane frame's readers (hcw_get_lane_frame): *p at a value of the
 * checked frame (lane_frame_at), moved past it on success, as the d_
 * readers would take it from a tree. */
static bool r_u64(const char **p, uint64_t *out)
{
    if (mp_typeof(**p) != MP_UINT)
        return false;
    *out = mp_decode_uint(p);
    return true;
}

static bool r_nil(const char **p)
{
    if (mp_typeof(**p) != MP_NIL)
        return false;
    mp_decode_nil(p);
    return true;
}

/* As d_bin (a copy) or d_bin_view (lent from the frame). */
static bool r_bin(const char **p, bool view, hw_bytes *out)
{
    static const uint8_t none[1];
    memset(out, 0, sizeof *out);
    if (mp_typeof(**p) != MP_BIN)
        return false;
    uint32_t n;
    const char *b = mp_decode_bin(p, &n);
    if (view) {
        out->ptr = (uint8_t *)(uintptr_t)(n ? (const void *)b : none);
    } else {
        out->ptr = xmalloc(n);
        if (n)
            memcpy(out->ptr, b, n);
    }
    out->len = n;
    return true;
}

/* As d_str with nil_ok. */
static bool r_str_opt(const char **p, char **out)
{
    *out = NULL;
    if (r_nil(p))
        return true;
    if (mp_typeof(**p) != MP_STR)
        return false;
    uint32_t n;
    const char *t = mp_decode_str(p, &n);
    if (memchr(t, 0, n) != NULL)
        return false;
    char *d = xmalloc((size_t)n + 1);
    memcpy(d, t, n);
    d[n] = 0;
    *out = d;
    return true;
}

/* As d_blob_opt: nil, or [mime (str or nil), bytes], copied. */
static bool r_blob_opt(const char **p, bool *has, hw_blob *out)
{
    *has = false;
    memset(out, 0, sizeof *out);
    if (r_nil(p))
        return true;
    if (mp_typeof(**p) != MP_ARRAY || mp_decode_array(p) != 2)
        return false;
    if (!r_str_opt(p, &out->mime) || !r_bin(p, false, &out->bytes)) {
        hw_blob_fini(out);
        return false;
    }
    *has = true;
    return true;
}

bool hcw_get_lane_frame(hcw_in *in, bool view, uint64_t *id, hw_request *req,
                        hw_response *resp, bool *has_blob, hw_blob *blob)
{
    *id = 0;
    memset(req, 0, sizeof *req);
    memset(resp, 0, sizeof *resp);
    *has_blob = false;
    memset(blob, 0, sizeof *blob);
    const in_impl *m = in->impl;
    bool lreq = in->op == HCW_LREQ;
    if (m == NULL || m->lane == NULL || in->next != 0 ||
        (!lreq && in->op != HCW_LRESP) || in->nargs != (lreq ? 5u : 4u))
        return false;
    const char *p = m->lane;
    hw_bytes *body = lreq ? &req->body : &resp->body;
    char **metadata = lreq ? &req->metadata : &resp->metadata;
    bool ok = r_u64(&p, id);
    if (ok && lreq && !r_nil(&p)) {
        ok = r_u64(&p, &req->expects_response);
        req->has_expects_response = ok;
    }
    if (ok && r_bin(&p, view, body) && r_str_opt(&p, metadata) &&
        r_blob_opt(&p, has_blob, blob)) {
        in->next = in->nargs;
        return true;
    }
    if (!view)
        free(body->ptr);
    free(*metadata);
    *id = 0;
    memset(req, 0, sizeof *req);
    memset(resp, 0, sizeof *resp);
    return false;
}

void hcw_lane_frame_fini(bool view, hw_request *req, hw_response *resp)
{
    if (view) {
        hcw_request_view_fini(req);
        hcw_response_view_fini(resp);
    } else {
        hcc_request_fini(req);
        hcc_response_fini(resp);
    }
}

bool hcw_get_message(hcw_in *in, hw_message *out)
{
    GET(in, out, d_message(o_, out));
}

bool hcw_get_on_exit(hcw_in *in, hw_on_exit *out)
{
    GET(in, out, d_on_exit(o_, out));
}

bool hcw_get_send_error(hcw_in *in, hw_send_error *out)
{
    GET(in, out, d_send_error(o_, out));
}

bool hcw_get_receive_result(hcw_in *in, hw_receive_result *out)
{
    GET(in, out, d_receive_result(o_, out));
}

bool hcw_get_await_result(hcw_in *in, hw_await_result *out)
{
    GET(in, out, d_await_result(o_, out));
}

bool hcw_get_strs(hcw_in *in, char ***out, size_t *n)
{
    strs_out s = {0};
    *out = NULL;
    *n = 0;
    const msgpack_object *o = next_arg(in);
    if (o == NULL || !d_strs(o, &s))
        return false;
    in->next++;
    *out = s.v;
    *n = s.n;
    return true;
}

bool hcw_get_process_ids(hcw_in *in, hw_process_id **out, size_t *n)
{
    pids_out s = {0};
    *out = NULL;
    *n = 0;
    const msgpack_object *o = next_arg(in);
    if (o == NULL || !d_process_ids(o, &s))
        return false;
    in->next++;
    *out = s.v;
    *n = s.n;
    return true;
}

bool hcw_get_u64s(hcw_in *in, size_t max, uint64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const msgpack_object *o = next_arg(in);
    size_t k;
    const msgpack_object *e = o ? d_array(o, SIZE_MAX, &k) : NULL;
    if (e == NULL || k > max)
        return false;
    uint64_t *v = k ? xcalloc(k, sizeof *v) : NULL;
    for (size_t i = 0; i < k; i++) {
        if (!d_u64(&e[i], &v[i])) {
            free(v);
            return false;
        }
    }
    in->next++;
    *out = v;
    *n = k;
    return true;
}

bool hcw_get_crash(hcw_in *in, hcw_crash *out)
{
    GET(in, out, d_crash(o_, out));
}

/* SYNC's `0 | [address, u64 id, bool expects]`. */
static bool d_prompting(const msgpack_object *o, hcw_prompting *out)
{
    memset(out, 0, sizeof *out);
    uint64_t zero;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        out->none = d_u64(o, &zero) && zero == 0;
        return out->none;
    }
    const msgpack_object *e = d_array(o, 3, NULL);
    if (e == NULL || !d_u64(&e[1], &out->id) || !d_bool(&e[2], &out->expects) ||
        !d_address(&e[0], &out->source)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return true;
}

bool hcw_get_prompting(hcw_in *in, hcw_prompting *out)
{
    GET(in, out, d_prompting(o_, out));
}
