/* http-server:distro:sys: an HTTP/1.1 and WebSocket server inside the node,
 * with Hyperware's message shapes (runtime.md §7).
 *
 * Threads.  The server runs several libuv loops (--http-loops), each on a
 * thread of its own.  Loop 0 accepts connections and hands them to the
 * loops in turn; a loop owns its connections, their requests waiting for a
 * process's answer and their WebSocket channels, and a copy of every
 * binding (a binding change passes from loop to loop, and the last one
 * answers it).  Messages go from their senders' threads straight to the
 * loop they are for (http_deliver; the module's own thread, the
 * runtime-module loop of proc.c, only passes on what the kernel puts in its
 * mailbox).  What the loops share (http_shared: counts and limits, the
 * login limiter) is under its mutex; the other locks are the hand-over
 * queues' and the WebSocket direct pushes' (dmu, ws_direct.mu).
 *
 * HTTP parsing is Debian's http-parser, WebSocket framing wslay; this file
 * never parses the protocols itself.  A connection handles one request at a
 * time: when a request is complete the parser is paused and reading stops
 * until its response is written, so pipelined requests are answered in
 * order and a client that never reads its answers cannot make the server
 * buffer more than one response for it. */
#include "http_int.h"
#include "../modules/modkit.h"
#include "http.h"

#include "hyperc/runtime.h"

#include <errno.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <uv.h>
#include <wslay/wslay.h>

#define HTTP_PID "http-server:distro:sys"
/* The server runs up to LOOPS_MAX event loops, each a thread owning its
 * connections (--http-loops); the ids it makes carry their loop's index in
 * their low LOOP_BITS (rand_id). */
#define LOOP_BITS 4
#define LOOPS_MAX (1u << LOOP_BITS)
#define READ_BUF (64 * 1024)
/* The largest body POST /login reads (do_login's bound), refused at its
 * head when declared larger. */
#define LOGIN_MAX_BODY (16 * 1024)
/* How long a connection closing after an answer keeps reading (and
 * dropping) what the client still sends, at most. */
#define DRAIN_MS 2000
/* The payload of the server's keep-alive pings; a Pong that echoes it is
 * not handed to the process. */
#define WS_PING_DATA "hyperc-keepalive"

/* ------------------------------------------------------------- types */

typedef struct binding {
    char *app;    /* process id; NULL = unbound (404) */
    char *target; /* its address, "<node>@<app>" (NULL when app is) */
    char *path;
    char *secure_sub; /* NULL = none */
    bool authenticated, local_only;
    hcn_blob *static_content;
} binding;

typedef struct ws_binding {
    char *app;
    char *secure_sub;
    bool authenticated, extension;
} ws_binding;

enum phase {
    PH_IDLE,    /* waiting for a request's first byte */
    PH_READING, /* a request is arriving */
    PH_WAITING, /* the request is with a process */
    PH_WRITING, /* its response is being written */
    PH_WS,      /* a WebSocket */
    PH_DRAIN,   /* answered and closing: what still comes is read and
                   dropped, so that closing does not reset the connection
                   before the client has read the answer */
};

/* The line framing of a request's head, checked before http-parser sees
 * the bytes (scan_head): http-parser 2.9 has no strict mode for line
 * endings and takes bare LFs and obs-fold continuation lines, which
 * HTTP/1.1 (RFC 9112 2.2, 5.2) lets a server refuse, and which a proxy in
 * front may read differently (request smuggling).  Only CR, LF and the
 * first byte of each line are looked at; the parser does the rest. */
enum head_scan {
    HS_START,    /* before the request line (empty lines allowed) */
    HS_START_CR, /* a CR there */
    HS_LINE,     /* inside a line */
    HS_CR,       /* a CR inside a line */
    HS_BOL,      /* at the start of a header line */
    HS_BOL_CR,   /* a CR there: the empty line that ends the head */
    HS_DONE,     /* the head is over: the body is not looked at */
};

/* The connections and WebSockets open from one peer address. */
typedef struct addr_count {
    UT_hash_handle hh;
    uint8_t key[17]; /* the family, then the address (v4-mapped as v4) */
    uint32_t conns, ws;
} addr_count;

typedef struct header {
    char *name; /* lowercase */
    char *value;
    size_t nlen, vlen;
} header;

typedef struct hcn_http hcn_http;

typedef struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    /* on_timer's time (uv_now's clock, ms; TIMER_OFF: none), and the time
     * the libuv timer is set for, which may be earlier (timer_set) */
    uint64_t due, armed;
    hcn_http *h;
    struct conn *prev, *next;
    int handles; /* open libuv handles and login checks under way; freed
                  * at 0 */
    bool closing;
    enum phase phase;
    /* PH_WRITING: the bytes of the response still unwritten at the last
     * look (on_timer closes a connection whose client took none of them
     * for --http-idle-timeout) */
    size_t write_left;
    struct sockaddr_storage peer;
    char peer_text[80]; /* peer as hcn_http_format_addr writes it; "" until
                           a request needs it (peer_addr) */
    http_parser parser;
    /* the request */
    char *url;
    size_t url_len;
    header *hdrs;
    size_t nhdrs, hdrs_cap;
    bool last_was_value;
    size_t header_bytes;
    uint8_t *body; /* body_buf->bytes */
    size_t body_len, body_cap;
    /* the body's allocation, shaped as the blob it goes to its process in
     * (forward): no copy.  On a WebSocket, the data message being read,
     * its frames' payloads appended as wslay hands them over (ws_chunk_cb) */
    hcn_blob *body_buf;
    int err_status;      /* set by a callback to answer and close */
    const char *err_msg; /* why (static text; NULL = an empty answer) */
    const char *err_kind;
    uint8_t hscan;           /* enum head_scan */
    bool at_headers;         /* paused at headers-complete: a body follows */
    bool in_trailers;        /* the head is done: header fields now are a
                                chunked body's trailers */
    uint64_t body_limit;     /* this request's largest body */
    uint64_t body_held;      /* bytes of the node's body budget it holds */
    const char *deny_reason; /* why a local-only check failed (static) */
    /* What refused_at_headers found for a request with a body, taken by
     * handle_request when the body is in (the URL and the head do not
     * change between; the bindings may, hence pre_gen): set, or all 0 */
    bool pre_set;
    bool pre_slash;   /* the path ended with '/' */
    bool pre_allowed; /* pre_b's access check allowed it, the login aside */
    char *pre_path, *pre_query, *pre_host; /* as request_target, host_of */
    json_t *pre_params;                    /* the url_params of pre_b */
    const binding *pre_b; /* the binding found; NULL: none was needed */
    uint64_t pre_gen;     /* h->routes_gen then */
    addr_count *ac;       /* its peer address's counts; NULL = none */
    bool ws_counted;      /* counted in ac->ws */
    bool ws_slot;         /* counted in sh->nws */
    bool ws_heard;  /* a whole message came since the last keep-alive tick */
    bool ws_pinged; /* a keep-alive ping is unanswered */
    bool ws_over;   /* a frame found the body budget full: stop reading */
    bool ws_big;    /* a message grew past --http-max-body: stop reading */
    bool ws_ctl;    /* the frame being read is a control frame */
    uv_shutdown_t shut;
    bool keep_alive;
    bool head;
    uint8_t *left; /* bytes read after the request (pipelined) */
    size_t left_len;
    uint64_t pending_id; /* the request with a process, 0 = none */
    /* WebSocket */
    wslay_event_context_ptr ws;
    uint32_t channel;
    char *ws_target;    /* its process's address, "<node>@<ws_app>" */
    const char *ws_app; /* the process id, in ws_target */
    const uint8_t *ws_in;
    size_t ws_in_len;
    unsigned ws_writes; /* frames handed to libuv, not yet written */
    bool ws_closed_sent;
    struct wreq *ws_out; /* what wslay_event_send has handed over so far */
    size_t ws_out_len, ws_out_cap;
    struct ws_direct *dw; /* its entry in h->direct (a WebSocket's) */
    /* An open WebSocket read by the scheduler's netpoller (kernel.h,
     * hcn_netpoll_add; ws_np_start): an idle scheduler thread reads the
     * socket and runs wslay's reader there (ws_np_ready), so the message
     * goes to its process with no hop through this loop, and the process's
     * fiber runs on the thread that read it.  The loop keeps the writes
     * (control frames, pushes that come its way, the close) and the
     * connection's end, and reads the socket again once the netpoller
     * stops (a Close came, or a message over a limit).  While np_on (the loop's
     * flag), `rmu` guards the wslay context, what its reader's callbacks touch
     * (the message being read, ws_heard, ws_over, ws_big, ws_ctl, ws_in) and
     * np_rng; the loop takes it around each of its own wslay calls (ws_lock).
     * Once the loop stops the watch (hcn_netpoll_remove), a netpoller round
     * that took the socket's event before may still call ws_np_ready, until
     * its token has passed: conn_close marks the connection gone under rmu
     * (ws_np_ready then touches nothing) and keeps its socket open and its
     * memory, on h->graves, until then (graves_sweep). */
    hcn_pollable np;
    bool np_on;
    bool np_gone;      /* closed: ws_np_ready returns at once (under rmu) */
    uint32_t np_token; /* the last removal's (hcn_netpoll_passed) */
    struct conn *next_grave;
    pthread_mutex_t rmu;
    uint64_t np_rng; /* the ids of the messages the netpoller sends */
} conn;

typedef struct pending {
    UT_hash_handle hh;
    uint64_t id;
    conn *c;
} pending;

typedef struct channel {
    UT_hash_handle hh;
    uint32_t id;
    conn *c;
} channel;

/* A netpoller's request to a loop about one of its WebSockets: write what
 * wslay queued (and close once both Close frames are through); read the
 * socket again (the netpoller no longer watches it: a Close came, or a
 * message over a limit, and the end of the stream must still be seen),
 * then write; or close it (the end of the stream, an error). */
enum ws_kick_kind { KICK_PUMP, KICK_READ, KICK_END };
typedef struct ws_kick {
    uint32_t channel;
    uint8_t kind; /* enum ws_kick_kind */
} ws_kick;

/* A WebSocket as the senders' threads see it (ws_direct_push): a plain
 * text or binary push is framed and written to the socket by the thread
 * that sends it, with no hop to the loop thread, while the loop has
 * nothing of its own pending on the socket (`open`).  The loop closes the
 * gate before it writes anything there (ws_gate) and opens it again once
 * its writes are through (ws_direct_update).  Created at the upgrade,
 * freed by conn_close (out of h->direct first, then once no sender holds
 * `mu`). */
typedef struct ws_direct {
    UT_hash_handle hh;
    uint32_t id;        /* the channel */
    pthread_mutex_t mu; /* guards the rest, and a sender's write */
    int fd;
    char *app;         /* the process the channel belongs to */
    bool open;         /* a sender may write */
    struct wreq *rest; /* the unwritten end of a frame a sender began */
    size_t rest_len;
    const hcn_msg *partial; /* that frame's push, queued for the loop */
} ws_direct;

/* What the server's loops share.  Everything else of a connection is its
 * loop's alone; these counts and limits hold for the server as a whole,
 * under `mu` (a connection's opening and closing, a body's chunk, a
 * login: never a request's hot path but the body's reservation). */
typedef struct http_shared {
    hcn_http **loops; /* loops[0] polls the listening socket */
    unsigned n;
    int listen_fd; /* -1: none (no --port) */
    unsigned next; /* the loop the next connection goes to (loops[0]'s) */
    pthread_mutex_t mu;
    addr_count *addrs;          /* connections per peer address */
    size_t nconns, nws;         /* open connections and WebSockets, all loops */
    _Atomic uint64_t body_held; /* request body bytes held, all requests
                                   (body_reserve: without mu) */
    unsigned logins;            /* login checks on the thread pool now */
    hcn_http_limiter *lim;      /* failed logins per address */
    hcn_http_auth auth;         /* read-only once made (shared without mu) */
} http_shared;

struct hcn_http {
    http_shared *sh;
    unsigned index; /* in sh->loops; the low bits of its ids (LOOP_BITS) */
    hcn_proc *self; /* our process entry (the node's table keeps it) */
    hcn_node *node;
    char *self_addr;
    uv_loop_t loop;
    uv_poll_t lpoll; /* loops[0]: the listening socket */
    bool polling;
    uv_timer_t lpause;    /* loops[0]: polling again after running out of fds */
    uint64_t accept_said; /* loops[0]: when that was last logged (uv_now) */
    uv_async_t wake;
    pthread_t thread;
    bool has_thread;
    pthread_mutex_t mu; /* guards the queue and `stop` */
    hcn_msg *qhead, *qtail;
    uint32_t qreq; /* requests in the queue (http_deliver's bound) */
    int *fds;      /* connections accepted by loops[0] for this loop */
    size_t nfds, fds_cap;
    /* WebSockets whose netpoller asks the loop to write what wslay queued
     * (a pong, a close), to read them again or to end them (ws_np_kick) */
    struct ws_kick *kicks;
    size_t nkicks, kicks_cap;
    bool stop;
    /* requests queued and not yet handled: a push is written on its
     * sender's thread only when none is, so that it cannot pass an
     * earlier message of its sender's */
    atomic_uint q_acts;
    pthread_mutex_t dmu; /* guards `direct` */
    ws_direct *direct;   /* by channel id */
    /* loop thread only */
    hcn_http_router routes, ws_routes;
    uint64_t routes_gen; /* counts the changes of `routes` and `secure_subs` */
    char **secure_subs;
    size_t nsecure;
    pending *pending;
    channel *channels;
    conn *conns;
    size_t nconns; /* this loop's (sh->nconns: all loops') */
    uint64_t rng;
    uint8_t rbuf[READ_BUF];
    http_parser_settings settings;
    /* limits */
    uint64_t max_body;
    uint32_t max_header, max_conns, idle_s, request_s, ws_max, ws_queue;
    uint64_t body_budget; /* request body bytes, all requests (sh) */
    uint32_t max_per_addr, ws_max_per_addr, wait_max_s, ws_ping_s;
    /* writes done at once, to complete (written_run) */
    struct wreq *written, *written_tail;
    uv_prepare_t prepare;
    uv_check_t check;
    /* hcn_http_answer_read's output (2 KiB: not on the stack) */
    hcn_http_answer answer;
    /* the Date header line of second date_sec (date_line) */
    time_t date_sec;
    char date[48];
    size_t date_len;
    uv_timer_t login_timer; /* loops[0]: says the limiter's summary, once a
                               minute */
    /* closed connections whose netpoller round has not passed yet
     * (conn_close), swept every millisecond while there are any */
    conn *graves;
    uv_timer_t graves_timer;
    bool stopping; /* on_wake has closed everything for the stop */
};

static void conn_close(conn *c);
static void graves_sweep(uv_timer_t *t);
static void conn_drain(conn *c);
static void conn_next(conn *c);
static void feed(conn *c, const uint8_t *data, size_t len);
static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_timer(uv_timer_t *t);
static void ws_direct_update(conn *c);

/* Around each of the loop's own uses of c's wslay context (and ws_heard):
 * the netpoller may be reading c (np_on). */
static void ws_lock(conn *c)
{
    if (c->np_on)
        pthread_mutex_lock(&c->rmu);
}

static void ws_unlock(conn *c)
{
    if (c->np_on)
        pthread_mutex_unlock(&c->rmu);
}

/* c->due when c's timer is stopped. */
#define TIMER_OFF UINT64_MAX

/* Run on_timer for c in `ms` milliseconds (in place of any time set
 * before).  A request sets and stops its connection's timer several times
 * (reading, waiting, writing, idle), mostly each time later than the last:
 * the libuv timer (a heap) is moved only when the new time is earlier than
 * the one it is set for, and on_timer sets it again when it fires before
 * c->due. */
static void timer_set(conn *c, uint64_t ms)
{
    uint64_t now = uv_now(c->timer.loop);
    uint64_t due = ms >= TIMER_OFF - 1 - now ? TIMER_OFF - 1 : now + ms;
    c->due = due;
    if (!uv_is_active((uv_handle_t *)&c->timer) || due < c->armed) {
        uv_timer_start(&c->timer, on_timer, due - now, 0);
        c->armed = due;
    }
}

/* No on_timer for c until timer_set (the libuv timer may still fire:
 * on_timer then does nothing). */
static void timer_stop(conn *c)
{
    c->due = TIMER_OFF;
}

/* ------------------------------------------------------------ helpers */

/* The address to listen on: a numeric IPv4 or IPv6 address, or a host
 * name (such as localhost), resolved once at start; a name with IPv4
 * addresses gets its first IPv4 one (what clients of "localhost" try
 * first), else its first IPv6 one.  0, or a libuv error code. */
