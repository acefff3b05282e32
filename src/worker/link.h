/* Internal to hyperc: how the worker protocol's frames travel between the
 * node and one worker (docs/worker-protocol.md, "Transport").  Prefix
 * hcw_link_.
 *
 * Two kinds of link carry exactly the same frames:
 *   - a shared-memory channel (what the node gives its native workers): one
 *     sealed memfd mapping holding two single-producer single-consumer byte
 *     rings, one per direction.  A reader with nothing to read spins a
 *     little (an adaptive budget, as the node's mailboxes do, giving up its
 *     CPU before each round of looks), then sleeps on a futex in the
 *     mapping; a writer wakes it only when it sleeps.
 *   - a connected stream socket (for a host that cannot map memory with
 *     the node, such as a wasm host in JavaScript).
 *
 * A frame larger than a ring streams through it: the writer fills what is
 * free, the reader copies out what has come, each waiting for the other.
 * Neither side trusts the other's half of the mapping: the node checks
 * the worker's ring positions before using them and copies every frame out
 * of the ring before decoding it.
 *
 * Threads: on each side one thread at a time reads and one at a time writes
 * (on the node's end they may differ: a thread delivering to a parked
 * process writes its replies ring while the process's thread waits to
 * read, and the node's shared server reads and writes a worker's rings
 * while the process's thread sleeps, kernel/isolate.c); hcw_link_kick is
 * for any thread.  Waits are
 * cut into checks (HCW_LINK_CHECK_MS): at each, the watch function (if
 * any) says whether the peer is still worth waiting for. */
#ifndef HYPERC_WORKER_LINK_H
#define HYPERC_WORKER_LINK_H

#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of each ring of a shared-memory link (a power of two). */
#define HCW_LINK_RING_BYTES (64u * 1024)
/* How often a waiting side consults its watch function. */
#define HCW_LINK_CHECK_MS 50
/* The longest first sleep of a reader after it raises its flag: writers
 * look at the flag without a full fence, so one raised at the moment a
 * frame is published may go unseen; the reader looks again after this
 * and only then sleeps longer (link.c, the layout's comment). */
#define HCW_LINK_FIRST_SLEEP_US 200
/* Bytes before a shared-memory mapping's rings: a page of header, of
 * which [64, 320) holds the two rings' positions and sleep flags; the rest
 * is the owner's (the link's header, or a lane's, lane.h). */
#define HCW_LINK_HEADER_BYTES 4096u

typedef struct hcw_link hcw_link;

/* Whether to go on waiting for the peer (false: it is gone, or this side
 * is to stop).  Called on the waiting thread. */
typedef bool (*hcw_link_watch_fn)(void *ctx);

/* A new memfd of len bytes named name, sealed at that size (no side can
 * shrink or grow it, so none can make another fault on its mapping), and
 * its mapping: the mapping, with the descriptor in *fd_out (close-on-exec;
 * the caller's), or NULL with errno.  For links and lanes (lane.c). */
uint8_t *hcw_shm_sealed(const char *name, size_t len, int *fd_out);
/* The node's end of a new shared-memory link.  *fd_out is the memfd to
 * hand the worker (as its fd 3); the caller closes it once the worker has
 * it.  spin_us bounds how long either side spins before sleeping (0: never
 * spin).  NULL with errno on failure. */
hcw_link *hcw_link_shm_new(uint32_t spin_us, int *fd_out);
/* The worker's end of the shared-memory link in fd (which it closes on
 * success).  NULL with a sentence in err when fd is not such a link. */
hcw_link *hcw_link_shm_open(int fd, char *err, size_t errlen);
/* A link over a connected stream socket; the link owns fd.  Its reads
 * sleep in poll at once. */
hcw_link *hcw_link_socket(int fd);
/* Let a socket link's reads first poll without sleeping for up to spin_us
 * (adapting as the ring's do: doubled when the wait paid off, halved when
 * it did not); 0 turns it off. */
void hcw_link_socket_spin(hcw_link *l, uint32_t spin_us);
/* Whether a shared-memory link's spin gives up the CPU (sched_yield)
 * before each round of looks: true, the default, when more threads than
 * CPUs take part in an exchange (a worker, its node thread and the peer's
 * on two vCPUs), so that the peer a reader waits for runs at once; false
 * when each side has a CPU of its own, where the yield's system call only
 * delays the reader (bench/lane_pingpong).  One thread, before use. */
