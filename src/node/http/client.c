/* http-client:distro:sys: outgoing HTTP requests and WebSocket connections
 * for processes, with the message shapes of Hyperware's http-client
 * (HttpClientAction in, Result<HttpClientResponse, HttpClientError> out,
 * HttpClientRequest for what a WebSocket server sends), bodies in blobs.
 *
 * Threads.  The module's own thread parses and checks each request and
 * answers what needs no network.  HTTP requests go to a worker thread that
 * runs them all at once on a libcurl multi handle, so a slow server holds
 * nobody else's request.  Each WebSocket connection has a thread of its
 * own: libcurl connects it (TCP, TLS), http-parser reads the upgrade
 * answer, wslay does the framing.  Every one of these threads counts in the
 * node's thread census and ends within 200 ms of a shutdown. */
#include "../modules/modkit.h"
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <wslay/wslay.h>

#define HC_PID "http-client:distro:sys"
#define POLL_MS 200

/* ------------------------------------------------------------- parsing */

static bool get_u32(json_t *v, uint32_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > UINT32_MAX)
        return false;
    *out = (uint32_t)json_integer_value(v);
    return true;
}

/* A HashMap<String, String> as serde reads it. */
static int parse_headers(json_t *h, hcn_hc_request *r)
{
    if (!json_is_object(h))
        return -1;
    r->headers = hcn_xcalloc(json_object_size(h) + 1, sizeof *r->headers);
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v)
    {
        if (!json_is_string(v))
            return -1;
        r->headers[r->nheaders].name = hcn_xstrdup(k);
        r->headers[r->nheaders].value = hcn_xstrdup(json_string_value(v));
        r->nheaders++;
    }
    return 0;
}

static int parse_action(const char *name, json_t *a, hcn_hc_request *r)
{
    if (!json_is_object(a))
        return -1;
    if (strcmp(name, "Http") == 0) {
        json_t *method = json_object_get(a, "method");
        json_t *version = json_object_get(a, "version");
        json_t *url = json_object_get(a, "url");
        json_t *timeout = json_object_get(a, "timeout");
        r->kind = HCN_HC_HTTP;
        if (!json_is_string(method) || !json_is_string(url) ||
            !(version == NULL || json_is_null(version) ||
              json_is_string(version)))
            return -1;
        if (timeout && !json_is_null(timeout)) {
            if (!json_is_integer(timeout) || json_integer_value(timeout) < 0)
                return -1;
            r->has_timeout = true;
            r->timeout_s = (uint64_t)json_integer_value(timeout);
        }
        r->method = hcn_xstrdup(json_string_value(method));
        r->url = hcn_xstrdup(json_string_value(url));
        if (json_is_string(version))
            r->version = hcn_xstrdup(json_string_value(version));
        return parse_headers(json_object_get(a, "headers"), r);
    }
    if (!get_u32(json_object_get(a, "channel_id"), &r->channel_id))
        return -1;
    if (strcmp(name, "WebSocketOpen") == 0) {
        json_t *url = json_object_get(a, "url");
        r->kind = HCN_HC_WS_OPEN;
        if (!json_is_string(url))
            return -1;
        r->url = hcn_xstrdup(json_string_value(url));
        return parse_headers(json_object_get(a, "headers"), r);
    }
    if (strcmp(name, "WebSocketPush") == 0) {
        json_t *t = json_object_get(a, "message_type");
        r->kind = HCN_HC_WS_PUSH;
        int type = json_is_string(t) ? hcc_ws_type_parse(json_string_value(t),
                                                         json_string_length(t))
                                     : -1;
        if (type < 0)
            return -1;
        r->message_type = (hcc_ws_type)type;
        return 0;
    }
    if (strcmp(name, "WebSocketClose") == 0) {
        r->kind = HCN_HC_WS_CLOSE;
        return 0;
    }
    return -1;
}

int hcn_hc_parse(const void *body, size_t len, hcn_hc_request *out)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    int rc = -1;
    if (json_is_object(j) && json_object_size(j) == 1) {
        void *it = json_object_iter(j);
        rc = parse_action(json_object_iter_key(it), json_object_iter_value(it),
                          out);
    }
    json_decref(j);
    if (rc != 0)
        hcn_hc_request_fini(out);
    return rc;
}

void hcn_hc_request_fini(hcn_hc_request *r)
{
    free(r->method);
    free(r->version);
    free(r->url);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* RFC 9110 tchar: what a method or a header name is made of. */
static bool is_token(const char *s)
{
    if (*s == 0)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!(c > 32 && c < 127 && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL))
            return false;
    }
    return true;
}

/* A header value the http crate accepts: no control bytes but tab. */
static bool value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 32 && c != '\t') || c == 127)
            return false;
    }
    return true;
}

/* Whether bytes are UTF-8 as Rust's String::from_utf8 accepts it (no
 * overlong forms, no surrogates, nothing past U+10FFFF). */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (k >= n - i)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static char *err_json(const char *variant, const char *field, json_t *val)
{
    json_t *e = field ? json_pack("{s{s{so}}}", "Err", variant, field, val)
                      : json_pack("{s{so}}", "Err", variant, val);
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return s;
}

/* Parse a URL as libcurl will use it (schemes it does not speak too). */
static CURLU *url_parse(const char *url)
{
    CURLU *u = curl_url();
    if (u == NULL)
        abort();
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
        CURLUE_OK) {
        curl_url_cleanup(u);
        return NULL;
    }
    return u;
}

static const char *const versions[] = {"HTTP/0.9", "HTTP/1.0", "HTTP/1.1",
                                       "HTTP/2.0", "HTTP/3.0"};

