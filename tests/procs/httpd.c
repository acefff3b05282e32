/* httpd: a raw-ABI test process for http-server:distro:sys.  Black-box tests
 * drive it with text commands (hyperc inject) and real HTTP/WebSocket
 * clients.
 *
 * Commands (each answered with the text shown):
 *   send JSON             send JSON to http-server with expects_response 5
 *                         and answer its reply body ("timeout" if none)
 *   sendblob MIME JSON    the same with the command's blob attached (mime
 *                         "-" = none)
 *   fire JSON             send JSON without expects_response; "fired"
 *   firetext JSON         the same with a blob "TEXT" taken from after the
 *                         first newline of the command
 *   events                the http-server requests seen since the last
 *                         call (bodies, one per line, blobs as " | blob")
 *   lastblob              the blob of the last Http request
 *
 * HTTP requests ({"Http": ...}) are answered with status 200, header
 * Content-Type: application/json and as body the request's JSON, a newline
 * and the request body, unless the query says otherwise:
 *   noanswer=1  no answer (the client gets 408)
 *   bad=1       an answer that is not an HttpResponse (500)
 *   status=N    status N
 *   sleep=MS    hold the process's thread MS milliseconds first (requests
 *               queue in its mailbox meanwhile)
 * WebSocket frames: a Text "echo X" is pushed back as "X"; "close-me" makes
 * the process close the channel; "flood N [SIZE]" pushes N Text frames
 * "msg I", each padded with '.' to SIZE bytes if longer; every event is
 * recorded for `events`. */
#include <hyperc/abi.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *events;
static size_t events_len;
static hw_blob last_blob;

static void record(const char *s, size_t n)
{
    events = realloc(events, events_len + n + 2);
    memcpy(events + events_len, s, n);
    events_len += n;
    events[events_len++] = '\n';
    events[events_len] = 0;
}

static void answer_text(const char *text, const hw_blob *blob)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, blob);
}

static hw_address server(void)
{
    hw_address a;
    hw_address_parse("our@http-server:distro:sys", &a);
    return a;
}

static void on_message(hw_receive_result *r);

static void answer_body(const hw_bytes *body)
{
    char buf[512];
    size_t n = body->len < sizeof buf - 1 ? body->len : sizeof buf - 1;
    memcpy(buf, body->ptr, n);
    buf[n] = 0;
    answer_text(buf, NULL);
}

/* Send JSON to http-server; with `await`, answer its reply.  (The blob
 * variant sends, then receives: send-and-await takes no blob.) */
static void to_server(const char *json, bool await, const hw_blob *blob)
{
    hw_address t = server();
    hw_request r = {0};
    r.body.ptr = (uint8_t *)json;
    r.body.len = strlen(json);
    r.has_expects_response = await;
    r.expects_response = 5;
    hw_send_request(&t, &r, NULL, blob);
    hw_address_fini(&t);
    if (!await) {
        answer_text("fired", NULL);
        return;
    }
    hw_receive_result rr;
    for (;;) {
        hw_receive(&rr);
        if (rr.is_err || rr.message.kind == HW_MESSAGE_RESPONSE)
            break;
        on_message(&rr); /* what http-server sends meanwhile */
        hw_receive_result_fini(&rr);
    }
    if (rr.is_err)
        answer_text("timeout", NULL);
    else
        answer_body(&rr.message.response.body);
    hw_receive_result_fini(&rr);
}

static void push(unsigned long channel, const char *type, const char *text,
                 size_t n)
{
    char json[160];
    snprintf(json, sizeof json,
             "{\"WebSocketPush\":{\"channel_id\":%lu,\"message_type\":"
             "\"%s\"}}",
             channel, type);
    hw_address t = server();
    hw_request r = {0};
    r.body.ptr = (uint8_t *)json;
    r.body.len = strlen(json);
    hw_blob b = {NULL, {(uint8_t *)text, n}};
    hw_send_request(&t, &r, NULL, &b);
    hw_address_fini(&t);
}