static int listen_addr(const char *addr, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(addr, port, (struct sockaddr_in *)ss) == 0 ||
        uv_ip6_addr(addr, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(addr, NULL, &hints, &res);
    if (rc != 0)
        return UV_EAI_NONAME;
    const struct addrinfo *pick = NULL;
    for (int pass = 0; pass < 2 && pick == NULL; pass++)
        for (const struct addrinfo *a = res; a && pick == NULL; a = a->ai_next)
            if (a->ai_family == (pass == 0 ? AF_INET : AF_INET6))
                pick = a;
    if (pick == NULL) {
        freeaddrinfo(res);
        return UV_EAI_NONAME;
    }
    memcpy(ss, pick->ai_addr, pick->ai_addrlen);
    if (pick->ai_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

/* A random id whose low LOOP_BITS are h's index, so that an answer to a
 * request it sent, or an action on a WebSocket channel it opened, finds
 * its way back to h's loop (loop_of); its low 32 bits (a channel id) are
 * never all zero either. */
static uint64_t rand_id_from(const hcn_http *h, uint64_t *rng)
{
    uint64_t v;
    do
        v = hcn_rng_next(rng) << LOOP_BITS | h->index;
    while ((uint32_t)v == 0);
    return v;
}

/* rand_id_from h's own generator (h's thread). */
static uint64_t rand_id(hcn_http *h)
{
    return rand_id_from(h, &h->rng);
}

/* The loop whose index an id (rand_id) or channel id carries. */
static hcn_http *loop_for(http_shared *sh, uint64_t id)
{
    unsigned i = (unsigned)(id & (LOOPS_MAX - 1));
    return sh->loops[i < sh->n ? i : 0];
}

static void logf_h(hcn_http *h, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_h(hcn_http *h, int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    hcn_mod_log(h->self, level, "http-server: %s", buf);
}

static const char *find_header(conn *c, const char *lname)
{
    for (size_t i = c->nhdrs; i-- > 0;)
        if (strcmp(c->hdrs[i].name, lname) == 0)
            return c->hdrs[i].value;
    return NULL;
}

/* Give the request's body and its share of the node's body budget
 * back. */
static void body_release(conn *c)
{
    atomic_fetch_sub(&c->h->sh->body_held, c->body_held);
    c->body_held = 0;
    free(c->body_buf);
    c->body_buf = NULL;
    c->body = NULL;
    c->body_len = c->body_cap = 0;
}

/* The body's buffer as a blob of its length (the caller's reference; an
 * empty one when there is none), taken from c, and the budget it held
 * given back; `trim`: cut to its length when much of it is unused. */
static hcn_blob *body_take(conn *c, bool trim)
{
    hcn_blob *blob = c->body_buf;
    if (blob) {
        if (trim && c->body_cap - c->body_len > 4096)
            blob = hcn_xrealloc(blob, sizeof *blob + c->body_len);
        atomic_init(&blob->refs, 1);
        blob->mime = NULL;
        blob->len = c->body_len;
        c->body_buf = NULL;
    } else {
        blob = hcn_blob_new(NULL, NULL, 0);
    }
    body_release(c);
    return blob;
}

/* Hold `total` bytes of the node's body budget for c's request (what it
 * holds already counted); false when the budget has no room. */
static bool body_reserve(conn *c, uint64_t total)
{
    hcn_http *h = c->h;
    if (total <= c->body_held)
        return true;
    uint64_t more = total - c->body_held;
    _Atomic uint64_t *held = &h->sh->body_held;
    uint64_t was = atomic_load(held);
    do
        if (h->body_budget && was + more > h->body_budget)
            return false;
    while (!atomic_compare_exchange_weak(held, &was, was + more));
    c->body_held = total;
    return true;
}

/* Forget what refused_at_headers found (c->pre_*). */
static void pre_drop(conn *c)
{
    if (!c->pre_set)
        return;
    free(c->pre_path);
    free(c->pre_query);
    free(c->pre_host);
    json_decref(c->pre_params);
    c->pre_path = c->pre_query = c->pre_host = NULL;
    c->pre_params = NULL;
    c->pre_b = NULL;
    c->pre_set = false;
}

static void reset_request(conn *c)
{
    free(c->url);
    c->url = NULL;
    c->url_len = 0;
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdrs[i].name);
        free(c->hdrs[i].value);
    }
    c->nhdrs = 0;
    c->last_was_value = false;
    c->in_trailers = false;
    c->header_bytes = 0;
    body_release(c);
    c->err_status = 0;
    c->err_msg = NULL;
    c->err_kind = NULL;
    c->at_headers = false;
    c->body_limit = c->h->max_body;
    c->deny_reason = NULL;
    pre_drop(c);
    c->keep_alive = false;
    c->head = false;
}

/* Append to a growing buffer (NUL-terminated). */
static void append(char **buf, size_t *len, const char *at, size_t n)
{
    char *nb = realloc(*buf, *len + n + 1);
    if (nb == NULL)
        abort();
    memcpy(nb + *len, at, n);
    *len += n;
    nb[*len] = 0;
    *buf = nb;
}

/* ------------------------------------------------------------ writing */

typedef struct wreq {
    uv_write_t req;
    struct wreq *next; /* in h->written */
    conn *c;
    int kind; /* W_RESPONSE, W_OTHER, W_WS */
    bool close_after;
    char data[];
} wreq;

enum { W_RESPONSE, W_OTHER, W_WS };

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    int kind = w->kind;
    bool close_after = w->close_after;
    free(w);
    if (kind == W_WS && c->ws_writes > 0)
        c->ws_writes--;
    if (c->closing)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (close_after) {
        conn_drain(c);
        return;
    }
    bool ws_done = false;
    if (kind == W_WS && c->ws && c->ws_writes == 0) {
        ws_lock(c);
        ws_done =
            !wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws);
        ws_unlock(c);
    }
    if (ws_done) {
        conn_close(c); /* both close frames are through */
        return;
    }
    if (kind == W_RESPONSE)
        conn_next(c);
    else if (c->dw)
        ws_direct_update(c);
}

/* Complete the writes that went out at once (write_wreq), as libuv would
 * have: after the callback that wrote them has returned.  Runs in the
 * loop's prepare and check phases, so before the closing phase that could
 * free a connection they name. */
static void written_run(hcn_http *h)
{
    while (h->written) {
        wreq *w = h->written;
        h->written = w->next;
        if (h->written == NULL)
            h->written_tail = NULL;
        on_write(&w->req, 0);
    }
}

static void on_loop_phase(uv_handle_t *hd)
{
    written_run(hd->data);
}

static void on_prepare(uv_prepare_t *p)
{
    on_loop_phase((uv_handle_t *)p);
}

static void on_check(uv_check_t *k)
{
    on_loop_phase((uv_handle_t *)k);
}

/* Hand w (len bytes of data) to the socket; frees it on failure.  Tried at
 * once (uv_try_write): a write that goes out whole needs no write request
 * in libuv, which would also re-arm the socket's epoll entry (an epoll_ctl)
 * when its queue drains; the rest of a partial one goes through uv_write. */
static void write_wreq(conn *c, wreq *w, size_t len, int kind, bool close_after)
{
    w->c = c;
    w->kind = kind;
    w->close_after = close_after;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (kind == W_WS)
        c->ws_writes++;
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len) {
        hcn_http *h = c->h;
        w->next = NULL;
        if (h->written_tail)
            h->written_tail->next = w;
        else
            h->written = w;
        h->written_tail = w;
        return;
    }
    if (n > 0)
        b = uv_buf_init(w->data + n, (unsigned)(len - (size_t)n));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        if (kind == W_WS)
            c->ws_writes--;
        free(w);
        conn_close(c);
    }
}

static void write_bytes(conn *c, const void *data, size_t len, int kind,
                        bool close_after)
{
    if (c->closing)
        return;
    wreq *w = hcn_xmalloc(sizeof *w + len);
    memcpy(w->data, data, len);
    write_wreq(c, w, len, kind, close_after);
}

/* ------------------------------------- pushes on the senders' threads */

/* Open c's gate to the senders if the loop has nothing pending on the
 * socket: no bytes with libuv, nothing queued in wslay, no close sent, no
 * frame's end left by a sender. */
static void ws_direct_update(conn *c)
{
    ws_direct *dw = c->dw;
    ws_lock(c);
    bool ok = !c->closing && c->ws && !c->ws_closed_sent &&
              !wslay_event_get_close_sent(c->ws) &&
              wslay_event_get_queued_msg_count(c->ws) == 0 &&
              uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0;
    ws_unlock(c);
    pthread_mutex_lock(&dw->mu);
    dw->open = ok && dw->rest == NULL;
    pthread_mutex_unlock(&dw->mu);
}

/* Without `m`: close c's gate before the loop writes to the socket, and
 * write first the end of a frame a sender began (the loop's frame must not
 * land in the middle of it).  With `m`, as the loop takes push m: true
 * when m is the push whose frame a sender began, which is then whole (and
 * the gate closed); false, and nothing done, for any other. */
static bool ws_gate(conn *c, const hcn_msg *m)
{
    ws_direct *dw = c->dw;
    pthread_mutex_lock(&dw->mu);
    bool mine = m != NULL && dw->partial == m;
    if (m != NULL && !mine) {
        pthread_mutex_unlock(&dw->mu);
        return false;
    }
    if (mine)
        dw->partial = NULL;
    dw->open = false;
    wreq *rest = dw->rest;
    size_t rest_len = dw->rest_len;
    dw->rest = NULL;
    dw->rest_len = 0;
    pthread_mutex_unlock(&dw->mu);
    if (rest)
        write_wreq(c, rest, rest_len, W_WS, false);
    return mine;
}

/* c's entry for the senders, at its upgrade (closed until
 * ws_direct_update finds the socket clear). */
static void ws_direct_add(conn *c)
{
    hcn_http *h = c->h;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return; /* then every push goes through the loop */
    ws_direct *dw = hcn_xcalloc(1, sizeof *dw);
    dw->id = c->channel;
    dw->fd = fd;
    dw->app = hcn_xstrdup(c->ws_app);
    pthread_mutex_init(&dw->mu, NULL);
    pthread_mutex_lock(&h->dmu);
    HASH_ADD(hh, h->direct, id, sizeof(uint32_t), dw);
    pthread_mutex_unlock(&h->dmu);
    c->dw = dw;
    ws_direct_update(c);
}

/* Out of h->direct, and freed once no sender is writing with it: before
 * the socket is closed. */
static void ws_direct_remove(conn *c)
{
    hcn_http *h = c->h;
    ws_direct *dw = c->dw;
    if (dw == NULL)
        return;
    c->dw = NULL;
    pthread_mutex_lock(&h->dmu);
    HASH_DEL(h->direct, dw);
    pthread_mutex_unlock(&h->dmu);
    pthread_mutex_lock(&dw->mu); /* a sender in the middle of a write */
    pthread_mutex_unlock(&dw->mu);
    pthread_mutex_destroy(&dw->mu);
    free(dw->rest);
    free(dw->app);
    free(dw);
}

enum { DIRECT_NO, DIRECT_DONE, DIRECT_PARTIAL };

/* Whether m is a WebSocketPush in its plain shape (hcc_ws_push_read): its
 * channel and message type then in *cid and *wt.  Other requests
 * (bindings, a push with blanks) are not read twice. */
static bool push_of(const hcn_msg *m, uint32_t *cid, int *wt)
{
    static const char push_key[] = "{\"WebSocketPush\":";
    return m->kind == HCN_MSG_REQUEST && m->body_len >= sizeof push_key &&
           memcmp(m->body, push_key, sizeof push_key - 1) == 0 &&
           hcc_ws_push_read((const char *)m->body, m->body_len, cid, wt);
}

/* On the sender's thread: write push m (a WebSocketPush request of a text
 * or binary message, from a local process, that waits for no answer) to
 * its channel's socket (on h, the channel's loop) if its gate is open and
 * no request is queued for the loop; m already read by push_of (cid, wt).
 * DIRECT_DONE: written whole (m is the caller's to drop); DIRECT_PARTIAL:
 * begun, its end kept for the loop, and m must go to the loop (which then
 * finishes it); DIRECT_NO: nothing written, m goes the loop's way (which
 * answers any error as before). */
