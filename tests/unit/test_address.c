/* Addresses and process ids: hc_address_check, hc_process_id_check,
 * hw_address_parse and hw_address_format against Hyperware's rules
 * (runtime.md §2). */
#include "unit_helpers.h"

/* Asserts a check function's result by its error name ("OK" for success). */
#define CHECK_WITH(fn, s, name)                                                \
    do {                                                                       \
        int rc_ = fn(s);                                                       \
        if (strcmp(hc_err_name(rc_), name) != 0)                               \
            fail_msg(#fn "(\"%s\") = %s, expected %s", s, hc_err_name(rc_),    \
                     name);                                                    \
        if (strcmp(name, "OK") == 0)                                           \
            assert_int_equal(rc_, 0);                                          \
        else                                                                   \
            assert_true(rc_ < 0);                                              \
    } while (0)
#define CHECK_ADDR(s, name) CHECK_WITH(hc_address_check, s, name)
#define CHECK_PID(s, name) CHECK_WITH(hc_process_id_check, s, name)

static void address_valid_forms(void **state)
{
    (void)state;
    CHECK_ADDR("alice.os@chat:chat:template.os", "OK");
    CHECK_ADDR("our@kernel:distro:sys", "OK");
    CHECK_ADDR("a@b:c:d", "OK");
    CHECK_ADDR("0@1:2:3", "OK");
    CHECK_ADDR("my-node.dev-1.os@proc-1:pkg-2:pub-3.x.y", "OK");
    CHECK_ADDR("node@x:y:z-.-", "OK");
    CHECK_ADDR("..@a:b:.", "OK"); /* dots only: still the allowed charset */
    CHECK_ADDR("-@-:-:-", "OK");
}

static void address_structure_errors(void **state)
{
    (void)state;
    /* MissingNodeId: no '@' at all, or nothing before it. */
    CHECK_ADDR("", "MISSING_NODE_ID");
    CHECK_ADDR("process:package:publisher", "MISSING_NODE_ID");
    CHECK_ADDR("@p:k:u", "MISSING_NODE_ID");
    CHECK_ADDR("@", "MISSING_NODE_ID");
    /* TooManyAts */
    CHECK_ADDR("a@b@p:k:u", "TOO_MANY_ATS");
    CHECK_ADDR("a@p:k:u@", "TOO_MANY_ATS");
    CHECK_ADDR("a@@p:k:u", "TOO_MANY_ATS");
    CHECK_ADDR("a@p@k:u", "TOO_MANY_ATS");
    /* MissingField: fewer than three parts, or an empty one. */
    CHECK_ADDR("a@", "MISSING_FIELD");
    CHECK_ADDR("a@p", "MISSING_FIELD");
    CHECK_ADDR("a@p:k", "MISSING_FIELD");
    CHECK_ADDR("a@:k:u", "MISSING_FIELD");
    CHECK_ADDR("a@p::u", "MISSING_FIELD");
    CHECK_ADDR("a@p:k:", "MISSING_FIELD");
    CHECK_ADDR("a@::", "MISSING_FIELD");
    /* TooManyColons */
    CHECK_ADDR("a@p:k:u:v", "TOO_MANY_COLONS");
    CHECK_ADDR("a@p:k:u:", "TOO_MANY_COLONS");
    CHECK_ADDR("a@:::", "TOO_MANY_COLONS");
}

