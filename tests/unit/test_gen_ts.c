/* hyperc gen's TypeScript client (src/gen/ts.c) from WIT text: the parts
 * of kit's caller_utils_ts_generator.rs (@2b1eac5) that WIT written by
 * wit.c does not reach (aliases, enums, variants with data, old-style
 * parameter fields, hand-written files), and its quirks.  Expected texts
 * are derived by hand from kit's source; the golden files of
 * tests/gen/golden/ cover the WIT our generator writes. */
#include "unit_helpers.h"

#include "gen/gen.h"

#include <string.h>

/* The text after kit's fixed preamble (ApiError, parseResponse,
 * apiRequest), which ends with apiRequest's closing brace. */
static const char *body(const char *ts)
{
    const char *end = "  return parseResponse<R>(jsonResponse);\n}\n\n";
    assert_true(
        strncmp(ts, "// Define a custom error type for API errors\n", 45) == 0);
    const char *p = strstr(ts, end);
    assert_non_null(p);
    return p + strlen(end);
}

static void check(const hcg_wit_file *files, size_t n, const char *want)
{
    char *err = NULL;
    char *ts = hcg_ts_from_wit(files, n, true, &err);
    assert_null(err);
    assert_non_null(ts);
    assert_string_equal(body(ts), want);
    free(ts);
}

static void kit_parser_features(void **state)
{
    (void)state;
    const hcg_wit_file f = {"demo-sys-v0",
                            "interface demo {\n"
                            "    use standard.{address};\n"
                            "\n"
                            "    type value = string;\n"
                            "    type ids = list<u32>;\n"
                            "\n"
                            "    enum level {\n"
                            "        low,\n"
                            "        %high-ish,\n"
                            "    }\n"
                            "\n"
                            "    variant shape {\n"
                            "        none,\n"
                            "        circle(f64),\n"
                            "        rect(record { w: f32, %type: u8 }),\n"
                            "    }\n"
                            "\n"
                            "    // Function signature for: go (http)\n"
                            "    // args: (a: u8, b: string)\n"
                            "    record go-signature-http {\n"
                            "        target: string,\n"
                            "        arg-types: tuple<u8, string>,\n"
                            "        returning: result<ids, string>\n"
                            "    }\n"
                            "\n"
                            "    // HTTP: delete /x\n"
                            "    record legacy-signature-http {\n"
                            "        target: string,\n"
                            "        first-arg: option<shape>,\n"
                            "        returning: level\n"
                            "    }\n"
                            "\n"
                            "    record bare-signature-http {\n"
                            "        target: string,\n"
                            "        arg-types: tuple<bool>,\n"
                            "        returning: _\n"
                            "    }\n"
                            "}\n"};
    /* no HTTP comment above go: POST to "/api"; an alias named value is
     * unknown; old-style fields name their parameter in snake_case; no
     * args comment: arg0 */
    check(&f, 1,
          "\n"
          "// ============= Demo Hyperapp =============\n"
          "export namespace Demo {\n"
          "\n"
          "  // Custom Types\n"
          "  export type Value = unknown\n"
          "  export type Ids = number[]\n"
          "\n"
          "  export enum Level {\n"
          "    Low = \"Low\",\n"
          "    HighIsh = \"HighIsh\",\n"
          "  }\n"
          "\n"
          "  export type Shape = { None: null } | { Circle: number } | "
          "{ Rect: { w: number, type: number } };\n"
          "\n"
          "\n"
          "  // API Request/Response Types\n"
          "  export interface GoRequestWrapper {\n"
          "    Go: [number, string]\n"
          "  }\n"
          "\n"
          "  export type GoResponse = { Ok: Ids } | { Err: string };\n"
          "\n"
          "  export interface LegacyRequestWrapper {\n"
          "    Legacy: Shape | null\n"
          "  }\n"
          "\n"
          "  export type LegacyResponse = Level;\n"
          "\n"
          "  export interface BareRequestWrapper {\n"
          "    Bare: boolean\n"
          "  }\n"
          "\n"
          "  export type BareResponse = void;\n"
          "\n"
          "\n"
          "  // API Functions\n"
          "  /**\n"
          "   * go\n"
          "   * @param a: number\n"
          "   * @param b: string * @returns Promise with result\n"
          "   * @throws ApiError if the request fails\n"
          "   */\n"
          "  export async function go(a: number, b: string): Promise<Ids> {\n"
          "    const data: GoRequestWrapper = {\n"
          "      Go: [a, b],\n"
          "    };\n"
          "\n"
          "    return await apiRequest<GoRequestWrapper, Ids>('/api', "
          "'POST', data);\n"
          "  }\n"
          "\n"
          "  /**\n"
          "   * legacy\n"
          "   * @param first_arg: Shape | null * @returns Promise with result\n"
          "   * @throws ApiError if the request fails\n"
          "   */\n"
          "  export async function legacy(first_arg: Shape | null): "
          "Promise<Level> {\n"
          "    const data: LegacyRequestWrapper = {\n"
          "      Legacy: first_arg,\n"
          "    };\n"
          "\n"
          "    return await apiRequest<LegacyRequestWrapper, Level>('/x', "
          "'DELETE', data);\n"
          "  }\n"
          "\n"
          "  /**\n"
          "   * bare\n"
          "   * @param arg0: boolean * @returns Promise with result\n"
          "   * @throws ApiError if the request fails\n"
          "   */\n"
          "  export async function bare(arg0: boolean): Promise<void> {\n"
          "    const data: BareRequestWrapper = {\n"
          "      Bare: arg0,\n"
          "    };\n"
          "\n"
          "    return await apiRequest<BareRequestWrapper, void>('/api', "
          "'POST', data);\n"
          "  }\n"
          "\n"
          "}\n"
          "\n");
}