char *hcn_hc_check_http(const hcn_hc_request *r)
{
    if (!is_token(r->method))
        return err_json("BadMethod", "method", json_string(r->method));
    CURLU *u = url_parse(r->url);
    if (u == NULL)
        return err_json("BadUrl", "url", json_string(r->url));
    curl_url_cleanup(u);
    if (r->version) {
        size_t i = 0;
        while (i < 5 && strcmp(versions[i], r->version) != 0)
            i++;
        if (i == 5)
            return err_json("BadVersion", "version", json_string(r->version));
    }
    return NULL;
}

char *hcn_hc_header_case(const char *name, size_t len)
{
    char *s = hcn_xstrndup(name, len);
    bool start = true;
    for (char *p = s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
        if (start && *p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        start = *p == '-';
    }
    return s;
}

/* -------------------------------------------------------------- module */

typedef struct http_job http_job;
typedef struct ws_conn ws_conn;

typedef struct hc_mod {
    hcn_proc *self; /* our process entry (the node's table keeps it) */
    hcn_node *node;
    char *addr; /* our address */
    uint64_t max_bytes;
    uint32_t timeout_ms;
    uint32_t max_ws;
    CURLM *multi;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    http_job *pending; /* jobs for the worker to start */
    http_job *running; /* the worker's: jobs in the multi handle */
    bool worker_started;
    pthread_t worker;
    atomic_bool stop;
    ws_conn *conns;  /* open connections by key */
    uint32_t nconns; /* connection threads alive */
} hc_mod;

/* Send a response envelope from the module (any thread). */
static void send_response(hc_mod *h, uint64_t id, const char *to,
                          const char *body, hcn_blob *blob)
{
    hcn_mod_respond(h->self, id, to, body, blob);
}

static bool stopping(hc_mod *h)
{
    return atomic_load(&h->stop) || atomic_load(&h->node->shutting_down);
}

/* ---------------------------------------------------------------- HTTP */

struct http_job {
    http_job *next, *prev; /* pending list, then the worker's running list */
    hc_mod *mod;
    CURL *easy;
    uint64_t id;
    char *reply_to;
    bool errors; /* errors are answered only when a response is expected */
    bool answer; /* so is a success, or when there is an rsvp */
    hcn_blob *body;
    struct curl_slist *hdrs;
    uint8_t *buf;
    size_t len, cap;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
};

static void job_free(http_job *j)
{
    if (j->easy)
        curl_easy_cleanup(j->easy);
    curl_slist_free_all(j->hdrs);
    hcn_blob_unref(j->body);
    free(j->reply_to);
    free(j->buf);
    free(j);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    http_job *j = arg;
    size_t k = size * n;
    uint64_t max = j->mod->max_bytes;
    if (max && j->len + k > max) {
        j->too_large = true;
        return 0;
    }
    if (j->len + k > j->cap) {
        size_t c = j->cap ? j->cap : 4096;
        while (c < j->len + k)
            c *= 2;
        uint8_t *nb = realloc(j->buf, c);
        if (nb == NULL)
            abort();
        j->buf = nb;
        j->cap = c;
    }
    memcpy(j->buf + j->len, data, k);
    j->len += k;
    return k;
}

/* A header value as the http crate's to_str gives it: visible ASCII and
 * tabs, else "". */
static const char *visible(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((*p < 32 && *p != '\t') || (unsigned char)*p > 126)
            return "";
    return v;
}

static void job_done(http_job *j, CURLcode rc)
{
    hc_mod *h = j->mod;
    if (rc == CURLE_OK) {
        long status = 0;
        curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
        json_t *hdrs = json_object();
        struct curl_header *prev = NULL, *hd;
        while ((hd = curl_easy_nextheader(j->easy, CURLH_HEADER, -1, prev))) {
            char *k = hcn_hc_header_case(hd->name, strlen(hd->name));
            json_object_set_new(hdrs, k, json_string(visible(hd->value)));
            free(k);
            prev = hd;
        }
        json_t *ok = json_pack("{s{s{sIso}}}", "Ok", "Http", "status",
                               (json_int_t)status, "headers", hdrs);
        char *s = json_dumps(ok, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(ok);
        hcn_blob *b = hcn_blob_new(NULL, j->buf, j->len);
        if (j->answer)
            send_response(h, j->id, j->reply_to, s, b);
        hcn_blob_unref(b);
        free(s);
        return;
    }
    char why[CURL_ERROR_SIZE + 64];
    if (j->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        snprintf(why, sizeof why,
                 "response body is larger than the limit of %llu bytes",
                 (unsigned long long)h->max_bytes);
    else
        snprintf(why, sizeof why, "%s",
                 j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
    hcn_mod_log(h->self, 2, "http-client: request failed: %s", why);
    if (j->errors) {
        char *e = err_json("ExecuteRequestFailed", NULL, json_string(why));
        send_response(h, j->id, j->reply_to, e, NULL);
        free(e);
    }
}

static void *worker_main(void *arg)
{
    hc_mod *h = arg;
    int running = 0;
    while (!stopping(h)) {
        pthread_mutex_lock(&h->mu);
        http_job *todo = h->pending;
        h->pending = NULL;
        pthread_mutex_unlock(&h->mu);
        while (todo) {
            http_job *j = todo;
            todo = j->next;
            j->prev = NULL;
            j->next = h->running;
            if (h->running)
                h->running->prev = j;
            h->running = j;
            curl_multi_add_handle(h->multi, j->easy);
        }
        curl_multi_perform(h->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(h->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            http_job *j;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode rc = msg->data.result;
            curl_multi_remove_handle(h->multi, j->easy);
            if (j->prev)
                j->prev->next = j->next;
            else
                h->running = j->next;
            if (j->next)
                j->next->prev = j->prev;
            job_done(j, rc);
            job_free(j);
        }
        curl_multi_poll(h->multi, NULL, 0, POLL_MS, NULL);
    }
    /* Whatever is still running is dropped: the node is stopping. */
    while (h->running) {
        http_job *j = h->running;
        h->running = j->next;
        curl_multi_remove_handle(h->multi, j->easy);
        job_free(j);
    }
    hcn_node_thread_end(h->node);
    return NULL;
}

/* Answer an Http request's error now (only if a response is expected). */
static void http_error(hc_mod *h, hcn_msg *m, const char *body)
{
    HCN_MOD_REPLY(h->self, m, .when = HCN_MOD_IF_EXPECTS, .body = body);
}

static void start_http(hc_mod *h, hcn_msg *m, hcn_hc_request *r)
{
    char *bad = hcn_hc_check_http(r);
    if (bad) {
        http_error(h, m, bad);
        free(bad);
        return;
    }
    http_job *j = hcn_xcalloc(1, sizeof *j);
    j->mod = h;
    j->id = m->id;
    j->reply_to = hcn_xstrdup(m->rsvp ? m->rsvp : m->source);
    j->errors = m->has_expects;
    j->answer = m->has_expects || m->rsvp;
    j->easy = curl_easy_init();
    if (j->easy == NULL)
        abort();
    CURL *e = j->easy;
    CURLU *u = url_parse(r->url);
    char *url = NULL;
    curl_url_get(u, CURLUPART_URL, &url, 0);
    curl_url_cleanup(u);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_free(url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    if (h->max_bytes)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)h->max_bytes);
    /* The time it may take: the node's limit, the request's own
     * "timeout", and one second past what the requester waits
     * (expects_response: the requester then sees its own timeout first, as
     * in Hyperware, and the transfer does not outlive it); the shortest
     * wins. */
    uint64_t ms = h->timeout_ms;
    if (m->has_expects && m->expects < UINT64_MAX / 1000 - 1 &&
        (ms == 0 || m->expects * 1000 + 1000 < ms))
        ms = m->expects * 1000 + 1000;
    if (r->has_timeout && r->timeout_s < UINT64_MAX / 1000 &&
        (ms == 0 || r->timeout_s * 1000 < ms))
        ms = r->timeout_s * 1000;
    if (ms)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)(ms > LONG_MAX ? LONG_MAX : ms));
    if (r->version) {
        long v = CURL_HTTP_VERSION_1_1;
        if (strcmp(r->version, "HTTP/0.9") == 0) {
            curl_easy_setopt(e, CURLOPT_HTTP09_ALLOWED, 1L);
            v = CURL_HTTP_VERSION_1_0;
        } else if (strcmp(r->version, "HTTP/1.0") == 0) {
            v = CURL_HTTP_VERSION_1_0;
        } else if (strcmp(r->version, "HTTP/2.0") == 0) {
            v = CURL_HTTP_VERSION_2_0;
        } else if (strcmp(r->version, "HTTP/3.0") == 0) {
            v = CURL_HTTP_VERSION_3;
        }
        if (curl_easy_setopt(e, CURLOPT_HTTP_VERSION, v) != CURLE_OK) {
            char *err = err_json("BuildRequestFailed", NULL,
                                 json_string("this node cannot speak HTTP/3"));
            http_error(h, m, err);
            free(err);
            job_free(j);
            return;
        }
    }
    /* Headers the http crate would refuse are left out, as Hyperware
     * does; Expect is off unless asked for (reqwest sends none). */
    bool expect = false;
    for (size_t i = 0; i < r->nheaders; i++) {
        const hcn_hc_header *hd = &r->headers[i];
        if (!is_token(hd->name) || !value_ok(hd->value))
            continue;
        expect = expect || strcasecmp(hd->name, "expect") == 0;
        char *line = hd->value[0] ? hcn_xasprintf("%s: %s", hd->name, hd->value)
                                  : hcn_xasprintf("%s;", hd->name);
        struct curl_slist *l = curl_slist_append(j->hdrs, line);
        free(line);
        if (l == NULL)
            abort();
        j->hdrs = l;
    }
    if (!expect)
        j->hdrs = curl_slist_append(j->hdrs, "Expect:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->hdrs);
    if (strcmp(r->method, "GET") == 0 && (m->blob == NULL || !m->blob->len)) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        if (m->blob) {
            j->body = hcn_blob_ref(m->blob);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                             (curl_off_t)m->blob->len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)m->blob->bytes);
        } else if (strcmp(r->method, "POST") == 0 ||
                   strcmp(r->method, "PUT") == 0 ||
                   strcmp(r->method, "PATCH") == 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        }
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    hcn_mod_log(h->self, 2, "http-client: %s request to %s", r->method, r->url);
    pthread_mutex_lock(&h->mu);
    j->next = h->pending;
    h->pending = j;
    bool start = !h->worker_started;
    if (start) {
        h->worker_started = true;
        hcn_node_thread_begin(h->node);
        if (pthread_create(&h->worker, NULL, worker_main, h) != 0)
            abort();
    }
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
}

/* ----------------------------------------------------------- WebSocket */

#define WS_HANDSHAKE_MAX 16384

typedef struct ws_frame {
    struct ws_frame *next;
    hcc_ws_type type;
    hcn_blob *blob;
} ws_frame;

struct ws_conn {
    UT_hash_handle hh;
    char *key; /* "<owner process id>#<channel id>" */
    hc_mod *mod;
    char *owner;      /* address the connection reports to */
    char *url;        /* as given (for errors) */
    CURLU *u;         /* parsed */
    uint64_t open_id; /* the WebSocketOpen request: answers and pushes */
    uint32_t channel;
    hcn_hc_header *headers;
    size_t nheaders;
    int evfd;
    /* guarded by mod->mu */
    ws_frame *out_head, *out_tail;
    size_t out_bytes;
    bool close_req; /* the process asked to close */
    bool replaced;  /* a newer connection took the same channel */
    bool overflow;  /* too much queued: drop the connection */
    /* the connection's thread only */
    CURL *easy;
    wslay_event_context_ptr ctx;
    uint8_t *inbuf; /* bytes read past the upgrade answer */
    size_t inlen, inoff;
    bool eof;
};

static void ws_wake(ws_conn *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->evfd, &one, sizeof one);
    (void)w;
}

