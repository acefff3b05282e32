/* Lanes between two workers (lane.h): the memfd and its header, and how a
 * worker gets it from the node (fd 4).  The rings are link.c's
 * (hcw_link_lane). */
#include "lane.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define LANE_MAGIC 0x656e616cu /* "lane" */
#define LANE_LAYOUT                                                            \
    3 /* 2: its rings' readers sleep as link layout 5's;                       \
       * 3: LREQ and LRESP flat (proto.h) */
/* Ring sizes a worker accepts from the header (the node writes
 * HCW_LANE_RING_BYTES). */
#define LANE_RING_MIN 4096u
#define LANE_RING_MAX (16u * 1024 * 1024)

typedef struct lane_head {
    uint32_t magic;
    uint32_t layout;
    uint32_t ring_bytes;
    uint32_t number;
    _Atomic uint32_t state;
} lane_head;

/* the rings' lines start at 64 (link.c); the directions' words at 320 */
_Static_assert(sizeof(lane_head) <= 64, "the header fits before the rings");

struct hcw_lane {
    uint8_t *map;
    size_t len;
    uint32_t number;
    hcw_link *view[2]; /* a worker: its side's only; the node: both */
    int side;          /* a worker's side, or -1 (the node) */
};

/* Direction d's words (from side d's process to side 1 - d's), a line
 * each: what its writer reads at each send (and writes, req_written), and
 * the node seldom changes.  req_taken, written at each request the reader
 * takes, has a line of its own (TAKEN_OFF), which the writer reads only
 * when its own count says the quota may be reached. */
typedef struct lane_dir {
    _Atomic uint32_t last_seq;    /* the node */
    _Atomic uint32_t read_seq;    /* the reader's worker */
    _Atomic uint32_t req_written; /* the writer's worker */
    _Atomic uint32_t full;        /* the node */
} lane_dir;
#define DIR_OFF 320
#define TAKEN_OFF 448

static lane_dir *dir_at(const hcw_lane *l, int d)
{
    return (lane_dir *)(l->map + DIR_OFF + 64 * (d & 1));
}

static _Atomic uint32_t *taken_at(const hcw_lane *l, int d)
{
    return (_Atomic uint32_t *)(l->map + TAKEN_OFF + 64 * (d & 1));
}

_Static_assert(TAKEN_OFF + 128 <= HCW_LINK_HEADER_BYTES,
               "the directions' words fit the header's page");

void hcw_lane_set_req_written(hcw_lane *l, int d, uint32_t v)
{
    atomic_store_explicit(&dir_at(l, d)->req_written, v, memory_order_relaxed);
}

uint32_t hcw_lane_req_written(const hcw_lane *l, int d)
{
    return atomic_load_explicit(&dir_at(l, d)->req_written,
                                memory_order_relaxed);
}

void hcw_lane_set_req_taken(hcw_lane *l, int d, uint32_t v)
{
    atomic_store_explicit(taken_at(l, d), v, memory_order_relaxed);
}

uint32_t hcw_lane_req_taken(const hcw_lane *l, int d)
{
    return atomic_load_explicit(taken_at(l, d), memory_order_relaxed);
}

uint32_t hcw_lane_backlog(const hcw_lane *l, int d, uint32_t quota)
{
    /* each word read once; a difference that is negative as an int32
     * (taken ahead of written) is none, one over the quota is the quota */
    uint32_t unread = hcw_lane_req_written(l, d) - hcw_lane_req_taken(l, d);
    if ((int32_t)unread < 0)
        return 0;
    return unread > quota ? quota : unread;
}

void hcw_lane_set_full(hcw_lane *l, int d, bool full)
{
    /* stored only when it changes: the writer reads this line at each
     * send */
    _Atomic uint32_t *w = &dir_at(l, d)->full;
    if ((atomic_load_explicit(w, memory_order_relaxed) != 0) != full)
        atomic_store_explicit(w, full ? 1 : 0, memory_order_relaxed);
}

bool hcw_lane_full(const hcw_lane *l, int d)
{
    return atomic_load_explicit(&dir_at(l, d)->full, memory_order_relaxed) != 0;
}

