/* hyperc gen's naming: variants (CamelCase, as Rust's macro derives them)
 * and WIT names (kebab-case). */
#include "unit_helpers.h"

#include "gen/gen.h"

static void check(char *(*fn)(const char *), const char *in, const char *out)
{
    char *s = fn(in);
    assert_string_equal(s, out);
    free(s);
}

static void variant_names(void **state)
{
    (void)state;
    check(hcg_variant_name, "get_count", "GetCount");
    check(hcg_variant_name, "increment", "Increment");
    check(hcg_variant_name, "Get_x", "GetX");
    check(hcg_variant_name, "get_x", "GetX");
    check(hcg_variant_name, "a__b", "AB");
    check(hcg_variant_name, "_private", "Private");
    check(hcg_variant_name, "handle_http_request", "HandleHttpRequest");
}

static void wit_names(void **state)
{
    (void)state;
    /* kit's to_kebab_case, case for case */
    check(hcg_wit_name, "get_count", "get-count");
    check(hcg_wit_name, "_leading", "-leading");
    check(hcg_wit_name, "MixedCase", "mixed-case");
    check(hcg_wit_name, "Mixed_Case", "Mixed-Case");
    check(hcg_wit_name, "getHTTP", "get-h-t-t-p");
    check(hcg_wit_name, "handle_http_request", "handle-http-request");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(variant_names),
        cmocka_unit_test(wit_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
