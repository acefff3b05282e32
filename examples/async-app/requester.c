/* async requester: the Example Application of the Rust framework's guide.
 * Its init and its handlers call the receiver process through the typed
 * stubs `hyperc gen --callers` writes (receiver_caller_utils.h), and read
 * the result on the next line. */
#include <hyperc/hyperprocess.h>

#include "receiver_caller_utils.h"

#include <stdint.h>
#include <string.h>

typedef struct async_requester_state {
    uint64_t request_count;
    uint64_t receiver_count_at_start;
    uint64_t last_seen; /* the receiver's count after our last call */
} async_requester_state;

HYPERPROCESS(
    async_requester_state, .name = "Async Requester",
    .endpoints = HP_ENDPOINTS(HP_HTTP_BINDING("/api", .authenticated = false),
                              HP_WS_BINDING("/ws", .authenticated = false)),
    .save_config = HP_SAVE_EVERY_MESSAGE,
    .wit_world = "async-app-template-dot-os-v0");

/* The receiver of this package, on this node. */
static hw_address receiver(void)
{
    hw_address a = {
        .node = hp_our()->node,
        .process = {"receiver", "async-app", "hyperc.os"},
    };
    return a;
}

HP_INIT
static void initialize(async_requester_state *s)
{
    hw_address to = receiver();
    receiver_get_count_result r = get_count_local_rpc(&to);
    if (r.err.kind == HP_RPC_OK) {
        s->receiver_count_at_start = r.value;
        hp_log_info("the receiver's count at start: %llu",
                    (unsigned long long)r.value);
    } else {
        hp_log_warn("the receiver did not answer at start: %s: %s",
                    hp_rpc_kind_name(r.err.kind), r.err.message);
    }
}

/* Ask the receiver to add `value`; returns what it said, or why not. */
HP_HTTP HP_LOCAL static char *process_request(async_requester_state *s,
                                              int32_t value)
{
    s->request_count += 1;
    if (value < 0)
        return hp_sprintf("value must be >= 0, got %d", (int)value);
    hw_address to = receiver();
    receiver_increment_counter_result r =
        increment_counter_remote_rpc(&to, (uint64_t)value, "from requester");
    if (r.err.kind != HP_RPC_OK)
        return hp_sprintf("the receiver failed: %s: %s",
                          hp_rpc_kind_name(r.err.kind), r.err.message);
    /* changed after the wait: saved when the handler completes */
    s->last_seen = r.value;
    return hp_sprintf("Response from process: the receiver is at %llu",
                      (unsigned long long)r.value);
}

/* Call any process as if it were a receiver (GetCount, or IncrementCounter
 * by 1 when `increment`), with a timeout: for trying the error kinds. */
HP_LOCAL
static char *probe(async_requester_state *s, const char *process,
                   uint64_t timeout_s, bool increment)
{
    (void)s;
    hw_address to;
    if (hw_address_parse(process, &to) != 0)
        return hp_sprintf("not an address: %s", process);
    hp_rpc_opts o = {.timeout_s = timeout_s};
    hp_rpc_error err;
    uint64_t value = 0;
    if (increment) {
        receiver_increment_counter_result r =
            increment_counter_local_rpc_opt(&to, 1, "probe", &o);
        err = r.err;
        value = r.value;
    } else {
        receiver_get_count_result r = get_count_local_rpc_opt(&to, &o);
        err = r.err;
        value = r.value;
    }
    hw_address_fini(&to);
    if (err.kind == HP_RPC_OK)
        return hp_sprintf("Ok %llu", (unsigned long long)value);
    return hp_sprintf("%s: %s", hp_rpc_kind_name(err.kind), err.message);
}

/* The same through the remote stubs, for a receiver on another node
 * ("node@receiver:async-app:hyperc.os"). */
HP_LOCAL
static char *remote_probe(async_requester_state *s, const char *process,
                          uint64_t timeout_s, bool increment)
{
    (void)s;
    hw_address to;
    if (hw_address_parse(process, &to) != 0)
        return hp_sprintf("not an address: %s", process);
    hp_rpc_opts o = {.timeout_s = timeout_s};
    hp_rpc_error err;
    uint64_t value = 0;
    if (increment) {
        receiver_increment_counter_result r =
            increment_counter_remote_rpc_opt(&to, 1, "remote probe", &o);
        err = r.err;
        value = r.value;
    } else {
        receiver_get_count_result r = get_count_remote_rpc_opt(&to, &o);
        err = r.err;
        value = r.value;
    }
    hw_address_fini(&to);
    if (err.kind == HP_RPC_OK)
        return hp_sprintf("Ok %llu", (unsigned long long)value);
    return hp_sprintf("%s: %s", hp_rpc_kind_name(err.kind), err.message);
}

/* A job as text: Add(3), Note(hi), Reset. */
static char *job_text(const receiver_job *j)
{
    if (j->kind == RECEIVER_JOB_ADD)
        return hp_sprintf("Add(%llu)", (unsigned long long)j->add);
    if (j->kind == RECEIVER_JOB_NOTE)
        return hp_sprintf("Note(%s)", j->note);
    return hp_sprintf("Reset");
}

/* Send the receiver an Add job, then a Note job (enums with data through
 * the stubs, both ways); says what the receiver had run before each. */
HP_HTTP HP_LOCAL static char *run_jobs(async_requester_state *s, uint64_t add,
                                       const char *note)
{
    (void)s;
    hw_address to = receiver();
    receiver_job jobs[2] = {{.kind = RECEIVER_JOB_ADD, .add = add},
                            {.kind = RECEIVER_JOB_NOTE, .note = (char *)note}};
    char *said = "";
    for (int i = 0; i < 2; i++) {
        receiver_run_job_result r = run_job_local_rpc(&to, &jobs[i]);
        if (r.err.kind != HP_RPC_OK)
            return hp_sprintf("the receiver failed: %s: %s",
                              hp_rpc_kind_name(r.err.kind), r.err.message);
        said = hp_sprintf("%s%sbefore %s: %s", said, i ? "; " : "",
                          job_text(&jobs[i]),
                          r.value.some ? job_text(&r.value.value) : "nothing");
    }
    return said;
}

HP_LOCAL HP_REMOTE static uint64_t get_count(const async_requester_state *s)
{
    return s->request_count;
}

HP_WS
static void websocket(async_requester_state *s, uint32_t channel_id,
                      hp_ws_message_type type, const hw_blob *blob)
{
    (void)s;
    (void)blob;
    hp_log_debug("websocket %u: message of type %d", channel_id, (int)type);
}
