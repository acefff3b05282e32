/* KernelMessage and HandshakePayload in rmp-serde's msgpack (wire.h), on
 * msgpack-c. */
#include "wire.h"

#include "../../common/common.h"
#include "../../common/swar.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- writing */

static void put_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void put_opt_str(msgpack_packer *pk, const char *s)
{
    if (s)
        put_str(pk, s);
    else
        msgpack_pack_nil(pk);
}

static void put_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* Vec<u8> as rmp-serde writes it: an array of integers. */
static void put_bytes(msgpack_packer *pk, const uint8_t *p, size_t n)
{
    msgpack_pack_array(pk, n);
    /* each byte as msgpack_pack_uint8 writes it (a positive fixint below
     * 0x80, else 0xcc and the byte), handed to the packer's writer in
     * pieces rather than one call per byte */
    uint8_t buf[8192];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k + 16 > sizeof buf) {
            pk->callback(pk->data, (const char *)buf, k);
            k = 0;
        }
        /* eight bytes below 0x80 at a time: as they are */
        if (n - i >= 8 && !hcc_swar_any_high(hcc_swar_load(p + i))) {
            memcpy(buf + k, p + i, 8);
            k += 8;
            i += 7;
            continue;
        }
        if (p[i] >= 0x80)
            buf[k++] = 0xcc;
        buf[k++] = p[i];
    }
    if (k)
        pk->callback(pk->data, (const char *)buf, k);
}

static void put_caps(msgpack_packer *pk, const hcnn_cap *caps, size_t n)
{
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 2);
        msgpack_pack_array(pk, 2);
        put_str(pk, caps[i].issuer);
        put_str(pk, caps[i].params);
        put_bytes(pk, caps[i].sig, caps[i].sig_len);
    }
}

void hcnn_kmsg_encode(const hcnn_kmsg *m, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, m->id);
    put_str(&pk, m->source);
    put_str(&pk, m->target);
    put_opt_str(&pk, m->rsvp);
    msgpack_pack_map(&pk, 1);
    if (!m->is_response) {
        put_str(&pk, "Request");
        msgpack_pack_array(&pk, 5);
        put_bool(&pk, m->inherit);
        if (m->has_expects)
            msgpack_pack_uint64(&pk, m->expects);
        else
            msgpack_pack_nil(&pk);
    } else {
        put_str(&pk, "Response");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 4);
        put_bool(&pk, m->inherit);
    }
    put_bytes(&pk, m->body, m->body_len);
    put_opt_str(&pk, m->metadata);
    put_caps(&pk, m->caps, m->ncaps);
    if (m->is_response) {
        if (m->has_context)
            put_bytes(&pk, m->context, m->context_len);
        else
            msgpack_pack_nil(&pk);
    }
    if (m->has_blob) {
        msgpack_pack_array(&pk, 2);
        put_opt_str(&pk, m->blob_mime);
        put_bytes(&pk, m->blob, m->blob_len);
    } else {
        msgpack_pack_nil(&pk);
    }
}

void hcnn_hs_payload_encode(const hcnn_hs_payload *h, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, h->version);
    put_str(&pk, h->name);
    put_bytes(&pk, h->sig, h->sig_len);
    put_bool(&pk, h->proxy_request);
}

void hcnn_routing_request_encode(const hcnn_routing_request *q,
                                 msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, q->version);
    put_str(&pk, q->source);
    put_bytes(&pk, q->sig, q->sig_len);
    put_str(&pk, q->target);
}

void hcnn_connection_request_encode(const char *from, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    put_str(&pk, "ConnectionRequest");
    put_str(&pk, from);
}

/* ---------------------------------------------------------------- reading */

typedef struct rd {
    char *err;
    size_t errlen;
    bool failed;
    uint8_t *compact; /* what was unpacked (compact_bytes); bin objects
                       * point into it: freed with the rd (rd_fini) */
} rd;

static void rd_fini(rd *r)
{
    free(r->compact);
    r->compact = NULL;
}

