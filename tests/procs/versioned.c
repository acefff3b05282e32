/* A hyperprocess at state version 2 with a migration from version 1
 * ({"n": N} -> count N), saving every second through timer:distro:sys;
 * `calls` is not persisted (Rust's #[serde(skip)]): zero at every start. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct versioned_state {
    uint64_t count;
    char *origin;
    HP_SKIP uint64_t calls; /* Increments since this instance started */
} versioned_state;

static bool upgrade(hp_arena *a, uint32_t from_version, const hp_jv *stored,
                    versioned_state *out, const char **why);

HYPERPROCESS(versioned_state, .name = "versioned", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_EVERY_N_SECONDS(1),
             .wit_world = "tstate-v0", .state_version = 2,
             .migrate = HP_MIGRATE(upgrade));

static bool upgrade(hp_arena *a, uint32_t from_version, const hp_jv *stored,
                    versioned_state *out, const char **why)
{
    if (from_version != 1 || stored == NULL) {
        *why = hp_arena_sprintf(a, "no migration from version %u",
                                (unsigned)from_version);
        return false;
    }
    uint64_t n;
    const hp_jv *jn = hp_jv_get(stored, "n");
    if (jn == NULL || hp_jd_uint(a, jn, UINT64_MAX, "u64", &n, why) != 0) {
        if (jn == NULL)
            *why = "version 1 state without n";
        return false;
    }
    out->count = n;
    out->origin =
        hp_arena_sprintf(a, "migrated from v1 (n=%llu)", (unsigned long long)n);
    return true;
}

HP_LOCAL
static uint64_t increment(versioned_state *s)
{
    s->calls++;
    return ++s->count;
}

HP_LOCAL
static uint64_t calls(const versioned_state *s)
{
    return s->calls;
}

HP_LOCAL
static char *origin(const versioned_state *s)
{
    return s->origin ? s->origin : "new";
}
