/* libFuzzer: the Noise handshake reader (src/node/net/noise.c) on what an
 * unknown peer sends before anything is authenticated.  The input, cut in
 * two where its first byte says, is read by a responder as the first and
 * third handshake messages (with its own second in between) and by an
 * initiator as the second.  Every read must fail cleanly or succeed; no
 * out-of-bounds access, no leak. */
#include "node/net/noise.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cut = data[0] < size - 1 ? data[0] : size - 1;
    const uint8_t *a = data + 1, *b = data + 1 + cut;
    size_t alen = cut, blen = size - 1 - cut;
    static uint8_t pl[HCNN_MAX_MSG], msg[HCNN_MAX_MSG];
    size_t plen, mlen;
    static const uint8_t key_r[HCNN_KEY] = {1}, key_i[HCNN_KEY] = {2};
    static const uint8_t eph_r[HCNN_KEY] = {3}, eph_i[HCNN_KEY] = {4};

    hcnn_handshake r;
    if (hcnn_handshake_init(&r, false, key_r, NULL, 0) != HCNN_OK)
        abort();
    hcnn_handshake_set_ephemeral(&r, eph_r);
    if (hcnn_handshake_read(&r, a, alen, pl, sizeof pl, &plen) == HCNN_OK) {
        if (plen > sizeof pl)
            abort();
        if (hcnn_handshake_write(&r, (const uint8_t *)"p", 1, msg, sizeof msg,
                                 &mlen) == HCNN_OK)
            hcnn_handshake_read(&r, b, blen, pl, sizeof pl, &plen);
    }
    hcnn_handshake_wipe(&r);

    hcnn_handshake i;
    if (hcnn_handshake_init(&i, true, key_i, NULL, 0) != HCNN_OK)
        abort();
    hcnn_handshake_set_ephemeral(&i, eph_i);
    if (hcnn_handshake_write(&i, NULL, 0, msg, sizeof msg, &mlen) != HCNN_OK)
        abort();
    hcnn_handshake_read(&i, data + 1, size - 1, pl, sizeof pl, &plen);
    hcnn_handshake_wipe(&i);
    return 0;
}
