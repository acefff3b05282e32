/* The Getting Started counter in hyperc's syntax (docs/gen-design.md). */
#include <hyperc/hyperprocess.h>

#include <stdint.h>

typedef struct my_process_state {
    uint64_t counter;
} my_process_state;

HYPERPROCESS(my_process_state,
             .name = "My Process",
             .ui = HP_UI(.authenticated = true),
             .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api", .authenticated = false),
                                       HP_WS_BINDING("/ws")),
             .save_config = HP_SAVE_EVERY_N_MESSAGE(5),
             .wit_world = "my-process-dot-os-v0");

HP_INIT
static void initialize(my_process_state *self)
{
    (void)self;
}

HP_HTTP HP_LOCAL
static uint64_t handle_http_request(my_process_state *self, const char *value)
{
    (void)value;
    return ++self->counter;
}

HP_HTTP_ROUTE("GET", "/count") HP_LOCAL HP_REMOTE
static uint64_t get_count(const my_process_state *self)
{
    return self->counter;
}

HP_WS
static void on_ws(my_process_state *self, uint32_t channel_id,
                  hp_ws_message_type type, const hw_blob *blob)
{
    (void)self; (void)channel_id; (void)type; (void)blob;
}
