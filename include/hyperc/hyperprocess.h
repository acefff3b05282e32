/* hyperc: the declarations a hyperprocess source uses (the C twin of Rust's
 * #[hyperprocess]).  `hyperc gen` reads them with libclang; see
 * docs/gen-design.md.
 *
 * Markers are clang `annotate` attributes behind macros.  Other compilers
 * (gcc rejects unknown attributes under -Werror) see nothing, so the same
 * file builds with either. */
#ifndef HYPERC_HYPERPROCESS_H
#define HYPERC_HYPERPROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperc/abi.h"

#if defined(__clang__)
#define HP__MARK(s) __attribute__((annotate(s)))
#else
#define HP__MARK(s)
#endif

/* ------------------------------------------------------ handler markers */

/* Handlers are usually static: the generated dispatch, compiled in the same
 * translation unit, calls them.  `unused` keeps a plain compile of the
 * source quiet. */
#define HP__HANDLER(s) HP__MARK(s) __attribute__((unused))

#define HP_INIT HP__HANDLER("hyperc:init")
#define HP_HTTP HP__HANDLER("hyperc:http")
#define HP_HTTP_METHOD(m) HP_HTTP HP__MARK("hyperc:http.method=" m)
#define HP_HTTP_PATH(p) HP_HTTP HP__MARK("hyperc:http.path=" p)
#define HP_HTTP_ROUTE(m, p) HP_HTTP_METHOD(m) HP__MARK("hyperc:http.path=" p)
#define HP_LOCAL HP__HANDLER("hyperc:local")
#define HP_REMOTE HP__HANDLER("hyperc:remote")
#define HP_WS HP__HANDLER("hyperc:ws")
#define HP_WS_CLIENT HP__HANDLER("hyperc:ws_client")
/* The logical name of a handler (its variant and WIT name), when the C
 * name cannot be it. */
#define HP_NAME(n) HP__MARK("hyperc:name=" n)

/* The kind of a WebSocket message given to ws and ws_client handlers. */
typedef enum hp_ws_message_type {
    HP_WS_TEXT = 0,
    HP_WS_BINARY = 1,
    HP_WS_PING = 2,
    HP_WS_PONG = 3,
    HP_WS_CLOSE = 4,
    HP_WS_OPEN = 5, /* HP_WS handlers: a client connected (no payload) */
} hp_ws_message_type;

/* ------------------------------------------------------- generic types */

/* Each expansion is a distinct C type: name each instance once with a
 * typedef (typedef HP_LIST(item) item_list;).  Wire forms and memory rules:
 * docs/gen-design.md §2. */
#define HP_LIST(T)                                                             \
    struct HP__MARK("hyperc:list") {                                           \
        T *ptr;                                                                \
        size_t len;                                                            \
    }
#define HP_OPTION(T)                                                           \
    struct HP__MARK("hyperc:option") {                                         \
        bool some;                                                             \
        T value;                                                               \
    }
#define HP_RESULT(T, E)                                                        \
    struct HP__MARK("hyperc:result") {                                         \
        bool ok;                                                               \
        union {                                                                \
            T value;                                                           \
            E error;                                                           \
        };                                                                     \
    }
#define HP_MAP(V) HP_MAP_KV(char *, V)
/* A map whose keys are K: char * (or an HP_ALIAS of it) or an integer type
 * (int8_t..uint64_t); serde_json writes integer keys as strings ({"1":..}).
 * Written in the keys' order (bytes for strings, numbers for integers), as
 * a Rust BTreeMap is; a repeated key keeps its last value. */
#define HP_MAP_KV(K, V)                                                        \
    struct HP__MARK("hyperc:map") {                                            \
        struct {                                                               \
            K key;                                                             \
            V value;                                                           \
        } * ptr;                                                               \
        size_t len;                                                            \
    }
#define HP_TUPLE2(A, B)                                                        \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
    }
#define HP_TUPLE3(A, B, C)                                                     \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
    }
#define HP_TUPLE4(A, B, C, D)                                                  \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
    }
#define HP_TUPLE5(A, B, C, D, E)                                               \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
    }
#define HP_TUPLE6(A, B, C, D, E, F)                                            \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
    }