static void ws_conn_free(ws_conn *c)
{
    while (c->out_head) {
        ws_frame *f = c->out_head;
        c->out_head = f->next;
        hcn_blob_unref(f->blob);
        free(f);
    }
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    if (c->easy)
        curl_easy_cleanup(c->easy);
    curl_url_cleanup(c->u);
    for (size_t i = 0; i < c->nheaders; i++) {
        free(c->headers[i].name);
        free(c->headers[i].value);
    }
    free(c->headers);
    if (c->evfd >= 0)
        close(c->evfd);
    free(c->inbuf);
    free(c->key);
    free(c->owner);
    free(c->url);
    free(c);
}

/* Wait until fd is ready for `events` or POLL_MS pass; false on error. */
static bool wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, POLL_MS) >= 0 || errno == EINTR;
}

/* Send all of buf over the connection before the deadline. */
static bool ws_send_all(ws_conn *c, int fd, const char *buf, size_t len,
                        int64_t deadline)
{
    while (len > 0) {
        size_t n = 0;
        CURLcode rc = curl_easy_send(c->easy, buf, len, &n);
        if (rc == CURLE_AGAIN) {
            if (hcn_now_ns() > deadline || stopping(c->mod) ||
                !wait_fd(fd, POLLOUT))
                return false;
            continue;
        }
        if (rc != CURLE_OK)
            return false;
        buf += n;
        len -= n;
    }
    return true;
}