void hcw_lane_set_last_seq(hcw_lane *l, int d, uint32_t v)
{
    atomic_store_explicit(&dir_at(l, d)->last_seq, v, memory_order_release);
}

uint32_t hcw_lane_last_seq(const hcw_lane *l, int d)
{
    return atomic_load_explicit(&dir_at(l, d)->last_seq, memory_order_acquire);
}

void hcw_lane_set_read_seq(hcw_lane *l, int d, uint32_t v)
{
    atomic_store_explicit(&dir_at(l, d)->read_seq, v, memory_order_release);
}

uint32_t hcw_lane_read_seq(const hcw_lane *l, int d)
{
    return atomic_load_explicit(&dir_at(l, d)->read_seq, memory_order_acquire);
}

static size_t map_bytes(uint32_t ring_bytes)
{
    return HCW_LINK_HEADER_BYTES + 2 * (size_t)ring_bytes;
}

/* A lane around a mapping, with views of the sides wanted (side -1:
 * both).  NULL (the mapping left to the caller) when out of memory. */
static hcw_lane *wrap(uint8_t *map, uint32_t ring_bytes, uint32_t number,
                      int side)
{
    hcw_lane *l = calloc(1, sizeof *l);
    if (l == NULL)
        return NULL;
    l->map = map;
    l->len = map_bytes(ring_bytes);
    l->number = number;
    l->side = side;
    for (int s = 0; s < 2; s++) {
        if (side != -1 && side != s)
            continue;
        l->view[s] = hcw_link_lane(map, ring_bytes, s);
        if (l->view[s] == NULL) {
            hcw_link_free(l->view[0]);
            free(l);
            return NULL;
        }
    }
    return l;
}

hcw_lane *hcw_lane_new(uint32_t number, int *fd_out)
{
    uint32_t size = HCW_LANE_RING_BYTES;
    size_t len = map_bytes(size);
    /* sealed at its size: neither worker can make the other, or the node,
     * fault on its mapping */
    int fd;
    uint8_t *map = hcw_shm_sealed("hyperc-lane", len, &fd);
    if (map == NULL)
        return NULL;
    lane_head *h = (lane_head *)map;
    h->magic = LANE_MAGIC;
    h->layout = LANE_LAYOUT;
    h->ring_bytes = size;
    h->number = number;
    atomic_store(&h->state, HCW_LANE_STATE_OPEN);
    hcw_lane *l = wrap(map, size, number, -1);
    if (l == NULL) {
        munmap(map, len);
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    *fd_out = fd;
    return l;
}

hcw_lane *hcw_lane_map(int fd, uint32_t number, int side, char *err,
                       size_t errlen)
{
    hcw_lane *l = NULL;
    uint8_t *map = MAP_FAILED;
    size_t len = 0;
    struct stat st;
    if (side != 0 && side != 1) {
        hcw_seterr(err, errlen, "lane %u: no side %d", number, side);
        goto fail;
    }
    if (fstat(fd, &st) != 0) {
        hcw_seterr(err, errlen, "lane %u: fstat: %s", number, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)map_bytes(LANE_RING_MIN) ||
        st.st_size > (off_t)map_bytes(LANE_RING_MAX)) {
        hcw_seterr(err, errlen, "lane %u: not a lane's memory (%lld bytes)",
                   number, (long long)st.st_size);
        goto fail;
    }
    len = (size_t)st.st_size;
    map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        hcw_seterr(err, errlen, "lane %u: cannot map it: %s", number,
                   strerror(errno));
        goto fail;
    }
    /* each word read once: the other side may write them meanwhile */
    lane_head *h = (lane_head *)map;
    uint32_t magic = h->magic, layout = h->layout, size = h->ring_bytes,
             num = h->number;
    if (magic != LANE_MAGIC || layout != LANE_LAYOUT) {
        hcw_seterr(err, errlen, "lane %u: not a lane of layout %d", number,
                   LANE_LAYOUT);
        goto fail;
    }
    if (size < LANE_RING_MIN || size > LANE_RING_MAX ||
        (size & (size - 1)) != 0 || map_bytes(size) != len) {
        hcw_seterr(err, errlen,
                   "lane %u: rings of %u bytes do not make a mapping of %zu",
                   number, size, len);
        goto fail;
    }
    if (num != number) {
        hcw_seterr(err, errlen, "lane %u: the memory is lane %u's", number,
                   num);
        goto fail;
    }
    l = wrap(map, size, number, side);
    if (l == NULL) {
        hcw_seterr(err, errlen, "lane %u: out of memory", number);
        goto fail;
    }
    close(fd);
    return l;
fail:
    if (map != MAP_FAILED)
        munmap(map, len);
    close(fd);
    return NULL;
}

