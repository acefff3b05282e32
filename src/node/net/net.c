/* net:distro:sys — node-to-node networking as Hyperware's net speaks it
 * (docs/node.md, "Networking"): TCP connections authenticated and
 * encrypted by a Noise XX handshake (noise.c) whose payload carries the
 * node's name and an Ed25519 signature of its Noise static key by its
 * networking key (ident.c), then KernelMessages in rmp-serde's msgpack
 * (wire.c) cut into encrypted chunks.  One connection per peer carries
 * both directions; whoever dials is the initiator.
 *
 * Threads: the kernel hands every envelope for another node to net_send,
 * on the sending process's (or scheduler) thread; a listener thread
 * accepts; each connection has a thread of its own that dials or accepts,
 * shakes hands, then reads, writes what is queued for its peer and
 * delivers what comes through hcn_route.  The module's process thread
 * answers messages to net:distro:sys.
 *
 * A message that finds its peer's plain TCP connection open with nothing
 * queued ahead, the connection's thread in poll() or delivering, and none
 * sent to that peer in the last DIRECT_GAP_NS, is encoded, encrypted and
 * sent by net_send itself (direct_write): one thread wake-up fewer each
 * way when one call at a time goes back and forth.  Otherwise it is
 * queued and the connection's thread woken (an eventfd, once until it
 * takes the queue: conn.woken), which writes all that queued in one
 * send() (calls in flight).
 *
 * Reading the other way: once such a connection is open, the kernel's
 * netpoller reads its socket (np_start): an idle scheduler thread reads,
 * decrypts and delivers what comes (np_ready) and runs the fiber it
 * readies, one thread wake-up per message as a plain TCP reader has; the
 * connection's thread no longer watches the socket for input (only for
 * output it could not write at once, and its eventfd: the queue, and a
 * failure np_ready saw).
 *
 * Locks: net->mu guards the peer table, the queues, the connection list
 * and each peer's conn; a connection's wmu guards its output (out, tx,
 * last_write, dead, cipher_failed).  The connection's thread holds wmu
 * except while in poll() and while delivering; a sender only try-locks it,
 * with net->mu held (so no wait, and no lock-order cycle: the connection's
 * thread takes net->mu inside wmu), then lets net->mu go and writes; a
 * partial write or a failure leaves the rest in out and wakes the
 * connection's thread.  Order holds: a sender writes only when the queue
 * is empty, and the connection's thread takes the queue only under wmu.
 * Before a connection is freed, its thread marks it dead and detaches it
 * from its peer (net->mu), then takes wmu once more, so that no sender
 * still writes to it, and takes it out of the netpoller (which waits for
 * a np_ready that may still run).  rmu guards the reading side once the
 * netpoller watches (in, rd, rx, rx_why): whoever reads holds it from
 * read() to the end of delivery, so messages keep their order.  Lock
 * order: wmu, rmu, net->mu (a delivery may route an error back to a
 * remote sender: net_send); wmu is only tried by a thread holding either
 * of the others, and no thread leaves the netpoller holding rmu.  Passthroughs,
 * WebSocket links and connections through a router never take the direct way.
 */
#include "net.h"

#include "../kernel/kernel.h"
#include "../modules/modkit.h"
#include "net_int.h"
#include "frame.h"
#include "noise.h"
#include "wire.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#define NET_PID "net:distro:sys"
#define HS_TIMEOUT_MS 5000 /* connect + handshake */
/* a connection's life, from its start (tests may shorten it:
 * HYPERC_NET_LIFETIME_S in the environment) */
#define LIFETIME_S 1800
#define KEEPALIVE_S 30
#define MAX_CONNS 64   /* connections at once, both directions */
#define QUEUE_MAX 4096 /* messages waiting for one peer */
#define PROTOCOL_VERSION 1
#define ROUTER_RETRY_S 4 /* an indirect node redials its routers */
#define SPLICE_BUF 65536 /* a passthrough's buffer each way */
/* A sender's thread writes its own message up to this size (body and
 * blob); a larger one goes through the connection's thread, so that its
 * encoding and encryption do not hold a process's (scheduler) thread. */
#define DIRECT_MAX 65536
/* ... and only when the previous message for the same peer came at least
 * this long before: messages that come closer together (many calls in
 * flight) wait for the connection's thread, which writes all that queued
 * while it woke in one send() instead of one each. */
#define DIRECT_GAP_NS 25000

typedef struct conn conn;

/* A routed connection waiting at this router for its other half. */
typedef struct pend {
    struct pend *next;
    char *from, *target;
    conn *c;
} pend;

typedef struct peer {
    UT_hash_handle hh;
    char *name;
    hcn_msg **q; /* waiting to be written */
    size_t qlen, qcap;
    conn *conn; /* its open connection, NULL while none */
    bool dialing;
    int64_t last_send; /* monotonic ns: the previous message for it */
} peer;

typedef struct net_mod {
    hcn_node *node;
    hcn_proc *self;
    char *our;  /* our node's name */
    char *addr; /* our@net:distro:sys */
    hcnn_ident *id;
    hcnn_pki *pki;
    int listen_fd, ws_listen_fd; /* -1: that transport is not offered */
    int port, ws_port;
    pthread_t listener;
    bool listening;
    atomic_bool stop;
    pthread_mutex_t mu;
    peer *peers;
    conn *conns; /* every live connection (a list, for stop) */
    size_t nconns;
    size_t nthreads; /* connection threads not yet ended: net_stop waits
                        for none, since a thread leaving the list still
                        logs and answers through net */
    char **routers;  /* ours: this node is indirect, reached through them */
    size_t nrouters;
    uint32_t max_pass, npass; /* passthroughs allowed, and now */
    int64_t lifetime_ns;      /* a connection's life, from its start */
    pend *pending;
    int64_t next_router_check; /* monotonic ns */
} net_mod;

/* A connection's states: the handshake, open, or (at a router) a
 * passthrough: waiting for its other half, handing its socket to the half
 * that waits, dialing a direct target, splicing. */
enum {
    HS_I_WAIT1,
    HS_R_WAIT0,
    HS_R_WAIT2,
    OPEN,
    PASS_WAIT,
    PASS_GIVEN,
    PASS_DIAL,
    PASS
};

struct conn {
    net_mod *net;
    conn *next;
    int fd, efd;
    bool initiator;
    hcnn_ws *ws;      /* a WebSocket link, else NULL (TCP) */
    char *via;        /* a router to dial and send a routing request first */
    char *rr_router;  /* a WebSocket dialer: the router its routing request
                         goes to once the upgrade is done */
    bool proxy;       /* our payload asks the peer to route for us */
    bool their_proxy; /* the peer's payload asked us to route for it */
    /* passthroughs (at a router) */
    bool counted;         /* one of net->npass */
    char *pass_target;    /* PASS_DIAL: the direct node to dial */
    int pass_fd;          /* the other half's socket */
    char *pass_dial_host; /* a dialed WebSocket half: its upgrade's host */
    unsigned pass_dial_port;
    hcnn_ws *pass_ws; /* and its WebSocket link (a WebSocket passthrough) */
    uint8_t *pass_in; /* bytes the other half had read, to forward */
    size_t pass_in_len;
    bool ws_up;         /* its upgrade is done */
    int64_t last_write; /* coarse ns: a WebSocket pings after 30 s */
    char *peer_name;    /* known when dialing; learned when accepting */
    peer *peer;         /* attached once open (under mu) */
    int state;
    hcnn_handshake hs;
    hcnn_cipher tx, rx;
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    hcnn_reader rd;               /* the transport message being read */
    int64_t hs_deadline, dies_at; /* monotonic ns */
    atomic_bool closing;          /* replaced, or the node stops */
    pthread_t th;
    bool opened;
    /* The write lock: held by the connection's thread except while it is
     * in poll() or delivering; taken (try-lock only) by a sender's thread
     * writing its own message (net_send).  Guards out, out_len/off/cap,
     * tx, last_write, dead and cipher_failed. */
    pthread_mutex_t wmu;
    bool direct;        /* senders may write (set before it opens) */
    bool woken;         /* (under net->mu) woken for its queue, not yet taken */
    bool dead;          /* the connection's thread has left its loop */
    bool cipher_failed; /* a sender's write failed to encrypt */
    /* The netpoller (kernel.h, hcn_netpoll_add): an open direct
     * connection is read by an idle scheduler thread, which reads,
     * decrypts and delivers what comes (np_ready) — the fibers it readies
     * run on that thread, with no hand-over — while this thread watches fd
     * for output only (a wake-up of this thread too for each message that
     * comes made the netpoller's gain smaller, and more so on a busy
     * machine).  rmu guards the reading side then (in, rd, rx, rx_why),
     * held across read and delivery so that the connection's messages
     * keep their order. */
    hcn_pollable np;
    bool np_on;    /* watched (set and read by the connection's thread) */
    bool np_tried; /* np_start was called */
    pthread_mutex_t rmu;
    const char *rx_why; /* (under rmu) a read ended it: why */
    bool np_said;       /* (under rmu) the netpoller's first read was logged */
};

/* ------------------------------------------------------------- helpers */

static bool addr_node_is(const char *addr, const char *name)
{
    size_t nl = strlen(name);
    return strncmp(addr, name, nl) == 0 && addr[nl] == '@';
}

/* The node part of an address, into buf. */
static const char *addr_node(const char *addr, char *buf, size_t len)
{
    const char *at = strchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr);
    if (n >= len)
        n = len - 1;
    memcpy(buf, addr, n);
    buf[n] = '\0';
    return buf;
}

static bool in_list(char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

static void wake(conn *c)
{
    uint64_t one = 1;
    ssize_t r = write(c->efd, &one, sizeof one);
    (void)r;
}

/* Take the wake-ups (wake) that came, so that the eventfd polls quiet. */
static void drain_wake(conn *c)
{
    uint64_t v;
    ssize_t r = read(c->efd, &v, sizeof v);
    (void)r;
}

/* Send the sender of each request its error (Offline when the peer could
 * not be reached), as the kernel's bounce does; consumes the messages. */
static void fail_all(net_mod *net, hcn_msg **q, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++) {
        hcn_msg *m = q[i];
        if (m->kind == HCN_MSG_REQUEST && m->has_expects)
            hcn_route(net->node, hcn_msg_send_error(m, kind));
        hcn_msg_unref(m);
    }
    free(q);
}

/* ------------------------------------------------------ the kernel's hook */

static void *conn_main(void *arg);

