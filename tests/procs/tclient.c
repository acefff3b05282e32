/* tclient: a raw-ABI test process that talks to runtime modules on
 * command, so black-box tests can drive http-client:distro:sys and
 * homepage:homepage:sys from a real process (capabilities included) and see
 * what those modules send back on their own.
 *
 *   to TARGET SECS BODY...     send BODY to TARGET with this request's blob
 *                              (if any); SECS > 0 waits that long for the
 *                              answer and answers with its body and blob,
 *                              or "error timeout"/"error offline"; SECS = 0
 *                              sends without expecting an answer: "sent"
 *   tocap TARGET SECS BODY...  the same, attaching every capability we hold
 *                              that TARGET issued
 *   many TARGET N SECS BODY... N requests at once; answers "many ok=A
 *                              err=B lost=C" once all are back (ok: the
 *                              answer starts with {"Ok", lost: send errors)
 *   events                     the requests received from other processes
 *                              since the last call, one per line:
 *                              "SOURCE BODY mime=MIME blob=TEXT" (mime and
 *                              blob "-" when there is none)
 */
#include <hyperc/abi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *events;
static size_t events_len;
static int many_left, many_ok, many_err, many_lost;

static void answer_blob(const char *text, const hw_blob *blob)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)text;
    r.body.len = strlen(text);
    hw_send_response(&r, blob);
}

static char *word(char *s, char **rest)
{
    while (*s == ' ')
        s++;
    char *e = strchr(s, ' ');
    if (e) {
        *e = 0;
        *rest = e + 1;
    } else {
        *rest = s + strlen(s);
    }
    return s;
}

static void add_event(const char *line)
{
    size_t n = strlen(line);
    char *ne = realloc(events, events_len + n + 2);
    if (ne == NULL)
        abort();
    events = ne;
    memcpy(events + events_len, line, n);
    events_len += n;
    events[events_len++] = '\n';
    events[events_len] = 0;
}

static void record(const hw_receive_result *r)
{
    char src[256];
    hw_address_format(&r->source, src, sizeof src);
    const hw_bytes *b = &r->message.request.body;
    hw_blob blob;
    bool has = hw_get_blob(&blob);
    size_t need = strlen(src) + b->len + (has ? blob.bytes.len : 0) +
                  (has && blob.mime ? strlen(blob.mime) : 0) + 64;
    char *line = malloc(need);
    snprintf(line, need, "%s %.*s mime=%s blob=%.*s", src, (int)b->len,
             (const char *)b->ptr, has && blob.mime ? blob.mime : "-",
             has ? (int)blob.bytes.len : 1,
             has ? (const char *)blob.bytes.ptr : "-");
    add_event(line);
    free(line);
    if (has)
        hw_blob_fini(&blob);
}

/* Send BODY to TARGET; caps: attach those TARGET issued. */
static void send_to(const char *target, uint64_t secs, const char *body,
                    bool caps, const char *ctx)
{
    hw_address t;
    if (hw_address_parse(target, &t) != 0) {
        answer_blob("bad target", NULL);
        return;
    }
    hw_request r = {0};
    r.has_expects_response = secs > 0;
    r.expects_response = secs;
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    hw_capability_list all = {0};
    if (caps) {
        hw_our_capabilities(&all);
        r.capabilities.ptr = calloc(all.len + 1, sizeof(hw_capability));
        for (size_t i = 0; i < all.len; i++) {
            if (strcmp(all.ptr[i].issuer.process.process_name,
                       t.process.process_name) == 0 &&
                strcmp(all.ptr[i].issuer.process.package_name,
                       t.process.package_name) == 0)
                r.capabilities.ptr[r.capabilities.len++] = all.ptr[i];
        }
    }
    hw_blob blob;
    bool has = hw_get_blob(&blob);
    hw_bytes c = {(uint8_t *)ctx, strlen(ctx)};
    hw_send_request(&t, &r, &c, has ? &blob : NULL);
    if (has)
        hw_blob_fini(&blob);
    free(r.capabilities.ptr);
    if (caps)
        hw_capability_list_fini(&all);
    hw_address_fini(&t);
    if (secs == 0)
        answer_blob("sent", NULL);
}

static void on_request(char *cmdline)
{
    char *rest;
    char *cmd = word(cmdline, &rest);
    if (strcmp(cmd, "to") == 0 || strcmp(cmd, "tocap") == 0) {
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        send_to(tg, strtoull(secs, NULL, 10), rest, cmd[2] == 'c', "to");
    } else if (strcmp(cmd, "many") == 0) {
        char *tg = word(rest, &rest);
        int n = atoi(word(rest, &rest));
        uint64_t secs = strtoull(word(rest, &rest), NULL, 10);
        many_left = n;
        many_ok = many_err = many_lost = 0;
        for (int i = 0; i < n; i++)
            send_to(tg, secs, rest, false, "many");
    } else if (strcmp(cmd, "events") == 0) {
        answer_blob(events ? events : "", NULL);
        free(events);
        events = NULL;
        events_len = 0;
    } else {
        answer_blob("unknown command", NULL);
    }
}

static void on_answer(hw_receive_result *r)
{
    const hw_bytes *ctx = r->is_err ? &r->context : &r->message.context;
    bool many = ctx->len == 4 && memcmp(ctx->ptr, "many", 4) == 0;
    if (many) {
        if (r->is_err)
            many_lost++;
        else if (r->message.response.body.len >= 5 &&
                 memcmp(r->message.response.body.ptr, "{\"Ok\"", 5) == 0)
            many_ok++;
        else
            many_err++;
        if (--many_left == 0) {
            char out[128];
            snprintf(out, sizeof out, "many ok=%d err=%d lost=%d", many_ok,
                     many_err, many_lost);
            answer_blob(out, NULL);
        }
        return;
    }
    if (r->is_err) {
        answer_blob(r->error.kind == HW_SEND_ERROR_TIMEOUT ? "error timeout"
                                                           : "error offline",
                    NULL);
        return;
    }
    const hw_bytes *b = &r->message.response.body;
    char *text = malloc(b->len + 1);
    memcpy(text, b->ptr, b->len);
    text[b->len] = 0;
    hw_blob blob;
    bool has = hw_get_blob(&blob);
    answer_blob(text, has ? &blob : NULL);
    if (has)
        hw_blob_fini(&blob);
    free(text);
}

void hw_init(const char *our)
{
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            if (strcmp(r.source.process.process_name, "terminal") == 0) {
                const hw_bytes *b = &r.message.request.body;
                char *cmd = malloc(b->len + 1);
                memcpy(cmd, b->ptr, b->len);
                cmd[b->len] = 0;
                on_request(cmd);
                free(cmd);
            } else {
                record(&r);
            }
        } else {
            on_answer(&r);
        }
        hw_receive_result_fini(&r);
    }
}
