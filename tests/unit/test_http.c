/* http-server:distro:sys without sockets (http/util.c, http/auth.c): the
 * router as route_recognizer matches, Hyperware's path formatting, query
 * decoding, lossy UTF-8, loopback peers, JWTs, cookies, the login
 * check and the access check. */
#include "unit_helpers.h"

#include "node/http/http_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>

bool hcn_http_login_check(const char *password, const char *password_hash,
                          const char *body, size_t len, char **subdomain);

static const char *match(hcn_http_router *r, const char *path, json_t *p)
{
    const hcn_http_route *rt = hcn_http_router_match(r, path, p);
    return rt ? rt->data : NULL;
}

static void router_matches_like_route_recognizer(void **state)
{
    (void)state;
    hcn_http_router r = {0};
    assert_null(hcn_http_router_add(&r, "/a:b:c", "root"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/api", "api"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/item/:id", "item"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/item/new", "new"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/f/*rest", "files"));
    assert_null(hcn_http_router_add(&r, "/a:b:c/:x/:y", "two"));
    json_t *p = json_object();
    assert_string_equal(match(&r, "/a:b:c/api", p), "api");
    assert_int_equal(json_object_size(p), 0);
    assert_string_equal(match(&r, "a:b:c", NULL), "root"); /* no '/' */
    assert_string_equal(match(&r, "/a:b:c/item/7", p), "item");
    assert_string_equal(json_string_value(json_object_get(p, "id")), "7");
    /* a static segment ranks above a dynamic one */
    assert_string_equal(match(&r, "/a:b:c/item/new", NULL), "new");
    json_object_clear(p);
    assert_string_equal(match(&r, "/a:b:c/f/x/y.txt", p), "files");
    assert_string_equal(json_string_value(json_object_get(p, "rest")),
                        "x/y.txt");
    /* a star needs at least one character; two dynamics rank above it */
    assert_string_equal(match(&r, "/a:b:c/f/x", NULL), "two");
    assert_null(match(&r, "/a:b:c/f/", NULL));
    assert_null(match(&r, "/a:b:c/api/more/deep", NULL));
    assert_null(match(&r, "/other", NULL));
    /* re-adding replaces and hands back the old data */
    assert_string_equal(hcn_http_router_add(&r, "/a:b:c/api", "api2"), "api");
    assert_string_equal(match(&r, "/a:b:c/api", NULL), "api2");
    assert_int_equal(r.len, 6);
    json_decref(p);
    hcn_http_router_fini(&r, NULL);
}

static void paths_are_formatted_as_hyperware(void **state)
{
    (void)state;
    char *s = hcn_http_format_path("a:b:c", "/api/");
    assert_string_equal(s, "/a:b:c/api");
    free(s);
    s = hcn_http_format_path("a:b:c", "api");
    assert_string_equal(s, "/a:b:c/api");
    free(s);
    s = hcn_http_format_path("a:b:c", "/");
    assert_string_equal(s, "/a:b:c");
    free(s);
    s = hcn_http_format_path("homepage:homepage:sys", "/x/");
    assert_string_equal(s, "/x");
    free(s);
    s = hcn_http_secure_subdomain("app:my-pkg:pub.os");
    assert_string_equal(s, "my-pkg-pub-os");
    free(s);
}

static void queries_and_utf8(void **state)
{
    (void)state;
    json_t *q = json_object();
    const char *qs = "a=1&b=x%20y+z&a=2&empty&bad=%zz%4&u=%C3%A9%FF";
    hcn_http_parse_query(qs, strlen(qs), q);
    assert_string_equal(json_string_value(json_object_get(q, "a")), "2");
    assert_string_equal(json_string_value(json_object_get(q, "b")), "x y z");
    assert_string_equal(json_string_value(json_object_get(q, "empty")), "");
    assert_string_equal(json_string_value(json_object_get(q, "bad")), "%zz%4");
    assert_string_equal(json_string_value(json_object_get(q, "u")),
                        "\xC3\xA9\xEF\xBF\xBD");
    json_decref(q);
    size_t n;
    char *s = hcn_http_utf8_lossy(
        (const uint8_t *)"ok\xE2\x82 \xF0\x9F\x98\x80", 10, &n);
    assert_string_equal(s, "ok\xEF\xBF\xBD \xF0\x9F\x98\x80");
    free(s);
}

/* The server's own JSON strings are jansson's, byte for byte: what
 * processes parsed when the server built its JSON with jansson. */