static conn *conn_new(net_mod *net, int fd, bool initiator, const char *name,
                      bool ws)
{
    conn *c = hcn_xcalloc(1, sizeof *c);
    c->ws = ws ? hcnn_ws_new(initiator) : NULL;
    c->net = net;
    c->fd = fd;
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->initiator = initiator;
    c->peer_name = name ? hcn_xstrdup(name) : NULL;
    c->pass_fd = -1;
    /* an indirect node asks its routers to route for it */
    c->proxy = initiator && name && in_list(net->routers, net->nrouters, name);
    c->state = initiator ? HS_I_WAIT1 : HS_R_WAIT0;
    atomic_init(&c->closing, false);
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->rmu, NULL);
    return c;
}

static void conn_free(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->efd >= 0)
        close(c->efd);
    hcnn_handshake_wipe(&c->hs);
    hcnn_cipher_wipe(&c->tx);
    hcnn_cipher_wipe(&c->rx);
    free(c->peer_name);
    free(c->via);
    free(c->rr_router);
    free(c->pass_dial_host);
    hcnn_ws_free(c->pass_ws);
    free(c->pass_target);
    free(c->pass_in);
    if (c->pass_fd >= 0)
        close(c->pass_fd);
    free(c->in);
    free(c->out);
    hcnn_reader_fini(&c->rd);
    hcnn_ws_free(c->ws);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->rmu);
    free(c);
}

/* Start a connection's thread (the lock held); false when at the limit. */
static bool conn_start(net_mod *net, conn *c)
{
    if (net->nconns >= MAX_CONNS || atomic_load(&net->stop))
        return false;
    c->next = net->conns;
    net->conns = c;
    net->nconns++;
    net->nthreads++;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&c->th, &at, conn_main, c);
    pthread_attr_destroy(&at);
    if (rc != 0) {
        net->conns = c->next;
        net->nconns--;
        net->nthreads--;
        return false;
    }
    return true;
}

/* ----------------------------------------------------- the peer table
 * (each with net->mu held) */

/* name's entry, added when missing. */
static peer *peer_get(net_mod *net, const char *name)
{
    peer *p;
    HASH_FIND_STR(net->peers, name, p);
    if (p == NULL) {
        p = hcn_xcalloc(1, sizeof *p);
        p->name = hcn_xstrdup(name);
        HASH_ADD_KEYPTR(hh, net->peers, p->name, strlen(p->name), p);
    }
    return p;
}

/* Remove p and free it, with what still waits for it. */
static void peer_drop(net_mod *net, peer *p)
{
    HASH_DEL(net->peers, p);
    for (size_t i = 0; i < p->qlen; i++)
        hcn_msg_unref(p->q[i]);
    free(p->q);
    free(p->name);
    free(p);
}

/* Queue m for p (the caller's reference moves to the queue). */
static void peer_push(peer *p, hcn_msg *m)
{
    if (p->qlen == p->qcap) {
        p->qcap = p->qcap ? 2 * p->qcap : 16;
        p->q = hcn_xrealloc(p->q, p->qcap * sizeof *p->q);
    }
    p->q[p->qlen++] = m;
}

/* Start a connection that dials p; false when no slot is left. */
static bool peer_dial(net_mod *net, peer *p)
{
    conn *c = conn_new(net, -1, true, p->name, false);
    if (!conn_start(net, c)) {
        conn_free(c);
        return false;
    }
    p->dialing = true;
    return true;
}

static void direct_write(conn *c, hcn_msg *m);

static bool direct_fits(const hcn_msg *m)
{
    return m->body_len + (m->blob ? m->blob->len : 0) <= DIRECT_MAX;
}

static bool net_send(void *ctx, hcn_msg *m, int *kind)
{
    net_mod *net = ctx;
    char node[256];
    addr_node(m->target, node, sizeof node);
    if (!hcnn_pki_get(net->pki, node, NULL)) {
        hcn_logf(net->node, 1, "%s -> %s: node offline (not in the PKI)",
                 m->source, m->target);
        *kind = HW_SEND_ERROR_OFFLINE;
        return false;
    }
    pthread_mutex_lock(&net->mu);
    peer *p = peer_get(net, node);
    if (p->qlen >= QUEUE_MAX) {
        pthread_mutex_unlock(&net->mu);
        hcn_logf(net->node, 0,
                 "%s -> %s refused: %d messages already wait for %s", m->source,
                 m->target, QUEUE_MAX, node);
        *kind = HW_SEND_ERROR_TIMEOUT;
        return false;
    }
    conn *c = p->conn;
    int64_t now = hcn_now_ns(), gap = now - p->last_send;
    p->last_send = now;
    if (c && c->direct && p->qlen == 0 && gap >= DIRECT_GAP_NS &&
        direct_fits(m) && pthread_mutex_trylock(&c->wmu) == 0) {
        /* nothing waits ahead of m and the connection's thread is in
         * poll() or delivering: write m on this thread (it holds c while wmu is
         * held: conn_main takes wmu after detaching c, before freeing it) */
        if (!c->dead) {
            pthread_mutex_unlock(&net->mu);
            direct_write(c, m);
            pthread_mutex_unlock(&c->wmu);
            return true;
        }
        pthread_mutex_unlock(&c->wmu);
    }
    peer_push(p, hcn_msg_ref(m));
    if (p->conn) {
        /* one wake-up per batch: the connection's thread takes all that
         * queued since (take_queue) */
        if (!p->conn->woken) {
            p->conn->woken = true;
            wake(p->conn);
        }
    } else if (!p->dialing) {
        if (!peer_dial(net, p)) {
            /* no room for a connection: what waits is offline */
            hcn_msg **q = p->q;
            size_t n = p->qlen;
            p->q = NULL;
            p->qlen = 0;
            peer_drop(net, p);
            pthread_mutex_unlock(&net->mu);
            hcn_logf(net->node, 0, "%s: no connection slot left (%d open)",
                     node, MAX_CONNS);
            /* m is among q: the kernel bounces it itself, so skip it */
            for (size_t i = 0; i < n; i++)
                if (q[i] == m) {
                    q[i] = q[--n];
                    hcn_msg_unref(m);
                    break;
                }
            fail_all(net, q, n, HW_SEND_ERROR_OFFLINE);
            *kind = HW_SEND_ERROR_OFFLINE;
            return false;
        }
    }
    pthread_mutex_unlock(&net->mu);
    return true;
}

/* -------------------------------------------------------------- writing */

