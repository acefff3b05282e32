/* A hyperprocess built outside the hyperc tree with find_package(hyperc). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct tally_state {
    uint64_t total;
} tally_state;

HYPERPROCESS(tally_state, .name = "tally", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_EVERY_MESSAGE, .wit_world = "outside-v0");

HP_LOCAL
static uint64_t add(tally_state *s, uint64_t n)
{
    return s->total += n;
}
