/* Internal to libhyperc, not installed: the arena's chunk and its bump
 * step inline, for the loops that allocate many small blocks (the JSON
 * reader's plain path).  arena.c owns the rest (include/hyperc/arena.h). */
#ifndef HYPERC_GUEST_ARENA_INT_H
#define HYPERC_GUEST_ARENA_INT_H

#include "hyperc/arena.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

struct hp_arena_chunk {
    hp_arena_chunk *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

/* n bytes aligned for any type, not zeroed, from a new chunk; NULL when
 * out of memory or n overflows (arena.c). */
void *hpr_arena_take_slow(hp_arena *a, size_t n);

/* n bytes aligned for any type, not zeroed (the caller writes them all);
 * NULL when out of memory.  The newest chunk's room is used inline. */
static inline void *hpr_arena_take(hp_arena *a, size_t n)
{
    const size_t al = alignof(max_align_t);
    size_t need = (n + al - 1) & ~(al - 1);
    hp_arena_chunk *c = a->head;
    if (need < n || c == NULL || c->size - c->used < need)
        return hpr_arena_take_slow(a, n);
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
}

/* hp_arena_strndup inline: n bytes of s and a NUL. */
static inline char *hpr_arena_strndup(hp_arena *a, const char *s, size_t n)
{
    char *p = n + 1 != 0 ? hpr_arena_take(a, n + 1) : NULL;
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

#endif
