/* State slots: see slot.h for the layout and the rules. */
#include "slot.h"
#include "../common/le.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOT_MAGIC 0x544f4c53u /* "SLOT" */
#define SLOT_LAYOUT 1u
#define OFF_SEQ 64
#define OFF_DRAINED 128
#define OFF_STARTS 192
#define TRIES 4

/* The header's shared words, naturally aligned in the mapping.  (Stored in
 * the machine's order: both sides are on the same machine, and a file
 * left behind is read back by the node that wrote it, or one on the same
 * machine.) */
static uint64_t *word(const uint8_t *map, size_t off)
{
    return (uint64_t *)(uintptr_t)(map + off);
}

static uint8_t *half(const uint8_t *map, uint64_t seq)
{
    return (uint8_t *)(uintptr_t)(map + HCW_SLOT_HEAD_BYTES +
                                  (seq & 1) * HCW_SLOT_HALF_BYTES);
}

static uint32_t value_crc(const uint8_t head[12], const void *bytes, size_t len)
{
    uint32_t c = libdeflate_crc32(0, head, 12);
    return len ? libdeflate_crc32(c, bytes, len) : c;
}

int hcw_slot_format(int fd)
{
    if (ftruncate(fd, (off_t)HCW_SLOT_FILE_BYTES) != 0)
        return -1;
    /* the first HCW_SLOT_ALLOCATED bytes of each half taken on the disk now
     * (where the file system can): a save that fits there never meets a
     * full disk, which in a shared mapping is a SIGBUS */
    for (int i = 0; i < 2; i++) {
        off_t at = (off_t)(HCW_SLOT_HEAD_BYTES + i * HCW_SLOT_HALF_BYTES);
        if (fallocate(fd, 0, at, HCW_SLOT_ALLOCATED) != 0 &&
            errno != EOPNOTSUPP)
            return -1;
    }
    uint8_t h[8];
    hcc_le_put32(h, SLOT_MAGIC);
    hcc_le_put32(h + 4, SLOT_LAYOUT);
    return pwrite(fd, h, sizeof h, 0) == (ssize_t)sizeof h ? 0 : -1;
}

uint8_t *hcw_slot_map(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    if (!S_ISREG(st.st_mode) || st.st_size != (off_t)HCW_SLOT_FILE_BYTES) {
        errno = EINVAL;
        return NULL;
    }
    void *m = mmap(NULL, HCW_SLOT_FILE_BYTES, PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return NULL;
    uint8_t *map = m;
    if (hcc_le_get32(map) != SLOT_MAGIC ||
        hcc_le_get32(map + 4) != SLOT_LAYOUT) {
        munmap(m, HCW_SLOT_FILE_BYTES);
        errno = EINVAL;
        return NULL;
    }
    return map;
}

void hcw_slot_unmap(uint8_t *map)
{
    if (map != NULL)
        munmap(map, HCW_SLOT_FILE_BYTES);
}

bool hcw_slot_put(uint8_t *map, uint64_t seq, const void *bytes, size_t len)
{
    if (len > HCW_SLOT_VALUE_MAX)
        return false;
    uint8_t *h = half(map, seq);
    uint8_t head[12];
    hcc_le_put64(head, seq);
    hcc_le_put32(head + 8, (uint32_t)len);
    if (len)
        memcpy(h + HCW_SLOT_HALF_HEAD, bytes, len);
    memcpy(h, head, sizeof head);
    hcc_le_put32(h + 12, value_crc(head, bytes, len));
    __atomic_store_n(word(map, OFF_SEQ), seq, __ATOMIC_RELEASE);
    return true;
}

uint64_t hcw_slot_seq(const uint8_t *map)
{
    return __atomic_load_n(word(map, OFF_SEQ), __ATOMIC_ACQUIRE);
}

int hcw_slot_take(const uint8_t *map, uint64_t after, uint8_t **out,
                  size_t *len, uint64_t *seq, char *why, size_t whylen)
{
    *out = NULL;
    *len = 0;
    *seq = 0;
    for (int i = 0; i < TRIES; i++) {
        uint64_t s = hcw_slot_seq(map);
        if (s <= after)
            return 0;
        const uint8_t *h = half(map, s);
        uint8_t head[12];
        memcpy(head, h, sizeof head);
        uint32_t crc = hcc_le_get32(h + 12);
        uint64_t hs = hcc_le_get64(head);
        uint32_t n = hcc_le_get32(head + 8);
        uint8_t *buf = NULL;
        bool whole = hs == s && n <= HCW_SLOT_VALUE_MAX;
        if (whole && n) {
            buf = malloc(n);
            if (buf == NULL) {
                snprintf(why, whylen, "out of memory");
                return -1;
            }
            memcpy(buf, h + HCW_SLOT_HALF_HEAD, n);
        }
        whole = whole && value_crc(head, buf, n) == crc;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        uint64_t s2 = hcw_slot_seq(map);
        if (whole && s2 == s) { /* not published past: the writer has not
                                   started over this half meanwhile */
            *out = buf;
            *len = n;
            *seq = s;
            return 1;
        }
        free(buf);
        if (s2 == s) { /* not being written, and still not whole */
            snprintf(why, whylen,
                     "its value %llu is not whole (a bad length, sequence "
                     "number or CRC)",
                     (unsigned long long)s);
            return -1;
        }
    }
    snprintf(why, whylen,
             "it changed under every one of %d reads (written meanwhile)",
             TRIES);
    return -1;
}

uint64_t hcw_slot_drained(const uint8_t *map)
{
    return __atomic_load_n(word(map, OFF_DRAINED), __ATOMIC_ACQUIRE);
}

void hcw_slot_set_drained(uint8_t *map, uint64_t seq)
{
    __atomic_store_n(word(map, OFF_DRAINED), seq, __ATOMIC_RELEASE);
}

void hcw_slot_started(uint8_t *map)
{
    __atomic_fetch_add(word(map, OFF_STARTS), 1, __ATOMIC_RELEASE);
}

uint64_t hcw_slot_starts(const uint8_t *map)
{
    return __atomic_load_n(word(map, OFF_STARTS), __ATOMIC_ACQUIRE);
}
