/* Internal to the worker's binding library (binding.c, lane_table.c,
 * prompt.c; binding.h is what its embedder sees): what its files share.
 * Prefix hcw_ as the protocol's. */
#ifndef HYPERC_WORKER_BINDING_INT_H
#define HYPERC_WORKER_BINDING_INT_H

#include "binding.h"

/* Handle the node's lane frame in `in` (LANE_OPEN: the memfd is taken from
 * fd 4 and mapped; LANE_CLOSE: unmapped), answering LANE_DROP when a lane
 * is refused or closed.  false when `in` is no lane frame.  The guest's
 * thread, wherever a frame of the node's is read (binding.c). */
bool hcw_lanes_ctl(hcw_in *in);
/* The worker read from the node an item its mailbox numbered seq (0: a
 * timeout, none): the newest such number goes into each lane it reads, for
 * the peer (docs/lane-design.md §3a). */
void hcw_lanes_note_read(uint32_t seq);
/* Where each lane's inbound ring ended when the worker read an item of the
 * node's: the lane's frames before it go to the guest first, those after
 * it after the item (docs/lane-design.md §3a). */
typedef struct hcw_lane_snap {
    uint32_t n; /* the slots below it are recorded; a lane in a slot at
                   or above it came after */
    struct {
        uint32_t number; /* the lane in that slot then, 0: none */
        uint32_t pos;
    } m[HCW_LANES_MAX];
} hcw_lane_snap;
void hcw_lanes_snapshot(hcw_lane_snap *snap);
/* A request to a lane's peer, sent by lane if it may go so now (no
 * inherit or capabilities, a context only with expects; the lane open and
 * permitted; every frame the worker sent served, and the peer has read all
 * it was sent by node; room in the ring, and the frame, blob included, at
 * most HCW_LANE_MAX_FRAME); with expects, its context is filed
 * (hcw_ctx_add).  false: send it by node. */
bool hcw_lanes_send_req(const hw_address *target, const hw_request *req,
                        const hw_bytes *context, const hw_blob *blob);
/* The response to lane request id that came by lane `number`, sent by
 * that lane if it may go so now (no inherit or capabilities; the rest as
 * above).  false: send it by node. */
bool hcw_lanes_send_resp(uint32_t number, uint64_t id, const hw_response *resp,
                         const hw_blob *blob);
/* A frame just sent the node may have sent target (NULL: any process,
 * as a response does) something by node: a lane to it waits until the node
 * has served that frame before it carries anything. */
void hcw_lanes_sent_by_node(const hw_address *target);
/* The slot of the next lane (in turn) with a frame for the guest; with
 * snap, only a frame before the lane's mark there.  -1: none. */
int hcw_lanes_next(const hcw_lane_snap *snap);
/* What a lane frame taken was: its lane, its id, a response (LRESP) or a
 * request (LREQ), the blob it carried (the taker's to free), and whether
 * the message was lent (hcw_lanes_take). */
typedef struct hcw_lane_item {
    uint32_t lane;
    uint64_t id;
    bool response;
    bool has_blob;
    hw_blob blob;
    bool lent;
} hcw_lane_item;
/* Take lane i's next frame for the guest into *out (its source the lane's
 * peer) and *item.  Not lent, *out is the guest's to free.  Lent
 * (receive_lent), its source and body are the lane table's, valid until
 * the next take (the guest's next receive; a re-send by node between two
 * reads with a decoder of its own) and never freed by the caller, whose
 * are only the metadata (free) and what hcw_ctx_answer adds.  false when
 * it was no frame a lane carries (one whose metadata or blob's mime is not
 * UTF-8 among them): the lane is given up (the node told why), nothing
 * taken. */
bool hcw_lanes_take(int i, bool lend, hw_receive_result *out,
                    hcw_lane_item *item);
/* Wait until the node's ring or a lane has something; true when it is
 * the node's ring (or after HCW_LINK_CHECK_MS, or at a lane context's
 * deadline, with nothing: false). */
bool hcw_lanes_wait(void);
/* Whether the node has handed this worker a lane (LANE_OPEN came, even
 * one it refused): from then on it is served as a lane worker, which
 * sends RECEIVE only to take an item (docs/worker-protocol.md, "Lanes"). */