#define HP_TUPLE7(A, B, C, D, E, F, G)                                         \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
    }
#define HP_TUPLE8(A, B, C, D, E, F, G, H)                                      \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
    }
#define HP_TUPLE9(A, B, C, D, E, F, G, H, I)                                   \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
    }
#define HP_TUPLE10(A, B, C, D, E, F, G, H, I, J)                               \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
    }
#define HP_TUPLE11(A, B, C, D, E, F, G, H, I, J, K)                            \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
    }
#define HP_TUPLE12(A, B, C, D, E, F, G, H, I, J, K, L)                         \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
        L _11;                                                                 \
    }
#define HP_TUPLE13(A, B, C, D, E, F, G, H, I, J, K, L, M)                      \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
        L _11;                                                                 \
        M _12;                                                                 \
    }
#define HP_TUPLE14(A, B, C, D, E, F, G, H, I, J, K, L, M, N)                   \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
        L _11;                                                                 \
        M _12;                                                                 \
        N _13;                                                                 \
    }
#define HP_TUPLE15(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O)                \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
        L _11;                                                                 \
        M _12;                                                                 \
        N _13;                                                                 \
        O _14;                                                                 \
    }
#define HP_TUPLE16(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P)             \
    struct HP__MARK("hyperc:tuple") {                                          \
        A _0;                                                                  \
        B _1;                                                                  \
        C _2;                                                                  \
        D _3;                                                                  \
        E _4;                                                                  \
        F _5;                                                                  \
        G _6;                                                                  \
        H _7;                                                                  \
        I _8;                                                                  \
        J _9;                                                                  \
        K _10;                                                                 \
        L _11;                                                                 \
        M _12;                                                                 \
        N _13;                                                                 \
        O _14;                                                                 \
        P _15;                                                                 \
    }
/* An enum with data (Rust `enum Shape { Circle(f64), Rect(Rect), None }`):
 * a struct marked HP_VARIANT holding a tag enum, then a union of the cases'
 * data.  Each enumerator is a case (its wire name as for plain enums; the
 * prefix stripped is the tag enum's or the struct's name); the union member
 * named as the enumerator without its prefix, in lower case, is the case's
 * data, and a case without a member carries none:
 *     typedef enum shape_kind { SHAPE_CIRCLE, SHAPE_RECT, SHAPE_NONE }
 *         shape_kind;
 *     typedef struct HP_VARIANT shape {
 *         shape_kind kind;
 *         union { double circle; rect rect; };
 *     } shape;
 * JSON as serde's externally tagged enums: {"Circle":1.5}, "None"; WIT
 * `variant`.  A Rust case with named fields (Rect { w, h }) is a case whose
 * data is a struct: the same JSON. */
#define HP_VARIANT HP__MARK("hyperc:variant")
/* A named type kept by name in WIT (`type node-id = string;`), the twin of
 * Rust's `type NodeId = String;` and of a newtype `struct UserId(String)`;
 * on the wire it is its target:  typedef char *node_id HP_ALIAS; */
#define HP_ALIAS HP__MARK("hyperc:alias")
/* A struct field that is never written nor read (#[serde(skip)]): zero after
 * decoding and in copies of the state; any C type (a cache, a pointer). */
#define HP_SKIP HP__MARK("hyperc:skip")

/* The unit type, for HP_RESULT(hp_unit, E) and the like. */
typedef struct HP__MARK("hyperc:unit") hp_unit {
    uint8_t unused_;
} hp_unit;

/* ------------------------------------------------ HYPERPROCESS parameters */

/* HttpBindingConfig; fields left out take Rust's default() (authenticated
 * true, the rest false/none). */
typedef struct hp_http_config {
    int present_;
    bool authenticated;
    bool local_only;
    bool secure_subdomain;
    const char *static_content;
    const char *static_mime;
} hp_http_config;

/* WsBindingConfig; same defaulting. */
typedef struct hp_ws_config {
    int present_;
    bool authenticated;
    bool secure_subdomain;
    bool extension;
} hp_ws_config;

typedef enum hp_binding_kind {
    HP_BINDING_END = 0,
    HP_BINDING_HTTP = 1,
    HP_BINDING_WS = 2,
} hp_binding_kind;