static int ws_direct_write(hcn_http *h, const hcn_msg *m, uint32_t cid, int wt)
{
    if (m->has_expects || m->rsvp != NULL || m->blob == NULL ||
        (wt != HCC_WS_TEXT && wt != HCC_WS_BINARY) ||
        atomic_load(&h->q_acts) != 0)
        return DIRECT_NO;
    size_t nl = strlen(h->node->name);
    if (strncmp(m->source, h->node->name, nl) != 0 || m->source[nl] != '@')
        return DIRECT_NO;
    const uint8_t *p = m->blob->bytes;
    size_t len = m->blob->len;
    if (wt == HCC_WS_TEXT && !hcc_utf8_valid(p, len))
        return DIRECT_NO; /* the loop writes its lossy copy */
    /* RFC 6455's frame: FIN and the opcode, the length, no mask */
    uint8_t hd[10];
    size_t hl;
    hd[0] = (uint8_t)(0x80 | hcc_ws_type_opcode(wt));
    if (len < 126) {
        hd[1] = (uint8_t)len;
        hl = 2;
    } else if (len <= 0xFFFF) {
        hd[1] = 126;
        hd[2] = (uint8_t)(len >> 8);
        hd[3] = (uint8_t)len;
        hl = 4;
    } else {
        hd[1] = 127;
        for (int i = 0; i < 8; i++)
            hd[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    pthread_mutex_lock(&h->dmu);
    ws_direct *dw;
    HASH_FIND(hh, h->direct, &cid, sizeof(uint32_t), dw);
    if (dw == NULL) {
        pthread_mutex_unlock(&h->dmu);
        return DIRECT_NO;
    }
    pthread_mutex_lock(&dw->mu);
    pthread_mutex_unlock(&h->dmu);
    if (!dw->open || strcmp(dw->app, hcn_addr_pid(m->source)) != 0) {
        pthread_mutex_unlock(&dw->mu);
        return DIRECT_NO;
    }
    struct iovec iov[2] = {{hd, hl}, {(void *)p, len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    ssize_t n;
    do
        n = sendmsg(dw->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)(hl + len)) {
        pthread_mutex_unlock(&dw->mu);
        return DIRECT_DONE;
    }
    dw->open = false; /* the loop's way from here, until it opens again */
    if (n <= 0) {
        pthread_mutex_unlock(&dw->mu);
        return DIRECT_NO; /* full, or an error the loop meets too */
    }
    size_t done = (size_t)n, rl = hl + len - done;
    wreq *w = hcn_xmalloc(sizeof *w + rl);
    if (done < hl) {
        memcpy(w->data, hd + done, hl - done);
        memcpy(w->data + hl - done, p, len);
    } else {
        memcpy(w->data, p + (done - hl), rl);
    }
    dw->rest = w;
    dw->rest_len = rl;
    dw->partial = m;
    pthread_mutex_unlock(&dw->mu);
    return DIRECT_PARTIAL;
}

/* ws_direct_write for a message not yet read (the probes'). */
static int ws_direct_push(hcn_http *h, const hcn_msg *m)
{
    uint32_t cid;
    int wt;
    return push_of(m, &cid, &wt) ? ws_direct_write(h, m, cid, wt) : DIRECT_NO;
}

static const char *reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return r && *r && strcmp(r, "<unknown>") != 0 ? r : "Unknown";
}

/* Whether a header name is an HTTP token and its value has no CR, LF or
 * NUL (anything else could split the response). */
static bool header_ok(const char *name, const char *value)
{
    if (*name == 0)
        return false;
    for (const char *p = name; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 32 || ch >= 127 || strchr("()<>@,;:\\\"/[]?={}", ch))
            return false;
    }
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

/* Headers the server writes itself. */
static bool header_reserved(const char *name)
{
    return strcasecmp(name, "content-length") == 0 ||
           strcasecmp(name, "transfer-encoding") == 0 ||
           strcasecmp(name, "connection") == 0 || strcasecmp(name, "date") == 0;
}

/* The Date header line of the current second, formatted once a second
 * (loop thread). */
static const char *date_line(hcn_http *h, size_t *len)
{
    time_t now = time(NULL);
    if (now != h->date_sec || h->date_len == 0) {
        struct tm tm;
        gmtime_r(&now, &tm);
        h->date_len = strftime(h->date, sizeof h->date,
                               "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        h->date_sec = now;
    }
    *len = h->date_len;
    return h->date;
}

/* A process's response headers, in order (names[i]: values[i]). */
typedef struct hdr_list {
    size_t n;
    const char *const *names, *const *values;
} hdr_list;

/* Write a response: status, extra header lines ("Name: value\r\n"...,
 * may be NULL), a process's headers (may be NULL), and the body.  The
 * head and body are written into the write request's own allocation: one
 * malloc and one copy of the body. */
static void respond(conn *c, int status, const char *extra,
                    const hdr_list *hdrs, const void *body, size_t blen)
{
    if (c->closing)
        return;
    bool close_after = !c->keep_alive || c->err_status != 0;
    bool nobody = status == 204 || status == 304 || status < 200;
    bool with_body = !nobody && !c->head && blen;
    hcn_http_out o = {0};
    hcn_http_out_reserve(&o,
                         offsetof(wreq, data) + 256 + (with_body ? blen : 0));
    o.len = offsetof(wreq, data);
    hcn_http_out_raw(&o, "HTTP/1.1 ", 9);
    hcn_http_out_u64(&o, (uint64_t)status);
    hcn_http_out_raw(&o, " ", 1);
    hcn_http_out_str(&o, reason(status));
    hcn_http_out_raw(&o, "\r\n", 2);
    size_t dl;
    const char *date = date_line(c->h, &dl);
    hcn_http_out_raw(&o, date, dl);
    if (extra)
        hcn_http_out_str(&o, extra);
    for (size_t i = 0; hdrs && i < hdrs->n; i++) {
        const char *key = hdrs->names[i], *val = hdrs->values[i];
        if (val == NULL || header_reserved(key) || !header_ok(key, val))
            continue;
        hcn_http_out_str(&o, key);
        hcn_http_out_raw(&o, ": ", 2);
        hcn_http_out_str(&o, val);
        hcn_http_out_raw(&o, "\r\n", 2);
    }
    if (!nobody) {
        hcn_http_out_raw(&o, "Content-Length: ", 16);
        hcn_http_out_u64(&o, blen);
        hcn_http_out_raw(&o, "\r\n", 2);
    }
    if (close_after)
        hcn_http_out_raw(&o, "Connection: close\r\n", 19);
    hcn_http_out_raw(&o, "\r\n", 2);
    if (with_body)
        hcn_http_out_raw(&o, body, blen);
    c->phase = PH_WRITING;
    timer_stop(c);
    write_wreq(c, (wreq *)(void *)o.buf, o.len - offsetof(wreq, data),
               W_RESPONSE, close_after);
    if (!c->closing && c->phase == PH_WRITING) {
        /* a client that stops reading must not hold its slot and the
         * response's bytes for ever */
        c->write_left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
        timer_set(c, (uint64_t)c->h->idle_s * 1000);
    }
}

/* on_timer in PH_WRITING: the client took some of the response since the
 * last look (look again later), or none (close). */
static void write_stall_check(conn *c)
{
    size_t left = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (left > 0 && left < c->write_left) {
        c->write_left = left;
        timer_set(c, (uint64_t)c->h->idle_s * 1000);
        return;
    }
    if (left > 0)
        logf_h(c->h, 1,
               "a client read none of its response for %u s (%zu bytes "
               "unwritten); connection closed",
               c->h->idle_s, left);
    conn_close(c);
}

static void respond_empty(conn *c, int status)
{
    respond(c, status, NULL, NULL, NULL, 0);
}

static void respond_error(conn *c, int status, const char *kind,
                          const char *message);

/* An error found while reading: answer and close; `message` (may be NULL:
 * an empty answer) says why, in an error of `kind`. */
static void fail(conn *c, int status, const char *kind, const char *message)
{
    c->err_status = status;
    c->keep_alive = false;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (message)
        respond_error(c, status, kind, message);
    else
        respond_empty(c, status);
}

/* An error answer in the hyperprocess runtime's shape,
 * {"HypercError":{"kind":...,"message":...}}, so that a client reads the
 * node's refusals as it reads a process's.  The message may quote the
 * request's path: made valid UTF-8 first. */
static void respond_error(conn *c, int status, const char *kind,
                          const char *message)
{
    char *msg =
        hcn_http_utf8_lossy((const uint8_t *)message, strlen(message), NULL);
    json_t *j =
        json_pack("{s:{s:s,s:s}}", "HypercError", "kind", kind, "message", msg);
    free(msg);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    respond(c, status, "Content-Type: application/json\r\n", NULL, body,
            body ? strlen(body) : 0);
    free(body);
}

/* ----------------------------------------------------------- messages */

/* A process's address on this node, "<node>@<pid>": fresh string. */
static char *proc_address(hcn_http *h, const char *pid)
{
    return hcn_xasprintf("%s@%s", h->node->name, pid);
}

/* Send request `body` (and blob, may be NULL) to the process at address
 * `target` (a binding's or a WebSocket's, formatted once). */
static void send_to_process(hcn_http *h, uint64_t id, const char *target,
                            bool expects, uint64_t secs, const char *body,
                            hcn_blob *blob)
{
    hcn_msg *m =
        HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = id, .source = h->self_addr,
                    .target = target, .has_expects = expects, .expects = secs,
                    .body = body, .body_len = strlen(body), .blob = blob);
    hcn_route(h->node, m);
}

static void send_json_to_process(hcn_http *h, uint64_t id, const char *target,
                                 bool expects, uint64_t secs, json_t *j,
                                 hcn_blob *blob)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    send_to_process(h, id, target, expects, secs, s, blob);
    free(s);
    json_decref(j);
}

/* ------------------------------------------------------ HTTP requests */

static void pending_drop(hcn_http *h, conn *c)
{
    if (c->pending_id == 0)
        return;
    pending *p;
    HASH_FIND(hh, h->pending, &c->pending_id, sizeof(uint64_t), p);
    if (p) {
        HASH_DEL(h->pending, p);
        free(p);
    }
    c->pending_id = 0;
}

static void ws_tick(conn *c);

static void on_timer(uv_timer_t *t)
{
    conn *c = t->data;
    uint64_t now = uv_now(t->loop);
    if (c->due > now) {
        /* set later since (timer_set), or stopped */
        if (c->due != TIMER_OFF) {
            uv_timer_start(t, on_timer, c->due - now, 0);
            c->armed = c->due;
        }
        return;
    }
    c->due = TIMER_OFF;
    switch (c->phase) {
    case PH_IDLE: conn_close(c); break;
    case PH_READING: fail(c, 408, NULL, NULL); break;
    case PH_WAITING:
        logf_h(c->h, 1, "no answer in time for %s; 408", c->url ? c->url : "");
        pending_drop(c->h, c);
        respond_empty(c, 408);
        break;
    case PH_WRITING: write_stall_check(c); break;
    case PH_WS: ws_tick(c); break;
    case PH_DRAIN: conn_close(c); break;
    }
}

/* The host part of a Host header (no port), and whether there was one. */
static char *host_of(const char *host)
{
    if (host == NULL || *host == 0)
        return hcn_xstrdup("localhost");
    if (host[0] == '[') {
        const char *e = strchr(host, ']');
        return hcn_xstrndup(host, e ? (size_t)(e - host) + 1 : strlen(host));
    }
    const char *colon = strchr(host, ':');
    return hcn_xstrndup(host, colon ? (size_t)(colon - host) : strlen(host));
}

/* Whether the request carries a reverse-proxy header. */
static bool behind_proxy(conn *c)
{
    for (size_t i = 0; i < c->nhdrs; i++)
        if (hcn_http_is_proxy_header(c->hdrs[i].name))
            return true;
    return false;
}

/* Hyperware's auth_token_valid: the cookie for `sub` (NULL = the node's
 * own) holds a valid JWT. */
static bool auth_ok(conn *c, const char *sub)
{
    hcn_http *h = c->h;
    const char *cookies = find_header(c, "cookie");
    if (cookies == NULL)
        return false;
    char *name = sub ? hcn_xasprintf("hyperware-auth_%s@%s", h->node->name, sub)
                     : hcn_xasprintf("hyperware-auth_%s", h->node->name);
    char *tok = hcn_http_cookie(cookies, name);
    free(name);
    bool ok =
        tok && hcn_http_jwt_valid(h->sh->auth.key, sizeof h->sh->auth.key, tok,
                                  h->node->name, sub, (uint64_t)time(NULL),
                                  h->sh->auth.lifetime_s);
    free(tok);
    return ok;
}

/* The login page, as a 200. */
static void send_login_page(conn *c)
{
    respond(c, 200, "Content-Type: text/html; charset=utf-8\r\n", NULL,
            c->h->sh->auth.login_html, c->h->sh->auth.login_len);
}

/* POST /login: {"password_hash": "0x..."} (Hyperware's argon2id form) or
 * {"password": "..."} (this node's login page), with "subdomain". */
/* Login checks at once: libuv's thread pool's size (UV_THREADPOOL_SIZE's
 * default). */
#define LOGINS_MAX 4

/* A login being checked on libuv's thread pool. */
typedef struct login_work {
    uv_work_t req;
    conn *c;
    const hcn_http_auth *auth;
    char *body;
    size_t len;
    char *host, *query;
    bool ok;
    char *sub; /* the login's subdomain, from the check */
} login_work;

static void login_work_free(login_work *w)
{
    free(w->body);
    free(w->host);
    free(w->query);
    free(w->sub);
    free(w);
}

static void conn_unref(conn *c);
static void login_work_cb(uv_work_t *req);
static void login_after_cb(uv_work_t *req, int status);
static void login_answer(conn *c, bool ok, char *sub, const char *host,
                         const char *query);

static void do_login(conn *c, const char *host, const char *query)
{
    hcn_http *h = c->h;
    if (c->body_len > 16 * 1024) {
        respond(c, 413, NULL, NULL, NULL, 0);
        return;
    }
    /* too many failures from this address: refused unchecked; failures
     * are said in the limiter's summary line, not one line each */
    const struct sockaddr *peer = (const struct sockaddr *)&c->peer;
    int64_t now_ms = hcn_now_ns() / 1000000;
    http_shared *sh = h->sh;
    pthread_mutex_lock(&sh->mu);
    uint32_t wait = hcn_http_limiter_check(sh->lim, peer, now_ms);
    bool busy = !wait && sh->logins >= LOGINS_MAX;
    if (!wait && !busy) {
        /* counted as under way at once: a login from the same address on
         * another loop is checked against it */
        sh->logins++;
        hcn_http_limiter_start(sh->lim, peer, now_ms);
    }
    pthread_mutex_unlock(&sh->mu);
    if (wait) {
        char *extra = hcn_xasprintf(
            "Retry-After: %u\r\nContent-Type: application/json\r\n", wait);
        char *msg = hcn_xasprintf(
            "\"Failed to log in: too many failed logins from this address; "
            "try again in %u s\"",
            wait);
        respond(c, 429, extra, NULL, msg, strlen(msg));
        free(extra);
        free(msg);
        return;
    }
    /* argon2id takes tens of milliseconds: on libuv's thread pool, so the
     * loop goes on serving everyone else meanwhile; at most as many at once
     * as the pool has threads (more would only queue, each holding its
     * connection and ~19 MB while it runs) */
    if (busy) {
        const char *msg = "\"Failed to log in: the node is checking as many "
                          "logins as it can; try again in a second\"";
        respond(c, 429, "Retry-After: 1\r\nContent-Type: application/json\r\n",
                NULL, msg, strlen(msg));
        return;
    }
    login_work *w = hcn_xcalloc(1, sizeof *w);
    w->req.data = w;
    w->c = c;
    w->auth = &h->sh->auth;
    w->body = hcn_xstrndup(c->body ? (const char *)c->body : "", c->body_len);
    w->len = c->body_len;
    w->host = host ? hcn_xstrdup(host) : NULL;
    w->query = query ? hcn_xstrdup(query) : NULL;
    c->handles++; /* c stays allocated until the check is back */
    if (uv_queue_work(&h->loop, &w->req, login_work_cb, login_after_cb) != 0) {
        pthread_mutex_lock(&sh->mu);
        sh->logins--;
        /* its start ended as a failure would (never a success, which
         * forgets the address) */
        hcn_http_limiter_result(sh->lim, peer, false, now_ms);
        pthread_mutex_unlock(&sh->mu);
        c->handles--;
        login_work_free(w);
        respond_empty(c, 500);
        return;
    }
    /* its result comes to login_after_cb, on this thread, after we return */
}

/* The login check on the thread pool (the auth is read-only once made). */
static void login_work_cb(uv_work_t *req)
{
    /* libuv's pool threads take the name of the thread that started them,
     * a loop's: say what they are (top -H, perf) */
    pthread_setname_np(pthread_self(), "hc-uvpool");
    login_work *w = req->data;
    w->ok = hcn_http_login_check(w->auth, w->body, w->len, &w->sub);
}

static void login_after_cb(uv_work_t *req, int status)
{
    login_work *w = req->data;
    conn *c = w->c;
    http_shared *sh = c->h->sh;
    pthread_mutex_lock(&sh->mu);
    sh->logins--;
    /* a guess counts even when its client has gone meanwhile */
    if (status == 0)
        hcn_http_limiter_result(sh->lim, (const struct sockaddr *)&c->peer,
                                w->ok, hcn_now_ns() / 1000000);
    pthread_mutex_unlock(&sh->mu);
    if (status == 0 && !c->closing) {
        login_answer(c, w->ok, w->sub, w->host, w->query);
        w->sub = NULL;
    }
    conn_unref(c);
    login_work_free(w);
}

/* Answer a login checked (ok or not) for c; takes sub. */
static void login_answer(conn *c, bool ok, char *sub, const char *host,
                         const char *query)
{
    hcn_http *h = c->h;
    if (!ok) {
        const char *msg = "\"Failed to log in: wrong password\"";
        respond(c, 401, "Content-Type: application/json\r\n", NULL, msg,
                strlen(msg));
        free(sub);
        return;
    }
    const char *hostname = host;
    char *bare = host_of(host);
    bool localhost = strstr(hostname ? hostname : "localhost", "localhost");
    char *clean = NULL;
    if (sub && *sub) {
        clean = hcn_xmalloc(strlen(sub) + 1);
        size_t o = 0;
        for (const char *p = sub; *p; p++)
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '-' || *p == ':' || *p == '.')
                clean[o++] = *p;
        clean[o] = 0;
    }
    uint64_t now = (uint64_t)time(NULL);
    char *tok =
        hcn_http_jwt_make(h->sh->auth.key, sizeof h->sh->auth.key,
                          h->node->name, localhost && sub && *sub ? sub : NULL,
                          now, now + h->sh->auth.lifetime_s);
    if (tok == NULL) {
        respond_empty(c, 500);
        free(sub);
        free(bare);
        free(clean);
        return;
    }
    /* A Domain attribute only for a real domain name (browsers refuse one
     * naming an IP address or a single label). */
    bool domain = strchr(bare, '.') &&
                  strspn(bare, "0123456789.") != strlen(bare) && bare[0] != '[';
    char *dom = domain ? hcn_xasprintf(" domain=.%s;", bare) : NULL;
    char *cookie = hcn_xasprintf(
        "Set-Cookie: hyperware-auth_%s%s%s=%s; Path=/;%s Max-Age=%llu; "
        "HttpOnly; SameSite=Strict\r\n",
        h->node->name, clean ? "@" : "", clean ? clean : "", tok,
        clean || dom == NULL ? "" : dom,
        (unsigned long long)h->sh->auth.lifetime_s);
    free(dom);
    json_t *q = json_object();
    if (query)
        hcn_http_parse_query(query, strlen(query), q);
    const char *redirect = json_string_value(json_object_get(q, "redirect"));
    if (redirect && redirect[0] == '/' && redirect[1] != '/' &&
        !strpbrk(redirect, "\r\n")) {
        const char *proto = find_header(c, "x-forwarded-proto");
        char *extra =
            hcn_xasprintf("%sLocation: %s://%s%s\r\n", cookie,
                          proto && header_ok("x", proto) ? proto : "http",
                          host ? host : "localhost", redirect);
        respond(c, 303, extra, NULL, NULL, 0);
        free(extra);
    } else {
        char *extra =
            hcn_xasprintf("%sContent-Type: application/json\r\n", cookie);
        respond(c, 200, extra, NULL, "null", 4);
        free(extra);
    }
    json_decref(q);
    free(cookie);
    free(tok);
    free(sub);
    free(bare);
    free(clean);
}

/* Whether `s` is some binding's secure subdomain. */
static bool is_secure_sub(hcn_http *h, const char *s)
{
    for (size_t i = 0; i < h->nsecure; i++)
        if (strcmp(h->secure_subs[i], s) == 0)
            return true;
    return false;
}

/* Remember `s` as a secure subdomain (once). */
static void add_secure_sub(hcn_http *h, const char *s)
{
    if (is_secure_sub(h, s))
        return;
    h->routes_gen++;
    char **nv = realloc(h->secure_subs, (h->nsecure + 1) * sizeof *nv);
    if (nv == NULL)
        abort();
    h->secure_subs = nv;
    h->secure_subs[h->nsecure++] = hcn_xstrdup(s);
}

static bool ws_upgrade(conn *c, const char *path);

/* The request target split: its path normalized, its raw query (NULL when
 * none), both fresh, and whether the path ended with '/' (*slash); false
 * when the URL does not parse. */
static bool request_target(conn *c, char **path, char **query, bool *slash)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (c->url == NULL || http_parser_parse_url(c->url, c->url_len, 0, &u) != 0)
        return false;
    const char *raw_path = "";
    size_t raw_len = 0;
    if (u.field_set & (1 << UF_PATH)) {
        raw_path = c->url + u.field_data[UF_PATH].off;
        raw_len = u.field_data[UF_PATH].len;
    }
    *query = NULL;
    if (u.field_set & (1 << UF_QUERY))
        *query = hcn_xstrndup(c->url + u.field_data[UF_QUERY].off,
                              u.field_data[UF_QUERY].len);
    *path = hcn_http_normalize(raw_path, raw_len);
    *slash = raw_len > 0 && raw_path[raw_len - 1] == '/';
    return true;
}

/* GET /login (the login page) or POST /login (a login) answered; false for
 * any other request. */
static bool login_request(conn *c, const char *path, const char *host_hdr,
                          const char *query)
{
    if (strcmp(path, "/login") != 0)
        return false;
    if (c->parser.method == HTTP_GET)
        send_login_page(c);
    else if (c->parser.method == HTTP_POST)
        do_login(c, host_hdr, query);
    else
        return false;
    return true;
}

/* The binding serving `path`: the best route, else the process's "/"
 * route named by the first segment; url_params gets the ':' and '*' values.
 * NULL when neither matches or the binding was unbound. */
static const binding *find_binding(hcn_http *h, const char *path,
                                   json_t *url_params)
{
    const hcn_http_route *rt =
        hcn_http_router_match(&h->routes, path, url_params);
    if (rt == NULL) {
        const char *p = path[0] == '/' ? path + 1 : path;
        const char *slash = strchr(p, '/');
        char *base = hcn_xstrndup(p, slash ? (size_t)(slash - p) : strlen(p));
        json_object_clear(url_params);
        rt = hcn_http_router_match(&h->routes, base, url_params);
        free(base);
    }
    const binding *b = rt ? rt->data : NULL;
    return b && b->app ? b : NULL;
}

/* The access check for `c` on binding b: the request's facts gathered
 * (the one login cookie that counts verified), then decided. */
static hcn_http_access check_access(conn *c, const binding *b, const char *host,
                                    const char *host_hdr)
{
    hcn_http_rule rule = {.authenticated = b->authenticated,
                          .local_only = b->local_only,
                          .secure_sub = b->secure_sub,
                          .app = b->app};
    /* Only the facts the rule looks at are gathered (this runs for every
     * request): the subdomain's and the login's for an authenticated
     * binding, the local ones for a local-only binding. */
    char *sub = NULL;
    hcn_http_facts facts = {.subdomain = ""};
    if (b->authenticated) {
        sub = hcn_xstrndup(host, strcspn(host, "."));
        bool localhost = strstr(host_hdr ? host_hdr : "localhost", "localhost");
        facts.subdomain = sub;
        facts.subdomain_secure = *sub && is_secure_sub(c->h, sub);
        facts.logged_in = auth_ok(c, hcn_http_login_sub(&rule, localhost));
    }
    if (b->local_only) {
        facts.loopback = hcn_http_is_loopback((struct sockaddr *)&c->peer);
        facts.proxied = behind_proxy(c);
        facts.host_local = hcn_http_host_is_local(host_hdr, c->h->node->name);
        facts.cross_site =
            hcn_http_cross_site(find_header(c, "origin"),
                                find_header(c, "sec-fetch-site"), host_hdr);
    }
    hcn_http_access a = hcn_http_access_check(&rule, &facts);
    /* (read by refuse for HCN_HTTP_NOT_LOCAL only) */
    c->deny_reason = b->local_only ? hcn_http_not_local_reason(&facts) : NULL;
    free(sub);
    return a;
}

/* Whether the parameters [p, end) of a media range set q to 0 ("q=0",
 * "q=0.0"...). */
static bool q_is_zero(const char *p, const char *end)
{
    while (p < end && (p = memchr(p, ';', (size_t)(end - p))) != NULL) {
        p++;
        p += strspn(p, " \t");
        if (end - p >= 3 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            const char *v = p + 2;
            size_t vl = strcspn(v, ";, \t");
            return v[0] == '0' && strspn(v, "0.") == vl;
        }
    }
    return false;
}

/* Whether an Accept header lists text/html (with a q other than 0): a
 * browser, which can use the login page.  Clients that do not (curl's and
 * fetch's default is * / *, without the spaces) get a JSON 401 instead. */
static bool accepts_html(const char *accept)
{
    const char *p = accept;
    while (p && *p) {
        const char *end = p + strcspn(p, ",");
        p += strspn(p, " \t");
        size_t tl = strcspn(p, ";, \t");
        if (tl == 9 && strncasecmp(p, "text/html", 9) == 0 &&
            !q_is_zero(p + tl, end))
            return true;
        p = *end ? end + 1 : end;
    }
    return false;
}

/* The 401 of a client that does not accept HTML on a path that needs a
 * login: what to send to log in, and which cookie it sets. */
static void refuse_json_login(conn *c, const binding *b, const char *host_hdr,
                              const char *path)
{
    hcn_http_rule rule = {.secure_sub = b->secure_sub, .app = b->app};
    bool localhost = strstr(host_hdr ? host_hdr : "localhost", "localhost");
    const char *sub = hcn_http_login_sub(&rule, localhost);
    const char *node = c->h->node->name;
    char *m = hcn_xasprintf(
        "%s %s needs a login: POST /login with {\"password\": \"...\", "
        "\"subdomain\": \"%s\"} sets the cookie hyperware-auth_%s%s%s; send "
        "it with the request (a browser, whose Accept lists text/html, gets "
        "the login page instead)",
        http_method_str((enum http_method)c->parser.method), path,
        sub ? sub : "", node, sub ? "@" : "", sub ? sub : "");
    respond_error(c, 401, "Unauthorized", m);
    free(m);
}