static void on_http(const char *body, size_t len)
{
    hw_blob b = {0};
    bool has = hw_get_blob(&b);
    hw_blob_fini(&last_blob);
    memset(&last_blob, 0, sizeof last_blob);
    if (has)
        last_blob = b;
    const char *sl = strstr(body, "\"sleep\":\"");
    if (sl) {
        long ms = atol(sl + 9);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
    if (strstr(body, "\"noanswer\":\"1\""))
        return;
    if (strstr(body, "\"bad\":\"1\"")) {
        answer_text("not an HttpResponse", NULL);
        return;
    }
    int status = 200;
    const char *s = strstr(body, "\"status\":\"");
    if (s)
        status = atoi(s + 10);
    char head[128];
    snprintf(head, sizeof head,
             "{\"status\":%d,\"headers\":{\"Content-Type\":"
             "\"application/json\",\"X-Test\":\"yes\"}}",
             status);
    size_t bl = has ? last_blob.bytes.len : 0;
    char *out = malloc(len + 1 + bl + 1);
    memcpy(out, body, len);
    out[len] = '\n';
    if (bl)
        memcpy(out + len + 1, last_blob.bytes.ptr, bl);
    hw_blob ob = {NULL, {(uint8_t *)out, len + 1 + bl}};
    answer_text(head, &ob);
    free(out);
}

static void on_ws_push(const char *body)
{
    hw_blob b = {0};
    bool has = hw_get_blob(&b);
    const char *c = strstr(body, "\"channel_id\":");
    unsigned long ch = c ? strtoul(c + 13, NULL, 10) : 0;
    size_t n = has ? b.bytes.len : 0;
    char *text = calloc(1, n + 1);
    if (n)
        memcpy(text, b.bytes.ptr, n);
    char *line = malloc(strlen(body) + n + 8);
    sprintf(line, "%s | %s", body, text);
    record(line, strlen(line));
    free(line);
    if (strstr(body, "\"Text\"")) {
        if (strncmp(text, "echo ", 5) == 0) {
            push(ch, "Text", text + 5, n - 5);
        } else if (strcmp(text, "close-me") == 0) {
            char json[64];
            snprintf(json, sizeof json, "{\"WebSocketClose\":%lu}", ch);
            hw_address t = server();
            hw_request r = {0};
            r.body.ptr = (uint8_t *)json;
            r.body.len = strlen(json);
            hw_send_request(&t, &r, NULL, NULL);
            hw_address_fini(&t);
        } else if (strncmp(text, "flood ", 6) == 0) {
            char *end;
            long k = strtol(text + 6, &end, 10);
            long size = strtol(end, NULL, 10);
            if (size < 32 || size > (1 << 20))
                size = 32;
            char *m = malloc((size_t)size);
            for (long i = 0; m && i < k; i++) {
                size_t l = (size_t)snprintf(m, 32, "msg %ld", i);
                if (size > 32) {
                    memset(m + l, '.', (size_t)size - l);
                    l = (size_t)size;
                }
                push(ch, "Text", m, l);
            }
            free(m);
        }
    }
    free(text);
    if (has)
        hw_blob_fini(&b);
}

static void on_command(char *cmd)
{
    if (strncmp(cmd, "send ", 5) == 0) {
        to_server(cmd + 5, true, NULL);
    } else if (strncmp(cmd, "sendblob ", 9) == 0) {
        char *mime = cmd + 9;
        char *json = strchr(mime, ' ');
        if (json == NULL) {
            answer_text("bad", NULL);
            return;
        }
        *json++ = 0;
        hw_blob b = {0};
        if (!hw_get_blob(&b)) {
            answer_text("no blob", NULL);
            return;
        }
        free(b.mime);
        b.mime = strcmp(mime, "-") == 0 ? NULL : strdup(mime);
        to_server(json, true, &b);
        hw_blob_fini(&b);
    } else if (strncmp(cmd, "fire ", 5) == 0) {
        to_server(cmd + 5, false, NULL);
    } else if (strncmp(cmd, "firetext ", 9) == 0) {
        char *nl = strchr(cmd, '\n');
        const char *text = "";
        if (nl) {
            *nl = 0;
            text = nl + 1;
        }
        hw_blob b = {NULL, {(uint8_t *)text, strlen(text)}};
        hw_address t = server();
        hw_request r = {0};
        r.body.ptr = (uint8_t *)(cmd + 9);
        r.body.len = strlen(cmd + 9);
        hw_send_request(&t, &r, NULL, &b);
        hw_address_fini(&t);
        answer_text("fired", NULL);
    } else if (strcmp(cmd, "events") == 0) {
        answer_text(events ? events : "", NULL);
        free(events);
        events = NULL;
        events_len = 0;
    } else if (strcmp(cmd, "lastblob") == 0) {
        hw_response r = {0};
        r.body.ptr = last_blob.bytes.ptr;
        r.body.len = last_blob.bytes.len;
        hw_send_response(&r, NULL);
    } else {
        answer_text("unknown command", NULL);
    }
}

static void on_message(hw_receive_result *rp)
{
    hw_receive_result r = *rp;
    {
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            char *text = malloc(b->len + 1);
            memcpy(text, b->ptr, b->len);
            text[b->len] = 0;
            if (strcmp(r.source.process.process_name, "http-server") == 0) {
                if (strncmp(text, "{\"Http\":", 8) == 0) {
                    on_http(text, b->len);
                } else if (strncmp(text, "{\"WebSocketPush\":", 17) == 0) {
                    on_ws_push(text);
                } else {
                    record(text, b->len);
                }
            } else {
                on_command(text);
            }
            free(text);
        }
    }
}

void hw_init(const char *our)
{
    (void)our;
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        on_message(&r);
        hw_receive_result_fini(&r);
    }
}
