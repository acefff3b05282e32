/* The types of issue 15 (enums with data, aliases, JSON values, char,
 * 128-bit integers, maps with integer keys, long tuples, skipped fields)
 * and one wrapper per scalar, for the codec test against the real
 * serde_json (tests/unit/test_serde.c reads the lines tests/serdref prints:
 * each of its Rust types is the twin of the C type of the same name here). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct rect {
    double w;
    double h;
} rect;

/* Rust: enum Shape { Circle(f64), Rect { w: f64, h: f64 }, None } */
typedef enum shape_kind { SHAPE_CIRCLE, SHAPE_RECT, SHAPE_NONE } shape_kind;
typedef struct HP_VARIANT shape {
    shape_kind kind;
    union {
        double circle;
        rect rect;
    };
} shape;

/* Rust: enum Level { Low, High } */
typedef enum level { LEVEL_LOW, LEVEL_HIGH } level;

/* Rust: type NodeId = String; struct UserId(String); */
typedef char *node_id HP_ALIAS;
typedef char *user_id HP_ALIAS;

typedef HP_LIST(shape) shape_list;
typedef HP_OPTION(shape) maybe_shape;
typedef HP_OPTION(char *) maybe_name;
typedef HP_TUPLE2(int32_t, char *) pair;

/* Rust: enum Event { Shapes(Vec<Shape>), Maybe(Option<String>),
 *                    Node(NodeId), Pair(i32, String), Quit } */
typedef enum event_kind {
    EVENT_SHAPES,
    EVENT_MAYBE,
    EVENT_NODE,
    EVENT_PAIR,
    EVENT_QUIT
} event_kind;
typedef struct HP_VARIANT event {
    event_kind kind;
    union {
        shape_list shapes;
        maybe_name maybe;
        node_id node;
        pair pair;
    };
} event;

typedef HP_MAP_KV(uint64_t, char *) names_by_id; /* BTreeMap<u64, String> */
typedef HP_MAP_KV(int32_t, shape) shapes_by_i32; /* BTreeMap<i32, Shape> */
typedef HP_MAP(int32_t) counts;                  /* BTreeMap<String, i32> */
typedef HP_MAP_KV(node_id, uint8_t) by_node;     /* BTreeMap<NodeId, u8> */

typedef HP_TUPLE16(uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t,
                   uint64_t, int64_t, float, double, bool, char *, hp_char,
                   level, shape, node_id) sixteen;

typedef HP_LIST(event) event_list;

typedef struct kitchen {
    shape s;
    shape_list shapes;
    maybe_shape maybe;
    level lv;
    node_id node;
    user_id user;
    hp_json any;
    hp_char c;
    hp_u128 big;
    hp_i128 small;
    names_by_id names;
    shapes_by_i32 by_i32;
    counts counts;
    by_node nodes;
    sixteen t16;
    event_list events;
    HP_SKIP void *cache; /* Rust: #[serde(skip)] cache: u64 */
} kitchen;

/* One scalar each: Rust struct W<T> { v: T } */
typedef struct w_i64 {
    int64_t v;
} w_i64;
typedef struct w_u64 {
    uint64_t v;
} w_u64;
typedef struct w_i8 {
    int8_t v;
} w_i8;
typedef struct w_u8 {
    uint8_t v;
} w_u8;
typedef struct w_f64 {
    double v;
} w_f64;
typedef struct w_f32 {
    float v;
} w_f32;
typedef struct w_string {
    char *v;
} w_string;
typedef struct w_char {
    hp_char v;
} w_char;
typedef struct w_u128 {
    hp_u128 v;
} w_u128;
typedef struct w_i128 {
    hp_i128 v;
} w_i128;
typedef struct w_value {
    hp_json v;
} w_value;

typedef struct all_types {
    kitchen k;
    shape s;
    event e;
    level lv;
    names_by_id names;
    shapes_by_i32 by_i32;
    counts counts;
    by_node nodes;
    sixteen t16;
    w_i64 a;
    w_u64 b;
    w_i8 c;
    w_u8 d;
    w_f64 e64;
    w_f32 e32;
    w_string str;
    w_char ch;
    w_u128 u128;
    w_i128 i128;
    w_value val;
} all_types;

HYPERPROCESS(all_types, .name = "serde twin", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "serde-twin");

HP_LOCAL
static shape biggest(all_types *st, const shape_list *shapes)
{
    (void)st;
    shape best = {.kind = SHAPE_NONE};
    double area = -1;
    for (size_t i = 0; i < shapes->len; i++) {
        const shape *s = &shapes->ptr[i];
        double x = s->kind == SHAPE_CIRCLE ? 3.14159 * s->circle * s->circle
                   : s->kind == SHAPE_RECT ? s->rect.w * s->rect.h
                                           : 0;
        if (x > area) {
            area = x;
            best = *s;
        }
    }
    return best;
}

HP_LOCAL
static kitchen echo_kitchen(all_types *st, const kitchen *k)
{
    (void)st;
    return *k;
}

HP_HTTP
static event_list events_of(all_types *st, level lv, node_id node, hp_char c,
                            hp_json extra)
{
    (void)lv;
    (void)c;
    (void)extra;
    event_list out = {0};
    out.ptr = hp_alloc(sizeof *out.ptr);
    out.ptr[0] = (event){.kind = EVENT_NODE, .node = node};
    out.len = 1;
    (void)st;
    return out;
}
