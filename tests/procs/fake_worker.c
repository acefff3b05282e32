/* A worker that speaks only the start of the worker protocol, to test the
 * node's side of it (tests/blackbox/test_isolation.py, run with
 * HYPERC_WORKER pointing here): it takes HELLO on its link (fd 3) and
 * answers with the READY that FAKE_WORKER_READY names, then waits for the
 * node to end it.
 *
 *   old       [READY, 4, []]: another protocol version
 *   short     [READY, version]: no features (version 4's layout)
 *   features  [READY, version, 33 features]: more than a READY may name
 *
 * and then go on, to test what the node does with a worker that asked for
 * lanes (docs/lane-design.md §10, step 5; the node run with HYPERC_LANES=1),
 * saying what it saw in PRINTs at level 0 ("fake_worker: ..."):
 *
 *   lanes     [READY, version, ["lanes"]], STARTED; then process `a` sends
 *             itself a request under a lane id (SEND_REQUEST's fifth
 *             argument), takes it, answers it and takes the answer, an
 *             ANSWER; sends `c` a request inheriting that lane id with
 *             expects (the node files a context under it: FORGET, before
 *             the link's `served` moves past the frame); sends notes to
 *             `b` until a lane opens between them; makes a stub of a lane
 *             request from `b` prompting (SYNC) and answers it, which
 *             reaches `b` as an ANSWER; sends `c` a request inheriting the
 *             stub's id with expects (no FORGET: the id is b's); makes
 *             another stub, and SYNCs a stub from `c`, which is no lane's
 *             peer (a breach: the instance ends with b's stub prompting).
 *             Process `b` says which ANSWERs it gets.
 *   forget-full   lanes, as `lanes`; process `a` fills its replies ring (it
 *             has itself delivered notes it does not read) until a FORGET
 *             does not fit, then inherits two of its own lane ids with
 *             expects: the FORGETs wait for room, and `served` with them;
 *             it then reads the ring (no call) and says in what order the
 *             FORGETs came once `served` covers them; then again with one,
 *             ended by a call with a REPLY (OUR), which must come after it.
 *   sync      [READY, version, []]: no lanes; then `a` sends SYNC (a breach)
 *   send5     no lanes; `a` sends SEND_REQUEST with a lane id (a breach) */
#include "worker/link.h"
#include "worker/proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static hcw_link *l;
static hcw_frame *f;
static hcw_in in;
static uint32_t sent; /* frames sent since READY */

static void send_frame(void)
{
    if (hcw_link_send(l, f) != 0)
        exit(1);
    sent++;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char msg[300] = "fake_worker: ";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + strlen(msg), sizeof msg - strlen(msg), fmt, ap);
    va_end(ap);
    hcw_frame_begin(f, HCW_PRINT, 2);
    hcw_put_u64(f, 0);
    hcw_put_str(f, msg);
    send_frame();
}

static void read_frame(void)
{
    char err[256];
    if (hcw_link_recv(l, &in, err, sizeof err) != 1)
        exit(1);
}

/* "node@process:package:publisher" with another process name. */
static void address_of(const char *our, const char *process, hw_address *out)
{
    const char *at = strchr(our, '@');
    const char *c1 = at ? strchr(at + 1, ':') : NULL;
    const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL)
        exit(3);
    out->node = strndup(our, (size_t)(at - our));
    out->process.process_name = strdup(process);
    out->process.package_name = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
    out->process.publisher_node = strdup(c2 + 1);
}

/* An item of the node's (DELIVER or RECEIVE's REPLY to a worker with
 * lanes): what it is, its flags and its ANSWER id. */
typedef struct item {
    hw_receive_result r;
    uint64_t seq, flags, answer;
} item;