/* The answer to a request the access check refused with `a`. */
static void refuse(conn *c, hcn_http_access a, const binding *b,
                   const char *host_hdr, const char *path, const char *query)
{
    const char *m = NULL;
    switch (a) {
    case HCN_HTTP_ALLOW: break;
    case HCN_HTTP_LOGIN:
        if (accepts_html(find_header(c, "accept")))
            send_login_page(c);
        else
            refuse_json_login(c, b, host_hdr, path);
        break;
    case HCN_HTTP_NO_SUBDOMAIN:
        m = "attempted to access secure subdomain without host";
        respond(c, 401, NULL, NULL, m, strlen(m));
        break;
    case HCN_HTTP_TO_SECURE_SUB: {
        const char *proto = find_header(c, "x-forwarded-proto");
        char *loc =
            hcn_xasprintf("Location: %s://%s.%s%s%s%s\r\n",
                          proto && header_ok("x", proto) ? proto : "http",
                          b->secure_sub, host_hdr ? host_hdr : "localhost",
                          path, query ? "?" : "", query ? query : "");
        /* (http-parser refuses CR and LF in the Host header and the URL,
         * so the line cannot be split.) */
        respond(c, 307, loc, NULL, NULL, 0);
        free(loc);
        break;
    }
    case HCN_HTTP_OTHER_PACKAGE:
        m = "secure subdomain can only serve its associated package";
        respond(c, 403, NULL, NULL, m, strlen(m));
        break;
    case HCN_HTTP_NOT_LOCAL: {
        char *msg = hcn_xasprintf("%s is local-only: %s", path,
                                  c->deny_reason ? c->deny_reason : "");
        logf_h(c->h, 1, "local-only %s refused: %s", path,
               c->deny_reason ? c->deny_reason : "");
        respond_error(c, 403, "Forbidden", msg);
        free(msg);
        break;
    }
    }
}

/* A binding's cached content, as its MIME type says (text/plain else). */
static void serve_static(conn *c, const binding *b)
{
    const hcn_blob *s = b->static_content;
    bool typed = s->mime && header_ok("x", s->mime);
    char *ct =
        hcn_xasprintf("Content-Type: %s\r\n", typed ? s->mime : "text/plain");
    respond(c, 200, ct, NULL, s->bytes, s->len);
    free(ct);
}

/* Header order for the request's JSON: by name, then position. */
static int hdr_order(const void *x, const void *y, void *arg)
{
    const header *h = arg;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    int d = strcmp(h[a].name, h[b].name);
    return d ? d : (a > b) - (a < b);
}

/* The request's headers as a JSON object, as a jansson object of them was
 * written: a name sent twice keeps its first place and takes its last
 * value; a value with anything but visible ASCII and tabs is "". */
static void request_headers(conn *c, hcn_http_out *o)
{
    size_t n = c->nhdrs;
    /* For header i: the header whose value it takes, or n (written at an
     * earlier place). */
    size_t stack[32];
    size_t *take = n <= 16 ? stack : hcn_xmalloc(2 * n * sizeof *take);
    size_t *idx = take + n;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    qsort_r(idx, n, sizeof *idx, hdr_order, c->hdrs);
    for (size_t g = 0; g < n;) {
        size_t e = g + 1;
        while (e < n && strcmp(c->hdrs[idx[g]].name, c->hdrs[idx[e]].name) == 0)
            e++;
        take[idx[g]] = idx[e - 1];
        for (size_t k = g + 1; k < e; k++)
            take[idx[k]] = n;
        g = e;
    }
    hcn_http_out_raw(o, "{", 1);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (take[i] == n)
            continue;
        const header *v = &c->hdrs[take[i]];
        bool visible = true;
        for (size_t k = 0; k < v->vlen && visible; k++) {
            unsigned char ch = (unsigned char)v->value[k];
            visible = ch == '\t' || (ch >= 32 && ch < 127);
        }
        /* the node's login cookies stay with the node: a process that
         * had them could act as the user on every app */
        char *kept = NULL;
        if (visible && strcmp(c->hdrs[i].name, "cookie") == 0) {
            kept = hcn_http_cookie_strip(v->value, c->h->node->name);
            if (*kept == '\0') {
                free(kept);
                continue;
            }
        }
        if (!first)
            hcn_http_out_raw(o, ",", 1);
        first = false;
        hcn_http_out_jstr(o, c->hdrs[i].name, c->hdrs[i].nlen);
        hcn_http_out_raw(o, ":", 1);
        if (kept)
            hcn_http_out_jstr(o, kept, strlen(kept));
        else
            hcn_http_out_jstr(o, visible ? v->value : "",
                              visible ? v->vlen : 0);
        free(kept);
    }
    hcn_http_out_raw(o, "}", 1);
    if (take != stack)
        free(take);
}

/* The peer's address as text, formatted once per connection. */
static const char *peer_addr(conn *c)
{
    if (c->peer_text[0] == '\0')
        hcn_http_format_addr((struct sockaddr *)&c->peer, c->peer_text,
                             sizeof c->peer_text);
    return c->peer_text;
}

/* s[0..n) made valid UTF-8: s itself when it is (*fresh NULL), else a
 * lossy copy (*fresh, to free); *outlen its length. */
static const char *utf8_view(const char *s, size_t n, size_t *outlen,
                             char **fresh)
{
    *fresh = NULL;
    *outlen = n;
    if (hcc_utf8_valid((const uint8_t *)s, n))
        return s;
    *fresh = hcn_http_utf8_lossy((const uint8_t *)s, n, outlen);
    return *fresh;
}

/* The request as b's process receives it: {"Http": IncomingHttpRequest}
 * in serde's field order, written directly (no jansson tree: this runs for
 * every request) and byte for byte as json_dumps(JSON_COMPACT) wrote it
 * from one.  Fresh string. */
static char *request_json(conn *c, const binding *b, const char *host,
                          const char *path, const char *query,
                          json_t *url_params)
{
    hcn_http_out o = {0};
    hcn_http_out_reserve(&o, 512);
    const char *addr = peer_addr(c);
    hcn_http_out_str(&o, "{\"Http\":{\"source_socket_addr\":");
    hcn_http_out_jstr(&o, addr, strlen(addr));
    hcn_http_out_str(&o, ",\"method\":");
    const char *method = http_method_str((enum http_method)c->parser.method);
    hcn_http_out_jstr(&o, method, strlen(method));
    /* "http://" host path, the path made valid UTF-8, then the whole (a
     * copy only where bytes are not valid UTF-8) */
    size_t pl, hl = strlen(host);
    char *lossy_path;
    const char *vpath = utf8_view(path, strlen(path), &pl, &lossy_path);
    size_t ul = 7 + hl + pl;
    char stack[256];
    char *url = ul < sizeof stack ? stack : hcn_xmalloc(ul + 1);
    memcpy(url, "http://", 7);
    memcpy(url + 7, host, hl);
    memcpy(url + 7 + hl, vpath, pl);
    url[ul] = 0;
    free(lossy_path);
    char *lossy_url;
    size_t vl;
    const char *vurl = utf8_view(url, ul, &vl, &lossy_url);
    hcn_http_out_str(&o, ",\"url\":");
    hcn_http_out_jstr(&o, vurl, strlen(vurl));
    free(lossy_url);
    if (url != stack)
        free(url);
    hcn_http_out_str(&o, ",\"bound_path\":");
    hcn_http_out_jstr(&o, b->path, strlen(b->path));
    hcn_http_out_str(&o, ",\"headers\":");
    request_headers(c, &o);
    hcn_http_out_str(&o, ",\"url_params\":");
    hcn_http_out_json(&o, url_params);
    hcn_http_out_str(&o, ",\"query_params\":");
    if (query && *query) {
        json_t *qp = json_object();
        hcn_http_parse_query(query, strlen(query), qp);
        hcn_http_out_json(&o, qp);
        json_decref(qp);
    } else {
        hcn_http_out_raw(&o, "{}", 2);
    }
    hcn_http_out_raw(&o, "}}", 2);
    return o.buf;
}

/* The seconds to wait for the process: x-hyperware-http-server-timeout
 * when it is a number (at most --http-server-timeout-max: a client must
 * not hold a connection and a pending entry for ever), else 15. */
static uint64_t request_timeout(conn *c)
{
    uint64_t timeout = 15;
    const char *th = find_header(c, "x-hyperware-http-server-timeout");
    if (th && *th >= '0' && *th <= '9') {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(th, &end, 10);
        if (errno == 0 && *end == 0)
            timeout = v;
        else if (errno == ERANGE)
            timeout = UINT64_MAX;
    }
    uint64_t max = c->h->wait_max_s;
    return max && timeout > max ? max : timeout;
}

/* Hand `msg` (the request's JSON, taken) and the request body to b's
 * process and wait for its answer: a pending entry, the timer set to the
 * request's timeout. */
static void forward(conn *c, const binding *b, char *msg)
{
    hcn_http *h = c->h;
    uint64_t timeout = request_timeout(c);
    uint64_t id = rand_id(h);
    pending *p = hcn_xcalloc(1, sizeof *p);
    p->id = id;
    p->c = c;
    HASH_ADD(hh, h->pending, id, sizeof(uint64_t), p);
    c->pending_id = id;
    uint64_t ms = timeout > UINT64_MAX / 1000 ? UINT64_MAX : timeout * 1000;
    timer_set(c, ms);
    /* The body's buffer becomes the blob (no copy), cut to its length
     * when much of it is unused. */
    hcn_blob *blob = body_take(c, true);
    send_to_process(h, id, b->target, true, timeout, msg, blob);
    free(msg);
    hcn_blob_unref(blob);
}

/* The 404 of a path nothing is bound at: the paths the process named by
 * its first segment has bound (the node knows no methods: those are the
 * process's), or where paths live. */
static void not_bound(conn *c, const char *path)
{
    hcn_http *h = c->h;
    const char *p = path[0] == '/' ? path + 1 : path;
    char *pid = hcn_xstrndup(p, strcspn(p, "/"));
    char *list = NULL;
    size_t len = 0, n = 0;
    const size_t max = 40;
    for (size_t i = 0; i < h->routes.len; i++) {
        const binding *b = h->routes.v[i].data;
        if (b == NULL || b->app == NULL || strcmp(b->app, pid) != 0)
            continue;
        if (n < max) {
            if (n)
                append(&list, &len, ", ", 2);
            append(&list, &len, b->path, strlen(b->path));
        }
        n++;
    }
    char *m;
    if (n == 0)
        m = hcn_xasprintf("nothing is bound at %s (a process's paths begin "
                          "with /<process:package:publisher>; GET / is the "
                          "node's home page)",
                          path[0] ? path : "/");
    else
        m = hcn_xasprintf("nothing is bound at %s; %s has bound %s%s", path,
                          pid, list, n > max ? ", ..." : "");
    logf_h(h, 2, "no route for %s", path);
    respond_error(c, 404, "NotFound", m);
    free(m);
    free(list);
    free(pid);
}

/* Whether a GET or HEAD for `path` (no trailing '/' in the request) is the
 * root of a process's UI, "/<process>", its "/" binding with static content
 * (not a file homepage:homepage:sys binds at the node's root): answered
 * with a redirect to the path with '/', so that the page's relative links
 * resolve under the process and not at the node's root. */
static bool ui_root_without_slash(conn *c, const binding *b, const char *path,
                                  bool slash)
{
    return !slash && b->static_content != NULL &&
           (c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD) &&
           path[0] == '/' && strcmp(path + 1, b->app) == 0 &&
           strcmp(path, b->path) == 0;
}

/* A whole request read: a WebSocket upgrade, the login, or a bound path
 * (access check, then its cached content or the process). */
/* The UI roots bound on this server, for the home page: [{app, path}] for
 * each process whose own "/" is static content (its UI's index.html). */
static json_t *ui_roots(hcn_http *h)
{
    json_t *out = json_array();
    for (size_t i = 0; i < h->routes.len; i++) {
        const binding *b = h->routes.v[i].data;
        if (b == NULL || b->app == NULL || b->static_content == NULL)
            continue;
        char *root = hcn_xasprintf("/%s", b->app);
        size_t rl = strlen(root);
        const char *p = b->path;
        bool is_root = strncmp(p, root, rl) == 0 &&
                       (p[rl] == '\0' || strcmp(p + rl, "/") == 0);
        free(root);
        if (!is_root)
            continue;
        bool seen = false;
        size_t k;
        json_t *u;
        json_array_foreach(out, k, u) seen |=
            strcmp(json_string_value(json_object_get(u, "app")), b->app) == 0;
        if (!seen) {
            char *href = hcn_xasprintf("/%s/", b->app);
            json_array_append_new(
                out, json_pack("{ssss}", "app", b->app, "path", href));
            free(href);
        }
    }
    return out;
}

/* GET / when no process binds it: the node's home page (home.c), behind
 * the login as Hyperware's is (a client that does not take HTML gets the
 * JSON 401). */
static void serve_home(conn *c, const char *host, const char *host_hdr)
{
    binding home = {.path = "/", .authenticated = true};
    hcn_http_access a = check_access(c, &home, host, host_hdr);
    if (a != HCN_HTTP_ALLOW) {
        refuse(c, a, &home, host_hdr, "/", NULL);
        return;
    }
    json_t *uis = ui_roots(c->h);
    size_t len;
    char *page = hcn_http_home_page(c->h->node, uis, &len);
    json_decref(uis);
    respond(c, 200, "Content-Type: text/html; charset=utf-8\r\n", NULL, page,
            len);
    free(page);
}

/* handle_request's decision, made for a request with a body as soon as its
 * head is read: true when the request is refused (and was answered, the
 * connection closing after), so that its body is never read; false when it
 * may go on (its body_limit set).  handle_request decides again once the
 * body is in: the bindings may have changed meanwhile. */
static bool refused_at_headers(conn *c)
{
    char *path, *query;
    bool slash;
    if (!request_target(c, &path, &query, &slash)) {
        fail(c, 400, "BadRequest", "the request target does not parse");
        return true;
    }
    bool refused = true;
    const char *host_hdr = find_header(c, "host");
    char *host = host_of(host_hdr);
    json_t *url_params = json_object();
    const binding *b = NULL;
    if (strcmp(path, "/login") == 0 &&
        (c->parser.method == HTTP_POST || c->parser.method == HTTP_GET)) {
        c->body_limit = LOGIN_MAX_BODY;
        refused = false;
    } else if ((b = find_binding(c->h, path, url_params)) == NULL) {
        if ((path[0] == '\0' || strcmp(path, "/") == 0) &&
            (c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD)) {
            /* the home page (serve_home), behind the login */
            binding home = {.path = "/", .authenticated = true};
            hcn_http_access a = check_access(c, &home, host, host_hdr);
            if (a != HCN_HTTP_ALLOW)
                refuse(c, a, &home, host_hdr, "/", NULL);
            else
                refused = false;
        } else {
            not_bound(c, path);
        }
    } else {
        hcn_http_access a = check_access(c, b, host, host_hdr);
        if (a != HCN_HTTP_ALLOW)
            refuse(c, a, b, host_hdr, path, query);
        else
            refused = false;
    }
    if (refused) {
        logf_h(c->h, 2, "%s %s refused before its body",
               http_method_str((enum http_method)c->parser.method), path);
        json_decref(url_params);
        free(path);
        free(host);
        free(query);
        return true;
    }
    /* Kept for handle_request: it need not parse and route again. */
    pre_drop(c);
    c->pre_set = true;
    c->pre_path = path;
    c->pre_query = query;
    c->pre_host = host;
    c->pre_slash = slash;
    c->pre_params = url_params;
    c->pre_b = b;
    c->pre_allowed = b != NULL;
    c->pre_gen = c->h->routes_gen;
    return false;
}

static void handle_request(conn *c)
{
    /* Reading goes on while the request is handled (no epoll_ctl pair per
     * request): on_read keeps what a pipelining client sends meanwhile and
     * stops reading then. */
    timer_stop(c);
    c->phase = PH_WAITING;
    c->head = c->parser.method == HTTP_HEAD;
    char *path, *query, *host;
    bool slash;
    json_t *url_params;
    const char *host_hdr = find_header(c, "host");
    /* A request with a body was parsed and routed at its head
     * (refused_at_headers): its binding stands if no binding changed
     * since, and so does the access check unless it looked at a login
     * (which may have expired meanwhile). */
    const binding *pre_b = NULL;
    bool pre_allowed = false;
    if (c->pre_set) {
        path = c->pre_path;
        query = c->pre_query;
        host = c->pre_host;
        slash = c->pre_slash;
        url_params = c->pre_params;
        if (c->pre_gen == c->h->routes_gen && c->pre_b != NULL) {
            pre_b = c->pre_b;
            pre_allowed = c->pre_allowed && !pre_b->authenticated;
        } else {
            json_object_clear(url_params);
        }
        c->pre_path = c->pre_query = c->pre_host = NULL;
        c->pre_params = NULL;
        c->pre_b = NULL;
        c->pre_set = false;
    } else {
        if (!request_target(c, &path, &query, &slash)) {
            fail(c, 400, "BadRequest", "the request target does not parse");
            return;
        }
        host = host_of(host_hdr);
        url_params = json_object();
    }
    if (c->parser.upgrade && ws_upgrade(c, path))
        goto out;
    if (c->parser.upgrade)
        c->keep_alive = false; /* the parser stops after an upgrade */
    if (login_request(c, path, host_hdr, query))
        goto out;
    const binding *b = pre_b ? pre_b : find_binding(c->h, path, url_params);
    if (b == NULL && (path[0] == '\0' || strcmp(path, "/") == 0) &&
        (c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD)) {
        serve_home(c, host, host_hdr);
        goto out;
    }
    if (b == NULL) {
        not_bound(c, path);
        goto out;
    }
    hcn_http_access a =
        pre_allowed ? HCN_HTTP_ALLOW : check_access(c, b, host, host_hdr);
    if (a != HCN_HTTP_ALLOW) {
        refuse(c, a, b, host_hdr, path, query);
    } else if (ui_root_without_slash(c, b, path, slash)) {
        char *loc = hcn_xasprintf("Location: %s/%s%s\r\n", path,
                                  query ? "?" : "", query ? query : "");
        respond(c, 301, loc, NULL, NULL, 0);
        free(loc);
    } else if (b->static_content && c->parser.method == HTTP_GET) {
        serve_static(c, b);
    } else {
        forward(c, b, request_json(c, b, host, path, query, url_params));
    }
out:
    json_decref(url_params);
    free(path);
    free(host);
    free(query);
}

/* The status for an answer that is the framework's error reply,
 * {"HypercError":{"kind":...,"message":...}} alone, where an HttpResponse
 * was due: what the kernel answers for the process when its mailbox is full
 * (Busy).  The statuses are those the runtime gives its refusals over HTTP;
 * 0 when `j` is not such a reply. */
static int error_reply_status(json_t *j)
{
    /* the runtime's table of kinds, with the status each carries */
    static const struct {
        const char *kind;
        int status;
    } statuses[] = {
#define HP_REFUSAL_ROW(name, text, status) {text, status},
        HP_REFUSAL_MAP(HP_REFUSAL_ROW)
#undef HP_REFUSAL_ROW
    };
    json_t *e = json_object_get(j, "HypercError");
    if (!json_is_object(j) || json_object_size(j) != 1 || !json_is_object(e))
        return 0;
    const char *kind = json_string_value(json_object_get(e, "kind"));
    if (kind == NULL)
        return 0;
    /* from the first after Ok, which refuses nothing */
    for (size_t i = HP_REFUSAL_OK + 1; i < sizeof statuses / sizeof statuses[0];
         i++)
        if (strcmp(kind, statuses[i].kind) == 0)
            return statuses[i].status;
    return 500;
}

