/* tproc: a test process on the raw ABI, driven by text commands in request
 * bodies, so black-box tests can make it exercise every message rule.
 *
 *   echo TEXT...                 answer TEXT
 *   whoami                       answer our address
 *   count                        answer how many requests this instance got
 *   ask TARGET SECS CTX BODY...  request with expects_response SECS and
 *                                context CTX; answer, once the reply or error
 *                                comes back, "reply from SRC ctx=CTX: BODY"
 *                                or "error KIND target=T ctx=CTX body=B"
 *   askmeta TARGET SECS CTX BODY...
 *                                as ask, with the metadata "caf\xe9" (Latin-1,
 *                                not UTF-8: the node passes it on as it is)
 *   metadata                     answer this request's metadata, or "none"
 *   askcap TARGET SECS CTX ISSUER PARAMS BODY...
 *                                as ask, with the capability {ISSUER,
 *                                PARAMS} attached (the node passes it on only
 *                                if we hold it or issued it)
 *   save-offered                 save the capabilities attached to this
 *                                request; answer "saved N"
 *   forward TARGET BODY...       pass BODY on with inherit (the target answers
 *                                our requester directly); no answer from us
 *   relay TARGET SECS CTX MS BODY...
 *                                block MS milliseconds, then pass BODY on with
 *                                inherit and expects_response SECS, context
 *                                CTX (its answer comes to us); no answer now
 *   relay-await TARGET SECS BODY...
 *                                send-and-await BODY with inherit; print
 *                                "relay-awaited: ANSWER" (no answer)
 *   fire TARGET BODY...          fire-and-forget request; answer "fired"
 *   repeat TARGET N BODY...      N fire-and-forget requests BODY; answer
 *                                "sent N"
 *   notes TARGET N EVERY         N fire-and-forget requests "note n-K",
 *                                K = 1..N, every EVERY-th (0: none) with our
 *                                own messaging capability attached; answer
 *                                "sent N"
 *   await TARGET SECS BODY...    send-and-await-response; answer the result
 *   pingpong TARGET N            N send-and-await round trips of "echo x";
 *                                answer "done N"
 *   flood TARGET N SECS BODY...  N requests with expects_response SECS at
 *                                once; answer "flood ok=X errors=Y busy=Z"
 *                                when all are resolved (busy: the node's
 *                                Busy answer for a full mailbox)
 *   sleep MS                     block MS milliseconds, then answer
 *   compute MS                   compute (no system call but the clock's)
 *                                for MS milliseconds, then answer
 *   note TEXT...                 print TEXT (for fire-and-forget checks)
 *   blob                         answer with the request's blob echoed as
 *                                the response blob, body "blob N bytes"
 *   blobnotes TARGET N SIZE      N fire-and-forget requests "blobnote n-K",
 *                                K = 1..N, each with a blob of SIZE bytes
 *                                made from K (blob_fill); answer "sent N"
 *   blobnote TEXT...             print "blobnote: TEXT BLOB" (BLOB: what
 *                                blob_line says of the current blob)
 *   blobask TARGET SECS CTX SIZE BODY...
 *                                as ask, with a blob of SIZE bytes made
 *                                from SIZE; an answer whose context begins
 *                                with "blob" has blob_line's words of its
 *                                blob (an error: of the request's) appended
 *                                to its line
 *   blobinherit                  answer "inherited" with inherit: the
 *                                response carries the last blob
 *   lastblob                     answer blob_line's words of the last blob
 *   slowblob MS SIZE             block MS milliseconds, then answer
 *                                "slowblob" with a blob of SIZE bytes made
 *                                from SIZE
 *   state-set TEXT / state-get / state-clear
 *   caps                         answer our capabilities, one per line
 *   drop-cap ISSUER PARAMS       drop the capability {ISSUER, PARAMS};
 *                                answer "dropped"
 *   spawn NAME PATH              spawn a child; answer its id or the error
 *   exit                         answer "bye" and return from hw_init
 *   scribble PEER WHAT [MS]      write WHAT on our lane to PEER with
 *                                hyperc-worker's test hook
 *                                (hcw_test_lane_scribble), then sleep MS
 *                                (our worker takes nothing meanwhile);
 *                                answer "scribbled WHAT", or why not
 *   laneids PEER                 answer "last_in X pending Y" (hex, 0:
 *                                none): the lane ids our worker saw on
 *                                our lane to PEER (hcw_test_lane_ids)
 *   lanehost PEER                answer "peer_host 1" or "peer_host 0": what
 *                                LANE_OPEN said of our lane to PEER
 *                                (hcw_test_lane_peer_host), or why not
 *
 * An answer to a request whose context begins with "print-" is printed
 * (level 0) as the reply or error line above, not sent as an answer.
 */