static bool get_item(item *it)
{
    bool has;
    hw_blob blob;
    memset(it, 0, sizeof *it);
    bool ok = hcw_get_receive_result(&in, &it->r) &&
              (it->r.is_err ? hcw_get_nil(&in)
                            : hcw_get_blob_opt(&in, &has, &blob)) &&
              in.nargs == 5 && hcw_get_u64(&in, &it->seq) &&
              hcw_get_u64(&in, &it->flags) && hcw_get_u64(&in, &it->answer);
    if (ok && !it->r.is_err && has)
        hw_blob_fini(&blob);
    return ok;
}

/* The next item: a DELIVER, or after NEED a RECEIVE's REPLY (then taken
 * already: *taken).  Other frames of the node's are passed over. */
static void next_item(item *it, bool *taken)
{
    *taken = false;
    for (;;) {
        read_frame();
        if (in.op == HCW_NEED) {
            hcw_frame_begin(f, HCW_RECEIVE, 0);
            send_frame();
            *taken = true;
            continue;
        }
        if (in.op != HCW_DELIVER && in.op != HCW_REPLY)
            continue;
        if (!get_item(it)) {
            say("an item without five arguments (op %d, %zu)", in.op, in.nargs);
            exit(4);
        }
        return;
    }
}

static void take(bool taken)
{
    if (taken)
        return;
    hcw_frame_begin(f, HCW_RECEIVE, 0);
    send_frame();
}

static void send_request_ex(const hw_address *to, bool expects, bool inherit,
                            const char *body, uint64_t lane_id)
{
    hw_request r = {0};
    r.inherit = inherit;
    r.has_expects_response = expects;
    r.expects_response = 30;
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    hcw_frame_begin(f, HCW_SEND_REQUEST, lane_id ? 5 : 4);
    hcw_put_address(f, to);
    hcw_put_request(f, &r);
    hcw_put_bytes_opt(f, false, NULL);
    hcw_put_blob_opt(f, NULL);
    if (lane_id)
        hcw_put_u64(f, lane_id);
    send_frame();
}

static void send_request(const hw_address *to, bool expects, const char *body,
                         uint64_t lane_id)
{
    send_request_ex(to, expects, false, body, lane_id);
}

/* Wait until the node has served every frame sent so far (the link's
 * `served`), then say which FORGETs its ring held by then, in order
 * (other frames passed over). */