/* The process answered request `id`. */
static void on_http_response(hcn_http *h, hcn_msg *m)
{
    pending *p;
    HASH_FIND(hh, h->pending, &m->id, sizeof(uint64_t), p);
    if (p == NULL) {
        logf_h(h, 2, "late or unknown answer from %s dropped", m->source);
        return;
    }
    conn *c = p->c;
    HASH_DEL(h->pending, p);
    free(p);
    c->pending_id = 0;
    if (m->kind == HCN_MSG_SEND_ERROR) {
        /* a send error comes from the target it could not reach */
        logf_h(h, 1, "request to %s could not be delivered; 503", m->source);
        respond_empty(c, 503);
        return;
    }
    const void *body = m->blob ? m->blob->bytes : NULL;
    size_t blen = m->blob ? m->blob->len : 0;
    /* the plain answer without a jansson tree (it comes with every
     * request); jansson for anything else */
    hcn_http_answer *fast = &h->answer;
    if (hcn_http_answer_read((const char *)m->body, m->body_len, fast)) {
        int64_t status = fast->status;
        hdr_list hl = {fast->nheaders, fast->names, fast->values};
        respond(c, status < 200 || status > 999 ? 500 : (int)status, NULL, &hl,
                body, blen);
        return;
    }
    json_error_t je;
    json_t *j = json_loadb((const char *)m->body, m->body_len, 0, &je);
    json_t *st = json_object_get(j, "status");
    json_t *hd = json_object_get(j, "headers");
    bool ok = json_is_object(j) && json_is_integer(st) && json_is_object(hd);
    const char *k;
    json_t *v;
    if (ok)
        json_object_foreach(hd, k, v) ok = ok && json_is_string(v);
    json_int_t status = ok ? json_integer_value(st) : 500;
    int refused = ok ? 0 : error_reply_status(j);
    if (refused) {
        /* passed on as it came, so the client reads why (a full mailbox:
         * 503 Busy), not an empty 500 */
        logf_h(h, 1, "answer from %s is the framework's error reply; %d",
               m->source, refused);
        respond(c, refused, "Content-Type: application/json\r\n", NULL, m->body,
                m->body_len);
    } else if (!ok) {
        logf_h(h, 1, "answer from %s is not an HttpResponse; 500", m->source);
        respond_empty(c, 500);
    } else {
        if (status < 200 || status > 999)
            status = 500;
        size_t n = json_object_size(hd), i = 0;
        const char **names = hcn_xcalloc(2 * n + 1, sizeof *names);
        const char **values = names + n;
        json_object_foreach(hd, k, v)
        {
            names[i] = k;
            values[i++] = json_string_value(v);
        }
        hdr_list hl = {n, names, values};
        respond(c, (int)status, NULL, &hl, body, blen);
        free(names);
    }
    json_decref(j);
}

/* ------------------------------------------------------- http-parser */

static conn *conn_of(http_parser *p)
{
    return p->data;
}

static bool header_budget(conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->h->max_header) {
        c->err_status = 431;
        return false;
    }
    return true;
}

static int cb_message_begin(http_parser *p)
{
    conn *c = conn_of(p);
    reset_request(c);
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t n)
{
    conn *c = conn_of(p);
    if (!header_budget(c, n))
        return -1;
    append(&c->url, &c->url_len, at, n);
    return 0;
}

static int cb_header_field(http_parser *p, const char *at, size_t n)
{
    conn *c = conn_of(p);
    if (!header_budget(c, n))
        return -1;
    /* A chunked body's trailer fields come after the route and the access
     * check were decided on the head: they are counted against the head's
     * limit and dropped (RFC 9112 7.1.2 allows it), so that none can add a
     * header the checks did not see. */
    if (c->in_trailers)
        return 0;
    /* http-parser (built lenient) keeps a blank before the colon in the
     * name; RFC 9112 5.1 says to refuse it: a proxy may read
     * "X-Forwarded-For :" as another header than we do. */
    if (memchr(at, ' ', n) || memchr(at, '\t', n)) {
        c->err_status = 400;
        c->err_kind = "BadRequest";
        c->err_msg = "a header name holds a blank (whitespace before the "
                     "colon is not allowed)";
        return -1;
    }
    if (c->nhdrs == 0 || c->last_was_value) {
        if (c->nhdrs == c->hdrs_cap) {
            c->hdrs_cap = c->hdrs_cap ? c->hdrs_cap * 2 : 16;
            header *nh = realloc(c->hdrs, c->hdrs_cap * sizeof *nh);
            if (nh == NULL)
                abort();
            c->hdrs = nh;
        }
        memset(&c->hdrs[c->nhdrs++], 0, sizeof(header));
        c->last_was_value = false;
    }
    header *hd = &c->hdrs[c->nhdrs - 1];
    append(&hd->name, &hd->nlen, at, n);
    for (size_t i = hd->nlen - n; i < hd->nlen; i++)
        if (hd->name[i] >= 'A' && hd->name[i] <= 'Z')
            hd->name[i] = (char)(hd->name[i] - 'A' + 'a');
    return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t n)
{
    conn *c = conn_of(p);
    if (!header_budget(c, n))
        return -1;
    if (c->in_trailers)
        return 0; /* dropped, as in cb_header_field */
    header *hd = &c->hdrs[c->nhdrs - 1];
    append(&hd->value, &hd->vlen, at, n);
    c->last_was_value = true;
    return 0;
}

static int cb_headers_complete(http_parser *p)
{
    conn *c = conn_of(p);
    size_t hosts = 0;
    c->in_trailers = true;
    for (size_t i = 0; i < c->nhdrs; i++) {
        if (c->hdrs[i].value == NULL)
            c->hdrs[i].value = hcn_xstrdup("");
        hosts += strcmp(c->hdrs[i].name, "host") == 0;
    }
    if (hosts > 1) {
        /* RFC 9112 3.2: which one counts is anyone's guess. */
        c->err_status = 400;
        c->err_kind = "BadRequest";
        c->err_msg = "more than one Host header";
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->h->max_body) {
        c->err_status = 413;
        return -1;
    }
    /* A body follows: stop here, so that the route and the access check
     * decide before any of it is read (admit_body). */
    bool body = (p->flags & F_CHUNKED) ||
                ((p->flags & F_CONTENTLENGTH) && p->content_length > 0);
    if (body && !p->upgrade) {
        c->at_headers = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t n)
{
    conn *c = conn_of(p);
    hcn_http *h = c->h;
    if (c->body_len + n > c->body_limit) {
        c->err_status = 413;
        return -1;
    }
    if (c->body_len + n > c->body_cap) {
        /* With a Content-Length, that much at once (admit_body reserved
         * it); chunked, doubling, each step reserved. */
        uint64_t cap = (p->flags & F_CONTENTLENGTH)
                           ? c->body_len + n + p->content_length
                       : c->body_cap ? c->body_cap
                                     : 4096;
        while (cap < c->body_len + n)
            cap *= 2;
        if (cap > c->body_limit)
            cap = c->body_limit;
        if (!body_reserve(c, cap)) {
            logf_h(h, 1, "request body budget full (%llu bytes held); 503",
                   (unsigned long long)atomic_load(&h->sh->body_held));
            c->err_status = 503;
            c->err_kind = "Busy";
            c->err_msg = "the node holds as many request bodies as it may "
                         "(--http-body-budget); try again later";
            return -1;
        }
        c->body_buf = hcn_xrealloc(c->body_buf, sizeof(hcn_blob) + cap);
        c->body = c->body_buf->bytes;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    conn *c = conn_of(p);
    c->keep_alive = http_should_keep_alive(p) != 0;
    http_parser_pause(p, 1);
    return 0;
}

/* Check the line framing of the head in data[0..len) (enum head_scan):
 * NULL, or why it is refused. */
static const char *scan_head(conn *c, const uint8_t *data, size_t len)
{
    static const char bare_lf[] = "a line ends with a bare LF (CRLF is "
                                  "required)";
    static const char lone_cr[] = "a CR not followed by LF";
    uint8_t st = c->hscan;
    for (size_t i = 0; i < len && st != HS_DONE; i++) {
        uint8_t ch = data[i];
        switch (st) {
        case HS_START:
            if (ch == '\n')
                return bare_lf;
            st = ch == '\r' ? HS_START_CR : HS_LINE;
            break;
        case HS_START_CR:
            if (ch != '\n')
                return lone_cr;
            st = HS_START;
            break;
        case HS_LINE:
            if (ch == '\n')
                return bare_lf;
            if (ch == '\r')
                st = HS_CR;
            break;
        case HS_CR:
            if (ch != '\n')
                return lone_cr;
            st = HS_BOL;
            break;
        case HS_BOL:
            if (ch == ' ' || ch == '\t')
                return "a header line begins with whitespace (obs-fold "
                       "line folding is not allowed)";
            if (ch == '\n')
                return bare_lf;
            st = ch == '\r' ? HS_BOL_CR : HS_LINE;
            break;
        case HS_BOL_CR:
            if (ch != '\n')
                return lone_cr;
            st = HS_DONE;
            break;
        }
    }
    c->hscan = st;
    return NULL;
}

static bool refused_at_headers(conn *c);

/* The head of a request with a body is read: let the body come only if
 * the request would be served (the route and the access check decide
 * first, so that a request for nothing, or without the login, costs no
 * body memory) and the node's body budget has room for a declared
 * Content-Length.  False when it was answered (and the connection
 * closes). */
static bool admit_body(conn *c)
{
    http_parser *p = &c->parser;
    if (refused_at_headers(c))
        return false;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->body_limit) {
        fail(c, 413, NULL, NULL);
        return false;
    }
    if ((p->flags & F_CONTENTLENGTH) && !body_reserve(c, p->content_length)) {
        logf_h(c->h, 1, "request body budget full (%llu bytes held); 503",
               (unsigned long long)atomic_load(&c->h->sh->body_held));
        fail(c, 503, "Busy",
             "the node holds as many request bodies as it may "
             "(--http-body-budget); try again later");
        return false;
    }
    const char *expect = find_header(c, "expect");
    if (expect && strcasecmp(expect, "100-continue") == 0)
        write_bytes(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, W_OTHER, false);
    return !c->closing;
}

/* Hand bytes to the parser; a complete request pauses it, and what follows
 * is kept for later. */
static void feed(conn *c, const uint8_t *data, size_t len)
{
    if (c->phase == PH_IDLE && len > 0) {
        c->phase = PH_READING;
        c->hscan = HS_START;
        timer_set(c, (uint64_t)c->h->request_s * 1000);
    }
    const char *bad = scan_head(c, data, len);
    if (bad) {
        fail(c, 400, "BadRequest", bad);
        return;
    }
    size_t n = http_parser_execute(&c->parser, &c->h->settings,
                                   (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e == HPE_PAUSED && c->at_headers) {
        c->at_headers = false;
        if (!admit_body(c))
            return;
        http_parser_pause(&c->parser, 0);
        feed(c, data + n, len - n);
        return;
    }
    if (e == HPE_PAUSED) {
        if (n < len) {
            uint8_t *nl = realloc(c->left, c->left_len + len - n);
            if (nl == NULL)
                abort();
            memcpy(nl + c->left_len, data + n, len - n);
            c->left = nl;
            c->left_len += len - n;
        }
        handle_request(c);
        return;
    }
    if (c->err_status) {
        fail(c, c->err_status, c->err_kind, c->err_msg);
        return;
    }
    if (e == HPE_HEADER_OVERFLOW) {
        fail(c, 431, NULL, NULL);
        return;
    }
    if (e != HPE_OK) {
        char *m =
            hcn_xasprintf("malformed request: %s", http_errno_description(e));
        fail(c, 400, "BadRequest", m);
        free(m);
        return;
    }
}

/* The response is written: on to the next request, pipelined or not. */
static void conn_next(conn *c)
{
    if (c->closing || c->phase != PH_WRITING)
        return;
    reset_request(c);
    c->phase = PH_IDLE;
    http_parser_pause(&c->parser, 0);
    timer_set(c, (uint64_t)c->h->idle_s * 1000);
    if (c->left_len) {
        uint8_t *l = c->left;
        size_t ll = c->left_len;
        c->left = NULL;
        c->left_len = 0;
        feed(c, l, ll);
        free(l);
    }
    if (!c->closing && (c->phase == PH_IDLE || c->phase == PH_READING))
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---------------------------------------------------------- WebSockets */

_Static_assert(WSLAY_TEXT_FRAME == 0x1 && WSLAY_BINARY_FRAME == 0x2 &&
                   WSLAY_CONNECTION_CLOSE == 0x8 && WSLAY_PING == 0x9 &&
                   WSLAY_PONG == 0xA,
               "wslay's opcodes are RFC 6455's (HCC_WS_TYPE_MAP)");

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *user)
{
    conn *c = user;
    if (c->ws_in_len == 0 || c->ws_over || c->ws_big) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->ws_in_len ? len : c->ws_in_len;
    memcpy(buf, c->ws_in, n);
    c->ws_in += n;
    c->ws_in_len -= n;
    return (ssize_t)n;
}

/* wslay hands over a frame's header and its payload in separate calls:
 * they are gathered here and ws_pump writes them at once, so that a frame
 * is one write (one TCP segment), not two. */
static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user)
{
    conn *c = user;
    if (c->closing) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (len > c->ws_out_cap - c->ws_out_len) {
        size_t cap = c->ws_out_len + len;
        if (cap < 256)
            cap = 256;
        else if (cap < 2 * c->ws_out_cap)
            cap = 2 * c->ws_out_cap;
        wreq *w = hcn_xmalloc(sizeof *w + cap);
        if (c->ws_out) {
            memcpy(w->data, c->ws_out->data, c->ws_out_len);
            free(c->ws_out);
        }
        c->ws_out = w;
        c->ws_out_cap = cap;
    }
    memcpy(c->ws_out->data + c->ws_out_len, data, len);
    c->ws_out_len += len;
    return (ssize_t)len;
}

/* Write what ws_send_cb gathered. */
static void ws_flush(conn *c)
{
    wreq *w = c->ws_out;
    size_t len = c->ws_out_len;
    c->ws_out = NULL;
    c->ws_out_len = c->ws_out_cap = 0;
    if (w != NULL && len > 0 && !c->closing) {
        if (c->dw)
            ws_gate(c, NULL);
        if (!c->closing)
            write_wreq(c, w, len, W_WS, false);
        else
            free(w);
        if (c->dw)
            ws_direct_update(c);
    } else {
        free(w);
    }
}

/* A data message is assembled here, not by wslay (its no-buffering mode):
 * wslay would copy each frame into a chunk of its own (two mallocs), then
 * the message into a third, which ws_msg_cb copied into the blob.  Here
 * each frame's payload goes straight into the connection's body buffer,
 * grown to the frame's announced length when its header comes, and that
 * buffer becomes the message's blob (one malloc, one copy).  wslay still
 * reads the frames, checks them (mask, reserved bits, opcodes, the order
 * of fragments, UTF-8 of text), buffers control frames and answers pings
 * and closes.
 *
 * A message being assembled holds the node's body budget, as a request's
 * body does, counted when each frame's header comes, before its payload is
 * read.  One that finds no room stops the socket's reading (ws_recv_cb)
 * and ws_read closes it with 1013 (try again later).  A message longer
 * than --http-max-body in all its fragments is closed with 1009, as wslay
 * does with a single frame over it (wslay_event_config_set_max_recv_msg_
 * length, which in this mode looks at one frame at a time). */
static void
ws_frame_start_cb(wslay_event_context_ptr ctx,
                  const struct wslay_event_on_frame_recv_start_arg *arg,
                  void *user)
{
    conn *c = user;
    hcn_http *h = c->h;
    (void)ctx;
    c->ws_ctl = (arg->opcode & 0x8) != 0;
    if (c->ws_ctl || c->ws_over || c->ws_big)
        return; /* a control frame: 125 bytes at most, wslay's to buffer */
    if (arg->payload_length > h->max_body - c->body_len) {
        logf_h(h, 1,
               "websocket %u: a message longer than --http-max-body (%llu "
               "bytes); closing it",
               c->channel, (unsigned long long)h->max_body);
        c->ws_big = true;
        return;
    }
    if (!body_reserve(c, c->body_held + arg->payload_length)) {
        logf_h(h, 1,
               "websocket %u: request body budget full (%llu bytes held) for "
               "a frame of %llu bytes; closing it",
               c->channel, (unsigned long long)atomic_load(&h->sh->body_held),
               (unsigned long long)arg->payload_length);
        c->ws_over = true;
        return;
    }
    size_t need = c->body_len + (size_t)arg->payload_length;
    if (need > c->body_cap) {
        c->body_buf = hcn_xrealloc(c->body_buf, sizeof(hcn_blob) + need);
        c->body = c->body_buf->bytes;
        c->body_cap = need;
    }
}

/* A piece of a frame's payload, unmasked: a data frame's goes to the
 * message (ws_frame_start_cb made room for the whole frame). */
static void ws_chunk_cb(wslay_event_context_ptr ctx,
                        const struct wslay_event_on_frame_recv_chunk_arg *arg,
                        void *user)
{
    conn *c = user;
    (void)ctx;
    if (c->ws_ctl || c->ws_over || c->ws_big || arg->data_length == 0 ||
        arg->data_length > c->body_cap - c->body_len)
        return;
    memcpy(c->body + c->body_len, arg->data, arg->data_length);
    c->body_len += arg->data_length;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
    conn *c = user;
    hcn_http *h = c->h;
    c->ws_heard = true;
    hcn_blob *blob;
    if (!(arg->opcode & 0x8)) {
        /* a data message, whole in the body buffer: it becomes the blob,
         * and the budget it held is given back.  One whose last frame
         * found no room (its payload came in the same read as its header,
         * so wslay ended it) is dropped: ws_read closes the socket. */
        if (c->ws_over || c->ws_big) {
            body_release(c);
            return;
        }
        blob = body_take(c, false);
    } else {
        /* a control frame, buffered by wslay (which frees it on return) */
        const uint8_t *data = arg->msg;
        size_t len = arg->msg_length;
        if (arg->opcode == WSLAY_PONG && len == sizeof WS_PING_DATA - 1 &&
            memcmp(data, WS_PING_DATA, len) == 0)
            return; /* the answer to the server's keep-alive ping */
        if (arg->opcode == WSLAY_CONNECTION_CLOSE && len >= 2) {
            data += 2; /* the status code; the reason follows */
            len -= 2;
        }
        blob = hcn_blob_new(NULL, data, len);
    }
    char j[HCC_WS_PUSH_BODY_MAX];
    int type = hcc_ws_type_of_opcode(arg->opcode);
    hcc_ws_push_body(j, c->channel, type >= 0 ? type : HCC_WS_CLOSE);
    /* on the netpoller's thread, not the loop's generator */
    uint64_t id = c->np_on ? rand_id_from(h, &c->np_rng) : rand_id(h);
    send_to_process(h, id, c->ws_target, false, 0, j, blob);
    hcn_blob_unref(blob);
}

/* Flush what wslay has queued; close when the WebSocket is done. */
static void ws_pump(conn *c)
{
    if (c->closing)
        return;
    ws_lock(c);
    int rc = wslay_event_send(c->ws);
    ws_unlock(c);
    ws_flush(c);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    if (c->closing)
        return;
    ws_lock(c);
    bool done = !wslay_event_want_read(c->ws) &&
                !wslay_event_want_write(c->ws) && c->ws_writes == 0;
    ws_unlock(c);
    if (done)
        conn_close(c);
}

/* After wslay's reader: a message that found the body budget full or
 * grew past --http-max-body is answered with a Close (1013, 1009), and
 * nothing more is read (the loop's reader, or the netpoller's under rmu). */
static void ws_limit_close(conn *c)
{
    if (!(c->ws_over || c->ws_big) || wslay_event_get_close_sent(c->ws))
        return;
    static const char over[] = "request body budget full";
    static const char big[] = "message too big";
    if (c->ws_big)
        wslay_event_queue_close(c->ws, WSLAY_CODE_MESSAGE_TOO_BIG,
                                (const uint8_t *)big, sizeof big - 1);
    else
        wslay_event_queue_close(c->ws, 1013, (const uint8_t *)over,
                                sizeof over - 1);
    wslay_event_shutdown_read(c->ws);
}

/* Run data (bytes read from c's socket) through wslay's reader, then
 * ws_limit_close: the loop's reader (ws_read) and the netpoller's
 * (ws_np_ready, under rmu) alike.  wslay_event_recv's result. */
static int ws_recv_bytes(conn *c, const uint8_t *data, size_t len)
{
    c->ws_in = data;
    c->ws_in_len = len;
    int rc = wslay_event_recv(c->ws);
    c->ws_in = NULL;
    c->ws_in_len = 0;
    if (rc == 0)
        ws_limit_close(c);
    return rc;
}

static void ws_read(conn *c, const uint8_t *data, size_t len)
{
    if (ws_recv_bytes(c, data, len) != 0) {
        conn_close(c);
        return;
    }
    ws_pump(c);
}

/* The WebSocket keep-alive, every --ws-ping-interval seconds: a socket
 * from which no whole message (a Pong included) came since the last tick
 * gets a ping; one still silent at the next tick is closed.  So a client
 * that went away, or stalls in the middle of a frame, frees its slot
 * within three intervals. */
static void ws_tick(conn *c)
{
    hcn_http *h = c->h;
    ws_lock(c);
    bool heard = c->ws_heard;
    c->ws_heard = false;
    ws_unlock(c);
    if (heard) {
        c->ws_pinged = false;
    } else if (!c->ws_pinged) {
        struct wslay_event_msg m = {.opcode = WSLAY_PING,
                                    .msg = (const uint8_t *)WS_PING_DATA,
                                    .msg_length = sizeof WS_PING_DATA - 1};
        c->ws_pinged = true;
        ws_lock(c);
        int rc = wslay_event_queue_msg(c->ws, &m);
        ws_unlock(c);
        if (rc == 0)
            ws_pump(c);
        if (c->closing)
            return;
    } else {
        logf_h(h, 1,
               "websocket %u: nothing from its client for %u s, not even a "
               "pong; closing it",
               c->channel, 2 * h->ws_ping_s);
        conn_close(c);
        return;
    }
    timer_set(c, (uint64_t)h->ws_ping_s * 1000);
}

static bool header_has_token(const char *v, const char *tok)
{
    if (v == NULL)
        return false;
    size_t tl = strlen(tok);
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t l = strcspn(p, ",");
        size_t t = l;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (t == tl && strncasecmp(p, tok, tl) == 0)
            return true;
        p += l;
    }
    return false;
}

