/* The store of the persistence benchmark (bench/state/run), built twice
 * from this file: process store-every (target store_every) with
 * .save_config = HP_SAVE_EVERY_MESSAGE and store-never (store_never) with
 * HP_SAVE_NEVER; bench/CMakeLists.txt sets STATESTORE_SAVE.  The handler is
 * the same in both: Record(v) updates a state of a few fields, a short
 * string and a short list, and answers the new count.  With EveryMessage the
 * runtime encodes the state as JSON after each request and stores it through
 * state:distro:sys (SQLite) before the answer is sent; with Never it does
 * not: the difference is the cost of a save. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef STATESTORE_SAVE
#define STATESTORE_SAVE HP_SAVE_NEVER
#endif

/* the last values recorded, oldest first */
#define STATESTORE_RECENT 16

typedef HP_LIST(uint64_t) u64_list;

typedef struct statestore_state {
    char *owner;
    uint64_t count;
    uint64_t total;
    uint64_t min, max;
    u64_list recent;
} statestore_state;

HYPERPROCESS(statestore_state, .name = "statestore",
             .endpoints = HP_NO_ENDPOINTS, .save_config = STATESTORE_SAVE,
             .wit_world = "statebench-v0");

HP_INIT
static void initialize(statestore_state *s)
{
    if (s->owner == NULL || s->owner[0] == '\0') {
        free(s->owner);
        s->owner = strdup("statebench:bench.os");
    }
    /* room for the whole window (a loaded list has just its length) */
    uint64_t *p =
        realloc(s->recent.ptr, STATESTORE_RECENT * sizeof *s->recent.ptr);
    if (p == NULL)
        abort();
    s->recent.ptr = p;
    if (s->recent.len > STATESTORE_RECENT)
        s->recent.len = STATESTORE_RECENT;
}

/* Record v: count, total, min, max and the window of recent values. */
HP_LOCAL
static uint64_t record(statestore_state *s, uint64_t v)
{
    if (s->count == 0 || v < s->min)
        s->min = v;
    if (v > s->max)
        s->max = v;
    s->count++;
    s->total += v;
    if (s->recent.len == STATESTORE_RECENT) {
        memmove(s->recent.ptr, s->recent.ptr + 1,
                (STATESTORE_RECENT - 1) * sizeof *s->recent.ptr);
        s->recent.len--;
    }
    s->recent.ptr[s->recent.len++] = v;
    return s->count;
}

/* The count so far (the benchmark checks it against the stored state). */
HP_LOCAL
static uint64_t count(const statestore_state *s)
{
    return s->count;
}
