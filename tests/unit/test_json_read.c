/* The arena and the JSON reader (yajl + arena tree): what serde_json
 * accepts is accepted, what it refuses is refused with a message. */
#include "unit_helpers.h"

#include "hyperc/json.h"

static void arena_basics(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    char *s = hp_arena_sprintf(&a, "%s-%d", "x", 42);
    assert_string_equal(s, "x-42");
    /* alignment and zeroing */
    for (int i = 1; i < 100; i++) {
        unsigned char *p = hp_arena_alloc(&a, (size_t)i);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        for (int k = 0; k < i; k++)
            assert_int_equal(p[k], 0);
        memset(p, 0xab, (size_t)i);
    }
    /* a big allocation gets its own chunk */
    char *big = hp_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    big[(1 << 20) - 1] = 1;
    assert_true(a.total >= (1 << 20));
    hp_arena_reset(&a);
    assert_int_equal(a.total, 0);
    assert_string_equal(hp_arena_strdup(&a, "again"), "again");
    hp_arena_fini(&a);
}

static void arena_marks(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    hp_arena_mark empty = hp_arena_save(&a);
    char *keep = hp_arena_strdup(&a, "kept");
    hp_arena_mark m = hp_arena_save(&a);
    size_t before = a.total;
    /* a loop that would grow the arena by 100 MiB stays within a chunk or
     * two: each iteration goes back to the mark */
    for (int i = 0; i < 100; i++) {
        char *tmp = hp_arena_alloc(&a, 1 << 20);
        assert_non_null(tmp);
        tmp[(1 << 20) - 1] = 1;
        char *s = hp_arena_sprintf(&a, "iteration %d", i);
        assert_non_null(s);
        hp_arena_restore(&a, m);
        assert_int_equal(a.total, before);
        /* the big chunk made in the iteration is gone */
        assert_ptr_equal(a.head, m.chunk);
    }
    assert_string_equal(keep, "kept");
    /* what comes next reuses the marked chunk's space */
    char *again = hp_arena_strdup(&a, "again");
    assert_ptr_equal(again, keep + 16 * ((5 + 15) / 16));
    /* back to before anything: the first chunk (4 KiB) stays, emptied,
     * and what comes next goes where "kept" was; the rest went in the
     * loop (ASan sees the frees) */
    hp_arena_restore(&a, empty);
    assert_int_equal(a.total, 0);
    assert_ptr_equal(a.head, m.chunk);
    char *fresh = hp_arena_strdup(&a, "fresh");
    assert_ptr_equal(fresh, keep);
    assert_string_equal(fresh, "fresh");
    /* a first chunk bigger than the smallest goes: a one-off big
     * allocation is not kept by a loop that goes back to empty */
    hp_arena_fini(&a);
    hp_arena_init(&a);
    empty = hp_arena_save(&a);
    assert_non_null(hp_arena_alloc(&a, 1 << 20));
    hp_arena_restore(&a, empty);
    assert_null(a.head);
    assert_int_equal(a.total, 0);
    hp_arena_fini(&a);
}

static hp_jv *parse(hp_arena *a, const char *text, const char **err)
{
    *err = NULL;
    return hp_json_parse(a, text, strlen(text), err);
}

static void reads_values(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *err;
    hp_jv *v = parse(&a,
                     "{\"V\":[1,-2.5e3,true,null,\"h\\u00e9\\n\"],"
                     "\"a\":{},\"a\":[],\"big\":18446744073709551615}",
                     &err);
    assert_non_null(v);
    assert_int_equal(v->kind, HP_JV_OBJECT);
    assert_int_equal(v->len, 4);
    const hp_jv *arr = hp_jv_get(v, "V");
    assert_int_equal(arr->kind, HP_JV_ARRAY);
    assert_int_equal(arr->len, 5);
    assert_string_equal(arr->items[0]->str, "1");
    assert_string_equal(arr->items[1]->str, "-2.5e3"); /* numbers as text */
    assert_true(arr->items[2]->kind == HP_JV_BOOL && arr->items[2]->b);
    assert_int_equal(arr->items[3]->kind, HP_JV_NULL);
    assert_string_equal(arr->items[4]->str, "h\xc3\xa9\n");
    /* duplicates are all kept, in order; hp_jv_get finds the first */
    assert_string_equal(v->keys[1], "a");
    assert_string_equal(v->keys[2], "a");
    assert_int_equal(hp_jv_get(v, "a")->kind, HP_JV_OBJECT);
    assert_string_equal(hp_jv_get(v, "big")->str, "18446744073709551615");
    assert_null(hp_jv_get(v, "missing"));
    v = parse(&a, "\"Variant\"", &err);
    assert_true(v && v->kind == HP_JV_STRING && strcmp(v->str, "Variant") == 0);
    hp_arena_fini(&a);
}

