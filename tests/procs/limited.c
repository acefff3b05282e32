/* A process that allows two live tasks, and overflows a task's stack on
 * request. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <string.h>

typedef struct limited_state {
    uint64_t n;
} limited_state;

HYPERPROCESS(limited_state, .name = "limited", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "ttasks-v0",
             .max_tasks = 2, .task_stack_kib = 64);

HP_LOCAL
static uint64_t nap(limited_state *s, uint64_t ms)
{
    hp_sleep_ms(ms);
    return ++s->n;
}

static uint64_t deep(volatile uint8_t *prev, uint64_t depth)
{
    volatile uint8_t frame[1024];
    memset((void *)frame, (int)depth, sizeof frame);
    frame[0] = prev ? prev[0] : 0;
    return depth == 0 ? frame[1] : deep(frame, depth - 1) + frame[2];
}

HP_LOCAL
static uint64_t overflow(limited_state *s, uint64_t depth)
{
    (void)s;
    return deep(NULL, depth);
}
