/* hyperc arena: a chunked bump allocator.  Each message a handler serves
 * gets one; decoded arguments, results and whatever the handler allocates
 * with these functions are freed together when the reply has been sent.
 * Part of libhyperc (guest side).  Not thread-safe (a process is
 * single-threaded). */
#ifndef HYPERC_ARENA_H
#define HYPERC_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct hp_arena_chunk hp_arena_chunk;

typedef struct hp_arena {
    hp_arena_chunk *head; /* newest chunk first */
    size_t total;         /* bytes handed out since init/reset */
} hp_arena;

void hp_arena_init(hp_arena *a);
/* n bytes aligned for any type (max_align_t), zeroed; NULL when out of
 * memory.  Valid until hp_arena_reset/hp_arena_fini. */
void *hp_arena_alloc(hp_arena *a, size_t n);
/* Copies into the arena; NULL when out of memory. */
char *hp_arena_strndup(hp_arena *a, const char *s, size_t n);
char *hp_arena_strdup(hp_arena *a, const char *s);
char *hp_arena_sprintf(hp_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *hp_arena_vsprintf(hp_arena *a, const char *fmt, va_list ap);
/* A point in an arena's life (hp_arena_save), to go back to. */
typedef struct hp_arena_mark {
    hp_arena_chunk *chunk; /* the newest chunk then (NULL: none) */
    size_t used;           /* its bytes in use then */
    size_t total;
} hp_arena_mark;

/* Where the arena is now. */
hp_arena_mark hp_arena_save(const hp_arena *a);
/* Free everything allocated since m was saved: pointers into it become
 * invalid; what was allocated before stays.  For a loop in a long-lived
 * task (save before an iteration, restore after it) so that its arena
 * does not grow with every call.  Back to an empty arena, its first chunk
 * stays for reuse when it is of the smallest size (4 KiB), as with
 * hp_arena_reset.  m must come from this arena, after its last reset, and
 * not be older than a mark already restored past. */
void hp_arena_restore(hp_arena *a, hp_arena_mark m);
/* Frees everything but the first chunk, for reuse by the next message. */
void hp_arena_reset(hp_arena *a);
/* Frees everything. */
void hp_arena_fini(hp_arena *a);

#endif