static void refuses_what_serde_refuses(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1 2",
        "[1] x",
        "'a'",
        "{a:1}",
        "nul",
        "/*c*/1",
        "\"\xff\"",
        "\"a\\u0000b\"",
        "NaN",
        "[1,2",
        /* overlong forms, an encoded surrogate, a low surrogate escape, and
         * the same in a key: yajl passes them, serde does not */
        "\"\xc1\x9a\"",
        "\"\xe0\x80\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\\udc00\"",
        "{\"\xc1\x9a\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = NULL;
        hp_jv *v = parse(&a, bad[i], &err);
        if (v != NULL)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
        assert_true(strlen(err) > 0);
    }
    /* nesting: 128 levels are fine, 129 are not */
    char deep[300];
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    deep[256] = 0;
    const char *err;
    assert_non_null(parse(&a, deep, &err));
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    deep[258] = 0;
    assert_null(parse(&a, deep, &err));
    assert_non_null(strstr(err, "recursion limit"));
    hp_arena_fini(&a);
}

/* What yajl allocates comes from the parse's own frame while it fits and
 * from malloc beyond (json_read.c); the tree's frames move to the arena
 * past 16 levels.  Texts on both sides of those limits read the same. */
static void reads_past_the_parse_frame(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *err;
    /* 40 levels, a member on each level after the inner ones closed */
    char deep[512];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        deep[n++] = '[';
    n += (size_t)snprintf(deep + n, sizeof deep - n, "\"bottom\"");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, ",%d]", i);
    deep[n] = 0;
    const hp_jv *v = parse(&a, deep, &err);
    assert_non_null(v);
    for (int i = 39; i >= 0; i--) {
        assert_int_equal(v->kind, HP_JV_ARRAY);
        assert_int_equal(v->len, 2);
        assert_int_equal(atoi(v->items[1]->str), i);
        v = v->items[0];
    }
    assert_string_equal(v->str, "bottom");
    /* a top-level number at the end of the text (the lexer keeps it in
     * its buffer): short, then longer than the frame's scratch */
    v = parse(&a, "12345", &err);
    assert_true(v && v->kind == HP_JV_NUMBER);
    assert_string_equal(v->str, "12345");
    char *num = malloc(6001);
    assert_non_null(num);
    memset(num, '7', 6000);
    num[6000] = 0;
    v = parse(&a, num, &err);
    assert_true(v && v->kind == HP_JV_NUMBER && v->len == 6000);
    assert_int_equal(memcmp(v->str, num, 6000), 0);
    free(num);
    /* a long string with escapes (yajl's decode buffer) */
    char *str = malloc(20010);
    assert_non_null(str);
    n = 0;
    str[n++] = '"';
    for (int i = 0; i < 4000; i++) {
        memcpy(str + n, "ab\\n", 4);
        n += 4;
    }
    str[n++] = '"';
    str[n] = 0;
    v = parse(&a, str, &err);
    assert_true(v && v->kind == HP_JV_STRING && v->len == 4000 * 3);
    assert_int_equal(memcmp(v->str, "ab\n", 3), 0);
    assert_int_equal(memcmp(v->str + 3 * 3999, "ab\n", 3), 0);
    free(str);
    /* many parses in a row leave nothing behind (ASan's leak check) */
    for (int i = 0; i < 1000; i++)
        assert_non_null(parse(&a, "{\"Pong\":42}", &err));
    assert_null(parse(&a, "[1,", &err));
    assert_non_null(err);
    hp_arena_fini(&a);
}

/* Integers read by hp_jd_int and hp_jd_uint: the limits, one past them,
 * -0 and non-integers, with serde_json's verdicts. */