int hcw_lane_send(int sock, uint32_t number, int memfd)
{
    uint8_t b[4] = {(uint8_t)number, (uint8_t)(number >> 8),
                    (uint8_t)(number >> 16), (uint8_t)(number >> 24)};
    struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cm.buf,
                         .msg_controllen = sizeof cm.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &memfd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)sizeof b ? 0 : -1;
}

/* Descriptors a message may bring at most before it is refused anyway:
 * the room to see (and close) a few more than the one expected. */
#define RECV_FDS 4

hcw_lane *hcw_lane_receive(int sock, uint32_t number, int side, char *err,
                           size_t errlen)
{
    uint8_t b[8]; /* room for more than the 4 bytes, to tell a longer one */
    struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(RECV_FDS * sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof cm);
    struct msghdr msg = {.msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = cm.buf,
                         .msg_controllen = sizeof cm.buf};
    ssize_t n;
    do
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        hcw_seterr(err, errlen, "lane %u: no message on fd %d: %s", number,
                   sock, strerror(errno));
        return NULL;
    }
    /* every descriptor that came, whatever else is wrong */
    int fds[RECV_FDS * 2];
    size_t nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL;
         c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
            c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k && nfds < sizeof fds / sizeof fds[0]; i++)
            memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    }
    uint32_t got = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24;
    char why[64] = "";
    if (n == 0 && nfds == 0)
        snprintf(why, sizeof why, "the node closed the socket");
    else if (n != 4 || (msg.msg_flags & MSG_TRUNC))
        snprintf(why, sizeof why, "a message that is not 4 bytes");
    else if ((msg.msg_flags & MSG_CTRUNC) || nfds != 1)
        snprintf(why, sizeof why, "not one descriptor with the message");
    else if (got != number)
        snprintf(why, sizeof why, "the message of lane %u", got);
    if (why[0]) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        hcw_seterr(err, errlen, "lane %u: on fd %d, %s", number, sock, why);
        return NULL;
    }
    return hcw_lane_map(fds[0], number, side, err, errlen);
}

hcw_link *hcw_lane_link(hcw_lane *l)
{
    return l->side >= 0 ? l->view[l->side] : NULL;
}

hcw_link *hcw_lane_view(hcw_lane *l, int side)
{
    return l->side == -1 && (side == 0 || side == 1) ? l->view[side] : NULL;
}

uint32_t hcw_lane_number(const hcw_lane *l)
{
    return l->number;
}

uint32_t hcw_lane_state(const hcw_lane *l)
{
    uint32_t s = atomic_load_explicit(&((lane_head *)l->map)->state,
                                      memory_order_acquire);
    return s == HCW_LANE_STATE_OPEN || s == HCW_LANE_STATE_CLOSING
               ? s
               : HCW_LANE_STATE_CLOSED;
}

uint32_t hcw_lane_state_word(const hcw_lane *l)
{
    return atomic_load_explicit(&((lane_head *)l->map)->state,
                                memory_order_acquire);
}

uint8_t *hcw_lane_mapping(const hcw_lane *l, size_t *len)
{
    *len = l->len;
    return l->map;
}

void hcw_lane_set_state(hcw_lane *l, uint32_t state)
{
    atomic_store(&((lane_head *)l->map)->state, state);
    if (state != HCW_LANE_STATE_OPEN)
        for (int s = 0; s < 2; s++)
            if (l->view[s])
                hcw_link_kick(l->view[s]);
}

void hcw_lane_free(hcw_lane *l)
{
    if (l == NULL)
        return;
    hcw_link_free(l->view[0]);
    hcw_link_free(l->view[1]);
    munmap(l->map, l->len);
    free(l);
}
