/* The generated codecs against the real serde_json: tests/serdref (Rust,
 * Debian's serde_json) prints one line per case, "type TAB input TAB ok|err
 * TAB detail", detail being what serde_json writes back after reading the
 * input, or its error.  For every line the C decoder of the twin type
 * (tests/gen/serde_types.c) must accept exactly what serde accepts, and
 * write back exactly serde's bytes: a map also after its entries are put
 * in reverse order (written in key order, as a BTreeMap).  The documented
 * differences: a string with \u0000 is refused (C strings); floats are read
 * correctly rounded where serde_json's default parser is 1 ulp off (the
 * w_*_exact lines carry the correctly rounded value, the C type's). */
#include "unit_helpers.h"

#include "serde_types.c"
#include "serde_types.codecs.c"

void hw_init(const char *our);
void hw_init(const char *our)
{
    (void)our;
}

typedef struct codec {
    const char *name;
    size_t size;
    int (*dec)(hp_arena *a, const hp_jv *j, void *out, const char **err);
    int (*enc)(hp_jw *w, const void *v);
    void (*reverse)(void *v); /* maps: entries in reverse order */
    unsigned seen;
} codec;

#define CODEC(name, fn)                                                        \
    static int dec_##name(hp_arena *a, const hp_jv *j, void *out,              \
                          const char **err)                                    \
    {                                                                          \
        return hpg_dec_##fn(a, j, out, err);                                   \
    }                                                                          \
    static int enc_##name(hp_jw *w, const void *v)                             \
    {                                                                          \
        return hpg_enc_##fn(w, v);                                             \
    }
#define MAP_CODEC(name, fn)                                                    \
    CODEC(name, fn)                                                            \
    static void rev_##name(void *p)                                            \
    {                                                                          \
        name *m = p;                                                           \
        for (size_t i = 0; i < m->len / 2; i++) {                              \
            __typeof__(*m->ptr) t = m->ptr[i];                                 \
            m->ptr[i] = m->ptr[m->len - 1 - i];                                \
            m->ptr[m->len - 1 - i] = t;                                        \
        }                                                                      \
    }

CODEC(kitchen, struct_kitchen)
CODEC(shape, struct_shape)
CODEC(event, struct_event)
CODEC(level, enum_level)
CODEC(sixteen, sixteen)
MAP_CODEC(names_by_id, names_by_id)
MAP_CODEC(shapes_by_i32, shapes_by_i32)
MAP_CODEC(counts, counts)
MAP_CODEC(by_node, by_node)
CODEC(w_i64, struct_w_i64)
CODEC(w_u64, struct_w_u64)
CODEC(w_i8, struct_w_i8)
CODEC(w_u8, struct_w_u8)
CODEC(w_f64, struct_w_f64)
CODEC(w_f32, struct_w_f32)
CODEC(w_string, struct_w_string)
CODEC(w_char, struct_w_char)
CODEC(w_u128, struct_w_u128)
CODEC(w_i128, struct_w_i128)
CODEC(w_value, struct_w_value)
typedef w_f64 w_f64_exact;
typedef w_value w_value_exact;
CODEC(w_f64_exact, struct_w_f64)
CODEC(w_value_exact, struct_w_value)

#define ENTRY(name, rev)                                                       \
    {                                                                          \
#name, sizeof(name), dec_##name, enc_##name, rev, 0                    \
    }
static codec codecs[] = {
    ENTRY(kitchen, NULL),
    ENTRY(shape, NULL),
    ENTRY(event, NULL),
    ENTRY(level, NULL),
    ENTRY(sixteen, NULL),
    ENTRY(names_by_id, rev_names_by_id),
    ENTRY(shapes_by_i32, rev_shapes_by_i32),
    ENTRY(counts, rev_counts),
    ENTRY(by_node, rev_by_node),
    ENTRY(w_i64, NULL),
    ENTRY(w_u64, NULL),
    ENTRY(w_i8, NULL),
    ENTRY(w_u8, NULL),
    ENTRY(w_f64, NULL),
    ENTRY(w_f32, NULL),
    ENTRY(w_string, NULL),
    ENTRY(w_char, NULL),
    ENTRY(w_u128, NULL),
    ENTRY(w_i128, NULL),
    ENTRY(w_value, NULL),
    ENTRY(w_f64_exact, NULL),
    ENTRY(w_value_exact, NULL),
};

