/* Hyperware's WebSocket links (ws.h): the upgrade with http-parser, the
 * frames with wslay's event API fed from and draining into the caller's
 * buffers. */
#include "ws.h"

#include "../base/base.h"

#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wslay/wslay.h>

#define UPGRADE_MAX 8192 /* bytes of upgrade headers either way */

enum { H_NONE, H_UPGRADE, H_CONNECTION, H_KEY, H_VERSION, H_ACCEPT };

typedef struct rx_msg {
    struct rx_msg *next;
    uint8_t *p;
    size_t n;
} rx_msg;

struct hcnn_ws {
    bool client;
    bool open;
    /* the upgrade */
    http_parser hp;
    http_parser_settings hs;
    size_t seen;
    char field[40];
    size_t flen;
    char value[128];
    size_t vlen;
    int which;
    bool in_value, done;
    bool upgrade_ok, conn_ok, version_ok;
    char key[128];                    /* the client's Sec-WebSocket-Key */
    char accept[128];                 /* the server's answer, as read */
    char want[HCN_WS_ACCEPT_LEN + 1]; /* the answer the client expects */
    /* the frames */
    wslay_event_context_ptr ctx;
    const uint8_t *in;
    size_t in_len;
    hcnn_sink sink;
    void *sink_arg;
    rx_msg *head, *tail;
    const char *broken;
};

/* Whether the comma-separated list has tok (any case). */
static bool has_token(const char *list, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p = e;
    }
    return false;
}

/* ---------------------------------------------------------- the upgrade */

static void end_value(hcnn_ws *w)
{
    if (!w->in_value)
        return;
    w->value[w->vlen] = '\0';
    switch (w->which) {
    case H_UPGRADE:
        w->upgrade_ok = strcasecmp(w->value, "websocket") == 0;
        break;
    case H_CONNECTION:
        w->conn_ok = w->conn_ok || has_token(w->value, "upgrade");
        break;
    case H_KEY: snprintf(w->key, sizeof w->key, "%s", w->value); break;
    case H_VERSION: w->version_ok = strcmp(w->value, "13") == 0; break;
    case H_ACCEPT: snprintf(w->accept, sizeof w->accept, "%s", w->value); break;
    }
    w->in_value = false;
    w->flen = w->vlen = 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    hcnn_ws *w = p->data;
    end_value(w);
    if (w->flen + len < sizeof w->field) {
        memcpy(w->field + w->flen, at, len);
        w->flen += len;
    } else {
        w->flen = sizeof w->field - 1; /* too long: not one we read */
        w->field[0] = '\0';
    }
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    hcnn_ws *w = p->data;
    if (!w->in_value) {
        w->field[w->flen] = '\0';
        const char *f = w->field;
        w->which = strcasecmp(f, "upgrade") == 0      ? H_UPGRADE
                   : strcasecmp(f, "connection") == 0 ? H_CONNECTION
                   : w->client
                       ? (strcasecmp(f, "sec-websocket-accept") == 0 ? H_ACCEPT
                                                                     : H_NONE)
                   : strcasecmp(f, "sec-websocket-key") == 0     ? H_KEY
                   : strcasecmp(f, "sec-websocket-version") == 0 ? H_VERSION
                                                                 : H_NONE;
        w->in_value = true;
        w->vlen = 0;
    }
    size_t room = sizeof w->value - 1 - w->vlen;
    size_t k = len < room ? len : room;
    memcpy(w->value + w->vlen, at, k);
    w->vlen += k;
    return 0;
}

static int on_headers_done(http_parser *p)
{
    hcnn_ws *w = p->data;
    end_value(w);
    w->done = true;
    return 1; /* no body either way */
}

void hcnn_ws_request(hcnn_ws *w, const char *host, unsigned port,
                     hcnn_sink sink, void *arg)
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        abort();
    char key[32];
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    hcn_ws_accept(key, w->want);
    bool v6 = strchr(host, ':') != NULL;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: %s%s%s:%u\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     v6 ? "[" : "", host, v6 ? "]" : "", port, key);
    if (n > 0 && (size_t)n < sizeof req)
        sink(arg, (const uint8_t *)req, (size_t)n);
}