static void address_hypermap_safe(void **state)
{
    (void)state;
    /* node */
    CHECK_ADDR("Alice.os@p:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("al_ice@p:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("al ice@p:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a:b@p:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("n\xc3\xa9@p:k:u", "NOT_HYPERMAP_SAFE");
    /* process: no dots, no upper case */
    CHECK_ADDR("a@p.x:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@P:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p_x:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p/x:k:u", "NOT_HYPERMAP_SAFE");
    /* package: no dots */
    CHECK_ADDR("a@p:k.x:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p:K:u", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p:k+:u", "NOT_HYPERMAP_SAFE");
    /* publisher: dots fine, others not */
    CHECK_ADDR("a@p:k:u.os", "OK");
    CHECK_ADDR("a@p:k:U.os", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p:k:u os", "NOT_HYPERMAP_SAFE");
    CHECK_ADDR("a@p:k:u\t", "NOT_HYPERMAP_SAFE");
    /* Structure is judged before names: an empty part is MissingField even
     * when another part is unsafe. */
    CHECK_ADDR("a@P::u", "MISSING_FIELD");
    CHECK_ADDR("a@P:k:u:v", "TOO_MANY_COLONS");
    /* Hyperware splits on '@' before anything else, and checks names only
     * once the structure parsed. */
    CHECK_ADDR("@a@p:k:u", "TOO_MANY_ATS");
    CHECK_ADDR("A@p:k", "MISSING_FIELD");
}

static void process_id_check(void **state)
{
    (void)state;
    CHECK_PID("p:k:u", "OK");
    CHECK_PID("chat:chat:template.os", "OK");
    CHECK_PID("kernel:distro:sys", "OK");
    CHECK_PID("1234567890:a-b:c.d-e", "OK");
    CHECK_PID("", "MISSING_FIELD");
    CHECK_PID("p", "MISSING_FIELD");
    CHECK_PID("p:k", "MISSING_FIELD");
    CHECK_PID("::", "MISSING_FIELD");
    CHECK_PID(":k:u", "MISSING_FIELD");
    CHECK_PID("p::u", "MISSING_FIELD");
    CHECK_PID("p:k:", "MISSING_FIELD");
    CHECK_PID("p:k:u:", "TOO_MANY_COLONS");
    CHECK_PID("p:k:u:v", "TOO_MANY_COLONS");
    CHECK_PID("p.x:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_PID("p:k.x:u", "NOT_HYPERMAP_SAFE");
    CHECK_PID("p:k:U", "NOT_HYPERMAP_SAFE");
    CHECK_PID("a@p:k:u", "NOT_HYPERMAP_SAFE");
    CHECK_PID("p:k:u ", "NOT_HYPERMAP_SAFE");
}

static void error_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(hc_err_name(0), "OK");
    assert_string_equal(hc_err_name(-HCC_EMISSING_NODE_ID), "MISSING_NODE_ID");
    assert_string_equal(hc_err_name(HCC_ETOO_MANY_ATS), "TOO_MANY_ATS");
    assert_string_equal(hc_err_name(9999), "UNKNOWN");
    assert_string_equal(hc_err_name(-9999), "UNKNOWN");
    assert_string_equal(hc_strerror(9999), "unknown error");
    assert_non_null(
        strstr(hc_strerror(-HCC_ENOT_HYPERMAP_SAFE), "hypermap-safe"));
    assert_non_null(strstr(hc_strerror(hc_address_check("x")), "'@'"));
}

static void parse_fields(void **state)
{
    (void)state;
    hw_address a;
    assert_int_equal(hw_address_parse("alice.os@chat:chat-pkg:pub.os", &a), 0);
    assert_string_equal(a.node, "alice.os");
    assert_string_equal(a.process.process_name, "chat");
    assert_string_equal(a.process.package_name, "chat-pkg");
    assert_string_equal(a.process.publisher_node, "pub.os");
    hw_address_fini(&a);
    assert_null(a.node);
    assert_null(a.process.process_name);

    assert_int_equal(hw_address_parse("our@kernel:distro:sys", &a), 0);
    assert_string_equal(a.node, "our");
    assert_string_equal(a.process.process_name, "kernel");
    assert_string_equal(a.process.package_name, "distro");
    assert_string_equal(a.process.publisher_node, "sys");
    hw_address_fini(&a);
    hw_address_fini(&a); /* safe on a zeroed struct */
}

static void parse_rejects_and_leaves_out_untouched(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",        "p:k:u",     "@p:k:u",   "a@b@p:k:u", "a@p:k",
        "a@p::u",  "a@p:k:u:v", "A@p:k:u",  "a@p.x:k:u", "a@p:k.x:u",
        "a@p:k:U", "a@p:k:u ",  " a@p:k:u", "a@",        "a@p:k:",
    };
    char sentinel = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hw_address a = {.node = &sentinel,
                        .process = {&sentinel, &sentinel, &sentinel}};
        if (hw_address_parse(bad[i], &a) != -1)
            fail_msg("hw_address_parse accepted \"%s\"", bad[i]);
        assert_ptr_equal(a.node, &sentinel);
        assert_ptr_equal(a.process.process_name, &sentinel);
        assert_ptr_equal(a.process.package_name, &sentinel);
        assert_ptr_equal(a.process.publisher_node, &sentinel);
    }
}

static void format_and_round_trip(void **state)
{
    (void)state;
    static const char *const good[] = {
        "alice.os@chat:chat:template.os",
        "our@kernel:distro:sys",
        "a@b:c:d",
        "x-1.y@0-0:1-1:2.2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        hw_address a, b;
        assert_int_equal(hw_address_parse(good[i], &a), 0);
        char buf[128];
        size_t need = hw_address_format(&a, buf, sizeof buf);
        assert_int_equal(need, strlen(good[i]));
        assert_string_equal(buf, good[i]);
        /* parse(format(parse(s))) is the same address again. */
        assert_int_equal(hw_address_parse(buf, &b), 0);
        assert_string_equal(a.node, b.node);
        assert_string_equal(a.process.process_name, b.process.process_name);
        assert_string_equal(a.process.package_name, b.process.package_name);
        assert_string_equal(a.process.publisher_node, b.process.publisher_node);
        assert_int_equal(hc_address_check(buf), 0);
        hw_address_fini(&a);
        hw_address_fini(&b);
    }
}

static void format_truncates(void **state)
{
    (void)state;
    char node[] = "node", p[] = "proc", k[] = "pkg", u[] = "pub.os";
    hw_address a = {.node = node, .process = {p, k, u}};
    const char *full = "node@proc:pkg:pub.os";
    size_t len = strlen(full);
    char buf[64];
    for (size_t n = 1; n <= len + 1; n++) {
        memset(buf, 'Z', sizeof buf);
        assert_int_equal(hw_address_format(&a, buf, n), len);
        /* Always NUL-terminated, and a prefix of the full string. */
        assert_int_equal(strlen(buf), n - 1);
        assert_memory_equal(buf, full, n - 1);
        assert_int_equal(buf[n], 'Z'); /* nothing written past n */
    }
    /* n == 0 writes nothing at all. */
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(hw_address_format(&a, buf, 0), len);
    assert_int_equal(buf[0], 'Z');
    /* Formatting does not validate: empty parts still format. */
    char empty[] = "";
    hw_address e = {.node = empty, .process = {empty, empty, empty}};
    assert_int_equal(hw_address_format(&e, buf, sizeof buf), 3);
    assert_string_equal(buf, "@::");
    assert_int_equal(hw_address_parse(buf, &e), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(address_valid_forms),
        cmocka_unit_test(address_structure_errors),
        cmocka_unit_test(address_hypermap_safe),
        cmocka_unit_test(process_id_check),
        cmocka_unit_test(error_names_and_messages),
        cmocka_unit_test(parse_fields),
        cmocka_unit_test(parse_rejects_and_leaves_out_untouched),
        cmocka_unit_test(format_and_round_trip),
        cmocka_unit_test(format_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
