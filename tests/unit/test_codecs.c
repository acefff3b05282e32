/* Generated codecs (hyperc gen --codecs) round trip every supported type,
 * write what serde_json writes, and refuse what serde_json refuses; the
 * generated dispatcher routes requests by variant and source. */
#include "unit_helpers.h"

#include "codec_types.c"
#include "codec_types.codecs.c"

/* The runtime links the native ABI binding, whose entry calls hw_init; this
 * test drives hp_process_dispatch directly and never enters. */
void hw_init(const char *our);
void hw_init(const char *our)
{
    (void)our;
}

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

static void dispatch_case(unsigned src, const char *body, hp_refusal want_rc,
                          const char *want)
{
    memset(&hpg_state, 0, sizeof hpg_state);
    hpg_state.d = 40;
    hp_arena a;
    hp_arena_init(&a);
    hp_jw w;
    hp_jw_init(&w);
    hp_refusal rc =
        hp_process_dispatch(&hpg_impl, &a, src, body, strlen(body), &w);
    if (rc != want_rc)
        fail_msg("%s: rc %d (%s), want %d", body, rc, w.buf ? w.buf : "",
                 want_rc);
    if (w.buf == NULL || strstr(w.buf, want) == NULL)
        fail_msg("%s: got '%s', want '%s'", body, w.buf ? w.buf : "(null)",
                 want);
    if (rc != HP_REFUSAL_OK) {
        /* the error reply names its kind */
        char kind[64];
        snprintf(kind, sizeof kind, "{\"HypercError\":{\"kind\":\"%s\"",
                 hp_refusal_name(rc));
        if (strncmp(w.buf, kind, strlen(kind)) != 0)
            fail_msg("%s: reply '%s' does not start with '%s'", body, w.buf,
                     kind);
    }
    hp_jw_fini(&w);
    hp_arena_fini(&a);
}

static void dispatch(void **state)
{
    (void)state;
    dispatch_case(HP_FROM_LOCAL, "\"Size\"", HP_REFUSAL_OK, "40");
    dispatch_case(HP_FROM_LOCAL, "{\"Size\":null}", HP_REFUSAL_OK, "40");
    dispatch_case(HP_FROM_LOCAL, "{\"Add\":2}", HP_REFUSAL_OK, "42");
    dispatch_case(HP_FROM_REMOTE, "{\"Add\":2}", HP_REFUSAL_OK, "42");
    dispatch_case(HP_FROM_REMOTE, "\"Size\"", HP_REFUSAL_FORBIDDEN,
                  "Size may not be called from another node; you may call: "
                  "Add");
    dispatch_case(HP_FROM_LOCAL,
                  "{\"EchoPoints\":[[{\"x\":1,\"y\":2.0}],\"Red\"]}",
                  HP_REFUSAL_OK, "[{\"x\":1,\"y\":2.0}]");
    dispatch_case(HP_FROM_HTTP, "{\"Greet\":\"Ann\"}", HP_REFUSAL_OK,
                  "\"Ann\"");
    dispatch_case(HP_FROM_LOCAL, "{\"Greet\":\"Ann\"}", HP_REFUSAL_FORBIDDEN,
                  "you may call: Add, EchoPoints, Size");
    dispatch_case(HP_FROM_LOCAL, "{\"Nope\":1}", HP_REFUSAL_UNKNOWN_VARIANT,
                  "unknown request variant 'Nope'");
    dispatch_case(HP_FROM_LOCAL, "{\"Add\":\"x\"}", HP_REFUSAL_BAD_ARGUMENTS,
                  "argument 'n' of Add: expected an integer (u64), got a "
                  "string");
    dispatch_case(HP_FROM_LOCAL, "\"Add\"", HP_REFUSAL_BAD_ARGUMENTS,
                  "Add takes an argument");
    dispatch_case(HP_FROM_LOCAL, "{\"Size\":1}", HP_REFUSAL_BAD_ARGUMENTS,
                  "Size takes no arguments");
    dispatch_case(HP_FROM_LOCAL, "{\"EchoPoints\":[[]]}",
                  HP_REFUSAL_BAD_ARGUMENTS, "takes 2 arguments as an array");
    dispatch_case(HP_FROM_LOCAL, "not json", HP_REFUSAL_BAD_JSON,
                  "the request is not JSON");
    dispatch_case(HP_FROM_LOCAL, "[1,2]", HP_REFUSAL_BAD_JSON,
                  "expected {\\\"Variant\\\": arguments}");
    dispatch_case(HP_FROM_LOCAL, "{\"Add\":1,\"Size\":null}",
                  HP_REFUSAL_BAD_JSON, "an object with 2 keys");
    /* a greeting with a NULL name cannot be written: HandlerFailed */
    dispatch_case(HP_FROM_HTTP, "{\"Greet\":\"\"}", HP_REFUSAL_HANDLER_FAILED,
                  "Greet returned a value that cannot be written as JSON");
}