static const char BAD_REQUEST[] = "HTTP/1.1 400 Bad Request\r\n"
                                  "Content-Length: 0\r\n"
                                  "Connection: close\r\n\r\n";

static int refuse(hcnn_ws *w, hcnn_sink sink, void *arg, const char *why,
                  const char **out)
{
    if (!w->client)
        sink(arg, (const uint8_t *)BAD_REQUEST, sizeof BAD_REQUEST - 1);
    *out = why;
    return -1;
}

/* Whether key is base64 of 16 bytes (RFC 6455 4.2.1). */
static bool key_ok(const char *key)
{
    unsigned char raw[32];
    size_t n = strlen(key);
    if (n != 24)
        return false;
    return EVP_DecodeBlock(raw, (const unsigned char *)key, (int)n) == 18 &&
           key[22] == '=' && key[23] == '=';
}

int hcnn_ws_upgrade(hcnn_ws *w, const uint8_t *p, size_t n, size_t *used,
                    hcnn_sink sink, void *arg, const char **why)
{
    *used = 0;
    size_t k = http_parser_execute(&w->hp, &w->hs, (const char *)p, n);
    w->seen += k;
    if (!w->done) {
        *used = k;
        if (HTTP_PARSER_ERRNO(&w->hp) != HPE_OK)
            return refuse(w, sink, arg, "an upgrade that is not HTTP/1.1", why);
        if (w->seen > UPGRADE_MAX)
            return refuse(w, sink, arg, "an upgrade over 8 KiB", why);
        return 0;
    }
    /* on_headers_done stopped the parser at the end of the headers (it
     * returns 1: the parser counts the byte it stopped on, or not) */
    *used = k;
    if (w->seen > UPGRADE_MAX)
        return refuse(w, sink, arg, "an upgrade over 8 KiB", why);
    if (w->client) {
        if (w->hp.status_code != 101)
            return refuse(w, sink, arg,
                          "the peer refused the WebSocket upgrade", why);
        if (!w->upgrade_ok || strcmp(w->accept, w->want) != 0)
            return refuse(w, sink, arg, "a wrong WebSocket upgrade answer",
                          why);
    } else {
        if (w->hp.method != HTTP_GET || !w->upgrade_ok || !w->conn_ok)
            return refuse(w, sink, arg, "not a WebSocket upgrade request", why);
        if (!w->version_ok || !key_ok(w->key))
            return refuse(w, sink, arg,
                          "a WebSocket upgrade without version 13 or a key",
                          why);
        char acc[HCN_WS_ACCEPT_LEN + 1], out[256];
        hcn_ws_accept(w->key, acc);
        int m = snprintf(out, sizeof out,
                         "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Accept: %s\r\n\r\n",
                         acc);
        sink(arg, (const uint8_t *)out, (size_t)m);
    }
    w->open = true;
    return 1;
}

