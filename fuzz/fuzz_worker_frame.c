/* libFuzzer: the worker protocol's decoder (src/worker/proto.c), which
 * reads frames from a worker the node does not trust.  The input is a
 * frame's body (the harness puts the length before it); it is also parsed
 * once as it is, length included.  Every get is tried on every argument of
 * a frame that parses, and the lane frames' get on the whole; what a get
 * accepts is written again, read again and written a third time, and the two
 * writings must be the same bytes (a decoded value survives the codec
 * unchanged).  Everything is released with the hw_*_fini functions: a leak is a
 * finding. */
#include "common/abi_types.h"
#include "worker/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hcw_frame *f1, *f2;

/* Put value v with `put` into f, as the one argument of a REPLY. */
#define PUT1(f, put)                                                           \
    do {                                                                       \
        hcw_frame_begin((f), HCW_REPLY, 1);                                    \
        put;                                                                   \
    } while (0)

static void same_bytes(void)
{
    size_t n1, n2;
    const uint8_t *b1 = hcw_frame_bytes(f1, &n1);
    const uint8_t *b2 = hcw_frame_bytes(f2, &n2);
    if (n1 != n2 || memcmp(b1, b2, n1) != 0) {
        fprintf(stderr, "a decoded value written twice differs\n");
        abort();
    }
}

/* Read back what f1 holds (one argument) into *in2. */
static void reread(hcw_in *in2)
{
    size_t n;
    const uint8_t *b = hcw_frame_bytes(f1, &n);
    if (hcw_frame_parse(in2, b, n, NULL, 0) != 1 || in2->nargs != 1) {
        fprintf(stderr, "a frame written from a decoded value is unreadable\n");
        abort();
    }
}

/* Decode the argument `at` of in with get into T v; if accepted, write it
 * (put), read it back, write it again, compare, release (fini). */
#define TRY(T, get, put, fini)                                                 \
    do {                                                                       \
        T v, w;                                                                \
        in->next = at;                                                         \
        if (get(in, &v)) {                                                     \
            PUT1(f1, put(f1, &v));                                             \
            hcw_in in2;                                                        \
            hcw_in_init(&in2);                                                 \
            reread(&in2);                                                      \
            if (!get(&in2, &w))                                                \
                abort();                                                       \
            PUT1(f2, put(f2, &w));                                             \
            same_bytes();                                                      \
            fini(&w);                                                          \
            hcw_in_fini(&in2);                                                 \
            fini(&v);                                                          \
        }                                                                      \
    } while (0)

/* Adapters to the shapes TRY expects. */
static bool get_bytes(hcw_in *in, hw_bytes *b)
{
    bool has;
    return hcw_get_bytes_opt(in, &has, b) && has;
}
static void put_bytes(hcw_frame *f, const hw_bytes *b)
{
    hcw_put_bytes_opt(f, true, b);
}
static bool get_blob(hcw_in *in, hw_blob *b)
{
    bool has;
    return hcw_get_blob_opt(in, &has, b) && has;
}
static void put_caps(hcw_frame *f, const hw_capability_list *l)
{
    hcw_put_caps(f, l->ptr, l->len);
}

