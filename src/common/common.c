/* Error table and name/address validation shared by node and guest. */
#include "common.h"

#include "swar.h"

#include <stdint.h>

#include <string.h>
#if !defined(__wasm__)
#include <ucontext.h>
#endif

static const char *const err_names[] = {
#define HCC_ERR_NAME(name, msg) #name,
    HCC_ERR_MAP(HCC_ERR_NAME)
#undef HCC_ERR_NAME
};

static const char *const err_msgs[] = {
#define HCC_ERR_MSG(name, msg) msg,
    HCC_ERR_MAP(HCC_ERR_MSG)
#undef HCC_ERR_MSG
};

const char *hcc_err_name(int err)
{
    if (err < 0)
        err = -err;
    return err < HCC_E_COUNT ? err_names[err] : "UNKNOWN";
}

const char *hcc_strerror(int err)
{
    if (err < 0)
        err = -err;
    return err < HCC_E_COUNT ? err_msgs[err] : "unknown error";
}

bool hcc_name_safe(const char *s, size_t len, bool allow_dot)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
            continue;
        if (allow_dot && c == '.')
            continue;
        return false;
    }
    return true;
}

int hcc_process_id_split(const char *s, size_t len, bool check,
                         size_t offs[3][2])
{
    /* each field ends at the next ':' (memchr: the node splits every
     * address it hands a process) or at the end */
    size_t part = 0, start = 0;
    for (;;) {
        const char *c = memchr(s + start, ':', len - start);
        size_t end = c ? (size_t)(c - s) : len;
        if (part == 3)
            return HCC_ETOO_MANY_COLONS;
        offs[part][0] = start;
        offs[part][1] = end - start;
        part++;
        if (c == NULL)
            break;
        start = end + 1;
    }
    if (part != 3)
        return HCC_EMISSING_FIELD;
    for (int p = 0; p < 3; p++)
        if (offs[p][1] == 0)
            return HCC_EMISSING_FIELD;
    if (check) {
        for (int p = 0; p < 3; p++)
            if (!hcc_name_safe(s + offs[p][0], offs[p][1], p == 2))
                return HCC_ENOT_HYPERMAP_SAFE;
    }
    return HCC_EOK;
}

int hcc_address_split(const char *s, bool check, size_t *at, size_t offs[3][2])
{
    /* Structure first, then names, in Hyperware's order. */
    const char *a = strchr(s, '@');
    if (a == NULL)
        return HCC_EMISSING_NODE_ID;
    if (strchr(a + 1, '@') != NULL)
        return HCC_ETOO_MANY_ATS;
    if (a == s)
        return HCC_EMISSING_NODE_ID;
    *at = (size_t)(a - s);
    int rc = hcc_process_id_split(a + 1, strlen(a + 1), false, offs);
    if (rc != HCC_EOK)
        return rc;
    if (check && !hcc_name_safe(s, *at, true))
        return HCC_ENOT_HYPERMAP_SAFE;
    if (check && hcc_process_id_split(a + 1, strlen(a + 1), true, offs) != 0)
        return HCC_ENOT_HYPERMAP_SAFE;
    for (int p = 0; p < 3; p++)
        offs[p][0] += *at + 1;
    return HCC_EOK;
}

static const struct {
    const char *name;
    unsigned opcode;
} ws_types[] = {
#define HCC_WS_TYPE_ROW(name, text, opcode) {text, opcode},
    HCC_WS_TYPE_MAP(HCC_WS_TYPE_ROW)
#undef HCC_WS_TYPE_ROW
};

const char *hcc_ws_type_name(int type)
{
    return type >= 0 && type < HCC_WS_TYPE_COUNT ? ws_types[type].name : NULL;
}

int hcc_ws_type_parse(const char *name, size_t len)
{
    for (int k = 0; name && k < HCC_WS_TYPE_COUNT; k++)
        if (strlen(ws_types[k].name) == len &&
            memcmp(ws_types[k].name, name, len) == 0)
            return k;
    return -1;
}