static const char alpha[] = "interface alpha {\n"
                            "    record empty {}\n"
                            "\n"
                            "    record point {\n"
                            "        x: s32\n"
                            "    }\n"
                            "\n"
                            "    // Function signature for: get (http)\n"
                            "    // HTTP: GET /p\n"
                            "    // args: none\n"
                            "    record get-signature-http {\n"
                            "        target: string,\n"
                            "        returning: point\n"
                            "    }\n"
                            "}\n";

static const char beta[] = "interface beta {\n"
                           "    record thing {\n"
                           "        hello-world: bool\n"
                           "    }\n"
                           "\n"
                           "    // Function signature for: ping (local)\n"
                           "    // args: none\n"
                           "    // json fmt: {\"Ping\": null}\n"
                           "    record ping-signature-local {\n"
                           "        target: address,\n"
                           "        returning: thing\n"
                           "    }\n"
                           "}\n";

static void files_names_and_quirks(void **state)
{
    (void)state;
    const hcg_wit_file files[] = {
        {"alpha", alpha},
        /* types-X-sys-v0 joins X's namespace */
        {"types-alpha-sys-v0", "interface types-alpha-sys-v0 {\n"
                               "    variant mode {\n"
                               "        on,\n"
                               "        off\n"
                               "    }\n"
                               "}\n"},
        /* world files are skipped ... */
        {"alpha-v0", "world alpha-v0 {\n    import alpha;\n}"},
        /* ... and so is any file mentioning "world " */
        {"gamma", "interface gamma {\n"
                  "    // Function signature for: hello-world (http)\n"
                  "    // HTTP: POST /api/hello-world\n"
                  "    // args: none\n"
                  "    record hello-world-signature-http {\n"
                  "        target: string,\n"
                  "        returning: u8\n"
                  "    }\n"
                  "}\n"},
        /* types but no http handler: a namespace with the types only */
        {"beta", beta},
    };
    /* `record empty {}` has no closing line of its own: it takes point's
     * field and name ("Empty {}"), and point is never defined */
    check(files, sizeof files / sizeof files[0],
          "\n"
          "// ============= Alpha Hyperapp =============\n"
          "export namespace Alpha {\n"
          "\n"
          "  // Custom Types\n"
          "  export interface Empty {} {\n"
          "    x: number;\n"
          "  }\n"
          "\n"
          "  export type Mode = \"On\" | \"Off\";\n"
          "\n"
          "\n"
          "  // API Request/Response Types\n"
          "  export interface GetRequestWrapper {\n"
          "    Get: null\n"
          "  }\n"
          "\n"
          "  export type GetResponse = Point;\n"
          "\n"
          "\n"
          "  // API Functions\n"
          "  /**\n"
          "   * get\n"
          "   * @returns Promise with result\n"
          "   * @throws ApiError if the request fails\n"
          "   */\n"
          "  export async function get(): Promise<Point> {\n"
          "    const data: GetRequestWrapper = {\n"
          "      Get: null,\n"
          "    };\n"
          "\n"
          "    return await apiRequest<GetRequestWrapper, Point>('/p', "
          "'GET', data);\n"
          "  }\n"
          "\n"
          "}\n"
          "\n"
          "// ============= Beta Hyperapp =============\n"
          "export namespace Beta {\n"
          "\n"
          "  // Custom Types\n"
          "  export interface Thing {\n"
          "    hello_world: boolean;\n"
          "  }\n"
          "\n"
          "}\n"
          "\n");
}