typedef hcn_hc_upgrade hs_state;

static void hs_end_value(hs_state *s)
{
    if (!s->in_value)
        return;
    s->value[s->vlen] = 0;
    if (s->which == 1 && strcasecmp(s->value, "websocket") == 0)
        s->upgrade_ok = true;
    else if (s->which == 2 && s->accept == NULL)
        s->accept = hcn_xstrdup(s->value);
    s->in_value = false;
    s->flen = s->vlen = 0;
}

static int hs_field(http_parser *p, const char *at, size_t len)
{
    hs_state *s = p->data;
    hs_end_value(s);
    if (s->flen + len < sizeof s->field) {
        memcpy(s->field + s->flen, at, len);
        s->flen += len;
    } else {
        s->flen = sizeof s->field - 1; /* too long: none we care about */
    }
    return 0;
}

static int hs_value(http_parser *p, const char *at, size_t len)
{
    hs_state *s = p->data;
    if (!s->in_value) {
        s->field[s->flen] = 0;
        s->which = strcasecmp(s->field, "upgrade") == 0                ? 1
                   : strcasecmp(s->field, "sec-websocket-accept") == 0 ? 2
                                                                       : 0;
        s->in_value = true;
        s->vlen = 0;
    }
    size_t k = len < sizeof s->value - 1 - s->vlen
                   ? len
                   : sizeof s->value - 1 - s->vlen;
    memcpy(s->value + s->vlen, at, k);
    s->vlen += k;
    return 0;
}

static int hs_headers_done(http_parser *p)
{
    hs_state *s = p->data;
    hs_end_value(s);
    s->done = true;
    return 1; /* no body */
}

void hcn_hc_upgrade_init(hcn_hc_upgrade *u)
{
    memset(u, 0, sizeof *u);
    u->st.on_header_field = hs_field;
    u->st.on_header_value = hs_value;
    u->st.on_headers_complete = hs_headers_done;
    http_parser_init(&u->p, HTTP_RESPONSE);
    u->p.data = u;
}

int hcn_hc_upgrade_feed(hcn_hc_upgrade *u, const char *buf, size_t n,
                        size_t *used)
{
    *used = 0;
    if (u->done)
        return HCN_HC_UPGRADE_DONE;
    u->total += n;
    *used = http_parser_execute(&u->p, &u->st, buf, n);
    if (u->done)
        return HCN_HC_UPGRADE_DONE;
    if (HTTP_PARSER_ERRNO(&u->p) != HPE_OK || u->total > WS_HANDSHAKE_MAX)
        return HCN_HC_UPGRADE_BAD;
    return HCN_HC_UPGRADE_MORE;
}

bool hcn_hc_upgrade_accepted(const hcn_hc_upgrade *u, const char *want)
{
    return u->done && u->p.status_code == 101 && u->upgrade_ok &&
           u->accept != NULL && strcmp(u->accept, want) == 0;
}

void hcn_hc_upgrade_fini(hcn_hc_upgrade *u)
{
    free(u->accept);
    u->accept = NULL;
}