#include <hyperc/abi.h>

#ifndef __wasm__
#include <dlfcn.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long requests;
static const hw_request *current; /* the request being answered */
static int flood_left, flood_ok, flood_err, flood_busy;
static bool flooding;

static void answer_bytes(const void *p, size_t n, const hw_blob *blob)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)p;
    r.body.len = n;
    hw_send_response(&r, blob);
}

static void answer(const char *text)
{
    answer_bytes(text, strlen(text), NULL);
}

/* Parse TARGET: "node@p:k:pub"; "our@..." is allowed. */
static bool target_of(const char *s, hw_address *out)
{
    return hw_address_parse(s, out) == 0;
}

static void send_req_meta(const hw_address *t, const char *body, bool expects,
                          uint64_t secs, bool inherit, const char *ctx,
                          hw_capability *caps, size_t ncaps, char *metadata)
{
    hw_request r = {0};
    r.metadata = metadata;
    r.capabilities.ptr = caps;
    r.capabilities.len = ncaps;
    r.inherit = inherit;
    r.has_expects_response = expects;
    r.expects_response = secs;
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    hw_bytes c = {(uint8_t *)ctx, ctx ? strlen(ctx) : 0};
    hw_send_request(t, &r, ctx ? &c : NULL, NULL);
}

static void send_req_caps(const hw_address *t, const char *body, bool expects,
                          uint64_t secs, bool inherit, const char *ctx,
                          hw_capability *caps, size_t ncaps)
{
    send_req_meta(t, body, expects, secs, inherit, ctx, caps, ncaps, NULL);
}

/* SIZE bytes made from seed: byte i is (seed * 31 + i * 7) mod 256. */
static void blob_fill(hw_blob *b, unsigned long seed, size_t size)
{
    b->mime = "application/x-tproc";
    b->bytes.len = size;
    b->bytes.ptr = malloc(size ? size : 1);
    for (size_t i = 0; b->bytes.ptr && i < size; i++)
        b->bytes.ptr[i] = (uint8_t)(seed * 31 + i * 7);
}

/* "len=L fnv=H mime=M" of b (its FNV-1a 32-bit hash), or "none". */
static void blob_line(bool has, const hw_blob *b, char *out, size_t n)
{
    if (!has) {
        snprintf(out, n, "none");
        return;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < b->bytes.len; i++)
        h = (h ^ b->bytes.ptr[i]) * 16777619u;
    snprintf(out, n, "len=%zu fnv=%08x mime=%s", b->bytes.len, (unsigned)h,
             b->mime ? b->mime : "-");
}

/* blob_line of the current blob (hw_get_blob), or of the last
 * (hw_last_blob). */
static void current_blob_line(bool last, char *out, size_t n)
{
    hw_blob b;
    bool has = last ? hw_last_blob(&b) : hw_get_blob(&b);
    blob_line(has, &b, out, n);
    if (has)
        hw_blob_fini(&b);
}

static void send_req(const hw_address *t, const char *body, bool expects,
                     uint64_t secs, bool inherit, const char *ctx)
{
    send_req_caps(t, body, expects, secs, inherit, ctx, NULL, 0);
}

/* Split off the next space-separated word; returns the rest (or ""). */
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

static void fmt_body(const hw_bytes *b, char *out, size_t n)
{
    size_t k = b->len < n - 1 ? b->len : n - 1;
    memcpy(out, b->ptr, k);
    out[k] = 0;
}

/* Answer the request that prompts with text, or print it (level 0) when
 * the context it came with begins with "print-". */
