/* libFuzzer: the network's WebSocket links (src/node/net/ws.c), which read
 * what a dialer or an accepted peer sends before and after the upgrade.
 * The first byte picks the role and the piece size; the rest is fed as an
 * upgrade, then as frames, whose binary messages go through the chunk
 * reader (frame.c) as the node's connection does.  Nothing may read out
 * of bounds, leak, or loop. */
#include "node/net/frame.h"
#include "node/net/ws.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void drop(void *arg, const uint8_t *p, size_t n)
{
    (void)p;
    *(size_t *)arg += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    bool client = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) * 53 + 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1, at = 0, sent = 0;
    hcnn_ws *w = hcnn_ws_new(client);
    hcnn_cipher rx;
    memset(&rx, 0, sizeof rx);
    memset(rx.k, 9, sizeof rx.k);
    rx.has_key = true;
    hcnn_reader r = {0};
    bool up = false, broken = false;
    if (client)
        hcnn_ws_request(w, "127.0.0.1", 1, drop, &sent);
    while (at < n && !broken) {
        size_t k = n - at < step ? n - at : step;
        const char *why = NULL;
        size_t used = 0;
        if (!up) {
            int rc = hcnn_ws_upgrade(w, p + at, k, &used, drop, &sent, &why);
            if (used > k)
                abort();
            if (rc < 0) {
                broken = true;
                break;
            }
            if (rc == 0) {
                at += k;
                continue;
            }
            up = true;
        }
        if (hcnn_ws_recv(w, p + at + used, k - used, &why) < 0)
            broken = true;
        uint8_t *m, *msg;
        size_t mn, len;
        while (hcnn_ws_next(w, &m, &mn)) {
            if (!broken &&
                hcnn_reader_ws(&r, &rx, m, mn, &msg, &len, &why) == 1)
                free(msg);
            free(m);
        }
        hcnn_ws_flush(w, drop, &sent);
        at += k;
    }
    hcnn_reader_fini(&r);
    hcnn_ws_free(w);
    return 0;
}
