/* The serde_json-compatible writer: the outputs below are what serde_json
 * writes for the same values (docs/gen-design.md §2.2; the float vectors
 * were checked against serde_json 1.0.87 when the design was written). */
#include "unit_helpers.h"

#include "hyperc/json.h"

#include <float.h>
#include <math.h>

static void expect_f64(double v, const char *want)
{
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_f64(&w, v);
    if (strcmp(w.buf, want) != 0)
        fail_msg("f64 %.17g: wrote %s, serde_json writes %s", v, w.buf, want);
    hp_jw_fini(&w);
}

static void expect_f32(float v, const char *want)
{
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_f32(&w, v);
    if (strcmp(w.buf, want) != 0)
        fail_msg("f32 %.9g: wrote %s, serde_json writes %s", (double)v, w.buf,
                 want);
    hp_jw_fini(&w);
}

static void floats_f64(void **state)
{
    (void)state;
    expect_f64(1.0, "1.0");
    expect_f64(0.1, "0.1");
    expect_f64(1e15, "1000000000000000.0");
    expect_f64(1e16, "1e16");
    expect_f64(1e21, "1e21");
    expect_f64(1e-5, "0.00001");
    expect_f64(1e-6, "1e-6");
    expect_f64(2.5e-8, "2.5e-8");
    expect_f64(5e-324, "5e-324");
    expect_f64(1.2345678901234568e17, "1.2345678901234568e17");
    expect_f64(DBL_MAX, "1.7976931348623157e308");
    expect_f64(100.0, "100.0");
    expect_f64(123.456, "123.456");
    expect_f64(1.0 / 3.0, "0.3333333333333333");
    expect_f64(-1.5, "-1.5");
    expect_f64(-0.0, "-0.0");
    expect_f64(0.0, "0.0");
    expect_f64(0.30000000000000004, "0.30000000000000004");
    expect_f64(9007199254740993.0, "9007199254740992.0");
    expect_f64(NAN, "null");
    expect_f64(INFINITY, "null");
    expect_f64(-INFINITY, "null");
}

static void floats_f32(void **state)
{
    (void)state;
    expect_f32(1e12f, "1000000000000.0");
    expect_f32(1e13f, "1e13");
    expect_f32(1e-6f, "0.000001");
    expect_f32(1e-7f, "1e-7");
    expect_f32(3.4028235e38f, "3.4028235e38");
    expect_f32(0.1f, "0.1");
    expect_f32(16777216.0f, "16777216.0");
    expect_f32(1.0f / 3.0f, "0.33333334");
}

static void floats_round_trip(void **state)
{
    (void)state;
    /* Whatever the digits, they must read back to the same value and be
     * no longer than %.17g. */
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v))
            continue;
        hp_jw w;
        hp_jw_init(&w);
        hp_jw_f64(&w, v);
        double back = strtod(w.buf, NULL);
        if (back != v)
            fail_msg("%s does not read back as %.17g", w.buf, v);
        hp_jw_fini(&w);
    }
}

static void strings(void **state)
{
    (void)state;
    hp_jw w;
    hp_jw_init(&w);
    const char in[] = "a\"b\\c\n\t\r\b\f\x01\x1f/\xc3\xa9\x7f";
    assert_int_equal(hp_jw_string(&w, in, sizeof in - 1), 0);
    assert_string_equal(
        w.buf, "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f/\xc3\xa9\x7f\"");
    hp_jw_fini(&w);
    /* invalid UTF-8 is refused and nothing is written */
    const char *bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82",
                         "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hp_jw_init(&w);
        assert_int_equal(hp_jw_string(&w, bad[i], strlen(bad[i])), -1);
        assert_true(w.len == 0);
        hp_jw_fini(&w);
    }
    hp_jw_init(&w);
    assert_int_equal(hp_jw_string(&w, "\xf0\x9f\x98\x80", 4), 0);
    assert_string_equal(w.buf, "\"\xf0\x9f\x98\x80\"");
    hp_jw_fini(&w);
}