void hcw_link_spin_yield(hcw_link *l, bool yield);
/* Whether a wait on the lanes (hcw_link_wait_any with l first) that slept
 * for what came within the longest spin sets l's spin budget to twice that
 * wait (true), or halves it as any wait that slept does (false, the
 * default).  For a reader whose peer answers in 10-20 µs (a wasm host's
 * guest and JavaScript): halving alone leaves the budget below such a wait
 * for good once it fell there, a sleep and a wake-up every round trip
 * (docs/wasm-lanes.md, step 3).  Not for hyperc-worker as a whole: beside
 * a CPU-bound process a longer spin's yields hand that process whole time
 * slices (a native pair at 64 in flight lost a third of its throughput in
 * half the runs beside two), so a worker grows its budget only while it
 * has a lane to a wasm host (hcw_link_spin_grow_hold).  One thread, before
 * use. */
void hcw_link_spin_grow(hcw_link *l, bool grow);
/* Hold the growth of hcw_link_spin_grow on (hold true) or release one hold
 * (false): for a lane whose peer is a wasm host, whose turn between two
 * messages (~8 µs of its guest and JavaScript) a halved budget no longer
 * covers, so that a worker waiting for it would sleep each message.  The
 * budget grows while any hold is taken or hcw_link_spin_grow says so; a
 * spin that lost its CPU (SPIN_LOST_NS in link.c) never grows it.  One
 * thread. */
void hcw_link_spin_grow_hold(hcw_link *l, bool hold);
/* The read spin budget now, in ns (what the next wait spins at most before
 * it sleeps): for tests and diagnostics.  Any thread; a racy read. */
int64_t hcw_link_spin_budget_ns(const hcw_link *l);
/* Watch this thread's wait for a CPU (/proc/thread-self/schedstat, opened
 * now: before the sandbox, by the thread that waits): from then on a wait
 * that follows a batch (more than 8 frames taken since the last) does not
 * spin while, in the last 10 ms looked at, the thread spent over a quarter
 * of the time runnable but without a CPU (every CPU taken by other work:
 * link.c, CPU_BUSY_SHARE_PCT).  0, or -1 when the file cannot be opened
 * (the waits spin as before).  One thread (every link's waits share the
 * watch); a worker calls it once. */
int hcw_link_cpu_watch(void);
/* Whether the thread seems to wait for a CPU (hcw_link_cpu_watch), looked
 * at again when 10 ms have passed since the last look; false without the
 * watch.  The watching thread; for tests and diagnostics. */
bool hcw_link_cpu_busy(void);
/* Release the link (unmap, close).  NULL is ignored. */
void hcw_link_free(hcw_link *l);

/* The guest's live tasks, kept in a shared-memory link's header for the
 * node to read when `hyperc ps` asks (no frame crosses): the worker sets
 * it (a store), the node reads it (any thread, while the link lives).
 * HCW_LINK_NO_TASKS: never set, or a socket link, which has no such
 * word. */
#define HCW_LINK_NO_TASKS UINT32_MAX
void hcw_link_set_tasks(hcw_link *l, uint32_t live);
uint32_t hcw_link_tasks(const hcw_link *l);

/* How many frames of the worker's the node has served since READY, kept
 * in a shared-memory link's header for a worker with lanes: the node sets
 * it after each frame's effects are done (a release store), the worker
 * reads it (docs/lane-design.md §3a).  0 on a socket link. */
void hcw_link_set_served(hcw_link *l, uint32_t n);
uint32_t hcw_link_served(const hcw_link *l);

/* How many messages a worker with lanes has handed its guest, from any
 * source, kept in the header for the node's CPU limit per message (a
 * message by lane is one the node does not see).  Advice: the worker
 * writes it. */
void hcw_link_set_taken(hcw_link *l, uint32_t n);
uint32_t hcw_link_taken(const hcw_link *l);

/* Whether the guest of a worker with lanes is in its own code, kept in
 * the header for `hyperc ps` (a message by lane is one the node does not
 * see): busy stores the time (CLOCK_MONOTONIC_COARSE ns, never 0) as the
 * worker hands the guest a message (or starts it), not busy stores 0 as
 * the guest waits for one.  Advice: the node clamps what it reads.  0 on
 * a socket link. */
