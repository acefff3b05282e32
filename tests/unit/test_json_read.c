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
    /* back to before anything: every chunk goes (ASan sees the frees) */
    hp_arena_restore(&a, empty);
    assert_null(a.head);
    assert_int_equal(a.total, 0);
    assert_string_equal(hp_arena_strdup(&a, "fresh"), "fresh");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_basics),
        cmocka_unit_test(arena_marks),
        cmocka_unit_test(reads_values),
        cmocka_unit_test(refuses_what_serde_refuses),
        cmocka_unit_test(reads_past_the_parse_frame),
        cmocka_unit_test(reads_integer_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
