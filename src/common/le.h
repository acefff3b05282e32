/* Internal to hyperc: little-endian integers in byte arrays, for the file
 * formats the node and the worker share (the state log, state slots),
 * whatever the machine's order.  Prefix hcc_ as common.h's. */
#ifndef HYPERC_LE_H
#define HYPERC_LE_H

#include <stdint.h>

static inline void hcc_le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void hcc_le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t hcc_le_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t hcc_le_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
