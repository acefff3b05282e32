/* libFuzzer: the node's reading of a state slot (src/worker/slot.c,
 * hcw_slot_take), whose every byte the worker (untrusted code) can write.
 * The input is what it controls:
 *
 *   [u64 published sequence number][u64 the node's drained][half bytes...]
 *
 * The bytes go into the half the sequence number names (its head, then the
 * value).  Whatever they say, the reader returns a value only when it is
 * newer than drained, whole (its length within the slot, its sequence
 * number the header's) and the same bytes the half holds; else nothing or
 * a refusal with a reason, and it never reads past the half. */
#include "common/le.h"
#include "worker/slot.h"

#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *map;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_state_slot: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (map == NULL) {
        int fd = memfd_create("slot", MFD_CLOEXEC);
        check(fd >= 0 && hcw_slot_format(fd) == 0, "no slot");
        map = hcw_slot_map(fd);
        check(map != NULL, "not mapped");
        close(fd);
    }
    if (size < 16)
        return 0;
    uint64_t seq = hcc_le_get64(data), after = hcc_le_get64(data + 8);
    data += 16;
    size -= 16;
    if (size > HCW_SLOT_HALF_BYTES)
        size = HCW_SLOT_HALF_BYTES;
    uint8_t *half = map + HCW_SLOT_HEAD_BYTES + (seq & 1) * HCW_SLOT_HALF_BYTES;
    /* nothing of an earlier input's stays: each input reproduces alone */
    static size_t dirty[2];
    memset(half, 0, dirty[seq & 1]);
    memcpy(half, data, size);
    dirty[seq & 1] = size > 64 ? size : 64;
    __atomic_store_n((uint64_t *)(void *)(map + 64), seq, __ATOMIC_RELEASE);
    uint8_t *v;
    size_t len;
    uint64_t got;
    char why[160];
    why[0] = '\0';
    int r = hcw_slot_take(map, after, &v, &len, &got, why, sizeof why);
    check(r >= -1 && r <= 1, "a result out of range");
    if (r == 1) {
        check(seq > after && got == seq, "a value not newer, or another's");
        check(len <= HCW_SLOT_VALUE_MAX, "a value longer than a slot holds");
        check(len == 0 || memcmp(v, half + HCW_SLOT_HALF_HEAD, len) == 0,
              "a value that is not the half's");
        /* and it checks: the half's CRC-32 is that of its head and value */
        uint32_t c = libdeflate_crc32(0, half, 12);
        c = libdeflate_crc32(c, half + HCW_SLOT_HALF_HEAD, len);
        check(c == hcc_le_get32(half + 12) && hcc_le_get32(half + 8) == len,
              "a value whose CRC or length does not check");
    } else {
        check(v == NULL && len == 0, "a value with no result");
        check(r == 0 ? seq <= after : why[0] != '\0',
              "nothing while newer, or a refusal without a reason");
    }
    free(v);
    return 0;
}