static void reads_integer_limits(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *err;
    int64_t i;
    uint64_t u;
    struct {
        const char *text;
        int ok_i64, ok_u64;
        int64_t i;
        uint64_t u;
    } cases[] = {
        {"0", 1, 1, 0, 0},
        {"42", 1, 1, 42, 42},
        {"-42", 1, 0, -42, 0},
        {"9223372036854775807", 1, 1, INT64_MAX, (uint64_t)INT64_MAX},
        {"9223372036854775808", 0, 1, 0, (uint64_t)INT64_MAX + 1},
        {"-9223372036854775808", 1, 0, INT64_MIN, 0},
        {"-9223372036854775809", 0, 0, 0, 0},
        {"18446744073709551615", 0, 1, 0, UINT64_MAX},
        {"18446744073709551616", 0, 0, 0, 0},
        {"99999999999999999999999", 0, 0, 0, 0},
        {"-0", 0, 0, 0, 0},
        {"1.0", 0, 0, 0, 0},
        {"1e3", 0, 0, 0, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const hp_jv *v = parse(&a, cases[k].text, &err);
        assert_non_null(v);
        err = NULL;
        int r = hp_jd_int(&a, v, INT64_MIN, INT64_MAX, "i64", &i, &err);
        if (cases[k].ok_i64) {
            if (r != 0)
                fail_msg("i64 refused %s: %s", cases[k].text, err);
            assert_true(i == cases[k].i);
        } else {
            if (r == 0)
                fail_msg("i64 took %s", cases[k].text);
            assert_non_null(err);
        }
        err = NULL;
        r = hp_jd_uint(&a, v, UINT64_MAX, "u64", &u, &err);
        if (cases[k].ok_u64) {
            if (r != 0)
                fail_msg("u64 refused %s: %s", cases[k].text, err);
            assert_true(u == cases[k].u);
        } else {
            if (r == 0)
                fail_msg("u64 took %s", cases[k].text);
            assert_non_null(err);
        }
    }
    /* a narrower type's range, and the messages */
    const hp_jv *v = parse(&a, "256", &err);
    assert_int_equal(hp_jd_uint(&a, v, UINT8_MAX, "u8", &u, &err), -1);
    assert_string_equal(err, "256 is out of range for u8 (0..255)");
    v = parse(&a, "-129", &err);
    assert_int_equal(hp_jd_int(&a, v, INT8_MIN, INT8_MAX, "i8", &i, &err), -1);
    assert_string_equal(err, "-129 is out of range for i8 (-128..127)");
    v = parse(&a, "-1", &err);
    assert_int_equal(hp_jd_uint(&a, v, UINT64_MAX, "u64", &u, &err), -1);
    assert_string_equal(err,
                        "-1 is out of range for u64 (0..18446744073709551615)");
    hp_arena_fini(&a);
}

/* ------------------------------------------- the plain path against yajl */

extern bool hp__json_plain_off; /* json_read.c: every text through yajl */

static bool same_tree(const hp_jv *x, const hp_jv *y)
{
    if (x == NULL || y == NULL)
        return x == y;
    if (x->kind != y->kind || x->len != y->len)
        return false;
    switch (x->kind) {
    case HP_JV_NULL: return true;
    case HP_JV_BOOL: return x->b == y->b;
    case HP_JV_NUMBER:
    case HP_JV_STRING: return strcmp(x->str, y->str) == 0;
    case HP_JV_ARRAY:
    case HP_JV_OBJECT:
        if ((x->keys == NULL) != (y->keys == NULL) ||
            (x->items == NULL) != (y->items == NULL))
            return false;
        for (size_t i = 0; i < x->len; i++) {
            if (x->keys && strcmp(x->keys[i], y->keys[i]) != 0)
                return false;
            if (!same_tree(x->items[i], y->items[i]))
                return false;
        }
        return true;
    }
    return false;
}

/* text read with the plain path allowed and with yajl alone: the same tree,
 * or the same refusal with the same message */
static void check_both(const char *text, size_t n)
{
    hp_arena a, b;
    hp_arena_init(&a);
    hp_arena_init(&b);
    const char *ea = NULL, *eb = NULL;
    hp__json_plain_off = false;
    hp_jv *x = hp_json_parse(&a, text, n, &ea);
    hp__json_plain_off = true;
    hp_jv *y = hp_json_parse(&b, text, n, &eb);
    hp__json_plain_off = false;
    if (!same_tree(x, y) || (x == NULL && strcmp(ea, eb) != 0))
        fail_msg("the paths differ on %.*s: %s / %s", (int)n, text,
                 x ? "read" : ea, y ? "read" : eb);
    hp_arena_fini(&a);
    hp_arena_fini(&b);
}

/* A random text of mostly plain JSON (strings sometimes with an escape or a
 * non-ASCII byte, odd whitespace, deep nesting) into buf. */
static size_t rand_value(char *buf, size_t cap, size_t o, int depth,
                         uint64_t *r)
{
    static const char *const scalars[] = {
        "0",        "-0",          "5",       "123456789012345678901234567890",
        "-1.5",     "2e9",         "1E-07",   "0.25e+3",
        "true",     "false",       "null",    "\"\"",
        "\"Pong\"", "\"a b/c\"",   "\"\\n\"", "\"\xc3\xa9\"",
        "01",       "1.",          "-",       "tru",
        "\"\x7f\"", "\"\\u00e9\"", "1e",      "\"x"};
    static const char *const ws[] = {"", "", "", " ", "\n\t", "\r", "\f"};
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    unsigned k = (unsigned)(*r >> 33);
#define PUT(s)                                                                 \
    do {                                                                       \
        size_t l_ = strlen(s);                                                 \
        if (o + l_ < cap) {                                                    \
            memcpy(buf + o, s, l_);                                            \
            o += l_;                                                           \
        }                                                                      \
    } while (0)
    PUT(ws[k % 7]);
    unsigned pick = (k >> 3) % 10;
    if (depth < 20 && pick < 4) {
        bool obj = pick < 2;
        PUT(obj ? "{" : "[");
        unsigned members = (k >> 8) % 4;
        for (unsigned i = 0; i < members; i++) {
            if (i)
                PUT(",");
            if (obj) {
                PUT(i % 2 ? "\"k\"" : "\"Pong\"");
                PUT(ws[(k >> (12 + i)) % 7]);
                PUT(":");
            }
            o = rand_value(buf, cap, o, depth + 1, r);
        }
        PUT(ws[(k >> 16) % 7]);
        PUT(obj ? "}" : "]");
    } else {
        unsigned s = (k >> 8) % (sizeof scalars / sizeof scalars[0]);
        /* mostly the valid ones (the first 16) */
        PUT(scalars[(k >> 20) % 4 ? s % 16 : s]);
    }
#undef PUT
    return o;
}

static void plain_path_matches_yajl(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"Pong\":5}",
        "5",
        "\"Pong\"",
        "[]",
        "{}",
        " [ 1 , 2 ] ",
        "-0",
        "{\"a\":{\"b\":[true,false,null,\"x\"]},\"a\":1}",
        "[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]",
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\"}",
        "{\"a\":}",
        "{1:2}",
        "1 2",
        "01",
        "1.e5",
        "+1",
        "tru",
        "nul",
        "\"a",
        "[1 2]",
        "{\"a\":1,}",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\xff\"",
        "\v1",
        "1\f",
        "\"tab\there\"",
        "{\"Run\":[100000,64,11000,60]}",
        "18446744073709551616"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        check_both(texts[i], strlen(texts[i]));
    /* every prefix of a plain text (truncations) */
    const char *t = "{\"Run\":[100000,-64.5e3,\"x y\",{\"k\":[true,null]}]}";
    for (size_t n = 0; n <= strlen(t); n++)
        check_both(t, n);
    /* a string with one byte that is not plain (or is) at every offset */
    static const char specials[] = "\"\\\x01\x1f\x7f\x80\xc3 ~";
    char sb[64];
    for (size_t k = 0; k < sizeof specials - 1; k++)
        for (size_t len = 1; len <= 40; len++)
            for (size_t at = 0; at < len; at++) {
                sb[0] = '"';
                memset(sb + 1, 'p', len);
                sb[1 + at] = specials[k];
                sb[1 + len] = '"';
                check_both(sb, len + 2);
            }
    /* random texts, and each with one byte changed */
    uint64_t r = 17;
    char buf[4096];
    for (int i = 0; i < 20000; i++) {
        size_t n = rand_value(buf, sizeof buf, 0, 0, &r);
        check_both(buf, n);
        if (n > 0) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(r >> 33) % n;
            static const char swap[] = "{}[],:\" 0-.e\\x";
            char was = buf[at];
            buf[at] = swap[(r >> 20) % (sizeof swap - 1)];
            check_both(buf, n);
            buf[at] = was;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_basics),
        cmocka_unit_test(arena_marks),
        cmocka_unit_test(reads_values),
        cmocka_unit_test(refuses_what_serde_refuses),
        cmocka_unit_test(reads_past_the_parse_frame),
        cmocka_unit_test(reads_integer_limits),
        cmocka_unit_test(plain_path_matches_yajl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