/* ------------------------------------------------------------ the frames */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud)
{
    (void)flags;
    hcnn_ws *w = ud;
    if (w->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t k = len < w->in_len ? len : w->in_len;
    memcpy(buf, w->in, k);
    w->in += k;
    w->in_len -= k;
    return (ssize_t)k;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud)
{
    (void)flags;
    hcnn_ws *w = ud;
    if (w->sink == NULL) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    w->sink(w->sink_arg, data, len);
    return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *ud)
{
    (void)ctx;
    (void)ud;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *a, void *ud)
{
    (void)ctx;
    hcnn_ws *w = ud;
    switch (a->opcode) {
    case WSLAY_BINARY_FRAME: {
        rx_msg *m = hcn_xmalloc(sizeof *m);
        m->next = NULL;
        m->n = a->msg_length;
        m->p = hcn_xmalloc(m->n);
        if (m->n) /* (an empty message has no buffer) */
            memcpy(m->p, a->msg, m->n);
        if (w->tail)
            w->tail->next = m;
        else
            w->head = m;
        w->tail = m;
        break;
    }
    case WSLAY_PING: /* wslay queues the pong */
    case WSLAY_PONG: break;
    case WSLAY_TEXT_FRAME:
        if (w->broken == NULL)
            w->broken = "a text frame (only binary frames carry the protocol)";
        break;
    case WSLAY_CONNECTION_CLOSE:
        if (w->broken == NULL)
            w->broken = "the peer closed the WebSocket";
        break;
    default: break;
    }
}

hcnn_ws *hcnn_ws_new(bool client)
{
    hcnn_ws *w = hcn_xcalloc(1, sizeof *w);
    w->client = client;
    http_parser_init(&w->hp, client ? HTTP_RESPONSE : HTTP_REQUEST);
    w->hp.data = w;
    http_parser_settings_init(&w->hs);
    w->hs.on_header_field = on_field;
    w->hs.on_header_value = on_value;
    w->hs.on_headers_complete = on_headers_done;
    struct wslay_event_callbacks cb = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .genmask_callback = genmask_cb,
        .on_msg_recv_callback = on_msg,
    };
    int rc = client ? wslay_event_context_client_init(&w->ctx, &cb, w)
                    : wslay_event_context_server_init(&w->ctx, &cb, w);
    if (rc != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(w->ctx, HCNN_WS_MSG_MAX);
    return w;
}

void hcnn_ws_free(hcnn_ws *w)
{
    if (w == NULL)
        return;
    while (w->head) {
        rx_msg *m = w->head;
        w->head = m->next;
        free(m->p);
        free(m);
    }
    wslay_event_context_free(w->ctx);
    free(w);
}

int hcnn_ws_recv(hcnn_ws *w, const uint8_t *p, size_t n, const char **why)
{
    if (w->broken) {
        *why = w->broken;
        return -1;
    }
    w->in = p;
    w->in_len = n;
    int rc = wslay_event_recv(w->ctx);
    w->in = NULL;
    w->in_len = 0;
    if (w->broken == NULL && rc != 0)
        w->broken = "a broken WebSocket stream";
    if (w->broken == NULL && !wslay_event_get_read_enabled(w->ctx))
        w->broken = "a WebSocket protocol error (an unmasked, reserved or "
                    "oversized frame)";
    if (w->broken) {
        *why = w->broken;
        return -1;
    }
    return 0;
}

bool hcnn_ws_next(hcnn_ws *w, uint8_t **msg, size_t *len)
{
    rx_msg *m = w->head;
    if (m == NULL)
        return false;
    w->head = m->next;
    if (w->head == NULL)
        w->tail = NULL;
    *msg = m->p;
    *len = m->n;
    free(m);
    return true;
}

void hcnn_ws_send(hcnn_ws *w, const uint8_t *p, size_t n)
{
    struct wslay_event_msg m = {
        .opcode = WSLAY_BINARY_FRAME, .msg = p, .msg_length = n};
    (void)wslay_event_queue_msg(w->ctx, &m); /* refused after a close */
}

void hcnn_ws_ping(hcnn_ws *w)
{
    struct wslay_event_msg m = {
        .opcode = WSLAY_PING, .msg = NULL, .msg_length = 0};
    (void)wslay_event_queue_msg(w->ctx, &m);
}

bool hcnn_ws_flush(hcnn_ws *w, hcnn_sink sink, void *arg)
{
    w->sink = sink;
    w->sink_arg = arg;
    int rc = 0;
    while (rc == 0 && wslay_event_want_write(w->ctx))
        rc = wslay_event_send(w->ctx);
    w->sink = NULL;
    w->sink_arg = NULL;
    return rc == 0 && wslay_event_get_write_enabled(w->ctx);
}
