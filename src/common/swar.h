/* Internal to hyperc: tests on eight bytes at once (one 64-bit word), for
 * the loops that walk long texts and byte arrays a byte at a time (UTF-8
 * checks, JSON strings, msgpack arrays of small integers).  Each test says
 * whether any of the eight bytes is of a kind, exactly (no false answer
 * either way); which byte it is, the caller finds by its byte loop.  The
 * byte order of the load does not matter to any of them. */
#ifndef HYPERC_SWAR_H
#define HYPERC_SWAR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define HCC_SWAR_ONES 0x0101010101010101ULL
#define HCC_SWAR_HIGHS 0x8080808080808080ULL

/* The eight bytes at p (any alignment). */
static inline uint64_t hcc_swar_load(const void *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
    return x;
}

/* Whether a byte of x is 0x80 or above. */
static inline bool hcc_swar_any_high(uint64_t x)
{
    return (x & HCC_SWAR_HIGHS) != 0;
}

/* Whether a byte of x is below n (1 <= n <= 128). */
static inline bool hcc_swar_any_below(uint64_t x, unsigned n)
{
    return ((x - HCC_SWAR_ONES * n) & ~x & HCC_SWAR_HIGHS) != 0;
}

/* Whether a byte of x is b. */
static inline bool hcc_swar_any_eq(uint64_t x, uint8_t b)
{
    uint64_t v = x ^ (HCC_SWAR_ONES * b);
    return ((v - HCC_SWAR_ONES) & ~v & HCC_SWAR_HIGHS) != 0;
}

#endif