void hcw_link_set_busy(hcw_link *l, bool busy);
int64_t hcw_link_busy_ns(const hcw_link *l);

/* Consult fn(ctx) at each check while waiting (NULL: wait for ever). */
void hcw_link_watch(hcw_link *l, hcw_link_watch_fn fn, void *ctx);

/* Send the frame f (complete: begun and all its arguments put).  Blocks
 * while the ring is full.  0, or -1 with errno: EPIPE when the watch
 * function gave up or the socket closed, EPROTO when the peer's ring
 * positions are impossible, EMSGSIZE over HCW_MAX_FRAME. */
int hcw_link_send(hcw_link *l, hcw_frame *f);
/* Send bytes that already form whole frames.  For a shared-memory link
 * this allocates nothing and takes no lock: a signal handler may call it
 * (the worker's crash report). */
int hcw_link_send_bytes(hcw_link *l, const uint8_t *p, size_t n);

/* The largest frame a socket link sends ahead (hcw_link_try_send). */
#define HCW_LINK_SOCKET_AHEAD (16u * 1024)
/* Send the frame f only if it goes without waiting for the peer (a
 * message delivered ahead, which the peer reads only when it needs it):
 * on a shared-memory link when it fits in the room the ring has now; on a
 * socket when it is at most HCW_LINK_SOCKET_AHEAD bytes and the socket
 * takes it at once.  1 sent; 0 not sent (no room); -1 with errno as
 * hcw_link_send. */
int hcw_link_try_send(hcw_link *l, hcw_frame *f);
/* On a shared-memory link: whether a frame of len bytes (length
 * included) would go now (hcw_link_try_send's 1), so that something sent
 * another way before it can go first.  1 yes, 0 no (or a socket link),
 * -1 impossible positions (EPROTO).  The writing thread. */
int hcw_link_room_for(hcw_link *l, size_t len);
/* Whether the link is a shared-memory one (false: a socket). */
bool hcw_link_is_shm(const hcw_link *l);
/* Whether bytes of a frame wait to be received (a shared-memory link: the
 * receive ring is not empty; a socket link: false, it is not asked). */
bool hcw_link_pending(hcw_link *l);

/* Receive one frame into in (releasing the previous one).  Blocks until a
 * whole frame has come.  1 a frame; 0 the peer closed (socket) or the
 * watch function gave up before a frame began; -1 a broken frame or
 * impossible ring positions (a sentence in err, errno set). */
int hcw_link_recv(hcw_link *l, hcw_in *in, char *err, size_t errlen);

/* On a shared-memory link (the node's end): wait until the receive ring
 * holds bytes, spinning first as a read does, then sleeping until
 * deadline_ns (CLOCK_MONOTONIC) at the latest or until hcw_link_kick.  1
 * bytes are there, 0 not (the deadline passed, or a kick or spurious
 * wake-up: the caller looks at what it waits for and calls again); -1 on a
 * socket link.  The watch function is not called.  One thread waits at a
 * time. */
int hcw_link_wait(hcw_link *l, int64_t deadline_ns);

/* On a shared-memory link (the node's end), for a thread that serves
 * several links at once (kernel/isolate.c, the shared server): whether a
 * frame can be read without waiting.  0 nothing, or only the start of a
 * frame, has come; 1 a whole frame is in the ring (hcw_link_recv takes it
 * at once); 2 a frame the ring cannot hold whole, or impossible positions:
 * only a thread that may wait reads it.  0 on a socket link. */
int hcw_link_frame_ready(hcw_link *l);
/* The word a reader sleeps on (shared-memory links only, else NULL): set
 * it to 1, look again (hcw_link_frame_ready), then wait on it with
 * futex_waitv for the value 1 (not private: the writer is another
 * process); the writer takes it down and wakes it when it publishes.  The
 * first wait at most HCW_LINK_FIRST_SLEEP_US, then a look again before a
 * longer one with the word still up.  Set it back to 0 after the wait. */
_Atomic uint32_t *hcw_link_sleep_word(hcw_link *l);

/* Wake the thread in hcw_link_wait on this link (any thread, any time; a
 * kick before the wait makes the next wait return at once).  Nothing on a
 * socket link. */
