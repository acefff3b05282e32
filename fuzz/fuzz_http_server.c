/* libFuzzer: http-server:distro:sys (src/node/http/server.c) as a client
 * sees it.  The input is what a client sends on one connection: requests
 * (pipelined or not), a WebSocket upgrade and frames.  The server is the
 * module's own code (request parsing, the Host header, cookies and the
 * login, the router, the access check, WebSocket handshakes and frames)
 * without a listener or a thread (hcn_http_probe_*): the harness hands it
 * one end of a socketpair, writes the input into the other in pieces, and
 * plays the bound process, which answers every HTTP request it is given
 * and pushes a message on every WebSocket it hears opened.
 *
 * The first byte: bit 0 a loopback peer (else a remote one), the rest the
 * piece size.  The bindings (made once, by the process's actions): /api
 * open, /auth authenticated, /local local-only, /sec on a secure
 * subdomain, /static cached, /items/:id/ *rest, WebSocket /ws open and
 * /wsauth authenticated.  Nothing may crash, leak or hang. */
#include "fuzz_http.h"
#include "fuzz_node.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define APP "app:fuzz:sys"
#define APP_ADDR FZ_NODE "@" APP
#define SERVER FZ_NODE "@http-server:distro:sys"

static struct hcn_http *srv;
static hcn_proc *app;

static void from_app(hcn_msg_kind kind, uint64_t id, const char *body,
                     hcn_blob *blob)
{
    hcn_http_probe_msg(srv,
                       HCN_MSG_NEW(.kind = kind, .id = id, .source = APP_ADDR,
                                   .target = SERVER, .body = body,
                                   .body_len = strlen(body), .blob = blob));
}

static void stop_server(void)
{
    hcn_http_probe_free(srv);
    srv = NULL;
}

static void setup(void)
{
    hcn_node *n = fz_boot("fuzz-password", true);
    app = fz_proc(APP, true);
    char err[256] = "";
    srv = hcn_http_probe_new(n, err, sizeof err);
    if (srv == NULL) {
        fprintf(stderr, "fuzz_http_server: %s\n", err);
        abort();
    }
    fz_before_stop = stop_server;
    static const char *const binds[] = {
        "{\"Bind\":{\"path\":\"/api\",\"authenticated\":false,"
        "\"local_only\":false,\"cache\":false}}",
        "{\"Bind\":{\"path\":\"/auth\",\"authenticated\":true,"
        "\"local_only\":false,\"cache\":false}}",
        "{\"Bind\":{\"path\":\"/local\",\"authenticated\":false,"
        "\"local_only\":true,\"cache\":false}}",
        "{\"SecureBind\":{\"path\":\"/sec\",\"cache\":false}}",
        "{\"Bind\":{\"path\":\"/items/:id/*rest\",\"authenticated\":false,"
        "\"local_only\":false,\"cache\":false}}",
        "{\"WebSocketBind\":{\"path\":\"/ws\",\"authenticated\":false,"
        "\"extension\":false}}",
        "{\"WebSocketBind\":{\"path\":\"/wsauth\",\"authenticated\":true,"
        "\"extension\":false}}",
    };
    for (size_t i = 0; i < sizeof binds / sizeof *binds; i++)
        from_app(HCN_MSG_REQUEST, 1 + i, binds[i], NULL);
    hcn_blob *page = hcn_blob_new("text/html", "<p>static</p>", 13);
    from_app(HCN_MSG_REQUEST, 99,
             "{\"Bind\":{\"path\":\"/static\",\"authenticated\":false,"
             "\"local_only\":false,\"cache\":true}}",
             page);
    hcn_blob_unref(page);
    fz_drain(app, NULL, NULL);
}

/* The process's part: answer each request, greet each WebSocket. */
static void play_app(hcn_msg *m, void *arg)
{
    (void)arg;
    if (m->kind != HCN_MSG_REQUEST || m->body == NULL)
        return;
    const char *b = (const char *)m->body;
    size_t n = m->body_len;
    if (memmem(b, n, "\"WebSocketOpen\"", 15)) {
        const char *c = memmem(b, n, "\"channel_id\":", 13);
        unsigned long ch = c ? strtoul(c + 13, NULL, 10) : 0;
        char push[96];
        snprintf(push, sizeof push,
                 "{\"WebSocketPush\":{\"channel_id\":%lu,"
                 "\"message_type\":\"Text\"}}",
                 ch);
        hcn_blob *hi = hcn_blob_new(NULL, "hi", 2);
        from_app(HCN_MSG_REQUEST, 7, push, hi);
        hcn_blob_unref(hi);
    } else if (m->has_expects) {
        hcn_blob *ok = hcn_blob_new(NULL, "{\"ok\":1}", 8);
        from_app(HCN_MSG_RESPONSE, m->id,
                 "{\"status\":200,\"headers\":{\"X-App\":\"yes\"}}", ok);
        hcn_blob_unref(ok);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (srv == NULL)
        setup();
    bool loopback = data[0] & 1;
    size_t step = (size_t)(data[0] >> 1) * 61 + 1;
    data++;
    size--;
    int fd = fz_http_client(srv, loopback);
    size_t at = 0;
    bool shut = false;
    for (int turn = 0; turn < 400; turn++) {
        if (at < size) {
            size_t k = size - at < step ? size - at : step;
            ssize_t w = send(fd, data + at, k, MSG_NOSIGNAL);
            if (w > 0)
                at += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                at = size; /* the server closed: nothing more to send */
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        size_t open = hcn_http_probe_run(srv);
        fz_drain_fd(fd);
        fz_drain(app, play_app, NULL);
        if (open == 0 && (shut || at >= size))
            break;
    }
    /* A connection still open (a WebSocket, a slow request) is closed. */
    hcn_http_probe_disconnect(srv);
    fz_drain(app, NULL, NULL);
    close(fd);
    return 0;
}