/* Connect (libcurl: TCP, TLS) and upgrade; true when open. */
static bool ws_connect(ws_conn *c, int64_t deadline)
{
    hc_mod *h = c->mod;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL,
         *query = NULL;
    curl_url_get(c->u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(c->u, CURLUPART_HOST, &host, 0);
    curl_url_get(c->u, CURLUPART_PORT, &port, 0);
    curl_url_get(c->u, CURLUPART_PATH, &path, 0);
    curl_url_get(c->u, CURLUPART_QUERY, &query, 0);
    bool tls = scheme && strcasecmp(scheme, "wss") == 0;
    bool ok = false;
    char *req = NULL;
    CURLU *cu = curl_url_dup(c->u);
    curl_url_set(cu, CURLUPART_SCHEME, tls ? "https" : "http", 0);
    c->easy = curl_easy_init();
    if (c->easy == NULL)
        abort();
    curl_easy_setopt(c->easy, CURLOPT_CURLU, cu);
    curl_easy_setopt(c->easy, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->easy, CURLOPT_PROXY, "");
    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    int64_t left_ms = (deadline - hcn_now_ns()) / 1000000;
    curl_easy_setopt(c->easy, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(left_ms > 0 ? left_ms : 1));
    CURLcode rc = curl_easy_perform(c->easy);
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (rc != CURLE_OK) {
        hcn_mod_log(h->self, 1,
                    "http-client: WebSocket connection to %s failed: %s",
                    c->url, curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd);
    /* The upgrade request. */
    unsigned char nonce[16];
    char key[32], want[HCN_WS_ACCEPT_LEN + 1];
    if (RAND_bytes(nonce, sizeof nonce) != 1)
        abort();
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    hcn_ws_accept(key, want);
    bool user_host = false;
    size_t cap =
        512 + strlen(host) + strlen(path) + (query ? strlen(query) : 0);
    for (size_t i = 0; i < c->nheaders; i++) {
        cap += strlen(c->headers[i].name) + strlen(c->headers[i].value) + 4;
        user_host = user_host || strcasecmp(c->headers[i].name, "host") == 0;
    }
    req = hcn_xmalloc(cap);
    int o = snprintf(req, cap, "GET %s%s%s HTTP/1.1\r\n", path,
                     query ? "?" : "", query ? query : "");
    if (!user_host)
        o += snprintf(req + o, cap - (size_t)o, "Host: %s%s%s\r\n", host,
                      port ? ":" : "", port ? port : "");
    o += snprintf(req + o, cap - (size_t)o,
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                  key);
    for (size_t i = 0; i < c->nheaders; i++) {
        const hcn_hc_header *hd = &c->headers[i];
        if (!is_token(hd->name) || !value_ok(hd->value) ||
            strcasecmp(hd->name, "upgrade") == 0 ||
            strcasecmp(hd->name, "connection") == 0 ||
            strncasecmp(hd->name, "sec-websocket-key", 17) == 0 ||
            strcasecmp(hd->name, "sec-websocket-version") == 0)
            continue;
        o += snprintf(req + o, cap - (size_t)o, "%s: %s\r\n", hd->name,
                      hd->value);
    }
    o += snprintf(req + o, cap - (size_t)o, "\r\n");
    if (!ws_send_all(c, fd, req, (size_t)o, deadline)) {
        hcn_mod_log(h->self, 1,
                    "http-client: WebSocket %s: cannot send the upgrade",
                    c->url);
        goto out;
    }
    /* Its answer, read with http-parser until the end of the headers. */
    hcn_hc_upgrade hs;
    hcn_hc_upgrade_init(&hs);
    char buf[4096];
    while (!hs.done) {
        size_t n = 0;
        rc = curl_easy_recv(c->easy, buf, sizeof buf, &n);
        if (rc == CURLE_AGAIN) {
            if (hcn_now_ns() > deadline || stopping(h) || !wait_fd(fd, POLLIN))
                break;
            continue;
        }
        if (rc != CURLE_OK || n == 0)
            break;
        size_t used;
        int st = hcn_hc_upgrade_feed(&hs, buf, n, &used);
        if (st == HCN_HC_UPGRADE_DONE) {
            if (used < n) {
                c->inbuf = hcn_xmalloc(n - used);
                memcpy(c->inbuf, buf + used, n - used);
                c->inlen = n - used;
            }
        } else if (st == HCN_HC_UPGRADE_BAD) {
            break;
        }
    }
    if (!hs.done) {
        hcn_mod_log(h->self, 1, "http-client: WebSocket %s: no upgrade answer",
                    c->url);
    } else if (!hcn_hc_upgrade_accepted(&hs, want)) {
        hcn_mod_log(h->self, 1,
                    "http-client: WebSocket %s: the server refused the upgrade "
                    "(status %u)",
                    c->url, hs.p.status_code);
    } else {
        ok = true;
    }
    hcn_hc_upgrade_fini(&hs);
out:
    free(req);
    curl_url_cleanup(cu);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    return ok;
}

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *user)
{
    ws_conn *c = user;
    if (c->inoff < c->inlen) {
        size_t k = c->inlen - c->inoff < len ? c->inlen - c->inoff : len;
        memcpy(buf, c->inbuf + c->inoff, k);
        c->inoff += k;
        return (ssize_t)k;
    }
    if (c->easy == NULL) { /* no socket (hcn_hc_ws_probe): the end */
        c->eof = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    size_t n = 0;
    CURLcode rc = curl_easy_recv(c->easy, buf, len, &n);
    if (rc == CURLE_AGAIN) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (rc != CURLE_OK || n == 0) {
        c->eof = true;
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    ws_conn *c = user;
    if (c->easy == NULL) /* no socket (hcn_hc_ws_probe): sent nowhere */
        return (ssize_t)len;
    size_t n = 0;
    CURLcode rc = curl_easy_send(c->easy, data, len, &n);
    if (rc == CURLE_AGAIN) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (rc != CURLE_OK) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)n;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         void *user)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

/* Deliver an HttpClientRequest to the process that opened c. */
static void ws_deliver(ws_conn *c, const char *variant, const char *type,
                       const char *mime, const uint8_t *bytes, size_t len)
{
    hc_mod *h = c->mod;
    char body[160];
    if (type)
        snprintf(body, sizeof body,
                 "{\"%s\":{\"channel_id\":%u,\"message_type\":\"%s\"}}",
                 variant, c->channel, type);
    else
        snprintf(body, sizeof body, "{\"%s\":{\"channel_id\":%u}}", variant,
                 c->channel);
    hcn_blob *b = mime ? hcn_blob_new(mime, bytes, len) : NULL;
    hcn_msg *m = HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = c->open_id,
                             .source = h->addr, .target = c->owner,
                             .body = body, .body_len = strlen(body), .blob = b);
    hcn_blob_unref(b);
    hcn_route(h->node, m);
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *a, void *user)
{
    ws_conn *c = user;
    if (stopping(c->mod))
        return;
    switch (a->opcode) {
    case WSLAY_TEXT_FRAME:
        ws_deliver(c, "WebSocketPush", "Text", "text/plain", a->msg,
                   a->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        ws_deliver(c, "WebSocketPush", "Binary", "application/octet-stream",
                   a->msg, a->msg_length);
        break;
    case WSLAY_PING:
        ws_deliver(c, "WebSocketPush", "Ping", NULL, NULL, 0);
        break;
    case WSLAY_PONG:
        ws_deliver(c, "WebSocketPush", "Pong", NULL, NULL, 0);
        break;
    default: break; /* a close: reported when the connection ends */
    }
}

/* Hand what the process queued to wslay. */
static void ws_take_queue(ws_conn *c, bool *close_req, bool *drop)
{
    hc_mod *h = c->mod;
    pthread_mutex_lock(&h->mu);
    ws_frame *f = c->out_head;
    c->out_head = c->out_tail = NULL;
    c->out_bytes = 0;
    *close_req = c->close_req;
    *drop = c->replaced || c->overflow;
    pthread_mutex_unlock(&h->mu);
    while (f) {
        ws_frame *next = f->next;
        if (f->type == HCC_WS_CLOSE) {
            wslay_event_queue_close(c->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
        } else {
            /* Ping and Pong go out empty, as Hyperware sends them. */
            bool data = f->type == HCC_WS_TEXT || f->type == HCC_WS_BINARY;
            struct wslay_event_msg msg = {
                .opcode = (uint8_t)hcc_ws_type_opcode(f->type),
                .msg = data && f->blob ? f->blob->bytes : NULL,
                .msg_length = data && f->blob ? f->blob->len : 0,
            };
            wslay_event_queue_msg(c->ctx, &msg);
        }
        hcn_blob_unref(f->blob);
        free(f);
        f = next;
    }
}

/* Run an open connection until it ends. */
static void ws_run(ws_conn *c, int fd)
{
    hc_mod *h = c->mod;
    int64_t close_deadline = -1;
    for (;;) {
        bool close_req, drop;
        ws_take_queue(c, &close_req, &drop);
        if (drop || stopping(h)) {
            /* One try at telling the server, without waiting. */
            wslay_event_queue_close(c->ctx,
                                    drop ? WSLAY_CODE_NORMAL_CLOSURE
                                         : WSLAY_CODE_GOING_AWAY,
                                    NULL, 0);
            wslay_event_send(c->ctx);
            return;
        }
        if (close_req && close_deadline < 0) {
            wslay_event_queue_close(c->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
            close_deadline = hcn_now_ns() + 2000000000LL;
        }
        if (close_deadline >= 0 && hcn_now_ns() > close_deadline)
            return;
        if (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx) != 0)
            return;
        /* Data left in the connection from the upgrade read, or buffered
         * by TLS, is read without waiting for the socket. */
        if (c->inoff < c->inlen) {
            if (wslay_event_recv(c->ctx) != 0)
                return;
            continue;
        }
        bool rd = wslay_event_want_read(c->ctx);
        bool wr = wslay_event_want_write(c->ctx);
        if (!rd && !wr)
            return; /* closed both ways */
        struct pollfd p[2] = {
            {.fd = fd,
             .events = (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0))},
            {.fd = c->evfd, .events = POLLIN},
        };
        int n = poll(p, 2, POLL_MS);
        if (n < 0 && errno != EINTR)
            return;
        if (p[1].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(c->evfd, &v, sizeof v);
            (void)r;
        }
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) {
            if (wslay_event_recv(c->ctx) != 0 || c->eof)
                return;
        }
    }
}

/* c's wslay client context, on the connection's callbacks. */
static void ws_ctx_init(ws_conn *c)
{
    struct wslay_event_callbacks cb = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .genmask_callback = ws_genmask_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (wslay_event_context_client_init(&c->ctx, &cb, c) != 0)
        abort();
    wslay_event_config_set_max_recv_msg_length(
        c->ctx, c->mod->max_bytes ? c->mod->max_bytes : (1ull << 31) - 1);
}

static void *ws_main(void *arg)
{
    ws_conn *c = arg;
    hc_mod *h = c->mod;
    int64_t deadline =
        hcn_now_ns() + (int64_t)(h->timeout_ms && h->timeout_ms < 30000
                                     ? h->timeout_ms
                                     : 30000) *
                           1000000;
    bool open = ws_connect(c, deadline);
    bool report = false;
    if (open) {
        ws_ctx_init(c);
        /* Register it (a connection with the same channel is replaced),
         * then acknowledge. */
        pthread_mutex_lock(&h->mu);
        ws_conn *old;
        HASH_FIND_STR(h->conns, c->key, old);
        if (old) {
            HASH_DEL(h->conns, old);
            old->replaced = true;
            ws_wake(old);
        }
        HASH_ADD_KEYPTR(hh, h->conns, c->key, strlen(c->key), c);
        pthread_mutex_unlock(&h->mu);
        if (!stopping(h))
            send_response(h, c->open_id, c->owner, "{\"Ok\":\"WebSocketAck\"}",
                          NULL);
        curl_socket_t fd = CURL_SOCKET_BAD;
        curl_easy_getinfo(c->easy, CURLINFO_ACTIVESOCKET, &fd);
        ws_run(c, fd);
        pthread_mutex_lock(&h->mu);
        ws_conn *cur;
        HASH_FIND_STR(h->conns, c->key, cur);
        if (cur == c)
            HASH_DEL(h->conns, c);
        report = !c->replaced;
        pthread_mutex_unlock(&h->mu);
    } else if (!stopping(h)) {
        char *url = NULL;
        curl_url_get(c->u, CURLUPART_URL, &url, CURLU_NON_SUPPORT_SCHEME);
        char *e =
            err_json("WsOpenFailed", "url", json_string(url ? url : c->url));
        curl_free(url);
        send_response(h, c->open_id, c->owner, e, NULL);
        free(e);
    }
    if (report && !stopping(h))
        ws_deliver(c, "WebSocketClose", NULL, NULL, NULL, 0);
    hcn_node *node = h->node;
    ws_conn_free(c);
    pthread_mutex_lock(&h->mu);
    h->nconns--;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_broadcast(&h->cv);
    hcn_node_thread_end(node);
    return NULL;
}

static void ws_answer(hc_mod *h, hcn_msg *m, const char *body)
{
    HCN_MOD_REPLY(h->self, m, .when = HCN_MOD_ALWAYS, .body = body);
}

static char *ws_key(const char *owner, uint32_t channel)
{
    return hcn_xasprintf("%s#%u", hcn_addr_pid(owner), channel);
}

static void ws_open(hc_mod *h, hcn_msg *m, hcn_hc_request *r)
{
    const char *owner = m->rsvp ? m->rsvp : m->source;
    CURLU *u = url_parse(r->url);
    if (u == NULL) {
        char *e = err_json("BadUrl", "url", json_string(r->url));
        ws_answer(h, m, e);
        free(e);
        return;
    }
    char *scheme = NULL;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    bool ws = scheme &&
              (strcasecmp(scheme, "ws") == 0 || strcasecmp(scheme, "wss") == 0);
    curl_free(scheme);
    pthread_mutex_lock(&h->mu);
    bool full = h->nconns >= h->max_ws;
    if (ws && !full)
        h->nconns++;
    pthread_mutex_unlock(&h->mu);
    if (!ws || full) {
        if (full)
            hcn_mod_log(h->self, 0,
                        "http-client: WebSocket to %s refused: %u connections "
                        "open (--http-client-max-ws)",
                        r->url, h->max_ws);
        char *url = NULL;
        curl_url_get(u, CURLUPART_URL, &url, CURLU_NON_SUPPORT_SCHEME);
        char *e = err_json("WsOpenFailed", "url", json_string(url));
        curl_free(url);
        curl_url_cleanup(u);
        ws_answer(h, m, e);
        free(e);
        return;
    }
    ws_conn *c = hcn_xcalloc(1, sizeof *c);
    c->mod = h;
    c->u = u;
    c->url = hcn_xstrdup(r->url);
    c->owner = hcn_xstrdup(owner);
    c->key = ws_key(owner, r->channel_id);
    c->open_id = m->id;
    c->channel = r->channel_id;
    c->headers = r->headers;
    c->nheaders = r->nheaders;
    r->headers = NULL;
    r->nheaders = 0;
    c->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->evfd < 0)
        abort();
    hcn_node_thread_begin(h->node);
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, ws_main, c) != 0)
        abort();
    pthread_attr_destroy(&at);
}

