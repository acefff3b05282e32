/* hcw_test_lane_scribble: a guest's way to write on its own lanes what no
 * honest worker writes, so that the tests (tests/blackbox/test_lanes.py)
 * can check what the reader, the peer and the node do about it
 * (docs/lane-design.md §7).  It gives a guest no power it lacks: a guest
 * runs in its worker's address space, where the lane is mapped read-write,
 * and could find the mapping and write the same words itself.  Exported
 * from hyperc-worker (worker.dynlist); a guest finds it with
 * dlsym(RTLD_DEFAULT, "hcw_test_lane_scribble").
 *
 * The words written are lane.h's layout: side s's ring has its producer
 * line (tail, reader_sleeps) at 64 + 128 s and its consumer line (head) 64
 * bytes further; its bytes at 4096 + s R; the state word at 16; direction
 * d's words (last_seq, read_seq) at 320 + 64 d.
 *
 * hcw_test_replies_room, beside it, tells a guest how full the node's
 * replies ring is. */
#include "worker_int.h"

#include "binding_int.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STATE_OFF 16
#define DIR_OFF 320

static _Atomic uint32_t *word(uint8_t *map, size_t off)
{
    return (_Atomic uint32_t *)(map + off);
}

static size_t producer(int ring)
{
    return 64 + 128 * (size_t)ring;
}

