/* The network's msgpack codec (src/node/net/wire.c) against the real
 * rmp-serde: tests/rmpref writes each message below with rmp-serde into the
 * file named by HYPERC_RMPREF ("name hex" lines); the node's encoding must
 * be those bytes exactly, and decoding them must give back what was
 * encoded.  Then what a hyperdrive peer may also send (bin for bytes, a
 * variant by index, integers wider than needed) is accepted, and what
 * rmp-serde refuses, or a C string cannot hold, is refused with a reason. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node/net/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- the reference */

typedef struct golden {
    char name[32];
    uint8_t *bytes;
    size_t len;
} golden;

static golden gold[64];
static size_t ngold;

static int load_gold(void **state)
{
    (void)state;
    const char *path = getenv("HYPERC_RMPREF");
    if (path == NULL) {
        fprintf(stderr, "HYPERC_RMPREF is not set (ctest sets it)\n");
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    static char line[1 << 20];
    while (fgets(line, sizeof line, f) && ngold < 64) {
        char *sp = strchr(line, ' ');
        if (sp == NULL)
            continue;
        *sp = '\0';
        char *hex = sp + 1;
        hex[strcspn(hex, "\r\n")] = '\0';
        golden *g = &gold[ngold++];
        assert_true(strlen(line) < sizeof g->name);
        memcpy(g->name, line, strlen(line) + 1);
        g->len = strlen(hex) / 2;
        g->bytes = malloc(g->len ? g->len : 1);
        for (size_t i = 0; i < g->len; i++) {
            unsigned v;
            sscanf(hex + 2 * i, "%2x", &v);
            g->bytes[i] = (uint8_t)v;
        }
    }
    fclose(f);
    return ngold > 0 ? 0 : -1;
}

static int free_gold(void **state)
{
    (void)state;
    for (size_t i = 0; i < ngold; i++)
        free(gold[i].bytes);
    return 0;
}

static const golden *find(const char *name)
{
    for (size_t i = 0; i < ngold; i++)
        if (strcmp(gold[i].name, name) == 0)
            return &gold[i];
    fail_msg("no reference message %s", name);
    return NULL;
}

/* Encode m, compare with the reference, decode the reference and encode
 * that again: the same bytes. */
static void same_as_rmp(const char *name, const hcnn_kmsg *m)
{
    const golden *g = find(name);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_kmsg_encode(m, &sb);
    if (sb.size != g->len || memcmp(sb.data, g->bytes, g->len) != 0)
        fail_msg("%s: %zu bytes differ from rmp-serde's %zu", name, sb.size,
                 g->len);
    hcnn_kmsg d;
    char err[160] = "";
    if (!hcnn_kmsg_decode(g->bytes, g->len, &d, err, sizeof err))
        fail_msg("%s: %s", name, err);
    msgpack_sbuffer_clear(&sb);
    hcnn_kmsg_encode(&d, &sb);
    assert_int_equal(sb.size, g->len);
    assert_memory_equal(sb.data, g->bytes, g->len);
    assert_true(d.id == m->id);
    assert_string_equal(d.source, m->source);
    assert_string_equal(d.target, m->target);
    assert_int_equal(d.body_len, m->body_len);
    assert_int_equal(d.is_response, m->is_response);
    hcnn_kmsg_fini(&d);
    msgpack_sbuffer_destroy(&sb);
}

/* -------------------------------------------------------------- matches */

static void handshake_payloads(void **state)
{
    (void)state;
    uint8_t sig1[64], sig2[64];
    for (int i = 0; i < 64; i++) {
        sig1[i] = (uint8_t)i;
        sig2[i] = (uint8_t)(0xc0 + i);
    }
    hcnn_hs_payload h[2] = {{1, "fake.os", sig1, 64, false},
                            {1, "fake2.os", sig2, 64, true}};
    const char *names[2] = {"hs1", "hs2"};
    for (int i = 0; i < 2; i++) {
        const golden *g = find(names[i]);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        hcnn_hs_payload_encode(&h[i], &sb);
        assert_int_equal(sb.size, g->len);
        assert_memory_equal(sb.data, g->bytes, g->len);
        msgpack_sbuffer_destroy(&sb);
        hcnn_hs_payload d;
        char err[160];
        assert_true(
            hcnn_hs_payload_decode(g->bytes, g->len, &d, err, sizeof err));
        assert_int_equal(d.version, 1);
        assert_string_equal(d.name, h[i].name);
        assert_int_equal(d.sig_len, 64);
        assert_memory_equal(d.sig, h[i].sig, 64);
        assert_int_equal(d.proxy_request, h[i].proxy_request);
        hcnn_hs_payload_fini(&d);
    }
}

static void routing_requests(void **state)
{
    (void)state;
    uint8_t sig[64];
    for (int i = 0; i < 64; i++)
        sig[i] = (uint8_t)(0x70 + i);
    hcnn_routing_request q = {1, "a.os", sig, 64, "t.os"};
    const golden *g = find("rr");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_routing_request_encode(&q, &sb);
    assert_int_equal(sb.size, g->len);
    assert_memory_equal(sb.data, g->bytes, g->len);
    msgpack_sbuffer_destroy(&sb);
    hcnn_routing_request d;
    char err[160];
    assert_true(
        hcnn_routing_request_decode(g->bytes, g->len, &d, err, sizeof err));
    assert_int_equal(d.version, 1);
    assert_string_equal(d.source, "a.os");
    assert_string_equal(d.target, "t.os");
    assert_int_equal(d.sig_len, 64);
    assert_memory_equal(d.sig, sig, 64);
    hcnn_routing_request_fini(&d);
    /* a HandshakePayload is not one (its last field is a bool) */
    assert_false(hcnn_routing_request_decode(
        find("hs1")->bytes, find("hs1")->len, &d, err, sizeof err));
}

static void kernel_messages(void **state)
{
    (void)state;
    hcnn_kmsg req = {
        .id = 12345678901234567890ull,
        .source = "alice.os@chat:chat:template.os",
        .target = "bob.os@chat:chat:template.os",
        .rsvp = "alice.os@chat:chat:template.os",
        .has_expects = true,
        .expects = 30,
        .body = (uint8_t *)"{\"Send\":\"hi\"}",
        .body_len = 13,
    };
    same_as_rmp("req", &req);

    uint8_t sig[] = {0xff, 0x00, 0x80}, ctx[] = {1, 2, 3},
            blob[] = {0x68, 0x69, 0xc8};
    hcnn_cap cap = {"bob.os@chat:chat:template.os", "\"messaging\"", sig, 3};
    hcnn_kmsg resp = {
        .id = 7,
        .source = "bob.os@chat:chat:template.os",
        .target = "alice.os@chat:chat:template.os",
        .is_response = true,
        .body = (uint8_t *)"null",
        .body_len = 4,
        .metadata = "{}",
        .caps = &cap,
        .ncaps = 1,
        .has_context = true,
        .context = ctx,
        .context_len = 3,
        .has_blob = true,
        .blob_mime = "text/plain",
        .blob = blob,
        .blob_len = 3,
    };
    same_as_rmp("resp", &resp);

    hcnn_kmsg hello = {.id = 1,
                       .source = "fake2.os@net:distro:sys",
                       .target = "fake.os@net:distro:sys",
                       .body = (uint8_t *)"hello",
                       .body_len = 5};
    same_as_rmp("hello", &hello);

    static const uint64_t ids[10] = {
        0,     127,   128,         255,           256,
        65535, 65536, 4294967295u, 4294967296ull, UINT64_MAX};
    for (int i = 0; i < 10; i++) {
        hcnn_kmsg m = {.id = ids[i],
                       .source = "a.os@p:k:u",
                       .target = "b.os@p:k:u",
                       .has_expects = true,
                       .expects = ids[i]};
        char name[8];
        snprintf(name, sizeof name, "id%d", i);
        same_as_rmp(name, &m);
    }

    hcnn_kmsg plain = {.id = 2,
                       .source = "b.os@p:k:u",
                       .target = "a.os@p:k:u",
                       .rsvp = "c.os@p:k:u",
                       .is_response = true,
                       .inherit = true};
    same_as_rmp("resp_plain", &plain);
}

/* Every size class: a str16 address, a str8 metadata, an array16 body and
 * capability list, an array32 blob. */
static void big_message(void **state)
{
    (void)state;
    char target[400];
    memset(target, 'n', 300);
    strcpy(target + 300, ".os@p:k:u");
    uint8_t body[300];
    for (int i = 0; i < 300; i++)
        body[i] = (uint8_t)(i % 256);
    char meta[41];
    memset(meta, 'm', 40);
    meta[40] = '\0';
    hcnn_cap caps[17];
    char issuers[17][32];
    uint8_t sigs[17];
    for (int i = 0; i < 17; i++) {
        snprintf(issuers[i], sizeof issuers[i], "c%d.os@p:k:u", i);
        sigs[i] = (uint8_t)i;
        caps[i] = (hcnn_cap){issuers[i], "\"messaging\"", &sigs[i], 1};
    }
    size_t bn = 70000;
    uint8_t *blob = malloc(bn);
    for (size_t i = 0; i < bn; i++)
        blob[i] = (uint8_t)(i * 7 % 256);
    hcnn_kmsg m = {.id = 1,
                   .source = "a.os@p:k:u",
                   .target = target,
                   .inherit = true,
                   .body = body,
                   .body_len = 300,
                   .metadata = meta,
                   .caps = caps,
                   .ncaps = 17,
                   .has_blob = true,
                   .blob = blob,
                   .blob_len = bn};
    same_as_rmp("big", &m);
    free(blob);
}

/* Bodies and blobs with a byte of 0x80 or above (written 0xcc, byte) at
 * every offset among small ones: what is decoded is what was encoded. */
static void byte_arrays_at_every_offset(void **state)
{
    (void)state;
    uint8_t body[80], blob[80];
    uint64_t r = 11;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    for (size_t n = 0; n <= sizeof body; n++)
        for (size_t at = 0; at < (n ? n : 1); at++) {
            for (size_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                body[i] = (uint8_t)(r >> 59); /* small */
                blob[i] = (uint8_t)(r >> 56); /* any */
            }
            if (n) {
                body[at] = (uint8_t)(0x80 + at);
                blob[at] = 0xcc;
            }
            hcnn_kmsg m = {.id = n * 100 + at,
                           .source = "a.os@p:k:u",
                           .target = "b.os@p:k:u",
                           .body = body,
                           .body_len = n,
                           .has_blob = true,
                           .blob = blob,
                           .blob_len = n};
            msgpack_sbuffer_clear(&sb);
            hcnn_kmsg_encode(&m, &sb);
            hcnn_kmsg d;
            char err[160] = "";
            if (!hcnn_kmsg_decode((const uint8_t *)sb.data, sb.size, &d, err,
                                  sizeof err))
                fail_msg("n %zu at %zu: %s", n, at, err);
            assert_int_equal(d.body_len, n);
            assert_int_equal(d.blob_len, n);
            if (n) {
                assert_memory_equal(d.body, body, n);
                assert_memory_equal(d.blob, blob, n);
            }
            hcnn_kmsg_fini(&d);
        }
    msgpack_sbuffer_destroy(&sb);
}

/* ------------------------------------------------------------- leniency */

static bool decodes(const uint8_t *p, size_t n, hcnn_kmsg *out)
{
    char err[160] = "";
    bool ok = hcnn_kmsg_decode(p, n, out, err, sizeof err);
    if (!ok)
        print_message("refused: %s\n", err);
    return ok;
}

static void accepted_forms(void **state)
{
    (void)state;
    /* the "hello" message with its body as bin, its variant as index 0
     * and its id as a u64 */
    static const uint8_t m[] = {
        0x96, 0xcf, 0,    0,    0,    0,    0,    0,    0,    1,
        0xaa, 'a',  '.',  'o',  's',  '@',  'p',  ':',  'k',  ':',
        'u',  0xaa, 'b',  '.',  'o',  's',  '@',  'p',  ':',  'k',
        ':',  'u',  0xc0, 0x81, 0x00, 0x95, 0xc2, 0xc0, 0xc4, 0x02,
        'h',  'i',  0xc0, 0x90, 0x92, 0xc0, 0xc4, 0x01, 0x07};
    hcnn_kmsg d;
    assert_true(decodes(m, sizeof m, &d));
    assert_true(d.id == 1);
    assert_false(d.is_response);
    assert_int_equal(d.body_len, 2);
    assert_memory_equal(d.body, "hi", 2);
    assert_true(d.has_blob);
    assert_null(d.blob_mime);
    assert_int_equal(d.blob_len, 1);
    assert_int_equal(d.blob[0], 7);
    /* re-encoded, it is rmp-serde's canonical form */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_kmsg_encode(&d, &sb);
    assert_int_equal(((uint8_t *)sb.data)[1], 0x01);
    msgpack_sbuffer_destroy(&sb);
    hcnn_kmsg_fini(&d);
}

/* Long byte arrays are read as bin internally (wire.c, compact_bytes):
 * one whose elements are not all u8 encodings stays an array and still
 * reads; what follows a compacted array is read as before. */
static void long_byte_arrays(void **state)
{
    (void)state;
    /* a Request whose body is 40 bytes, the 20th written as a u16 (0xcd
     * 00 05: rmp-serde accepts any width), then caps [] */
    uint8_t m[200];
    size_t n = 0;
    static const uint8_t head[] = {
        0x96, 0x01, 0xaa, 'a',  '.',  'o',  's',  '@',  'p',  ':',
        'k',  ':',  'u',  0xaa, 'b',  '.',  'o',  's',  '@',  'p',
        ':',  'k',  ':',  'u',  0xc0, 0x81, 0xa7, 'R',  'e',  'q',
        'u',  'e',  's',  't',  0x95, 0xc2, 0x05, 0xdc, 0x00, 40};
    memcpy(m, head, sizeof head);
    n = sizeof head;
    for (int i = 0; i < 40; i++) {
        if (i == 19) {
            m[n++] = 0xcd;
            m[n++] = 0;
            m[n++] = 5;
        } else if (i % 2) {
            m[n++] = 0xcc;
            m[n++] = (uint8_t)(0x80 + i);
        } else {
            m[n++] = (uint8_t)i;
        }
    }
    static const uint8_t tail[] = {0xc0, 0x90, 0xc0};
    memcpy(m + n, tail, sizeof tail);
    n += sizeof tail;
    hcnn_kmsg d;
    assert_true(decodes(m, n, &d));
    assert_int_equal(d.body_len, 40);
    assert_int_equal(d.body[19], 5);
    assert_int_equal(d.body[1], 0x81);
    assert_int_equal(d.body[2], 2);
    assert_int_equal(d.ncaps, 0);
    assert_true(d.has_expects && d.expects == 5);
    hcnn_kmsg_fini(&d);
    /* the same with every element a u8 encoding: compacted, same bytes */
    m[sizeof head + 19 + 9] = 0x13; /* (after 9 two-byte elements) */
    memmove(m + sizeof head + 19 + 9 + 1, m + sizeof head + 19 + 9 + 3,
            n - (sizeof head + 19 + 9 + 3));
    n -= 2;
    assert_true(decodes(m, n, &d));
    assert_int_equal(d.body_len, 40);
    assert_int_equal(d.body[19], 0x13);
    assert_int_equal(d.body[39], 0x80 + 39);
    assert_int_equal(d.ncaps, 0);
    hcnn_kmsg_fini(&d);
}

/* -------------------------------------------------------------- refusals */

static void refused(const uint8_t *p, size_t n, const char *why)
{
    hcnn_kmsg d;
    char err[160] = "";
    assert_false(hcnn_kmsg_decode(p, n, &d, err, sizeof err));
    if (strstr(err, why) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", why, err);
    /* nothing kept */
    assert_null(d.source);
    assert_null(d.body);
}

static void refusals(void **state)
{
    (void)state;
    const golden *g = find("req");
    uint8_t *b = malloc(g->len + 1);
    /* truncated, and one byte too many */
    refused(g->bytes, g->len - 1, "well-formed");
    memcpy(b, g->bytes, g->len);
    b[g->len] = 0xc0;
    refused(b, g->len + 1, "well-formed");
    /* the id as a negative integer */
    static const uint8_t neg[] = {0x96, 0xff, 0xa3, 'a',  '@',  'b',  0xa3,
                                  'a',  '@',  'b',  0xc0, 0x81, 0xa7, 'R',
                                  'e',  'q',  'u',  'e',  's',  't',  0x95,
                                  0xc2, 0xc0, 0x90, 0xc0, 0x90, 0xc0};
    refused(neg, sizeof neg, "id: expected an unsigned integer");
    /* a KernelMessage of 5 fields (the blob left out) */
    uint8_t five[sizeof neg - 1];
    memcpy(five, neg, sizeof five);
    five[0] = 0x95;
    five[1] = 0x01;
    refused(five, sizeof five, "KernelMessage: expected an array of 6");
    /* an unknown variant, a body byte over 255, a NUL and bad UTF-8 in a
     * string */
    uint8_t v[sizeof neg];
    memcpy(v, neg, sizeof neg);
    v[1] = 0x01;
    v[13] = 'X';
    refused(v, sizeof v, "unknown variant");
    static const uint8_t big_byte[] = {
        0x96, 0x01, 0xa3, 'a',  '@',  'b',  0xa3, 'a',  '@',  'b',
        0xc0, 0x81, 0xa7, 'R',  'e',  'q',  'u',  'e',  's',  't',
        0x95, 0xc2, 0xc0, 0x91, 0xcd, 0x01, 0x00, 0xc0, 0x90, 0xc0};
    refused(big_byte, sizeof big_byte, "byte 0 is not an integer 0..255");
    memcpy(v, neg, sizeof neg);
    v[1] = 0x01;
    v[4] = '\0';
    refused(v, sizeof v, "source: a string with a NUL byte");
    v[4] = 0xff;
    refused(v, sizeof v, "source: a string that is not UTF-8");
    /* an array claiming four billion elements in a few bytes: refused
     * before msgpack-c allocates them */
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    refused(huge, sizeof huge, "well-formed");
    /* the handshake payload: a version that is no u8 */
    static const uint8_t hs[] = {0x94, 0xcd, 0x01, 0x00, 0xa1, 'a', 0x90, 0xc2};
    hcnn_hs_payload h;
    char err[160] = "";
    assert_false(hcnn_hs_payload_decode(hs, sizeof hs, &h, err, sizeof err));
    assert_non_null(strstr(err, "not a u8"));
    free(b);
}

/* --------------------------------------------------------- NetAction */

static void net_actions(void **state)
{
    (void)state;
    hcnn_net_action a;
    char err[160] = "";
    const golden *g = find("na_conn");
    assert_true(hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
    assert_int_equal(a.kind, HCNN_NA_CONNECTION_REQUEST);
    assert_string_equal(a.text, "x.os");
    hcnn_net_action_fini(&a);
    /* and written as a router sends it */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_connection_request_encode("x.os", &sb);
    assert_int_equal(sb.size, g->len);
    assert_memory_equal(sb.data, g->bytes, g->len);
    msgpack_sbuffer_destroy(&sb);

    g = find("na_hns");
    assert_true(hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
    assert_int_equal(a.kind, HCNN_NA_HNS_UPDATE);
    assert_int_equal(a.nhns, 1);
    assert_string_equal(a.hns[0].name, "b.os");
    assert_int_equal(strlen(a.hns[0].public_key), 64);
    assert_int_equal(a.hns[0].nips, 1);
    assert_string_equal(a.hns[0].ips[0], "127.0.0.1");
    assert_int_equal(a.hns[0].nports, 2);
    assert_string_equal(a.hns[0].port_names[0], "tcp");
    assert_int_equal(a.hns[0].ports[0], 10000);
    assert_string_equal(a.hns[0].port_names[1], "ws");
    assert_int_equal(a.hns[0].ports[1], 9000);
    assert_int_equal(a.hns[0].nrouters, 0);
    hcnn_net_action_fini(&a);

    g = find("na_batch");
    assert_true(hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
    assert_int_equal(a.kind, HCNN_NA_HNS_BATCH_UPDATE);
    assert_int_equal(a.nhns, 2);
    assert_int_equal(a.hns[0].nrouters, 2);
    assert_string_equal(a.hns[0].routers[1], "r2.os");
    assert_int_equal(a.hns[1].nips, 2);
    assert_int_equal(a.hns[1].ports[0], 65535);
    hcnn_net_action_fini(&a);

    static const struct {
        const char *name;
        hcnn_net_action_kind kind;
    } units[] = {{"na_peers", HCNN_NA_GET_PEERS},
                 {"na_diag", HCNN_NA_GET_DIAGNOSTICS},
                 {"na_sign", HCNN_NA_SIGN}};
    for (size_t i = 0; i < 3; i++) {
        g = find(units[i].name);
        assert_true(
            hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
        assert_int_equal(a.kind, units[i].kind);
        hcnn_net_action_fini(&a);
    }
    g = find("na_peer");
    assert_true(hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
    assert_int_equal(a.kind, HCNN_NA_GET_PEER);
    assert_string_equal(a.text, "b.os");
    hcnn_net_action_fini(&a);
    g = find("na_verify");
    assert_true(hcnn_net_action_decode(g->bytes, g->len, &a, err, sizeof err));
    assert_int_equal(a.kind, HCNN_NA_VERIFY);
    assert_string_equal(a.text, "alice.os@chat:chat:template.os");
    assert_int_equal(a.sig_len, 3);
    assert_int_equal(a.sig[2], 255);
    hcnn_net_action_fini(&a);
    /* refusals: an unknown variant, a unit variant with a value, a port
     * that is no u16 */
    static const uint8_t unknown[] = {0xa3, 'F', 'o', 'o'};
    assert_false(
        hcnn_net_action_decode(unknown, sizeof unknown, &a, err, sizeof err));
    assert_non_null(strstr(err, "unknown variant"));
    static const uint8_t unit_val[] = {0x81, 0xa4, 'S', 'i', 'g', 'n', 0xc0};
    assert_false(
        hcnn_net_action_decode(unit_val, sizeof unit_val, &a, err, sizeof err));
    assert_non_null(strstr(err, "carries nothing"));
    static const uint8_t port[] = {0x81, 0xa9, 'H',  'n',  's',  'U',  'p',
                                   'd',  'a',  't',  'e',  0x95, 0xa1, 'b',
                                   0xa0, 0x90, 0x81, 0xa3, 't',  'c',  'p',
                                   0xce, 0,    1,    0,    0,    0x90};
    assert_false(
        hcnn_net_action_decode(port, sizeof port, &a, err, sizeof err));
    assert_non_null(strstr(err, "not a u16"));
}

/* NetResponse with Identities, written as rmp-serde writes them. */
static void net_responses(void **state)
{
    (void)state;
    char cd[65];
    for (int i = 0; i < 32; i++)
        memcpy(cd + 2 * i, "cd", 2);
    cd[64] = '\0';
    char *routers[] = {"r1.os"};
    hcnn_identity b1 = {"b.os", cd, "127.0.0.1", 10000, 9000, NULL, 0};
    hcnn_identity b2 = {"b.os", cd, "127.0.0.1", 0, 9000, NULL, 0};
    hcnn_identity c = {"c.os", cd, NULL, 0, 0, routers, 1};
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        const golden *g;
        if (k == 0) {
            msgpack_pack_str(&pk, 4);
            msgpack_pack_str_body(&pk, "Peer", 4);
            hcnn_identity_pack(&pk, &b1);
            g = find("nr_peer");
        } else {
            msgpack_pack_str(&pk, 5);
            msgpack_pack_str_body(&pk, "Peers", 5);
            msgpack_pack_array(&pk, 2);
            hcnn_identity_pack(&pk, &b2);
            hcnn_identity_pack(&pk, &c);
            g = find("nr_peers");
        }
        assert_int_equal(sb.size, g->len);
        assert_memory_equal(sb.data, g->bytes, g->len);
        msgpack_sbuffer_destroy(&sb);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_payloads),
        cmocka_unit_test(routing_requests),
        cmocka_unit_test(kernel_messages),
        cmocka_unit_test(big_message),
        cmocka_unit_test(byte_arrays_at_every_offset),
        cmocka_unit_test(accepted_forms),
        cmocka_unit_test(long_byte_arrays),
        cmocka_unit_test(refusals),
        cmocka_unit_test(net_actions),
        cmocka_unit_test(net_responses),
    };
    return cmocka_run_group_tests(tests, load_gold, free_gold);
}