static void forgets_when_served(const char *what)
{
    uint32_t want = sent;
    bool done = false;
    for (int i = 0; i < 5000 && !done; i++) {
        done = (int32_t)(hcw_link_served(l) - want) >= 0;
        if (!done)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    char ids[256] = "";
    while (hcw_link_pending(l)) {
        read_frame();
        uint64_t id;
        if (in.op != HCW_FORGET)
            continue;
        size_t n = strlen(ids);
        if (in.nargs == 1 && hcw_get_u64(&in, &id))
            snprintf(ids + n, sizeof ids - n, "%s%#" PRIx64, n ? " " : "", id);
        else
            snprintf(ids + n, sizeof ids - n, "%sbad", n ? " " : "");
    }
    say("%s: %s, FORGET [%s]", what, done ? "served" : "not served", ids);
}
static void send_response(const char *body)
{
    hw_response r = {0};
    r.body.ptr = (uint8_t *)body;
    r.body.len = strlen(body);
    hcw_frame_begin(f, HCW_SEND_RESPONSE, 2);
    hcw_put_response(f, &r);
    hcw_put_blob_opt(f, NULL);
    send_frame();
}

static void sync_stub(const hw_address *from, uint64_t id)
{
    hcw_frame_begin(f, HCW_SYNC, 1);
    hcw_put_prompting(f,
                      &(hcw_prompting){.none = from == NULL,
                                       .source = from ? *from : (hw_address){0},
                                       .id = id,
                                       .expects = true});
    send_frame();
}

#define LANE_ID(k) ((UINT64_C(1) << 63) | (k))

/* Process a of mode "lanes". */
static void lanes_a(const char *our)
{
    hw_address self, b, c;
    address_of(our, "a", &self);
    address_of(our, "b", &b);
    address_of(our, "c", &c);
    /* an answer by node to a lane id: an ANSWER */
    send_request(&self, true, "q", LANE_ID(1));
    item it;
    bool taken;
    next_item(&it, &taken);
    say("request flags %" PRIu64 " answer %" PRIu64, it.flags, it.answer);
    hw_receive_result_fini(&it.r);
    take(taken);
    send_response("r");
    next_item(&it, &taken);
    say("response %s flags %" PRIu64 " answer %#" PRIx64 " context %d",
        !it.r.is_err && it.r.message.kind == HW_MESSAGE_RESPONSE ? "ok"
                                                                 : "wrong",
        it.flags, it.answer, (int)it.r.message.has_context);
    hw_receive_result_fini(&it.r);
    take(taken);
    /* the request under lane id 1 still prompts (an ANSWER leaves it):
     * inheriting it with expects, a context of the node's under a's own
     * lane id */
    send_request_ex(&c, true, true, "inherit", 0);
    forgets_when_served("an own lane id inherited");
    /* notes to b until their lane opens */
    nanosleep(&(struct timespec){0, 200000000}, NULL);
    for (int k = 0; k < 20; k++)
        send_request(&b, false, "note", 0);
    for (;;) {
        read_frame();
        if (in.op == HCW_LANE_OPEN)
            break;
    }
    say("a lane to b");
    /* a stub of b's lane request 2, answered by node */
    sync_stub(&b, LANE_ID(2));
    send_response("by stub");
    /* inheriting the stub's id (b's) with expects: nothing to forget */
    send_request_ex(&c, true, true, "inherit", 0);
    forgets_when_served("a stub's id inherited");
    sync_stub(NULL, 0);
    say("stub answered");
    /* another stub of b's, prompting when the instance ends: b hears */
    sync_stub(&b, LANE_ID(5));
    /* c is no lane's peer */
    sync_stub(&c, LANE_ID(3));
    for (;;)
        pause();
}

/* The replies ring's unread bytes (the worker reads it only when told). */
static uint32_t unread(void)
{
    return hcw_link_rx_tail(l) - hcw_link_rx_pos(l);
}

/* Wait (at most 5 s) until the replies ring holds more than `than` unread
 * bytes: false if it did not. */
static bool unread_over(uint32_t than)
{
    for (int i = 0; i < 5000; i++) {
        if (unread() > than)
            return true;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return false;
}

/* Read a frame that must be a DELIVER (of a message to itself) and say
 * so if it is not. */
static bool read_deliver(const char *what)
{
    read_frame();
    if (in.op == HCW_DELIVER)
        return true;
    say("%s: %s instead of a DELIVER", what, hcw_op_name(in.op));
    return false;
}

/* A FORGET frame: 4 + 1 + 1 + 9 bytes.  Notes a sends itself, delivered
 * ahead and left unread, until the replies ring's room is under that
 * (each note's DELIVER measured once: its bytes beyond the body); false
 * (said) if the ring could not be filled so.  *notes counts them. */
#define FORGET_BYTES 15
static bool fill_replies(const hw_address *self, size_t *notes)
{
    static char body[8192];
    memset(body, 'n', sizeof body - 1);
    if (unread() != 0) {
        say("fill: the ring is not empty");
        return false;
    }
    body[1000] = 0;
    send_request(self, false, body, 0);
    body[1000] = 'n';
    (*notes)++;
    if (!unread_over(0)) {
        say("fill: the first note was not delivered");
        return false;
    }
    uint32_t over = unread() - 1000; /* a DELIVER's bytes beyond its body */
    for (;;) {
        uint32_t room = HCW_LINK_RING_BYTES - unread();
        if (room < FORGET_BYTES)
            return true;
        /* the last note leaves 4 (5 with a shorter bin header) bytes; one
         * before it leaves enough for the last */
        uint32_t want = room - over - 4;
        if (room < over + 4 + 64 || want > 8000)
            want = room < over + 2000 ? 0 : room - over - 1000;
        if (want > 8000)
            want = 8000;
        if (want == 0) {
            say("fill: %u bytes of room left, no note fits", (unsigned)room);
            return false;
        }
        uint32_t before = unread();
        body[want] = 0;
        send_request(self, false, body, 0);
        body[want] = 'n';
        (*notes)++;
        if (!unread_over(before)) {
            say("fill: a note of %u bytes was not delivered (%u of room)",
                (unsigned)want, (unsigned)room);
            return false;
        }
    }
}

/* Read what the replies ring holds until the node has served every frame
 * sent (at most 5 s) and the ring is empty: "N DELIVERs, then OP [ID]..."
 * of the frames that were not DELIVERs, in order, into out.  *delivers
 * counts the DELIVERs. */
static bool read_until_served(char *out, size_t n, size_t *delivers)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < 5000; i++) {
        bool served = (int32_t)(hcw_link_served(l) - sent) >= 0;
        if (!hcw_link_pending(l)) {
            if (served)
                return true;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            continue;
        }
        read_frame();
        if (in.op == HCW_DELIVER) {
            if (k == 0)
                (*delivers)++;
            else
                snprintf(out + strlen(out), n - strlen(out), " DELIVER");
            continue;
        }
        uint64_t id = 0;
        if (in.op == HCW_FORGET && !(in.nargs == 1 && hcw_get_u64(&in, &id)))
            id = 1;
        snprintf(out + strlen(out), n - strlen(out), "%s%s", k ? " " : "",
                 hcw_op_name(in.op));
        if (in.op == HCW_FORGET)
            snprintf(out + strlen(out), n - strlen(out), " %#" PRIx64, id);
        k++;
    }
    return false;
}

