/* Internal to hyperc: the hash of uthash's tables in the node and the guest
 * runtime.  Include this header instead of <uthash.h>: it sets uthash's
 * HASH_FUNCTION first. */
#ifndef HYPERC_COMMON_HASH_H
#define HYPERC_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A multiply mix over 8-byte words of the n bytes at key: cheaper than
 * uthash's default (Jenkins) on the keys these tables hold, the 36-byte
 * context ids each call adds and its reply finds, and process ids.  Pure;
 * any thread. */
static inline unsigned hcc_hash(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    h = (h ^ w) * 0x94D049BB133111EBull;
    return (unsigned)(h ^ (h >> 32));
}

#define HASH_FUNCTION(keyptr, keylen, hashv)                                   \
    ((hashv) = hcc_hash((keyptr), (keylen)))
#include <uthash.h>

#endif
