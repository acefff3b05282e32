/* http-server:distro:sys's defences without sockets (http/util.c,
 * http/access.c): the router is linear in the path whatever the bindings'
 * wildcards, and keeps the old matcher's choices; which headers mark a
 * proxy; which Host and Origin headers a local-only path takes; which
 * peers count as one. */
#include "unit_helpers.h"

#include "node/http/http_int.h"

#include <arpa/inet.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *match(hcn_http_router *r, const char *path, json_t *p)
{
    const hcn_http_route *rt = hcn_http_router_match(r, path, p);
    return rt ? rt->data : NULL;
}

static const char *param(json_t *p, const char *name)
{
    return json_string_value(json_object_get(p, name));
}

/* A path of `n` segments "x" after "/a:b:c", then `last`.  Fresh. */
static char *long_path(size_t n, const char *last)
{
    size_t len = 6 + 2 * n + strlen(last) + 2;
    char *s = hcn_xmalloc(len), *o = s;
    o += sprintf(o, "/a:b:c");
    for (size_t i = 0; i < n; i++)
        o += sprintf(o, "/x");
    sprintf(o, "/%s", last);
    return s;
}

static void stars_take_the_longest_extent_that_fits(void **state)
{
    (void)state;
    hcn_http_router r = {0};
    hcn_http_router_add(&r, "/a:b:c/*a/*b", "two");
    hcn_http_router_add(&r, "/a:b:c/m/*a/mid/*b", "mid");
    hcn_http_router_add(&r, "/a:b:c/p/:x/*rest/:y", "mixed");
    json_t *p = json_object();
    assert_string_equal(match(&r, "/a:b:c/x/y/z", p), "two");
    assert_string_equal(param(p, "a"), "x/y");
    assert_string_equal(param(p, "b"), "z");
    json_object_clear(p);
    assert_string_equal(match(&r, "/a:b:c/m/1/mid/2/mid/3", p), "mid");
    assert_string_equal(param(p, "a"), "1/mid/2");
    assert_string_equal(param(p, "b"), "3");
    json_object_clear(p);
    /* "mixed" ranks above "two" (one star fewer) */
    assert_string_equal(match(&r, "/a:b:c/p/1/2/3/4", p), "mixed");
    assert_string_equal(param(p, "x"), "1");
    assert_string_equal(param(p, "rest"), "2/3");
    assert_string_equal(param(p, "y"), "4");
    json_object_clear(p);
    /* a star needs a character: one empty segment is not enough, two
     * are ("/") */
    assert_string_equal(match(&r, "/a:b:c/p/1//4", NULL), "two");
    assert_string_equal(match(&r, "/a:b:c/p/1///4", p), "mixed");
    assert_string_equal(param(p, "rest"), "/");
    json_object_clear(p);
    assert_null(match(&r, "/a:b:c/x", NULL));
    json_decref(p);
    hcn_http_router_fini(&r, NULL);
}

static void long_paths_do_not_make_the_router_backtrack(void **state)
{
    (void)state;
    hcn_http_router r = {0};
    /* The shapes that made the old recursive matcher stall for seconds. */
    hcn_http_router_add(&r, "/a:b:c/*a/*b/end", "ab");
    hcn_http_router_add(&r, "/a:b:c/*a/*b/*c/*d/end", "abcd");
    hcn_http_router_add(&r, "/a:b:c/*a/:x/*b/:y/*c/end", "mixed");
    char *miss = long_path(3000, "nope"); /* 6 KB, matches nothing */
    char *hit = long_path(30000, "end");  /* 60 KB */
    double t0 = now_s();
    for (int i = 0; i < 10; i++)
        assert_null(match(&r, miss, NULL));
    json_t *p = json_object();
    assert_string_equal(match(&r, hit, p), "ab");
    assert_int_equal(strlen(param(p, "a")), 2 * 29999 - 1);
    assert_string_equal(param(p, "b"), "x");
    double took = now_s() - t0;
    /* Microseconds each when linear; the old matcher took minutes. */
    assert_true(took < 2.0);
    json_decref(p);
    free(miss);
    free(hit);
    hcn_http_router_fini(&r, NULL);
}

