/* Envelopes and blobs: one allocation each, shared by reference. */
#include "kernel.h"

#include <stdlib.h>
#include <string.h>

hcn_blob *hcn_blob_new(const char *mime, const void *bytes, size_t len)
{
    size_t ml = mime ? strlen(mime) + 1 : 0;
    hcn_blob *b = hcn_xmalloc(sizeof *b + len + ml);
    atomic_init(&b->refs, 1);
    b->len = len;
    if (len)
        memcpy(b->bytes, bytes, len);
    b->mime = NULL;
    if (mime) {
        b->mime = (char *)b->bytes + len;
        memcpy(b->mime, mime, ml);
    }
    return b;
}

hcn_blob *hcn_blob_ref(hcn_blob *b)
{
    if (b)
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void hcn_blob_unref(hcn_blob *b)
{
    if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static char *put(char **cur, const void *src, size_t n)
{
    char *d = *cur;
    if (n)
        memcpy(d, src, n);
    *cur += n;
    return d;
}

/* A string's length as the envelope keeps it, from its length with the
 * NUL (0: none): 0 when it does not fit (measured again where used). */
static uint16_t len16(size_t with_nul)
{
    return with_nul == 0 || with_nul - 1 > UINT16_MAX
               ? 0
               : (uint16_t)(with_nul - 1);
}

hcn_msg *hcn_msg_new(const hcn_msg_spec *sp)
{
    const char *source = sp->source, *target = sp->target, *rsvp = sp->rsvp;
    const char *metadata = sp->metadata;
    const hcn_cap *caps = sp->caps;
    size_t ncaps = sp->ncaps, body_len = sp->body_len;
    /* each string measured once (two routed envelopes per local call),
     * unless the caller knew its length; with the NUL */
    size_t lsource = sp->source_len ? sp->source_len + 1 : slen(source);
    size_t ltarget = sp->target_len ? sp->target_len + 1 : slen(target);
    /* an rsvp that is the source (a request expecting a response) shares
     * its bytes */
    bool rsvp_is_source = rsvp != NULL && rsvp == source;
    size_t lrsvp = rsvp_is_source ? lsource
                   : sp->rsvp_len ? sp->rsvp_len + 1
                                  : slen(rsvp);
    size_t lmeta = slen(metadata);
    size_t need = sizeof(hcn_msg) + ncaps * sizeof(hcn_cap) + lsource +
                  ltarget + (rsvp_is_source ? 0 : lrsvp) + lmeta + body_len;
    for (size_t i = 0; i < ncaps; i++)
        need += slen(caps[i].issuer) + slen(caps[i].params) + caps[i].sig_len;
    hcn_msg *m = hcn_xmalloc(need);
    memset(m, 0, sizeof *m);
    atomic_init(&m->refs, 1);
    m->id = sp->id;
    m->kind = (uint8_t)sp->kind;
    m->inherit = sp->inherit;
    m->has_expects = sp->has_expects;
    m->expects = sp->expects;
    char *cur = (char *)(m + 1);
    m->caps = ncaps ? (hcn_cap *)cur : NULL;
    m->ncaps = ncaps;
    cur += ncaps * sizeof(hcn_cap);
    for (size_t i = 0; i < ncaps; i++) {
        m->caps[i].issuer = put(&cur, caps[i].issuer, slen(caps[i].issuer));
        m->caps[i].params = put(&cur, caps[i].params, slen(caps[i].params));
    }
    m->source = put(&cur, source, lsource);
    m->target = put(&cur, target, ltarget);
    m->rsvp = rsvp_is_source ? m->source : rsvp ? put(&cur, rsvp, lrsvp) : NULL;
    m->source_len = len16(lsource);
    m->target_len = len16(ltarget);
    m->rsvp_len = len16(lrsvp);
    m->metadata = metadata ? put(&cur, metadata, lmeta) : NULL;
    m->body = (const uint8_t *)put(&cur, sp->body, body_len);
    m->body_len = body_len;
    for (size_t i = 0; i < ncaps; i++) { /* bytes: after the strings */
        m->caps[i].sig_len = caps[i].sig_len;
        m->caps[i].sig =
            caps[i].sig_len ? (uint8_t *)put(&cur, caps[i].sig, caps[i].sig_len)
                            : NULL;
    }
    m->blob = hcn_blob_ref(sp->blob);
    return m;
}

hcn_msg *hcn_msg_send_error(hcn_msg *orig, int kind)
{
    hcn_msg *m = hcn_xcalloc(1, sizeof *m);
    atomic_init(&m->refs, 1);
    m->kind = HCN_MSG_SEND_ERROR;
    m->err_kind = (uint8_t)kind;
    m->id = orig->id;
    m->source = orig->target;
    m->source_len = orig->target_len;
    m->target = orig->rsvp ? orig->rsvp : orig->source;
    m->target_len = orig->rsvp ? orig->rsvp_len : orig->source_len;
    m->body = (const uint8_t *)"";
    m->orig = hcn_msg_ref(orig);
    return m;
}

hcn_msg *hcn_msg_ref(hcn_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void hcn_msg_unref(hcn_msg *m)
{
    if (m == NULL ||
        atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    hcn_blob_unref(m->blob);
    if (m->orig)
        hcn_msg_unref(m->orig);
    free(m);
}
