/* Built with compile definitions that carry parentheses, a comma, quotes
 * and a space (tests/procs/CMakeLists.txt): hyperc_add_process hands them to
 * `hyperc gen` as the compiler gets them, or this file does not build.
 * tests/blackbox/test_defines.py boots it. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

#if !defined(DEFINES_SAVE) || !defined(DEFINES_GREETING)
#error "DEFINES_SAVE and DEFINES_GREETING come from the build"
#endif

typedef struct defines_state {
    uint64_t n;
} defines_state;

HYPERPROCESS(defines_state, .name = "defines", .endpoints = HP_NO_ENDPOINTS,
             .save_config = DEFINES_SAVE, .wit_world = "tdefines-v0");

/* What the build defined, and a count saved every third message. */
HP_LOCAL static char *greeting(defines_state *s)
{
    s->n++;
    return hp_sprintf("%s %llu", DEFINES_GREETING, (unsigned long long)s->n);
}