/* The Request union: what serde_json writes for each variant shape, and
 * back; the Response union carries the raw return value. */
static void request_response_unions(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "\"Size\"",
        "{\"Add\":7}",
        "{\"EchoPoints\":[[{\"x\":1,\"y\":0.5}],\"DarkBlue\"]}",
        "{\"Greet\":\"\\u001f\u00e9\"}",
    };
    static const hpg_request_tag tags[] = {HPG_REQ_SIZE, HPG_REQ_ADD,
                                           HPG_REQ_ECHO_POINTS, HPG_REQ_GREET};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        hp_arena a;
        hp_arena_init(&a);
        const char *err = NULL;
        hp_jv *j = hp_json_parse(&a, bodies[i], strlen(bodies[i]), &err);
        assert_non_null(j);
        hpg_request q;
        if (hpg_request_decode(&a, j, &q, &err) != 0)
            fail_msg("%s: %s", bodies[i], err);
        assert_int_equal(q.tag, tags[i]);
        hp_jw w;
        hp_jw_init(&w);
        assert_int_equal(hpg_request_encode(&w, &q), 0);
        assert_string_equal(w.buf, bodies[i]);
        hp_jw_fini(&w);
        hp_arena_fini(&a);
    }
    /* {"Size":null} is accepted and written back as serde writes a unit
     * variant */
    hp_arena a;
    hp_arena_init(&a);
    const char *err = NULL;
    hp_jv *j = hp_json_parse(&a, "{\"Size\":null}", 13, &err);
    hpg_request q;
    assert_int_equal(hpg_request_decode(&a, j, &q, &err), 0);
    assert_int_equal(q.tag, HPG_REQ_SIZE);
    j = hp_json_parse(&a, "{\"Add\":-1}", 10, &err);
    assert_int_equal(hpg_request_decode(&a, j, &q, &err), -1);
    assert_non_null(strstr(err, "argument 'n' of Add"));
    /* responses: raw values */
    const char *pts = "[{\"x\":2,\"y\":1e300}]";
    j = hp_json_parse(&a, pts, strlen(pts), &err);
    assert_non_null(j);
    hpg_response p;
    assert_int_equal(hpg_response_decode(&a, j, HPG_REQ_ECHO_POINTS, &p, &err),
                     0);
    assert_int_equal(p.echo_points.len, 1);
    assert_int_equal(p.echo_points.ptr[0].x, 2);
    hp_jw w;
    hp_jw_init(&w);
    assert_int_equal(hpg_response_encode(&w, &p), 0);
    assert_string_equal(w.buf, "[{\"x\":2,\"y\":1e300}]");
    hp_jw_fini(&w);
    j = hp_json_parse(&a, "\"x\"", 3, &err);
    assert_int_equal(hpg_response_decode(&a, j, HPG_REQ_SIZE, &p, &err), -1);
    assert_non_null(strstr(err, "the result of Size"));
    hp_arena_fini(&a);
}

/* A zeroed struct (NULL strings) is saveable: NULL is written as "". */
static void null_string_is_empty(void **state)
{
    (void)state;
    everything v;
    memset(&v, 0, sizeof v);
    hp_jw w;
    hp_jw_init(&w);
    /* a zeroed address has no text form: refused, not a crash */
    assert_int_equal(hpg_enc_struct_everything(&w, &v), -1);
    hp_jw_fini(&w);
    hp_jw_init(&w);
    v.who = (hw_address){"n.os", {"p", "k", "pub.os"}};
    v.col = COLOR_RED; /* 0 is not one of its enumerators */
    assert_int_equal(hpg_enc_struct_everything(&w, &v), 0);
    assert_non_null(strstr(w.buf, "\"name\":\"\""));
    hp_jw_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(serde_forms_accepted),
        cmocka_unit_test(refused_with_reasons),
        cmocka_unit_test(dispatch),
        cmocka_unit_test(request_response_unions),
        cmocka_unit_test(null_string_is_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