static codec *codec_named(const char *name)
{
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (strcmp(codecs[i].name, name) == 0)
            return &codecs[i];
    return NULL;
}

/* One case; returns NULL when C agrees with serde, else what differs (in
 * the arena). */
static const char *check(hp_arena *a, codec *c, const char *input, bool ok,
                         const char *detail)
{
    const char *err = NULL;
    hp_jv *j = hp_json_parse(a, input, strlen(input), &err);
    void *v = hp_arena_alloc(a, c->size);
    memset(v, 0, c->size);
    int rc = j ? c->dec(a, j, v, &err) : -1;
    if (strstr(input, "\\u0000")) {
        /* the documented difference: refused whatever serde says */
        if (rc == 0 || strstr(err, "\\u0000") == NULL)
            return hp_arena_sprintf(a,
                                    "a \\u0000 string was not refused as "
                                    "documented (%s)",
                                    rc == 0 ? "accepted" : err);
        return NULL;
    }
    if (!ok)
        return rc == 0 ? "accepted what serde_json refuses" : NULL;
    if (rc != 0)
        return hp_arena_sprintf(a, "refused what serde_json accepts: %s", err);
    if (strcmp(c->name, "kitchen") == 0) {
        /* #[serde(skip)]: zero after decoding (whatever the input says),
         * never written */
        kitchen *k = v;
        if (k->cache != NULL)
            return "the skipped field was read";
        k->cache = k;
    }
    for (int round = 0; round < (c->reverse ? 2 : 1); round++) {
        if (round == 1)
            c->reverse(v);
        hp_jw w;
        hp_jw_init(&w);
        int erc = c->enc(&w, v);
        const char *got = w.buf ? hp_arena_strdup(a, w.buf) : "";
        hp_jw_fini(&w);
        if (erc != 0)
            return "the decoded value could not be encoded";
        if (strcmp(got, detail) != 0)
            return hp_arena_sprintf(a, "wrote %s%s", got,
                                    round ? " (entries reversed)" : "");
    }
    return NULL;
}

static void against_serde_json(void **state)
{
    (void)state;
    const char *path = getenv("HYPERC_SERDREF");
    if (path == NULL)
        fail_msg("HYPERC_SERDREF is not set (the gen.serdref fixture "
                 "writes it)");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lines = 0, failures = 0, ok_lines = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = 0;
        char *field[4];
        char *p = line;
        int nf = 0;
        for (; nf < 4 && p; nf++) {
            field[nf] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = 0;
        }
        if (nf != 4 || p != NULL)
            fail_msg("malformed reference line %u", lines + 1);
        lines++;
        codec *c = codec_named(field[0]);
        if (c == NULL)
            fail_msg("line %u: no C twin for type %s", lines, field[0]);
        c->seen++;
        bool ok = strcmp(field[2], "ok") == 0;
        ok_lines += ok;
        hp_arena a;
        hp_arena_init(&a);
        const char *why = check(&a, c, field[1], ok, field[3]);
        if (why) {
            print_message("%s %s: serde_json %s %s; C %s\n", field[0], field[1],
                          field[2], field[3], why);
            failures++;
        }
        hp_arena_fini(&a);
    }
    free(line);
    fclose(f);
    /* the reference covers every twin, with accepted and refused cases */
    if (lines < 150 || ok_lines < 100 || ok_lines == lines)
        fail_msg("only %u reference lines (%u accepted)", lines, ok_lines);
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++)
        if (codecs[i].seen == 0)
            fail_msg("no reference line for %s", codecs[i].name);
    if (failures)
        fail_msg("%u of %u cases differ from serde_json", failures, lines);
}

