/* Capability sets (caps.c): equality by issuer plus parsed JSON params
 * (runtime.md §4), add/has/remove/remove_issuer, and the messaging helpers
 * of the kernel. */
#include "unit_helpers.h"

#define ISS_A "local.os@a:pkg:sys"
#define ISS_B "local.os@b:pkg:sys"

static bool has(const hcn_capset *s, const char *issuer, const char *params)
{
    char *c = hcn_json_canonical(params);
    assert_non_null(c);
    bool r = hcn_capset_has(s, issuer, c);
    free(c);
    return r;
}

static void canonical_json(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2}"},
        {"{ \"b\":2, \"a\":1 }", "{\"a\":1,\"b\":2}"},
        {"\n{\"z\": {\"y\": [1, 2, {\"b\":0,\"a\":0}], \"x\": null}}\t",
         "{\"z\":{\"x\":null,\"y\":[1,2,{\"a\":0,\"b\":0}]}}"},
        {"\"messaging\"", "\"messaging\""},
        {"  \"messaging\"  ", "\"messaging\""},
        {"\"\\u006dessaging\"", "\"messaging\""},
        {"42", "42"},
        {"true", "true"},
        {"null", "null"},
        {"[ ]", "[]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *c = hcn_json_canonical(cases[i].in);
        if (c == NULL)
            fail_msg("hcn_json_canonical(%s) = NULL", cases[i].in);
        assert_string_equal(c, cases[i].out);
        free(c);
    }
    static const char *const bad[] = {
        "",     "{",     "{\"a\":}",       "messaging", "'messaging'",
        "[1,]", "{a:1}", "\"unterminated", "1 2",       "nul",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *c = hcn_json_canonical(bad[i]);
        if (c != NULL)
            fail_msg("hcn_json_canonical(%s) accepted: %s", bad[i], c);
    }
}

static void add_has_by_parsed_json(void **state)
{
    (void)state;
    hcn_capset s = {0};
    assert_int_equal(hcn_capset_add(&s, ISS_A, "{\"a\":1,\"b\":2}"), 1);
    assert_int_equal(s.len, 1);
    /* The same JSON spelled differently is the same capability. */
    assert_int_equal(hcn_capset_add(&s, ISS_A, "{ \"b\":2, \"a\":1 }"), 0);
    assert_int_equal(hcn_capset_add(&s, ISS_A, "{\"b\":2,\"a\":1}\n"), 0);
    assert_int_equal(s.len, 1);
    assert_true(has(&s, ISS_A, "{ \"b\":2, \"a\":1 }"));
    assert_true(hcn_capset_has(&s, ISS_A, "{\"a\":1,\"b\":2}"));
    /* has() wants canonical params: a non-canonical spelling misses. */
    assert_false(hcn_capset_has(&s, ISS_A, "{ \"b\":2, \"a\":1 }"));
    /* Different values, another issuer, and arrays in another order are
     * different capabilities. */
    assert_false(has(&s, ISS_A, "{\"a\":1,\"b\":3}"));
    assert_false(has(&s, ISS_A, "{\"a\":1}"));
    assert_false(has(&s, ISS_B, "{\"a\":1,\"b\":2}"));
    assert_int_equal(hcn_capset_add(&s, ISS_A, "[1,2]"), 1);
    assert_int_equal(hcn_capset_add(&s, ISS_A, "[2,1]"), 1);
    assert_int_equal(hcn_capset_add(&s, ISS_B, "{\"a\":1,\"b\":2}"), 1);
    assert_int_equal(s.len, 4);
    /* Stored params are canonical. */
    for (size_t i = 0; i < s.len; i++)
        assert_null(strchr(s.v[i].params, ' '));
    hcn_capset_fini(&s);
    assert_int_equal(s.len, 0);
    assert_null(s.v);
}

static void bad_json_rejected(void **state)
{
    (void)state;
    hcn_capset s = {0};
    assert_int_equal(hcn_capset_add(&s, ISS_A, "messaging"), -1);
    assert_int_equal(hcn_capset_add(&s, ISS_A, "{\"a\":"), -1);
    assert_int_equal(hcn_capset_add(&s, ISS_A, ""), -1);
    assert_int_equal(s.len, 0);
    /* Removing with bad JSON removes nothing. */
    assert_int_equal(hcn_capset_add(&s, ISS_A, "\"messaging\""), 1);
    assert_int_equal(hcn_capset_remove(&s, ISS_A, "messaging"), 0);
    assert_int_equal(s.len, 1);
    hcn_capset_fini(&s);
}