static bool fail(rd *r, const char *fmt, ...)
{
    if (!r->failed && r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    r->failed = true;
    return false;
}

/* Whether s[0..n) is UTF-8 (what a Rust String must be). */
static bool utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3fu);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += k + 1;
    }
    return true;
}

static const msgpack_object *array(rd *r, const msgpack_object *o, size_t n,
                                   const char *what)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) {
        fail(r, "%s: expected an array of %zu", what, n);
        return NULL;
    }
    return o->via.array.ptr;
}

static bool get_u64(rd *r, const msgpack_object *o, uint64_t *v,
                    const char *what)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(r, "%s: expected an unsigned integer", what);
    *v = o->via.u64;
    return true;
}

static bool get_bool(rd *r, const msgpack_object *o, bool *v, const char *what)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return fail(r, "%s: expected a boolean", what);
    *v = o->via.boolean;
    return true;
}

static bool get_str(rd *r, const msgpack_object *o, char **out,
                    const char *what)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return fail(r, "%s: expected a string", what);
    const char *p = o->via.str.ptr;
    size_t n = o->via.str.size;
    if (n && memchr(p, '\0', n))
        return fail(r, "%s: a string with a NUL byte", what);
    if (!utf8_ok((const uint8_t *)p, n))
        return fail(r, "%s: a string that is not UTF-8", what);
    char *s = malloc(n + 1);
    if (s == NULL)
        return fail(r, "%s: out of memory", what);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    return true;
}

static bool get_opt_str(rd *r, const msgpack_object *o, char **out,
                        const char *what)
{
    *out = NULL;
    return o->type == MSGPACK_OBJECT_NIL || get_str(r, o, out, what);
}

/* Vec<u8>: an array of integers 0..255, or bin. */
static bool get_bytes(rd *r, const msgpack_object *o, uint8_t **out,
                      size_t *len, const char *what)
{
    size_t n;
    if (o->type == MSGPACK_OBJECT_BIN)
        n = o->via.bin.size;
    else if (o->type == MSGPACK_OBJECT_ARRAY)
        n = o->via.array.size;
    else
        return fail(r, "%s: expected bytes (an array of integers or bin)",
                    what);
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        return fail(r, "%s: out of memory", what);
    if (o->type == MSGPACK_OBJECT_BIN) {
        if (n)
            memcpy(b, o->via.bin.ptr, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            const msgpack_object *e = &o->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                e->via.u64 > 255) {
                free(b);
                return fail(r, "%s: byte %zu is not an integer 0..255", what,
                            i);
            }
            b[i] = (uint8_t)e->via.u64;
        }
    }
    *out = b;
    *len = n;
    return true;
}

static bool get_caps(rd *r, const msgpack_object *o, hcnn_cap **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(r, "capabilities: expected an array");
    size_t k = o->via.array.size;
    if (k == 0)
        return true;
    hcnn_cap *caps = calloc(k, sizeof *caps);
    if (caps == NULL)
        return fail(r, "capabilities: out of memory");
    *out = caps;
    for (size_t i = 0; i < k; i++) {
        const msgpack_object *pair =
            array(r, &o->via.array.ptr[i], 2, "capabilities: an entry");
        const msgpack_object *cap =
            pair ? array(r, &pair[0], 2, "capabilities: a capability") : NULL;
        if (cap == NULL ||
            !get_str(r, &cap[0], &caps[i].issuer, "capabilities: issuer") ||
            !get_str(r, &cap[1], &caps[i].params, "capabilities: params") ||
            !get_bytes(r, &pair[1], &caps[i].sig, &caps[i].sig_len,
                       "capabilities: signature")) {
            *n = i + 1; /* what to free */
            return false;
        }
    }
    *n = k;
    return true;
}

#define COMPACT_MIN 32 /* shorter arrays cost little as objects */

/* How many bytes the uint8 encodings starting at p[0..n) take for c
 * elements (each a positive fixint or 0xcc and a byte, as rmp-serde writes
 * a Vec<u8>), or 0 when one of them is something else. */