static void out_reserve(conn *c, size_t more)
{
    if (c->out_off > 0 && c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + more <= c->out_cap)
        return;
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    while (c->out_cap < c->out_len + more)
        c->out_cap = c->out_cap ? 2 * c->out_cap : 65536;
    c->out = hcn_xrealloc(c->out, c->out_cap);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Append bytes to the output (a sink for the WebSocket layer). */
static void out_bytes(void *arg, const uint8_t *p, size_t n)
{
    conn *c = arg;
    out_reserve(c, n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* One binary WebSocket message (a sink for hcnn_frame_write_ws). */
static void out_ws_msg(void *arg, const uint8_t *p, size_t n)
{
    conn *c = arg;
    hcnn_ws_send(c->ws, p, n);
}

/* A handshake message: over TCP its u16 big-endian length, then the
 * bytes; over a WebSocket one binary message. */
static void out_frame16(conn *c, const uint8_t *p, size_t n)
{
    if (c->ws) {
        hcnn_ws_send(c->ws, p, n);
        hcnn_ws_flush(c->ws, out_bytes, c);
        return;
    }
    out_reserve(c, 2 + n);
    put_be(c->out + c->out_len, n, 2);
    memcpy(c->out + c->out_len + 2, p, n);
    c->out_len += 2 + n;
}

/* Sign each capability our node issued (the signature a receiver checks
 * is its own node's; ours is what we can give for ours); another node's
 * leaves with the signature it came with (none if it came without: its
 * issuer will not honour it).  Every sig is the array's own. */
static hcnn_cap *wire_caps(net_mod *net, const hcn_msg *m)
{
    if (m->ncaps == 0)
        return NULL;
    hcnn_cap *caps = hcn_xcalloc(m->ncaps, sizeof *caps);
    for (size_t i = 0; i < m->ncaps; i++) {
        caps[i].issuer = m->caps[i].issuer;
        caps[i].params = m->caps[i].params;
        if (!addr_node_is(m->caps[i].issuer, net->our)) {
            if (m->caps[i].sig_len != 0) {
                caps[i].sig = hcn_xmalloc(m->caps[i].sig_len);
                memcpy(caps[i].sig, m->caps[i].sig, m->caps[i].sig_len);
                caps[i].sig_len = m->caps[i].sig_len;
            }
            continue;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 2);
        size_t a = strlen(caps[i].issuer), b = strlen(caps[i].params);
        msgpack_pack_str(&pk, a);
        msgpack_pack_str_body(&pk, caps[i].issuer, a);
        msgpack_pack_str(&pk, b);
        msgpack_pack_str_body(&pk, caps[i].params, b);
        caps[i].sig = hcn_xmalloc(HCNN_SIG);
        if (hcnn_ident_sign(net->id, (const uint8_t *)sb.data, sb.size,
                            caps[i].sig))
            caps[i].sig_len = HCNN_SIG;
        msgpack_sbuffer_destroy(&sb);
    }
    return caps;
}

/* Encode m and append it: u32 big-endian length (not encrypted), then
 * chunks of at most 65519 bytes, each u16 length + ciphertext.  false
 * when the cipher failed (the connection ends). */
static bool out_message(conn *c, hcn_msg *m)
{
    net_mod *net = c->net;
    hcnn_cap *caps = wire_caps(net, m);
    hcnn_kmsg k = {
        .id = m->id,
        .source = (char *)m->source,
        .target = (char *)m->target,
        .rsvp = (char *)m->rsvp,
        .is_response = m->kind == HCN_MSG_RESPONSE,
        .inherit = m->inherit,
        .has_expects = m->has_expects,
        .expects = m->expects,
        .body = (uint8_t *)m->body,
        .body_len = m->body_len,
        .metadata = (char *)m->metadata,
        .caps = caps,
        .ncaps = m->ncaps,
        .has_blob = m->blob != NULL,
        .blob_mime = m->blob ? m->blob->mime : NULL,
        .blob = m->blob ? m->blob->bytes : NULL,
        .blob_len = m->blob ? m->blob->len : 0,
    };
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_kmsg_encode(&k, &sb);
    for (size_t i = 0; i < m->ncaps; i++)
        free(caps[i].sig);
    free(caps);
    bool ok = true;
    if (sb.size > HCNN_MESSAGE_MAX) {
        hcn_logf(net->node, 0,
                 "%s -> %s dropped: %zu bytes, over the network's limit of %u",
                 m->source, m->target, sb.size, HCNN_MESSAGE_MAX);
    } else if (c->ws) {
        ok = hcnn_frame_write_ws(&c->tx, (const uint8_t *)sb.data, sb.size,
                                 out_ws_msg, c) &&
             hcnn_ws_flush(c->ws, out_bytes, c);
    } else {
        size_t need = hcnn_frame_size(sb.size);
        out_reserve(c, need);
        ok = hcnn_frame_write(&c->tx, (const uint8_t *)sb.data, sb.size,
                              c->out + c->out_len);
        c->out_len += need;
    }
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

/* Move what waits for our peer into the output (an open connection; wmu
 * held, so that a sender's own write cannot come between). */
static bool take_queue(conn *c)
{
    net_mod *net = c->net;
    pthread_mutex_lock(&net->mu);
    hcn_msg **q = NULL;
    size_t n = 0;
    c->woken = false;
    if (c->peer && c->peer->conn == c) {
        q = c->peer->q;
        n = c->peer->qlen;
        c->peer->q = NULL;
        c->peer->qlen = c->peer->qcap = 0;
    }
    pthread_mutex_unlock(&net->mu);
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (ok)
            ok = out_message(c, q[i]);
        hcn_msg_unref(q[i]);
    }
    free(q);
    return ok;
}

/* Write what waits in the output, as much as the socket takes now.
 * false on a write error.  (wmu held) */
static bool out_flush(conn *c)
{
    while (c->out_len > c->out_off) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR;
        c->out_off += (size_t)w;
        c->last_write = hcn_now_coarse_ns(); /* (for the 30 s ping) */
    }
    return true;
}

/* A sender's thread writes m itself (net_send; wmu held, nothing queued
 * ahead of m): encoded, encrypted and sent without blocking.  What the
 * socket does not take now, or a failure, is left to the connection's
 * thread, woken for it: it sends the rest (POLLOUT), or ends the
 * connection as it would for its own write. */
static void direct_write(conn *c, hcn_msg *m)
{
    if (!out_message(c, m)) {
        c->cipher_failed = true;
        wake(c);
    } else if (!out_flush(c) || c->out_len > c->out_off) {
        wake(c);
    }
}

/* -------------------------------------------------------------- reading */

/* A whole u16-framed handshake message at the input's start: its bytes
 * and length (consumed by in_consume); false while incomplete. */
static bool in_frame16(conn *c, const uint8_t **p, size_t *n)
{
    if (c->in_len < 2)
        return false;
    size_t len = get_be(c->in, 2);
    if (c->in_len < 2 + len)
        return false;
    *p = c->in + 2;
    *n = len;
    return true;
}

static void in_consume(conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Our handshake payload: version, name, our networking key's signature
 * of our Noise static key. */
static bool our_payload(conn *c, msgpack_sbuffer *sb, bool proxy)
{
    uint8_t sig[HCNN_SIG];
    if (!hcnn_ident_sign(c->net->id, hcnn_handshake_static_pub(&c->hs),
                         HCNN_KEY, sig))
        return false;
    hcnn_hs_payload h = {.version = PROTOCOL_VERSION,
                         .name = c->net->our,
                         .sig = sig,
                         .sig_len = HCNN_SIG,
                         .proxy_request = proxy};
    hcnn_hs_payload_encode(&h, sb);
    return true;
}

/* Check the peer's payload: version 1 and a signature of the static key
 * Noise saw, by the networking key the PKI gives for `name`. */
static const char *check_payload(conn *c, const hcnn_hs_payload *h,
                                 const char *name)
{
    if (h->version != PROTOCOL_VERSION)
        return "protocol version is not 1";
    hcnn_peer_id who;
    if (!hcnn_pki_get(c->net->pki, name, &who))
        return "unknown name (not in the PKI)";
    bool ok = who.has_key &&
              hcnn_ed25519_verify(who.key, hcnn_handshake_remote_static(&c->hs),
                                  HCNN_KEY, h->sig, h->sig_len);
    hcnn_peer_id_fini(&who);
    return ok ? NULL : "bad signature";
}

/* The connection is open: attach it to its peer (replacing an older
 * connection) and take what waits. */
static void open_conn(conn *c)
{
    net_mod *net = c->net;
    c->state = OPEN;
    c->opened = true;
    c->dies_at = hcn_now_ns() + net->lifetime_ns;
    /* a sender's thread may write to a plain TCP connection between the
     * two nodes: not over a WebSocket, not one dialed or asked through a
     * router (those keep every write on this thread) */
    c->direct = c->ws == NULL && c->via == NULL && c->rr_router == NULL &&
                !c->proxy && !c->their_proxy;
    pthread_mutex_lock(&net->mu);
    peer *p = peer_get(net, c->peer_name);
    if (p->conn && p->conn != c) {
        atomic_store(&p->conn->closing, true);
        p->conn->peer = NULL;
        wake(p->conn);
    }
    p->conn = c;
    p->dialing = false;
    c->peer = p;
    pthread_mutex_unlock(&net->mu);
    hcn_logf(net->node, 2, "net: connected to %s (%s)", c->peer_name,
             c->initiator ? "dialed" : "accepted");
}

/* ------------------------------------------------------ routing for others */

static void tune(int fd);

/* A routing request (the first message of a connection to this node as a
 * router, f[0..n)): validated as hyperdrive does, then the connection
 * becomes a passthrough — spliced at once to a waiting half, dialed
 * through to a direct target, or left waiting while the indirect target,
 * which we route for, is asked to connect (ConnectionRequest).  NULL, or
 * why it is refused. */
static const char *route_request(conn *c, const uint8_t *f, size_t n)
{
    net_mod *net = c->net;
    if (net->max_pass == 0)
        return "a routing request (this node routes for no one: "
               "--max-passthroughs is 0)";
    hcnn_routing_request q;
    char err[160];
    if (!hcnn_routing_request_decode(f, n, &q, err, sizeof err))
        return "a first message that is neither a handshake nor a routing "
               "request";
    const char *why = NULL;
    hcnn_peer_id from = {0}, target = {0};
    bool have_from = hcnn_pki_get(net->pki, q.source, &from);
    bool have_target = have_from && hcnn_pki_get(net->pki, q.target, &target);
    if (!have_from) {
        why = "a routing request from a name not in the PKI";
    } else {
        size_t tl = strlen(q.target), ol = strlen(net->our);
        uint8_t *signed_ = hcn_xmalloc(tl + ol + 1);
        memcpy(signed_, q.target, tl);
        memcpy(signed_ + tl, net->our, ol);
        if (!from.has_key ||
            !hcnn_ed25519_verify(from.key, signed_, tl + ol, q.sig, q.sig_len))
            why = "a routing request with a bad signature";
        else if (!have_target)
            why = "a routing request for a name not in the PKI";
        else if (strcmp(q.source, q.target) == 0)
            why = "a routing request to itself";
        free(signed_);
    }
    if (why == NULL) {
        pthread_mutex_lock(&net->mu);
        /* its other half may be waiting already */
        pend **pp = &net->pending, *match = NULL;
        for (; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->from, q.target) == 0 &&
                strcmp((*pp)->target, q.source) == 0) {
                match = *pp;
                *pp = match->next;
                break;
            }
        if (match && (match->c->ws == NULL) != (c->ws == NULL)) {
            /* as hyperdrive: like is spliced with like */
            why = c->ws ? "a routing request over WebSocket whose other half "
                          "came over TCP"
                        : "a routing request over TCP whose other half came "
                          "over WebSocket";
            match->next = net->pending;
            net->pending = match;
        } else if (match) {
            /* give our socket, and what came after the request (TCP: the
             * bytes; WebSocket: the link, with the messages it holds),
             * to the half that waits; this connection's thread ends */
            conn *m = match->c;
            if (c->ws == NULL) {
                size_t rest = c->in_len - (size_t)(f + n - c->in);
                m->pass_in = rest ? hcn_xmalloc(rest) : NULL;
                if (rest)
                    memcpy(m->pass_in, f + n, rest);
                m->pass_in_len = rest;
            }
            m->pass_ws = c->ws;
            c->ws = NULL;
            m->pass_fd = c->fd;
            c->fd = -1;
            c->state = PASS_GIVEN;
            wake(m);
            free(match->from);
            free(match->target);
            free(match);
        } else if (net->npass >= net->max_pass) {
            why = "a routing request over the passthrough limit";
        } else if (target.ip && (c->ws ? target.ws_port : target.tcp_port)) {
            /* a direct target, dialed over the transport the request
             * came by (as hyperdrive) */
            c->state = PASS_DIAL;
            c->pass_target = hcn_xstrdup(q.target);
        } else {
            peer *tp;
            HASH_FIND_STR(net->peers, q.target, tp);
            if (tp == NULL || tp->conn == NULL || !tp->conn->their_proxy) {
                why = "a routing request for a node we do not route for";
            } else {
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                hcnn_connection_request_encode(q.source, &sb);
                char *to = hcn_xasprintf("%s@" NET_PID, q.target);
                hcn_msg *m =
                    HCN_MSG_NEW(.kind = HCN_MSG_REQUEST, .id = hcn_random_u64(),
                                .source = net->addr, .target = to,
                                .has_expects = true, .expects = 5,
                                .body = sb.data, .body_len = sb.size);
                free(to);
                msgpack_sbuffer_destroy(&sb);
                peer_push(tp, m);
                wake(tp->conn);
                pend *w = hcn_xcalloc(1, sizeof *w);
                w->from = hcn_xstrdup(q.source);
                w->target = hcn_xstrdup(q.target);
                w->c = c;
                w->next = net->pending;
                net->pending = w;
                c->state = PASS_WAIT;
            }
        }
        if (why == NULL && c->state != PASS_GIVEN) {
            net->npass++;
            c->counted = true;
            free(c->peer_name);
            c->peer_name =
                hcn_xasprintf("%s (routing to %s)", q.source, q.target);
        }
        pthread_mutex_unlock(&net->mu);
    }
    if (why == NULL)
        hcn_logf(net->node, 1, "net: routing %s to %s", q.source, q.target);
    hcnn_peer_id_fini(&from);
    hcnn_peer_id_fini(&target);
    hcnn_routing_request_fini(&q);
    return why;
}

/* Whether fd is connected to itself: a connect to a local port nobody
 * listens on whose source port happens to be that port succeeds as a
 * simultaneous open with itself (and then holds the port, so that the peer
 * cannot listen on it again). */
static bool self_connected(int fd)
{
    struct sockaddr_storage me, them;
    socklen_t ml = sizeof me, tl = sizeof them;
    if (getsockname(fd, (struct sockaddr *)&me, &ml) != 0 ||
        getpeername(fd, (struct sockaddr *)&them, &tl) != 0)
        return false;
    return ml == tl && memcmp(&me, &them, ml) == 0;
}

/* Connect to ip:port before the deadline: the socket, or -1 (*why). */
static int connect_to(const char *ip, unsigned port, int64_t deadline,
                      const char **why)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(ip, ps, &hints, &ai) != 0 || ai == NULL) {
        *why = "an ip that is not a numeric address";
        return -1;
    }
    int fd =
        socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        freeaddrinfo(ai);
        *why = "no socket";
        return -1;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        *why = "connection refused";
        return -1;
    }
    struct pollfd pf = {.fd = fd, .events = POLLOUT};
    int64_t left = (deadline - hcn_now_ns()) / 1000000;
    if (rc != 0 && (poll(&pf, 1, left > 0 ? (int)left : 0) != 1)) {
        close(fd);
        *why = "connect timed out";
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0 || self_connected(fd)) {
        close(fd);
        *why = "connection refused";
        return -1;
    }
    return fd;
}

