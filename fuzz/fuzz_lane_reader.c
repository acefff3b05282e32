/* libFuzzer: a lane's reader (src/worker/link.c, hcw_link_lane), which
 * reads a ring the other worker writes and does not trust.  The input is
 * what that writer controls: its ring's bytes and both positions.
 *
 *   [u32 head][u32 tail][ring bytes...]
 *
 * head is where the reader starts, tail what the writer published; the
 * bytes fill the ring from head onwards (wrapping).  The reader takes
 * frames until it has none or refuses one; each step, the wait's look
 * (hcw_link_wait_any, a deadline already passed) must agree with it: data
 * when a frame or a refusal is there, none when nothing is taken.  A frame
 * is taken only whole, at most a quarter of the ring, and the reader never
 * passes the writer's tail. */
#include "worker/link.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* small rings: short inputs wrap */
#define RING 4096u
#define MAP (HCW_LINK_HEADER_BYTES + 2 * RING)
/* the layout's words (lane.h): ring 0's tail and head; its bytes */
#define TAIL0 64
#define HEAD0 128
#define DATA0 HCW_LINK_HEADER_BYTES

static uint8_t *map;

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "lane reader: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    if (map == NULL) {
        map = mmap(NULL, MAP, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        check(map != MAP_FAILED, "no memory");
    }
    memset(map, 0, MAP);
    uint32_t head = le32(data), tail = le32(data + 4);
    data += 8;
    size -= 8;
    if (size > RING)
        size = RING;
    for (size_t i = 0; i < size; i++)
        map[DATA0 + ((head + i) & (RING - 1))] = data[i];
    atomic_store((_Atomic uint32_t *)(void *)(map + HEAD0), head);
    atomic_store((_Atomic uint32_t *)(void *)(map + TAIL0), tail);
    /* side 1 reads ring 0 */
    hcw_link *l = hcw_link_lane(map, RING, 1);
    check(l != NULL, "no lane");
    hcw_in in;
    hcw_in_init(&in);
    char err[200];
    for (int frames = 0; frames < 2 * (int)RING; frames++) {
        bool ready;
        int look = hcw_link_wait_any(&l, 1, 0, &ready);
        uint32_t before =
            atomic_load((_Atomic uint32_t *)(void *)(map + HEAD0));
        err[0] = '\0';
        int rc = hcw_link_try_recv(l, &in, err, sizeof err);
        uint32_t after = atomic_load((_Atomic uint32_t *)(void *)(map + HEAD0));
        check(look == (rc != 0) && ready == (rc != 0),
              "the wait's look and the read disagree");
        if (rc == 0) {
            check(after == before, "moved without a frame");
            break;
        }
        if (rc < 0) {
            check(err[0] != '\0', "refused without a sentence");
            /* a frame that did not decode was taken; a refused position
             * or length was not */
            check(after == before || after - before <= RING / 4,
                  "moved too far");
            if (after == before)
                break;
            continue;
        }
        check(after - before >= 4 && after - before <= RING / 4,
              "a frame over a quarter of the ring");
        check(after - head <= tail - head, "read past the tail");
    }
    hcw_in_fini(&in);
    hcw_link_free(l);
    return 0;
}