static void answer_or_print(const char *ctx, const char *text)
{
    if (strncmp(ctx, "print-", 6) == 0)
        hw_print_to_terminal(0, text);
    else
        answer(text);
}

static void on_answer(hw_receive_result *r)
{
    char ctx[128] = "", body[512];
    if (r->is_err) {
        if (r->has_context)
            fmt_body(&r->context, ctx, sizeof ctx);
        if (strcmp(ctx, "flood") == 0) {
            flood_err++;
        } else {
            char tgt[256];
            hw_address_format(&r->error.target, tgt, sizeof tgt);
            fmt_body(&r->error.message.request.body, body, sizeof body);
            char out[1024], bl[128] = "";
            if (strncmp(ctx, "blob", 4) == 0) { /* (the request's blob) */
                bl[0] = ' ';
                blob_line(r->error.has_blob, &r->error.blob, bl + 1,
                          sizeof bl - 1);
            }
            snprintf(out, sizeof out, "error %s target=%s ctx=%s body=%s%s",
                     r->error.kind == HW_SEND_ERROR_TIMEOUT ? "timeout"
                                                            : "offline",
                     tgt, ctx, body, bl);
            answer_or_print(ctx, out);
        }
    } else {
        if (r->message.has_context)
            fmt_body(&r->message.context, ctx, sizeof ctx);
        if (strcmp(ctx, "flood") == 0) {
            static const char busy[] = "{\"HypercError\":{\"kind\":\"Busy\"";
            const hw_bytes *rb = &r->message.response.body;
            if (rb->len >= sizeof busy - 1 &&
                memcmp(rb->ptr, busy, sizeof busy - 1) == 0) {
                if (flood_busy++ == 0) {
                    char first[600];
                    fmt_body(rb, body, sizeof body);
                    snprintf(first, sizeof first, "first busy: %s", body);
                    hw_print_to_terminal(0, first);
                }
            } else
                flood_ok++;
        } else {
            char src[256];
            hw_address_format(&r->source, src, sizeof src);
            fmt_body(&r->message.response.body, body, sizeof body);
            char out[1024], bl[128] = "";
            if (strncmp(ctx, "blob", 4) == 0) { /* (the answer's blob) */
                bl[0] = ' ';
                current_blob_line(false, bl + 1, sizeof bl - 1);
            }
            snprintf(out, sizeof out, "reply from %s ctx=%s: %s%s", src, ctx,
                     body, bl);
            answer_or_print(ctx, out);
        }
    }
    if (strcmp(ctx, "flood") == 0 && flooding && --flood_left == 0) {
        /* The last answer restored the flood command as the prompting
         * message: answer it. */
        flooding = false;
        char out[128];
        snprintf(out, sizeof out, "flood ok=%d errors=%d busy=%d", flood_ok,
                 flood_err, flood_busy);
        answer(out);
    }
}

/* send-and-await-response of `body` to t, expecting a response within
 * secs (a decimal), with inherit or not: its rc, *ar as the ABI says. */
static int await_body(const hw_address *t, const char *secs, char *body,
                      bool inherit, hw_await_result *ar)
{
    hw_request r = {0};
    r.inherit = inherit;
    r.has_expects_response = true;
    r.expects_response = strtoull(secs, NULL, 10);
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    return hw_send_and_await_response(t, &r, NULL, ar);
}

/* Wait (at most 5 s) until hyperc-worker's replies ring has less room
 * than `than`: false if it did not. */
