/* libFuzzer: the network's msgpack decoder (src/node/net/wire.c), which
 * reads what other nodes send.  Each input is decoded as a KernelMessage,
 * a HandshakePayload and a RoutingRequest; what decodes is encoded, decoded
 * again and encoded a second time, and the two encodings must be the same bytes
 * (rmp-serde's canonical form survives the codec).  Everything decoded is
 * released: a leak is a finding. */
#include "node/net/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void twice_same(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
    if (a->size != b->size || memcmp(a->data, b->data, a->size) != 0) {
        fprintf(stderr, "a decoded message encoded twice differs\n");
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    hcnn_kmsg m, m2;
    if (hcnn_kmsg_decode(data, size, &m, err, sizeof err)) {
        msgpack_sbuffer a, b;
        msgpack_sbuffer_init(&a);
        msgpack_sbuffer_init(&b);
        hcnn_kmsg_encode(&m, &a);
        if (!hcnn_kmsg_decode((const uint8_t *)a.data, a.size, &m2, err,
                              sizeof err)) {
            fprintf(stderr, "our own encoding refused: %s\n", err);
            abort();
        }
        hcnn_kmsg_encode(&m2, &b);
        twice_same(&a, &b);
        hcnn_kmsg_fini(&m2);
        hcnn_kmsg_fini(&m);
        msgpack_sbuffer_destroy(&a);
        msgpack_sbuffer_destroy(&b);
    }
    hcnn_hs_payload h, h2;
    if (hcnn_hs_payload_decode(data, size, &h, err, sizeof err)) {
        msgpack_sbuffer a, b;
        msgpack_sbuffer_init(&a);
        msgpack_sbuffer_init(&b);
        hcnn_hs_payload_encode(&h, &a);
        if (!hcnn_hs_payload_decode((const uint8_t *)a.data, a.size, &h2, err,
                                    sizeof err)) {
            fprintf(stderr, "our own encoding refused: %s\n", err);
            abort();
        }
        hcnn_hs_payload_encode(&h2, &b);
        twice_same(&a, &b);
        hcnn_hs_payload_fini(&h2);
        hcnn_hs_payload_fini(&h);
        msgpack_sbuffer_destroy(&a);
        msgpack_sbuffer_destroy(&b);
    }
    /* a router reads a routing request before anything is authenticated */
    hcnn_routing_request q, q2;
    if (hcnn_routing_request_decode(data, size, &q, err, sizeof err)) {
        msgpack_sbuffer a, b;
        msgpack_sbuffer_init(&a);
        msgpack_sbuffer_init(&b);
        hcnn_routing_request_encode(&q, &a);
        if (!hcnn_routing_request_decode((const uint8_t *)a.data, a.size, &q2,
                                         err, sizeof err)) {
            fprintf(stderr, "our own encoding refused: %s\n", err);
            abort();
        }
        hcnn_routing_request_encode(&q2, &b);
        twice_same(&a, &b);
        hcnn_routing_request_fini(&q2);
        hcnn_routing_request_fini(&q);
        msgpack_sbuffer_destroy(&a);
        msgpack_sbuffer_destroy(&b);
    }
    return 0;
}
