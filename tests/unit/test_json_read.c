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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_basics),
        cmocka_unit_test(arena_marks),
        cmocka_unit_test(reads_values),
        cmocka_unit_test(refuses_what_serde_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