static void json_strings_as_jansson_writes_them(void **state)
{
    (void)state;
    char s[160];
    size_t n = 0;
    for (int ch = 1; ch < 128; ch++)
        s[n++] = (char)ch;
    const char *u = "\xC3\xA9\xE2\x80\xA8\xF0\x9F\x98\x80/</";
    memcpy(s + n, u, strlen(u));
    n += strlen(u);
    json_t *j = json_stringn(s, n);
    char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    hcn_http_out o = {0};
    hcn_http_out_jstr(&o, s, n);
    assert_string_equal(o.buf, want);
    free(want);
    json_decref(j);
    o.len = 0;
    json_t *obj = json_object();
    hcn_http_out_json(&o, obj);
    assert_string_equal(o.buf, "{}");
    json_object_set_new(obj, "id", json_string("7"));
    o.len = 0;
    hcn_http_out_json(&o, obj);
    assert_string_equal(o.buf, "{\"id\":\"7\"}");
    json_decref(obj);
    o.len = 0;
    hcn_http_out_u64(&o, 0);
    hcn_http_out_raw(&o, " ", 1);
    hcn_http_out_u64(&o, UINT64_MAX);
    assert_string_equal(o.buf, "0 18446744073709551615");
    free(o.buf);
}

static void loopback_peers(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.5", &in.sin_addr);
    assert_true(hcn_http_is_loopback((struct sockaddr *)&in));
    inet_pton(AF_INET, "192.168.1.2", &in.sin_addr);
    assert_false(hcn_http_is_loopback((struct sockaddr *)&in));
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_true(hcn_http_is_loopback((struct sockaddr *)&in6));
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    assert_false(hcn_http_is_loopback((struct sockaddr *)&in6));
    in6.sin6_port = htons(80);
    char buf[80];
    hcn_http_format_addr((struct sockaddr *)&in6, buf, sizeof buf);
    assert_string_equal(buf, "[2001:db8::1]:80");
    assert_true(hcn_http_is_proxy_header("x-real-ip"));
    assert_false(hcn_http_is_proxy_header("x-custom"));
}

static void jwts_and_cookies(void **state)
{
    (void)state;
    uint8_t key[32] = {1, 2, 3}, other[32] = {9};
    char *t = hcn_http_jwt_make(key, 32, "n.os", NULL, 2000);
    assert_non_null(t);
    assert_true(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 1999));
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", NULL, 2000));
    assert_false(hcn_http_jwt_valid(other, 32, t, "n.os", NULL, 1));
    assert_false(hcn_http_jwt_valid(key, 32, t, "m.os", NULL, 1));
    assert_false(hcn_http_jwt_valid(key, 32, t, "n.os", "a:b:c", 1));
    char *s = hcn_http_jwt_make(key, 32, "n.os", "a:b:c", 2000);
    assert_true(hcn_http_jwt_valid(key, 32, s, "n.os", "a:b:c", 1));
    assert_false(hcn_http_jwt_valid(key, 32, s, "n.os", NULL, 1));
    /* an unsigned token ("alg":"none") is refused */
    assert_false(hcn_http_jwt_valid(
        key, 32, "eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6Im4ub3MifQ.", "n.os",
        NULL, 1));
    char *hdr = hcn_xasprintf("x=1; hyperware-auth_n.os=%s; y=2", t);
    char *c = hcn_http_cookie(hdr, "hyperware-auth_n.os");
    assert_string_equal(c, t);
    free(c);
    assert_null(hcn_http_cookie(hdr, "hyperware-auth_m.os"));
    assert_null(hcn_http_cookie("a=b=c", "a"));
    free(hdr);
    free(t);
    free(s);
    char *sub = NULL;
    const char *ok = "{\"password\":\"pw\",\"subdomain\":\"a:b:c\"}";
    assert_true(hcn_http_login_check("pw", "0xab", ok, strlen(ok), &sub));
    assert_string_equal(sub, "a:b:c");
    free(sub);
    const char *h = "{\"password_hash\":\"0xAB\"}";
    assert_true(hcn_http_login_check("pw", "0xab", h, strlen(h), &sub));
    const char *bad = "{\"password\":\"pw2\"}";
    assert_false(hcn_http_login_check("pw", "0xab", bad, strlen(bad), &sub));
    assert_false(hcn_http_login_check("pw", "0xab", "x", 1, &sub));
}

/* The decision for a binding (flags, secure subdomain) and request facts. */
static hcn_http_access decide(bool auth, bool local, const char *secure,
                              const char *sub, bool sub_secure, bool logged_in,
                              bool loopback, bool proxied)
{
    hcn_http_rule rule = {.authenticated = auth,
                          .local_only = local,
                          .secure_sub = secure,
                          .app = "chat:my-pkg:pub.os"};
    hcn_http_facts facts = {.subdomain = sub,
                            .subdomain_secure = sub_secure,
                            .logged_in = logged_in,
                            .loopback = loopback,
                            .proxied = proxied,
                            .host_local = true};
    return hcn_http_access_check(&rule, &facts);
}

static void open_paths_need_nothing(void **state)
{
    (void)state;
    /* no login, a remote peer behind a proxy, any subdomain: served */
    assert_int_equal(
        decide(false, false, NULL, "localhost", false, false, false, true),
        HCN_HTTP_ALLOW);
    assert_int_equal(decide(false, false, NULL, "", false, false, false, false),
                     HCN_HTTP_ALLOW);
    /* another package's secure subdomain only matters with a login */
    assert_int_equal(
        decide(false, false, NULL, "other-pkg-os", true, false, true, false),
        HCN_HTTP_ALLOW);
}

