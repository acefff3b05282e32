/* The eight-bytes-at-once tests (src/common/swar.h) against a byte loop,
 * and the loops that use them (the msgpack guard, the JSON writer's UTF-8
 * check) on inputs with the byte that matters at every offset. */
#include "unit_helpers.h"

#include "common/common.h"
#include "common/swar.h"
#include "hyperc/json.h"

static uint64_t next(uint64_t *r)
{
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    return *r;
}

static void check_word(uint64_t x)
{
    unsigned char b[8];
    memcpy(b, &x, 8);
    bool high = false, eq_q = false, eq_0 = false, eq_ff = false;
    bool below[4] = {false, false, false, false};
    static const unsigned limits[4] = {1, 0x20, 0x7f, 128};
    for (int i = 0; i < 8; i++) {
        high |= b[i] >= 0x80;
        eq_q |= b[i] == '"';
        eq_0 |= b[i] == 0;
        eq_ff |= b[i] == 0xff;
        for (int k = 0; k < 4; k++)
            below[k] |= b[i] < limits[k];
    }
    if (hcc_swar_any_high(x) != high || hcc_swar_any_eq(x, '"') != eq_q ||
        hcc_swar_any_eq(x, 0) != eq_0 || hcc_swar_any_eq(x, 0xff) != eq_ff)
        fail_msg("word %016llx", (unsigned long long)x);
    for (int k = 0; k < 4; k++)
        if (hcc_swar_any_below(x, limits[k]) != below[k])
            fail_msg("word %016llx below %u", (unsigned long long)x, limits[k]);
}

static void words_agree_with_a_byte_loop(void **state)
{
    (void)state;
    /* each byte value at each position, the others from a few fillers
     * (borrows and carries between bytes are where such tests go wrong) */
    static const uint8_t fill[] = {0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x7e,
                                   0x7f, 0x80, 0x81, 0xfe, 0xff, 'a'};
    for (size_t f = 0; f < sizeof fill; f++)
        for (int pos = 0; pos < 8; pos++)
            for (int v = 0; v < 256; v++) {
                uint8_t b[8];
                memset(b, fill[f], 8);
                b[pos] = (uint8_t)v;
                uint64_t x;
                memcpy(&x, b, 8);
                check_word(x);
            }
    uint64_t r = 7;
    for (int i = 0; i < 200000; i++) {
        uint64_t x = next(&r);
        check_word(x);
        check_word(x & 0x7f7f7f7f7f7f7f7full); /* ASCII only */
        check_word(x | 0x2020202020202020ull);
    }
}

/* rmp-serde's bytes: an array of n integers, each a positive fixint or
 * 0xcc and the byte; the guard takes it whole, refuses it cut short. */
static void msgpack_guard_on_byte_arrays(void **state)
{
    (void)state;
    uint8_t data[64], enc[3 + 2 * 64];
    uint64_t r = 3;
    for (size_t n = 16; n <= 64; n++)
        for (size_t at = 0; at < n; at++) {
            for (size_t i = 0; i < n; i++)
                data[i] = (uint8_t)(next(&r) >> 60);       /* small */
            data[at] = (uint8_t)(0x80 | (next(&r) >> 57)); /* 0xcc form */
            if (data[at] == 0xcc) /* (so that 0xcc below is a head) */
                data[at] = 0xcd;
            size_t k = 0;
            enc[k++] = 0xdc;
            enc[k++] = 0;
            enc[k++] = (uint8_t)n;
            for (size_t i = 0; i < n; i++) {
                if (data[i] >= 0x80)
                    enc[k++] = 0xcc;
                enc[k++] = data[i];
            }
            assert_true(hcc_msgpack_check(enc, k));
            for (size_t cut = 0; cut < k; cut++)
                if (hcc_msgpack_check(enc, cut))
                    fail_msg("n %zu, 0xcc at %zu: taken cut at %zu", n, at,
                             cut);
            /* one element more than the array holds: trailing bytes */
            enc[k] = 0x05;
            assert_false(hcc_msgpack_check(enc, k + 1));
            /* a byte that is no value (0xc1) at each place */
            for (size_t bad = 3; bad < k; bad++) {
                uint8_t was = enc[bad];
                enc[bad] = 0xc1;
                bool ok = hcc_msgpack_check(enc, k);
                enc[bad] = was;
                /* 0xc1 after 0xcc is a byte's value, elsewhere an error */
                if (ok != (enc[bad - 1] == 0xcc))
                    fail_msg("n %zu: 0xc1 at %zu %s", n, bad,
                             ok ? "taken" : "refused");
            }
        }
}

/* UTF-8 with one sequence (valid or not) at every offset of ASCII text. */
static void utf8_check_at_every_offset(void **state)
{
    (void)state;
    static const struct {
        const char *seq;
        bool valid;
    } seqs[] = {
        {"\xc3\xa9", true},
        {"\xe2\x82\xac", true},
        {"\xf0\x9f\x98\x80", true},
        {"\xc3", false},
        {"\xa9", false},
        {"\xc0\xaf", false},
        {"\xed\xa0\x80", false},
        {"\xf4\x90\x80\x80", false},
        {"\xe2\x82", false},
        {"\xff", false},
    };
    char buf[64];
    for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++) {
        size_t sl = strlen(seqs[s].seq);
        for (size_t len = sl; len < 40; len++)
            for (size_t at = 0; at + sl <= len; at++) {
                memset(buf, 'a', len);
                memcpy(buf + at, seqs[s].seq, sl);
                if (hp_utf8_valid(buf, len) != seqs[s].valid)
                    fail_msg("sequence %zu at %zu of %zu", s, at, len);
                /* cut off after its first byte, at the end */
                if (sl > 1 && hp_utf8_valid(buf, at + 1))
                    fail_msg("sequence %zu cut at %zu taken", s, at + 1);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(words_agree_with_a_byte_loop),
        cmocka_unit_test(msgpack_guard_on_byte_arrays),
        cmocka_unit_test(utf8_check_at_every_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
