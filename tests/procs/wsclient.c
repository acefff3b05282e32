/* A hyperprocess that opens a WebSocket connection through
 * http-client:distro:sys and receives its frames in its HP_WS_CLIENT
 * handler. */
#include <hyperc/hyperprocess.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct wsclient_state {
    uint64_t texts;
    char *last;
    bool closed;
    uint64_t closes; /* close events the handler heard */
} wsclient_state;

HYPERPROCESS(wsclient_state, .name = "wsclient", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "tweb-v0");

/* Open `url` as channel `channel` (hp_ws_client_open): "Ok", or why not */
HP_LOCAL
static char *connect_to(wsclient_state *s, const char *url, uint32_t channel)
{
    (void)s;
    hp_rpc_error e = hp_ws_client_open(url, NULL, channel);
    return e.kind == HP_RPC_OK
               ? "Ok"
               : hp_sprintf("%s: %s", hp_rpc_kind_name(e.kind), e.message);
}

/* Send a text frame. */
HP_LOCAL
static bool send_text(wsclient_state *s, uint32_t channel, const char *text)
{
    (void)s;
    return hp_ws_client_push(channel, HP_WS_TEXT, text, strlen(text)).kind ==
           HP_RPC_OK;
}

/* Close the connection: "Ok", or why not. */
HP_LOCAL
static char *close_conn(wsclient_state *s, uint32_t channel)
{
    (void)s;
    hp_rpc_error e = hp_ws_client_close(channel);
    return e.kind == HP_RPC_OK
               ? "Ok"
               : hp_sprintf("%s: %s", hp_rpc_kind_name(e.kind), e.message);
}

/* What the handler has seen. */
HP_LOCAL
static char *seen(const wsclient_state *s)
{
    return hp_sprintf(
        "%llu %s %s", (unsigned long long)s->texts, s->last ? s->last : "-",
        s->closed ? s->closes == 1 ? "closed" : "closed more than once"
                  : "open");
}

HP_WS_CLIENT
static void on_frame(wsclient_state *s, uint32_t channel_id,
                     hp_ws_message_type type, const hw_blob *blob)
{
    (void)channel_id;
    if (type == HP_WS_CLOSE) {
        s->closed = true;
        s->closes++;
        return;
    }
    if (type != HP_WS_TEXT)
        return;
    s->texts++;
    free(s->last);
    s->last = strndup((const char *)blob->bytes.ptr, blob->bytes.len);
}