static void ws_push(hc_mod *h, hcn_msg *m, hcn_hc_request *r)
{
    char *key = ws_key(m->rsvp ? m->rsvp : m->source, r->channel_id);
    char *err = NULL;
    pthread_mutex_lock(&h->mu);
    ws_conn *c;
    HASH_FIND_STR(h->conns, key, c);
    if (c == NULL) {
        err = hcn_xasprintf(
            "{\"Err\":{\"WsPushUnknownChannel\":{\"channel_id\":%u}}}",
            r->channel_id);
    } else if ((r->message_type == HCC_WS_TEXT ||
                r->message_type == HCC_WS_BINARY) &&
               m->blob == NULL) {
        err = hcn_xstrdup("{\"Err\":\"WsPushNoBlob\"}");
    } else if (r->message_type == HCC_WS_TEXT &&
               !utf8_valid(m->blob->bytes, m->blob->len)) {
        err = hcn_xstrdup("{\"Err\":\"WsPushBadText\"}");
    } else {
        ws_frame *f = hcn_xcalloc(1, sizeof *f);
        f->type = r->message_type;
        f->blob = hcn_blob_ref(m->blob);
        if (c->out_tail)
            c->out_tail->next = f;
        else
            c->out_head = f;
        c->out_tail = f;
        c->out_bytes += m->blob ? m->blob->len : 0;
        uint64_t max = h->max_bytes ? h->max_bytes : 64u << 20;
        if (c->out_bytes > max && !c->overflow) {
            c->overflow = true;
            hcn_mod_log(
                h->self, 0,
                "http-client: WebSocket %s: more than %llu bytes waiting "
                "to be sent; closing it",
                c->url, (unsigned long long)max);
        }
        ws_wake(c);
    }
    pthread_mutex_unlock(&h->mu);
    free(key);
    ws_answer(h, m, err ? err : "{\"Ok\":\"WebSocketAck\"}");
    free(err);
}

