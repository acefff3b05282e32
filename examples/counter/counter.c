/* counter: the Getting Started app of the Rust framework, in hyperc.
 *
 * `hyperc gen` turns this file into the whole process: the Request codecs,
 * the dispatcher, and the process's life.  Try it:
 *
 *   hyperc inject counter:counter:hyperc.os '{"Increment": 5}'   -> 5
 *   hyperc inject counter:counter:hyperc.os '"GetCount"'         -> 5
 */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdio.h>

typedef struct counter_state {
    uint64_t count;
} counter_state;

HYPERPROCESS(counter_state, .name = "Counter",
             .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api",
                                                       .authenticated = false)),
             .save_config = HP_SAVE_EVERY_MESSAGE,
             .wit_world = "counter-dot-os-v0");

/* Runs once the stored state (if any) is loaded. */
HP_INIT
static void initialize(counter_state *state)
{
    char line[64];
    snprintf(line, sizeof line, "counter starting at %llu",
             (unsigned long long)state->count);
    hw_print_to_terminal(0, line);
}

/* Add `by` to the count; callable from this node and over HTTP. */
HP_LOCAL HP_HTTP static uint64_t increment(counter_state *state, uint64_t by)
{
    state->count += by;
    return state->count;
}

/* The count, for this node and for other nodes. */
HP_LOCAL HP_REMOTE HP_HTTP static uint64_t get_count(const counter_state *state)
{
    return state->count;
}
