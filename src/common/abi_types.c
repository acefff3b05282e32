/* Allocation and release of the ABI's output types, shared by the host
 * (which fills outputs) and the guest (which releases them).  The layout
 * convention lives here only: an address or process id is one allocation
 * starting at its first string (node, or process_name); every other pointer
 * field is its own malloc() block. */
#include "abi_types.h"

#include "common.h"

#include <stdlib.h>
#include <string.h>

/* free(p) unless p is NULL: most fields of a released output were never
 * filled (a response's request half, a receive's error), and the
 * allocator's free(NULL) is not free (about 40 instructions each, some 36
 * of them per local round trip). */
static inline void block_free(void *p)
{
    if (p != NULL)
        free(p);
}

void hw_bytes_fini(hw_bytes *b)
{
    block_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

void hw_process_id_fini(hw_process_id *p)
{
    block_free(p->process_name);
    memset(p, 0, sizeof *p);
}

void hw_address_fini(hw_address *a)
{
    block_free(a->node);
    memset(a, 0, sizeof *a);
}

void hw_blob_fini(hw_blob *b)
{
    block_free(b->mime);
    hw_bytes_fini(&b->bytes);
    b->mime = NULL;
}

void hw_capability_list_fini(hw_capability_list *l)
{
    for (size_t i = 0; i < l->len; i++) {
        hw_address_fini(&l->ptr[i].issuer);
        block_free(l->ptr[i].params);
    }
    block_free(l->ptr);
    l->ptr = NULL;
    l->len = 0;
}

void hcc_request_fini(hw_request *r)
{
    hw_bytes_fini(&r->body);
    block_free(r->metadata);
    hw_capability_list_fini(&r->capabilities);
    memset(r, 0, sizeof *r);
}

void hcc_response_fini(hw_response *r)
{
    hw_bytes_fini(&r->body);
    block_free(r->metadata);
    hw_capability_list_fini(&r->capabilities);
    memset(r, 0, sizeof *r);
}

/* The blocks of a request's or response's fields, freed; the struct is
 * left as it was (its owner clears it once, whole). */
static void parts_release(hw_bytes *body, char *metadata,
                          hw_capability_list *caps)
{
    block_free(body->ptr);
    block_free(metadata);
    if (caps->ptr != NULL)
        hw_capability_list_fini(caps);
}

static void message_release(hw_message *m)
{
    parts_release(&m->request.body, m->request.metadata,
                  &m->request.capabilities);
    parts_release(&m->response.body, m->response.metadata,
                  &m->response.capabilities);
    block_free(m->context.ptr);
}

void hw_message_fini(hw_message *m)
{
    message_release(m);
    memset(m, 0, sizeof *m);
}

void hw_on_exit_fini(hw_on_exit *o)
{
    for (size_t i = 0; i < o->requests_len; i++) {
        hw_outgoing_request *r = &o->requests[i];
        hw_address_fini(&r->target);
        hcc_request_fini(&r->request);
        hw_bytes_fini(&r->context);
        hw_blob_fini(&r->blob);
    }
    block_free(o->requests);
    memset(o, 0, sizeof *o);
}

static void send_error_release(hw_send_error *e)
{
    block_free(e->target.node);
    message_release(&e->message);
    block_free(e->blob.mime);
    block_free(e->blob.bytes.ptr);
}

void hw_send_error_fini(hw_send_error *e)
{
    send_error_release(e);
    memset(e, 0, sizeof *e);
}

/* A receive's result is released once per message: each block freed, then
 * the whole struct cleared once (not each part on the way). */
void hw_receive_result_fini(hw_receive_result *r)
{
    block_free(r->source.node);
    message_release(&r->message);
    send_error_release(&r->error);
    block_free(r->context.ptr);
    memset(r, 0, sizeof *r);
}

void hw_await_result_fini(hw_await_result *r)
{
    block_free(r->source.node);
    message_release(&r->message);
    send_error_release(&r->error);
    memset(r, 0, sizeof *r);
}

/* Copy n strings (each srcs[k], lens[k] bytes) into one allocation, NUL
 * after each, and point *dsts[k] at its copy: the layout hw_address_fini
 * and hw_process_id_fini free by their first string.  0, or -1 on OOM. */
static int pack_parts(char **const *dsts, const char *const *srcs,
                      const size_t *lens, size_t n)
{
    size_t total = 0;
    for (size_t k = 0; k < n; k++)
        total += lens[k] + 1;
    char *p = malloc(total);
    if (p == NULL)
        return -1;
    for (size_t k = 0; k < n; k++) {
        memcpy(p, srcs[k], lens[k]);
        p[lens[k]] = 0;
        *dsts[k] = p;
        p += lens[k] + 1;
    }
    return 0;
}

int hcc_address_from_parts(const char *node, size_t nlen, const char *proc,
                           size_t plen, const char *pkg, size_t klen,
                           const char *publ, size_t ulen, hw_address *out)
{
    char **dsts[] = {&out->node, &out->process.process_name,
                     &out->process.package_name, &out->process.publisher_node};
    const char *srcs[] = {node, proc, pkg, publ};
    const size_t lens[] = {nlen, plen, klen, ulen};
    return pack_parts(dsts, srcs, lens, 4);
}

int hcc_process_id_from_parts(const char *proc, size_t plen, const char *pkg,
                              size_t klen, const char *publ, size_t ulen,
                              hw_process_id *out)
{
    char **dsts[] = {&out->process_name, &out->package_name,
                     &out->publisher_node};
    const char *srcs[] = {proc, pkg, publ};
    const size_t lens[] = {plen, klen, ulen};
    return pack_parts(dsts, srcs, lens, 3);
}

int hcc_process_id_from_str(const char *s, hw_process_id *out)
{
    size_t offs[3][2];
    size_t len = strlen(s);
    if (hcc_process_id_split(s, len, false, offs) != HCC_EOK)
        return -1;
    char *m = malloc(len + 1);
    if (m == NULL)
        return -1;
    memcpy(m, s, len + 1);
    m[offs[0][0] + offs[0][1]] = 0;
    m[offs[1][0] + offs[1][1]] = 0;
    out->process_name = m + offs[0][0];
    out->package_name = m + offs[1][0];
    out->publisher_node = m + offs[2][0];
    return 0;
}

int hw_address_parse(const char *s, hw_address *out)
{
    size_t at, offs[3][2];
    if (hcc_address_split(s, true, &at, offs) != HCC_EOK)
        return -1;
    return hcc_address_from_parts(s, at, s + offs[0][0], offs[0][1],
                                  s + offs[1][0], offs[1][1], s + offs[2][0],
                                  offs[2][1], out);
}

size_t hw_address_format(const hw_address *a, char *buf, size_t n)
{
    size_t need = strlen(a->node) + strlen(a->process.process_name) +
                  strlen(a->process.package_name) +
                  strlen(a->process.publisher_node) + 3;
    if (n > 0) {
        size_t o = 0;
        const char *parts[4] = {a->node, a->process.process_name,
                                a->process.package_name,
                                a->process.publisher_node};
        const char seps[4] = {'@', ':', ':', 0};
        for (int i = 0; i < 4; i++) {
            for (const char *c = parts[i]; *c && o + 1 < n; c++)
                buf[o++] = *c;
            if (seps[i] && o + 1 < n)
                buf[o++] = seps[i];
        }
        buf[o] = 0;
    }
    return need;
}