static void ws_close(hc_mod *h, hcn_msg *m, hcn_hc_request *r)
{
    char *key = ws_key(m->rsvp ? m->rsvp : m->source, r->channel_id);
    pthread_mutex_lock(&h->mu);
    ws_conn *c;
    HASH_FIND_STR(h->conns, key, c);
    if (c) {
        HASH_DEL(h->conns, c);
        c->close_req = true;
        ws_wake(c);
    }
    pthread_mutex_unlock(&h->mu);
    free(key);
    if (c) {
        ws_answer(h, m, "{\"Ok\":\"WebSocketAck\"}");
    } else {
        char *e = hcn_xasprintf(
            "{\"Err\":{\"WsCloseFailed\":{\"channel_id\":%u}}}", r->channel_id);
        ws_answer(h, m, e);
        free(e);
    }
}

/* ------------------------------------------------------------ dispatch */

static void hc_handle(hcn_proc *self, hcn_msg *m)
{
    hc_mod *h = self->mod;
    if (m->kind != HCN_MSG_REQUEST || !hcn_mod_from_local(self, m)) {
        hcn_msg_unref(m);
        return;
    }
    hcn_hc_request r;
    if (hcn_hc_parse(m->body, m->body_len, &r) != 0) {
        hcn_mod_log(h->self, 1,
                    "http-client: a request from %s is not an "
                    "HttpClientAction",
                    m->source);
        HCN_MOD_REPLY(h->self, m, .when = HCN_MOD_IF_EXPECTS,
                      .body = "{\"Err\":\"MalformedRequest\"}");
        hcn_msg_unref(m);
        return;
    }
    switch (r.kind) {
    case HCN_HC_HTTP: start_http(h, m, &r); break;
    case HCN_HC_WS_OPEN: ws_open(h, m, &r); break;
    case HCN_HC_WS_PUSH: ws_push(h, m, &r); break;
    case HCN_HC_WS_CLOSE: ws_close(h, m, &r); break;
    }
    hcn_hc_request_fini(&r);
    hcn_msg_unref(m);
}

