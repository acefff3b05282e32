/* Generated codecs (hyperc gen --codecs) round trip every supported type,
 * write what serde_json writes, and refuse what serde_json refuses; the
 * generated dispatcher routes requests by variant and source. */
#include "unit_helpers.h"

#include "codec_types.c"
#include "codec_types.codecs.c"

static const char *const full =
    "{\"flag\":true,\"a\":-8,\"b\":65535,\"c\":-9223372036854775808,"
    "\"d\":18446744073709551615,\"e\":0.1,\"f\":1e21,\"name\":\"q\\\"\\n\","
    "\"raw\":[0,1,255],\"who\":\"n.os@p:k:pub.os\",\"col\":\"DarkBlue\","
    "\"p\":{\"x\":3,\"y\":1.5},\"points\":[{\"x\":1,\"y\":0.0},"
    "{\"x\":-2,\"y\":2.5}],\"nick\":null,\"scores\":{\"ann\":7,\"bob\":-1},"
    "\"two\":[false,1e13],\"res\":{\"Err\":\"nope\"},\"done\":{\"Ok\":null}}";

static void round_trip(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *err = NULL;
    hp_jv *j = hp_json_parse(&a, full, strlen(full), &err);
    assert_non_null(j);
    everything v;
    memset(&v, 0, sizeof v);
    if (hpg_dec_struct_everything(&a, j, &v, &err) != 0)
        fail_msg("decode: %s", err);
    assert_true(v.flag);
    assert_int_equal(v.a, -8);
    assert_int_equal(v.b, 65535);
    assert_true(v.c == INT64_MIN && v.d == UINT64_MAX);
    assert_int_equal(v.col, COLOR_DARK_BLUE);
    assert_int_equal(v.points.len, 2);
    assert_int_equal(v.points.ptr[1].x, -2);
    assert_false(v.nick.some);
    assert_int_equal(v.scores.len, 2);
    assert_string_equal(v.scores.ptr[1].key, "bob");
    assert_false(v.res.ok);
    assert_string_equal(v.res.error, "nope");
    assert_true(v.done.ok);
    assert_string_equal(v.who.process.publisher_node, "pub.os");
    hp_jw w;
    hp_jw_init(&w);
    assert_int_equal(hpg_enc_struct_everything(&w, &v), 0);
    assert_string_equal(w.buf, full); /* byte for byte */
    hp_jw_fini(&w);
    hp_arena_fini(&a);
}

static void serde_forms_accepted(void **state)
{
    (void)state;
    hp_arena a;
    hp_arena_init(&a);
    const char *err = NULL;
    /* a struct as an array of its fields; an enum as {"V":null}; unknown
     * keys ignored; a missing option field is none; a map's repeated key
     * keeps the last value at the first place */
    const char *text = "{\"p\":[5,6.0],\"col\":{\"Red\":null},\"extra\":1,"
                       "\"m\":{\"a\":1,\"b\":2,\"a\":3}}";
    hp_jv *j = hp_json_parse(&a, text, strlen(text), &err);
    point p;
    color c;
    score_map m;
    assert_int_equal(hpg_dec_struct_point(&a, hp_jv_get(j, "p"), &p, &err), 0);
    assert_int_equal(p.x, 5);
    assert_int_equal(hpg_dec_enum_color(&a, hp_jv_get(j, "col"), &c, &err), 0);
    assert_int_equal(c, COLOR_RED);
    assert_int_equal(hpg_dec_score_map(&a, hp_jv_get(j, "m"), &m, &err), 0);
    assert_int_equal(m.len, 2);
    assert_string_equal(m.ptr[0].key, "a");
    assert_int_equal(m.ptr[0].value, 3);
    hp_arena_fini(&a);
}