typedef struct strs {
    char **v;
    size_t n;
} strs;
static bool get_strs(hcw_in *in, strs *s)
{
    return hcw_get_strs(in, &s->v, &s->n);
}
static void put_strs(hcw_frame *f, const strs *s)
{
    hcw_put_strs(f, (const char *const *)s->v, s->n);
}
static void strs_fini(strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

typedef struct pids {
    hw_process_id *v;
    size_t n;
} pids;
static bool get_pids(hcw_in *in, pids *s)
{
    return hcw_get_process_ids(in, &s->v, &s->n);
}
static void put_pids(hcw_frame *f, const pids *s)
{
    hcw_put_process_ids(f, s->v, s->n);
}
static void pids_fini(pids *s)
{
    for (size_t i = 0; i < s->n; i++)
        hw_process_id_fini(&s->v[i]);
    free(s->v);
}

typedef char *cstr;
static void str_fini(char **s)
{
    free(*s);
}
static void put_strp(hcw_frame *f, char *const *s)
{
    hcw_put_str(f, *s);
}
static void put_bool(hcw_frame *f, const bool *v)
{
    hcw_put_bool(f, *v);
}
static void put_u64(hcw_frame *f, const uint64_t *v)
{
    hcw_put_u64(f, *v);
}
static void put_i64(hcw_frame *f, const int64_t *v)
{
    hcw_put_i64(f, *v);
}
static void put_bin(hcw_frame *f, const hw_bytes *b)
{
    hcw_put_bin(f, b->ptr, b->len);
}
static void no_fini(void *p)
{
    (void)p;
}

static void every_get(hcw_in *in, size_t at)
{
    TRY(bool, hcw_get_bool, put_bool, no_fini);
    TRY(uint64_t, hcw_get_u64, put_u64, no_fini);
    TRY(int64_t, hcw_get_i64, put_i64, no_fini);
    TRY(cstr, hcw_get_str, put_strp, str_fini);
    TRY(hw_bytes, hcw_get_bin, put_bin, hw_bytes_fini);
    TRY(hw_bytes, get_bytes, put_bytes, hw_bytes_fini);
    TRY(hw_address, hcw_get_address, hcw_put_address, hw_address_fini);
    TRY(hw_process_id, hcw_get_process_id, hcw_put_process_id,
        hw_process_id_fini);
    TRY(hw_blob, get_blob, hcw_put_blob_opt, hw_blob_fini);
    TRY(hw_capability_list, hcw_get_caps, put_caps, hw_capability_list_fini);
    TRY(hw_request, hcw_get_request, hcw_put_request, hcc_request_fini);
    TRY(hw_response, hcw_get_response, hcw_put_response, hcc_response_fini);
    TRY(hw_request, hcw_get_request_view, hcw_put_request,
        hcw_request_view_fini);
    TRY(hw_response, hcw_get_response_view, hcw_put_response,
        hcw_response_view_fini);
    TRY(hw_message, hcw_get_message, hcw_put_message, hw_message_fini);
    TRY(hw_on_exit, hcw_get_on_exit, hcw_put_on_exit, hw_on_exit_fini);
    TRY(hw_send_error, hcw_get_send_error, hcw_put_send_error,
        hw_send_error_fini);
    TRY(hw_receive_result, hcw_get_receive_result, hcw_put_receive_result,
        hw_receive_result_fini);
    TRY(hw_await_result, hcw_get_await_result, hcw_put_await_result,
        hw_await_result_fini);
    TRY(strs, get_strs, put_strs, strs_fini);
    TRY(pids, get_pids, put_pids, pids_fini);
    TRY(hcw_crash, hcw_get_crash, hcw_put_crash, hcw_crash_fini);
    in->next = at;
    (void)hcw_get_nil(in);
    (void)hcw_op_name(in->op);
}

/* A lane's frame (hcw_get_lane_frame), copied and lent: what it accepts
 * is written again as the same kind of frame (hcw_frame_lreq / _lresp),
 * read again and written a third time, the same bytes. */
static void put_lane(hcw_frame *f, int op, uint64_t id, const hw_request *r,
                     const hw_response *resp, bool has_blob,
                     const hw_blob *blob)
{
    if (op == HCW_LREQ)
        hcw_frame_lreq(f, id, r, has_blob ? blob : NULL);
    else
        hcw_frame_lresp(f, id, resp, has_blob ? blob : NULL);
}

static void lane_frame(hcw_in *in, bool view)
{
    uint64_t id, id2;
    hw_request r, r2;
    hw_response resp, resp2;
    bool has, has2;
    hw_blob blob, blob2;
    in->next = 0;
    if (!hcw_get_lane_frame(in, view, &id, &r, &resp, &has, &blob))
        return;
    put_lane(f1, in->op, id, &r, &resp, has, &blob);
    size_t n;
    const uint8_t *b = hcw_frame_bytes(f1, &n);
    hcw_in in2;
    hcw_in_init(&in2);
    if (hcw_frame_parse(&in2, b, n, NULL, 0) != 1 ||
        !hcw_get_lane_frame(&in2, false, &id2, &r2, &resp2, &has2, &blob2)) {
        fprintf(stderr, "a lane frame written from a decoded one is "
                        "unreadable\n");
        abort();
    }
    put_lane(f2, in2.op, id2, &r2, &resp2, has2, &blob2);
    same_bytes();
    hcc_request_fini(&r2);
    hcc_response_fini(&resp2);
    hw_blob_fini(&blob2);
    hcw_in_fini(&in2);
    hcw_lane_frame_fini(view, &r, &resp);
    hw_blob_fini(&blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (f1 == NULL) {
        f1 = hcw_frame_new();
        f2 = hcw_frame_new();
    }
    if (size > HCW_MAX_FRAME)
        return -1;
    hcw_in in;
    hcw_in_init(&in);
    char err[128];
    /* as it is: a length and a body */
    (void)hcw_frame_parse(&in, data, size, err, sizeof err);
    /* as a body */
    uint8_t *p = malloc(size + 4);
    if (p == NULL)
        abort();
    p[0] = (uint8_t)size;
    p[1] = (uint8_t)(size >> 8);
    p[2] = (uint8_t)(size >> 16);
    p[3] = (uint8_t)(size >> 24);
    if (size)
        memcpy(p + 4, data, size);
    if (hcw_frame_parse(&in, p, size + 4, err, sizeof err) == 1) {
        for (size_t at = 0; at < in.nargs; at++)
            every_get(&in, at);
        lane_frame(&in, false);
        lane_frame(&in, true);
        in.next = in.nargs;
        bool b;
        if (hcw_get_bool(&in, &b)) /* nothing left */
            abort();
    }
    free(p);
    hcw_in_fini(&in);
    return 0;
}