static void remove_by_parsed_json(void **state)
{
    (void)state;
    hcn_capset s = {0};
    assert_int_equal(
        hcn_capset_add(&s, ISS_A, "{\"kind\":\"read\",\"drive\":\"/x\"}"), 1);
    assert_int_equal(hcn_capset_add(&s, ISS_A, "\"messaging\""), 1);
    assert_int_equal(hcn_capset_add(&s, ISS_B, "\"messaging\""), 1);
    /* Absent ones are not removed. */
    assert_int_equal(
        hcn_capset_remove(&s, ISS_B, "{\"kind\":\"read\",\"drive\":\"/x\"}"),
        0);
    assert_int_equal(
        hcn_capset_remove(&s, "local.os@c:pkg:sys", "\"messaging\""), 0);
    assert_int_equal(s.len, 3);
    /* Removal matches parsed JSON. */
    assert_int_equal(
        hcn_capset_remove(&s, ISS_A,
                          "{ \"drive\" : \"/x\", \"kind\" : \"read\" }"),
        1);
    assert_int_equal(s.len, 2);
    assert_false(has(&s, ISS_A, "{\"kind\":\"read\",\"drive\":\"/x\"}"));
    assert_true(has(&s, ISS_A, "\"messaging\""));
    assert_true(has(&s, ISS_B, "\"messaging\""));
    assert_int_equal(
        hcn_capset_remove(&s, ISS_A, "{\"kind\":\"read\",\"drive\":\"/x\"}"),
        0);
    /* Remove everything, then the set is reusable. */
    assert_int_equal(hcn_capset_remove(&s, ISS_A, "\"messaging\""), 1);
    assert_int_equal(hcn_capset_remove(&s, ISS_B, "\"messaging\""), 1);
    assert_int_equal(s.len, 0);
    assert_int_equal(hcn_capset_add(&s, ISS_B, "\"messaging\""), 1);
    assert_true(has(&s, ISS_B, "\"messaging\""));
    hcn_capset_fini(&s);
}

static void remove_issuer(void **state)
{
    (void)state;
    hcn_capset s = {0};
    /* Many entries, interleaved, so that growth and swap-removal both run. */
    for (int i = 0; i < 40; i++) {
        char params[32];
        snprintf(params, sizeof params, "{\"n\":%d}", i);
        assert_int_equal(hcn_capset_add(&s, i % 3 == 0 ? ISS_B : ISS_A, params),
                         1);
    }
    assert_int_equal(s.len, 40);
    assert_int_equal(hcn_capset_remove_issuer(&s, ISS_B), 14);
    assert_int_equal(s.len, 26);
    for (size_t i = 0; i < s.len; i++)
        assert_string_equal(s.v[i].issuer, ISS_A);
    for (int i = 0; i < 40; i++) {
        char params[32];
        snprintf(params, sizeof params, "{\"n\":%d}", i);
        assert_int_equal(has(&s, ISS_A, params), i % 3 != 0);
        assert_false(has(&s, ISS_B, params));
    }
    assert_int_equal(hcn_capset_remove_issuer(&s, ISS_B), 0);
    /* The issuer must match exactly, not by prefix. */
    assert_int_equal(hcn_capset_remove_issuer(&s, "local.os@a:pkg:sy"), 0);
    assert_int_equal(hcn_capset_remove_issuer(&s, ISS_A), 26);
    assert_int_equal(s.len, 0);
    hcn_capset_fini(&s);
}

/* Another node's capability keeps its signature: a copy, replaced by a
 * later signed add of the same capability, kept by an unsigned one, freed
 * with the entry (ASan sees leaks). */