static void no_http_no_file(void **state)
{
    (void)state;
    const hcg_wit_file f = {"beta", beta};
    char *err = (char *)"unset";
    assert_null(hcg_ts_from_wit(&f, 1, true, &err));
    assert_null(err);
    assert_null(hcg_ts_from_wit(NULL, 0, true, &err));
    assert_null(err);
}

static void reserved_type_names(void **state)
{
    (void)state;
    static const char *const names[] = {"get-request", "item-response",
                                        "a-request-wrapper"};
    for (size_t i = 0; i < 3; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "interface alpha {\n    variant %s {\n        a\n    }\n}\n",
                 names[i]);
        const hcg_wit_file files[] = {{"alpha", alpha}, {"x", text}};
        char *err = NULL;
        assert_null(hcg_ts_from_wit(files, 2, true, &err));
        assert_non_null(err);
        assert_non_null(strstr(err, names[i]));
        free(err);
    }
}

/* The function of `fn` in ts (from "export async function <fn>(" to its
 * closing "  }\n"), or a failed test. */
static char *function_text(const char *ts, const char *fn)
{
    char start[64];
    snprintf(start, sizeof start, "export async function %s(", fn);
    const char *p = strstr(ts, start);
    assert_non_null(p);
    const char *e = strstr(p, "\n  }\n");
    assert_non_null(e);
    return strndup(p, (size_t)(e - p) + 5);
}

static const char finder[] =
    "interface finder {\n"
    "    type name = string;\n"
    "    type value = string;\n"
    "\n"
    "    enum level {\n"
    "        low,\n"
    "        high,\n"
    "    }\n"
    "\n"
    "    // Function signature for: find (http)\n"
    "    // HTTP: GET /api/find\n"
    "    // args: (text: string, lv: level, who: name, max-hits: u32, "
    "extra: value, maybe: option<string>)\n"
    "    record find-signature-http {\n"
    "        target: string,\n"
    "        arg-types: tuple<string, level, name, u32, value, "
    "option<string>>,\n"
    "        returning: u32\n"
    "    }\n"
    "\n"
    "    // Function signature for: put (http)\n"
    "    // HTTP: PUT /api/put\n"
    "    // args: (n: u32)\n"
    "    record put-signature-http {\n"
    "        target: string,\n"
    "        arg-types: tuple<u32>,\n"
    "        returning: u32\n"
    "    }\n"
    "}\n";

/* kit's client sends a GET without a body, so its parameters are lost;
 * hyperc's (not kit_exact) puts them in the query string as the runtime
 * reads them: text as it is, the rest as JSON, by snake_case name. */
static void get_arguments_in_the_query(void **state)
{
    (void)state;
    const hcg_wit_file f = {"finder", finder};
    char *err = NULL;
    char *kit = hcg_ts_from_wit(&f, 1, true, &err);
    char *ours = hcg_ts_from_wit(&f, 1, false, &err);
    assert_null(err);
    assert_non_null(kit);
    assert_non_null(ours);
    char *kit_find = function_text(kit, "find");
    char *our_find = function_text(ours, "find");
    assert_null(strstr(kit_find, "URLSearchParams"));
    assert_non_null(strstr(kit_find, "apiRequest<FindRequestWrapper, "
                                     "number>('/api/find', 'GET', data);"));
    assert_non_null(strstr(our_find,
                           "  const query = new URLSearchParams({ "
                           "text: String(text), lv: String(lv), who: "
                           "String(who), max_hits: JSON.stringify(maxHits), "
                           "extra: JSON.stringify(extra), maybe: "
                           "JSON.stringify(maybe) });\n"));
    assert_non_null(strstr(our_find, "apiRequest<FindRequestWrapper, "
                                     "number>('/api/find?' + query, 'GET', "
                                     "data);"));
    /* a PUT sends its body: the same as kit's */
    char *kit_put = function_text(kit, "put");
    char *our_put = function_text(ours, "put");
    assert_string_equal(kit_put, our_put);
    free(kit_find);
    free(our_find);
    free(kit_put);
    free(our_put);
    free(kit);
    free(ours);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kit_parser_features),
        cmocka_unit_test(files_names_and_quirks),
        cmocka_unit_test(no_http_no_file),
        cmocka_unit_test(reserved_type_names),
        cmocka_unit_test(get_arguments_in_the_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