static void refused_with_reasons(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"{\"x\":1}", "missing field `y` in point"},
        {"{\"x\":1,\"y\":2,\"x\":3}", "duplicate field `x` in point"},
        {"{\"x\":\"1\",\"y\":2}", "field 'x' of point: expected an integer "
                                  "(s32), got a string"},
        {"{\"x\":2147483648,\"y\":2}", "out of range for s32"},
        {"{\"x\":1.5,\"y\":2}", "expected an integer (s32), got a number"},
        {"[1]", "expected point as an object or an array of 2 fields"},
        {"{\"x\":1,\"y\":1e400}", "out of range for f64"},
        {"7", "expected point (an object), got a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_arena a;
        hp_arena_init(&a);
        const char *err = NULL;
        hp_jv *j =
            hp_json_parse(&a, cases[i].json, strlen(cases[i].json), &err);
        assert_non_null(j);
        point p;
        assert_int_equal(hpg_dec_struct_point(&a, j, &p, &err), -1);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("%s: got '%s', want '%s'", cases[i].json, err,
                     cases[i].want);
        hp_arena_fini(&a);
    }
    hp_arena a;
    hp_arena_init(&a);
    const char *err = NULL;
    const char *bad_enum = "\"Green\"";
    hp_jv *j = hp_json_parse(&a, bad_enum, strlen(bad_enum), &err);
    color c;
    assert_int_equal(hpg_dec_enum_color(&a, j, &c, &err), -1);
    assert_string_equal(err, "expected a variant of color (Red, DarkBlue), "
                             "got 'Green'");
    const char *bad_res = "{\"Ok\":1,\"Err\":\"x\"}";
    j = hp_json_parse(&a, bad_res, strlen(bad_res), &err);
    count_result r;
    assert_int_equal(hpg_dec_count_result(&a, j, &r, &err), -1);
    hp_arena_fini(&a);
    /* an enum value outside the enumerators cannot be encoded */
    hp_jw w;
    hp_jw_init(&w);
    color odd = (color)7;
    assert_int_equal(hpg_enc_enum_color(&w, &odd), -1);
    hp_jw_fini(&w);
}

static void dispatch_case(enum hpg_source src, const char *body, int want_rc,
                          const char *want)
{
    everything st;
    memset(&st, 0, sizeof st);
    st.d = 40;
    hp_arena a;
    hp_arena_init(&a);
    hp_jw w;
    hp_jw_init(&w);
    const char *err = NULL;
    int rc = hpg_dispatch(&a, &st, src, body, strlen(body), &w, &err);
    if (rc != want_rc)
        fail_msg("%s: rc %d (%s), want %d", body, rc, err ? err : "", want_rc);
    const char *got = rc == HPG_OK ? w.buf : err;
    if (got == NULL || strstr(got, want) == NULL)
        fail_msg("%s: got '%s', want '%s'", body, got ? got : "(null)", want);
    hp_jw_fini(&w);
    hp_arena_fini(&a);
}

static void dispatch(void **state)
{
    (void)state;
    dispatch_case(HPG_FROM_LOCAL, "\"Size\"", HPG_OK, "40");
    dispatch_case(HPG_FROM_LOCAL, "{\"Size\":null}", HPG_OK, "40");
    dispatch_case(HPG_FROM_LOCAL, "{\"Add\":2}", HPG_OK, "42");
    dispatch_case(HPG_FROM_REMOTE, "{\"Add\":2}", HPG_OK, "42");
    dispatch_case(HPG_FROM_REMOTE, "\"Size\"", HPG_FORBIDDEN,
                  "Size may not be called from another node; you may call: "
                  "Add");
    dispatch_case(HPG_FROM_LOCAL,
                  "{\"EchoPoints\":[[{\"x\":1,\"y\":2.0}],\"Red\"]}", HPG_OK,
                  "[{\"x\":1,\"y\":2.0}]");
    dispatch_case(HPG_FROM_HTTP, "{\"Greet\":\"Ann\"}", HPG_OK, "\"Ann\"");
    dispatch_case(HPG_FROM_LOCAL, "{\"Greet\":\"Ann\"}", HPG_FORBIDDEN,
                  "you may call: Size, Add, EchoPoints");
    dispatch_case(HPG_FROM_LOCAL, "{\"Nope\":1}", HPG_UNKNOWN_VARIANT,
                  "unknown request variant 'Nope'");
    dispatch_case(HPG_FROM_LOCAL, "{\"Add\":\"x\"}", HPG_BAD_ARGUMENTS,
                  "argument 'n' of Add: expected an integer (u64), got a "
                  "string");
    dispatch_case(HPG_FROM_LOCAL, "\"Add\"", HPG_BAD_ARGUMENTS,
                  "Add takes an argument");
    dispatch_case(HPG_FROM_LOCAL, "{\"Size\":1}", HPG_BAD_ARGUMENTS,
                  "Size takes no arguments");
    dispatch_case(HPG_FROM_LOCAL, "{\"EchoPoints\":[[]]}", HPG_BAD_ARGUMENTS,
                  "takes 2 arguments as an array");
    dispatch_case(HPG_FROM_LOCAL, "not json", HPG_BAD_JSON,
                  "the request is not JSON");
    dispatch_case(HPG_FROM_LOCAL, "[1,2]", HPG_BAD_JSON,
                  "expected {\"Variant\": arguments}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(serde_forms_accepted),
        cmocka_unit_test(refused_with_reasons),
        cmocka_unit_test(dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
