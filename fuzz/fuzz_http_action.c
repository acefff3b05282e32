/* libFuzzer: what processes send to http-server:distro:sys
 * (src/node/http/server.c): the JSON bodies of its actions (Bind,
 * SecureBind, Unbind, WebSocketBind, WebSocketPush, WebSocketClose, ...)
 * and a process's answer to an HTTP request it was given (an HttpResponse
 * and its blob), on the module's own code without a listener or thread
 * (hcn_http_probe_*).
 *
 * The first byte picks: bits 0-1 the mode (0, 3: an action; 1: the answer
 * to a pending POST /api; 2: an action while a WebSocket on /ws is open,
 * each "CHAN" in the body replaced by its channel id), bit 2 a blob (the
 * bytes after the first 0xff of the body, which ends there), bit 3 an
 * action that expects a response, bit 4 a source whose process id is not
 * a safe one.  Every input starts from no binding. */
#include "fuzz_http.h"
#include "fuzz_node.h"

#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define APP "app:fuzz:sys"
#define APP_ADDR FZ_NODE "@" APP
#define ODD_ADDR FZ_NODE "@odd.proc:fuzz:sys"
#define SERVER FZ_NODE "@http-server:distro:sys"

static struct hcn_http *srv;
static hcn_proc *app, *odd;

static void stop_server(void)
{
    hcn_http_probe_free(srv);
    srv = NULL;
}

static void setup(void)
{
    hcn_node *n = fz_boot(NULL, true);
    app = fz_proc(APP, true);
    odd = fz_proc("odd.proc:fuzz:sys", true);
    char err[256] = "";
    srv = hcn_http_probe_new(n, err, sizeof err);
    if (srv == NULL) {
        fprintf(stderr, "fuzz_http_action: %s\n", err);
        abort();
    }
    fz_before_stop = stop_server;
}

/* An action from `source` (len SIZE_MAX: body is a C string), as the
 * module's deliver takes it: a plain push is written on the sender's
 * thread when it can be, anything else goes to the loop. */
static void send_action(const char *source, const char *body, size_t len,
                        bool expects, hcn_blob *blob)
{
    if (len == SIZE_MAX)
        len = strlen(body);
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = 5, .source = source,
                    .target = SERVER, .has_expects = expects, .expects = 5,
                    .body = body, .body_len = len, .blob = blob);
    if (hcn_http_probe_deliver(srv, m) != 0)
        hcn_http_probe_msg(srv, m);
}

/* What the app was sent: the last request's id, a channel opened. */
typedef struct seen {
    uint64_t request_id;
    unsigned long channel;
    bool opened;
} seen;

static void look(hcn_msg *m, void *arg)
{
    seen *s = arg;
    if (m->kind != HCN_MSG_REQUEST || m->body == NULL)
        return;
    const char *b = (const char *)m->body;
    const char *c = memmem(b, m->body_len, "\"channel_id\":", 13);
    if (memmem(b, m->body_len, "\"WebSocketOpen\"", 15) && c) {
        s->channel = strtoul(c + 13, NULL, 10);
        s->opened = true;
    } else if (m->has_expects) {
        s->request_id = m->id;
    }
}

/* A client on a socketpair sends `req`; the loop runs until the app has
 * seen what it waits for.  Returns the client's end. */
static int client(const char *req, seen *s)
{
    int fd = fz_http_client(srv, true);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        abort();
    for (int i = 0; i < 50 && !s->request_id && !s->opened; i++) {
        hcn_http_probe_run(srv);
        fz_drain(app, look, s);
    }
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (srv == NULL)
        setup();
    uint8_t flags = data[0];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    hcn_blob *blob = NULL;
    const uint8_t *ff = memchr(body, 0xff, len);
    if ((flags & 4) && ff) {
        size_t at = (size_t)(ff - (const uint8_t *)body);
        blob = hcn_blob_new("application/octet-stream", ff + 1, len - at - 1);
        len = at;
    }
    int mode = flags & 3;
    int fd = -1;
    seen s = {0};
    char *owned = NULL;
    if (mode == 1 || mode == 2) {
        send_action(APP_ADDR,
                    "{\"Bind\":{\"path\":\"/api\",\"authenticated\":false,"
                    "\"local_only\":false,\"cache\":false}}",
                    SIZE_MAX, false, NULL);
        send_action(APP_ADDR,
                    "{\"WebSocketBind\":{\"path\":\"/ws\","
                    "\"authenticated\":false,\"extension\":false}}",
                    SIZE_MAX, false, NULL);
    }
    if (mode == 1) {
        fd = client("POST /app:fuzz:sys/api HTTP/1.1\r\nHost: localhost\r\n"
                    "Content-Length: 2\r\n\r\n{}",
                    &s);
        hcn_http_probe_msg(
            srv, HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = s.request_id,
                             .source = APP_ADDR, .target = SERVER, .body = body,
                             .body_len = len, .blob = blob));
    } else {
        if (mode == 2) {
            fd = client("GET /app:fuzz:sys/ws HTTP/1.1\r\nHost: localhost\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n",
                        &s);
            /* each "CHAN" becomes the channel's id */
            char id[16];
            int il = snprintf(id, sizeof id, "%lu", s.channel);
            owned = malloc(len * 3 + 1);
            if (owned == NULL)
                abort();
            size_t o = 0;
            for (size_t i = 0; i < len;) {
                if (len - i >= 4 && memcmp(body + i, "CHAN", 4) == 0) {
                    memcpy(owned + o, id, (size_t)il);
                    o += (size_t)il;
                    i += 4;
                } else {
                    owned[o++] = body[i++];
                }
            }
            body = owned;
            len = o;
        }
        send_action((flags & 16) ? ODD_ADDR : APP_ADDR, body, len, flags & 8,
                    blob);
    }
    hcn_blob_unref(blob);
    for (int i = 0; i < 20; i++) {
        hcn_http_probe_run(srv);
        if (fd >= 0)
            fz_drain_fd(fd);
    }
    hcn_http_probe_reset(srv);
    if (fd >= 0)
        close(fd);
    fz_drain(app, NULL, NULL);
    fz_drain(odd, NULL, NULL);
    free(owned);
    return 0;
}
