/* receiver: the process the async requester calls (the Example Application
 * of the Rust framework's guide).  Its handlers are reachable from this node
 * and from others; callers use the generated stubs of
 * receiver_caller_utils.h. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A job, an enum with data (Rust: enum Job { Add(u64), Note(String),
 * Reset }): on the wire {"Add":3}, {"Note":"hi"}, "Reset". */
typedef enum job_kind { JOB_ADD, JOB_NOTE, JOB_RESET } job_kind;
typedef struct HP_VARIANT job {
    job_kind kind;
    union {
        uint64_t add;
        char *note;
    };
} job;
typedef HP_LIST(job) job_list;
typedef HP_OPTION(job) maybe_job;

typedef struct receiver_state {
    uint64_t count;
    char *last_note;
    job_list history; /* every job run, oldest first; owns their notes */
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
    /* a call from another node: hp_source() is the caller's address, its
     * node included */
    const hw_address *from = hp_source();
    if (strcmp(from->node, hp_our()->node) != 0) {
        char who[256];
        hw_address_format(from, who, sizeof who);
        hp_log_info("(that call came from %s)", who);
    }
    return s->count;
}

/* The count. */
HP_LOCAL HP_REMOTE static uint64_t get_count(const receiver_state *s)
{
    return s->count;
}

/* Run a job; returns the job run before it (none for the first). */
HP_LOCAL HP_REMOTE static maybe_job run_job(receiver_state *s, job j)
{
    maybe_job before = {.some = s->history.len > 0};
    if (before.some)
        before.value = s->history.ptr[s->history.len - 1];
    if (j.kind == JOB_ADD) {
        s->count += j.add;
    } else if (j.kind == JOB_NOTE) {
        free(s->last_note);
        s->last_note = strdup(j.note);
        /* the state keeps its own copy: j lives in the message arena */
        j.note = strdup(j.note);
    } else {
        s->count = 0;
    }
    job *grown = realloc(s->history.ptr, (s->history.len + 1) * sizeof *grown);
    if (grown == NULL) {
        if (j.kind == JOB_NOTE)
            free(j.note);
        return before;
    }
    s->history.ptr = grown;
    s->history.ptr[s->history.len++] = j;
    return before;
}

/* Every job run so far. */
HP_LOCAL HP_REMOTE static job_list history(const receiver_state *s)
{
    return s->history;
}
