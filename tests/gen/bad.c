/* Every rule broken once: the checker must report all of them in one run. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct st {
    int n;
} st;

HYPERPROCESS(st,
             .icon = 42,
             .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api"),
                                       HP_HTTP_BINDING("/api"),
                                       HP_WS_BINDING("nope")),
             .save_config = HP_SAVE_EVERY_N_SECONDS(0),
             .wit_world = "Bad World");

HP_INIT
static int init_a(st *s) { return s->n; }

HP_INIT
static void init_b(st *s) { (void)s; }

HP_LOCAL
static void nothing_back(st *s) { (void)s; }

HP_LOCAL
static int wrong_first(int x) { return x; }

HP_LOCAL
static int get_x(st *s) { return s->n; }

HP_REMOTE
static int Get_x(st *s) { return s->n; }

HP_LOCAL
static int fetch2(st *s) { return s->n; }

HP_LOCAL
static int upstream_data(st *s) { return s->n; }

HP_WS
static void ws_bad(st *s, int channel) { (void)s; (void)channel; }

HP_HTTP_ROUTE("FETCH", "/x")
static int odd_method(st *s) { return s->n; }

HP_HTTP_ROUTE("GET", "/dup")
static int dup_a(st *s) { return s->n; }

HP_HTTP_ROUTE("get", "/dup")
static int dup_b(st *s) { return s->n; }

HP_INIT HP_LOCAL
static void mixed(st *s) { (void)s; }

void hw_init(const char *our) { (void)our; }

HP_LOCAL
static int _hidden(st *s) { return s->n; }