/* Copy what one side of a passthrough sent to the other: buffers each way,
 * each refilled only once drained.  Ends when either side closes, or when
 * the lifetime ends.  The router sees only ciphertext. */
static const char *pass_splice(conn *c)
{
    int fd[2] = {c->fd, c->pass_fd};
    uint8_t *buf[2] = {hcn_xmalloc(SPLICE_BUF), hcn_xmalloc(SPLICE_BUF)};
    size_t len[2] = {0, 0}, off[2] = {0, 0};
    /* what came with the requests: ours goes to the other half, the
     * other half's to our peer */
    uint8_t *pre[2] = {c->in, c->pass_in};
    size_t pre_len[2] = {c->in_len, c->pass_in_len};
    const char *why = NULL;
    int64_t dies = hcn_now_ns() + c->net->lifetime_ns;
    for (int d = 0; d < 2; d++) {
        if (pre_len[d] > SPLICE_BUF) {
            free(buf[0]);
            free(buf[1]);
            return "over 64 KiB sent before the handshake";
        }
        if (pre_len[d])
            memcpy(buf[d], pre[d], pre_len[d]);
        len[d] = pre_len[d];
    }
    c->in_len = 0;
    for (;;) {
        if (atomic_load(&c->net->stop) || atomic_load(&c->closing))
            break;
        if (hcn_now_ns() >= dies) {
            why = "its lifetime ended";
            break;
        }
        /* direction d: from fd[d] into buf[d], out to fd[1 - d] */
        struct pollfd pf[3] = {
            {.fd = fd[0], .events = len[0] == 0 ? POLLIN : 0},
            {.fd = fd[1], .events = len[1] == 0 ? POLLIN : 0},
            {.fd = c->efd, .events = POLLIN}};
        if (len[0])
            pf[1].events |= POLLOUT;
        if (len[1])
            pf[0].events |= POLLOUT;
        int r = poll(pf, 3, 1000);
        if (r < 0 && errno != EINTR) {
            why = "poll failed";
            break;
        }
        if (r <= 0)
            continue;
        if (pf[2].revents & POLLIN) {
            drain_wake(c);
        }
        bool done = false;
        for (int d = 0; d < 2 && !done; d++) {
            if (len[d] == 0 && (pf[d].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t got = read(fd[d], buf[d], SPLICE_BUF);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                    done = true;
                else if (got > 0) {
                    len[d] = (size_t)got;
                    off[d] = 0;
                }
            }
            if (len[d] > 0) {
                ssize_t w = send(fd[1 - d], buf[d] + off[d], len[d] - off[d],
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN && errno != EINTR)
                    done = true;
                else if (w > 0 && (off[d] += (size_t)w) == len[d])
                    len[d] = off[d] = 0;
            }
        }
        if (done)
            break;
    }
    free(buf[0]);
    free(buf[1]);
    return why;
}

/* One side of a WebSocket passthrough: its socket, its link, what waits
 * to be written to it. */
typedef struct relay_side {
    int fd;
    hcnn_ws *ws;
    bool up; /* its upgrade is done */
    uint8_t *out;
    size_t len, off, cap;
} relay_side;

/* Writes held for one side before the relay stops reading the other. */
#define RELAY_OUT_MAX ((size_t)1 << 20)

static void relay_out(void *arg, const uint8_t *p, size_t n)
{
    relay_side *s = arg;
    if (s->off && s->off == s->len)
        s->off = s->len = 0;
    if (s->cap - s->len < n) {
        s->cap = s->cap ? s->cap : 65536;
        while (s->cap - s->len < n)
            s->cap *= 2;
        s->out = hcn_xrealloc(s->out, s->cap);
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

/* Move every binary message one side's link holds to the other side's
 * (once that one is up), and queue what each link has to write (its
 * messages, its pongs).  NULL, or why the passthrough ends. */
static const char *relay_pump(relay_side s[2])
{
    for (int d = 0; d < 2; d++) {
        if (!s[1 - d].up)
            continue;
        uint8_t *m;
        size_t n;
        while (hcnn_ws_next(s[d].ws, &m, &n)) {
            hcnn_ws_send(s[1 - d].ws, m, n);
            free(m);
        }
    }
    for (int d = 0; d < 2; d++)
        if (s[d].up && !hcnn_ws_flush(s[d].ws, relay_out, &s[d]))
            return "a WebSocket half closed";
    return NULL;
}

/* A WebSocket passthrough: each message one half sends is sent on to the
 * other, re-framed by the link of that half (a dialer's frames are masked,
 * ours to a dialer may not be), as hyperdrive relays WebSocket messages.
 * A dialed target's upgrade is made here first.  The router sees only
 * ciphertext (and the Noise handshake's messages).  Ends when either half
 * closes, or when the lifetime ends. */
static const char *pass_relay(conn *c)
{
    relay_side s[2] = {{.fd = c->fd, .ws = c->ws, .up = true},
                       {.fd = c->pass_fd, .ws = c->pass_ws}};
    if (c->pass_dial_host)
        hcnn_ws_request(s[1].ws, c->pass_dial_host, c->pass_dial_port,
                        relay_out, &s[1]);
    else
        s[1].up = true;
    uint8_t *buf = hcn_xmalloc(SPLICE_BUF);
    const char *why = NULL;
    int64_t dies = hcn_now_ns() + c->net->lifetime_ns;
    while (why == NULL && (why = relay_pump(s)) == NULL) {
        if (atomic_load(&c->net->stop) || atomic_load(&c->closing))
            break;
        int64_t now = hcn_now_ns();
        if (!s[1].up && now >= c->hs_deadline) {
            why = "the target did not take the WebSocket upgrade within 5 s";
            break;
        }
        if (now >= dies) {
            why = "its lifetime ended";
            break;
        }
        struct pollfd pf[3];
        for (int d = 0; d < 2; d++) {
            pf[d].fd = s[d].fd;
            pf[d].events = s[d].len > s[d].off ? POLLOUT : 0;
            /* read a half while what it sends has room on the other */
            if (s[1 - d].len - s[1 - d].off < RELAY_OUT_MAX)
                pf[d].events |= POLLIN;
            pf[d].revents = 0;
        }
        pf[2] = (struct pollfd){.fd = c->efd, .events = POLLIN};
        int r = poll(pf, 3, 1000);
        if (r < 0 && errno != EINTR) {
            why = "poll failed";
            break;
        }
        if (r <= 0)
            continue;
        if (pf[2].revents & POLLIN) {
            drain_wake(c);
        }
        for (int d = 0; d < 2 && why == NULL; d++) {
            if (pf[d].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t got = read(s[d].fd, buf, SPLICE_BUF);
                if (got == 0) {
                    why = "a half closed its connection";
                } else if (got < 0) {
                    if (errno != EAGAIN && errno != EINTR)
                        why = "a read failed";
                } else {
                    size_t at = 0;
                    if (!s[d].up) {
                        int u = hcnn_ws_upgrade(s[d].ws, buf, (size_t)got, &at,
                                                relay_out, &s[d], &why);
                        if (u == 1)
                            s[d].up = true;
                        else if (u == 0)
                            at = (size_t)got;
                    }
                    if (why == NULL && at < (size_t)got &&
                        hcnn_ws_recv(s[d].ws, buf + at, (size_t)got - at,
                                     &why) < 0 &&
                        why == NULL)
                        why = "a broken WebSocket frame";
                }
            }
            if (why == NULL && s[d].len > s[d].off) {
                ssize_t w =
                    send(s[d].fd, s[d].out + s[d].off, s[d].len - s[d].off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN && errno != EINTR)
                    why = "a write failed";
                else if (w > 0)
                    s[d].off += (size_t)w;
            }
        }
    }
    free(buf);
    free(s[0].out);
    free(s[1].out);
    return why;
}

/* A connection that became a passthrough (route_request). */
static const char *pass_run(conn *c)
{
    net_mod *net = c->net;
    if (c->state == PASS_GIVEN)
        return NULL; /* its socket went to the other half */
    if (c->state == PASS_DIAL) {
        hcnn_peer_id t;
        const char *why = "the target is no longer in the PKI";
        if (hcnn_pki_get(net->pki, c->pass_target, &t)) {
            unsigned port = c->ws ? t.ws_port : t.tcp_port;
            int fd = t.ip && port ? connect_to(t.ip, port, c->hs_deadline, &why)
                                  : -1;
            if (fd >= 0) {
                tune(fd);
                c->pass_fd = fd;
                why = NULL;
                if (c->ws) {
                    /* its upgrade is written and read by pass_relay */
                    c->pass_ws = hcnn_ws_new(true);
                    c->pass_dial_host = hcn_xstrdup(t.ip);
                    c->pass_dial_port = port;
                }
            }
            hcnn_peer_id_fini(&t);
        }
        if (why)
            return why;
        c->state = PASS;
    }
    while (c->state == PASS_WAIT) {
        /* the other half comes (route_request hands us its socket), or
         * the target refuses, or the time is up */
        pthread_mutex_lock(&net->mu);
        bool given = c->pass_fd >= 0;
        pthread_mutex_unlock(&net->mu);
        if (given) {
            c->state = PASS;
            break;
        }
        if (atomic_load(&net->stop) || atomic_load(&c->closing))
            return atomic_load(&c->closing)
                       ? "the target refused the connection"
                       : NULL;
        int64_t left = (c->hs_deadline - hcn_now_ns()) / 1000000;
        if (left <= 0)
            return "the target did not connect within 5 s";
        struct pollfd pf[2] = {{.fd = c->efd, .events = POLLIN},
                               {.fd = c->fd, .events = POLLRDHUP}};
        if (poll(pf, 2, left > 1000 ? 1000 : (int)left) > 0) {
            if (pf[0].revents & POLLIN) {
                drain_wake(c);
            }
            if (pf[1].revents & (POLLRDHUP | POLLHUP | POLLERR))
                return "the dialer left before the target came";
        }
    }
    return c->ws ? pass_relay(c) : pass_splice(c);
}

/* One handshake message from the peer, f[0..n); NULL, or why the
 * handshake failed.  The connection opens after the last. */
static const char *hs_message(conn *c, const uint8_t *f, size_t n)
{
    uint8_t payload[HCNN_MAX_MSG], msg[HCNN_MAX_MSG];
    size_t plen, mlen;
    char err[160];
    if (c->state == HS_R_WAIT0) {
        if (n != HCNN_KEY)
            return route_request(c, f, n);
        if (hcnn_handshake_read(&c->hs, f, n, payload, sizeof payload, &plen) !=
            HCNN_OK)
            return "a broken first handshake message";
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        bool ok =
            our_payload(c, &sb, c->proxy) &&
            hcnn_handshake_write(&c->hs, (const uint8_t *)sb.data, sb.size, msg,
                                 sizeof msg, &mlen) == HCNN_OK;
        msgpack_sbuffer_destroy(&sb);
        if (!ok)
            return "cannot write the handshake";
        out_frame16(c, msg, mlen);
        c->state = HS_R_WAIT2;
        return NULL;
    }
    /* HS_I_WAIT1 or HS_R_WAIT2: a message with the peer's payload */
    hcnn_err e =
        hcnn_handshake_read(&c->hs, f, n, payload, sizeof payload, &plen);
    if (e != HCNN_OK)
        return hcnn_err_text(e);
    hcnn_hs_payload h;
    if (!hcnn_hs_payload_decode(payload, plen, &h, err, sizeof err))
        return "a handshake payload that is not a HandshakePayload";
    const char *why;
    if (c->state == HS_I_WAIT1) {
        /* verified with the key of the node we meant to dial */
        why = check_payload(c, &h, c->peer_name);
        if (why == NULL) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            bool ok =
                our_payload(c, &sb, c->proxy) &&
                hcnn_handshake_write(&c->hs, (const uint8_t *)sb.data, sb.size,
                                     msg, sizeof msg, &mlen) == HCNN_OK;
            msgpack_sbuffer_destroy(&sb);
            if (ok)
                out_frame16(c, msg, mlen);
            else
                why = "cannot write the handshake";
        }
    } else if (c->via) {
        /* through a router, to the node that asked for us */
        why = strcmp(h.name, c->peer_name) != 0
                  ? "a routed peer that is not the node that asked"
                  : check_payload(c, &h, h.name);
    } else {
        why = hcc_name_safe(h.name, strlen(h.name), true)
                  ? check_payload(c, &h, h.name)
                  : "a node name that is not hypermap-safe";
        if (why == NULL) {
            c->peer_name = hcn_xstrdup(h.name);
            c->their_proxy = h.proxy_request;
        }
    }
    hcnn_hs_payload_fini(&h);
    if (why)
        return why;
    if (hcnn_handshake_split(&c->hs, &c->tx, &c->rx) != HCNN_OK)
        return "cannot split the handshake";
    open_conn(c);
    return NULL;
}

/* TCP: advance the handshake with the u16-framed messages that have
 * come; NULL, or why it failed. */
static const char *hs_step(conn *c)
{
    const uint8_t *f;
    size_t n;
    while (c->state < OPEN && in_frame16(c, &f, &n)) {
        const char *why = hs_message(c, f, n);
        if (why)
            return why;
        in_consume(c, 2 + n);
    }
    return NULL;
}

/* Turn a KernelMessage from the peer into an envelope and route it. */
static const char *deliver(conn *c, const uint8_t *p, size_t n)
{
    net_mod *net = c->net;
    hcnn_kmsg k;
    char err[200];
    if (!hcnn_kmsg_decode(p, n, &k, err, sizeof err)) {
        hcn_logf(net->node, 0,
                 "net: %s sent a message that does not decode "
                 "(%s)",
                 c->peer_name, err);
        return "garbage msgpack";
    }
    size_t at, offs[3][2];
    const char *why = NULL;
    if (hcc_address_split(k.source, true, &at, offs) != 0)
        why = "a source address that is not hypermap-safe";
    else if (!addr_node_is(k.source, c->peer_name))
        why = "a spoofed source node";
    else if (hcc_address_split(k.target, false, &at, offs) != 0 ||
             (k.rsvp && hcc_address_split(k.rsvp, false, &at, offs) != 0))
        why = "a target or rsvp that is not an address";
    if (why) {
        hcnn_kmsg_fini(&k);
        return why;
    }
    if (!addr_node_is(k.target, net->our)) {
        hcn_logf(net->node, 0,
                 "net: %s sent a message for %s, not for us "
                 "(this node routes for no one); dropped",
                 c->peer_name, k.target);
        hcnn_kmsg_fini(&k);
        return NULL;
    }
    /* capabilities: ours are kept only with our valid signature (and
     * without it: we sign afresh as they leave); another node's are kept
     * with the signature they came with, for the process that saves one to
     * show it back to its issuer (which checks it) */
    hcn_cap *caps = k.ncaps ? hcn_xcalloc(k.ncaps, sizeof *caps) : NULL;
    size_t ncaps = 0;
    for (size_t i = 0; i < k.ncaps; i++) {
        if (addr_node_is(k.caps[i].issuer, net->our)) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_array(&pk, 2);
            size_t a = strlen(k.caps[i].issuer), b = strlen(k.caps[i].params);
            msgpack_pack_str(&pk, a);
            msgpack_pack_str_body(&pk, k.caps[i].issuer, a);
            msgpack_pack_str(&pk, b);
            msgpack_pack_str_body(&pk, k.caps[i].params, b);
            bool ok = hcnn_ed25519_verify(hcnn_ident_pub(net->id),
                                          (const uint8_t *)sb.data, sb.size,
                                          k.caps[i].sig, k.caps[i].sig_len);
            msgpack_sbuffer_destroy(&sb);
            if (!ok)
                continue;
        } else {
            caps[ncaps].sig = k.caps[i].sig;
            caps[ncaps].sig_len = k.caps[i].sig ? k.caps[i].sig_len : 0;
        }
        caps[ncaps].issuer = k.caps[i].issuer;
        caps[ncaps].params = k.caps[i].params;
        ncaps++;
    }
    hcn_blob *blob =
        k.has_blob ? hcn_blob_new(k.blob_mime, k.blob, k.blob_len) : NULL;
    hcn_msg *m =
        HCN_MSG_NEW(.kind = k.is_response ? HCN_MSG_RESPONSE : HCN_MSG_REQUEST,
                    .id = k.id, .source = k.source, .target = k.target,
                    .rsvp = k.rsvp, .inherit = k.inherit,
                    .has_expects = k.has_expects, .expects = k.expects,
                    .body = k.body, .body_len = k.body_len,
                    .metadata = k.metadata, .caps = caps, .ncaps = ncaps,
                    .blob = blob);
    hcn_blob_unref(blob);
    free(caps);
    hcnn_kmsg_fini(&k);
    hcn_route(net->node, m);
    return NULL;
}

/* Read transport messages (frame.c) and deliver each.  NULL, or why to
 * close. */
static const char *transport_step(conn *c)
{
    for (;;) {
        size_t used, len;
        uint8_t *msg;
        const char *why = NULL;
        int r = hcnn_reader_step(&c->rd, &c->rx, c->in, c->in_len, &used, &msg,
                                 &len, &why);
        in_consume(c, used);
        if (r <= 0)
            return r < 0 ? why : NULL;
        why = deliver(c, msg, len);
        free(msg);
        if (why)
            return why;
    }
}

/* Room for a read of 64 KiB at least at the input's end. */
static void in_reserve(conn *c)
{
    if (c->in_cap - c->in_len < 65536) {
        c->in_cap = c->in_cap ? 2 * c->in_cap : 131072;
        if (c->in_cap < c->in_len + 65536)
            c->in_cap = c->in_len + 65536;
        c->in = hcn_xrealloc(c->in, c->in_cap);
    }
}

/* An open TCP connection: one read, and deliver the whole messages it
 * completes (rmu held once np_on).  NULL (also when nothing was there to
 * read), or why to close. */
static const char *read_step(conn *c)
{
    in_reserve(c);
    ssize_t got = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (got == 0)
        return "the peer closed the connection";
    if (got < 0)
        return errno == EAGAIN || errno == EINTR ? NULL : "a read failed";
    c->in_len += (size_t)got;
    return transport_step(c);
}

/* The netpoller's call (a scheduler thread, between fibers): fd is
 * readable.  Reads and delivers as the connection's thread would; a
 * failure is left to that thread (woken for it), which ends the
 * connection, and the netpoller stops watching fd (false). */
static bool np_ready(hcn_pollable *np)
{
    conn *c = (conn *)((char *)np - offsetof(conn, np));
    pthread_mutex_lock(&c->rmu);
    const char *why = c->rx_why;
    if (why == NULL)
        why = c->rx_why = read_step(c);
    bool first = !c->np_said;
    c->np_said = true;
    pthread_mutex_unlock(&c->rmu);
    if (first)
        hcn_logf(c->net->node, 2,
                 "net: %s: read by an idle scheduler thread (netpoller)",
                 c->peer_name);
    if (why)
        wake(c);
    return why == NULL;
}

/* An open direct connection: have the netpoller read fd from now on
 * (this thread then watches it for output only).  Without a scheduler
 * (or on a failure) this thread goes on reading. */
static void np_start(conn *c)
{
    c->np.fd = c->fd;
    c->np.ready = np_ready;
    /* what this thread read so far is np_ready's from now on */
    pthread_mutex_lock(&c->rmu);
    c->np_on = hcn_netpoll_add(c->net->node, &c->np);
    pthread_mutex_unlock(&c->rmu);
}

static bool send_routing_request(conn *c, const char *router,
                                 const char *target);

/* The first handshake message (the initiator's ephemeral key). */
static const char *hs_begin(conn *c)
{
    uint8_t msg[HCNN_KEY];
    size_t mlen;
    if (hcnn_handshake_write(&c->hs, NULL, 0, msg, sizeof msg, &mlen) !=
        HCNN_OK)
        return "cannot start the handshake";
    out_frame16(c, msg, mlen);
    return NULL;
}

/* A WebSocket link: the upgrade, then binary messages — handshake
 * messages until the connection opens, then transport chunks.  Consumes
 * all of the input.  NULL, or why to close. */
static const char *ws_step(conn *c)
{
    const char *why = NULL;
    size_t at = 0;
    if (!c->ws_up) {
        size_t used;
        int r =
            hcnn_ws_upgrade(c->ws, c->in, c->in_len, &used, out_bytes, c, &why);
        if (r < 0)
            return why;
        at = used;
        if (r == 0) {
            in_consume(c, at);
            return NULL;
        }
        c->ws_up = true;
        if (c->rr_router &&
            !send_routing_request(c, c->rr_router, c->peer_name))
            return "cannot sign the routing request";
        if (c->initiator && (why = hs_begin(c)) != NULL)
            return why;
    }
    int r = hcnn_ws_recv(c->ws, c->in + at, c->in_len - at, &why);
    in_consume(c, c->in_len);
    if (r < 0)
        return why;
    uint8_t *m;
    size_t n;
    while (why == NULL && hcnn_ws_next(c->ws, &m, &n)) {
        if (c->state != OPEN) {
            why = hs_message(c, m, n);
            if (why == NULL && c->state == OPEN && !take_queue(c))
                why = "the cipher failed";
            if (c->state > OPEN) {
                /* a passthrough: what else came stays in the link (or
                 * went with it to the other half) for pass_run */
                free(m);
                return why;
            }
        } else {
            uint8_t *msg;
            size_t len;
            int k = hcnn_reader_ws(&c->rd, &c->rx, m, n, &msg, &len, &why);
            if (k > 0) {
                why = deliver(c, msg, len);
                free(msg);
            }
        }
        free(m);
    }
    if (why == NULL && !hcnn_ws_flush(c->ws, out_bytes, c)) /* pongs */
        why = "the WebSocket closed";
    return why;
}

/* ------------------------------------------------------- a connection */

/* Send the routing request that asks `router` to splice us to `target`
 * (before the handshake: u16-framed). */
static bool send_routing_request(conn *c, const char *router,
                                 const char *target)
{
    net_mod *net = c->net;
    size_t tl = strlen(target), rl = strlen(router);
    uint8_t *msg = hcn_xmalloc(tl + rl + 1), sig[HCNN_SIG];
    memcpy(msg, target, tl);
    memcpy(msg + tl, router, rl);
    bool ok = hcnn_ident_sign(net->id, msg, tl + rl, sig);
    free(msg);
    if (!ok)
        return false;
    hcnn_routing_request q = {.version = PROTOCOL_VERSION,
                              .source = net->our,
                              .sig = sig,
                              .sig_len = HCNN_SIG,
                              .target = (char *)target};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    hcnn_routing_request_encode(&q, &sb);
    out_frame16(c, (const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return true;
}

/* Connect to one of an indirect node's routers, in the PKI's order from
 * a random start, skipping ourselves and unknown routers: over TCP when the
 * router offers it, else (or when that fails) over WebSocket, as
 * hyperdrive.  The routing request for `target` goes first (over
 * WebSocket once the upgrade is done: ws_step).  NULL, or why none could
 * be reached. */
static const char *dial_routers(conn *c, char **routers, size_t n,
                                const char *target)
{
    net_mod *net = c->net;
    const char *why = "an indirect node with no router we can reach";
    size_t start = n ? hcn_random_u64() % n : 0;
    for (size_t k = 0; k < n; k++) {
        const char *r = routers[(start + k) % n];
        hcnn_peer_id rid;
        if (strcmp(r, net->our) == 0 || !hcnn_pki_get(net->pki, r, &rid))
            continue;
        int fd = rid.ip && rid.tcp_port
                     ? connect_to(rid.ip, rid.tcp_port, c->hs_deadline, &why)
                     : -1;
        if (fd < 0 && rid.ip && rid.ws_port &&
            (fd = connect_to(rid.ip, rid.ws_port, c->hs_deadline, &why)) >= 0) {
            c->ws = hcnn_ws_new(true);
            hcnn_ws_request(c->ws, rid.ip, rid.ws_port, out_bytes, c);
            c->rr_router = hcn_xstrdup(r);
        }
        hcnn_peer_id_fini(&rid);
        if (fd < 0)
            continue;
        c->fd = fd;
        if (c->ws == NULL && !send_routing_request(c, r, target))
            return "cannot sign the routing request";
        return NULL;
    }
    return why;
}

static const char *dial(conn *c)
{
    net_mod *net = c->net;
    if (c->via) {
        /* asked by our router: connect to it, ask to be spliced to the
         * node that waits there, and answer its handshake */
        return dial_routers(c, &c->via, 1, c->peer_name);
    }
    hcnn_peer_id who;
    if (!hcnn_pki_get(net->pki, c->peer_name, &who))
        return "no longer in the PKI";
    const char *why = NULL;
    if (who.ip == NULL) {
        why = dial_routers(c, who.routers, who.nrouters, c->peer_name);
        hcnn_peer_id_fini(&who);
        return why;
    }
    if (who.tcp_port == 0 && who.ws_port == 0) {
        hcnn_peer_id_fini(&who);
        return "offers neither a TCP nor a WebSocket port";
    }
    /* as hyperdrive: TCP when offered (no fallback), else WebSocket */
    unsigned pn = who.tcp_port ? who.tcp_port : who.ws_port;
    int fd = connect_to(who.ip, pn, c->hs_deadline, &why);
    if (fd >= 0 && who.tcp_port == 0) {
        c->ws = hcnn_ws_new(true);
        hcnn_ws_request(c->ws, who.ip, pn, out_bytes, c);
    }
    hcnn_peer_id_fini(&who);
    if (fd < 0)
        return why;
    c->fd = fd;
    return NULL;
}

static void tune(int fd)
{
    int one = 1, s = KEEPALIVE_S;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &s, sizeof s);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &s, sizeof s);
    /* whole frames go in one write: Nagle would only hold a message's
     * last segment for the peer's delayed ACK (40 ms on Linux) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Run the connection until it ends; why it ended, NULL for a stop.
 * Called with wmu held and returns with it held; it lets it go while in
 * poll() and while it delivers what it read (a TCP connection open, so
 * that a woken process can write its answer meanwhile). */
static const char *run(conn *c)
{
    net_mod *net = c->net;
    if (hcnn_handshake_init(&c->hs, c->initiator, NULL, NULL, 0) != HCNN_OK)
        return "cannot start the handshake";
    const char *why0;
    if (c->initiator && c->ws == NULL && (why0 = hs_begin(c)) != NULL)
        return why0; /* a WebSocket dialer starts once upgraded */
    c->last_write = hcn_now_ns();
    /* false after delivering when a sender held wmu: it writes, and wakes
     * this thread for what it leaves (so no POLLOUT, and no wait here) */
    bool held = true;
    for (;;) {
        int64_t now = hcn_now_ns();
        int64_t until = c->state == OPEN ? c->dies_at : c->hs_deadline;
        bool ends =
            atomic_load(&net->stop) || atomic_load(&c->closing) || now >= until;
        if (ends && !held) {
            pthread_mutex_lock(&c->wmu);
            held = true;
        }
        if (atomic_load(&net->stop) || atomic_load(&c->closing))
            return NULL;
        if (now >= until)
            return c->state == OPEN ? "its lifetime ended"
                                    : "the handshake took over 5 s";
        if (c->ws && c->state == OPEN &&
            now - c->last_write >= (int64_t)KEEPALIVE_S * 1000000000) {
            hcnn_ws_ping(c->ws); /* hyperdrive's keep-alive */
            if (!hcnn_ws_flush(c->ws, out_bytes, c))
                return "the WebSocket closed";
            c->last_write = now;
        }
        int64_t ms = (until - now) / 1000000 + 1;
        bool pending = held && c->out_len > c->out_off;
        struct pollfd pf[3] = {
            {.fd = c->fd, .events = (short)(POLLIN | (pending ? POLLOUT : 0))},
            {.fd = c->efd, .events = POLLIN},
            {.fd = c->fd, .events = POLLOUT}};
        nfds_t nf = 2;
        if (c->np_on) {
            /* input is the netpoller's; fd for output only */
            pf[0].fd = -1;
            nf = pending ? 3 : 2;
        }
        /* senders may write while this thread sleeps; one that leaves
         * bytes unsent (or fails) wakes it */
        if (held)
            pthread_mutex_unlock(&c->wmu);
        int r = poll(pf, nf, ms > 1000 ? 1000 : (int)ms);
        pthread_mutex_lock(&c->wmu);
        held = true;
        if (r < 0 && errno != EINTR)
            return "poll failed";
        if (r <= 0)
            continue;
        if (pf[1].revents & POLLIN) {
            drain_wake(c);
            if (c->np_on) { /* a netpoller's read may have ended it */
                pthread_mutex_lock(&c->rmu);
                const char *why = c->rx_why;
                pthread_mutex_unlock(&c->rmu);
                if (why)
                    return why;
            }
            if (c->cipher_failed || (c->state == OPEN && !take_queue(c)))
                return "the cipher failed";
        }
        if (!c->np_on && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            in_reserve(c);
            ssize_t got = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
            if (got == 0)
                return "the peer closed the connection";
            if (got < 0 && errno != EAGAIN && errno != EINTR)
                return "a read failed";
            if (got > 0) {
                c->in_len += (size_t)got;
                const char *why = NULL;
                if (c->ws) {
                    why = ws_step(c);
                    if (why == NULL && c->state > OPEN)
                        return pass_run(c); /* a passthrough */
                } else if (c->state != OPEN) {
                    why = hs_step(c);
                    if (why == NULL && c->state == OPEN && !take_queue(c))
                        why = "the cipher failed";
                    if (why == NULL && c->state > OPEN)
                        return pass_run(c); /* a passthrough */
                }
                if (why == NULL && c->ws == NULL && c->state == OPEN) {
                    /* reading and delivering write nothing: senders may
                     * write meanwhile (a woken process's answer) */
                    if (!out_flush(c))
                        return "a write failed";
                    pthread_mutex_unlock(&c->wmu);
                    why = transport_step(c);
                    held = pthread_mutex_trylock(&c->wmu) == 0;
                    if (why && !held) {
                        pthread_mutex_lock(&c->wmu);
                        held = true;
                    }
                    /* from now on an idle scheduler thread reads too */
                    if (why == NULL && c->direct && !c->np_tried) {
                        c->np_tried = true;
                        np_start(c);
                    }
                }
                if (why)
                    return why;
            }
        }
        if (held && !out_flush(c))
            return "a write failed";
    }
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    net_mod *net = c->net;
    pthread_setname_np(pthread_self(), "hc-net-conn"); /* top -H, perf */
    c->hs_deadline = hcn_now_ns() + (int64_t)HS_TIMEOUT_MS * 1000000;
    const char *why = c->initiator || c->via ? dial(c) : NULL;
    if (why == NULL) {
        tune(c->fd);
        pthread_mutex_lock(&c->wmu);
        why = run(c);
        /* no sender writes from now on (net_send looks at dead) */
        c->dead = true;
        /* a last word that is already written (a 400 to a bad upgrade),
         * if the socket takes it now */
        out_flush(c);
        pthread_mutex_unlock(&c->wmu);
        if (c->np_on) /* no scheduler thread reads it from now on */
            hcn_netpoll_del(net->node, &c->np);
    }
    /* detach: a dial that never opened makes what waited Offline; a
     * connection that dies later leaves its peer to the next send */
    hcn_msg **q = NULL;
    size_t qn = 0;
    pthread_mutex_lock(&net->mu);
    peer *p = NULL;
    if (c->peer_name)
        HASH_FIND_STR(net->peers, c->peer_name, p);
    if (p && (p->conn == c || (c->initiator && !c->opened && p->dialing))) {
        p->conn = NULL;
        p->dialing = false;
        if (!c->opened) {
            q = p->q;
            qn = p->qlen;
            p->q = NULL;
            p->qlen = p->qcap = 0;
        }
        if (p->qlen == 0)
            peer_drop(net, p);
        else
            peer_dial(net, p); /* messages came while it closed */
    }
    for (conn **pp = &net->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            net->nconns--;
            break;
        }
    for (pend **pp = &net->pending; *pp; pp = &(*pp)->next)
        if ((*pp)->c == c) {
            pend *w = *pp;
            *pp = w->next;
            free(w->from);
            free(w->target);
            free(w);
            break;
        }
    if (c->counted)
        net->npass--;
    pthread_mutex_unlock(&net->mu);
    /* a sender that found c before it was detached may still hold wmu */
    pthread_mutex_lock(&c->wmu);
    c->dead = true;
    pthread_mutex_unlock(&c->wmu);
    if (why && !atomic_load(&net->stop))
        hcn_logf(net->node, c->opened || c->proxy ? 1 : 0, "net: %s %s: %s",
                 c->initiator ? "connection to" : "connection from",
                 c->peer_name ? c->peer_name : "an unknown node", why);
    if (qn)
        fail_all(net, q, qn, HW_SEND_ERROR_OFFLINE);
    conn_free(c);
    /* the thread's last touch of net: net_stop may free it from now on */
    pthread_mutex_lock(&net->mu);
    net->nthreads--;
    pthread_mutex_unlock(&net->mu);
    return NULL;
}

/* ------------------------------------------------------------ listening */

/* An indirect node keeps a connection open to each of its routers (in the
 * PKI), asking them to route for it; dialed again every 4 s while down. */
static void keep_routers(net_mod *net)
{
    int64_t now = hcn_now_ns();
    if (net->nrouters == 0 || now < net->next_router_check)
        return;
    net->next_router_check = now + (int64_t)ROUTER_RETRY_S * 1000000000;
    for (size_t i = 0; i < net->nrouters; i++) {
        const char *r = net->routers[i];
        hcnn_peer_id rid;
        if (!hcnn_pki_get(net->pki, r, &rid))
            continue;
        hcnn_peer_id_fini(&rid);
        pthread_mutex_lock(&net->mu);
        peer *p = peer_get(net, r);
        if (p->conn == NULL && !p->dialing && !peer_dial(net, p) &&
            p->qlen == 0)
            peer_drop(net, p);
        pthread_mutex_unlock(&net->mu);
    }
}

static void *listen_main(void *arg)
{
    net_mod *net = arg;
    pthread_setname_np(pthread_self(), "hc-net-listen");
    while (!atomic_load(&net->stop)) {
        keep_routers(net);
        /* a negative fd is ignored by poll: a transport not offered */
        struct pollfd pf[2] = {{.fd = net->listen_fd, .events = POLLIN},
                               {.fd = net->ws_listen_fd, .events = POLLIN}};
        if (poll(pf, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            int fd = accept4(pf[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0)
                continue;
            conn *c = conn_new(net, fd, false, NULL, i == 1);
            pthread_mutex_lock(&net->mu);
            bool ok = conn_start(net, c);
            pthread_mutex_unlock(&net->mu);
            if (!ok) {
                hcn_logf(net->node, 0, "net: a connection refused: %d open",
                         MAX_CONNS);
                conn_free(c);
            }
        }
    }
    return NULL;
}

/* Listen on port (0: any) of the net address; *fd_out and *port_out. */
static int listen_on(net_mod *net, int port, int *fd_out, int *port_out,
                     char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    const char *addr =
        net->node->cfg.net_addr ? net->node->cfg.net_addr : "127.0.0.1";
    if (fd < 0 || inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 64) != 0) {
        snprintf(err, errlen, "net: cannot listen on %s:%d: %s", addr, port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *fd_out = fd;
    *port_out = ntohs(sa.sin_port);
    return 0;
}

/* ------------------------------------------------------- the process */

static void pack_peer(net_mod *net, msgpack_packer *pk, const hcnn_peer_id *p)
{
    char hex[2 * HCNN_PUBKEY + 1] = "";
    if (p->has_key)
        for (int i = 0; i < HCNN_PUBKEY; i++)
            snprintf(hex + 2 * i, 3, "%02x", p->key[i]);
    (void)net;
    hcnn_identity id = {.name = p->name,
                        .networking_key = hex,
                        .ip = p->ip,
                        .tcp_port = p->tcp_port,
                        .ws_port = p->ws_port,
                        .routers = p->routers,
                        .nrouters = p->nrouters};
    hcnn_identity_pack(pk, &id);
}

static void pack_ours(net_mod *net, msgpack_packer *pk)
{
    char hex[2 * HCNN_PUBKEY + 1];
    hcnn_ident_pub_hex(net->id, hex);
    const char *ip =
        net->node->cfg.net_addr ? net->node->cfg.net_addr : "127.0.0.1";
    hcnn_identity id = {
        .name = net->our,
        .networking_key = hex,
        .ip = ip,
        .tcp_port = (uint16_t)(net->listen_fd >= 0 ? net->port : 0),
        .ws_port = (uint16_t)(net->ws_listen_fd >= 0 ? net->ws_port : 0)};
    hcnn_identity_pack(pk, &id);
}

static void pack_key(msgpack_packer *pk, const char *key)
{
    size_t n = strlen(key);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, key, n);
}

/* Answer a local NetAction as hyperdrive's net does: HnsUpdates feed the
 * PKI (no answer); the gets, Sign and Verify get a NetResponse in msgpack
 * (Sign's signature in the blob). */
static void local_request(net_mod *net, hcn_msg *m)
{
    hcn_proc *self = net->self;
    hcnn_net_action a;
    char err[256];
    if (!hcnn_net_action_decode(m->body, m->body_len, &a, err, sizeof err)) {
        hcn_mod_log(self, 0,
                    "%s sent net:distro:sys something that is not a "
                    "NetAction: %s",
                    m->source, err);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hcn_blob *blob = NULL;
    bool answer = true;
    switch (a.kind) {
    case HCNN_NA_CONNECTION_REQUEST: answer = false; break;
    case HCNN_NA_HNS_UPDATE:
    case HCNN_NA_HNS_BATCH_UPDATE:
        for (size_t i = 0; i < a.nhns; i++)
            if (hcnn_pki_put_hns(net->pki, &a.hns[i], err, sizeof err) != 0)
                hcn_mod_log(self, 0, "%s: %s", m->source, err);
        answer = false;
        break;
    case HCNN_NA_GET_PEERS: {
        pthread_mutex_lock(&net->mu);
        size_t n = 0;
        for (peer *p = net->peers; p; p = p->hh.next)
            n += p->conn != NULL;
        char **names = hcn_xcalloc(n ? n : 1, sizeof *names);
        size_t k = 0;
        for (peer *p = net->peers; p && k < n; p = p->hh.next)
            if (p->conn)
                names[k++] = hcn_xstrdup(p->name);
        pthread_mutex_unlock(&net->mu);
        msgpack_pack_map(&pk, 1);
        pack_key(&pk, "Peers");
        hcnn_peer_id *ids = hcn_xcalloc(k ? k : 1, sizeof *ids);
        size_t have = 0;
        for (size_t i = 0; i < k; i++)
            if (hcnn_pki_get(net->pki, names[i], &ids[have]))
                have++;
        msgpack_pack_array(&pk, have);
        for (size_t i = 0; i < have; i++) {
            pack_peer(net, &pk, &ids[i]);
            hcnn_peer_id_fini(&ids[i]);
        }
        for (size_t i = 0; i < k; i++)
            free(names[i]);
        free(names);
        free(ids);
        break;
    }
    case HCNN_NA_GET_PEER: {
        msgpack_pack_map(&pk, 1);
        pack_key(&pk, "Peer");
        hcnn_peer_id p;
        if (strcmp(a.text, net->our) == 0) {
            pack_ours(net, &pk);
        } else if (hcnn_pki_get(net->pki, a.text, &p)) {
            pack_peer(net, &pk, &p);
            hcnn_peer_id_fini(&p);
        } else {
            msgpack_pack_nil(&pk);
        }
        break;
    }
    case HCNN_NA_GET_DIAGNOSTICS: {
        pthread_mutex_lock(&net->mu);
        size_t peers = 0, conns = net->nconns;
        unsigned npass = net->npass;
        for (peer *p = net->peers; p; p = p->hh.next)
            peers += p->conn != NULL;
        pthread_mutex_unlock(&net->mu);
        char *text = hcn_xasprintf(
            "our name: %s, tcp port %d, ws port %d\r\nwe have connections "
            "with %zu peers (%zu connections open, %d max)\r\nwe route %u "
            "passthroughs (%u max)\r\nwe have %zu entries in the PKI\r\n",
            net->our, net->listen_fd >= 0 ? net->port : 0,
            net->ws_listen_fd >= 0 ? net->ws_port : 0, peers, conns, MAX_CONNS,
            npass, net->max_pass, hcnn_pki_count(net->pki));
        msgpack_pack_map(&pk, 1);
        pack_key(&pk, "Diagnostics");
        pack_key(&pk, text);
        free(text);
        break;
    }
    case HCNN_NA_SIGN:
    case HCNN_NA_VERIFY: {
        /* the message: the address string, then the request's blob */
        const char *who = a.kind == HCNN_NA_SIGN ? m->source : a.text;
        size_t wl = strlen(who), bl = m->blob ? m->blob->len : 0;
        uint8_t *msg = hcn_xmalloc(wl + bl + 1);
        memcpy(msg, who, wl);
        if (bl)
            memcpy(msg + wl, m->blob->bytes, bl);
        if (a.kind == HCNN_NA_SIGN) {
            uint8_t sig[HCNN_SIG];
            if (hcnn_ident_sign(net->id, msg, wl + bl, sig))
                blob = hcn_blob_new(NULL, sig, HCNN_SIG);
            pack_key(&pk, "Signed");
        } else {
            char node[256];
            hcnn_peer_id p;
            bool ok;
            if (hcnn_pki_get(net->pki, addr_node(who, node, sizeof node), &p)) {
                ok = p.has_key &&
                     hcnn_ed25519_verify(p.key, msg, wl + bl, a.sig, a.sig_len);
                hcnn_peer_id_fini(&p);
            } else { /* as hyperdrive: a node it does not know is ours */
                ok = hcnn_ed25519_verify(hcnn_ident_pub(net->id), msg, wl + bl,
                                         a.sig, a.sig_len);
            }
            msgpack_pack_map(&pk, 1);
            pack_key(&pk, "Verified");
            if (ok)
                msgpack_pack_true(&pk);
            else
                msgpack_pack_false(&pk);
        }
        free(msg);
        break;
    }
    }
    if (answer) {
        const char *to = m->rsvp ? m->rsvp : m->source;
        hcn_msg *r =
            HCN_MSG_NEW(.kind = HCN_MSG_RESPONSE, .id = m->id,
                        .source = net->addr, .target = to, .body = sb.data,
                        .body_len = sb.size, .blob = blob);
        hcn_route(net->node, r);
    }
    hcn_blob_unref(blob);
    msgpack_sbuffer_destroy(&sb);
    hcnn_net_action_fini(&a);
}

/* A request from another node that is a NetAction hyperdrive acts on:
 * ConnectionRequest (from one of our routers: connect through it to the
 * node that waits there) or a PKI update (refused).  false: not one of
 * those (then it is a hello). */
static bool remote_action(net_mod *net, hcn_msg *m)
{
    hcnn_net_action a;
    char err[256], node[256];
    if (!hcnn_net_action_decode(m->body, m->body_len, &a, err, sizeof err))
        return false;
    bool handled = true;
    addr_node(m->source, node, sizeof node);
    if (a.kind == HCNN_NA_HNS_UPDATE || a.kind == HCNN_NA_HNS_BATCH_UPDATE) {
        hcn_logf(net->node, 0, "net: %s may not update our PKI (refused)",
                 node);
    } else if (a.kind == HCNN_NA_CONNECTION_REQUEST) {
        hcnn_peer_id who;
        if (!in_list(net->routers, net->nrouters, node)) {
            hcn_logf(net->node, 0,
                     "net: a connection request from %s, which "
                     "is not one of our routers (ignored)",
                     node);
        } else if (!hcc_name_safe(a.text, strlen(a.text), true) ||
                   !hcnn_pki_get(net->pki, a.text, &who)) {
            hcn_logf(net->node, 0,
                     "net: %s asks us to connect to %s, not in "
                     "the PKI (ignored)",
                     node, a.text);
        } else {
            hcnn_peer_id_fini(&who);
            conn *c = conn_new(net, -1, false, a.text, false);
            c->via = hcn_xstrdup(node);
            pthread_mutex_lock(&net->mu);
            bool ok = conn_start(net, c);
            pthread_mutex_unlock(&net->mu);
            if (!ok)
                conn_free(c);
            hcn_logf(net->node, 1, "net: %s asks us to connect to %s: %s", node,
                     a.text, ok ? "connecting" : "no connection slot");
        }
    } else {
        handled = false;
    }
    hcnn_net_action_fini(&a);
    return handled;
}

static void net_handle(hcn_proc *self, hcn_msg *m)
{
    net_mod *net = self->mod;
    if (m->kind == HCN_MSG_REQUEST && !addr_node_is(m->source, net->our) &&
        remote_action(net, m)) {
        /* a NetAction from another node: handled */
    } else if (m->kind == HCN_MSG_REQUEST &&
               !addr_node_is(m->source, net->our)) {
        /* another node's request: "hello", printed and answered "ack" */
        char node[256];
        hcn_logf(net->node, 0, "%s: %.*s",
                 addr_node(m->source, node, sizeof node), (int)m->body_len,
                 (const char *)m->body);
        HCN_MOD_REPLY(self, m, .when = HCN_MOD_ALWAYS, .body = "ack");
    } else if (m->kind == HCN_MSG_REQUEST) {
        local_request(net, m);
    }
    hcn_msg_unref(m);
}

static void routers_free(net_mod *net)
{
    for (size_t i = 0; i < net->nrouters; i++)
        free(net->routers[i]);
    free(net->routers);
}

static void net_stop(hcn_proc *self)
{
    net_mod *net = self->mod;
    atomic_store(&net->stop, true);
    if (net->listening)
        pthread_join(net->listener, NULL);
    /* the connection threads see the flag within a second */
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&net->mu);
        size_t n = net->nthreads;
        for (conn *c = net->conns; c; c = c->next)
            wake(c);
        pthread_mutex_unlock(&net->mu);
        if (n == 0)
            break;
        usleep(10000);
    }
}

static void net_fini(hcn_proc *self)
{
    net_mod *net = self->mod;
    if (net == NULL)
        return;
    peer *p, *t;
    HASH_ITER(hh, net->peers, p, t)
    {
        peer_drop(net, p);
    }
    if (net->listen_fd >= 0)
        close(net->listen_fd);
    if (net->ws_listen_fd >= 0)
        close(net->ws_listen_fd);
    hcnn_pki_free(net->pki);
    hcnn_ident_free(net->id);
    routers_free(net);
    pthread_mutex_destroy(&net->mu);
    free(net->our);
    free(net->addr);
    free(net);
    self->mod = NULL;
}

static const hcn_module_ops net_ops = {
    .handle = net_handle,
    .stop = net_stop,
    .fini = net_fini,
};

/* <home>/net/identity.json: this node's entry for other nodes' peers
 * files. */
static void write_identity(net_mod *net, const char *dir)
{
    char hex[2 * HCNN_PUBKEY + 1];
    hcnn_ident_pub_hex(net->id, hex);
    const char *ip =
        net->node->cfg.net_addr ? net->node->cfg.net_addr : "127.0.0.1";
    json_t *ports = json_object(), *ips = json_array(), *routers = json_array();
    if (net->nrouters) {
        /* an indirect node: reached through its routers */
        for (size_t i = 0; i < net->nrouters; i++)
            json_array_append_new(routers, json_string(net->routers[i]));
    } else {
        json_array_append_new(ips, json_string(ip));
        if (net->listen_fd >= 0)
            json_object_set_new(ports, "tcp", json_integer(net->port));
        if (net->ws_listen_fd >= 0)
            json_object_set_new(ports, "ws", json_integer(net->ws_port));
    }
    json_t *o = json_pack("{sssssososo}", "name", net->our, "public_key", hex,
                          "ips", ips, "ports", ports, "routers", routers);
    char *path = hcn_xasprintf("%s/identity.json", dir);
    json_dump_file(o, path, JSON_INDENT(2));
    free(path);
    json_decref(o);
}

/* "a.os,b.os" into net->routers; -1 with err for a name that is not
 * hypermap-safe. */
static int routers_parse(net_mod *net, const char *list, char *err,
                         size_t errlen)
{
    if (list == NULL)
        return 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0) {
            if (!hcc_name_safe(p, n, true)) {
                snprintf(err, errlen,
                         "--net-routers: '%.*s' is not a "
                         "hypermap-safe node name",
                         (int)n, p);
                return -1;
            }
            net->routers = hcn_xrealloc(net->routers, (net->nrouters + 1) *
                                                          sizeof *net->routers);
            net->routers[net->nrouters++] = hcn_xstrndup(p, n);
        }
        p += n + (e != NULL);
    }
    return 0;
}

static void net_free_early(net_mod *net)
{
    routers_free(net);
    hcnn_pki_free(net->pki);
    hcnn_ident_free(net->id);
    if (net->listen_fd >= 0)
        close(net->listen_fd);
    if (net->ws_listen_fd >= 0)
        close(net->ws_listen_fd);
    pthread_mutex_destroy(&net->mu);
    free(net->our);
    free(net);
}

int hcn_mod_net_add(hcn_node *n, char *err, size_t errlen)
{
    if (n->cfg.net_port < 0 && n->cfg.net_ws_port < 0 &&
        n->cfg.net_routers == NULL)
        return 0; /* networking off: every other node is offline */
    net_mod *net = hcn_xcalloc(1, sizeof *net);
    net->node = n;
    net->our = hcn_xstrdup(n->name);
    net->listen_fd = net->ws_listen_fd = -1;
    net->max_pass = n->cfg.net_max_passthroughs;
    net->lifetime_ns = (int64_t)LIFETIME_S * 1000000000;
    const char *life = getenv("HYPERC_NET_LIFETIME_S");
    if (life && strtoll(life, NULL, 10) > 0)
        net->lifetime_ns = strtoll(life, NULL, 10) * 1000000000;
    atomic_init(&net->stop, false);
    pthread_mutex_init(&net->mu, NULL);
    char *dir = hcn_xasprintf("%s/net", n->cfg.home);
    net->id = hcnn_ident_load(dir, err, errlen);
    net->pki = hcnn_pki_new(n->cfg.net_peers);
    if (net->id == NULL || hcnn_pki_reload(net->pki, err, errlen) != 0 ||
        routers_parse(net, n->cfg.net_routers, err, errlen) != 0 ||
        (n->cfg.net_port >= 0 &&
         listen_on(net, n->cfg.net_port, &net->listen_fd, &net->port, err,
                   errlen) != 0) ||
        (n->cfg.net_ws_port >= 0 &&
         listen_on(net, n->cfg.net_ws_port, &net->ws_listen_fd, &net->ws_port,
                   err, errlen) != 0)) {
        free(dir);
        net_free_early(net);
        return -1;
    }
    write_identity(net, dir);
    free(dir);
    if (pthread_create(&net->listener, NULL, listen_main, net) != 0) {
        snprintf(err, errlen, "net: cannot start its listener");
        net_free_early(net);
        return -1;
    }
    net->listening = true;
    hcn_proc *p = hcn_node_add_proc(n, NET_PID, true, NULL);
    net->self = p;
    net->addr = hcn_xstrdup(p->addr);
    p->ops = &net_ops;
    p->mod = net;
    hcn_proc_unref(p); /* the table keeps it; net->self borrows */
    n->remote = (hcn_remote){.send = net_send, .ctx = net};
    char hex[2 * HCNN_PUBKEY + 1], tcp[16] = "none", ws[16] = "none";
    hcnn_ident_pub_hex(net->id, hex);
    if (net->listen_fd >= 0)
        snprintf(tcp, sizeof tcp, "%d", net->port);
    if (net->ws_listen_fd >= 0)
        snprintf(ws, sizeof ws, "%d", net->ws_port);
    hcn_logf(n, 0,
             "net: %s listening on tcp %s, ws %s, networking key %s, "
             "%zu peers known%s%s%s",
             net->our, tcp, ws, hex, hcnn_pki_count(net->pki),
             net->nrouters ? ", reached through " : "",
             net->nrouters ? n->cfg.net_routers : "",
             net->max_pass ? ", routing for others" : "");
    return 0;
}

int hc_node_net_key(const char *home, char hex[65], char *err, size_t errlen)
{
    if (mkdir(home, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot make %s: %s", home, strerror(errno));
        return -1;
    }
    char *dir = hcn_xasprintf("%s/net", home);
    hcnn_ident *id = hcnn_ident_load(dir, err, errlen);
    free(dir);
    if (id == NULL)
        return -1;
    hcnn_ident_pub_hex(id, hex);
    hcnn_ident_free(id);
    return 0;
}
