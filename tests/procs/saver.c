/* saver: a hyperprocess saving after every message (test_state_slots.py).
 * Isolated, its saves go into its state slot (src/worker/slot.h) unless a
 * save is bigger than a slot holds, which goes by message; `crash` ends
 * its worker with SIGSEGV, and the node restarts it. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct saver_state {
    uint64_t count;
    char *pad; /* "x" times `Pad`'s argument: a state of any size */
} saver_state;

HYPERPROCESS(saver_state, .name = "saver", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_EVERY_MESSAGE, .wit_world = "tslot-v0");

HP_LOCAL
static uint64_t add(saver_state *s, uint64_t by)
{
    s->count += by;
    return s->count;
}

HP_LOCAL
static uint64_t count(const saver_state *s)
{
    return s->count;
}

HP_LOCAL
static uint64_t pad(saver_state *s, uint64_t bytes)
{
    char *p = malloc(bytes + 1);
    if (p == NULL)
        return 0;
    memset(p, 'x', bytes);
    p[bytes] = '\0';
    free(s->pad);
    s->pad = p;
    return bytes;
}

HP_LOCAL
static uint64_t pad_len(const saver_state *s)
{
    return s->pad ? strlen(s->pad) : 0;
}

HP_LOCAL
static uint64_t crash(saver_state *s)
{
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
    return s->count;
}
