/* chat: a chat room served by the node, with a small UI (pkg/ui).
 *
 * HTTP (the UI calls these through the generated TypeScript client):
 *   GET  /chat:chat:hyperc.os/api/history        -> the recent messages
 *   POST /chat:chat:hyperc.os/api/send ["Ada","hi"] -> {"Ok":{message}}
 * WebSocket /chat:chat:hyperc.os/ws:
 *   on connect the server sends {"History":[...]}, then {"Message":{...}} for
 *   every new message; a client may also send {"author":..,"text":..}.
 * Every path needs the node's login (the UI and the API are authenticated):
 * the node answers the login page until the browser has its cookie.
 *
 *   hyperc inject chat:chat:hyperc.os '{"SendMessage":["cli","hello"]}'
 * posts from the command line; open browsers show it at once. */
#include <hyperc/hyperprocess.h>
#include <hyperc/json.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* what the room keeps (older messages are dropped) and accepts */
#define CHAT_KEEP 100
#define CHAT_MAX_AUTHOR 40
#define CHAT_MAX_TEXT 2000

typedef struct chat_message {
    uint64_t id;
    char *author;
    char *text;
} chat_message;

typedef HP_LIST(chat_message) message_list;
typedef HP_RESULT(chat_message, char *) send_result;

typedef struct chat_state {
    uint64_t next_id;
    message_list messages; /* oldest first, at most CHAT_KEEP */
} chat_state;

/* its homepage tile: an icon (an SVG as a data URL) and a widget (HTML the
 * node's home page shows in a sandboxed frame) */
#define CHAT_ICON                                                              \
    "data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMj"     \
    "AwMC9zdmciIHZpZXdCb3g9IjAgMCA2NCA2NCI+PHJlY3Qgd2lkdGg9IjY0IiBoZWlnaH"     \
    "Q9IjY0IiByeD0iMTQiIGZpbGw9IiMzYjZjZjYiLz48cGF0aCBkPSJNMTQgMThoMzZhNC"     \
    "A0IDAgMCAxIDQgNHYxOGE0IDQgMCAwIDEtNCA0SDMwbC0xMCA4di04aC02YTQgNCAwID"     \
    "AgMS00LTRWMjJhNCA0IDAgMCAxIDQtNHoiIGZpbGw9IiNmZmYiLz48Y2lyY2xlIGN4PS"     \
    "IyNCIgY3k9IjMxIiByPSIzIiBmaWxsPSIjM2I2Y2Y2Ii8+PGNpcmNsZSBjeD0iMzIiIG"     \
    "N5PSIzMSIgcj0iMyIgZmlsbD0iIzNiNmNmNiIvPjxjaXJjbGUgY3g9IjQwIiBjeT0iMz"     \
    "EiIHI9IjMiIGZpbGw9IiMzYjZjZjYiLz48L3N2Zz4="
#define CHAT_WIDGET                                                            \
    "<p style=\"font-family:sans-serif;margin:.5rem\"><b>Chat</b>: the room "  \
    "of this node. Open it to talk with everyone logged in here.</p>"

HYPERPROCESS(
    chat_state, .name = "chat", .icon = CHAT_ICON, .widget = CHAT_WIDGET,
    .ui = HP_UI(.authenticated = true),
    .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api", .authenticated = true),
                              HP_WS_BINDING("/ws", .authenticated = true)),
    .save_config = HP_SAVE_ON_DIFF, .wit_world = "chat-dot-os-v0");

/* ------------------------------------------------------------ helpers */

static void write_message(hp_jw *w, const chat_message *m)
{
    hp_jw_raw(w, "{\"id\":", 6);
    hp_jw_u64(w, m->id);
    hp_jw_raw(w, ",\"author\":", 10);
    hp_jw_string(w, m->author, strlen(m->author));
    hp_jw_raw(w, ",\"text\":", 8);
    hp_jw_string(w, m->text, strlen(m->text));
    hp_jw_raw(w, "}", 1);
}

/* {"History":[...]} to one client */
static void push_history(const chat_state *s, uint32_t channel_id)
{
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_raw(&w, "{\"History\":[", 12);
    for (size_t i = 0; i < s->messages.len; i++) {
        if (i > 0)
            hp_jw_raw(&w, ",", 1);
        write_message(&w, &s->messages.ptr[i]);
    }
    hp_jw_raw(&w, "]}", 2);
    if (hp_jw_ok(&w))
        hp_ws_push(channel_id, HP_WS_TEXT, w.buf, w.len);
    hp_jw_fini(&w);
}