static void local_hosts_and_origins(void **state)
{
    (void)state;
    const char *ok[] = {NULL,          "",
                        "localhost",   "LOCALHOST:80",
                        "a.localhost", "a.b.localhost:8080",
                        "127.0.0.1",   "127.1.2.3:9",
                        "[::1]",       "[::1]:8080",
                        "n.os",        "N.OS:1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(hcn_http_host_is_local(ok[i], "n.os"));
    const char *bad[] = {"evil.com",
                         "evil.com:80",
                         "localhost:",
                         "localhost:8x",
                         "localhost.evil.com",
                         "localhost.",
                         "127.0.0.1.nip.io",
                         "127.0.0",
                         "[::2]",
                         "10.0.0.1",
                         "xn.os",
                         "[::1]x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(hcn_http_host_is_local(bad[i], "n.os"));
    assert_false(hcn_http_cross_site(NULL, NULL, "localhost:8080"));
    assert_false(
        hcn_http_cross_site("http://localhost:8080", NULL, "localhost:8080"));
    assert_false(hcn_http_cross_site("HTTPS://LocalHost:8080", "same-origin",
                                     "localhost:8080"));
    assert_false(hcn_http_cross_site(NULL, "none", "localhost"));
    assert_true(hcn_http_cross_site("null", NULL, "localhost"));
    assert_true(hcn_http_cross_site("http://evil.com", NULL, "localhost"));
    assert_true(
        hcn_http_cross_site("http://localhost:8081", NULL, "localhost:8080"));
    assert_true(hcn_http_cross_site("ws://localhost", NULL, "localhost"));
    assert_true(hcn_http_cross_site(NULL, "cross-site", "localhost"));
    assert_true(hcn_http_cross_site(NULL, "Same-Site", "localhost"));
}

static void proxy_headers_in_every_form(void **state)
{
    (void)state;
    const char *yes[] = {
        "forwarded",       "Forwarded",        "via",
        "x-forwarded-for", "X-FORWARDED-FOR",  " x-forwarded-for\t",
        "x_forwarded_for", "x-forwarded-port", "x-real-ip",
        "X_Real_IP",       "true-client-ip",   "cf-connecting-ip"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(hcn_http_is_proxy_header(yes[i]));
    const char *no[] = {"x-custom", "forwarder", "x-forwarded", "host", ""};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(hcn_http_is_proxy_header(no[i]));
}

/* The key of addr (IPv4 or IPv6 text) as the connection and login counts
 * use it. */
static void key_of(const char *addr, uint8_t key[17])
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
    }
    hcn_http_addr_key((const struct sockaddr *)&ss, key);
}

static bool same_peer(const char *a, const char *b)
{
    uint8_t ka[17], kb[17];
    key_of(a, ka);
    key_of(b, kb);
    return memcmp(ka, kb, sizeof ka) == 0;
}

static void peers_count_by_address_or_ipv6_64(void **state)
{
    (void)state;
    /* an IPv6 client picks any address of its /64: one peer */
    assert_true(same_peer("2001:db8:1:2::1", "2001:db8:1:2:ffff:ee:dd:cc"));
    assert_false(same_peer("2001:db8:1:2::1", "2001:db8:1:3::1"));
    /* IPv4 by its whole address; mapped into IPv6 as itself */
    assert_true(same_peer("192.0.2.7", "::ffff:192.0.2.7"));
    assert_false(same_peer("192.0.2.7", "192.0.2.8"));
    assert_false(same_peer("::ffff:192.0.2.7", "::ffff:192.0.2.8"));
    assert_false(same_peer("192.0.2.7", "c000:207::"));
}

static void local_only_says_why(void **state)
{
    (void)state;
    hcn_http_rule rule = {.local_only = true, .app = "a:b:c"};
    hcn_http_facts f = {
        .subdomain = "localhost", .loopback = true, .host_local = true};
    assert_int_equal(hcn_http_access_check(&rule, &f), HCN_HTTP_ALLOW);
    assert_null(hcn_http_not_local_reason(&f));
    f.cross_site = true;
    assert_int_equal(hcn_http_access_check(&rule, &f), HCN_HTTP_NOT_LOCAL);
    assert_non_null(strstr(hcn_http_not_local_reason(&f), "origin"));
    f.host_local = false;
    assert_non_null(strstr(hcn_http_not_local_reason(&f), "Host"));
    f.proxied = true;
    assert_non_null(strstr(hcn_http_not_local_reason(&f), "proxy"));
    f.loopback = false;
    assert_non_null(strstr(hcn_http_not_local_reason(&f), "machine"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stars_take_the_longest_extent_that_fits),
        cmocka_unit_test(long_paths_do_not_make_the_router_backtrack),
        cmocka_unit_test(local_hosts_and_origins),
        cmocka_unit_test(proxy_headers_in_every_form),
        cmocka_unit_test(peers_count_by_address_or_ipv6_64),
        cmocka_unit_test(local_only_says_why),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