void hcw_link_kick(hcw_link *l);

/* Read the bytes that have come, as a stream, for a peer that splits the
 * frames itself (the wasm host's addon, src/wasm/link_addon.c): at most
 * cap of them into p, waiting (spinning, then sleeping, as
 * hcw_link_recv does) until at least one has come.  The bytes read; 0 the
 * watch function gave up before any came, or the socket closed; -1 with a
 * sentence in err and errno (EPROTO: impossible ring positions). */
long hcw_link_read_some(hcw_link *l, uint8_t *p, size_t cap, char *err,
                        size_t errlen);

/* ---- Lanes (lane.h, docs/lane-design.md): the rings of a mapping shared
 * by two workers, each side hostile to the other. */

/* A view of one side (0 or 1) of a lane's mapping at map, whose rings
 * hold ring_bytes each (a power of two) after HCW_LINK_HEADER_BYTES: side
 * s writes ring s and reads ring 1 - s.  The view borrows the mapping
 * (hcw_link_free does not unmap it).  Everything it reads is copied out
 * of the ring and decoded untrusted; impossible positions and frames
 * longer than a quarter of the ring are refused.  It never waits:
 * hcw_link_try_send sends a frame of at most ring_bytes / 4 bytes only
 * when the room is there now (0 otherwise: the caller goes by the node),
 * hcw_link_send and hcw_link_send_bytes fail with ENOTSUP, and
 * hcw_link_recv reads as hcw_link_try_recv.  Its reader waits in
 * hcw_link_wait_any.  NULL with errno (EINVAL: a bad side or size). */
hcw_link *hcw_link_lane(uint8_t *map, uint32_t ring_bytes, int side);

/* Receive one frame if it is whole in a shared-memory link's receive
 * ring now: 1 a frame; 0 none, or only its start, has come; -1 with a
 * sentence in err: impossible positions (EPROTO), a length over what the
 * ring can hold whole, a quarter of it on a lane (EMSGSIZE), or a frame
 * that does not decode. */
int hcw_link_try_recv(hcw_link *l, hcw_in *in, char *err, size_t errlen);

/* A lane view's read position: where its reader is (hcw_link_try_recv
 * moves it). */
uint32_t hcw_link_rx_pos(const hcw_link *l);
/* A lane view's receive ring's published end (what its writer has
 * written), and its own write position. */
uint32_t hcw_link_rx_tail(const hcw_link *l);
uint32_t hcw_link_tx_pos(const hcw_link *l);
/* Decode again the frame at *pos of a lane view's own send ring (a worker
 * whose peer ended, re-sending another way what the peer did not take):
 * 1 and *pos past it; 0 at the write position; -1 with err (the peer
 * could write these bytes too: they are decoded untrusted). */
int hcw_link_tx_reread(hcw_link *l, uint32_t *pos, hcw_in *in, char *err,
                       size_t errlen);
/* Take a lane view's read position again from its ring's head word, as
 * the ring's reader left it: the node, before it drains a ring whose
 * reader has ended (its own view never read it).  That position. */
uint32_t hcw_link_rx_resync(hcw_link *l);

/* The most rings hcw_link_wait_any waits on (futex_waitv's limit). */
#define HCW_LINK_WAIT_MAX 128
/* Wait until one of n shared-memory links (the worker's link to the node
 * and its lanes, at most HCW_LINK_WAIT_MAX) has something to read: on a
 * link any byte, on a lane a whole frame or positions to refuse.  Spins
 * first with links[0]'s adaptive budget and its yield setting
 * (hcw_link_spin_yield), then sets each ring's reader_sleeps flag, looks
 * again and sleeps in futex_waitv (shared futexes) until deadline_ns
 * (CLOCK_MONOTONIC) at the latest.  Returns how many have something, with
 * ready[i] saying which (0: the deadline passed, or a kick or a spurious
 * wake-up; the caller looks at its deadlines and calls again); -1 with
 * errno: EINVAL (n out of range, a socket link), ENOSYS (a kernel without
 * futex_waitv, before 5.16).  The watch function is not called.  One
 * thread waits on a ring at a time. */
int hcw_link_wait_any(hcw_link *const *links, size_t n, int64_t deadline_ns,
                      bool *ready);

#endif