/* Checks and stores a message, then broadcasts {"Message":{...}} to every
 * open WebSocket.  Returns NULL, or why the message was refused. */
static const char *post(chat_state *s, const char *author, const char *text,
                        chat_message *out)
{
    size_t al = strlen(author), tl = strlen(text);
    if (al == 0)
        author = "anonymous", al = strlen(author);
    if (al > CHAT_MAX_AUTHOR)
        return "the name is too long";
    if (tl == 0)
        return "the message is empty";
    if (tl > CHAT_MAX_TEXT)
        return "the message is too long";

    message_list *l = &s->messages;
    size_t drop = l->len >= CHAT_KEEP ? l->len - CHAT_KEEP + 1 : 0;
    for (size_t i = 0; i < drop; i++) {
        free(l->ptr[i].author);
        free(l->ptr[i].text);
    }
    if (drop > 0) {
        memmove(l->ptr, l->ptr + drop, (l->len - drop) * sizeof *l->ptr);
        l->len -= drop;
    }
    chat_message *v = realloc(l->ptr, (l->len + 1) * sizeof *v);
    if (v == NULL)
        return "out of memory";
    l->ptr = v;
    chat_message m = {s->next_id + 1, strdup(author), strdup(text)};
    if (m.author == NULL || m.text == NULL) {
        free(m.author);
        free(m.text);
        return "out of memory";
    }
    s->next_id = m.id;
    l->ptr[l->len++] = m;
    *out = m;

    hp_jw w;
    hp_jw_init(&w);
    hp_jw_raw(&w, "{\"Message\":", 11);
    write_message(&w, &m);
    hp_jw_raw(&w, "}", 1);
    if (hp_jw_ok(&w))
        hp_ws_broadcast("/ws", HP_WS_TEXT, w.buf, w.len);
    hp_jw_fini(&w);
    return NULL;
}

/* ------------------------------------------------------------ handlers */

HP_INIT
static void initialize(chat_state *s)
{
    hp_log_info("chat: %zu messages kept", s->messages.len);
}

/* GET /api/history: the recent messages, oldest first */
HP_HTTP_ROUTE("GET", "/api/history")
static message_list history(const chat_state *s)
{
    return s->messages;
}

/* POST /api/send ["author","text"] (the generated client sends
 * {"SendMessage":["author","text"]}); also local: hyperc inject. */
HP_LOCAL HP_HTTP_ROUTE("POST", "/api/send") static send_result
    send_message(chat_state *s, const char *author, const char *text)
{
    chat_message m;
    const char *why = post(s, author, text, &m);
    send_result r = {.ok = why == NULL};
    if (why != NULL)
        r.error = hp_strdup(why);
    else /* a copy in the task's arena: the state may drop m later */
        r.value = (chat_message){m.id, hp_strdup(m.author), hp_strdup(m.text)};
    return r;
}

/* WebSocket: history on open, a JSON message {"author","text"} posts */
HP_WS
static void on_ws(chat_state *s, uint32_t channel_id, hp_ws_message_type type,
                  const hw_blob *blob)
{
    if (type == HP_WS_OPEN) {
        push_history(s, channel_id);
        return;
    }
    if (type != HP_WS_TEXT)
        return;
    const char *err = NULL, *author = "", *text = NULL;
    hp_jv *j = hp_json_parse(hp_message_arena(), (const char *)blob->bytes.ptr,
                             blob->bytes.len, &err);
    const hp_jv *a = j ? hp_jv_get(j, "author") : NULL;
    const hp_jv *t = j ? hp_jv_get(j, "text") : NULL;
    if (a != NULL && hp_jd_string(hp_message_arena(), a, &author, &err) != 0)
        author = NULL;
    if (t == NULL || hp_jd_string(hp_message_arena(), t, &text, &err) != 0)
        text = NULL;
    chat_message m;
    const char *why = author && text
                          ? post(s, author, text, &m)
                          : "expected {\"author\": ..., \"text\": ...}";
    if (why != NULL) {
        hp_jw w;
        hp_jw_init(&w);
        hp_jw_raw(&w, "{\"Error\":", 9);
        hp_jw_string(&w, why, strlen(why));
        hp_jw_raw(&w, "}", 1);
        if (hp_jw_ok(&w))
            hp_ws_push(channel_id, HP_WS_TEXT, w.buf, w.len);
        hp_jw_fini(&w);
    }
}