static void signatures_kept(void **state)
{
    (void)state;
    const uint8_t s1[4] = {1, 2, 3, 4}, s2[3] = {9, 8, 7};
    hcn_capset s = {0};
    assert_int_equal(
        hcn_capset_add_signed(&s, ISS_A, " \"messaging\" ", s1, sizeof s1), 1);
    const hcn_cap *c = hcn_capset_get(&s, ISS_A, "\"messaging\"");
    assert_non_null(c);
    assert_ptr_not_equal(c->sig, s1);
    assert_int_equal(c->sig_len, sizeof s1);
    assert_memory_equal(c->sig, s1, sizeof s1);
    assert_null(hcn_capset_get(&s, ISS_B, "\"messaging\""));
    /* unsigned: present, the signature stays */
    assert_int_equal(hcn_capset_add(&s, ISS_A, "\"messaging\""), 0);
    c = hcn_capset_get(&s, ISS_A, "\"messaging\"");
    assert_int_equal(c->sig_len, sizeof s1);
    assert_memory_equal(c->sig, s1, sizeof s1);
    /* signed again: the latest wins, even from its own bytes */
    assert_int_equal(
        hcn_capset_add_signed(&s, ISS_A, "\"messaging\"", s2, sizeof s2), 0);
    c = hcn_capset_get(&s, ISS_A, "\"messaging\"");
    assert_int_equal(c->sig_len, sizeof s2);
    assert_memory_equal(c->sig, s2, sizeof s2);
    assert_int_equal(
        hcn_capset_add_signed(&s, ISS_A, "\"messaging\"", c->sig, c->sig_len),
        0);
    c = hcn_capset_get(&s, ISS_A, "\"messaging\"");
    assert_memory_equal(c->sig, s2, sizeof s2);
    /* one without a signature has none */
    assert_int_equal(hcn_capset_add(&s, ISS_B, "\"messaging\""), 1);
    c = hcn_capset_get(&s, ISS_B, "\"messaging\"");
    assert_null(c->sig);
    assert_int_equal(c->sig_len, 0);
    /* removal and fini free them */
    assert_int_equal(hcn_capset_remove(&s, ISS_A, "\"messaging\""), 1);
    assert_int_equal(hcn_capset_add_signed(&s, ISS_A, "1", s1, sizeof s1), 1);
    assert_int_equal(hcn_capset_remove_issuer(&s, ISS_A), 1);
    assert_int_equal(hcn_capset_add_signed(&s, ISS_A, "2", s2, sizeof s2), 1);
    hcn_capset_fini(&s);
}

static void messaging_lookup(void **state)
{
    (void)state;
    hcn_capset s = {0};
    assert_int_equal(hcn_capset_add(&s, ISS_A, " \"messaging\" "), 1);
    assert_int_equal(hcn_capset_add(&s, ISS_B, "\"network\""), 1);
    assert_true(hcn_capset_has_messaging(&s, ISS_A));
    /* Another capability of the same issuer is not messaging. */
    assert_false(hcn_capset_has_messaging(&s, ISS_B));
    /* Same process on another node is another issuer. */
    assert_false(hcn_capset_has_messaging(&s, "other.os@a:pkg:sys"));
    assert_false(hcn_capset_has_messaging(&s, "a:pkg:sys"));
    hcn_capset_fini(&s);
}

static void kernel_grant_helpers(void **state)
{
    (void)state;
    char *home = ut_mkdtemp();
    hc_node *n = ut_node_new(home, 16);
    hcn_proc *p = ut_add_proc(n, "holder:pkg:sys", false);
    hcn_grant_messaging(n, p, "target:pkg:sys");
    hcn_grant_messaging(n, p, "target:pkg:sys"); /* idempotent */
    hcn_grant(p, "local.os@vfs:distro:sys",
              "{ \"kind\": \"read\", \"drive\": \"/a\" }");
    assert_int_equal(p->caps.len, 2);
    assert_true(hcn_capset_has_messaging(&p->caps, "local.os@target:pkg:sys"));
    assert_false(hcn_capset_has_messaging(&p->caps, "local.os@holder:pkg:sys"));
    assert_true(has(&p->caps, "local.os@vfs:distro:sys",
                    "{\"drive\":\"/a\",\"kind\":\"read\"}"));
    /* A bad JSON grant is ignored. */
    hcn_grant(p, ISS_A, "not json");
    assert_int_equal(p->caps.len, 2);
    hcn_proc_unref(p);
    hc_node_free(n);
    ut_rm_rf(home);
    free(home);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(canonical_json),
        cmocka_unit_test(add_has_by_parsed_json),
        cmocka_unit_test(bad_json_rejected),
        cmocka_unit_test(remove_by_parsed_json),
        cmocka_unit_test(remove_issuer),
        cmocka_unit_test(signatures_kept),
        cmocka_unit_test(messaging_lookup),
        cmocka_unit_test(kernel_grant_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