unsigned hcc_ws_type_opcode(int type)
{
    return type >= 0 && type < HCC_WS_TYPE_COUNT ? ws_types[type].opcode : 0;
}

int hcc_ws_type_of_opcode(unsigned opcode)
{
    for (int k = 0; k < HCC_WS_TYPE_COUNT; k++)
        if (ws_types[k].opcode == opcode)
            return k;
    return -1;
}

uintptr_t hcc_signal_pc(const void *ucv)
{
#if defined(__x86_64__)
    return (uintptr_t)((const ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)((const ucontext_t *)ucv)->uc_mcontext.pc;
#else
    (void)ucv; /* wasm32 has no signals */
    return 0;
#endif
}

/* --------------------------------------------------------- msgpack guard */

bool hcc_msgpack_check(const uint8_t *b, size_t n)
{
    size_t pos = 0;
    uint64_t need = 1; /* values still to read */
    while (need > 0) {
        /* eight positive fixints (an array of small integers: rmp-serde's
         * bytes) at a time, each one value of one byte */
        while (need >= 8 && n - pos >= 8 &&
               !hcc_swar_any_high(hcc_swar_load(b + pos))) {
            pos += 8;
            need -= 8;
        }
        if (need == 0)
            break;
        if (pos >= n)
            return false;
        uint8_t t = b[pos++];
        need--;
        uint64_t skip = 0, items = 0;
        size_t lenbytes = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            /* fixint, nil, bool */
        } else if (t >= 0x80 && t <= 0x8f) {
            items = 2u * (t & 0x0fu);
        } else if (t >= 0x90 && t <= 0x9f) {
            items = t & 0x0fu;
        } else if (t >= 0xa0 && t <= 0xbf) {
            skip = t & 0x1fu;
        } else {
            switch (t) {
            case 0xc4:
            case 0xd9:
            case 0xc7: lenbytes = 1; break;
            case 0xc5:
            case 0xda:
            case 0xc8: lenbytes = 2; break;
            case 0xc6:
            case 0xdb:
            case 0xc9: lenbytes = 4; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc:
            case 0xd0: skip = 1; break;
            case 0xcd:
            case 0xd1: skip = 2; break;
            case 0xce:
            case 0xd2: skip = 4; break;
            case 0xcf:
            case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc:
            case 0xde: lenbytes = 2; break;
            case 0xdd:
            case 0xdf: lenbytes = 4; break;
            default: return false; /* 0xc1 */
            }
            if (lenbytes) {
                if (n - pos < lenbytes)
                    return false;
                uint64_t v = 0;
                for (size_t i = 0; i < lenbytes; i++)
                    v = v << 8 | b[pos + i];
                pos += lenbytes;
                if (t == 0xdc || t == 0xdd)
                    items = v;
                else if (t == 0xde || t == 0xdf)
                    items = 2 * v;
                else if (t >= 0xc7 && t <= 0xc9)
                    skip = v + 1; /* ext: the type byte, then the data */
                else
                    skip = v;
            }
        }
        if (skip > n - pos)
            return false;
        pos += (size_t)skip;
        need += items;
        if (need > n - pos)
            return false;
    }
    return pos == n;
}

/* ------------------------------------------------------------------ UTF-8 */

size_t hcc_utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    uint32_t cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool hcc_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (n - i >= 8 && !hcc_swar_any_high(hcc_swar_load(s + i)))
            i += 8;
        if (i == n)
            break;
        size_t k = hcc_utf8_seq(s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* The bytes of the ill-formed sequence at s[0..n) (s[0] begins no
 * well-formed one) that one U+FFFD replaces: its maximal subpart. */
static size_t utf8_ill_formed(const uint8_t *s, size_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t want;
    if (c >= 0xC2 && c <= 0xDF) {
        want = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 1;
    }
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < n && i < want && (s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

size_t hcc_utf8_lossy(const uint8_t *s, size_t n, uint8_t *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = hcc_utf8_seq(s + i, n - i);
        if (k > 0) {
            if (out)
                memcpy(out + o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        i += utf8_ill_formed(s + i, n - i);
        if (out)
            memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
    }
    return o;
}