/* Wake ring `ring`'s reader, as a writer does. */
static void wake_reader(uint8_t *map, int ring)
{
    _Atomic uint32_t *flag = word(map, producer(ring) + 4);
    atomic_store(flag, 0);
    syscall(SYS_futex, flag, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Write n bytes at our ring's tail and publish them, as a writer would
 * publish a frame. */
static void publish(uint8_t *map, int side, uint32_t ring_bytes,
                    const uint8_t *bytes, uint32_t n)
{
    _Atomic uint32_t *tail = word(map, producer(side));
    uint32_t t = atomic_load(tail);
    uint8_t *data = map + HCW_LINK_HEADER_BYTES + (size_t)side * ring_bytes;
    for (uint32_t i = 0; i < n; i++)
        data[(t + i) & (ring_bytes - 1)] = bytes[i];
    atomic_store(tail, t + n);
}

/* Publish a frame's length word alone (nothing after it). */
static void length_word(uint8_t *map, int side, uint32_t ring_bytes,
                        uint32_t len)
{
    uint8_t le[4] = {(uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16),
                     (uint8_t)(len >> 24)};
    publish(map, side, ring_bytes, le, 4);
}

/* A frame sent as a writer does, through the lane's ring. */
static int send_frame(hcw_lane *l, hcw_frame *f)
{
    int rc = hcw_link_try_send(hcw_lane_link(l), f);
    hcw_frame_free(f);
    return rc == 1 ? 0 : -3;
}

static int forged_lresp(hcw_lane *l, uint64_t id)
{
    hcw_frame *f = hcw_frame_new();
    if (f == NULL)
        return -3;
    hw_response r = {0};
    r.body.ptr = (uint8_t *)"forged";
    r.body.len = 6;
    hcw_frame_lresp(f, id, &r, NULL);
    return send_frame(l, f);
}

/* The lane to the process named by peer (an address), or NULL. */
static hcw_lane *lane_of(const char *peer, int *side, uint64_t *last_in,
                         bool *peer_host)
{
    hw_address a;
    if (peer == NULL || hw_address_parse(peer, &a) != 0)
        return NULL;
    hcw_lane *l = hcw_lanes_of_peer(&a, side, last_in, peer_host);
    hw_address_fini(&a);
    return l;
}

/* A note (a request without a response) whose metadata, or blob's mime,
 * is Latin-1, not UTF-8: well-formed otherwise. */
static int latin1_note(hcw_lane *l, bool in_mime)
{
    hcw_frame *f = hcw_frame_new();
    if (f == NULL)
        return -3;
    hw_request r = {0};
    r.body.ptr = (uint8_t *)"note latin-1";
    r.body.len = 12;
    r.metadata = in_mime ? NULL : "caf\xe9";
    hw_blob b = {.mime = "caf\xe9", .bytes = {(uint8_t *)"x", 1}};
    hcw_frame_lreq(f, 1ull << 63 | 0x5c5c5c5c5cull, &r, in_mime ? &b : NULL);
    return send_frame(l, f);
}

__attribute__((visibility("default"))) int
hcw_test_lane_scribble(const char *peer, const char *what)
{
    int side;
    uint64_t last_in;
    bool peer_host;
    hcw_lane *l = what ? lane_of(peer, &side, &last_in, &peer_host) : NULL;
    if (l == NULL)
        return -1;
    size_t len;
    uint8_t *map = hcw_lane_mapping(l, &len);
    uint32_t ring = (uint32_t)((len - HCW_LINK_HEADER_BYTES) / 2);
    int peer_side = 1 - side;
    if (strcmp(what, "tail") == 0) {
        /* our ring's tail more than R bytes past its reader's head */
        uint32_t head = atomic_load(word(map, producer(side) + 64));
        atomic_store(word(map, producer(side)), head + ring + 64);
    } else if (strcmp(what, "head") == 0) {
        /* our inbound ring's head more than R bytes behind its tail: its
         * writer, the peer, finds it when it next looks for room */
        uint32_t tail = atomic_load(word(map, producer(peer_side)));
        atomic_store(word(map, producer(peer_side) + 64), tail - ring - 64);
        return 0;
    } else if (strcmp(what, "len-cap") == 0) {
        /* one byte over the frame cap, R/4 with the length word */
        length_word(map, side, ring, ring / 4 - 4 + 1);
    } else if (strcmp(what, "len-ring") == 0) {
        /* one byte over what the ring can hold beside the length */
        length_word(map, side, ring, ring - 4 + 1);
    } else if (strcmp(what, "state") == 0) {
        atomic_store(word(map, STATE_OFF), 0x5cu);
    } else if (strcmp(what, "state-closed") == 0) {
        atomic_store(word(map, STATE_OFF), HCW_LANE_STATE_CLOSED);
    } else if (strcmp(what, "state-open") == 0) {
        /* what the word said before the node closed the lane: this worker
         * writes into it as one that looked just before the close */
        atomic_store(word(map, STATE_OFF), HCW_LANE_STATE_OPEN);
    } else if (strcmp(what, "counters") == 0) {
        /* both directions' last_seq and read_seq */
        for (size_t d = 0; d < 2; d++)
            for (size_t k = 0; k < 2; k++)
                atomic_store(word(map, DIR_OFF + 64 * d + 4 * k),
                             0x7ffffff0u + (uint32_t)(2 * d + k));
    } else if (strcmp(what, "op") == 0) {
        /* a well-formed frame of an op no lane carries */
        hcw_frame *f = hcw_frame_new();
        if (f == NULL)
            return -3;
        hcw_frame_begin(f, HCW_PRINT, 2);
        hcw_put_u64(f, 0);
        hcw_put_str(f, "not a lane's frame");
        return send_frame(l, f);
    } else if (strcmp(what, "junk") == 0) {
        /* a length and bytes that decode as nothing, then published */
        uint8_t frame[12] = {8, 0, 0, 0};
        memset(frame + 4, 0xc1, 8); /* a byte msgpack never uses */
        publish(map, side, ring, frame, (uint32_t)sizeof frame);
    } else if (strcmp(what, "latin1") == 0) {
        return latin1_note(l, false);
    } else if (strcmp(what, "latin1-mime") == 0) {
        return latin1_note(l, true);
    } else if (strcmp(what, "lresp") == 0) {
        /* an answer to an id nobody has */
        return forged_lresp(l, 1ull << 63 | 0x5c5c5c5c5cull);
    } else if (strncmp(what, "lresp=", 6) == 0) {
        /* an answer to the id given (hex): one the test learnt from the
         * peer's hcw_test_lane_ids, of a request to another lane */
        char *end;
        errno = 0;
        unsigned long long id = strtoull(what + 6, &end, 16);
        if (!isxdigit((unsigned char)what[6]) || errno == ERANGE ||
            *end != '\0' || !(id >> 63))
            return -2;
        return forged_lresp(l, (uint64_t)id);
    } else {
        return -2;
    }
    wake_reader(map, side);
    return 0;
}

/* The lane ids this worker has seen of the lane to peer: *last_in, the
 * id of the last request the peer sent by it (0: none), and *pending, the
 * id of a request this worker sent the peer by lane still waiting for its
 * answer (0: none).  0, or -1 without a lane to peer.  For the tests, as
 * hcw_test_lane_scribble; writes nothing. */
__attribute__((visibility("default"))) int
hcw_test_lane_ids(const char *peer, uint64_t *last_in, uint64_t *pending)
{
    hw_address a;
    if (peer == NULL || hw_address_parse(peer, &a) != 0)
        return -1;
    int side;
    bool peer_host;
    hcw_lane *l = hcw_lanes_of_peer(&a, &side, last_in, &peer_host);
    if (l != NULL)
        *pending = hcw_ctx_pending_to(&a);
    hw_address_fini(&a);
    return l != NULL ? 0 : -1;
}

/* Whether this worker's lane to peer was opened with LANE_OPEN's peer_host
 * (the peer runs in a wasm host: docs/worker-protocol.md): 1 or 0, -1 no
 * lane to peer.  For the tests, as hcw_test_lane_scribble; writes
 * nothing. */
__attribute__((visibility("default"))) int
hcw_test_lane_peer_host(const char *peer)
{
    int side;
    uint64_t last_in;
    bool peer_host;
    hcw_lane *l = lane_of(peer, &side, &last_in, &peer_host);
    return l == NULL ? -1 : peer_host;
}

/* The room the node's replies ring has now, in bytes: what the worker has
 * not read of it subtracted from its size.  A guest that makes the node
 * fill it (messages it sends itself, delivered ahead while it handles
 * one) sees how full it is; the worker reads the ring only when the guest
 * makes a call with a reply or receives. */
__attribute__((visibility("default"))) uint32_t hcw_test_replies_room(void)
{
    return HCW_LINK_RING_BYTES -
           (hcw_link_rx_tail(hcw_w.link) - hcw_link_rx_pos(hcw_w.link));
}
