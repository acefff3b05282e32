/* receiver: the process the async requester calls (the Example Application
 * of the Rust framework's guide).  Its handlers are reachable from this node
 * and from others; callers use the generated stubs of
 * receiver_caller_utils.h. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct receiver_state {
    uint64_t count;
    char *last_note;
} receiver_state;

HYPERPROCESS(receiver_state, .name = "Receiver", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_EVERY_MESSAGE,
             .wit_world = "async-app-template-dot-os-v0");

/* Add `by` and remember the caller's note; returns the new count. */
HP_LOCAL HP_REMOTE static uint64_t
increment_counter(receiver_state *s, uint64_t by, const char *note)
{
    s->count += by;
    /* the state owns its memory: replace the old note with a heap copy */
    free(s->last_note);
    s->last_note = strdup(note);
    hp_log_info("incremented by %llu (%s)", (unsigned long long)by, note);
    return s->count;
}

/* The count. */
HP_LOCAL HP_REMOTE static uint64_t get_count(const receiver_state *s)
{
    return s->count;
}
