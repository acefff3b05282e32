/* A state version without a migration (line numbers are asserted). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct st {
    uint64_t n;
} st;

HYPERPROCESS(st, .name = "v", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "v-v0",
             .state_version = 2);

HP_LOCAL
static uint64_t get(const st *s)
{
    return s->n;
}
