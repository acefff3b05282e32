/* Every supported type, for the generated codecs' round-trip test
 * (tests/unit/test_codecs.c includes this file and its generated codecs). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef enum color { COLOR_RED = 1, COLOR_DARK_BLUE = 2 } color;

typedef struct point {
    int32_t x;
    double y;
} point;

typedef HP_LIST(point) point_list;
typedef HP_OPTION(char *) maybe_name;
typedef HP_RESULT(uint64_t, char *) count_result;
typedef HP_MAP(int16_t) score_map;
typedef HP_TUPLE2(bool, float) pair;
typedef HP_RESULT(hp_unit, char *) unit_result;

typedef struct everything {
    bool flag;
    int8_t a;
    uint16_t b;
    int64_t c;
    uint64_t d;
    float e;
    double f;
    char *name;
    hw_bytes raw;
    hw_address who;
    color col;
    point p;
    point_list points;
    maybe_name nick;
    score_map scores;
    pair two;
    count_result res;
    unit_result done;
} everything;

HYPERPROCESS(everything, .name = "codec test", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "codec-test");

HP_LOCAL
static uint64_t size(everything *s) { return s->d; }

HP_LOCAL HP_REMOTE
static uint64_t add(everything *s, uint64_t n) { s->d += n; return s->d; }

HP_LOCAL
static point_list echo_points(everything *s, const point_list *pts, color c)
{
    (void)s;
    (void)c;
    return *pts;
}

HP_HTTP
static char *greet(everything *s, const char *name)
{
    (void)s;
    return name[0] ? (char *)name : "\xff"; /* not UTF-8: cannot be written */
}