/* Send RECEIVE for each of n messages delivered ahead. */
static void take_n(size_t n)
{
    for (size_t i = 0; i < n; i++)
        take(false);
}

/* Process a of mode "forget-full". */
static void forget_full_a(const char *our)
{
    hw_address self, c;
    address_of(our, "a", &self);
    address_of(our, "c", &c);
    /* two requests under own lane ids, delivered ahead; the first taken
     * (it prompts) */
    send_request(&self, true, "q1", LANE_ID(1));
    send_request(&self, true, "q2", LANE_ID(2));
    if (!read_deliver("q1") || !read_deliver("q2"))
        return;
    take(false);
    size_t notes = 0;
    if (!fill_replies(&self, &notes))
        return;
    uint32_t room = HCW_LINK_RING_BYTES - unread();
    /* the node files contexts under lane ids 1 and 2 (the second prompts
     * after its RECEIVE): neither FORGET fits */
    send_request_ex(&c, true, true, "inherit 1", 0);
    uint32_t first = sent; /* that frame's number */
    take(false);
    send_request_ex(&c, true, true, "inherit 2", 0);
    nanosleep(&(struct timespec){0, 300000000}, NULL);
    bool held = (int32_t)(hcw_link_served(l) - first) < 0;
    char seen[512];
    size_t delivers = 0;
    bool done = read_until_served(seen, sizeof seen, &delivers);
    say("full ring (%s): served %s; %s, %s, then %s",
        room < FORGET_BYTES ? "no room for a FORGET" : "room",
        held ? "held back" : "moved on", done ? "served" : "not served",
        delivers == notes ? "the notes' DELIVERs" : "not the notes", seen);
    take_n(notes);
    /* again, with a call whose REPLY waits for room behind the FORGET */
    send_request(&self, true, "q3", LANE_ID(3));
    if (!read_deliver("q3"))
        return;
    take(false);
    notes = 0;
    if (!fill_replies(&self, &notes))
        return;
    send_request_ex(&c, true, true, "inherit 3", 0);
    hcw_frame_begin(f, HCW_OUR, 0);
    send_frame();
    /* the node waits for room to write OUR's REPLY, the FORGET first */
    nanosleep(&(struct timespec){0, 300000000}, NULL);
    delivers = 0;
    done = read_until_served(seen, sizeof seen, &delivers);
    say("full ring and a call: %s, %s, then %s", done ? "served" : "not served",
        delivers == notes ? "the notes' DELIVERs" : "not the notes", seen);
    take_n(notes);
}