static bool room_under(uint32_t (*room)(void), uint32_t than)
{
    for (int i = 0; i < 5000; i++) {
        if (room() < than)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

/* Fill the worker's replies ring until a 15-byte frame (a FORGET) no
 * longer fits: "pad" requests to this process, which the node delivers
 * ahead while the guest handles the current message, each sized from the
 * first's DELIVER (its bytes beyond the body).  NULL, or why not. */
static const char *fill_replies(void)
{
    uint32_t (*room)(void) = NULL;
#ifndef __wasm__
    void *sym = dlsym(RTLD_DEFAULT, "hcw_test_replies_room");
    memcpy(&room, &sym, sizeof room);
#endif
    if (room == NULL)
        return "fill: no hook here (not in hyperc-worker)";
    static char body[8192];
    hw_address self;
    hw_our(&self); /* (a call with a reply: the worker reads the ring) */
    memcpy(body, "pad ", 4);
    memset(body + 4, 'p', sizeof body - 5);
    const char *why = NULL;
    uint32_t over = 0;
    for (bool first = true;; first = false) {
        uint32_t r = room();
        if (r < 15)
            break;
        uint32_t want = 1000; /* the first, measured */
        if (!first) {
            /* the last leaves 4 (5 with a shorter bin header) bytes; one
             * before it leaves enough for the last */
            want = r - over - 4;
            if (r < over + 4 + 64 || want > 8000)
                want = r < over + 2000 ? 0 : r - over - 1000;
            if (want > 8000)
                want = 8000;
        }
        if (want < 4) {
            why = "fill: no pad fits the room left";
            break;
        }
        body[want] = 0;
        send_req(&self, body, false, 0, false, NULL);
        body[want] = 'p';
        if (!room_under(room, r)) {
            why = "fill: a pad was not delivered";
            break;
        }
        if (first)
            over = r - room() - want;
    }
    hw_address_fini(&self);
    return why;
}

/* blobask TARGET SECS CTX SIZE BODY: a request with a blob of SIZE
 * bytes (blob_fill's, seeded with SIZE), expecting a response within SECS,
 * with the context CTX. */
static void blob_ask(char *rest)
{
    char *tg = word(rest, &rest);
    char *secs = word(rest, &rest);
    char *ctx = word(rest, &rest);
    size_t size = strtoul(word(rest, &rest), NULL, 10);
    hw_address t;
    if (!target_of(tg, &t)) {
        answer("bad target");
        return;
    }
    hw_request r = {0};
    r.has_expects_response = true;
    r.expects_response = strtoull(secs, NULL, 10);
    r.body.ptr = (uint8_t *)rest;
    r.body.len = strlen(rest);
    hw_bytes c = {(uint8_t *)ctx, strlen(ctx)};
    hw_blob b;
    blob_fill(&b, (unsigned long)size, size);
    hw_send_request(&t, &r, &c, &b);
    free(b.bytes.ptr);
    hw_address_fini(&t);
}

static bool on_request(char *cmdline, size_t len)
{
    requests++;
    char *rest;
    char *cmd = word(cmdline, &rest);
    char out[1024];
    hw_address t;
    if (strcmp(cmd, "echo") == 0) {
        answer(rest);
    } else if (strcmp(cmd, "whoami") == 0) {
        hw_address a;
        hw_our(&a);
        hw_address_format(&a, out, sizeof out);
        hw_address_fini(&a);
        answer(out);
    } else if (strcmp(cmd, "count") == 0) {
        snprintf(out, sizeof out, "%lu", requests);
        answer(out);
    } else if (strcmp(cmd, "ask") == 0 || strcmp(cmd, "askmeta") == 0) {
        /* askmeta: with the metadata "caf\xe9" (Latin-1, not UTF-8) */
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        char *ctx = word(rest, &rest);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        send_req_meta(&t, rest, true, strtoull(secs, NULL, 10), false, ctx,
                      NULL, 0, cmd[3] == 'm' ? "caf\xe9" : NULL);
        hw_address_fini(&t);
    } else if (strcmp(cmd, "metadata") == 0) {
        answer(current->metadata ? current->metadata : "none");
    } else if (strcmp(cmd, "askcap") == 0) {
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        char *ctx = word(rest, &rest);
        char *issuer = word(rest, &rest);
        char *params = word(rest, &rest);
        hw_capability cap = {.params = params};
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        if (!target_of(issuer, &cap.issuer)) {
            hw_address_fini(&t);
            answer("bad issuer");
            return true;
        }
        send_req_caps(&t, rest, true, strtoull(secs, NULL, 10), false, ctx,
                      &cap, 1);
        hw_address_fini(&cap.issuer);
        hw_address_fini(&t);
    } else if (strcmp(cmd, "save-offered") == 0) {
        const hw_capability_list *l = &current->capabilities;
        hw_save_capabilities(l->ptr, l->len);
        snprintf(out, sizeof out, "saved %zu", l->len);
        answer(out);
    } else if (strcmp(cmd, "forward") == 0) {
        char *tg = word(rest, &rest);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        send_req(&t, rest, false, 0, true, NULL);
        hw_address_fini(&t);
    } else if (strcmp(cmd, "relay") == 0 || strcmp(cmd, "fillrelay") == 0) {
        /* fillrelay: relay, with the worker's replies ring filled first
         * (by pads this process sends itself, which the node delivers
         * ahead and the worker does not read while the guest handles this)
         * until a 15-byte frame no longer fits */
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        char *ctx = word(rest, &rest);
        long ms = strtol(word(rest, &rest), NULL, 10);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        const char *why = cmd[0] == 'f' ? fill_replies() : NULL;
        if (why)
            hw_print_to_terminal(0, why);
        send_req(&t, rest, true, strtoull(secs, NULL, 10), true, ctx);
        hw_address_fini(&t);
    } else if (strcmp(cmd, "pad") == 0) {
        /* (fillrelay's: nothing to do) */
    } else if (strcmp(cmd, "relay-await") == 0) {
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        hw_await_result ar;
        if (await_body(&t, secs, rest, true, &ar) != 0) {
            hw_print_to_terminal(0, "relay-await refused");
        } else if (ar.is_err) {
            hw_print_to_terminal(0, ar.error.kind == HW_SEND_ERROR_TIMEOUT
                                        ? "relay-await timeout"
                                        : "relay-await offline");
            hw_await_result_fini(&ar);
        } else {
            char body[512];
            fmt_body(&ar.message.response.body, body, sizeof body);
            snprintf(out, sizeof out, "relay-awaited: %s", body);
            hw_print_to_terminal(0, out);
            hw_await_result_fini(&ar);
        }
        hw_address_fini(&t);
    } else if (strcmp(cmd, "fire") == 0) {
        char *tg = word(rest, &rest);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        send_req(&t, rest, false, 0, false, NULL);
        hw_address_fini(&t);
        answer("fired");
    } else if (strcmp(cmd, "repeat") == 0) {
        char *tg = word(rest, &rest);
        int n = atoi(word(rest, &rest));
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        for (int k = 0; k < n; k++)
            send_req(&t, rest, false, 0, false, NULL);
        hw_address_fini(&t);
        snprintf(out, sizeof out, "sent %d", n);
        answer(out);
    } else if (strcmp(cmd, "notes") == 0) {
        char *tg = word(rest, &rest);
        int n = atoi(word(rest, &rest));
        int every = atoi(word(rest, &rest));
        hw_capability cap = {0};
        hw_our(&cap.issuer);
        cap.params = "\"messaging\"";
        if (!target_of(tg, &t)) {
            hw_address_fini(&cap.issuer);
            answer("bad target");
            return true;
        }
        for (int k = 1; k <= n; k++) {
            char body[64];
            snprintf(body, sizeof body, "note n-%d", k);
            bool with = every > 0 && k % every == 0;
            send_req_caps(&t, body, false, 0, false, NULL, with ? &cap : NULL,
                          with ? 1 : 0);
        }
        hw_address_fini(&t);
        hw_address_fini(&cap.issuer);
        snprintf(out, sizeof out, "sent %d", n);
        answer(out);
    } else if (strcmp(cmd, "blobnotes") == 0) {
        char *tg = word(rest, &rest);
        int n = atoi(word(rest, &rest));
        size_t size = strtoul(word(rest, &rest), NULL, 10);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        for (int k = 1; k <= n; k++) {
            char body[64];
            snprintf(body, sizeof body, "blobnote n-%d", k);
            hw_request r = {0};
            r.body.ptr = (uint8_t *)body;
            r.body.len = strlen(body);
            hw_blob b;
            blob_fill(&b, (unsigned long)k, size);
            hw_send_request(&t, &r, NULL, &b);
            free(b.bytes.ptr);
        }
        hw_address_fini(&t);
        snprintf(out, sizeof out, "sent %d", n);
        answer(out);
    } else if (strcmp(cmd, "blobnote") == 0) {
        char bl[128];
        current_blob_line(false, bl, sizeof bl);
        snprintf(out, sizeof out, "blobnote: %s %s", rest, bl);
        hw_print_to_terminal(0, out);
    } else if (strcmp(cmd, "blobask") == 0) {
        blob_ask(rest);
    } else if (strcmp(cmd, "lateblobask") == 0) {
        /* lateblobask MS TARGET ...: after MS ms, the lane to TARGET's
         * state word set open again (hyperc-worker's test hook), then
         * blobask TARGET ...: a peer that ended meanwhile left the lane
         * closed and drained, and this request goes into it after the
         * drain, as one its worker wrote just before it saw the close.
         * MS+lresp: an answer (to an id nobody has) goes in before it, as
         * one to a request of the peer's answered just then */
        char *at;
        long ms = strtol(word(rest, &rest), &at, 10);
        bool lresp_first = strcmp(at, "+lresp") == 0;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        char peer[256];
        snprintf(peer, sizeof peer, "%s", rest);
        peer[strcspn(peer, " ")] = 0;
        int (*hook)(const char *, const char *) = NULL;
#ifndef __wasm__
        void *sym = dlsym(RTLD_DEFAULT, "hcw_test_lane_scribble");
        memcpy(&hook, &sym, sizeof hook);
#endif
        if (hook == NULL || hook(peer, "state-open") != 0 ||
            (lresp_first && hook(peer, "lresp") != 0)) {
            answer("no lane to reopen");
            return true;
        }
        blob_ask(rest);
    } else if (strcmp(cmd, "blobinherit") == 0) {
        hw_response r = {0};
        r.inherit = true;
        r.body.ptr = (uint8_t *)"inherited";
        r.body.len = 9;
        hw_send_response(&r, NULL);
    } else if (strcmp(cmd, "slowblob") == 0) {
        long ms = strtol(word(rest, &rest), NULL, 10);
        size_t size = strtoul(word(rest, &rest), NULL, 10);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        hw_blob b;
        blob_fill(&b, (unsigned long)size, size);
        answer_bytes("slowblob", 8, &b);
        free(b.bytes.ptr);
    } else if (strcmp(cmd, "lastblob") == 0) {
        current_blob_line(true, out, sizeof out);
        answer(out);
    } else if (strcmp(cmd, "await") == 0) {
        char *tg = word(rest, &rest);
        char *secs = word(rest, &rest);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        hw_await_result ar;
        if (await_body(&t, secs, rest, false, &ar) != 0) {
            answer("await refused");
        } else if (ar.is_err) {
            answer(ar.error.kind == HW_SEND_ERROR_TIMEOUT ? "await timeout"
                                                          : "await offline");
            hw_await_result_fini(&ar);
        } else {
            char body[512];
            fmt_body(&ar.message.response.body, body, sizeof body);
            snprintf(out, sizeof out, "awaited: %s", body);
            answer(out);
            hw_await_result_fini(&ar);
        }
        hw_address_fini(&t);
    } else if (strcmp(cmd, "pingpong") == 0) {
        char *tg = word(rest, &rest);
        long n = strtol(rest, NULL, 10);
        if (!target_of(tg, &t)) {
            answer("bad target");
            return true;
        }
        long done = 0;
        for (long i = 0; i < n; i++) {
            hw_request r = {0};
            r.has_expects_response = true;
            r.expects_response = 5;
            r.body.ptr = (uint8_t *)"echo x";
            r.body.len = 6;
            hw_await_result ar;
            if (hw_send_and_await_response(&t, &r, NULL, &ar) == 0) {
                if (!ar.is_err && ar.message.response.body.len == 1)
                    done++;
                hw_await_result_fini(&ar);
            }
        }
        hw_address_fini(&t);
        snprintf(out, sizeof out, "done %ld", done);
        answer(out);
    } else if (strcmp(cmd, "flood") == 0) {
        char *tg = word(rest, &rest);
        int n = atoi(word(rest, &rest));
        char *secs = word(rest, &rest);
        if (!target_of(tg, &t) || n <= 0) {
            answer("bad flood");
            return true;
        }
        flooding = true;
        flood_left = n;
        flood_ok = flood_err = flood_busy = 0;
        for (int i = 0; i < n; i++)
            send_req(&t, rest, true, strtoull(secs, NULL, 10), false, "flood");
        hw_address_fini(&t);
    } else if (strcmp(cmd, "sleep") == 0) {
        long ms = strtol(rest, NULL, 10);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        /* a negative time is EINVAL: no sleep, not a loop */
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        snprintf(out, sizeof out, "slept %ld", ms);
        answer(out);
    } else if (strcmp(cmd, "compute") == 0) {
        long ms = strtol(rest, NULL, 10);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        volatile unsigned long spins = 0;
        do {
            for (int i = 0; i < 10000; i++)
                spins = spins + 1;
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - t0.tv_sec) * 1000L +
                     (now.tv_nsec - t0.tv_nsec) / 1000000L <
                 ms);
        snprintf(out, sizeof out, "computed %ld", ms);
        answer(out);
    } else if (strcmp(cmd, "note") == 0) {
        snprintf(out, sizeof out, "note: %s", rest);
        hw_print_to_terminal(0, out);
    } else if (strcmp(cmd, "blob") == 0) {
        hw_blob b;
        if (hw_get_blob(&b)) {
            snprintf(out, sizeof out, "blob %zu bytes", b.bytes.len);
            answer_bytes(out, strlen(out), &b);
            hw_blob_fini(&b);
        } else {
            answer("no blob");
        }
    } else if (strcmp(cmd, "blobreply") == 0) {
        /* the answer carries a blob (which a lane does not) */
        hw_blob b = {.mime = "text/plain", .bytes = {(uint8_t *)"xyz", 3}};
        answer_bytes(rest, strlen(rest), &b);
    } else if (strcmp(cmd, "trap") == 0) {
        __builtin_trap(); /* crash while handling the request */
    } else if (strcmp(cmd, "state-set") == 0) {
        answer(hw_set_state((const uint8_t *)rest, strlen(rest)) ? "ok"
                                                                 : "fail");
    } else if (strcmp(cmd, "state-get") == 0) {
        hw_bytes b;
        if (hw_get_state(&b)) {
            answer_bytes(b.ptr, b.len, NULL);
            hw_bytes_fini(&b);
        } else {
            answer("(none)");
        }
    } else if (strcmp(cmd, "state-clear") == 0) {
        answer(hw_clear_state() ? "ok" : "fail");
    } else if (strcmp(cmd, "caps") == 0) {
        hw_capability_list l;
        hw_our_capabilities(&l);
        size_t o = 0;
        out[0] = 0;
        for (size_t i = 0; i < l.len && o < sizeof out; i++) {
            char is[256];
            hw_address_format(&l.ptr[i].issuer, is, sizeof is);
            o += (size_t)snprintf(out + o, sizeof out - o, "%s %s\n", is,
                                  l.ptr[i].params);
        }
        hw_capability_list_fini(&l);
        answer(out);
    } else if (strcmp(cmd, "drop-cap") == 0) {
        char *issuer = word(rest, &rest);
        char *params = word(rest, &rest);
        hw_capability c = {0};
        if (issuer && params && hw_address_parse(issuer, &c.issuer) == 0) {
            c.params = params;
            hw_drop_capabilities(&c, 1);
            hw_address_fini(&c.issuer);
            answer("dropped");
        } else {
            answer("drop-cap wants ISSUER PARAMS");
        }
    } else if (strcmp(cmd, "spawn") == 0) {
        char *name = word(rest, &rest);
        char *path = word(rest, &rest);
        hw_on_exit none = {.kind = HW_ON_EXIT_NONE};
        hw_process_id child;
        hw_spawn_error e =
            hw_spawn(name, path, &none, NULL, 0, NULL, NULL, 0, true, &child);
        if (e == HW_SPAWN_OK) {
            snprintf(out, sizeof out, "spawned %s:%s:%s", child.process_name,
                     child.package_name, child.publisher_node);
            hw_process_id_fini(&child);
        } else {
            snprintf(out, sizeof out, "spawn error %s",
                     e == HW_SPAWN_NAME_TAKEN ? "name-taken"
                                              : "no-file-at-path");
        }
        answer(out);
    } else if (strcmp(cmd, "exit") == 0) {
        answer("bye");
        return false;
    } else if (strcmp(cmd, "scribble") == 0) {
        char *peer = word(rest, &rest);
        char *what = word(rest, &rest);
        int (*hook)(const char *, const char *) = NULL;
#ifndef __wasm__
        /* (a function pointer from dlsym's object pointer) */
        void *sym = dlsym(RTLD_DEFAULT, "hcw_test_lane_scribble");
        memcpy(&hook, &sym, sizeof hook);
#endif
        int rc = hook ? hook(peer, what) : 1;
        long ms = strtol(rest, NULL, 10);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
        while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        if (rc == 0)
            snprintf(out, sizeof out, "scribbled %s", what);
        else
            snprintf(out, sizeof out, "scribble %s: %s", what,
                     rc == 1    ? "no hook here (not in hyperc-worker)"
                     : rc == -1 ? "no lane to that peer"
                     : rc == -2 ? "no such scribble"
                                : "no room in the lane");
        answer(out);
    } else if (strcmp(cmd, "laneids") == 0) {
        char *peer = word(rest, &rest);
        int (*hook)(const char *, uint64_t *, uint64_t *) = NULL;
#ifndef __wasm__
        void *sym = dlsym(RTLD_DEFAULT, "hcw_test_lane_ids");
        memcpy(&hook, &sym, sizeof hook);
#endif
        uint64_t last_in = 0, pending = 0;
        int rc = hook ? hook(peer, &last_in, &pending) : -2;
        if (rc == 0)
            snprintf(out, sizeof out, "last_in %llx pending %llx",
                     (unsigned long long)last_in, (unsigned long long)pending);
        else
            snprintf(out, sizeof out, "laneids: %s",
                     rc == -2 ? "no hook here (not in hyperc-worker)"
                              : "no lane to that peer");
        answer(out);
    } else if (strcmp(cmd, "lanehost") == 0) {
        char *peer = word(rest, &rest);
        int (*hook)(const char *) = NULL;
#ifndef __wasm__
        void *sym = dlsym(RTLD_DEFAULT, "hcw_test_lane_peer_host");
        memcpy(&hook, &sym, sizeof hook);
#endif
        int rc = hook ? hook(peer) : -2;
        if (rc >= 0)
            snprintf(out, sizeof out, "peer_host %d", rc);
        else
            snprintf(out, sizeof out, "lanehost: %s",
                     rc == -2 ? "no hook here (not in hyperc-worker)"
                              : "no lane to that peer");
        answer(out);
    } else if (strcmp(cmd, "spray") == 0) {
        /* spray TARGET N BODY: fire N requests, then end at once (what a
         * process wrote just before it ended must still be carried out) */
        char *tg = word(rest, &rest);
        long n = strtol(word(rest, &rest), NULL, 10);
        if (!target_of(tg, &t) || n <= 0) {
            answer("bad spray");
            return true;
        }
        for (long i = 0; i < n; i++)
            send_req(&t, rest, false, 0, false, NULL);
        hw_address_fini(&t);
        return false;
    } else {
        snprintf(out, sizeof out, "unknown command '%.64s' (%zu bytes)", cmd,
                 len);
        answer(out);
    }
    return true;
}

void hw_init(const char *our)
{
    char line[256];
    snprintf(line, sizeof line, "tproc %s up", our);
    hw_print_to_terminal(1, line);
    for (;;) {
        hw_receive_result r;
        hw_receive(&r);
        bool go_on = true;
        if (!r.is_err && r.message.kind == HW_MESSAGE_REQUEST) {
            const hw_bytes *b = &r.message.request.body;
            char *cmd = malloc(b->len + 1);
            memcpy(cmd, b->ptr, b->len);
            cmd[b->len] = 0;
            current = &r.message.request;
            go_on = on_request(cmd, b->len);
            current = NULL;
            free(cmd);
        } else {
            on_answer(&r);
        }
        hw_receive_result_fini(&r);
        if (!go_on)
            return;
    }
}