/* Messages a caller reads when a value is refused. */
static void refusals_say_what_was_expected(void **state)
{
    (void)state;
    static const struct {
        const char *type, *json, *want;
    } cases[] = {
        {"shape", "\"Circle\"",
         "variant Circle of shape carries data: expected {\"Circle\": ...}"},
        {"shape", "{\"None\":1}",
         "variant None of shape carries no data: expected \"None\""},
        {"shape", "{\"Nope\":1}",
         "expected a variant of shape (Circle, Rect, None) as \"Name\" or "
         "{\"Name\": data}, got 'Nope'"},
        {"shape", "{\"Rect\":{\"w\":1}}",
         "variant Rect of shape: missing field `h` in rect"},
        {"names_by_id", "{\"x\":\"a\"}",
         "expected an integer key (u64), got \"x\""},
        {"shapes_by_i32", "{\"2147483648\":\"None\"}",
         "key \"2147483648\" is out of range for s32"},
        {"w_i64", "{\"v\":-0}", "-0 is not an integer for serde_json"},
        {"w_char", "{\"v\":\"ab\"}",
         "field 'v' of w_char: expected a character, got a string of 2 "
         "bytes"},
        {"w_u128", "{\"v\":-1}", "-1 is out of range for u128"},
        {"w_value", "{\"v\":[1E400]}", "1E400 is out of range for f64"},
        {"w_string", "{\"v\":\"\\ud800\"}", "lone surrogate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hp_arena a;
        hp_arena_init(&a);
        codec *c = codec_named(cases[i].type);
        const char *err = NULL;
        hp_jv *j =
            hp_json_parse(&a, cases[i].json, strlen(cases[i].json), &err);
        void *v = hp_arena_alloc(&a, c->size);
        if (j != NULL && c->dec(&a, j, v, &err) == 0)
            fail_msg("%s accepted", cases[i].json);
        if (strstr(err, cases[i].want) == NULL)
            fail_msg("%s: got '%s', want '%s'", cases[i].json, err,
                     cases[i].want);
        hp_arena_fini(&a);
    }
}

/* What C can hold but the wire cannot: refused when written, never a
 * wrong text. */
static void unwritable_values_refused(void **state)
{
    (void)state;
    hp_jw w;
    hp_jw_init(&w);
    w_char ch = {.v = 0xD800};
    assert_int_equal(hpg_enc_struct_w_char(&w, &ch), -1);
    ch.v = 0x110000;
    assert_int_equal(hpg_enc_struct_w_char(&w, &ch), -1);
    shape s = {.kind = (shape_kind)9};
    assert_int_equal(hpg_enc_struct_shape(&w, &s), -1);
    w_value bad = {.v = {.text = "{\"a\":"}};
    assert_int_equal(hpg_enc_struct_w_value(&w, &bad), -1);
    counts m = {.len = 1};
    __typeof__(*m.ptr) e = {.key = NULL, .value = 1};
    m.ptr = &e;
    assert_int_equal(hpg_enc_counts(&w, &m), -1);
    hp_jw_fini(&w);
    /* a map with a repeated key writes it once, with its last value */
    hp_jw_init(&w);
    __typeof__(*m.ptr) two[3] = {{"b", 1}, {"a", 2}, {"b", 3}};
    m = (counts){.ptr = two, .len = 3};
    assert_int_equal(hpg_enc_counts(&w, &m), 0);
    assert_string_equal(w.buf, "{\"a\":2,\"b\":3}");
    hp_jw_fini(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(against_serde_json),
        cmocka_unit_test(refusals_say_what_was_expected),
        cmocka_unit_test(unwritable_values_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