/* Process b of mode "lanes": says each ANSWER it gets. */
static void lanes_b(void)
{
    for (;;) {
        item it;
        bool taken;
        next_item(&it, &taken);
        if (it.answer != 0)
            say("b got answer %#" PRIx64 " by %s, flags %" PRIu64 " %s %.*s",
                it.answer, hcw_op_name(in.op), it.flags,
                it.r.is_err ? "error" : "body",
                it.r.is_err ? 0 : (int)it.r.message.response.body.len,
                it.r.is_err ? ""
                            : (const char *)it.r.message.response.body.ptr);
        hw_receive_result_fini(&it.r);
    }
}

int main(void)
{
    char err[256];
    l = hcw_link_shm_open(3, err, sizeof err);
    if (l == NULL) {
        fprintf(stderr, "fake_worker: %s\n", err);
        return 1;
    }
    hcw_in_init(&in);
    uint64_t version;
    char *our = NULL, *binary = NULL, *id = NULL;
    if (hcw_link_recv(l, &in, err, sizeof err) != 1 || in.op != HCW_HELLO ||
        !hcw_get_u64(&in, &version) || !hcw_get_str(&in, &our) ||
        !hcw_get_str(&in, &binary) || !hcw_get_str(&in, &id) || our == NULL ||
        id == NULL) {
        fprintf(stderr, "fake_worker: no HELLO\n");
        return 1;
    }
    const char *mode = getenv("FAKE_WORKER_READY");
    f = hcw_frame_new();
    bool full = mode && strcmp(mode, "forget-full") == 0;
    bool lanes = full || (mode && strcmp(mode, "lanes") == 0);
    if (lanes ||
        (mode && (strcmp(mode, "sync") == 0 || strcmp(mode, "send5") == 0))) {
        const char *feat[] = {HCW_FEATURE_LANES};
        hcw_frame_begin(f, HCW_READY, 2);
        hcw_put_u64(f, HCW_PROTO_VERSION);
        hcw_put_strs(f, feat, lanes ? 1 : 0);
        send_frame();
        sent = 0; /* (READY is not counted) */
        hcw_frame_begin(f, HCW_STARTED, 1);
        hcw_put_bool(f, true);
        send_frame();
        bool is_a = strncmp(id, "a:", 2) == 0;
        if (full && is_a)
            forget_full_a(our);
        else if (lanes && is_a)
            lanes_a(our);
        if (lanes && !full && strncmp(id, "b:", 2) == 0)
            lanes_b();
        if (is_a && strcmp(mode, "sync") == 0) {
            sync_stub(NULL, 0);
        } else if (is_a && strcmp(mode, "send5") == 0) {
            hw_address self;
            address_of(our, "a", &self);
            send_request(&self, false, "n", LANE_ID(4));
        }
        for (;;)
            pause();
    }
    if (mode && strcmp(mode, "old") == 0) {
        hcw_frame_begin(f, HCW_READY, 2);
        hcw_put_u64(f, 4);
        hcw_put_strs(f, NULL, 0);
    } else if (mode && strcmp(mode, "short") == 0) {
        hcw_frame_begin(f, HCW_READY, 1);
        hcw_put_u64(f, HCW_PROTO_VERSION);
    } else if (mode && strcmp(mode, "features") == 0) {
        const char *names[HCW_MAX_FEATURES + 1];
        for (size_t i = 0; i < HCW_MAX_FEATURES + 1; i++)
            names[i] = "feature";
        hcw_frame_begin(f, HCW_READY, 2);
        hcw_put_u64(f, HCW_PROTO_VERSION);
        hcw_put_strs(f, names, HCW_MAX_FEATURES + 1);
    } else {
        fprintf(stderr, "fake_worker: FAKE_WORKER_READY: old, short, "
                        "features, lanes, forget-full, sync or send5\n");
        return 2;
    }
    if (hcw_link_send(l, f) != 0)
        return 1;
    for (;;)
        pause();
}