static size_t byte_run(const uint8_t *p, size_t n, uint64_t c)
{
    size_t pos = 0;
    for (uint64_t i = 0; i < c; i++) {
        if (c - i >= 8 && n - pos >= 8 &&
            !hcc_swar_any_high(hcc_swar_load(p + pos))) {
            pos += 8; /* eight positive fixints */
            i += 7;
            continue;
        }
        if (pos < n && p[pos] <= 0x7f)
            pos += 1;
        else if (pos + 1 < n && p[pos] == 0xcc)
            pos += 2;
        else
            return 0;
    }
    return pos;
}

/* rmp-serde writes every Vec<u8> (a body, a blob, a signature) as an array
 * of integers, and msgpack-c makes an object of each element: 24 bytes and
 * a page fault or so per byte, 240 MB for a 10 MB message.  Copy the value
 * p[0..n) (well-formed: hcc_msgpack_check) to out (n bytes suffice),
 * writing each array of COMPACT_MIN or more such integers as bin instead
 * (get_bytes reads both; no field the node decodes is an array of small
 * integers that is not bytes).  The length written. */
static size_t compact_bytes(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t pos = 0, o = 0;
    while (pos < n) {
        uint8_t t = p[pos];
        uint64_t c = 0;
        size_t hdr = 0;
        if (t == 0xdc && n - pos >= 3) {
            c = (uint64_t)p[pos + 1] << 8 | p[pos + 2];
            hdr = 3;
        } else if (t == 0xdd && n - pos >= 5) {
            c = (uint64_t)p[pos + 1] << 24 | (uint64_t)p[pos + 2] << 16 |
                (uint64_t)p[pos + 3] << 8 | p[pos + 4];
            hdr = 5;
        }
        size_t run =
            c >= COMPACT_MIN ? byte_run(p + pos + hdr, n - pos - hdr, c) : 0;
        if (run) {
            if (c <= 0xff) {
                out[o++] = 0xc4;
                out[o++] = (uint8_t)c;
            } else if (c <= 0xffff) {
                out[o++] = 0xc5;
                out[o++] = (uint8_t)(c >> 8);
                out[o++] = (uint8_t)c;
            } else {
                out[o++] = 0xc6;
                for (int k = 3; k >= 0; k--)
                    out[o++] = (uint8_t)(c >> (8 * k));
            }
            const uint8_t *e = p + pos + hdr;
            for (size_t i = 0; i < run; i++)
                if (run - i >= 8 && !hcc_swar_any_high(hcc_swar_load(e + i))) {
                    memcpy(out + o, e + i, 8); /* eight bytes below 0x80 */
                    o += 8;
                    i += 7;
                } else if (e[i] != 0xcc)
                    out[o++] = e[i];
                else
                    out[o++] = e[++i];
            pos += hdr + run;
            continue;
        }
        /* anything else: this value's head (and a scalar's or a string's
         * bytes) as it is; an array's or a map's elements follow as values
         * of their own */
        size_t len = 1, extra = 0;
        if (t >= 0xa0 && t <= 0xbf)
            extra = t & 0x1f;
        else if (t >= 0x80 && t <= 0x9f)
            len = 1;
        else
            switch (t) {
            case 0xc4:
            case 0xd9:
                len = 2;
                extra = n - pos > 1 ? p[pos + 1] : 0;
                break;
            case 0xc5:
            case 0xda:
                len = 3;
                extra = n - pos > 2 ? (size_t)p[pos + 1] << 8 | p[pos + 2] : 0;
                break;
            case 0xc6:
            case 0xdb:
                len = 5;
                extra = n - pos > 4 ? (size_t)p[pos + 1] << 24 |
                                          (size_t)p[pos + 2] << 16 |
                                          (size_t)p[pos + 3] << 8 | p[pos + 4]
                                    : 0;
                break;
            case 0xc7:
                len = 3;
                extra = n - pos > 1 ? p[pos + 1] : 0;
                break;
            case 0xc8:
                len = 4;
                extra = n - pos > 2 ? (size_t)p[pos + 1] << 8 | p[pos + 2] : 0;
                break;
            case 0xc9:
                len = 6;
                extra = n - pos > 4 ? (size_t)p[pos + 1] << 24 |
                                          (size_t)p[pos + 2] << 16 |
                                          (size_t)p[pos + 3] << 8 | p[pos + 4]
                                    : 0;
                break;
            case 0xca: len = 5; break;
            case 0xcb: len = 9; break;
            case 0xcc:
            case 0xd0: len = 2; break;
            case 0xcd:
            case 0xd1: len = 3; break;
            case 0xce:
            case 0xd2: len = 5; break;
            case 0xcf:
            case 0xd3: len = 9; break;
            case 0xd4: len = 3; break;
            case 0xd5: len = 4; break;
            case 0xd6: len = 6; break;
            case 0xd7: len = 10; break;
            case 0xd8: len = 18; break;
            case 0xdc:
            case 0xde: len = 3; break;
            case 0xdd:
            case 0xdf: len = 5; break;
            default: len = 1; break;
            }
        size_t k = len + extra;
        if (k > n - pos)
            k = n - pos; /* (cannot happen after the check) */
        memcpy(out + o, p + pos, k);
        o += k;
        pos += k;
    }
    return o;
}