static void hc_fini(hcn_proc *self)
{
    hc_mod *h = self->mod;
    if (h == NULL)
        return;
    atomic_store(&h->stop, true);
    curl_multi_wakeup(h->multi);
    pthread_mutex_lock(&h->mu);
    for (ws_conn *c = h->conns; c; c = c->hh.next)
        ws_wake(c);
    bool joined = h->worker_started;
    pthread_mutex_unlock(&h->mu);
    if (joined)
        pthread_join(h->worker, NULL);
    pthread_mutex_lock(&h->mu);
    while (h->nconns > 0)
        pthread_cond_wait(&h->cv, &h->mu);
    HASH_CLEAR(hh, h->conns);
    pthread_mutex_unlock(&h->mu);
    while (h->pending) {
        http_job *j = h->pending;
        h->pending = j->next;
        job_free(j);
    }
    curl_multi_cleanup(h->multi);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->addr);
    free(h);
    self->mod = NULL;
    curl_global_cleanup();
}

static const hcn_module_ops hc_ops = {
    .handle = hc_handle,
    .fini = hc_fini,
};

int hcn_mod_http_client_add(hcn_node *n, char *err, size_t errlen)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    hcn_proc *p = hcn_node_add_proc(n, HC_PID, false, NULL);
    hc_mod *h = hcn_xcalloc(1, sizeof *h);
    h->self = p;
    h->node = n;
    h->addr = hcn_xstrdup(p->addr);
    h->max_bytes = n->cfg.http_client_max_response_bytes;
    h->timeout_ms = n->cfg.http_client_timeout_ms;
    h->max_ws = n->cfg.http_client_max_ws;
    h->multi = curl_multi_init();
    if (h->multi == NULL)
        abort();
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    atomic_init(&h->stop, false);
    p->ops = &hc_ops;
    p->mod = h;
    hcn_proc_unref(p);
    return 0;
}

/* ------------------------------------------ internal: fuzzing and tests */

void hcn_hc_ws_probe(hcn_node *n, hcn_proc *self, const char *owner,
                     uint64_t max_bytes, const uint8_t *bytes, size_t len)
{
    hc_mod h;
    memset(&h, 0, sizeof h);
    h.self = self;
    h.node = n;
    h.addr = self->addr;
    h.max_bytes = max_bytes;
    pthread_mutex_init(&h.mu, NULL);
    ws_conn *c = hcn_xcalloc(1, sizeof *c);
    c->mod = &h;
    c->owner = hcn_xstrdup(owner);
    c->open_id = 1;
    c->channel = 7;
    c->evfd = -1;
    if (len > 0) {
        c->inbuf = hcn_xmalloc(len);
        memcpy(c->inbuf, bytes, len);
        c->inlen = len;
    }
    ws_ctx_init(c);
    /* what the server sent, as the connection's thread reads it; with no
     * socket behind (no libcurl handle) a read past it is the end, and
     * what wslay answers (pongs, the close) goes nowhere */
    while (!c->eof && wslay_event_want_read(c->ctx) &&
           wslay_event_recv(c->ctx) == 0) {
        if (wslay_event_want_write(c->ctx))
            wslay_event_send(c->ctx); /* its pongs and close */
        if (c->inoff >= c->inlen)
            break;
    }
    ws_conn_free(c);
    pthread_mutex_destroy(&h.mu);
}