typedef struct hp_binding {
    hp_binding_kind kind;
    const char *path;
    hp_http_config http;
    hp_ws_config ws;
} hp_binding;

typedef enum hp_save_kind {
    HP_SAVE_KIND_NEVER = 1,
    HP_SAVE_KIND_EVERY_MESSAGE = 2,
    HP_SAVE_KIND_EVERY_N_MESSAGE = 3,
    HP_SAVE_KIND_EVERY_N_SECONDS = 4,
    HP_SAVE_KIND_ON_DIFF = 5,
} hp_save_kind;

typedef struct hp_save_config {
    hp_save_kind kind;
    uint64_t n;
} hp_save_config;

typedef struct hp_process_decl {
    const char *name;
    const char *icon;
    const char *widget;
    const hp_http_config *ui;
    const char *ui_path;
    const hp_binding *endpoints;
    hp_save_config save_config;
    const char *wit_world;
    uint32_t state_version;
    void (*migrate)(void);
    bool manual_logging;
    uint32_t max_tasks;      /* live tasks at once (0 = 16384) */
    uint32_t task_stack_kib; /* each task's stack (0 = 64 KiB) */
} hp_process_decl;

#define HP_UI(...) (&(const hp_http_config){.present_ = 1, __VA_ARGS__})
#define HP_HTTP_BINDING(p, ...)                                                \
    {                                                                          \
        .kind = HP_BINDING_HTTP, .path = p, .http = {                          \
            .present_ = 1,                                                     \
            __VA_ARGS__                                                        \
        }                                                                      \
    }
#define HP_WS_BINDING(p, ...)                                                  \
    {                                                                          \
        .kind = HP_BINDING_WS, .path = p, .ws = {.present_ = 1, __VA_ARGS__ }  \
    }
#define HP_ENDPOINTS(...) ((const hp_binding[]){__VA_ARGS__, {0}})
#define HP_NO_ENDPOINTS ((const hp_binding[]){{0}})
/* .migrate = HP_MIGRATE(fn), fn being
 *   bool fn(hp_arena *a, uint32_t from_version, const hp_jv *stored,
 *           State *out, const char **why)
 * called at start when the stored state is of another .state_version (or
 * does not decode): it fills *out from `stored` (the old state's JSON, NULL
 * when the stored bytes are not JSON; from_version 0 when no version was
 * recorded), allocating in `a`, and returns true; or sets *why and returns
 * false, and the process does not start.  The migrated state is saved at
 * once. */
#define HP_MIGRATE(fn) ((void (*)(void))(fn))

#define HP_SAVE_NEVER                                                          \
    {                                                                          \
        .kind = HP_SAVE_KIND_NEVER                                             \
    }
#define HP_SAVE_EVERY_MESSAGE                                                  \
    {                                                                          \
        .kind = HP_SAVE_KIND_EVERY_MESSAGE                                     \
    }
#define HP_SAVE_EVERY_N_MESSAGE(k)                                             \
    {                                                                          \
        .kind = HP_SAVE_KIND_EVERY_N_MESSAGE, .n = (k)                         \
    }
#define HP_SAVE_EVERY_N_SECONDS(k)                                             \
    {                                                                          \
        .kind = HP_SAVE_KIND_EVERY_N_SECONDS, .n = (k)                         \
    }
#define HP_SAVE_ON_DIFF                                                        \
    {                                                                          \
        .kind = HP_SAVE_KIND_ON_DIFF                                           \
    }

/* HYPERPROCESS(State, .name = "...", .endpoints = ..., .save_config = ...,
 * .wit_world = "..."): the process's parameters as designated initializers
 * (the Rust macro's names).  Never read at run time: `hyperc gen` reads it. */
#define HYPERPROCESS(STATE, ...)                                               \
    typedef STATE hp__state_type HP__MARK("hyperc:state");                     \
    static const hp_process_decl hp__process HP__MARK("hyperc:process")        \
        __attribute__((unused)) = {__VA_ARGS__}

/* The runtime (logging, message arena, the process's life). */
#include "hyperc/runtime.h"

#endif
