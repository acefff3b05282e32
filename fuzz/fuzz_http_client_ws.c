/* libFuzzer: what a remote WebSocket server sends http-client:distro:sys
 * (src/node/http/client.c) on an outgoing connection: its answer to the
 * upgrade, read by the client's own reader (http-parser) in pieces whose
 * sizes the input picks, then the frames after it, read through the
 * connection's own wslay callbacks and delivered to the process that
 * opened it.  The first byte picks the piece size (bits 0-5) and the
 * largest message (bit 6: 16 bytes, else 1 MiB); the rest is what the
 * server sent.  The reader must never accept an answer that is not a 101
 * with Upgrade: websocket and the expected Sec-WebSocket-Accept. */
#include "fuzz_node.h"
#include "node/http/http.h"

#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hcn_proc *owner, *client;

/* s3pPLMBiTxaQ9kYGzzhZRbK+xOo= is the accept value of the RFC 6455 key
 * dGhlIHNhbXBsZSBub25jZQ==, which the seeds carry. */
#define WANT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (owner == NULL) {
        hcn_node *n = fz_boot(NULL, false);
        owner = fz_proc("app:fuzz:sys", true);
        client = hcn_node_find(n, "http-client:distro:sys");
        if (client == NULL)
            abort();
        hcn_proc_unref(client);
        hcn_grant_messaging(n, client, "app:fuzz:sys");
    }
    size_t piece = (size_t)(data[0] & 63) + 1;
    uint64_t max_bytes = (data[0] & 64) ? 16 : (1u << 20);
    const char *in = (const char *)data + 1;
    size_t len = size - 1, off = 0, used = 0;
    hcn_hc_upgrade u;
    hcn_hc_upgrade_init(&u);
    int st = HCN_HC_UPGRADE_MORE;
    while (st == HCN_HC_UPGRADE_MORE && off < len) {
        size_t k = len - off < piece ? len - off : piece;
        st = hcn_hc_upgrade_feed(&u, in + off, k, &used);
        if (used > k)
            abort();
        off += st == HCN_HC_UPGRADE_DONE ? used : k;
    }
    bool ok = st == HCN_HC_UPGRADE_DONE && hcn_hc_upgrade_accepted(&u, WANT);
    if (ok && (u.p.status_code != 101 || u.accept == NULL ||
               strcmp(u.accept, WANT) != 0 || !u.upgrade_ok))
        abort(); /* accepted what it must not */
    hcn_hc_upgrade_fini(&u);
    if (ok)
        hcn_hc_ws_probe((hcn_node *)fz_node, client, owner->addr, max_bytes,
                        (const uint8_t *)in + off, len - off);
    fz_drain(owner, NULL, NULL);
    return 0;
}