bool hcw_lanes_active(void);
/* The lane to peer (its side, the id of the last LREQ taken from the
 * peer, 0: none yet, and whether LANE_OPEN said the peer is a wasm host),
 * or NULL. */
hcw_lane *hcw_lanes_of_peer(const hw_address *peer, int *side,
                            uint64_t *last_in, bool *peer_host);
/* ------------------------------------------- the prompting message
 * (prompt.c; docs/lane-design.md "Step 5, the protocol") */

/* The node serves this worker with lanes: its items carry flags, and the
 * worker keeps which message prompts. */
void hcw_prompt_track(void);
/* The guest's prompting handles: the worker's to choose; the node's
 * message is held by the node (PROMPTING_HOLD), a lane's request or none
 * by the worker.  A handle not held is ignored. */
int hcw_prompt_hold(void);
void hcw_prompt_set(int handle);
void hcw_prompt_release(int handle);
/* Before the RECEIVE that takes a node item (flags not known: any item),
 * and once it is taken (its flags). */
void hcw_prompt_before_node_item(bool known, unsigned flags);
void hcw_prompt_node_item(unsigned flags);
/* A request with expects came by lane: it prompts now. */
void hcw_prompt_lane_request(uint32_t lane, const hw_address *source,
                             uint64_t id);
/* The lane request that prompts (its lane and id): false when it is none
 * or the node's. */
bool hcw_prompt_lane(uint32_t *lane, uint64_t *id);
/* Before a call by node whose meaning depends on the prompting message
 * (a response, an inheriting request or one with expects, SEND_AND_AWAIT,
 * SET_STATE_START) or on the last blob (`with_last`: the call inherits it
 * and the node's is stale; `last` the worker's, NULL: none): SYNC when the
 * node's prompting message is not the worker's, or with_last. */
void hcw_prompt_sync(bool with_last, const hw_blob *last);
/* The context of a request with expects sent by lane (id, which no
 * pending context has; where its frame starts in the lane's ring); its
 * deadline from expects; the owner now is restored when it is answered.
 * The request and its blob (NULL: none) are copied, for a send error's
 * fields. */
void hcw_ctx_add(uint64_t id, uint32_t lane, uint32_t pos,
                 const hw_address *target, const hw_request *req,
                 const hw_bytes *context, const hw_blob *blob);
/* Whether a lane context waits under id. */
bool hcw_ctx_pending(uint64_t id);
/* The id of a lane context waiting for an answer from target (the
 * earliest deadline's of them), 0 when none does (for the tests' hook). */
uint64_t hcw_ctx_pending_to(const hw_address *target);
/* The context of id, if any, is dropped without an answer (FORGET: the
 * node filed one of its own under that id).  What it held is released (a
 * node hold of the owner it recorded may go: PROMPTING_RELEASE). */
void hcw_ctx_forget(uint64_t id);
/* An answer (*out: a response, or a send error) to id that came by lane
 * (lane) or by node (0): true, with the context and the request as sent
 * filled in, and the owner restored; false when nobody waits for it. */
bool hcw_ctx_answer(uint64_t id, uint32_t lane, hw_receive_result *out);
/* The earliest deadline (CLOCK_MONOTONIC ns; INT64_MAX: none), whether it
 * passed, and its Timeout error into *out (the owner restored). */
int64_t hcw_ctx_deadline(void);
bool hcw_ctx_expired(void);
void hcw_ctx_expire(hw_receive_result *out);
/* The lane's peer ended (LANE_CLOSE why 1): what it took and did not
 * answer, unless it adopted it, fails once the lane is gone; the rest is
 * answered by node. */
void hcw_ctx_lane_closed(uint32_t lane, uint32_t taken_to,
                         const uint64_t *adopted, size_t nadopted);
/* The lane is unmapped: its contexts wait for answers by node, and those
 * its peer took and dropped time out now. */
void hcw_ctx_lane_gone(uint32_t lane);
/* A copy of n bytes at p (malloc'd, at least 1 byte), and of an address
 * (hw_address_fini); out of memory ends the worker (binding.c). */
void *hcw_dup(const void *p, size_t n);
void hcw_address_copy(const hw_address *a, hw_address *out);

#endif