/* Whether c's upgrade is refused by --ws-max-connections or
 * --ws-max-connections-per-addr (then answered 503); when not and `take`,
 * c is counted in both (conn_close takes it out). */
static bool ws_over_limit(conn *c, bool take)
{
    hcn_http *h = c->h;
    http_shared *sh = h->sh;
    pthread_mutex_lock(&sh->mu);
    size_t nws = sh->nws;
    uint32_t addr_ws = c->ac ? c->ac->ws : 0;
    bool all = nws >= h->ws_max;
    bool per_addr =
        !all && h->ws_max_per_addr && c->ac && addr_ws >= h->ws_max_per_addr;
    if (take && !all && !per_addr) {
        sh->nws++;
        c->ws_slot = true;
        if (c->ac) {
            c->ac->ws++;
            c->ws_counted = true;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    if (all) {
        logf_h(h, 0, "too many open websockets (%zu); refusing one", nws);
        c->keep_alive = false;
        respond_empty(c, 503);
        return true;
    }
    if (per_addr) {
        char addr[80];
        hcn_http_format_addr((struct sockaddr *)&c->peer, addr, sizeof addr);
        logf_h(h, 1, "%u websockets open from %s; refusing one", addr_ws, addr);
        c->keep_alive = false;
        respond_error(c, 503, "Busy",
                      "too many WebSockets open from this address "
                      "(--ws-max-connections-per-addr); close one first");
        return true;
    }
    return false;
}

/* From the netpoller's thread: ask c's loop for `kind` (ws_kick). */
static void ws_np_kick(conn *c, enum ws_kick_kind kind)
{
    hcn_http *h = c->h;
    pthread_mutex_lock(&h->mu);
    bool stopped = h->stop, first = h->nkicks == 0;
    if (!stopped) {
        if (h->nkicks == h->kicks_cap) {
            h->kicks_cap = h->kicks_cap ? 2 * h->kicks_cap : 16;
            h->kicks = hcn_xrealloc(h->kicks, h->kicks_cap * sizeof *h->kicks);
        }
        h->kicks[h->nkicks++] =
            (ws_kick){.channel = c->channel, .kind = (uint8_t)kind};
    }
    pthread_mutex_unlock(&h->mu);
    /* a non-empty list has had its wake-up (on_wake takes it whole); after
     * the stop on_wake closes every connection anyway */
    if (!stopped && first)
        uv_async_send(&h->wake);
}

/* The netpoller's call (a scheduler thread, between fibers): c's socket
 * is readable.  One read, through ws_recv_bytes as on the loop, under rmu:
 * the messages go to the process from this thread.  What needs the loop (a
 * control frame's answer, the close) is asked of it (ws_np_kick).  false:
 * stop watching (the read side is done). */
static bool ws_np_ready(hcn_pollable *np)
{
    conn *c = (conn *)((char *)np - offsetof(conn, np));
    static _Thread_local uint8_t buf[READ_BUF];
    pthread_mutex_lock(&c->rmu);
    if (c->np_gone) {
        /* a round that took the event before conn_close's removal: the
         * descriptor is the loop's until the round passes, and watched no
         * more (true: no removal by number) */
        pthread_mutex_unlock(&c->rmu);
        return true;
    }
    ssize_t n;
    do
        n = read(np->fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    bool end = false, reading = true, kick = false;
    if (n > 0) {
        if (ws_recv_bytes(c, buf, (size_t)n) != 0) {
            end = true;
        } else {
            reading = wslay_event_want_read(c->ws);
            kick = !reading || wslay_event_want_write(c->ws);
        }
    } else if (n == 0 || errno != EAGAIN) {
        end = true; /* the end of the stream, or an error (on_read's) */
    }
    pthread_mutex_unlock(&c->rmu);
    if (end || kick)
        ws_np_kick(c, end ? KICK_END : !reading ? KICK_READ : KICK_PUMP);
    return !end && reading;
}

/* Have the netpoller read c from now on (its upgrade done, what came with
 * it read): the loop stops reading it.  Without a scheduler thread
 * running (no in-process process has started) the loop goes on. */
static void ws_np_start(conn *c)
{
    hcn_http *h = c->h;
    uv_os_fd_t fd;
    if (c->closing || c->ws == NULL || c->np_on ||
        !wslay_event_want_read(c->ws) ||
        uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return;
    c->np_rng = hcn_rng_next(&h->rng);
    c->np.fd = fd;
    c->np.ready = ws_np_ready;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->np_on = true;
    if (!hcn_netpoll_add(h->node, &c->np)) {
        c->np_on = false;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        return;
    }
    logf_h(h, 2, "websocket %u: read by an idle scheduler thread (netpoller)",
           c->channel);
}

/* A WebSocket upgrade for `path`: true when it was taken (switched, or
 * refused with an answer); false to treat it as a plain request. */
static bool ws_upgrade(conn *c, const char *path)
{
    hcn_http *h = c->h;
    const char *key = find_header(c, "sec-websocket-key");
    const char *ver = find_header(c, "sec-websocket-version");
    if (c->parser.method != HTTP_GET ||
        !header_has_token(find_header(c, "upgrade"), "websocket") ||
        key == NULL || ver == NULL || strcmp(ver, "13") != 0)
        return false;
    if (ws_over_limit(c, false))
        return true;
    const hcn_http_route *rt = hcn_http_router_match(&h->ws_routes, path, NULL);
    ws_binding *b = rt ? rt->data : NULL;
    if (b == NULL || b->app == NULL) {
        c->keep_alive = false;
        respond_empty(c, 404);
        return true;
    }
    const char *host_hdr = find_header(c, "host");
    bool localhost = strstr(host_hdr ? host_hdr : "localhost", "localhost");
    if (b->authenticated) {
        bool ok;
        if (b->secure_sub) {
            char *host = host_of(host_hdr);
            char *req_sub = hcn_xstrndup(host, strcspn(host, "."));
            ok = host_hdr && strcmp(req_sub, b->secure_sub) == 0 &&
                 auth_ok(c, localhost ? b->app : NULL);
            free(host);
            free(req_sub);
        } else {
            ok = auth_ok(c, NULL);
        }
        if (!ok) {
            c->keep_alive = false;
            respond_empty(c, 404);
            return true;
        }
    }
    if (b->extension) {
        /* An extension socket is the machine's own programs': the same
         * check as a local-only path. */
        hcn_http_facts facts = {
            .loopback = hcn_http_is_loopback((struct sockaddr *)&c->peer),
            .proxied = behind_proxy(c),
            .host_local = hcn_http_host_is_local(host_hdr, h->node->name),
            .cross_site = hcn_http_cross_site(find_header(c, "origin"),
                                              find_header(c, "sec-fetch-site"),
                                              host_hdr)};
        if (hcn_http_not_local_reason(&facts)) {
            logf_h(h, 1, "extension websocket %s refused: %s", path,
                   hcn_http_not_local_reason(&facts));
            c->keep_alive = false;
            respond_empty(c, 404);
            return true;
        }
    }
    /* looked at again and counted at once: another loop may have taken the
     * last place since */
    if (ws_over_limit(c, true))
        return true;
    char accept[HCN_WS_ACCEPT_LEN + 1];
    hcn_ws_accept(key, accept);
    char *resp = hcn_xasprintf("HTTP/1.1 101 Switching Protocols\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: %s\r\n\r\n",
                               accept);
    write_bytes(c, resp, strlen(resp), W_OTHER, false);
    free(resp);
    if (c->closing)
        return true;
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = ws_recv_cb,
        .send_callback = ws_send_cb,
        .on_frame_recv_start_callback = ws_frame_start_cb,
        .on_frame_recv_chunk_callback = ws_chunk_cb,
        .on_msg_recv_callback = ws_msg_cb,
    };
    if (wslay_event_context_server_init(&c->ws, &cbs, c) != 0) {
        conn_close(c);
        return true;
    }
    wslay_event_config_set_no_buffering(c->ws, 1);
    wslay_event_config_set_max_recv_msg_length(c->ws, h->max_body);
    channel *ch = hcn_xcalloc(1, sizeof *ch);
    do {
        ch->id = (uint32_t)rand_id(h);
        channel *dup;
        HASH_FIND(hh, h->channels, &ch->id, sizeof(uint32_t), dup);
        if (dup)
            ch->id = 0;
    } while (ch->id == 0);
    ch->c = c;
    HASH_ADD(hh, h->channels, id, sizeof(uint32_t), ch);
    c->channel = ch->id;
    c->ws_target = proc_address(h, b->app);
    c->ws_app = c->ws_target + strlen(h->node->name) + 1;
    c->phase = PH_WS;
    ws_direct_add(c);
    timer_stop(c);
    if (h->ws_ping_s)
        timer_set(c, (uint64_t)h->ws_ping_s * 1000);
    logf_h(h, 2, "new websocket connection to %s with id %u", b->app,
           c->channel);
    /* WebSocketOpen {path, channel_id, source_socket_addr, forwarded_for},
     * the path without its "/process:package:publisher" prefix. */
    const char *rest = path;
    while (*rest == '/')
        rest++;
    size_t al = strlen(b->app);
    rest = strncmp(rest, b->app, al) == 0 ? rest + al : "";
    while (*rest == '/')
        rest++;
    char *wpath = hcn_xasprintf("/%s", rest);
    char addr[80];
    hcn_http_format_addr((struct sockaddr *)&c->peer, addr, sizeof addr);
    const char *fwd = NULL;
    char *fwd_copy = NULL;
    const char *xff = find_header(c, "x-forwarded-for");
    if (xff) {
        size_t l = strcspn(xff, ",");
        fwd_copy = hcn_xstrndup(xff, l);
        char *s = fwd_copy;
        while (*s == ' ')
            s++;
        size_t e = strlen(s);
        while (e > 0 && s[e - 1] == ' ')
            s[--e] = 0;
        if (*s)
            fwd = s;
    }
    if (fwd == NULL && find_header(c, "x-real-ip") &&
        *find_header(c, "x-real-ip"))
        fwd = find_header(c, "x-real-ip");
    if (fwd == NULL && find_header(c, "cf-connecting-ip") &&
        *find_header(c, "cf-connecting-ip"))
        fwd = find_header(c, "cf-connecting-ip");
    size_t pl;
    char *lp = hcn_http_utf8_lossy((const uint8_t *)wpath, strlen(wpath), &pl);
    json_t *inner = json_object();
    json_object_set_new(inner, "path", json_string(lp));
    json_object_set_new(inner, "channel_id", json_integer(c->channel));
    json_object_set_new(inner, "source_socket_addr", json_string(addr));
    json_object_set_new(inner, "forwarded_for",
                        fwd ? json_string(fwd) : json_null());
    json_t *j = json_object();
    json_object_set_new(j, "WebSocketOpen", inner);
    send_json_to_process(h, rand_id(h), c->ws_target, false, 0, j, NULL);
    free(lp);
    free(wpath);
    free(fwd_copy);
    /* Frames that came with the handshake. */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (c->left_len) {
        uint8_t *l = c->left;
        size_t ll = c->left_len;
        c->left = NULL;
        c->left_len = 0;
        ws_read(c, l, ll);
        free(l);
    }
    ws_np_start(c);
    return true;
}

/* ------------------------------------------------------- connections */

static void on_handle_closed(uv_handle_t *hd)
{
    conn_unref(hd->data);
}

/* One of c's handles closed, or its login check came back: c is freed
 * when none is left. */
static void conn_unref(conn *c)
{
    if (--c->handles > 0)
        return;
    reset_request(c);
    free(c->hdrs);
    free(c->left);
    free(c->ws_target);
    free(c->ws_out);
    pthread_mutex_destroy(&c->rmu);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    hcn_http *h = c->h;
    if (c->np_on) {
        c->np_token = hcn_netpoll_remove(h->node, &c->np);
        c->np_on = false;
    }
    bool grave = !hcn_netpoll_passed(h->node, c->np_token);
    if (grave) {
        /* a netpoller round may still call ws_np_ready: it finds c gone
         * (and waits here for one under way, which is short) */
        pthread_mutex_lock(&c->rmu);
        c->np_gone = true;
        pthread_mutex_unlock(&c->rmu);
    }
    pending_drop(h, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        h->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    h->nconns--;
    http_shared *sh = h->sh;
    pthread_mutex_lock(&sh->mu);
    sh->nconns--;
    if (c->ws_slot)
        sh->nws--;
    if (c->ac) {
        c->ac->conns--;
        if (c->ws_counted)
            c->ac->ws--;
        if (c->ac->conns == 0) {
            HASH_DEL(sh->addrs, c->ac);
            free(c->ac);
        }
    }
    pthread_mutex_unlock(&sh->mu);
    c->ac = NULL;
    c->ws_slot = c->ws_counted = false;
    if (c->ws) {
        channel *ch;
        HASH_FIND(hh, h->channels, &c->channel, sizeof(uint32_t), ch);
        if (ch) {
            HASH_DEL(h->channels, ch);
            free(ch);
        }
        ws_direct_remove(c);
        logf_h(h, 2, "websocket connection %u closed", c->channel);
        json_t *j = json_object();
        json_object_set_new(j, "WebSocketClose", json_integer(c->channel));
        send_json_to_process(h, rand_id(h), c->ws_target, false, 0, j, NULL);
        wslay_event_context_free(c->ws);
        c->ws = NULL;
    }
    if (grave) {
        /* the socket stays open until the round has passed: a round whose
         * ws_np_ready said "stop" removes the descriptor by number */
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_timer_stop(&c->timer);
        c->next_grave = h->graves;
        h->graves = c;
        if (!uv_is_active((uv_handle_t *)&h->graves_timer))
            uv_timer_start(&h->graves_timer, graves_sweep, 1, 1);
        return;
    }
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Every millisecond while h->graves is not empty: close the connections
 * whose netpoller round has passed. */
static void graves_sweep(uv_timer_t *t)
{
    hcn_http *h = t->data;
    for (conn **pp = &h->graves; *pp;) {
        conn *c = *pp;
        if (!hcn_netpoll_passed(h->node, c->np_token)) {
            pp = &c->next_grave;
            continue;
        }
        *pp = c->next_grave;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    if (h->graves == NULL) {
        uv_timer_stop(t);
        if (h->stopping)
            uv_close((uv_handle_t *)t, NULL);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status; /* the connection closes by its timer or the client */
}

/* Close c after its last answer: the write side now (the client reads the
 * answer, then end of file), the rest once the client closes too or
 * DRAIN_MS have passed; what it still sends meanwhile is dropped.  A plain
 * close with unread bytes would reset the connection, and the client could
 * lose the answer (a 401 or 413 before a body it is still sending). */
static void conn_drain(conn *c)
{
    if (c->closing || c->phase == PH_DRAIN)
        return;
    pending_drop(c->h, c);
    c->phase = PH_DRAIN;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uint64_t ms = (uint64_t)c->h->request_s * 1000;
    timer_set(c, ms < DRAIN_MS ? ms : DRAIN_MS);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    conn *c = hd->data;
    *buf = uv_buf_init((char *)c->h->rbuf, READ_BUF);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    if (c->closing)
        return;
    if (nread == UV_EOF && (c->phase == PH_WAITING || c->phase == PH_WRITING)) {
        /* A client that half-closed after its request still gets the
         * answer; conn_next reads again and sees the end then. */
        uv_read_stop(s);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->phase == PH_DRAIN)
        return;
    if (c->phase == PH_WS) {
        ws_read(c, (const uint8_t *)buf->base, (size_t)nread);
        return;
    }
    if (c->phase == PH_WAITING || c->phase == PH_WRITING) {
        /* Reading is stopped while a request is handled; keep what came. */
        uint8_t *nl = realloc(c->left, c->left_len + (size_t)nread);
        if (nl == NULL)
            abort();
        memcpy(nl + c->left_len, buf->base, (size_t)nread);
        c->left = nl;
        c->left_len += (size_t)nread;
        uv_read_stop(s);
        return;
    }
    feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* Count a new connection against its peer address: true when it may
 * stay; false when that address has --http-max-connections-per-addr open
 * already (then it is answered 503 and closes). */
static bool addr_admit(conn *c)
{
    hcn_http *h = c->h;
    http_shared *sh = h->sh;
    uint8_t key[17];
    hcn_http_addr_key((const struct sockaddr *)&c->peer, key);
    addr_count *ac;
    pthread_mutex_lock(&sh->mu);
    HASH_FIND(hh, sh->addrs, key, sizeof key, ac);
    if (h->max_per_addr && ac && ac->conns >= h->max_per_addr) {
        uint32_t conns = ac->conns;
        pthread_mutex_unlock(&sh->mu);
        char addr[80];
        hcn_http_format_addr((struct sockaddr *)&c->peer, addr, sizeof addr);
        logf_h(h, 1, "%u connections open from %s; refusing one", conns, addr);
        c->phase = PH_WAITING;
        respond_error(c, 503, "Busy",
                      "too many connections open from this address "
                      "(--http-max-connections-per-addr); close one first");
        return false;
    }
    if (ac == NULL) {
        ac = hcn_xcalloc(1, sizeof *ac);
        memcpy(ac->key, key, sizeof key);
        HASH_ADD(hh, sh->addrs, key, sizeof ac->key, ac);
    }
    ac->conns++;
    c->ac = ac;
    pthread_mutex_unlock(&sh->mu);
    return true;
}

/* A connected c (its handles open) joins the server and starts reading. */
static void conn_begin(hcn_http *h, conn *c)
{
    c->next = h->conns;
    if (h->conns)
        h->conns->prev = c;
    h->conns = c;
    h->nconns++;
    int len = sizeof c->peer;
    uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->body_limit = h->max_body;
    if (!addr_admit(c))
        return; /* answered 503, closing */
    c->phase = PH_IDLE;
    timer_set(c, (uint64_t)h->idle_s * 1000);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* An accepted connection, counted in sh->nconns, that no loop will serve
 * (its loop stopping, or uv_tcp_open refused it): closed, uncounted. */
static void conn_drop_fd(http_shared *sh, int fd)
{
    close(fd);
    pthread_mutex_lock(&sh->mu);
    sh->nconns--;
    pthread_mutex_unlock(&sh->mu);
}

/* A connection of h with its two libuv handles made (freed by
 * conn_unref once both are closed).  h's thread. */
static conn *conn_new(hcn_http *h)
{
    conn *c = hcn_xcalloc(1, sizeof *c);
    c->h = h;
    uv_tcp_init(&h->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(&h->loop, &c->timer);
    c->timer.data = c;
    c->due = TIMER_OFF;
    c->handles = 2;
    pthread_mutex_init(&c->rmu, NULL);
    return c;
}

/* A connection accepted for loop h (fd non-blocking, counted in
 * sh->nconns): its handles, then conn_begin.  h's thread. */
static void conn_open(hcn_http *h, int fd)
{
    conn *c = conn_new(h);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        conn_drop_fd(h->sh, fd);
        c->closing = true;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    conn_begin(h, c);
}

/* Hand a connection accepted by loops[0] to loop `to` (another loop's
 * thread): its queue, then a wake-up.  After its stop the connection is
 * closed. */
static void conn_give(hcn_http *to, int fd)
{
    pthread_mutex_lock(&to->mu);
    bool stopped = to->stop;
    if (!stopped) {
        if (to->nfds == to->fds_cap) {
            to->fds_cap = to->fds_cap ? 2 * to->fds_cap : 16;
            to->fds = hcn_xrealloc(to->fds, to->fds_cap * sizeof *to->fds);
        }
        to->fds[to->nfds++] = fd;
    }
    pthread_mutex_unlock(&to->mu);
    if (stopped) {
        conn_drop_fd(to->sh, fd);
        return;
    }
    uv_async_send(&to->wake);
}

static void on_listen(uv_poll_t *p, int status, int events);

static void on_listen_pause(uv_timer_t *t)
{
    hcn_http *h = t->data;
    uv_poll_start(&h->lpoll, UV_READABLE, on_listen);
}

/* Accepting failed (`why`): out of descriptors or memory, or an error on
 * the listening socket.  What is queued stays queued; look again in
 * 100 ms rather than at once, again and again, and say so once in 10 s. */
static void listen_pause(hcn_http *h, const char *why)
{
    uint64_t now = uv_now(&h->loop);
    if (h->accept_said == 0 || now - h->accept_said >= 10000) {
        h->accept_said = now;
        logf_h(h, 0,
               "cannot accept a connection: %s; trying again every "
               "100 ms",
               why);
    }
    uv_poll_stop(&h->lpoll);
    uv_timer_start(&h->lpause, on_listen_pause, 100, 0);
}

/* The listening socket is readable (loops[0]): accept what is there, a
 * bounded batch at a time, each connection to the next loop in turn. */
static void on_listen(uv_poll_t *p, int status, int events)
{
    (void)events;
    hcn_http *h = p->data;
    http_shared *sh = h->sh;
    if (status < 0) { /* libuv has stopped the handle */
        listen_pause(h, uv_strerror(status));
        return;
    }
    for (int i = 0; i < 64; i++) {
        int fd =
            accept4(sh->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            listen_pause(h, strerror(e));
            return;
        }
        pthread_mutex_lock(&sh->mu);
        bool full = sh->nconns >= h->max_conns;
        if (!full)
            sh->nconns++;
        pthread_mutex_unlock(&sh->mu);
        if (full) {
            logf_h(h, 1, "connection limit (%u) reached; closing a new one",
                   h->max_conns);
            close(fd);
            continue;
        }
        hcn_http *to = sh->loops[sh->next++ % sh->n];
        if (to == h)
            conn_open(h, fd);
        else
            conn_give(to, fd);
    }
}

/* ------------------------------------------------ actions from processes */

static void action_reply(hcn_http *h, hcn_msg *m, const char *target,
                         const char *body)
{
    hcn_mod_respond(h->self, m->id, target, body, NULL);
}

static void action_err(hcn_http *h, hcn_msg *m, const char *err)
{
    char body[96];
    snprintf(body, sizeof body, "{\"Err\":\"%s\"}", err);
    action_reply(h, m, m->source, body);
}

static void free_binding(void *p)
{
    binding *b = p;
    free(b->app);
    free(b->target);
    free(b->path);
    free(b->secure_sub);
    hcn_blob_unref(b->static_content);
    free(b);
}

static void free_ws_binding(void *p)
{
    ws_binding *b = p;
    free(b->app);
    free(b->secure_sub);
    free(b);
}

/* A struct variant's string/bool field, serde-strict (required). */
static const char *field_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int field_bool(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

static conn *channel_of(hcn_http *h, uint32_t cid, const char *pid,
                        bool *found_other)
{
    *found_other = false;
    channel *ch;
    HASH_FIND(hh, h->channels, &cid, sizeof(uint32_t), ch);
    if (ch == NULL)
        return NULL;
    if (strcmp(ch->c->ws_app, pid) != 0) {
        *found_other = true;
        return NULL;
    }
    return ch->c;
}

static bool is_u32(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 &&
           json_integer_value(v) <= UINT32_MAX;
}

static void ws_close_channel(conn *c)
{
    if (c->ws_closed_sent)
        return;
    c->ws_closed_sent = true;
    ws_lock(c);
    wslay_event_queue_close(c->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_unlock(c);
    ws_pump(c);
}

/* WebSocketPush of message type `wt` (an hcc_ws_type) to channel `cid`.
 * Returns NULL on success, else the HttpServerError name. */
static const char *ws_push(hcn_http *h, hcn_msg *m, uint32_t cid, int wt)
{
    const char *pid = hcn_addr_pid(m->source);
    uint8_t op = (uint8_t)hcc_ws_type_opcode(wt);
    if (m->blob == NULL)
        return "NoBlob";
    if ((op == WSLAY_PING || op == WSLAY_PONG) && m->blob->len > 125)
        return "WsPingPongTooLong";
    bool other;
    conn *c = channel_of(h, cid, pid, &other);
    if (c && c->dw && ws_gate(c, m)) {
        /* its frame was begun on the sender's thread and is now whole */
        if (c->dw) /* not closed by the write */
            ws_direct_update(c);
        return NULL;
    }
    if (op == WSLAY_CONNECTION_CLOSE) {
        if (other)
            return "WsChannelNotFound";
        if (c)
            ws_close_channel(c);
        return NULL;
    }
    if (c == NULL || c->ws_closed_sent)
        return "WsChannelNotFound";
    ws_lock(c);
    size_t queued = wslay_event_get_queued_msg_count(c->ws);
    ws_unlock(c);
    if (c->ws_writes + queued >= h->ws_queue) {
        logf_h(h, 0,
               "websocket %u: %u frames waiting for a client that does not "
               "read; closing it",
               c->channel, h->ws_queue);
        conn_close(c);
        return "WsChannelNotFound";
    }
    struct wslay_event_msg msg = {
        .opcode = op, .msg = m->blob->bytes, .msg_length = m->blob->len};
    char *lossy = NULL;
    if (op == WSLAY_TEXT_FRAME &&
        !hcc_utf8_valid(m->blob->bytes, m->blob->len)) {
        size_t ll;
        lossy = hcn_http_utf8_lossy(m->blob->bytes, m->blob->len, &ll);
        msg.msg = (const uint8_t *)lossy;
        msg.msg_length = ll;
    }
    ws_lock(c);
    int rc = wslay_event_queue_msg(c->ws, &msg);
    ws_unlock(c);
    free(lossy);
    if (rc != 0)
        return "WsChannelNotFound";
    ws_pump(c);
    return NULL;
}

static int http_enqueue(hcn_http *h, hcn_msg *m, uint32_t max_req);

/* The end of an action: its error (an HttpServerError name) or, when the
 * sender waits for one, Ok. */
static void action_done(hcn_http *h, hcn_msg *m, const char *err)
{
    if (err) {
        if (strcmp(err, "MalformedRequest") == 0)
            logf_h(h, 1, "malformed request from %s", m->source);
        action_err(h, m, err);
    } else if (m->has_expects || m->rsvp) {
        action_reply(h, m, m->rsvp ? m->rsvp : m->source, "{\"Ok\":null}");
    }
}

static void handle_action(hcn_http *h, hcn_msg *m)
{
    /* the push, the action of every message a process sends to a
     * WebSocket, without a jansson tree */
    uint32_t push_id;
    int push_type;
    if (hcc_ws_push_read((const char *)m->body, m->body_len, &push_id,
                         &push_type)) {
        action_done(h, m, ws_push(h, m, push_id, push_type));
        return;
    }
    const char *pid = hcn_addr_pid(m->source);
    json_error_t je;
    json_t *j =
        json_loadb((const char *)m->body, m->body_len, JSON_DECODE_ANY, &je);
    const char *err = NULL;
    const char *name = NULL;
    json_t *arg = NULL;
    bool binding_change = false; /* made in every loop (below) */
    if (json_is_object(j) && json_object_size(j) == 1) {
        void *it = json_object_iter(j);
        name = json_object_iter_key(it);
        arg = json_object_iter_value(it);
    }
    if (name == NULL) {
        err = "MalformedRequest";
    } else if (strcmp(name, "Bind") == 0 || strcmp(name, "SecureBind") == 0) {
        bool secure = name[0] == 'S';
        const char *path = field_str(arg, "path");
        int auth = secure ? 1 : field_bool(arg, "authenticated");
        int local = secure ? 0 : field_bool(arg, "local_only");
        int cache = field_bool(arg, "cache");
        if (path == NULL || auth < 0 || local < 0 || cache < 0) {
            err = "MalformedRequest";
        } else if (hc_process_id_check(pid) != 0) {
            err = "InvalidSourceProcess";
        } else if (cache && m->blob == NULL) {
            err = "NoBlob";
        } else {
            binding *b = hcn_xcalloc(1, sizeof *b);
            b->app = hcn_xstrdup(pid);
            b->target = proc_address(h, pid);
            b->path = hcn_http_format_path(pid, path);
            b->authenticated = auth;
            b->local_only = local;
            if (secure) {
                b->secure_sub = hcn_http_secure_subdomain(pid);
                add_secure_sub(h, b->secure_sub);
            }
            if (cache)
                b->static_content = hcn_blob_ref(m->blob);
            if (h->index == 0)
                logf_h(h, 3, "binding %s, %s, %s, %s", b->path,
                       auth ? "authenticated" : "unauthenticated",
                       local ? "local only" : "open",
                       cache ? "cached" : "dynamic");
            binding_change = true;
            h->routes_gen++;
            void *old = hcn_http_router_add(&h->routes, b->path, b);
            if (old)
                free_binding(old);
        }
    } else if (strcmp(name, "Unbind") == 0) {
        const char *path = field_str(arg, "path");
        if (path == NULL) {
            err = "MalformedRequest";
        } else {
            binding *b = hcn_xcalloc(1, sizeof *b);
            b->path = hcn_http_format_path(pid, path);
            h->routes_gen++;
            void *old = hcn_http_router_add(&h->routes, b->path, b);
            if (old)
                free_binding(old);
            binding_change = true;
        }
    } else if (strcmp(name, "WebSocketBind") == 0 ||
               strcmp(name, "WebSocketSecureBind") == 0) {
        bool secure = strcmp(name, "WebSocketSecureBind") == 0;
        const char *path = field_str(arg, "path");
        int auth = secure ? 1 : field_bool(arg, "authenticated");
        int ext = field_bool(arg, "extension");
        if (path == NULL || auth < 0 || ext < 0) {
            err = "MalformedRequest";
        } else if (hc_process_id_check(pid) != 0) {
            err = "InvalidSourceProcess";
        } else {
            ws_binding *b = hcn_xcalloc(1, sizeof *b);
            b->app = hcn_xstrdup(pid);
            b->authenticated = auth;
            b->extension = ext;
            if (secure) {
                b->secure_sub = hcn_http_secure_subdomain(pid);
                add_secure_sub(h, b->secure_sub);
            }
            char *fp = hcn_http_format_path(pid, path);
            void *old = hcn_http_router_add(&h->ws_routes, fp, b);
            free(fp);
            if (old)
                free_ws_binding(old);
            binding_change = true;
        }
    } else if (strcmp(name, "WebSocketUnbind") == 0) {
        const char *path = field_str(arg, "path");
        if (path == NULL) {
            err = "MalformedRequest";
        } else {
            ws_binding *b = hcn_xcalloc(1, sizeof *b);
            char *fp = hcn_http_format_path(pid, path);
            void *old = hcn_http_router_add(&h->ws_routes, fp, b);
            free(fp);
            if (old)
                free_ws_binding(old);
            binding_change = true;
        }
    } else if (strcmp(name, "WebSocketPush") == 0) {
        json_t *cid = json_object_get(arg, "channel_id");
        const char *type = field_str(arg, "message_type");
        int wt = type ? hcc_ws_type_parse(type, strlen(type)) : -1;
        err = json_is_object(arg) && is_u32(cid) && wt >= 0
                  ? ws_push(h, m, (uint32_t)json_integer_value(cid), wt)
                  : "MalformedRequest";
    } else if (strcmp(name, "WebSocketClose") == 0) {
        if (!is_u32(arg)) {
            err = "MalformedRequest";
        } else {
            bool other;
            conn *c =
                channel_of(h, (uint32_t)json_integer_value(arg), pid, &other);
            if (other)
                err = "WsChannelNotFound";
            else if (c)
                ws_close_channel(c);
        }
    } else if (strcmp(name, "WebSocketExtPushOutgoing") == 0) {
        /* Extension sockets carry msgpack-wrapped kernel messages; not
         * supported here. */
        err = "MalformedRequest";
    } else {
        err = "MalformedRequest";
    }
    json_decref(j);
    if (binding_change && h->index + 1 < h->sh->n) {
        /* Every loop holds the bindings: the next loop makes the change
         * too, and the last one answers, so that the answer comes once
         * every loop serves the new binding.  (The message goes from loop
         * to loop in the order it came, behind its sender's earlier
         * ones.) */
        (void)http_enqueue(h->sh->loops[h->index + 1], hcn_msg_ref(m), 0);
        return;
    }
    action_done(h, m, err);
}

static void handle_msg(hcn_http *h, hcn_msg *m)
{
    size_t nl = strlen(h->node->name);
    bool local =
        strncmp(m->source, h->node->name, nl) == 0 && m->source[nl] == '@';
    if (!local)
        return;
    if (m->kind == HCN_MSG_REQUEST)
        handle_action(h, m);
    else
        on_http_response(h, m);
}

/* ------------------------------------------------------------ the loop */

/* The failed logins since the last summary, in one line (if any). */
static void login_summary(hcn_http *h)
{
    char line[512];
    pthread_mutex_lock(&h->sh->mu);
    bool any = hcn_http_limiter_summary(h->sh->lim, line, sizeof line);
    pthread_mutex_unlock(&h->sh->mu);
    if (any)
        logf_h(h, 0, "%s", line);
}

static void on_login_timer(uv_timer_t *t)
{
    login_summary(t->data);
}

/* The listening socket is closed with its poll handle, when the server
 * stops: new connections are refused from then on. */
static void on_lpoll_closed(uv_handle_t *hd)
{
    hcn_http *h = hd->data;
    close(h->sh->listen_fd);
    h->sh->listen_fd = -1;
}

static void on_wake(uv_async_t *a)
{
    hcn_http *h = a->data;
    pthread_mutex_lock(&h->mu);
    hcn_msg *list = h->qhead;
    h->qhead = h->qtail = NULL;
    h->qreq = 0;
    bool stop = h->stop;
    int *fds = h->fds; /* taken whole: conn_give starts a new one */
    size_t nfds = h->nfds;
    h->fds = NULL;
    h->nfds = h->fds_cap = 0;
    ws_kick *kicks = h->kicks; /* the same */
    size_t nkicks = h->nkicks;
    h->kicks = NULL;
    h->nkicks = h->kicks_cap = 0;
    pthread_mutex_unlock(&h->mu);
    for (size_t i = 0; i < nkicks && !stop; i++) {
        channel *ch;
        HASH_FIND(hh, h->channels, &kicks[i].channel, sizeof(uint32_t), ch);
        if (ch == NULL)
            continue; /* closed since */
        conn *c = ch->c;
        if (kicks[i].kind == KICK_END) {
            conn_close(c);
            continue;
        }
        if (kicks[i].kind == KICK_READ && c->np_on) {
            /* unwatched already by the round that said so, which calls
             * ws_np_ready no more; its token keeps the socket open until
             * it has passed (conn_close) */
            c->np_token = hcn_netpoll_remove(h->node, &c->np);
            c->np_on = false;
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        }
        ws_pump(c);
    }
    free(kicks);
    for (size_t i = 0; i < nfds; i++) {
        if (stop)
            conn_drop_fd(h->sh, fds[i]);
        else
            conn_open(h, fds[i]);
    }
    free(fds);
    while (list) {
        hcn_msg *m = list;
        list = m->next;
        m->next = NULL;
        if (!stop)
            handle_msg(h, m);
        if (m->kind == HCN_MSG_REQUEST)
            atomic_fetch_sub(&h->q_acts, 1);
        hcn_msg_unref(m);
    }
    if (stop) {
        uv_close((uv_handle_t *)&h->login_timer, NULL);
        while (h->conns)
            conn_close(h->conns);
        written_run(h); /* before the check handle goes */
        if (h->polling) {
            uv_close((uv_handle_t *)&h->lpoll, on_lpoll_closed);
            uv_close((uv_handle_t *)&h->lpause, NULL);
            h->polling = false;
        }
        uv_close((uv_handle_t *)&h->wake, NULL);
        uv_close((uv_handle_t *)&h->prepare, NULL);
        uv_close((uv_handle_t *)&h->check, NULL);
        h->stopping = true; /* the graves' timer goes with the last one */
        if (h->graves == NULL)
            uv_close((uv_handle_t *)&h->graves_timer, NULL);
    }
}

static void *loop_main(void *arg)
{
    hcn_http *h = arg;
    pthread_setname_np(pthread_self(), "hc-http"); /* top -H, perf, gdb */
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Queue m (taken) for the loop thread and wake it.  A request over
 * `max_req` (0: no bound) is refused with HCC_EFULL, m left to the caller;
 * after the stop m is dropped. */
static int http_enqueue(hcn_http *h, hcn_msg *m, uint32_t max_req)
{
    bool req = m->kind == HCN_MSG_REQUEST;
    pthread_mutex_lock(&h->mu);
    if (h->stop) {
        pthread_mutex_unlock(&h->mu);
        hcn_msg_unref(m);
        return HCC_EOK;
    }
    if (req && max_req && h->qreq >= max_req) {
        pthread_mutex_unlock(&h->mu);
        return HCC_EFULL;
    }
    h->qreq += req;
    if (req)
        atomic_fetch_add(&h->q_acts, 1);
    m->next = NULL;
    bool was_empty = h->qhead == NULL;
    if (h->qtail)
        h->qtail->next = m;
    else
        h->qhead = m;
    h->qtail = m;
    pthread_mutex_unlock(&h->mu);
    /* A non-empty queue has had its wake-up sent, and on_wake has not
     * taken the queue yet (it empties it under the lock): one send per
     * batch. */
    if (was_empty)
        uv_async_send(&h->wake);
    return HCC_EOK;
}

/* The loop a message to the server is for: a plain WebSocketPush's (then
 * *push, with its channel and type in *cid and *wt: push_of), a
 * WebSocketPush's or WebSocketClose's in another shape by its channel, an
 * answer's by its request's id; any other request starts at loops[0]
 * (which passes a binding change on to the others: handle_action).  Any
 * thread. */
static hcn_http *loop_of(http_shared *sh, const hcn_msg *m, bool *push,
                         uint32_t *cid, int *wt)
{
    if ((*push = push_of(m, cid, wt)))
        return loop_for(sh, *cid);
    if (sh->n == 1)
        return sh->loops[0];
    if (m->kind != HCN_MSG_REQUEST)
        return loop_for(sh, m->id);
    json_t *j =
        json_loadb((const char *)m->body, m->body_len, JSON_DECODE_ANY, NULL);
    hcn_http *to = sh->loops[0];
    if (json_is_object(j) && json_object_size(j) == 1) {
        json_t *v = json_object_get(j, "WebSocketPush");
        v = v != NULL ? json_object_get(v, "channel_id")
                      : json_object_get(j, "WebSocketClose");
        if (is_u32(v))
            to = loop_for(sh, (uint64_t)json_integer_value(v));
    }
    json_decref(j);
    return to;
}

/* What the kernel pushes to the module's mailbox itself (send errors, and
 * what came before the server ran), on the module's thread. */
static void http_handle(hcn_proc *self, hcn_msg *m)
{
    http_shared *sh = self->mod;
    uint32_t cid;
    int wt;
    bool push;
    (void)http_enqueue(loop_of(sh, m, &push, &cid, &wt), m, 0);
}

/* The senders' threads put messages straight into the loop's queue: no hop
 * through the module's process thread (its mailbox still carries the
 * kernel's send errors, to http_handle).  The mailbox's request bound
 * holds for each loop's queue. */
static int http_deliver(hcn_proc *self, hcn_msg *m)
{
    http_shared *sh = self->mod;
    if (sh == NULL) /* still starting */
        return hcn_mailbox_push(&self->mb, m);
    uint32_t cid;
    int wt;
    bool push;
    hcn_http *h = loop_of(sh, m, &push, &cid, &wt);
    switch (push ? ws_direct_write(h, m, cid, wt) : DIRECT_NO) {
    case DIRECT_DONE: hcn_msg_unref(m); return HCC_EOK;
    case DIRECT_PARTIAL:
        /* its end is with the loop now: no bound can refuse it */
        return http_enqueue(h, m, 0);
    default: return http_enqueue(h, m, self->mb.max_req);
    }
}

static void walk_close(uv_handle_t *hd, void *arg)
{
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

static void http_stop_thread(hcn_http *h)
{
    if (h == NULL || !h->has_thread)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    pthread_join(h->thread, NULL);
    h->has_thread = false;
}

/* Everything loop h holds, once its thread (if any) has stopped. */
static void http_free(hcn_http *h)
{
    written_run(h); /* their connections are closing, not yet freed */
    /* Handles left (none normally) are closed before the loop goes. */
    uv_walk(&h->loop, walk_close, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    while (h->qhead) {
        hcn_msg *m = h->qhead;
        h->qhead = m->next;
        hcn_msg_unref(m);
    }
    for (size_t i = 0; i < h->nfds; i++)
        close(h->fds[i]);
    free(h->fds);
    free(h->kicks);
    pending *p, *pt;
    HASH_ITER(hh, h->pending, p, pt)
    {
        HASH_DEL(h->pending, p);
        free(p);
    }
    channel *ch, *ct;
    HASH_ITER(hh, h->channels, ch, ct)
    {
        HASH_DEL(h->channels, ch);
        free(ch);
    }
    hcn_http_router_fini(&h->routes, free_binding);
    hcn_http_router_fini(&h->ws_routes, free_ws_binding);
    for (size_t i = 0; i < h->nsecure; i++)
        free(h->secure_subs[i]);
    free(h->secure_subs);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->dmu);
    free(h->self_addr);
    free(h);
}

/* What the loops share for node n, with room for `loops` loops (none made
 * yet) and no listening socket; NULL with a message in err. */
static http_shared *shared_new(hcn_node *n, unsigned loops, char *err,
                               size_t errlen)
{
    http_shared *sh = hcn_xcalloc(1, sizeof *sh);
    if (hcn_http_auth_init(n, n->cfg.http_password, &sh->auth, err, errlen) !=
        0) {
        free(sh);
        return NULL;
    }
    sh->loops = hcn_xcalloc(loops, sizeof *sh->loops);
    sh->listen_fd = -1;
    pthread_mutex_init(&sh->mu, NULL);
    sh->lim = hcn_http_limiter_new();
    return sh;
}

/* Free sh, its loops (their threads stopped) with it. */
static void shared_free(http_shared *sh)
{
    for (unsigned i = 0; i < sh->n; i++)
        http_free(sh->loops[i]);
    free(sh->loops);
    if (sh->listen_fd >= 0)
        close(sh->listen_fd);
    addr_count *ac, *at;
    HASH_ITER(hh, sh->addrs, ac, at)
    {
        HASH_DEL(sh->addrs, ac);
        free(ac);
    }
    pthread_mutex_destroy(&sh->mu);
    hcn_http_auth_fini(&sh->auth);
    hcn_http_limiter_free(sh->lim);
    free(sh);
}

static void http_stop(hcn_proc *self)
{
    http_shared *sh = self->mod;
    if (sh == NULL)
        return;
    for (unsigned i = 0; i < sh->n; i++)
        http_stop_thread(sh->loops[i]);
    /* the failed logins' last summary, once every loop has stopped: a loop
     * runs until its logins under way are checked, and those count */
    if (sh->n > 0)
        login_summary(sh->loops[0]);
}

static void http_fini(hcn_proc *self)
{
    http_shared *sh = self->mod;
    if (sh == NULL)
        return;
    http_stop(self);
    self->mod = NULL;
    shared_free(sh);
}

static const hcn_module_ops http_ops = {
    .handle = http_handle,
    .deliver = http_deliver,
    .stop = http_stop,
    .fini = http_fini,
};

/* A new loop of sh for node n (its process entry `self`), as
 * sh->loops[sh->n]: limits, parser, its libuv loop with the wake-up
 * handle; no thread. */
static hcn_http *http_loop_new(http_shared *sh, hcn_node *n, hcn_proc *self)
{
    const hc_node_config *cfg = &n->cfg;
    hcn_http *h = hcn_xcalloc(1, sizeof *h);
    h->sh = sh;
    h->index = sh->n;
    h->self = self;
    h->node = n;
    h->self_addr = hcn_xasprintf("%s@%s", n->name, HTTP_PID);
    h->rng = hcn_random_u64() | 1;
    h->max_body = cfg->http_max_body;
    h->max_header = cfg->http_max_header;
    h->max_conns = cfg->http_max_connections;
    h->idle_s = cfg->http_idle_timeout_s;
    h->request_s = cfg->http_request_timeout_s;
    h->ws_max = cfg->ws_max_connections;
    h->ws_queue = cfg->ws_queue_max;
    h->body_budget = cfg->http_body_budget;
    h->max_per_addr = cfg->http_max_connections_per_addr;
    h->ws_max_per_addr = cfg->ws_max_connections_per_addr;
    h->wait_max_s = cfg->http_server_timeout_max_s;
    h->ws_ping_s = cfg->ws_ping_interval_s;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->dmu, NULL);
    h->settings.on_message_begin = cb_message_begin;
    h->settings.on_url = cb_url;
    h->settings.on_header_field = cb_header_field;
    h->settings.on_header_value = cb_header_value;
    h->settings.on_headers_complete = cb_headers_complete;
    h->settings.on_body = cb_body;
    h->settings.on_message_complete = cb_message_complete;
    /* http-parser's own header limit is process-wide; ours is per server
     * (header_budget), so let the parser's be at least as large. */
    http_parser_set_max_header_size(
        h->max_header + 1024 > 80 * 1024 ? h->max_header + 1024 : 80 * 1024);
    uv_loop_init(&h->loop);
    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    uv_timer_init(&h->loop, &h->login_timer);
    h->login_timer.data = h;
    if (h->index == 0) { /* the summary of the failed logins, for all */
        uv_timer_start(&h->login_timer, on_login_timer, 60000, 60000);
        uv_unref((uv_handle_t *)&h->login_timer);
    }
    uv_prepare_init(&h->loop, &h->prepare);
    h->prepare.data = h;
    uv_prepare_start(&h->prepare, on_prepare);
    uv_check_init(&h->loop, &h->check);
    h->check.data = h;
    uv_check_start(&h->check, on_check);
    uv_timer_init(&h->loop, &h->graves_timer);
    h->graves_timer.data = h;
    sh->loops[sh->n++] = h;
    return h;
}

/* The listening socket for ss (non-blocking; IPv6 ones take IPv4 too):
 * its descriptor, or a negative errno. */
static int listen_socket(const struct sockaddr_storage *ss)
{
    int fd =
        socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int on = 1, off = 0;
    socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 ||
        listen(fd, 511) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* How many loops: --http-loops, or one a CPU the node may run on (its
 * affinity mask) up to 4; one when it serves no port (its loops would only
 * pass bindings on). */
static unsigned loops_wanted(const hc_node_config *cfg)
{
    if (cfg->http_loops > 0)
        return cfg->http_loops < LOOPS_MAX ? cfg->http_loops : LOOPS_MAX;
    if (cfg->http_port <= 0)
        return 1;
    cpu_set_t set;
    long cpus = sched_getaffinity(0, sizeof set, &set) == 0
                    ? CPU_COUNT(&set)
                    : sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus;
}

int hcn_mod_http_add(hcn_node *n, char *err, size_t errlen)
{
    const hc_node_config *cfg = &n->cfg;
    /* The entry first (its data once the server runs), so that the loop
     * threads find h->self set; a failure below leaves an entry with no
     * data, which hc_node_free removes. */
    hcn_proc *p = hcn_node_add_proc(n, HTTP_PID, false, NULL);
    p->ops = &http_ops;
    hcn_proc_unref(p);
    unsigned loops = loops_wanted(cfg);
    http_shared *sh = shared_new(n, loops, err, errlen);
    if (sh == NULL)
        return -1;
    for (unsigned i = 0; i < loops; i++)
        http_loop_new(sh, n, p);
    hcn_http *h0 = sh->loops[0];
    if (cfg->http_port > 0) {
        /* A peer that goes away mid-write must not kill the node. */
        struct sigaction sa;
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
            signal(SIGPIPE, SIG_IGN);
        struct sockaddr_storage ss;
        const char *addr = cfg->http_addr ? cfg->http_addr : "127.0.0.1";
        int rc = listen_addr(addr, cfg->http_port, &ss);
        if (rc == 0) {
            int fd = listen_socket(&ss);
            if (fd < 0)
                rc = fd; /* libuv's codes are negative errnos here */
            else
                sh->listen_fd = fd;
        }
        if (rc == 0)
            rc = uv_poll_init(&h0->loop, &h0->lpoll, sh->listen_fd);
        if (rc != 0) {
            snprintf(err, errlen, "http-server cannot listen on %s:%d: %s",
                     addr, cfg->http_port, uv_strerror(rc));
            shared_free(sh);
            return -1;
        }
        h0->lpoll.data = h0;
        uv_timer_init(&h0->loop, &h0->lpause);
        h0->lpause.data = h0;
        h0->polling = true;
        uv_poll_start(&h0->lpoll, UV_READABLE, on_listen);
        bool v6 = ss.ss_family == AF_INET6;
        bool local = hcn_http_is_loopback((struct sockaddr *)&ss);
        char ip[INET6_ADDRSTRLEN] = "";
        if (v6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
        else
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
        hcn_logf(n, 0, "http-server listening on %s%s%s:%d (%s)", v6 ? "[" : "",
                 ip, v6 ? "]" : "", cfg->http_port,
                 local ? "this machine only; --http-addr to serve others"
                       : "reachable from other machines");
    }
    for (unsigned i = 0; i < loops; i++) {
        hcn_http *h = sh->loops[i];
        if (pthread_create(&h->thread, NULL, loop_main, h) != 0) {
            snprintf(err, errlen, "cannot start the http-server's threads");
            for (unsigned k = 0; k < i; k++)
                http_stop_thread(sh->loops[k]);
            shared_free(sh);
            return -1;
        }
        h->has_thread = true;
    }
    p->mod = sh;
    return 0;
}

/* ---------------------------------------- internal: fuzzing and tests */

hcn_http *hcn_http_probe_new(hcn_node *n, char *err, size_t errlen)
{
    /* The node's own entry: answers and log lines go out under its name. */
    hcn_proc *self = hcn_node_find(n, HTTP_PID);
    if (self == NULL) {
        snprintf(err, errlen, "the node has no %s", HTTP_PID);
        return NULL;
    }
    hcn_proc_unref(self);
    http_shared *sh = shared_new(n, 1, err, errlen);
    return sh != NULL ? http_loop_new(sh, n, self) : NULL;
}

int hcn_http_probe_connect(hcn_http *h, int sock, bool loopback)
{
    conn *c = conn_new(h);
    int rc = uv_tcp_open(&c->tcp, sock);
    pthread_mutex_lock(&h->sh->mu);
    h->sh->nconns += rc == 0; /* as on_listen counts it */
    pthread_mutex_unlock(&h->sh->mu);
    if (rc != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        uv_run(&h->loop, UV_RUN_NOWAIT);
        return -1;
    }
    conn_begin(h, c);
    const char *ip = loopback ? "127.0.0.1" : "203.0.113.7";
    uv_ip4_addr(ip, 40000, (struct sockaddr_in *)&c->peer);
    return 0;
}

size_t hcn_http_probe_run(hcn_http *h)
{
    uv_run(&h->loop, UV_RUN_NOWAIT);
    return h->nconns;
}

void hcn_http_probe_msg(hcn_http *h, hcn_msg *m)
{
    handle_msg(h, m);
    hcn_msg_unref(m);
    uv_run(&h->loop, UV_RUN_NOWAIT);
}

int hcn_http_probe_deliver(hcn_http *h, hcn_msg *m)
{
    switch (ws_direct_push(h, m)) {
    case DIRECT_DONE: hcn_msg_unref(m); return 0;
    case DIRECT_PARTIAL: return 1;
    default: return -1;
    }
}

void hcn_http_probe_disconnect(hcn_http *h)
{
    while (h->conns)
        conn_close(h->conns);
    uv_run(&h->loop, UV_RUN_NOWAIT);
}

void hcn_http_probe_reset(hcn_http *h)
{
    hcn_http_probe_disconnect(h);
    h->routes_gen++;
    hcn_http_router_fini(&h->routes, free_binding);
    hcn_http_router_fini(&h->ws_routes, free_ws_binding);
    memset(&h->routes, 0, sizeof h->routes);
    memset(&h->ws_routes, 0, sizeof h->ws_routes);
    for (size_t i = 0; i < h->nsecure; i++)
        free(h->secure_subs[i]);
    free(h->secure_subs);
    h->secure_subs = NULL;
    h->nsecure = 0;
}

void hcn_http_probe_free(hcn_http *h)
{
    if (h == NULL)
        return;
    while (h->conns)
        conn_close(h->conns);
    shared_free(h->sh);
}