static void authenticated_paths_need_a_login(void **state)
{
    (void)state;
    assert_int_equal(
        decide(true, false, NULL, "localhost", false, true, false, true),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(true, false, NULL, "localhost", false, false, true, false),
        HCN_HTTP_LOGIN);
    /* another package's secure subdomain: refused, logged in or not */
    assert_int_equal(
        decide(true, false, NULL, "other-pkg-os", true, true, true, false),
        HCN_HTTP_OTHER_PACKAGE);
    assert_int_equal(
        decide(true, false, NULL, "other-pkg-os", true, false, true, false),
        HCN_HTTP_OTHER_PACKAGE);
    /* its own package's secure subdomain ("my-pkg:pub.os" -> my-pkg-pub-os) */
    assert_int_equal(
        decide(true, false, NULL, "my-pkg-pub-os", true, true, true, false),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(true, false, NULL, "my-pkg-pub-os", true, false, true, false),
        HCN_HTTP_LOGIN);
    /* a label no binding uses as its secure subdomain is no subdomain */
    assert_int_equal(decide(true, false, NULL, "www", false, true, true, false),
                     HCN_HTTP_ALLOW);
    assert_int_equal(decide(true, false, NULL, "", true, true, true, false),
                     HCN_HTTP_ALLOW);
}

static void secure_subdomains_are_checked_before_the_login(void **state)
{
    (void)state;
    const char *sec = "my-pkg-pub-os";
    assert_int_equal(decide(true, false, sec, sec, true, true, false, true),
                     HCN_HTTP_ALLOW);
    assert_int_equal(decide(true, false, sec, sec, true, false, true, false),
                     HCN_HTTP_LOGIN);
    /* the wrong host: sent to the right one, logged in or not */
    assert_int_equal(
        decide(true, false, sec, "localhost", false, true, true, false),
        HCN_HTTP_TO_SECURE_SUB);
    assert_int_equal(
        decide(true, false, sec, "other-pkg-os", true, false, true, false),
        HCN_HTTP_TO_SECURE_SUB);
    /* no label at all (a Host such as ".x" or ":8080") */
    assert_int_equal(decide(true, false, sec, "", false, true, true, false),
                     HCN_HTTP_NO_SUBDOMAIN);
    assert_int_equal(decide(true, false, sec, "", false, false, true, false),
                     HCN_HTTP_NO_SUBDOMAIN);
}

static void local_only_paths_need_a_direct_loopback_peer(void **state)
{
    (void)state;
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, true, false),
        HCN_HTTP_ALLOW);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, false, false),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, true, true),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(false, true, NULL, "localhost", false, false, false, true),
        HCN_HTTP_NOT_LOCAL);
}

static void the_login_comes_before_local_only(void **state)
{
    (void)state;
    /* authenticated and local only: the login page before the 403 */
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, false, false, false),
        HCN_HTTP_LOGIN);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, false, false),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, true, true),
        HCN_HTTP_NOT_LOCAL);
    assert_int_equal(
        decide(true, true, NULL, "localhost", false, true, true, false),
        HCN_HTTP_ALLOW);
    /* the subdomain comes first too */
    assert_int_equal(
        decide(true, true, NULL, "other-pkg-os", true, true, false, false),
        HCN_HTTP_OTHER_PACKAGE);
    assert_int_equal(decide(true, true, "my-pkg-pub-os", "localhost", false,
                            false, false, true),
                     HCN_HTTP_TO_SECURE_SUB);
    assert_int_equal(decide(true, true, "my-pkg-pub-os", "my-pkg-pub-os", true,
                            true, false, false),
                     HCN_HTTP_NOT_LOCAL);
}

static void the_login_cookie_that_counts(void **state)
{
    (void)state;
    hcn_http_rule secure = {.authenticated = true,
                            .secure_sub = "my-pkg-pub-os",
                            .app = "chat:my-pkg:pub.os"};
    hcn_http_rule plain = {.authenticated = true, .app = "chat:my-pkg:pub.os"};
    assert_string_equal(hcn_http_login_sub(&secure, true),
                        "chat:my-pkg:pub.os");
    assert_null(hcn_http_login_sub(&secure, false));
    assert_null(hcn_http_login_sub(&plain, true));
    assert_null(hcn_http_login_sub(&plain, false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(router_matches_like_route_recognizer),
        cmocka_unit_test(paths_are_formatted_as_hyperware),
        cmocka_unit_test(queries_and_utf8),
        cmocka_unit_test(json_strings_as_jansson_writes_them),
        cmocka_unit_test(loopback_peers),
        cmocka_unit_test(jwts_and_cookies),
        cmocka_unit_test(open_paths_need_nothing),
        cmocka_unit_test(authenticated_paths_need_a_login),
        cmocka_unit_test(secure_subdomains_are_checked_before_the_login),
        cmocka_unit_test(local_only_paths_need_a_direct_loopback_peer),
        cmocka_unit_test(the_login_comes_before_local_only),
        cmocka_unit_test(the_login_cookie_that_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
