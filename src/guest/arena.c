/* Chunked bump allocator (include/hyperc/arena.h). */
#include "arena_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MIN 4096

void hp_arena_init(hp_arena *a)
{
    a->head = NULL;
    a->total = 0;
}

void *hpr_arena_take_slow(hp_arena *a, size_t n)
{
    const size_t al = alignof(max_align_t);
    size_t need = (n + al - 1) & ~(al - 1);
    if (need < n)
        return NULL; /* overflow */
    hp_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < need) {
        size_t size = need > CHUNK_MIN ? need : CHUNK_MIN;
        if (c && c->size * 2 > size && c->size < (1u << 20))
            size = c->size * 2;
        hp_arena_chunk *nc = malloc(sizeof *nc + size);
        if (nc == NULL)
            return NULL;
        nc->size = size;
        nc->used = 0;
        nc->next = a->head;
        a->head = nc;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    return p;
}

void *hp_arena_alloc(hp_arena *a, size_t n)
{
    void *p = hpr_arena_take(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

hp_arena_mark hp_arena_save(const hp_arena *a)
{
    hp_arena_mark m = {a->head, a->head ? a->head->used : 0, a->total};
    return m;
}

void hp_arena_restore(hp_arena *a, hp_arena_mark m)
{
    while (a->head != NULL && a->head != m.chunk) {
        hp_arena_chunk *next = a->head->next;
        if (next == NULL && m.chunk == NULL && a->head->size == CHUNK_MIN) {
            /* back to empty: a first chunk of the smallest size stays for
             * the next allocation, as hp_arena_reset keeps it (a task
             * calling in a loop would allocate and free one a call) */
            a->head->used = 0;
            break;
        }
        free(a->head);
        a->head = next;
    }
    if (a->head != NULL && a->head == m.chunk)
        a->head->used = m.used;
    a->total = m.total;
}

char *hp_arena_strndup(hp_arena *a, const char *s, size_t n)
{
    return hpr_arena_strndup(a, s, n);
}

char *hp_arena_strdup(hp_arena *a, const char *s)
{
    return hp_arena_strndup(a, s, strlen(s));
}

char *hp_arena_vsprintf(hp_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *p = n >= 0 ? hpr_arena_take(a, (size_t)n + 1) : NULL;
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

char *hp_arena_sprintf(hp_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = hp_arena_vsprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void hp_arena_reset(hp_arena *a)
{
    hp_arena_chunk *c = a->head;
    if (c == NULL)
        return;
    /* keep the oldest (first) chunk */
    while (c->next) {
        hp_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
    a->total = 0;
}

void hp_arena_fini(hp_arena *a)
{
    hp_arena_chunk *c = a->head;
    while (c) {
        hp_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
