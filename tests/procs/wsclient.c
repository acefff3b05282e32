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
} wsclient_state;

HYPERPROCESS(wsclient_state, .name = "wsclient", .endpoints = HP_NO_ENDPOINTS,
             .save_config = HP_SAVE_NEVER, .wit_world = "tweb-v0");

static hw_address client(void)
{
    hw_address a = {.node = hp_our()->node,
                    .process = {"http-client", "distro", "sys"}};
    return a;
}

/* Open `url` as channel `channel`; the http-client's answer. */
HP_LOCAL
static char *connect_to(wsclient_state *s, const char *url, uint32_t channel)
{
    (void)s;
    hw_address to = client();
    hp_rpc_call_spec c = {.target = &to};
    c.body = hp_sprintf("{\"WebSocketOpen\":{\"url\":\"%s\",\"headers\":{},"
                        "\"channel_id\":%u}}",
                        url, (unsigned)channel);
    c.len = strlen(c.body);
    hp_rpc_fanout(&c, 1, NULL);
    if (c.err.kind != HP_RPC_OK)
        return hp_sprintf("%s: %s", hp_rpc_kind_name(c.err.kind),
                          c.err.message);
    const hp_jv *ok = hp_jv_get(c.reply, "Ok");
    return ok && ok->kind == HP_JV_STRING ? hp_sprintf("Ok %s", ok->str)
                                          : "Err";
}

/* Send a text frame. */
HP_LOCAL
static bool send_text(wsclient_state *s, uint32_t channel, const char *text)
{
    (void)s;
    hw_address to = client();
    hp_rpc_call_spec c = {.target = &to};
    c.body = hp_sprintf("{\"WebSocketPush\":{\"channel_id\":%u,"
                        "\"message_type\":\"Text\"}}",
                        (unsigned)channel);
    c.len = strlen(c.body);
    c.blob = (const uint8_t *)text;
    c.blob_len = strlen(text);
    hp_rpc_fanout(&c, 1, NULL);
    return c.err.kind == HP_RPC_OK && hp_jv_get(c.reply, "Ok") != NULL;
}

/* What the handler has seen. */
HP_LOCAL
static char *seen(const wsclient_state *s)
{
    return hp_sprintf("%llu %s %s", (unsigned long long)s->texts,
                      s->last ? s->last : "-", s->closed ? "closed" : "open");
}

HP_WS_CLIENT
static void on_frame(wsclient_state *s, uint32_t channel_id,
                     hp_ws_message_type type, const hw_blob *blob)
{
    (void)channel_id;
    if (type == HP_WS_CLOSE) {
        s->closed = true;
        return;
    }
    if (type != HP_WS_TEXT)
        return;
    s->texts++;
    free(s->last);
    s->last = strndup((const char *)blob->bytes.ptr, blob->bytes.len);
}