/* The one value in p[0..n), or NULL (with err).  The caller destroys up,
 * then r (rd_fini). */
static const msgpack_object *unpack(rd *r, const uint8_t *p, size_t n,
                                    msgpack_unpacked *up, const char *what)
{
    if (!hcc_msgpack_check(p, n)) {
        fail(r, "%s: not one well-formed msgpack value", what);
        return NULL;
    }
    r->compact = malloc(n ? n : 1);
    if (r->compact == NULL) {
        fail(r, "%s: out of memory", what);
        return NULL;
    }
    n = compact_bytes(p, n, r->compact);
    p = r->compact;
    size_t off = 0;
    if (msgpack_unpack_next(up, (const char *)p, n, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != n) {
        fail(r, "%s: not one well-formed msgpack value", what);
        return NULL;
    }
    return &up->data;
}

/* Which variant of Message a one-key map holds: 0 Request, 1 Response
 * (by name, or by index as rmp-serde also accepts); -1 none. */
static int variant(const msgpack_object *k)
{
    if (k->type == MSGPACK_OBJECT_STR) {
        if (k->via.str.size == 7 && memcmp(k->via.str.ptr, "Request", 7) == 0)
            return 0;
        if (k->via.str.size == 8 && memcmp(k->via.str.ptr, "Response", 8) == 0)
            return 1;
    } else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER && k->via.u64 <= 1) {
        return (int)k->via.u64;
    }
    return -1;
}

static bool decode_message(rd *r, const msgpack_object *o, hcnn_kmsg *m)
{
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1)
        return fail(r, "message: expected a map of one entry, "
                       "{\"Request\": ...} or {\"Response\": ...}");
    const msgpack_object_kv *kv = &o->via.map.ptr[0];
    int v = variant(&kv->key);
    if (v < 0)
        return fail(r, "message: unknown variant (expected Request or "
                       "Response)");
    const msgpack_object *f;
    if (v == 0) {
        f = array(r, &kv->val, 5, "request");
        if (f == NULL || !get_bool(r, &f[0], &m->inherit, "request: inherit"))
            return false;
        if (f[1].type != MSGPACK_OBJECT_NIL) {
            if (!get_u64(r, &f[1], &m->expects, "request: expects_response"))
                return false;
            m->has_expects = true;
        }
        return get_bytes(r, &f[2], &m->body, &m->body_len, "request: body") &&
               get_opt_str(r, &f[3], &m->metadata, "request: metadata") &&
               get_caps(r, &f[4], &m->caps, &m->ncaps);
    }
    m->is_response = true;
    const msgpack_object *pair = array(r, &kv->val, 2, "response");
    f = pair ? array(r, &pair[0], 4, "response") : NULL;
    if (f == NULL || !get_bool(r, &f[0], &m->inherit, "response: inherit") ||
        !get_bytes(r, &f[1], &m->body, &m->body_len, "response: body") ||
        !get_opt_str(r, &f[2], &m->metadata, "response: metadata") ||
        !get_caps(r, &f[3], &m->caps, &m->ncaps))
        return false;
    if (pair[1].type == MSGPACK_OBJECT_NIL)
        return true;
    m->has_context = true;
    return get_bytes(r, &pair[1], &m->context, &m->context_len,
                     "response: context");
}