static void integers_and_literals(void **state)
{
    (void)state;
    hp_jw w;
    hp_jw_init(&w);
    hp_jw_i64(&w, INT64_MIN);
    hp_jw_raw(&w, ",", 1);
    hp_jw_u64(&w, UINT64_MAX);
    hp_jw_raw(&w, ",", 1);
    hp_jw_bool(&w, true);
    hp_jw_raw(&w, ",", 1);
    hp_jw_null(&w);
    assert_string_equal(w.buf, "-9223372036854775808,18446744073709551615,"
                               "true,null");
    assert_true(hp_jw_ok(&w));
    hp_jw_fini(&w);
    /* every length of digits, both signs, as printf writes them */
    hp_jw_init(&w);
    char want[64];
    uint64_t u = 0;
    for (int k = 0; k <= 20; k++) {
        for (int d = 0; d < 3; d++) {
            uint64_t x = u + (uint64_t)d;
            hp_jw_fini(&w);
            hp_jw_init(&w);
            hp_jw_u64(&w, x);
            snprintf(want, sizeof want, "%llu", (unsigned long long)x);
            assert_string_equal(w.buf, want);
            hp_jw_fini(&w);
            hp_jw_init(&w);
            hp_jw_i64(&w, -(int64_t)(x & INT64_MAX));
            snprintf(want, sizeof want, "%lld", -(long long)(x & INT64_MAX));
            assert_string_equal(w.buf, want);
        }
        u = u * 10 + 9;
    }
    hp_jw_fini(&w);
}

/* Writers that end hand their buffers to the next ones (json_write.c):
 * each new writer starts empty, whatever the last one wrote, also when
 * two are open at once and when a text outgrows a kept buffer. */
static void writers_reuse_buffers(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int round = 0; round < 3; round++) {
        hp_jw a, b;
        hp_jw_init(&a);
        hp_jw_init(&b);
        assert_null(a.buf);
        hp_jw_raw(&a, "{\"Pong\":", 8);
        hp_jw_u64(&a, 5);
        hp_jw_raw(&a, "}", 1);
        hp_jw_u64(&b, 42);
        assert_string_equal(a.buf, "{\"Pong\":5}");
        assert_string_equal(b.buf, "42");
        assert_int_equal(a.len, 10);
        assert_ptr_not_equal(a.buf, b.buf);
        hp_jw_fini(&a);
        hp_jw_fini(&b);
        assert_null(a.buf);
        assert_int_equal(a.len, 0);
        /* a kept buffer (small) grows past its size */
        hp_jw c;
        hp_jw_init(&c);
        assert_int_equal(hp_jw_string(&c, big, sizeof big - 1), 0);
        assert_int_equal(c.len, sizeof big + 1);
        assert_true(c.buf[0] == '"' && c.buf[c.len - 1] == '"');
        assert_int_equal(strspn(c.buf + 1, "x"), sizeof big - 1);
        assert_true(hp_jw_ok(&c));
        hp_jw_fini(&c); /* too big to keep: freed */
        hp_jw d;
        hp_jw_init(&d);
        hp_jw_null(&d);
        assert_string_equal(d.buf, "null");
        hp_jw_fini(&d);
    }
}

/* serde_json's escaping, a byte at a time: the reference for the writer's
 * eight-byte scan. */
static size_t escape_ref(const char *s, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : NULL;
        if (e) {
            memcpy(out + o, e, 2);
            o += 2;
        } else if (c < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* A character that needs an escape (or is not ASCII) at every offset of
 * strings 0 to 40 bytes long. */
static void strings_at_every_offset(void **state)
{
    (void)state;
    static const char *const specials[] = {
        "\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xc3\xa9", " ", "~"};
    char in[64], want[64 * 6 + 2];
    for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
        size_t sl = strlen(specials[s]);
        for (size_t len = sl; len <= 40; len++)
            for (size_t at = 0; at + sl <= len; at++) {
                memset(in, 'q', len);
                memcpy(in + at, specials[s], sl);
                if (at + 2 * sl + 8 <= len) /* and a second one further on */
                    memcpy(in + at + sl + 8, specials[s], sl);
                size_t wn = escape_ref(in, len, want);
                hp_jw w;
                hp_jw_init(&w);
                assert_int_equal(hp_jw_string(&w, in, len), 0);
                if (w.len != wn || memcmp(w.buf, want, wn) != 0)
                    fail_msg("special %zu at %zu of %zu: %s", s, at, len,
                             w.buf);
                hp_jw_fini(&w);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(floats_f64),
        cmocka_unit_test(floats_f32),
        cmocka_unit_test(floats_round_trip),
        cmocka_unit_test(strings),
        cmocka_unit_test(strings_at_every_offset),
        cmocka_unit_test(integers_and_literals),
        cmocka_unit_test(writers_reuse_buffers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
