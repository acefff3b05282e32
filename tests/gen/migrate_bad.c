/* State version rules, each broken once (line numbers are asserted). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct st {
    uint64_t n;
} st;

static int not_a_migration(int x);

HYPERPROCESS(st, .name = "m", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "m-v0",
             .state_version = 3,
             .migrate = HP_MIGRATE(not_a_migration));

static int not_a_migration(int x)
{
    return x;
}

HP_LOCAL
static uint64_t get(const st *s)
{
    return s->n;
}