bool hcnn_kmsg_decode(const uint8_t *p, size_t n, hcnn_kmsg *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    rd r = {err, errlen, false, NULL};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object *o = unpack(&r, p, n, &up, "KernelMessage");
    const msgpack_object *f = o ? array(&r, o, 6, "KernelMessage") : NULL;
    bool ok = f && get_u64(&r, &f[0], &out->id, "id") &&
              get_str(&r, &f[1], &out->source, "source") &&
              get_str(&r, &f[2], &out->target, "target") &&
              get_opt_str(&r, &f[3], &out->rsvp, "rsvp") &&
              decode_message(&r, &f[4], out);
    if (ok && f[5].type != MSGPACK_OBJECT_NIL) {
        const msgpack_object *b = array(&r, &f[5], 2, "lazy_load_blob");
        out->has_blob = true;
        ok = b &&
             get_opt_str(&r, &b[0], &out->blob_mime, "lazy_load_blob: mime") &&
             get_bytes(&r, &b[1], &out->blob, &out->blob_len,
                       "lazy_load_blob: bytes");
    }
    msgpack_unpacked_destroy(&up);
    rd_fini(&r);
    if (!ok)
        hcnn_kmsg_fini(out);
    return ok;
}

void hcnn_kmsg_fini(hcnn_kmsg *m)
{
    free(m->source);
    free(m->target);
    free(m->rsvp);
    free(m->body);
    free(m->metadata);
    for (size_t i = 0; i < m->ncaps; i++) {
        free(m->caps[i].issuer);
        free(m->caps[i].params);
        free(m->caps[i].sig);
    }
    free(m->caps);
    free(m->context);
    free(m->blob_mime);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

bool hcnn_hs_payload_decode(const uint8_t *p, size_t n, hcnn_hs_payload *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    rd r = {err, errlen, false, NULL};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object *o = unpack(&r, p, n, &up, "HandshakePayload");
    const msgpack_object *f = o ? array(&r, o, 4, "HandshakePayload") : NULL;
    bool ok = f && get_u64(&r, &f[0], &out->version, "protocol_version") &&
              get_str(&r, &f[1], &out->name, "name") &&
              get_bytes(&r, &f[2], &out->sig, &out->sig_len, "signature") &&
              get_bool(&r, &f[3], &out->proxy_request, "proxy_request");
    if (ok && out->version > 255)
        ok = fail(&r, "protocol_version: %llu is not a u8",
                  (unsigned long long)out->version);
    msgpack_unpacked_destroy(&up);
    rd_fini(&r);
    if (!ok)
        hcnn_hs_payload_fini(out);
    return ok;
}

void hcnn_hs_payload_fini(hcnn_hs_payload *h)
{
    free(h->name);
    free(h->sig);
    memset(h, 0, sizeof *h);
}

bool hcnn_routing_request_decode(const uint8_t *p, size_t n,
                                 hcnn_routing_request *out, char *err,
                                 size_t errlen)
{
    memset(out, 0, sizeof *out);
    rd r = {err, errlen, false, NULL};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object *o = unpack(&r, p, n, &up, "RoutingRequest");
    const msgpack_object *f = o ? array(&r, o, 4, "RoutingRequest") : NULL;
    bool ok = f && get_u64(&r, &f[0], &out->version, "protocol_version") &&
              get_str(&r, &f[1], &out->source, "source") &&
              get_bytes(&r, &f[2], &out->sig, &out->sig_len, "signature") &&
              get_str(&r, &f[3], &out->target, "target");
    if (ok && out->version > 255)
        ok = fail(&r, "protocol_version: %llu is not a u8",
                  (unsigned long long)out->version);
    msgpack_unpacked_destroy(&up);
    rd_fini(&r);
    if (!ok)
        hcnn_routing_request_fini(out);
    return ok;
}

void hcnn_routing_request_fini(hcnn_routing_request *q)
{
    free(q->source);
    free(q->sig);
    free(q->target);
    memset(q, 0, sizeof *q);
}

/* --------------------------------------------------------------- NetAction */

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void hcnn_hns_fini(hcnn_hns *h)
{
    free(h->name);
    free(h->public_key);
    free_strs(h->ips, h->nips);
    free_strs(h->port_names, h->nports);
    free(h->ports);
    free_strs(h->routers, h->nrouters);
    memset(h, 0, sizeof *h);
}

static bool get_strs(rd *r, const msgpack_object *o, char ***out, size_t *n,
                     const char *what)
{
    *out = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return fail(r, "%s: expected an array of strings", what);
    size_t k = o->via.array.size;
    char **v = calloc(k ? k : 1, sizeof *v);
    if (v == NULL)
        return fail(r, "%s: out of memory", what);
    *out = v;
    for (size_t i = 0; i < k; i++) {
        if (!get_str(r, &o->via.array.ptr[i], &v[i], what))
            return false;
        *n = i + 1;
    }
    return true;
}

static bool get_hns(rd *r, const msgpack_object *o, hcnn_hns *h)
{
    const msgpack_object *f = array(r, o, 5, "HnsUpdate");
    if (f == NULL || !get_str(r, &f[0], &h->name, "HnsUpdate: name") ||
        !get_str(r, &f[1], &h->public_key, "HnsUpdate: public_key") ||
        !get_strs(r, &f[2], &h->ips, &h->nips, "HnsUpdate: ips"))
        return false;
    if (f[3].type != MSGPACK_OBJECT_MAP)
        return fail(r, "HnsUpdate: ports: expected a map of name to port");
    size_t k = f[3].via.map.size;
    h->port_names = calloc(k ? k : 1, sizeof *h->port_names);
    h->ports = calloc(k ? k : 1, sizeof *h->ports);
    if (h->port_names == NULL || h->ports == NULL)
        return fail(r, "HnsUpdate: out of memory");
    for (size_t i = 0; i < k; i++) {
        const msgpack_object_kv *kv = &f[3].via.map.ptr[i];
        uint64_t port = 0;
        if (!get_str(r, &kv->key, &h->port_names[i], "HnsUpdate: ports"))
            return false;
        h->nports = i + 1;
        if (!get_u64(r, &kv->val, &port, "HnsUpdate: ports"))
            return false;
        if (port > 65535)
            return fail(r, "HnsUpdate: ports: %llu is not a u16",
                        (unsigned long long)port);
        h->ports[i] = (uint16_t)port;
    }
    return get_strs(r, &f[4], &h->routers, &h->nrouters, "HnsUpdate: routers");
}

static int action_kind(const msgpack_object *k)
{
    static const char *const names[] = {
#define HCNN_NA_NAME(name, text) text,
        HCNN_NET_ACTION_MAP(HCNN_NA_NAME)
#undef HCNN_NA_NAME
    };
    size_t count = sizeof names / sizeof names[0];
    if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return k->via.u64 < count ? (int)k->via.u64 : -1;
    if (k->type != MSGPACK_OBJECT_STR)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (strlen(names[i]) == k->via.str.size &&
            memcmp(names[i], k->via.str.ptr, k->via.str.size) == 0)
            return (int)i;
    return -1;
}

bool hcnn_net_action_decode(const uint8_t *p, size_t n, hcnn_net_action *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    rd r = {err, errlen, false, NULL};
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    const msgpack_object *o = unpack(&r, p, n, &up, "NetAction");
    const msgpack_object *val = NULL;
    int kind = -1;
    if (o && o->type == MSGPACK_OBJECT_MAP && o->via.map.size == 1) {
        kind = action_kind(&o->via.map.ptr[0].key);
        val = &o->via.map.ptr[0].val;
    } else if (o) {
        kind = action_kind(o);
    }
    bool ok = o != NULL;
    if (ok && kind < 0)
        ok = fail(&r, "NetAction: unknown variant (expected one of "
                      "ConnectionRequest, HnsUpdate, HnsBatchUpdate, GetPeers, "
                      "GetPeer, GetDiagnostics, Sign, Verify)");
    if (ok) {
        out->kind = (hcnn_net_action_kind)kind;
        bool unit = kind == HCNN_NA_GET_PEERS ||
                    kind == HCNN_NA_GET_DIAGNOSTICS || kind == HCNN_NA_SIGN;
        if (unit != (val == NULL))
            ok = fail(&r, unit ? "NetAction: this variant carries nothing"
                               : "NetAction: this variant carries a value");
    }
    if (ok) {
        switch (out->kind) {
        case HCNN_NA_CONNECTION_REQUEST:
        case HCNN_NA_GET_PEER:
            ok = get_str(&r, val, &out->text, "NetAction");
            break;
        case HCNN_NA_HNS_UPDATE:
            out->hns = calloc(1, sizeof *out->hns);
            ok = out->hns ? (out->nhns = 1, get_hns(&r, val, out->hns))
                          : fail(&r, "out of memory");
            break;
        case HCNN_NA_HNS_BATCH_UPDATE:
            if (val->type != MSGPACK_OBJECT_ARRAY) {
                ok = fail(&r, "HnsBatchUpdate: expected an array");
                break;
            }
            out->hns = calloc(val->via.array.size ? val->via.array.size : 1,
                              sizeof *out->hns);
            if (out->hns == NULL) {
                ok = fail(&r, "out of memory");
                break;
            }
            for (size_t i = 0; ok && i < val->via.array.size; i++) {
                out->nhns = i + 1;
                ok = get_hns(&r, &val->via.array.ptr[i], &out->hns[i]);
            }
            break;
        case HCNN_NA_VERIFY: {
            const msgpack_object *f = array(&r, val, 2, "Verify");
            ok = f && get_str(&r, &f[0], &out->text, "Verify: from") &&
                 get_bytes(&r, &f[1], &out->sig, &out->sig_len,
                           "Verify: signature");
            break;
        }
        default: break;
        }
    }
    msgpack_unpacked_destroy(&up);
    rd_fini(&r);
    if (!ok)
        hcnn_net_action_fini(out);
    return ok;
}

void hcnn_net_action_fini(hcnn_net_action *a)
{
    free(a->text);
    for (size_t i = 0; i < a->nhns; i++)
        hcnn_hns_fini(&a->hns[i]);
    free(a->hns);
    free(a->sig);
    memset(a, 0, sizeof *a);
}

/* -------------------------------------------------------------- Identity */

void hcnn_identity_pack(msgpack_packer *pk, const hcnn_identity *id)
{
    msgpack_pack_array(pk, 3);
    put_str(pk, id->name);
    put_str(pk, id->networking_key);
    msgpack_pack_map(pk, 1);
    if (id->ip) {
        put_str(pk, "Direct");
        msgpack_pack_array(pk, 2);
        put_str(pk, id->ip);
        /* a BTreeMap: keys in order ("tcp" < "ws") */
        msgpack_pack_map(pk, (id->tcp_port != 0) + (id->ws_port != 0));
        if (id->tcp_port) {
            put_str(pk, "tcp");
            msgpack_pack_uint16(pk, id->tcp_port);
        }
        if (id->ws_port) {
            put_str(pk, "ws");
            msgpack_pack_uint16(pk, id->ws_port);
        }
    } else {
        put_str(pk, "Routers");
        msgpack_pack_array(pk, id->nrouters);
        for (size_t i = 0; i < id->nrouters; i++)
            put_str(pk, id->routers[i]);
    }
}
