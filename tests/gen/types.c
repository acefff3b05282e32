/* Every supported kind of type once, and the unsupported ones. */
#include <hyperc/hyperprocess.h>

#include <stddef.h>
#include <stdint.h>

typedef enum color { COLOR_RED = 1, COLOR_DARK_BLUE = 2 } color;
typedef enum mood { Happy, Sad } mood;

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
    mood m;
    point p;
    point_list points;
    maybe_name nick;
    score_map scores;
    pair two;
} everything;

typedef struct node_t {
    struct node_t *next;
} node_t;

typedef struct bad_fields {
    long l;
    char c;
    int arr[4];
    unsigned bits : 3;
} bad_fields;

typedef enum dup { DUP_A = 1, DUP_B = 1 } dup;

HYPERPROCESS(everything, .name = "types", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "types-v0");

HP_LOCAL
static count_result take(everything *s, const point *p, point_list pts,
                         color c)
{
    (void)s; (void)p; (void)pts; (void)c;
    count_result r = {0};
    return r;
}

HP_LOCAL
static unit_result nothing(everything *s, size_t n, bad_fields b, dup d)
{
    (void)s; (void)n; (void)b; (void)d;
    unit_result r = {0};
    return r;
}

HP_LOCAL
static int32_t linked(everything *s, node_t n, void *p)
{
    (void)s; (void)n; (void)p;
    return 0;
}
